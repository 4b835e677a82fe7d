package slab

import (
	"fmt"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// slab is one slab (struct slab), or, with a nil cache, one large-kmalloc
// block (a compound page with PageLargeKmalloc).
//
// Kernel: mm/slab.h:struct slab.
type slab struct {
	cache *Cache // nil for a large kmalloc
	pfn   zone.PFN
	order zone.Order
	node  int
	// Invariant: the fields above are immutable.

	// The fields below are protected by cache.mu.

	objects int // slab->objects
	inuse   int // slab->inuse
	// free is the freelist, as a stack of object indices: the next
	// object handed out is the last element.
	free []int32
	// used has a bit per object handed out and not freed.
	used []uint64
	// cpu is the CPU whose active slab this is, or -1.
	cpu int
	// onPartial says the slab is on its node's partial list.
	onPartial  bool
	prev, next *slab
	// dead is set once the slab is discarded: a racing free that
	// found it in the page map must not touch it.
	dead bool

	// bytes is a large kmalloc's requested size. Protected by the
	// allocator's pmu (a large block is only in the map while live).
	bytes int
}

func (sl *slab) base() uint64 { return DirectMap + uint64(sl.pfn)<<zone.PageShift }

func (sl *slab) isUsed(i int) bool { return sl.used[i/64]&(1<<(i%64)) != 0 }
func (sl *slab) setUsed(i int)     { sl.used[i/64] |= 1 << (i % 64) }
func (sl *slab) clearUsed(i int)   { sl.used[i/64] &^= 1 << (i % 64) }

// slabList is a node's partial list (kmem_cache_node->partial, nr_partial).
type slabList struct {
	head, tail *slab
	n          int
}

func (l *slabList) addTail(sl *slab) {
	sl.prev, sl.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = sl
	} else {
		l.head = sl
	}
	l.tail = sl
	l.n++
	sl.onPartial = true
}

func (l *slabList) remove(sl *slab) {
	if sl.prev != nil {
		sl.prev.next = sl.next
	} else {
		l.head = sl.next
	}
	if sl.next != nil {
		sl.next.prev = sl.prev
	} else {
		l.tail = sl.prev
	}
	sl.prev, sl.next = nil, nil
	l.n--
	sl.onPartial = false
}

// addr returns the address of object i.
func (c *Cache) addr(sl *slab, i int) uint64 { return sl.base() + uint64(i*c.l.size) }

// takeObjectLocked hands out the first object of sl's freelist.
//
// Preconditions: c.mu is held; sl has a free object.
func (c *Cache) takeObjectLocked(sl *slab) uint64 {
	i := int(sl.free[len(sl.free)-1])
	sl.free = sl.free[:len(sl.free)-1]
	sl.setUsed(i)
	sl.inuse++
	c.inuse++
	if sl.onPartial {
		c.partialFree--
	}
	return c.addr(sl, i)
}

// alloc is slab_alloc_node for NUMA_NO_NODE: the CPU's slab, else a slab
// from the local node's partial list, else a new slab. The cache lock is
// dropped around the page allocation.
//
// Kernel: mm/slub.c:slab_alloc_node(), ___slab_alloc() (get_partial,
// new_slab).
func (c *Cache) alloc(t *memalloc.Task, mask gfp.Mask) (uint64, error) {
	addr, err := c.allocObject(t, mask)
	if err != nil || c.s.opts.Memcg == nil || mask&gfp.Account == 0 && c.flags&Account == 0 {
		return addr, err
	}
	if err := c.chargeObject(t, mask, addr); err != nil {
		if ferr := c.release(t, c.s.virtToSlab(addr), addr); ferr != nil {
			return 0, ferr
		}
		return 0, err
	}
	return addr, nil
}

