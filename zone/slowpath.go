package zone

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/internal/sim"
	"github.com/mmsim/mmsim/memalloc"
)

// The slow path reaches reclaim, compaction and the OOM killer only through
// the interfaces below, in zone's own terms; package reclaim and package oom
// implement them and the root package wires them in. Without them the
// machine has no way to free memory: reclaim and compaction make no
// progress, and the OOM killer finds nothing to kill.

// Reclaimer is page reclaim as the allocator sees it.
//
// Kernel: mm/vmscan.c (wakeup_kswapd, try_to_free_pages,
// zone_reclaimable_pages).
type Reclaimer interface {
	// WakeKswapd wakes node n's kswapd for a request of the order whose
	// highest zone is highest; the allocator has already recorded the
	// request in the node's kswapd order and zone (wakeup_kswapd). On a
	// hopeless node (kswapd_failures >= MAX_RECLAIM_RETRIES) the
	// allocator calls it too: the reclaimer then records the request,
	// leaves kswapd asleep and, for a request without
	// __GFP_DIRECT_RECLAIM, wakes kcompactd instead. It reports which.
	WakeKswapd(n *Node, order Order, highest gfp.ZoneType, mask gfp.Mask) KswapdWake
	// TryToFreePages runs direct reclaim on behalf of t (which has
	// PF_MEMALLOC set around the call) with the request's mask, and
	// returns the number of pages reclaimed.
	TryToFreePages(t *memalloc.Task, zonelist []*Zone, order Order, mask gfp.Mask, highest gfp.ZoneType) int64
	// ReclaimablePages returns what reclaim could still free in z: file
	// LRU pages, and anon LRU pages when swap can take them.
	ReclaimablePages(z *Zone) int64
	// KswapdRunning reports whether node n's kswapd is awake (not waiting
	// on kswapd_wait): on machines with several nodes, the fast path skips
	// such nodes in a first pass.
	KswapdRunning(n *Node) bool
}

// CompactResult is the outcome of direct compaction.
//
// Kernel: include/linux/compaction.h:enum compact_result.
type CompactResult int

// The compaction results, in the kernel's order: try_to_compact_pages
// keeps the largest over the zones it tries.
const (
	CompactSkipped        CompactResult = iota // not attempted: not suitable
	CompactDeferred                            // not attempted: deferred after recent failures
	CompactContinue                            // compaction should go on (internal to compaction)
	CompactComplete                            // the scanners met over the whole zone, no suitable page made
	CompactPartialSkipped                      // the scanners met, but part of the zone was not scanned
	CompactContended                           // stopped: lock contention or a fatal signal
	CompactSuccess                             // a suitable free page should now exist
)

var compactResultNames = [...]string{"skipped", "deferred", "continue", "complete", "partial_skipped", "contended", "success"}

// String returns the name the compaction tracepoints print.
//
// Kernel: include/trace/events/mmflags.h:COMPACTION_STATUS.
func (r CompactResult) String() string {
	if r < 0 || int(r) >= len(compactResultNames) {
		return "unknown"
	}
	return compactResultNames[r]
}

// Compaction priorities, most aggressive first.
//
// Kernel: include/linux/compaction.h:enum compact_priority.
const (
	CompactPrioSyncFull  = 0 // MIN_COMPACT_PRIORITY
	CompactPrioSyncLight = 1 // DEF_COMPACT_PRIORITY, MIN_COMPACT_COSTLY_PRIORITY
	CompactPrioAsync     = 2 // INIT_COMPACT_PRIORITY
)

// Compactor is direct compaction as the allocator sees it.
//
// Kernel: mm/compaction.c (try_to_compact_pages,
// compaction_zonelist_suitable).
type Compactor interface {
	// TryToCompactPages compacts for the request at the priority. When
	// compaction captured a free block of the order for the caller (the
	// kernel's capture_control), it returns it with captured set; the
	// block is then the caller's, already taken off the free lists.
	TryToCompactPages(t *memalloc.Task, zonelist []*Zone, order Order, mask gfp.Mask, highest gfp.ZoneType, prio int) (result CompactResult, page PFN, captured bool)
	// ZonelistSuitable reports whether compaction could make a page of
	// the order in some zone of the zonelist.
	ZonelistSuitable(zonelist []*Zone, order Order, highest gfp.ZoneType) bool
	// WakeKcompactd asks node n's kcompactd to compact for the order:
	// the allocator found the node balanced for a request that cannot
	// reclaim (wakeup_kswapd's kcompactd branch, taken only while kswapd
	// waits, which the implementation checks).
	WakeKcompactd(n *Node, order Order, highest gfp.ZoneType)
	// Allocated tells compaction that a request of the order got its
	// page from z after compacting: the zone's deferral is reset and its
	// skip hints are kept (compact_blockskip_flush cleared).
	Allocated(z *Zone, order Order)
}

// OOMKiller is the OOM killer as the allocator sees it.
//
// Kernel: mm/oom_kill.c (out_of_memory, tsk_is_oom_victim,
// oom_reserves_allowed).
type OOMKiller interface {
	// OutOfMemory selects and kills a victim for t's request, and reports
	// whether it made progress (a kill, or a request it will not kill for,
	// such as one without __GFP_FS).
	OutOfMemory(t *memalloc.Task, mask gfp.Mask, order Order, highest gfp.ZoneType) bool
	// IsVictim reports whether t has been chosen as an OOM victim.
	IsVictim(t *memalloc.Task) bool
}

// SlowPath bundles what the slow path may use. Any field may be nil.
type SlowPath struct {
	Reclaim Reclaimer
	Compact Compactor
	OOM     OOMKiller
}

// ErrDeadlock is wrapped by the error of an allocation the kernel would
// retry for ever with nothing left that could free memory: it says which
// loop it was stuck in.
var ErrDeadlock = errors.New("zone: allocation can never succeed")

// Retry limits. Kernel: mm/internal.h:MAX_RECLAIM_RETRIES,
// mm/page_alloc.c:MAX_COMPACT_RETRIES.
const (
	MaxReclaimRetries = 16
	maxCompactRetries = 16
)

// KswapdWake is what a wakeup_kswapd did with kswapd.
//
// Kernel: mm/vmscan.c:wakeup_kswapd().
type KswapdWake uint8

const (
	// KswapdWoken: kswapd slept on kswapd_wait and was woken
	// (trace_mm_vmscan_wakeup_kswapd).
	KswapdWoken KswapdWake = iota
	// KswapdAwake: kswapd was awake already (waitqueue_active is
	// false); it will read the raised kswapd_order.
	KswapdAwake
	// KswapdHopeless: the node is hopeless (kswapd_failures >=
	// MAX_RECLAIM_RETRIES); kswapd is left asleep.
	KswapdHopeless
)

