package zone

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/internal/invariants"
	"github.com/mmsim/mmsim/internal/sim"
	"github.com/mmsim/mmsim/memalloc"
)

// Allocator is the page allocator of one simulated machine: its nodes and
// zones, and the entry points __alloc_pages and __free_pages.
//
// Every method is safe for concurrent use by many goroutines, each with its
// own Task.
//
// Kernel: mm/page_alloc.c.
type Allocator struct {
	sysctl  Sysctl
	nodes   []*Node
	cpuNode []*Node // the node of each simulated CPU
	// routes is the fast path's table of where a request goes, per CPU,
	// zonelist and zone-modifier bits (gfp & GFP_ZONEMASK). Invariant:
	// immutable after boot; one entry per CPU, as cpuNode.
	routes [][32]pcpRoute
	// kmem is memcg kmem accounting of __GFP_ACCOUNT blocks (kmem.go).
	kmem kmemState

	// allowedMask is gfp_allowed_mask. Invariant: __GFP_BITS_MASK after
	// boot (suspend would clear IO and FS; mmsim does not suspend).
	allowedMask gfp.Mask
	// mobilityDisabled is page_group_by_mobility_disabled: too little
	// memory to group pages by mobility. Invariant: immutable.
	mobilityDisabled bool
	// totalreservePages is totalreserve_pages.
	totalreservePages atomic.Int64

	trace *tracer
	// watch says what watches allocations (watchHooks, watchTrace,
	// watchExplain): anything set keeps them off the fast path's shortcut,
	// which then costs one load. Atomic: every allocation reads it; the
	// rare writers (New, SetHooks, Subscribe, Explain) set and clear bits.
	watch atomic.Uint32
	// explaining is the recorder of the Explain in progress, nil when none
	// is. Atomic: allocations off the shortcut read it while Explain sets
	// it; written only with explainMu held.
	explaining atomic.Pointer[recorder]
	opts       Options
	once       bug.Once
	// nopage rate-limits warn_alloc: one report per 10 s of simulated
	// time, shared by every caller.
	nopage sim.Ratelimit
	// events are the global vm events other than those the pcp and
	// zone-lock paths count.
	events [nrVMEvents]atomic.Int64
	// oomLock is oom_lock: one task at a time runs the OOM killer.
	oomLock sync.Mutex
	// stallWarnNext is when the next allocation stall warning may print
	// (simulated ns): one per 10 s for the whole machine. Atomic: every
	// stalling task checks it.
	stallWarnNext atomic.Int64
	// zoneMap finds a pfn's zone: one entry per MAX_ORDER block of the
	// physical address space up to the last zone's end, holding the zone
	// (nil for a hole, or for a block two zones share, which falls back to
	// the scan) and, one load nearer for the free fast path, the zone's
	// pcp lists and the block's owner bytes and pageblock migratetypes
	// (zoneMapEntry). Invariant: immutable after boot.
	zoneMap []zoneMapEntry
	// directMap is the x86-64 direct map of the present memory. Invariant:
	// set by New, never replaced; it locks itself.
	directMap *DirectMap
	// explainMu serializes Explain calls: one explanation at a time.
	explainMu sync.Mutex
}

// Hooks is what later layers hang on every allocation and free: fault
// injection, lockdep's fs_reclaim annotation, page_owner, per-callsite
// accounting. A nil Hooks costs the fast path one comparison.
//
// Kernel: mm/page_alloc.c:prepare_alloc_pages() (might_alloc,
// should_fail_alloc_page), post_alloc_hook(), free_pages_prepare().
type Hooks interface {
	// MightAlloc runs at the entry with the final mask (scope applied),
	// as might_alloc() and the fs_reclaim annotation do.
	MightAlloc(t *memalloc.Task, mask gfp.Mask)
	// ShouldFailAlloc lets fault injection fail the request outright, as
	// should_fail_alloc_page() does (no slow path, no warning).
	ShouldFailAlloc(t *memalloc.Task, mask gfp.Mask, order Order) bool
	// PostAlloc runs on every page handed out, as post_alloc_hook() does.
	PostAlloc(t *memalloc.Task, p Page, order Order, mask gfp.Mask)
	// FreePrepare runs on every page freed, before it goes back, as
	// free_pages_prepare() does.
	FreePrepare(t *memalloc.Task, p Page, order Order)
}

// FSReclaimHooks is what a Hooks may also implement to see reclaim run as
// lockdep sees it: the fs_reclaim pseudo-lock, held across direct reclaim
// of a request that may enter the filesystem, and across kswapd's
// balancing. Every lock a shrinker takes meanwhile depends on it.
//
// Kernel: mm/page_alloc.c:fs_reclaim_acquire(), __fs_reclaim_acquire().
type FSReclaimHooks interface {
	FSReclaimAcquire(t *memalloc.Task)
	FSReclaimRelease(t *memalloc.Task)
}

// Options plugs the layers above zone into the allocator. Every field may
// be nil.
type Options struct {
	// Owner is the identity of the tasks this allocator serves, those
	// created with memalloc.WithOwner(Owner): AllocPages, FreePages,
	// AllocPagesBulk, FreePagesBatched and Explain refuse any other task
	// with ErrInvalid. Nil serves the tasks created without an owner.
	Owner *memalloc.Owner
	Hooks Hooks
	// SlowPath provides reclaim, compaction and the OOM killer.
	SlowPath SlowPath
	// Report receives WARN, BUG and warn_alloc reports.
	Report bug.Sink
	// Now returns the simulated time in nanoseconds.
	Now func() int64
	// Sleep lets d nanoseconds of simulated time pass for a task that
	// waits (a one-tick sleep): the daemons run meanwhile.
	Sleep func(d int64)
	// MemInfo supplies what the Mem-Info block of warn_alloc's report
	// needs from above the allocator; nil leaves the block out.
	MemInfo func() ShowMemExtra
	// Advance charges d ns of modelled work to the simulated clock.
	Advance func(d int64)
	// RetryCost is the modelled cost, in ns, of one round of the slow
	// path's retry loop beyond what reclaim charges itself.
	RetryCost int64
	// ZeroPageCost is the modelled cost, in ns, of clearing one page for
	// a __GFP_ZERO request (clear_highpage in post_alloc_hook); 0 charges
	// nothing.
	ZeroPageCost int64
	// StallLimit is how long, in simulated ns, a request may loop in the
	// slow path before it fails with ErrDeadlock instead of retrying for
	// ever as the kernel would; 0 means no limit.
	StallLimit int64
}

