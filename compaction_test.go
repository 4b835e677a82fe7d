package mmsim_test

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/zone"
)

// vmstat returns the /proc/vmstat counters.
func vmstat(t *testing.T, s *mmsim.System) map[string]int64 {
	t.Helper()
	var b strings.Builder
	require.NoError(t, s.WriteVmstat(&b))
	out := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		require.True(t, ok, sc.Text())
		n, err := strconv.ParseInt(v, 10, 64)
		require.NoError(t, err)
		out[name] = n
	}
	return out
}

// fragmented returns a machine whose free memory is scattered in single
// pages between the anonymous pages of a live task: two tasks faulted
// pages in turn, and one of them exited. No free pageblock (order 9) is
// left, and there is no swap: reclaim cannot help, only compaction.
func fragmented(t *testing.T) (*mmsim.System, *zone.Zone) {
	t.Helper()
	cfg := smallConfig(16384)
	cfg.CompactionProactiveness = 0             // kcompactd only when asked
	cfg.Nodes[0].Zones = cfg.Nodes[0].Zones[1:] // DMA32 only: no untouched DMA zone to fall back on
	s := newSystem(t, cfg)
	// Both on CPU 0, so that their faults take turns on one pcp list.
	keep, _, gone := s.NewTask("keep"), s.NewTask("other-cpu"), s.NewTask("gone")
	require.Equal(t, keep.CPU(), gone.CPU())
	z := s.Nodes()[0].Zone(gfp.ZoneDMA32)
	for z.FreePages() > z.Watermark(zone.WmarkHigh)+256 {
		_, err := s.TouchAnon(keep, 1)
		require.NoError(t, err)
		_, err = s.TouchAnon(gone, 1)
		require.NoError(t, err)
	}
	require.NoError(t, s.Exit(gone))
	require.NoError(t, s.DrainAllPages(keep))
	for o, n := range z.FreeArea() {
		if o >= 9 {
			require.Zero(t, n, "no free block of order %d before compaction", o)
		}
	}
	require.Greater(t, z.FreePages(), int64(6000), "half the zone is free")
	return s, z
}

// TestDirectCompaction checks that a pageblock-sized request on a machine with
// plenty of free but fragmented memory is served by direct compaction,
// which migrates the live task's pages, and that GFP_NOIO, which may not
// compact (gfp_compaction_allowed), fails instead.
//
// Reference: mm/page_alloc.c:__alloc_pages_direct_compact(),
// mm/compaction.c:try_to_compact_pages().
func TestDirectCompaction(t *testing.T) {
	s, z := fragmented(t)
	req := s.NewTask("req")

	_, err := s.AllocPages(req, gfp.NoIO|gfp.NoWarn, 9)
	require.ErrorIs(t, err, mmsim.ErrNoMemory, "GFP_NOIO never compacts, and reclaim has nothing to free")
	before := vmstat(t, s)
	assert.Zero(t, before["compact_stall"], "no compaction for GFP_NOIO")

	p, err := s.AllocPages(req, gfp.Kernel, 9)
	require.NoError(t, err, "compaction makes a free pageblock")
	after := vmstat(t, s)
	assert.Positive(t, after["compact_stall"])
	assert.Equal(t, int64(1), after["compact_success"])
	assert.Positive(t, after["pgmigrate_success"], "the live task's pages moved")
	assert.Positive(t, after["compact_migrate_scanned"])
	assert.Positive(t, after["compact_free_scanned"])
	assert.Zero(t, after["pgsteal_direct"], "no reclaim was needed")
	assert.Zero(t, s.OOM().Kills())
	assert.Equal(t, z, s.ZoneOf(p))
	require.NoError(t, s.FreePages(req, p, 9))
	require.NoError(t, s.CheckInvariants())
}

// TestKcompactd checks that kcompactd, woken for an order, compacts the
// node in the background until a block of that order is free.
//
// Reference: mm/compaction.c:kcompactd_do_work().
func TestKcompactd(t *testing.T) {
	s, z := fragmented(t)
	s.Compaction().WakeKcompactd(s.Nodes()[0], 9, gfp.ZoneNormal)
	s.RunUntilIdle(time.Second)
	st := vmstat(t, s)
	assert.Equal(t, int64(1), st["compact_daemon_wake"])
	assert.Equal(t, int64(1), s.Compaction().Kcompactd(0).Wakes())
	assert.Positive(t, st["compact_daemon_migrate_scanned"])
	assert.Positive(t, st["pgmigrate_success"])
	assert.Zero(t, st["compact_stall"], "no direct compaction")
	var big int64
	for o, n := range z.FreeArea() {
		if o >= 9 {
			big += n
		}
	}
	assert.Positive(t, big, "a free pageblock exists")
	require.NoError(t, s.CheckInvariants())
}

// TestCompactMemory checks vm.compact_memory: whole-zone compaction that
// leaves the free memory in large blocks.
func TestCompactMemory(t *testing.T) {
	s, z := fragmented(t)
	before := z.FragmentationIndex(9)
	require.NoError(t, s.CompactMemory(s.NewTask("sh")))
	after := z.FragmentationIndex(9)
	assert.Greater(t, before, 500, "fragmented: a failure would be for fragmentation")
	assert.Equal(t, -1000, after, "a free pageblock exists after compaction")
	assert.Positive(t, vmstat(t, s)["pgmigrate_success"])
	require.NoError(t, s.CheckInvariants())
}
