package reclaim

import (
	"math"
	"sync"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/mm"
	"github.com/mmsim/mmsim/internal/sim"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// Reclaim constants.
//
// Kernel: include/linux/swap.h:SWAP_CLUSTER_MAX, mm/vmscan.c:DEF_PRIORITY,
// include/linux/swap.h:MAX_SWAPPINESS.
const (
	SwapClusterMax = 32
	DefPriority    = 12
	maxSwappiness  = 200
)

// Options configure reclaim.
type Options struct {
	// Swappiness is vm.swappiness (default 60).
	Swappiness int
	// Costs are the modelled durations.
	Costs Costs
}

// Reclaimer is page reclaim for one machine. It implements zone.Reclaimer.
type Reclaimer struct {
	model *mm.Model
	alloc *zone.Allocator
	clock *sim.Clock
	opts  Options
	costs Costs

	shrinkMu  sync.Mutex // protects shrinkers and their deferred counts
	shrinkers []*shrinkerInfo

	kswapd  []*Kswapd
	flusher *Flusher

	// iter holds the shared cgroup iterators' positions (iterKey).
	iterMu sync.Mutex
	iter   map[iterKey]int
	// compact is the machine's compaction, set by NewCompactor (nil
	// without one): kswapd wakes kcompactd.
	compact *Compactor
}

// New returns the reclaimer of the machine m models, with a kswapd per node
// and the flusher registered as daemons of clock.
func New(m *mm.Model, clock *sim.Clock, opts Options) *Reclaimer {
	if opts.Swappiness < 0 || opts.Swappiness > maxSwappiness {
		opts.Swappiness = 60
	}
	r := &Reclaimer{model: m, alloc: m.Allocator(), clock: clock, opts: opts, costs: opts.Costs,
		iter: map[iterKey]int{}}
	for _, n := range r.alloc.Nodes() {
		k := newKswapd(r, n)
		r.kswapd = append(r.kswapd, k)
		clock.Register(k)
	}
	r.flusher = newFlusher(r)
	clock.Register(r.flusher)
	return r
}

// Kswapd returns node nid's kswapd.
func (r *Reclaimer) Kswapd(nid int) *Kswapd { return r.kswapd[nid] }

// Flusher returns the flusher threads.
func (r *Reclaimer) Flusher() *Flusher { return r.flusher }

// canReclaimAnon reports whether anonymous pages can go anywhere: a swap
// device with free slots.
//
// Kernel: mm/vmscan.c:can_reclaim_anon_pages().
func (r *Reclaimer) canReclaimAnon() bool { return r.model.Swap().FreePages() > 0 }

// ReclaimablePages returns what reclaim could free in z: its file LRU pages,
// and its anon LRU pages when swap has room.
//
// Kernel: mm/vmscan.c:zone_reclaimable_pages().
func (r *Reclaimer) ReclaimablePages(z *zone.Zone) int64 {
	n := z.State(zone.ZoneNrZoneInactiveFile) + z.State(zone.ZoneNrZoneActiveFile)
	if r.canReclaimAnon() {
		n += z.State(zone.ZoneNrZoneInactiveAnon) + z.State(zone.ZoneNrZoneActiveAnon)
	}
	return n
}

// scanControl is one reclaim's parameters and tallies.
//
// Kernel: mm/vmscan.c:struct scan_control.
type scanControl struct {
	t            *memalloc.Task
	mask         gfp.Mask
	order        zone.Order
	reclaimIdx   gfp.ZoneType
	nrToReclaim  int64
	priority     int
	maySwap      bool
	mayDeactAnon bool
	mayDeactFile bool
	cacheTrim    bool
	fileIsTiny   bool
	kswapd       bool
	// target is the cgroup a memcg reclaim works for (nil: global
	// reclaim); memcgLowReclaim lets it into memory.low-protected groups,
	// memcgLowSkipped says it passed one by; memcgFullWalk makes it visit
	// every group of the subtree on each pass.
	target          *mm.MemCgroup
	memcgLowReclaim bool
	memcgLowSkipped bool
	memcgFullWalk   bool
	// skippedDeactivate: an active list was left alone this pass;
	// forceDeactivate: the retry pass that ages it anyway.
	skippedDeactivate bool
	forceDeactivate   bool

	nrScanned   int64
	nrReclaimed int64
	// cost is kswapd's modelled time (a direct reclaimer's advances
	// the clock instead).
	cost int64
}

// charge accounts d ns of reclaim work: the clock moves for a direct
// reclaimer (its CPU is busy), kswapd's own time for kswapd.
func (r *Reclaimer) charge(sc *scanControl, d int64) {
	if sc.kswapd {
		sc.cost += d
		return
	}
	r.clock.Advance(d)
}

// TryToFreePages is direct reclaim: throttle if the node's reserves are
// nearly gone, then shrink the nodes of the zonelist from DEF_PRIORITY down
// until SWAP_CLUSTER_MAX pages are reclaimed. It returns the pages
// reclaimed (1 for a throttled task that was killed, so that it does not
// go on to the OOM killer).
//
// Kernel: mm/vmscan.c:try_to_free_pages(), do_try_to_free_pages().
func (r *Reclaimer) TryToFreePages(t *memalloc.Task, zonelist []*zone.Zone, order zone.Order, mask gfp.Mask, highest gfp.ZoneType) int64 {
	if r.throttleDirectReclaim(t, zonelist, mask) {
		return 1
	}
	sc := &scanControl{t: t, mask: mask, order: order, reclaimIdx: highest,
		nrToReclaim: SwapClusterMax, maySwap: true}
	return r.doTryToFreePages(sc, zonelist)
}

// doTryToFreePages shrinks the zonelist's nodes from DEF_PRIORITY down
// until enough is reclaimed; with nothing reclaimed it tries again with a
// full walk of the cgroups, then ageing active lists it skipped, then
// reaching into memory.low-protected groups.
//
// Kernel: mm/vmscan.c:do_try_to_free_pages().
func (r *Reclaimer) doTryToFreePages(sc *scanControl, zonelist []*zone.Zone) int64 {
	for {
		if sc.target == nil {
			r.alloc.CountEvent(zone.VMAllocstallDMA+zone.VMEvent(sc.reclaimIdx), 1)
		}
		for sc.priority = DefPriority; sc.priority >= 0; sc.priority-- {
			sc.nrScanned = 0
			r.shrinkZones(sc, zonelist)
			if sc.nrReclaimed >= sc.nrToReclaim {
				break
			}
		}
		switch {
		case sc.nrReclaimed > 0:
			return sc.nrReclaimed
		case !sc.memcgFullWalk:
			sc.memcgFullWalk = true
		case sc.skippedDeactivate:
			sc.forceDeactivate, sc.skippedDeactivate = true, false
		case sc.memcgLowSkipped:
			sc.forceDeactivate = false
			sc.memcgLowReclaim, sc.memcgLowSkipped = true, false
		default:
			return 0
		}
	}
}

// TryToFreeMemCgroupPages is memcg reclaim: it reclaims at least
// SWAP_CLUSTER_MAX pages from cg's subtree on every node of t's zonelist,
// with the charge's mask cut to what reclaim may use and completed with
// GFP_HIGHUSER_MOVABLE's zone and mobility bits, PF_MEMALLOC set so that
// what it allocates is not charged back into reclaim, between the
// mm_vmscan_memcg_reclaim_begin and _end tracepoints. No allocstall is
// counted, and it is never throttled.
//
// Kernel: mm/vmscan.c:try_to_free_mem_cgroup_pages().
func (r *Reclaimer) TryToFreeMemCgroupPages(t *memalloc.Task, cg *mm.MemCgroup, nrPages int64, mask gfp.Mask, maySwap bool) int64 {
	mask = t.GFPContext(mask)&gfp.ReclaimMask | gfp.HighUserMovable&^gfp.ReclaimMask
	sc := &scanControl{t: t, mask: mask, reclaimIdx: gfp.ZoneType(gfp.MaxNrZones - 1),
		nrToReclaim: max(nrPages, SwapClusterMax), maySwap: maySwap, target: cg}
	zonelist := r.alloc.Zonelist(t, mask)
	if r.alloc.Tracing() {
		r.alloc.Emit(t, zone.Event{Kind: zone.EvMemcgReclaimBegin, Order: 0, Mask: mask, MemcgID: cg.CgroupID()})
	}
	cookie := t.SaveMemalloc()
	n := r.doTryToFreePages(sc, zonelist)
	t.Restore(cookie)
	// A call takes time even when it finds nothing (at least a
	// microsecond, whatever the configured cost).
	r.charge(sc, max(r.costs.MemcgReclaimCall, 1000))
	if r.alloc.Tracing() {
		r.alloc.Emit(t, zone.Event{Kind: zone.EvMemcgReclaimEnd, NrReclaimed: n, MemcgID: cg.CgroupID()})
	}
	return n
}

// shrinkZones shrinks each node of the zonelist once.
//
// Kernel: mm/vmscan.c:shrink_zones().
func (r *Reclaimer) shrinkZones(sc *scanControl, zonelist []*zone.Zone) {
	var last *zone.Node
	for _, z := range zonelist {
		if z.Type() > sc.reclaimIdx || z.Managed() == 0 || z.Node() == last {
			continue
		}
		last = z.Node()
		r.shrinkNode(sc, last)
		r.considerReclaimThrottle(sc, last)
	}
}

// considerReclaimThrottle sleeps a direct reclaimer a tick when it made no
// progress at priority 1.
//
// Kernel: mm/vmscan.c:consider_reclaim_throttle(), reclaim_throttle().
func (r *Reclaimer) considerReclaimThrottle(sc *scanControl, n *zone.Node) {
	if sc.nrReclaimed > sc.nrScanned>>3 || sc.kswapd || sc.target != nil {
		return
	}
	if sc.priority == 1 && sc.nrReclaimed == 0 && !r.kswapd[n.ID()].hopeless() && !r.skipThrottleNoprogress(n) {
		r.clock.Sleep(sim.Jiffy, nil) // VMSCAN_THROTTLE_NOPROGRESS: one jiffy
	}
}

// skipThrottleNoprogress reports whether the node's dirty and writeback
// pages are at most half its reclaimable ones: then throttling cannot help.
//
// Kernel: mm/vmscan.c:skip_throttle_noprogress().
func (r *Reclaimer) skipThrottleNoprogress(n *zone.Node) bool {
	var reclaimable, pending int64
	for t := gfp.ZoneType(0); int(t) < gfp.MaxNrZones; t++ {
		z := n.Zone(t)
		if z.Managed() == 0 {
			continue
		}
		reclaimable += r.ReclaimablePages(z)
		pending += z.State(zone.ZoneNrZoneWritePending)
	}
	return 2*pending <= reclaimable
}

// throttleDirectReclaim holds a direct reclaimer back while the node's free
// pages are below half its pfmemalloc reserve, waking kswapd to do the
// work. A caller without __GFP_FS waits at most a second; others wait until
// kswapd makes room (or gives up on the node). It reports whether the task
// was killed while it waited.
//
// Kernel: mm/vmscan.c:throttle_direct_reclaim(), allow_direct_reclaim().
func (r *Reclaimer) throttleDirectReclaim(t *memalloc.Task, zonelist []*zone.Zone, mask gfp.Mask) bool {
	if t.Flags()&memalloc.PFKthread != 0 || r.killed(t) {
		return false
	}
	var n *zone.Node
	for _, z := range zonelist {
		if z.Type() <= gfp.ZoneNormal && z.Managed() > 0 {
			n = z.Node()
			break
		}
	}
	if n == nil || r.allowDirectReclaim(n) {
		return false
	}
	r.alloc.CountEvent(zone.VMPgscanDirectThrottle, 1)
	k := r.kswapd[n.ID()]
	k.wake(r.clock.Now(), 0, gfp.ZoneNormal, mask)
	allowed := func() bool { return r.allowDirectReclaim(n) || r.killed(t) }
	if mask&gfp.FS == 0 {
		r.clock.Sleep(sim.HZ*sim.Jiffy, allowed)
	} else {
		for !allowed() && !k.hopeless() {
			if !r.clock.Sleep(sim.HZ*sim.Jiffy, allowed) && k.Next() == sim.Never && !r.allowDirectReclaim(n) {
				break // kswapd is asleep and nothing else will change
			}
		}
	}
	return r.killed(t)
}

func (r *Reclaimer) killed(t *memalloc.Task) bool {
	p := r.model.Proc(t)
	return p != nil && p.Victim()
}

// allowDirectReclaim reports whether the node's free pages in zones up to
// Normal are above half their min watermarks (zones with nothing
// reclaimable left out), or kswapd has given up on the node.
//
// Kernel: mm/vmscan.c:allow_direct_reclaim().
func (r *Reclaimer) allowDirectReclaim(n *zone.Node) bool {
	if r.kswapd[n.ID()].hopeless() {
		return true
	}
	var reserve, free int64
	for t := gfp.ZoneType(0); t <= gfp.ZoneNormal; t++ {
		z := n.Zone(t)
		if z.Managed() == 0 {
			continue
		}
		if r.ReclaimablePages(z) == 0 && z.FreePages() > 0 {
			continue
		}
		reserve += z.Watermark(zone.WmarkMin) + z.Boost() // min_wmark_pages includes the boost
		free += z.FreePages()
	}
	if reserve == 0 {
		return true
	}
	return free > reserve/2
}

// shrinkNode shrinks node n's LRU lists and the shrinkers.
//
// Kernel: mm/vmscan.c:shrink_node(), prepare_scan_control().
func (r *Reclaimer) shrinkNode(sc *scanControl, n *zone.Node) {
	target := sc.targetOrRoot(r.model)
	r.model.Lock()
	sc.mayDeactAnon = sc.forceDeactivate || r.inactiveIsLow(target, n, mm.LRUInactiveAnon)
	sc.mayDeactFile = sc.forceDeactivate || r.inactiveIsLow(target, n, mm.LRUInactiveFile)
	file := r.lruSize(target, n, mm.LRUInactiveFile)
	sc.cacheTrim = file>>sc.priority != 0 && !sc.mayDeactFile
	var highWmark, free int64
	for t := gfp.ZoneType(0); int(t) < gfp.MaxNrZones; t++ {
		if z := n.Zone(t); z.Managed() > 0 {
			highWmark += z.Watermark(zone.WmarkHigh) + z.Boost()
			free += z.FreePages()
		}
	}
	allFile := n.State(zone.NodeNrActiveFile) + n.State(zone.NodeNrInactiveFile)
	// Only global reclaim weighs the node's free pages (!cgroup_reclaim).
	sc.fileIsTiny = sc.target == nil && allFile+free <= highWmark && !sc.mayDeactAnon && n.State(zone.NodeNrInactiveAnon)>>sc.priority != 0
	r.model.Unlock()

	before := sc.nrReclaimed
	r.shrinkNodeMemcgs(sc, n)
	if sc.nrReclaimed > before && n.Balanced(sc.order, sc.reclaimIdx) {
		r.kswapd[n.ID()].clearHopeless() // kswapd_try_clear_hopeless
	}
}

// targetOrRoot is the cgroup whose subtree sc reclaims.
func (sc *scanControl) targetOrRoot(m *mm.Model) *mm.MemCgroup {
	if sc.target != nil {
		return sc.target
	}
	return m.RootMemcg()
}

// lruSize is the pages on list l of cg's subtree on node n: the node's
// counter for the root. Called with the model locked.
//
// Kernel: mm/vmscan.c:lruvec_page_state() on the cgroup's lruvec.
func (r *Reclaimer) lruSize(cg *mm.MemCgroup, n *zone.Node, l mm.LRUList) int64 {
	if cg.IsRoot() {
		return n.State(zone.NodeNrInactiveAnon + zone.NodeStat(l))
	}
	return r.model.SubtreeLRU(cg, n.ID(), l)
}

// inactiveIsLow reports whether an inactive list of cg's subtree on node n
// is small against its active list: inactive * int_sqrt(10 * GiB of both)
// < active. Called with the model locked.
//
// Kernel: mm/vmscan.c:inactive_is_low().
func (r *Reclaimer) inactiveIsLow(cg *mm.MemCgroup, n *zone.Node, inactive mm.LRUList) bool {
	in := r.lruSize(cg, n, inactive)
	act := r.lruSize(cg, n, inactive+1)
	gb := (in + act) >> (30 - zone.PageShift)
	ratio := int64(1)
	if gb > 0 {
		ratio = int64(math.Sqrt(float64(10 * gb)))
	}
	return in*ratio < act
}

// getScanCount decides how many pages of each evictable list to scan at
// sc's priority.
//
// Kernel: mm/vmscan.c:get_scan_count(), calculate_pressure_balance().
func (r *Reclaimer) getScanCount(sc *scanControl, v *mm.Lruvec) [mm.NrLRULists]int64 {
	const (
		scanEqual = iota
		scanFract
		scanAnon
		scanFile
	)
	balance := scanFract
	swappiness := int64(r.opts.Swappiness)
	switch {
	case !sc.maySwap || !r.canReclaimAnon():
		balance = scanFile
	case sc.priority == 0 && swappiness != 0:
		balance = scanEqual
	case sc.fileIsTiny:
		balance = scanAnon
	case sc.cacheTrim:
		balance = scanFile
	}
	// With no cost history (lru_note_cost is not modelled) the pressure
	// balance is swappiness : 200 - swappiness.
	fraction := [2]int64{swappiness, maxSwappiness - swappiness}
	denominator := fraction[0] + fraction[1]
	var nr [mm.NrLRULists]int64
	r.model.Lock()
	defer r.model.Unlock()
	for l := mm.LRUInactiveAnon; l <= mm.LRUActiveFile; l++ {
		scan := r.applyProtection(sc, v.Memcg(), v.Size(l, sc.reclaimIdx)) >> sc.priority
		file := 0
		if l.IsFile() {
			file = 1
		}
		switch balance {
		case scanFract:
			scan = scan * fraction[file] / denominator
		case scanFile, scanAnon:
			if (balance == scanFile) != l.IsFile() {
				scan = 0
			}
		}
		nr[l] = scan
	}
	return nr
}

// shrinkLruvec scans the lists in SWAP_CLUSTER_MAX batches until the
// targets are met; once enough is reclaimed (outside the proportional first
// pass of direct reclaim) it scales the remaining scan of the other type
// down to keep the anon:file proportion. Then it ages the active anon list
// if the inactive one is low.
//
// Kernel: mm/vmscan.c:shrink_lruvec().
func (r *Reclaimer) shrinkLruvec(sc *scanControl, v *mm.Lruvec) {
	nr := r.getScanCount(sc, v)
	targets := nr
	proportional := !sc.kswapd && sc.priority == DefPriority
	var reclaimed int64
	for nr[mm.LRUInactiveAnon] != 0 || nr[mm.LRUActiveFile] != 0 || nr[mm.LRUInactiveFile] != 0 {
		for l := mm.LRUInactiveAnon; l <= mm.LRUActiveFile; l++ {
			if nr[l] == 0 {
				continue
			}
			scan := min(nr[l], SwapClusterMax)
			nr[l] -= scan
			reclaimed += r.shrinkList(sc, v, l, scan)
		}
		if reclaimed < sc.nrToReclaim || proportional {
			continue
		}
		nrFile := nr[mm.LRUInactiveFile] + nr[mm.LRUActiveFile]
		nrAnon := nr[mm.LRUInactiveAnon] + nr[mm.LRUActiveAnon]
		if nrFile == 0 || nrAnon == 0 {
			break
		}
		var stop, other mm.LRUList
		var percentage int64
		if nrFile > nrAnon {
			stop, other = mm.LRUInactiveAnon, mm.LRUInactiveFile
			percentage = nrAnon * 100 / (targets[mm.LRUInactiveAnon] + targets[mm.LRUActiveAnon] + 1)
		} else {
			stop, other = mm.LRUInactiveFile, mm.LRUInactiveAnon
			percentage = nrFile * 100 / (targets[mm.LRUInactiveFile] + targets[mm.LRUActiveFile] + 1)
		}
		nr[stop], nr[stop+1] = 0, 0
		for _, l := range []mm.LRUList{other, other + 1} {
			scanned := targets[l] - nr[l]
			nr[l] = targets[l] * (100 - percentage) / 100
			nr[l] -= min(nr[l], scanned)
		}
	}
	sc.nrReclaimed += reclaimed
	if r.model.Swap().TotalPages() > 0 { // can_age_anon_pages
		r.model.Lock()
		low := r.inactiveIsLow(v.Memcg(), v.Node(), mm.LRUInactiveAnon)
		r.model.Unlock()
		if low {
			r.shrinkActiveList(sc, v, mm.LRUActiveAnon, SwapClusterMax)
		}
	}
}

// shrinkList ages an active list (when its inactive list is low) or
// reclaims from an inactive one.
//
// Kernel: mm/vmscan.c:shrink_list().
func (r *Reclaimer) shrinkList(sc *scanControl, v *mm.Lruvec, l mm.LRUList, nrToScan int64) int64 {
	if l.IsActive() {
		if (l.IsFile() && sc.mayDeactFile) || (!l.IsFile() && sc.mayDeactAnon) {
			r.shrinkActiveList(sc, v, l, nrToScan)
		} else {
			sc.skippedDeactivate = true
		}
		return 0
	}
	return r.shrinkInactiveList(sc, v, l, nrToScan)
}

// shrinkNodeMemcgs shrinks the lists of each cgroup of the target's
// subtree on node n, in pre-order: groups whose usage memory.min protects
// are skipped, those memory.low protects too unless the reclaim has
// nothing else (MEMCG_LOW counted when it goes in anyway). The shrinkers
// run for the root cgroup (mmsim's are not memcg-aware: their objects are
// the root's). A direct or memcg reclaim that is not on a full walk
// resumes where the previous one of the same target stopped and stops
// once it has reclaimed enough; kswapd walks everything.
//
// Kernel: mm/vmscan.c:shrink_node_memcgs(), mm/memcontrol.c:mem_cgroup_iter().
func (r *Reclaimer) shrinkNodeMemcgs(sc *scanControl, n *zone.Node) {
	target := sc.targetOrRoot(r.model)
	groups := r.model.Subtree(target)
	partial := !sc.kswapd && !sc.memcgFullWalk
	start := 0
	key := iterKey{target, n.ID()}
	if partial {
		r.iterMu.Lock()
		start = r.iter[key]
		r.iterMu.Unlock()
		if start >= len(groups) {
			start = 0
		}
	}
	for i := start; i < len(groups); i++ {
		cg := groups[i]
		cg.CalculateProtection(target)
		switch {
		case cg.BelowMin(target):
			continue
		case cg.BelowLow(target):
			if !sc.memcgLowReclaim {
				sc.memcgLowSkipped = true
				continue
			}
			r.model.MemoryEvent(cg, mm.MemcgLow)
		}
		r.shrinkLruvec(sc, cg.Lruvec(n.ID()))
		if cg.IsRoot() {
			sc.nrReclaimed += r.shrinkSlab(sc, n.ID())
		}
		if partial && sc.nrReclaimed >= sc.nrToReclaim {
			r.setIter(key, i+1)
			return
		}
	}
	if partial {
		r.setIter(key, 0)
	}
}

// iterKey names a shared reclaim iterator: one per target and node (the
// kernel's mem_cgroup_reclaim_iter in the target's per-node info).
type iterKey struct {
	target *mm.MemCgroup
	nid    int
}

func (r *Reclaimer) setIter(k iterKey, pos int) {
	r.iterMu.Lock()
	r.iter[k] = pos
	r.iterMu.Unlock()
}

// applyProtection scales an lruvec's size down by the part of its cgroup's
// usage memory.min or memory.low protect (low only while the reclaim
// respects it, noting that it did), never below SWAP_CLUSTER_MAX.
//
// Kernel: mm/vmscan.c:apply_proportional_protection().
func (r *Reclaimer) applyProtection(sc *scanControl, cg *mm.MemCgroup, size int64) int64 {
	if cg == nil {
		return size
	}
	emin, elow, usage := cg.Protection(sc.targetOrRoot(r.model))
	if emin == 0 && elow == 0 {
		return size
	}
	protection := emin
	if !sc.memcgLowReclaim && elow > emin {
		protection = elow
		sc.memcgLowSkipped = true
	}
	cgroupSize := max(usage, protection)
	size -= size * protection / (cgroupSize + 1)
	return max(size, SwapClusterMax)
}
