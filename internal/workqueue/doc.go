// Package workqueue is mmsim's model of the kernel's workqueues, as far as
// memory allocation cares: work items run by worker tasks of their own,
// which do not inherit the submitter's PF_MEMALLOC_NOFS / NOIO scope; the
// lockdep maps of work items and workqueues, which let lockdep see a
// deadlock through a flush; WQ_MEM_RECLAIM and its rescuer.
//
// The question it answers (seed debate 002): a task in a NOFS scope holds a
// filesystem lock, queues work and flushes it; the worker makes a
// GFP_KERNEL allocation that enters direct reclaim, where a filesystem
// shrinker needs that lock. The scope does not travel with the work (unless
// the submitter asks: CarryScope, mmsim's opt-in, which the kernel does not
// have), so lockdep sees lock → work → fs_reclaim → lock and, if it happens,
// the shrinker's wait returns a deadlock error instead of hanging.
//
// # Scheduling
//
// Work runs deterministically: only when someone waits for it (FlushWork,
// Flush, Destroy), on the waiter's goroutine but as a worker task, or when
// the simulator schedules the workers (RunPending). The flusher is marked
// waiting on the work (lockdep.Checker.SetWaiting) while it runs, so a lock
// the work needs from the flusher is a deadlock the Checker detects.
//
// Workers: each workqueue keeps its own pool of worker tasks (the kernel's
// pools are shared between workqueues of equal attributes), created through
// Options.NewTask with PF_WQ_WORKER|PF_KTHREAD and named as the kernel names
// them ("kworker/0:1", "kworker/u4:2", "kworker/0:1H"). Creating a worker
// beyond the first may allocate (Options.AllocWorker, as create_worker's
// kzalloc does); when that fails, a WQ_MEM_RECLAIM workqueue's rescuer
// ("kworker/R-name", created with the workqueue) runs the work, and any
// other workqueue's work cannot run: ErrNoWorker.
//
// # Kernel map
//
//	kernel                                   mmsim
//	struct workqueue_struct, alloc_workqueue Workqueue, New
//	WQ_* flags                               Flags (MemReclaim, Unbound, …)
//	struct work_struct, INIT_WORK            Work, NewWork
//	queue_work                               Workqueue.Queue
//	flush_work, __flush_work                 Workqueue.FlushWork
//	flush_workqueue                          Workqueue.Flush
//	destroy_workqueue, drain_workqueue       Workqueue.Destroy
//	process_one_work                         run
//	worker_thread (scheduling)               Workqueue.RunPending
//	create_worker, init_rescuer              worker, New
//	check_flush_dependency                   checkFlushDependency
//
// # Lock order
//
//	Workqueue.mu
//	└── Work.mu
//
// Neither is held across a call into lockdep or a work function; lockdep's
// mutex may be held while Work.Holders takes Work.mu.
package workqueue
