package slab

import (
	"fmt"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// The kmalloc size limits on x86_64 with 4 KiB pages.
//
// Kernel: include/linux/slab.h (KMALLOC_SHIFT_*, KMALLOC_MAX_*).
const (
	kmallocShiftLow  = 3
	kmallocShiftHigh = zone.PageShift + 1
	kmallocShiftMax  = int(zone.MaxPageOrder) + zone.PageShift
	// KmallocMinSize is KMALLOC_MIN_SIZE.
	// Kernel: include/linux/slab.h:KMALLOC_MIN_SIZE.
	KmallocMinSize = 1 << kmallocShiftLow
	// KmallocMaxCacheSize is KMALLOC_MAX_CACHE_SIZE: larger requests go
	// to the page allocator.
	KmallocMaxCacheSize = 1 << kmallocShiftHigh
	// KmallocMaxSize is KMALLOC_MAX_SIZE.
	KmallocMaxSize = 1 << kmallocShiftMax
	kmallocMaxSize = KmallocMaxSize
)

// kmallocType is enum kmalloc_cache_type for the modelled config
// (CONFIG_ZONE_DMA=y, CONFIG_MEMCG=y, CONFIG_SLUB_TINY=n, no
// CONFIG_KMALLOC_PARTITION_CACHES). KMALLOC_NO_OBJ_EXT exists with
// CONFIG_SLAB_OBJ_EXT but aliases KMALLOC_NORMAL unless memory allocation
// profiling may be on (need_kmalloc_no_objext), which mmsim does not model.
//
// Kernel: include/linux/slab.h:enum kmalloc_cache_type.
type kmallocType int

const (
	kmallocNormal kmallocType = iota
	kmallocReclaim
	kmallocDMA
	kmallocCgroup
	nrKmallocTypes
)

var kmallocPrefix = [nrKmallocTypes]string{
	kmallocNormal:  "kmalloc-",
	kmallocReclaim: "kmalloc-rcl-",
	kmallocDMA:     "dma-kmalloc-",
	kmallocCgroup:  "kmalloc-cg-",
}

// kmallocInfoSize is kmalloc_info[i].size and its short name.
//
// Kernel: mm/slab_common.c:kmalloc_info[].
func kmallocInfo(idx int) (size int, short string) {
	switch idx {
	case 1:
		return 96, "96"
	case 2:
		return 192, "192"
	}
	size = 1 << idx
	if size >= 1024 {
		return size, fmt.Sprintf("%dk", size/1024)
	}
	return size, fmt.Sprint(size)
}

// kmallocTypeOf is kmalloc_type(): __GFP_DMA picks the DMA caches,
// __GFP_RECLAIMABLE the reclaimable ones, __GFP_ACCOUNT the cgroup ones,
// in that priority.
//
// Kernel: include/linux/slab.h:kmalloc_type().
func kmallocTypeOf(mask gfp.Mask) kmallocType {
	switch {
	case mask&(gfp.Reclaimable|gfp.DMA|gfp.Account) == 0:
		return kmallocNormal
	case mask&gfp.DMA != 0:
		return kmallocDMA
	case mask&gfp.Reclaimable != 0:
		return kmallocReclaim
	}
	return kmallocCgroup
}

// kmallocIndex is __kmalloc_index(): 1 for 65..96 bytes, 2 for 129..192,
// else n for 2^(n-1)+1 .. 2^n (3 for up to 8).
//
// Kernel: include/linux/slab.h:__kmalloc_index().
func kmallocIndex(size int) int {
	switch {
	case size == 0:
		return 0
	case size <= KmallocMinSize:
		return kmallocShiftLow
	case size > 64 && size <= 96:
		return 1
	case size > 128 && size <= 192:
		return 2
	}
	return fls(uint(size - 1))
}

// KmallocSizeRoundup is kmalloc_size_roundup(): the size kmalloc really
// hands out for a request of size.
//
// Kernel: mm/slab_common.c:kmalloc_size_roundup().
func (s *Allocator) KmallocSizeRoundup(size int) int {
	switch {
	case size <= 0:
		return 0
	case size <= KmallocMaxCacheSize:
		return s.kmalloc[kmallocNormal][kmallocIndex(size)].l.size
	case size > KmallocMaxSize:
		return size
	}
	return zone.PageSize << getOrder(size)
}

// createKmallocCaches creates the kmalloc caches in the kernel's order.
//
// Kernel: mm/slab_common.c:create_kmalloc_caches(), new_kmalloc_cache(),
// create_boot_cache().
func (s *Allocator) createKmallocCaches() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for typ := kmallocNormal; typ < nrKmallocTypes; typ++ {
		idxs := []int{1, 2}
		for i := kmallocShiftLow; i <= kmallocShiftHigh; i++ {
			idxs = append(idxs, i)
		}
		for _, idx := range idxs {
			flags := Kmalloc
			switch typ {
			case kmallocReclaim:
				flags |= ReclaimAccount
			case kmallocCgroup:
				flags |= Account
			case kmallocDMA:
				flags |= CacheDMA
			case kmallocNormal:
				flags |= NoMerge // CONFIG_MEMCG: no merging of KMALLOC_NORMAL
			}
			size, short := kmallocInfo(idx)
			// kmalloc caches align to the size's largest power-of-two
			// divisor.
			align := max(archSlabMinalign, size&-size)
			args := CacheArgs{Align: calculateAlignment(flags, align, size)}
			c, err := s.createCacheLocked(kmallocPrefix[typ]+short, size, args, flags)
			if err != nil {
				return fmt.Errorf("Creation of kmalloc slab %s size=%d failed: %w", kmallocPrefix[typ]+short, size, err)
			}
			s.kmalloc[typ][idx] = c
		}
	}
	return nil
}

