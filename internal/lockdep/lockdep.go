package lockdep

import (
	"errors"
	"fmt"
	"sync"

	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
)

// ErrDeadlock is wrapped by the error of a wait that would close a wait-for
// cycle, together with Options.Deadlock when that is set (the root passes
// zone.ErrDeadlock, which lockdep may not import).
//
// Kernel: kernel/hung_task.c:check_hung_task() (the kernel only notices the
// hang).
var ErrDeadlock = errors.New("lockdep: deadlock")

// ErrWouldBlock is wrapped by the error of a contended Lock from a task that
// runs inline in the deterministic mode (Options.Inline): it may not block,
// so the caller gives up as after a failed trylock.
//
// Kernel: kernel/locking/mutex.c:mutex_trylock() (the shrinker's choice).
var ErrWouldBlock = errors.New("lockdep: lock contended in a task that may not block")

// ErrUnlockBalance is wrapped, together with bug.ErrBug, by the error of a
// release of a lock the task does not hold.
//
// Kernel: kernel/locking/lockdep.c:print_unlock_imbalance_bug().
var ErrUnlockBalance = errors.New("lockdep: bad unlock balance")

// Options configures a Checker. Every field may be zero.
//
// Kernel: lib/Kconfig.debug:PROVE_LOCKING (the knobs are mmsim's).
type Options struct {
	// Report receives the reports: lockdep's WARNINGs and mmsim's
	// deadlock BUGs. Nil drops them.
	Report bug.Sink
	// Now returns the simulated time in nanoseconds, for the reports.
	Now func() int64
	// Deadlock is the sentinel the error of a deadlocked wait wraps, in
	// addition to ErrDeadlock: the root passes zone.ErrDeadlock.
	Deadlock error
	// Stacks captures Go call stacks (runtime.Callers) where a dependency
	// is first recorded and where each held lock was taken, for the
	// reports. Off, the reports carry no stacks and "at: 0x0".
	Stacks bool
	// Inline reports whether t runs inline on another task's goroutine in
	// the deterministic mode (kswapd, kcompactd): a contended Lock of such
	// a task returns ErrWouldBlock instead of blocking. Nil: never.
	Inline func(t *memalloc.Task) bool
	// Disabled starts the checker off, as a kernel without
	// CONFIG_PROVE_LOCKING: no dependency is recorded or reported, while
	// lock ownership and the deadlock check of actual waits still work.
	Disabled bool
	// KeepReporting keeps lockdep on after a report (the kernel turns it
	// off: debug_locks_off) and reports each distinct cycle once.
	KeepReporting bool
}

// Checker is one simulated machine's lockdep: the lock classes and the
// dependency graph between them, every task's held locks, the owners of the
// Locks and what each task waits for. It is safe for concurrent use.
//
// Kernel: kernel/locking/lockdep.c (the graph, held_locks in task_struct).
type Checker struct {
	opts Options

	// fsReclaim is the fs_reclaim map. Invariant: immutable after New.
	fsReclaim *Map

	mu sync.Mutex
	// names counts the classes of each name, for name_version.
	// Protected by mu.
	names map[string]int
	// shared maps a name to the class NewMap gives maps of that name.
	// Protected by mu.
	shared map[string]*Class
	// ids numbers lock instances, for their printed addresses.
	// Protected by mu.
	ids uint64
	// held is every task's stack of held locks and maps, oldest first.
	// Invariant: no empty slice is kept. Protected by mu.
	held map[*memalloc.Task][]heldLock
	// waiting is what each waiting task waits for.
	// Protected by mu.
	waiting map[*memalloc.Task]Waitable
	// off is debug_locks == 0: no more dependency recording or lockdep
	// reports (only when !opts.KeepReporting). Protected by mu.
	off bool
	// reports counts lockdep reports made. Protected by mu.
	reports int
	// cycles holds the keys of the cycles reported (KeepReporting).
	// Protected by mu.
	cycles map[string]bool
}

// New returns a Checker with the fs_reclaim map registered.
//
// Kernel: kernel/locking/lockdep.c:lockdep_init(), mm/page_alloc.c:__fs_reclaim_map.
func New(opts Options) *Checker {
	c := &Checker{
		opts:    opts,
		names:   make(map[string]int),
		shared:  make(map[string]*Class),
		held:    make(map[*memalloc.Task][]heldLock),
		waiting: make(map[*memalloc.Task]Waitable),
		cycles:  make(map[string]bool),
		off:     opts.Disabled,
	}
	c.fsReclaim = c.NewMapOf(c.NewClassKind("fs_reclaim", waitInv))
	c.fsReclaim.m.addr = staticBase
	return c
}

