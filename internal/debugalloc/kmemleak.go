package debugalloc

import (
	"runtime"
	"sync"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
)

// ObjectCache is the slab cache kmemleak takes its metadata objects from
// (kmemleak_object, created with SLAB_NOLEAKTRACE so that its own
// allocations are not tracked).
type ObjectCache interface {
	Alloc(t *memalloc.Task, mask gfp.Mask) (uint64, error)
	Free(t *memalloc.Task, addr uint64) error
}

// ObjectSize is sizeof(struct kmemleak_object) on x86_64 without spinlock
// debugging: the size of kmemleak's object cache.
//
// Kernel: mm/kmemleak.c:struct kmemleak_object.
const ObjectSize = 168

// DefaultMemPoolSize is CONFIG_DEBUG_KMEMLEAK_MEM_POOL_SIZE's default: the
// static pool of metadata objects used when the object cache fails.
//
// Kernel: mm/Kconfig.debug:DEBUG_KMEMLEAK_MEM_POOL_SIZE.
const DefaultMemPoolSize = 16000

// LeakStats counts what kmemleak did.
type LeakStats struct {
	Objects int // objects tracked now
	// FromCache and FromPool count metadata objects taken from the slab
	// cache and from the static pool.
	FromCache, FromPool int
	// PoolFree is what is left of the static pool (its free list and
	// its unused tail).
	PoolFree int
	// LastMask is the mask of the last object-cache allocation.
	LastMask gfp.Mask
	// Disabled is set once kmemleak has turned itself off.
	Disabled bool
}

// meta is a kmemleak_object: where it came from.
type meta struct {
	addr   uint64 // in the object cache; 0 for the static pool
	size   int
	pooled bool
}

// Kmemleak tracks every allocated object, as kmemleak does: each tracked
// allocation allocates a metadata object with the nested mask of the
// allocation's, falling back to a static pool; when both fail it disables
// itself for good.
//
// Kernel: mm/kmemleak.c.
type Kmemleak struct {
	cache  ObjectCache
	depot  *StackDepot // where allocation stacks go; nil: not saved
	report bug.Sink
	now    func() int64

	mu       sync.Mutex // kmemleak_lock: protects below
	objects  map[uint64]meta
	poolFree int
	stats    LeakStats
	warned   bool // the pool-empty pr_warn_once fired
}

// NewKmemleak returns kmemleak over its object cache with a static pool of
// poolSize objects (DefaultMemPoolSize when 0).
//
// Kernel: mm/kmemleak.c:kmemleak_init().
func NewKmemleak(cache ObjectCache, poolSize int, report bug.Sink, now func() int64) *Kmemleak {
	if poolSize <= 0 {
		poolSize = DefaultMemPoolSize
	}
	return &Kmemleak{cache: cache, report: report, now: now,
		objects: make(map[uint64]meta), poolFree: poolSize}
}

func (k *Kmemleak) say(t *memalloc.Task, site, text string) {
	if k.report == nil {
		return
	}
	r := bug.Report{Kind: bug.Info, Site: site, Text: text, Comm: t.Comm(), PID: t.PID()}
	if k.now != nil {
		r.Time = k.now()
	}
	k.report(r)
}

// SetDepot makes kmemleak save each object's allocation stack in d, as
// set_track_prepare() does (with GFP_NOWAIT, whatever the allocation's
// mask). Call it before the first Alloc.
//
// Kernel: mm/kmemleak.c:set_track_prepare().
func (k *Kmemleak) SetDepot(d *StackDepot) { k.depot = d }

// Alloc registers an allocated object of size bytes at ptr, allocated
// with mask: kmemleak_alloc() from the slab and vmalloc hooks.
//
// Kernel: mm/kmemleak.c:kmemleak_alloc(), __create_object(), mem_pool_alloc().
func (k *Kmemleak) Alloc(t *memalloc.Task, ptr uint64, size int, mask gfp.Mask) {
	k.mu.Lock()
	off := k.stats.Disabled
	k.mu.Unlock()
	if off || ptr == 0 {
		return
	}
	m := meta{size: size}
	nm := mask.Nested()
	addr, err := k.cache.Alloc(t, nm)
	k.mu.Lock()
	k.stats.LastMask = nm
	if err == nil {
		m.addr = addr
		k.stats.FromCache++
	} else if k.poolFree > 0 {
		k.poolFree--
		m.pooled = true
		k.stats.FromPool++
	} else {
		warn := !k.warned
		k.warned = true
		k.stats.Disabled = true
		k.mu.Unlock()
		if warn {
			k.say(t, "mm/kmemleak.c:mem_pool_alloc", "Memory pool empty, consider increasing CONFIG_DEBUG_KMEMLEAK_MEM_POOL_SIZE")
		}
		k.say(t, "mm/kmemleak.c:__alloc_object", "Cannot allocate a kmemleak_object structure")
		k.say(t, "mm/kmemleak.c:kmemleak_disable", "Kernel memory leak detector disabled")
		return
	}
	if k.stats.Disabled {
		// Disabled meanwhile by another task: give the object back.
		k.mu.Unlock()
		k.release(t, m)
		return
	}
	k.objects[ptr] = m
	k.mu.Unlock()
	if k.depot != nil {
		var pcs [maxFrames]uintptr
		n := runtime.Callers(2, pcs[:])
		k.depot.Save(t, pcs[:n], gfp.NoWait, true)
	}
}

// Free unregisters the object at ptr: kmemleak_free() from the free hooks.
// An address kmemleak does not track is ignored (kmemleak would warn
// "Freeing unknown object"; mmsim's allocators have already refused a bad
// free).
//
// Kernel: mm/kmemleak.c:kmemleak_free(), delete_object_full().
func (k *Kmemleak) Free(t *memalloc.Task, ptr uint64) {
	k.mu.Lock()
	m, ok := k.objects[ptr]
	if ok {
		delete(k.objects, ptr)
	}
	k.mu.Unlock()
	if ok {
		k.release(t, m)
	}
}

// release returns a metadata object to where it came from.
//
// Kernel: mm/kmemleak.c:mem_pool_free().
func (k *Kmemleak) release(t *memalloc.Task, m meta) {
	if !m.pooled {
		_ = k.cache.Free(t, m.addr)
		return
	}
	k.mu.Lock()
	k.poolFree++
	k.mu.Unlock()
}

// Stats returns kmemleak's counters.
func (k *Kmemleak) Stats() LeakStats {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.stats
	s.Objects = len(k.objects)
	s.PoolFree = k.poolFree
	return s
}
