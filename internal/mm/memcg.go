package mm

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/internal/sim"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// Memory-cgroup constants.
//
// Kernel: include/linux/memcontrol.h:MEMCG_CHARGE_BATCH,
// mm/memcontrol.c:NR_MEMCG_STOCK, MEMCG_MAX_HIGH_DELAY_JIFFIES,
// MEMCG_DELAY_PRECISION_SHIFT, MEMCG_DELAY_SCALING_SHIFT,
// mm/internal.h:MAX_RECLAIM_RETRIES.
const (
	MemcgChargeBatch    = 64
	nrMemcgStock        = 7
	MaxReclaimRetries   = 16
	memcgMaxHighDelay   = 2 * sim.HZ // in jiffies
	memcgDelayPrecision = 20
	memcgDelayScaling   = 14
)

// MemcgEvent is a memory.events counter.
//
// Kernel: include/linux/memcontrol.h:enum memcg_memory_event.
type MemcgEvent int

// The memory events, in the kernel's order.
const (
	MemcgLow MemcgEvent = iota
	MemcgHigh
	MemcgMax
	MemcgOOM
	MemcgOOMKill
	MemcgOOMGroupKill
	MemcgSwapHigh
	MemcgSwapMax
	MemcgSwapFail
	MemcgSockThrottled
	NrMemcgEvents
)

// MemcgVMEvent is a per-cgroup vm event counter.
type MemcgVMEvent int

// The vm events a cgroup counts itself.
//
// Kernel: include/linux/vm_event_item.h (PGPGIN, PGPGOUT, PGFAULT,
// PGMAJFAULT as memcg events).
const (
	MemcgPgpgin MemcgVMEvent = iota
	MemcgPgpgout
	MemcgPgfault
	MemcgPgmajfault
	NrMemcgVMEvents
)

// MemcgOps is what charging needs from the layers above the mm model:
// memcg reclaim and the memcg OOM killer, and the clock for memory.high
// throttling.
type MemcgOps interface {
	// TryToFreeMemCgroupPages reclaims from cg's subtree on behalf of t
	// and returns the pages reclaimed.
	//
	// Kernel: mm/vmscan.c:try_to_free_mem_cgroup_pages().
	TryToFreeMemCgroupPages(t *memalloc.Task, cg *MemCgroup, nrPages int64, mask gfp.Mask, maySwap bool) int64
	// MemcgOutOfMemory is out_of_memory with oc->memcg set: it kills a
	// task of cg's subtree and reports whether it made progress.
	//
	// Kernel: mm/oom_kill.c:out_of_memory().
	MemcgOutOfMemory(t *memalloc.Task, cg *MemCgroup, mask gfp.Mask, order zone.Order) bool
	// Sleep puts t to sleep for up to d ns of simulated time, waking
	// early when wake returns true (nil: only the timeout), and reports
	// whether it woke early (schedule_timeout_killable, a wait queue).
	Sleep(t *memalloc.Task, d int64, wake func() bool) bool
}

// MemCgroup is a memory cgroup: a node of the hierarchy, its page counters
// (memory, and on cgroup v1 memsw and kmem), its LRU lists on each node,
// and its statistics.
//
// Kernel: include/linux/memcontrol.h:struct mem_cgroup.
type MemCgroup struct {
	model  *Model
	id     int
	name   string
	parent *MemCgroup
	// children are in creation order (css_for_each_descendant_pre walks
	// them so). Protected by Model.cgMu.
	children []*MemCgroup

	memory, memsw, kmem, swap PageCounter

	lruvecs []*Lruvec

	// stat mirrors every node counter for the pages charged here
	// (lruvec_page_state, local to this cgroup); kmemPages is MEMCG_KMEM;
	// swapPages is MEMCG_SWAP.
	stat      [zone.NrNodeStats]atomic.Int64
	kmemPages atomic.Int64
	slabBytes [2]atomic.Int64 // reclaimable, unreclaimable: NR_SLAB_*_B
	swapPages atomic.Int64
	vmEvents  [NrMemcgVMEvents]atomic.Int64

	events, eventsLocal [NrMemcgEvents]atomic.Int64

	// The v1 OOM control: oom_kill_disable and the under_oom count.
	oomKillDisable atomic.Bool
	underOOM       atomic.Int32
	oomGroup       atomic.Bool

	// objBytes is the obj_cgroup's pre-charged remainder for slab
	// objects, in bytes (nr_charged_bytes and the obj stock, as one).
	objMu    sync.Mutex
	objBytes int64
}

