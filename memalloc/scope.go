package memalloc

import (
	"errors"
	"fmt"

	"github.com/mmsim/mmsim/internal/bug"
)

// ErrScope is wrapped by the sticky error a task records when a scope is
// misused (see Task.Restore). The same error also wraps the simulator's BUG
// sentinel.
var ErrScope = errors.New("memalloc: PF_MEMALLOC scope misuse")

// ScopeError describes a misused scope: a Restore whose cookie no open save
// could have returned.
type ScopeError struct {
	Task   string // the task, as "comm[pid]"
	Cookie Flags  // what Restore was given
	Flags  Flags  // the task's flags before that Restore
	Reason string // what is wrong, in kernel terms
}

func (e *ScopeError) Error() string {
	return fmt.Sprintf("memalloc: memalloc_flags_restore(%s) on task %s (flags %s): %s",
		e.Cookie, e.Task, e.Flags, e.Reason)
}

// Unwrap returns ErrScope and the simulator's BUG sentinel.
func (e *ScopeError) Unwrap() []error { return []error{ErrScope, bug.ErrBug} }

// SaveFlags opens a scope: it sets the flags f on the task and returns a
// cookie of the bits that were not set before, for Restore. A nested save of
// a flag that is already set returns 0 for that flag, so only the outermost
// scope of a flag ends it:
//
//	// Reclaim must not recurse into the filesystem while we hold its lock.
//	defer t.Restore(t.SaveFlags(memalloc.PFMemallocNoFS))
//
// Only the task's owner may call it.
//
// Kernel: include/linux/sched/mm.h:memalloc_flags_save().
func (t *Task) SaveFlags(f Flags) Flags {
	t.enter()
	old := Flags(t.flags.Load())
	cookie := f &^ old
	t.flags.Store(uint32(old | f))
	t.scopes.save(f, cookie)
	t.scopes.check(old | f)
	t.exit()
	return cookie
}

// Restore closes the scope a Save returned cookie for: it clears exactly the
// bits in cookie, as the kernel does. Scopes of different flags may be closed
// in any order; a cookie of 0 (from a nested save of a flag already set)
// changes nothing.
//
// Misuse the kernel silently gets wrong is detected and recorded as the
// task's sticky error (Err), while the flags still follow the kernel's
// arithmetic:
//   - a cookie with bits that are not set (a double restore, a forged cookie);
//   - a cookie that clears a bit a still-open save asked for: an outer scope
//     closed before an inner scope of the same flag, or a stale cookie
//     clearing the flag of a later scope;
//   - a cookie that clears a flag the task was created with (WithFlags), which
//     no save set.
//
// Cookies are plain values, as in the kernel, so a Restore(0) cannot say which
// of several zero-cookie scopes it closes, and a stale cookie equal to that of
// the scope now open is taken as that scope's. Misuse is reported only when it
// is certain; what those ambiguities hide shows later, or not at all.
//
// Only the task's owner may call it.
//
// Kernel: include/linux/sched/mm.h:memalloc_flags_restore().
func (t *Task) Restore(cookie Flags) {
	t.enter()
	flags := Flags(t.flags.Load())
	if notSet := cookie &^ flags; notSet != 0 {
		t.misuse(cookie, flags, notSet.String()+" is not set: no open save returned this cookie")
	}
	if cookie == 0 {
		t.scopes.restoreZero()
	} else {
		lost, base := t.scopes.restore(cookie)
		if lost != 0 {
			t.misuse(cookie, flags, "clears "+lost.String()+
				", which a still-open memalloc_flags_save asked for")
		}
		if base != 0 {
			t.misuse(cookie, flags, "clears "+base.String()+
				", which the task has had since it was created: no save set it")
		}
	}
	t.flags.Store(uint32(flags &^ cookie))
	t.scopes.check(flags &^ cookie)
	t.exit()
}

// misuse records the first scope misuse as the task's sticky error.
func (t *Task) misuse(cookie, flags Flags, reason string) {
	if t.err == nil {
		t.err = &ScopeError{Task: t.String(), Cookie: cookie, Flags: flags, Reason: reason}
	}
}

// SaveNoFS opens a PF_MEMALLOC_NOFS scope: until the matching Restore, every
// allocation of the task behaves as if __GFP_FS were clear, so reclaim never
// recurses into a filesystem.
//
// Kernel: include/linux/sched/mm.h:memalloc_nofs_save().
func (t *Task) SaveNoFS() Flags { return t.SaveFlags(PFMemallocNoFS) }

// SaveNoIO opens a PF_MEMALLOC_NOIO scope: until the matching Restore, every
// allocation of the task behaves as if __GFP_IO and __GFP_FS were clear.
//
// Kernel: include/linux/sched/mm.h:memalloc_noio_save().
func (t *Task) SaveNoIO() Flags { return t.SaveFlags(PFMemallocNoIO) }

// SavePin opens a PF_MEMALLOC_PIN scope: until the matching Restore, every
// allocation of the task behaves as if __GFP_MOVABLE were clear, so pinned
// pages stay out of ZONE_MOVABLE and CMA.
//
// Kernel: include/linux/sched/mm.h:memalloc_pin_save().
func (t *Task) SavePin() Flags { return t.SaveFlags(PFMemallocPin) }

// SaveMemalloc sets PF_MEMALLOC until the matching Restore: the task may use
// the memory reserves and never enters direct reclaim or compaction. This is
// the kernel's memalloc_noreclaim_save(), named after the flag it sets so that
// nobody mistakes it for PF_MEMALLOC_NORECLAIM, the reverted flag that clears
// __GFP_DIRECT_RECLAIM.
//
// Kernel: include/linux/sched/mm.h:memalloc_noreclaim_save().
func (t *Task) SaveMemalloc() Flags { return t.SaveFlags(PFMemalloc) }
