package debugalloc

import (
	"runtime"
	"sync"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// Kmalloc is the kmalloc page_owner allocates its stack-list nodes with.
type Kmalloc func(t *memalloc.Task, size int, mask gfp.Mask) (uint64, error)

// stackNodeSize is sizeof(struct stack): the list link and the record
// pointer.
const stackNodeSize = 16

// OwnerStats counts what page_owner did.
type OwnerStats struct {
	Pages int // pages with an owner record
	// Saves is the number of stacks saved; Dummy those a recursive call
	// answered with the dummy handle; Failed those the depot refused.
	Saves, Dummy, Failed int
	// ListNodes and ListFailures count the stack-list nodes kmalloc'ed
	// and those that failed; ListSkipped those a non-spinning context
	// did not try.
	ListNodes, ListFailures, ListSkipped int
	// LastListMask is the mask of the last stack-list node allocation.
	LastListMask gfp.Mask
}

// owner is a page's page_owner record.
type owner struct {
	handle Handle
	order  zone.Order
	mask   gfp.Mask
	pid    int
}

// PageOwner records, for every allocated page, the stack, order, mask and
// pid of its allocation, as page_owner does: the stack in the stack depot
// (whose pools it may allocate), and the first use of each stack on a list
// whose nodes it kmallocs with the nested mask. A task inside page_owner
// is never traced again (current->in_page_owner).
//
// Kernel: mm/page_owner.c.
type PageOwner struct {
	depot   *StackDepot
	kmalloc Kmalloc
	preFix  bool

	// in is the set of tasks inside page_owner. A task's entry is
	// written only by its owner goroutine.
	in sync.Map

	mu     sync.Mutex // protects below
	pages  map[zone.PFN]owner
	counts map[Handle]int
	listed map[Handle]bool // stacks on the stack list
	stats  OwnerStats
}

// Special handles, as page_owner registers dummy stacks at init.
const (
	dummyHandle   Handle = 1<<32 - 1
	failureHandle Handle = 1<<32 - 2
)

// NewPageOwner returns page_owner over a depot and kmalloc; preFix
// selects the pre-v6.11 list-node mask.
//
// Kernel: mm/page_owner.c:init_page_owner().
func NewPageOwner(depot *StackDepot, kmalloc Kmalloc, preFix bool) *PageOwner {
	return &PageOwner{depot: depot, kmalloc: kmalloc, preFix: preFix,
		pages: make(map[zone.PFN]owner), counts: make(map[Handle]int), listed: make(map[Handle]bool)}
}

func (po *PageOwner) inside(t *memalloc.Task) bool {
	_, ok := po.in.Load(t)
	return ok
}

// saveStack saves the caller's stack in the depot with the allocation's
// mask; a recursive call (the depot's own pool allocation) gets the dummy
// handle.
//
// Kernel: mm/page_owner.c:save_stack().
func (po *PageOwner) saveStack(t *memalloc.Task, mask gfp.Mask) Handle {
	if po.inside(t) {
		po.mu.Lock()
		po.stats.Dummy++
		po.mu.Unlock()
		return dummyHandle
	}
	po.in.Store(t, struct{}{})
	var pcs [maxFrames]uintptr
	n := runtime.Callers(3, pcs[:]) // from the caller of SetPageOwner
	h := po.depot.Save(t, pcs[:n], mask, true)
	po.in.Delete(t)
	po.mu.Lock()
	po.stats.Saves++
	if h == 0 {
		po.stats.Failed++
		h = failureHandle
	}
	po.mu.Unlock()
	return h
}

// SetPageOwner records the owner of a new block of 1<<order pages: the
// post_alloc_hook step.
//
// Kernel: mm/page_owner.c:__set_page_owner().
func (po *PageOwner) SetPageOwner(t *memalloc.Task, p zone.Page, order zone.Order, mask gfp.Mask) {
	h := po.saveStack(t, mask)
	po.mu.Lock()
	po.pages[p.PFN()] = owner{handle: h, order: order, mask: mask, pid: t.PID()}
	// A stack's first use puts it on the list (its refcount leaves
	// REFCOUNT_SATURATED); it stays there.
	first := !po.listed[h]
	po.listed[h] = true
	po.counts[h] += 1 << order
	po.mu.Unlock()
	if first {
		po.addStackRecordToList(t, mask)
	}
}

// listMask is the mask of a stack-list node for an allocation with mask.
func (po *PageOwner) listMask(mask gfp.Mask) gfp.Mask {
	if po.preFix {
		return PreFixMask(mask)
	}
	return mask.Nested()
}

// addStackRecordToList kmallocs the list node of a stack seen for the
// first time, unless the context may not spin.
//
// Kernel: mm/page_owner.c:add_stack_record_to_list().
func (po *PageOwner) addStackRecordToList(t *memalloc.Task, mask gfp.Mask) {
	if !AllowSpinning(mask) {
		po.mu.Lock()
		po.stats.ListSkipped++
		po.mu.Unlock()
		return
	}
	lm := po.listMask(mask)
	po.in.Store(t, struct{}{})
	_, err := po.kmalloc(t, stackNodeSize, lm)
	po.in.Delete(t)
	po.mu.Lock()
	po.stats.LastListMask = lm
	if err != nil {
		po.stats.ListFailures++
	} else {
		po.stats.ListNodes++
	}
	po.mu.Unlock()
}

// ResetPageOwner drops a freed block's record and its stack's count.
//
// Kernel: mm/page_owner.c:__reset_page_owner().
func (po *PageOwner) ResetPageOwner(p zone.Page) {
	po.mu.Lock()
	if o, ok := po.pages[p.PFN()]; ok {
		delete(po.pages, p.PFN())
		po.counts[o.handle] -= 1 << o.order
	}
	po.mu.Unlock()
}

// Stats returns page_owner's counters.
func (po *PageOwner) Stats() OwnerStats {
	po.mu.Lock()
	defer po.mu.Unlock()
	s := po.stats
	s.Pages = len(po.pages)
	return s
}