// New boots an allocator for the machine cfg describes: it builds the nodes,
// zones and zonelists, frees every managed page to the buddy lists, and sets
// up watermarks, lowmem reserves and pcp sizes as the kernel's boot does.
//
// Kernel: mm/mm_init.c:free_area_init(), mm/page_alloc.c:build_all_zonelists(),
// init_per_zone_wmark_min(), mm/memblock.c:memblock_free_all().
func New(cfg Config, opts Options) (*Allocator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Allocator{
		sysctl:      cfg.Sysctl,
		allowedMask: gfp.BitsMask,
		opts:        opts,
		trace:       &tracer{now: opts.Now},
		cpuNode:     make([]*Node, cfg.NrCPUs),
		// DEFINE_RATELIMIT_STATE(nopage_rs, 10*HZ, 1)
		nopage: sim.Ratelimit{Interval: 10 * sim.HZ * sim.Jiffy, Burst: 1},
	}
	for ni, nc := range cfg.Nodes {
		n := &Node{id: ni, alloc: a, cpus: append([]int(nil), nc.CPUs...)}
		for _, cpu := range nc.CPUs {
			a.cpuNode[cpu] = n
		}
		for t := range gfp.MaxNrZones {
			n.zones[t] = &Zone{node: n, typ: gfp.ZoneType(t), trace: a.trace}
		}
		for _, zc := range nc.Zones {
			z := n.zones[zc.Type]
			z.startPFN, z.spanned, z.present, z.managed = zc.StartPFN, zc.Spanned, zc.Present, zc.Managed
			z.presentRuns = presentRuns(zc)
			z.managedRuns = managedRuns(z.presentRuns, zc.Managed)
			z.presentEnd = zc.StartPFN
			if n := len(z.presentRuns); n > 0 {
				z.presentEnd = z.presentRuns[n-1].end
			}
			z.firstManaged = z.presentEnd
			if len(z.managedRuns) > 0 {
				z.firstManaged = z.managedRuns[0].start
			}
		}
		a.nodes = append(a.nodes, n)
	}
	a.buildZonelists()
	a.buildZoneMap()
	a.directMap = newDirectMap(a)
	for _, n := range a.nodes {
		for _, z := range n.zones {
			z.pcp = make([]pcpLists, cfg.NrCPUs)
			for cpu := range z.pcp {
				z.pcp[cpu].local = a.cpuNode[cpu] == n
			}
			if z.populated() {
				z.boot()
			}
		}
	}
	a.buildRoutes()
	// Without enough memory to group pages by mobility, the kernel stops
	// trying to. Kernel: mm/page_alloc.c:build_all_zonelists().
	var movablePages int64
	for _, z := range a.nodes[0].zonelists[gfp.ZonelistFallback] {
		movablePages += z.managed
	}
	a.mobilityDisabled = movablePages < PageblockNrPages*int64(gfp.MigrateTypes)
	if a.sysctl.MinFreeKbytes == 0 {
		var lowmem int64
		for _, z := range a.nodes[0].zonelists[gfp.ZonelistFallback] {
			if z.typ <= gfp.ZoneNormal {
				lowmem += z.managed
			}
		}
		a.sysctl.MinFreeKbytes = minFreeKbytes(lowmem)
	}
	if opts.Hooks != nil {
		a.watch.Or(watchHooks)
	}
	a.setKswapdWatch()
	a.setupWmarks()
	a.setupLowmemReserve()
	a.forEachZone(func(z *Zone) { z.setPagesetHighAndBatch(a.sysctl.PercpuPagelistHighFraction) })
	return a, nil
}

// buildZonelists gives every node its zonelists: all populated zones of all
// nodes, the node's own first, highest zone first (numa_zonelist_order
// "Node"); and the node's own zones only, for __GFP_THISNODE.
//
// Kernel: mm/page_alloc.c:build_zonelists(), build_zonerefs_node().
func (a *Allocator) buildZonelists() {
	own := func(n *Node) []*Zone {
		var zs []*Zone
		for t := gfp.MaxNrZones - 1; t >= 0; t-- {
			if z := n.zones[t]; z.managed > 0 {
				zs = append(zs, z)
			}
		}
		return zs
	}
	for _, n := range a.nodes {
		fallback := own(n)
		for _, m := range a.nodes {
			if m != n {
				fallback = append(fallback, own(m)...)
			}
		}
		n.zonelists[gfp.ZonelistFallback] = fallback
		n.zonelists[gfp.ZonelistNoFallback] = own(n)
		for zl, list := range n.zonelists {
			for hz := range gfp.MaxNrZones {
				n.preferred[zl][hz] = -1
				for i, z := range list {
					if z.typ <= gfp.ZoneType(hz) {
						n.preferred[zl][hz] = i
						// alloc_flags_nofragment: the preferred zone
						// is Normal, and DMA32 can take fallbacks.
						n.nofragment[zl][hz] = z.typ == gfp.ZoneNormal &&
							(len(a.nodes) == 1 || z.node.zones[gfp.ZoneDMA32].populated())
						break
					}
				}
			}
		}
	}
}

// pcpRoute is where the allocation fast path sends a request from one CPU
// with one zonelist and one set of zone-modifier bits: the preferred zone
// and its pcp lists for the CPU. gfp_zone, first_zones_zonelist and
// this_cpu_ptr(zone->per_cpu_pageset) precomputed, so that the fast path
// reaches the pcp lock in two loads.
type pcpRoute struct {
	z *Zone // nil for a combination gfp_zone refuses, or when no zone qualifies
	p *pcpLists
}

// routeIndex is the index in a CPU's routes of a request with the mask.
func routeIndex(mask gfp.Mask) int {
	return (int(mask.Zonelist())<<4 | int(mask&gfp.ZoneMask)) & 31
}

// buildRoutes fills Allocator.routes and the zoneMap's pcp lists, once
// the zonelists, the zone map and the pcp lists exist.
func (a *Allocator) buildRoutes() {
	for b := range a.zoneMap {
		e := &a.zoneMap[b]
		if e.z == nil {
			continue
		}
		off := int(PFN(b)<<MaxPageOrder - e.z.mm.base)
		i := e.z.pageblockIndex(PFN(b) << MaxPageOrder)
		e.pcp = e.z.pcp
		e.owner = (*[maxOrderNrPages]uint8)(e.z.mm.owner[off : off+maxOrderNrPages])
		e.mt = (*[maxOrderNrPages / PageblockNrPages]atomic.Int32)(e.z.pageblockMT[i : i+maxOrderNrPages/PageblockNrPages])
	}
	a.routes = make([][32]pcpRoute, len(a.cpuNode))
	for cpu, n := range a.cpuNode {
		for zl, list := range n.zonelists {
			for zb := range gfp.Mask(16) {
				if i := n.preferred[zl][zoneOfBits[zb]]; !zoneBad[zb] && i >= 0 {
					z := list[i]
					mask := zb
					if gfp.Zonelist(zl) == gfp.ZonelistNoFallback {
						mask |= gfp.ThisNode
					}
					a.routes[cpu][routeIndex(mask)] = pcpRoute{z: z, p: &z.pcp[cpu]}
				}
			}
		}
	}
}

// boot sets up a populated zone's memmap and pageblocks, and frees its
// managed pages to the buddy lists in the largest aligned blocks they form.
//
// Kernel: mm/mm_init.c:memmap_init_range() (pageblocks start MOVABLE),
// mm/page_alloc.c:__free_pages_core().
func (z *Zone) boot() {
	z.mm = newMemmap(z.startPFN, z.spanned)
	nblocks := (int64(z.startPFN-z.mm.base) + z.spanned + PageblockNrPages - 1) / PageblockNrPages
	z.pageblockMT = make([]atomic.Int32, nblocks)
	z.movable = make([]atomic.Int32, nblocks)
	for i := range z.pageblockMT {
		z.pageblockMT[i].Store(int32(mtMovable))
	}
	for o := range z.free {
		for mt := range z.free[o] {
			z.free[o][mt].init()
		}
	}
	z.mu.Lock()
	for _, r := range z.managedRuns {
		for pfn := r.start; pfn < r.end; {
			order := MaxPageOrder
			for order > 0 && (pfn&(1<<order-1) != 0 || pfn+1<<order > r.end) {
				order--
			}
			z.freeOnePage(pfn, order, z.blockMT(pfn), true)
			pfn += 1 << order
		}
	}
	z.mu.Unlock()
}

