package mm

import (
	"fmt"
	"maps"
	"slices"

	"github.com/mmsim/mmsim/memalloc"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/zone"
)

// File is a simulated file's page cache: its folios by index, and the
// mapping's gfp mask (mapping_gfp_mask), which a filesystem narrows — to
// GFP_NOFS for its metadata, say — to keep reclaim out of itself.
//
// Kernel: include/linux/fs.h:struct address_space.
type File struct {
	name string
	gfp  gfp.Mask
	// pages is protected by the Model's lock.
	pages map[int64]*Folio
	// disk holds the contents of the pages written back (the word of
	// each), which a later read brings in again. Protected by the
	// Model's lock.
	disk map[int64]uint64

	// shmem marks the shmem file behind a shared anonymous mapping: its
	// folios are swap-backed, and swapped holds the pages swapped out.
	// Protected by the Model's lock.
	shmem   bool
	swapped map[int64]*swapEntry
	// secret is the secretmem state of a memfd_secret file, nil for
	// any other.
	secret *secretFile
	// maps counts the mappings of the file. Protected by the Model's
	// lock.
	maps int
	// acctPages is a shmem file's commit charge (shmem_acct_size),
	// given back when it is evicted.
	acctPages int64
}

// NewFile returns a new empty file whose page cache allocates with mask
// (0: GFP_HIGHUSER_MOVABLE, the default mapping_gfp_mask).
//
// Kernel: fs/inode.c:inode_init_always() (mapping_set_gfp_mask).
func (m *Model) NewFile(name string, mask gfp.Mask) *File {
	if mask == 0 {
		mask = gfp.HighUserMovable
	}
	f := &File{name: name, gfp: mask, pages: map[int64]*Folio{}, disk: map[int64]uint64{}}
	m.mu.Lock()
	m.files = append(m.files, f)
	m.mu.Unlock()
	return f
}

// Name returns the file's name.
func (f *File) Name() string { return f.name }

// GFPMask returns mapping_gfp_mask.
func (f *File) GFPMask() gfp.Mask { return f.gfp }

// CachedPages returns the pages of f in the page cache.
func (m *Model) CachedPages(f *File) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(f.pages))
}

// AccessFile reads (or, with write, writes) pages [index, index+n) of file f
// for p: a page already cached is marked accessed (the second access
// activates it), a missing one is allocated with the mapping's mask and
// added to the inactive file list; a write dirties the page for the
// flushers to clean. It returns the pages accessed and the first error.
//
// Kernel: mm/filemap.c:filemap_read(), filemap_add_folio(),
// mm/swap.c:folio_mark_accessed(), mm/page-writeback.c:folio_mark_dirty().
func (m *Model) AccessFile(p *Proc, file *File, index, n int64, write bool) (int64, error) {
	defer m.HandleOverHigh(p) // resume_user_mode_work
	for i := int64(0); i < n; i++ {
		if p.Victim() {
			return i, fmt.Errorf("%w: %s", ErrKilled, p.Task)
		}
		if err := m.accessOne(p, file, index+i, write); err != nil {
			return i, err
		}
	}
	return n, nil
}

func (m *Model) accessOne(p *Proc, file *File, index int64, write bool) error {
	m.mu.Lock()
	if f, ok := file.pages[index]; ok {
		m.markAccessed(f)
		if write {
			m.markDirty(f)
		}
		m.mu.Unlock()
		return nil
	}
	m.mu.Unlock()
	// filemap_create_folio: a folio of the mapping's mask, charged with
	// mapping_gfp_constraint(mapping, GFP_KERNEL).
	pg, cg, err := m.allocUserFolio(p, file.gfp|gfp.Comp, file.gfp&gfp.Kernel)
	if err != nil {
		return fmt.Errorf("filemap_create_folio: %w", err)
	}
	f := m.newFolio(pg, 0, cg)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := file.pages[index]; ok { // raced with another reader
		return m.freeUnused(p.Task, pg, cg)
	}
	f.file, f.index = file, index
	f.val = file.disk[index]
	file.pages[index] = f
	f.node.add(f)
	f.node.ModState(zone.NodeNrFilePages, 1)
	if write {
		m.markDirty(f)
	} else {
		// filemap_read marks every folio it copies from accessed, the
		// one it just read in too: the next read activates it.
		m.markAccessed(f)
	}
	return nil
}

