package mm

import (
	"fmt"

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
}

// NewFile returns a new empty file whose page cache allocates with mask
// (0: GFP_HIGHUSER_MOVABLE, the default mapping_gfp_mask).
//
// Kernel: fs/inode.c:inode_init_always() (mapping_set_gfp_mask).
func (m *Model) NewFile(name string, mask gfp.Mask) *File {
	if mask == 0 {
		mask = gfp.HighUserMovable
	}
	f := &File{name: name, gfp: mask, pages: map[int64]*Folio{}}
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

// Access reads (or, with write, writes) pages [index, index+n) of file f
// for p: a page already cached is marked accessed (the second access
// activates it), a missing one is allocated with the mapping's mask and
// added to the inactive file list; a write dirties the page for the
// flushers to clean. It returns the pages accessed and the first error.
//
// Kernel: mm/filemap.c:filemap_read(), filemap_add_folio(),
// mm/swap.c:folio_mark_accessed(), mm/page-writeback.c:folio_mark_dirty().
func (m *Model) Access(p *Proc, file *File, index, n int64, write bool) (int64, error) {
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
	pg, err := m.alloc.AllocPages(p.Task, file.gfp, 0)
	if err != nil {
		return fmt.Errorf("filemap_alloc_folio: %w", err)
	}
	f := m.newFolio(pg, 0)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := file.pages[index]; ok { // raced with another reader
		return m.alloc.FreePages(p.Task, pg, 0)
	}
	f.file, f.index = file, index
	file.pages[index] = f
	f.node.add(f)
	f.node.node.ModState(zone.NodeNrFilePages, 1)
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
	n := f.node.node
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
		nd := f.node.node
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
