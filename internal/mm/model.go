package mm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// ErrKilled is wrapped by the error a killed task's calls return: its
// context is cancelled and it is exiting.
var ErrKilled = errors.New("mm: task was killed")

// GFPPgtableUser is the mask of user page-table pages: GFP_PGTABLE_USER,
// that is GFP_KERNEL | __GFP_ZERO | __GFP_SKIP_KASAN | __GFP_ACCOUNT, where
// __GFP_SKIP_KASAN is 0 in the modelled config (no CONFIG_KASAN_HW_TAGS).
//
// Kernel: include/asm-generic/pgalloc.h:GFP_PGTABLE_KERNEL, GFP_PGTABLE_USER.
const GFPPgtableUser = gfp.Kernel | gfp.Zero | gfp.Account

// GFPAnonFault is the mask of an anonymous fault's folio:
// vma_alloc_zeroed_movable_folio.
//
// Kernel: include/linux/highmem.h:vma_alloc_zeroed_movable_folio().
const GFPAnonFault = gfp.HighUserMovable | gfp.Zero

// ptesPerTable is PTRS_PER_PTE: the pages one page-table page maps.
const ptesPerTable = 512

// The per-mm rss counters.
//
// Kernel: include/linux/mm_types_task.h (MM_FILEPAGES, MM_ANONPAGES,
// MM_SWAPENTS, MM_SHMEMPAGES).
const (
	MMFilePages = iota
	MMAnonPages
	MMSwapEnts
	MMShmemPages
	nrMMCounters
)

// MM is an address space: its anonymous folios, its page-table pages and
// its counters.
//
// Kernel: include/linux/mm_types.h:struct mm_struct.
type MM struct {
	counters [nrMMCounters]atomic.Int64
	totalVM  atomic.Int64 // pages mapped
	pgtables atomic.Int64 // bytes of page tables
	oomSkip  atomic.Bool  // MMF_OOM_SKIP

	// Protected by the Model's lock.
	anon     map[*Folio]struct{}
	ptPages  []zone.Page
	mapped   int64 // pages of address space faulted, for the page-table count
	released bool  // exit_mmap or the reaper has run
}

// Counter returns one of the rss counters (MMAnonPages, ...), summed
// precisely as get_mm_counter_sum does.
func (m *MM) Counter(i int) int64 { return m.counters[i].Load() }

// RSS returns file + anon + shmem pages: get_mm_rss.
func (m *MM) RSS() int64 {
	return m.Counter(MMFilePages) + m.Counter(MMAnonPages) + m.Counter(MMShmemPages)
}

// TotalVM returns the pages of address space mapped.
func (m *MM) TotalVM() int64 { return m.totalVM.Load() }

// PgtablesBytes returns the bytes of page tables: mm_pgtables_bytes.
func (m *MM) PgtablesBytes() int64 { return m.pgtables.Load() }

// OOMSkip reports MMF_OOM_SKIP: the mm is reaped or exiting and hidden
// from OOM victim selection.
func (m *MM) OOMSkip() bool { return m.oomSkip.Load() }

// SetOOMSkip sets MMF_OOM_SKIP.
func (m *MM) SetOOMSkip() { m.oomSkip.Store(true) }

// Proc is a process: a task and its address space, with the OOM killer's
// view of it.
//
// Kernel: include/linux/sched.h:struct task_struct, signal_struct.
type Proc struct {
	Task *memalloc.Task
	MM   *MM // nil for a kernel thread
	// Kthread marks a kernel thread (PF_KTHREAD): never an OOM victim.
	Kthread bool
	// UID is the owner's uid, printed in OOM reports.
	UID int

	adj       atomic.Int32 // signal->oom_score_adj
	victim    atomic.Bool  // tsk_is_oom_victim: signal->oom_mm is set
	exiting   atomic.Bool  // PF_EXITING
	ctx       context.Context
	cancel    context.CancelFunc
	killedErr error
}

// OOMScoreAdj returns oom_score_adj.
func (p *Proc) OOMScoreAdj() int { return int(p.adj.Load()) }

// SetOOMScoreAdj sets oom_score_adj; the caller has checked the range.
func (p *Proc) SetOOMScoreAdj(adj int) { p.adj.Store(int32(adj)) }

// Victim reports whether the OOM killer chose the process.
func (p *Proc) Victim() bool { return p.victim.Load() }

// Exiting reports whether the process is exiting (PF_EXITING).
func (p *Proc) Exiting() bool { return p.exiting.Load() }

