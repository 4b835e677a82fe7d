package workqueue

import (
	"errors"
	"fmt"
	"sync"

	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/internal/lockdep"
	"github.com/mmsim/mmsim/memalloc"
)

// Flags are the WQ_* flags of alloc_workqueue, with their 7.2 values.
//
// Kernel: include/linux/workqueue.h:enum wq_flags.
type Flags uint

// The WQ_* flags. mmsim acts on MemReclaim (a rescuer, and the flush
// dependency check), Unbound and HighPri (worker names); the others are
// recorded.
//
// Kernel: include/linux/workqueue.h:enum wq_flags.
const (
	BH             Flags = 1 << 0 // WQ_BH: execute in softirq context
	Unbound        Flags = 1 << 1 // WQ_UNBOUND: not bound to any CPU
	Freezable      Flags = 1 << 2 // WQ_FREEZABLE: frozen during suspend
	MemReclaim     Flags = 1 << 3 // WQ_MEM_RECLAIM: may be used for memory reclaim: has a rescuer
	HighPri        Flags = 1 << 4 // WQ_HIGHPRI: high-priority workers ("H")
	CPUIntensive   Flags = 1 << 5 // WQ_CPU_INTENSIVE
	Sysfs          Flags = 1 << 6 // WQ_SYSFS
	PowerEfficient Flags = 1 << 7 // WQ_POWER_EFFICIENT
	Percpu         Flags = 1 << 8 // WQ_PERCPU: bound to a specific CPU

	destroying Flags = 1 << 15 // __WQ_DESTROYING
	draining   Flags = 1 << 16 // __WQ_DRAINING
	legacy     Flags = 1 << 18 // __WQ_LEGACY
)

// Limits of max_active.
//
// Kernel: include/linux/workqueue.h:WQ_MAX_ACTIVE, WQ_DFL_ACTIVE.
const (
	MaxActive = 2048
	DflActive = MaxActive / 2
)

// ErrNoWorker is wrapped by the error of a flush whose work cannot run: no
// idle worker, creating one failed (Options.AllocWorker) and the workqueue
// has no rescuer (it lacks WQ_MEM_RECLAIM) or its rescuer is busy. The
// kernel would retry for ever (maybe_create_worker); mmsim fails the flush.
//
// Kernel: kernel/workqueue.c:maybe_create_worker(), send_mayday().
var ErrNoWorker = errors.New("workqueue: cannot create a worker")

// Options plugs a workqueue into the simulated machine. Every field may be
// zero.
//
// Kernel: kernel/workqueue.c:alloc_workqueue() (its arguments, and what
// the kernel takes from elsewhere).
type Options struct {
	// Lockdep validates the work items' and the workqueue's maps and
	// detects deadlocked flushes. Nil: none.
	Lockdep *lockdep.Checker
	// NewTask creates a worker or the rescuer: the root gives it a pid.
	// Nil: memalloc.NewTaskWith with the flags.
	NewTask func(name string, flags memalloc.Flags) *memalloc.Task
	// Report receives the workqueue's WARNs and BUGs.
	Report bug.Sink
	// Now returns the simulated time, for the reports.
	Now func() int64
	// Once keys the WARN_ONCE sites; the root shares one across its
	// workqueues. Nil: one per workqueue.
	Once *bug.Once
	// MaxActive is alloc_workqueue's max_active: 0 for WQ_DFL_ACTIVE, 1
	// for an ordered workqueue (flush_work then also touches the
	// workqueue's map).
	MaxActive int
	// AllocWorker models create_worker's allocation of a worker beyond the
	// first one (name is the new worker's); an error means memory could
	// not be found: the rescuer, if any, runs the work. Nil: never fails.
	AllocWorker func(name string) error
	// CPUs is the number of simulated CPUs, for the unbound pool's id in
	// worker names (per-CPU pools take four ids a CPU). 0: 1.
	CPUs int
}