// Reports returns the number of lockdep reports made: circular and
// recursive dependencies and bad unlock balances. Deadlocked waits (mmsim's
// own BUG reports) are not counted.
//
// Kernel: kernel/locking/lockdep.c:debug_locks (a report clears it).
func (c *Checker) Reports() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reports
}

// Off reports whether lockdep has turned itself off after a report.
//
// Kernel: lib/debug_locks.c:debug_locks_off().
func (c *Checker) Off() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.off
}

// Lock wait types, as lockdep prints them in "{outer:inner}", with
// CONFIG_PROVE_RAW_LOCK_NESTING=y (the x86_64 default: ARCH_SUPPORTS_RT).
const (
	waitInv   = 0 // LD_WAIT_INV: lockdep maps
	waitSleep = 4 // LD_WAIT_SLEEP: mutexes, rwsems
)

// Class is a lock class: the locks initialised with one key, which lockdep
// treats as one lock for ordering. Classes of one name are numbered as
// lockdep numbers them ("name", "name#2").
//
// Kernel: include/linux/lockdep_types.h:struct lock_class.
type Class struct {
	c *Checker
	// name is the class name; version its name_version (1 for the first).
	// Invariant: immutable after creation.
	name    string
	version int
	// wait is the class's wait type. Invariant: immutable.
	wait int
	// after holds the dependencies class→other, in the order recorded.
	// Protected by c.mu.
	after []*dependency
}

// dependency is one edge of the graph: from its class to to, with the
// stack where it was first recorded.
//
// Kernel: kernel/locking/lockdep.c:struct lock_list.
type dependency struct {
	to    *Class
	trace []uintptr
}

// NewClass returns a new lock class for sleeping locks (mutexes,
// rwsems), named as lockdep prints it ("&sb->s_type->i_mutex_key"). Each
// call is a new class, as each lock_class_key is; a name already used
// prints with "#2", "#3" after it.
//
// Kernel: kernel/locking/lockdep.c:register_lock_class().
func (c *Checker) NewClass(name string) *Class { return c.NewClassKind(name, waitSleep) }

// NewClassKind is NewClass with the lockdep wait type (LD_WAIT_*: 0 for
// lockdep maps, 4 for sleeping locks).
//
// Kernel: kernel/locking/lockdep.c:register_lock_class().
func (c *Checker) NewClassKind(name string, wait int) *Class {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names[name]++
	return &Class{c: c, name: name, version: c.names[name], wait: wait}
}

// Name returns the class name as lockdep prints it: "name", or "name#2"
// for the second class of that name.
//
// Kernel: kernel/locking/lockdep.c:__print_lock_name().
func (k *Class) Name() string {
	if k.version > 1 {
		return fmt.Sprintf("%s#%d", k.name, k.version)
	}
	return k.name
}

// lockMap is a lockdep_map: an instance of a class, as held.
type lockMap struct {
	class *Class
	// addr is the address lockdep prints for the instance (synthetic).
	// Invariant: immutable after creation.
	addr uint64
}

// Printed addresses: heap instances from the direct map, static ones
// (fs_reclaim) from the kernel image.
const (
	heapBase   = 0xffff888100000000
	staticBase = 0xffffffff83a4c5a0
)

func (c *Checker) newMap(class *Class) lockMap {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids++
	return lockMap{class: class, addr: heapBase + c.ids*0x40}
}

// heldLock is an entry of a task's held-lock stack.
//
// Kernel: include/linux/lockdep.h:struct held_lock.
type heldLock struct {
	m       *lockMap
	trylock bool
	// ip is where it was taken (0 without Options.Stacks).
	ip uintptr
}

// Held returns the names of the locks t holds, oldest first, as lockdep
// prints their classes (without the parentheses).
//
// Kernel: kernel/locking/lockdep.c:lockdep_print_held_locks().
func (c *Checker) Held(t *memalloc.Task) []string {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for _, h := range c.held[t] {
		names = append(names, h.m.class.Name())
	}
	return names
}

// Depth returns how many locks and maps t holds.
//
// Kernel: include/linux/lockdep.h:lockdep_depth().
func (c *Checker) Depth(t *memalloc.Task) int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held[t])
}

// pushLocked records m as held by t.
func (c *Checker) pushLocked(t *memalloc.Task, m *lockMap, trylock bool, ip uintptr) {
	c.held[t] = append(c.held[t], heldLock{m: m, trylock: trylock, ip: ip})
}

// popLocked removes the most recent entry of m from t's held stack (locks
// may be released out of order); false if t does not hold m.
//
// Kernel: kernel/locking/lockdep.c:__lock_release(), find_held_lock().
func (c *Checker) popLocked(t *memalloc.Task, m *lockMap) bool {
	hs := c.held[t]
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].m == m {
			hs = append(hs[:i], hs[i+1:]...)
			if len(hs) == 0 {
				delete(c.held, t)
			} else {
				c.held[t] = hs
			}
			return true
		}
	}
	return false
}

