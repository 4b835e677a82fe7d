package zone

// This file holds the zone's memmap: what mmsim keeps per simulated page, in
// place of the kernel's 64-byte struct page.
//
// A page needs two state bytes and, while it heads a free block, two links
// of the free list it is on.
//
// The buddy state (is it the head of a free block on a buddy free list, and
// of which order) and the links are kept in chunks of one MAX_ORDER block
// (1024 pages, 9 KiB), created when the block is first split, as sparsemem
// populates a section's memmap only when it is needed: a MAX_ORDER block
// that is whole, free or allocated as one, needs only its block entry. A
// chunk goes back to the zone's pool when its block merges whole again.
//
// The owner state (is it the head of a block on a per-cpu list, or of an
// allocated block, and of which order) is one flat byte a page: every
// allocation and free reads or writes it, and a chunk pointer in front of
// it would cost each of them a dependent load. The host only backs its
// pages once they are written, as the machine is used.
//
// Right after boot every block is whole, so a 64 GiB machine costs 16 MiB
// of owner bytes (zero, backed by the host as they are written) and a few
// hundred KiB besides; a fully split region costs 10 bytes a page.
//
// The two bytes are separate so that the Go race detector and the
// kernel's locking agree: the buddy state is the zone lock's; the owner
// state is its owner's. The kernel gets the same split from struct page's
// flags.

// Page states: what the state byte of a page says. The low four bits carry
// the order of the block the page heads.
const (
	psNone      uint8 = 0    // heads nothing: a tail page, a hole, a reserved page
	psFree      uint8 = 0x10 // heads a free block on a buddy free list (PageBuddy)
	psPCP       uint8 = 0x20 // heads a free block on a per-cpu list
	psAlloc     uint8 = 0x40 // heads an allocated block
	psKindMask  uint8 = 0x70
	psOrderMask uint8 = 0x0f
	// psMovable marks an allocated block that was asked for with
	// __GFP_MOVABLE: mmsim's stand-in for PageLRU when the fallback
	// heuristics count the movable pages of a pageblock.
	psMovable uint8 = 0x80
)

// nilLink marks the end of a free list.
const nilLink int32 = -1

// link holds a free block's neighbours on its free list, as offsets from the
// memmap's base.
type link struct{ prev, next int32 }

// chunk is the per-page storage of one split MAX_ORDER block.
type chunk struct {
	// state is the buddy state of each page (psFree|order or psNone),
	// written only under the zone lock.
	state [maxOrderNrPages]uint8
	link  [maxOrderNrPages]link
}

// block is what a MAX_ORDER block always has.
type block struct {
	// chunk is the block's per-page storage while it is split; nil while
	// it is whole.
	chunk *chunk
	// state is the block's buddy state while it is whole (no chunk):
	// psFree with order MaxPageOrder, or psNone.
	state uint8
	// link is the block's free-list link while it is a free MAX_ORDER block.
	link link
}

// memmap is the per-page state of one zone. Protected by the zone lock.
type memmap struct {
	// base is the first pfn covered: the zone's start, aligned down to a
	// MAX_ORDER block. Invariant: immutable.
	base PFN
	// blocks has one entry per MAX_ORDER block of the zone's span.
	// Invariant: blocks[i].chunk != nil exactly when block i is not whole.
	blocks []block
	// owner is the owner state of every page (psPCP or psAlloc, with
	// order and psMovable; psNone for the rest), written by whoever owns
	// the page: the pcp list's lock holder, or the caller it was handed
	// to. It is one flat byte a page, unlike the buddy state: allocation
	// and free read and write it on every call, and a chunk's pointer
	// would put a dependent load in front of each. The host backs its
	// pages only as allocations and frees first write them.
	owner []uint8
	// pool holds chunks of blocks that merged whole again, for reuse.
	pool []*chunk
}

func newMemmap(start PFN, spanned int64) memmap {
	base := start &^ (maxOrderNrPages - 1)
	n := (int64(start-base) + spanned + maxOrderNrPages - 1) / maxOrderNrPages
	return memmap{
		base:   base,
		blocks: make([]block, n),
		owner:  make([]uint8, n*maxOrderNrPages),
	}
}

// off returns pfn as an offset from the memmap's base.
func (m *memmap) off(pfn PFN) int32 { return int32(pfn - m.base) }

// pfnAt returns the pfn at offset off.
func (m *memmap) pfnAt(off int32) PFN { return m.base + PFN(off) }