// ID returns the cgroup's id (the root is 0).
func (cg *MemCgroup) ID() int { return cg.id }

// CgroupID returns the cgroup's kernfs id, which tracepoints print as
// memcg_id: 1 for the root. (The kernel numbers every kernfs node, files
// included, so its child ids are sparser than mmsim's id+1.)
//
// Kernel: include/linux/memcontrol.h:mem_cgroup_id().
func (cg *MemCgroup) CgroupID() uint64 { return uint64(cg.id) + 1 }

// Name returns the cgroup's directory name ("" for the root).
func (cg *MemCgroup) Name() string { return cg.name }

// Parent returns the parent cgroup, nil for the root.
func (cg *MemCgroup) Parent() *MemCgroup { return cg.parent }

// IsRoot reports whether cg is the root cgroup.
//
// Kernel: include/linux/memcontrol.h:mem_cgroup_is_root().
func (cg *MemCgroup) IsRoot() bool { return cg.parent == nil }

// Path returns the cgroup's path as OOM reports print it: "/" for the
// root, "/a/b" below it.
//
// Kernel: kernel/cgroup/cgroup.c:cgroup_path().
func (cg *MemCgroup) Path() string {
	if cg.IsRoot() {
		return "/"
	}
	var parts []string
	for c := cg; !c.IsRoot(); c = c.parent {
		parts = append(parts, c.name)
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteString("/" + parts[i])
	}
	return b.String()
}

// Memory returns the memory counter (memory.current, memory.max ...).
func (cg *MemCgroup) Memory() *PageCounter { return &cg.memory }

// Memsw returns the v1 memory+swap counter.
func (cg *MemCgroup) Memsw() *PageCounter { return &cg.memsw }

// Kmem returns the v1 kmem counter.
func (cg *MemCgroup) Kmem() *PageCounter { return &cg.kmem }

// Swap returns the v2 swap counter.
func (cg *MemCgroup) Swap() *PageCounter { return &cg.swap }

// Lruvec returns the cgroup's LRU lists on node nid.
//
// Kernel: include/linux/memcontrol.h:mem_cgroup_lruvec().
func (cg *MemCgroup) Lruvec(nid int) *Lruvec { return cg.lruvecs[nid] }

// State returns the cgroup's own count of a node counter
// (memcg_page_state_local).
func (cg *MemCgroup) State(i zone.NodeStat) int64 { return cg.stat[i].Load() }

// KmemPages returns MEMCG_KMEM: the kernel pages charged here.
func (cg *MemCgroup) KmemPages() int64 { return cg.kmemPages.Load() }

// SwapPages returns MEMCG_SWAP: the swap entries charged here.
func (cg *MemCgroup) SwapPages() int64 { return cg.swapPages.Load() }

// VMEvent returns the cgroup's own count of a vm event.
func (cg *MemCgroup) VMEvent(e MemcgVMEvent) int64 { return cg.vmEvents[e].Load() }

// Event returns a memory.events counter; local selects memory.events.local.
func (cg *MemCgroup) Event(e MemcgEvent, local bool) int64 {
	if local {
		return cg.eventsLocal[e].Load()
	}
	return cg.events[e].Load()
}

// OOMKillDisable reports the v1 oom_kill_disable setting.
func (cg *MemCgroup) OOMKillDisable() bool { return cg.oomKillDisable.Load() }

// SetOOMKillDisable sets oom_kill_disable; clearing it wakes the tasks
// waiting in the cgroup's OOM.
//
// Kernel: mm/memcontrol-v1.c:mem_cgroup_oom_control_write().
func (cg *MemCgroup) SetOOMKillDisable(v bool) { cg.oomKillDisable.Store(v) }

// UnderOOM reports whether a task of the cgroup waits in its OOM (v1
// under_oom).
func (cg *MemCgroup) UnderOOM() bool { return cg.underOOM.Load() > 0 }

// OOMGroup reports memory.oom.group.
func (cg *MemCgroup) OOMGroup() bool { return cg.oomGroup.Load() }

// SetOOMGroup sets memory.oom.group.
func (cg *MemCgroup) SetOOMGroup(v bool) { cg.oomGroup.Store(v) }

// IsDescendant reports whether cg is root or below it.
//
// Kernel: include/linux/memcontrol.h:mem_cgroup_is_descendant().
func (cg *MemCgroup) IsDescendant(root *MemCgroup) bool {
	for c := cg; c != nil; c = c.parent {
		if c == root {
			return true
		}
	}
	return false
}

