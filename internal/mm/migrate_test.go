package mm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// TestMigrateNeedsFSForMappedFolios checks isolate_migratepages_block's
// mapping rule: a page-cache folio is isolated for migration only with
// __GFP_FS; an anonymous one always is. Migration moves the folio to the
// target and frees its old page.
//
// Reference: mm/compaction.c:isolate_migratepages_block().
func TestMigrateNeedsFSForMappedFolios(t *testing.T) {
	a, err := zone.New(zone.Config{NrCPUs: 1, Sysctl: zone.DefaultSysctl(), Nodes: []zone.NodeConfig{{CPUs: []int{0},
		Zones: []zone.ZoneConfig{{Type: gfp.ZoneDMA32, StartPFN: 4096, Spanned: 8192, Present: 8192, Managed: 8192}}}}}, zone.Options{})
	require.NoError(t, err)
	m := NewModel(a, 0, func() int64 { return 0 })
	p := m.AddProc(memalloc.NewTask("p"), false)
	f := m.NewFile("f", gfp.HighUserMovable)
	_, err = m.AccessFile(p, f, 0, 4, false)
	require.NoError(t, err)
	_, err = m.FaultAnon(p, 4)
	require.NoError(t, err)

	z := a.Nodes()[0].Zone(gfp.ZoneDMA32)
	var targets []zone.Page
	target := func(int64) (zone.Page, bool) {
		if len(targets) == 0 {
			pages, _, _ := z.IsolateFreePages(z.EndPFN()-1024, z.EndPFN(), 64)
			targets = pages
		}
		pg := targets[0]
		targets = targets[1:]
		return pg, true
	}
	st, old := m.Migrate(0, z.StartPFN(), z.EndPFN()-1024, MigrateSyncLight, false, 1024, target)
	assert.Equal(t, int64(4), st.Succeeded, "without __GFP_FS only the anonymous folios move (and no page table: not on the LRU)")
	st, old2 := m.Migrate(0, z.StartPFN(), z.EndPFN()-1024, MigrateSyncLight, true, 1024, target)
	assert.Equal(t, int64(4), st.Succeeded, "with __GFP_FS the page-cache folios move too")
	for _, pg := range append(old, old2...) {
		require.NoError(t, a.FreeMigrated(p.Task, pg, 0, nil))
	}
	assert.Len(t, append(old, old2...), 8)
	assert.Equal(t, int64(4), m.CachedPages(f))
	for _, fo := range f.pages {
		assert.GreaterOrEqual(t, fo.Page().PFN(), z.EndPFN()-1024, "the file's folios now live in the target range")
	}
	z.ReleaseFreePages(targets, nil)
	require.NoError(t, a.CheckInvariants())
}
