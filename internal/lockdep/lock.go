package lockdep

import (
	"fmt"
	"sync"

	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
)

// Lock is a sleeping lock (a mutex) of simulated kernel code: one owner
// task at a time, validated by the Checker. It blocks the goroutine of a
// task that waits for it, and implements Waitable (its holder is its
// owner).
//
// Kernel: include/linux/mutex_types.h:struct mutex (with its dep_map).
type Lock struct {
	c *Checker
	m lockMap
	// owner is the task holding the lock, nil if free. Protected by c.mu.
	owner *memalloc.Task
	// cond wakes the waiters when the lock is released. Its locker is c.mu.
	cond *sync.Cond
}

// NewLock returns an unlocked Lock of class.
//
// Kernel: include/linux/mutex.h:mutex_init() (the class is the key of its
// call site).
func (c *Checker) NewLock(class *Class) *Lock {
	return &Lock{c: c, m: c.newMap(class), cond: sync.NewCond(&c.mu)}
}

// Class returns the lock's class.
//
// Kernel: kernel/locking/lockdep.c:hlock_class().
func (l *Lock) Class() *Class { return l.m.class }

// String returns the lock as lockdep prints it: "(name)".
//
// Kernel: kernel/locking/lockdep.c:print_lock_name().
func (l *Lock) String() string { return "(" + l.m.class.Name() + ")" }

// Holders returns the lock's owner, if any (lockdep.Waitable).
//
// Kernel: kernel/locking/mutex.c:__mutex_owner().
func (l *Lock) Holders() []*memalloc.Task {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	return l.holdersLocked()
}

func (l *Lock) holdersLocked() []*memalloc.Task {
	if l.owner == nil {
		return nil
	}
	return []*memalloc.Task{l.owner}
}

// Lock takes l for t. First, as lockdep does at lock_acquire, it records
// the dependencies of t's held locks on l and reports a cycle they would
// close (lockdep's report, the first time the order is seen, whether or not
// anything waits). Then, if another task owns l:
//
//   - if the owner waits, directly or through a chain of holders and what
//     they wait for, on t, the wait would never end: Lock returns an error
//     wrapping ErrDeadlock and Options.Deadlock and reports it (a BUG
//     report naming the tasks of the chain), without taking l;
//   - if Options.Inline says t runs inline on another task's goroutine
//     (kswapd in the deterministic mode), Lock returns an error wrapping
//     ErrWouldBlock without taking l;
//   - otherwise it blocks until l is released, rechecking the chain each
//     time it wakes.
//
// On success l is on t's held stack and t owns it.
//
// Kernel: kernel/locking/mutex.c:mutex_lock(), __mutex_lock_common();
// kernel/locking/lockdep.c:lock_acquire().
func (l *Lock) Lock(t *memalloc.Task) error {
	c := l.c
	ip := c.callerPC()
	c.mu.Lock()
	if reps := c.validateLocked(t, &l.m, ip); reps != nil {
		c.mu.Unlock()
		c.emit(reps)
		c.mu.Lock()
	}
	waited := false
	prevWait, hadWait := c.waiting[t]
	for l.owner != nil {
		if chain := c.waitCycleLocked(t, l); chain != nil {
			if waited {
				c.restoreWaitLocked(t, prevWait, hadWait)
			}
			err, rep := c.deadlockLocked(t, chain)
			c.mu.Unlock()
			c.emit([]bug.Report{rep})
			return err
		}
		if c.opts.Inline != nil && c.opts.Inline(t) {
			if waited {
				c.restoreWaitLocked(t, prevWait, hadWait)
			}
			owner := l.owner
			c.mu.Unlock()
			return fmt.Errorf("lockdep: %s cannot wait for %s held by %s: %w",
				taskName(t), l, taskName(owner), ErrWouldBlock)
		}
		c.waiting[t] = l
		waited = true
		l.cond.Wait()
	}
	if waited {
		c.restoreWaitLocked(t, prevWait, hadWait)
	}
	l.owner = t
	c.pushLocked(t, &l.m, false, ip)
	c.mu.Unlock()
	return nil
}

// TryLock takes l for t if it is free, and never waits. As in lockdep, a
// trylock records no dependency on l (trylocks may be taken in any order);
// it is held like any lock, and what t takes under it depends on it.
//
// Kernel: kernel/locking/mutex.c:mutex_trylock(); kernel/locking/lockdep.c
// (validate_chain skips trylocks).
func (l *Lock) TryLock(t *memalloc.Task) bool {
	c := l.c
	ip := c.callerPC()
	c.mu.Lock()
	defer c.mu.Unlock()
	if l.owner != nil {
		return false
	}
	l.owner = t
	c.pushLocked(t, &l.m, true, ip)
	return true
}

// Unlock releases l, which t must own. Releasing a lock t does not own is
// a bad unlock balance: lockdep's report (if lockdep is still on), an
// error wrapping ErrUnlockBalance and bug.ErrBug, and nothing changes.
//
// Kernel: kernel/locking/mutex.c:mutex_unlock();
// kernel/locking/lockdep.c:lock_release(), print_unlock_imbalance_bug().
func (l *Lock) Unlock(t *memalloc.Task) error { return l.c.release(t, &l.m, l) }

// Owner returns the task that owns l, or nil.
//
// Kernel: kernel/locking/mutex.c:__mutex_owner().
func (l *Lock) Owner() *memalloc.Task {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	return l.owner
}
