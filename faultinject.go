package mmsim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/internal/slab"
	"github.com/mmsim/mmsim/memalloc"
)

// Fault injection: fail_page_alloc and failslab with the knobs of their
// debugfs directories, the per-task /proc/<pid>/make-it-fail and
// /proc/<pid>/fail-nth, and FailScope, which fails the nth allocation
// attempt inside a scope. Config.FaultInjection builds them in; a System
// without it keeps the allocator's hook-free fast path, and one with it
// pays one atomic load per allocation while nothing is armed.
//
// A fault-injection point is reached only by a request its facility does
// not exempt: fail_page_alloc exempts __GFP_NOFAIL, orders below
// min-order, and (by default) __GFP_HIGHMEM and __GFP_DIRECT_RECLAIM
// requests; failslab exempts __GFP_NOFAIL, (by default)
// __GFP_DIRECT_RECLAIM requests and, with cache-filter, caches without
// SLAB_FAILSLAB. Only a request that reaches the point counts towards
// fail-nth, as in the kernel, where those tests come before
// should_fail_ex(). With the kernel's defaults a GFP_KERNEL request is
// therefore never failed; clear IgnoreGFPWait (and set MinOrder 0) to
// reach every allocation, as syzkaller does.

// FaultAttr holds the knobs every fault-injection facility has: struct
// fault_attr as its debugfs directory shows it. The zero FaultAttr never
// fails anything (probability 0, and times 0 would stop it anyway); start
// from DefaultFaultAttr, or from DefaultFailPageAlloc and DefaultFailslab.
//
// Kernel: include/linux/fault-inject.h:struct fault_attr.
type FaultAttr struct {
	// Probability is the percentage (0..100) of the requests that reach
	// the fault point and pass the other tests that fail. 0 turns the
	// facility off (fail-nth still works).
	Probability int
	// Interval makes only every Interval-th request that passes the
	// other tests a candidate (0 and 1: every one). The count is the
	// facility's and is never reset.
	Interval int
	// Times is how many more failures may be injected: it counts down
	// with each one; -1 is no limit, 0 injects nothing.
	Times int
	// Space lets requests through until their sizes have used it up:
	// a request smaller than what is left subtracts its size and passes.
	// fail_page_alloc counts pages (1<<order), failslab bytes (the
	// cache's object size).
	Space int
	// Verbose is 0 for silence, 1 for the "FAULT_INJECTION: forcing a
	// failure." report, 2 (the kernel's default) for that report and
	// the stack. mmsim's reports carry no stack: 2 prints what 1 does.
	Verbose int
	// TaskFilter fails only tasks whose make-it-fail is set
	// (System.SetMakeItFail).
	TaskFilter bool
}

// DefaultFaultAttr returns a fault_attr as the kernel initialises it:
// probability 0, interval 1, times 1, space 0, verbose 2, no task filter.
//
// Kernel: include/linux/fault-inject.h:FAULT_ATTR_INITIALIZER.
func DefaultFaultAttr() FaultAttr { return FaultAttr{Interval: 1, Times: 1, Verbose: 2} }

// FailPageAlloc is /sys/kernel/debug/fail_page_alloc: fault injection
// for the page allocator.
//
// Kernel: mm/fail_page_alloc.c:fail_page_alloc.
type FailPageAlloc struct {
	FaultAttr
	// IgnoreGFPWait (ignore-gfp-wait, default true) exempts requests
	// that may direct-reclaim (__GFP_DIRECT_RECLAIM).
	IgnoreGFPWait bool
	// IgnoreGFPHighmem (ignore-gfp-highmem, default true) exempts
	// __GFP_HIGHMEM requests, such as GFP_HIGHUSER's.
	IgnoreGFPHighmem bool
	// MinOrder (min-order, default 1) exempts orders below it.
	MinOrder Order
}

// DefaultFailPageAlloc returns fail_page_alloc as the kernel boots it:
// DefaultFaultAttr, ignore-gfp-wait and ignore-gfp-highmem set, min-order 1.
//
// Kernel: mm/fail_page_alloc.c:fail_page_alloc.
func DefaultFailPageAlloc() FailPageAlloc {
	return FailPageAlloc{FaultAttr: DefaultFaultAttr(), IgnoreGFPWait: true, IgnoreGFPHighmem: true, MinOrder: 1}
}

