package mmsim

import (
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/slab"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/vmalloc"
	"github.com/mmsim/mmsim/zone"
)

// Object is what Kmalloc, Vmalloc and Kvmalloc return: the kernel virtual
// address of the memory (in the direct map for slab and large kmalloc,
// in the vmalloc range for vmalloc) and the size asked for. The zero
// Object is NULL; kmalloc(0) returns ZERO_SIZE_PTR.
type Object struct {
	addr uint64
	size int
}

// Addr returns the object's kernel virtual address: 0xffff888… for the
// direct map, 0xffffc9… for vmalloc, 0x10 for ZERO_SIZE_PTR.
func (o Object) Addr() uint64 { return o.addr }

// Size returns the size the caller asked for.
func (o Object) Size() int { return o.size }

// IsVmalloc reports whether the object lives in the vmalloc range.
//
// Kernel: mm/vmalloc.c:is_vmalloc_addr().
func (o Object) IsVmalloc() bool { return vmalloc.IsVmallocAddr(o.addr) }

// IsZeroSize reports whether the object is kmalloc(0)'s ZERO_SIZE_PTR.
//
// Kernel: include/linux/slab.h:ZERO_OR_NULL_PTR().
func (o Object) IsZeroSize() bool { return o.addr == slab.ZeroSizePtr }

func (o Object) String() string { return fmt.Sprintf("0x%x(%d bytes)", o.addr, o.size) }

// The size limits of kmalloc: above KmallocMaxCacheSize a request goes
// straight to the page allocator; KmallocMaxSize is the largest block it
// can give (order MAX_PAGE_ORDER).
//
// Kernel: include/linux/slab.h (KMALLOC_MAX_CACHE_SIZE, KMALLOC_MAX_SIZE).
const (
	KmallocMaxCacheSize = slab.KmallocMaxCacheSize
	KmallocMaxSize      = slab.KmallocMaxSize
)

// negativeSize is the error of a negative size.
func negativeSize(api string, size int) error {
	return fmt.Errorf("%w: %s: size %d is negative (a size_t would wrap to %d)", ErrInvalid, api, size, uint64(size))
}

// Kmalloc allocates size bytes for t with mask: from the kmalloc cache of
// the size's class (and the mask's kmalloc type: __GFP_RECLAIMABLE,
// __GFP_ACCOUNT, __GFP_DMA), or above KMALLOC_MAX_CACHE_SIZE straight from
// the page allocator with __GFP_COMP. kmalloc(0) returns ZERO_SIZE_PTR.
// A failure wraps ErrNoMemory; a negative size wraps ErrInvalid.
//
// Kernel: mm/slub.c:__kmalloc_noprof(), __kmalloc_large_node_noprof().
func (s *System) Kmalloc(t *memalloc.Task, size int, mask gfp.Mask) (Object, error) {
	if err := s.check(t); err != nil {
		return Object{}, err
	}
	if pr := s.prof; pr != nil {
		defer t.RestoreAllocTag(pr.saveCallerTag(t))
	}
	if size < 0 {
		return Object{}, negativeSize("kmalloc", size)
	}
	if mask&gfp.NoFail != 0 && size > KmallocMaxSize {
		if handled, err := s.nofailNever(t, "kmalloc", "mm/slub.c:__kmalloc_large_node_noprof",
			fmt.Sprintf("size %d is above KMALLOC_MAX_SIZE (%d)", size, KmallocMaxSize), mask); handled {
			return Object{}, err
		}
	}
	addr, err := s.slab.Kmalloc(t, size, mask)
	if err != nil {
		if size > KmallocMaxSize && !errors.Is(err, ErrNoMemory) {
			// The page allocator refuses the order (a WARN), and
			// kmalloc answers NULL.
			return Object{}, fmt.Errorf("%w: kmalloc: size %d is above KMALLOC_MAX_SIZE (%d): %s",
				ErrNoMemory, size, KmallocMaxSize, err.Error())
		}
		return Object{}, err
	}
	return Object{addr: addr, size: size}, nil
}

// Kfree frees an object Kmalloc returned. kfree(NULL) and
// kfree(ZERO_SIZE_PTR) do nothing. A vmalloc object (free_large_kmalloc's
// "Not a kmalloc allocation"), a double free or an address that is no
// object wraps ErrBug and changes nothing.
//
// Kernel: mm/slub.c:kfree().
func (s *System) Kfree(t *memalloc.Task, o Object) error {
	if err := s.check(t); err != nil {
		return err
	}
	return s.slab.Kfree(t, o.addr)
}

