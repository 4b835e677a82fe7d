package mm

import "github.com/mmsim/mmsim/zone"

// The operations below are the steps of shrink_folio_list that change the
// model; package reclaim decides which to take. Each is called with the
// Model's lock held, on a folio the caller isolated.

// Released reports whether the folio's owners let go of it while it was
// isolated (the last mapping of an anonymous folio went: exit, munmap, the
// OOM reaper, or reclaim's own unmap; or a file folio was truncated): the
// isolating reclaimer frees it, as the put of its isolation reference
// does.
func (f *Folio) Released() bool { return !f.anon && f.file == nil }

// Referenced is folio_referenced: the number of mappings whose accessed bit
// was set (0 or 1 here: mmsim keeps one accessed bit per folio), which it
// clears. An unmapped page-cache folio gives 0.
//
// Kernel: mm/rmap.c:folio_referenced().
func (f *Folio) Referenced() int {
	young := f.Young && len(f.rmap) > 0
	f.Young = false
	if young {
		return 1
	}
	return 0
}

// Mlocked reports whether the folio is in a VM_LOCKED mapping.
func (f *Folio) Mlocked() bool { return f.Flags&PGMlocked != 0 }

// SwapOut writes a swap-backed folio to swap and unmaps it: every pte that
// mapped an anonymous folio becomes a swap entry (its owner's anon rss a
// swap entry), a shmem folio leaves its file's page cache for the swap
// slot. It reports false when swap is full (folio_alloc_swap failed).
//
// Kernel: mm/swap_state.c:folio_alloc_swap(), mm/rmap.c:try_to_unmap_one(),
// mm/page_io.c:swap_writeout(), mm/shmem.c:shmem_writeout().
func (m *Model) SwapOut(f *Folio) bool {
	for {
		used := m.swap.used.Load()
		if used+f.NrPages() > m.swap.total {
			return false
		}
		if m.swap.used.CompareAndSwap(used, used+f.NrPages()) {
			break
		}
	}
	slot := &swapEntry{val: f.val}
	nd := f.node
	for _, r := range f.rmap {
		e := r.mm.lookupPTE(r.vpn << pageShift)
		*e = pte{swap: slot}
		slot.refs++
		r.mm.updateHiwater()
		r.mm.counters[f.mmCounter()].Add(-f.NrPages())
		if f.anon {
			r.mm.counters[MMSwapEnts].Add(f.NrPages())
		} else {
			nd.ModState(zone.NodeNrMapped, -f.NrPages())
		}
	}
	f.rmap = nil
	if f.anon {
		m.releaseAnonLocked(f)
	} else { // shmem: the slot replaces the page in the file
		slot.refs = 1
		f.file.swapped[f.index] = slot
		delete(f.file.pages, f.index)
		f.file = nil
		nd.ModState(zone.NodeNrFilePages, -f.NrPages())
		nd.ModState(zone.NodeNrShmem, -f.NrPages())
	}
	f.Flags &^= PGDirty
	nd.ModState(zone.NodeNrVmscanWrite, f.NrPages())
	m.alloc.CountEvent(zone.EvPswpout, f.NrPages())
	m.alloc.CountEvent(zone.VMPgpgout, f.NrPages()*4)
	return true
}

// TryToUnmap unmaps a folio reclaim wants from every page table, each
// pte's dirty bit passing to the folio. A lazily freed anonymous folio
// (MADV_FREE, or VM_DROPPABLE) is discarded from each mapping — even when
// dirty, if the mapping is VM_DROPPABLE; a MADV_FREE'd one written again
// since is dirty: it becomes swap-backed again and stays mapped (false).
// An mlocked folio is not unmapped (false). It reports whether the folio
// is unmapped.
//
// Kernel: mm/rmap.c:try_to_unmap(), try_to_unmap_one() (the MADV_FREE check).
func (m *Model) TryToUnmap(f *Folio) bool {
	if f.Flags&PGMlocked != 0 {
		return false
	}
	for len(f.rmap) > 0 {
		r := f.rmap[len(f.rmap)-1]
		addr := r.vpn << pageShift
		e := r.mm.lookupPTE(addr)
		if e.dirty {
			m.folioMarkDirtyLocked(f)
			e.dirty = false
		}
		if f.Lazyfree() && f.Flags&PGDirty != 0 {
			if v := r.mm.findVMA(addr); v == nil || v.flags&VMDroppable == 0 {
				// Redirtied: keep it, swap-backed again.
				f.Flags |= PGSwapBacked
				return false
			}
		}
		m.unmapPTELocked(r.mm, addr, e)
	}
	if f.anon { // the last mapping of an anonymous folio went
		m.releaseAnonLocked(f)
	}
	return true
}

// RemoveMapping takes a clean page-cache folio out of its file.
//
// Kernel: mm/vmscan.c:__remove_mapping().
func (m *Model) RemoveMapping(f *Folio) {
	delete(f.file.pages, f.index)
	if f.Flags&PGSwapBacked != 0 {
		f.node.ModState(zone.NodeNrShmem, -f.NrPages())
	}
	f.file = nil
	f.node.ModState(zone.NodeNrFilePages, -f.NrPages())
}

// MarkImmediate records a dirty file folio reclaim wants freed as soon as
// its writeback ends: PG_reclaim, nr_vmscan_immediate_reclaim.
func (m *Model) MarkImmediate(f *Folio) {
	f.Flags |= PGReclaim
	f.node.ModState(zone.NodeNrVmscanImmediateReclaim, f.NrPages())
}