// Failslab is /sys/kernel/debug/failslab: fault injection for slab
// object allocations (kmalloc up to KMALLOC_MAX_CACHE_SIZE and
// kmem_cache_alloc; a larger kmalloc goes to the page allocator and to
// fail_page_alloc).
//
// Kernel: mm/failslab.c:failslab.
type Failslab struct {
	FaultAttr
	// IgnoreGFPWait (ignore-gfp-wait, default true) exempts requests
	// that may direct-reclaim (__GFP_DIRECT_RECLAIM).
	IgnoreGFPWait bool
	// CacheFilter (cache-filter, default false) limits failslab to the
	// caches marked SLAB_FAILSLAB (Cache.SetFailslab).
	CacheFilter bool
}

// DefaultFailslab returns failslab as the kernel boots it:
// DefaultFaultAttr, ignore-gfp-wait set, no cache filter.
//
// Kernel: mm/failslab.c:failslab.
func DefaultFailslab() Failslab {
	return Failslab{FaultAttr: DefaultFaultAttr(), IgnoreGFPWait: true}
}

// The names of the two facilities, as their debugfs directories and the
// FAULT_INJECTION report name them.
//
// Kernel: mm/fail_page_alloc.c:fail_page_alloc_debugfs(),
// mm/failslab.c:failslab_debugfs_init() (fault_create_debugfs_attr).
const (
	FacilityFailPageAlloc = "fail_page_alloc"
	FacilityFailslab      = "failslab"
)

// validate returns every invalid knob of a, each prefixed with name.
func (a FaultAttr) validate(name string) []error {
	var errs []error
	if a.Probability < 0 || a.Probability > 100 {
		errs = append(errs, fmt.Errorf("%s: probability %d: a percentage, 0..100", name, a.Probability))
	}
	if a.Interval < 0 {
		errs = append(errs, fmt.Errorf("%s: interval %d: 0 or more", name, a.Interval))
	}
	if a.Times < -1 {
		errs = append(errs, fmt.Errorf("%s: times %d: -1 (no limit) or more", name, a.Times))
	}
	if a.Space < 0 {
		errs = append(errs, fmt.Errorf("%s: space %d: 0 or more", name, a.Space))
	}
	if a.Verbose < 0 {
		errs = append(errs, fmt.Errorf("%s: verbose %d: 0, 1 or 2", name, a.Verbose))
	}
	return errs
}

// FaultPoint is one request that reached a fault-injection point: what
// should_fail_alloc_page or should_failslab passed to should_fail_ex.
//
// Kernel: lib/fault-inject.c:should_fail_ex() (attr, size).
type FaultPoint struct {
	// Facility is FacilityFailPageAlloc or FacilityFailslab.
	Facility string
	// Mask is the request's mask: after the task's scope for a page
	// allocation, as the caller gave it for a slab object.
	Mask gfp.Mask
	// Order is the page allocation's order (fail_page_alloc).
	Order Order
	// Cache is the slab cache's name (failslab).
	Cache string
	// Size is what space counts: 1<<Order pages, or the cache's object
	// size in bytes.
	Size int
}

// String prints the point as "fail_page_alloc order:0 mode:0xcc0(GFP_KERNEL)"
// or "failslab kmalloc-64 (64 bytes) mode:0xcc0(GFP_KERNEL)".
func (p FaultPoint) String() string {
	if p.Facility == FacilityFailslab {
		return fmt.Sprintf("%s %s (%d bytes) mode:%s", p.Facility, p.Cache, p.Size, p.Mask.Mode())
	}
	return fmt.Sprintf("%s order:%d mode:%s", p.Facility, p.Order, p.Mask.Mode())
}