// Vmalloc allocates size bytes of virtually contiguous memory for t with
// mask: __vmalloc(size, mask), with its GFP_VMALLOC_SUPPORTED filter (a
// WARN once for the bits it strips), the page tables allocated under the
// scope the mask implies, and warn_alloc's "vmalloc error" texts. Size 0
// WARNs and fails; a failure wraps ErrNoMemory.
//
// Kernel: mm/vmalloc.c:__vmalloc_noprof(), __vmalloc_node_range_noprof().
func (s *System) Vmalloc(t *memalloc.Task, size int, mask gfp.Mask) (Object, error) {
	if err := s.check(t); err != nil {
		return Object{}, err
	}
	if pr := s.prof; pr != nil {
		defer t.RestoreAllocTag(pr.saveCallerTag(t))
	}
	if size < 0 {
		return Object{}, negativeSize("vmalloc", size)
	}
	if err := s.vmallocNofail(t, "vmalloc", size, mask); err != nil {
		return Object{}, err
	}
	addr, err := s.vm.Vmalloc(t, size, mask)
	if err != nil {
		return Object{}, err
	}
	s.leakVmalloc(t, addr, size, mask)
	return Object{addr: addr, size: size}, nil
}

// vmallocNofail applies the NOFAIL policy to a vmalloc above total RAM.
func (s *System) vmallocNofail(t *memalloc.Task, api string, size int, mask gfp.Mask) error {
	pages := (int64(size) + zone.PageSize - 1) / zone.PageSize
	if mask&gfp.NoFail == 0 || pages <= s.alloc.TotalramPages() {
		return nil
	}
	if handled, err := s.nofailNever(t, api, "mm/vmalloc.c:__vmalloc_node_range_noprof",
		fmt.Sprintf("size %d exceeds total pages (%d)", size, s.alloc.TotalramPages()), mask); handled {
		return err
	}
	return nil
}

// leakVmalloc registers a vmalloc area with kmemleak.
//
// Kernel: mm/kmemleak.c:kmemleak_vmalloc().
func (s *System) leakVmalloc(t *memalloc.Task, addr uint64, size int, mask gfp.Mask) {
	if s.leak != nil && vmalloc.IsVmallocAddr(addr) {
		s.leak.Alloc(t, addr, size, mask)
	}
}

// Vfree frees an object Vmalloc (or Kvmalloc's vmalloc fallback)
// returned. vfree(NULL) does nothing; an address that starts no vmalloc
// area wraps ErrBug and changes nothing.
//
// Kernel: mm/vmalloc.c:vfree().
func (s *System) Vfree(t *memalloc.Task, o Object) error {
	if err := s.check(t); err != nil {
		return err
	}
	if o.addr == 0 {
		return nil
	}
	if err := s.vm.Vfree(t, o.addr); err != nil {
		return err
	}
	if s.leak != nil {
		s.leak.Free(t, o.addr)
	}
	return nil
}

// Kvmalloc allocates size bytes for t with mask: kmalloc first, with
// __GFP_NOWARN added and, unless __GFP_RETRY_MAYFAIL, no direct reclaim
// (and never NOFAIL) for sizes above PAGE_SIZE; then, for sizes above
// PAGE_SIZE and up to INT_MAX, vmalloc with the original mask. A size
// above INT_MAX fails (with a WARN unless __GFP_NOWARN). A failure wraps
// ErrNoMemory.
//
// Kernel: mm/slub.c:__kvmalloc_node_noprof().
func (s *System) Kvmalloc(t *memalloc.Task, size int, mask gfp.Mask) (Object, error) {
	if err := s.check(t); err != nil {
		return Object{}, err
	}
	if pr := s.prof; pr != nil {
		defer t.RestoreAllocTag(pr.saveCallerTag(t))
	}
	if size < 0 {
		return Object{}, negativeSize("kvmalloc", size)
	}
	if mask&gfp.NoFail != 0 {
		if why := s.kvmallocNever(size); why != "" {
			if handled, err := s.nofailNever(t, "kvmalloc", "mm/slub.c:__kvmalloc_node_noprof", why, mask); handled {
				return Object{}, err
			}
		}
	}
	addr, err := s.vm.Kvmalloc(t, size, mask)
	if err != nil {
		return Object{}, err
	}
	s.leakVmalloc(t, addr, size, mask)
	return Object{addr: addr, size: size}, nil
}

