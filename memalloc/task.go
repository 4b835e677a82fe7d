package memalloc

import (
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/mmsim/mmsim/internal/invariants"
)

// TaskCommLen is the size of task_struct.comm, terminating NUL included: a
// task's name keeps at most TaskCommLen-1 bytes.
//
// Kernel: include/linux/sched.h:TASK_COMM_LEN.
const TaskCommLen = 16

// Task is the simulated subset of task_struct that allocation needs: the
// kernel's "current". Go has no goroutine-local storage, so it is passed
// explicitly, as the first parameter, to every call that may allocate.
//
// A Task belongs to one goroutine at a time, its owner: the methods that
// change it (SaveFlags, Restore and the Save* helpers, SetCPU,
// SaveAllocTag, RestoreAllocTag, SetComm) and the ones that read what only
// the owner keeps (GFPContext, Err, AllocTag) may be called only by the
// owner.
// Handing a Task to another goroutine transfers it. Flags, Comm and PID may
// be read from any goroutine, as the kernel reads another task's flags.
// Under the invariants build tag, concurrent use by two goroutines panics.
//
// Kernel: include/linux/sched.h:struct task_struct.
type Task struct {
	// comm is the task's name, at most TaskCommLen-1 bytes. Only the
	// owner writes it (SetComm); it is atomic so that other goroutines may
	// read it, as the kernel's get_task_comm reads another task's.
	comm atomic.Pointer[string]
	// pid is the task's id. Invariant: immutable after NewTask.
	pid int

	// flags holds the PF_* flags. Only the owner writes it; it is atomic so
	// that other goroutines (the OOM killer, a report) may read it, as the
	// kernel reads another task's flags with READ_ONCE.
	flags atomic.Uint32

	// cpu is the simulated CPU the task runs on: its allocations use that
	// CPU's per-cpu page lists. Owned by the task goroutine.
	cpu int

	// scopes records the open memalloc_flags_save scopes, to detect
	// misuse. Owned by the task goroutine.
	scopes ledger

	// err is the first scope misuse detected on this task (sticky).
	// Owned by the task goroutine.
	err error

	// allocTag is current->alloc_tag: the allocation tag of the API call
	// in progress, which the allocation-profiling hooks charge; nil when
	// none is set. What a tag is belongs to the profiler: memalloc only
	// keeps it. Owned by the task goroutine.
	allocTag any

	// owner identifies what created the task (a System), for its callers
	// to check that a task is theirs. Invariant: immutable after
	// NewTaskWith.
	owner *Owner

	// users counts the goroutines inside a method that requires the owner.
	// Atomic because its whole point is to see two goroutines at once.
	// Used only under the invariants build tag.
	users atomic.Int32
}

// TaskOption sets a property of a new Task.
type TaskOption func(*Task)

// WithPID gives the task its pid. The System gives every task it creates a
// unique one; memalloc alone does not.
func WithPID(pid int) TaskOption { return func(t *Task) { t.pid = pid } }

// WithCPU places the task on a simulated CPU.
func WithCPU(cpu int) TaskOption { return func(t *Task) { t.cpu = cpu } }

// WithFlags starts the task with PF flags already set, as kernel-thread
// creation sets PF_KTHREAD and kswapd sets PF_MEMALLOC|PF_KSWAPD for its whole
// life. These are not scopes: no Restore belongs to them.
//
// Kernel: kernel/kthread.c:kthread(), mm/vmscan.c:kswapd().
func WithFlags(f Flags) TaskOption { return func(t *Task) { t.flags.Store(uint32(f)) } }

// Owner is an identity that what creates tasks (a System) keeps, so that it
// can tell its tasks from others: compare Task.Owner with its address.
type Owner struct{ _ byte } // not zero-size: distinct Owners have distinct addresses

// WithOwner records what created the task, so that it can refuse tasks it
// did not create (see Task.Owner).
func WithOwner(owner *Owner) TaskOption { return func(t *Task) { t.owner = owner } }

// Owner returns the identity of what created the task (WithOwner), or nil.
func (t *Task) Owner() *Owner { return t.owner }

// NewTask returns a task named name (cut to TaskCommLen-1 bytes, as the
// kernel's comm is) with no PF flags set, pid 0, on CPU 0.
//
// Kernel: kernel/fork.c:copy_process() (the parts allocation reads),
// fs/exec.c:__set_task_comm().
func NewTask(name string) *Task { return NewTaskWith(name) }

