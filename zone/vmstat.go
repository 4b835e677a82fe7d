package zone

import (
	"sync/atomic"

	"github.com/mmsim/mmsim/gfp"
)

// Counters. The kernel keeps them per CPU and folds them into the global
// value past a per-cpu threshold (the "vm stats threshold" of zoneinfo), so
// its readers see a value that lags by up to threshold × CPUs. Differences:
// mmsim keeps every counter exact; it prints the threshold the kernel would
// use, but its watermark checks read the exact free count.

// zoneCounters holds a zone's zone_stat_item counters that layers above
// zone maintain (LRU, mlock, …). NR_FREE_PAGES and NR_FREE_PAGES_BLOCKS are
// the allocator's own fields.
type zoneCounters [nrZoneStats]atomic.Int64

// nodeCounters holds a node's node_stat_item counters.
type nodeCounters [nrNodeStats]atomic.Int64

// State returns a zone counter.
//
// Kernel: include/linux/vmstat.h:zone_page_state().
func (z *Zone) State(i ZoneStat) int64 {
	switch i {
	case ZoneNrFreePages:
		return z.freePages.Load()
	case ZoneNrFreePagesBlocks:
		z.mu.Lock()
		defer z.mu.Unlock()
		return z.freePagesBlocks
	}
	return z.counters[i].Load()
}

// ModState adds delta to a zone counter kept by a layer above zone (the
// allocator's own counters cannot be changed from outside).
//
// Kernel: include/linux/vmstat.h:mod_zone_page_state().
func (z *Zone) ModState(i ZoneStat, delta int64) {
	if i == ZoneNrFreePages || i == ZoneNrFreePagesBlocks {
		return
	}
	z.counters[i].Add(delta)
}

// State returns a node counter.
//
// Kernel: include/linux/vmstat.h:node_page_state().
func (n *Node) State(i NodeStat) int64 { return n.counters[i].Load() }

// ModState adds delta to a node counter.
//
// Kernel: include/linux/vmstat.h:mod_node_page_state().
func (n *Node) ModState(i NodeStat, delta int64) { n.counters[i].Add(delta) }

// CountEvent adds delta to a global vm event. The allocator counts
// pgalloc_*, pgfree and the NUMA events itself.
//
// Kernel: include/linux/vmstat.h:count_vm_events().
func (a *Allocator) CountEvent(e VMEvent, delta int64) { a.events[e].Add(delta) }

// pcpEventSums adds up the events the pcp and zone-lock paths count.
func (z *Zone) eventSums() (pgalloc, pgfree, numaHit, numaLocal int64) {
	for i := range z.pcp {
		p := &z.pcp[i]
		p.mu.Lock()
		pgalloc += p.ev.pgalloc
		pgfree += p.ev.pgfree
		numaHit += p.ev.numaHit
		numaLocal += p.ev.numaLocal
		p.mu.Unlock()
	}
	z.mu.Lock()
	pgalloc += z.stats.pgalloc
	pgfree += z.stats.pgfree
	numaHit += z.stats.numaHit
	numaLocal += z.stats.numaLocal
	z.mu.Unlock()
	return
}

// Event returns a global vm event counter.
//
// Kernel: mm/vmstat.c:all_vm_events().
func (a *Allocator) Event(e VMEvent) int64 {
	switch {
	case e >= VMPgallocDMA && e <= VMPgallocDevice:
		var n int64
		t := gfp.ZoneType(e - VMPgallocDMA)
		for _, nd := range a.nodes {
			pg, _, _, _ := nd.zones[t].eventSums()
			n += pg
		}
		return n
	case e == VMPgfree:
		var n int64
		a.forEachZone(func(z *Zone) {
			_, f, _, _ := z.eventSums()
			n += f
		})
		return n
	}
	return a.events[e].Load()
}

// NumaEvent returns a zone's NUMA event counter. NUMA_INTERLEAVE needs
// mempolicies, which mmsim does not model.
//
// Kernel: mm/vmstat.c:zone_numa_event_state(), mm/page_alloc.c:zone_statistics().
func (z *Zone) NumaEvent(i NumaStat) int64 {
	switch i {
	case NumaHit:
		_, _, hit, _ := z.eventSums()
		return hit
	case NumaLocal:
		_, _, _, local := z.eventSums()
		return local
	}
	return z.numaRemote[i].Load()
}

// statThreshold is the per-cpu fold threshold the kernel uses for the zone.
//
// Kernel: mm/vmstat.c:calculate_normal_threshold().
func (z *Zone) statThreshold() int {
	mem := z.managed >> (27 - PageShift)
	t := 2 * fls(int64(len(z.node.alloc.cpuNode))) * (1 + fls(mem))
	return min(125, t)
}

// fls returns the position of the most significant set bit (1-based), 0 for 0.
//
// Kernel: include/asm-generic/bitops/fls.h:fls().
func fls(x int64) int {
	n := 0
	for x > 0 {
		n++
		x >>= 1
	}
	return n
}

// TotalramPages returns totalram_pages(): the managed pages of the machine.
//
// Kernel: include/linux/mm.h:totalram_pages().
func (a *Allocator) TotalramPages() int64 {
	var n int64
	a.forEachZone(func(z *Zone) { n += z.managed })
	return n
}

// globalZoneState sums a zone counter over the machine.
func (a *Allocator) globalZoneState(i ZoneStat) int64 {
	var n int64
	a.forEachZone(func(z *Zone) { n += z.State(i) })
	return n
}

// globalNodeState sums a node counter over the machine.
func (a *Allocator) globalNodeState(i NodeStat) int64 {
	var n int64
	for _, nd := range a.nodes {
		n += nd.State(i)
	}
	return n
}

// MemAvailable estimates the memory available for new workloads without
// swapping: free memory above the reserves, plus the part of the page cache
// and reclaimable slab above the low watermarks.
//
// Kernel: mm/show_mem.c:si_mem_available().
func (a *Allocator) MemAvailable() int64 {
	var wmarkLow int64
	a.forEachZone(func(z *Zone) { wmarkLow += z.wmarkPages(WmarkLow) })
	avail := a.globalZoneState(ZoneNrFreePages) - a.totalreservePages.Load()
	pagecache := a.globalNodeState(NodeNrActiveFile) + a.globalNodeState(NodeNrInactiveFile)
	pagecache -= min(pagecache/2, wmarkLow)
	avail += pagecache
	reclaimable := a.globalNodeState(NodeNrSlabReclaimable) + a.globalNodeState(NodeNrKernelMiscReclaimable)
	reclaimable -= min(reclaimable/2, wmarkLow)
	avail += reclaimable
	return max(avail, 0)
}

// DirtyLimits returns the global dirty and background dirty thresholds.
//
// Kernel: mm/page-writeback.c:global_dirty_limits(), global_dirtyable_memory().
func (a *Allocator) DirtyLimits() (thresh, bg int64) {
	x := a.globalZoneState(ZoneNrFreePages)
	x -= min(x, a.totalreservePages.Load())
	x += a.globalNodeState(NodeNrInactiveFile) + a.globalNodeState(NodeNrActiveFile)
	avail := x + 1
	ratio := int64(a.sysctl.DirtyRatio) * PageSize / 100
	bgRatio := int64(a.sysctl.DirtyBackgroundRatio) * PageSize / 100
	thresh = ratio * avail / PageSize
	bg = bgRatio * avail / PageSize
	if bg >= thresh {
		bg = thresh / 2
	}
	return thresh, bg
}
