package mmsim

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/internal/debugalloc"
	"github.com/mmsim/mmsim/internal/lockdep"
	"github.com/mmsim/mmsim/internal/mm"
	"github.com/mmsim/mmsim/internal/sim"
	"github.com/mmsim/mmsim/internal/slab"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/oom"
	"github.com/mmsim/mmsim/reclaim"
	"github.com/mmsim/mmsim/vmalloc"
	"github.com/mmsim/mmsim/zone"

	"golang.org/x/sync/errgroup"
)

// Page, Order, PFN, Event and Report are the user-facing types of the
// layers below, re-exported.
type (
	Page   = zone.Page
	Order  = zone.Order
	PFN    = zone.PFN
	Event  = zone.Event
	Report = bug.Report
	// ReportKind says what a Report is: a WARN, a BUG, warn_alloc's
	// report, the OOM killer's, a pr_info, a panic.
	ReportKind = bug.Kind
)

// The kinds of Report, as Report.Kind holds them.
const (
	ReportWarn  = bug.Warn  // a simulated WARN
	ReportBug   = bug.Bug   // a simulated BUG: the request was refused
	ReportAlloc = bug.Alloc // warn_alloc: a failed or stalling allocation
	ReportOOM   = bug.OOM   // the OOM killer's report
	ReportInfo  = bug.Info  // a pr_info, such as the OOM reaper's
	ReportPanic = bug.Panic // a simulated panic
)

// System is one simulated machine: its page allocator and, as the project
// grows, reclaim, the OOM killer, slab and vmalloc, behind one API. Every
// method is safe for concurrent use by many goroutines, each with its own
// Task.
type System struct {
	// entry is how AllocPages and FreePages reach the page allocator
	// (setEntry). Never nil after New. First: at offset 0 its load costs
	// the inliner less, and AllocPages inlines with nothing to spare.
	entry atomic.Pointer[pageEntryRef]

	cfg   Config
	alloc *zone.Allocator

	// clock is the simulated time and the daemons that run in it.
	clock   sim.Clock
	model   *mm.Model
	reclaim *reclaim.Reclaimer
	compact *reclaim.Compactor
	oom     *oom.Killer
	slab    *slab.Allocator
	vm      *vmalloc.Allocator
	// lockdep checks lock order and actual waits; with Config.Lockdep
	// it also sees every allocation (fs_reclaim).
	lockdep *lockdep.Checker

	// The debug allocators of Config.Debug, nil while off.
	depot     *debugalloc.StackDepot
	pageOwner *debugalloc.PageOwner
	leak      *debugalloc.Kmemleak
	// inject is fault injection (Config.FaultInjection) and prof
	// allocation profiling (Config.AllocProfiling); nil while off.
	inject *faultInject
	prof   *allocProfiler
	// wqOnce keys the workqueues' WARN_ONCE sites.
	wqOnce bug.Once

	nextPID atomic.Int64
	nextCPU atomic.Int64
	// owner marks the tasks this System created.
	owner memalloc.Owner

	// lat is the latency accounting, nil while off.
	lat atomic.Pointer[latency]

	mu      sync.Mutex // protects reports
	reports []Report

	closed atomic.Bool
	// stop and daemons are the asynchronous mode's: cancel the daemons'
	// goroutines and wait for them. nil in the deterministic mode.
	stop    context.CancelFunc
	daemons *errgroup.Group
}

// firstPID is the pid of the first task NewTask creates; lower pids are
// left for the kernel's own (init is 1).
const firstPID = 1000

