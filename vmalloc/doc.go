// Package vmalloc is the vmalloc layer of the simulated machine: the vmap
// area allocator over [Start, End), vmalloc with its gfp filtering and its
// page-table scopes, vfree with lazy purging, kvmalloc with its
// kmalloc-first attempt, and /proc/vmallocinfo. It follows Linux 7.2.
//
// Kernel → Go:
//
//	VMALLOC_START, VMALLOC_END              Start, End
//	is_vmalloc_addr()                       IsVmallocAddr
//	__vmalloc(), vmalloc_fix_flags()        (*Allocator).Vmalloc, VmallocSite
//	__vmalloc_node()                        (*Allocator).VmallocNode
//	__vmalloc_node_range_noprof()           nodeRange
//	__get_vm_area_node()                    getVMAreaNode
//	alloc_vmap_area(), __alloc_vmap_area()  allocVmapArea, vmapSpace.allocLocked
//	__vmalloc_area_node()                   areaNode
//	vm_area_alloc_pages()                   allocAreaPages
//	memalloc_apply_gfp_scope()              applyGFPScope
//	__vmap_pages_range(), __pte_alloc_kernel()  vmapPagesRange, populate
//	GFP_PGTABLE_KERNEL                      PgtableKernel
//	vfree(), remove_vm_area()               (*Allocator).Vfree, release
//	free_vmap_area_noflush()                freeVmapAreaNoflush
//	lazy_max_pages()                        lazyMaxPages
//	__purge_vmap_area_lazy()                purgeVmapAreaLazy
//	__kvmalloc_node_noprof() (mm/slub.c)    (*Allocator).Kvmalloc, KvmallocSite
//	kmalloc_gfp_adjust()                    KmallocGFPAdjust
//	kvfree()                                (*Allocator).Kvfree
//	vmalloc_info_show()                     (*Allocator).WriteVmallocinfo
//
// The slab allocator is reached through the Slab interface (vmalloc sits
// below internal/slab); the page allocator is zone's.
//
// Lock order:
//
//	purgeMu (vmap_purge_lock)
//	  mu (free_vmap_area_lock, the vmap nodes' busy and lazy locks,
//	      init_mm's page_table_lock, in one)
//
// mu is never held across a page or slab allocation, a free, a report or a
// tracepoint, so any of them may enter reclaim or call back.
//
// Differences from the kernel, all documented where they are made:
//   - huge mappings are not modelled: x86_64 does not select
//     CONFIG_HAVE_ARCH_HUGE_VMALLOC, so VM_ALLOW_HUGE_VMAP is inert there too;
//   - the per-node vmap_area pools and vmap_area_cachep are not modelled:
//     every area is carved first-fit at the lowest address, so addresses
//     differ from a real trace's (which reuses pooled areas);
//   - the lazy purge runs at once on the freeing task, not on
//     drain_vmap_work, and the failure cleanup at once, not on a work item;
//   - high-order data blocks are kept whole (zone exports no split_page);
//   - NOFAIL loops stop with zone.ErrDeadlock after Options.StallLimit of
//     one-tick sleeps instead of retrying for ever;
//   - the vmap_block (vm_map_ram) allocator, vmap/ioremap areas and
//     vrealloc are not modelled.
//
// Kernel: mm/vmalloc.c, mm/slub.c (__kvmalloc_node_noprof).
package vmalloc