// Margin returns how many pages can still be charged before the limit.
//
// Kernel: mm/memcontrol.c:mem_cgroup_margin().
func (cg *MemCgroup) Margin() int64 {
	var margin int64
	if n, l := cg.memory.Usage(), cg.memory.Max(); n < l {
		margin = l - n
	}
	if cg.model.cg.cgroupV1 {
		if n, l := cg.memsw.Usage(), cg.memsw.Max(); n < l {
			margin = min(margin, l-n)
		} else {
			margin = 0
		}
	}
	return margin
}

// memcgState is the cgroup-wide part of the Model: the hierarchy, the
// per-cpu charge stocks, the hooks above.
type memcgState struct {
	cgMu     sync.Mutex // protects the tree (children lists) and nextID
	root     *MemCgroup
	nextID   int
	cgroupV1 bool
	ops      MemcgOps
	stocks   []memcgStock
	// oomLock is oom_lock, taken by mem_cgroup_out_of_memory.
	oomLock sync.Mutex
	// charged counts the folios charged to a non-root cgroup, so that
	// frees skip the uncharge walk while there are none.
	charged atomic.Int64
}

// memcgStock is one CPU's stock of pre-charged pages: up to NR_MEMCG_STOCK
// cgroups, each with at most MEMCG_CHARGE_BATCH pages.
//
// Kernel: mm/memcontrol.c:struct memcg_stock_pcp.
type memcgStock struct {
	mu       sync.Mutex
	nrPages  [nrMemcgStock]int64
	cached   [nrMemcgStock]*MemCgroup
	drainIdx int
}

// initMemcg makes the root cgroup; cpus is the number of simulated CPUs.
func (m *Model) initMemcg(cpus int) {
	root := &MemCgroup{model: m}
	root.memory.init(nil, true)
	root.memsw.init(nil, false)
	root.kmem.init(nil, false)
	root.swap.init(nil, false)
	root.lruvecs = m.lruvecs
	for _, v := range m.lruvecs {
		v.memcg = root
	}
	m.cg.root = root
	m.cg.nextID = 1
	m.cg.stocks = make([]memcgStock, max(cpus, 1))
}

// SetMemcgOps plugs memcg reclaim, the memcg OOM killer and throttling in;
// v1 selects the legacy hierarchy's accounting (memsw, kmem and failcnt
// counters, v1 statistics). Call it before any cgroup is made.
func (m *Model) SetMemcgOps(ops MemcgOps, v1 bool) {
	m.cg.ops = ops
	m.cg.cgroupV1 = v1
}

// CgroupV1 reports whether the memory controller is on the legacy
// hierarchy.
func (m *Model) CgroupV1() bool { return m.cg.cgroupV1 }

// RootMemcg returns the root cgroup.
func (m *Model) RootMemcg() *MemCgroup { return m.cg.root }

// NewMemcg makes a child cgroup of parent named name (mkdir). It inherits
// the parent's oom_kill_disable, as v1 does.
//
// Kernel: mm/memcontrol.c:mem_cgroup_css_alloc().
func (m *Model) NewMemcg(parent *MemCgroup, name string) (*MemCgroup, error) {
	if parent == nil || parent.model != m {
		return nil, fmt.Errorf("%w: the parent cgroup is not of this machine", zone.ErrInvalid)
	}
	if name == "" || strings.ContainsRune(name, '/') || name == "." || name == ".." {
		return nil, fmt.Errorf("%w: %q is not a cgroup directory name", EINVAL, name)
	}
	m.cg.cgMu.Lock()
	defer m.cg.cgMu.Unlock()
	for _, c := range parent.children {
		if c.name == name {
			return nil, fmt.Errorf("%w: cgroup %s/%s exists", EEXIST, strings.TrimSuffix(parent.Path(), "/"), name)
		}
	}
	cg := &MemCgroup{model: m, id: m.cg.nextID, name: name, parent: parent}
	m.cg.nextID++
	cg.memory.init(&parent.memory, !m.cg.cgroupV1)
	cg.swap.init(&parent.swap, false)
	cg.memsw.init(&parent.memsw, false)
	cg.kmem.init(&parent.kmem, false)
	cg.memory.trackFailcnt = m.cg.cgroupV1
	cg.memsw.trackFailcnt = m.cg.cgroupV1
	cg.oomKillDisable.Store(parent.oomKillDisable.Load())
	for _, root := range m.lruvecs {
		cg.lruvecs = append(cg.lruvecs, &Lruvec{node: root.node, memcg: cg, onLRU: root.onLRU})
	}
	parent.children = append(parent.children, cg)
	return cg, nil
}

