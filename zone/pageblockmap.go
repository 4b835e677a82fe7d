package zone

import "github.com/mmsim/mmsim/gfp"

// This file is a pageblock-by-pageblock picture of a zone: each pageblock's
// migratetype and how much of it the buddy allocator holds free, the data
// behind a fragmentation map. The kernel has no such file; the closest are
// the block counts of /proc/pagetypeinfo (which only count types) and
// page-types or /proc/kpageflags walked from user space.

// PageblockInfo describes one pageblock of a zone.
//
// Kernel: include/linux/pageblock-flags.h (a pageblock and its
// migratetype bits).
type PageblockInfo struct {
	// StartPFN is the pageblock's first pfn, aligned to PageblockNrPages;
	// the first and last pageblocks of a zone may start or end outside
	// it.
	StartPFN PFN
	// Migratetype is the pageblock's type, as get_pageblock_migratetype
	// reads it.
	Migratetype gfp.Migratetype
	// Present is the number of the pageblock's pages that exist in the
	// zone (at most PageblockNrPages): reserved pages count, holes and
	// other zones' pages do not.
	Present int64
	// Free is the number of the pageblock's pages on the buddy free
	// lists (PageBuddy), isolated ones included. Pages on per-cpu lists
	// are not free here: the buddy allocator cannot merge them, and
	// neither /proc/buddyinfo nor the fragmentation indices count them.
	// Invariant: 0 <= Free <= Present.
	Free int64
}

// Pageblocks returns every pageblock holding present pages of the zone, in
// pfn order, with its migratetype and its free pages: one consistent
// snapshot, taken under the zone lock (the per-cpu lists are not locked:
// their pages count as allocated). An unpopulated zone has none.
//
// The cost is one step per MAX_ORDER block the buddy holds whole, and one
// per page of the blocks that are split, under the zone lock: a 64 GiB
// zone right after boot (32768 pageblocks) takes about 16384 steps.
//
// Kernel: mm/vmstat.c:pagetypeinfo_showblockcount_print() (the walk of the
// zone's pageblocks), with the free pages that mm/page_alloc.c's
// prep_move_freepages_block() counts in one.
func (z *Zone) Pageblocks() []PageblockInfo {
	if !z.populated() {
		return nil
	}
	first := z.startPFN &^ (PageblockNrPages - 1)
	end := z.presentEnd
	out := make([]PageblockInfo, (end-first+PageblockNrPages-1)/PageblockNrPages)
	for i := range out {
		out[i].StartPFN = first + PFN(i)*PageblockNrPages
	}
	for _, r := range z.presentRuns {
		for pfn := r.start; pfn < r.end; {
			i := int((pfn - first) >> PageblockOrder)
			next := min(out[i].StartPFN+PageblockNrPages, r.end)
			out[i].Present += int64(next - pfn)
			pfn = next
		}
	}
	// addFree counts a free block of 1<<order pages at pfn, spreading
	// one larger than a pageblock over the pageblocks it covers.
	addFree := func(pfn PFN, order Order) {
		i := int((pfn - first) >> PageblockOrder)
		if order <= PageblockOrder {
			out[i].Free += 1 << order
			return
		}
		for n := 0; n < 1<<(order-PageblockOrder); n++ {
			out[i+n].Free += PageblockNrPages
		}
	}

	z.mu.Lock()
	defer z.mu.Unlock()
	for i := range out {
		out[i].Migratetype = z.blockMT(out[i].StartPFN)
	}
	m := &z.mm
	for b := m.off(first) >> MaxPageOrder; b <= m.off(end-1)>>MaxPageOrder; b++ {
		base := m.pfnAt(b << MaxPageOrder)
		c := m.blocks[b].chunk
		if c == nil {
			if s := m.blocks[b].state; s&psKindMask == psFree {
				addFree(base, Order(s&psOrderMask))
			}
			continue
		}
		for off := 0; off < maxOrderNrPages; {
			s := c.state[off]
			if s&psKindMask != psFree {
				off++
				continue
			}
			order := Order(s & psOrderMask)
			addFree(base+PFN(off), order)
			off += 1 << order
		}
	}
	return out
}
