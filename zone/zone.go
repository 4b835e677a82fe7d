package zone

import (
	"sync"
	"sync/atomic"

	"github.com/mmsim/mmsim/gfp"
)

// Node is a NUMA node: its zones and the CPUs that belong to it.
//
// Kernel: include/linux/mmzone.h:struct pglist_data (pg_data_t).
type Node struct {
	id    int
	alloc *Allocator
	zones [gfp.MaxNrZones]*Zone // every zone type, populated or not
	cpus  []int                 // the simulated CPUs of the node
	// zonelists are the node's fallback and no-fallback zonelists,
	// highest zone first. Invariant: immutable after boot.
	zonelists [2][]*Zone
	// preferred is, per zonelist and highest zone, the index of the first
	// zone of the zonelist a request may use, or -1: first_zones_zonelist
	// precomputed. Invariant: immutable after boot.
	preferred [2][gfp.MaxNrZones]int
	// nofragment is, per zonelist and highest zone, whether the fast path
	// adds ALLOC_NOFRAGMENT (alloc_flags_nofragment precomputed).
	// Invariant: immutable after boot.
	nofragment [2][gfp.MaxNrZones]bool
	// kswapd records the wakeups the allocator asks of the node's kswapd.
	kswapd kswapdState
	// counters are the node's vm counters (node_stat_item).
	counters nodeCounters
}

// ID returns the node id. Kernel: include/linux/mmzone.h:pglist_data.node_id.
func (n *Node) ID() int { return n.id }

// Zone returns the node's zone of the given type (never nil: empty zones
// exist, with no pages, as in the kernel).
func (n *Node) Zone(t gfp.ZoneType) *Zone { return n.zones[t] }