// kswapdState is what the allocator records of a node's kswapd.
//
// Kernel: include/linux/mmzone.h:pglist_data (kswapd_order,
// kswapd_highest_zoneidx).
type kswapdState struct {
	mu      sync.Mutex
	order   Order
	highest gfp.ZoneType
	set     bool  // highest is meaningful (not MAX_NR_ZONES)
	wakes   int64 // kswapd woken from its sleep
}

// KswapdWakes returns how many times allocations woke the node's kswapd
// from its sleep: the mm_vmscan_wakeup_kswapd events. A request that finds
// kswapd awake already, the node hopeless or balanced, is not one.
//
// Kernel: mm/vmscan.c:wakeup_kswapd() (trace_mm_vmscan_wakeup_kswapd).
func (n *Node) KswapdWakes() int64 {
	n.kswapd.mu.Lock()
	defer n.kswapd.mu.Unlock()
	return n.kswapd.wakes
}

// KswapdRequest returns the order and highest zone kswapd was last asked to
// reclaim for.
func (n *Node) KswapdRequest() (Order, gfp.ZoneType) {
	n.kswapd.mu.Lock()
	defer n.kswapd.mu.Unlock()
	return n.kswapd.order, n.kswapd.highest
}

// wakeupKswapd records the request for z's node's kswapd and wakes it:
// unless kswapd is awake already, which then reads the request; or the
// node is hopeless or balanced for it, when a request that cannot reclaim
// wakes kcompactd instead. The order of the tests is the kernel's (SPEC
// 7.4).
//
// Kernel: mm/vmscan.c:wakeup_kswapd().
func (a *Allocator) wakeupKswapd(t *memalloc.Task, z *Zone, mask gfp.Mask, order Order, highest gfp.ZoneType) string {
	if z.managed == 0 {
		return "zone not managed: nothing to do"
	}
	n := z.node
	n.kswapd.mu.Lock()
	if !n.kswapd.set || n.kswapd.highest < highest {
		n.kswapd.highest, n.kswapd.set = highest, true
	}
	if n.kswapd.order < order {
		n.kswapd.order = order
	}
	n.kswapd.mu.Unlock()
	r := a.opts.SlowPath.Reclaim
	if r != nil && r.KswapdRunning(n) {
		return kswapdAwake
	}
	kcompactd := a.opts.SlowPath.Compact != nil && mask&gfp.DirectReclaim == 0
	if n.Balanced(order, highest) && !n.watermarkBoosted(highest) {
		if kcompactd {
			a.opts.SlowPath.Compact.WakeKcompactd(n, order, highest)
		}
		return kswapdNotWoken(a.kswapdHopeless(n), kcompactd)
	}
	if r == nil {
		return "would be woken, but the machine has no reclaim"
	}
	switch r.WakeKswapd(n, order, highest, mask) {
	case KswapdWoken:
		// Counted where the kernel fires mm_vmscan_wakeup_kswapd: past
		// the waitqueue_active and hopeless tests.
		n.kswapd.mu.Lock()
		n.kswapd.wakes++
		n.kswapd.mu.Unlock()
		return "woken (kswapd_order and kswapd_highest_zoneidx raised to the request's)"
	case KswapdHopeless:
		// kswapd stays asleep, and a request that cannot reclaim woke
		// kcompactd instead.
		return kswapdNotWoken(true, kcompactd)
	}
	return kswapdAwake // woken meanwhile
}

// kswapdAwake is wakeup_kswapd's answer when kswapd is not on kswapd_wait.
const kswapdAwake = "kswapd awake already (waitqueue_active is false): it will read the raised kswapd_order and kswapd_highest_zoneidx"

// kswapdNotWoken says why wakeup_kswapd left kswapd asleep: the node is
// hopeless, or else balanced and not boosted; and whether kcompactd was
// woken instead.
//
// Kernel: mm/vmscan.c:wakeup_kswapd().
func kswapdNotWoken(hopeless, kcompactd bool) string {
	const (
		balanced = "pgdat_balanced and not boosted: kswapd not woken"
		gaveUp   = "kswapd_failures >= MAX_RECLAIM_RETRIES (16): a hopeless node, left to direct reclaim: kswapd not woken"
		instead  = "; the request cannot reclaim, so wakeup_kcompactd instead"
	)
	switch {
	case hopeless && kcompactd:
		return gaveUp + instead
	case hopeless:
		return gaveUp
	case kcompactd:
		return balanced + instead
	}
	return balanced
}

// kswapdHopeless is kswapd_test_hopeless(): node n's kswapd has failed
// MAX_RECLAIM_RETRIES times in a row. kswapd_failures belongs to the layer
// above, which tells it through Options.MemInfo (the Hopeless the Mem-Info
// block prints as "all_unreclaimable?"); without it no node is hopeless.
//
// Kernel: mm/vmscan.c:kswapd_test_hopeless().
func (a *Allocator) kswapdHopeless(n *Node) bool {
	if a.opts.MemInfo == nil {
		return false
	}
	h := a.opts.MemInfo().Hopeless
	return h != nil && h(n.id)
}

// Balanced reports whether some managed zone of the node up to highest
// meets its high watermark (with boost) for the order; a node with no
// managed zone in range counts as balanced.
//
// Kernel: mm/vmscan.c:pgdat_balanced().
func (n *Node) Balanced(order Order, highest gfp.ZoneType) bool {
	any := false
	for i := gfp.ZoneType(0); i <= highest; i++ {
		z := n.zones[i]
		if z.managed == 0 {
			continue
		}
		any = true
		if z.watermarkOK(order, z.wmarkPages(WmarkHigh), highest, 0) {
			return true
		}
	}
	return !any
}

// watermarkBoosted reports whether a managed zone up to highest is boosted.
//
// Kernel: mm/vmscan.c:pgdat_watermark_boosted().
func (n *Node) watermarkBoosted(highest gfp.ZoneType) bool {
	for i := highest; i >= 0; i-- {
		if z := n.zones[i]; z.managed > 0 && z.boost.Load() != 0 {
			return true
		}
	}
	return false
}

// wakeAllKswapds wakes the kswapd of every node in the zonelist, once each.
//
// Kernel: mm/page_alloc.c:wake_all_kswapds().
func (a *Allocator) wakeAllKswapds(ac *allocContext, mask gfp.Mask, order Order) {
	var last *Node
	for _, z := range ac.zonelist {
		if z.typ > ac.highest || z.managed == 0 || z.node == last {
			continue
		}
		what := a.wakeupKswapd(ac.t, z, mask, order, ac.highest)
		if ac.rec != nil {
			ac.rec.addf(StepKswapd, nil, "wake_all_kswapds: wakeup_kswapd node %d order %d highest zone %s: %s",
				z.node.id, order, ac.highest, what)
		}
		last = z.node
	}
}