// chargeObject charges a new object of an accounted allocation to the
// task's cgroup: the object's size plus the obj_cgroup pointer kept for
// it.
//
// Kernel: mm/memcontrol.c:__memcg_slab_post_alloc_hook(), obj_full_size().
func (c *Cache) chargeObject(t *memalloc.Task, mask gfp.Mask, addr uint64) error {
	size := int64(c.l.size) + 8 // + sizeof(struct obj_cgroup *)
	owner, err := c.s.opts.Memcg.ChargeObj(t, mask, size, c.flags&ReclaimAccount != 0)
	if err != nil {
		return fmt.Errorf("memcg_slab_post_alloc_hook: %w", err)
	}
	if owner != nil {
		c.s.objcgMu.Lock()
		c.s.objcg[addr] = objCharge{owner, size, c.flags&ReclaimAccount != 0}
		c.s.objcgMu.Unlock()
	}
	return nil
}

// takeChargeLocked detaches the memcg charge record of the object at
// addr, which is being freed, if it has one; the caller returns the charge
// with Memcg.UnchargeObj. It runs before the object goes back on the
// freelist, as memcg_slab_free_hook runs before do_slab_free: once the
// object is free, its next allocation records a charge of its own under
// the same address.
//
// Preconditions: c.mu is held (objcgMu nests inside it).
//
// Kernel: mm/memcontrol.c:__memcg_slab_free_hook().
func (c *Cache) takeChargeLocked(addr uint64) (objCharge, bool) {
	if c.s.opts.Memcg == nil {
		return objCharge{}, false
	}
	c.s.objcgMu.Lock()
	ch, ok := c.s.objcg[addr]
	if ok {
		delete(c.s.objcg, addr)
	}
	c.s.objcgMu.Unlock()
	return ch, ok
}

// allocObject takes an object from the CPU slab, a partial slab or a new
// slab.
func (c *Cache) allocObject(t *memalloc.Task, mask gfp.Mask) (uint64, error) {
	if t == nil {
		return 0, fmt.Errorf("%w: no task: every allocation needs its task (current)", zone.ErrInvalid)
	}
	cpu := t.CPU()
	if cpu < 0 || cpu >= len(c.cpuSlab) {
		return 0, fmt.Errorf("%w: task %s runs on CPU %d, which this machine does not have", zone.ErrInvalid, t, cpu)
	}
	mask &= gfp.BitsMask // slab_pre_alloc_hook: gfp_allowed_mask
	if ma := c.s.opts.MightAlloc; ma != nil {
		ma(t, mask)
	}
	if sf := c.s.shouldFail; sf != nil && sf(t, c, mask) {
		// slab_pre_alloc_hook returns NULL: no object, no slab.
		return 0, fmt.Errorf("%w: kmem_cache_alloc(%s, %s): failslab: fault injected", zone.ErrNoMemory, c.name, mask)
	}
	c.mu.Lock()
	if sl := c.cpuSlab[cpu]; sl != nil && len(sl.free) > 0 {
		addr := c.takeObjectLocked(sl)
		c.mu.Unlock()
		return addr, nil
	}
	if sl := c.partial[c.s.cpuNode[cpu]].head; sl != nil {
		discard := c.installCPUSlabLocked(cpu, sl)
		addr := c.takeObjectLocked(sl)
		c.mu.Unlock()
		c.discardSlabs(t, discard)
		return addr, nil
	}
	c.mu.Unlock()

	sl, err := c.newSlab(t, mask)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.nrSlabs++
	c.nrObjs += sl.objects
	discard := c.installCPUSlabLocked(cpu, sl)
	addr := c.takeObjectLocked(sl)
	c.mu.Unlock()
	c.discardSlabs(t, discard)
	return addr, nil
}

// installCPUSlabLocked makes sl the CPU's slab, taking it off the partial
// list, and deactivates the slab it replaces. It returns the slab to
// discard, if any.
//
// Preconditions: c.mu is held.
//
// Kernel: mm/slub.c:___slab_alloc(), deactivate_slab().
func (c *Cache) installCPUSlabLocked(cpu int, sl *slab) *slab {
	if sl.onPartial {
		c.partial[sl.node].remove(sl)
		c.partialFree -= len(sl.free)
	}
	old := c.cpuSlab[cpu]
	c.cpuSlab[cpu] = sl
	sl.cpu = cpu
	if old == nil {
		return nil
	}
	return c.deactivateLocked(old)
}

