package zone

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

// checkPageblocks recomputes a zone's pageblock map the slow way — every
// pfn asked whether it heads a free block — and compares it with
// Pageblocks, and the free pages with NR_FREE_PAGES (no isolated blocks in
// these tests).
func checkPageblocks(t *testing.T, z *Zone) []PageblockInfo {
	t.Helper()
	got := z.Pageblocks()
	first := z.startPFN &^ (PageblockNrPages - 1)
	free := make([]int64, len(got))
	end := z.startPFN + PFN(z.present)
	for pfn := z.startPFN; pfn < end; {
		o, ok := z.FreeBlockOrder(pfn)
		if !ok {
			pfn++
			continue
		}
		for q := pfn; q < pfn+1<<o; q++ {
			free[(q-first)/PageblockNrPages]++
		}
		pfn += 1 << o
	}
	var sum int64
	for i, b := range got {
		require.Equal(t, first+PFN(i)*PageblockNrPages, b.StartPFN, "%s pageblock %d", z.Name(), i)
		require.Equal(t, free[i], b.Free, "%s pageblock %d", z.Name(), i)
		require.Equal(t, z.PageblockMigratetype(b.StartPFN), b.Migratetype, "%s pageblock %d", z.Name(), i)
		require.LessOrEqual(t, b.Free, b.Present, "%s pageblock %d", z.Name(), i)
		sum += b.Free
	}
	require.Equal(t, z.FreePages(), sum, z.Name())
	return got
}

// TestPageblocksAfterBoot checks the map of the real machine's DMA zone
// right after boot: eight pageblocks from pfn 0, all MOVABLE; the first
// has 511 present pages (pfn 0 is not the zone's) of which those below
// pfn 159 are reserved, the last has the 415 present pages up to pfn 3999,
// and every managed page is free.
//
// Reference: mm/mm_init.c:memmap_init_range() (pageblocks start MOVABLE),
// mm/page_alloc.c:__free_pages_core().
func TestPageblocksAfterBoot(t *testing.T) {
	a, err := New(realMachine(), Options{})
	require.NoError(t, err)
	dma := a.nodes[0].zones[gfp.ZoneDMA]
	got := checkPageblocks(t, dma)
	want := []PageblockInfo{
		// pfn 1-0x9e and 0x100-0x1ff present (the hole below 1 MiB),
		// the pages from 0x100 up managed and free.
		{StartPFN: 0, Present: 0x9f - 1 + 256, Free: 256},
		{StartPFN: 512, Present: 512, Free: 512},
		{StartPFN: 1024, Present: 512, Free: 512},
		{StartPFN: 1536, Present: 512, Free: 512},
		{StartPFN: 2048, Present: 512, Free: 512},
		{StartPFN: 2560, Present: 512, Free: 512},
		{StartPFN: 3072, Present: 512, Free: 512},
		{StartPFN: 3584, Present: 512, Free: 512},
	}
	for i := range want {
		want[i].Migratetype = gfp.MigrateMovable
	}
	require.Equal(t, want, got)

	for _, z := range []*Zone{a.nodes[0].zones[gfp.ZoneDMA32], a.nodes[0].zones[gfp.ZoneNormal]} {
		blocks := z.Pageblocks()
		require.Len(t, blocks, int(z.present/PageblockNrPages), z.Name())
		reserved := z.present - z.managed
		var free int64
		for i, b := range blocks {
			free += b.Free
			require.Equal(t, gfp.MigrateMovable, b.Migratetype)
			require.Equal(t, int64(PageblockNrPages), b.Present)
			// The reserved pages are the zone's first.
			wantFree := PageblockNrPages - min(max(reserved-int64(i)*PageblockNrPages, 0), PageblockNrPages)
			require.Equal(t, wantFree, b.Free, "%s pageblock %d", z.Name(), i)
		}
		require.Equal(t, z.FreePages(), free, z.Name())
	}
	require.Nil(t, a.nodes[0].zones[gfp.ZoneMovable].Pageblocks())
}