// faultInject is the fault-injection state of one System.
type faultInject struct {
	s *System
	// armed says whether any request could fail or be counted: a
	// facility with a probability, or a task with a fail-nth or an open
	// FailScope. Atomic: every allocation loads it, and while it is
	// false that is all it does. Invariant: it equals armedLocked()
	// whenever mu is free.
	armed atomic.Bool

	mu sync.Mutex
	// page and slab are the two facilities' knobs; their Times and
	// Space count down. Protected by mu.
	page FailPageAlloc
	slab Failslab
	// pageCount and slabCount are attr->count, the interval counters.
	// Protected by mu.
	pageCount, slabCount uint64
	// rng is the PRNG of the probability test, seeded from Config.Seed.
	// Protected by mu.
	rng *rand.Rand
	// tasks holds the tasks with a non-zero make-it-fail, fail-nth or an
	// open scope. Protected by mu.
	tasks map[*memalloc.Task]*faultTask
	// nArmed counts the tasks of tasks that are armed. Protected by mu.
	nArmed int
}

// faultTask is the fault-injection state of one task: the task_struct
// fields and the scopes open on it.
type faultTask struct {
	makeItFail bool
	failNth    int
	// scopes are the open FailScopes, innermost last.
	scopes []*FailScope
}

func (ft *faultTask) armed() bool { return ft.failNth > 0 || len(ft.scopes) > 0 }

// faultSeedStream distinguishes fault injection's PCG stream from any other
// the System seeds from Config.Seed.
const faultSeedStream = 0x6661756c74 // "fault"

func newFaultInject(s *System) *faultInject {
	return &faultInject{
		s:     s,
		page:  DefaultFailPageAlloc(),
		slab:  DefaultFailslab(),
		rng:   rand.New(rand.NewPCG(uint64(s.cfg.Seed), faultSeedStream)),
		tasks: map[*memalloc.Task]*faultTask{},
	}
}

// rearmLocked recomputes armed.
//
// Preconditions: f.mu is held.
func (f *faultInject) rearmLocked() {
	f.armed.Store(f.page.Probability > 0 || f.slab.Probability > 0 || f.nArmed > 0)
}

// taskLocked returns t's state, creating it.
//
// Preconditions: f.mu is held.
func (f *faultInject) taskLocked(t *memalloc.Task) *faultTask {
	ft := f.tasks[t]
	if ft == nil {
		ft = &faultTask{}
		f.tasks[t] = ft
	}
	return ft
}

// changedLocked accounts for a change of t's state that found it armed or
// not (was), and drops a state that holds nothing.
//
// Preconditions: f.mu is held.
func (f *faultInject) changedLocked(t *memalloc.Task, ft *faultTask, was bool) {
	switch now := ft.armed(); {
	case now && !was:
		f.nArmed++
	case was && !now:
		f.nArmed--
	}
	if !ft.makeItFail && !ft.armed() {
		delete(f.tasks, t)
	}
	f.rearmLocked()
}

// shouldFailAllocPage is should_fail_alloc_page: the page allocator's fault
// point, at the entry of __alloc_pages with the final mask. A failed
// request returns NULL without entering the slow path or warn_alloc.
//
// Kernel: mm/fail_page_alloc.c:should_fail_alloc_page().
func (f *faultInject) shouldFailAllocPage(t *memalloc.Task, mask gfp.Mask, order Order) bool {
	if !f.armed.Load() {
		return false
	}
	f.mu.Lock()
	p := &f.page
	if order < p.MinOrder || mask&gfp.NoFail != 0 ||
		p.IgnoreGFPHighmem && mask&gfp.HighMem != 0 ||
		p.IgnoreGFPWait && mask&gfp.DirectReclaim != 0 {
		f.mu.Unlock()
		return false
	}
	fp := FaultPoint{Facility: FacilityFailPageAlloc, Mask: mask, Order: order, Size: 1 << order}
	fail, dump := f.shouldFailExLocked(t, &p.FaultAttr, &f.pageCount, fp, mask&gfp.NoWarn != 0)
	f.mu.Unlock()
	f.dump(t, dump)
	return fail
}

