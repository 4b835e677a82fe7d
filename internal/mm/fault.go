package mm

import (
	"fmt"
	"strings"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/zone"
)

// FaultResult is what a fault handler returns: vm_fault_t's bits.
//
// Kernel: include/linux/mm_types.h:enum vm_fault_reason.
type FaultResult uint32

// The vm_fault_t bits mmsim returns.
const (
	VMFaultOOM     FaultResult = 0x000001
	VMFaultSIGBUS  FaultResult = 0x000002
	VMFaultMajor   FaultResult = 0x000004
	VMFaultSIGSEGV FaultResult = 0x000040
	VMFaultNoPage  FaultResult = 0x000100
	VMFaultLocked  FaultResult = 0x000200
	VMFaultRetry   FaultResult = 0x000400
)

var faultNames = []struct {
	r    FaultResult
	name string
}{
	{VMFaultOOM, "OOM"}, {VMFaultSIGBUS, "SIGBUS"}, {VMFaultMajor, "MAJOR"},
	{VMFaultSIGSEGV, "SIGSEGV"}, {VMFaultNoPage, "NOPAGE"}, {VMFaultLocked, "LOCKED"},
	{VMFaultRetry, "RETRY"},
}

// String spells the bits as the kernel's VM_FAULT_RESULT_TRACE names them,
// "|"-joined; 0 is "0".
func (r FaultResult) String() string {
	if r == 0 {
		return "0"
	}
	var s []string
	for _, n := range faultNames {
		if r&n.r != 0 {
			s = append(s, n.name)
			r &^= n.r
		}
	}
	if r != 0 {
		s = append(s, fmt.Sprintf("%#x", uint32(r)))
	}
	return strings.Join(s, "|")
}

// Outcome is what became of a user access: what the task sees.
type Outcome int

// The outcomes of an access.
const (
	// AccessOK: the access completed, after a fault if one was needed.
	AccessOK Outcome = iota
	// AccessRetried: the fault of a VM_DROPPABLE mapping ran out of
	// memory; handle_mm_fault stripped VM_FAULT_OOM, so no page was
	// installed, no signal sent, nothing killed: the instruction runs
	// again when the task returns to user mode.
	AccessRetried
	// AccessOOM: VM_FAULT_OOM reached the page-fault handler, which
	// called pagefault_out_of_memory: no kill from there (since 5.16),
	// a rate-limited "Huh VM_FAULT_OOM leaked out" warning, and the
	// instruction is retried.
	AccessOOM
	// AccessSIGBUS: the fault returned VM_FAULT_SIGBUS: SIGBUS.
	AccessSIGBUS
	// AccessSIGSEGV: no mapping, or one that forbids the access: SIGSEGV.
	AccessSIGSEGV
	// AccessKilled: the task has a fatal signal pending (the OOM killer
	// chose it): it dies on its way back to user mode.
	AccessKilled
	// AccessWriteLost: the what-if of the VM_DROPPABLE series before
	// v15 — the faulting write is skipped and lost, the task goes on.
	AccessWriteLost
)

var outcomeNames = [...]string{"ok", "retry", "oom", "SIGBUS", "SIGSEGV", "killed", "write lost"}

// String names the outcome.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// AccessResult is one access's outcome.
type AccessResult struct {
	Outcome Outcome
	// Faulted: the access faulted; Fault is what handle_mm_fault
	// returned (after a droppable mapping's VM_FAULT_OOM was stripped).
	Faulted bool
	Fault   FaultResult
	// Value is the word read, or written.
	Value uint64
	// Err is the allocation failure behind an OOM or retried fault.
	Err error
}

// The fault-handling knobs of a Model.
type FaultOptions struct {
	// DroppableWriteLost is the what-if of the VM_DROPPABLE series up to
	// v14: a write fault of a droppable mapping that runs out of memory
	// skips the faulting instruction, so the write is lost, instead of
	// retrying it.
	DroppableWriteLost bool
}

