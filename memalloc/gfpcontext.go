package memalloc

import (
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/invariants"
)

// scopeFlags are the PF flags that change the gfp context in 7.2, and
// revertedFlags the two that changed it from v6.9 (likely) to v6.12-rc3.
const (
	scopeFlags    = PFMemallocNoIO | PFMemallocNoFS | PFMemallocPin
	revertedFlags = PFMemallocNoReclaim | PFMemallocNoWarn
)

// GFPContext returns the mask an allocation of the task really uses: m with
// the task's scopes applied. The allocator applies it once at its entry, and
// reclaim's gfp_mask and the lockdep fs_reclaim annotation see the result.
//
// With only upstream flags set it is exactly 7.2's current_gfp_context(): it
// only ever removes bits — PF_MEMALLOC_NOIO clears __GFP_IO and __GFP_FS
// (taking precedence over NOFS), PF_MEMALLOC_NOFS clears __GFP_FS,
// PF_MEMALLOC_PIN clears __GFP_MOVABLE — and PF_MEMALLOC, PF_KSWAPD and
// PF_EXITING change nothing.
//
// Differences: when the task has the reverted PF_MEMALLOC_NORECLAIM or
// PF_MEMALLOC_NOWARN set, GFPContext behaves exactly as v6.9–v6.11 did. That is
// a what-if for the bcachefs debate, not upstream behaviour: NORECLAIM clears
// __GFP_DIRECT_RECLAIM, and because the kernel tested it first in an else-if
// chain, a NOIO or NOFS scope under it is ignored (__GFP_IO and __GFP_FS stay
// set); NOWARN adds __GFP_NOWARN, the only scope that ever added a bit.
//
// Kernel: include/linux/sched/mm.h:current_gfp_context() (7.2; v6.9–v6.11 for
// the reverted flags, commit eab0af905bfc, reverted by 9a8da05d7ad6).
func (t *Task) GFPContext(m gfp.Mask) gfp.Mask {
	// No scope is the common case, and the kernel's inline function costs
	// one test then: so does this one, with the rest out of line.
	if t.flags.Load()&uint32(scopeFlags|revertedFlags) == 0 && !invariants.Enabled {
		return m
	}
	return t.gfpContextScoped(m)
}

// InGFPScope reports whether the task is inside a scope that GFPContext
// applies (or has a reverted flag set). When it is false, GFPContext returns
// every mask unchanged: callers that take another path for a scoped task
// test it instead of calling GFPContext, and so never call out.
//
// Kernel: include/linux/sched/mm.h:current_gfp_context() (its unlikely()
// test of the scope flags).
func (t *Task) InGFPScope() bool {
	return t.flags.Load()&uint32(scopeFlags|revertedFlags) != 0
}

// gfpContextScoped is GFPContext past its common case. It stays a call
// (noinline), so that GFPContext itself inlines into its callers.
//
//go:noinline
func (t *Task) gfpContextScoped(m gfp.Mask) gfp.Mask {
	t.enter()
	m = gfpContext(t.Flags(), m)
	t.exit()
	return m
}

// gfpContext is current_gfp_context for task flags pf.
func gfpContext(pf Flags, m gfp.Mask) gfp.Mask {
	if pf&(scopeFlags|revertedFlags) == 0 {
		return m
	}
	if pf&revertedFlags != 0 {
		return gfpContext611(pf, m)
	}
	// NOIO implies NOFS and is the weaker context: it takes precedence.
	if pf&PFMemallocNoIO != 0 {
		m &^= gfp.IO | gfp.FS
	} else if pf&PFMemallocNoFS != 0 {
		m &^= gfp.FS
	}
	if pf&PFMemallocPin != 0 {
		m &^= gfp.Movable
	}
	return m
}

// gfpContext611 is current_gfp_context as v6.9–v6.11 had it, with
// PF_MEMALLOC_NORECLAIM first in the else-if chain ("stronger flags before
// weaker flags: NORECLAIM implies NOIO, which in turn implies NOFS" — which it
// does not: it leaves __GFP_IO and __GFP_FS set).
//
// Kernel: include/linux/sched/mm.h:current_gfp_context() (v6.9–v6.11).
func gfpContext611(pf Flags, m gfp.Mask) gfp.Mask {
	switch {
	case pf&PFMemallocNoReclaim != 0:
		m &^= gfp.DirectReclaim
	case pf&PFMemallocNoIO != 0:
		m &^= gfp.IO | gfp.FS
	case pf&PFMemallocNoFS != 0:
		m &^= gfp.FS
	}
	if pf&PFMemallocNoWarn != 0 {
		m |= gfp.NoWarn
	}
	if pf&PFMemallocPin != 0 {
		m &^= gfp.Movable
	}
	return m
}