func (a *Allocator) forEachZone(f func(*Zone)) {
	for _, n := range a.nodes {
		for _, z := range n.zones {
			f(z)
		}
	}
}

// Nodes returns the machine's nodes.
func (a *Allocator) Nodes() []*Node { return a.nodes }

// Sysctl returns the sysctls in force (MinFreeKbytes as computed at boot).
func (a *Allocator) Sysctl() Sysctl { return a.sysctl }

// TotalreservePages returns totalreserve_pages.
//
// Kernel: mm/page_alloc.c:totalreserve_pages.
func (a *Allocator) TotalreservePages() int64 { return a.totalreservePages.Load() }

// buildZoneMap fills zoneMap.
func (a *Allocator) buildZoneMap() {
	var end PFN
	a.forEachZone(func(z *Zone) {
		if z.populated() {
			end = max(end, z.startPFN+PFN(z.spanned))
		}
	})
	a.zoneMap = make([]zoneMapEntry, (end+maxOrderNrPages-1)>>MaxPageOrder)
	shared := make([]bool, len(a.zoneMap))
	a.forEachZone(func(z *Zone) {
		if !z.populated() {
			return
		}
		for b := z.startPFN >> MaxPageOrder; b <= (z.startPFN+PFN(z.spanned)-1)>>MaxPageOrder; b++ {
			first, last := b<<MaxPageOrder, b<<MaxPageOrder+maxOrderNrPages-1
			if e := a.zoneMap[b].z; e != nil && e != z || !z.spans(first) || !z.spans(last) {
				shared[b] = true // the block is not all this zone's
			}
			a.zoneMap[b].z = z
		}
	})
	for b, sh := range shared {
		if sh {
			a.zoneMap[b].z = nil
		}
	}
}

// zoneMapEntry is the zone of one MAX_ORDER block and, for the free fast
// path, what the zone keeps for the block, each one load from the entry:
// the zone's pcp lists, the block's owner bytes, its two pageblocks'
// migratetypes. The kernel reaches the same from struct page: its zone
// bits and its pageblock flags. Set once the zone has booted.
type zoneMapEntry struct {
	z     *Zone
	pcp   []pcpLists
	owner *[maxOrderNrPages]uint8
	mt    *[maxOrderNrPages / PageblockNrPages]atomic.Int32
}

// ZoneOf returns the zone whose span holds pfn, or nil.
//
// Kernel: include/linux/mm.h:page_zone().
func (a *Allocator) ZoneOf(pfn PFN) *Zone {
	if b := pfn >> MaxPageOrder; b < PFN(len(a.zoneMap)) {
		if z := a.zoneMap[b].z; z != nil {
			return z
		}
	}
	return a.zoneOfSlow(pfn)
}

// zoneOfSlow scans the zones, for pfns the zone map leaves open.
func (a *Allocator) zoneOfSlow(pfn PFN) *Zone {
	for _, n := range a.nodes {
		for _, z := range n.zones {
			if z.populated() && z.spans(pfn) {
				return z
			}
		}
	}
	return nil
}

// Subscribe registers f to receive every tracepoint event from now on. f
// runs on the goroutine that hit the tracepoint, sometimes with allocator
// locks held: it must be quick and must not call back into the allocator.
func (a *Allocator) Subscribe(f func(Event)) {
	a.trace.subscribe(f)
	a.watch.Or(watchTrace)
}

// The bits of Allocator.watch.
const (
	watchHooks   uint32 = 1 << iota // Options.Hooks is set
	watchTrace                      // a tracepoint subscriber listens
	watchExplain                    // an Explain is recording
	// watchKswapdNodes: several nodes and a reclaimer, so that
	// get_page_from_freelist skips the nodes whose kswapd is running,
	// which the fast path does not ask (setKswapdWatch).
	watchKswapdNodes
)

// skipsKswapdNodes reports whether get_page_from_freelist leaves the nodes
// whose kswapd is running for a second pass: only with several nodes, and
// a reclaimer to ask.
func (a *Allocator) skipsKswapdNodes() bool {
	return len(a.nodes) > 1 && a.opts.SlowPath.Reclaim != nil
}

// setKswapdWatch sets watchKswapdNodes exactly when skipsKswapdNodes.
func (a *Allocator) setKswapdWatch() {
	if a.skipsKswapdNodes() {
		a.watch.Or(watchKswapdNodes)
	} else {
		a.watch.And(^watchKswapdNodes)
	}
}

// allocContext is what one allocation carries through the allocator.
//
// Kernel: mm/internal.h:struct alloc_context.
type allocContext struct {
	t *memalloc.Task
	// rec records the allocation for Explain; nil for every allocation
	// but the explained one, and every recording site tests it first.
	rec       *recorder
	zonelist  []*Zone
	highest   gfp.ZoneType
	mt        gfp.Migratetype
	preferred int // index of the first usable zone in zonelist, -1 if none
	// nofragment says whether the fast path adds ALLOC_NOFRAGMENT.
	// Kernel: mm/page_alloc.c:alloc_flags_nofragment().
	nofragment bool
}

// prepare fills the context for a mask: highest zone, zonelist,
// migratetype, preferred zone.
//
// Kernel: mm/page_alloc.c:prepare_alloc_pages(), first_zones_zonelist().
func (a *Allocator) prepare(ac *allocContext, mask gfp.Mask) error {
	zb := mask & gfp.ZoneMask
	if zoneBad[zb] {
		_, err := mask.Zone()
		return err
	}
	hz := zoneOfBits[zb]
	node := a.cpuNode[ac.t.CPU()]
	zl := mask.Zonelist()
	ac.zonelist = node.zonelists[zl]
	ac.highest = hz
	ac.mt = mask.Migratetype()
	if a.mobilityDisabled {
		ac.mt = mtUnmovable
	}
	ac.preferred = node.preferred[zl][hz]
	ac.nofragment = node.nofragment[zl][hz]
	return nil
}

// zoneOfBits and zoneBad are gfp_zone's answers for the 16 combinations of
// zone modifiers, looked up once so that the fast path indexes a table.
var zoneOfBits, zoneBad = func() (zt [16]gfp.ZoneType, bad [16]bool) {
	for b := range gfp.Mask(16) {
		z, err := b.Zone()
		zt[b], bad[b] = z, err != nil
	}
	return
}()

