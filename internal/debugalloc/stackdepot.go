package debugalloc

import (
	"hash/maphash"
	"sync"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// PageAllocator is the page allocator the stack depot takes its pools
// from: zone.Allocator.
type PageAllocator interface {
	AllocPages(t *memalloc.Task, mask gfp.Mask, order zone.Order) (zone.Page, error)
	FreePages(t *memalloc.Task, p zone.Page, order zone.Order) error
}

// The stack depot's geometry.
//
// Kernel: include/linux/stackdepot.h, lib/Kconfig (STACKDEPOT_MAX_FRAMES).
const (
	// PoolOrder is DEPOT_POOL_ORDER: a pool is four pages.
	PoolOrder zone.Order = 2
	// poolSize is DEPOT_POOL_SIZE in bytes.
	poolSize = 4096 << PoolOrder
	// maxFrames is CONFIG_STACKDEPOT_MAX_FRAMES.
	maxFrames = 64
	// recordHeader is sizeof(struct stack_record) without its entries:
	// the hash-list head, hash, size, handle and refcount.
	recordHeader = 32
	// stackAlign is 1 << DEPOT_STACK_ALIGN.
	stackAlign = 16
)

// Handle is a depot_stack_handle_t: 0 means no stack was saved.
type Handle uint32

// PreFixMask is the mask the stack depot (and, copying it, page_owner)
// used for its nested allocations before gfp_nested_mask(): the zone bits
// dropped, only the bits of GFP_ATOMIC and GFP_KERNEL kept, __GFP_NOWARN
// added. It loses __GFP_NOLOCKDEP and never adds __GFP_NOMEMALLOC or
// __GFP_NORETRY.
//
// Kernel: lib/stackdepot.c:stack_depot_save_flags() before v6.11.
func PreFixMask(mask gfp.Mask) gfp.Mask {
	return (mask&^gfp.ZoneMask)&(gfp.Atomic|gfp.Kernel) | gfp.NoWarn
}

// AllowSpinning reports whether a context with this mask may spin on a
// lock (and so allocate): it has one of the reclaim bits. Only
// alloc_pages_nolock()'s mask has neither.
//
// Kernel: include/linux/gfp.h:gfpflags_allow_spinning().
func AllowSpinning(mask gfp.Mask) bool { return mask&gfp.Reclaim != 0 }

// DepotStats counts what the stack depot did.
type DepotStats struct {
	Records int // stack records saved
	Pools   int // pools in use, the spare not included
	// PoolAllocs and PoolFailures count the pool allocations tried at
	// save time and those the page allocator refused.
	PoolAllocs, PoolFailures int
	// SaveFailures counts saves that found no room (handle 0).
	SaveFailures int
	// LastPoolMask is the mask of the last pool allocation.
	LastPoolMask gfp.Mask
}

// StackDepot stores call stacks once each and hands out handles for them,
// in pools of four pages it allocates with the nested mask of the request
// being traced.
//
// Kernel: lib/stackdepot.c.
type StackDepot struct {
	pa     PageAllocator
	preFix bool
	seed   maphash.Seed

	mu      sync.Mutex // protects everything below (pool_lock)
	table   map[uint64]Handle
	pools   []zone.Page
	newPool *zone.Page // the spare pool (new_pool), nil when empty
	offset  int        // pool_offset into the last pool
	next    Handle
	stats   DepotStats
}

// NewStackDepot returns an empty depot over pa. preFix selects the
// pre-v6.11 pool mask (PreFixMask) instead of the nested mask.
//
// Kernel: lib/stackdepot.c:stack_depot_init().
func NewStackDepot(pa PageAllocator, preFix bool) *StackDepot {
	return &StackDepot{pa: pa, preFix: preFix, seed: maphash.MakeSeed(),
		table: make(map[uint64]Handle), offset: poolSize}
}

// poolMask is the mask of a new pool for a save with mask.
func (d *StackDepot) poolMask(mask gfp.Mask) gfp.Mask {
	if d.preFix {
		return PreFixMask(mask)
	}
	return mask.Nested()
}

// Save stores frames (the program counters of a stack) and returns their
// handle, or 0 when the depot has no room and could not allocate. With
// canAlloc (STACK_DEPOT_FLAG_CAN_ALLOC) and a mask that allows spinning, a
// missing spare pool is allocated first, with the nested mask of mask;
// otherwise the depot only uses the pools it has.
//
// Kernel: lib/stackdepot.c:stack_depot_save_flags().
func (d *StackDepot) Save(t *memalloc.Task, frames []uintptr, mask gfp.Mask, canAlloc bool) Handle {
	if len(frames) == 0 {
		return 0
	}
	if len(frames) > maxFrames {
		frames = frames[:maxFrames]
	}
	var h maphash.Hash
	h.SetSeed(d.seed)
	for _, pc := range frames {
		var b [8]byte
		for i := range b {
			b[i] = byte(pc >> (8 * i))
		}
		h.Write(b[:])
	}
	key := h.Sum64()
	canAlloc = canAlloc && AllowSpinning(mask)

	d.mu.Lock()
	if hd, ok := d.table[key]; ok {
		d.mu.Unlock()
		return hd
	}
	needPool := canAlloc && d.newPool == nil
	d.mu.Unlock()

	// The pool is allocated before the lock is taken, as the kernel
	// cannot allocate under its raw spinlock.
	var prealloc *zone.Page
	if needPool {
		pm := d.poolMask(mask)
		p, err := d.pa.AllocPages(t, pm, PoolOrder)
		d.mu.Lock()
		d.stats.PoolAllocs++
		d.stats.LastPoolMask = pm
		if err != nil {
			d.stats.PoolFailures++
		} else {
			prealloc = &p
		}
		d.mu.Unlock()
	}

	d.mu.Lock()
	hd, ok := d.table[key]
	if !ok {
		size := (recordHeader + 8*len(frames) + stackAlign - 1) &^ (stackAlign - 1)
		if d.offset+size > poolSize && !d.initPool(&prealloc) {
			d.stats.SaveFailures++
		} else {
			d.offset += size
			d.next++
			hd = d.next
			d.table[key] = hd
			d.stats.Records++
		}
	}
	if prealloc != nil && d.newPool == nil {
		d.newPool, prealloc = prealloc, nil // depot_keep_new_pool
	}
	d.mu.Unlock()
	if prealloc != nil {
		_ = d.pa.FreePages(t, *prealloc, PoolOrder)
	}
	return hd
}

// initPool moves to a new pool: the spare, or else the one just
// allocated. It fails when there is neither.
//
// Kernel: lib/stackdepot.c:depot_init_pool().
func (d *StackDepot) initPool(prealloc **zone.Page) bool {
	if d.newPool == nil && *prealloc != nil {
		d.newPool, *prealloc = *prealloc, nil
	}
	if d.newPool == nil {
		return false
	}
	d.pools = append(d.pools, *d.newPool)
	d.newPool = nil
	d.offset = 0
	return true
}

// Stats returns the depot's counters.
func (d *StackDepot) Stats() DepotStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Pools = len(d.pools)
	return s
}