// shouldFailslab is should_failslab: the slab allocator's fault point, at
// the entry of every object allocation.
//
// Kernel: mm/failslab.c:should_failslab().
func (f *faultInject) shouldFailslab(t *memalloc.Task, c *slab.Cache, mask gfp.Mask) bool {
	if !f.armed.Load() {
		return false
	}
	f.mu.Lock()
	sl := &f.slab
	if mask&gfp.NoFail != 0 ||
		sl.IgnoreGFPWait && mask&gfp.DirectReclaim != 0 ||
		sl.CacheFilter && c.Flags()&slab.Failslab == 0 {
		f.mu.Unlock()
		return false
	}
	fp := FaultPoint{Facility: FacilityFailslab, Mask: mask, Cache: c.Name(), Size: c.ObjectSize()}
	fail, dump := f.shouldFailExLocked(t, &sl.FaultAttr, &f.slabCount, fp, mask&gfp.NoWarn != 0)
	f.mu.Unlock()
	f.dump(t, dump)
	return fail
}

// shouldFailExLocked is should_fail_ex: the task's fail-nth first, then
// the facility's probability, task filter, times, space and interval, and
// the dice. It returns whether to fail and fail_dump's text ("" for
// none). Every open scope of t counts the point.
//
// Preconditions: f.mu is held.
//
// Kernel: lib/fault-inject.c:should_fail_ex().
func (f *faultInject) shouldFailExLocked(t *memalloc.Task, a *FaultAttr, count *uint64, fp FaultPoint, nowarn bool) (bool, string) {
	ft := f.tasks[t]
	if ft != nil {
		for _, sc := range ft.scopes {
			sc.count++
			sc.points = append(sc.points, fp)
		}
		if ft.failNth > 0 {
			ft.failNth--
			if ft.failNth > 0 {
				return false, ""
			}
			if n := len(ft.scopes); n > 0 {
				inner := ft.scopes[n-1]
				inner.injected, inner.hit = fp, true
			}
			f.changedLocked(t, ft, true)
			return true, f.failLocked(a, fp.Facility, nowarn)
		}
	}
	if a.Probability == 0 {
		return false, ""
	}
	if a.TaskFilter && (ft == nil || !ft.makeItFail) {
		return false, ""
	}
	if a.Times == 0 {
		return false, ""
	}
	if a.Space > fp.Size {
		a.Space -= fp.Size
		return false, ""
	}
	if a.Interval > 1 {
		*count++
		if *count%uint64(a.Interval) != 0 {
			return false, ""
		}
	}
	if a.Probability <= f.rng.IntN(100) {
		return false, ""
	}
	return true, f.failLocked(a, fp.Facility, nowarn)
}

// failLocked is should_fail_ex's fail label: fail_dump's text (unless
// FAULT_NOWARN or verbose 0), then times counts down.
//
// Preconditions: f.mu is held.
//
// Kernel: lib/fault-inject.c:should_fail_ex() (fail:), fail_dump().
func (f *faultInject) failLocked(a *FaultAttr, name string, nowarn bool) string {
	var dump string
	if !nowarn && a.Verbose > 0 {
		dump = fmt.Sprintf("FAULT_INJECTION: forcing a failure.\nname %s, interval %d, probability %d, space %d, times %d",
			name, a.Interval, a.Probability, a.Space, a.Times)
	}
	if a.Times != -1 && a.Times != 0 {
		a.Times--
	}
	return dump
}

// dump reports fail_dump's text, if any, as the KERN_NOTICE printk it is.
func (f *faultInject) dump(t *memalloc.Task, text string) {
	if text != "" {
		f.s.reportAs(t, bug.Info, "lib/fault-inject.c:fail_dump", text)
	}
}

// errNoFaultInjection is the error of a fault-injection call on a System
// built without Config.FaultInjection: the debugfs and proc files do not
// exist.
func errNoFaultInjection(what string) error {
	return fmt.Errorf("%w: %s: fault injection is not built in (Config.FaultInjection)", ErrInvalid, what)
}

