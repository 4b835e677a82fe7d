package reclaim

import (
	"sync"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/mm"
	"github.com/mmsim/mmsim/internal/sim"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// Kswapd is a node's background reclaim thread: woken when an allocation
// finds the node below its low watermark, it reclaims until some zone is
// above its high watermark (plus boost), gives up after MAX_RECLAIM_RETRIES
// runs that reclaim nothing (the node is then "hopeless" until something
// is reclaimed and the node is balanced), and sleeps again — first a nap of
// HZ/10, then until woken.
//
// Kernel: mm/vmscan.c:kswapd(), kswapd_try_to_sleep(), balance_pgdat().
type Kswapd struct {
	r    *Reclaimer
	node *zone.Node
	task *memalloc.Task

	mu sync.Mutex // protects the fields below
	// next is when the thread runs next: sim.Never while asleep.
	next    int64
	napping bool // in the HZ/10 nap of kswapd_try_to_sleep
	// order, highest and pending are the wakeups' request
	// (kswapd_order, kswapd_highest_zoneidx) since the last run.
	order   zone.Order
	highest gfp.ZoneType
	pending bool
	wakeSeq int64        // wakeups so far: a nap's end must not lose one
	hz      gfp.ZoneType // the zone the thread balances for
	// sleepOrder is the order the last balance_pgdat finished at: the
	// nap's end checks balance for it.
	sleepOrder zone.Order
	// failures is kswapd_failures.
	failures int
	runs     int64
}

func newKswapd(r *Reclaimer, n *zone.Node) *Kswapd {
	name := "kswapd" + itoa(n.ID())
	t := memalloc.NewTaskWith(name, memalloc.WithFlags(memalloc.PFKthread|memalloc.PFKswapd|memalloc.PFMemalloc),
		memalloc.WithPID(2+n.ID()), memalloc.WithCPU(firstCPU(r.alloc, n)), memalloc.WithOwner(r.alloc.Owner()))
	return &Kswapd{r: r, node: n, task: t, next: sim.Never, hz: gfp.ZoneType(gfp.MaxNrZones - 1)}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// firstCPU returns a CPU of node n for its kthreads (0 for a node without).
func firstCPU(a *zone.Allocator, n *zone.Node) int {
	if cpus := n.CPUs(); len(cpus) > 0 {
		return cpus[0]
	}
	return 0
}

// Name returns "kswapdN".
func (k *Kswapd) Name() string { return k.task.Comm() }

// Task returns the thread's task (PF_KTHREAD|PF_KSWAPD|PF_MEMALLOC).
func (k *Kswapd) Task() *memalloc.Task { return k.task }

// Next returns when the thread runs next.
func (k *Kswapd) Next() int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.next
}

// Failures returns kswapd_failures.
func (k *Kswapd) Failures() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.failures
}

// Runs returns how many times balance_pgdat ran (pageoutrun).
func (k *Kswapd) Runs() int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.runs
}

// hopeless reports kswapd_failures >= MAX_RECLAIM_RETRIES.
//
// Kernel: mm/vmscan.c:kswapd_test_hopeless().
func (k *Kswapd) hopeless() bool { return k.Failures() >= zone.MaxReclaimRetries }

// Running reports whether the thread is awake (not waiting to be woken).
func (k *Kswapd) Running() bool { return k.Next() != sim.Never }

// Waiting reports whether the thread sleeps on kswapd_wait: asleep, or in
// its HZ/10 nap (waitqueue_active; task_is_running is false for both).
//
// Kernel: mm/vmscan.c:wakeup_kswapd(), mm/compaction.c:kswapd_is_running().
func (k *Kswapd) Waiting() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.next == sim.Never || k.napping
}

