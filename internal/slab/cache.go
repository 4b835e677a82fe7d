package slab

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// DirectMap is PAGE_OFFSET on x86_64 (4-level paging, no KASLR): the
// virtual address of pfn 0 in the direct map. A slab object's address is
// DirectMap + pfn<<12 + offset.
//
// Kernel: arch/x86/include/asm/page_64_types.h:__PAGE_OFFSET_BASE_L4.
const DirectMap uint64 = 0xffff888000000000

// ZeroSizePtr is ZERO_SIZE_PTR: what kmalloc(0) returns. kfree and ksize
// treat it as NULL.
//
// Kernel: include/linux/slab.h:ZERO_SIZE_PTR.
const ZeroSizePtr uint64 = 16

// Options configures the slab allocator.
type Options struct {
	// CPUs is nr_cpu_ids: calculate_order's min_objects depends on it.
	// 0 takes the page allocator's CPU count.
	CPUs int
	// Report receives WARN and BUG reports; nil drops them.
	Report bug.Sink
	// Now returns the simulated time in ns, for reports; nil is 0.
	Now func() int64
	// MightAlloc runs at the entry of every object allocation with the
	// caller's mask, as might_alloc() does in slab_pre_alloc_hook: it is
	// where lockdep sees a slab allocation take fs_reclaim, whether or
	// not the object needs a new slab. Nil: nothing.
	MightAlloc func(t *memalloc.Task, mask gfp.Mask)
	// Memcg charges the objects of accounted allocations (__GFP_ACCOUNT,
	// or a SLAB_ACCOUNT cache) to the allocating task's cgroup. Nil:
	// nothing is charged.
	Memcg ObjCharger
}

// ObjCharger charges slab objects to memory cgroups.
//
// Kernel: mm/memcontrol.c:__memcg_slab_post_alloc_hook(), __memcg_slab_free_hook().
type ObjCharger interface {
	// ChargeObj charges size bytes for t with mask and returns what to
	// hand back at free (nil: nothing charged, e.g. the root cgroup).
	ChargeObj(t *memalloc.Task, mask gfp.Mask, size int64, reclaimable bool) (owner any, err error)
	// UnchargeObj returns a freed object's bytes.
	UnchargeObj(owner any, size int64, reclaimable bool)
}

// objCharge is a charged object's record (the kernel's obj_exts entry).
type objCharge struct {
	owner       any
	size        int64
	reclaimable bool
}

// Hooks sees every object allocated and freed, as kmemleak does. It is not
// called for caches with NoLeakTrace. It is called with no slab lock held,
// so it may itself allocate from another cache; size is the requested size
// (the object size for kmem_cache_alloc). A large kmalloc (above
// KMALLOC_MAX_CACHE_SIZE) is reported with a nil cache.
//
// Kernel: mm/slub.c:slab_post_alloc_hook(), slab_free_hook()
// (kmemleak_alloc_recursive, kmemleak_free_recursive), ___kmalloc_large_node()
// (kmemleak_alloc), free_large_kmalloc() (kmemleak_free).
type Hooks interface {
	PostAlloc(t *memalloc.Task, c *Cache, addr uint64, size int, mask gfp.Mask)
	Free(t *memalloc.Task, c *Cache, addr uint64)
}

