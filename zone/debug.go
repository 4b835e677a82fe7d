package zone

import (
	"errors"
	"fmt"

	"github.com/mmsim/mmsim/gfp"
)

// CheckInvariants recomputes, for every zone, what the allocator keeps
// cached, from the free lists, the pcp lists and the memmap, and returns an
// error describing every disagreement (nil if there is none). It takes every
// lock of the zone, so it sees a consistent state even while other
// goroutines allocate.
//
// Checked: each free block is aligned, in the zone, marked PageBuddy with its
// order, on the list of its pageblock's migratetype, listed once; nr_free,
// NR_FREE_PAGES, NR_FREE_PAGES_BLOCKS and nr_free_highatomic equal the
// lists; no two free buddies of the same order that could merge; each pcp
// block is marked as such with the list's order and the pcp count is the
// lists' sum, within the high mark plus one refill; free + pcp + allocated =
// managed; a MAX_ORDER block without a chunk is whole.
//
// Kernel: the VM_BUG_ON / VM_WARN_ON checks of mm/page_alloc.c, as one pass.
func (a *Allocator) CheckInvariants() error {
	var errs []error
	a.forEachZone(func(z *Zone) {
		if z.populated() {
			errs = append(errs, z.checkInvariants()...)
		}
	})
	return errors.Join(errs...)
}

