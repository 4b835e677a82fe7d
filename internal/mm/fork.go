package mm

import (
	"errors"
	"fmt"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// Fork creates the child process of parent, running as task child: it
// inherits parent's credentials, RLIMIT_MEMLOCK and oom_score_adj, and a
// copy of its address space — every mapping but VM_DONTCOPY ones, none
// of them VM_LOCKED (mlock is not inherited), accountable ones charged to
// Committed_AS again. Private anonymous pages become shared copy-on-write
// (both sides write-protected, each mapping counted in its mm's rss); a
// VM_WIPEONFORK mapping (VM_DROPPABLE ones among them) is copied empty, so
// it reads as zero in the child; shared mappings are left for the child to
// fault in again. Page tables for the child are allocated by the parent.
//
// Kernel: kernel/fork.c:copy_process(), copy_mm(), mm/mmap.c:dup_mmap(),
// mm/memory.c:copy_page_range(), vma_needs_copy(), copy_present_ptes().
func (m *Model) Fork(parent *Proc, child *memalloc.Task) (*Proc, error) {
	if parent.MM == nil {
		return nil, fmt.Errorf("%w: %s is a kernel thread", zone.ErrInvalid, parent.Task)
	}
	c := m.AddProc(child, false)
	c.memcg.Store(parent.Memcg()) // the child starts in its parent's cgroup
	m.SetUID(c, parent.UID)
	c.rlimMemlock.Store(parent.rlimMemlock.Load())
	c.SetOOMScoreAdj(parent.OOMScoreAdj())
	if err := m.dupMmap(parent, c); err != nil {
		return nil, errors.Join(err, m.Exit(c)) // the half-built child goes
	}
	return c, nil
}

// dupMmap copies parent's address space into the new child c, both mmap
// locks held for writing.
//
// Kernel: mm/mmap.c:dup_mmap().
func (m *Model) dupMmap(parent, c *Proc) error {
	pm, cm := parent.MM, c.MM
	pm.mmapLock.Lock()
	defer pm.mmapLock.Unlock()
	cm.mmapLock.Lock()
	defer cm.mmapLock.Unlock()
	cm.mmapBase = pm.mmapBase
	// The commit charges first: security_vm_enough_memory_mm per VMA.
	m.mu.Lock()
	vmas := append([]*VMA(nil), pm.vmas...)
	m.mu.Unlock()
	var copied []*VMA
	for _, v := range vmas {
		if v.flags&VMDontCopy != 0 {
			continue
		}
		if v.flags&VMAccount != 0 {
			if err := m.vmEnoughMemory(parent, pm, v.Pages()); err != nil {
				return fmt.Errorf("fork: %w", err)
			}
		}
		w := *v
		w.mm = cm
		w.flags &^= VMLockedMask
		m.mu.Lock()
		cm.insertVMA(&w)
		if w.file != nil {
			w.file.mapRef(1)
		}
		m.mu.Unlock()
		if v == pm.heap {
			cm.heap = &w
		}
		cm.totalVM.Add(w.Pages())
		if vmaNeedsCopy(v) {
			copied = append(copied, v)
		}
	}
	// The child's page tables, allocated by the parent.
	m.mu.Lock()
	var keys []uint64
	seen := map[uint64]bool{}
	for _, v := range copied {
		for key := vpn(v.start) / ptesPerTable; key <= vpn(v.end-1)/ptesPerTable; key++ {
			if pm.tables[key] != nil && !seen[key] {
				seen[key] = true
				keys = append(keys, key)
			}
		}
	}
	m.mu.Unlock()
	for _, key := range keys {
		pg, err := m.alloc.AllocPages(parent.Task, GFPPgtableUser|gfp.Comp, 0)
		if err != nil {
			return fmt.Errorf("fork: copy_pte_range: %w", err)
		}
		m.mu.Lock()
		cm.tables[key] = &ptTable{page: pg}
		m.mu.Unlock()
		cm.pgtables.Add(zone.PageSize)
		m.pageTableStat(c, pg, 1)
	}
	m.mu.Lock()
	for _, v := range copied {
		m.copyPTEsLocked(pm, cm, v)
	}
	m.mu.Unlock()
	return nil
}

// vmaNeedsCopy: only mappings with anonymous pages need their entries
// copied (the rest fault in again), and never a VM_WIPEONFORK one.
//
// Kernel: mm/memory.c:vma_needs_copy(), mm/mmap.c:dup_mmap().
func vmaNeedsCopy(v *VMA) bool {
	if v.flags&VMWipeOnFork != 0 {
		return false
	}
	return v.file == nil || v.flags&VMShared == 0 // anon, or private file (its COW pages)
}

// copyPTEsLocked copies v's entries from pm to cm: present anonymous pages
// shared and write-protected, file pages mapped, swap entries
// referenced again. Called with the Model's lock held.
func (m *Model) copyPTEsLocked(pm, cm *MM, v *VMA) {
	for addr := v.start; addr < v.end; addr += pageSize {
		e := pm.lookupPTE(addr)
		if e == nil {
			addr = (vpn(addr)/ptesPerTable+1)*ptesPerTable<<pageShift - pageSize
			continue
		}
		switch {
		case e.swap != nil:
			e.swap.refs++
			*cm.lookupPTE(addr) = pte{swap: e.swap}
			cm.counters[MMSwapEnts].Add(1)
		case e.present():
			f := e.folio
			write := e.write
			if f == zeroFolio || f.anon {
				e.write = false // copy-on-write from now on
				write = false
			}
			m.mapFolioLocked(cm, addr, f, write, e.dirty)
		}
	}
}