// Subtree returns root and its descendants in pre-order, the order
// mem_cgroup_iter visits them.
//
// Kernel: mm/memcontrol.c:mem_cgroup_iter().
func (m *Model) Subtree(root *MemCgroup) []*MemCgroup {
	m.cg.cgMu.Lock()
	defer m.cg.cgMu.Unlock()
	var out []*MemCgroup
	var walk func(c *MemCgroup)
	walk = func(c *MemCgroup) {
		out = append(out, c)
		for _, k := range c.children {
			walk(k)
		}
	}
	walk(root)
	return out
}

// Memcg returns the cgroup p belongs to.
//
// Kernel: include/linux/memcontrol.h:mem_cgroup_from_task().
func (p *Proc) Memcg() *MemCgroup { return p.memcg.Load() }

// AttachMemcg moves p into cg (writing its pid to cgroup.procs). Its
// charges stay where they were made, as on v2 (and v1 without the
// deprecated move_charge_at_immigrate).
//
// Kernel: kernel/cgroup/cgroup.c:cgroup_attach_task().
func (m *Model) AttachMemcg(p *Proc, cg *MemCgroup) error {
	if cg == nil || cg.model != m {
		return fmt.Errorf("%w: the cgroup is not of this machine", zone.ErrInvalid)
	}
	if p.Kthread && !cg.IsRoot() {
		return fmt.Errorf("%w: %s is a kernel thread: it stays in the root cgroup", EINVAL, p.Task)
	}
	p.memcg.Store(cg)
	return nil
}

// MemcgProcs returns the processes of cg's subtree, in the order
// mem_cgroup_scan_tasks visits them: cgroup by cgroup in pre-order, each
// cgroup's processes in the order they joined the machine.
//
// Kernel: mm/memcontrol.c:mem_cgroup_scan_tasks().
func (m *Model) MemcgProcs(root *MemCgroup) []*Proc {
	procs := m.Procs()
	var out []*Proc
	for _, cg := range m.Subtree(root) {
		for _, p := range procs {
			if p.Memcg() == cg {
				out = append(out, p)
			}
		}
	}
	return out
}

// memoryEvent counts an event in cg and, on v2, in its ancestors below the
// root.
//
// Kernel: mm/memcontrol.c:__memcg_memory_event().
func (m *Model) memoryEvent(cg *MemCgroup, e MemcgEvent) {
	cg.eventsLocal[e].Add(1)
	for c := cg; ; {
		c.events[e].Add(1)
		if m.cg.cgroupV1 {
			break
		}
		if c = c.parent; c == nil || c.IsRoot() {
			break
		}
	}
}

// MemoryEvent counts an event (the OOM killer counts MEMCG_OOM_KILL).
func (m *Model) MemoryEvent(cg *MemCgroup, e MemcgEvent) { m.memoryEvent(cg, e) }

// consumeStock takes nr pre-charged pages of cg from the CPU's stock.
//
// Kernel: mm/memcontrol.c:consume_stock().
func (m *Model) consumeStock(cpu int, cg *MemCgroup, nr int64) bool {
	if nr > MemcgChargeBatch {
		return false
	}
	s := &m.cg.stocks[cpu]
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.cached {
		if s.cached[i] != cg {
			continue
		}
		if s.nrPages[i] >= nr {
			s.nrPages[i] -= nr
			return true
		}
		break
	}
	return false
}

// uncharge takes nr pages off cg's memory (and memsw) counters.
//
// Kernel: mm/memcontrol.c:memcg_uncharge().
func (m *Model) uncharge(cg *MemCgroup, nr int64) {
	under := cg.memory.Uncharge(nr)
	if m.cg.cgroupV1 {
		under = cg.memsw.Uncharge(nr) || under
	}
	if under {
		m.reportf(nil, bug.Warn, "mm/page_counter.c:page_counter_cancel",
			fmt.Sprintf("page_counter underflow: nr_pages=%d (cgroup %s)", nr, cg.Path()))
	}
}

// drainStockLocked returns slot i's pages to its cgroup.
//
// Kernel: mm/memcontrol.c:drain_stock().
func (m *Model) drainStockLocked(s *memcgStock, i int) {
	if s.cached[i] == nil {
		return
	}
	if s.nrPages[i] > 0 {
		m.uncharge(s.cached[i], s.nrPages[i])
		s.nrPages[i] = 0
	}
	s.cached[i] = nil
}

