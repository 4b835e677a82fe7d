// Package memalloc models the per-task allocation context: the subset of
// task_struct that allocation reads (comm, pid, PF flags, CPU) and the scoped
// allocation API of include/linux/sched/mm.h — PF_MEMALLOC_NOFS, _NOIO and
// _PIN scopes, PF_MEMALLOC, memalloc_flags_save/restore with the 7.2 cookie
// semantics — and current_gfp_context, which turns a caller's gfp mask into
// the one its allocation really uses.
//
// The kernel reads the scope from current; Go has no goroutine-local storage,
// so a *Task is passed explicitly to every call that may allocate, and a
// context.Context may carry it (WithTask, TaskFrom). A Task belongs to one
// goroutine at a time. The idiom is the kernel's, with the reason for the
// scope written next to it:
//
//	// The btree lock is held: reclaim must not re-enter the filesystem.
//	defer t.Restore(t.SaveNoFS())
//
// # The reverted flags
//
// PF_MEMALLOC_NORECLAIM and PF_MEMALLOC_NOWARN existed from v6.9 (likely) to
// v6.12-rc3, were used only by bcachefs, and were reverted (9a8da05d7ad6)
// after the mm maintainers objected that a NORECLAIM scope turns the
// __GFP_NOFAIL requests nested in it into unsupported non-blocking NOFAIL.
// mmsim keeps them as a what-if, at their old values, so that argument can be
// run: a task that sets them gets v6.9–v6.11's current_gfp_context, quirks
// included. Nothing upstream behaves this way in 7.2.
//
// # Scope misuse
//
// The kernel's save/restore is plain arithmetic and silently gets misuse
// wrong. mmsim keeps the arithmetic and records, as a sticky error on the task
// (Err, wrapping ErrScope and the simulator's BUG sentinel), a restore with a
// cookie holding bits that are not set, a restore that clears a bit a
// still-open save asked for, and one that clears a flag the task was created
// with. Restoring scopes of different flags out of order is correct kernel
// usage and is not reported. Cookies are plain values, so some misuse cannot
// be told from correct usage at the moment it happens; mmsim reports only
// what is certain (see the ledger in ledger.go), never a false alarm.
//
// # Kernel → Go
//
//	struct task_struct (comm, pid, flags)    Task (Comm, PID, Flags)
//	copy_process(), kthread()                NewTask, NewTaskWith (WithPID, WithCPU, WithFlags)
//	current                                  *Task, passed explicitly; WithTask, TaskFrom
//	TASK_COMM_LEN                            TaskCommLen
//	task_cpu(), set_task_cpu()               Task.CPU, Task.SetCPU
//	PF_EXITING, PF_WQ_WORKER, PF_DUMPCORE    PFExiting, PFWQWorker, PFDumpCore
//	PF_MEMALLOC, PF_KCOMPACTD, PF_KSWAPD     PFMemalloc, PFKcompactd, PFKswapd
//	PF_MEMALLOC_NOFS, _NOIO, _PIN            PFMemallocNoFS, PFMemallocNoIO, PFMemallocPin
//	PF_KTHREAD                               PFKthread
//	PF_MEMALLOC_NORECLAIM, _NOWARN           PFMemallocNoReclaim, PFMemallocNoWarn
//	  (6.9–6.11; PF__HOLE__00800000 and        (what-if only)
//	  PF__HOLE__01000000 in 7.2)
//	memalloc_flags_save(), _restore()        Task.SaveFlags, Task.Restore
//	memalloc_nofs_save()                     Task.SaveNoFS
//	memalloc_noio_save()                     Task.SaveNoIO
//	memalloc_pin_save()                      Task.SavePin
//	memalloc_noreclaim_save() (PF_MEMALLOC)  Task.SaveMemalloc
//	memalloc_*_restore()                     Task.Restore
//	current_gfp_context()                    Task.GFPContext
//	current->alloc_tag                       Task.AllocTag
//	alloc_tag_save(), alloc_tag_restore()    Task.SaveAllocTag, Task.RestoreAllocTag
//
// # Locking
//
// None. Each Task is owned by one goroutine; its flags are atomic so other
// goroutines may read them (Task.Flags), as the kernel reads another task's
// flags. Under the invariants build tag, a Task used by two goroutines at once
// panics.
package memalloc