// markAccessed is folio_mark_accessed: the first access sets PG_referenced,
// the second moves an inactive folio to the active list.
func (m *Model) markAccessed(f *Folio) {
	switch {
	case f.Flags&PGReferenced == 0:
		f.Flags |= PGReferenced
	case f.Flags&(PGActive|PGUnevictable) == 0 && f.onLRU:
		f.node.del(f)
		f.Flags |= PGActive
		f.Flags &^= PGReferenced
		f.node.add(f)
		m.alloc.CountEvent(zone.VMPgactivate, f.NrPages())
	}
}

// markDirty dirties a clean page-cache folio and queues it for the
// flushers.
func (m *Model) markDirty(f *Folio) {
	if f.Flags&PGDirty != 0 {
		return
	}
	f.Flags |= PGDirty
	n := f.node
	n.ModState(zone.NodeNrDirty, f.NrPages())
	n.ModState(zone.NodeNrDirtied, f.NrPages())
	f.zone().ModState(zone.ZoneNrZoneWritePending, f.NrPages())
	m.dirty = append(m.dirty, dirtied{f, m.now()})
}

// DirtyPages returns the dirty page-cache pages of the machine.
func (m *Model) DirtyPages() int64 {
	var n int64
	for _, v := range m.lruvecs {
		n += v.node.State(zone.NodeNrDirty)
	}
	return n
}

// Writeback cleans up to n of the oldest dirty folios dirtied at or before
// the time before, as the flusher threads do, and returns how many pages it
// wrote. A folio reclaim marked
// PG_reclaim while it was dirty is rotated to the tail of its inactive
// list when its writeback ends, so that reclaim frees it next.
//
// Kernel: fs/fs-writeback.c:wb_writeback(), mm/filemap.c:folio_end_writeback(),
// mm/swap.c:folio_rotate_reclaimable().
func (m *Model) Writeback(n, before int64) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var written int64
	i := 0
	for ; i < len(m.dirty) && written < n && m.dirty[i].at <= before; i++ {
		f := m.dirty[i].f
		if f.Flags&PGDirty == 0 || f.file == nil {
			continue // cleaned or truncated since
		}
		f.Flags &^= PGDirty
		f.file.disk[f.index] = f.val
		for _, r := range f.rmap { // folio_mkclean: the next write faults
			if e := r.mm.lookupPTE(r.vpn << pageShift); e != nil && e.folio == f {
				e.dirty = false
			}
		}
		nd := f.node
		nd.ModState(zone.NodeNrDirty, -f.NrPages())
		nd.ModState(zone.NodeNrWritten, f.NrPages())
		f.zone().ModState(zone.ZoneNrZoneWritePending, -f.NrPages())
		m.alloc.CountEvent(zone.VMPgpgout, f.NrPages()*4) // pgpgout counts KiB
		written += f.NrPages()
		if f.Flags&PGReclaim != 0 {
			f.Flags &^= PGReclaim
			if f.onLRU && f.Flags&PGUnevictable == 0 { // lru_move_tail
				f.node.del(f)
				f.Flags &^= PGActive
				f.node.addTail(f)
				m.alloc.CountEvent(zone.VMPgrotated, f.NrPages())
			}
		}
	}
	m.dirty = append(m.dirty[:0], m.dirty[i:]...)
	return written
}

// newShmemFile returns the shmem file behind a new shared anonymous
// mapping: its pages are swap-backed page cache (Shmem in /proc/meminfo).
//
// Kernel: mm/shmem.c:shmem_zero_setup().
func (m *Model) newShmemFile() *File {
	return &File{name: "dev/zero", gfp: gfp.HighUserMovable, pages: map[int64]*Folio{},
		shmem: true, swapped: map[int64]*swapEntry{}, disk: map[int64]uint64{}, maps: 1}
}

// mapRef adds n to the file's mapping count.
func (f *File) mapRef(n int) { f.maps += n }

// fileUnmapped drops a mapping of f; the last mapping of a shmem file
// frees its pages (the file is gone with it), the last of a closed
// secretmem file releases it.
//
// Kernel: mm/shmem.c:shmem_evict_inode(), mm/secretmem.c:secretmem_release().
func (m *Model) fileUnmapped(t *memalloc.Task, f *File, _ *VMA) error {
	m.mu.Lock()
	f.maps--
	last := f.maps == 0
	m.mu.Unlock()
	switch {
	case !last:
		return nil
	case f.shmem:
		m.unaccount(f.acctPages) // shmem_unacct_size at eviction
		f.acctPages = 0
		return m.truncate(t, f)
	case f.secret != nil:
		return m.secretMaybeRelease(t, f)
	}
	return nil
}

