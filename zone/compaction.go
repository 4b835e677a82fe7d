package zone

import (
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

// This file is what compaction needs of the buddy allocator, as
// mm/compaction.c needs __isolate_free_page, split_page and the capture in
// __free_one_page from mm/page_alloc.c: the free scanner's isolation of
// migration targets, their release, the hand-over of a target to the folio
// migrated into it, and the free of a migrated folio's old page with the
// compacting task's capture control. The policy (scanners, suitability,
// deferral, kcompactd) lives in package reclaim.

// Capture is a compacting task's capture control: a free that completes a
// block of the request's order in the zone being compacted hands the block
// to the request instead of the free lists.
//
// Kernel: mm/internal.h:struct capture_control, current->capture_control.
type Capture struct {
	// Zone, Order and MT are the compaction's zone, order and the
	// request's migratetype (gfp_migratetype of its mask).
	Zone  *Zone
	Order Order
	MT    gfp.Migratetype
	// Movable says the request has __GFP_MOVABLE: the captured block is
	// then a movable allocation (mmsim's PageLRU stand-in).
	Movable bool
	// Page is the captured block, valid once Captured is set.
	Page     Page
	Captured bool
}

// PageblockMigratetype returns the migratetype of pfn's pageblock, read
// without the zone lock as the compaction scanners read it.
//
// Kernel: mm/page_alloc.c:get_pageblock_migratetype().
func (z *Zone) PageblockMigratetype(pfn PFN) gfp.Migratetype { return z.blockMT(pfn) }

// EndPFN returns the first pfn past the zone's span.
//
// Kernel: include/linux/mmzone.h:zone_end_pfn().
func (z *Zone) EndPFN() PFN { return z.startPFN + PFN(z.spanned) }

// PageblockValid reports whether the pageblock at pfn has memory in this
// zone: a pageblock wholly in a hole (past the present pages) has none,
// and the compaction scanners pass over it.
//
// Kernel: mm/compaction.c:pageblock_pfn_to_page().
func (z *Zone) PageblockValid(pfn PFN) bool {
	start := pfn &^ (PageblockNrPages - 1)
	for _, r := range z.presentRuns {
		if start < r.end && start+PageblockNrPages > r.start {
			return true
		}
	}
	return false
}

// FreeBlockOrder reports whether pfn heads a free block on the buddy lists,
// and its order: PageBuddy and buddy_order. The answer is a snapshot.
//
// Kernel: include/linux/page-flags.h:PageBuddy(), mm/internal.h:buddy_order().
func (z *Zone) FreeBlockOrder(pfn PFN) (Order, bool) {
	if !z.spans(pfn) {
		return 0, false
	}
	z.mu.Lock()
	s := z.mm.state(z.mm.off(pfn))
	z.mu.Unlock()
	if s&psKindMask != psFree {
		return 0, false
	}
	return Order(s & psOrderMask), true
}

// FreeArea returns the number of free blocks of each order (nr_free), the
// numbers /proc/buddyinfo sums and the fragmentation index reads.
//
// Kernel: include/linux/mmzone.h:struct free_area.nr_free.
func (z *Zone) FreeArea() [NrPageOrders]int64 {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.nrFree
}

// WatermarkOKFree is __zone_watermark_ok for an ordinary request (no
// reserves) with free pages free instead of the zone's count, as
// compaction's suitability test and should_reclaim_retry ask it.
//
// Kernel: mm/page_alloc.c:__zone_watermark_ok().
func (z *Zone) WatermarkOKFree(order Order, mark int64, highest gfp.ZoneType, free int64) bool {
	return z.watermarkOKFree(order, mark, highest, 0, free)
}

// FreeBlockFor reports whether a request of the order and migratetype
// could now be served from the free lists: ready says a list of its own
// type of at least the order is not empty; fallback says only another
// type's list could serve it (find_suitable_fallback, claiming allowed).
//
// Kernel: mm/compaction.c:__compact_finished() (the free-area loop).
func (z *Zone) FreeBlockFor(order Order, mt gfp.Migratetype) (ready, fallback bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	for o := order; o <= MaxPageOrder; o++ {
		if !z.free[o][mt].empty() {
			return true, false
		}
		if int(mt) < gfp.MigratePCPTypes {
			if _, found, _ := z.findFallback(o, mt, true); found {
				return false, true
			}
		}
	}
	return false, false
}

// IsolateFreePages is the free scanner's work on the pages [start, end) of
// one pageblock: it takes free blocks off the buddy lists and splits them
// into order-0 pages owned by the caller (allocated and movable, ready to
// receive a migrated folio), until it holds want pages, the
// range ends, or taking the next block would put the zone under its min
// watermark (plus the block). A block of pageblock order or more is a
// pageblock better left whole; the caller checks suitable_migration_target
// before calling. It returns the pages, the pfns scanned and where it
// stopped: end when it scanned the whole range.
//
// mmsim splits isolated blocks at once (as split_map_pages did before
// 6.10); its folios are order 0, so compaction_alloc never needs a larger
// target.
//
// Kernel: mm/compaction.c:isolate_freepages_block(),
// mm/page_alloc.c:__isolate_free_page(), split_page().
func (z *Zone) IsolateFreePages(start, end PFN, want int64) (pages []Page, scanned int64, next PFN) {
	end = min(end, z.EndPFN())
	pfn := max(start, z.firstManaged)
	z.mu.Lock()
	defer z.mu.Unlock()
	for pfn < end && int64(len(pages)) < want {
		scanned++
		off := z.mm.off(pfn)
		s := z.mm.state(off)
		if s&psKindMask != psFree {
			pfn++
			continue
		}
		order := Order(s & psOrderMask)
		mt := z.blockMT(pfn)
		if mt != mtIsolate && !z.watermarkOK(0, z.wmark[WmarkMin].Load()+1<<order, 0, 0) {
			return pages, scanned, pfn
		}
		z.delFree(pfn, order, mt)
		z.accountFree(-(1 << order), mt)
		if order >= PageblockOrder-1 { // 8 with 512-page pageblocks
			// A block this large re-types its pageblocks as movable:
			// the pages will hold migrated movable folios.
			for p := pfn &^ (PageblockNrPages - 1); p < pfn+1<<order; p += PageblockNrPages {
				if bt := z.blockMT(p); mergeable(bt) && bt != mtMovable {
					z.moveFreepagesBlockType(p, bt, mtMovable)
				}
			}
		}
		if z.mm.blocks[off>>MaxPageOrder].chunk == nil {
			z.mm.split(off >> MaxPageOrder)
		}
		// Every target will hold a movable folio: compaction_alloc's
		// post_alloc_hook(__GFP_MOVABLE).
		for i := PFN(0); i < 1<<order; i++ {
			z.mm.setOwnerState(z.mm.off(pfn+i), psAlloc|psMovable)
			pages = append(pages, Page{pfn: pfn + i})
		}
		z.countMovable(pfn, order, 1)
		scanned += 1<<order - 1
		pfn += 1 << order
	}
	return pages, scanned, max(pfn, start)
}

// ReleaseFreePages returns isolated pages compaction did not use to the
// buddy lists, where capc (which may be nil) may capture the block one
// completes.
//
// Kernel: mm/compaction.c:release_free_list().
func (z *Zone) ReleaseFreePages(pages []Page, capc *Capture) {
	z.mu.Lock()
	for _, p := range pages {
		z.freeIsolatedLocked(p.pfn, 0, capc)
	}
	z.mu.Unlock()
	z.sometimes()
}

// freeIsolatedLocked frees a block compaction owns to the buddy lists and
// offers it to capc.
func (z *Zone) freeIsolatedLocked(pfn PFN, order Order, capc *Capture) {
	off := z.mm.off(pfn)
	z.dropOwner(off, pfn, order, z.mm.ownerState(off), psNone)
	mt := z.blockMT(pfn)
	z.freeOnePage(pfn, order, mt, false)
	z.stats.pgfree += 1 << order
	if capc != nil && capc.Zone == z && !capc.Captured {
		z.captureLocked(pfn, order, mt, capc)
	}
}

// FreeMigrated frees the old page of a folio compaction migrated, straight
// to the buddy lists (a free followed by compaction's drain_local_pages),
// and lets capc capture the block it completes. An invalid free is a BUG,
// as for FreePages.
//
// Kernel: mm/migrate.c:migrate_folio_done(), mm/page_alloc.c:
// __free_one_page() with compaction_capture().
func (a *Allocator) FreeMigrated(t *memalloc.Task, p Page, order Order, capc *Capture) error {
	z, _, err := a.checkFree(t, p, order)
	if err != nil {
		return err
	}
	a.freePrepare(t, p, order)
	z.mu.Lock()
	z.freeIsolatedLocked(p.pfn, order, capc)
	z.mu.Unlock()
	z.sometimes()
	return nil
}

// captureLocked is compaction_capture, applied after the merge: the kernel
// checks at each step of __free_one_page's merge loop and takes the block
// when the merge reaches exactly the capture's order; here the merged
// block, if it reached that order, is taken off its list and split back so
// that the captured block and the free remainder are what the kernel's
// early exit leaves — but for their places on the free lists, and, for a
// capture of pageblock order or more, a buddy pageblock the merge re-typed.
//
// Kernel: mm/page_alloc.c:compaction_capture().
func (z *Zone) captureLocked(pfn PFN, freed Order, mt gfp.Migratetype, capc *Capture) {
	c := capc.Order
	if c < freed || c >= MaxPageOrder || mt == mtIsolate {
		return
	}
	// Do not let a non-movable request pollute a movable pageblock.
	if c < PageblockOrder && mt == mtMovable && capc.MT != mtMovable {
		return
	}
	want := pfn &^ (1<<c - 1)
	for o := c; o <= MaxPageOrder; o++ {
		head := pfn &^ (1<<o - 1)
		if z.mm.state(z.mm.off(head)) != psFree|uint8(o) {
			continue
		}
		headMT := z.blockMT(head)
		z.delFree(head, o, headMT)
		// Split back down to order c, freeing the halves that do not
		// hold the captured block.
		for o > c {
			o--
			half := head + 1<<o
			if want >= half {
				z.addFree(head, o, headMT, false)
				head = half
			} else {
				z.addFree(half, o, headMT, false)
			}
		}
		z.accountFree(-(1 << c), headMT)
		if z.mm.blocks[z.mm.off(want)>>MaxPageOrder].chunk == nil && c < MaxPageOrder {
			z.mm.split(z.mm.off(want) >> MaxPageOrder)
		}
		st := psAlloc | uint8(c)
		if capc.Movable {
			st |= psMovable
			z.countMovable(want, c, 1)
		}
		z.mm.setOwnerState(z.mm.off(want), st)
		capc.Page, capc.Captured = Page{pfn: want}, true
		return
	}
}
