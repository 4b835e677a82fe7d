// Package lockdep is mmsim's lock validator: a model of the kernel's lockdep
// (CONFIG_PROVE_LOCKING) for the locks that simulated kernel code takes —
// filesystem locks that shrinkers need, the fs_reclaim pseudo-lock that
// direct reclaim and kswapd hold, and the lockdep maps of work items and
// workqueues — plus what the kernel does not have: a wait-for graph that
// turns an actual wait in a cycle into an error instead of a hang.
//
// Two questions, two mechanisms:
//
//   - "Could this deadlock?" is lockdep's: every acquire records, between
//     lock classes, the dependency held→new (check_prevs_add); a new
//     dependency that closes a cycle in the class graph (a breadth-first
//     search, check_noncircular) is reported in lockdep's words, "WARNING:
//     possible circular locking dependency detected", with the Go call
//     stacks where each dependency of the chain was first recorded. The
//     deadlock need not happen: seeing each order once is enough.
//   - "Is this deadlocked now?" is mmsim's: a contended Lock follows the
//     chain task → what it waits for → who holds that → what that task waits
//     for … (locks, and any Waitable such as a work item being flushed); if
//     the chain comes back to the caller, Lock returns an error wrapping
//     Options.Deadlock (the root passes zone.ErrDeadlock) and reports it
//     instead of waiting for ever.
//
// # Deterministic mode
//
// In mmsim's deterministic mode kernel daemons (kswapd) run inline on the
// goroutine that moved the simulated clock, and work items run inline on the
// goroutine that flushes them, as another task. So a task can be waiting
// while its goroutine runs someone else: the flusher of a work item marks
// itself waiting on the item (SetWaiting) while the worker runs it on the
// flusher's goroutine, and a lock the worker then finds held by the flusher
// is a deadlock, which the wait-for graph sees. A contended Lock with no
// cycle really blocks (the owner, on another goroutine, will release) —
// except for a task for which Options.Inline returns true (kswapd,
// kcompactd running inline): blocking would stop the goroutine that the
// owner may need, so Lock returns an error wrapping ErrWouldBlock, and the
// caller (a shrinker) gives up as after a failed trylock.
//
// # Once
//
// After its first report the kernel's lockdep turns itself off
// (debug_locks_off): only the first problem of a boot is ever printed. mmsim
// does the same by default — dependency recording and the three lockdep
// reports stop, while lock ownership, the held-lock stacks and the
// deadlock detection go on. Options.KeepReporting keeps lockdep on and
// reports each distinct cycle once instead.
//
// # Kernel map
//
//	kernel                                    mmsim
//	struct lock_class, lock_class_key         Class (NewClass; NewMap shares a class per name)
//	struct lockdep_map                        the map inside Lock and Map
//	struct mutex (+ its dep_map)              Lock
//	lock_map_acquire / lock_map_release       Map.Acquire / Map.Release
//	__fs_reclaim_map, fs_reclaim_acquire      Checker.FSReclaimAcquire / FSReclaimRelease
//	might_alloc → fs_reclaim_acquire+release  Checker.MightAlloc
//	check_prevs_add, check_prev_add           validateLocked, addDependencyLocked
//	check_noncircular (BFS)                   pathBetween
//	print_circular_bug                        circularReportLocked
//	print_deadlock_bug (recursive locking)    recursiveReportLocked
//	print_unlock_imbalance_bug                Lock.Unlock, Map.Release
//	debug_locks_off                           the off flag
//	hung-task detector (a wait for ever)      the wait-for graph, ErrDeadlock
//
// # Lock order
//
//	Checker.mu (all lockdep state: classes, edges, held stacks, owners, waits)
//	└── whatever a Waitable's Holders takes (a work item's mutex)
//
// Reports go to Options.Report after Checker.mu is released. A Waitable must
// not call into the Checker from Holders.
package lockdep
