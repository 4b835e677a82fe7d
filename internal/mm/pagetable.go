package mm

import (
	"errors"

	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// pte is one page-table entry: none, a present page (possibly the shared
// zero page), or a swap entry.
//
// Kernel: arch/x86/include/asm/pgtable_types.h (pte_t), include/linux/swapops.h.
type pte struct {
	folio *Folio     // present: the page mapped (zeroFolio: the zero page)
	swap  *swapEntry // swapped out: the slot holding the contents
	write bool       // the entry is writable: a private page is exclusive
	dirty bool       // the hardware dirty bit
}

func (p *pte) none() bool    { return p.folio == nil && p.swap == nil }
func (p *pte) present() bool { return p.folio != nil }

// swapEntry is a swap slot in use: the page contents written to it and
// the number of ptes that refer to it (swap_map's count).
type swapEntry struct {
	val  uint64
	refs int
}

// zeroFolio is the shared zero page a read fault of anonymous memory maps:
// no allocation, no rss, reads as zero, and a write faults again.
//
// Kernel: mm/memory.c:do_anonymous_page() (my_zero_pfn).
var zeroFolio = &Folio{}

// ptesPerTable is PTRS_PER_PTE: the entries of one page-table page.
const ptesPerTable = 512

// ptTable is one page-table page: 512 entries and the page holding them.
type ptTable struct {
	ptes [ptesPerTable]pte
	page zone.Page
}

// vpn is a virtual page number.
func vpn(addr uint64) uint64 { return addr >> pageShift }

// lookupPTE returns the entry for addr, or nil when its page table does not
// exist. Called with the Model's lock held.
func (mm *MM) lookupPTE(addr uint64) *pte {
	t := mm.tables[vpn(addr)/ptesPerTable]
	if t == nil {
		return nil
	}
	return &t.ptes[vpn(addr)%ptesPerTable]
}

// rmapRef is one pte that maps a folio: which address space, which page.
type rmapRef struct {
	mm  *MM
	vpn uint64
}

// mapFolioLocked installs f at addr in mm's table, adds the reverse
// mapping and raises the mm's rss counter. Called with the Model's lock
// held and the table present.
func (m *Model) mapFolioLocked(mm *MM, addr uint64, f *Folio, write, dirty bool) {
	p := mm.lookupPTE(addr)
	*p = pte{folio: f, write: write, dirty: dirty}
	if f == zeroFolio {
		return
	}
	f.rmap = append(f.rmap, rmapRef{mm, vpn(addr)})
	f.Young = true
	mm.counters[f.mmCounter()].Add(f.NrPages())
	if f.file != nil {
		f.node.ModState(zone.NodeNrMapped, f.NrPages())
	}
}

// unmapPTELocked clears one present entry of mm: the reverse mapping goes,
// the rss counter drops, and the pte's dirty bit passes to the folio. It
// returns the folio when that was its last mapping, for the caller to
// free or keep. Called with the Model's lock held.
//
// Kernel: mm/rmap.c:folio_remove_rmap_ptes(), mm/memory.c:zap_present_ptes().
func (m *Model) unmapPTELocked(mm *MM, addr uint64, p *pte) (last *Folio) {
	f := p.folio
	dirty := p.dirty
	*p = pte{}
	if f == nil || f == zeroFolio {
		return nil
	}
	f.removeRmap(mm, vpn(addr))
	mm.updateHiwater()
	mm.counters[f.mmCounter()].Add(-f.NrPages())
	if f.file != nil {
		f.node.ModState(zone.NodeNrMapped, -f.NrPages())
	}
	if dirty {
		m.folioMarkDirtyLocked(f)
	}
	if f.Flags&PGMlocked != 0 && !m.mappedLockedElsewhere(f, mm, vpn(addr)) {
		// The last VM_LOCKED mapping went: munlock_vma_folio.
		m.munlockFolioLocked(f)
	}
	if len(f.rmap) == 0 {
		return f
	}
	return nil
}

func (f *Folio) removeRmap(mm *MM, v uint64) {
	for i, r := range f.rmap {
		if r.mm == mm && r.vpn == v {
			f.rmap[i] = f.rmap[len(f.rmap)-1]
			f.rmap = f.rmap[:len(f.rmap)-1]
			return
		}
	}
}

// folioMarkDirtyLocked is folio_mark_dirty: an anonymous folio only takes
// PG_dirty; a page-cache folio is accounted and queued for the flushers.
//
// Kernel: mm/page-writeback.c:folio_mark_dirty().
func (m *Model) folioMarkDirtyLocked(f *Folio) {
	if f.anon || f.Flags&PGSwapBacked != 0 || f.file == nil || f.file.secret != nil {
		f.Flags |= PGDirty
		return
	}
	m.markDirty(f)
}

// mmCounter returns the rss counter a mapping of f counts in.
//
// Kernel: include/linux/mm.h:mm_counter().
func (f *Folio) mmCounter() int {
	switch {
	case f.anon:
		return MMAnonPages
	case f.Flags&PGSwapBacked != 0:
		return MMShmemPages
	default:
		return MMFilePages
	}
}

// freeSwapLocked drops one reference to a swap slot, freeing it with the
// last. Called with the Model's lock held.
//
// Kernel: mm/swapfile.c:swap_free_nr().
func (m *Model) freeSwapLocked(s *swapEntry) {
	s.refs--
	if s.refs == 0 {
		m.swap.used.Add(-1)
	}
}

// zapRangeLocked clears every entry of mm in [start, end): present pages
// are unmapped, swap entries dropped. It returns the folios whose last
// mapping went, which the caller frees (anonymous ones) once it has
// dropped the lock. Called with the Model's lock held.
//
// Kernel: mm/memory.c:zap_pte_range().
func (m *Model) zapRangeLocked(mm *MM, start, end uint64) (freed []*Folio) {
	for addr := start; addr < end; {
		t := mm.tables[vpn(addr)/ptesPerTable]
		next := (vpn(addr)/ptesPerTable + 1) * ptesPerTable << pageShift
		if t == nil {
			addr = next
			continue
		}
		for ; addr < end && addr < next; addr += pageSize {
			p := &t.ptes[vpn(addr)%ptesPerTable]
			switch {
			case p.present():
				if f := m.unmapPTELocked(mm, addr, p); f != nil && f.anon {
					if f = m.takeOffLRULocked(f); f != nil {
						freed = append(freed, f)
					}
				}
			case p.swap != nil:
				m.freeSwapLocked(p.swap)
				mm.counters[MMSwapEnts].Add(-1)
				*p = pte{}
			}
		}
	}
	return freed
}

// releaseAnonLocked marks an anonymous folio whose last mapping went
// released (no owner, no file: Released reports it) and drops it from
// NR_ANON_MAPPED.
func (m *Model) releaseAnonLocked(f *Folio) {
	f.anon = false
	f.node.ModState(zone.NodeNrAnonPages, -f.NrPages())
}

// takeOffLRULocked releases an anonymous folio whose last mapping went and
// takes it off its LRU list, returning it for freeing; an isolated one
// (nil) is left to its isolator, which finds it released.
func (m *Model) takeOffLRULocked(f *Folio) *Folio {
	m.releaseAnonLocked(f)
	if !f.onLRU {
		return nil
	}
	f.node.del(f)
	return f
}

// freeFolios uncharges folios and returns them to the page allocator
// (outside the lock).
func (m *Model) freeFolios(t *memalloc.Task, fs []*Folio) error {
	var errs []error
	for _, f := range fs {
		m.unchargeFolio(f)
		if err := m.alloc.FreePages(t, f.page, f.order); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