// Zonelist returns the zonelist of t's node for mask: node_zonelist(
// numa_node_id(), mask).
//
// Kernel: include/linux/gfp.h:node_zonelist().
func (a *Allocator) Zonelist(t *memalloc.Task, mask gfp.Mask) []*Zone {
	cpu := 0
	if t != nil && t.CPU() >= 0 && t.CPU() < len(a.cpuNode) {
		cpu = t.CPU()
	}
	return a.cpuNode[cpu].zonelists[mask.Zonelist()]
}

// Owner returns Options.Owner, the identity a task needs for this
// allocator to serve it: the layers above give it to the kernel threads
// they create (memalloc.WithOwner).
func (a *Allocator) Owner() *memalloc.Owner { return a.opts.Owner }

// NrCPUs returns the number of simulated CPUs.
func (a *Allocator) NrCPUs() int { return len(a.cpuNode) }

// AllocPages allocates a block of 1<<order pages for task t: __alloc_pages.
//
// In the kernel's order: an order above MAX_PAGE_ORDER WARNs (unless
// __GFP_NOWARN) and fails, even with __GFP_NOFAIL; the mask is cut to
// gfp_allowed_mask and the task's scopes are applied; zone, zonelist and
// migratetype follow from it; the fast path tries the zonelist at the low
// watermark; the slow path follows. A bad zone combination is a BUG: the
// error wraps ErrBug and gfp.ErrBadZone, and nothing changes. A failure
// returns an *AllocError wrapping ErrNoMemory.
//
// The common case is written out here, taken whole or not at all: nothing
// watches (no hooks, no tracing, no Explain, no kswapd to skip on another
// node: a.watch), no gfp scope, no kmem charge; order 0 (the order-0
// shortcut of zone_watermark_fast is the whole check), whose preferred
// zone is above its high watermark and not boosted, whose pcp lock is free
// (pcp_spin_trylock) and whose pcp list has a block. That is exactly what get_page_from_freelist and
// rmqueue_pcplist do for the first zone when those hold; in every other
// case nothing has changed when allocSlow takes the request. It is one
// function, as the kernel inlines its fast path: every call costs on the
// path most requests take. The other pcp orders, 1 to
// PAGE_ALLOC_COSTLY_ORDER, have the same common case out of line
// (allocPCPOrder), so that order 0 pays nothing for them.
//
// Kernel: mm/page_alloc.c:__alloc_frozen_pages_noprof(),
// get_page_from_freelist(), rmqueue_pcplist().
func (a *Allocator) AllocPages(t *memalloc.Task, mask gfp.Mask, order Order) (Page, error) {
	// Every way off the common case is a call whose result is returned,
	// so that nothing on the path is live across a call and the compiler
	// keeps it in registers.
	if t == nil || t.Owner() != a.opts.Owner || uint(t.CPU()) >= uint(len(a.routes)) || order != 0 {
		return a.allocEntrySlow(t, mask, order)
	}
	if a.watch.Load() != 0 || t.InGFPScope() {
		return a.allocEntrySlow(t, mask, order)
	}
	if invariants.Enabled {
		t.GFPContext(mask) // its check that one goroutine at a time uses t
	}
	req := mask
	mask &= a.allowedMask // GFPContext: no scope
	if mask&gfp.Account != 0 && a.kmem.charger != nil || mask.MobilityConflict() {
		return a.allocSlow(t, req, mask, order)
	}
	r := &a.routes[t.CPU()][routeIndex(mask)]
	z := r.z
	// The fast path's alloc flags (ALLOC_WMARK_LOW, KSWAPD, NOFRAGMENT)
	// hold no reserve bit: 0 gives the same watermark answer.
	if z == nil || z.flags.Load()&(zoneBelowHigh|zoneBoostedWatermark) != 0 {
		return a.allocSlow(t, req, mask, order)
	}
	if hz := zoneOfBits[mask&gfp.ZoneMask]; !z.watermarkFast0(0, z.wmarkPages(WmarkHigh), hz, 0) {
		return a.allocSlow(t, req, mask, order)
	}
	mt := mask.Migratetype()
	if a.mobilityDisabled {
		mt = mtUnmovable
	}
	p := r.p
	// pcp_spin_trylock. When another task holds the lock, the general
	// path waits for it, where the kernel would go to the buddy lists
	// (zone/doc.go).
	if !p.mu.TryLock() {
		return a.allocSlow(t, req, mask, order)
	}
	l := &p.lists[mt] // order_to_pindex(mt, 0)
	if l.n == 0 {
		p.mu.Unlock()
		return a.allocSlow(t, req, mask, order)
	}
	p.freeCount >>= 1
	off := p.take(l, 0, true, p.local) // pcpTake: the preferred zone, a NUMA hit
	if mask&gfp.Movable != 0 {
		z.mm.setOwnerState(off, psAlloc|psMovable)
		z.countMovable(z.mm.pfnAt(off), 0, 1)
	} else {
		z.mm.setOwnerState(off, psAlloc)
	}
	pg := Page{pfn: z.mm.pfnAt(off)}
	p.mu.Unlock()
	if !p.local {
		z.numaRemote[NumaOther].Add(1) // zone_statistics: a CPU of another node
	}
	z.sometimes()
	if mask&gfp.Zero != 0 {
		a.clearPages(0)
	}
	return pg, nil
}

// allocEntrySlow is AllocPages for what its common case leaves: a request
// to refuse, an order above 0 (the pcp orders' own common case first),
// something watching, a task in a gfp scope.
//
// It calls allocSlow itself, not through a helper: page_owner records
// the Go stack of an allocation in the stack depot, and a frame more
// makes every stack longer, so that the depot's pools hold fewer
// (examples/nested-mask counts the stacks not saved).
func (a *Allocator) allocEntrySlow(t *memalloc.Task, mask gfp.Mask, order Order) (Page, error) {
	if t == nil || t.Owner() != a.opts.Owner || uint(t.CPU()) >= uint(len(a.cpuNode)) || uint(order) > uint(MaxPageOrder) {
		return Page{}, a.refuseRequest(t, mask, order)
	}
	if order > 0 && order <= CostlyOrder && a.watch.Load() == 0 && !t.InGFPScope() {
		if pg, ok := a.allocPCPOrder(t, mask, order); ok {
			return pg, nil
		}
	}
	return a.allocSlow(t, mask, t.GFPContext(mask&a.allowedMask), order)
}

