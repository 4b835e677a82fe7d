package zone

import (
	"fmt"
	"math/bits"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

// This file is the buddy allocator proper: free lists, split and merge,
// fallback between migratetypes, and the highatomic reserve. Every function
// here runs with the zone lock held (the Locked suffix says so where it is not
// obvious from the caller).

// fallbacks is the order in which other migratetypes' free lists are searched
// when the requested one is empty.
//
// Kernel: mm/page_alloc.c:fallbacks[].
var fallbacks = [gfp.MigratePCPTypes][gfp.MigratePCPTypes - 1]gfp.Migratetype{
	mtUnmovable:   {mtReclaimable, mtMovable},
	mtMovable:     {mtReclaimable, mtUnmovable},
	mtReclaimable: {mtUnmovable, mtMovable},
}

// mergeable reports whether pages of migratetype mt may merge with pages of
// other types: only the pcp types may.
//
// Kernel: include/linux/mmzone.h:migratetype_is_mergeable().
func mergeable(mt gfp.Migratetype) bool { return int(mt) < gfp.MigratePCPTypes }

// listBit is a free list's bit in Zone.nonEmpty.
func listBit(order Order, mt gfp.Migratetype) uint64 {
	return 1 << (uint(order)*uint(gfp.MigrateTypes) + uint(mt))
}

// accountFree adds nr pages of migratetype mt to the zone's free counts.
//
// Kernel: mm/page_alloc.c:account_freepages().
func (z *Zone) accountFree(nr int64, mt gfp.Migratetype) {
	if mt == mtIsolate {
		return
	}
	z.freePages.Add(nr)
	if mt == mtHighAtomic {
		z.freeHighatomic.Add(nr)
	}
}

// addFree puts the free block at pfn on its free list and marks it PageBuddy.
//
// Kernel: mm/page_alloc.c:__add_to_free_list(), set_buddy_order().
func (z *Zone) addFree(pfn PFN, order Order, mt gfp.Migratetype, tail bool) {
	off := z.mm.off(pfn)
	z.mm.setState(off, psFree|uint8(order))
	l := &z.free[order][mt]
	z.mm.add(l, off, order, tail)
	if l.n == 1 {
		z.nonEmpty.Or(listBit(order, mt))
	}
	z.nrFree[order]++
	if order >= PageblockOrder && mt != mtIsolate {
		z.freePagesBlocks += 1 << order
	}
}

// delFree takes the free block at pfn off its free list.
//
// Kernel: mm/page_alloc.c:__del_page_from_free_list().
func (z *Zone) delFree(pfn PFN, order Order, mt gfp.Migratetype) {
	off := z.mm.off(pfn)
	l := &z.free[order][mt]
	z.mm.del(l, off, order)
	if l.n == 0 {
		z.nonEmpty.And(^listBit(order, mt))
	}
	z.mm.setState(off, psNone)
	z.nrFree[order]--
	if order >= PageblockOrder && mt != mtIsolate {
		z.freePagesBlocks -= 1 << order
	}
}

// moveFree moves the free block at pfn to the tail of the new type's list.
//
// Kernel: mm/page_alloc.c:move_to_free_list().
func (z *Zone) moveFree(pfn PFN, order Order, oldMT, newMT gfp.Migratetype) {
	off := z.mm.off(pfn)
	from, to := &z.free[order][oldMT], &z.free[order][newMT]
	z.mm.del(from, off, order)
	z.mm.add(to, off, order, true)
	if from.n == 0 {
		z.nonEmpty.And(^listBit(order, oldMT))
	}
	if to.n == 1 {
		z.nonEmpty.Or(listBit(order, newMT))
	}
	z.accountFree(-(1 << order), oldMT)
	z.accountFree(1<<order, newMT)
	if order >= PageblockOrder && (oldMT == mtIsolate) != (newMT == mtIsolate) {
		if oldMT == mtIsolate {
			z.freePagesBlocks += 1 << order
		} else {
			z.freePagesBlocks -= 1 << order
		}
	}
}

// isBuddy reports whether the page at pfn heads a free block of the order on
// the buddy lists of this zone.
//
// Kernel: mm/internal.h:page_is_buddy().
func (z *Zone) isBuddy(pfn PFN, order Order) bool {
	if !z.spans(pfn) {
		return false
	}
	return z.mm.state(z.mm.off(pfn)) == psFree|uint8(order)
}

// freeOnePage returns a block to the buddy lists, merging it with its free
// buddies as far as it can.
//
// Kernel: mm/page_alloc.c:__free_one_page().
func (z *Zone) freeOnePage(pfn PFN, order Order, mt gfp.Migratetype, toTail bool) {
	z.accountFree(1<<order, mt)
	var buddy PFN
	for order < MaxPageOrder {
		buddy = pfn ^ (1 << order)
		if !z.isBuddy(buddy, order) {
			break
		}
		buddyMT := mt
		if order >= PageblockOrder {
			// Blocks without fallbacks (isolated, highatomic) never
			// merge with normal ones.
			buddyMT = z.blockMT(buddy)
			if mt != buddyMT && (!mergeable(mt) || !mergeable(buddyMT)) {
				break
			}
		}
		z.delFree(buddy, order, buddyMT)
		if buddyMT != mt {
			z.changePageblockRange(buddy, order, mt)
		}
		pfn &= buddy
		order++
	}
	if !toTail {
		toTail = z.buddyMergeLikely(pfn, buddy, order)
	}
	if order == MaxPageOrder {
		// The block is whole again: its chunk goes back to the pool.
		z.mm.rejoin(z.mm.off(pfn)>>MaxPageOrder, psNone)
	}
	z.addFree(pfn, order, mt, toTail)
}

// buddyMergeLikely reports whether the block just freed is likely to merge
// soon, because the buddy of its parent is free: then it goes to the tail
// of its list, to stay free longer.
//
// Kernel: mm/page_alloc.c:buddy_merge_likely().
func (z *Zone) buddyMergeLikely(pfn, buddy PFN, order Order) bool {
	if order >= MaxPageOrder-1 {
		return false
	}
	higher := buddy & pfn
	return z.isBuddy(higher^(1<<(order+1)), order+1)
}

// changePageblockRange sets every pageblock of the block at pfn to mt.
//
// Kernel: mm/page_alloc.c:change_pageblock_range().
func (z *Zone) changePageblockRange(pfn PFN, order Order, mt gfp.Migratetype) {
	for i := 0; i < 1<<(order-PageblockOrder); i++ {
		z.setBlockMT(pfn+PFN(i*PageblockNrPages), mt)
	}
}

// expand splits the block at pfn of order high down to order low, putting
// the upper halves on the free lists and keeping the lower one. It returns
// the number of pages it put back.
//
// Kernel: mm/page_alloc.c:expand().
func (z *Zone) expand(pfn PFN, low, high Order, mt gfp.Migratetype) int64 {
	var added int64
	for high > low {
		high--
		size := PFN(1) << high
		z.addFree(pfn+size, high, mt, false)
		added += int64(size)
	}
	return added
}

// delAndExpand takes the free block at pfn of order high off its list and
// splits it down to order low.
//
// Kernel: mm/page_alloc.c:page_del_and_expand().
func (z *Zone) delAndExpand(pfn PFN, low, high Order, mt gfp.Migratetype) {
	z.delFree(pfn, high, mt)
	nr := int64(1)<<high - z.expand(pfn, low, high, mt)
	z.accountFree(-nr, mt)
}

// rmqueueSmallest takes the smallest free block of at least the order from
// the lists of mt, and splits it to the order.
//
// Kernel: mm/page_alloc.c:__rmqueue_smallest().
func (z *Zone) rmqueueSmallest(t *memalloc.Task, order Order, mt gfp.Migratetype, rec *recorder) (PFN, bool) {
	for o := order; o <= MaxPageOrder; o++ {
		l := &z.free[o][mt]
		if l.empty() {
			continue
		}
		pfn := z.mm.pfnAt(l.head)
		z.delAndExpand(pfn, order, o, mt)
		if rec != nil {
			rec.smallest(z, order, o, mt, pfn)
		}
		if z.trace.enabled() {
			z.trace.emit(t, Event{Kind: EvPageAllocZoneLocked, PFN: pfn, Order: order,
				Migratetype: mt, PercpuRefill: pcpAllowedOrder(order) && int(mt) < gfp.MigratePCPTypes})
		}
		return pfn, true
	}
	return 0, false
}

// rmqueueRun takes, for a bulk refill, up to n blocks of the order from
// the smallest free block of mt's lists that holds one, as n calls of
// rmqueueSmallest in a row take them, and returns the first block's pfn
// and how many it took (0: mt's lists hold no block of the order or
// larger).
//
// The lists of mt below the block's order found were empty from the
// order asked for up, or a smaller block would have been found. So once
// the first call has split the block, the buddies it left are the only
// blocks on those lists, and each next call takes the next block of the
// same pages from the list of the smallest buddy: the run is pfn, pfn +
// 1<<order, and so on, and what the calls leave is the rest of the
// block, as the aligned blocks that cover it, one on each list it needs.
// rmqueueRun makes that end state at once, not a split and a take per
// block: one pass through the lists' links, the state bytes and the
// free counts where there were n. The pcp refills of a replay are most
// of its allocator's work, and this is most of theirs.
//
// Preconditions: the zone lock is held; nothing records or traces the
// calls, whose steps this leaves out.
//
// Kernel: mm/page_alloc.c:rmqueue_bulk() calling __rmqueue_smallest() n
// times.
func (z *Zone) rmqueueRun(order Order, n int, mt gfp.Migratetype) (PFN, int) {
	for o := order; o <= MaxPageOrder; o++ {
		l := &z.free[o][mt]
		if l.empty() {
			continue
		}
		pfn := z.mm.pfnAt(l.head)
		n = min(n, 1<<(o-order))
		z.delFree(pfn, o, mt)
		if o == MaxPageOrder && order < o {
			// The first call's split gives the block its chunk, even
			// when the run takes every page of it.
			z.mm.splitWhole(z.mm.off(pfn))
		}
		taken := PFN(n) << order
		end := pfn + 1<<o
		for at := pfn + taken; at < end; {
			// The largest aligned block at at: its offset in the
			// block's lowest set bit.
			q := Order(bits.TrailingZeros64(uint64(at - pfn)))
			z.addFree(at, q, mt, false)
			at += 1 << q
		}
		z.accountFree(-int64(taken), mt)
		return pfn, n
	}
	return 0, 0
}

// rmqMode remembers, across the calls of one bulk refill, which fallback
// mode last found pages.
//
// Kernel: mm/page_alloc.c:enum rmqueue_mode.
type rmqMode int

const (
	rmqNormal rmqMode = iota
	rmqClaim
	rmqSteal
)

// rmqueue takes a block for the order and migratetype, falling back to other
// types with increasing risk of fragmentation: the requested lists, then
// claiming a block of another type, then stealing a single block of it.
// mmsim models no CMA, so the CMA steps never apply. rec records for
// Explain (nil: no recording).
//
// Kernel: mm/page_alloc.c:__rmqueue().
func (z *Zone) rmqueue(t *memalloc.Task, order Order, mt gfp.Migratetype, af allocFlags, mode *rmqMode, rec *recorder) (PFN, bool) {
	switch *mode {
	case rmqNormal:
		if pfn, ok := z.rmqueueSmallest(t, order, mt, rec); ok {
			return pfn, true
		}
		fallthrough
	case rmqClaim:
		if pfn, ok := z.rmqueueClaim(t, order, mt, af, rec); ok {
			*mode = rmqNormal // the preferred list was replenished
			return pfn, true
		}
		fallthrough
	case rmqSteal:
		if af&allocNoFragment == 0 {
			if pfn, ok := z.rmqueueSteal(t, order, mt, rec); ok {
				*mode = rmqSteal
				return pfn, true
			}
		} else if rec != nil {
			rec.addf(StepFallback, z, "__rmqueue: ALLOC_NOFRAGMENT: no __rmqueue_steal of a block smaller than a pageblock "+
				"for order %d %s", order, mt)
		}
	}
	return 0, false
}

// shouldTryClaim reports whether a fallback for the order should try to
// claim the whole pageblock for the requested type.
//
// Kernel: mm/page_alloc.c:should_try_claim_block().
func shouldTryClaim(order Order, mt gfp.Migratetype, mobilityDisabled bool) bool {
	return order >= PageblockOrder || order >= PageblockOrder/2 ||
		mt == mtReclaimable || mt == mtUnmovable || mobilityDisabled
}

// findFallback returns the first fallback type with a free block of the
// order, and whether claiming is ruled out for this order.
//
// Kernel: mm/page_alloc.c:find_suitable_fallback().
func (z *Zone) findFallback(order Order, mt gfp.Migratetype, claimable bool) (fb gfp.Migratetype, found, noClaim bool) {
	if claimable && !shouldTryClaim(order, mt, z.node.alloc.mobilityDisabled) {
		return 0, false, true
	}
	if z.nrFree[order] == 0 {
		return 0, false, false
	}
	for _, f := range fallbacks[mt] {
		if !z.free[order][f].empty() {
			return f, true, false
		}
	}
	return 0, false, false
}

// rmqueueClaim looks for the largest free block of a fallback type and tries
// to claim its pageblock for the requested type.
//
// Kernel: mm/page_alloc.c:__rmqueue_claim().
func (z *Zone) rmqueueClaim(t *memalloc.Task, order Order, mt gfp.Migratetype, af allocFlags, rec *recorder) (PFN, bool) {
	minOrder := order
	if order < PageblockOrder && af&allocNoFragment != 0 {
		minOrder = PageblockOrder
	}
	for o := MaxPageOrder; o >= minOrder; o-- {
		fb, found, noClaim := z.findFallback(o, mt, true)
		if noClaim {
			if rec != nil {
				rec.addf(StepFallback, z, "__rmqueue_claim: should_try_claim_block says no for a %s request below order %d: "+
					"no claim", mt, o+1)
			}
			break
		}
		if !found {
			continue
		}
		head := z.mm.pfnAt(z.free[o][fb].head)
		if pfn, ok := z.tryToClaimBlock(t, head, o, order, mt, fb, af, rec); ok {
			z.traceExtfrag(t, pfn, order, o, mt, fb)
			return pfn, true
		}
	}
	return 0, false
}

// rmqueueSteal takes the smallest free block of a fallback type, without
// changing its pageblock's type.
//
// Kernel: mm/page_alloc.c:__rmqueue_steal().
func (z *Zone) rmqueueSteal(t *memalloc.Task, order Order, mt gfp.Migratetype, rec *recorder) (PFN, bool) {
	for o := order; o <= MaxPageOrder; o++ {
		fb, found, _ := z.findFallback(o, mt, false)
		if !found {
			continue
		}
		pfn := z.mm.pfnAt(z.free[o][fb].head)
		z.delAndExpand(pfn, order, o, fb)
		if rec != nil {
			frag := "fragmenting: smaller than a pageblock"
			if o >= PageblockOrder {
				frag = "not fragmenting: whole pageblocks"
			}
			rec.addf(StepFallback, z, "fallback: __rmqueue_steal took an order-%d %s block at pfn %#x for a %s request "+
				"of order %d, leaving its pageblock %s (%s)",
				o, fb, uint64(pfn), mt, order, z.blockMT(pfn), frag)
		}
		z.traceExtfrag(t, pfn, order, o, mt, fb)
		return pfn, true
	}
	return 0, false
}

// traceExtfrag emits mm_page_alloc_extfrag.
//
// Kernel: include/trace/events/kmem.h:mm_page_alloc_extfrag.
func (z *Zone) traceExtfrag(t *memalloc.Task, pfn PFN, order, fallbackOrder Order, mt, fb gfp.Migratetype) {
	if z.trace.enabled() {
		z.trace.emit(t, Event{Kind: EvPageAllocExtfrag, PFN: pfn, Order: order,
			FallbackOrder: fallbackOrder, Migratetype: mt, FallbackMigratetype: fb,
			ChangeOwnership: z.blockMT(pfn) == mt})
	}
}

// tryToClaimBlock takes the free block at pfn (of order cur, type blockMT)
// for a request of the order and type mt: whole pageblocks and larger are
// re-typed outright; a smaller block's pageblock is claimed when enough of
// it is free or compatible.
//
// Kernel: mm/page_alloc.c:try_to_claim_block().
func (z *Zone) tryToClaimBlock(t *memalloc.Task, pfn PFN, cur, order Order, mt, blockMT gfp.Migratetype, af allocFlags, rec *recorder) (PFN, bool) {
	if cur >= PageblockOrder {
		z.delFree(pfn, cur, blockMT)
		z.accountFree(-(1 << cur), blockMT)
		z.changePageblockRange(pfn, cur, mt)
		z.accountFree(z.expand(pfn, order, cur, mt), mt)
		if rec != nil {
			rec.addf(StepFallback, z, "fallback: __rmqueue_claim took a free order-%d %s block at pfn %#x for a %s request "+
				"of order %d: claimed the whole block (pageblocks re-typed %s)", cur, blockMT, uint64(pfn), mt, order, mt)
		}
		return pfn, true
	}
	boosted := z.boostWatermark()
	if boosted && af&allocKswapd != 0 {
		z.flags.Or(zoneBoostedWatermark)
	}
	if rec != nil && boosted {
		flag := ""
		if af&allocKswapd != 0 {
			flag = " and set ZONE_BOOSTED_WATERMARK (ALLOC_KSWAPD)"
		}
		rec.addf(StepFallback, z, "boost_watermark: a fallback into a %s pageblock raised watermark_boost to %d%s",
			blockMT, z.boost.Load(), flag)
	}
	start, free, movable, ok := z.prepMoveFreepagesBlock(pfn, true)
	if !ok {
		if rec != nil {
			rec.addf(StepFallback, z, "try_to_claim_block: the pageblock of pfn %#x straddles the zone's edge: not claimed", uint64(pfn))
		}
		return 0, false
	}
	var alike int64
	switch {
	case mt == mtMovable:
		alike = movable
	case blockMT == mtMovable:
		alike = PageblockNrPages - (free + movable)
	}
	if free+alike >= 1<<(PageblockOrder-1) || z.node.alloc.mobilityDisabled {
		z.moveFreepagesBlock(start, blockMT, mt)
		z.setBlockMT(start, mt)
		if rec != nil {
			rec.addf(StepFallback, z, "fallback: __rmqueue_claim stole pageblock %#x from %s for %s (claimed the whole block: "+
				"free %d + compatible %d >= %d of %d pages)", uint64(start), blockMT, mt, free, alike,
				1<<(PageblockOrder-1), PageblockNrPages)
		}
		return z.rmqueueSmallest(t, order, mt, rec)
	}
	if rec != nil {
		rec.addf(StepFallback, z, "try_to_claim_block: pageblock %#x of %s has free %d + compatible %d < %d pages: not claimed",
			uint64(start), blockMT, free, alike, 1<<(PageblockOrder-1))
	}
	return 0, false
}

// boostWatermark raises the zone's watermark boost by a pageblock, up to
// watermark_boost_factor of the high watermark, to make reclaim restore
// unfragmented free memory after a fallback.
//
// Kernel: mm/page_alloc.c:boost_watermark().
func (z *Zone) boostWatermark() bool {
	factor := int64(z.node.alloc.sysctl.WatermarkBoostFactor)
	if factor == 0 || PageblockNrPages*4 > z.managed {
		return false
	}
	maxBoost := multFrac(z.wmark[WmarkHigh].Load(), factor, 10000)
	if maxBoost == 0 {
		return false
	}
	maxBoost = max(PageblockNrPages, maxBoost)
	z.boost.Store(min(z.boost.Load()+PageblockNrPages, maxBoost))
	return true
}

// prepMoveFreepagesBlock returns the start of pfn's pageblock and, when
// count is set, how many of its pages are free and how many are movable. A
// page counts as movable while it is allocated with __GFP_MOVABLE: mmsim's
// stand-in for PageLRU, kept per pageblock by the allocation and free paths.
// It fails for a pageblock that straddles the zone's edge.
//
// Kernel: mm/page_alloc.c:prep_move_freepages_block().
func (z *Zone) prepMoveFreepagesBlock(pfn PFN, count bool) (start PFN, free, movable int64, ok bool) {
	start = pfn &^ (PageblockNrPages - 1)
	end := start + PageblockNrPages
	if !z.spans(start) || !z.spans(end-1) {
		return 0, 0, 0, false
	}
	if !count {
		return start, 0, 0, true
	}
	for p := start; p < end; {
		s := z.mm.state(z.mm.off(p))
		if s&psKindMask != psFree {
			p++
			continue
		}
		n := PFN(1) << (s & psOrderMask)
		free += int64(n)
		p += n
	}
	movable = int64(z.movable[z.pageblockIndex(start)].Load())
	return start, free, movable, true
}

// countMovable adds or removes an allocated __GFP_MOVABLE block of the
// order at pfn to its pageblocks' movable counts.
func (z *Zone) countMovable(pfn PFN, order Order, sign int32) {
	if order <= PageblockOrder {
		z.movable[z.pageblockIndex(pfn)].Add(sign << order)
		return
	}
	for i := 0; i < 1<<(order-PageblockOrder); i++ {
		z.movable[z.pageblockIndex(pfn+PFN(i*PageblockNrPages))].Add(sign * PageblockNrPages)
	}
}

// moveFreepagesBlock moves every free block of the pageblock at start from
// the old type's lists to the new type's. It returns the pages moved.
//
// Kernel: mm/page_alloc.c:__move_freepages_block().
func (z *Zone) moveFreepagesBlock(start PFN, oldMT, newMT gfp.Migratetype) int64 {
	var moved int64
	for p, end := start, start+PageblockNrPages; p < end; {
		s := z.mm.state(z.mm.off(p))
		if s&psKindMask != psFree {
			p++
			continue
		}
		order := Order(s & psOrderMask)
		z.moveFree(p, order, oldMT, newMT)
		p += 1 << order
		moved += 1 << order
	}
	return moved
}

// moveFreepagesBlockType re-types pfn's pageblock, moving its free pages.
// It returns -1 for a pageblock that straddles the zone's edge.
//
// Kernel: mm/page_alloc.c:move_freepages_block().
func (z *Zone) moveFreepagesBlockType(pfn PFN, oldMT, newMT gfp.Migratetype) int64 {
	start, _, _, ok := z.prepMoveFreepagesBlock(pfn, false)
	if !ok {
		return -1
	}
	moved := z.moveFreepagesBlock(start, oldMT, newMT)
	z.setBlockMT(start, newMT)
	return moved
}

// reserveHighatomicLocked turns the pageblock of a block just allocated by a
// high-order atomic request into a MIGRATE_HIGHATOMIC reserve, up to about
// 1% of the zone.
//
// Kernel: mm/page_alloc.c:reserve_highatomic_pageblock().
func (z *Zone) reserveHighatomicLocked(pfn PFN, order Order) {
	if z.managed/100 < PageblockNrPages {
		return
	}
	maxManaged := alignUp(z.managed/100, PageblockNrPages)
	if z.reservedHighatomic >= maxManaged {
		return
	}
	mt := z.blockMT(pfn)
	if !mergeable(mt) {
		return
	}
	if order < PageblockOrder {
		if z.moveFreepagesBlockType(pfn, mt, mtHighAtomic) == -1 {
			return
		}
		z.reservedHighatomic += PageblockNrPages
	} else {
		z.changePageblockRange(pfn, order, mtHighAtomic)
		z.reservedHighatomic += 1 << order
	}
}

// unreserveHighatomicLocked gives one highatomic pageblock of the zone back
// to migratetype mt. Unless force, a zone keeps its last reserved pageblock.
// It reports whether it moved anything.
//
// Kernel: mm/page_alloc.c:unreserve_highatomic_pageblock() (one zone).
func (z *Zone) unreserveHighatomicLocked(mt gfp.Migratetype, force bool) bool {
	if !force && z.reservedHighatomic <= PageblockNrPages {
		return false
	}
	for o := Order(0); o <= MaxPageOrder; o++ {
		l := &z.free[o][mtHighAtomic]
		if l.empty() {
			continue
		}
		pfn := z.mm.pfnAt(l.head)
		size := max(int64(PageblockNrPages), int64(1)<<o)
		if size > z.reservedHighatomic {
			z.pendingWarn = fmt.Sprintf("nr_reserved_highatomic %d below the block size %d", z.reservedHighatomic, size)
			size = z.reservedHighatomic
		}
		z.reservedHighatomic -= size
		var moved int64
		if o < PageblockOrder {
			moved = z.moveFreepagesBlockType(pfn, mtHighAtomic, mt)
		} else {
			z.moveFree(pfn, o, mtHighAtomic, mt)
			z.changePageblockRange(pfn, o, mt)
			moved = 1
		}
		if moved > 0 {
			return true
		}
	}
	return false
}

// rmqueueBuddy takes a block straight from the buddy lists under the zone
// lock: from the highatomic reserve first for ALLOC_HIGHATOMIC, then through
// __rmqueue, then from the reserve for OOM victims and order-0 atomic
// requests, as failing them now is worse than failing a high-order atomic
// allocation later.
//
// Kernel: mm/page_alloc.c:rmqueue_buddy().
func (z *Zone) rmqueueBuddy(t *memalloc.Task, order Order, af allocFlags, mt gfp.Migratetype, owner uint8, hit, local bool, rec *recorder) (PFN, bool) {
	z.mu.Lock()
	var pfn PFN
	ok := false
	if af&allocHighAtomic != 0 {
		pfn, ok = z.rmqueueSmallest(t, order, mtHighAtomic, rec)
		if rec != nil {
			rec.addOK(StepHighatomic, z, ok, "rmqueue_buddy: ALLOC_HIGHATOMIC tries the MIGRATE_HIGHATOMIC reserve first: %s",
				gotOrEmpty(ok))
		}
	}
	if !ok {
		mode := rmqNormal
		pfn, ok = z.rmqueue(t, order, mt, af, &mode, rec)
		if !ok && af&(allocOOM|allocNonBlock) != 0 {
			pfn, ok = z.rmqueueSmallest(t, order, mtHighAtomic, rec)
			if rec != nil {
				rec.addOK(StepHighatomic, z, ok, "rmqueue_buddy: nothing in the normal lists; %s may take from the "+
					"MIGRATE_HIGHATOMIC reserve: %s", AllocFlags(af&(allocOOM|allocNonBlock)),
					gotOrEmpty(ok))
			}
		}
	}
	if ok {
		z.mm.setOwnerState(z.mm.off(pfn), owner)
		if owner&psMovable != 0 {
			z.countMovable(pfn, order, 1)
		}
		if af&allocHighAtomic != 0 {
			before := z.reservedHighatomic
			z.reserveHighatomicLocked(pfn, order)
			if rec != nil {
				rec.reserveHighatomic(z, pfn, before)
			}
		}
		z.stats.pgalloc += 1 << order
		if hit {
			z.stats.numaHit++
		}
		if local {
			z.stats.numaLocal++
		}
	}
	z.mu.Unlock()
	return pfn, ok
}

// multFrac is mult_frac(x, n, d): x*n/d without overflowing x*n.
//
// Kernel: include/linux/math.h:mult_frac().
func multFrac(x, n, d int64) int64 { return (x/d)*n + (x%d)*n/d }

// alignUp rounds x up to a multiple of the power of two a.
//
// Kernel: include/linux/align.h:ALIGN().
func alignUp(x, a int64) int64 { return (x + a - 1) &^ (a - 1) }

func gotOrEmpty(ok bool) string {
	if ok {
		return "got a block"
	}
	return "empty"
}
