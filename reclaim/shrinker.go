package reclaim

import (
	"errors"
	"sync"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// ShrinkControl is what a shrinker is asked: the reclaim's gfp mask and
// node, and how many objects to scan.
//
// Kernel: include/linux/shrinker.h:struct shrink_control.
type ShrinkControl struct {
	GFPMask gfp.Mask
	NID     int
	// NrToScan is how many objects Scan should look at; Scan may set
	// NrScanned to the number it did look at.
	NrToScan  uint64
	NrScanned uint64
	// Task is the reclaiming task, for the frees a Scan makes.
	Task *memalloc.Task
	// ReclaimedPages is where Scan adds the pages its frees gave back
	// (current->reclaim_state): only pages count as reclaim's progress,
	// not objects.
	ReclaimedPages int64
}

// Special results of Count and Scan.
//
// Kernel: include/linux/shrinker.h.
const (
	ShrinkStop  = ^uint64(0)     // SHRINK_STOP: Scan cannot make progress now
	ShrinkEmpty = ^uint64(0) - 1 // SHRINK_EMPTY: Count found no objects at all
)

// Shrinker is a cache reclaim can ask to give memory back.
//
// Kernel: include/linux/shrinker.h:struct shrinker.
type Shrinker interface {
	// Count returns how many objects could be freed (count_objects).
	Count(sc *ShrinkControl) uint64
	// Scan frees up to sc.NrToScan objects and returns how many it freed,
	// or ShrinkStop (scan_objects).
	Scan(sc *ShrinkControl) uint64
	// Seeks is the cost of recreating an object (DEFAULT_SEEKS = 2); 0
	// means the cache is cheap to rebuild.
	Seeks() int
}

// DefaultSeeks is DEFAULT_SEEKS.
const DefaultSeeks = 2

// shrinkBatch is SHRINK_BATCH.
const shrinkBatch = 128

// shrinkerInfo is a registered shrinker and its deferred work.
type shrinkerInfo struct {
	s        Shrinker
	deferred int64 // nr_deferred
}

// shrinkSlab asks every shrinker to scan its share at the priority and
// returns the pages their frees gave back.
//
// Kernel: mm/shrinker.c:shrink_slab(), do_shrink_slab(),
// mm/vmscan.c:flush_reclaim_state().
func (r *Reclaimer) shrinkSlab(rsc *scanControl, nid int) int64 {
	r.shrinkMu.Lock()
	list := append([]*shrinkerInfo(nil), r.shrinkers...)
	r.shrinkMu.Unlock()
	var pages int64
	for _, si := range list {
		sc := &ShrinkControl{GFPMask: rsc.mask, NID: nid, Task: rsc.t}
		r.doShrinkSlab(rsc, sc, si, rsc.priority)
		pages += sc.ReclaimedPages
	}
	return pages
}

func (r *Reclaimer) doShrinkSlab(rsc *scanControl, sc *ShrinkControl, si *shrinkerInfo, priority int) uint64 {
	c := si.s.Count(sc)
	if c == 0 || c == ShrinkEmpty {
		return 0
	}
	freeable := int64(c)
	r.shrinkMu.Lock()
	nr := si.deferred
	si.deferred = 0
	r.shrinkMu.Unlock()
	var delta int64
	if seeks := si.s.Seeks(); seeks > 0 {
		delta = (freeable >> priority) * 4 / int64(seeks)
	} else {
		delta = freeable / 2
	}
	total := min(nr>>priority+delta, 2*freeable)
	var freed uint64
	var scanned int64
	batch := int64(shrinkBatch)
	if b, ok := si.s.(interface{ Batch() int }); ok && b.Batch() > 0 {
		batch = int64(b.Batch())
	}
	for total >= batch || total >= freeable {
		sc.NrToScan = uint64(min(batch, total))
		sc.NrScanned = sc.NrToScan
		ret := si.s.Scan(sc)
		if ret == ShrinkStop {
			break
		}
		freed += ret
		r.alloc.CountEvent(zone.VMSlabsScanned, int64(sc.NrScanned))
		r.charge(rsc, int64(ret)*r.costs.ShrinkObject)
		total -= int64(sc.NrScanned)
		scanned += int64(sc.NrScanned)
	}
	next := min(max(nr+delta-scanned, 0), 2*freeable)
	r.shrinkMu.Lock()
	si.deferred += next
	r.shrinkMu.Unlock()
	return freed
}

// RegisterShrinker adds a shrinker.
//
// Kernel: mm/shrinker.c:shrinker_register().
func (r *Reclaimer) RegisterShrinker(s Shrinker) {
	r.shrinkMu.Lock()
	r.shrinkers = append(r.shrinkers, &shrinkerInfo{s: s})
	r.shrinkMu.Unlock()
}

// SuperCache models a filesystem's dentry and inode caches and their
// superblock shrinker: objects packed objsPerPage to a slab page
// (allocated GFP_KERNEL|__GFP_RECLAIMABLE, counted as reclaimable slab).
// Scan refuses with SHRINK_STOP when the reclaim's mask lacks __GFP_FS, as
// super_cache_scan does: pruning dentries and inodes may recurse into the
// filesystem.
//
// Kernel: fs/super.c:super_cache_count(), super_cache_scan().
type SuperCache struct {
	alloc       *zone.Allocator
	objsPerPage int

	mu      sync.Mutex
	pages   []zone.Page
	objects int // objects in pages; the last page may be partly used
}

// NewSuperCache returns an empty cache of objsPerPage objects a page (a
// dentry is 192 bytes, 21 a slab page: the dentry line of the live
// machine's /proc/slabinfo in ../shared/traces/procfs/rest_end).
func NewSuperCache(a *zone.Allocator, objsPerPage int) *SuperCache {
	return &SuperCache{alloc: a, objsPerPage: max(objsPerPage, 1)}
}

// Grow adds n objects for t (a lookup filling the caches), allocating the
// slab pages they need. The page is allocated without the cache's lock
// held (the allocation may reclaim, and reclaim may call Scan); a page
// another goroutine added meanwhile makes it surplus, and it goes back.
func (c *SuperCache) Grow(t *memalloc.Task, n int) error {
	for i := 0; i < n; i++ {
		if c.addToPartial() {
			continue
		}
		p, err := c.alloc.AllocPages(t, gfp.Kernel|gfp.Reclaimable, 0)
		if err != nil {
			return err
		}
		c.mu.Lock()
		if c.objects < len(c.pages)*c.objsPerPage {
			c.objects++
			c.mu.Unlock()
			if err := c.alloc.FreePages(t, p, 0); err != nil {
				return err
			}
			continue
		}
		c.pages = append(c.pages, p)
		c.objects++
		c.mu.Unlock()
		c.alloc.ZoneOf(p.PFN()).Node().ModState(zone.NodeNrSlabReclaimable, 1)
	}
	return nil
}

// addToPartial adds an object to a page with room, if there is one.
func (c *SuperCache) addToPartial() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.objects < len(c.pages)*c.objsPerPage {
		c.objects++
		return true
	}
	return false
}

