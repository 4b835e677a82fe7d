package workqueue

import (
	"errors"
	"fmt"
	"sync"

	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"

	"github.com/mmsim/mmsim/internal/lockdep"
)

// Work is a work item: a function run later by a worker task, with the
// worker as its task.
//
// Kernel: include/linux/workqueue_types.h:struct work_struct.
type Work struct {
	// name names the work's lockdep map and the work in reports, as
	// INIT_WORK names it: "(work_completion)(&w->work)".
	// Invariant: immutable.
	name string
	fn   func(t *memalloc.Task) error

	mu sync.Mutex
	// pending is WORK_STRUCT_PENDING: queued, not started.
	// Protected by mu.
	pending bool
	// wq is the workqueue it was last queued on. Protected by mu.
	wq *Workqueue
	// cpu is the submitter's CPU when queued (the worker's name).
	// Protected by mu.
	cpu int
	// carry is the scope the run takes from the submitter (CarryScope).
	// Protected by mu.
	carry memalloc.Flags
	// lmap is the work's lockdep map, made when first queued on a
	// workqueue with lockdep. Invariant: set once. Protected by mu.
	lmap *lockdep.Map
	// running is the worker running it. Protected by mu.
	running *memalloc.Task
	// done is closed when the run under way ends; nil when none is.
	// Protected by mu.
	done chan struct{}
	// err is what the last run returned. Protected by mu.
	err error
}

// NewWork returns an idle work item that runs fn. name is what lockdep
// prints for its map; give it as the kernel's INIT_WORK would,
// "(work_completion)(&w->work)". Work items of one name share a lockdep
// class, as those initialised at one INIT_WORK site do.
//
// Kernel: include/linux/workqueue.h:INIT_WORK(), __INIT_WORK_KEY().
func NewWork(name string, fn func(t *memalloc.Task) error) *Work {
	return &Work{name: name, fn: fn}
}

// String returns the work as lockdep prints it, "(name)".
//
// Kernel: kernel/locking/lockdep.c:print_lock_name().
func (w *Work) String() string { return "(" + w.name + ")" }

// Holders returns the worker running w, if any: what a flusher waits for.
// It implements lockdep.Waitable.
//
// Kernel: kernel/workqueue.c:find_worker_executing_work().
func (w *Work) Holders() []*memalloc.Task {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running == nil {
		return nil
	}
	return []*memalloc.Task{w.running}
}

// Pending reports whether w is queued and not started.
//
// Kernel: include/linux/workqueue.h:work_pending().
func (w *Work) Pending() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pending
}

// Err returns what the last run of w returned (work functions return
// nothing in the kernel).
//
// Kernel: include/linux/workqueue_types.h:work_func_t.
func (w *Work) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// current is what a worker is running, for check_flush_dependency.
type current struct {
	wq *Workqueue
	w  *Work
}

// start takes w off the pending list if it is there, marking it started;
// false if it is not pending on wq. The caller runs it.
func (wq *Workqueue) start(w *Work) (carry memalloc.Flags, ok bool) {
	wq.mu.Lock()
	defer wq.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.pending || w.wq != wq || !wq.takeLocked(w) {
		return 0, false
	}
	w.pending = false
	w.done = make(chan struct{})
	wq.active[w] = true
	return w.carry, true
}

// unstart puts back a work start took when no worker could run it.
func (wq *Workqueue) unstart(w *Work) {
	wq.mu.Lock()
	w.mu.Lock()
	w.pending = true
	close(w.done)
	w.done = nil
	w.mu.Unlock()
	wq.pending = append([]*Work{w}, wq.pending...)
	delete(wq.active, w)
	wq.mu.Unlock()
}