// allocPCPOrder is AllocPages's common case for the pcp orders above 0,
// 1 to PAGE_ALLOC_COSTLY_ORDER, out of line so that the order-0 path most
// requests take carries none of it: the preferred zone above its high
// watermark, where above order 0 zone_watermark_fast asks the free lists
// too, and not boosted; its pcp lock free and the order's list holding a
// block. It reports false, having changed nothing, when any of that does
// not hold, and allocSlow takes the request (TestFastPaths runs it
// against the general path).
//
// Kernel: mm/page_alloc.c:get_page_from_freelist(), rmqueue_pcplist().
func (a *Allocator) allocPCPOrder(t *memalloc.Task, mask gfp.Mask, order Order) (Page, bool) {
	if invariants.Enabled {
		t.GFPContext(mask) // its check that one goroutine at a time uses t
	}
	mask &= a.allowedMask // GFPContext: no scope
	if uint(t.CPU()) >= uint(len(a.routes)) || mask&gfp.Account != 0 && a.kmem.charger != nil || mask.MobilityConflict() {
		return Page{}, false
	}
	r := &a.routes[t.CPU()][routeIndex(mask)]
	z := r.z
	if z == nil || z.flags.Load()&(zoneBelowHigh|zoneBoostedWatermark) != 0 ||
		!z.watermarkOKFree(order, z.wmarkPages(WmarkHigh), zoneOfBits[mask&gfp.ZoneMask], 0, z.freePages.Load()) {
		return Page{}, false
	}
	mt := mask.Migratetype()
	if a.mobilityDisabled {
		mt = mtUnmovable
	}
	owner := psAlloc | uint8(order)
	if mask&gfp.Movable != 0 {
		owner |= psMovable
	}
	p := r.p
	if !p.mu.TryLock() {
		return Page{}, false
	}
	l := &p.lists[orderToPindex(mt, order)]
	if l.n == 0 {
		p.mu.Unlock()
		return Page{}, false
	}
	p.freeCount >>= 1
	pfn := z.pcpTake(p, l, order, owner, true, p.local)
	p.mu.Unlock()
	if !p.local {
		z.numaRemote[NumaOther].Add(1)
	}
	z.sometimes()
	if mask&gfp.Zero != 0 {
		a.clearPages(order)
	}
	return Page{pfn: pfn}, true
}

// allocSlow is AllocPages past its common case: Explain's recording, or
// allocPages. req is the caller's mask, mask the one in effect.
func (a *Allocator) allocSlow(t *memalloc.Task, req, mask gfp.Mask, order Order) (Page, error) {
	if r, nested := a.explainFor(t); r != nil {
		return a.allocPagesExplained(r, nested, t, req, mask, order)
	}
	return a.allocPages(t, mask, order, nil)
}

// refuseRequest is AllocPages's answer to a request it cannot take: no
// task, another machine's task, a CPU the machine does not have, an order
// out of range.
func (a *Allocator) refuseRequest(t *memalloc.Task, mask gfp.Mask, order Order) error {
	if err := a.taskError(t, "allocation"); err != nil {
		return err
	}
	if order > MaxPageOrder {
		a.warnOnceGFP(t, mask, "__alloc_frozen_pages_noprof", "mm/page_alloc.c:__alloc_frozen_pages_noprof",
			"order %d > MAX_PAGE_ORDER (%d)", order, MaxPageOrder)
	}
	if r, nested := a.explainFor(t); r != nil && !nested {
		r.refusedOrder(mask, order)
	}
	return invalidError("order %d: the buddy allocator hands out orders 0..%d", order, MaxPageOrder)
}

// taskError says why t cannot make an allocation or a free (what), or
// returns nil: no task, a task another machine created, a CPU this machine
// does not have.
func (a *Allocator) taskError(t *memalloc.Task, what string) error {
	switch {
	case t == nil:
		return invalidError("no task: every %s needs its task (current)", what)
	case t.Owner() != a.opts.Owner:
		return invalidError("task %s belongs to another machine: it was not created by this one's NewTask", t)
	case t.CPU() < 0 || t.CPU() >= len(a.cpuNode):
		return invalidError("task %s runs on CPU %d, which this machine does not have", t, t.CPU())
	}
	return nil
}

// allocPagesExplained is AllocPages for the task Explain records: the
// explained request is recorded step by step; an allocation the task makes
// inside it (its reclaim's, its compaction's, a hook's) is recorded as one
// step.
func (a *Allocator) allocPagesExplained(r *recorder, nested bool, t *memalloc.Task, req, mask gfp.Mask, order Order) (Page, error) {
	if nested {
		p, err := a.allocPages(t, mask, order, nil)
		res := "ok: " + p.String()
		if err != nil {
			res = "failed: " + err.Error()
		}
		pf := ""
		if t.Flags()&memalloc.PFMemalloc != 0 {
			pf = ", under PF_MEMALLOC"
		}
		r.addf(StepNested, nil, "nested allocation by the same task while the explained one is in progress "+
			"(from its reclaim, compaction or a hook%s): order %d %s -> %s", pf, order, mask, res)
		return p, err
	}
	r.begin(req, mask)
	p, err := a.allocPages(t, mask, order, r)
	r.phase = recDone // a later request of t, even inside ExplainOptions.Alloc, is not this one
	return p, err
}

// allocPages is AllocPages past the fast path's shortcut: prepare, the
// hooks, the fast path proper, the slow path, the kmem charge. rec is the
// Explain recorder, nil unless this is the explained request.
//
// Kernel: mm/page_alloc.c:__alloc_frozen_pages_noprof().
func (a *Allocator) allocPages(t *memalloc.Task, mask gfp.Mask, order Order, rec *recorder) (Page, error) {
	ac := allocContext{t: t, rec: rec}
	if err := a.prepare(&ac, mask); err != nil {
		a.report(t, bug.Bug, "mm/page_alloc.c:prepare_alloc_pages", "VM_BUG_ON: "+err.Error())
		if rec != nil {
			rec.addf(StepRefused, nil, "prepare_alloc_pages: gfp_zone: %v: VM_BUG_ON, the request is refused (a BUG)", err)
		}
		return Page{}, fmt.Errorf("%w: gfp_zone: %w", ErrBug, err)
	}
	if rec != nil {
		rec.prepared(&ac, mask)
	}
	// gfp_migratetype runs after gfp_zone, as in prepare_alloc_pages.
	if mask.MobilityConflict() {
		if rec != nil {
			rec.addf(StepRefused, nil, "gfp_migratetype: __GFP_MOVABLE and __GFP_RECLAIMABLE together: VM_WARN_ON, "+
				"and mmsim refuses the request (the kernel would go on with MIGRATE_HIGHATOMIC, "+
				"which order_to_pindex maps onto another order's pcp list)")
		}
		return Page{}, a.mobilityConflict(t, mask)
	}
	if h := a.opts.Hooks; h != nil {
		h.MightAlloc(t, mask)
		if h.ShouldFailAlloc(t, mask, order) {
			if rec != nil {
				rec.addf(StepRefused, nil, "prepare_alloc_pages: should_fail_alloc_page: fault injection fails the request "+
					"(NULL, no slow path, no warning, no mm_page_alloc)")
			}
			// prepare_alloc_pages fails: NULL, before mm_page_alloc fires.
			return Page{}, &AllocError{Order: order, Mask: mask, Reason: "fault injection"}
		}
	}
	af := allocWmarkLow | allocFlags(mask&gfp.KswapdReclaim)
	if ac.nofragment {
		af |= allocNoFragment
	}
	if rec != nil {
		rec.freelist("fast path", mask, af)
	}
	pfn, ok := a.getPageFromFreelist(&ac, mask, order, af)
	var err error
	if !ok {
		pfn, ok, err = a.slowpath(&ac, mask, order)
	}
	if ok && mask&gfp.Account != 0 && a.kmem.charger != nil {
		if err = a.chargeKmem(t, pfn, order, mask); err != nil {
			if rec != nil {
				rec.addf(StepCharge, nil, "__GFP_ACCOUNT: the memcg kmem charge failed (%v): the block is freed "+
					"and the request returns NULL", err)
			}
			ok = false
		} else if rec != nil {
			rec.addf(StepCharge, nil, "__GFP_ACCOUNT: __memcg_kmem_charge_page charged %d pages to the task's memcg", 1<<order)
		}
	}
	a.traceAlloc(t, pfn, ok, order, mask, ac.mt)
	if !ok {
		return Page{}, err
	}
	if rec != nil {
		rec.addf(StepGotPage, a.ZoneOf(pfn), "got %s order %d migratetype %s", Page{pfn: pfn}, order, ac.mt)
	}
	p := Page{pfn: pfn}
	if mask&gfp.Zero != 0 {
		a.clearPages(order)
	}
	if h := a.opts.Hooks; h != nil {
		h.PostAlloc(t, p, order, mask)
	}
	return p, nil
}

