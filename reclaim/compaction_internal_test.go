package reclaim

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/mmsim/mmsim/zone"
)

// TestDeferral walks compaction_deferred's back-off: after the k-th
// consecutive failure the next 2^k - 1 attempts are skipped and the 2^k-th
// runs, up to 2^6; orders below the lowest failed one are never deferred;
// a successful allocation resets the back-off.
//
// Reference: mm/compaction.c:defer_compaction(), compaction_deferred(),
// compaction_defer_reset().
func TestDeferral(t *testing.T) {
	var zc zoneCompact
	assert.False(t, zc.deferred(4), "nothing failed yet")
	zc.deferReset(4, false) // a success at order 4: compact_order_failed = 5
	for k := 1; k <= 8; k++ {
		zc.deferCompaction(4)
		skipped := 0
		for zc.deferred(4) {
			skipped++
		}
		want := 1<<min(k, compactMaxDeferShift) - 1
		assert.Equal(t, want, skipped, "after %d failures", k)
	}
	assert.False(t, zc.deferred(3), "order 3 is below the lowest failed order")
	assert.True(t, zc.restartingLocked(4), "64 attempts at the maximum shift: restart")
	zc.deferReset(4, true)
	assert.False(t, zc.deferred(4), "an allocation success resets the back-off")
	assert.Equal(t, zone.Order(5), zc.orderFailed)
}

// TestFragmentationIndex checks __fragmentation_index's integer formula.
//
// Reference: mm/vmstat.c:__fragmentation_index().
func TestFragmentationIndex(t *testing.T) {
	for _, tc := range []struct {
		ci    contigInfo
		order zone.Order
		want  int64
	}{
		{contigInfo{}, 3, 0},
		{contigInfo{freePages: 64, freeBlocksTotal: 1, freeBlocksSuitable: 1}, 3, -1000},
		// Ten free single pages, an order-2 request: 1000 - (1000 + 10*1000/4)/10.
		{contigInfo{freePages: 10, freeBlocksTotal: 10}, 2, 650},
		// One free block of order o-1: -500.
		{contigInfo{freePages: 4, freeBlocksTotal: 1}, 3, -500},
		// 1000 free single pages, order 9: almost wholly fragmentation.
		{contigInfo{freePages: 1000, freeBlocksTotal: 1000}, 9, 998},
	} {
		assert.Equal(t, tc.want, fragmentationIndex(tc.ci, tc.order), "%+v order %d", tc.ci, tc.order)
	}
}