// KmallocCache returns the cache kmalloc(size, mask) uses, or nil when the
// request does not go to a cache (0 or above KMALLOC_MAX_CACHE_SIZE).
//
// Kernel: mm/slab.h:kmalloc_slab().
func (s *Allocator) KmallocCache(size int, mask gfp.Mask) *Cache {
	if size <= 0 || size > KmallocMaxCacheSize {
		return nil
	}
	return s.kmalloc[kmallocTypeOf(mask)][kmallocIndex(size)]
}

// Kmalloc is kmalloc(size, mask) with no call site.
//
// Kernel: mm/slub.c:__kmalloc_noprof().
func (s *Allocator) Kmalloc(t *memalloc.Task, size int, mask gfp.Mask) (uint64, error) {
	return s.KmallocSite(t, "", size, mask)
}

// largeKmallocSite is the call_site of the inner kmalloc tracepoint of a
// large kmalloc: the return address into __kmalloc_noprof (the offset is
// not modelled).
const largeKmallocSite = "__kmalloc_noprof"

// KmallocSite is kmalloc(size, mask) called from site: ZeroSizePtr for
// 0; above KMALLOC_MAX_CACHE_SIZE, a compound block of get_order(size)
// from the page allocator (traced twice, as __do_kmalloc_node and
// __kmalloc_large_node_noprof both trace it); else an object of the
// kmalloc cache kmalloc_type and the size index pick. The kmalloc
// tracepoint carries the caller's mask, bytes_alloc the cache's object
// stride, and ptr=(nil) on failure. A negative size is refused with an
// error wrapping zone.ErrInvalid; a failure wraps zone.ErrNoMemory (or
// zone.ErrInvalid above KMALLOC_MAX_SIZE, which the page allocator refuses).
//
// Kernel: mm/slub.c:__do_kmalloc_node(), ___kmalloc_large_node(),
// __kmalloc_large_node_noprof().
func (s *Allocator) KmallocSite(t *memalloc.Task, site string, size int, mask gfp.Mask) (uint64, error) {
	if size < 0 {
		return 0, fmt.Errorf("%w: kmalloc of a negative size %d", zone.ErrInvalid, size)
	}
	if size > KmallocMaxCacheSize {
		addr, err := s.kmallocLarge(t, size, mask)
		s.traceKmalloc(t, largeKmallocSite, addr, size, s.largeBytes(size), mask)
		s.traceKmalloc(t, site, addr, size, s.largeBytes(size), mask)
		return addr, err
	}
	if size == 0 {
		return ZeroSizePtr, nil
	}
	c := s.KmallocCache(size, mask)
	addr, err := c.alloc(t, mask)
	if err == nil {
		if h := s.hooksFor(c); h != nil {
			h.PostAlloc(t, c, addr, size, mask)
		}
		if th := s.tagHooksFor(c); th != nil {
			th.TagAlloc(t, c, addr, c.l.size)
		}
	}
	s.traceKmalloc(t, site, addr, size, c.l.size, mask)
	return addr, err
}

func (s *Allocator) largeBytes(size int) int {
	if size > KmallocMaxSize {
		// PAGE_SIZE << get_order(size) for an order the page
		// allocator refuses.
		return zone.PageSize << min(getOrder(size), 40)
	}
	return zone.PageSize << getOrder(size)
}

func (s *Allocator) traceKmalloc(t *memalloc.Task, site string, addr uint64, req, alloc int, mask gfp.Mask) {
	if s.pa.Tracing() {
		s.pa.Emit(t, zone.Event{Kind: zone.EvKmalloc, CallSite: site, Ptr: addr, BytesReq: int64(req),
			BytesAlloc: int64(alloc), Mask: mask, Node: -1, Accounted: mask&gfp.Account != 0})
	}
}