// clearPages charges the clearing of a new block of the order to the
// simulated clock: the caller's CPU writes every byte.
//
// Kernel: mm/page_alloc.c:post_alloc_hook() (kernel_init_pages).
func (a *Allocator) clearPages(order Order) {
	if c := a.opts.ZeroPageCost; c > 0 && a.opts.Advance != nil {
		a.opts.Advance(c << order)
	}
}

// mobilityConflict refuses a mask with both __GFP_MOVABLE and
// __GFP_RECLAIMABLE. gfp_migratetype() fires VM_WARN_ON and returns 3,
// MIGRATE_HIGHATOMIC, which no request may ask for: order_to_pindex maps
// it onto another order's pcp list (for orders 0-2 the next order's
// Unmovable one: an order-0 request would be handed an order-1 block; for
// order 3 the THP list) and a fallback would read past the fallbacks
// table. mmsim reports the WARN and refuses the request, changing nothing.
//
// Kernel: include/linux/gfp.h:gfp_migratetype() (VM_WARN_ON).
func (a *Allocator) mobilityConflict(t *memalloc.Task, mask gfp.Mask) error {
	a.report(t, bug.Warn, "include/linux/gfp.h:gfp_migratetype",
		"VM_WARN_ON((gfp_flags & GFP_MOVABLE_MASK) == GFP_MOVABLE_MASK): mode:"+mask.Mode())
	return invalidError("mode:%s has both __GFP_MOVABLE and __GFP_RECLAIMABLE: no migratetype", mask.Mode())
}

func (a *Allocator) traceAlloc(t *memalloc.Task, pfn PFN, ok bool, order Order, mask gfp.Mask, mt gfp.Migratetype) {
	if a.trace.enabled() {
		a.trace.emit(t, Event{Kind: EvPageAlloc, PFN: pfn, NoPage: !ok, Order: order, Mask: mask, Migratetype: mt})
	}
}

// getPageFromFreelist walks the zonelist from the preferred zone and takes a
// block from the first zone whose watermark allows it.
//
// Kernel: mm/page_alloc.c:get_page_from_freelist().
func (a *Allocator) getPageFromFreelist(ac *allocContext, mask gfp.Mask, order Order, af allocFlags) (PFN, bool) {
	if ac.preferred < 0 {
		if ac.rec != nil {
			ac.rec.addf(StepZoneSkip, nil, "first_zones_zonelist: no zone up to %s in the zonelist: nothing to walk", ac.highest)
		}
		return 0, false
	}
	r := a.opts.SlowPath.Reclaim
	skipKswapd := a.skipsKswapdNodes()
	skipped := false
retry:
	noFallback := af&allocNoFragment != 0
	pref := ac.zonelist[ac.preferred]
	for _, z := range ac.zonelist[ac.preferred:] {
		if z.typ > ac.highest {
			continue
		}
		if noFallback && len(a.nodes) > 1 && z.node != pref.node {
			if ac.rec != nil {
				ac.rec.addf(StepZoneSkip, z, "ALLOC_NOFRAGMENT: the walk reached node %d, remote from the preferred zone's: "+
					"restart it without ALLOC_NOFRAGMENT (fragmenting locally beats going remote)", z.node.id)
			}
			af &^= allocNoFragment
			goto retry
		}
		// On several nodes, leave nodes whose kswapd is already at work
		// for a second pass.
		if skipKswapd && r.KswapdRunning(z.node) {
			if ac.rec != nil {
				ac.rec.addf(StepZoneSkip, z, "kswapd of node %d is running: left for a second pass", z.node.id)
			}
			skipped = true
			continue
		}
		if z.flags.Load()&zoneBelowHigh == 0 {
			if z.watermarkFast0(order, z.wmarkPages(WmarkHigh), ac.highest, af) ||
				z.watermarkRest(order, z.wmarkPages(WmarkHigh), ac.highest, af) {
				if ac.rec != nil {
					ac.rec.watermark(z, order, WmarkHigh, ac.highest, af, true, "above the high watermark: no other check")
				}
				goto try
			}
			if ac.rec != nil {
				ac.rec.watermark(z, order, WmarkHigh, ac.highest, af, false, "sets ZONE_BELOW_HIGH")
			}
			z.flags.Or(zoneBelowHigh)
		}
		if !z.watermarkFast0(order, z.wmarkPages(int(af&allocWmarkMask)), ac.highest, af) &&
			!z.watermarkRest(order, z.wmarkPages(int(af&allocWmarkMask)), ac.highest, af) {
			if af&allocNoWatermarks == 0 {
				if ac.rec != nil {
					ac.rec.watermark(z, order, int(af&allocWmarkMask), ac.highest, af, false, "next zone (node_reclaim_mode 0)")
				}
				continue
			}
			if ac.rec != nil {
				ac.rec.watermark(z, order, int(af&allocWmarkMask), ac.highest, af, false,
					"but ALLOC_NO_WATERMARKS: take a page anyway")
			}
		} else if ac.rec != nil {
			ac.rec.watermark(z, order, int(af&allocWmarkMask), ac.highest, af, true, "")
		}
	try:
		if pfn, ok := a.rmqueue(ac, z, order, mask, af); ok {
			return pfn, true
		}
		if ac.rec != nil {
			ac.rec.addf(StepBuddy, z, "rmqueue: no block of order %d for %s: next zone", order, AllocFlags(af))
		}
	}
	if skipKswapd && skipped {
		if ac.rec != nil {
			ac.rec.addf(StepZoneSkip, nil, "second pass, over the nodes whose kswapd is running")
		}
		skipKswapd = false
		goto retry
	}
	if noFallback {
		if ac.rec != nil {
			ac.rec.addf(StepZoneSkip, nil, "ALLOC_NOFRAGMENT: no zone could serve without fragmenting: walk again without it")
		}
		af &^= allocNoFragment
		goto retry
	}
	if ac.rec != nil {
		ac.rec.addf(StepZoneSkip, nil, "get_page_from_freelist: no zone had a block")
	}
	return 0, false
}

