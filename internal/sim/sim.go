// Package sim is mmsim's simulated time: one virtual clock per machine, in
// nanoseconds, and the daemons (kswapd, the flushers, the OOM reaper) that
// run as time passes.
//
// The clock moves only when the simulation says so: a modelled cost (pages
// scanned, swap written) advances it; a wait (a one-tick sleep, a throttle)
// lets the daemons due before its deadline run, in time order, and ends when
// its condition holds or the deadline passes. Daemons never run on their own
// goroutines in the deterministic mode: they run inside waits, or when the
// machine's owner steps them, so a seeded program is reproducible bit for
// bit. Every method is safe for concurrent use.
//
// Kernel: include/linux/jiffies.h (HZ), kernel/sched/wait.c (the waits).
package sim

import (
	"context"
	"math"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// HZ is the tick rate for everything the kernel counts in jiffies: the OOM
// reaper delay, one-tick sleeps, the stall warning. CONFIG_HZ_250, the
// x86_64 defconfig.
const HZ = 250

// Jiffy is one tick in nanoseconds.
const Jiffy = int64(1e9 / HZ)

// Never is the wake time of a daemon with nothing to do until it is woken.
const Never = int64(math.MaxInt64)

// A Daemon is a kernel thread of the simulated machine.
type Daemon interface {
	// Name is the thread's comm, as ps prints it ("kswapd0").
	Name() string
	// Next returns when the daemon next wants to run: Never while it
	// sleeps until woken.
	Next() int64
	// Run does one bounded step of the daemon's work at time now; Next
	// then says when it wants to run again. Run must not sleep or
	// advance the clock: a daemon's own work runs on its own CPU, and
	// it accounts for it in its next wake time.
	//
	// Whatever else makes a daemon want to run sooner than its Next said
	// (a wakeup, a victim queued) calls Clock.Kick after: Advance looks
	// at the daemons again only when the clock reaches the earliest
	// Next it saw, or after a Kick.
	Run(now int64)
}

// Clock is a machine's clock and its daemons.
//
// In the deterministic mode (the zero Clock) daemons run on the goroutine
// that moves the clock: inside its waits, its Advance, Step or
// RunUntilIdle. After Start, the asynchronous mode, each daemon runs on
// its own goroutine whenever it is due; the clock still moves only by
// modelled work and waits, and a wait lets the daemons' goroutines run
// what falls due before it ends, but other callers run alongside them, so
// runs are no longer reproducible bit for bit.
type Clock struct {
	now atomic.Int64
	// earliest is a time before which no daemon is due, as the last look
	// at them found (0, or math.MinInt64 after a Kick: look again).
	// Advance, which runs for every page a request zeroes, returns
	// without a look while the clock is short of it. wakes counts the
	// Kicks; a look publishes what it found only if none came while it
	// looked, and both are written under hmu, so that a wakeup is never
	// overwritten by an older look.
	earliest atomic.Int64
	wakes    atomic.Uint64
	hmu      sync.Mutex

	mu      sync.Mutex // protects daemons, runs, serializes daemon steps
	daemons []Daemon
	runs    int64 // daemon steps so far

	// The asynchronous mode: ran is signalled (with mu held) after every
	// look a daemon goroutine takes; kicks wake the daemon goroutines.
	// kicks is set once, by Start.
	ran   sync.Cond
	kicks atomic.Pointer[[]chan struct{}]
	// stopped: the daemon goroutines have been told to stop; waits run
	// daemons inline again. Protected by mu.
	stopped bool
}

// Now returns the simulated time in nanoseconds since boot.
func (c *Clock) Now() int64 { return c.now.Load() }

// Advance moves the clock forward by d nanoseconds of modelled work on the
// caller's CPU, and runs the daemons that fell due meanwhile — unless
// another goroutine is running daemons already, which will see them.
func (c *Clock) Advance(d int64) {
	if d <= 0 {
		return
	}
	now := c.now.Add(d)
	if c.kick() {
		return // the daemons' goroutines see the new time
	}
	if now < c.earliest.Load() {
		return // none is due yet
	}
	if !c.mu.TryLock() {
		return
	}
	defer c.mu.Unlock()
	for {
		w := c.wakes.Load()
		dm, when, next := c.due(now)
		if dm == nil {
			c.hmu.Lock()
			if c.wakes.Load() == w {
				c.earliest.Store(next)
			}
			c.hmu.Unlock()
			return
		}
		dm.Run(max(when, 0))
	}
}

// advanceTo moves the clock to t unless it is already past it.
func (c *Clock) advanceTo(t int64) {
	for {
		now := c.now.Load()
		if now >= t || c.now.CompareAndSwap(now, t) {
			return
		}
	}
}

// Register adds a daemon. Daemons run in the order registered when due at
// the same time.
func (c *Clock) Register(d Daemon) {
	c.mu.Lock()
	c.daemons = append(c.daemons, d)
	c.mu.Unlock()
	c.Kick()
}

// Daemons returns the registered daemons.
func (c *Clock) Daemons() []Daemon {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Daemon(nil), c.daemons...)
}