// NewTaskWith is NewTask with options: a pid, a CPU, PF flags for the task's
// whole life.
//
// Kernel: kernel/fork.c:copy_process(), kernel/kthread.c:kthread().
func NewTaskWith(name string, opts ...TaskOption) *Task {
	t := &Task{}
	t.setComm(name)
	for _, o := range opts {
		o(t)
	}
	t.scopes.init(t.Flags())
	return t
}

// Comm returns the task's name. It may be called from any goroutine.
//
// Kernel: include/linux/sched.h:task_struct.comm, get_task_comm().
func (t *Task) Comm() string {
	if p := t.comm.Load(); p != nil {
		return *p
	}
	return "" // a zero Task
}

// SetComm renames the task, cutting name to TaskCommLen-1 bytes, as exec
// and prctl(PR_SET_NAME) do.
//
// Kernel: fs/exec.c:__set_task_comm().
func (t *Task) SetComm(name string) {
	t.enter()
	defer t.exit()
	t.setComm(name)
}

// setComm stores name, cut to TaskCommLen-1 bytes, as the comm.
func (t *Task) setComm(name string) {
	if len(name) > TaskCommLen-1 {
		name = name[:TaskCommLen-1]
	}
	t.comm.Store(&name)
}

// PID returns the task's pid. Kernel: include/linux/sched.h:task_struct.pid.
func (t *Task) PID() int { return t.pid }

// Flags returns the task's PF flags. It may be called from any goroutine.
//
// Kernel: include/linux/sched.h:task_struct.flags (READ_ONCE(p->flags)).
func (t *Task) Flags() Flags { return Flags(t.flags.Load()) }

// CPU returns the simulated CPU the task runs on.
//
// Kernel: include/linux/sched.h:task_cpu(), raw_smp_processor_id().
func (t *Task) CPU() int { return t.cpu }

// SetCPU moves the task to another simulated CPU. Only the owner may call it.
//
// Kernel: kernel/sched/core.c:set_task_cpu().
func (t *Task) SetCPU(cpu int) {
	t.enter()
	t.cpu = cpu
	t.exit()
}

// SaveAllocTag makes tag the task's allocation tag, which the allocations
// it makes until RestoreAllocTag are charged to, and returns the tag it
// replaces, to be handed to RestoreAllocTag. A nil tag means none. Only
// the owner may call it.
//
// Kernel: include/linux/alloc_tag.h:alloc_tag_save().
func (t *Task) SaveAllocTag(tag any) (old any) {
	t.enter()
	old, t.allocTag = t.allocTag, tag
	t.exit()
	return old
}

// RestoreAllocTag puts back the allocation tag SaveAllocTag returned. Only
// the owner may call it.
//
// Kernel: include/linux/alloc_tag.h:alloc_tag_restore().
func (t *Task) RestoreAllocTag(old any) {
	t.enter()
	t.allocTag = old
	t.exit()
}

// AllocTag returns the task's allocation tag, or nil. Only the owner may
// call it: the allocation paths read it on the task's goroutine.
//
// Kernel: include/linux/sched.h:task_struct.alloc_tag (current->alloc_tag).
func (t *Task) AllocTag() any { return t.allocTag }

// Err returns the first scope misuse detected on the task, or nil. The error
// is sticky: it stays until the task is dropped. It wraps ErrScope and the
// simulator-wide BUG sentinel.
func (t *Task) Err() error { return t.err }

// String returns "comm[pid]".
func (t *Task) String() string { return t.Comm() + "[" + strconv.Itoa(t.pid) + "]" }

// enter and exit bracket a method that only the owner may call. Under the
// invariants tag they panic when a second goroutine is inside one at the same
// time: Go exposes no goroutine id, so this stands in for gVisor's owner check.
func (t *Task) enter() {
	if invariants.Enabled && t.users.Add(1) != 1 {
		t.users.Add(-1)
		panic(fmt.Sprintf("memalloc: task %s used by two goroutines at once: "+
			"a Task belongs to one goroutine at a time", t))
	}
}

func (t *Task) exit() {
	if invariants.Enabled {
		t.users.Add(-1)
	}
}
