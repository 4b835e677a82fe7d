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
	// request in the node's kswapd order and zone (wakeup_kswapd).
	WakeKswapd(n *Node, order Order, highest gfp.ZoneType, mask gfp.Mask)
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

// kswapdState is what the allocator records of a node's kswapd.
//
// Kernel: include/linux/mmzone.h:pglist_data (kswapd_order,
// kswapd_highest_zoneidx).
type kswapdState struct {
	mu      sync.Mutex
	order   Order
	highest gfp.ZoneType
	set     bool  // highest is meaningful (not MAX_NR_ZONES)
	wakes   int64 // wakeups the allocator asked for
}

// KswapdWakes returns how many times allocations woke the node's kswapd.
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

// wakeupKswapd records the request for z's node's kswapd and wakes it,
// unless the node is already balanced for it.
//
// Kernel: mm/vmscan.c:wakeup_kswapd().
func (a *Allocator) wakeupKswapd(t *memalloc.Task, z *Zone, mask gfp.Mask, order Order, highest gfp.ZoneType) {
	if z.managed == 0 {
		return
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
	if n.Balanced(order, highest) && !n.watermarkBoosted(highest) {
		if c := a.opts.SlowPath.Compact; c != nil && mask&gfp.DirectReclaim == 0 {
			c.WakeKcompactd(n, order, highest)
		}
		return
	}
	n.kswapd.mu.Lock()
	n.kswapd.wakes++
	n.kswapd.mu.Unlock()
	if r := a.opts.SlowPath.Reclaim; r != nil {
		r.WakeKswapd(n, order, highest, mask)
	}
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
		a.wakeupKswapd(ac.t, z, mask, order, ac.highest)
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
	canDirectReclaim := mask.AllowsBlocking()
	canCompact := canDirectReclaim && mask.CompactionAllowed()
	nofail := mask&gfp.NoFail != 0
	costly := order > CostlyOrder
	sp := a.opts.SlowPath
	start := a.now()

	if nofail {
		if !canDirectReclaim {
			a.warnOnce("nofail-nonblocking", "mm/page_alloc.c:__alloc_pages_slowpath",
				"WARN_ON_ONCE(!can_direct_reclaim): __GFP_NOFAIL request %s cannot direct-reclaim", mask.Mode())
		}
		if t.Flags()&memalloc.PFMemalloc != 0 {
			a.warnOnce("nofail-pfmemalloc", "mm/page_alloc.c:__alloc_pages_slowpath",
				"WARN_ON_ONCE(current->flags & PF_MEMALLOC): __GFP_NOFAIL request %s from a PF_MEMALLOC task", mask.Mode())
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
	if ac.preferred < 0 {
		goto nopage
	}
retry:
	if loop != "" && a.opts.Advance != nil {
		a.opts.Advance(a.opts.RetryCost)
	}
	if limit := a.opts.StallLimit; limit > 0 && loop != "" && a.now()-start > limit {
		return 0, false, a.stallDeadlock(t, mask, order, a.now()-start, loop)
	}
	if af&allocKswapd != 0 {
		a.wakeAllKswapds(ac, mask, order)
	}
	if pfn, ok := a.getPageFromFreelist(ac, mask, order, af); ok {
		return pfn, true, nil
	}
	if reserve := a.pfmemallocFlags(t, mask); reserve != 0 {
		af = reserve | af&allocKswapd
		if retryReserves {
			retryReserves = false
			goto retry
		}
	} else if af&allocCPUSet == 0 && retryReserves {
		retryReserves = false
		goto retry
	}
	if !canDirectReclaim {
		goto nopage
	}
	// The recursion guard: a task already reclaiming must not reclaim.
	if t.Flags()&memalloc.PFMemalloc != 0 {
		goto nopage
	}
	a.checkStallWarn(t, mask, order, start)
	if !compactFirst {
		if pfn, ok := a.directReclaim(ac, mask, order, af, &progress); ok {
			return pfn, true, nil
		}
	}
	if pfn, ok := a.directCompact(ac, mask, order, af, compactPrio, &compactResult); ok {
		return pfn, true, nil
	}
	if compactFirst {
		if mask&(gfp.NoRetry|gfp.ThisNode) == gfp.NoRetry|gfp.ThisNode {
			goto nopage
		}
		if mask&gfp.NoRetry == 0 {
			compactPrio = CompactPrioSyncLight
		}
		compactFirst = false
		goto retry
	}
	if mask&gfp.NoRetry != 0 {
		goto nopage
	}
	if costly && (!canCompact || mask&gfp.RetryMayFail == 0) {
		goto nopage
	}
	if a.shouldReclaimRetry(ac, mask, order, af, progress > 0, &noProgress) {
		loop = "should_reclaim_retry (reclaimable pages would meet the min watermark)"
		goto retry
	}
	if progress > 0 && canCompact && a.shouldCompactRetry(ac, order, af, compactResult, &compactPrio, &compactRetries) {
		loop = "should_compact_retry"
		goto retry
	}
	{
		pfn, ok, oomProgress := a.mayOOM(ac, mask, order)
		if ok {
			return pfn, true, nil
		}
		if sp.OOM != nil && sp.OOM.IsVictim(t) && (af&allocOOM != 0 || mask&gfp.NoMemalloc != 0) {
			goto nopage
		}
		if oomProgress {
			if nofail && sp.Reclaim == nil && sp.OOM == nil {
				// Only the NOFAIL fallback "progressed": with no reclaim
				// and no OOM killer nothing can ever free memory, and
				// the kernel would goto retry for ever.
				return 0, false, a.nofailDeadlock(mask, order)
			}
			noProgress = 0
			loop = "__alloc_pages_may_oom (the OOM killer reported progress"
			if mask&gfp.FS == 0 {
				loop += ": out_of_memory() never kills for a request without __GFP_FS"
			}
			loop += ")"
			goto retry
		}
	}
nopage:
	if nofail {
		if !canDirectReclaim {
			goto fail
		}
		if pfn, ok := a.cpusetFallback(ac, mask, order, allocMinReserve); ok {
			return pfn, true, nil
		}
		if sp.Reclaim == nil && sp.OOM == nil {
			// The kernel would goto retry for ever: nothing here can
			// free memory, so say so instead of hanging.
			return 0, false, a.nofailDeadlock(mask, order)
		}
		loop = "the __GFP_NOFAIL retry at nopage"
		goto retry
	}
fail:
	a.warnAlloc(t, mask, order)
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
	if r == nil {
		return 0, false
	}
	t := ac.t
	// Reclaim allocates to free memory: it must use the reserves and
	// must not recurse into reclaim.
	fsr := a.NeedReclaim(t, mask)
	if fsr {
		a.FSReclaimAcquire(t)
	}
	cookie := t.SaveMemalloc()
	*progress = r.TryToFreePages(t, ac.zonelist, order, mask, ac.highest)
	t.Restore(cookie)
	if fsr {
		a.FSReclaimRelease(t)
	}
	if *progress == 0 {
		return 0, false
	}
	drained := false
	for {
		if pfn, ok := a.getPageFromFreelist(ac, mask, order, af); ok || drained {
			return pfn, ok
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
	if order == 0 || c == nil {
		*result = CompactSkipped
		return 0, false
	}
	t := ac.t
	// Compaction allocates to free memory, like reclaim.
	cookie := t.SaveMemalloc()
	var page PFN
	var captured bool
	*result, page, captured = c.TryToCompactPages(t, ac.zonelist, order, mask, ac.highest, prio)
	t.Restore(cookie)
	if captured {
		*result = CompactSuccess
	}
	if *result == CompactSkipped || *result == CompactDeferred {
		return 0, false
	}
	// Compaction ran in at least one zone: a stall.
	a.CountEvent(VMCompactStall, 1)
	pfn, ok := page, captured
	if !ok {
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
			if z.watermarkOKFree(order, z.wmark[WmarkMin].Load()+z.boost.Load(), ac.highest, af, available) {
				ret = true
				break
			}
		}
	}
	if !ret {
		return a.unreserveHighatomic(ac, true)
	}
	// A workqueue worker that loops without sleeping would stall its
	// pool's concurrency management: it sleeps a tick.
	if ac.t.Flags()&memalloc.PFWQWorker != 0 {
		a.sleep(sim.Jiffy)
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
	// Another task is handling the OOM: it will free memory; count it as
	// progress, sleep a tick and try again.
	if !a.oomLock.TryLock() {
		a.sleep(sim.Jiffy)
		return 0, false, true
	}
	defer a.oomLock.Unlock()
	// A parallel OOM kill may have freed memory: look once more, at the
	// high watermark, so that this attempt cannot itself cause a kill.
	if pfn, ok := a.getPageFromFreelist(ac, (mask|gfp.Hardwall)&^gfp.DirectReclaim, order, allocWmarkHigh|allocCPUSet); ok {
		return pfn, true, false
	}
	switch {
	case t.Flags()&memalloc.PFDumpCore != 0, order > CostlyOrder,
		mask&(gfp.RetryMayFail|gfp.ThisNode) != 0, ac.highest < gfp.ZoneNormal:
		return 0, false, false
	}
	oom := a.opts.SlowPath.OOM
	killed := oom != nil && oom.OutOfMemory(t, mask, order, ac.highest)
	if !killed && mask&gfp.NoFail != 0 {
		a.warnOnceGFP(t, mask, "nofail-oom", "mm/page_alloc.c:__alloc_pages_may_oom",
			"WARN_ON_ONCE_GFP(__GFP_NOFAIL): the OOM killer made no progress for %s", mask.Mode())
	}
	if killed || mask&gfp.NoFail != 0 {
		if mask&gfp.NoFail != 0 {
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
		warn := z.pendingWarn
		z.pendingWarn = ""
		z.mu.Unlock()
		if warn != "" { // reported after the unlock: a report sink may panic
			a.warnOnce("unreserve_highatomic_pageblock", "mm/page_alloc.c:unreserve_highatomic_pageblock", "%s", warn)
		}
		if ok {
			return true
		}
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
	if mask&gfp.NoWarn != 0 {
		return
	}
	// The rate limit is consulted before the DMA test, as the kernel's
	// short-circuit order does: a silenced DMA request uses the token.
	ok, suppressed := a.nopage.Allow(a.now())
	if suppressed > 0 {
		a.report(t, bug.Alloc, "lib/ratelimit.c:___ratelimit", fmt.Sprintf("warn_alloc: %d callbacks suppressed", suppressed))
	}
	if !ok || (mask&gfp.DMA != 0 && !a.hasManagedDMA()) {
		return
	}
	text := fmt.Sprintf("%s: %s, mode:%s, nodemask=(null),cpuset=/,mems_allowed=%s",
		t.Comm(), msg, mask.Mode(), a.memsAllowed())
	a.report(t, bug.Alloc, "mm/page_alloc.c:warn_alloc", text+a.memInfo(t, mask))
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
func (a *Allocator) checkStallWarn(t *memalloc.Task, mask gfp.Mask, order Order, start int64) {
	now := a.now()
	stall := now - start
	if stall < allocStallWarn || now < a.stallWarnNext.Load() || mask&gfp.NoWarn != 0 {
		return
	}
	// One stall warning per 10 s for the whole machine.
	if next := a.stallWarnNext.Load(); now < next || !a.stallWarnNext.CompareAndSwap(next, now+allocStallWarn) {
		return
	}
	a.report(t, bug.Alloc, "mm/page_alloc.c:check_alloc_stall_warn", fmt.Sprintf(
		"%s: page allocation stall for %d secs: order:%d, mode:%s nodemask=(null),cpuset=/,mems_allowed=%s",
		t.Comm(), stall/1e9, order, mask.Mode(), a.memsAllowed())+a.memInfo(t, mask))
}

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
func (a *Allocator) SetSlowPath(sp SlowPath) { a.opts.SlowPath = sp }

// SetHooks plugs the allocation hooks in (Options.Hooks), for layers built
// after the allocator (slab, the debug allocators, lockdep). Like
// SetSlowPath it must be called before the first allocation.
func (a *Allocator) SetHooks(h Hooks) { a.opts.Hooks = h }