// gfpToAllocFlags derives the slow path's alloc flags from the mask.
//
// Kernel: mm/page_alloc.c:gfp_to_alloc_flags().
func gfpToAllocFlags(mask gfp.Mask, order Order) allocFlags {
	af := allocWmarkMin | allocCPUSet | allocFlags(mask&gfpToAllocPassthru)
	if mask&gfp.DirectReclaim == 0 {
		if mask&gfp.NoMemalloc == 0 {
			af |= allocNonBlock
			if order > 0 && af&allocMinReserve != 0 {
				af |= allocHighAtomic
			}
		}
		if af&allocMinReserve != 0 {
			af &^= allocCPUSet
		}
	}
	return af
}

// pfmemallocFlags returns the reserve access the request may have: all of
// it for __GFP_MEMALLOC and PF_MEMALLOC tasks, the OOM share for OOM
// victims, none with __GFP_NOMEMALLOC. mmsim runs every request in task
// context (no interrupts).
//
// Kernel: mm/page_alloc.c:__gfp_pfmemalloc_flags().
func (a *Allocator) pfmemallocFlags(t *memalloc.Task, mask gfp.Mask) allocFlags {
	switch {
	case mask&gfp.NoMemalloc != 0:
		return 0
	case mask&gfp.Memalloc != 0:
		return allocNoWatermarks
	case t.Flags()&memalloc.PFMemalloc != 0:
		return allocNoWatermarks
	case a.opts.SlowPath.OOM != nil && a.opts.SlowPath.OOM.IsVictim(t):
		return allocOOM
	}
	return 0
}