// SetFaultOptions sets the fault-handling knobs.
func (m *Model) SetFaultOptions(o FaultOptions) { m.faultOpts = o }

// Access reads (or, with write, writes val to) the word at addr for p, as
// a user instruction does: an access the page tables allow completes; any
// other faults, and the fault's result decides the outcome. Each page
// holds one word, standing for its contents: a page never written, or
// dropped and faulted in again, reads zero.
//
// Kernel: arch/x86/mm/fault.c:do_user_addr_fault(),
// mm/memory.c:handle_mm_fault(), mm/oom_kill.c:pagefault_out_of_memory().
func (m *Model) Access(p *Proc, addr uint64, write bool, val uint64) (AccessResult, error) {
	if p.MM == nil {
		return AccessResult{}, fmt.Errorf("%w: %s is a kernel thread: it has no address space", zone.ErrInvalid, p.Task)
	}
	if p.Victim() {
		return AccessResult{Outcome: AccessKilled}, fmt.Errorf("%w: %s", ErrKilled, p.Task)
	}
	p.MM.mmapLock.RLock()
	res, err := m.accessMmapLocked(p, addr, accessOp{write: write, val: val})
	p.MM.mmapLock.RUnlock()
	m.HandleOverHigh(p) // resume_user_mode_work
	return res, err
}

// accessOp is what an access does once the page is there: read, write
// val, or (touch) only fault the page in as a read or write would.
type accessOp struct {
	write, touch bool
	val          uint64
}

// accessMmapLocked is Access with the mmap lock held (for reading or
// writing).
func (m *Model) accessMmapLocked(p *Proc, addr uint64, op accessOp) (AccessResult, error) {
	mm := p.MM
	vma := mm.findVMA(addr)
	if vma == nil || accessError(vma, op.write) {
		return AccessResult{Outcome: AccessSIGSEGV, Faulted: true, Fault: VMFaultSIGSEGV}, nil
	}
	write := op.write
	var res AccessResult
	for try := 0; ; try++ {
		if v, ok := m.tryAccess(mm, addr, op); ok {
			res.Value = v
			return res, nil
		}
		if try == 3 {
			// Reclaim keeps taking the page away between our fault
			// and our access: the kernel would loop; report it.
			return res, fmt.Errorf("%w: the fault at %#x kept being undone", zone.ErrDeadlock, addr)
		}
		p.inUserFault.Store(true)
		r, err := m.handleMMFault(p, vma, addr, write)
		p.inUserFault.Store(false)
		res.Faulted, res.Err = true, err
		if r&VMFaultOOM == 0 {
			p.memcgInOOM = nil // mem_cgroup_oom_synchronize(false)
		}
		if vma.flags&VMDroppable != 0 {
			// If the mapping is droppable, errors due to OOM aren't fatal.
			r &^= VMFaultOOM
		}
		res.Fault = r
		switch {
		case r&VMFaultOOM != 0:
			if m.memcgOOMSynchronize(p) {
				res.Outcome = AccessOOM
				return res, nil
			}
			if p.Victim() {
				res.Outcome = AccessKilled
				return res, nil
			}
			if ok, _ := m.pfoomRS.Allow(m.now()); ok {
				m.reportf(p, bug.Info, "mm/oom_kill.c:pagefault_out_of_memory",
					"Huh VM_FAULT_OOM leaked out to the #PF handler. Retrying PF")
			}
			res.Outcome = AccessOOM
			return res, nil
		case r&VMFaultSIGBUS != 0:
			res.Outcome = AccessSIGBUS
			return res, nil
		case r&VMFaultSIGSEGV != 0:
			res.Outcome = AccessSIGSEGV
			return res, nil
		case err != nil: // droppable: nothing installed
			if p.Victim() {
				res.Outcome = AccessKilled
			} else if write && !op.touch && m.faultOpts.DroppableWriteLost {
				res.Outcome = AccessWriteLost
			} else {
				res.Outcome = AccessRetried
			}
			return res, nil
		}
	}
}

