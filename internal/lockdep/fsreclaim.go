package lockdep

import (
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

// needReclaim reports whether a request of t with mask takes the
// fs_reclaim map: it may reclaim directly, t is not already reclaiming
// (PF_MEMALLOC), it does not opt out with __GFP_NOLOCKDEP, and it may enter
// the filesystem. The same rule as zone's NeedReclaim, which lockdep may
// not import.
//
// Kernel: mm/page_alloc.c:__need_reclaim(), fs_reclaim_acquire().
func needReclaim(t *memalloc.Task, mask gfp.Mask) bool {
	return mask&gfp.DirectReclaim != 0 && t.Flags()&memalloc.PFMemalloc == 0 &&
		mask&gfp.NoLockdep == 0 && mask&gfp.FS != 0
}

// MightAlloc is the annotation at every allocation's entry: if the request
// may enter filesystem reclaim (see needReclaim), t takes and releases the
// fs_reclaim map, which records "every lock t holds is taken before
// reclaim" (held→fs_reclaim). t's scope is applied to mask first, as
// fs_reclaim_acquire applies current_gfp_context — so a NOFS scope
// silences it whether or not the caller applied it. Only t's goroutine may
// call it.
//
// Kernel: include/linux/sched/mm.h:might_alloc(),
// mm/page_alloc.c:fs_reclaim_acquire(), fs_reclaim_release().
func (c *Checker) MightAlloc(t *memalloc.Task, mask gfp.Mask) {
	if c == nil || !needReclaim(t, t.GFPContext(mask)) {
		return
	}
	c.fsReclaim.Acquire(t)
	_ = c.fsReclaim.Release(t) // just acquired: cannot be unbalanced
}

// FSReclaimAcquire takes the fs_reclaim map for t, unconditionally: held
// across direct reclaim of a request that may enter the filesystem and
// across kswapd's balancing, it makes every lock taken meanwhile (by a
// shrinker) depend on fs_reclaim.
//
// Kernel: mm/page_alloc.c:__fs_reclaim_acquire().
func (c *Checker) FSReclaimAcquire(t *memalloc.Task) {
	if c == nil {
		return
	}
	c.fsReclaim.Acquire(t)
}

// FSReclaimRelease releases what FSReclaimAcquire took; a release without
// the acquire is reported as a bad unlock balance.
//
// Kernel: mm/page_alloc.c:__fs_reclaim_release().
func (c *Checker) FSReclaimRelease(t *memalloc.Task) {
	if c == nil {
		return
	}
	_ = c.fsReclaim.Release(t) // reported; the zone hook has no error to return
}

// FSReclaim returns the fs_reclaim map, for callers that take it by hand.
//
// Kernel: mm/page_alloc.c:__fs_reclaim_map.
func (c *Checker) FSReclaim() *Map {
	if c == nil {
		return nil
	}
	return c.fsReclaim
}
