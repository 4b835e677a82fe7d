package mm

import (
	"github.com/mmsim/mmsim/zone"
)

// MigrateMode is how hard migration tries.
//
// Kernel: include/linux/migrate_mode.h:enum migrate_mode.
type MigrateMode int

// The migration modes compaction uses.
const (
	// MigrateAsync never blocks: folios under writeback are not isolated.
	MigrateAsync MigrateMode = iota
	// MigrateSyncLight may block, but not on writeback: a folio under
	// writeback fails to migrate.
	MigrateSyncLight
	// MigrateSync waits for writeback.
	MigrateSync
)

// MigrateStats are the tallies of one pass of the migration scanner over a
// pfn range and the migration of what it isolated.
type MigrateStats struct {
	Scanned   int64 // pfns the migration scanner looked at
	Isolated  int64 // pages isolated for migration
	Succeeded int64 // pages migrated (pgmigrate_success)
	Failed    int64 // pages that did not migrate (pgmigrate_fail)
	// Next is where the scanner stopped: end, or the pfn after the last
	// folio it isolated when it reached its batch.
	Next zone.PFN
}

// Migrate is compaction's migration scanner over [start, end) of node
// nid's memory followed by migrate_pages for what it isolated: it takes up
// to batch pages of LRU folios in pfn order — without fs none with a
// mapping (page or swap cache), below MigrateSync none under writeback —
// and moves each to a page target hands out (want is how many folios still
// need one; the page is the caller's isolated free page, already owned as
// a movable allocation). When target has none (-ENOMEM) migration stops:
// that folio counts as failed, the rest are not tried. Migrated folios,
// and those not migrated, go back on the head of their LRU lists, as
// folio_putback_lru puts them. It returns the old pages of the migrated
// folios, for the caller to free once it no longer needs the model's lock.
//
// The model's lock is held throughout, so that isolation and migration are
// one step: no other task sees the folios isolated (nr_isolated_* is not
// raised), which mmsim's instant migration makes equivalent. target may
// take the zone lock, never the model's.
//
// mmsim folios are order 0: a larger folio would need a larger target,
// which compaction_alloc could split off; mmsim has none to migrate.
//
// Kernel: mm/compaction.c:isolate_migratepages_block(),
// mm/migrate.c:migrate_pages(), migrate_pages_batch().
func (m *Model) Migrate(nid int, start, end zone.PFN, mode MigrateMode, fs bool, batch int64,
	target func(want int64) (zone.Page, bool)) (MigrateStats, []zone.Page) {
	st := MigrateStats{Next: end}
	if nid < 0 || nid >= len(m.lruvecs) {
		return st, nil
	}
	v := m.lruvecs[nid]
	m.mu.Lock()
	defer m.mu.Unlock()
	var isolated []*Folio
	for pfn := start; pfn < end; pfn++ {
		st.Scanned++
		f := v.onLRU[pfn]
		if f == nil {
			continue
		}
		// A folio with a mapping (page cache, swap cache) needs
		// __GFP_FS; below MIGRATE_SYNC, one under writeback is left.
		if !fs && (f.file != nil || f.Flags&PGSwapCache != 0) {
			continue
		}
		if mode != MigrateSync && f.Flags&PGWriteback != 0 {
			continue
		}
		isolated = append(isolated, f)
		st.Isolated += f.NrPages()
		pfn += zone.PFN(f.NrPages()) - 1
		if st.Isolated >= batch {
			st.Next = pfn + 1
			break
		}
	}
	var old []zone.Page
	for i, f := range isolated {
		if f.order != 0 || f.file != nil && f.file.secret != nil {
			// A secretmem folio refuses: secretmem_migrate_folio is -EBUSY.
			st.Failed += f.NrPages()
			f.node.del(f)
			f.node.add(f)
			continue
		}
		dst, ok := target(int64(len(isolated) - i))
		if !ok {
			st.Failed += f.NrPages()
			for _, g := range isolated[i:] { // putback_movable_pages
				g.node.del(g)
				g.node.add(g)
			}
			break
		}
		old = append(old, f.page)
		f.node.del(f) // the charge moves with the folio: mem_cgroup_migrate
		f.page = dst
		f.node.add(f)
		st.Succeeded += f.NrPages()
	}
	return st, old
}