// refillStock puts nr pre-charged pages of cg in the CPU's stock, draining
// the slot past MEMCG_CHARGE_BATCH, or a slot in turn when all are taken.
//
// Kernel: mm/memcontrol.c:refill_stock().
func (m *Model) refillStock(cpu int, cg *MemCgroup, nr int64) {
	if nr > MemcgChargeBatch {
		m.uncharge(cg, nr)
		return
	}
	s := &m.cg.stocks[cpu]
	s.mu.Lock()
	defer s.mu.Unlock()
	empty := -1
	for i := range s.cached {
		if s.cached[i] == nil && empty == -1 {
			empty = i
		}
		if s.cached[i] == cg {
			s.nrPages[i] += nr
			if s.nrPages[i] > MemcgChargeBatch {
				m.drainStockLocked(s, i)
			}
			return
		}
	}
	i := empty
	if i == -1 {
		i = s.drainIdx
		s.drainIdx = (s.drainIdx + 1) % nrMemcgStock
		m.drainStockLocked(s, i)
	}
	s.cached[i], s.nrPages[i] = cg, nr
}

// DrainAllStock returns every CPU's stocked pages of root's subtree. The
// kernel drains other CPUs' stocks from a work item; mmsim drains them at
// once.
//
// Kernel: mm/memcontrol.c:drain_all_stock().
func (m *Model) DrainAllStock(root *MemCgroup) {
	for c := range m.cg.stocks {
		s := &m.cg.stocks[c]
		s.mu.Lock()
		for i := range s.cached {
			if s.cached[i] != nil && s.nrPages[i] > 0 && s.cached[i].IsDescendant(root) {
				m.drainStockLocked(s, i)
			}
		}
		s.mu.Unlock()
	}
	m.drainObjStock(root)
}

// ChargeError is a failed memcg charge: try_charge_memcg's -ENOMEM.
type ChargeError struct {
	Memcg *MemCgroup
	Mask  gfp.Mask
	Pages int64
}

func (e *ChargeError) Error() string {
	return fmt.Sprintf("memory cgroup %s: charge of %d page(s) with mode:%#x(%s) failed: over memory.max and nothing reclaimable",
		e.Memcg.Path(), e.Pages, uint64(e.Mask), e.Mask.Names())
}

// Unwrap makes a ChargeError an ENOMEM and an ErrNoMemory.
func (e *ChargeError) Unwrap() []error { return []error{ENOMEM, zone.ErrNoMemory} }

// taskDying reports task_is_dying: killed, or exiting.
func (m *Model) taskDying(p *Proc) bool { return p != nil && (p.Victim() || p.Exiting()) }

