package memalloc

import (
	"fmt"

	"github.com/mmsim/mmsim/internal/invariants"
)

// ledger records the task's open memalloc_flags_save scopes, so that Restore
// can tell misuse the kernel silently gets wrong. It never changes the flags:
// the kernel's arithmetic is Task.SaveFlags and Task.Restore's alone.
//
// A save that set bits is known by its cookie, exactly. Saves that returned 0
// are indistinguishable at their Restore(0), so they are kept in groups: a
// group holds the flags each candidate save asked for and how many of them
// are still open. A new zero-cookie save is a group of its own; a Restore(0)
// merges every open group (it closed one of them, nobody can say which) and
// takes one off the count, dropping a candidate only when they all asked for
// the same flags. Misuse is reported only when it is certain: when fewer
// candidates of a group are clear of the restored bits than the group has
// open saves, one of the open ones asked for a bit that is being cleared.
//
// Owned by the task goroutine.
type ledger struct {
	// set holds the open saves that set at least one bit, oldest first.
	// Invariant: their cookies are non-zero, pairwise disjoint, and a
	// subset of the task's flags.
	set []scope
	// setBuf is set's initial backing array, so that saves do not allocate.
	setBuf [8]scope
	// zero holds the groups of open saves that returned 0.
	// Invariant: every group has open > 0 and at least open candidates.
	zero []zeroGroup
	// base is the flags the task was created with (WithFlags) and still
	// has: no save set them, so no cookie may clear them.
	base Flags
}

// scope is one open save that set bits.
type scope struct {
	req    Flags // the flags the save asked for
	cookie Flags // the bits it newly set: what it returned
}

// zeroGroup is a group of zero-cookie saves, of which open are still open.
type zeroGroup struct {
	reqs []Flags  // what each candidate asked for, when there are several
	one  [1]Flags // the only candidate, when reqs is nil
	open int
}

func (g *zeroGroup) candidates() []Flags {
	if g.reqs == nil {
		return g.one[:]
	}
	return g.reqs
}

func (l *ledger) init(base Flags) {
	l.set = l.setBuf[:0]
	l.base = base
}

// save records a save that asked for req and returned cookie.
func (l *ledger) save(req, cookie Flags) {
	if cookie != 0 {
		l.set = append(l.set, scope{req: req, cookie: cookie})
		return
	}
	l.zero = append(l.zero, zeroGroup{one: [1]Flags{req}, open: 1})
}

// restoreZero records a Restore(0): one zero-cookie save closed, which one
// cannot be known.
func (l *ledger) restoreZero() {
	switch {
	case len(l.zero) == 0:
		return // nothing open: a harmless no-op, as in the kernel
	case len(l.zero) == 1 && l.zero[0].reqs == nil:
		l.zero = l.zero[:0] // the only zero-cookie save open: no doubt
		return
	}
	var merged zeroGroup
	var reqs []Flags
	for i := range l.zero {
		reqs = append(reqs, l.zero[i].candidates()...)
		merged.open += l.zero[i].open
	}
	merged.open--
	l.zero = l.zero[:0]
	if merged.open == 0 {
		return
	}
	if allEqual(reqs) {
		reqs = reqs[:merged.open] // any of them may go
	}
	if len(reqs) == 1 {
		merged.one[0] = reqs[0]
	} else {
		merged.reqs = reqs
	}
	l.zero = append(l.zero, merged)
}

// restore records a Restore(cookie) with cookie != 0 and returns the bits of
// cookie that a still-open save certainly asked for, and the bits of cookie
// the task was created with.
func (l *ledger) restore(cookie Flags) (lost, base Flags) {
	for i := range l.set {
		if l.set[i].cookie == cookie {
			l.set = append(l.set[:i], l.set[i+1:]...)
			break
		}
	}
	kept := l.set[:0]
	for _, s := range l.set {
		lost |= s.req & cookie
		if s.cookie &^= cookie; s.cookie != 0 {
			kept = append(kept, s)
		}
	}
	l.set = kept
	for i := range l.zero {
		g := &l.zero[i]
		clear, asked := 0, Flags(0)
		for _, r := range g.candidates() {
			if r&cookie == 0 {
				clear++
			}
			asked |= r
		}
		if clear < g.open {
			lost |= asked & cookie
		}
	}
	base = l.base & cookie
	l.base &^= cookie
	return lost, base
}

// check panics, under the invariants build tag, when the ledger disagrees
// with the task's flags.
func (l *ledger) check(flags Flags) {
	if !invariants.Enabled {
		return
	}
	var seen Flags
	for _, s := range l.set {
		if s.cookie == 0 || s.cookie&seen != 0 || s.cookie&^flags != 0 {
			panic(fmt.Sprintf("memalloc: internal: open scope cookie %s overlaps %s or is not in flags %s "+
				"(kernel: include/linux/sched/mm.h:memalloc_flags_save)", s.cookie, seen, flags))
		}
		seen |= s.cookie
	}
	for _, g := range l.zero {
		if g.open <= 0 || g.open > len(g.candidates()) {
			panic(fmt.Sprintf("memalloc: internal: zero-cookie scope group with %d open of %d candidates",
				g.open, len(g.candidates())))
		}
	}
}

func allEqual(fs []Flags) bool {
	for _, f := range fs[1:] {
		if f != fs[0] {
			return false
		}
	}
	return true
}
