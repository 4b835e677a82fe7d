package zone

import (
	"math"

	"github.com/mmsim/mmsim/gfp"
)

// swapClusterMax is SWAP_CLUSTER_MAX, the floor of a movable zone's min
// watermark. Kernel: include/linux/swap.h:SWAP_CLUSTER_MAX.
const swapClusterMax = 32

// unusableFree returns the free pages a request may not use: the order's
// own alignment slack, and the free highatomic pages unless the request may
// use the reserves.
//
// Kernel: mm/page_alloc.c:__zone_watermark_unusable_free().
func (z *Zone) unusableFree(order Order, af allocFlags) int64 {
	unusable := int64(1)<<order - 1
	if af&allocReserves == 0 {
		unusable += z.freeHighatomic.Load()
	}
	return unusable
}

// watermarkOKFree is __zone_watermark_ok: whether the zone, with free pages
// free, has enough above mark (lowered for the reserves the request may use,
// raised by the lowmem reserve against highest) for a block of the order.
//
// Kernel: mm/page_alloc.c:__zone_watermark_ok().
func (z *Zone) watermarkOKFree(order Order, mark int64, highest gfp.ZoneType, af allocFlags, free int64) bool {
	free -= z.unusableFree(order, af)
	if free <= reserveMin(mark, af)+z.lowmemReserve[highest] {
		return false
	}
	if order == 0 {
		return true
	}
	return z.suitableFreeList(order, af)
}

// reserveMin is the mark a request with alloc flags af must stay above:
// lowered by half for ALLOC_MIN_RESERVE, a further quarter for
// ALLOC_NON_BLOCK with it, and by half for ALLOC_OOM, each step in integer
// division. ALLOC_NON_BLOCK alone lowers nothing.
//
// Kernel: mm/page_alloc.c:__zone_watermark_ok().
func reserveMin(mark int64, af allocFlags) int64 {
	if af&allocReserves != 0 {
		if af&allocMinReserve != 0 {
			mark -= mark / 2
			if af&allocNonBlock != 0 {
				mark -= mark / 4
			}
		}
		if af&allocOOM != 0 {
			mark -= mark / 2
		}
	}
	return mark
}

// suitableFreeList reports whether a free list the request may use holds a
// block of at least the order: the three pcp types', and the highatomic
// reserve's for ALLOC_HIGHATOMIC or ALLOC_OOM.
//
// Kernel: mm/page_alloc.c:__zone_watermark_ok() (the order > 0 part).
func (z *Zone) suitableFreeList(order Order, af allocFlags) bool {
	// The lists are read without the zone lock, through their emptiness
	// bits, as the kernel reads them; the answer is a hint that the
	// allocation itself re-checks.
	nonEmpty := z.nonEmpty.Load()
	var want uint64 = 1<<mtUnmovable | 1<<mtMovable | 1<<mtReclaimable
	if af&(allocHighAtomic|allocOOM) != 0 {
		want |= 1 << mtHighAtomic
	}
	for o := order; o <= MaxPageOrder; o++ {
		if nonEmpty>>(uint(o)*uint(gfp.MigrateTypes))&want != 0 {
			return true
		}
	}
	return false
}

// wmarkNumbers are the terms of one __zone_watermark_ok, for Explain.
type wmarkNumbers struct {
	free, unusable, highatomic int64
	mark, min, reserve         int64
	// freeOK is free - unusable > min + reserve; listOK says a suitable
	// free list holds a block of the order (true for order 0).
	freeOK, listOK bool
}

func (n wmarkNumbers) passes() bool { return n.freeOK && n.listOK }

// watermarkNumbers computes what watermarkOKFree compares, with the same
// helpers, so that an explanation's numbers are the check's.
//
// Kernel: mm/page_alloc.c:__zone_watermark_ok().
func (z *Zone) watermarkNumbers(order Order, mark int64, highest gfp.ZoneType, af allocFlags, free int64) wmarkNumbers {
	n := wmarkNumbers{free: free, unusable: z.unusableFree(order, af), mark: mark,
		min: reserveMin(mark, af), reserve: z.lowmemReserve[highest], listOK: true}
	if af&allocReserves == 0 {
		n.highatomic = z.freeHighatomic.Load()
	}
	n.freeOK = free-n.unusable > n.min+n.reserve
	if order > 0 {
		n.listOK = z.suitableFreeList(order, af)
	}
	return n
}

// watermarkOK is zone_watermark_ok() on the zone's current free pages.
//
// Kernel: mm/page_alloc.c:zone_watermark_ok().
func (z *Zone) watermarkOK(order Order, mark int64, highest gfp.ZoneType, af allocFlags) bool {
	return z.watermarkOKFree(order, mark, highest, af, z.freePages.Load())
}

// WatermarkOK reports whether an order-order request of an ordinary
// (non-reserve) caller whose highest zone is highest passes watermark i
// (WmarkMin…WmarkPromo, boost included) in this zone.
//
// Kernel: mm/page_alloc.c:zone_watermark_ok().
func (z *Zone) WatermarkOK(order Order, i int, highest gfp.ZoneType) bool {
	return z.watermarkOK(order, z.wmarkPages(i), highest, 0)
}

