package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/internal/testutil"
)

// TestOutput compares the program's output with its golden file (go test
// ./examples/secretmem -update rewrites it; review the diff).
func TestOutput(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(&out))
	testutil.Golden(t, "output", out.Bytes())
}

// byPolicy runs the workload once and indexes the results by policy.
func byPolicy(t *testing.T) map[mmsim.SecretPolicy]policyResult {
	t.Helper()
	res, err := runAll()
	require.NoError(t, err)
	m := map[mmsim.SecretPolicy]policyResult{}
	for _, r := range res {
		m[r.policy] = r
	}
	require.Len(t, m, 4)
	return m
}

// procIndex returns the index of comm in the workload.
func procIndex(t *testing.T, comm string) int {
	t.Helper()
	for i, sp := range workload {
		if sp.comm == comm {
			return i
		}
	}
	t.Fatalf("no process %s", comm)
	return -1
}

// TestDebate checks the differences the program is about.
func TestDebate(t *testing.T) {
	res := byPolicy(t)
	up, pmd := res[mmsim.SecretUpstream], res[mmsim.SecretPMDPool]
	boot, rsv := res[mmsim.SecretBootPool], res[mmsim.SecretReserveAtMmap]
	vault, keyd := procIndex(t, "vault"), procIndex(t, "keyd")

	t.Run("pmd-pool splits fewer 2 MiB entries than upstream", func(t *testing.T) {
		assert.Equal(t, up.peak.Faults, pmd.peak.Faults, "same pages faulted in")
		assert.Less(t, pmd.peak.DirectMapLevel2Splits, up.peak.DirectMapLevel2Splits)
		assert.Less(t, pmd.dmPeak.k4, up.dmPeak.k4, "DirectMap4k")
		assert.Positive(t, pmd.peak.PMDBlocks)
		assert.Zero(t, pmd.peak.PMDFallbacks)
	})

	t.Run("upstream SIGBUSes the process over its RLIMIT_MEMLOCK at a fault", func(t *testing.T) {
		v := up.procs[vault]
		assert.NoError(t, v.mmapErr)
		assert.Equal(t, mmsim.AccessSIGBUS, v.fail)
		assert.Equal(t, "over RLIMIT_MEMLOCK", v.cause)
		assert.EqualValues(t, 2048, v.touched, "8 MiB of RLIMIT_MEMLOCK")
		assert.EqualValues(t, 1, up.peak.SIGBUSRlimit)
	})

	t.Run("boot-pool SIGBUSes a user who did not exhaust their own limit", func(t *testing.T) {
		k := boot.procs[keyd]
		require.NoError(t, k.mmapErr)
		assert.True(t, k.stopped)
		assert.Equal(t, mmsim.AccessSIGBUS, k.fail)
		assert.Equal(t, "boot pool empty", k.cause)
		assert.Less(t, boot.lockedPeak[k.spec.uid]*pageSize, int64(8*mib), "keyd's user is under RLIMIT_MEMLOCK")
		assert.Less(t, k.spec.size, int64(8*mib), "keyd asked for less than its limit")
		assert.Positive(t, boot.peak.SIGBUSPoolEmpty)
		assert.Zero(t, boot.peak.SIGBUSRlimit)
		assert.Zero(t, boot.peak.PoolFree)
		// The other policies serve keyd.
		for _, r := range []policyResult{up, pmd, rsv} {
			assert.False(t, r.procs[keyd].stopped, "%v", r.policy)
		}
	})

	t.Run("reserve-at-mmap fails the over-limit mmap, not a fault", func(t *testing.T) {
		v := rsv.procs[vault]
		require.Error(t, v.mmapErr)
		assert.ErrorIs(t, v.mmapErr, mmsim.EAGAIN)
		assert.False(t, v.stopped, "no fault ran")
		assert.EqualValues(t, 1, rsv.peak.MmapFailures[mmsim.EAGAIN])
		assert.Zero(t, rsv.peak.SIGBUSFaults)
		assert.Zero(t, rsv.lockedPeak[v.spec.uid], "the failed reservation is uncharged")
	})

	t.Run("release gives back locked_vm but not the splits", func(t *testing.T) {
		for p, r := range res {
			assert.Zero(t, r.after.Users, "%v", p)
			assert.Zero(t, r.after.Accounted, "%v", p)
			for _, u := range uids {
				assert.Zero(t, r.lockedAfter[u], "%v: uid %d", p, u)
			}
			assert.GreaterOrEqual(t, r.after.DirectMapLevel2Splits, r.peak.DirectMapLevel2Splits, "%v", p)
			assert.GreaterOrEqual(t, r.after.DirectMapLevel3Splits, r.peak.DirectMapLevel3Splits, "%v", p)
			assert.Positive(t, r.after.DirectMapLevel2Splits, "%v", p)
			assert.Equal(t, r.dmPeak, r.dmAfter, "%v: DirectMap lines", p)
			if p == mmsim.SecretBootPool {
				assert.EqualValues(t, bootPoolPages, r.after.DirectMapInvalid, "the pool stays off the direct map")
			} else {
				assert.Zero(t, r.after.DirectMapInvalid, "%v", p)
			}
		}
	})
}

// TestDeterministic runs the program twice: the same output.
func TestDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	require.NoError(t, run(&a))
	require.NoError(t, run(&b))
	assert.Equal(t, a.String(), b.String())
}