// tryChargeMemcg charges nr pages to cg for task t with the charge's mask,
// in try_charge_memcg's order: the CPU's stock; a batch of
// MEMCG_CHARGE_BATCH pages (the surplus stocked); on failure the exact
// amount; PF_MEMALLOC forces the charge; a task waiting in a v1 OOM, a
// request that cannot block and a reaped victim fail; then memcg reclaim
// with the charge's mask, the margin check, a drain of the stocks, the
// __GFP_NORETRY stop, MAX_RECLAIM_RETRIES retries, the __GFP_RETRY_MAYFAIL
// stop, and the memcg OOM killer (orders up to PAGE_ALLOC_COSTLY_ORDER);
// __GFP_NOFAIL or __GFP_HIGH force a charge that would fail. A charge
// that passes memory.high on cg or an ancestor is remembered for the
// return to user space, and reclaimed for at once past a batch.
//
// Kernel: mm/memcontrol.c:try_charge_memcg().
func (m *Model) tryChargeMemcg(t *memalloc.Task, cg *MemCgroup, mask gfp.Mask, nr int64) error {
	cpu := m.stockCPU(t)
	batch := max(int64(MemcgChargeBatch), nr)
	retries := MaxReclaimRetries
	p := m.Proc(t)
	passedOOM, drained, raisedMax := false, false, false
	spinning := mask&gfp.Reclaim != 0
	v1 := m.cg.cgroupV1
	var over *MemCgroup
	for {
		if m.consumeStock(cpu, cg, nr) {
			return nil
		}
		if !spinning {
			batch = nr
		}
		maySwap := true
		var fail *PageCounter
		if v1 {
			fail = cg.memsw.TryCharge(batch)
		}
		if fail == nil {
			if fail = cg.memory.TryCharge(batch); fail == nil {
				return m.doneRestock(t, p, cg, mask, nr, batch, cpu)
			}
			if v1 {
				cg.memsw.Uncharge(batch)
			}
			over = memcgOfCounter(cg, fail)
		} else {
			over = memcgOfCounter(cg, fail)
			maySwap = false
		}
		if batch > nr {
			batch = nr
			continue
		}
		if t.Flags()&memalloc.PFMemalloc != 0 {
			break // force
		}
		if p != nil && p.memcgInOOM != nil {
			return m.chargeNomem(cg, over, mask, nr, raisedMax)
		}
		if mask&gfp.DirectReclaim == 0 {
			return m.chargeNomem(cg, over, mask, nr, raisedMax)
		}
		if p != nil && p.Victim() && p.MM != nil && p.MM.OOMSkip() {
			return m.chargeNomem(cg, over, mask, nr, raisedMax)
		}
		m.memoryEvent(over, MemcgMax)
		raisedMax = true
		var reclaimed int64
		if m.cg.ops != nil {
			reclaimed = m.cg.ops.TryToFreeMemCgroupPages(t, over, nr, mask, maySwap)
		}
		if over.Margin() >= nr {
			continue
		}
		if !drained {
			m.DrainAllStock(over)
			drained = true
			continue
		}
		if mask&gfp.NoRetry != 0 {
			return m.chargeNomem(cg, over, mask, nr, raisedMax)
		}
		if reclaimed > 0 && nr <= 1<<zone.CostlyOrder {
			continue
		}
		if retries > 0 {
			retries--
			continue
		}
		if mask&gfp.RetryMayFail != 0 {
			return m.chargeNomem(cg, over, mask, nr, raisedMax)
		}
		if passedOOM && m.taskDying(p) {
			return m.chargeNomem(cg, over, mask, nr, raisedMax)
		}
		if m.memcgOOM(t, p, over, mask, orderOf(nr)) {
			passedOOM = true
			retries = MaxReclaimRetries
			continue
		}
		return m.chargeNomem(cg, over, mask, nr, raisedMax)
	}
	m.forceCharge(cg, over, nr, raisedMax)
	return nil
}

// chargeNomem is try_charge_memcg's nomem label: __GFP_NOFAIL and
// __GFP_HIGH charges go through over the limit; others fail.
func (m *Model) chargeNomem(cg, over *MemCgroup, mask gfp.Mask, nr int64, raisedMax bool) error {
	if mask&(gfp.NoFail|gfp.High) == 0 {
		return &ChargeError{Memcg: over, Mask: mask, Pages: nr}
	}
	m.forceCharge(cg, over, nr, raisedMax)
	return nil
}

// forceCharge is the force label: the charge goes past the limit.
func (m *Model) forceCharge(cg, over *MemCgroup, nr int64, raisedMax bool) {
	if !raisedMax {
		m.memoryEvent(over, MemcgMax)
	}
	cg.memory.Charge(nr)
	if m.cg.cgroupV1 {
		cg.memsw.Charge(nr)
	}
}

// doneRestock stocks the batch's surplus and notes memory.high.
func (m *Model) doneRestock(t *memalloc.Task, p *Proc, cg *MemCgroup, mask gfp.Mask, nr, batch int64, cpu int) error {
	if batch > nr {
		m.refillStock(cpu, cg, batch-nr)
	}
	for c := cg; c != nil; c = c.parent {
		memHigh := c.memory.Usage() > c.memory.High()
		swapHigh := c.swap.Usage() > c.swap.High()
		if (memHigh || swapHigh) && p != nil {
			p.overHigh.Add(batch)
			break
		}
	}
	if p != nil && p.overHigh.Load() > MemcgChargeBatch && t.Flags()&memalloc.PFMemalloc == 0 && mask&gfp.DirectReclaim != 0 {
		m.handleOverHigh(t, p, mask)
	}
	return nil
}

// memcgOfCounter returns the cgroup up from cg whose memory or memsw
// counter is fail.
//
// Kernel: include/linux/memcontrol.h:mem_cgroup_from_counter().
func memcgOfCounter(cg *MemCgroup, fail *PageCounter) *MemCgroup {
	for c := cg; c != nil; c = c.parent {
		if &c.memory == fail || &c.memsw == fail {
			return c
		}
	}
	return cg
}

// orderOf is get_order(nr * PAGE_SIZE).
func orderOf(nr int64) zone.Order {
	o := zone.Order(0)
	for int64(1)<<o < nr {
		o++
	}
	return o
}