// Zone is one zone of a node: its buddy free areas, pageblock types,
// watermarks, reserves and per-cpu page lists.
//
// Lock order: a pcp lock (Zone.pcp[cpu].mu) may be held when taking the
// zone lock (Zone.mu), never the other way round, as in the kernel.
//
// Kernel: include/linux/mmzone.h:struct zone.
type Zone struct {
	node *Node
	typ  gfp.ZoneType

	// The zone's span and sizes. Invariant: immutable after boot.
	startPFN PFN
	spanned  int64 // pages in [startPFN, startPFN+spanned), holes included
	present  int64 // pages that exist
	managed  int64 // pages the buddy allocator manages
	// presentRuns are the runs of present pages, managedRuns the runs of
	// managed ones (the top managed pages of the present runs: the pages
	// below are reserved at boot), both in pfn order. firstManaged is
	// the first managed pfn, presentEnd the end of the last present run.
	presentRuns, managedRuns []pfnRange
	firstManaged, presentEnd PFN

	// mu is the zone lock: it protects the free areas, the memmap, the
	// pageblock types and the highatomic counts.
	mu sync.Mutex

	// free holds the free lists, per order and migratetype.
	// Protected by mu.
	free [NrPageOrders][nrMigrate]freeList
	// nrFree is the number of free blocks per order (free_area.nr_free).
	// Protected by mu.
	nrFree [NrPageOrders]int64
	// nonEmpty has bit order*MigrateTypes+migratetype set (55 bits) while that free list is not
	// empty. Written under mu when a list's emptiness changes; atomic so
	// that the watermark check reads it without the lock, as the kernel
	// reads free_area_empty() without it.
	nonEmpty atomic.Uint64
	// mm is the per-page state. Protected by mu.
	mm memmap
	// pageblockMT holds each pageblock's migratetype. Written under mu;
	// atomic because the free path reads it without the lock, as the
	// kernel's get_pfnblock_migratetype does.
	pageblockMT []atomic.Int32
	// movable counts, per pageblock, the pages allocated with
	// __GFP_MOVABLE (mmsim's PageLRU). Atomic: allocation and free paths
	// on different CPUs update it under different pcp locks.
	movable []atomic.Int32

	// freePages is NR_FREE_PAGES: free pages on the buddy lists, pcp pages
	// excluded, isolated ones too. Written under mu; atomic so that the
	// watermark fast path reads it without the lock, as the kernel's
	// zone_page_state does.
	freePages atomic.Int64
	// freePagesBlocks is NR_FREE_PAGES_BLOCKS: free pages in blocks of at
	// least pageblock order. Protected by mu.
	freePagesBlocks int64
	// freeHighatomic is nr_free_highatomic: free pages on HIGHATOMIC
	// lists. Written under mu, read locklessly by the watermark check.
	freeHighatomic atomic.Int64
	// reservedHighatomic is nr_reserved_highatomic. Protected by mu.
	reservedHighatomic int64
	// pendingWarn holds a WARN raised under mu, reported after the unlock.
	// Protected by mu.
	pendingWarn string

	// wmark holds the watermarks (min, low, high, promo) and boost the
	// watermark boost. Written under mu (boost) or at setup; read
	// locklessly on the fast path.
	wmark [nrWmarks]atomic.Int64
	boost atomic.Int64
	// lowmemReserve is the protection against allocations whose highest
	// zone is the index. Invariant: immutable between sysctl writes.
	lowmemReserve [gfp.MaxNrZones]int64

	// flags holds ZONE_BOOSTED_WATERMARK and ZONE_BELOW_HIGH. Atomic, as
	// the kernel's zone->flags bit operations are.
	flags atomic.Uint32

	// pcp holds the per-cpu page lists, one set per simulated CPU.
	pcp []pcpLists
	// pcpBatch, pcpHighMin and pcpHighMax are the zone's pcp sizes.
	// Invariant: immutable between sysctl writes.
	pcpBatch, pcpHighMin, pcpHighMax int

	// stats are the zone's vm events counted under mu.
	stats zoneEvents
	// counters are the zone counters layers above zone keep.
	counters zoneCounters
	// numaRemote counts NUMA_MISS, NUMA_FOREIGN and NUMA_OTHER, which
	// only allocations served away from the preferred or the CPU's node
	// produce. Atomic: they are counted outside the zone's locks.
	numaRemote [nrNumaStats]atomic.Int64
	// trace is the allocator's tracer.
	trace *tracer
	// noRuns makes bulk refills take their blocks one call at a time, as
	// when something records or traces them: tests compare the two.
	noRuns bool
	// nrRuns counts the runs bulk refills took, for the tests.
	nrRuns int64
	// ops counts operations, for the invariants build's sampled checks.
	ops atomic.Int64
}

// zoneEvents are the vm events counted on the zone-lock paths (the pcp path
// counts per CPU, in pcpLists.ev). Protected by Zone.mu.
type zoneEvents struct {
	pgalloc, pgfree, numaHit, numaLocal int64
}

// Zone flags.
//
// Kernel: include/linux/mmzone.h:enum zone_flags.
const (
	zoneBoostedWatermark uint32 = 1 << iota
	zoneReclaimActive           // set by reclaim while it scans the zone
	zoneBelowHigh
)

// Type returns the zone type. Kernel: include/linux/mmzone.h:zone_idx().
func (z *Zone) Type() gfp.ZoneType { return z.typ }

// Node returns the zone's node. Kernel: include/linux/mmzone.h:zone->zone_pgdat.
func (z *Zone) Node() *Node { return z.node }

// Name returns the zone's name, as /proc prints it.
func (z *Zone) Name() string { return z.typ.String() }

// StartPFN, Spanned, Present and Managed return the zone's span and sizes.
//
// Kernel: include/linux/mmzone.h:zone_start_pfn, spanned_pages,
// present_pages, zone_managed_pages().
func (z *Zone) StartPFN() PFN   { return z.startPFN }
func (z *Zone) Spanned() int64  { return z.spanned }
func (z *Zone) Present() int64  { return z.present }
func (z *Zone) Managed() int64  { return z.managed }
func (z *Zone) populated() bool { return z.present > 0 }