// emit sends reports to the sink; called without c.mu.
func (c *Checker) emit(reps []bug.Report) {
	if c.opts.Report == nil {
		return
	}
	for _, r := range reps {
		c.opts.Report(r)
	}
}

func (c *Checker) now() int64 {
	if c.opts.Now == nil {
		return 0
	}
	return c.opts.Now()
}

// Map is a lockdep map that is not a lock: it never blocks and has no
// owner, it only records dependencies while held — a work item's or a
// workqueue's completion, the fs_reclaim pseudo-lock. All methods of a nil
// *Map do nothing, so that code may run without a Checker.
//
// Kernel: include/linux/lockdep_types.h:struct lockdep_map.
type Map struct {
	c *Checker
	m lockMap
}

// NewMap returns a map named name. Maps of one name share one class, as
// the maps initialised at one site (INIT_WORK, STATIC_LOCKDEP_MAP_INIT)
// share their static key. A nil Checker returns a nil Map.
//
// Kernel: include/linux/lockdep.h:lockdep_init_map(), STATIC_LOCKDEP_MAP_INIT.
func (c *Checker) NewMap(name string) *Map {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	k := c.shared[name]
	c.mu.Unlock()
	if k == nil {
		k = c.NewClassKind(name, waitInv)
		c.mu.Lock()
		if k2 := c.shared[name]; k2 != nil {
			k = k2
		} else {
			c.shared[name] = k
		}
		c.mu.Unlock()
	}
	return c.NewMapOf(k)
}

// NewMapOf returns a map of the given class, as a workqueue's map is of the
// key it registers for itself. A nil Checker returns a nil Map.
//
// Kernel: include/linux/lockdep.h:lockdep_init_map().
func (c *Checker) NewMapOf(class *Class) *Map {
	if c == nil {
		return nil
	}
	return &Map{c: c, m: c.newMap(class)}
}

// Name returns the map's class name as lockdep prints it.
//
// Kernel: kernel/locking/lockdep.c:print_lockdep_cache().
func (m *Map) Name() string {
	if m == nil {
		return ""
	}
	return m.m.class.Name()
}

// Acquire takes the map for t: records the dependencies of what t holds on
// it, reports a cycle they close, and pushes it on t's held stack. It never
// blocks.
//
// Kernel: include/linux/lockdep.h:lock_map_acquire().
func (m *Map) Acquire(t *memalloc.Task) {
	if m == nil {
		return
	}
	c := m.c
	ip := c.callerPC()
	c.mu.Lock()
	reps := c.validateLocked(t, &m.m, ip)
	c.pushLocked(t, &m.m, false, ip)
	c.mu.Unlock()
	c.emit(reps)
}

// Release drops the map from t's held stack. A map t does not hold is a
// bad unlock balance: reported, an error returned, nothing changed.
//
// Kernel: include/linux/lockdep.h:lock_map_release().
func (m *Map) Release(t *memalloc.Task) error {
	if m == nil {
		return nil
	}
	return m.c.release(t, &m.m, nil)
}

// release pops m from t's held stack, or reports the imbalance. owner, when
// not nil, is also checked: a Lock is released only by the task that owns
// it.
func (c *Checker) release(t *memalloc.Task, m *lockMap, l *Lock) error {
	ip := c.callerPC()
	c.mu.Lock()
	if (l == nil || l.owner == t) && c.popLocked(t, m) {
		if l != nil {
			l.owner = nil
			l.cond.Broadcast()
		}
		c.mu.Unlock()
		return nil
	}
	var reps []bug.Report
	if !c.off {
		reps = append(reps, c.unlockImbalanceReportLocked(t, m, ip))
	}
	c.mu.Unlock()
	c.emit(reps)
	return &UnlockError{Task: taskName(t), Lock: m.class.Name()}
}

// UnlockError is the error of a release of a lock the task does not hold.
//
// Kernel: kernel/locking/lockdep.c:print_unlock_imbalance_bug().
type UnlockError struct {
	Task string // "comm/pid"
	Lock string // the class name
}

// Error returns the message.
//
// Kernel: kernel/locking/lockdep.c:print_unlock_imbalance_bug().
func (e *UnlockError) Error() string {
	return fmt.Sprintf("lockdep: %s is trying to release lock (%s) but does not hold it", e.Task, e.Lock)
}

// Unwrap returns ErrUnlockBalance and bug.ErrBug.
//
// Kernel: kernel/locking/lockdep.c:print_unlock_imbalance_bug().
func (e *UnlockError) Unwrap() []error { return []error{ErrUnlockBalance, bug.ErrBug} }

func taskName(t *memalloc.Task) string { return fmt.Sprintf("%s/%d", t.Comm(), t.PID()) }