// deactivateLocked takes sl off its CPU: an empty slab is discarded when
// the node already keeps min_partial slabs, a slab with free objects goes
// to the partial list, a full slab is left to be found by its frees.
//
// Preconditions: c.mu is held.
//
// Kernel: mm/slub.c:deactivate_slab().
func (c *Cache) deactivateLocked(sl *slab) *slab {
	sl.cpu = -1
	n := &c.partial[sl.node]
	switch {
	case sl.inuse == 0 && n.n >= c.l.minPartial:
		c.unlinkLocked(sl)
		return sl
	case len(sl.free) > 0:
		n.addTail(sl)
		c.partialFree += len(sl.free)
	}
	return nil
}

// unlinkLocked drops a slab from the cache's counts before its pages go
// back.
//
// Preconditions: c.mu is held; sl is on no list and no CPU.
func (c *Cache) unlinkLocked(sl *slab) {
	sl.dead = true
	c.nrSlabs--
	c.nrObjs -= sl.objects
}

// newSlab allocates and sets up a slab. The gfp mask is cut as new_slab
// and allocate_slab cut it (see slabPageMasks). The new slab is in the
// page map and the node counters, on no list.
//
// Kernel: mm/slub.c:new_slab(), allocate_slab(), account_slab().
func (c *Cache) newSlab(t *memalloc.Task, mask gfp.Mask) (*slab, error) {
	if tag := c.s.slabPageTag; tag != nil {
		// alloc_frozen_pages() is alloc_hooks()-wrapped: what the new
		// slab allocates is charged to alloc_slab_page.
		defer t.RestoreAllocTag(t.SaveAllocTag(tag))
	}
	if mask&gfp.SlabBugMask != 0 {
		mask = c.s.kmallocFixFlags(t, mask)
	}
	if c.args.Ctor && mask&gfp.Zero != 0 {
		c.s.warnOnce(t, "new_slab:ctor", "mm/slub.c:new_slab", "WARN_ON_ONCE(s->ctor && (flags & __GFP_ZERO))")
	}
	first, fallback := c.slabPageMasks(mask)
	oo := c.l.oo
	p, err := c.s.pa.AllocPages(t, first, oo.order)
	if err != nil {
		oo = c.l.min
		if p, err = c.s.pa.AllocPages(t, fallback, oo.order); err != nil {
			return nil, fmt.Errorf("slab %s: new slab of order %d: %w", c.name, oo.order, err)
		}
	}
	sl := &slab{cache: c, pfn: p.PFN(), order: oo.order, objects: oo.objects, cpu: -1,
		free: make([]int32, oo.objects), used: make([]uint64, (oo.objects+63)/64)}
	for i := range sl.free {
		sl.free[i] = int32(oo.objects - 1 - i) // address order, lowest first
	}
	node := c.s.pa.ZoneOf(sl.pfn).Node()
	sl.node = node.ID()
	node.ModState(c.vmstatIdx(), 1<<sl.order)
	c.s.mapPages(sl)
	return sl, nil
}

// slabPageMasks returns the masks of allocate_slab's two page
// allocations for a caller's mask (after kmalloc_fix_flags): new_slab
// keeps GFP_RECLAIM_MASK|GFP_CONSTRAINT_MASK; the cache's allocflags are
// added; the first attempt, at s->oo, adds __GFP_NOWARN|__GFP_NORETRY and
// drops __GFP_NOFAIL, and when it may direct-reclaim and oo is above the
// minimum order it also drops __GFP_RECLAIM and adds __GFP_NOMEMALLOC; the
// fallback, at s->min, uses the flags as they were.
//
// Kernel: mm/slub.c:new_slab(), allocate_slab().
func (c *Cache) slabPageMasks(mask gfp.Mask) (first, fallback gfp.Mask) {
	flags := mask & (gfp.ReclaimMask | gfp.ConstraintMask)
	flags &= gfp.BitsMask // gfp_allowed_mask
	flags |= c.allocflags
	first = (flags | gfp.NoWarn | gfp.NoRetry) &^ gfp.NoFail
	if first&gfp.DirectReclaim != 0 && c.l.oo.order > c.l.min.order {
		first = (first | gfp.NoMemalloc) &^ gfp.Reclaim
	}
	return first, flags
}