// kmallocLarge is ___kmalloc_large_node: GFP_SLAB_BUG_MASK bits fixed
// with a warning, __GFP_COMP added, a block of get_order(size), counted
// in NR_SLAB_UNRECLAIMABLE.
//
// Kernel: mm/slub.c:___kmalloc_large_node().
func (s *Allocator) kmallocLarge(t *memalloc.Task, size int, mask gfp.Mask) (uint64, error) {
	if mask&gfp.SlabBugMask != 0 {
		mask = s.kmallocFixFlags(t, mask)
	}
	mask |= gfp.Comp
	order := zone.MaxPageOrder + 1
	if size <= KmallocMaxSize {
		order = getOrder(size)
	}
	p, err := s.pa.AllocPages(t, mask, order)
	if err != nil {
		return 0, fmt.Errorf("kmalloc(%d): %w", size, err)
	}
	sl := &slab{pfn: p.PFN(), order: order, bytes: size, cpu: -1}
	node := s.pa.ZoneOf(sl.pfn).Node()
	sl.node = node.ID()
	node.ModState(zone.NodeNrSlabUnreclaimable, 1<<order)
	s.mapPages(sl)
	addr := sl.base()
	if h := s.hooksFor(nil); h != nil {
		h.PostAlloc(t, nil, addr, size, mask)
	}
	return addr, nil
}

// Kfree is kfree(addr) with no call site.
//
// Kernel: mm/slub.c:kfree().
func (s *Allocator) Kfree(t *memalloc.Task, addr uint64) error { return s.KfreeSite(t, "", addr) }

// KfreeSite is kfree(addr) called from site: traced first (ptr=(nil)
// lines are real), then nothing for NULL or ZeroSizePtr; a slab object
// goes back to its cache; a large kmalloc block back to the page
// allocator. An address in no slab and no large kmalloc WARNs as
// free_large_kmalloc does ("Not a kmalloc allocation"); a pointer into an
// object or a double free is a BUG. Either way the error wraps
// zone.ErrBug and nothing changes.
//
// Kernel: mm/slub.c:kfree(), free_large_kmalloc().
func (s *Allocator) KfreeSite(t *memalloc.Task, site string, addr uint64) error {
	if s.pa.Tracing() {
		s.pa.Emit(t, zone.Event{Kind: zone.EvKfree, CallSite: site, Ptr: addr})
	}
	if addr <= ZeroSizePtr {
		return nil
	}
	sl := s.virtToSlab(addr)
	if sl == nil || sl.cache == nil {
		return s.freeLargeKmalloc(t, addr)
	}
	return sl.cache.freeObject(t, sl, addr)
}

// freeLargeKmalloc frees a large kmalloc block, whose address must be the
// block's start.
//
// Kernel: mm/slub.c:free_large_kmalloc().
func (s *Allocator) freeLargeKmalloc(t *memalloc.Task, addr uint64) error {
	pfn := zone.PFN((addr - DirectMap) >> zone.PageShift)
	if addr < DirectMap {
		pfn = 0
	}
	s.pmu.Lock()
	sl := s.pages[pfn]
	if sl == nil || sl.cache != nil || sl.base() != addr {
		s.pmu.Unlock()
		text := fmt.Sprintf("page dumped because: Not a kmalloc allocation (kfree(0x%x))", addr)
		if sl != nil {
			text = fmt.Sprintf("object pointer: 0x%x is inside a large kmalloc of order %d", addr, sl.order)
		}
		s.warnOnce(t, "free_large_kmalloc", "mm/slub.c:free_large_kmalloc", "WARN_ON_ONCE(!PageLargeKmalloc(page)): "+text)
		return fmt.Errorf("%w: kfree: %s", zone.ErrBug, text)
	}
	for i := zone.PFN(0); i < 1<<sl.order; i++ {
		delete(s.pages, sl.pfn+i)
	}
	s.pmu.Unlock()
	if h := s.hooksFor(nil); h != nil {
		h.Free(t, nil, addr)
	}
	node := s.pa.ZoneOf(sl.pfn).Node()
	node.ModState(zone.NodeNrSlabUnreclaimable, -(1 << sl.order))
	if err := s.pa.FreePages(t, zone.PageOf(sl.pfn), sl.order); err != nil {
		panic(fmt.Sprintf("mmsim: internal: freeing large kmalloc pfn %#x order %d: %v (kernel: mm/slub.c:free_large_kmalloc)",
			sl.pfn, sl.order, err))
	}
	return nil
}

// Ksize is ksize(addr): 0 for NULL and ZeroSizePtr; a large kmalloc's
// block size; a slab object's usable size (s->inuse for
// SLAB_TYPESAFE_BY_RCU caches, else s->size). An address in no slab WARNs
// and fails with an error wrapping zone.ErrBug.
//
// Kernel: mm/slub.c:ksize(), __ksize(), slab_ksize().
func (s *Allocator) Ksize(addr uint64) (int, error) {
	if addr <= ZeroSizePtr {
		return 0, nil
	}
	sl := s.virtToSlab(addr)
	if sl == nil {
		s.report(nil, bug.Warn, "mm/slub.c:__ksize", fmt.Sprintf("WARN_ON(!slab): ksize(0x%x) of a page that is not a slab", addr))
		return 0, fmt.Errorf("%w: ksize(0x%x): not a slab object", zone.ErrBug, addr)
	}
	if sl.cache == nil {
		return zone.PageSize << sl.order, nil
	}
	if sl.cache.flags&TypesafeByRCU != 0 {
		return sl.cache.l.inuse, nil
	}
	return sl.cache.l.size, nil
}