// slowpath is __alloc_pages_slowpath: the steps the kernel takes, in its
// order, when the fast path found no zone above its low watermark.
//
// Kernel: mm/page_alloc.c:__alloc_pages_slowpath().
func (a *Allocator) slowpath(ac *allocContext, mask gfp.Mask, order Order) (PFN, bool, error) {
	t := ac.t
	rec := ac.rec
	canDirectReclaim := mask.AllowsBlocking()
	canCompact := canDirectReclaim && mask.CompactionAllowed()
	nofail := mask&gfp.NoFail != 0
	costly := order > CostlyOrder
	sp := a.opts.SlowPath
	start := a.now()
	if rec != nil {
		rec.slowpathEntry(mask, order, canDirectReclaim, canCompact, costly, nofail)
	}

	if nofail {
		if !canDirectReclaim {
			a.warnOnce("nofail-nonblocking", "mm/page_alloc.c:__alloc_pages_slowpath",
				"WARN_ON_ONCE(!can_direct_reclaim): __GFP_NOFAIL request %s cannot direct-reclaim", mask.Mode())
			if rec != nil {
				rec.add(Step{Kind: StepWarn, Site: "mm/page_alloc.c:__alloc_pages_slowpath",
					Text: "WARN_ON_ONCE(!can_direct_reclaim): __GFP_NOFAIL without __GFP_DIRECT_RECLAIM (" +
						rec.removedBy(gfp.DirectReclaim) + ") is not supported: it may return NULL (once per boot)"})
			}
		}
		if t.Flags()&memalloc.PFMemalloc != 0 {
			a.warnOnce("nofail-pfmemalloc", "mm/page_alloc.c:__alloc_pages_slowpath",
				"WARN_ON_ONCE(current->flags & PF_MEMALLOC): __GFP_NOFAIL request %s from a PF_MEMALLOC task", mask.Mode())
			if rec != nil {
				rec.add(Step{Kind: StepWarn, Site: "mm/page_alloc.c:__alloc_pages_slowpath",
					Text: "WARN_ON_ONCE(current->flags & PF_MEMALLOC): a __GFP_NOFAIL request from a task that " +
						"cannot reclaim can only loop waiting for others (once per boot)"})
			}
		}
	}

	var (
		af             allocFlags
		progress       int64
		compactResult  CompactResult
		compactPrio    int
		compactRetries int
		noProgress     int
		compactFirst   bool
		retryReserves  = true
		// loop names the retry that brought the request back, for the
		// stall-limit error.
		loop string
	)
	// restart: mmsim has no cpusets and its zonelists never change, so
	// the kernel's checks that jump back here never fire.
	compactRetries, noProgress = 0, 0
	compactResult, compactPrio = CompactSkipped, CompactPrioSyncLight
	if canCompact && (costly || (order > 0 && ac.mt != mtMovable)) {
		compactFirst, compactPrio = true, CompactPrioAsync
	}
	af = gfpToAllocFlags(mask, order)
	if rec != nil {
		rec.compactFirst(order, costly, canCompact, compactFirst, ac.mt, mask)
		rec.allocFlags(mask, order, af)
	}
	if ac.preferred < 0 {
		if rec != nil {
			rec.addf(StepNoPage, nil, "first_zones_zonelist: no zone up to %s: goto nopage", ac.highest)
		}
		goto nopage
	}
retry:
	if loop != "" && a.opts.Advance != nil {
		a.opts.Advance(a.opts.RetryCost)
	}
	if limit := a.opts.StallLimit; limit > 0 && loop != "" && a.now()-start > limit {
		if rec != nil {
			rec.addf(StepDeadlock, nil, "mmsim stall limit: %s in __alloc_pages_slowpath (limit %s), looping through %s: "+
				"ErrDeadlock (the kernel would retry for ever)", fmtNs(a.now()-start), fmtNs(limit), loop)
		}
		return 0, false, a.stallDeadlock(t, mask, order, a.now()-start, loop)
	}
	if af&allocKswapd != 0 {
		a.wakeAllKswapds(ac, mask, order)
	}
	if rec != nil {
		rec.freelist("slow path", mask, af)
	}
	if pfn, ok := a.getPageFromFreelist(ac, mask, order, af); ok {
		return pfn, true, nil
	}
	if reserve := a.pfmemallocFlags(t, mask); reserve != 0 {
		af = reserve | af&allocKswapd
		if rec != nil {
			rec.reserves(mask, reserve, af, retryReserves)
		}
		if retryReserves {
			retryReserves = false
			if rec != nil {
				rec.retry("can_retry_reserves: the first change of the alloc flags retries at once")
			}
			goto retry
		}
	} else {
		if rec != nil {
			rec.reserves(mask, 0, af, retryReserves)
		}
		if af&allocCPUSet == 0 && retryReserves {
			retryReserves = false
			if rec != nil {
				rec.retry("no ALLOC_CPUSET: the nodemask is dropped; the first such change retries at once (can_retry_reserves)")
			}
			goto retry
		}
	}
	if !canDirectReclaim {
		if rec != nil {
			rec.addf(StepNoPage, nil, "!can_direct_reclaim (%s): the caller will not reclaim: goto nopage", rec.removedBy(gfp.DirectReclaim))
		}
		goto nopage
	}
	// The recursion guard: a task already reclaiming must not reclaim.
	if t.Flags()&memalloc.PFMemalloc != 0 {
		if rec != nil {
			rec.addf(StepNoPage, nil, "current->flags & PF_MEMALLOC: avoid recursion of direct reclaim: goto nopage")
		}
		goto nopage
	}
	{
		stall, why := a.checkStallWarn(t, mask, order, start)
		if rec != nil && stall >= allocStallWarn {
			rec.add(Step{Kind: StepStall, OK: why == stallReported, Elapsed: stall, Text: fmt.Sprintf(
				"check_alloc_stall_warn: %s in the slow path (>= ALLOC_STALL_WARN_MSECS 10 s): %s", fmtNs(stall), why)})
		}
	}
	if !compactFirst {
		if pfn, ok := a.directReclaim(ac, mask, order, af, &progress); ok {
			return pfn, true, nil
		}
	} else if rec != nil {
		rec.addf(StepReclaim, nil, "compact_first: no direct reclaim in this round, compaction first")
	}
	if pfn, ok := a.directCompact(ac, mask, order, af, compactPrio, &compactResult); ok {
		return pfn, true, nil
	}
	if compactFirst {
		if mask&(gfp.NoRetry|gfp.ThisNode) == gfp.NoRetry|gfp.ThisNode {
			if rec != nil {
				rec.addf(StepNoPage, nil, "compact_first with __GFP_NORETRY|__GFP_THISNODE (a THP fault trying the local "+
					"node): compaction failed, no reclaim: goto nopage")
			}
			goto nopage
		}
		if mask&gfp.NoRetry == 0 {
			compactPrio = CompactPrioSyncLight
		}
		compactFirst = false
		if rec != nil {
			prio := "compact_priority back to DEF_COMPACT_PRIORITY (COMPACT_PRIO_SYNC_LIGHT)"
			if mask&gfp.NoRetry != 0 {
				prio = "__GFP_NORETRY keeps the lowered COMPACT_PRIO_ASYNC"
			}
			rec.retry("compact_first done: reclaim and compact from now on; " + prio)
		}
		goto retry
	}
	if mask&gfp.NoRetry != 0 {
		if rec != nil {
			rec.addf(StepNoPage, nil, "__GFP_NORETRY: do not loop: goto nopage (after one round of reclaim and compaction)")
		}
		goto nopage
	}
	if costly && (!canCompact || mask&gfp.RetryMayFail == 0) {
		if rec != nil {
			why := "without __GFP_RETRY_MAYFAIL"
			if !canCompact {
				why = "that cannot compact (" + rec.removedBy(gfp.IO) + ")"
			}
			rec.addf(StepNoPage, nil, "costly order %d > PAGE_ALLOC_COSTLY_ORDER %s: no retry: goto nopage", order, why)
		}
		goto nopage
	}
	if rec != nil {
		rec.noRestart()
	}
	if a.shouldReclaimRetry(ac, mask, order, af, progress > 0, &noProgress) {
		loop = "should_reclaim_retry (reclaimable pages would meet the min watermark)"
		if rec != nil {
			rec.retry("should_reclaim_retry")
		}
		goto retry
	}
	if progress > 0 && canCompact {
		ok := a.shouldCompactRetry(ac, order, af, compactResult, &compactPrio, &compactRetries)
		if rec != nil {
			rec.compactRetry(order, compactResult, compactPrio, compactRetries, ok)
		}
		if ok {
			loop = "should_compact_retry"
			if rec != nil {
				rec.retry("should_compact_retry")
			}
			goto retry
		}
	} else if rec != nil {
		why := "no reclaim progress (compaction needs free order-0 pages to work with)"
		if !canCompact {
			why = "the request cannot compact (" + rec.removedBy(gfp.IO) + ")"
		}
		rec.addf(StepCompactRetry, nil, "should_compact_retry not consulted: %s", why)
	}
	{
		pfn, ok, oomProgress := a.mayOOM(ac, mask, order)
		if ok {
			return pfn, true, nil
		}
		if sp.OOM != nil && sp.OOM.IsVictim(t) && (af&allocOOM != 0 || mask&gfp.NoMemalloc != 0) {
			if rec != nil {
				why := "ALLOC_OOM"
				if af&allocOOM == 0 {
					why = "__GFP_NOMEMALLOC"
				}
				rec.addf(StepNoPage, nil, "tsk_is_oom_victim(current) with %s: avoid looping with no watermarks: goto nopage", why)
			}
			goto nopage
		}
		if oomProgress {
			if nofail && sp.Reclaim == nil && sp.OOM == nil {
				// Only the NOFAIL fallback "progressed": with no reclaim
				// and no OOM killer nothing can ever free memory, and
				// the kernel would goto retry for ever.
				if rec != nil {
					rec.addf(StepDeadlock, nil, "mmsim: __GFP_NOFAIL with neither reclaim nor an OOM killer: nothing can "+
						"ever free memory, and the kernel would goto retry for ever: ErrDeadlock")
				}
				return 0, false, a.nofailDeadlock(mask, order)
			}
			noProgress = 0
			loop = "__alloc_pages_may_oom (the OOM killer reported progress"
			if mask&gfp.FS == 0 {
				loop += ": out_of_memory() never kills for a request without __GFP_FS"
			}
			loop += ")"
			if rec != nil {
				rec.retry("the OOM killer made progress: no_progress_loops = 0")
			}
			goto retry
		}
		if rec != nil {
			rec.addf(StepNoPage, nil, "__alloc_pages_may_oom made no progress: fall through to nopage")
		}
	}
nopage:
	if rec != nil {
		rec.noRestart()
	}
	if nofail {
		if !canDirectReclaim {
			if rec != nil {
				rec.addf(StepNoFail, nil, "nopage: __GFP_NOFAIL but !can_direct_reclaim: the unreasonable request gets NULL: goto fail")
			}
			goto fail
		}
		if rec != nil {
			rec.freelist("nopage: __GFP_NOFAIL: __alloc_pages_cpuset_fallback with ALLOC_MIN_RESERVE (ALLOC_CPUSET first)", mask, allocMinReserve|allocCPUSet)
		}
		if pfn, ok := a.cpusetFallback(ac, mask, order, allocMinReserve); ok {
			return pfn, true, nil
		}
		if sp.Reclaim == nil && sp.OOM == nil {
			// The kernel would goto retry for ever: nothing here can
			// free memory, so say so instead of hanging.
			if rec != nil {
				rec.addf(StepDeadlock, nil, "mmsim: __GFP_NOFAIL with neither reclaim nor an OOM killer: nothing can "+
					"ever free memory, and the kernel would goto retry for ever: ErrDeadlock")
			}
			return 0, false, a.nofailDeadlock(mask, order)
		}
		loop = "the __GFP_NOFAIL retry at nopage"
		if rec != nil {
			rec.retry("__GFP_NOFAIL never fails: cond_resched, goto retry")
		}
		goto retry
	}
fail:
	{
		why := a.warnAllocWhy(t, mask, fmt.Sprintf("page allocation failure: order:%d", order))
		if rec != nil {
			rec.add(Step{Kind: StepFailed, Site: "mm/page_alloc.c:warn_alloc", Text: fmt.Sprintf(
				"fail: warn_alloc(\"page allocation failure: order:%d\", mode:%s): %s; return NULL", order, mask.Mode(), why)})
		}
	}
	return 0, false, &AllocError{Order: order, Mask: mask}
}