// vmstatIdx is cache_vmstat_idx(): the node counter of the slab pages.
//
// Kernel: mm/slab.h:cache_vmstat_idx().
func (c *Cache) vmstatIdx() zone.NodeStat {
	if c.flags&ReclaimAccount != 0 {
		return zone.NodeNrSlabReclaimable
	}
	return zone.NodeNrSlabUnreclaimable
}

// kmallocFixFlags clears the GFP_SLAB_BUG_MASK bits with the kernel's
// warning.
//
// Kernel: mm/slab_common.c:kmalloc_fix_flags().
func (s *Allocator) kmallocFixFlags(t *memalloc.Task, mask gfp.Mask) gfp.Mask {
	invalid := mask & gfp.SlabBugMask
	mask &^= gfp.SlabBugMask
	s.report(t, bug.Warn, "mm/slab_common.c:kmalloc_fix_flags",
		fmt.Sprintf("Unexpected gfp: %#x (%s). Fixing up to gfp: %#x (%s). Fix your code!",
			uint32(invalid), invalid.Names(), uint32(mask), mask.Names()))
	return mask
}

// discardSlabs frees the pages of discarded slabs.
//
// Kernel: mm/slub.c:discard_slab(), free_slab(), __free_slab(), unaccount_slab().
func (c *Cache) discardSlabs(t *memalloc.Task, sls ...*slab) {
	for _, sl := range sls {
		if sl == nil {
			continue
		}
		c.s.unmapPages(sl)
		node := c.s.pa.ZoneOf(sl.pfn).Node()
		node.ModState(c.vmstatIdx(), -(1 << sl.order))
		if err := c.s.pa.FreePages(t, zone.PageOf(sl.pfn), sl.order); err != nil {
			// The page allocator refusing a slab's own pages is a
			// broken invariant of mmsim.
			panic(fmt.Sprintf("mmsim: internal: freeing slab %s pfn %#x order %d: %v (kernel: mm/slub.c:__free_slab)",
				c.name, sl.pfn, sl.order, err))
		}
	}
}

// mapPages enters every page of sl in the page map.
func (s *Allocator) mapPages(sl *slab) {
	s.pmu.Lock()
	for i := zone.PFN(0); i < 1<<sl.order; i++ {
		s.pages[sl.pfn+i] = sl
	}
	s.pmu.Unlock()
}

func (s *Allocator) unmapPages(sl *slab) {
	s.pmu.Lock()
	for i := zone.PFN(0); i < 1<<sl.order; i++ {
		delete(s.pages, sl.pfn+i)
	}
	s.pmu.Unlock()
}

// virtToSlab finds the slab (or large kmalloc) holding addr, or nil.
//
// Kernel: mm/slab.h:virt_to_slab(), include/linux/mm.h:virt_to_page().
func (s *Allocator) virtToSlab(addr uint64) *slab {
	if addr < DirectMap {
		return nil
	}
	pfn := zone.PFN((addr - DirectMap) >> zone.PageShift)
	s.pmu.RLock()
	sl := s.pages[pfn]
	s.pmu.RUnlock()
	return sl
}