// Allocator is the slab allocator of one machine: its caches, the kmalloc
// caches among them, and the map from pages to slabs.
//
// Every method is safe for concurrent use.
//
// Kernel: mm/slub.c, mm/slab_common.c.
type Allocator struct {
	pa   *zone.Allocator
	opts Options
	// minObjects is calculate_order's min_objects. Invariant: immutable.
	minObjects int
	// cpuNode is the node id of each CPU. Invariant: immutable.
	cpuNode []int
	// nrNodes is one more than the highest node id. Invariant: immutable.
	nrNodes int
	// hooks holds a *hooksBox; atomic so SetHooks may race with
	// allocations.
	hooks atomic.Pointer[hooksBox]
	// shouldFail is should_failslab, nil without fault injection.
	// Invariant: set before the first allocation, then immutable.
	shouldFail ShouldFailFunc
	// tags are the allocation-profiling hooks, nil without profiling.
	// Invariant: set before the first allocation, then immutable.
	tags TagHooks
	// slabPageTag is the allocation tag of a new slab's pages, nil
	// without profiling. Invariant: set before the first allocation,
	// then immutable.
	slabPageTag any
	// objcg records the charged objects by address. Protected by
	// objcgMu.
	objcgMu sync.Mutex
	objcg   map[uint64]objCharge
	once    bug.Once

	// mu is slab_mutex: it protects caches and byName.
	mu sync.Mutex
	// caches is the slab_caches list in creation order (slabinfo prints
	// it newest first). Protected by mu.
	caches []*Cache
	byName map[string]*Cache
	// kmalloc is kmalloc_caches[type][index]. Invariant: immutable after New.
	kmalloc [nrKmallocTypes][kmallocShiftHigh + 1]*Cache

	// pmu protects pages.
	pmu sync.RWMutex
	// pages maps every pfn of a slab or a large kmalloc block to it
	// (virt_to_slab, virt_to_page). Protected by pmu.
	pages map[zone.PFN]*slab
}

type hooksBox struct{ h Hooks }

// ShouldFailFunc is should_failslab: it decides, at the entry of an object
// allocation (after might_alloc, with the caller's mask cut to
// gfp_allowed_mask), whether fault injection fails it. A failed
// allocation returns NULL (an error wrapping zone.ErrNoMemory) without
// touching the cache.
//
// Kernel: mm/failslab.c:should_failslab(), mm/slub.c:slab_pre_alloc_hook().
type ShouldFailFunc func(t *memalloc.Task, c *Cache, mask gfp.Mask) bool

// TagHooks sees every object allocated and freed in a cache without
// SLAB_NO_OBJ_EXT or SLAB_NOLEAKTRACE, as memory allocation profiling
// does: bytes is the cache's object stride (s->size). Large kmallocs are
// not objects: their pages are tagged by the page allocator's hooks.
// TagAlloc is called with no slab lock held; TagFree with the cache's lock
// held, before the object can be allocated again, so that the two calls of
// one address never cross: it must not allocate or call into slab.
//
// Kernel: mm/slub.c:alloc_tagging_slab_alloc_hook(),
// alloc_tagging_slab_free_hook().
type TagHooks interface {
	TagAlloc(t *memalloc.Task, c *Cache, addr uint64, bytes int)
	TagFree(t *memalloc.Task, c *Cache, addr uint64, bytes int)
}

// CacheArgs are the optional arguments of kmem_cache_create beyond size,
// alignment and flags.
//
// Kernel: include/linux/slab.h:struct kmem_cache_args.
type CacheArgs struct {
	// Align is the requested alignment (a power of two, or 0).
	Align int
	// Ctor says the cache has a constructor: the free pointer may not
	// overwrite the object, so it moves after it.
	Ctor bool
	// UseFreeptrOffset and FreeptrOffset place the free pointer inside
	// the object for RCU or ctor caches.
	UseFreeptrOffset bool
	FreeptrOffset    int
}

// Cache is one kmem_cache.
//
// Kernel: mm/slab.h:struct kmem_cache.
type Cache struct {
	s     *Allocator
	name  string
	flags Flags
	args  CacheArgs
	l     layout
	// allocflags is s->allocflags: __GFP_COMP, plus GFP_DMA,
	// GFP_DMA32 or __GFP_RECLAIMABLE as the flags ask.
	allocflags gfp.Mask
	// Invariant: the fields above are immutable after creation.

	// mu is the cache's lock, standing in for the per-cpu slab's
	// cmpxchg and every node's list_lock. Never held across a page
	// allocation or free, nor across a hook or a tracepoint.
	mu sync.Mutex
	// cpuSlab is each CPU's active slab (nil for none). Protected by mu.
	cpuSlab []*slab
	// partial is each node's partial list. Protected by mu.
	partial []slabList
	// nrSlabs, nrObjs, inuse are the totals over all slabs; partialFree
	// the free objects of the slabs on the partial lists. Protected by mu.
	nrSlabs, nrObjs, inuse, partialFree int
	// failslab is SLAB_FAILSLAB, which sysfs may flip at any time.
	// Atomic: the allocation path reads it without the cache lock, as
	// the kernel's READ_ONCE of s->flags does.
	failslab atomic.Bool
}