func (z *Zone) checkInvariants() []error {
	for i := range z.pcp {
		z.pcp[i].mu.Lock()
		defer z.pcp[i].mu.Unlock()
	}
	z.mu.Lock()
	defer z.mu.Unlock()

	var errs []error
	bad := func(format string, args ...any) {
		if len(errs) < 20 {
			errs = append(errs, fmt.Errorf("zone %s: "+format, append([]any{z.Name()}, args...)...))
		}
	}
	var free, blocks, highatomic int64
	seen := make(map[PFN]bool)
	for o := Order(0); o <= MaxPageOrder; o++ {
		var n int64
		for mt := gfp.Migratetype(0); int(mt) < gfp.MigrateTypes; mt++ {
			l := &z.free[o][mt]
			var cnt int64
			prev := nilLink
			for off := l.head; off != nilLink; off = z.mm.linkOf(off, o).next {
				pfn := z.mm.pfnAt(off)
				lk := z.mm.linkOf(off, o)
				switch {
				case seen[pfn]:
					bad("pfn %#x is on the free lists twice", uint64(pfn))
					return errs
				case lk.prev != prev:
					bad("order-%d %s list: pfn %#x has a broken back link", o, mt, uint64(pfn))
				case pfn&(1<<o-1) != 0:
					bad("order-%d block at pfn %#x is misaligned", o, uint64(pfn))
				case !z.managedBlock(pfn, o):
					bad("order-%d block at pfn %#x lies outside the managed span", o, uint64(pfn))
				case z.mm.state(off) != psFree|uint8(o):
					bad("order-%d block at pfn %#x is on a free list but its state is %#x", o, uint64(pfn), z.mm.state(off))
				case z.blockMT(pfn) != mt:
					bad("order-%d block at pfn %#x is on the %s list of a %s pageblock", o, uint64(pfn), mt, z.blockMT(pfn))
				}
				seen[pfn] = true
				prev = off
				cnt++
				if mt != mtIsolate {
					free += 1 << o
					if o >= PageblockOrder {
						blocks += 1 << o
					}
				}
				if mt == mtHighAtomic {
					highatomic += 1 << o
				}
				if o < MaxPageOrder && mergeable(mt) {
					buddy := pfn ^ (1 << o)
					if z.isBuddy(buddy, o) && (o < PageblockOrder || mergeable(z.blockMT(buddy))) {
						bad("order-%d buddies at pfn %#x and %#x are both free", o, uint64(pfn), uint64(buddy))
					}
				}
			}
			if l.tail != prev {
				bad("order-%d %s list: tail is not the last block", o, mt)
			}
			if cnt != l.n {
				bad("order-%d %s list holds %d blocks, counted %d", o, mt, cnt, l.n)
			}
			if bit := z.nonEmpty.Load()&listBit(o, mt) != 0; bit != (cnt > 0) {
				bad("order-%d %s list: emptiness bit %t, %d blocks", o, mt, bit, cnt)
			}
			n += cnt
		}
		if n != z.nrFree[o] {
			bad("order %d: nr_free %d, the lists hold %d", o, z.nrFree[o], n)
		}
	}
	if free != z.freePages.Load() {
		bad("NR_FREE_PAGES %d, the lists hold %d", z.freePages.Load(), free)
	}
	if blocks != z.freePagesBlocks {
		bad("NR_FREE_PAGES_BLOCKS %d, the lists hold %d", z.freePagesBlocks, blocks)
	}
	if highatomic != z.freeHighatomic.Load() {
		bad("nr_free_highatomic %d, the lists hold %d", z.freeHighatomic.Load(), highatomic)
	}

	var pcp int64
	for cpu := range z.pcp {
		p := &z.pcp[cpu]
		var cnt int
		for pi := range p.lists {
			o := pindexToOrder(pi)
			l := &p.lists[pi]
			for i := 0; i < l.n; i++ {
				off := l.at(i)
				if s := z.mm.ownerState(off); s != psPCP|uint8(o) {
					bad("cpu %d pcp list %d: pfn %#x has owner state %#x", cpu, pi, uint64(z.mm.pfnAt(off)), s)
				}
				cnt += 1 << o
			}
		}
		if cnt != p.count {
			bad("cpu %d: pcp count %d, the lists hold %d", cpu, p.count, cnt)
		}
		if limit := max(p.high, p.highMax) + 2<<PageblockOrder; p.count > limit {
			bad("cpu %d: pcp count %d above high %d plus a refill", cpu, p.count, p.high)
		}
		pcp += int64(cnt)
	}

	var allocated int64
	end := z.presentEnd
	for pfn := z.firstManaged; pfn < end; {
		off := z.mm.off(pfn)
		if z.mm.blocks[off>>MaxPageOrder].chunk == nil && off&(maxOrderNrPages-1) != 0 {
			pfn = (pfn | (maxOrderNrPages - 1)) + 1 // a whole block's tail
			continue
		}
		st := z.mm.ownerState(off)
		if st&psKindMask == psAlloc {
			allocated += 1 << (st & psOrderMask)
			pfn += 1 << (st & psOrderMask)
			continue
		}
		pfn++
	}
	if free+pcp+allocated != z.managed {
		bad("free %d + pcp %d + allocated %d = %d pages, managed %d", free, pcp, allocated, free+pcp+allocated, z.managed)
	}
	var atomicBlocks int64
	movable := make([]int64, len(z.movable))
	for pfn := z.startPFN &^ (PageblockNrPages - 1); pfn < z.startPFN+PFN(z.spanned); pfn += PageblockNrPages {
		if z.blockMT(pfn) == mtHighAtomic {
			atomicBlocks++
		}
	}
	if atomicBlocks*PageblockNrPages != z.reservedHighatomic {
		bad("nr_reserved_highatomic %d, but %d pageblocks are HighAtomic", z.reservedHighatomic, atomicBlocks)
	}
	for pfn := z.firstManaged; pfn < end; {
		off := z.mm.off(pfn)
		st := z.mm.ownerState(off)
		if st&psKindMask != psAlloc {
			if z.mm.blocks[off>>MaxPageOrder].chunk == nil && off&(maxOrderNrPages-1) != 0 {
				pfn = (pfn | (maxOrderNrPages - 1)) + 1
			} else {
				pfn++
			}
			continue
		}
		n := PFN(1) << (st & psOrderMask)
		if st&psMovable != 0 {
			for q := pfn; q < pfn+n; q += PageblockNrPages {
				movable[z.pageblockIndex(q)] += int64(min(n, PageblockNrPages))
			}
		}
		pfn += n
	}
	for i := range movable {
		if got := int64(z.movable[i].Load()); got != movable[i] {
			bad("pageblock %d: movable count %d, %d movable pages allocated", i, got, movable[i])
		}
	}
	for i := range z.mm.blocks {
		if z.mm.blocks[i].chunk == nil && z.mm.blocks[i].state&psKindMask == psFree && Order(z.mm.blocks[i].state&psOrderMask) != MaxPageOrder {
			bad("block %d is whole but its state says order %d", i, z.mm.blocks[i].state&psOrderMask)
		}
	}
	return errs
}
