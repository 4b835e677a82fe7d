package main

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/internal/testutil"
)

// TestOutput compares the program's output with its golden file (make
// golden rewrites it; review the diff).
func TestOutput(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(&out))
	testutil.Golden(t, "output", out.Bytes())
}

// TestFacts checks what the output says, so that a change in the
// simulator that breaks the story fails here with a name, not only as a
// golden diff.
func TestFacts(t *testing.T) {
	f, err := simulate(io.Discard)
	require.NoError(t, err)

	t.Run("the kernel refuses what makes no sense for droppable memory", func(t *testing.T) {
		for _, call := range []string{
			"mmap(4 MiB, ...|MAP_LOCKED)", "mmap(4 MiB, ...|MAP_HUGETLB)", "mmap(4 MiB, ...|MAP_GROWSDOWN)",
			"madvise(cache, MADV_KEEPONFORK)", "madvise(cache, MADV_DODUMP)",
		} {
			require.Equal(t, "EINVAL", f.Calls[call], call)
		}
		// The limits are checked before the map type and the mappings.
		require.Equal(t, "EAGAIN", f.Calls["mmap(16 MiB, ...|MAP_LOCKED)"])
		require.Equal(t, "ENOMEM", f.Calls["mlock(cache, 16 MiB)"])
		// mlock succeeds and locks nothing.
		require.Equal(t, "0", f.Calls["mlock(cache, 4 MiB)"])
		require.Equal(t, "VmLck: 0 kB", f.MlockVmLck)
	})

	t.Run("a forked child reads zeroes, the parent its values", func(t *testing.T) {
		require.Equal(t, cachePages, f.ChildZero)
		require.Equal(t, cachePages, f.ParentKept)
	})

	t.Run("reclaim drops the droppable pages, and no one is OOM-killed", func(t *testing.T) {
		d := f.Droppable
		require.NotZero(t, d.WentAt, "the cache was never dropped")
		require.Equal(t, int64(hogTarget), d.HogPages)
		require.Equal(t, cachePages, d.Dropped, "pages read back as 0")
		require.Zero(t, d.Kept)
		require.Zero(t, d.Other, "a dropped page must read 0, never stale data")
		require.Zero(t, d.Kills)
		require.Equal(t, "VmLck: 0 kB", d.VmLck)
	})

	t.Run("an mlocked cache stays, and the hog is killed instead", func(t *testing.T) {
		m := f.Mlocked
		require.Equal(t, cachePages, m.Kept)
		require.Zero(t, m.Dropped)
		require.Equal(t, int64(1), m.Kills)
		require.Equal(t, "hog", m.Victim)
		require.Less(t, m.HogPages, int64(hogTarget))
		require.Equal(t, "VmLck: 16384 kB", m.VmLck)
		// The hog gets about the 4096 pages the droppable cache gave up.
		require.InDelta(t, cachePages, f.Droppable.Ceiling-m.Ceiling, 1024)
	})

	t.Run("a failed droppable fault kills only the OOM victim, itself", func(t *testing.T) {
		require.Len(t, f.Faults, 4)
		for _, r := range f.Faults {
			require.True(t, r.Killed, "%+v", r.faultCase)
			require.Equal(t, int64(1), r.Kills)
			require.Contains(t, r.Kill, "(rng)")
			if r.Atomic {
				require.Equal(t, mmsim.AccessKilled, r.Access.Outcome, "%+v", r.faultCase)
				require.Error(t, r.Access.Err)
				require.Zero(t, r.Access.Fault&mmsim.VMFaultOOM, "VM_FAULT_OOM is stripped")
			} else {
				require.Equal(t, mmsim.AccessOK, r.Access.Outcome, "%+v", r.faultCase)
			}
		}
	})
}