// freeObject is slab_free for an object of c found in sl: the checks
// slub_debug would make (the address is an object's start, the object is
// allocated), then __slab_free: back on the freelist; a full slab goes to
// the partial list; an empty slab off the CPUs is discarded when the node
// keeps min_partial slabs already. On a bad free nothing changes and the
// error wraps zone.ErrBug. The hook runs before the object goes back.
//
// Kernel: mm/slub.c:slab_free(), __slab_free(), free_consistency_checks(),
// set_freepointer() (the double-free BUG_ON).
func (c *Cache) freeObject(t *memalloc.Task, sl *slab, addr uint64) error {
	if h := c.s.hooksFor(c); h != nil {
		c.mu.Lock()
		_, err := c.checkObjectLocked(t, sl, addr)
		c.mu.Unlock()
		if err != nil {
			return err
		}
		h.Free(t, c, addr)
	}
	return c.release(t, sl, addr)
}

// release puts the object at addr back on its slab's freelist, returning
// its memcg charge.
//
// Kernel: mm/slub.c:slab_free(), do_slab_free().
func (c *Cache) release(t *memalloc.Task, sl *slab, addr uint64) error {
	c.mu.Lock()
	i, err := c.checkObjectLocked(t, sl, addr)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if th := c.s.tagHooksFor(c); th != nil {
		// Before the object can be allocated again, as
		// alloc_tagging_slab_free_hook runs before do_slab_free: a
		// TagAlloc of its next life must come after this TagFree.
		th.TagFree(t, c, addr, c.l.size)
	}
	charge, charged := c.takeChargeLocked(addr)
	wasFull := len(sl.free) == 0
	sl.clearUsed(i)
	sl.free = append(sl.free, int32(i))
	sl.inuse--
	c.inuse--
	var discard *slab
	n := &c.partial[sl.node]
	switch {
	case sl.cpu >= 0:
	case sl.inuse == 0 && n.n >= c.l.minPartial:
		if sl.onPartial {
			n.remove(sl)
			c.partialFree -= len(sl.free) - 1
		}
		c.unlinkLocked(sl)
		discard = sl
	case wasFull:
		n.addTail(sl)
		c.partialFree++
	default:
		c.partialFree++
	}
	c.mu.Unlock()
	if charged {
		c.s.opts.Memcg.UnchargeObj(charge.owner, charge.size, charge.reclaimable)
	}
	c.discardSlabs(t, discard)
	return nil
}

// checkObjectLocked returns the index of the object at addr in sl, or
// reports a bad free.
//
// Preconditions: c.mu is held.
func (c *Cache) checkObjectLocked(t *memalloc.Task, sl *slab, addr uint64) (int, error) {
	if sl.dead {
		return 0, c.badFree(t, "mm/slub.c:free_consistency_checks",
			fmt.Sprintf("BUG %s (Not tainted): Invalid object pointer 0x%x", c.name, addr))
	}
	off := addr - sl.base()
	i := int(off / uint64(c.l.size))
	if off%uint64(c.l.size) != 0 || i >= sl.objects {
		return 0, c.badFree(t, "mm/slub.c:free_consistency_checks",
			fmt.Sprintf("BUG %s (Not tainted): Invalid object pointer 0x%x", c.name, addr))
	}
	if !sl.isUsed(i) {
		if len(sl.free) > 0 && int(sl.free[len(sl.free)-1]) == i {
			return 0, c.badFree(t, "mm/slub.c:set_freepointer",
				fmt.Sprintf("kernel BUG at mm/slub.c: BUG_ON(object == fp): naive detection of double free or corruption (%s, 0x%x)", c.name, addr))
		}
		return 0, c.badFree(t, "mm/slub.c:free_consistency_checks",
			fmt.Sprintf("BUG %s (Not tainted): Object already free (0x%x)", c.name, addr))
	}
	return i, nil
}

func (c *Cache) badFree(t *memalloc.Task, site, text string) error {
	c.s.report(t, bug.Bug, site, text)
	return fmt.Errorf("%w: %s", zone.ErrBug, text)
}

// Alloc is kmem_cache_alloc(s, mask): an object, traced as
// kmem_cache_alloc (ptr=(nil) on failure). A failure wraps
// zone.ErrNoMemory.
//
// Kernel: mm/slub.c:kmem_cache_alloc_noprof().
func (c *Cache) Alloc(t *memalloc.Task, mask gfp.Mask) (uint64, error) {
	return c.AllocSite(t, "", mask)
}