// rmqueue takes a block from a zone, through the pcp lists when the order
// allows, and hands it to the caller.
//
// Kernel: mm/page_alloc.c:rmqueue(), prep_new_page().
func (a *Allocator) rmqueue(ac *allocContext, z *Zone, order Order, mask gfp.Mask, af allocFlags) (PFN, bool) {
	// The page's new owner state is set under the lock that hands it out,
	// so that a checker holding every lock sees it.
	s := psAlloc | uint8(order)
	if mask&gfp.Movable != 0 {
		s |= psMovable
	}
	// zone_statistics: a hit or a miss against the preferred zone's
	// node, local or other against the CPU's node.
	pref := ac.zonelist[ac.preferred]
	hit, local := z.node == pref.node, z.node == a.cpuNode[ac.t.CPU()]
	var pfn PFN
	ok := false
	if pcpAllowedOrder(order) {
		pfn, ok = z.rmqueuePCPList(ac.t, order, ac.mt, af, s, hit, local, ac.rec)
	}
	if !ok {
		pfn, ok = z.rmqueueBuddy(ac.t, order, af, ac.mt, s, hit, local, ac.rec)
	}
	if ok && !hit {
		z.numaRemote[NumaMiss].Add(1)
		pref.numaRemote[NumaForeign].Add(1)
	}
	if ok && !local {
		z.numaRemote[NumaOther].Add(1)
	}
	if af&allocKswapd != 0 && z.flags.Load()&zoneBoostedWatermark != 0 {
		z.flags.And(^zoneBoostedWatermark)
		if ac.rec != nil {
			ac.rec.addf(StepKswapd, z, "rmqueue: ZONE_BOOSTED_WATERMARK set and ALLOC_KSWAPD: clear it and wakeup_kswapd "+
				"(order 0, highest zone %s) to reclaim the boost", z.typ)
		}
		a.wakeupKswapd(ac.t, z, 0, 0, z.typ)
	}
	z.sometimes()
	return pfn, ok
}

// FreePages returns a block of 1<<order pages: __free_pages. Orders the
// pcp lists take go to this CPU's list (drained to the buddy lists past its
// high mark); larger ones go straight to the buddy lists, a pageblock at a
// time. Freeing a pfn that is not the head of an allocated block of this
// order — a double free, a wrong order, a pfn never handed out — is a BUG:
// the error wraps ErrBug and nothing changes. That guarantee holds for bad
// frees made one after the other; two goroutines freeing the same page at
// the same moment race on it in the caller's program, as they would in the
// kernel (the race detector reports it).
//
// The common case, an order-0 page that goes on a list with room, is
// written out here in one function, as AllocPages writes out its own;
// everything else is freeSlow's: checkFree, then freeChecked, the commit
// FreePagesBatched shares.
//
// Kernel: mm/page_alloc.c:__free_pages(), __free_frozen_pages(),
// __free_pages_ok().
func (a *Allocator) FreePages(t *memalloc.Task, p Page, order Order) error {
	// As in AllocPages, every way off the common case is a call whose
	// result is returned.
	if t == nil || t.Owner() != a.opts.Owner || order != 0 {
		return a.freeSlow(t, p, order)
	}
	if a.watch.Load()&(watchHooks|watchTrace) != 0 || a.kmem.n.Load() != 0 {
		return a.freeSlow(t, p, order)
	}
	b := p.pfn >> MaxPageOrder // ZoneOf, with the pcp lists alongside
	if b >= PFN(len(a.zoneMap)) {
		return a.freeSlow(t, p, order)
	}
	e := &a.zoneMap[b]
	z, pcps, owner := e.z, e.pcp, e.owner
	if z == nil || uint(t.CPU()) >= uint(len(pcps)) {
		return a.freeSlow(t, p, order)
	}
	// free_frozen_page_commit's common case, written out as AllocPages
	// writes out rmqueue_pcplist's: the head of an allocated order-0
	// block, of a pcp migratetype, to a list that stays below pcp->high
	// (within its bounds, which nr_pcp_high would clamp it to) while no
	// reclaim runs and the zone is above its high watermark. nr_pcp_high
	// then changes nothing and nothing is drained. Anything else is
	// freeSlow's, as is a pcp lock another task holds (it waits there,
	// where the kernel's failed pcp_spin_trylock would go to
	// free_one_page; zone/doc.go).
	// The block's owner state and migratetype are read under the lock:
	// the lock is a full barrier, and what the free reads before it
	// delays it.
	pc := &pcps[t.CPU()]
	if !pc.mu.TryLock() {
		return a.freeSlow(t, p, order)
	}
	i := p.pfn & (maxOrderNrPages - 1)
	st := owner[i]
	mt := gfp.Migratetype(e.mt[i>>PageblockOrder].Load()) // blockMT
	if high := pc.high; st&^psMovable != psAlloc || int(mt) >= gfp.MigratePCPTypes ||
		pc.count+1 >= high || high > pc.highMax || high < pc.highMin ||
		z.flags.Load()&(zoneReclaimActive|zoneBelowHigh) != 0 {
		pc.mu.Unlock()
		return a.freeSlow(t, p, order)
	}
	owner[i] = psPCP // setOwnerState
	if st&psMovable != 0 {
		z.countMovable(p.pfn, 0, -1)
	}
	l := &pc.lists[mt] // order_to_pindex(mt, 0)
	if l.n == len(l.buf) {
		l.grow()
	}
	pc.put(l, z.mm.off(p.pfn), 1)
	pc.flags &^= pcpfPrevFreeHighOrder
	if pc.freeCount < pc.batch<<pcpBatchScaleMax {
		pc.freeCount++
	}
	pc.mu.Unlock()
	z.sometimes()
	return nil
}

// freeSlow is FreePages for what its common case leaves: a bad free, for
// its error, or a free that freePrepare has work for.
func (a *Allocator) freeSlow(t *memalloc.Task, p Page, order Order) error {
	z, st, err := a.checkFree(t, p, order)
	if err != nil {
		return err
	}
	a.freePrepare(t, p, order)
	a.freeChecked(t, z, p, order, st)
	return nil
}

// freePrepare runs what free_pages_prepare does that is seen from outside:
// the hooks and the mm_page_free tracepoint. (FreePages's common case makes
// the same two tests itself.)
//
// Kernel: mm/page_alloc.c:free_pages_prepare().
func (a *Allocator) freePrepare(t *memalloc.Task, p Page, order Order) {
	if a.watch.Load()&(watchHooks|watchTrace) != 0 || a.kmem.n.Load() != 0 {
		a.freePrepareSlow(t, p, order)
	}
}

func (a *Allocator) freePrepareSlow(t *memalloc.Task, p Page, order Order) {
	if a.kmem.n.Load() != 0 {
		a.unchargeKmem(t, p.pfn, order)
	}
	if h := a.opts.Hooks; h != nil {
		h.FreePrepare(t, p, order)
	}
	if a.trace.enabled() {
		a.trace.emit(t, Event{Kind: EvPageFree, PFN: p.pfn, Order: order})
	}
}

// sometimes runs the zone's invariant checker every checkEvery calls, under
// the invariants build tag (make test sets it), and panics through a bug in
// mmsim itself if it fails. It costs nothing otherwise.
func (z *Zone) sometimes() {
	if invariants.Enabled { // a constant: without the tag this inlines to nothing
		z.sometimesCheck()
	}
}

func (z *Zone) sometimesCheck() {
	if z.ops.Add(1)%checkEvery != 0 {
		return
	}
	if errs := z.checkInvariants(); len(errs) > 0 {
		panic(fmt.Sprintf("mmsim: internal: %v (kernel: mm/page_alloc.c invariants)", errors.Join(errs...)))
	}
}