// SetFailPageAlloc sets fail_page_alloc's knobs, as writing its debugfs
// files does; the interval counter carries on. An invalid knob (a
// probability outside 0..100, a negative interval, space or verbose,
// times below -1) returns an error wrapping ErrInvalid that lists every
// one, and changes nothing; so does a System without
// Config.FaultInjection.
//
// Differences: the kernel takes any unsigned probability (above 100 it
// always fails) and does not check the others.
//
// Kernel: mm/fail_page_alloc.c:fail_page_alloc_debugfs().
func (s *System) SetFailPageAlloc(fa FailPageAlloc) error {
	f := s.inject
	if f == nil {
		return errNoFaultInjection(FacilityFailPageAlloc)
	}
	errs := fa.validate(FacilityFailPageAlloc)
	if fa.MinOrder < 0 {
		errs = append(errs, fmt.Errorf("%s: min-order %d: 0 or more", FacilityFailPageAlloc, fa.MinOrder))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	f.mu.Lock()
	f.page = fa
	f.rearmLocked()
	f.mu.Unlock()
	return nil
}

// FailPageAlloc returns fail_page_alloc's knobs as they are now (times and
// space count down as failures are injected); the kernel's defaults on a
// System without Config.FaultInjection.
//
// Kernel: mm/fail_page_alloc.c:fail_page_alloc_debugfs().
func (s *System) FailPageAlloc() FailPageAlloc {
	f := s.inject
	if f == nil {
		return DefaultFailPageAlloc()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.page
}

// SetFailslab sets failslab's knobs, as writing its debugfs files does;
// errors as SetFailPageAlloc's.
//
// Kernel: mm/failslab.c:failslab_debugfs_init().
func (s *System) SetFailslab(fs Failslab) error {
	f := s.inject
	if f == nil {
		return errNoFaultInjection(FacilityFailslab)
	}
	if errs := fs.validate(FacilityFailslab); len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	f.mu.Lock()
	f.slab = fs
	f.rearmLocked()
	f.mu.Unlock()
	return nil
}

// Failslab returns failslab's knobs as they are now; the kernel's
// defaults on a System without Config.FaultInjection.
//
// Kernel: mm/failslab.c:failslab_debugfs_init().
func (s *System) Failslab() Failslab {
	f := s.inject
	if f == nil {
		return DefaultFailslab()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.slab
}

// SetMakeItFail sets or clears t's make-it-fail, which a facility with
// TaskFilter requires before it fails t's requests.
//
// Differences: a task Fork creates does not inherit it (the kernel's
// child copies it).
//
// Kernel: fs/proc/base.c:proc_fault_inject_write().
func (s *System) SetMakeItFail(t *memalloc.Task, on bool) error {
	if err := s.check(t); err != nil {
		return err
	}
	f := s.inject
	if f == nil {
		return errNoFaultInjection("make-it-fail")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ft := f.taskLocked(t)
	was := ft.armed()
	ft.makeItFail = on
	f.changedLocked(t, ft, was)
	return nil
}

// MakeItFail reports t's make-it-fail.
//
// Kernel: fs/proc/base.c:proc_fault_inject_read().
func (s *System) MakeItFail(t *memalloc.Task) bool {
	f := s.inject
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ft := f.tasks[t]
	return ft != nil && ft.makeItFail
}

// SetFailNth sets t's fail-nth: the nth request t makes from now on that
// reaches a fault-injection point fails, whatever the facility's
// probability, task filter, times, space and interval; 0 disarms it. Each
// such request counts it down; when it fails, FailNth reads 0, and while
// fewer than n have come it reads what is left. __GFP_NOFAIL requests and
// those the facility exempts do not count. A negative n wraps ErrInvalid.
//
// Kernel: fs/proc/base.c:proc_fail_nth_write(), lib/fault-inject.c:should_fail_ex().
func (s *System) SetFailNth(t *memalloc.Task, n int) error {
	if err := s.check(t); err != nil {
		return err
	}
	f := s.inject
	if f == nil {
		return errNoFaultInjection("fail-nth")
	}
	if n < 0 {
		return fmt.Errorf("%w: fail-nth %d: 0 or more", ErrInvalid, n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ft := f.taskLocked(t)
	was := ft.armed()
	ft.failNth = n
	f.changedLocked(t, ft, was)
	return nil
}

// FailNth returns t's fail-nth: 0 once the failure was injected (or when
// none was armed), else how many requests remain until it.
//
// Kernel: fs/proc/base.c:proc_fail_nth_read().
func (s *System) FailNth(t *memalloc.Task) int {
	f := s.inject
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ft := f.tasks[t]; ft != nil {
		return ft.failNth
	}
	return 0
}

// FailScope is fail-nth around a region of code, as syzkaller drives it
// around a system call: it sets t's fail-nth to n, counts every request t
// makes that reaches a fault-injection point while it is open, and
// restores t's fail-nth when it ends. The idiom:
//
//	sc, err := s.FailScope(t, n)
//	...
//	defer sc.End()
//
// n is 1-based; 0 only counts. Walking n = 1, 2, … until a run ends with
// Hit false fails each allocation of a deterministic code path in turn.
// Scopes nest (the innermost sets fail-nth; every open scope counts) and
// must end innermost first. A FailScope is owned by its task's goroutine.
//
// Kernel: fs/proc/base.c:proc_fail_nth_write(), proc_fail_nth_read();
// Documentation/fault-injection/fault-injection.rst (fail-nth).
type FailScope struct {
	f     *faultInject
	t     *memalloc.Task
	n     int
	saved int // t's fail-nth before the scope
	// The fields below are protected by f.mu.
	count    int
	points   []FaultPoint
	hit      bool
	injected FaultPoint
	ended    bool
}

// FailScope opens a scope in which the nth request of t that reaches a
// fault-injection point fails (0: none, the scope only counts). A
// negative n wraps ErrInvalid, as does a System without
// Config.FaultInjection.
//
// Kernel: fs/proc/base.c:proc_fail_nth_write().
func (s *System) FailScope(t *memalloc.Task, n int) (*FailScope, error) {
	if err := s.check(t); err != nil {
		return nil, err
	}
	f := s.inject
	if f == nil {
		return nil, errNoFaultInjection("fail-nth")
	}
	if n < 0 {
		return nil, fmt.Errorf("%w: FailScope(%d): n is 0 or more", ErrInvalid, n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ft := f.taskLocked(t)
	was := ft.armed()
	sc := &FailScope{f: f, t: t, n: n, saved: ft.failNth}
	ft.failNth = n
	ft.scopes = append(ft.scopes, sc)
	f.changedLocked(t, ft, was)
	return sc, nil
}

// End closes the scope and restores the task's fail-nth as it was when
// the scope opened. Ending a scope twice does nothing; ending one while a
// scope opened inside it is still open returns an error wrapping
// ErrInvalid and changes nothing.
//
// Kernel: fs/proc/base.c:proc_fail_nth_write() (the write of 0 that ends
// a syzkaller call).
func (sc *FailScope) End() error {
	f := sc.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if sc.ended {
		return nil
	}
	ft := f.tasks[sc.t]
	if ft == nil || len(ft.scopes) == 0 || ft.scopes[len(ft.scopes)-1] != sc {
		return fmt.Errorf("%w: FailScope.End: a scope opened inside this one is still open", ErrInvalid)
	}
	was := ft.armed()
	ft.scopes = ft.scopes[:len(ft.scopes)-1]
	ft.failNth = sc.saved
	sc.ended = true
	f.changedLocked(sc.t, ft, was)
	return nil
}

// N returns the n the scope was opened with.
func (sc *FailScope) N() int { return sc.n }

// Count returns how many requests of the task reached a fault-injection
// point while the scope was open, the failed one included.
func (sc *FailScope) Count() int {
	sc.f.mu.Lock()
	defer sc.f.mu.Unlock()
	return sc.count
}

// Hit reports whether the scope's nth request was failed.
func (sc *FailScope) Hit() bool {
	sc.f.mu.Lock()
	defer sc.f.mu.Unlock()
	return sc.hit
}

// Injected returns the request the scope failed, if it failed one.
func (sc *FailScope) Injected() (FaultPoint, bool) {
	sc.f.mu.Lock()
	defer sc.f.mu.Unlock()
	return sc.injected, sc.hit
}

// Points returns every request that reached a fault-injection point while
// the scope was open, in order: Points()[n-1] is the one a scope of n
// fails, when the run up to it is the same.
func (sc *FailScope) Points() []FaultPoint {
	sc.f.mu.Lock()
	defer sc.f.mu.Unlock()
	return append([]FaultPoint(nil), sc.points...)
}