// accessError is x86's access_error for a user access: a write needs
// VM_WRITE, any access some of VM_READ, VM_WRITE, VM_EXEC.
//
// Kernel: arch/x86/mm/fault.c:access_error(), include/linux/mm.h:vma_is_accessible().
func accessError(v *VMA, write bool) bool {
	if write {
		return v.flags&VMWrite == 0
	}
	return v.flags&(VMRead|VMWrite|VMExec) == 0
}

// tryAccess performs the access if the page tables allow it: a present
// entry, writable for a write.
func (m *Model) tryAccess(mm *MM, addr uint64, op accessOp) (uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := mm.lookupPTE(addr)
	if p == nil || !p.present() || op.write && !p.write {
		return 0, false
	}
	f := p.folio
	if f != zeroFolio {
		f.Young = true
	}
	if !op.write || op.touch {
		return f.val, true
	}
	f.val = op.val
	if !p.dirty {
		p.dirty = true
		if f.file != nil && f.Flags&PGSwapBacked == 0 && f.file.secret == nil {
			m.markDirty(f) // a shared file page dirtied through the mapping
		}
	}
	return op.val, true
}

// handleMMFault resolves one fault at addr: the page table, then the
// page. Called with the mmap lock held for reading, the Model's lock not
// held (it allocates).
//
// Kernel: mm/memory.c:__handle_mm_fault(), handle_pte_fault().
func (m *Model) handleMMFault(p *Proc, vma *VMA, addr uint64, write bool) (FaultResult, error) {
	mm := p.MM
	m.alloc.CountEvent(zone.VMPgfault, 1)
	m.countMemcgEvent(p, MemcgPgfault)
	if err := m.pteAlloc(p, addr); err != nil {
		return VMFaultOOM, err
	}
	m.mu.Lock()
	e := *mm.lookupPTE(addr)
	m.mu.Unlock()
	switch {
	case e.swap != nil:
		return m.doSwapPage(p, vma, addr, e, write)
	case e.none() && vma.file == nil:
		return m.doAnonymousPage(p, vma, addr, write)
	case e.none():
		return m.doFileFault(p, vma, addr, write)
	case write && !e.write:
		return m.doWPPage(p, vma, addr, e)
	}
	return 0, nil // raced with another fault: nothing to do
}

// pteAlloc allocates the page-table page for addr if it has none.
//
// Kernel: mm/memory.c:__pte_alloc().
func (m *Model) pteAlloc(p *Proc, addr uint64) error {
	mm := p.MM
	key := vpn(addr) / ptesPerTable
	m.mu.Lock()
	have := mm.tables[key] != nil
	m.mu.Unlock()
	if have {
		return nil
	}
	pg, err := m.alloc.AllocPages(p.Task, GFPPgtableUser|gfp.Comp, 0) // pagetable_alloc adds __GFP_COMP
	if err != nil {
		return fmt.Errorf("__pte_alloc: %w", err)
	}
	m.mu.Lock()
	if mm.tables[key] != nil || mm.released {
		m.mu.Unlock()
		return m.alloc.FreePages(p.Task, pg, 0)
	}
	mm.tables[key] = &ptTable{page: pg}
	m.mu.Unlock()
	mm.pgtables.Add(zone.PageSize)
	m.pageTableStat(p, pg, 1)
	return nil
}

// vmaAllocFolio allocates a user page for vma, as a folio (__GFP_COMP),
// and charges it to the mm's cgroup with chargeMask; a droppable mapping's
// allocation does not warn.
//
// Kernel: mm/mempolicy.c:vma_alloc_folio_noprof(), folio_alloc_mpol_noprof(),
// mm/memory.c:folio_prealloc().
func (m *Model) vmaAllocFolio(p *Proc, vma *VMA, mask, chargeMask gfp.Mask) (zone.Page, *MemCgroup, error) {
	if vma.flags&VMDroppable != 0 {
		mask |= gfp.NoWarn
	}
	return m.allocUserFolio(p, mask|gfp.Comp, chargeMask)
}

