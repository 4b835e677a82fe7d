package lockdep

import (
	"sort"
	"strconv"
	"strings"

	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
)

// validateLocked records the dependencies of t's held locks on next, which
// t is about to take (not by trylock), and returns the reports this makes:
// recursive locking of a class t already holds, or a cycle a new
// dependency would close. Like lockdep, it walks t's held stack from the
// top and stops after the first lock not taken by trylock: the older ones
// already depend on that one. A dependency that would close a cycle is not
// recorded. Nothing is done once lockdep is off.
//
// Kernel: kernel/locking/lockdep.c:validate_chain(), check_deadlock(),
// check_prevs_add().
func (c *Checker) validateLocked(t *memalloc.Task, next *lockMap, ip uintptr) []bug.Report {
	if c.off {
		return nil
	}
	hs := c.held[t]
	for i := range hs {
		if hs[i].m.class == next.class {
			if !c.opts.KeepReporting || c.firstCycleLocked([]*Class{next.class}) {
				return []bug.Report{c.recursiveReportLocked(t, hs[i], heldLock{m: next, ip: ip})}
			}
			return nil
		}
	}
	var trace []uintptr
	for i := len(hs) - 1; i >= 0; i-- {
		prev := hs[i]
		if rep, ok := c.addDependencyLocked(t, prev, heldLock{m: next, ip: ip}, &trace); !ok {
			if rep != nil {
				return []bug.Report{*rep}
			}
			return nil
		}
		if !prev.trylock {
			break
		}
	}
	return nil
}

// addDependencyLocked records prev→next unless it is recorded already or
// would close a cycle; then it returns the report (nil if this cycle was
// reported before) and false. trace is the current stack, captured once
// for all the dependencies of one acquire.
//
// Kernel: kernel/locking/lockdep.c:check_prev_add().
func (c *Checker) addDependencyLocked(t *memalloc.Task, prev, next heldLock, trace *[]uintptr) (*bug.Report, bool) {
	from, to := prev.m.class, next.m.class
	if from == to {
		return nil, true // a trylock-held lock of the same class
	}
	for _, d := range from.after {
		if d.to == to {
			return nil, true // lockdep's "already recorded" short-cut
		}
	}
	if *trace == nil {
		*trace = c.stack()
	}
	if path := pathBetween(to, from); path != nil {
		classes := make([]*Class, len(path))
		for i, d := range path {
			classes[i] = d.to
		}
		if c.opts.KeepReporting && !c.firstCycleLocked(append(classes, to)) {
			return nil, false
		}
		rep := c.circularReportLocked(t, prev, next, path, *trace)
		return &rep, false
	}
	from.after = append(from.after, &dependency{to: to, trace: *trace})
	return nil, true
}

// pathBetween searches the graph breadth first from src for dst and
// returns the dependencies of the shortest path, src's first; nil if dst
// cannot be reached.
//
// Kernel: kernel/locking/lockdep.c:check_noncircular(), __bfs_forwards().
func pathBetween(src, dst *Class) []*dependency {
	type step struct {
		parent int // index in seen of the step before, -1 for src
		dep    *dependency
	}
	var seen []step
	visited := map[*Class]bool{src: true}
	queue := []int{}
	expand := func(k *Class, parent int) int {
		for _, d := range k.after {
			if visited[d.to] {
				continue
			}
			visited[d.to] = true
			seen = append(seen, step{parent: parent, dep: d})
			if d.to == dst {
				return len(seen) - 1
			}
			queue = append(queue, len(seen)-1)
		}
		return -1
	}
	found := expand(src, -1)
	for found < 0 && len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		found = expand(seen[i].dep.to, i)
	}
	if found < 0 {
		return nil
	}
	var path []*dependency
	for i := found; i >= 0; i = seen[i].parent {
		path = append(path, seen[i].dep)
	}
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	return path
}

// firstCycleLocked reports whether the cycle through classes is reported
// for the first time (Options.KeepReporting), and marks it reported.
func (c *Checker) firstCycleLocked(classes []*Class) bool {
	keys := make([]string, len(classes))
	for i, k := range classes {
		keys[i] = k.Name() + "@" + strconv.FormatUint(uint64(k.version), 10)
	}
	sort.Strings(keys)
	key := strings.Join(keys, "\x00")
	if c.cycles[key] {
		return false
	}
	c.cycles[key] = true
	return true
}