// Workqueue is a workqueue: pending work items and the worker tasks that
// run them, scheduled deterministically (see the package doc).
//
// Kernel: kernel/workqueue.c:struct workqueue_struct.
type Workqueue struct {
	name string
	opts Options
	once *bug.Once
	// lmap is the "(wq_completion)name" map; nil without lockdep.
	// Invariant: immutable after New.
	lmap *lockdep.Map
	// rescuer is the WQ_MEM_RECLAIM rescuer, nil without that flag.
	// Invariant: immutable after New.
	rescuer *memalloc.Task
	// poolName is the name prefix of the workers ("u4" for unbound).
	// Invariant: immutable after New.
	unboundPool int

	mu sync.Mutex
	// flags holds the WQ_* flags and the internal __WQ_ states.
	// Protected by mu.
	flags Flags
	// pending is the work queued and not yet started, in order.
	// Protected by mu.
	pending []*Work
	// active is the work running now. Protected by mu.
	active map[*Work]bool
	// idle is the workers with nothing to run. Protected by mu.
	idle []*memalloc.Task
	// nworkers counts the workers created (their ids are 0…).
	// Protected by mu.
	nworkers int
	// rescuerBusy is set while the rescuer runs a work. Protected by mu.
	rescuerBusy bool
}

// executing maps a worker task to the workqueue whose work it is running,
// for check_flush_dependency (current_wq_worker). Tasks are unique, so one
// map serves every machine.
var executing sync.Map // *memalloc.Task → *Workqueue

// New returns a workqueue named name. A WQ_MEM_RECLAIM workqueue gets its
// rescuer now, as alloc_workqueue creates it ("kworker/R-name").
//
// Kernel: kernel/workqueue.c:alloc_workqueue(), init_rescuer(),
// wq_init_lockdep().
func New(name string, flags Flags, opts Options) *Workqueue {
	wq := &Workqueue{name: name, flags: flags, opts: opts, once: opts.Once,
		active: make(map[*Work]bool)}
	if wq.once == nil {
		wq.once = new(bug.Once)
	}
	if opts.MaxActive <= 0 {
		wq.opts.MaxActive = DflActive
	}
	cpus := opts.CPUs
	if cpus <= 0 {
		cpus = 1
	}
	wq.unboundPool = 4 * cpus
	if c := opts.Lockdep; c != nil {
		wq.lmap = c.NewMapOf(c.NewClassKind("(wq_completion)"+name, 0))
	}
	if flags&MemReclaim != 0 {
		wq.rescuer = wq.newTask("kworker/R-" + name)
	}
	return wq
}

// Name returns the workqueue's name.
//
// Kernel: kernel/workqueue.c:workqueue_struct.name.
func (wq *Workqueue) Name() string { return wq.name }

// Flags returns the WQ_* flags the workqueue was created with.
//
// Kernel: kernel/workqueue.c:workqueue_struct.flags.
func (wq *Workqueue) Flags() Flags {
	wq.mu.Lock()
	defer wq.mu.Unlock()
	return wq.flags &^ (destroying | draining)
}

// Rescuer returns the WQ_MEM_RECLAIM rescuer task, or nil.
//
// Kernel: kernel/workqueue.c:workqueue_struct.rescuer.
func (wq *Workqueue) Rescuer() *memalloc.Task { return wq.rescuer }

func (wq *Workqueue) newTask(name string) *memalloc.Task {
	f := memalloc.PFWQWorker | memalloc.PFKthread
	if wq.opts.NewTask != nil {
		return wq.opts.NewTask(name, f)
	}
	return memalloc.NewTaskWith(name, memalloc.WithFlags(f))
}

// QueueOption changes how a work item is queued.
//
// Kernel: none (mmsim's options to queue_work).
type QueueOption func(*queueOptions)

type queueOptions struct{ carry bool }

// CarryScope makes the work run with the submitter's PF_MEMALLOC_NOFS and
// PF_MEMALLOC_NOIO scope bits, as they are when it is queued. The kernel
// has no such thing: a worker runs with its own flags, and code that needs
// the scope in the work opens it there (memalloc_nofs_save in the work
// function). This is mmsim's what-if.
//
// Kernel: none; compare include/linux/sched/mm.h:memalloc_nofs_save().
func CarryScope() QueueOption { return func(o *queueOptions) { o.carry = true } }

