package mm

import "github.com/mmsim/mmsim/zone"

// The operations below are the steps of shrink_folio_list that change the
// model; package reclaim decides which to take. Each is called with the
// Model's lock held, on a folio the caller isolated.

// Released reports whether the folio's owner let go of it while it was
// isolated (the process exited, or the OOM reaper ran): the isolating
// reclaimer frees it.
func (f *Folio) Released() bool { return f.mm == nil && f.file == nil }

// Referenced is folio_referenced: the number of mappings whose accessed bit
// was set (0 or 1 here: one owner), which it clears. An unmapped page-cache
// folio gives 0.
//
// Kernel: mm/rmap.c:folio_referenced().
func (f *Folio) Referenced() int {
	if !f.Young {
		return 0
	}
	f.Young = false
	return 1
}

// Mlocked reports whether the folio is in a VM_LOCKED mapping.
func (f *Folio) Mlocked() bool { return f.Flags&PGMlocked != 0 }

// SwapOut adds an anonymous folio to swap, unmaps it and writes it out: its
// owner's anon rss becomes a swap entry. It reports false when swap is
// full (folio_alloc_swap failed).
//
// Kernel: mm/swap_state.c:folio_alloc_swap(), mm/rmap.c:try_to_unmap(),
// mm/page_io.c:swap_writeout().
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
	mm := f.mm
	delete(mm.anon, f)
	f.mm = nil
	mm.counters[MMAnonPages].Add(-f.NrPages())
	mm.counters[MMSwapEnts].Add(f.NrPages())
	f.node.node.ModState(zone.NodeNrAnonPages, -f.NrPages())
	f.node.node.ModState(zone.NodeNrVmscanWrite, f.NrPages())
	m.alloc.CountEvent(zone.EvPswpout, f.NrPages())
	m.alloc.CountEvent(zone.VMPgpgout, f.NrPages()*4)
	return true
}

// RemoveMapping takes a clean page-cache folio out of its file.
//
// Kernel: mm/vmscan.c:__remove_mapping().
func (m *Model) RemoveMapping(f *Folio) {
	delete(f.file.pages, f.index)
	f.file = nil
	f.node.node.ModState(zone.NodeNrFilePages, -f.NrPages())
}

// MarkImmediate records a dirty file folio reclaim wants freed as soon as
// its writeback ends: PG_reclaim, nr_vmscan_immediate_reclaim.
func (m *Model) MarkImmediate(f *Folio) {
	f.Flags |= PGReclaim
	f.node.node.ModState(zone.NodeNrVmscanImmediateReclaim, f.NrPages())
}