// due returns the daemon due first at or before deadline, or nil, and
// the earliest time any daemon is due.
func (c *Clock) due(deadline int64) (first Daemon, when, next int64) {
	when, next = Never, Never
	for _, d := range c.daemons {
		n := d.Next()
		if n <= deadline && n < when {
			first, when = d, n
		}
		next = min(next, n)
	}
	return first, when, next
}

// Sleep waits d nanoseconds of simulated time, or less if cond (which may
// be nil) becomes true first; the daemons due in the meantime run, in time
// order. It reports whether cond held. This is every sleep of the kernel's
// own: schedule_timeout, a throttle, a wait for kswapd's progress.
//
// Kernel: kernel/time/sleep_timeout.c:schedule_timeout().
func (c *Clock) Sleep(d int64, cond func() bool) bool {
	deadline := c.Now() + max(d, 0)
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if cond != nil && cond() {
			return true
		}
		dm, when, _ := c.due(deadline)
		if dm == nil {
			c.advanceTo(deadline)
			return cond != nil && cond()
		}
		c.advanceTo(when)
		c.step(dm)
	}
}

// Step runs the daemon due first, if one is due before limit nanoseconds
// from now, advancing the clock to its time. It reports whether one ran.
func (c *Clock) Step(limit int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	dm, when, _ := c.due(c.Now() + limit)
	if dm == nil {
		return false
	}
	c.advanceTo(when)
	c.step(dm)
	return true
}

// RunUntilIdle runs daemons until none is due within limit nanoseconds of
// simulated time from the start, and returns how many steps ran.
func (c *Clock) RunUntilIdle(limit int64) int {
	deadline := c.Now() + limit
	c.mu.Lock()
	defer c.mu.Unlock()
	start := c.runs
	for {
		dm, when, _ := c.due(deadline)
		if dm == nil {
			return int(c.runs - start)
		}
		c.advanceTo(when)
		c.step(dm)
	}
}

// step runs dm, which is due now: inline in the deterministic mode; in the
// asynchronous mode by waking the daemons' goroutines and waiting until one
// of them has looked. Preconditions: c.mu is held.
func (c *Clock) step(dm Daemon) {
	if c.kicks.Load() == nil || c.stopped {
		dm.Run(c.Now())
		c.runs++
		return
	}
	c.kick()
	c.ran.Wait()
}

// kick wakes every daemon goroutine, and reports whether the clock is in
// the asynchronous mode (there were goroutines to wake).
func (c *Clock) kick() bool {
	ks := c.kicks.Load()
	if ks == nil {
		return false
	}
	for _, k := range *ks {
		select {
		case k <- struct{}{}:
		default: // a wakeup is pending already
		}
	}
	return true
}

// Kick tells the daemons that one of them may have become due without the
// clock moving (a wakeup): in the asynchronous mode its goroutine runs it
// now; in the deterministic mode the next wait or Advance runs it.
func (c *Clock) Kick() {
	c.hmu.Lock()
	c.wakes.Add(1)
	c.earliest.Store(math.MinInt64)
	c.hmu.Unlock()
	c.kick()
}

// Start switches the clock to the asynchronous mode: every daemon
// registered so far gets its own goroutine in g, which runs it whenever it
// is due until ctx is cancelled. The caller stops them by cancelling ctx
// and waiting for g. Start may be called once; daemons registered after it
// never run.
func (c *Clock) Start(ctx context.Context, g *errgroup.Group) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kicks.Load() != nil {
		return
	}
	c.ran.L = &c.mu
	ks := make([]chan struct{}, len(c.daemons))
	for i, d := range c.daemons {
		ks[i] = make(chan struct{}, 1)
		k := ks[i]
		g.Go(func() error { c.runDaemon(ctx, d, k); return nil })
	}
	c.kicks.Store(&ks)
}

// runDaemon is a daemon's goroutine: whenever it is kicked it runs the
// daemon if it is due, and tells the waiters it looked.
func (c *Clock) runDaemon(ctx context.Context, d Daemon, kick <-chan struct{}) {
	for {
		select {
		case <-kick:
		case <-ctx.Done():
			c.mu.Lock()
			c.stopped = true
			c.ran.Broadcast() // a waiter runs the daemons itself from now on
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		if now := c.Now(); d.Next() <= now {
			d.Run(now)
			c.runs++
		}
		c.ran.Broadcast()
		c.mu.Unlock()
	}
}
