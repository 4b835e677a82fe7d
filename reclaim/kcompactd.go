package reclaim

import (
	"sync"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/mm"
	"github.com/mmsim/mmsim/internal/sim"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// Kcompactd is one node's background compaction thread (PF_KCOMPACTD). It
// sleeps until kswapd, going to sleep with a high-order request behind it,
// or an allocation that found the node balanced, wakes it; then it
// compacts the node's zones for kcompactd_max_order. Every 500 ms (while
// proactiveness is not 0) it also wakes on its own: to serve an order
// recorded without a wakeup, and for proactive compaction when the node's
// fragmentation score is above its high mark.
//
// Kernel: mm/compaction.c:kcompactd(), kcompactd_do_work(),
// wakeup_kcompactd(), proactive_compact_node().
type Kcompactd struct {
	c    *Compactor
	node *zone.Node
	task *memalloc.Task

	mu sync.Mutex // protects the fields below
	// maxOrder and highest are kcompactd_max_order and
	// kcompactd_highest_zoneidx.
	maxOrder zone.Order
	highest  gfp.ZoneType
	// next is when the thread runs: now once woken, the end of its
	// timed wait otherwise (sim.Never with proactiveness 0).
	next    int64
	waiting bool  // in wait_event_freezable_timeout
	timeout int64 // the wait's timeout: 500 ms, or 32 s after a useless proactive run
	wakes   int64 // kcompactd_do_work runs (compact_daemon_wake)
}

func newKcompactd(c *Compactor, n *zone.Node) *Kcompactd {
	name := "kcompactd" + itoa(n.ID())
	t := memalloc.NewTaskWith(name, memalloc.WithFlags(memalloc.PFKthread|memalloc.PFKcompactd),
		memalloc.WithPID(100+n.ID()), memalloc.WithCPU(firstCPU(c.alloc, n)), memalloc.WithOwner(c.alloc.Owner()))
	k := &Kcompactd{c: c, node: n, task: t, highest: gfp.ZoneType(gfp.MaxNrZones - 1),
		waiting: true, timeout: kcompactdTimeout}
	k.next = k.timeoutAt(0)
	return k
}

// timeoutAt is when a wait that starts at now times out.
func (k *Kcompactd) timeoutAt(now int64) int64 {
	if k.c.proactiveness == 0 {
		return sim.Never
	}
	return now + k.timeout
}

// Name returns "kcompactdN".
func (k *Kcompactd) Name() string { return k.task.Comm() }

// Task returns the thread's task.
func (k *Kcompactd) Task() *memalloc.Task { return k.task }

// Next returns when the thread next runs.
func (k *Kcompactd) Next() int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.next
}

// Wakes returns how many times the thread did its compaction work
// (compact_daemon_wake).
func (k *Kcompactd) Wakes() int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.wakes
}

// Wake records a request of the order for zones up to highest and wakes
// the thread if it waits and some zone could use compaction. The request
// is recorded even when no wakeup follows: the next timeout serves it.
//
// Kernel: mm/compaction.c:wakeup_kcompactd(), kcompactd_node_suitable().
func (k *Kcompactd) Wake(now int64, order zone.Order, highest gfp.ZoneType) {
	if order <= 0 {
		return
	}
	k.mu.Lock()
	k.maxOrder = max(k.maxOrder, order)
	k.highest = min(k.highest, highest)
	maxOrder, hz, waiting := k.maxOrder, k.highest, k.waiting
	k.mu.Unlock()
	if !waiting || !k.nodeSuitable(maxOrder, hz) {
		return
	}
	k.mu.Lock()
	if k.waiting {
		k.next = now
	}
	k.mu.Unlock()
	k.c.clock.Kick()
}

// nodeSuitable reports whether some zone up to highest fails its min
// watermark at the order but is suitable for compaction.
//
// Kernel: mm/compaction.c:kcompactd_node_suitable().
func (k *Kcompactd) nodeSuitable(order zone.Order, highest gfp.ZoneType) bool {
	for t := gfp.ZoneType(0); t <= highest; t++ {
		z := k.node.Zone(t)
		if k.c.zones[z] != nil && suitAllocationOrder(z, order, highest, false) == zone.CompactContinue {
			return true
		}
	}
	return false
}

// Run is one turn of the thread's loop: the work it was woken for (or
// that was recorded for it), else a proactive check; then it waits again.
//
// Kernel: mm/compaction.c:kcompactd().
func (k *Kcompactd) Run(now int64) {
	k.mu.Lock()
	requested := k.maxOrder > 0
	k.waiting = false
	k.mu.Unlock()
	var cost int64
	timeout := int64(kcompactdTimeout)
	if requested {
		cost = k.doWork()
	} else if k.shouldProactiveCompact() {
		prev := k.c.FragmentationScore(k.node)
		cost = k.c.compactNode(k.task, k.node, true)
		if k.c.FragmentationScore(k.node) >= prev {
			timeout <<= compactMaxDeferShift
		}
	}
	k.mu.Lock()
	k.timeout = timeout
	k.waiting = true
	k.next = k.timeoutAt(now + cost)
	if k.maxOrder > 0 { // a request came in meanwhile: the wait ends at once
		k.next = now + cost
	}
	k.mu.Unlock()
}

// shouldProactiveCompact reports whether the node's fragmentation score is
// above the high mark while kswapd sleeps.
//
// Kernel: mm/compaction.c:should_proactive_compact_node().
func (k *Kcompactd) shouldProactiveCompact() bool {
	return k.c.proactiveness != 0 && k.c.r.kswapd[k.node.ID()].Waiting() &&
		k.c.FragmentationScore(k.node) > int64(k.c.wmarkHigh())
}

// doWork compacts each zone up to the requested highest, in ascending
// order, that is neither deferred nor already fine at the order, in
// MIGRATE_SYNC_LIGHT mode as a GFP_KERNEL (unmovable) request, and returns
// the modelled time it took.
//
// Kernel: mm/compaction.c:kcompactd_do_work().
func (k *Kcompactd) doWork() int64 {
	k.mu.Lock()
	order, highest := k.maxOrder, k.highest
	k.wakes++
	k.mu.Unlock()
	c := k.c
	c.alloc.CountEvent(zone.VMCompactDaemonWake, 1)
	var cost int64
	for t := gfp.ZoneType(0); t <= highest; t++ {
		z := k.node.Zone(t)
		zc := c.zones[z]
		if zc == nil || zc.deferred(order) {
			continue
		}
		if suitAllocationOrder(z, order, t, false) != zone.CompactContinue {
			continue
		}
		cc := &compactControl{c: c, z: z, zc: zc, t: k.task, order: order, mt: gfp.MigrateUnmovable,
			mask: gfp.Kernel, highest: highest, mode: mm.MigrateSyncLight}
		status := c.runZone(cc)
		cost += cc.cost()
		switch status {
		case zone.CompactSuccess:
			zc.deferReset(order, false)
		case zone.CompactPartialSkipped, zone.CompactComplete:
			c.alloc.DrainZone(k.task, z)
			zc.deferCompaction(order)
		}
		c.alloc.CountEvent(zone.VMCompactDaemonMigrateScanned, cc.migrateScanned)
		c.alloc.CountEvent(zone.VMCompactDaemonFreeScanned, cc.freeScanned)
	}
	k.mu.Lock()
	if k.maxOrder <= order {
		k.maxOrder = 0
	}
	if k.highest >= highest {
		k.highest = gfp.ZoneType(gfp.MaxNrZones - 1)
	}
	k.mu.Unlock()
	return cost
}