// memcgOOM runs the memcg OOM killer for over: nothing above
// PAGE_ALLOC_COSTLY_ORDER; MEMCG_OOM counted; with v1's oom_kill_disable
// the task is left to wait at the end of its page fault (or the charge
// fails outside a fault); otherwise out_of_memory under oom_lock, unless
// the margin has grown back by then.
//
// Kernel: mm/memcontrol.c:mem_cgroup_oom(), mem_cgroup_out_of_memory(),
// mm/memcontrol-v1.c:memcg1_oom_prepare().
func (m *Model) memcgOOM(t *memalloc.Task, p *Proc, over *MemCgroup, mask gfp.Mask, order zone.Order) bool {
	if order > zone.CostlyOrder {
		return false
	}
	m.memoryEvent(over, MemcgOOM)
	if over.oomKillDisable.Load() {
		if p != nil && p.inUserFault.Load() {
			p.memcgInOOM = over
		}
		return false
	}
	over.underOOM.Add(1)
	defer over.underOOM.Add(-1)
	return m.MemcgOutOfMemory(t, over, mask, order)
}

// MemcgOutOfMemory runs the OOM killer for cg under oom_lock, unless the
// cgroup has room for the order again by the time the lock is held; it
// reports whether that, or a kill, made progress.
//
// Kernel: mm/memcontrol.c:mem_cgroup_out_of_memory().
func (m *Model) MemcgOutOfMemory(t *memalloc.Task, cg *MemCgroup, mask gfp.Mask, order zone.Order) bool {
	m.cg.oomLock.Lock()
	defer m.cg.oomLock.Unlock()
	if cg.Margin() >= 1<<order {
		return true
	}
	if m.cg.ops == nil {
		return false
	}
	return m.cg.ops.MemcgOutOfMemory(t, cg, mask, order)
}

// MemcgOps returns the hooks SetMemcgOps plugged in (nil before).
func (m *Model) MemcgOps() MemcgOps { return m.cg.ops }

// handleOverHigh reclaims and throttles a task whose charges went past
// memory.high: reclaim_high up the tree, then a sleep that grows with the
// square of the overage, at most two seconds, skipped under 10 ms.
//
// Kernel: mm/memcontrol.c:__mem_cgroup_handle_over_high(),
// calculate_high_delay(), reclaim_high().
func (m *Model) handleOverHigh(t *memalloc.Task, p *Proc, mask gfp.Mask) {
	nr := p.overHigh.Swap(0)
	if nr == 0 || p.MM == nil || m.cg.ops == nil {
		return
	}
	cg := p.Memcg()
	if cg == nil {
		return
	}
	retries := MaxReclaimRetries
	inRetry := false
	for {
		if m.taskDying(p) {
			return
		}
		target := nr
		if inRetry {
			target = 32 // SWAP_CLUSTER_MAX
		}
		reclaimed := m.reclaimHigh(t, cg, target, mask)
		penalty := highDelay(nr, maxOverage(cg, func(c *MemCgroup) *PageCounter { return &c.memory }))
		penalty += highDelay(nr, maxOverage(cg, func(c *MemCgroup) *PageCounter { return &c.swap }))
		penalty = min(penalty, memcgMaxHighDelay)
		if penalty <= sim.HZ/100 {
			return
		}
		if reclaimed > 0 || retries > 0 {
			if reclaimed == 0 {
				retries--
			}
			inRetry = true
			continue
		}
		m.cg.ops.Sleep(t, penalty*sim.Jiffy, p.Victim)
		return
	}
}

// HandleOverHigh runs the memory.high work a task owes on its return to
// user space.
//
// Kernel: include/linux/resume_user_mode.h:resume_user_mode_work().
func (m *Model) HandleOverHigh(p *Proc) {
	if p.overHigh.Load() > 0 {
		m.handleOverHigh(p.Task, p, gfp.Kernel)
	}
}

// reclaimHigh reclaims from each cgroup up the tree that is over its
// memory.high, counting MEMCG_HIGH.
//
// Kernel: mm/memcontrol.c:reclaim_high().
func (m *Model) reclaimHigh(t *memalloc.Task, cg *MemCgroup, nr int64, mask gfp.Mask) int64 {
	var reclaimed int64
	for c := cg; c != nil && !c.IsRoot(); c = c.parent {
		if c.memory.Usage() <= c.memory.High() {
			continue
		}
		m.memoryEvent(c, MemcgHigh)
		reclaimed += m.cg.ops.TryToFreeMemCgroupPages(t, c, nr, mask, true)
	}
	return reclaimed
}