// New creates the slab allocator of a machine and its kmalloc caches:
// kmalloc-96, kmalloc-192, kmalloc-8 … kmalloc-8k of each type (normal,
// kmalloc-rcl-*, dma-kmalloc-*, kmalloc-cg-*), in the kernel's order.
//
// Kernel: mm/slab_common.c:create_kmalloc_caches(), new_kmalloc_cache(),
// create_kmalloc_cache().
func New(a *zone.Allocator, opts Options) (*Allocator, error) {
	if a == nil {
		return nil, fmt.Errorf("%w: slab.New needs a page allocator", zone.ErrInvalid)
	}
	if opts.CPUs < 0 {
		return nil, fmt.Errorf("%w: slab.Options.CPUs %d is negative", zone.ErrInvalid, opts.CPUs)
	}
	s := &Allocator{pa: a, opts: opts, byName: make(map[string]*Cache), pages: make(map[zone.PFN]*slab),
		objcg: map[uint64]objCharge{}}
	machineCPUs := 0
	for _, n := range a.Nodes() {
		s.nrNodes = max(s.nrNodes, n.ID()+1)
		for _, c := range n.CPUs() {
			machineCPUs = max(machineCPUs, c+1)
		}
	}
	if s.opts.CPUs == 0 {
		s.opts.CPUs = machineCPUs
	}
	s.cpuNode = make([]int, max(s.opts.CPUs, machineCPUs))
	for _, n := range a.Nodes() {
		for _, c := range n.CPUs() {
			s.cpuNode[c] = n.ID()
		}
	}
	s.minObjects = slubMinObjects(s.opts.CPUs)
	if err := s.createKmallocCaches(); err != nil {
		return nil, err
	}
	return s, nil
}

// SetHooks installs h (nil removes it).
//
// Kernel: mm/kmemleak.c (the kmemleak_alloc/kmemleak_free callers in mm/slub.c).
func (s *Allocator) SetHooks(h Hooks) {
	if h == nil {
		s.hooks.Store(nil)
		return
	}
	s.hooks.Store(&hooksBox{h})
}

// SetShouldFailslab installs should_failslab (nil removes it). Like the
// page allocator's SetHooks, it must be called before the first
// allocation.
//
// Kernel: mm/failslab.c:should_failslab().
func (s *Allocator) SetShouldFailslab(f ShouldFailFunc) { s.shouldFail = f }

// SetTagHooks installs the allocation-profiling hooks (nil removes them).
// It must be called before the first allocation.
//
// Kernel: mm/slub.c:alloc_tagging_slab_alloc_hook().
func (s *Allocator) SetTagHooks(h TagHooks) { s.tags = h }

// SetSlabPageTag gives the allocation tag that a new slab's page
// allocation runs under (Task.SaveAllocTag), in place of the tag of the
// call that needed the slab: allocate_slab allocates through
// alloc_frozen_pages(), whose own alloc_hooks() charge the pages to
// mm/slub.c's alloc_slab_page, not to the kmalloc caller. A nil tag (the
// default) leaves the task's tag alone. It must be called before the first
// allocation.
//
// Kernel: mm/slub.c:alloc_slab_page(), mm/internal.h:alloc_frozen_pages().
func (s *Allocator) SetSlabPageTag(tag any) { s.slabPageTag = tag }

// tagHooksFor returns the tag hooks for c's objects, or nil.
func (s *Allocator) tagHooksFor(c *Cache) TagHooks {
	if s.tags == nil || c.flags&(NoObjExt|NoLeakTrace) != 0 {
		return nil
	}
	return s.tags
}

func (s *Allocator) hooksFor(c *Cache) Hooks {
	if c != nil && c.flags&NoLeakTrace != 0 {
		return nil
	}
	if b := s.hooks.Load(); b != nil {
		return b.h
	}
	return nil
}

// CreateCache is kmem_cache_create(name, size, align, flags, NULL).
//
// Kernel: mm/slab_common.c:__kmem_cache_create_args().
func (s *Allocator) CreateCache(name string, size, align int, flags Flags) (*Cache, error) {
	return s.CreateCacheArgs(name, size, CacheArgs{Align: align}, flags)
}

