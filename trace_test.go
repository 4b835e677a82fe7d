package mmsim_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/testutil"
	"github.com/mmsim/mmsim/zone"
)

// recorder collects events.
type recorder struct {
	mu  sync.Mutex
	evs []mmsim.Event
}

func (r *recorder) add(e mmsim.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
}

func (r *recorder) take() []mmsim.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := r.evs
	r.evs = nil
	return evs
}

func count(evs []mmsim.Event, k zone.EventKind) int {
	n := 0
	for _, e := range evs {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// TestFirstUnmovableAllocation follows the first GFP_KERNEL allocation on a
// fresh machine, whose pageblocks all boot MOVABLE: the pcp refill finds no
// unmovable free page, claims an order-10 movable block (two pageblocks,
// re-typed UNMOVABLE: mm_page_alloc_extfrag with change_ownership=1), and
// takes the rest of its batch from the now unmovable lists
// (mm_page_alloc_zone_locked with percpu_refill=1); then mm_page_alloc.
//
// Reference: mm/page_alloc.c:__rmqueue(), __rmqueue_claim(),
// try_to_claim_block(), rmqueue_bulk().
func TestFirstUnmovableAllocation(t *testing.T) {
	s := newSystem(t, mib256())
	var rec recorder
	s.Trace(rec.add)
	tk := s.NewTask("first")
	p, err := s.AllocPages(tk, gfp.Kernel, 0)
	require.NoError(t, err)
	evs := rec.take()

	require.Equal(t, 1, count(evs, zone.EvPageAllocExtfrag))
	var ext mmsim.Event
	for _, e := range evs {
		if e.Kind == zone.EvPageAllocExtfrag {
			ext = e
		}
	}
	require.Equal(t, zone.Order(10), ext.FallbackOrder)
	require.Equal(t, gfp.MigrateUnmovable, ext.Migratetype)
	require.Equal(t, gfp.MigrateMovable, ext.FallbackMigratetype)
	require.True(t, ext.ChangeOwnership)
	require.Contains(t, ext.String(), "alloc_order=0 fallback_order=10 pageblock_order=9 alloc_migratetype=0 "+
		"fallback_migratetype=1 fragmenting=10 change_ownership=1")
	require.False(t, ext.Fragmenting())

	// DMA32 has 61440 pages: batch = rounddown_pow_of_two(15 + 7) - 1 = 15;
	// the first refill takes one batch (alloc_factor is still 0).
	locked := count(evs, zone.EvPageAllocZoneLocked)
	require.Equal(t, 15-1, locked, "the claimed page needs no zone_locked event")
	for _, e := range evs {
		if e.Kind == zone.EvPageAllocZoneLocked {
			require.True(t, e.PercpuRefill)
			require.Contains(t, e.String(), "order=0 migratetype=0 percpu_refill=1")
		}
	}
	last := evs[len(evs)-1]
	require.Equal(t, zone.EvPageAlloc, last.Kind)
	require.Equal(t, p.PFN(), last.PFN)
	require.True(t, strings.HasSuffix(last.String(), "order=0 migratetype=0 gfp_flags=GFP_KERNEL"), last.String())
	require.True(t, strings.HasPrefix(last.String(), "           first  1000 [000]     0.000000:             kmem:mm_page_alloc: "), last.String())

	var pt bytes.Buffer
	require.NoError(t, s.WritePagetypeinfo(&pt))
	require.Contains(t, pt.String(), "Node 0, zone    DMA32            2          118            0            0            0 \n")

	require.NoError(t, s.FreePages(tk, p, 0))
	free := rec.take()
	require.Len(t, free, 1)
	require.Contains(t, free[0].String(), "kmem:mm_page_free: page=0x"+strings.TrimPrefix(p.String(), "pfn=0x"))
}

// TestPcpDrain frees more order-0 pages than the pcp list may hold — the
// allocation burst tuned pcp->high up to high_max, (61440/8)/2 = 3840 — so
// the list drains to the buddy lists (mm_page_pcpu_drain), and pgfree
// counts every page as it enters the pcp list.
//
// Reference: mm/page_alloc.c:free_frozen_page_commit(), free_pcppages_bulk().
func TestPcpDrain(t *testing.T) {
	s := newSystem(t, mib256())
	tk := s.NewTask("drainer")
	var pages []zone.Page
	for range 5000 {
		p, err := s.AllocPages(tk, gfp.Kernel, 0)
		require.NoError(t, err)
		pages = append(pages, p)
	}
	var rec recorder
	s.Trace(rec.add)
	for _, p := range pages {
		require.NoError(t, s.FreePages(tk, p, 0))
	}
	evs := rec.take()
	require.Equal(t, 5000, count(evs, zone.EvPageFree))
	require.Positive(t, count(evs, zone.EvPagePcpuDrain))
	var vm bytes.Buffer
	require.NoError(t, s.WriteVmstat(&vm))
	require.Contains(t, vm.String(), "\npgfree 5000\n")
	require.Contains(t, vm.String(), "\npgalloc_dma32 5000\n")
	require.NoError(t, s.CheckInvariants())
}

// TestHighatomicReserve fills a zone with order-4 GFP_KERNEL blocks down to
// its min watermark, then makes a high-order GFP_ATOMIC allocation: the
// slow path gives it ALLOC_HIGHATOMIC, and the pageblock it came from
// becomes a MIGRATE_HIGHATOMIC reserve (zoneinfo reserved_highatomic).
//
// Reference: mm/page_alloc.c:gfp_to_alloc_flags(), rmqueue_buddy(),
// reserve_highatomic_pageblock().
func TestHighatomicReserve(t *testing.T) {
	s := newSystem(t, mib256())
	tk := s.NewTask("nic-rx")
	fill(t, s, tk, gfp.Kernel|gfp.DMA32, 4)
	_, err := s.AllocPages(tk, gfp.Atomic|gfp.DMA32, 2)
	require.NoError(t, err)
	var zi bytes.Buffer
	require.NoError(t, s.WriteZoneinfo(&zi))
	require.Contains(t, zi.String(), "  start_pfn:           4096\n  reserved_highatomic: 512\n")
	require.NoError(t, s.CheckInvariants())
}

// TestProcfsGolden boots the default machine, runs a fixed workload, and
// compares every /proc file with its golden copy (make golden rewrites them;
// review the diff).
func TestProcfsGolden(t *testing.T) {
	s := newSystem(t, mmsim.DefaultConfig())
	tk := s.NewTask("golden")
	for i := range 2000 {
		mask := []gfp.Mask{gfp.Kernel, gfp.HighUserMovable, gfp.Kernel | gfp.Reclaimable}[i%3]
		_, err := s.AllocPages(tk, mask, zone.Order(i%5))
		require.NoError(t, err)
	}
	for name, write := range map[string]func(*bytes.Buffer) error{
		"buddyinfo":    func(b *bytes.Buffer) error { return s.WriteBuddyinfo(b) },
		"zoneinfo":     func(b *bytes.Buffer) error { return s.WriteZoneinfo(b) },
		"pagetypeinfo": func(b *bytes.Buffer) error { return s.WritePagetypeinfo(b) },
		"vmstat":       func(b *bytes.Buffer) error { return s.WriteVmstat(b) },
		"meminfo":      func(b *bytes.Buffer) error { return s.WriteMeminfo(b) },
	} {
		var b bytes.Buffer
		require.NoError(t, write(&b))
		testutil.Golden(t, name, b.Bytes())
	}
}

// TestNumaStatistics runs a task on node 0 of a two-node machine until its
// node's zone falls to the min watermark and the zonelist moves on to node
// 1: the remote zone counts numa_miss and numa_other, the preferred zone
// numa_foreign, and local allocations count numa_hit and numa_local.
//
// Reference: mm/page_alloc.c:zone_statistics().
func TestNumaStatistics(t *testing.T) {
	cfg := mmsim.DefaultConfig()
	cfg.Nodes = []mmsim.NodeConfig{
		{CPUs: []int{0}, Zones: []mmsim.ZoneConfig{{Type: gfp.ZoneDMA32, StartPFN: 4096, Spanned: 8192, Present: 8192, Managed: 8192}}},
		{CPUs: []int{1}, Zones: []mmsim.ZoneConfig{{Type: gfp.ZoneNormal, StartPFN: 1 << 20, Spanned: 16384, Present: 16384, Managed: 16384}}},
	}
	s := newSystem(t, cfg)
	tk := s.NewTask("node0")
	require.Equal(t, 0, tk.CPU())
	local := s.Nodes()[0].Zone(gfp.ZoneDMA32)
	remote := s.Nodes()[1].Zone(gfp.ZoneNormal)
	n := 0
	for {
		p, err := s.AllocPages(tk, gfp.Kernel, 4) // order 4: no pcp batches blur the count
		require.NoError(t, err)
		if s.ZoneOf(p).Node() == remote.Node() {
			break
		}
		n++
	}
	require.Equal(t, int64(n), local.NumaEvent(zone.NumaHit))
	require.Equal(t, int64(n), local.NumaEvent(zone.NumaLocal))
	require.Equal(t, int64(1), local.NumaEvent(zone.NumaForeign))
	require.Equal(t, int64(1), remote.NumaEvent(zone.NumaMiss))
	require.Equal(t, int64(1), remote.NumaEvent(zone.NumaOther))
	require.Zero(t, remote.NumaEvent(zone.NumaHit))
}

// TestFreeBatchedEvents frees a batch of order-0 pages: the kernel's
// free_unref_folios fires mm_page_free for every page first, then
// mm_page_free_batched (whose format prints order=0) for each.
//
// Reference: mm/page_alloc.c:free_unref_folios(), include/trace/events/kmem.h.
func TestFreeBatchedEvents(t *testing.T) {
	s := newSystem(t, mib256())
	tk := s.NewTask("release")
	pages := make([]zone.Page, 4)
	n, err := s.AllocPagesBulk(tk, gfp.Kernel, pages)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	var rec recorder
	s.Trace(rec.add)
	require.NoError(t, s.FreePagesBatched(tk, pages))
	evs := rec.take()
	require.Len(t, evs, 8)
	for i, e := range evs {
		want := zone.EvPageFree
		if i >= 4 {
			want = zone.EvPageFreeBatched
		}
		require.Equal(t, want, e.Kind, "event %d", i)
		require.Equal(t, pages[i%4].PFN(), e.PFN)
	}
	require.True(t, strings.HasSuffix(evs[4].String(), "kmem:mm_page_free_batched: page=0x"+
		strings.TrimPrefix(pages[0].String(), "pfn=0x")+" "+pages[0].String()+" order=0"))
	require.ErrorIs(t, s.FreePagesBatched(tk, pages[:1]), mmsim.ErrBug, "a batch with a page already free is refused whole")
}