// wake records a request and wakes the thread if it sleeps, unless the
// node is hopeless; it reports which.
//
// Kernel: mm/vmscan.c:wakeup_kswapd().
func (k *Kswapd) wake(now int64, order zone.Order, highest gfp.ZoneType, mask gfp.Mask) zone.KswapdWake {
	k.mu.Lock()
	if !k.pending || highest > k.highest {
		k.highest = highest
	}
	k.order = max(k.order, order)
	k.pending = true
	k.wakeSeq++
	if k.next != sim.Never && !k.napping {
		k.mu.Unlock()
		return zone.KswapdAwake // !waitqueue_active
	}
	if k.failures >= zone.MaxReclaimRetries {
		// A hopeless node: a request that cannot reclaim itself wakes
		// kcompactd instead.
		k.mu.Unlock()
		if c := k.r.compact; c != nil && mask&gfp.DirectReclaim == 0 {
			c.kcompactd[k.node.ID()].Wake(now, order, highest)
		}
		return zone.KswapdHopeless
	}
	if k.napping {
		k.r.alloc.CountEvent(zone.VMKswapdLowWmarkHitQuickly, 1)
	}
	k.napping = false
	k.next = now
	k.mu.Unlock()
	k.r.clock.Kick()
	return zone.KswapdWoken
}

// WakeKswapd is zone.Reclaimer's wakeup: the allocator found node n below
// its low watermark for the request. It reports what it did with kswapd.
func (r *Reclaimer) WakeKswapd(n *zone.Node, order zone.Order, highest gfp.ZoneType, mask gfp.Mask) zone.KswapdWake {
	woken := r.kswapd[n.ID()].wake(r.clock.Now(), order, highest, mask)
	r.clock.Kick()
	return woken
}

// KswapdRunning reports whether node n's kswapd is awake: not on
// kswapd_wait, where it sleeps and naps (task_is_running).
//
// Kernel: mm/compaction.c:kswapd_is_running(), mm/vmscan.c:wakeup_kswapd()
// (waitqueue_active).
func (r *Reclaimer) KswapdRunning(n *zone.Node) bool { return !r.kswapd[n.ID()].Waiting() }