// state returns the state byte of the page at offset off.
func (m *memmap) state(off int32) uint8 {
	b := &m.blocks[off>>MaxPageOrder]
	if c := b.chunk; c != nil {
		return c.state[off&(maxOrderNrPages-1)]
	}
	if off&(maxOrderNrPages-1) == 0 {
		return b.state
	}
	return psNone
}

// setState sets the buddy state byte of the page at offset off. A block
// that is whole gets a chunk first, unless the new state keeps it whole.
// Preconditions: the zone lock is held.
func (m *memmap) setState(off int32, s uint8) {
	i := off >> MaxPageOrder
	c := m.blocks[i].chunk
	if c == nil {
		if off&(maxOrderNrPages-1) == 0 && (s == psNone || Order(s&psOrderMask) == MaxPageOrder) {
			m.blocks[i].state = s
			return
		}
		c = m.split(i)
	}
	c.state[off&(maxOrderNrPages-1)] = s
}

// ownerState returns the owner state byte of the page at offset off, or
// psNone for a page outside the span.
func (m *memmap) ownerState(off int32) uint8 {
	if uint(off) >= uint(len(m.owner)) {
		return psNone
	}
	return m.owner[off]
}

// setOwnerState sets the owner state byte of the page at offset off.
// Preconditions: the caller owns the page.
func (m *memmap) setOwnerState(off int32, s uint8) { m.owner[off] = s }

// split gives block i a chunk, carrying its whole-block state over.
func (m *memmap) split(i int32) *chunk {
	var c *chunk
	if n := len(m.pool); n > 0 {
		c, m.pool = m.pool[n-1], m.pool[:n-1]
	} else {
		c = new(chunk)
	}
	b := &m.blocks[i]
	c.state[0] = b.state
	b.state = psNone
	b.chunk = c
	return c
}

// splitWhole gives the MAX_ORDER block holding offset off a chunk, if
// it has none.
func (m *memmap) splitWhole(off int32) {
	if i := off >> MaxPageOrder; m.blocks[i].chunk == nil {
		m.split(i)
	}
}

// rejoin drops the chunk of block i, which is whole again with state s.
// Preconditions: every page of the block but the head has state psNone.
func (m *memmap) rejoin(i int32, s uint8) {
	b := &m.blocks[i]
	c := b.chunk
	b.state = s
	if c == nil {
		return
	}
	c.state[0] = psNone
	b.chunk = nil
	m.pool = append(m.pool, c)
}

// linkOf returns the free-list link of the free block of the given order
// heading at offset off.
func (m *memmap) linkOf(off int32, order Order) *link {
	i := off >> MaxPageOrder
	if order == MaxPageOrder {
		return &m.blocks[i].link
	}
	return &m.blocks[i].chunk.link[off&(maxOrderNrPages-1)]
}

// freeList is one free list of a free area: the free blocks of one order and
// one migratetype.
//
// Kernel: include/linux/mmzone.h:struct free_area.free_list[].
type freeList struct {
	head, tail int32 // offsets of the first and last block, nilLink if empty
	n          int64 // number of blocks
}

func (l *freeList) init() { l.head, l.tail = nilLink, nilLink }

func (l *freeList) empty() bool { return l.head == nilLink }

// add puts the block at offset off on the list, at its head or its tail.
//
// Kernel: mm/page_alloc.c:__add_to_free_list().
func (m *memmap) add(l *freeList, off int32, order Order, tail bool) {
	lk := m.linkOf(off, order)
	switch {
	case l.head == nilLink:
		*lk = link{nilLink, nilLink}
		l.head, l.tail = off, off
	case tail:
		*lk = link{prev: l.tail, next: nilLink}
		m.linkOf(l.tail, order).next = off
		l.tail = off
	default:
		*lk = link{prev: nilLink, next: l.head}
		m.linkOf(l.head, order).prev = off
		l.head = off
	}
	l.n++
}

// del takes the block at offset off off the list.
//
// Kernel: mm/page_alloc.c:__del_page_from_free_list().
func (m *memmap) del(l *freeList, off int32, order Order) {
	lk := m.linkOf(off, order)
	if lk.prev == nilLink {
		l.head = lk.next
	} else {
		m.linkOf(lk.prev, order).next = lk.next
	}
	if lk.next == nilLink {
		l.tail = lk.prev
	} else {
		m.linkOf(lk.next, order).prev = lk.prev
	}
	l.n--
}