// CreateCacheArgs is kmem_cache_create with struct kmem_cache_args. A
// missing name, a size of 0 or above KMALLOC_MAX_SIZE, an alignment that is
// not a power of two, a flag outside SLAB_FLAGS_PERMITTED or a debug flag
// (mmsim does not model slub_debug layouts) is refused with an error
// wrapping zone.ErrInvalid. A duplicate name WARNs, as the kernel does, and
// creates the cache all the same; so does a name with a space.
//
// Kernel: mm/slab_common.c:__kmem_cache_create_args(), kmem_cache_sanity_check(),
// create_cache(); mm/slub.c:do_kmem_cache_create().
func (s *Allocator) CreateCacheArgs(name string, size int, args CacheArgs, flags Flags) (*Cache, error) {
	switch {
	case name == "" || size <= 0 || size > kmallocMaxSize:
		s.report(nil, bug.Warn, "mm/slab_common.c:kmem_cache_sanity_check",
			fmt.Sprintf("kmem_cache_create(%s) integrity check failed", name))
		return nil, fmt.Errorf("%w: kmem_cache_create(%q, %d): integrity check failed", zone.ErrInvalid, name, size)
	case flags&^flagsPermitted != 0:
		return nil, fmt.Errorf("%w: kmem_cache_create(%q): flags %s outside SLAB_FLAGS_PERMITTED", zone.ErrInvalid, name, flags&^flagsPermitted)
	case flags&debugFlags != 0:
		return nil, fmt.Errorf("%w: kmem_cache_create(%q): debug flags %s are not modelled", zone.ErrInvalid, name, flags&debugFlags)
	case args.Align < 0 || args.Align&(args.Align-1) != 0 || args.Align > zone.PageSize<<zone.MaxPageOrder:
		return nil, fmt.Errorf("%w: kmem_cache_create(%q): alignment %d is not a power of two", zone.ErrInvalid, name, args.Align)
	case args.UseFreeptrOffset && (args.FreeptrOffset < 0 || args.FreeptrOffset%wordSize != 0 || args.FreeptrOffset+wordSize > size):
		return nil, fmt.Errorf("%w: kmem_cache_create(%q): bad freeptr_offset %d", zone.ErrInvalid, name, args.FreeptrOffset)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byName[name] != nil {
		s.report(nil, bug.Warn, "mm/slab_common.c:kmem_cache_sanity_check",
			fmt.Sprintf("kmem_cache of name '%s' already exists", name))
	}
	if strings.Contains(name, " ") {
		s.report(nil, bug.Warn, "mm/slab_common.c:kmem_cache_sanity_check", "WARN_ON(strchr(name, ' '))")
	}
	args.Align = calculateAlignment(flags, args.Align, size)
	return s.createCacheLocked(name, size, args, flags)
}

// createCacheLocked lays the cache out and adds it to slab_caches.
//
// Preconditions: s.mu is held.
//
// Kernel: mm/slab_common.c:create_cache(), mm/slub.c:do_kmem_cache_create().
func (s *Allocator) createCacheLocked(name string, size int, args CacheArgs, flags Flags) (*Cache, error) {
	l, ok := calculateSizes(size, args.Align, flags, args, s.minObjects)
	if !ok {
		return nil, fmt.Errorf("%w: kmem_cache_create(%q, %d): no slab order holds the object", zone.ErrInvalid, name, size)
	}
	c := &Cache{s: s, name: name, flags: flags, args: args, l: l,
		cpuSlab: make([]*slab, len(s.cpuNode)), partial: make([]slabList, s.nrNodes)}
	c.allocflags = gfp.Comp
	if flags&CacheDMA != 0 {
		c.allocflags |= gfp.DMA
	}
	if flags&CacheDMA32 != 0 {
		c.allocflags |= gfp.DMA32
	}
	if flags&ReclaimAccount != 0 {
		c.allocflags |= gfp.Reclaimable
	}
	s.caches = append(s.caches, c)
	s.byName[name] = c
	return c, nil
}

// Cache returns the cache of that name, or nil. With duplicate names it
// is the most recently created, as slabinfo lists it first.
//
// Kernel: mm/slab_common.c:kmem_cache_is_duplicate_name() (the slab_caches walk).
func (s *Allocator) Cache(name string) *Cache {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byName[name]
}

// Name is s->name.
//
// Kernel: mm/slab.h:struct kmem_cache (name).
func (c *Cache) Name() string { return c.name }

// ObjectSize is s->object_size: the size the cache was created with
// (bytes_req of kmem_cache_alloc).
//
// Kernel: mm/slab.h:struct kmem_cache (object_size).
func (c *Cache) ObjectSize() int { return c.l.objectSize }

// Size is s->size: the stride of objects in a slab (slabinfo's objsize,
// bytes_alloc of the tracepoints).
//
// Kernel: mm/slab.h:struct kmem_cache (size).
func (c *Cache) Size() int { return c.l.size }

// Align is s->align.
//
// Kernel: mm/slab.h:struct kmem_cache (align).
func (c *Cache) Align() int { return c.l.align }

// Flags returns the cache's flags.
//
// Kernel: mm/slab.h:struct kmem_cache (flags).
func (c *Cache) Flags() Flags {
	if c.failslab.Load() {
		return c.flags | Failslab
	}
	return c.flags
}

// SetFailslab sets or clears SLAB_FAILSLAB, which failslab's cache-filter
// looks for. mmsim never merges caches, so the kernel's refusal of a
// merged cache (refcount > 1: EINVAL) does not arise.
//
// Kernel: mm/slub.c:failslab_store().
func (c *Cache) SetFailslab(on bool) { c.failslab.Store(on) }

// Order is oo_order(s->oo): the order of a new slab when the page
// allocator grants it.
//
// Kernel: mm/slub.c:oo_order().
func (c *Cache) Order() zone.Order { return c.l.oo.order }

// MinOrder is oo_order(s->min): the fallback order of allocate_slab.
//
// Kernel: mm/slub.c:allocate_slab().
func (c *Cache) MinOrder() zone.Order { return c.l.min.order }

// ObjectsPerSlab is oo_objects(s->oo).
//
// Kernel: mm/slub.c:oo_objects().
func (c *Cache) ObjectsPerSlab() int { return c.l.oo.objects }

// MinPartial is s->min_partial: how many empty-or-partial slabs a node
// keeps before an empty slab is freed.
//
// Kernel: mm/slub.c:do_kmem_cache_create() (min_partial).
func (c *Cache) MinPartial() int { return c.l.minPartial }

// Reclaimable reports SLAB_RECLAIM_ACCOUNT: the slab pages count as
// NR_SLAB_RECLAIMABLE.
//
// Kernel: mm/slab.h:cache_vmstat_idx().
func (c *Cache) Reclaimable() bool { return c.flags&ReclaimAccount != 0 }

// ActiveObjects is the number of objects handed out and not freed.
// (slabinfo's active_objs differs: it counts the free objects of the
// per-CPU slabs as active, as get_slabinfo does.)
//
// Kernel: mm/slub.c:count_partial() (the inuse sum).
func (c *Cache) ActiveObjects() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inuse
}

// Slabs returns the number of slabs and of objects in them.
//
// Kernel: mm/slub.c:node_nr_slabs(), node_nr_objs().
func (c *Cache) Slabs() (slabs, objects int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nrSlabs, c.nrObjs
}

func (c *Cache) String() string { return c.name }

// report sends a report to the sink.
func (s *Allocator) report(t *memalloc.Task, k bug.Kind, site, text string) {
	if s.opts.Report == nil {
		return
	}
	r := bug.Report{Kind: k, Site: site, Text: text}
	if t != nil {
		r.Comm, r.PID = t.Comm(), t.PID()
	}
	if s.opts.Now != nil {
		r.Time = s.opts.Now()
	}
	s.opts.Report(r)
}

// warnOnce reports a WARN_ONCE site the first time it fires.
func (s *Allocator) warnOnce(t *memalloc.Task, key, site, text string) {
	if s.once.First(key) {
		s.report(t, bug.Warn, site, text)
	}
}