// newAnonFolioLocked makes a folio for a new anonymous page of vma and
// puts it on its LRU list: swap-backed, except in a VM_DROPPABLE mapping,
// whose folios reclaim drops instead (they go on the file list, as lazily
// freed pages do); mlocked in a VM_LOCKED mapping.
//
// Kernel: mm/rmap.c:folio_add_new_anon_rmap(), mm/swap.c:folio_add_lru_vma().
func (m *Model) newAnonFolioLocked(vma *VMA, pg zone.Page, cg *MemCgroup, val uint64) *Folio {
	f := m.newFolio(pg, 0, cg)
	f.anon = true
	f.val = val
	if vma.flags&VMDroppable == 0 {
		f.Flags |= PGSwapBacked
	}
	f.node.ModState(zone.NodeNrAnonPages, 1)
	if vma.flags&VMLocked != 0 {
		m.mlockNewFolioLocked(f)
	}
	f.node.add(f)
	return f
}

// doAnonymousPage is the first touch of a private anonymous page: a read
// maps the zero page; a write allocates a zeroed movable page.
//
// Kernel: mm/memory.c:do_anonymous_page(), alloc_anon_folio().
func (m *Model) doAnonymousPage(p *Proc, vma *VMA, addr uint64, write bool) (FaultResult, error) {
	mm := p.MM
	if !write {
		m.mu.Lock()
		if cur := mm.lookupPTE(addr); cur != nil && cur.none() && !mm.released {
			m.mapFolioLocked(mm, addr, zeroFolio, false, false)
		}
		m.mu.Unlock()
		return 0, nil
	}
	pg, cg, err := m.vmaAllocFolio(p, vma, GFPAnonFault, GFPMemcgUserCharge)
	if err != nil {
		return VMFaultOOM, fmt.Errorf("do_anonymous_page: %w", err)
	}
	return m.finishAnon(p, vma, addr, pte{}, pg, cg, 0)
}

// finishAnon maps a new anonymous page, charged to cg, holding val where
// the fault saw e.
func (m *Model) finishAnon(p *Proc, vma *VMA, addr uint64, e pte, pg zone.Page, cg *MemCgroup, val uint64) (FaultResult, error) {
	mm := p.MM
	m.mu.Lock()
	cur := mm.lookupPTE(addr)
	if cur == nil || mm.released || *cur != e {
		m.mu.Unlock()
		return 0, m.freeUnused(p.Task, pg, cg)
	}
	var free []*Folio
	if cur.present() { // the zero page, or the page copied on write
		if old := m.unmapPTELocked(mm, addr, cur); old != nil && old.anon {
			if old = m.takeOffLRULocked(old); old != nil {
				free = append(free, old)
			}
		}
	}
	m.mapFolioLocked(mm, addr, m.newAnonFolioLocked(vma, pg, cg, val), true, true)
	m.mu.Unlock()
	return 0, m.freeFolios(p.Task, free)
}

// doWPPage is a write to a present read-only entry: the zero page, or a
// page shared copy-on-write since fork. A private anonymous page mapped
// only here is reused; anything else is copied into a new page.
//
// Kernel: mm/memory.c:do_wp_page(), wp_page_copy(), wp_can_reuse_anon_folio().
func (m *Model) doWPPage(p *Proc, vma *VMA, addr uint64, e pte) (FaultResult, error) {
	mm := p.MM
	if e.folio != zeroFolio && vma.flags&VMShared != 0 {
		// A shared mapping's page becomes writable in place.
		m.mu.Lock()
		if cur := mm.lookupPTE(addr); cur != nil && *cur == e {
			cur.write = true
		}
		m.mu.Unlock()
		return 0, nil
	}
	if e.folio != zeroFolio {
		m.mu.Lock()
		cur := mm.lookupPTE(addr)
		if cur != nil && *cur == e && e.folio.anon && len(e.folio.rmap) == 1 {
			cur.write = true // reuse: the only mapping
			m.mu.Unlock()
			return 0, nil
		}
		m.mu.Unlock()
	}
	mask := gfp.HighUserMovable
	if e.folio == zeroFolio {
		mask = GFPAnonFault
	}
	pg, cg, err := m.vmaAllocFolio(p, vma, mask, GFPMemcgUserCharge)
	if err != nil {
		return VMFaultOOM, fmt.Errorf("wp_page_copy: %w", err)
	}
	m.mu.Lock()
	val := e.folio.val
	m.mu.Unlock()
	if e.folio == zeroFolio {
		val = 0
	}
	return m.finishAnon(p, vma, addr, e, pg, cg, val)
}

