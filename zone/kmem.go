package zone

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

// KmemCharger charges the kernel pages allocated with __GFP_ACCOUNT to a
// memory cgroup: the allocator calls it for each such block it hands out,
// after post_alloc_hook, and gives the block back when the charge fails;
// at free it returns the charge.
type KmemCharger interface {
	// ChargeKmem charges a block of the order for t with the request's
	// mask, and returns what to hand back at free (nil: nothing was
	// charged: t is a kernel thread, or in the root cgroup).
	ChargeKmem(t *memalloc.Task, mask gfp.Mask, order Order) (owner any, err error)
	// UnchargeKmem returns the charge of a block t frees.
	UnchargeKmem(t *memalloc.Task, owner any, order Order)
}

// kmemState is the allocator's record of the blocks charged as kmem: the
// kernel's PageMemcgKmem and page->memcg_data.
type kmemState struct {
	charger KmemCharger
	n       atomic.Int64 // blocks charged: frees look only while any are
	mu      sync.Mutex
	owners  map[PFN]any
}

// SetKmemCharger plugs memcg kmem accounting in. Like SetSlowPath it must
// be called before the first allocation.
func (a *Allocator) SetKmemCharger(c KmemCharger) {
	a.kmem.charger = c
	a.kmem.owners = map[PFN]any{}
}

// chargeKmem charges a new __GFP_ACCOUNT block and records the owner; on
// failure the block goes back and the error wraps ErrNoMemory (no warning:
// a failed charge is not a page allocation failure).
//
// Kernel: mm/page_alloc.c:__alloc_frozen_pages_noprof() (the
// __memcg_kmem_charge_page call).
func (a *Allocator) chargeKmem(t *memalloc.Task, pfn PFN, order Order, mask gfp.Mask) error {
	owner, err := a.kmem.charger.ChargeKmem(t, mask, order)
	if err != nil {
		if ferr := a.FreePages(t, Page{pfn: pfn}, order); ferr != nil {
			return ferr
		}
		return fmt.Errorf("__memcg_kmem_charge_page: %w", err)
	}
	if owner != nil {
		a.kmem.mu.Lock()
		a.kmem.owners[pfn] = owner
		a.kmem.mu.Unlock()
		a.kmem.n.Add(1)
	}
	return nil
}

// unchargeKmem returns a freed block's kmem charge, if it has one.
//
// Kernel: mm/page_alloc.c:free_pages_prepare() (__memcg_kmem_uncharge_page).
func (a *Allocator) unchargeKmem(t *memalloc.Task, pfn PFN, order Order) {
	a.kmem.mu.Lock()
	owner, ok := a.kmem.owners[pfn]
	delete(a.kmem.owners, pfn)
	a.kmem.mu.Unlock()
	if ok {
		a.kmem.n.Add(-1)
		a.kmem.charger.UnchargeKmem(t, owner, order)
	}
}
