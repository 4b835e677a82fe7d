package zone

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
)

// tinyMachine is a 32 MiB machine whose free lists can be worked out by
// hand: a DMA zone of 100 present pages of which only the last (pfn 100) is
// managed, a DMA32 zone of 8192 pages (eight MAX_ORDER blocks, pfns
// 4096..12287) all managed, and a Normal zone of 512 present pages none of
// which is managed (populated, nothing free). min_free_kbytes is 128, so
// the watermarks stay out of the way.
func tinyMachine() Config {
	s := DefaultSysctl()
	s.MinFreeKbytes = 128
	return Config{NrCPUs: 2, Sysctl: s, Nodes: []NodeConfig{{CPUs: []int{0, 1}, Zones: []ZoneConfig{
		{Type: gfp.ZoneDMA, StartPFN: 1, Spanned: 4095, Present: 100, Managed: 1},
		{Type: gfp.ZoneDMA32, StartPFN: 4096, Spanned: 8192, Present: 8192, Managed: 8192},
		{Type: gfp.ZoneNormal, StartPFN: 12288, Spanned: 512, Present: 512, Managed: 0},
	}}}}
}

// fragmentTiny fills the tiny machine's DMA32 zone with 500 order-4
// GFP_KERNEL blocks and frees every other one. The zone hands them out in
// ascending pfn order (each MAX_ORDER block is claimed for UNMOVABLE whole
// and split smallest-first), so block i is at pfn 4096+16*i; the odd ones
// freed cannot merge with their held buddies, and the 192 pages never
// allocated are the order-7 and order-6 blocks left of the last MAX_ORDER
// block (8000 = 7*1024 + 512+256+64). nr_free ends as 250 order-4 blocks,
// one order-6 and one order-7: 4192 pages in 252 blocks.
func fragmentTiny(t *testing.T, a *Allocator) []Page {
	t.Helper()
	tk := memalloc.NewTask("t")
	pages := make([]Page, 500)
	for i := range pages {
		p, err := a.AllocPages(tk, gfp.Kernel, 4)
		require.NoError(t, err, "allocation %d", i)
		require.Equal(t, PFN(4096+16*i), p.PFN(), "allocation %d", i)
		pages[i] = p
	}
	for i := 1; i < len(pages); i += 2 {
		require.NoError(t, a.FreePages(tk, pages[i], 4))
	}
	require.NoError(t, a.CheckInvariants())
	return pages
}

// TestExtfragIndexByHand checks both indices of every order on the
// fragmented tiny machine against values worked out by hand from its free
// areas (250 order-4 blocks, one order-6, one order-7; 4192 pages in 252
// blocks).
//
// Fragmentation index, orders 0..7: a block of the order is free: -1000.
// Order 8: 1000 - (1000 + 4192000/256) / 252 = 1000 - 17375/252 = 1000 - 68.
// Order 9: 1000 - (1000 + 8187) / 252 = 1000 - 36. Order 10: 1000 - (1000 +
// 4093) / 252 = 1000 - 20.
//
// Unusable free space index: orders 0..4 use every free page: 0. Orders 5
// and 6: the order-6 and order-7 blocks (192 pages) are usable: 4000000/4192
// = 954. Order 7: only the order-7 block: 4064000/4192 = 969. Orders 8..10:
// nothing usable: 1000.
//
// Reference: mm/vmstat.c:fill_contig_page_info(), __fragmentation_index(),
// unusable_free_index().
func TestExtfragIndexByHand(t *testing.T) {
	a, err := New(tinyMachine(), Options{})
	require.NoError(t, err)
	z := a.nodes[0].zones[gfp.ZoneDMA32]
	for o := Order(0); o <= MaxPageOrder; o++ {
		require.Equal(t, -1000, z.FragmentationIndex(o), "order %d after boot", o)
		require.Equal(t, 0, z.UnusableIndex(o), "order %d after boot", o)
	}

	fragmentTiny(t, a)
	require.Equal(t, [NrPageOrders]int64{4: 250, 6: 1, 7: 1}, z.FreeArea())
	wantFrag := []int{-1000, -1000, -1000, -1000, -1000, -1000, -1000, -1000, 932, 964, 980}
	wantUnusable := []int{0, 0, 0, 0, 0, 954, 954, 969, 1000, 1000, 1000}
	for o := Order(0); o <= MaxPageOrder; o++ {
		require.Equal(t, wantFrag[o], z.FragmentationIndex(o), "fragmentation index, order %d", o)
		require.Equal(t, wantUnusable[o], z.UnusableIndex(o), "unusable index, order %d", o)
	}
}

// TestExtfragIndexFileFormat checks the two debugfs files of the tiny
// machine byte for byte: one line per populated zone (DMA, DMA32 and the
// Normal zone that has pages but none free; not the empty Movable and
// Device zones), "Node %d, zone %8s ", then "%2d.%03d " per order for
// extfrag_index and "%d.%03d " for unusable_index.
//
// The DMA zone's one free page gives the negative indices the kernel's
// formula yields with a single small block (order 1: 1000 - (1000+500)/1
// = -500), printed with C's truncating division as " 0.-500". The Normal
// zone has no free block: fragmentation index 0, unusable index 1000.
//
// Reference: mm/vmstat.c:extfrag_show_print(), unusable_show_print(),
// walk_zones_in_node().
func TestExtfragIndexFileFormat(t *testing.T) {
	a, err := New(tinyMachine(), Options{})
	require.NoError(t, err)
	fragmentTiny(t, a)

	var buf bytes.Buffer
	require.NoError(t, a.WriteExtfragIndex(&buf))
	require.Equal(t, ""+
		"Node 0, zone      DMA -1.000  0.-500  0.-250  0.-125  0.-62  0.-31  0.-15  0.-07  0.-03  0.-01  0.000 \n"+
		"Node 0, zone    DMA32 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000  0.932  0.964  0.980 \n"+
		"Node 0, zone   Normal  0.000  0.000  0.000  0.000  0.000  0.000  0.000  0.000  0.000  0.000  0.000 \n",
		buf.String())

	buf.Reset()
	require.NoError(t, a.WriteUnusableIndex(&buf))
	require.Equal(t, ""+
		"Node 0, zone      DMA 0.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 \n"+
		"Node 0, zone    DMA32 0.000 0.000 0.000 0.000 0.000 0.954 0.954 0.969 1.000 1.000 1.000 \n"+
		"Node 0, zone   Normal 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 \n",
		buf.String())
}

