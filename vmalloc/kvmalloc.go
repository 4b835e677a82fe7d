package vmalloc

import (
	"errors"
	"fmt"
	"math"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// KmallocGFPAdjust is the mask of kvmalloc's kmalloc attempt: for more than
// a page, __GFP_NOWARN is added, __GFP_DIRECT_RECLAIM dropped unless
// __GFP_RETRY_MAYFAIL asks for contiguous memory (kswapd may still be
// woken), and __GFP_NOFAIL dropped (the vmalloc fallback implements it).
// Up to a page the mask is unchanged.
//
// Kernel: mm/slub.c:kmalloc_gfp_adjust().
func KmallocGFPAdjust(mask gfp.Mask, size int) gfp.Mask {
	if size > zone.PageSize {
		mask |= gfp.NoWarn
		if mask&gfp.RetryMayFail == 0 {
			mask &^= gfp.DirectReclaim
		}
		mask &^= gfp.NoFail
	}
	return mask
}

// Kvmalloc allocates size bytes, physically contiguous if kmalloc can do it
// without disruption, else virtually contiguous: kmalloc with
// KmallocGFPAdjust's mask first; up to a page its result is final; above
// INT_MAX the request fails (with a one-time WARN unless __GFP_NOWARN);
// otherwise vmalloc with the original mask, not filtered by
// GFP_VMALLOC_SUPPORTED (GFP_NOWAIT and GFP_ATOMIC included). The caller
// /proc/vmallocinfo shows is "__kvmalloc_node_noprof"; KvmallocSite names
// another.
//
// Kernel: mm/slub.c:__kvmalloc_node_noprof().
func (v *Allocator) Kvmalloc(t *memalloc.Task, size int, mask gfp.Mask) (uint64, error) {
	return v.KvmallocSite(t, defaultKvmallocCaller, size, mask)
}

// KvmallocSite is Kvmalloc with the caller /proc/vmallocinfo shows for a
// vmalloc fallback.
//
// Kernel: mm/slub.c:__kvmalloc_node_noprof().
func (v *Allocator) KvmallocSite(t *memalloc.Task, site string, size int, mask gfp.Mask) (uint64, error) {
	if size < 0 {
		return 0, fmt.Errorf("%w: kvmalloc: negative size %d", zone.ErrInvalid, size)
	}
	addr, err := v.slab.Kmalloc(t, size, KmallocGFPAdjust(mask, size))
	// No vmalloc fallback for sub-page requests: it makes no sense.
	if err == nil || size <= zone.PageSize || errors.Is(err, zone.ErrBug) {
		return addr, err
	}
	// Don't even allow crazy sizes.
	if size > math.MaxInt32 {
		if mask&gfp.NoWarn == 0 && v.once.First("kvmalloc-int-max") {
			v.report(t, bug.Warn, "mm/slub.c:__kvmalloc_node_noprof", "WARN_ON_ONCE(!(flags & __GFP_NOWARN)): size > INT_MAX")
		}
		return 0, fmt.Errorf("%w: kvmalloc: size %d is above INT_MAX", zone.ErrNoMemory, size)
	}
	// VM_ALLOW_HUGE_VMAP for blocking callers changes nothing on x86_64.
	return v.nodeRange(t, size, 1, mask, site)
}

// Kvfree frees what Kvmalloc, Vmalloc or kmalloc returned, by address: a
// vmalloc address goes to Vfree, any other to the slab's Kfree; 0 is a
// no-op.
//
// Kernel: mm/slub.c:kvfree().
func (v *Allocator) Kvfree(t *memalloc.Task, addr uint64) error {
	if addr == 0 {
		return nil
	}
	if IsVmallocAddr(addr) {
		return v.Vfree(t, addr)
	}
	return v.slab.Kfree(t, addr)
}