// stallDeadlock is the error of a request still looping in the slow path
// after the stall limit of simulated time: the kernel would loop on.
func (a *Allocator) stallDeadlock(t *memalloc.Task, mask gfp.Mask, order Order, stall int64, loop string) error {
	return fmt.Errorf("%w: %s: order %d %s still in __alloc_pages_slowpath after %d s of simulated time (the stall limit), "+
		"looping through %s: the kernel would retry for ever", ErrDeadlock, t.Comm(), order, mask.Mode(), stall/1e9, loop)
}

// nofailDeadlock is the error of a blocking NOFAIL request the machine can
// never satisfy.
func (a *Allocator) nofailDeadlock(mask gfp.Mask, order Order) error {
	return fmt.Errorf("%w: __GFP_NOFAIL %s order %d stuck in __alloc_pages_slowpath's retry loop: "+
		"no zone has a free block even below the watermarks, and the machine has neither reclaim nor an OOM killer",
		ErrDeadlock, mask.Mode(), order)
}

// cpusetFallback is a last freelist attempt with extra alloc flags, first
// inside the cpuset and then outside it.
//
// Kernel: mm/page_alloc.c:__alloc_pages_cpuset_fallback().
func (a *Allocator) cpusetFallback(ac *allocContext, mask gfp.Mask, order Order, af allocFlags) (PFN, bool) {
	if pfn, ok := a.getPageFromFreelist(ac, mask, order, af|allocCPUSet); ok {
		return pfn, true
	}
	if ac.rec != nil {
		ac.rec.freelist("__alloc_pages_cpuset_fallback: again without ALLOC_CPUSET", mask, af)
	}
	return a.getPageFromFreelist(ac, mask, order, af)
}

// directReclaim reclaims with PF_MEMALLOC set, then retries the freelists;
// on a failure after progress it unreserves a highatomic block and drains
// the pcp lists once before the last attempt.
//
// Kernel: mm/page_alloc.c:__alloc_pages_direct_reclaim(), __perform_reclaim().
func (a *Allocator) directReclaim(ac *allocContext, mask gfp.Mask, order Order, af allocFlags, progress *int64) (PFN, bool) {
	*progress = 0
	r := a.opts.SlowPath.Reclaim
	rec := ac.rec
	if r == nil {
		if rec != nil {
			rec.addf(StepReclaim, nil, "__alloc_pages_direct_reclaim: the machine has no reclaim: no progress")
		}
		return 0, false
	}
	t := ac.t
	// Reclaim allocates to free memory: it must use the reserves and
	// must not recurse into reclaim.
	fsr := a.NeedReclaim(t, mask)
	if rec != nil {
		rec.reclaimAllowed(mask, fsr)
	}
	if fsr {
		a.FSReclaimAcquire(t)
	}
	began := a.now()
	cookie := t.SaveMemalloc()
	*progress = r.TryToFreePages(t, ac.zonelist, order, mask, ac.highest)
	t.Restore(cookie)
	if fsr {
		a.FSReclaimRelease(t)
	}
	if rec != nil {
		rec.add(Step{Kind: StepReclaim, Pages: *progress, OK: *progress > 0, Elapsed: a.now() - began, Text: fmt.Sprintf(
			"direct reclaim: try_to_free_pages(order %d, %s) -> %d pages reclaimed, in %s of simulated time "+
				"(throttle_direct_reclaim and writeback waits included)", order, mask, *progress, fmtNs(a.now()-began))})
	}
	if *progress == 0 {
		return 0, false
	}
	drained := false
	for {
		if rec != nil {
			what := "after direct reclaim"
			if drained {
				what = "after unreserving and draining"
			}
			rec.freelist(what, mask, af)
		}
		if pfn, ok := a.getPageFromFreelist(ac, mask, order, af); ok || drained {
			return pfn, ok
		}
		if rec != nil {
			rec.addf(StepReclaim, nil, "progress but no page (the pcp lists may hold it): "+
				"unreserve_highatomic_pageblock(force=false), drain_all_pages, try once more")
		}
		a.unreserveHighatomic(ac, false)
		a.DrainAllPages(t)
		drained = true
	}
}

// NeedReclaim reports whether a request of t with the (scoped) mask takes
// the fs_reclaim map: it may reclaim directly, the task is not already
// reclaiming (PF_MEMALLOC), it may enter the filesystem, and it does not
// opt out with __GFP_NOLOCKDEP.
//
// Kernel: mm/page_alloc.c:__need_reclaim().
func (a *Allocator) NeedReclaim(t *memalloc.Task, mask gfp.Mask) bool {
	return mask&gfp.DirectReclaim != 0 && t.Flags()&memalloc.PFMemalloc == 0 &&
		mask&gfp.FS != 0 && mask&gfp.NoLockdep == 0
}

// FSReclaimAcquire takes the fs_reclaim map for t, unconditionally, as
// kswapd does around balance_pgdat and direct reclaim does when
// NeedReclaim holds; a no-op unless the Hooks implement FSReclaimHooks.
//
// Kernel: mm/page_alloc.c:__fs_reclaim_acquire().
func (a *Allocator) FSReclaimAcquire(t *memalloc.Task) {
	if h, ok := a.opts.Hooks.(FSReclaimHooks); ok {
		h.FSReclaimAcquire(t)
	}
}