// Run is one turn of the kswapd loop: the end of a nap (sleep for good if
// the node is balanced for the order reclaim finished at, or hopeless; else
// reclaim again), or one balance_pgdat followed by the sleep decision.
//
// Kernel: mm/vmscan.c:kswapd(), kswapd_try_to_sleep(), prepare_kswapd_sleep().
func (k *Kswapd) Run(now int64) {
	k.mu.Lock()
	if k.napping {
		k.napping = false
		order, hz, seq := k.sleepOrder, k.hz, k.wakeSeq
		k.mu.Unlock()
		sleep := k.hopeless() || k.node.Balanced(order, hz)
		k.mu.Lock()
		if k.wakeSeq == seq { // not woken while we looked
			if sleep {
				k.next = sim.Never
				k.mu.Unlock()
				return
			}
			k.r.alloc.CountEvent(zone.VMKswapdHighWmarkHitQuickly, 1)
		}
	}
	// kswapd_order and kswapd_highest_zoneidx are read and reset; without
	// a new wakeup the order is 0 and the zone the previous one.
	order := zone.Order(0)
	if k.pending {
		order, k.hz = k.order, k.highest
	}
	hz := k.hz
	k.order, k.pending = 0, false
	k.runs++
	k.mu.Unlock()

	// kswapd holds the fs_reclaim map across its balancing, as lockdep
	// sees it: the locks its shrinkers take depend on reclaim.
	k.r.alloc.FSReclaimAcquire(k.task)
	reclaimOrder, cost := k.r.balancePgdat(k, order, hz)
	k.r.alloc.FSReclaimRelease(k.task)

	sleep := k.hopeless() || k.node.Balanced(reclaimOrder, hz)
	if sleep {
		// Before the nap: the skip hints compaction left are cleared,
		// and kcompactd is asked for the order kswapd was woken for
		// when reclaim fell back to order 0 for compaction's sake;
		// otherwise the loop re-reads kswapd_order, reset by this run.
		if c := k.r.compact; c != nil {
			c.ResetIsolation(k.node)
			wakeOrder := order
			if reclaimOrder >= order {
				k.mu.Lock()
				wakeOrder = 0
				if k.pending {
					wakeOrder = k.order
				}
				k.mu.Unlock()
			}
			c.kcompactd[k.node.ID()].Wake(now+cost, wakeOrder, hz)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if sleep {
		// The HZ/10 nap; a wakeup during it ends it (low_wmark_hit_quickly).
		k.napping, k.sleepOrder = true, reclaimOrder
		k.next = now + cost + sim.Jiffy*sim.HZ/10
		return
	}
	k.r.alloc.CountEvent(zone.VMKswapdHighWmarkHitQuickly, 1)
	k.next = now + max(cost, 1)
}

// balancePgdat reclaims for the node until a zone up to highest is above
// its high watermark: priorities from DEF_PRIORITY down to 1, each
// targeting the zones' high watermarks; an unboosted run that reclaims
// nothing counts a failure (one that finds the node balanced counts
// nothing). It returns the order reclaim finished at (0 once enough was
// reclaimed for compaction) and the run's cost in simulated time.
//
// Kernel: mm/vmscan.c:balance_pgdat(), kswapd_shrink_node().
func (r *Reclaimer) balancePgdat(k *Kswapd, order zone.Order, highest gfp.ZoneType) (zone.Order, int64) {
	n := k.node
	r.alloc.CountEvent(zone.EvPageoutrun, 1)
	var boost int64
	var boosts [gfp.MaxNrZones]int64
	for t := gfp.ZoneType(0); t <= highest; t++ {
		if z := n.Zone(t); z.Managed() > 0 {
			boosts[t] = z.Boost()
			boost += boosts[t]
		}
	}
	boosted := boost != 0
	sc := &scanControl{t: k.task, mask: gfp.Kernel, order: order, kswapd: true}
	wasBalanced := false // the goto out of a balanced node
restart:
	for sc.priority = DefPriority; sc.priority >= 1; {
		sc.reclaimIdx = highest
		balanced := n.Balanced(sc.order, highest)
		if !balanced && boost != 0 {
			boost = 0
			goto restart
		}
		if boost == 0 && balanced {
			wasBalanced = true
			break
		}
		raise := !(boost != 0 && sc.priority == DefPriority-2)
		sc.maySwap = boost == 0
		r.ageActiveAnon(sc, n)
		before := sc.nrReclaimed
		sc.nrScanned = 0
		sc.nrToReclaim = 0
		for t := gfp.ZoneType(0); t <= highest; t++ {
			if z := n.Zone(t); z.Managed() > 0 {
				sc.nrToReclaim += max(z.Watermark(zone.WmarkHigh)+z.Boost(), SwapClusterMax)
			}
		}
		r.shrinkNode(sc, n)
		d := sc.nrReclaimed - before
		if sc.order > 0 && sc.nrReclaimed >= compactGap(sc.order) {
			sc.order = 0
		}
		if max(sc.nrScanned, d) >= sc.nrToReclaim {
			raise = false
		}
		boost -= min(boost, d)
		if boost != 0 && d == 0 {
			break
		}
		if raise || d == 0 {
			sc.priority--
		}
	}
	if !wasBalanced && sc.nrReclaimed == 0 && !boosted {
		k.mu.Lock()
		k.failures++
		k.mu.Unlock()
	}
	if boosted {
		for t := gfp.ZoneType(0); t <= highest; t++ {
			if z := n.Zone(t); z.Managed() > 0 {
				z.ReduceBoost(boosts[t])
			}
		}
		// The boost was for fragmentation: compact a pageblock's worth.
		if c := r.compact; c != nil {
			c.kcompactd[n.ID()].Wake(r.clock.Now()+sc.cost, zone.PageblockOrder, highest)
		}
	}
	return sc.order, sc.cost
}

// clearHopeless resets kswapd_failures: reclaim made progress and the node
// is balanced.
//
// Kernel: mm/vmscan.c:kswapd_try_clear_hopeless().
func (k *Kswapd) clearHopeless() {
	k.mu.Lock()
	k.failures = 0
	k.mu.Unlock()
}

// ageActiveAnon deactivates anonymous pages of every cgroup on node n
// when the node's inactive anon list is low, so that swap has candidates.
//
// Kernel: mm/vmscan.c:age_active_anon().
func (r *Reclaimer) ageActiveAnon(sc *scanControl, n *zone.Node) {
	if r.model.Swap().TotalPages() == 0 { // can_age_anon_pages
		return
	}
	root := r.model.RootMemcg()
	r.model.Lock()
	low := r.inactiveIsLow(root, n, mm.LRUInactiveAnon)
	r.model.Unlock()
	if !low {
		return
	}
	for _, cg := range r.model.Subtree(root) {
		r.shrinkActiveList(sc, cg.Lruvec(n.ID()), mm.LRUActiveAnon, SwapClusterMax)
	}
}
