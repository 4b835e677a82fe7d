package slab

import (
	"math/bits"

	"github.com/mmsim/mmsim/zone"
)

// Constants of the layout computation on x86_64.
const (
	// wordSize is sizeof(void *): the free pointer's size and the
	// granule of object sizes.
	wordSize = 8
	// cacheLineSize is cache_line_size() on x86_64.
	cacheLineSize = 64
	// archSlabMinalign is ARCH_SLAB_MINALIGN (__alignof__(unsigned long
	// long)), also ARCH_KMALLOC_MINALIGN.
	archSlabMinalign = 8
	// maxObjsPerPage is MAX_OBJS_PER_PAGE: slab->objects is 15 bits.
	maxObjsPerPage = 32767
	// slubMaxOrder is slub_max_order's default, PAGE_ALLOC_COSTLY_ORDER.
	slubMaxOrder = zone.CostlyOrder
	// minPartial and maxPartial bound a cache's min_partial.
	minPartial = 5
	maxPartial = 10
)

// orderObjects is struct kmem_cache_order_objects: a slab order and the
// number of objects a slab of that order holds.
//
// Kernel: mm/slub.c:oo_make(), oo_order(), oo_objects().
type orderObjects struct {
	order   zone.Order
	objects int
}

func ooMake(order zone.Order, size int) orderObjects {
	return orderObjects{order: order, objects: orderObjectsOf(order, size)}
}

// orderObjectsOf is order_objects(): how many objects of size fit a slab
// of the order.
func orderObjectsOf(order zone.Order, size int) int { return (zone.PageSize << order) / size }

// getOrder is get_order(): the smallest order whose block holds size
// bytes. size must be positive.
//
// Kernel: include/asm-generic/getorder.h:get_order().
func getOrder(size int) zone.Order {
	return zone.Order(bits.Len64(uint64(size-1) >> zone.PageShift))
}

// fls is fls(): the 1-based index of the highest set bit, 0 for 0.
func fls(x uint) int { return bits.Len(x) }

// alignUp is ALIGN() for a power-of-two a.
func alignUp(x, a int) int { return (x + a - 1) &^ (a - 1) }

// slubMinObjects is the min_objects calculate_order derives from the CPU
// count when slub_min_objects is not set on the command line.
//
// Kernel: mm/slub.c:calculate_order() (num_present_cpus, nr_cpu_ids).
func slubMinObjects(cpus int) int {
	return 4 * (fls(uint(cpus)) + 1)
}

// calculateAlignment is the alignment kmem_cache_create settles on: the
// caller's, raised to the cache line (halved while the object fits in
// half of it) for SLAB_HWCACHE_ALIGN, to ARCH_SLAB_MINALIGN, and to a word.
//
// Kernel: mm/slab_common.c:calculate_alignment().
func calculateAlignment(flags Flags, align, size int) int {
	if flags&HWCacheAlign != 0 {
		ralign := cacheLineSize
		for size <= ralign/2 {
			ralign /= 2
		}
		align = max(align, ralign)
	}
	align = max(align, archSlabMinalign)
	return alignUp(align, wordSize)
}

// calcSlabOrder is the smallest order from minOrder to maxOrder whose
// leftover is at most 1/fract of the slab; maxOrder+1 if none.
//
// Kernel: mm/slub.c:calc_slab_order().
func calcSlabOrder(size int, minOrder, maxOrder zone.Order, fract int) zone.Order {
	order := minOrder
	for ; order <= maxOrder; order++ {
		slabSize := zone.PageSize << order
		if slabSize%size <= slabSize/fract {
			break
		}
	}
	return order
}

// calculateOrder is the slab order for objects of size: at least
// minObjects objects (capped at what slub_max_order holds), at most 1/16
// waste, relaxed to 1/8, 1/4; failing that get_order(size). ok is false
// when even that is above MAX_PAGE_ORDER (-ENOSYS).
//
// Kernel: mm/slub.c:calculate_order().
func calculateOrder(size, minObjects int) (order zone.Order, ok bool) {
	maxObjects := max(orderObjectsOf(slubMaxOrder, size), 1)
	minObjects = min(minObjects, maxObjects)
	minOrder := getOrder(minObjects * size) // slub_min_order is 0
	if orderObjectsOf(minOrder, size) > maxObjsPerPage {
		return getOrder(size*maxObjsPerPage) - 1, true
	}
	for fraction := 16; fraction > 1; fraction /= 2 {
		if order := calcSlabOrder(size, minOrder, slubMaxOrder, fraction); order <= slubMaxOrder {
			return order, true
		}
	}
	if order := getOrder(size); order <= zone.MaxPageOrder {
		return order, true
	}
	return 0, false
}

// layout is what calculate_sizes decides for a cache.
type layout struct {
	objectSize int // s->object_size: what the caller asked for
	size       int // s->size: the object's stride in the slab
	inuse      int // s->inuse: the bytes in use (object rounded to a word)
	offset     int // s->offset: the free pointer's place in the object
	align      int // s->align
	oo, min    orderObjects
	minPartial int
}

// calculateSizes lays out an object as SLUB does without debugging: the
// size rounded to a word; the free pointer moved after the object for
// SLAB_TYPESAFE_BY_RCU caches and caches with a constructor (unless the
// caller gave a free pointer offset), else placed mid-object; the stride
// aligned; the preferred order (oo) from calculate_order and the minimum
// (min) that holds one object. ok is false when no order fits.
//
// Kernel: mm/slub.c:calculate_sizes(), do_kmem_cache_create() (min_partial).
func calculateSizes(objectSize, align int, flags Flags, args CacheArgs, minObjects int) (l layout, ok bool) {
	l.objectSize, l.align = objectSize, align
	size := alignUp(objectSize, wordSize)
	l.inuse = size
	switch {
	case (flags&TypesafeByRCU != 0 || args.Ctor) && !args.UseFreeptrOffset:
		l.offset = size
		size += wordSize
	case flags&TypesafeByRCU != 0 || args.Ctor:
		l.offset = args.FreeptrOffset
	default:
		l.offset = (objectSize / 2) &^ (wordSize - 1)
	}
	size = alignUp(size, align)
	l.size = size
	order, ok := calculateOrder(size, minObjects)
	if !ok {
		return l, false
	}
	l.oo = ooMake(order, size)
	l.min = ooMake(getOrder(size), size)
	l.minPartial = max(min(maxPartial, (bits.Len(uint(size))-1)/2), minPartial)
	return l, l.oo.objects > 0
}
