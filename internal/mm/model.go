package mm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/internal/sim"
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

// MM is an address space: its mappings, page tables and counters.
//
// Lock order: mmapLock, then the Model's lock. The mapping calls take
// mmapLock for writing, faults for reading; reclaim and the OOM reaper
// change page tables under the Model's lock alone (the kernel's page-table
// lock), as rmap walks do.
//
// Kernel: include/linux/mm_types.h:struct mm_struct.
type MM struct {
	// The counters are atomic: /proc and the OOM killer read them with
	// no lock, as get_mm_counter does.
	counters              [nrMMCounters]atomic.Int64
	totalVM               atomic.Int64 // pages mapped (total_vm)
	lockedVM              atomic.Int64 // pages mlocked (locked_vm)
	pgtables              atomic.Int64 // bytes of page tables
	oomSkip               atomic.Bool  // MMF_OOM_SKIP
	hiwaterRSS, hiwaterVM atomic.Int64

	// owner is the process whose address space this is.
	owner *Proc

	// mmapLock is mmap_lock.
	mmapLock sync.RWMutex
	// vmas are the mappings in address order. Written with mmapLock
	// held for writing and the Model's lock; read under either.
	vmas []*VMA
	// mmapBase is where the next mapping goes (top-down, below the
	// previous one); heap is the brk mapping TouchAnon grows. Protected
	// by mmapLock.
	mmapBase uint64
	heap     *VMA

	// Protected by the Model's lock.
	tables   map[uint64]*ptTable // page-table pages by vpn/512
	released bool                // exit_mmap has run
}

// The layout of a simulated address space: mappings are placed top-down
// from mmapTop, the heap grows up from heapStart (both 2 MiB aligned, so
// a page table covers 512 pages of either).
const (
	mmapTop   = 0x7f0000000000
	heapStart = 0x000055a000000000
	taskSize  = 0x7ffffffff000 // TASK_SIZE_MAX with 4-level paging: (1<<47) - PAGE_SIZE
	// heapRoom is the address space kept free above heapStart for the
	// heap to grow into (mmsim's layout; the kernel randomises both).
	heapRoom = 1 << 40
)

func newMM(owner *Proc) *MM {
	return &MM{owner: owner, tables: map[uint64]*ptTable{}, mmapBase: mmapTop}
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
	// UID is the owner's uid, printed in OOM reports. Set it with
	// SetUID before the process maps anything.
	UID int

	// rlimMemlock is RLIMIT_MEMLOCK in bytes (RlimInfinity: none); user
	// is the owner's user_struct.
	rlimMemlock atomic.Uint64
	user        *User

	adj     atomic.Int32 // signal->oom_score_adj
	victim  atomic.Bool  // tsk_is_oom_victim: signal->oom_mm is set
	exiting atomic.Bool  // PF_EXITING
	ctx     context.Context
	cancel  context.CancelFunc

	// memcg is the cgroup the process belongs to (the root for kernel
	// threads). memcgInOOM is the v1 cgroup whose OOM it waits for at the
	// end of its page fault (oom_kill_disable); inUserFault marks a fault
	// in progress; overHigh is memcg_nr_pages_over_high.
	memcg       atomic.Pointer[MemCgroup]
	memcgInOOM  *MemCgroup
	inUserFault atomic.Bool
	overHigh    atomic.Int64
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

	// users are the user_structs by uid, for the locked_vm secretmem
	// charges. Protected by mu.
	users map[int]*User
	// committed is vm_committed_as, in pages: the commit charge of every
	// accountable mapping.
	committed atomic.Int64
	// overcommit holds the overcommit sysctls; set before use.
	overcommit Overcommit
	faultOpts  FaultOptions
	// pfoomRS and enoughRS rate-limit pagefault_out_of_memory's and
	// __vm_enough_memory's warnings.
	pfoomRS, enoughRS sim.Ratelimit
	// report receives the model's WARNs and messages; nil drops them.
	report func(p *Proc, kind bug.Kind, site, text string)
	// secret holds the secretmem state (see secretmem.go).
	secret secretState
	// cg holds the memory cgroups (see memcg.go).
	cg memcgState
}

// User is a user_struct: what is charged per user rather than per process.
//
// Kernel: include/linux/sched/user.h:struct user_struct.
type User struct {
	UID int
	// lockedVM is locked_vm, in pages: what secretmem charges.
	lockedVM atomic.Int64
}

// LockedVM returns the user's locked_vm in pages.
func (u *User) LockedVM() int64 { return u.lockedVM.Load() }

// SetReport sets the sink of the model's reports.
func (m *Model) SetReport(f func(p *Proc, kind bug.Kind, site, text string)) { m.report = f }

func (m *Model) reportf(p *Proc, kind bug.Kind, site, text string) {
	if m.report != nil {
		m.report(p, kind, site, text)
	}
}

// dirtied is a folio on the flushers' queue and when it was dirtied.
type dirtied struct {
	f  *Folio
	at int64
}

