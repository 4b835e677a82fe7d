// Package vmalloc will hold the vmap area allocator, vmalloc with its gfp
// filtering and page-table scopes, and kvmalloc with its kmalloc-first
// fallback.
//
// Nothing is implemented yet: this package is filled in by the slab/vmalloc
// issue.
//
// Kernel: mm/vmalloc.c, mm/slub.c (__kvmalloc_node_noprof).
package vmalloc