// TestExtfragIndexRealMachineAfterBoot checks the files of the real
// machine right after boot: every zone has a free MAX_ORDER block, so
// every order's fragmentation index is -1.000; the unusable index of the
// DMA zone (3840 free pages: orders 0..10 hold 2, 1, 1, 1, 1, 1, 1, 1, 2,
// 2, 2 blocks) is the share of its pages below each order, e.g. order 1:
// 2 pages of 3840 = 0.000 (0.52 thousandths), order 10: 3840-2048 = 1792
// of 3840 = 0.466.
//
// Reference: mm/vmstat.c:extfrag_show_print(), unusable_show_print().
func TestExtfragIndexRealMachineAfterBoot(t *testing.T) {
	a, err := New(realMachine(), Options{})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, a.WriteExtfragIndex(&buf))
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	require.Len(t, lines, 3)
	for i, name := range []string{"     DMA", "   DMA32", "  Normal"} {
		require.Equal(t, "Node 0, zone "+name+" "+strings.Repeat("-1.000 ", NrPageOrders), lines[i])
	}

	buf.Reset()
	require.NoError(t, a.WriteUnusableIndex(&buf))
	line := regexp.MustCompile(`^Node 0, zone [ A-Za-z0-9]{8} (?:[01]\.\d{3} ){11}$`)
	lines = strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	require.Len(t, lines, 3)
	for _, l := range lines {
		require.Regexp(t, line, l)
	}
	// DMA: blocks of order 8, 9 and 10 (pfn 0x100-0xfff), so pages in
	// blocks below each order, of 3840: 0 up to order 8, 256 below 9,
	// 768 below 10.
	require.Equal(t, "Node 0, zone      DMA 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.066 0.200 ", lines[0])
}

// TestExtfragIndexEmptyZone checks a zone without pages (the tiny
// machine's Movable zone) and an order out of range: no free block gives
// fragmentation index 0 and unusable index 1000; an order above
// MAX_PAGE_ORDER fires the kernel's WARN_ON_ONCE once and returns 0.
//
// Reference: mm/vmstat.c:__fragmentation_index(), unusable_free_index().
func TestExtfragIndexEmptyZone(t *testing.T) {
	var mu sync.Mutex
	var reports []bug.Report
	a, err := New(tinyMachine(), Options{Report: func(r bug.Report) {
		mu.Lock()
		reports = append(reports, r)
		mu.Unlock()
	}})
	require.NoError(t, err)
	empty := a.nodes[0].zones[gfp.ZoneMovable]
	require.False(t, empty.populated())
	for o := Order(0); o <= MaxPageOrder; o++ {
		require.Equal(t, 0, empty.FragmentationIndex(o))
		require.Equal(t, 1000, empty.UnusableIndex(o))
	}
	require.Empty(t, reports)

	z := a.nodes[0].zones[gfp.ZoneDMA32]
	require.Equal(t, 0, z.FragmentationIndex(MaxPageOrder+1))
	require.Equal(t, 0, z.FragmentationIndex(-1))
	require.Equal(t, 1000, z.UnusableIndex(MaxPageOrder+1))
	require.Len(t, reports, 1)
	require.Equal(t, bug.Warn, reports[0].Kind)
	require.Equal(t, "mm/vmstat.c:__fragmentation_index", reports[0].Site)
}

// TestExtfragIndexFormula checks the arithmetic alone on free areas
// given as nr_free per order.
//
// Reference: mm/vmstat.c:__fragmentation_index(), unusable_free_index().
func TestExtfragIndexFormula(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		nr                   [NrPageOrders]int64
		order                Order
		wantFrag, wantUnused int
	}{
		{name: "nothing free", order: 3, wantFrag: 0, wantUnused: 1000},
		{name: "a block of the order is free", nr: [NrPageOrders]int64{3: 1}, order: 3, wantFrag: -1000, wantUnused: 0},
		{name: "a larger block is free", nr: [NrPageOrders]int64{0: 8, 10: 1}, order: 5, wantFrag: -1000, wantUnused: 7},
		// 1024 single pages, order 10: 1000 - (1000+1000)/1024 = 999.
		{name: "only single pages", nr: [NrPageOrders]int64{0: 1024}, order: 10, wantFrag: 999, wantUnused: 1000},
		// 2 order-3 blocks, order 4: 1000 - (1000 + 16000/16)/2 = 0.
		{name: "half a request in two blocks", nr: [NrPageOrders]int64{3: 2}, order: 4, wantFrag: 0, wantUnused: 1000},
		// One order-2 block, order 3: 1000 - (1000 + 500) = -500.
		{name: "one block just under the request", nr: [NrPageOrders]int64{2: 1}, order: 3, wantFrag: -500, wantUnused: 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := fillContigPageInfo(&tc.nr, tc.order)
			got, ok := fragmentationIndex(tc.order, info)
			require.True(t, ok)
			require.Equal(t, tc.wantFrag, got)
			require.Equal(t, tc.wantUnused, unusableFreeIndex(tc.order, info))
		})
	}
}
