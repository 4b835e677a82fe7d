package main

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/internal/testutil"
)

// TestOutput compares the program's output with its golden file (make
// golden rewrites it; review the diff).
func TestOutput(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(&out))
	testutil.Golden(t, "output", out.Bytes())
}

// TestFacts checks the story the output tells.
func TestFacts(t *testing.T) {
	f, err := simulate(io.Discard)
	require.NoError(t, err)
	t.Run("batch's page cache is reclaimed inside its limit", func(t *testing.T) {
		require.Positive(t, f.ReclaimRounds)
		require.GreaterOrEqual(t, f.ReclaimedPages, int64(128<<20/4096-64), "at least what did not fit")
		require.LessOrEqual(t, f.BatchPeak, int64(64<<20))
	})
	t.Run("the anonymous grower is killed by the memcg OOM killer for a GFP_KERNEL charge", func(t *testing.T) {
		require.Equal(t, "grower", f.Victim)
		require.Equal(t, "grower invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0", f.OOMHeader)
		require.Contains(t, f.BatchOOMKills, "oom_kill 1\n")
	})
	t.Run("the other cgroup and the machine are untouched", func(t *testing.T) {
		require.Equal(t, f.WebBefore, f.WebAfter)
		require.Zero(t, f.KswapdWakes)
	})
	t.Run("a NOFS charge in a full cgroup is OOM-killed for", func(t *testing.T) {
		require.True(t, f.NOFSKilled)
		require.Contains(t, f.NOFSHeader, "gfp_mask=0x400c40(GFP_NOFS|__GFP_ACCOUNT)")
	})
}
