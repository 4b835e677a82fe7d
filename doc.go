// Package mmsim simulates the Linux kernel's memory allocators in userspace,
// faithfully enough that kernel and filesystem developers can run the
// arguments of the mm mailing list instead of having them: GFP flags with the
// kernel's values and printed form, a per-task context carrying
// PF_MEMALLOC_NOFS/NOIO scopes (and the reverted PF_MEMALLOC_NORECLAIM, as a
// labelled 6.9–6.11 what-if), a buddy/zone page allocator with the
// real slow path, reclaim, the OOM killer, slab, vmalloc and kvmalloc, and
// mappings, all behind one Go API. The reference kernel is Linux 7.2.
//
// This package is the facade: a System built from a Config, wiring the layers
// below it, and the one API users call. The layers, bottom up:
//
//	gfp       gfp_t: flag values, composites, masks, gfp_zone, gfp_migratetype,
//	          gfp_nested_mask, the kernel's printed form and its parser
//	memalloc  the task context: PF_MEMALLOC* scopes, memalloc_flags_save/restore,
//	          current_gfp_context
//	zone      the buddy/zone page allocator and its slow path
//	reclaim   LRU, shrinkers, kswapd, direct reclaim, compaction
//	oom       oom_badness, victim selection, the kill and the reaper
//	vmalloc   vmap areas, vmalloc, kvmalloc
//
// gfp and memalloc are complete; the System and the layers above them arrive
// with the issues that build them (see ARCHITECTURE.md).
//
// Dependencies: the standard library and github.com/stretchr/testify (tests
// only); golang.org/x/sync is allowed and will come with the daemons.
package mmsim