// TestPageblocksFollowAllocations checks the map as the tiny machine's
// DMA32 zone is used. The first GFP_KERNEL request finds no UNMOVABLE
// page and claims the lowest free MAX_ORDER block whole, so its two
// pageblocks turn UNMOVABLE and the others stay MOVABLE; a movable order-0
// request takes a pcp batch from a MOVABLE pageblock, whose pages stop
// being free; once every other order-4 block of the zone is freed (see
// fragmentTiny), each pageblock is half free, the last one plus the 192
// pages never allocated.
//
// Reference: mm/page_alloc.c:try_to_claim_block(), change_pageblock_range(),
// rmqueue_bulk().
func TestPageblocksFollowAllocations(t *testing.T) {
	a, err := New(tinyMachine(), Options{})
	require.NoError(t, err)
	z := a.nodes[0].zones[gfp.ZoneDMA32]
	tk := memalloc.NewTask("t")

	p, err := a.AllocPages(tk, gfp.Kernel, 4)
	require.NoError(t, err)
	require.Equal(t, PFN(4096), p.PFN())
	blocks := checkPageblocks(t, z)
	require.Len(t, blocks, 16)
	for i, b := range blocks {
		want := gfp.MigrateMovable
		if i < 2 {
			want = gfp.MigrateUnmovable
		}
		require.Equal(t, want, b.Migratetype, "pageblock %d", i)
	}
	require.Equal(t, int64(512-16), blocks[0].Free)
	require.Equal(t, int64(512), blocks[1].Free)
	require.NoError(t, a.FreePages(tk, p, 4))

	m, err := a.AllocPages(tk, gfp.HighUserMovable, 0)
	require.NoError(t, err)
	blocks = checkPageblocks(t, z)
	i := int((m.PFN() - 4096) / PageblockNrPages)
	require.Equal(t, gfp.MigrateMovable, blocks[i].Migratetype)
	pcp := func() (n int64) {
		for cpu := range z.pcp {
			z.pcp[cpu].mu.Lock()
			n += int64(z.pcp[cpu].count)
			z.pcp[cpu].mu.Unlock()
		}
		return n
	}
	require.Equal(t, PageblockNrPages-1-pcp(), blocks[i].Free, "the pcp batch is not free")
	// Freed, the page goes to the pcp list: still not free to the buddy.
	require.NoError(t, a.FreePages(tk, m, 0))
	require.Positive(t, pcp())
	require.Equal(t, PageblockNrPages-pcp(), checkPageblocks(t, z)[i].Free)
	a.DrainAllPages(tk)
	require.Equal(t, int64(PageblockNrPages), checkPageblocks(t, z)[i].Free)

	fragmentTiny(t, a)
	blocks = checkPageblocks(t, z)
	for i, b := range blocks {
		require.Equal(t, gfp.MigrateUnmovable, b.Migratetype, "pageblock %d", i)
		want := int64(256)
		if i == 15 {
			want = 10*16 + 192
		}
		require.Equal(t, want, b.Free, "pageblock %d", i)
	}

	// An unpopulated zone has no pageblocks; a populated zone with
	// nothing managed has its pageblocks, none free.
	require.Nil(t, a.nodes[0].zones[gfp.ZoneMovable].Pageblocks())
	require.Equal(t, []PageblockInfo{{StartPFN: 12288, Migratetype: gfp.MigrateMovable, Present: 512}},
		a.nodes[0].zones[gfp.ZoneNormal].Pageblocks())
}

// TestPageblocks64GiB checks the map of a 64 GiB zone right after boot:
// 32768 pageblocks, all MOVABLE and free, from the whole MAX_ORDER blocks
// without walking a page.
func TestPageblocks64GiB(t *testing.T) {
	const pages = 64 << (30 - PageShift)
	a, err := New(Config{NrCPUs: 1, Sysctl: DefaultSysctl(), Nodes: []NodeConfig{{CPUs: []int{0}, Zones: []ZoneConfig{
		{Type: gfp.ZoneNormal, StartPFN: 1 << 20, Spanned: pages, Present: pages, Managed: pages},
	}}}}, Options{})
	require.NoError(t, err)
	blocks := a.nodes[0].zones[gfp.ZoneNormal].Pageblocks()
	require.Len(t, blocks, 32768)
	for i, b := range blocks {
		if b != (PageblockInfo{StartPFN: 1<<20 + PFN(i)*PageblockNrPages, Migratetype: gfp.MigrateMovable,
			Present: PageblockNrPages, Free: PageblockNrPages}) {
			t.Fatalf("pageblock %d: %+v", i, b)
		}
	}
}

func BenchmarkPageblocks(b *testing.B) {
	const pages = 64 << (30 - PageShift)
	a, err := New(Config{NrCPUs: 1, Sysctl: DefaultSysctl(), Nodes: []NodeConfig{{CPUs: []int{0}, Zones: []ZoneConfig{
		{Type: gfp.ZoneNormal, StartPFN: 1 << 20, Spanned: pages, Present: pages, Managed: pages},
	}}}}, Options{})
	require.NoError(b, err)
	z := a.nodes[0].zones[gfp.ZoneNormal]
	b.ReportAllocs()
	for b.Loop() {
		z.Pageblocks()
	}
}

// TestPresentRuns: a span starting below 1 MiB has its missing pages just
// below 1 MiB (as far as they reach, the rest at the top); other spans at
// the top; the managed pages are the top ones, across runs.
func TestPresentRuns(t *testing.T) {
	for _, c := range []struct {
		zc               ZoneConfig
		present, managed []pfnRange
	}{
		// The real machine's DMA zone: pfn 0x9f-0xff missing.
		{ZoneConfig{StartPFN: 1, Spanned: 4095, Present: 3998, Managed: 3840},
			[]pfnRange{{1, 0x9f}, {0x100, 0x1000}}, []pfnRange{{0x100, 0x1000}}},
		// More managed than the run above 1 MiB holds.
		{ZoneConfig{StartPFN: 1, Spanned: 4095, Present: 3998, Managed: 3900},
			[]pfnRange{{1, 0x9f}, {0x100, 0x1000}}, []pfnRange{{0x9f - 60, 0x9f}, {0x100, 0x1000}}},
		// A hole larger than the room below 1 MiB: the rest at the top.
		{ZoneConfig{StartPFN: 0x80, Spanned: 0x1000 - 0x80, Present: 0x1000 - 0x80 - 0x100, Managed: 0x100},
			[]pfnRange{{0x100, 0x1000 - 0x80}}, []pfnRange{{0x1000 - 0x180, 0x1000 - 0x80}}},
		// Above 1 MiB: the hole at the top (DMA32's PCI hole).
		{ZoneConfig{StartPFN: 4096, Spanned: 1044480, Present: 782336, Managed: 770048},
			[]pfnRange{{4096, 4096 + 782336}}, []pfnRange{{4096 + 782336 - 770048, 4096 + 782336}}},
		// No hole, nothing managed.
		{ZoneConfig{StartPFN: 1, Spanned: 4095, Present: 4095},
			[]pfnRange{{1, 4096}}, nil},
	} {
		present := presentRuns(c.zc)
		require.Equal(t, c.present, present, "%+v", c.zc)
		require.Equal(t, c.managed, managedRuns(present, c.zc.Managed), "%+v", c.zc)
	}
}