// FSReclaimRelease releases what FSReclaimAcquire took.
//
// Kernel: mm/page_alloc.c:__fs_reclaim_release().
func (a *Allocator) FSReclaimRelease(t *memalloc.Task) {
	if h, ok := a.opts.Hooks.(FSReclaimHooks); ok {
		h.FSReclaimRelease(t)
	}
}

// directCompact runs direct compaction with PF_MEMALLOC set, then retries
// the freelists. Order 0 never compacts.
//
// Kernel: mm/page_alloc.c:__alloc_pages_direct_compact().
func (a *Allocator) directCompact(ac *allocContext, mask gfp.Mask, order Order, af allocFlags, prio int, result *CompactResult) (PFN, bool) {
	c := a.opts.SlowPath.Compact
	rec := ac.rec
	if order == 0 || c == nil {
		*result = CompactSkipped
		if rec != nil {
			why := "order 0: __alloc_pages_direct_compact returns at once (compaction makes high orders)"
			if order > 0 {
				why = "the machine has no compaction: COMPACT_SKIPPED"
			}
			rec.addf(StepCompact, nil, "%s", why)
		}
		return 0, false
	}
	t := ac.t
	// Compaction allocates to free memory, like reclaim.
	began := a.now()
	cookie := t.SaveMemalloc()
	var page PFN
	var captured bool
	*result, page, captured = c.TryToCompactPages(t, ac.zonelist, order, mask, ac.highest, prio)
	t.Restore(cookie)
	if captured {
		*result = CompactSuccess
	}
	if rec != nil {
		text := fmt.Sprintf("direct compaction: try_to_compact_pages(order %d, prio %s) under PF_MEMALLOC -> %s, in %s "+
			"of simulated time", order, compactPrioName(prio), compactResultName(*result), fmtNs(a.now()-began))
		switch {
		case captured:
			text += fmt.Sprintf("; captured the block at pfn %#x (capture_control)", uint64(page))
		case *result == CompactSkipped || *result == CompactDeferred:
			text += ": no attempt, no COMPACTSTALL"
		}
		rec.add(Step{Kind: StepCompact, OK: captured || *result == CompactSuccess, Elapsed: a.now() - began, Text: text})
	}
	if *result == CompactSkipped || *result == CompactDeferred {
		return 0, false
	}
	// Compaction ran in at least one zone: a stall.
	a.CountEvent(VMCompactStall, 1)
	pfn, ok := page, captured
	if !ok {
		if rec != nil {
			rec.freelist("after direct compaction", mask, af)
		}
		pfn, ok = a.getPageFromFreelist(ac, mask, order, af)
	}
	if ok {
		c.Allocated(a.ZoneOf(pfn), order)
		a.CountEvent(VMCompactSuccess, 1)
		return pfn, true
	}
	a.CountEvent(VMCompactFail, 1)
	return 0, false
}

// shouldReclaimRetry decides whether another round of reclaim could help:
// not after MAX_RECLAIM_RETRIES rounds without progress (a costly order's
// progress never counts), and only while some zone would meet its min
// watermark with all its reclaimable pages freed. When it says no, it
// unreserves a highatomic block, and retries if that freed one.
//
// Kernel: mm/page_alloc.c:should_reclaim_retry().
func (a *Allocator) shouldReclaimRetry(ac *allocContext, mask gfp.Mask, order Order, af allocFlags, progress bool, noProgress *int) bool {
	rec := ac.rec
	if progress && order <= CostlyOrder {
		*noProgress = 0
	} else {
		*noProgress++
	}
	ret := false
	if *noProgress <= MaxReclaimRetries {
		r := a.opts.SlowPath.Reclaim
		for _, z := range ac.zonelist {
			if z.typ > ac.highest {
				continue
			}
			var reclaimable int64
			if r != nil {
				reclaimable = r.ReclaimablePages(z)
			}
			available := reclaimable + z.freePages.Load()
			ok := z.watermarkOKFree(order, z.wmark[WmarkMin].Load()+z.boost.Load(), ac.highest, af, available)
			if rec != nil {
				rec.reclaimRetryZone(z, order, ac.highest, af, reclaimable, available, *noProgress, ok)
			}
			if ok {
				ret = true
				break
			}
		}
	} else if rec != nil {
		rec.add(Step{Kind: StepReclaimRetry, Text: fmt.Sprintf("should_reclaim_retry: no_progress_loops %d > "+
			"MAX_RECLAIM_RETRIES (%d): no retry", *noProgress, MaxReclaimRetries)})
	}
	if !ret {
		if rec != nil {
			rec.addf(StepReclaimRetry, nil, "should_reclaim_retry: no zone would meet its min watermark even with every "+
				"reclaimable page freed: before OOM, exhaust the highatomic reserve")
		}
		ok := a.unreserveHighatomic(ac, true)
		if rec != nil && ok {
			rec.addf(StepReclaimRetry, nil, "should_reclaim_retry: a highatomic pageblock was unreserved: retry")
		}
		return ok
	}
	// A workqueue worker that loops without sleeping would stall its
	// pool's concurrency management: it sleeps a tick.
	if ac.t.Flags()&memalloc.PFWQWorker != 0 {
		began := a.now()
		a.sleep(sim.Jiffy)
		if rec != nil {
			rec.add(Step{Kind: StepSleep, Elapsed: a.now() - began, Text: "should_reclaim_retry: PF_WQ_WORKER: " +
				"schedule_timeout_uninterruptible(1) instead of cond_resched, so the workqueue sees it congested (" +
				fmtNs(a.now()-began) + ")"})
		}
	}
	return true
}

// shouldCompactRetry decides whether another round of compaction could
// help: after a success, up to MAX_COMPACT_RETRIES (a quarter for costly
// orders); otherwise by raising the priority while it can.
//
// Kernel: mm/page_alloc.c:should_compact_retry().
func (a *Allocator) shouldCompactRetry(ac *allocContext, order Order, af allocFlags, result CompactResult, prio, retries *int) bool {
	if order == 0 {
		return false
	}
	switch result {
	case CompactSkipped:
		c := a.opts.SlowPath.Compact
		return c != nil && c.ZonelistSuitable(ac.zonelist, order, ac.highest)
	case CompactSuccess:
		max := maxCompactRetries
		if order > CostlyOrder {
			max /= 4
		}
		*retries++
		if *retries <= max {
			return true
		}
		// Out of retries at this priority: escalate, as for a failure.
	}
	minPrio := CompactPrioSyncFull
	if order > CostlyOrder {
		minPrio = CompactPrioSyncLight
	}
	if *prio > minPrio {
		*prio--
		*retries = 0
		return true
	}
	return false
}

