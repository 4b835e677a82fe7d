package testutil

import "sync"

// RefBuddy is the naive reference the benchmarks measure the allocator
// against: a single-lock binary buddy allocator over orders 0..10, with
// per-order free lists linked through per-page int32 arrays and buddy =
// pfn ^ 1<<order. It keeps 9 bytes per page: the free order (or -1) and two
// links. It knows nothing of zones, watermarks, migratetypes or pcp lists.
type RefBuddy struct {
	mu    sync.Mutex
	order []int8  // order of the free block a page heads, -1 if none
	next  []int32 // free-list links, -1 at the ends
	prev  []int32
	heads [11]int32
	free  int64
}

// RefMaxOrder is the reference's largest order.
const RefMaxOrder = 10

// NewRefBuddy returns a reference allocator with pages free pages.
func NewRefBuddy(pages int) *RefBuddy {
	b := &RefBuddy{order: make([]int8, pages), next: make([]int32, pages), prev: make([]int32, pages)}
	for i := range b.heads {
		b.heads[i] = -1
	}
	for i := range b.order {
		b.order[i] = -1
	}
	for pfn := 0; pfn < pages; {
		o := RefMaxOrder
		for o > 0 && (pfn&(1<<o-1) != 0 || pfn+1<<o > pages) {
			o--
		}
		b.push(int32(pfn), o)
		pfn += 1 << o
	}
	b.free = int64(pages)
	return b
}

func (b *RefBuddy) push(pfn int32, o int) {
	b.order[pfn] = int8(o)
	b.prev[pfn] = -1
	b.next[pfn] = b.heads[o]
	if h := b.heads[o]; h >= 0 {
		b.prev[h] = pfn
	}
	b.heads[o] = pfn
}

func (b *RefBuddy) unlink(pfn int32, o int) {
	b.order[pfn] = -1
	if p := b.prev[pfn]; p >= 0 {
		b.next[p] = b.next[pfn]
	} else {
		b.heads[o] = b.next[pfn]
	}
	if n := b.next[pfn]; n >= 0 {
		b.prev[n] = b.prev[pfn]
	}
}

// Alloc takes a block of the order; ok is false when none is free.
func (b *RefBuddy) Alloc(order int) (pfn int32, ok bool) {
	b.mu.Lock()
	o := order
	for o <= RefMaxOrder && b.heads[o] < 0 {
		o++
	}
	if o > RefMaxOrder {
		b.mu.Unlock()
		return 0, false
	}
	pfn = b.heads[o]
	b.unlink(pfn, o)
	for o > order {
		o--
		b.push(pfn+1<<o, o)
	}
	b.free -= 1 << order
	b.mu.Unlock()
	return pfn, true
}

// Free returns a block, merging it with its free buddies.
func (b *RefBuddy) Free(pfn int32, order int) {
	b.mu.Lock()
	b.free += 1 << order
	for order < RefMaxOrder {
		buddy := pfn ^ 1<<order
		if int(buddy) >= len(b.order) || int(b.order[buddy]) != order {
			break
		}
		b.unlink(buddy, order)
		pfn &= buddy
		order++
	}
	b.push(pfn, order)
	b.mu.Unlock()
}

// FreePages returns the number of free pages.
func (b *RefBuddy) FreePages() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.free
}

// FreeStack is the floor of the benchmarks: a bare locked stack of free
// order-0 pages, with nothing else to do.
type FreeStack struct {
	mu    sync.Mutex
	pages []int32
}

// NewFreeStack returns a stack holding pages pages.
func NewFreeStack(pages int) *FreeStack {
	s := &FreeStack{pages: make([]int32, pages)}
	for i := range s.pages {
		s.pages[i] = int32(i)
	}
	return s
}

// Pop takes a page.
func (s *FreeStack) Pop() (int32, bool) {
	s.mu.Lock()
	n := len(s.pages)
	if n == 0 {
		s.mu.Unlock()
		return 0, false
	}
	p := s.pages[n-1]
	s.pages = s.pages[:n-1]
	s.mu.Unlock()
	return p, true
}

// Push returns a page.
func (s *FreeStack) Push(p int32) {
	s.mu.Lock()
	s.pages = append(s.pages, p)
	s.mu.Unlock()
}