// run runs a started work on a worker, with the flusher t (nil for none)
// marked waiting on it while it runs on t's goroutine.
//
// Kernel: kernel/workqueue.c:process_one_work().
func (wq *Workqueue) run(t *memalloc.Task, w *Work, carry memalloc.Flags) error {
	wk, rescuer, err := wq.worker(w)
	if err != nil {
		wq.unstart(w)
		return err
	}
	c := wq.opts.Lockdep
	w.mu.Lock()
	w.running = wk
	lmap := w.lmap
	done := w.done
	w.mu.Unlock()
	var werr error
	if t != nil {
		werr = c.SetWaiting(t, w)
	}
	executing.Store(wk, current{wq: wq, w: w})
	depth := c.Depth(wk)
	wq.lmap.Acquire(wk)
	lmap.Acquire(wk)
	var cookie memalloc.Flags
	if carry != 0 {
		// CarryScope: the submitter's NOFS/NOIO scope, for this run only.
		cookie = wk.SaveFlags(carry)
	}
	ferr := w.fn(wk)
	if carry != 0 {
		wk.Restore(cookie)
	}
	_ = lmap.Release(wk)    // acquired above
	_ = wq.lmap.Release(wk) // acquired above
	if c != nil {
		if end := c.Depth(wk); end != depth {
			wq.leak(wk, w, depth, end)
		}
	}
	executing.Delete(wk)
	if t != nil && werr == nil {
		c.ClearWaiting(t)
	}
	w.mu.Lock()
	w.running = nil
	w.err = ferr
	w.done = nil
	w.mu.Unlock()
	close(done)
	wq.mu.Lock()
	delete(wq.active, w)
	wq.mu.Unlock()
	wq.putWorker(wk, rescuer)
	return errors.Join(ferr, werr)
}

// leak reports a work that returned holding locks.
//
// Kernel: kernel/workqueue.c:process_one_work() ("BUG: workqueue leaked
// atomic, lock or RCU").
func (wq *Workqueue) leak(wk *memalloc.Task, w *Work, from, to int) {
	if wq.opts.Report == nil {
		return
	}
	var now int64
	if wq.opts.Now != nil {
		now = wq.opts.Now()
	}
	wq.opts.Report(bug.Report{Kind: bug.Bug, Site: "kernel/workqueue.c:process_one_work",
		Text: fmt.Sprintf("BUG: workqueue leaked atomic, lock or RCU: %s[%d]\n"+
			"     preempt=0x00000000 lock=%d->%d RCU=0->0 workfn=%s\n",
			wk.Comm(), wk.PID(), from, to, w.name),
		Comm: wk.Comm(), PID: wk.PID(), Time: now})
}

// checkFlushDependency warns about a flush that reclaim could deadlock on:
// a PF_MEMALLOC task, or a WQ_MEM_RECLAIM worker, waiting for a workqueue
// without WQ_MEM_RECLAIM (whose work may need a worker that cannot be
// created under memory pressure).
//
// Kernel: kernel/workqueue.c:check_flush_dependency().
func (wq *Workqueue) checkFlushDependency(t *memalloc.Task, w *Work) {
	if wq.flags&MemReclaim != 0 {
		return
	}
	target := "NULL"
	if w != nil {
		target = w.name
	}
	if t.Flags()&memalloc.PFMemalloc != 0 {
		wq.warnOnce("check_flush_dependency:memalloc", t, "kernel/workqueue.c:check_flush_dependency",
			fmt.Sprintf("workqueue: PF_MEMALLOC task %d(%s) is flushing !WQ_MEM_RECLAIM %s:%s",
				t.PID(), t.Comm(), wq.name, target))
	}
	if v, ok := executing.Load(t); ok {
		cur := v.(current)
		if cur.wq.flags&(MemReclaim|legacy) == MemReclaim {
			wq.warnOnce("check_flush_dependency:worker", t, "kernel/workqueue.c:check_flush_dependency",
				fmt.Sprintf("workqueue: WQ_MEM_RECLAIM %s:%s is flushing !WQ_MEM_RECLAIM %s:%s",
					cur.wq.name, cur.w.name, wq.name, target))
		}
	}
}

// touch makes lockdep see t wait for w (and, for an ordered workqueue or
// one with a rescuer, for wq): t's held locks now depend on them.
//
// Kernel: kernel/workqueue.c:start_flush_work(), touch_work_lockdep_map(),
// touch_wq_lockdep_map().
func (wq *Workqueue) touch(t *memalloc.Task, w *Work) {
	w.mu.Lock()
	lmap := w.lmap
	w.mu.Unlock()
	lmap.Acquire(t)
	_ = lmap.Release(t) // just acquired
	if wq.opts.MaxActive == 1 || wq.rescuer != nil {
		wq.lmap.Acquire(t)
		_ = wq.lmap.Release(t) // just acquired
	}
}