// mayOOM is the last step before giving up: one more freelist attempt at the
// high watermark, then the OOM killer unless the request may not kill.
//
// Kernel: mm/page_alloc.c:__alloc_pages_may_oom().
func (a *Allocator) mayOOM(ac *allocContext, mask gfp.Mask, order Order) (PFN, bool, bool) {
	t := ac.t
	rec := ac.rec
	// Another task is handling the OOM: it will free memory; count it as
	// progress, sleep a tick and try again.
	if !a.oomLock.TryLock() {
		began := a.now()
		a.sleep(sim.Jiffy)
		if rec != nil {
			rec.add(Step{Kind: StepSleep, Elapsed: a.now() - began, Text: "__alloc_pages_may_oom: oom_lock is held by " +
				"another task, which is making progress for us: did_some_progress = 1, " +
				"schedule_timeout_uninterruptible(1) (" + fmtNs(a.now()-began) + ")"})
		}
		return 0, false, true
	}
	defer a.oomLock.Unlock()
	// A parallel OOM kill may have freed memory: look once more, at the
	// high watermark, so that this attempt cannot itself cause a kill.
	hmask := (mask | gfp.Hardwall) &^ gfp.DirectReclaim
	if rec != nil {
		rec.freelist("__alloc_pages_may_oom: oom_lock taken; one more look at the high watermark for a parallel OOM kill",
			hmask, allocWmarkHigh|allocCPUSet)
	}
	if pfn, ok := a.getPageFromFreelist(ac, hmask, order, allocWmarkHigh|allocCPUSet); ok {
		return pfn, true, false
	}
	var skip string
	switch {
	case t.Flags()&memalloc.PFDumpCore != 0:
		skip = "PF_DUMPCORE: coredumps can quickly deplete all memory reserves"
	case order > CostlyOrder:
		skip = fmt.Sprintf("order %d > PAGE_ALLOC_COSTLY_ORDER: the OOM killer will not help higher order allocations", order)
	case mask&gfp.RetryMayFail != 0:
		skip = "__GFP_RETRY_MAYFAIL: the caller has a more reasonable fallback than shooting a random task"
	case mask&gfp.ThisNode != 0:
		skip = "__GFP_THISNODE: the OOM killer may not free memory on a specific node"
	case ac.highest < gfp.ZoneNormal:
		skip = fmt.Sprintf("highest zone %s < ZONE_NORMAL: the OOM killer does not needlessly kill tasks for lowmem", ac.highest)
	}
	if skip != "" {
		if rec != nil {
			rec.addf(StepOOM, nil, "__alloc_pages_may_oom: OOM killer not invoked: %s", skip)
		}
		return 0, false, false
	}
	oom := a.opts.SlowPath.OOM
	began := a.now()
	killed := oom != nil && oom.OutOfMemory(t, mask, order, ac.highest)
	if rec != nil {
		rec.outOfMemory(mask, oom != nil, killed, a.now()-began)
	}
	if !killed && mask&gfp.NoFail != 0 {
		a.warnOnceGFP(t, mask, "nofail-oom", "mm/page_alloc.c:__alloc_pages_may_oom",
			"WARN_ON_ONCE_GFP(__GFP_NOFAIL): the OOM killer made no progress for %s", mask.Mode())
		if rec != nil {
			rec.add(Step{Kind: StepWarn, Site: "mm/page_alloc.c:__alloc_pages_may_oom", Text: "WARN_ON_ONCE_GFP(__GFP_NOFAIL): " +
				"out_of_memory() made no progress, but a __GFP_NOFAIL request counts as progress anyway " +
				"(silent under __GFP_NOWARN; once per boot)"})
		}
	}
	if killed || mask&gfp.NoFail != 0 {
		if mask&gfp.NoFail != 0 {
			if rec != nil {
				rec.freelist("__alloc_pages_may_oom: __GFP_NOFAIL: __alloc_pages_cpuset_fallback with ALLOC_NO_WATERMARKS "+
					"(ALLOC_CPUSET first)", mask, allocNoWatermarks|allocCPUSet)
			}
			if pfn, ok := a.cpusetFallback(ac, mask, order, allocNoWatermarks); ok {
				return pfn, true, true
			}
		}
		return 0, false, true
	}
	return 0, false, false
}

// unreserveHighatomic gives a highatomic pageblock of the zonelist back.
//
// Kernel: mm/page_alloc.c:unreserve_highatomic_pageblock().
func (a *Allocator) unreserveHighatomic(ac *allocContext, force bool) bool {
	for _, z := range ac.zonelist {
		if z.typ > ac.highest {
			continue
		}
		z.mu.Lock()
		ok := z.unreserveHighatomicLocked(ac.mt, force)
		reserved := z.reservedHighatomic
		warn := z.pendingWarn
		z.pendingWarn = ""
		z.mu.Unlock()
		if warn != "" { // reported after the unlock: a report sink may panic
			a.warnOnce("unreserve_highatomic_pageblock", "mm/page_alloc.c:unreserve_highatomic_pageblock", "%s", warn)
		}
		if ok {
			if ac.rec != nil {
				ac.rec.addOK(StepHighatomic, z, true, "unreserve_highatomic_pageblock(force=%t): a MIGRATE_HIGHATOMIC pageblock "+
					"went back to %s (nr_reserved_highatomic now %d)", force, ac.mt, reserved)
			}
			return true
		}
	}
	if ac.rec != nil {
		what := "no zone had a highatomic pageblock to give back"
		if !force {
			what += " (without force, a zone keeps its last reserved pageblock)"
		}
		ac.rec.addf(StepHighatomic, nil, "unreserve_highatomic_pageblock(force=%t): %s", force, what)
	}
	return false
}

// DrainAllPages returns every CPU's pcp pages to the buddy lists, as
// drain_all_pages(NULL) does.
//
// Kernel: mm/page_alloc.c:drain_all_pages().
func (a *Allocator) DrainAllPages(t *memalloc.Task) {
	a.forEachZone(func(z *Zone) { a.DrainZone(t, z) })
}

// DrainZone returns every CPU's pcp pages of z to the buddy lists, as
// drain_all_pages(zone) does.
//
// Kernel: mm/page_alloc.c:drain_all_pages().
func (a *Allocator) DrainZone(t *memalloc.Task, z *Zone) {
	if z == nil || !z.populated() {
		return
	}
	for cpu := range z.pcp {
		z.drainPCP(t, cpu)
	}
}