// doSwapPage brings a swapped-out anonymous page back: a new page, the
// contents read from the slot, the slot's reference dropped. A major
// fault.
//
// Kernel: mm/memory.c:do_swap_page().
func (m *Model) doSwapPage(p *Proc, vma *VMA, addr uint64, e pte, write bool) (FaultResult, error) {
	mm := p.MM
	// The swap-in charge has the folio's own mask.
	pg, cg, err := m.vmaAllocFolio(p, vma, gfp.HighUserMovable, gfp.HighUserMovable)
	if err != nil {
		return VMFaultOOM, fmt.Errorf("do_swap_page: %w", err)
	}
	m.mu.Lock()
	cur := mm.lookupPTE(addr)
	if cur == nil || mm.released || *cur != e {
		m.mu.Unlock()
		return 0, m.freeUnused(p.Task, pg, cg)
	}
	s := e.swap
	exclusive := s.refs == 1
	*cur = pte{}
	m.freeSwapLocked(s)
	mm.counters[MMSwapEnts].Add(-1)
	f := m.newAnonFolioLocked(vma, pg, cg, s.val)
	m.mapFolioLocked(mm, addr, f, write || exclusive, write)
	m.mu.Unlock()
	m.alloc.CountEvent(zone.EvPswpin, 1)
	m.alloc.CountEvent(zone.VMPgpgin, 4)
	m.alloc.CountEvent(zone.VMPgmajfault, 1)
	m.countMemcgEvent(p, MemcgPgmajfault)
	return VMFaultMajor, nil
}

// doFileFault faults in a page of a file-backed mapping: the file's page
// (secretmem's own fault handler for a secret file), then, for a write to
// a private mapping, a private copy.
//
// Kernel: mm/memory.c:do_fault(), do_read_fault(), do_cow_fault(),
// do_shared_fault(), mm/filemap.c:filemap_fault(), mm/shmem.c:shmem_fault().
func (m *Model) doFileFault(p *Proc, vma *VMA, addr uint64, write bool) (FaultResult, error) {
	mm := p.MM
	idx := vma.fileIndex(addr)
	f, ret, err := m.filePage(p, vma, idx)
	if ret&(VMFaultOOM|VMFaultSIGBUS|VMFaultSIGSEGV) != 0 || f == nil {
		return ret, err
	}
	if write && vma.flags&VMShared == 0 {
		pg, cg, err := m.vmaAllocFolio(p, vma, gfp.HighUserMovable, GFPMemcgUserCharge)
		if err != nil {
			return VMFaultOOM, fmt.Errorf("do_cow_fault: %w", err)
		}
		m.mu.Lock()
		val := f.val
		m.mu.Unlock()
		r, err := m.finishAnon(p, vma, addr, pte{}, pg, cg, val)
		return ret | r, err
	}
	m.mu.Lock()
	cur := mm.lookupPTE(addr)
	if cur != nil && cur.none() && !mm.released && f.file != nil {
		m.mapFolioLocked(mm, addr, f, write, false)
		if write {
			cur.dirty = true
			m.folioMarkDirtyLocked(f)
		}
		if vma.flags&VMLocked != 0 {
			m.mlockFolioLocked(f)
		}
	}
	m.mu.Unlock()
	return ret, nil
}