// FreePages returns NR_FREE_PAGES: pages on the buddy free lists.
//
// Kernel: include/linux/vmstat.h:zone_page_state(zone, NR_FREE_PAGES).
func (z *Zone) FreePages() int64 { return z.freePages.Load() }

// Watermark returns watermark i (WmarkMin…WmarkPromo) without the boost.
//
// Kernel: include/linux/mmzone.h:zone->_watermark[].
func (z *Zone) Watermark(i int) int64 { return z.wmark[i].Load() }

// Boost returns the watermark boost.
// Kernel: include/linux/mmzone.h:zone->watermark_boost.
func (z *Zone) Boost() int64 { return z.boost.Load() }

// wmarkPages is wmark_pages(): watermark i plus the boost.
//
// Kernel: include/linux/mmzone.h:wmark_pages().
func (z *Zone) wmarkPages(i int) int64 { return z.wmark[i].Load() + z.boost.Load() }

// LowmemReserve returns the zone's protection against allocations whose
// highest zone is t. Kernel: include/linux/mmzone.h:zone->lowmem_reserve[].
func (z *Zone) LowmemReserve(t gfp.ZoneType) int64 { return z.lowmemReserve[t] }

// presentPage reports whether pfn is one of the zone's present pages.
func (z *Zone) presentPage(pfn PFN) bool { return inRun(z.presentRuns, pfn, pfn+1) }

// managedBlock reports whether the block of 1<<order pages at pfn lies in
// one run of the zone's managed pages.
func (z *Zone) managedBlock(pfn PFN, order Order) bool {
	return inRun(z.managedRuns, pfn, pfn+1<<order)
}

// inRun reports whether [start, end) lies wholly in one of runs.
func inRun(runs []pfnRange, start, end PFN) bool {
	for _, r := range runs {
		if start >= r.start && end <= r.end {
			return true
		}
	}
	return false
}

// spans reports whether pfn lies in the zone's span.
//
// Kernel: include/linux/mmzone.h:zone_spans_pfn().
func (z *Zone) spans(pfn PFN) bool {
	return pfn >= z.startPFN && pfn < z.startPFN+PFN(z.spanned)
}

// pageblockIndex returns the index of pfn's pageblock in pageblockMT.
func (z *Zone) pageblockIndex(pfn PFN) int {
	return int((pfn - z.mm.base) >> PageblockOrder)
}

// blockMT returns the migratetype of pfn's pageblock.
//
// Kernel: mm/page_alloc.c:get_pfnblock_migratetype().
func (z *Zone) blockMT(pfn PFN) gfp.Migratetype {
	return gfp.Migratetype(z.pageblockMT[z.pageblockIndex(pfn)].Load())
}

// setBlockMT sets the migratetype of pfn's pageblock; without mobility
// grouping every pcp type becomes UNMOVABLE.
//
// Kernel: mm/page_alloc.c:set_pageblock_migratetype().
func (z *Zone) setBlockMT(pfn PFN, mt gfp.Migratetype) {
	if z.node.alloc.mobilityDisabled && int(mt) < gfp.MigratePCPTypes {
		mt = mtUnmovable
	}
	z.pageblockMT[z.pageblockIndex(pfn)].Store(int32(mt))
}

// CPUs returns the node's simulated CPUs.
func (n *Node) CPUs() []int { return append([]int(nil), n.cpus...) }

// ReduceBoost lowers the watermark boost by at most by pages, as kswapd
// does for the boost it saw when a boosted run ends.
//
// Kernel: mm/vmscan.c:balance_pgdat() (the out: label).
func (z *Zone) ReduceBoost(by int64) {
	z.mu.Lock()
	b := z.boost.Load()
	z.boost.Store(b - min(b, by))
	z.mu.Unlock()
}