// kvmallocNever says why a kvmalloc of size can never be satisfied, or "".
// The configured limit counts only under a policy other than the
// kernel's.
func (s *System) kvmallocNever(size int) string {
	if size > math.MaxInt32 {
		return fmt.Sprintf("size %d is above INT_MAX", size)
	}
	nf := s.cfg.Nofail
	if nf.Policy == NofailKernel {
		return ""
	}
	pages := (int64(size) + zone.PageSize - 1) / zone.PageSize
	if nf.KvmallocLimitPages > 0 && pages > nf.KvmallocLimitPages {
		return fmt.Sprintf("size %d is above the configured limit of %d pages", size, nf.KvmallocLimitPages)
	}
	if f := nf.KvmallocLimitFraction; f > 0 {
		if lim := int64(f * float64(s.alloc.TotalramPages())); pages > lim {
			return fmt.Sprintf("size %d is above the configured limit of %g of total RAM (%d pages)", size, f, lim)
		}
	}
	return ""
}

// Kvfree frees an object of any of the three: by its address, a vmalloc
// area goes to vfree, anything else to kfree.
//
// Kernel: mm/slub.c:kvfree().
func (s *System) Kvfree(t *memalloc.Task, o Object) error {
	if o.IsVmalloc() {
		return s.Vfree(t, o)
	}
	return s.Kfree(t, o)
}

// Cache is a slab cache; SlabFlags its SLAB_* flags.
type (
	Cache     = slab.Cache
	SlabFlags = slab.Flags
)

// The SLAB_* flags a named cache may be created with.
//
// Kernel: include/linux/slab.h.
const (
	SlabHWCacheAlign   = slab.HWCacheAlign   // SLAB_HWCACHE_ALIGN
	SlabReclaimAccount = slab.ReclaimAccount // SLAB_RECLAIM_ACCOUNT: __GFP_RECLAIMABLE slabs, SReclaimable
	SlabAccount        = slab.Account        // SLAB_ACCOUNT: objects charged to the memcg
	SlabTypesafeByRCU  = slab.TypesafeByRCU  // SLAB_TYPESAFE_BY_RCU
)

// KmemCacheCreate makes a named slab cache of objects of size bytes
// aligned to align (0: the word size), as kmem_cache_create does, with the
// object layout and slab order SLUB would choose. A bad name, size or
// alignment wraps ErrInvalid.
//
// Kernel: mm/slab_common.c:__kmem_cache_create_args().
func (s *System) KmemCacheCreate(name string, size, align int, flags SlabFlags) (*Cache, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.slab.CreateCache(name, size, align, flags)
}

// KmemCache returns the slab cache named name (a kmalloc cache such as
// "kmalloc-rcl-64", or one KmemCacheCreate made), or nil.
func (s *System) KmemCache(name string) *Cache { return s.slab.Cache(name) }

// KmemCacheAlloc allocates an object of c for t with mask. A failure wraps
// ErrNoMemory.
//
// Kernel: mm/slub.c:kmem_cache_alloc_noprof().
func (s *System) KmemCacheAlloc(t *memalloc.Task, c *Cache, mask gfp.Mask) (Object, error) {
	if err := s.check(t); err != nil {
		return Object{}, err
	}
	if pr := s.prof; pr != nil {
		defer t.RestoreAllocTag(pr.saveCallerTag(t))
	}
	if c == nil {
		return Object{}, fmt.Errorf("%w: kmem_cache_alloc: no cache", ErrInvalid)
	}
	addr, err := c.Alloc(t, mask)
	if err != nil {
		return Object{}, err
	}
	return Object{addr: addr, size: c.ObjectSize()}, nil
}

// KmemCacheFree frees an object of c. An object of another cache, or a
// double free, wraps ErrBug and changes nothing.
//
// Kernel: mm/slub.c:kmem_cache_free().
func (s *System) KmemCacheFree(t *memalloc.Task, c *Cache, o Object) error {
	if err := s.check(t); err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("%w: kmem_cache_free: no cache", ErrInvalid)
	}
	return c.Free(t, o.addr)
}

// WriteSlabinfo writes /proc/slabinfo (version 2.1).
//
// Kernel: mm/slab_common.c:slab_show().
func (s *System) WriteSlabinfo(w io.Writer) error { return s.slab.WriteSlabinfo(w) }

// WriteVmallocinfo writes /proc/vmallocinfo.
//
// Kernel: mm/vmalloc.c:vmalloc_info_show().
func (s *System) WriteVmallocinfo(w io.Writer) error { return s.vm.WriteVmallocinfo(w) }

// VmallocStats returns the vmap allocator's counters: areas, pages, lazily
// freed pages, purges and TLB flushes, page-table pages.
func (s *System) VmallocStats() vmalloc.Stats { return s.vm.Stats() }