// checkEvery is how often, in operations on a zone, the invariants build
// checks the whole zone.
const checkEvery = 4096

// checkFree validates a free and returns the block's zone and owner state.
func (a *Allocator) checkFree(t *memalloc.Task, p Page, order Order) (*Zone, uint8, error) {
	if err := a.taskError(t, "free"); err != nil {
		return nil, 0, err
	}
	if order < 0 || order > MaxPageOrder {
		return nil, 0, a.freeBug(t, "__free_pages(pfn %#x, order %d): order out of range 0..%d", uint64(p.pfn), order, MaxPageOrder)
	}
	z := a.ZoneOf(p.pfn)
	if z == nil {
		return nil, 0, a.freeBug(t, "__free_pages(pfn %#x, order %d): pfn is in no zone", uint64(p.pfn), order)
	}
	st := z.mm.ownerState(z.mm.off(p.pfn))
	switch {
	case st&psKindMask == psPCP:
		return nil, 0, a.freeBug(t, "__free_pages(pfn %#x, order %d): double free: the page is free, on a per-cpu list", uint64(p.pfn), order)
	case st&psKindMask != psAlloc:
		z.mu.Lock()
		free := z.mm.state(z.mm.off(p.pfn))&psKindMask == psFree
		z.mu.Unlock()
		if free {
			return nil, 0, a.freeBug(t, "__free_pages(pfn %#x, order %d): double free: the page is free, on the buddy lists", uint64(p.pfn), order)
		}
		return nil, 0, a.freeBug(t, "__free_pages(pfn %#x, order %d): the page heads no allocated block "+
			"(never handed out, or a tail page)", uint64(p.pfn), order)
	case Order(st&psOrderMask) != order:
		return nil, 0, a.freeBug(t, "__free_pages(pfn %#x, order %d): the block was allocated with order %d",
			uint64(p.pfn), order, st&psOrderMask)
	}
	return z, st, nil
}

func (a *Allocator) freeBug(t *memalloc.Task, format string, args ...any) error {
	err := bugError(format, args...)
	a.report(t, bug.Bug, "mm/page_alloc.c:free_pages_prepare", err.Error())
	return err
}

// freeChecked returns a block checkFree accepted, whose owner state is st,
// to the pcp or buddy lists (after freePrepare). A block the pcp lists take
// goes on this CPU's list, with free_frozen_page_commit's bookkeeping written
// out here for the case nr_pcp_high leaves alone; the rest of it, and the
// drain of a list over its high mark, is pcpFreeHigh's.
//
// Kernel: mm/page_alloc.c:__free_frozen_pages(), free_frozen_page_commit().
func (a *Allocator) freeChecked(t *memalloc.Task, z *Zone, p Page, order Order, st uint8) {
	off := z.mm.off(p.pfn)
	if !pcpAllowedOrder(order) {
		z.freeOneBlock(off, p.pfn, order)
		z.sometimes()
		return
	}
	mt := z.blockMT(p.pfn)
	if int(mt) >= gfp.MigratePCPTypes {
		if mt == mtIsolate {
			z.freeOneBlock(off, p.pfn, order)
			z.sometimes()
			return
		}
		mt = mtMovable
	}
	nr := order.nrPages()
	pc := &z.pcp[t.CPU()]
	pc.mu.Lock()
	z.mm.setOwnerState(off, psPCP|uint8(order)) // dropOwner, inline
	if st&psMovable != 0 {
		z.countMovable(p.pfn, order, -1)
	}
	pindex := orderToPindex(mt, order)
	l := &pc.lists[pindex]
	if l.n == len(l.buf) {
		l.grow()
	}
	pc.put(l, off, nr)
	freeHigh := false
	if order > 0 && order <= CostlyOrder {
		freeHigh = pc.freeCount >= pc.batch+pc.highMin/2 && pc.flags&pcpfPrevFreeHighOrder != 0 &&
			(pc.flags&pcpfFreeHighBatch == 0 || pc.count >= pc.batch)
		pc.flags |= pcpfPrevFreeHighOrder
	} else {
		pc.flags &^= pcpfPrevFreeHighOrder
	}
	if pc.freeCount < pc.batch<<pcpBatchScaleMax {
		pc.freeCount += nr
	}
	// nr_pcp_high's common case, inline: no reclaim running, the zone above
	// its high watermark, room between high_min and high_max. Its only
	// effect then is to clamp pcp->high, and raise it when the list is full.
	if high := clampInt(pc.high, pc.highMin, pc.highMax); freeHigh || pc.highMin == pc.highMax || high == 0 ||
		pc.count >= high || z.flags.Load()&(zoneReclaimActive|zoneBelowHigh) != 0 {
		z.pcpFreeHigh(t, pc, pindex, freeHigh)
	} else {
		pc.high = high
	}
	pc.mu.Unlock()
	z.sometimes()
}

// dropOwner changes a freed block's owner state from st to next, and
// takes it off its pageblocks' movable counts, together, under the lock
// that now holds the block, so that a checker holding every lock sees
// both or neither.
func (z *Zone) dropOwner(off int32, pfn PFN, order Order, st, next uint8) {
	z.mm.setOwnerState(off, next)
	if st&psMovable != 0 {
		z.countMovable(pfn, order, -1)
	}
}

// freeOneBlock returns a block straight to the buddy lists, a pageblock at a
// time for blocks larger than one.
//
// Kernel: mm/page_alloc.c:free_one_page(), split_large_buddy().
func (z *Zone) freeOneBlock(off int32, pfn PFN, order Order) {
	z.mu.Lock()
	z.dropOwner(off, pfn, order, z.mm.ownerState(off), psNone)
	end := pfn + 1<<order
	step := min(order, PageblockOrder)
	for ; pfn < end; pfn += 1 << step {
		z.freeOnePage(pfn, step, z.blockMT(pfn), false)
	}
	z.stats.pgfree += 1 << order
	z.mu.Unlock()
}

// warnOnceGFP fires a WARN_ON_ONCE_GFP site: silent under __GFP_NOWARN.
//
// Kernel: mm/internal.h:WARN_ON_ONCE_GFP().
func (a *Allocator) warnOnceGFP(t *memalloc.Task, mask gfp.Mask, key, site, format string, args ...any) {
	if mask&gfp.NoWarn != 0 {
		return
	}
	if a.once.First(key) {
		a.report(t, bug.Warn, site, fmt.Sprintf(format, args...))
	}
}

// warnOnce fires a plain WARN_ON_ONCE site.
func (a *Allocator) warnOnce(key, site, format string, args ...any) {
	if a.once.First(key) {
		a.report(nil, bug.Warn, site, fmt.Sprintf(format, args...))
	}
}

func (a *Allocator) report(t *memalloc.Task, k bug.Kind, site, text string) {
	if a.opts.Report == nil {
		return
	}
	r := bug.Report{Kind: k, Site: site, Text: text}
	if t != nil {
		r.Comm, r.PID = t.Comm(), t.PID()
	}
	r.Time = a.now()
	a.opts.Report(r)
}