// watermarkFast0 is zone_watermark_fast's order-0 shortcut alone, small
// enough to inline: usable free pages above the mark and the reserve. When
// it says no, watermarkRest gives the rest of the answer; callers write
// watermarkFast0(…) || watermarkRest(…), which is zone_watermark_fast.
//
// Kernel: mm/page_alloc.c:zone_watermark_fast().
func (z *Zone) watermarkFast0(order Order, mark int64, highest gfp.ZoneType, af allocFlags) bool {
	if order != 0 {
		return false
	}
	free := z.freePages.Load()
	if af&allocReserves == 0 {
		free -= min(free, z.freeHighatomic.Load())
	}
	return free > mark+z.lowmemReserve[highest]
}

// watermarkRest is zone_watermark_fast after its order-0 shortcut (see
// watermarkFast0): the full check, and for __GFP_HIGH order-0 requests at
// the min mark, a second chance with the boost ignored.
//
// Kernel: mm/page_alloc.c:zone_watermark_fast().
func (z *Zone) watermarkRest(order Order, mark int64, highest gfp.ZoneType, af allocFlags) bool {
	free := z.freePages.Load()
	if z.watermarkOKFree(order, mark, highest, af, free) {
		return true
	}
	if order == 0 && af&allocMinReserve != 0 && z.boost.Load() != 0 && af&allocWmarkMask == allocWmarkMin {
		return z.watermarkOKFree(order, z.wmark[WmarkMin].Load(), highest, af, free)
	}
	return false
}

// minFreeKbytes is the kernel's boot-time min_free_kbytes: the square root
// of sixteen times the lowmem kbytes, within [128, 262144]. Lowmem is the
// managed memory of the zones up to ZONE_NORMAL (the watermarks are still 0
// when the kernel computes it).
//
// Kernel: mm/page_alloc.c:calculate_min_free_kbytes(), nr_free_buffer_pages().
func minFreeKbytes(lowmemPages int64) int64 {
	kbytes := lowmemPages * (PageSize >> 10)
	return min(max(intSqrt(kbytes*16), 128), 262144)
}

// intSqrt is the kernel's int_sqrt: the floor of the square root.
//
// Kernel: lib/math/int_sqrt.c:int_sqrt().
func intSqrt(x int64) int64 {
	r := int64(math.Sqrt(float64(x)))
	for r*r > x {
		r--
	}
	for (r+1)*(r+1) <= x {
		r++
	}
	return r
}

// setupWmarks computes every zone's watermarks from min_free_kbytes and
// watermark_scale_factor, and resets the boosts.
//
// Kernel: mm/page_alloc.c:__setup_per_zone_wmarks().
func (a *Allocator) setupWmarks() {
	pagesMin := a.sysctl.MinFreeKbytes >> (PageShift - 10)
	var lowmem int64
	a.forEachZone(func(z *Zone) {
		if z.typ != gfp.ZoneMovable {
			lowmem += z.managed
		}
	})
	a.forEachZone(func(z *Zone) {
		z.mu.Lock()
		var tmp int64
		if lowmem > 0 {
			tmp = pagesMin * z.managed / lowmem
		}
		if z.typ == gfp.ZoneMovable {
			z.wmark[WmarkMin].Store(min(max(z.managed/1024, swapClusterMax), 128))
		} else {
			z.wmark[WmarkMin].Store(tmp)
		}
		delta := max(tmp>>2, multFrac(z.managed, int64(a.sysctl.WatermarkScaleFactor), 10000))
		z.boost.Store(0)
		z.wmark[WmarkLow].Store(z.wmark[WmarkMin].Load() + delta)
		z.wmark[WmarkHigh].Store(z.wmark[WmarkLow].Load() + delta)
		z.wmark[WmarkPromo].Store(z.wmark[WmarkHigh].Load() + delta)
		z.mu.Unlock()
	})
	a.calculateTotalreserve()
}

// setupLowmemReserve computes each zone's protection against allocations
// that could have used a higher zone: the managed pages above it divided by
// its lowmem_reserve_ratio.
//
// Kernel: mm/page_alloc.c:setup_per_zone_lowmem_reserve().
func (a *Allocator) setupLowmemReserve() {
	for _, n := range a.nodes {
		for i := 0; i < gfp.MaxNrZones-1; i++ {
			z := n.zones[i]
			ratio := int64(a.sysctl.LowmemReserveRatio[i])
			clear := ratio == 0 || z.managed == 0
			var managed int64
			for j := i + 1; j < gfp.MaxNrZones; j++ {
				managed += n.zones[j].managed
				if clear {
					z.lowmemReserve[j] = 0
				} else {
					z.lowmemReserve[j] = managed / ratio
				}
			}
		}
	}
	a.calculateTotalreserve()
}

// calculateTotalreserve computes totalreserve_pages: per zone, its largest
// lowmem reserve plus its high watermark, at most its managed pages.
//
// Kernel: mm/page_alloc.c:calculate_totalreserve_pages().
func (a *Allocator) calculateTotalreserve() {
	var total int64
	for _, n := range a.nodes {
		for i := 0; i < gfp.MaxNrZones; i++ {
			z := n.zones[i]
			var m int64
			for j := gfp.MaxNrZones - 1; j > i; j-- {
				if z.lowmemReserve[j] != 0 {
					m = z.lowmemReserve[j]
					break
				}
			}
			m += z.wmarkPages(WmarkHigh)
			total += min(m, z.managed)
		}
	}
	a.totalreservePages.Store(total)
}
