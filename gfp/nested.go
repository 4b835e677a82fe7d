package gfp

// nestedKeep is what a nested allocation keeps of the outer mask: the reclaim
// and reserve bits of GFP_KERNEL and GFP_ATOMIC, and __GFP_NOLOCKDEP.
// nestedAdd is what it always adds.
//
// Kernel: include/linux/gfp.h:gfp_nested_mask().
const (
	nestedKeep = Kernel | Atomic | NoLockdep
	nestedAdd  = NoRetry | NoMemalloc | NoWarn
)

// Nested returns the mask for an allocation made while allocating with m,
// such as kmemleak's object tracking, a stack depot pool or page_owner's
// stack record. It keeps the caller's reclaim constraints (IO, FS, the
// reclaim bits, HIGH, NOLOCKDEP) and adds NORETRY, NOMEMALLOC and NOWARN, so
// the nested allocation gives up early, never dips into the emergency
// reserves and never warns. Everything else is dropped: zone and mobility
// bits, ZERO, COMP, ACCOUNT, NOFAIL, RETRY_MAYFAIL, MEMALLOC, HARDWALL,
// THISNODE, WRITE.
//
// The task's scope is not applied here: the nested allocation meets it at the
// page allocator, as every allocation does.
//
// Kernel: include/linux/gfp.h:gfp_nested_mask().
func (m Mask) Nested() Mask { return m&nestedKeep | nestedAdd }
