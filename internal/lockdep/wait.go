package lockdep

import (
	"strings"

	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
)

// Waitable is something a task can wait for: a Lock, a work item being
// flushed. Holders are the tasks whose progress ends the wait (a lock's
// owner, the worker running the work); String names it in reports.
// Holders is called with the Checker's mutex held: it must not call into
// the Checker.
//
// Kernel: none — the kernel has no wait-for graph; this is what its
// hung-task detector would find after the fact.
type Waitable interface {
	Holders() []*memalloc.Task
	String() string
}

// SetWaiting records that t waits for on, for the deadlock detection of
// Lock: in the deterministic mode a flusher marks itself waiting on the
// work item while the work runs inline on the flusher's goroutine. If the
// wait would close a cycle (on's holders wait, through a chain, on t), it
// is not recorded: SetWaiting reports it and returns an error wrapping
// ErrDeadlock and Options.Deadlock. A nil Checker records nothing.
//
// Kernel: kernel/sched/completion.c:wait_for_completion() (the wait that
// flush_work makes).
func (c *Checker) SetWaiting(t *memalloc.Task, on Waitable) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	if chain := c.waitCycleLocked(t, on); chain != nil {
		err, rep := c.deadlockLocked(t, chain)
		c.mu.Unlock()
		c.emit([]bug.Report{rep})
		return err
	}
	c.waiting[t] = on
	c.mu.Unlock()
	return nil
}

// deadlockLocked is the error and the BUG report of t's wait that would
// close the wait-for cycle chain.
func (c *Checker) deadlockLocked(t *memalloc.Task, chain []string) (*DeadlockError, bug.Report) {
	err := &DeadlockError{Task: taskName(t), Chain: chain, sentinel: c.opts.Deadlock}
	return err, bug.Report{Kind: bug.Bug, Site: "kernel/hung_task.c:check_hung_task",
		Text: strings.TrimPrefix(err.Error(), "lockdep: "), Comm: t.Comm(), PID: t.PID(), Time: c.now()}
}

// ClearWaiting ends the wait SetWaiting recorded.
//
// Kernel: kernel/sched/completion.c:complete() (as seen by the waiter).
func (c *Checker) ClearWaiting(t *memalloc.Task) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.waiting, t)
	c.mu.Unlock()
}

// Waiting returns what t waits for, or nil.
//
// Kernel: include/linux/sched.h:task_struct.blocked_on (in spirit).
func (c *Checker) Waiting(t *memalloc.Task) Waitable {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiting[t]
}

func (c *Checker) restoreWaitLocked(t *memalloc.Task, w Waitable, had bool) {
	if had {
		c.waiting[t] = w
	} else {
		delete(c.waiting, t)
	}
}

// waitCycleLocked follows the wait-for graph from on: its holders, what
// each of them waits for, their holders… If it reaches t, waiting on on
// would never end, and it returns the chain, each element "X held by T" or
// "X run by T"; else nil.
func (c *Checker) waitCycleLocked(t *memalloc.Task, on Waitable) []string {
	visited := map[*memalloc.Task]bool{}
	var walk func(w Waitable) []string
	walk = func(w Waitable) []string {
		var holders []*memalloc.Task
		if l, ok := w.(*Lock); ok {
			holders = l.holdersLocked()
		} else {
			holders = w.Holders()
		}
		verb := " run by "
		if _, ok := w.(*Lock); ok {
			verb = " held by "
		}
		for _, h := range holders {
			link := w.String() + verb + taskName(h)
			if h == t {
				return []string{link}
			}
			if visited[h] {
				continue
			}
			visited[h] = true
			if next := c.waiting[h]; next != nil {
				if rest := walk(next); rest != nil {
					return append([]string{link}, rest...)
				}
			}
		}
		return nil
	}
	return walk(on)
}

// DeadlockError is the error of a wait that would never end: Task waits
// for the first element of Chain, whose holder waits for the next, … and
// the last is held by Task.
//
// Kernel: kernel/hung_task.c:check_hung_task() (what it would find).
type DeadlockError struct {
	Task  string   // "comm/pid"
	Chain []string // "(L) held by comm/pid", "(work) run by comm/pid", …
	// sentinel is Options.Deadlock, wrapped besides ErrDeadlock.
	sentinel error
}

// Error returns "lockdep: deadlock: T waits for X held by U, which waits for …".
//
// Kernel: kernel/hung_task.c:check_hung_task().
func (e *DeadlockError) Error() string {
	var b strings.Builder
	b.WriteString("lockdep: deadlock: ")
	b.WriteString(e.Task)
	b.WriteString(" waits for ")
	for i, s := range e.Chain {
		if i > 0 {
			b.WriteString(", which waits for ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// Unwrap returns ErrDeadlock and Options.Deadlock.
//
// Kernel: kernel/hung_task.c:check_hung_task().
func (e *DeadlockError) Unwrap() []error {
	if e.sentinel == nil {
		return []error{ErrDeadlock}
	}
	return []error{ErrDeadlock, e.sentinel}
}
