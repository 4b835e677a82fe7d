package reclaim

import (
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/mm"
	"github.com/mmsim/mmsim/zone"
)

// stat offsets: kswapd's counter, or direct reclaim's.
func (sc *scanControl) pick(kswapd, direct zone.NodeStat) zone.NodeStat {
	if sc.kswapd {
		return kswapd
	}
	return direct
}

// shrinkActiveList moves folios from an active list to its inactive list,
// except referenced executable file folios, which stay active. Their
// accessed bits are cleared on the way.
//
// Kernel: mm/vmscan.c:shrink_active_list().
func (r *Reclaimer) shrinkActiveList(sc *scanControl, v *mm.Lruvec, l mm.LRUList, nrToScan int64) {
	m := r.model
	m.Lock()
	folios, taken, scanned, skipped := v.Isolate(l, nrToScan, sc.reclaimIdx)
	r.countSkipped(skipped)
	v.ModState(zone.NodePgrefill, scanned)
	var deactivated int64
	for _, f := range folios {
		f.Referenced() // mmsim maps no executable file pages: none stays
		f.Flags &^= mm.PGActive
		deactivated += f.NrPages()
	}
	v.Putback(folios, l)
	m.Unlock()
	r.alloc.CountEvent(zone.VMPgdeactivate, deactivated)
	r.charge(sc, taken*r.costs.ScanPage)
}

// countSkipped counts the pages isolation passed over, per zone.
//
// Kernel: mm/vmscan.c:isolate_lru_folios() (PGSCAN_SKIP).
func (r *Reclaimer) countSkipped(skipped [gfp.MaxNrZones]int64) {
	for t, n := range skipped {
		if n > 0 {
			r.alloc.CountEvent(zone.VMPgskipDMA+zone.VMEvent(t), n)
		}
	}
}

// folioRef is folio_check_references' verdict.
type folioRef int

const (
	refReclaim folioRef = iota
	refReclaimClean
	refKeep
	refActivate
)

// checkReferences decides a folio's fate from its accessed bit and
// PG_referenced: used twice, or mapped and seen before, it is activated;
// mapped once, kept for another round; unmapped, reclaimed.
//
// Kernel: mm/vmscan.c:folio_check_references().
func checkReferences(f *mm.Folio) folioRef {
	if f.Mlocked() {
		return refActivate
	}
	ptes := f.Referenced()
	wasRef := f.Flags&mm.PGReferenced != 0
	f.Flags &^= mm.PGReferenced
	if ptes > 0 {
		f.Flags |= mm.PGReferenced
		if wasRef || ptes > 1 {
			return refActivate
		}
		return refKeep
	}
	if wasRef && f.IsFileLRU() {
		return refReclaimClean
	}
	return refReclaim
}

// shrinkInactiveList isolates folios from an inactive list and reclaims
// what it can.
//
// Kernel: mm/vmscan.c:shrink_inactive_list().
func (r *Reclaimer) shrinkInactiveList(sc *scanControl, v *mm.Lruvec, l mm.LRUList, nrToScan int64) int64 {
	m := r.model
	m.Lock()
	folios, taken, scanned, skipped := v.Isolate(l, nrToScan, sc.reclaimIdx)
	r.countSkipped(skipped)
	n := v // the node's counters, and the cgroup's copies
	n.ModState(sc.pick(zone.NodePgscanKswapd, zone.NodePgscanDirect), scanned)
	kind := zone.NodePgscanAnon
	if l.IsFile() {
		kind = zone.NodePgscanFile
	}
	n.ModState(kind, scanned)
	if len(folios) == 0 {
		m.Unlock()
		return 0
	}
	keep, free, st := r.shrinkFolioList(sc, folios)
	v.Putback(keep, l)
	var freed int64
	for _, f := range free {
		freed += f.NrPages()
	}
	v.Unisolate(l, freed)
	n.ModState(sc.pick(zone.NodePgstealKswapd, zone.NodePgstealDirect), st.reclaimed)
	steal := zone.NodePgstealAnon
	if l.IsFile() {
		steal = zone.NodePgstealFile
	}
	n.ModState(steal, st.reclaimed)
	m.Unlock()

	r.alloc.CountEvent(zone.VMPgactivate, st.activated)
	r.charge(sc, taken*r.costs.ScanPage+st.swapped*r.costs.SwapOutPage)
	if err := r.model.FreeFolios(sc.t, free); err != nil {
		panic("mmsim: internal: reclaim freed a folio the allocator did not hand out: " + err.Error())
	}
	if st.unqueuedDirty > 0 && st.unqueuedDirty == taken {
		r.flusher.wakeAll(r.clock.Now()) // wakeup_flusher_threads(WB_REASON_VMSCAN)
	}
	sc.nrScanned += scanned
	return st.reclaimed
}