// FlushWork waits for w to finish its last queueing. If w is pending, the
// flusher runs it now on a worker task, on the flusher's goroutine (the
// deterministic scheduling), marked waiting on it meanwhile; if another
// goroutine is running it, the flusher waits for that run. Before waiting,
// lockdep sees the flusher's held locks taken before the work (and before
// the workqueue when it is ordered or has a rescuer). It returns what the
// run returned (the work function's error, joined with a deadlock the wait
// would close or ErrNoWorker); nil if w was idle.
//
// Kernel: kernel/workqueue.c:flush_work(), __flush_work(),
// start_flush_work().
func (wq *Workqueue) FlushWork(t *memalloc.Task, w *Work) error {
	w.mu.Lock()
	target := w.wq
	w.mu.Unlock()
	if target == nil {
		return nil // never queued
	}
	return target.flushOne(t, w, true)
}

// flushOne flushes one work of wq; touchWork is false when flushing the
// whole workqueue (flush_workqueue touches only the workqueue's map).
func (wq *Workqueue) flushOne(t *memalloc.Task, w *Work, touchWork bool) error {
	w.mu.Lock()
	busy, done := w.pending || w.done != nil, w.done
	w.mu.Unlock()
	if !busy {
		return nil // already gone
	}
	wq.checkFlushDependency(t, w)
	if touchWork {
		wq.touch(t, w)
	}
	var errs []error
	if done != nil {
		// Running on another goroutine: wait for it like a completion.
		if err := wq.opts.Lockdep.SetWaiting(t, w); err != nil {
			return err
		}
		<-done
		wq.opts.Lockdep.ClearWaiting(t)
		errs = append(errs, w.Err())
	}
	if carry, ok := wq.start(w); ok {
		errs = append(errs, wq.run(t, w, carry))
	}
	return errors.Join(errs...)
}

// Flush waits for every work queued on wq before the call: it runs the
// pending ones on workers, on t's goroutine, and waits for the running
// ones. lockdep sees t's held locks taken before the workqueue. Works
// queued meanwhile are not waited for.
//
// Kernel: kernel/workqueue.c:__flush_workqueue().
func (wq *Workqueue) Flush(t *memalloc.Task) error {
	wq.mu.Lock()
	works := append([]*Work(nil), wq.pending...)
	for w := range wq.active {
		works = append(works, w)
	}
	wq.mu.Unlock()
	wq.checkFlushDependency(t, nil)
	wq.lmap.Acquire(t)
	_ = wq.lmap.Release(t) // just acquired
	var errs []error
	for _, w := range works {
		errs = append(errs, wq.flushOne(t, w, false))
	}
	return errors.Join(errs...)
}

// drainRounds bounds Destroy's flushing of works that requeue themselves.
const drainRounds = 100

// Destroy drains wq — flushes until nothing is pending, the work it runs
// may still queue chained work on it — and retires it: Queue then refuses.
// It returns the works' errors.
//
// Kernel: kernel/workqueue.c:destroy_workqueue(), drain_workqueue().
func (wq *Workqueue) Destroy(t *memalloc.Task) error {
	wq.mu.Lock()
	wq.flags |= draining
	wq.mu.Unlock()
	var errs []error
	for i := 0; ; i++ {
		errs = append(errs, wq.Flush(t))
		if wq.Pending() == 0 {
			break
		}
		if i == drainRounds {
			errs = append(errs, fmt.Errorf("workqueue %s: drain_workqueue() isn't complete after %d tries", wq.name, i))
			break
		}
	}
	wq.mu.Lock()
	wq.flags = wq.flags&^draining | destroying
	wq.mu.Unlock()
	return errors.Join(errs...)
}

// RunPending runs, on workers, the works pending on wq when it is called,
// and returns how many ran: the simulator's scheduling of the workers,
// which the machine's owner calls when it lets them run. Their errors stay
// in Work.Err.
//
// Kernel: kernel/workqueue.c:worker_thread().
func (wq *Workqueue) RunPending() int {
	wq.mu.Lock()
	works := append([]*Work(nil), wq.pending...)
	wq.mu.Unlock()
	n := 0
	for _, w := range works {
		if carry, ok := wq.start(w); ok {
			if err := wq.run(nil, w, carry); err == nil || !errors.Is(err, ErrNoWorker) {
				n++
			}
		}
	}
	return n
}