// Context returns the process's context: cancelled when it is killed.
func (p *Proc) Context() context.Context { return p.ctx }

// Kill sends SIGKILL: marks the process an OOM victim (TIF_MEMDIE,
// signal->oom_mm) and cancels its context. It reports whether it was not
// a victim before.
//
// Kernel: mm/oom_kill.c:mark_oom_victim().
func (p *Proc) Kill() bool {
	if p.victim.Swap(true) {
		return false
	}
	p.cancel()
	return true
}

// Model is the mm model of one machine.
type Model struct {
	alloc *zone.Allocator

	mu      sync.Mutex // the model's one lock: LRUs, folio sets, files, swap
	lruvecs []*Lruvec
	procs   []*Proc // in creation order: for_each_process
	byTask  map[*memalloc.Task]*Proc
	files   []*File
	dirty   []dirtied // dirtied folios, oldest first (entries may be stale)
	swap    Swap
	now     func() int64
}

// dirtied is a folio on the flushers' queue and when it was dirtied.
type dirtied struct {
	f  *Folio
	at int64
}

// NewModel returns the empty model of the machine a drives, with a swap
// device of swapPages pages (0: no swap); now is the simulated clock.
func NewModel(a *zone.Allocator, swapPages int64, now func() int64) *Model {
	m := &Model{alloc: a, byTask: map[*memalloc.Task]*Proc{}, now: now}
	for _, n := range a.Nodes() {
		m.lruvecs = append(m.lruvecs, NewLruvec(n))
	}
	m.swap.total = max(swapPages, 0)
	return m
}

// Lock and Unlock take and release the model's lock. Never allocate with it
// held: reclaim takes it.
func (m *Model) Lock()   { m.mu.Lock() }
func (m *Model) Unlock() { m.mu.Unlock() }

// Lruvec returns node nid's LRU lists.
func (m *Model) Lruvec(nid int) *Lruvec { return m.lruvecs[nid] }

// Allocator returns the page allocator.
func (m *Model) Allocator() *zone.Allocator { return m.alloc }

// Swap returns the swap device.
func (m *Model) Swap() *Swap { return &m.swap }

// AddProc registers a process for t: a user process with an address space,
// or a kernel thread without one.
//
// Kernel: kernel/fork.c:copy_process().
func (m *Model) AddProc(t *memalloc.Task, kthread bool) *Proc {
	p := &Proc{Task: t, Kthread: kthread}
	if !kthread {
		p.MM = &MM{anon: map[*Folio]struct{}{}}
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	m.mu.Lock()
	m.procs = append(m.procs, p)
	m.byTask[t] = p
	m.mu.Unlock()
	return p
}

// Proc returns t's process, or nil.
func (m *Model) Proc(t *memalloc.Task) *Proc {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byTask[t]
}

// Procs returns the live processes in creation order (for_each_process).
func (m *Model) Procs() []*Proc {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*Proc(nil), m.procs...)
}

// Swap is the swap device: its size and the slots in use.
//
// Kernel: mm/swapfile.c (total_swap_pages, nr_swap_pages).
type Swap struct {
	total int64
	used  atomic.Int64
}

// TotalPages returns total_swap_pages.
func (s *Swap) TotalPages() int64 { return s.total }

// FreePages returns the free swap slots (get_nr_swap_pages).
func (s *Swap) FreePages() int64 { return s.total - s.used.Load() }

// newFolio makes the folio for a block just allocated for the model.
func (m *Model) newFolio(p zone.Page, order zone.Order) *Folio {
	z := m.alloc.ZoneOf(p.PFN())
	return &Folio{page: p, order: order, node: m.lruvecs[z.Node().ID()], zoneType: z.Type()}
}

// FaultAnon faults in n new pages of anonymous memory for p, as touching
// fresh pages of a private mapping does: a page-table page every 512
// pages (GFP_PGTABLE_USER), then a zeroed movable folio
// (GFP_HIGHUSER_MOVABLE|__GFP_ZERO) put on the inactive anon list with its
// accessed bit set. It returns the pages faulted in and the first error:
// the allocation's, or ErrKilled once the process is an OOM victim.
//
// Kernel: mm/memory.c:do_anonymous_page(), __pte_alloc().
func (m *Model) FaultAnon(p *Proc, n int64) (int64, error) {
	if p.MM == nil {
		return 0, fmt.Errorf("%w: %s is a kernel thread: it has no address space", zone.ErrInvalid, p.Task)
	}
	for i := int64(0); i < n; i++ {
		if p.Victim() {
			return i, fmt.Errorf("%w: %s", ErrKilled, p.Task)
		}
		if err := m.faultOne(p); err != nil {
			return i, err
		}
	}
	return n, nil
}

