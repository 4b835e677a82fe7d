// Package slab models SLUB, the Linux 7.2 slab allocator, on top of the page
// allocator (zone.Allocator): kmem_cache_create, kmem_cache_alloc/free,
// kmalloc/kfree/ksize with the kmalloc caches, kmem_cache_shrink, the slab
// tracepoints and /proc/slabinfo.
//
// # What is modelled
//
//   - Cache layout as calculate_sizes and calculate_order compute it without
//     debugging: the size rounded to a word, the free pointer moved after the
//     object for SLAB_TYPESAFE_BY_RCU and constructor caches (unless a
//     freeptr offset is given), the alignment of calculate_alignment
//     (SLAB_HWCACHE_ALIGN to 64 bytes), min_objects = 4*(fls(nr_cpus)+1),
//     slub_max_order = PAGE_ALLOC_COSTLY_ORDER, s->oo and s->min, and
//     min_partial. The tests check a dozen real caches and all 52 kmalloc
//     caches against a real 2-CPU /proc/slabinfo.
//   - New slabs as new_slab and allocate_slab get them: GFP_SLAB_BUG_MASK bits
//     fixed by kmalloc_fix_flags (with its warning), the mask cut to
//     GFP_RECLAIM_MASK|GFP_CONSTRAINT_MASK, s->allocflags added (__GFP_COMP,
//     GFP_DMA, GFP_DMA32, __GFP_RECLAIMABLE), a first attempt at s->oo with
//     __GFP_NOWARN|__GFP_NORETRY and without __GFP_NOFAIL (and, if it may
//     direct-reclaim above the minimum order, without __GFP_RECLAIM and with
//     __GFP_NOMEMALLOC), then s->min with the flags as they were. The tests
//     compare the resulting mm_page_alloc lines with real captures.
//   - Slab pages counted in NR_SLAB_RECLAIMABLE / NR_SLAB_UNRECLAIMABLE of the
//     page's node (in pages, as zone keeps them), as large kmallocs are in
//     NR_SLAB_UNRECLAIMABLE.
//   - kmalloc: ZERO_SIZE_PTR for 0 (untraced); kmalloc_index (kmalloc-96 and
//     kmalloc-192 included) and kmalloc_type (dma-kmalloc-*, kmalloc-rcl-*,
//     kmalloc-cg-*, in that priority); above KMALLOC_MAX_CACHE_SIZE (8 KiB) a
//     __GFP_COMP block of get_order(size), traced twice as 7.2's
//     __do_kmalloc_node and __kmalloc_large_node_noprof both trace it (the
//     inner call_site is printed "__kmalloc_noprof", without an offset);
//     above KMALLOC_MAX_SIZE the page allocator refuses the order.
//   - The four slab tracepoints with the kernel's fields: the caller's mask,
//     bytes_alloc = s->size, node -1, accounted (kmem_cache_alloc: SLAB_ACCOUNT
//     or __GFP_ACCOUNT; kmalloc: __GFP_ACCOUNT), kfree traced before its NULL
//     check, kmem_cache_free after warn_free_bad_obj's check. Event.Format(31)
//     prints them byte for byte as the slab_mix capture does.
//   - Bad frees leave everything as it was and return an error wrapping
//     zone.ErrBug, with a report in the kernel's words: slub_debug's
//     "Invalid object pointer" and "Object already free", set_freepointer's
//     double-free BUG_ON for the freelist head, warn_free_bad_obj's WARN_ONCE,
//     free_large_kmalloc's "Not a kmalloc allocation".
//   - /proc/slabinfo in cache_show's layout, newest cache first.
//
// # Deliberate simplifications
//
//   - 7.2 caches objects in per-CPU sheaves and has no per-CPU slab any more;
//     mmsim models the classic SLUB shape: one active slab per CPU plus each
//     node's partial list (local node only, no get_any_partial, no per-CPU
//     partial lists). deactivate_slab and __slab_free's empty-slab rule
//     (discard when nr_partial >= min_partial) decide which slabs go back.
//     slabinfo's active_objs is get_slabinfo's num_objs less the free objects
//     of the partial slabs, so an active slab's free objects count as active
//     (as sheaf-cached objects do in 7.2); Cache.ActiveObjects is exact.
//   - No slub_debug (debug flags are refused), no KASAN, no KFENCE, no
//     CONFIG_SLAB_FREELIST_RANDOM (objects are handed out in address order,
//     freed ones LIFO), no freelist hardening: bad frees are detected
//     exactly instead.
//   - No cache merging (__kmem_cache_alias): every CreateCache makes its own
//     cache, as with slab_nomerge. The real slabinfo lacks merged caches.
//   - No kmem_cache and kmem_cache_node boot caches, no kmalloc_buckets, no
//     memcg charging (only the accounted flag), no RCU delay for
//     SLAB_TYPESAFE_BY_RCU slabs.
//   - CONFIG_KMALLOC_PARTITION_CACHES (formerly RANDOM_KMALLOC_CACHES) is
//     off: the captured machine's slabinfo has no per-partition copies, and
//     a seeded hash of the call site would make replays depend on addresses.
//     KMALLOC_NO_OBJ_EXT aliases KMALLOC_NORMAL (need_kmalloc_no_objext is
//     false without memory allocation profiling), so no kmalloc-no-objext-*.
//   - The SLAB_* bit values follow the config in flags.go (KFENCE and
//     FAILSLAB on, DEBUG_OBJECTS and KASAN_GENERIC off).
//
// # Kernel map
//
//	kmem_cache_create            Allocator.CreateCache, CreateCacheArgs
//	kmem_cache_alloc / _free     Cache.Alloc / Free (AllocSite, FreeSite)
//	kmem_cache_shrink            Cache.Shrink
//	should_failslab              Allocator.SetShouldFailslab (the root wires failslab)
//	/sys/kernel/slab/*/failslab  Cache.SetFailslab (SLAB_FAILSLAB)
//	alloc_tagging_slab_*_hook    Allocator.SetTagHooks, TagHooks
//	alloc_slab_page's alloc_tag  Allocator.SetSlabPageTag
//	kmalloc / kfree / ksize      Allocator.Kmalloc, KmallocSite, Kfree, KfreeSite, Ksize
//	kmalloc_slab                 Allocator.KmallocCache
//	kmalloc_size_roundup         Allocator.KmallocSizeRoundup
//	calculate_sizes/_order       calculateSizes, calculateOrder (layout.go)
//	new_slab / allocate_slab     Cache.newSlab, slabPageMasks
//	__slab_free, deactivate_slab Cache.freeObject, deactivateLocked
//	slabinfo_show                Allocator.WriteSlabinfo
//	struct slab                  slab (also a large kmalloc block, cache nil)
//
// # Lock order
//
//	Allocator.mu (slab_mutex: the cache list)
//	  Cache.mu (the per-CPU slabs and the node partial lists)
//	    Allocator.pmu (the pfn → slab map)
//	    Allocator.objcgMu (the objects' memcg charge records)
//
// Cache.mu is never held across a page allocation or free (which may enter
// reclaim), a hook (which may allocate from another cache) or a tracepoint,
// save TagHooks.TagFree, which takes only the profiler's own lock (a free
// drops the object's tag and charge record before the object is free, so
// that its next allocation's come after); the memcg charge itself is
// returned after Cache.mu is dropped;
// Allocator.mu is not held while caches allocate. zone's locks are taken
// only by the page-allocator calls, with no slab lock held.
package slab