// Objects returns the objects cached.
func (c *SuperCache) Objects() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.objects
}

// Seeks returns DEFAULT_SEEKS.
func (c *SuperCache) Seeks() int { return DefaultSeeks }

// Batch returns the superblock shrinker's batch: 1024 objects a call.
//
// Kernel: fs/super.c:alloc_super() (s_shrink->batch = 1024).
func (c *SuperCache) Batch() int { return 1024 }

// Count returns the objects in the caches. It does not look at the mask.
func (c *SuperCache) Count(sc *ShrinkControl) uint64 {
	n := c.Objects()
	if n == 0 {
		return ShrinkEmpty
	}
	return uint64(n)
}

// Scan frees up to sc.NrToScan objects, and the slab pages that empties;
// without __GFP_FS it returns SHRINK_STOP.
func (c *SuperCache) Scan(sc *ShrinkControl) uint64 {
	if sc.GFPMask&gfp.FS == 0 {
		return ShrinkStop
	}
	c.mu.Lock()
	n := min(int(sc.NrToScan), c.objects)
	c.objects -= n
	keep := (c.objects + c.objsPerPage - 1) / c.objsPerPage
	free := append([]zone.Page(nil), c.pages[keep:]...)
	c.pages = c.pages[:keep]
	c.mu.Unlock()
	var errs []error
	for _, p := range free {
		c.alloc.ZoneOf(p.PFN()).Node().ModState(zone.NodeNrSlabReclaimable, -1)
		errs = append(errs, c.alloc.FreePages(sc.Task, p, 0))
	}
	sc.ReclaimedPages += int64(len(free))
	if err := errors.Join(errs...); err != nil {
		panic("mmsim: internal: SuperCache freed a page it did not own: " + err.Error())
	}
	return uint64(n)
}
