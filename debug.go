package mmsim

import (
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/debugalloc"
	"github.com/mmsim/mmsim/internal/slab"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// allocHooks is what the System hangs on every page allocation and free
// when a debug facility or lockdep is on: lockdep's fs_reclaim
// annotation, fail_page_alloc, page_owner, allocation profiling. It is
// plugged in only then, so that a machine without them keeps the
// allocator's hook-free fast path.
//
// Kernel: mm/page_alloc.c:prepare_alloc_pages() (might_alloc,
// should_fail_alloc_page), post_alloc_hook() (set_page_owner,
// pgalloc_tag_add), free_pages_prepare() (pgalloc_tag_sub,
// reset_page_owner).
type allocHooks struct{ s *System }

var (
	_ zone.Hooks          = allocHooks{}
	_ zone.FSReclaimHooks = allocHooks{}
	_ slab.Hooks          = leakHooks{}
	_ slab.TagHooks       = (*allocProfiler)(nil)
)

func (h allocHooks) MightAlloc(t *memalloc.Task, mask gfp.Mask) {
	if h.s.cfg.Lockdep {
		h.s.lockdep.MightAlloc(t, mask)
	}
}

func (h allocHooks) ShouldFailAlloc(t *memalloc.Task, mask gfp.Mask, order zone.Order) bool {
	if f := h.s.inject; f != nil {
		return f.shouldFailAllocPage(t, mask, order)
	}
	return false
}

func (h allocHooks) PostAlloc(t *memalloc.Task, p zone.Page, order zone.Order, mask gfp.Mask) {
	if po := h.s.pageOwner; po != nil {
		po.SetPageOwner(t, p, order, mask)
	}
	if pr := h.s.prof; pr != nil {
		pr.tagPages(t, p.PFN(), order)
	}
}

func (h allocHooks) FreePrepare(_ *memalloc.Task, p zone.Page, _ zone.Order) {
	if pr := h.s.prof; pr != nil {
		pr.untagPages(p.PFN())
	}
	if po := h.s.pageOwner; po != nil {
		po.ResetPageOwner(p)
	}
}

func (h allocHooks) FSReclaimAcquire(t *memalloc.Task) {
	if h.s.cfg.Lockdep {
		h.s.lockdep.FSReclaimAcquire(t)
	}
}

func (h allocHooks) FSReclaimRelease(t *memalloc.Task) {
	if h.s.cfg.Lockdep {
		h.s.lockdep.FSReclaimRelease(t)
	}
}

// leakHooks are kmemleak's slab hooks: every object of a cache without
// SLAB_NOLEAKTRACE is tracked.
//
// Kernel: mm/slub.c:slab_post_alloc_hook(), slab_free_hook().
type leakHooks struct{ k *debugalloc.Kmemleak }

func (h leakHooks) PostAlloc(t *memalloc.Task, _ *slab.Cache, addr uint64, size int, mask gfp.Mask) {
	h.k.Alloc(t, addr, size, mask)
}

func (h leakHooks) Free(t *memalloc.Task, _ *slab.Cache, addr uint64) { h.k.Free(t, addr) }

// setupDebug builds the debug allocators Config.Debug asks for, fault
// injection and allocation profiling, and plugs the hooks in.
//
// Kernel: mm/kmemleak.c:kmemleak_init(), mm/page_owner.c:init_page_owner(),
// mm/fail_page_alloc.c, mm/failslab.c, lib/alloc_tag.c:alloc_tag_init().
func (s *System) setupDebug() error {
	d := s.cfg.Debug
	if d.PageOwner || d.Kmemleak {
		// Both select CONFIG_STACKDEPOT.
		s.depot = debugalloc.NewStackDepot(s.alloc, d.PreFix)
	}
	if d.PageOwner {
		s.pageOwner = debugalloc.NewPageOwner(s.depot, s.slab.Kmalloc, d.PreFix)
	}
	if d.Kmemleak {
		c, err := s.slab.CreateCache("kmemleak_object", debugalloc.ObjectSize, 0, slab.NoLeakTrace)
		if err != nil {
			return err
		}
		s.leak = debugalloc.NewKmemleak(c, d.KmemleakPoolSize, s.report, s.Now)
		s.leak.SetDepot(s.depot)
		s.slab.SetHooks(leakHooks{s.leak})
	}
	if s.cfg.FaultInjection {
		s.inject = newFaultInject(s)
		s.slab.SetShouldFailslab(s.inject.shouldFailslab)
	}
	if s.cfg.AllocProfiling {
		s.prof = newAllocProfiler(s.endPFN())
		s.slab.SetTagHooks(s.prof)
		s.slab.SetSlabPageTag(s.prof.slabPage)
	}
	if s.cfg.Lockdep || d.PageOwner || s.inject != nil || s.prof != nil {
		s.alloc.SetHooks(allocHooks{s})
	}
	return nil
}

// endPFN returns the pfn above the machine's last zone.
func (s *System) endPFN() zone.PFN {
	var end zone.PFN
	for _, n := range s.alloc.Nodes() {
		for zt := range gfp.MaxNrZones {
			if z := n.Zone(gfp.ZoneType(zt)); z != nil {
				end = max(end, z.EndPFN())
			}
		}
	}
	return end
}

// DebugStats is what the debug allocators did.
type DebugStats struct {
	StackDepot debugalloc.DepotStats
	PageOwner  debugalloc.OwnerStats
	Kmemleak   debugalloc.LeakStats
}

// DebugStats returns the counters of the debug allocators Config.Debug
// turned on; the others are zero.
func (s *System) DebugStats() DebugStats {
	var st DebugStats
	if s.depot != nil {
		st.StackDepot = s.depot.Stats()
	}
	if s.pageOwner != nil {
		st.PageOwner = s.pageOwner.Stats()
	}
	if s.leak != nil {
		st.Kmemleak = s.leak.Stats()
	}
	return st
}