// truncate drops every page of f from the page cache and frees those no
// one maps (none is mapped when the last mapping went), and its swap
// entries.
//
// Kernel: mm/truncate.c:truncate_inode_pages_range(), mm/shmem.c:shmem_undo_range().
func (m *Model) truncate(t *memalloc.Task, file *File) error {
	m.mu.Lock()
	var free []*Folio
	for _, idx := range slices.Sorted(maps.Keys(file.pages)) { // in file order: deterministic
		f := file.pages[idx]
		delete(file.pages, idx)
		nd := f.node
		nd.ModState(zone.NodeNrFilePages, -f.NrPages())
		if f.Flags&PGSwapBacked != 0 {
			nd.ModState(zone.NodeNrShmem, -f.NrPages())
		}
		if f.Flags&PGDirty != 0 && f.Flags&PGSwapBacked == 0 && file.secret == nil {
			m.cleanDirtyLocked(f)
		}
		if f.Mapped() {
			// Cannot happen: the last mapping went first. Keep the page
			// rather than free one a page table still maps.
			panic("mmsim: internal: truncating a mapped page-cache folio (kernel: mm/truncate.c:truncate_inode_folio)")
		}
		if f.Flags&PGMlocked != 0 {
			m.munlockFolioLocked(f)
		}
		f.file = nil
		if f.onLRU {
			f.node.del(f)
			free = append(free, f)
		}
	}
	for idx, s := range file.swapped {
		delete(file.swapped, idx)
		m.freeSwapLocked(s)
	}
	m.mu.Unlock()
	return m.freeFolios(t, free)
}

// cleanDirtyLocked drops a dirty page-cache folio's dirty accounting, as
// truncation's folio_cancel_dirty does.
func (m *Model) cleanDirtyLocked(f *Folio) {
	f.Flags &^= PGDirty
	f.node.ModState(zone.NodeNrDirty, -f.NrPages())
	f.zone().ModState(zone.ZoneNrZoneWritePending, -f.NrPages())
}

// filePage returns page idx of vma's file for a fault, reading it in (a
// major fault) or, for shmem, allocating it or swapping it in. secretmem
// files have their own handler.
//
// Kernel: mm/filemap.c:filemap_fault(), mm/shmem.c:shmem_fault(),
// shmem_get_folio_gfp().
func (m *Model) filePage(p *Proc, vma *VMA, idx int64) (*Folio, FaultResult, error) {
	file := vma.file
	if file.secret != nil {
		return m.secretFault(p, vma, idx)
	}
	m.mu.Lock()
	if f, ok := file.pages[idx]; ok {
		m.mu.Unlock()
		return f, 0, nil
	}
	m.mu.Unlock()
	// The fault's mask is the mapping's with __GFP_FS|__GFP_IO
	// (__get_fault_gfp_mask); shmem charges it cut to GFP_RECLAIM_MASK.
	chargeMask := file.gfp | gfp.FS | gfp.IO
	if file.shmem {
		chargeMask &= gfp.ReclaimMask
	}
	pg, cg, err := m.allocUserFolio(p, file.gfp|gfp.Comp, chargeMask)
	if err != nil {
		if file.shmem {
			return nil, VMFaultOOM, fmt.Errorf("shmem_fault: %w", err)
		}
		return nil, VMFaultOOM, fmt.Errorf("filemap_fault: %w", err)
	}
	m.mu.Lock()
	if f, ok := file.pages[idx]; ok { // raced with another fault
		m.mu.Unlock()
		return f, 0, m.freeUnused(p.Task, pg, cg)
	}
	f := m.newFolio(pg, 0, cg)
	f.file, f.index = file, idx
	file.pages[idx] = f
	nd := f.node
	nd.ModState(zone.NodeNrFilePages, 1)
	var ret FaultResult
	switch {
	case file.shmem:
		f.Flags |= PGSwapBacked
		nd.ModState(zone.NodeNrShmem, 1)
		if s := file.swapped[idx]; s != nil {
			delete(file.swapped, idx)
			f.val = s.val
			f.Flags |= PGDirty // shmem_swapin_folio: the only copy now
			m.freeSwapLocked(s)
			m.alloc.CountEvent(zone.EvPswpin, 1)
			m.alloc.CountEvent(zone.VMPgpgin, 4)
			ret = VMFaultMajor
		}
	default:
		ret = VMFaultMajor // read from the disk
		f.val = file.disk[idx]
		m.alloc.CountEvent(zone.VMPgpgin, 4)
	}
	f.node.add(f)
	m.mu.Unlock()
	if ret&VMFaultMajor != 0 {
		m.alloc.CountEvent(zone.VMPgmajfault, 1)
		m.countMemcgEvent(p, MemcgPgmajfault)
	}
	return f, ret, nil
}
