package zone

import (
	"sync"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

// Per-cpu page lists: each simulated CPU keeps, per zone, small stacks of
// free blocks of order ≤ 3 and of the THP order, so that most allocations and
// frees never take the zone lock.

// The pcp list layout: one list per (pcp migratetype, order ≤ 3), then two
// for the PMD order (movable and the rest), as with CONFIG_TRANSPARENT_HUGEPAGE.
//
// Kernel: include/linux/mmzone.h:NR_LOWORDER_PCP_LISTS, NR_PCP_LISTS.
const (
	nrLowOrderPCPLists = gfp.MigratePCPTypes * (int(CostlyOrder) + 1)
	nrPCPLists         = nrLowOrderPCPLists + 2
	// pcpBatchScaleMax is CONFIG_PCP_BATCH_SCALE_MAX (default 5).
	pcpBatchScaleMax = 5
	// minPercpuPagelistHighFraction bounds pcp high_max.
	// Kernel: mm/page_alloc.c:MIN_PERCPU_PAGELIST_HIGH_FRACTION.
	minPercpuPagelistHighFraction = 8
)

// pcp flags. Kernel: mm/page_alloc.c:PCPF_*.
const (
	pcpfPrevFreeHighOrder uint8 = 1 << iota
	pcpfFreeHighBatch
)

// pcpAllowedOrder reports whether blocks of the order go through the pcp
// lists: orders up to PAGE_ALLOC_COSTLY_ORDER and the PMD order.
//
// Kernel: mm/page_alloc.c:pcp_allowed_order().
func pcpAllowedOrder(order Order) bool {
	return order <= CostlyOrder || order == PageblockOrder
}

// orderToPindex returns the pcp list of a migratetype and order.
//
// Kernel: mm/page_alloc.c:order_to_pindex().
func orderToPindex(mt gfp.Migratetype, order Order) int {
	if order > CostlyOrder {
		if mt == mtMovable {
			return nrLowOrderPCPLists + 1
		}
		return nrLowOrderPCPLists
	}
	return gfp.MigratePCPTypes*int(order) + int(mt)
}

// pindexToOrder returns the order of a pcp list.
//
// Kernel: mm/page_alloc.c:pindex_to_order().
func pindexToOrder(pindex int) Order {
	if pindex >= nrLowOrderPCPLists {
		return PageblockOrder
	}
	return Order(pindex / gfp.MigratePCPTypes)
}

// deque is a pcp list: the memmap offsets of its blocks. Allocation and free
// work at the front (the kernel's list head); refills add at the back and
// drains take from it (the list tail).
type deque struct {
	buf        []int32 // a ring; len(buf) is a power of two or 0
	head, n, m int     // first element, length, len(buf)-1
}

// grow doubles the ring (to 16 at first). It is rare: it stays out of
// line on the free paths that test for it.
//
//go:noinline
func (d *deque) grow() {
	size := max(16, 2*len(d.buf))
	buf := make([]int32, size)
	for i := 0; i < d.n; i++ {
		buf[i] = d.buf[(d.head+i)&d.m]
	}
	d.buf, d.head, d.m = buf, 0, size-1
}

// pushFront adds v at the front. Preconditions: the ring has room
// (d.n < len(d.buf)): the caller grows it first, which keeps pushFront
// small enough to inline on the free path.
func (d *deque) pushFront(v int32) {
	d.head = (d.head + d.m) & d.m // head - 1, modulo the ring
	d.buf[d.head] = v
	d.n++
}

func (d *deque) pushBack(v int32) {
	if d.n == len(d.buf) {
		d.grow()
	}
	d.buf[(d.head+d.n)&d.m] = v
	d.n++
}

func (d *deque) popFront() int32 {
	v := d.buf[d.head]
	d.head = (d.head + 1) & d.m
	d.n--
	return v
}

func (d *deque) popBack() int32 {
	d.n--
	return d.buf[(d.head+d.n)&d.m]
}

// at returns element i from the front.
func (d *deque) at(i int) int32 { return d.buf[(d.head+i)&d.m] }

// pcpLists is one CPU's pcp lists for one zone.
//
// Kernel: include/linux/mmzone.h:struct per_cpu_pages.
type pcpLists struct {
	// mu is the pcp lock (pcp->lock). Lock order: before the zone lock.
	mu    sync.Mutex
	lists [nrPCPLists]deque
	// count is the number of pages on the lists; high the current
	// high mark (tuned between highMin and highMax); batch the refill
	// and drain unit. Protected by mu.
	count, high, batch, highMin, highMax int
	// allocFactor scales order-0 refills up while the CPU allocates
	// without freeing; freeCount counts recent frees. Protected by mu.
	allocFactor, freeCount int
	flags                  uint8
	// local is whether the CPU is on the zone's node (zone_statistics'
	// NUMA_LOCAL). Invariant: immutable after boot.
	local bool
	// ev holds this CPU's vm events for the zone. Protected by mu.
	ev pcpEvents
	_  [64]byte // keep CPUs' locks off each other's cache lines
}

// pcpEvents are the vm events counted on the pcp path, per CPU and zone,
// summed when /proc/vmstat is printed.
type pcpEvents struct {
	// numaHit counts allocations whose preferred zone was on this zone's
	// node, numaLocal those from a CPU of this zone's node.
	pgalloc, pgfree, numaHit, numaLocal int64
}

// zoneBatchsize is the pcp batch of a zone: managed/4096, at most 256 KiB
// of pages, rounded to 2^n - 1; 1 for small zones.
//
// Kernel: mm/page_alloc.c:zone_batchsize().
func zoneBatchsize(managed int64) int {
	batch := int(min(managed>>12, 256<<10/PageSize))
	if batch <= 1 {
		return 1
	}
	return roundDownPow2(batch+batch/2) - 1
}

// zoneHighsize is the pcp high mark of a zone shared by the node's CPUs:
// the low watermark (highFraction 0) or managed/highFraction, split between
// the CPUs, at least 4 batches.
//
// Kernel: mm/page_alloc.c:zone_highsize().
func zoneHighsize(z *Zone, batch, highFraction, nrCPUs int) int {
	var total int64
	if highFraction == 0 {
		total = z.wmarkPages(WmarkLow)
	} else {
		total = z.managed / int64(highFraction)
	}
	if nrCPUs == 0 {
		nrCPUs = len(z.node.alloc.cpuNode) // num_online_cpus()
	}
	return max(int(total/int64(nrCPUs)), batch<<2)
}

// setPagesetHighAndBatch sizes the zone's pcp lists.
//
// Kernel: mm/page_alloc.c:zone_set_pageset_high_and_batch().
func (z *Zone) setPagesetHighAndBatch(highFraction int) {
	batch := zoneBatchsize(z.managed)
	nrCPUs := len(z.node.cpus)
	var highMin, highMax int
	if highFraction != 0 {
		highMin = zoneHighsize(z, batch, highFraction, nrCPUs)
		highMax = highMin
	} else {
		highMin = zoneHighsize(z, batch, 0, nrCPUs)
		highMax = zoneHighsize(z, batch, minPercpuPagelistHighFraction, nrCPUs)
	}
	z.pcpBatch, z.pcpHighMin, z.pcpHighMax = batch, highMin, highMax
	for i := range z.pcp {
		p := &z.pcp[i]
		p.mu.Lock()
		p.batch, p.highMin, p.highMax = batch, highMin, highMax
		// The CPU's share of the last-level cache holds more than three
		// batches: high-order frees drain in batches.
		// Kernel: mm/page_alloc.c:setup_pcp_cacheinfo().
		if llcSlicePerCPU>>PageShift > 3*batch {
			p.flags |= pcpfFreeHighBatch
		} else {
			p.flags &^= pcpfFreeHighBatch
		}
		p.mu.Unlock()
	}
}

// llcSlicePerCPU is the last-level cache per CPU mmsim assumes (the
// kernel reads it from the cache topology): 2 MiB, typical of x86_64.
const llcSlicePerCPU = 2 << 20

// nrPCPAlloc returns how many blocks a refill of an empty list takes, and
// tunes pcp->high and alloc_factor.
//
// Kernel: mm/page_alloc.c:nr_pcp_alloc().
func (z *Zone) nrPCPAlloc(p *pcpLists, order Order) int {
	base := p.batch
	high := clampInt(p.high, p.highMin, p.highMax)
	p.high = high
	if high < base {
		return 1
	}
	batch := base
	if order == 0 {
		batch = base << p.allocFactor
	}
	if p.highMin != p.highMax && z.flags.Load()&zoneBelowHigh == 0 {
		high = min(high+batch, p.highMax)
		p.high = high
	}
	if order == 0 {
		maxNr := max(high-p.count-base, base)
		if batch <= maxNr && p.allocFactor < pcpBatchScaleMax {
			p.allocFactor++
		}
		batch = min(batch, maxNr)
	}
	if batch > 1 {
		batch = max(batch>>order, 2)
	}
	return batch
}

// rmqueueBulk moves up to count blocks of the order from the buddy lists to
// the back of a pcp list, under the zone lock. It returns how many it moved.
//
// Kernel: mm/page_alloc.c:rmqueue_bulk().
func (z *Zone) rmqueueBulk(t *memalloc.Task, order Order, count int, l *deque, mt gfp.Migratetype, af allocFlags) int {
	return z.rmqueueBulkRec(t, order, count, l, mt, af, nil)
}

// rmqueueBulkRec is rmqueueBulk recording for Explain into rec (nil: no
// recording): its fallbacks step by step, its plain takes as a count.
//
// Kernel: mm/page_alloc.c:rmqueue_bulk().
func (z *Zone) rmqueueBulkRec(t *memalloc.Task, order Order, count int, l *deque, mt gfp.Migratetype, af allocFlags, rec *recorder) int {
	mode := rmqNormal
	if rec != nil {
		rec.bulk = true
	}
	z.mu.Lock()
	i := 0
	if rec == nil && !z.trace.enabled() && !z.noRuns {
		// The calls' plain takes, a run at a time, until the lists of
		// mt are out of blocks large enough; the fallbacks below.
		for i < count {
			pfn, n := z.rmqueueRun(order, count-i, mt)
			if n == 0 {
				break
			}
			for j := range n {
				off := z.mm.off(pfn + PFN(j)<<order)
				z.mm.setOwnerState(off, psPCP|uint8(order))
				l.pushBack(off)
			}
			i += n
			z.nrRuns++
		}
	}
	for ; i < count; i++ {
		pfn, ok := z.rmqueue(t, order, mt, af, &mode, rec)
		if !ok {
			break
		}
		off := z.mm.off(pfn)
		z.mm.setOwnerState(off, psPCP|uint8(order))
		l.pushBack(off)
	}
	z.mu.Unlock()
	if rec != nil {
		rec.bulk = false
	}
	return i
}

// rmqueuePCPList takes a block from this CPU's pcp list, refilling the list
// from the buddy lists when it is empty.
//
// Kernel: mm/page_alloc.c:rmqueue_pcplist(), __rmqueue_pcplist().
func (z *Zone) rmqueuePCPList(t *memalloc.Task, order Order, mt gfp.Migratetype, af allocFlags, owner uint8, hit, local bool, rec *recorder) (PFN, bool) {
	p := &z.pcp[t.CPU()]
	p.mu.Lock()
	p.freeCount >>= 1
	l := &p.lists[orderToPindex(mt, order)]
	if l.n == 0 {
		batch := z.nrPCPAlloc(p, order)
		if af&allocHighAtomic != 0 {
			p.mu.Unlock()
			if rec != nil {
				rec.addf(StepPCP, z, "rmqueue_pcplist: CPU %d's pcp list order %d migratetype %s empty, and "+
					"ALLOC_HIGHATOMIC never refills it: go to the buddy allocator", t.CPU(), order, mt)
			}
			return 0, false
		}
		got := z.rmqueueBulkRec(t, order, batch, l, mt, af, rec)
		p.count += got << order
		if rec != nil {
			rec.pcpRefill(z, t.CPU(), order, mt, batch, got)
		}
		if l.n == 0 {
			p.mu.Unlock()
			return 0, false
		}
	} else if rec != nil {
		rec.addf(StepPCP, z, "rmqueue_pcplist: pcp list order %d migratetype %s of CPU %d holds %d blocks (pcp count %d, "+
			"high %d, batch %d): take the first", order, mt, t.CPU(), l.n, p.count, p.high, p.batch)
	}
	pfn := z.pcpTake(p, l, order, owner, hit, local)
	p.mu.Unlock()
	return pfn, true
}

// pcpTake takes the first block of a non-empty pcp list for a caller and
// counts the allocation (pgalloc_<zone>, numa_hit, numa_local; the caller
// counts the remote NUMA events).
// Preconditions: p.mu is held; l is one of p's lists, not empty.
//
// Kernel: mm/page_alloc.c:__rmqueue_pcplist(), rmqueue_pcplist().
func (z *Zone) pcpTake(p *pcpLists, l *deque, order Order, owner uint8, hit, local bool) PFN {
	off := p.take(l, order, hit, local)
	z.mm.setOwnerState(off, owner)
	if owner&psMovable != 0 {
		z.countMovable(z.mm.pfnAt(off), order, 1)
	}
	return z.mm.pfnAt(off)
}

// take is pcpTake's list work and counting, small enough to inline in the
// allocation fast path; it returns the block's memmap offset.
func (p *pcpLists) take(l *deque, order Order, hit, local bool) int32 {
	off := l.popFront()
	nr := order.nrPages()
	p.count -= nr
	p.ev.pgalloc += int64(nr)
	if hit {
		p.ev.numaHit++
	}
	if local {
		p.ev.numaLocal++
	}
	return off
}

// put is free_frozen_page_commit's list work and counting for a block at
// memmap offset off of nr pages, small enough to inline in the free fast
// path. Preconditions: l has room (the caller grows it first).
func (p *pcpLists) put(l *deque, off int32, nr int) {
	p.allocFactor >>= 1
	p.ev.pgfree += int64(nr)
	l.pushFront(off)
	p.count += nr
}

// pcpFreeHigh is the rest of free_frozen_page_commit, for a free that
// freeChecked's common case does not cover: nr_pcp_high's tuning of
// pcp->high, and the drain of a list over it.
//
// Preconditions: p.mu is held; the freed block is on list pindex.
//
// Kernel: mm/page_alloc.c:free_frozen_page_commit().
func (z *Zone) pcpFreeHigh(t *memalloc.Task, p *pcpLists, pindex int, freeHigh bool) {
	batch := p.batch
	high := z.nrPCPHigh(p, batch, freeHigh)
	if p.count < high {
		return
	}
	toFree := nrPCPFree(p, batch, high, freeHigh)
	for toFree > 0 && p.count > 0 {
		n := min(toFree, batch)
		z.freePCPPagesBulk(t, n, p, pindex)
		toFree -= n
	}
	if z.flags.Load()&zoneBelowHigh != 0 && z.watermarkOK(0, z.wmarkPages(WmarkHigh), gfp.ZoneMovable, 0) {
		z.flags.And(^zoneBelowHigh)
	}
}

// nrPCPHigh returns the high mark a free checks the list against, and
// tunes pcp->high: down while reclaim runs or the zone is below its high
// watermark, up when frees overflow it.
//
// Kernel: mm/page_alloc.c:nr_pcp_high().
func (z *Zone) nrPCPHigh(p *pcpLists, batch int, freeHigh bool) int {
	high := clampInt(p.high, p.highMin, p.highMax)
	p.high = high
	if high == 0 {
		return 0
	}
	if freeHigh {
		p.high = max(high-(batch<<pcpBatchScaleMax), p.highMin)
		return 0
	}
	if z.flags.Load()&zoneReclaimActive != 0 {
		fc := max(p.freeCount, batch)
		p.high = max(high-fc, p.highMin)
		return min(batch<<2, p.high)
	}
	if p.highMin == p.highMax {
		return high
	}
	if z.flags.Load()&zoneBelowHigh != 0 {
		fc := max(p.freeCount, batch)
		p.high = max(high-fc, p.highMin)
		high = max(p.count, p.highMin)
	} else if p.count >= high {
		need := p.freeCount + batch
		if p.high < need {
			p.high = clampInt(need, p.highMin, p.highMax)
		}
	}
	return high
}

// nrPCPFree returns how many pages a drain frees.
//
// Kernel: mm/page_alloc.c:nr_pcp_free().
func nrPCPFree(p *pcpLists, batch, high int, freeHigh bool) int {
	if freeHigh {
		return min(p.count, batch<<pcpBatchScaleMax)
	}
	if high < batch {
		return 1
	}
	return clampInt(p.freeCount, batch, high-batch)
}

// freePCPPagesBulk returns count pages from the pcp lists to the buddy
// lists, taking the lists round-robin from the one after pindex, each from
// its tail, under the zone lock.
//
// Kernel: mm/page_alloc.c:free_pcppages_bulk().
func (z *Zone) freePCPPagesBulk(t *memalloc.Task, count int, p *pcpLists, pindex int) {
	count = min(p.count, count)
	pindex-- // the search below starts at pindex itself
	z.mu.Lock()
	for count > 0 {
		var l *deque
		for {
			if pindex++; pindex > nrPCPLists-1 {
				pindex = 0
			}
			if l = &p.lists[pindex]; l.n > 0 {
				break
			}
		}
		order := pindexToOrder(pindex)
		nr := 1 << order
		for {
			off := l.popBack()
			pfn := z.mm.pfnAt(off)
			mt := z.blockMT(pfn)
			count -= nr
			p.count -= nr
			z.mm.setOwnerState(off, psNone)
			z.freeOnePage(pfn, order, mt, false)
			if z.trace.enabled() {
				z.trace.emit(t, Event{Kind: EvPagePcpuDrain, PFN: pfn, Order: order, Migratetype: mt})
			}
			if count <= 0 || l.n == 0 {
				break
			}
		}
	}
	z.mu.Unlock()
}

// drainPCP returns every page of one CPU's pcp lists to the buddy lists.
//
// Kernel: mm/page_alloc.c:drain_pages_zone().
func (z *Zone) drainPCP(t *memalloc.Task, cpu int) {
	p := &z.pcp[cpu]
	p.mu.Lock()
	for p.count > 0 {
		z.freePCPPagesBulk(t, min(p.count, p.batch<<pcpBatchScaleMax), p, 0)
	}
	p.mu.Unlock()
}

// clampInt is the kernel's clamp(): hi when v >= hi, else lo when v <= lo
// (so lo wins only below both when lo > hi).
//
// Kernel: include/linux/minmax.h:__clamp().
func clampInt(v, lo, hi int) int {
	switch {
	case v >= hi:
		return hi
	case v <= lo:
		return lo
	}
	return v
}

// roundDownPow2 returns the largest power of two ≤ n (n ≥ 1).
//
// Kernel: include/linux/log2.h:rounddown_pow_of_two().
func roundDownPow2(n int) int {
	p := 1
	for p*2 <= n {
		p *= 2
	}
	return p
}
