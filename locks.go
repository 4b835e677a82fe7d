package mmsim

import (
	"github.com/mmsim/mmsim/internal/lockdep"
	"github.com/mmsim/mmsim/internal/workqueue"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/reclaim"
)

// Lock is a simulated sleeping lock (a mutex) of a lock class, held per
// task: Lock, TryLock, Unlock. With Config.Lockdep every acquisition
// records its dependencies on the locks the task holds (and on
// fs_reclaim), and an order that closes a cycle is reported once in
// lockdep's words. Whatever the config, a task whose wait would close a
// wait-for cycle (a lock, a flushed work item) gets an error wrapping
// ErrDeadlock instead of hanging; kswapd and kcompactd, which run inline
// in the deterministic mode, get one wrapping ErrWouldBlock on any
// contended lock and give up as after a failed trylock.
//
// Kernel: kernel/locking/mutex.c, kernel/locking/lockdep.c.
type Lock = lockdep.Lock

// Workqueue is a simulated workqueue whose workers are tasks of their own;
// Work is a work item. Work runs when someone waits for it (FlushWork,
// Flush, Destroy) or when the program calls RunPending: the simulator's
// deterministic scheduling of workers. The submitter's NOFS/NOIO scope
// does not travel to the worker, as in the kernel, unless the work is
// queued with CarryScope().
//
// Kernel: kernel/workqueue.c.
type (
	Workqueue   = workqueue.Workqueue
	Work        = workqueue.Work
	WQFlags     = workqueue.Flags
	QueueOption = workqueue.QueueOption
)

// The WQ_* flags.
//
// Kernel: include/linux/workqueue.h:enum wq_flags.
const (
	WQUnbound    = workqueue.Unbound    // WQ_UNBOUND
	WQMemReclaim = workqueue.MemReclaim // WQ_MEM_RECLAIM: a rescuer task
	WQHighPri    = workqueue.HighPri    // WQ_HIGHPRI
)

// ErrWouldBlock is wrapped by the error of a contended Lock taken by a
// daemon that runs inline (kswapd, kcompactd in the deterministic mode).
var ErrWouldBlock = lockdep.ErrWouldBlock

// Shrinker is a cache reclaim can shrink; ShrinkControl what it is asked.
// A shrinker's Scan runs in the reclaiming task (sc.Task) with the
// fs_reclaim map held: a Lock it takes there depends on reclaim.
type (
	Shrinker      = reclaim.Shrinker
	ShrinkControl = reclaim.ShrinkControl
)

// ShrinkStop is what a Scan returns when it cannot make progress now
// (SHRINK_STOP).
const ShrinkStop = reclaim.ShrinkStop

// NewLock returns a lock of a new lock class named name ("&sb->s_umount",
// "xfs_ilock").
//
// Kernel: include/linux/mutex.h:mutex_init() (a static lock class key
// per init site).
func (s *System) NewLock(name string) *Lock {
	return s.lockdep.NewLock(s.lockdep.NewClass(name))
}

// HeldLocks returns the names of the lock classes t holds, oldest first:
// what lockdep's "locks held by" lists.
//
// Kernel: kernel/locking/lockdep.c:lockdep_print_held_locks().
func (s *System) HeldLocks(t *memalloc.Task) []string { return s.lockdep.Held(t) }

// LockdepReports returns the number of reports lockdep made. After its
// first report lockdep turns itself off, as the kernel's does.
//
// Kernel: kernel/locking/lockdep.c (debug_locks).
func (s *System) LockdepReports() int { return s.lockdep.Reports() }

// NewWorkqueue makes a workqueue; WQMemReclaim gives it a rescuer.
//
// Kernel: kernel/workqueue.c:alloc_workqueue().
func (s *System) NewWorkqueue(name string, flags WQFlags) *Workqueue {
	return workqueue.New(name, flags, workqueue.Options{
		Lockdep: s.lockdep,
		NewTask: s.newKthread,
		Report:  s.report,
		Now:     s.Now,
		Once:    &s.wqOnce,
		CPUs:    s.cfg.CPUs,
	})
}

// NewWork makes a work item named name (as lockdep names its map,
// "(work_completion)(&w->work)") that runs fn on a worker task.
//
// Kernel: include/linux/workqueue.h:INIT_WORK().
func NewWork(name string, fn func(t *memalloc.Task) error) *Work { return workqueue.NewWork(name, fn) }

// CarryScope queues work so that it runs with the submitter's
// PF_MEMALLOC_NOFS / PF_MEMALLOC_NOIO scope: the opt-in the kernel does
// not have.
func CarryScope() QueueOption { return workqueue.CarryScope() }

// RegisterShrinker adds a shrinker that reclaim (direct and kswapd) asks
// to give memory back.
//
// Kernel: mm/shrinker.c:shrinker_register().
func (s *System) RegisterShrinker(sh Shrinker) { s.reclaim.RegisterShrinker(sh) }

// newKthread creates a kernel thread's task: a workqueue worker or
// rescuer, with its pid and flags.
//
// Kernel: kernel/kthread.c:kthread_create_on_node().
func (s *System) newKthread(name string, flags memalloc.Flags) *memalloc.Task {
	pid := int(s.nextPID.Add(1) - 1)
	cpu := int((s.nextCPU.Add(1) - 1) % int64(s.cfg.CPUs))
	t := memalloc.NewTaskWith(name, memalloc.WithPID(pid), memalloc.WithCPU(cpu),
		memalloc.WithOwner(&s.owner), memalloc.WithFlags(flags))
	s.model.AddProc(t, true)
	return t
}