// AllocSite is Alloc with the call_site the tracepoint prints.
//
// Kernel: mm/slub.c:kmem_cache_alloc_noprof().
func (c *Cache) AllocSite(t *memalloc.Task, site string, mask gfp.Mask) (uint64, error) {
	addr, err := c.alloc(t, mask)
	if err == nil {
		if h := c.s.hooksFor(c); h != nil {
			h.PostAlloc(t, c, addr, c.l.objectSize, mask)
		}
		if th := c.s.tagHooksFor(c); th != nil {
			th.TagAlloc(t, c, addr, c.l.size)
		}
	}
	if c.s.pa.Tracing() {
		c.s.pa.Emit(t, zone.Event{Kind: zone.EvKmemCacheAlloc, CallSite: site, Ptr: addr, Name: c.name,
			BytesReq: int64(c.l.objectSize), BytesAlloc: int64(c.l.size), Mask: mask, Node: -1,
			Accounted: mask&gfp.Account != 0 || c.flags&Account != 0})
	}
	return addr, err
}

// Free is kmem_cache_free(s, addr). An address outside any slab, or in
// another cache's slab, WARNs once as the kernel does (which then leaks
// the object); an address that is not an allocated object's start is a
// BUG. Either way the error wraps zone.ErrBug and nothing changes.
//
// Kernel: mm/slub.c:kmem_cache_free(), warn_free_bad_obj().
func (c *Cache) Free(t *memalloc.Task, addr uint64) error { return c.FreeSite(t, "", addr) }

// FreeSite is Free with the call_site the tracepoint prints.
//
// Kernel: mm/slub.c:kmem_cache_free().
func (c *Cache) FreeSite(t *memalloc.Task, site string, addr uint64) error {
	sl := c.s.virtToSlab(addr)
	if sl == nil || sl.cache == nil {
		text := fmt.Sprintf("kmem_cache_free(%s, 0x%x): object is not in a slab page", c.name, addr)
		c.s.warnOnce(t, "warn_free_bad_obj:noslab", "mm/slub.c:warn_free_bad_obj", text)
		return fmt.Errorf("%w: %s", zone.ErrBug, text)
	}
	if sl.cache != c {
		text := fmt.Sprintf("kmem_cache_free(%s, 0x%x): object belongs to different cache %s", c.name, addr, sl.cache.name)
		c.s.warnOnce(t, "warn_free_bad_obj:cache", "mm/slub.c:warn_free_bad_obj", text)
		return fmt.Errorf("%w: %s", zone.ErrBug, text)
	}
	if c.s.pa.Tracing() {
		c.s.pa.Emit(t, zone.Event{Kind: zone.EvKmemCacheFree, CallSite: site, Ptr: addr, Name: c.name})
	}
	return c.freeObject(t, sl, addr)
}

// Shrink is kmem_cache_shrink: every CPU slab is deactivated and every
// empty slab on the partial lists is freed, whatever min_partial says. It
// returns the number of pages freed.
//
// Kernel: mm/slub.c:__kmem_cache_shrink(), __kmem_cache_do_shrink(),
// flush_all_cpus_locked().
func (c *Cache) Shrink(t *memalloc.Task) int {
	var discard []*slab
	c.mu.Lock()
	for cpu, sl := range c.cpuSlab {
		if sl != nil {
			c.cpuSlab[cpu] = nil
			if d := c.deactivateLocked(sl); d != nil {
				discard = append(discard, d)
			}
		}
	}
	for i := range c.partial {
		n := &c.partial[i]
		for sl := n.head; sl != nil; {
			next := sl.next
			if sl.inuse == 0 {
				n.remove(sl)
				c.partialFree -= len(sl.free)
				c.unlinkLocked(sl)
				discard = append(discard, sl)
			}
			sl = next
		}
	}
	c.mu.Unlock()
	pages := 0
	for _, sl := range discard {
		pages += 1 << sl.order
	}
	c.discardSlabs(t, discard...)
	return pages
}
