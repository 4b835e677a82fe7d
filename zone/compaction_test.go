package zone

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

// TestCaptureTakesTheMergedBlock isolates the pages of a free MAX_ORDER
// block as compaction's free scanner would, then frees four of them back
// with a capture control for order 2: the fourth free completes the
// order-2 block, which goes to the capture instead of the free lists, and
// the other isolated pages merge back whole when released.
//
// Reference: mm/page_alloc.c:__free_one_page(), compaction_capture().
func TestCaptureTakesTheMergedBlock(t *testing.T) {
	a, err := New(smallMachine(), Options{})
	require.NoError(t, err)
	z := a.nodes[0].zones[gfp.ZoneDMA32]
	free0 := z.FreePages()
	start := (z.firstManaged + maxOrderNrPages) &^ (maxOrderNrPages - 1) // a whole free MAX_ORDER block
	pages, scanned, next := z.IsolateFreePages(start, start+maxOrderNrPages, maxOrderNrPages)
	require.Len(t, pages, maxOrderNrPages)
	assert.Equal(t, int64(maxOrderNrPages), scanned)
	assert.Equal(t, start+maxOrderNrPages, next)
	assert.Equal(t, free0-maxOrderNrPages, z.FreePages(), "isolated pages are not free")
	require.NoError(t, a.CheckInvariants())

	tk := memalloc.NewTask("t")
	capc := &Capture{Zone: z, Order: 2, MT: gfp.MigrateMovable, Movable: true}
	// Three frees make an order-1 block and a single page: no capture.
	z.ReleaseFreePages([]Page{pages[2], pages[0], pages[1]}, capc)
	require.False(t, capc.Captured)
	z.ReleaseFreePages([]Page{pages[3]}, capc)
	require.True(t, capc.Captured, "the order-2 block is captured")
	assert.Equal(t, pages[0], capc.Page)
	assert.Equal(t, free0-maxOrderNrPages, z.FreePages(), "the captured block is not free")
	require.NoError(t, a.CheckInvariants())

	// A non-movable request may not capture from a movable pageblock
	// below pageblock order.
	other := &Capture{Zone: z, Order: 1, MT: gfp.MigrateUnmovable}
	z.ReleaseFreePages(pages[4:6], other)
	assert.False(t, other.Captured)

	z.ReleaseFreePages(pages[6:], nil)
	require.NoError(t, a.FreePages(tk, capc.Page, 2))
	a.DrainAllPages(tk)
	assert.Equal(t, free0, z.FreePages())
	require.NoError(t, a.CheckInvariants())
}

// TestIsolateFreePagesStopsAtTheWatermark checks __isolate_free_page's
// rule: a block is not taken if that would leave the zone at or below its
// min watermark plus the block.
func TestIsolateFreePagesStopsAtTheWatermark(t *testing.T) {
	a, err := New(smallMachine(), Options{})
	require.NoError(t, err)
	z := a.nodes[0].zones[gfp.ZoneDMA32]
	tk := memalloc.NewTask("t")
	for z.FreePages() > z.Watermark(WmarkMin)+maxOrderNrPages {
		_, err := a.AllocPages(tk, gfp.Kernel|gfp.Movable, MaxPageOrder)
		require.NoError(t, err)
	}
	var isolated int
	for pfn := z.StartPFN(); pfn < z.EndPFN(); pfn += maxOrderNrPages {
		pages, _, _ := z.IsolateFreePages(pfn, pfn+maxOrderNrPages, maxOrderNrPages)
		isolated += len(pages)
	}
	assert.Greater(t, z.FreePages(), z.Watermark(WmarkMin), "the free scanner leaves the min reserve")
	t.Logf("isolated %d, free %d, min %d", isolated, z.FreePages(), z.Watermark(WmarkMin))
	require.NoError(t, a.CheckInvariants())
}