// New boots a System for cfg. An invalid cfg returns an error wrapping
// ErrInvalid that lists every invalid field.
func New(cfg Config) (*System, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &System{cfg: cfg}
	s.nextPID.Store(firstPID)
	a, err := zone.New(cfg.zoneConfig(), zone.Options{
		Owner:        &s.owner,
		Report:       s.report,
		Now:          s.Now,
		Sleep:        func(d int64) { s.clock.Sleep(d, nil) },
		StallLimit:   int64(cfg.StallLimit),
		Advance:      s.clock.Advance,
		RetryCost:    int64(cfg.RetryCost),
		ZeroPageCost: cfg.Costs.ZeroPage,
		MemInfo:      s.memInfoExtra,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	s.alloc = a
	s.model = mm.NewModel(a, cfg.SwapPages, s.Now)
	s.model.SetReport(func(p *mm.Proc, kind bug.Kind, site, text string) {
		s.report(Report{Kind: kind, Site: site, Text: text, Comm: p.Task.Comm(), PID: p.Task.PID(), Time: s.Now()})
	})
	s.model.SetFaultOptions(mm.FaultOptions{DroppableWriteLost: cfg.DroppableWriteLost})
	s.reclaim = reclaim.New(s.model, &s.clock, reclaim.Options{Swappiness: cfg.Swappiness, Costs: cfg.Costs})
	s.compact = reclaim.NewCompactor(s.reclaim, cfg.CompactionProactiveness)
	s.oom = oom.New(s.model, &s.clock, oom.Options{
		PanicOnOOM:         cfg.PanicOnOOM,
		KillAllocatingTask: cfg.OOMKillAllocatingTask,
		ShowMem:            s.showMem,
		Report:             s.report,
		Swappiness:         cfg.Swappiness,
	})
	s.model.SetMemcgOps(memcgOps{s}, cfg.CgroupV1)
	a.SetKmemCharger(kmemCharger{s.model})
	a.SetSlowPath(zone.SlowPath{Reclaim: s.reclaim, Compact: s.compact, OOM: s.oom})
	if s.slab, err = slab.New(a, slab.Options{CPUs: cfg.CPUs, Report: s.report, Now: s.Now, MightAlloc: s.slabMightAlloc,
		Memcg: objCharger{s.model}}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	s.vm = vmalloc.New(a, s.slab, vmalloc.Options{
		CPUs:               cfg.CPUs,
		Report:             s.report,
		Sleep:              func(d int64) { s.clock.Sleep(d, nil) },
		Now:                s.Now,
		PreFix:             cfg.VmallocPreFix,
		FatalSignalPending: s.fatalSignalPending,
		StallLimit:         int64(cfg.StallLimit),
	})
	s.lockdep = lockdep.New(lockdep.Options{
		Report:   s.report,
		Now:      s.Now,
		Deadlock: ErrDeadlock,
		Stacks:   true,
		Inline:   s.inline,
		Disabled: !cfg.Lockdep,
	})
	if err := s.setupDebug(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := s.model.SetSecretConfig(cfg.Secretmem); err != nil {
		return nil, fmt.Errorf("Secretmem: %w", err) // a boot pool that does not fit: ErrNoMemory
	}
	if cfg.Async {
		var ctx context.Context
		ctx, s.stop = context.WithCancel(context.Background())
		s.daemons = new(errgroup.Group)
		s.clock.Start(ctx, s.daemons)
	}
	s.setEntry()
	return s, nil
}

// pageEntry is what AllocPages and FreePages call: the page allocator
// itself while the System adds nothing to those calls, or the System's
// wrapper (systemEntry) once it does.
type pageEntry interface {
	AllocPages(t *memalloc.Task, mask gfp.Mask, order zone.Order) (zone.Page, error)
	FreePages(t *memalloc.Task, p zone.Page, order zone.Order) error
}

// pageEntryRef holds a pageEntry for an atomic.Pointer.
type pageEntryRef struct{ pageEntry }

// setEntry points AllocPages and FreePages at the page allocator itself
// when the System has nothing to do around them, and at systemEntry when
// it has: a closed System refuses every call, allocation profiling tags
// them, latency recording times them, and a Nofail policy other than the
// kernel's answers a __GFP_NOFAIL order above MAX_PAGE_ORDER. The direct
// entry checks the task itself (zone.Options.Owner). Each of those states,
// once entered, is never left, so a call that sets one sets the wrapper
// for good.
//
// This is a Go matter, not a kernel one: the two methods then inline into
// their callers as one indirect call each, where a frame of tests first
// cost the order-0 pair about 35 of its 480 instructions (BENCHMARKS.md).
func (s *System) setEntry() {
	if s.closed.Load() || s.prof != nil || s.lat.Load() != nil || s.cfg.Nofail.Policy != NofailKernel {
		s.entry.Store(&pageEntryRef{(*systemEntry)(s)})
		return
	}
	s.entry.Store(&pageEntryRef{s.alloc})
}

// systemEntry is the System's wrapper around the page allocator's
// AllocPages and FreePages (setEntry).
type systemEntry System

// Close stops every goroutine the System started: in the asynchronous mode
// (Config.Async) the daemons' goroutines, which it waits for; the
// deterministic mode starts none. Calls after Close fail with ErrClosed.
func (s *System) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.setEntry()
	if s.stop == nil {
		return nil
	}
	s.stop()
	return s.daemons.Wait()
}

// Now returns the simulated time in nanoseconds since boot. Modelled work
// (pages scanned, swap written) and waits (a one-tick sleep, a throttle)
// advance it; nothing else does.
func (s *System) Now() int64 { return s.clock.Now() }

// NewTask returns a new task of this System, with the next pid and the next
// CPU in turn. A Task belongs to one goroutine at a time.
//
// Kernel: kernel/fork.c:copy_process().
func (s *System) NewTask(name string) *memalloc.Task {
	pid := int(s.nextPID.Add(1) - 1)
	cpu := int((s.nextCPU.Add(1) - 1) % int64(s.cfg.CPUs))
	t := memalloc.NewTaskWith(name, memalloc.WithPID(pid), memalloc.WithCPU(cpu), memalloc.WithOwner(&s.owner))
	s.model.AddProc(t, false)
	return t
}

// fatalSignalPending reports whether t was killed (SIGKILL pending).
//
// Kernel: include/linux/sched/signal.h:fatal_signal_pending().
func (s *System) fatalSignalPending(t *memalloc.Task) bool {
	p := s.model.Proc(t)
	return p != nil && p.Context().Err() != nil
}

// inline reports whether t is a daemon that runs on another task's
// goroutine: kswapd and kcompactd in the deterministic mode. Such a task
// may not block on a contended lock.
func (s *System) inline(t *memalloc.Task) bool {
	return !s.cfg.Async && t.Flags()&(memalloc.PFKswapd|memalloc.PFKcompactd) != 0
}

// slabMightAlloc is might_alloc() at slab's entry: lockdep's fs_reclaim
// annotation for every object allocation, with Config.Lockdep.
//
// Kernel: mm/slub.c:slab_pre_alloc_hook().
func (s *System) slabMightAlloc(t *memalloc.Task, mask gfp.Mask) {
	if s.cfg.Lockdep {
		s.lockdep.MightAlloc(t, mask)
	}
}

// check refuses a task this System did not create, and calls after Close.
func (s *System) check(t *memalloc.Task) error {
	if t != nil && t.Owner() == &s.owner && !s.closed.Load() {
		return nil
	}
	return s.refuse(t)
}

// refuse says why check refused t.
func (s *System) refuse(t *memalloc.Task) error {
	switch {
	case s.closed.Load():
		return ErrClosed
	case t == nil:
		return fmt.Errorf("%w: no task: every call that may allocate needs its task (current)", ErrInvalid)
	}
	// The words of zone's own refusal (zone.Options.Owner), which
	// AllocPages and FreePages give when they go straight to it.
	return fmt.Errorf("%w: task %s belongs to another machine: it was not created by this one's NewTask", ErrInvalid, t)
}

// AllocPages allocates a block of 1<<order pages for t with mask:
// __alloc_pages. It fails with an error wrapping ErrNoMemory whose text is
// warn_alloc's ("page allocation failure: order:3, mode:0xcc0(GFP_KERNEL),
// nodemask=(null)"); the full warn_alloc line goes to the reports. An order
// above MAX_PAGE_ORDER wraps ErrInvalid (with a WARN unless __GFP_NOWARN);
// a bad zone combination wraps ErrBug.
//
// Kernel: mm/page_alloc.c:__alloc_pages_noprof().
func (s *System) AllocPages(t *memalloc.Task, mask gfp.Mask, order zone.Order) (p zone.Page, err error) {
	// Named results: "return f()" would cost the inliner 88 of its 80.
	p, err = s.entry.Load().AllocPages(t, mask, order)
	return
}

// AllocPages is System.AllocPages when the System has something to do
// around the page allocator's (setEntry).
func (e *systemEntry) AllocPages(t *memalloc.Task, mask gfp.Mask, order zone.Order) (zone.Page, error) {
	s := (*System)(e)
	if err := s.check(t); err != nil {
		return zone.Page{}, err
	}
	if pr := s.prof; pr != nil {
		defer t.RestoreAllocTag(pr.saveTag(t, 4)) // above this method and System.AllocPages
	}
	if mask&gfp.NoFail != 0 && order > zone.MaxPageOrder {
		if handled, err := s.nofailNever(t, "alloc_pages", "mm/page_alloc.c:__alloc_pages_noprof",
			fmt.Sprintf("order:%d is above MAX_PAGE_ORDER (%d)", order, zone.MaxPageOrder), mask); handled {
			return zone.Page{}, err
		}
	}
	if l := s.lat.Load(); l != nil {
		start := s.Now()
		p, err := s.alloc.AllocPages(t, mask, order)
		l.record(mask, s.Now()-start, 3) // the caller of AllocPages
		return p, err
	}
	return s.alloc.AllocPages(t, mask, order)
}

// AllocPagesBulk fills the zero entries of pages with order-0 pages and
// returns how many leading entries are populated: alloc_pages_bulk.
//
// Kernel: mm/page_alloc.c:alloc_pages_bulk_noprof().
func (s *System) AllocPagesBulk(t *memalloc.Task, mask gfp.Mask, pages []zone.Page) (int, error) {
	if err := s.check(t); err != nil {
		return 0, err
	}
	if pr := s.prof; pr != nil {
		defer t.RestoreAllocTag(pr.saveCallerTag(t))
	}
	return s.alloc.AllocPagesBulk(t, mask, pages)
}

// FreePages frees a block AllocPages returned: __free_pages. A double free,
// a wrong order or a pfn never handed out wraps ErrBug and changes nothing.
//
// Kernel: mm/page_alloc.c:__free_pages().
func (s *System) FreePages(t *memalloc.Task, p zone.Page, order zone.Order) error {
	return s.entry.Load().FreePages(t, p, order)
}

// FreePages is System.FreePages when the System has something to do
// around the page allocator's (setEntry).
func (e *systemEntry) FreePages(t *memalloc.Task, p zone.Page, order zone.Order) error {
	s := (*System)(e)
	if err := s.check(t); err != nil {
		return err
	}
	return s.alloc.FreePages(t, p, order)
}

// FreePagesBatched frees order-0 pages as one batch, as release_pages does.
//
// Kernel: mm/page_alloc.c:free_unref_folios().
func (s *System) FreePagesBatched(t *memalloc.Task, pages []zone.Page) error {
	if err := s.check(t); err != nil {
		return err
	}
	return s.alloc.FreePagesBatched(t, pages)
}

// DrainAllPages returns every CPU's per-cpu pages to the buddy lists.
//
// Kernel: mm/page_alloc.c:drain_all_pages().
func (s *System) DrainAllPages(t *memalloc.Task) error {
	if err := s.check(t); err != nil {
		return err
	}
	s.alloc.DrainAllPages(t)
	return nil
}

// ZoneOf returns the zone a page belongs to, or nil for a pfn in no zone.
//
// Kernel: include/linux/mm.h:page_zone().
func (s *System) ZoneOf(p zone.Page) *zone.Zone { return s.alloc.ZoneOf(p.PFN()) }

// Nodes returns the machine's nodes, for inspection.
func (s *System) Nodes() []*zone.Node { return s.alloc.Nodes() }

// Sysctl returns the sysctls in force (min_free_kbytes as booted).
func (s *System) Sysctl() Sysctl { return s.alloc.Sysctl() }

// Trace registers f to receive every tracepoint event (mm_page_alloc,
// mm_page_free, mm_page_free_batched, mm_page_alloc_zone_locked,
// mm_page_pcpu_drain, mm_page_alloc_extfrag); Event.String prints one as
// `perf script` does. f runs on the goroutine that hit the tracepoint,
// sometimes with allocator locks held: it must be quick and must not call
// back into the System. Tracing costs nothing until the first Trace.
func (s *System) Trace(f func(Event)) { s.alloc.Subscribe(f) }

// Reports returns the simulated kernel reports so far: WARNs, BUGs, and
// warn_alloc's page allocation failure reports, in order.
func (s *System) Reports() []Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Report(nil), s.reports...)
}

func (s *System) report(r Report) {
	s.mu.Lock()
	s.reports = append(s.reports, r)
	s.mu.Unlock()
	if (r.Kind == bug.Bug && s.cfg.PanicOnBug) || (r.Kind == bug.Warn && s.cfg.PanicOnWarn) {
		panic(r.String())
	}
}

// CheckInvariants recomputes every cached counter of the allocator from its
// lists and returns an error describing every disagreement; nil means the
// simulated machine is consistent. Tests call it.
func (s *System) CheckInvariants() error { return s.alloc.CheckInvariants() }

// WriteBuddyinfo writes /proc/buddyinfo. Kernel: mm/vmstat.c:frag_show().
func (s *System) WriteBuddyinfo(w io.Writer) error { return s.alloc.WriteBuddyinfo(w) }

// WriteZoneinfo writes /proc/zoneinfo. Kernel: mm/vmstat.c:zoneinfo_show().
func (s *System) WriteZoneinfo(w io.Writer) error { return s.alloc.WriteZoneinfo(w) }

// WritePagetypeinfo writes /proc/pagetypeinfo.
// Kernel: mm/vmstat.c:pagetypeinfo_show().
func (s *System) WritePagetypeinfo(w io.Writer) error { return s.alloc.WritePagetypeinfo(w) }

// WriteVmstat writes /proc/vmstat. Kernel: mm/vmstat.c:vmstat_show().
func (s *System) WriteVmstat(w io.Writer) error { return s.alloc.WriteVmstat(w) }

// WriteMeminfo writes /proc/meminfo. Kernel: fs/proc/meminfo.c:meminfo_proc_show().
func (s *System) WriteMeminfo(w io.Writer) error { return s.alloc.WriteMeminfo(w) }

// showMem writes the Mem-Info block for the OOM report.
func (s *System) showMem(w io.Writer, maxZone gfp.ZoneType, cpu int) {
	x := s.memInfoExtra()
	x.CPU = cpu
	s.alloc.ShowMem(w, maxZone, x)
}

// memInfoExtra is what the Mem-Info block needs from reclaim and swap.
func (s *System) memInfoExtra() zone.ShowMemExtra {
	sw := s.model.Swap()
	return zone.ShowMemExtra{
		Hopeless:    func(nid int) bool { return s.reclaim.Kswapd(nid).Failures() >= zone.MaxReclaimRetries },
		SwapFree:    sw.FreePages(),
		SwapTotal:   sw.TotalPages(),
		CommittedAS: s.model.Committed(),
		CommitLimit: s.model.CommitLimit(),
	}
}