func (m *Model) faultOne(p *Proc) error {
	mm := p.MM
	m.mu.Lock()
	needPT := mm.mapped%ptesPerTable == 0
	released := mm.released
	m.mu.Unlock()
	if released {
		return fmt.Errorf("%w: %s: its address space is gone", ErrKilled, p.Task)
	}
	a := m.alloc
	if needPT {
		pt, err := a.AllocPages(p.Task, GFPPgtableUser, 0)
		if err != nil {
			return fmt.Errorf("__pte_alloc: %w", err)
		}
		m.mu.Lock()
		mm.ptPages = append(mm.ptPages, pt)
		m.mu.Unlock()
		mm.pgtables.Add(zone.PageSize)
		a.Nodes()[a.ZoneOf(pt.PFN()).Node().ID()].ModState(zone.NodeNrPageTablePages, 1)
	}
	pg, err := a.AllocPages(p.Task, GFPAnonFault, 0)
	if err != nil {
		return fmt.Errorf("do_anonymous_page: %w", err)
	}
	f := m.newFolio(pg, 0)
	f.mm = mm
	f.Flags = PGSwapBacked
	f.Young = true
	m.mu.Lock()
	if mm.released { // reaped while we allocated: give the page back
		m.mu.Unlock()
		return errors.Join(fmt.Errorf("%w: %s", ErrKilled, p.Task), a.FreePages(p.Task, pg, 0))
	}
	mm.anon[f] = struct{}{}
	mm.mapped++
	f.node.add(f)
	f.node.node.ModState(zone.NodeNrAnonPages, 1)
	m.mu.Unlock()
	mm.counters[MMAnonPages].Add(1)
	mm.totalVM.Add(1)
	a.CountEvent(zone.VMPgfault, 1)
	return nil
}

// ReleaseAnon frees every anonymous folio of mm and its swap entries, as
// the OOM reaper or exit_mmap does, and returns the pages freed. With
// pageTables it frees the page-table pages too (exit). The folios may be
// isolated by a reclaimer at the time: those are freed by the reclaimer
// when it finds them released.
//
// Kernel: mm/oom_kill.c:__oom_reap_task_mm(), mm/mmap.c:exit_mmap().
func (m *Model) ReleaseAnon(t *memalloc.Task, mm *MM, pageTables bool) (int64, error) {
	m.mu.Lock()
	var free []*Folio
	for f := range mm.anon {
		delete(mm.anon, f)
		f.mm = nil // released: a reclaimer holding it isolated frees it
		if f.onLRU {
			f.node.del(f)
			free = append(free, f)
		}
		f.node.node.ModState(zone.NodeNrAnonPages, -f.NrPages())
		mm.counters[MMAnonPages].Add(-f.NrPages())
	}
	mm.released = true
	swapped := mm.counters[MMSwapEnts].Swap(0)
	m.swap.used.Add(-swapped)
	var pts []zone.Page
	if pageTables {
		pts, mm.ptPages = mm.ptPages, nil
	}
	m.mu.Unlock()
	var errs []error
	var n int64
	for _, f := range free {
		errs = append(errs, m.alloc.FreePages(t, f.page, f.order))
		n += f.NrPages()
	}
	for _, pt := range pts {
		errs = append(errs, m.alloc.FreePages(t, pt, 0))
		m.alloc.ZoneOf(pt.PFN()).Node().ModState(zone.NodeNrPageTablePages, -1)
		mm.pgtables.Add(-zone.PageSize)
	}
	return n, errors.Join(errs...)
}

// Exit ends a process: its address space is torn down and it leaves the
// process list.
//
// Kernel: kernel/exit.c:do_exit(), mm/mmap.c:exit_mmap().
func (m *Model) Exit(p *Proc) error {
	p.exiting.Store(true)
	var err error
	if p.MM != nil {
		p.MM.SetOOMSkip()
		_, err = m.ReleaseAnon(p.Task, p.MM, true)
		p.MM.totalVM.Store(0)
	}
	p.cancel()
	m.mu.Lock()
	for i, q := range m.procs {
		if q == p {
			m.procs = append(m.procs[:i], m.procs[i+1:]...)
			break
		}
	}
	delete(m.byTask, p.Task)
	m.mu.Unlock()
	return err
}