// Queue queues w on wq for t; false if w is already pending (here or on
// another workqueue). Queueing on a workqueue being drained or destroyed is
// refused with a WARN, unless t is a worker of that workqueue (chained
// work).
//
// Kernel: kernel/workqueue.c:queue_work(), __queue_work().
func (wq *Workqueue) Queue(t *memalloc.Task, w *Work, opts ...QueueOption) bool {
	var o queueOptions
	for _, f := range opts {
		f(&o)
	}
	wq.mu.Lock()
	if wq.flags&(destroying|draining) != 0 {
		cur, _ := executing.Load(t)
		if wq.flags&destroying != 0 || cur != wq {
			wq.mu.Unlock()
			wq.warnOnce("__queue_work:"+wq.name, t, "kernel/workqueue.c:__queue_work",
				fmt.Sprintf("workqueue: cannot queue %s on wq %s", w.name, wq.name))
			return false
		}
	}
	w.mu.Lock()
	if w.pending {
		w.mu.Unlock()
		wq.mu.Unlock()
		return false
	}
	w.pending = true
	w.wq = wq
	w.cpu = t.CPU()
	w.carry = 0
	if o.carry {
		w.carry = t.Flags() & (memalloc.PFMemallocNoFS | memalloc.PFMemallocNoIO)
	}
	if w.lmap == nil {
		w.lmap = wq.opts.Lockdep.NewMap(w.name)
	}
	w.mu.Unlock()
	wq.pending = append(wq.pending, w)
	wq.mu.Unlock()
	return true
}

func (wq *Workqueue) warnOnce(key string, t *memalloc.Task, site, text string) {
	if !wq.once.First(key) || wq.opts.Report == nil {
		return
	}
	var now int64
	if wq.opts.Now != nil {
		now = wq.opts.Now()
	}
	wq.opts.Report(bug.Report{Kind: bug.Warn, Site: site, Text: text, Comm: t.Comm(), PID: t.PID(), Time: now})
}

// Pending returns how many work items wait to run.
//
// Kernel: kernel/workqueue.c:pool_workqueue.inactive_works (in spirit).
func (wq *Workqueue) Pending() int {
	wq.mu.Lock()
	defer wq.mu.Unlock()
	return len(wq.pending)
}

// takeLocked removes w from the pending list; false if it is not there.
func (wq *Workqueue) takeLocked(w *Work) bool {
	for i, p := range wq.pending {
		if p == w {
			wq.pending = append(wq.pending[:i], wq.pending[i+1:]...)
			return true
		}
	}
	return false
}

// worker returns a worker to run w: an idle one, a new one, or — when
// creating one fails — the rescuer.
//
// Kernel: kernel/workqueue.c:create_worker(), format_worker_id(),
// maybe_create_worker(), rescuer_thread().
func (wq *Workqueue) worker(w *Work) (wk *memalloc.Task, rescuer bool, err error) {
	wq.mu.Lock()
	if n := len(wq.idle); n > 0 {
		wk = wq.idle[n-1]
		wq.idle = wq.idle[:n-1]
		wq.mu.Unlock()
		return wk, false, nil
	}
	id := wq.nworkers
	wq.nworkers++
	wq.mu.Unlock()
	var name string
	switch {
	case wq.flags&Unbound != 0:
		name = fmt.Sprintf("kworker/u%d:%d", wq.unboundPool, id)
	case wq.flags&HighPri != 0:
		name = fmt.Sprintf("kworker/%d:%dH", w.cpu, id)
	default:
		name = fmt.Sprintf("kworker/%d:%d", w.cpu, id)
	}
	if id > 0 && wq.opts.AllocWorker != nil {
		if aerr := wq.opts.AllocWorker(name); aerr != nil {
			wq.mu.Lock()
			wq.nworkers--
			if wq.rescuer != nil && !wq.rescuerBusy {
				wq.rescuerBusy = true
				wq.mu.Unlock()
				return wq.rescuer, true, nil
			}
			wq.mu.Unlock()
			return nil, false, fmt.Errorf("workqueue %s: no worker for %s: %w", wq.name, w.name, errors.Join(ErrNoWorker, aerr))
		}
	}
	return wq.newTask(name), false, nil
}

// putWorker returns a worker to the idle pool after a run.
func (wq *Workqueue) putWorker(wk *memalloc.Task, rescuer bool) {
	wq.mu.Lock()
	if rescuer {
		wq.rescuerBusy = false
	} else {
		wq.idle = append(wq.idle, wk)
	}
	wq.mu.Unlock()
}