// maxOverage is the largest (usage - high) / high up the tree below the
// root, in 1<<20 fixed point.
//
// Kernel: mm/memcontrol.c:mem_find_max_overage(), calculate_overage().
func maxOverage(cg *MemCgroup, counter func(*MemCgroup) *PageCounter) int64 {
	var worst int64
	for c := cg; c != nil && !c.IsRoot(); c = c.parent {
		pc := counter(c)
		usage, high := pc.Usage(), pc.High()
		if usage <= high {
			continue
		}
		high = max(high, 1)
		worst = max(worst, ((usage-high)<<memcgDelayPrecision)/high)
	}
	return worst
}

// highDelay is the throttling penalty in jiffies for nr pages at an
// overage.
//
// Kernel: mm/memcontrol.c:calculate_high_delay().
func highDelay(nr, overage int64) int64 {
	if overage == 0 {
		return 0
	}
	// u64 arithmetic, wrapping where the kernel's would.
	pen := uint64(overage) * uint64(overage) * sim.HZ
	pen >>= memcgDelayPrecision
	pen >>= memcgDelayScaling
	return int64(pen * uint64(nr) / MemcgChargeBatch)
}

// memcgOOMSynchronize is the end of a page fault whose charge hit a v1
// cgroup's OOM with oom_kill_disable set: the task waits, killable, until
// the cgroup's OOM is over (memory uncharged, the limit raised,
// oom_kill_disable cleared), then the fault is retried. mmsim bounds one
// wait at a second of simulated time; the fault is then retried again.
// It reports whether the task waited.
//
// Kernel: mm/memcontrol-v1.c:mem_cgroup_oom_synchronize(), memcg1_oom_recover().
func (m *Model) memcgOOMSynchronize(p *Proc) bool {
	cg := p.memcgInOOM
	if cg == nil {
		return false
	}
	p.memcgInOOM = nil
	cg.underOOM.Add(1)
	defer cg.underOOM.Add(-1)
	if m.cg.ops != nil {
		m.cg.ops.Sleep(p.Task, sim.HZ*sim.Jiffy, func() bool {
			return p.Victim() || cg.Margin() > 0 || !cg.oomKillDisable.Load()
		})
	}
	return true
}

// CalculateProtection computes cg's effective memory.min and memory.low
// for a reclaim of root's subtree (nil: the whole machine). The
// memory_recursiveprot mount option is off, as by default.
//
// Kernel: mm/memcontrol.c:mem_cgroup_calculate_protection().
func (cg *MemCgroup) CalculateProtection(root *MemCgroup) {
	if root == nil {
		root = cg.model.cg.root
	}
	cg.memory.calculateProtection(&root.memory, false)
}

// unprotected reports whether protection does not apply: the root cgroup,
// and the target of the reclaim itself.
//
// Kernel: include/linux/memcontrol.h:mem_cgroup_unprotected().
func (cg *MemCgroup) unprotected(target *MemCgroup) bool { return cg.IsRoot() || cg == target }

// BelowMin reports whether memory.min protects all of cg's usage from a
// reclaim of target.
//
// Kernel: include/linux/memcontrol.h:mem_cgroup_below_min().
func (cg *MemCgroup) BelowMin(target *MemCgroup) bool {
	return !cg.unprotected(target) && cg.memory.emin.Load() >= cg.memory.Usage()
}

// BelowLow reports whether memory.low protects all of cg's usage.
//
// Kernel: include/linux/memcontrol.h:mem_cgroup_below_low().
func (cg *MemCgroup) BelowLow(target *MemCgroup) bool {
	return !cg.unprotected(target) && cg.memory.elow.Load() >= cg.memory.Usage()
}

// Protection returns cg's effective min and low and its usage, for
// proportional reclaim (all zero when protection does not apply).
//
// Kernel: include/linux/memcontrol.h:mem_cgroup_protection().
func (cg *MemCgroup) Protection(target *MemCgroup) (emin, elow, usage int64) {
	if cg.unprotected(target) {
		return 0, 0, 0
	}
	return cg.memory.emin.Load(), cg.memory.elow.Load(), cg.memory.Usage()
}

// SubtreeLRU returns the pages on list l of node nid's lists of cg and its
// descendants (the hierarchical lruvec_page_state). Called with the
// Model's lock held.
func (m *Model) SubtreeLRU(cg *MemCgroup, nid int, l LRUList) int64 {
	var n int64
	for _, c := range m.Subtree(cg) {
		n += c.lruvecs[nid].Size(l, gfp.ZoneType(gfp.MaxNrZones-1))
	}
	return n
}