// folioStats are shrink_folio_list's tallies.
type folioStats struct {
	reclaimed, activated, swapped, unqueuedDirty int64
}

// shrinkFolioList decides each isolated folio's fate, in the kernel's
// order, and returns the folios to put back and those to free. Called with
// the model locked.
//
// Kernel: mm/vmscan.c:shrink_folio_list().
func (r *Reclaimer) shrinkFolioList(sc *scanControl, folios []*mm.Folio) (keep, free []*mm.Folio, st folioStats) {
	m := r.model
	activate := func(f *mm.Folio) {
		if !f.Mlocked() {
			f.Flags |= mm.PGActive
			st.activated += f.NrPages()
		}
		if f.Released() {
			// Unmapped for the last time on the way (a dirty droppable
			// folio): putting it back drops the last reference and
			// frees it, uncounted as reclaimed.
			free = append(free, f)
			return
		}
		keep = append(keep, f)
	}
	for _, f := range folios {
		if f.Released() { // its owner exited while we held it
			free = append(free, f)
			continue
		}
		if f.Flags&mm.PGUnevictable != 0 || f.Mlocked() {
			activate(f)
			continue
		}
		if f.IsFileLRU() && !f.Lazyfree() && f.Flags&mm.PGDirty != 0 && f.Flags&mm.PGWriteback == 0 {
			st.unqueuedDirty += f.NrPages()
		}
		ref := checkReferences(f)
		switch ref {
		case refActivate:
			activate(f)
			continue
		case refKeep:
			keep = append(keep, f)
			continue
		}
		if f.Anon() && !f.Lazyfree() && f.Flags&mm.PGSwapCache == 0 {
			// Adding to swap means I/O.
			if sc.mask&gfp.IO == 0 {
				keep = append(keep, f)
				continue
			}
			if !sc.maySwap || !m.SwapOut(f) {
				activate(f) // swap is full
				continue
			}
			st.swapped += f.NrPages()
			st.reclaimed += f.NrPages()
			free = append(free, f)
			continue
		}
		lazy := f.Lazyfree()
		if f.Mapped() && !m.TryToUnmap(f) {
			activate(f) // mlocked, or a MADV_FREE'd page written again
			continue
		}
		if f.Flags&mm.PGDirty != 0 {
			if f.IsFileLRU() {
				// Reclaim never writes a dirty file folio: the flushers
				// do, and PG_reclaim frees it promptly afterwards. A
				// dirty droppable folio lands here too, unmapped: it is
				// freed when it is put back.
				m.MarkImmediate(f)
				activate(f)
				continue
			}
			// A shmem folio: shmem_writeout puts it in swap.
			if ref == refReclaimClean || sc.mask&gfp.FS == 0 {
				keep = append(keep, f)
				continue
			}
			if !m.SwapOut(f) {
				activate(f)
				continue
			}
			st.swapped += f.NrPages()
			st.reclaimed += f.NrPages()
			free = append(free, f)
			continue
		}
		if lazy {
			r.alloc.CountEvent(zone.VMPglazyfreed, f.NrPages())
			st.reclaimed += f.NrPages()
			free = append(free, f)
			continue
		}
		if f.File() != nil {
			m.RemoveMapping(f)
			st.reclaimed += f.NrPages()
			free = append(free, f)
			continue
		}
		keep = append(keep, f)
	}
	return keep, free, st
}