// sleep is schedule_timeout_uninterruptible: the simulated clock moves on
// and the daemons run.
func (a *Allocator) sleep(d int64) {
	if a.opts.Sleep != nil {
		a.opts.Sleep(d)
	}
}

func (a *Allocator) now() int64 {
	if a.opts.Now == nil {
		return 0
	}
	return a.opts.Now()
}

// allocStallWarn is ALLOC_STALL_WARN_MSECS (10 s), in ns.
const allocStallWarn = 10 * sim.HZ * sim.Jiffy

// warnAlloc reports a failed allocation, unless __GFP_NOWARN, the rate limit,
// or a DMA request on a machine without DMA memory silences it.
//
// Kernel: mm/page_alloc.c:warn_alloc().
func (a *Allocator) warnAlloc(t *memalloc.Task, mask gfp.Mask, order Order) {
	a.WarnAlloc(t, mask, fmt.Sprintf("page allocation failure: order:%d", order))
}

// WarnAlloc is warn_alloc() for the callers outside the page allocator
// (vmalloc): msg is its formatted message ("vmalloc error: size 4096,
// exceeds total pages"), printed after the task's comm and before the
// mode, nodemask and cpuset, then the Mem-Info block. __GFP_NOWARN, the
// rate limit (one report per 10 s, shared with the page allocator) and a
// DMA request on a machine without DMA memory silence it.
//
// Kernel: mm/page_alloc.c:warn_alloc().
func (a *Allocator) WarnAlloc(t *memalloc.Task, mask gfp.Mask, msg string) {
	a.warnAllocWhy(t, mask, msg)
}

// warnAllocWhy is WarnAlloc, saying what it did, for Explain.
func (a *Allocator) warnAllocWhy(t *memalloc.Task, mask gfp.Mask, msg string) string {
	if mask&gfp.NoWarn != 0 {
		return "silent: __GFP_NOWARN"
	}
	// The rate limit is consulted before the DMA test, as the kernel's
	// short-circuit order does: a silenced DMA request uses the token.
	ok, suppressed := a.nopage.Allow(a.now())
	if suppressed > 0 {
		a.report(t, bug.Alloc, "lib/ratelimit.c:___ratelimit", fmt.Sprintf("warn_alloc: %d callbacks suppressed", suppressed))
	}
	if !ok {
		return "silent: rate limited (nopage_rs: one report per 10 s)"
	}
	if mask&gfp.DMA != 0 && !a.hasManagedDMA() {
		return "silent: a GFP_DMA request on a machine without ZONE_DMA memory"
	}
	text := fmt.Sprintf("%s: %s, mode:%s, nodemask=(null),cpuset=/,mems_allowed=%s",
		t.Comm(), msg, mask.Mode(), a.memsAllowed())
	a.report(t, bug.Alloc, "mm/page_alloc.c:warn_alloc", text+a.memInfo(t, mask))
	return "reported"
}

// memInfo is warn_alloc_show_mem's block, for the zones up to the
// request's highest, when the layers above provide what it needs.
//
// Kernel: mm/page_alloc.c:warn_alloc_show_mem().
func (a *Allocator) memInfo(t *memalloc.Task, mask gfp.Mask) string {
	if a.opts.MemInfo == nil {
		return ""
	}
	hz, _ := mask.Zone()
	x := a.opts.MemInfo()
	x.CPU = t.CPU()
	var b strings.Builder
	b.WriteByte('\n')
	a.ShowMem(&b, hz, x)
	return strings.TrimSuffix(b.String(), "\n")
}

// checkStallWarn warns when an allocation has spent more than 10 s of
// simulated time in the slow path.
//
// Kernel: mm/page_alloc.c:check_alloc_stall_warn().
func (a *Allocator) checkStallWarn(t *memalloc.Task, mask gfp.Mask, order Order, start int64) (stall int64, why string) {
	now := a.now()
	stall = now - start
	switch {
	case stall < allocStallWarn:
		return stall, "below 10 s"
	case now < a.stallWarnNext.Load():
		return stall, "not reported: one stall warning per 10 s for the whole machine"
	case mask&gfp.NoWarn != 0:
		return stall, "not reported: __GFP_NOWARN"
	}
	// One stall warning per 10 s for the whole machine.
	if next := a.stallWarnNext.Load(); now < next || !a.stallWarnNext.CompareAndSwap(next, now+allocStallWarn) {
		return stall, "not reported: one stall warning per 10 s for the whole machine"
	}
	a.report(t, bug.Alloc, "mm/page_alloc.c:check_alloc_stall_warn", fmt.Sprintf(
		"%s: page allocation stall for %d secs: order:%d, mode:%s nodemask=(null),cpuset=/,mems_allowed=%s",
		t.Comm(), stall/1e9, order, mask.Mode(), a.memsAllowed())+a.memInfo(t, mask))
	return stall, stallReported
}

// stallReported is checkStallWarn's answer when it printed.
const stallReported = `reported ("page allocation stall for N secs")`

func (a *Allocator) hasManagedDMA() bool {
	for _, n := range a.nodes {
		if n.zones[gfp.ZoneDMA].managed > 0 {
			return true
		}
	}
	return false
}

// MemsAllowed prints the nodes with memory (N_MEMORY, a task's default
// mems_allowed) as %*pbl prints a bitmap: "0", "0-1", "0,2-3".
func (a *Allocator) MemsAllowed() string { return a.memsAllowed() }

func (a *Allocator) memsAllowed() string {
	var parts []string
	for i := 0; i < len(a.nodes); {
		if !a.nodes[i].hasMemory() {
			i++
			continue
		}
		j := i
		for j+1 < len(a.nodes) && a.nodes[j+1].hasMemory() {
			j++
		}
		if i == j {
			parts = append(parts, fmt.Sprint(i))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", i, j))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// hasMemory reports whether the node has a populated zone (N_MEMORY).
func (n *Node) hasMemory() bool {
	for _, z := range n.zones {
		if z.populated() {
			return true
		}
	}
	return false
}

// SetSlowPath plugs reclaim, compaction and the OOM killer in. The layers
// above are built on the booted allocator, so they arrive after New; call
// it before the first allocation.
func (a *Allocator) SetSlowPath(sp SlowPath) {
	a.opts.SlowPath = sp
	a.setKswapdWatch()
}

// SetHooks plugs the allocation hooks in (Options.Hooks), for layers built
// after the allocator (slab, the debug allocators, lockdep). Like
// SetSlowPath it must be called before the first allocation.
func (a *Allocator) SetHooks(h Hooks) {
	a.opts.Hooks = h
	if h != nil {
		a.watch.Or(watchHooks)
	} else {
		a.watch.And(^watchHooks)
	}
}
