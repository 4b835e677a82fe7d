// Package debugalloc models the debugging facilities that allocate memory
// while another allocation is in progress: kmemleak's object tracking, the
// stack depot's pools, and page_owner's stack records. They are the nested
// allocations gfp_nested_mask() was written for (SPEC.md §5): each one
// derives its mask from the outer request's, keeps the caller's reclaim
// constraints (__GFP_IO, __GFP_FS, the reclaim bits, __GFP_HIGH,
// __GFP_NOLOCKDEP) and adds __GFP_NORETRY|__GFP_NOMEMALLOC|__GFP_NOWARN, so
// a debug allocation gives up early, never dips into the emergency reserves
// and never warns.
//
// The stack depot and page_owner have a what-if switch (PreFix) that gives
// them the masks they used before the fix, both
// ((mask &^ GFP_ZONEMASK) & (GFP_ATOMIC|GFP_KERNEL)) | __GFP_NOWARN: the
// filter dropped __GFP_NOLOCKDEP (a lockdep false positive through
// fs_reclaim) and never added __GFP_NOMEMALLOC or __GFP_NORETRY (a
// PF_MEMALLOC or __GFP_MEMALLOC caller's debug allocations drained the
// reserves). kmemleak always used the nested mask (it is where the helper
// was lifted from), so it has no such switch.
//
// The pieces reach the allocators through small interfaces, so that the
// package sits below the root: the page allocator for stack depot pools,
// a slab cache for kmemleak's objects, kmalloc for page_owner's list
// nodes.
//
// Deliberate simplifications: a stack is the Go call stack of the
// simulation (runtime.Callers), which identifies the allocation site as the
// kernel's unwinder does; kmemleak tracks objects but does not scan for
// leaks; stack records are never evicted (page_owner does not use
// STACK_DEPOT_FLAG_GET).
//
// Kernel: mm/kmemleak.c, lib/stackdepot.c, mm/page_owner.c.
package debugalloc