// NewModel returns the empty model of the machine a drives, with a swap
// device of swapPages pages (0: no swap); now is the simulated clock.
func NewModel(a *zone.Allocator, swapPages int64, now func() int64) *Model {
	m := &Model{alloc: a, byTask: map[*memalloc.Task]*Proc{}, now: now, users: map[int]*User{},
		pfoomRS:  sim.Ratelimit{Interval: 5 * sim.HZ * sim.Jiffy, Burst: 10},
		enoughRS: sim.Ratelimit{Interval: 5 * sim.HZ * sim.Jiffy, Burst: 10}}
	m.overcommit = DefaultOvercommit(a)
	for _, n := range a.Nodes() {
		m.lruvecs = append(m.lruvecs, NewLruvec(n))
	}
	m.swap.total = max(swapPages, 0)
	m.initMemcg(a.NrCPUs())
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
		p.MM = newMM(p)
	}
	p.rlimMemlock.Store(MlockLimit)
	p.memcg.Store(m.cg.root)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	m.mu.Lock()
	p.user = m.userLocked(0)
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
// The folio goes on the lists of cg, the cgroup it was charged to (the
// root's when nil).
func (m *Model) newFolio(p zone.Page, order zone.Order, cg *MemCgroup) *Folio {
	z := m.alloc.ZoneOf(p.PFN())
	if cg == nil {
		cg = m.cg.root
	}
	return &Folio{page: p, order: order, node: cg.lruvecs[z.Node().ID()], zoneType: z.Type()}
}

// FaultAnon faults in n new pages of anonymous memory for p, as a program
// growing its heap and writing each new page does: brk extends the heap
// mapping by a page (commit-accounted), and a write fault allocates a
// page-table page every 512 pages (GFP_PGTABLE_USER) and a zeroed movable
// folio (GFP_HIGHUSER_MOVABLE|__GFP_ZERO) on the inactive anon list. It
// returns the pages faulted in and the first error: the allocation's,
// brk's ENOMEM, or ErrKilled once the process is an OOM victim.
//
// Kernel: mm/mmap.c:do_brk_flags(), mm/memory.c:do_anonymous_page(), __pte_alloc().
func (m *Model) FaultAnon(p *Proc, n int64) (int64, error) {
	if p.MM == nil {
		return 0, fmt.Errorf("%w: %s is a kernel thread: it has no address space", zone.ErrInvalid, p.Task)
	}
	for i := int64(0); i < n; i++ {
		if p.Victim() {
			return i, fmt.Errorf("%w: %s", ErrKilled, p.Task)
		}
		addr, err := m.Brk(p, 1)
		if err != nil {
			return i, err
		}
		res, err := m.Access(p, addr, true, addr)
		switch {
		case err != nil:
			return i, err
		case res.Outcome == AccessKilled:
			return i, fmt.Errorf("%w: %s", ErrKilled, p.Task)
		case res.Outcome != AccessOK:
			return i, res.Err
		}
	}
	return n, nil
}

// ReleaseAnon unmaps the private mappings of mm, freeing the anonymous
// folios only they mapped and their swap entries, as the OOM reaper does,
// and returns the pages freed. With pageTables it unmaps every mapping and
// frees the page tables too, as exit_mmap does. Folios a reclaimer holds
// isolated are freed by it when it finds them released.
//
// Kernel: mm/oom_kill.c:__oom_reap_task_mm(), mm/mmap.c:exit_mmap().
func (m *Model) ReleaseAnon(t *memalloc.Task, mm *MM, pageTables bool) (int64, error) {
	m.mu.Lock()
	var free []*Folio
	for i := len(mm.vmas) - 1; i >= 0; i-- { // top down, as mas_for_each_rev
		v := mm.vmas[i]
		if !pageTables && v.flags&(VMShared|VMHugetlb) != 0 {
			continue // the reaper leaves shared mappings alone
		}
		free = append(free, m.zapRangeLocked(mm, v.start, v.end)...)
	}
	var pts []*ptTable
	if pageTables {
		mm.released = true
		keys := slices.Sorted(maps.Keys(mm.tables)) // free in address order: deterministic
		for _, k := range keys {
			pts = append(pts, mm.tables[k])
		}
		mm.tables = map[uint64]*ptTable{}
	}
	m.mu.Unlock()
	var n int64
	for _, f := range free {
		n += f.NrPages()
	}
	errs := []error{m.freeFolios(t, free)}
	for _, pt := range pts {
		errs = append(errs, m.freePageTable(t, mm, pt))
	}
	return n, errors.Join(errs...)
}

// freePageTable frees one page-table page of mm.
//
// Kernel: mm/memory.c:free_pte_range().
func (m *Model) freePageTable(t *memalloc.Task, mm *MM, pt *ptTable) error {
	m.pageTableStat(mm.owner, pt.page, -1)
	mm.pgtables.Add(-zone.PageSize)
	return m.alloc.FreePages(t, pt.page, 0)
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
		err = m.exitMmap(p)
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
