package zone

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
)

// TestSizingRules pins the 7.2 pcp sizing and the kernel's clamp.
//
// Reference: mm/page_alloc.c:zone_batchsize(), include/linux/minmax.h:__clamp().
func TestSizingRules(t *testing.T) {
	for _, tc := range []struct {
		managed int64
		want    int
	}{
		{0, 1}, {3840, 1}, {8191, 1}, {8192, 1}, {12288, 3}, {61440, 15}, {772915, 63}, {1 << 30, 63},
	} {
		require.Equal(t, tc.want, zoneBatchsize(tc.managed), "managed %d", tc.managed)
	}
	require.Equal(t, 500, clampInt(0, 500, 300), "lo > hi: a value below both clamps to lo")
	require.Equal(t, 300, clampInt(400, 500, 300), "lo > hi: a value at or above hi clamps to hi")
	require.Equal(t, 7, clampInt(7, 1, 10))
}

// fakeCompactor reports a fixed result.
type fakeCompactor struct{ result CompactResult }

func (f fakeCompactor) TryToCompactPages(*memalloc.Task, []*Zone, Order, gfp.Mask, gfp.ZoneType, int) (CompactResult, PFN, bool) {
	return f.result, 0, false
}
func (f fakeCompactor) ZonelistSuitable([]*Zone, Order, gfp.ZoneType) bool { return true }

func (f fakeCompactor) Allocated(*Zone, Order) {}

func (f fakeCompactor) WakeKcompactd(*Node, Order, gfp.ZoneType) {}

// TestShouldCompactRetry checks the retry budget after successful
// compaction and the escalation of priority after it runs out.
//
// Reference: mm/page_alloc.c:should_compact_retry().
func TestShouldCompactRetry(t *testing.T) {
	a, err := New(smallMachine(), Options{SlowPath: SlowPath{Compact: fakeCompactor{CompactSuccess}}})
	require.NoError(t, err)
	ac := &allocContext{t: memalloc.NewTask("t")}
	require.NoError(t, a.prepare(ac, gfp.Kernel))
	prio, retries := CompactPrioSyncLight, 0
	for range 16 {
		require.True(t, a.shouldCompactRetry(ac, 2, 0, CompactSuccess, &prio, &retries))
	}
	require.Equal(t, CompactPrioSyncLight, prio)
	// The 17th success is out of retries: escalate once to SYNC_FULL.
	require.True(t, a.shouldCompactRetry(ac, 2, 0, CompactSuccess, &prio, &retries))
	require.Equal(t, CompactPrioSyncFull, prio)
	require.Zero(t, retries)
	// A costly order gets 16/4 retries, and stops at SYNC_LIGHT.
	prio, retries = CompactPrioSyncLight, 0
	for range 4 {
		require.True(t, a.shouldCompactRetry(ac, 4, 0, CompactSuccess, &prio, &retries))
	}
	require.False(t, a.shouldCompactRetry(ac, 4, 0, CompactSuccess, &prio, &retries))
	require.False(t, a.shouldCompactRetry(ac, 0, 0, CompactSuccess, &prio, &retries), "order 0 never retries compaction")
	require.True(t, a.shouldCompactRetry(ac, 2, 0, CompactSkipped, &prio, &retries), "skipped: ask whether the zonelist is suitable")
}

// TestWarnAllocRateLimit checks warn_alloc's rate limit on simulated time:
// one report per 10 s, the next window after strictly more than 10 s, and
// the count of suppressed reports printed when the window resets.
//
// Reference: mm/page_alloc.c:warn_alloc(), lib/ratelimit.c:___ratelimit().
func TestWarnAllocRateLimit(t *testing.T) {
	var now int64
	var reports []bug.Report
	a, err := New(smallMachine(), Options{Now: func() int64 { return now }, Report: func(r bug.Report) { reports = append(reports, r) }})
	require.NoError(t, err)
	tk := memalloc.NewTask("t")
	for range 3 {
		a.warnAlloc(tk, gfp.Kernel, 3)
	}
	require.Len(t, reports, 1)
	now = 10e9 // exactly 10 s later: still the same window
	a.warnAlloc(tk, gfp.Kernel, 3)
	require.Len(t, reports, 1)
	now = 10e9 + 1
	a.warnAlloc(tk, gfp.Kernel, 3)
	require.Len(t, reports, 3)
	require.Equal(t, "warn_alloc: 3 callbacks suppressed", reports[1].Text)
	require.True(t, strings.HasPrefix(reports[2].Text, "t: page allocation failure: order:3"))
	a.warnAlloc(tk, gfp.Kernel|gfp.NoWarn, 3)
	require.Len(t, reports, 3, "__GFP_NOWARN never reaches the rate limit")
}

// TestMemorylessNode checks a node with CPUs but no memory: its tasks
// allocate from the other node (numa_hit on the preferred zone, numa_other
// as the CPU's node differs), pagetypeinfo skips it, zone_highsize splits
// by every online CPU when a node has none.
//
// Reference: mm/page_alloc.c:zone_statistics(), zone_highsize();
// mm/vmstat.c:pagetypeinfo_show().
func TestMemorylessNode(t *testing.T) {
	cfg := Config{NrCPUs: 4, Sysctl: DefaultSysctl(), Nodes: []NodeConfig{
		{CPUs: []int{0, 1, 2, 3}},
		{Zones: []ZoneConfig{{Type: gfp.ZoneNormal, StartPFN: 1 << 20, Spanned: 65536, Present: 65536, Managed: 65536}}},
	}}
	a, err := New(cfg, Options{})
	require.NoError(t, err)
	tk := memalloc.NewTask("t")
	_, err = a.AllocPages(tk, gfp.Kernel, 4)
	require.NoError(t, err)
	z := a.nodes[1].zones[gfp.ZoneNormal]
	require.Equal(t, int64(1), z.NumaEvent(NumaHit))
	require.Equal(t, int64(1), z.NumaEvent(NumaOther))
	require.Zero(t, z.NumaEvent(NumaMiss))
	// 65536 managed: batch 15; low watermark split by 4 online CPUs.
	require.Equal(t, max(int(z.wmarkPages(WmarkLow)/4), 60), z.pcpHighMin)
	require.Equal(t, max(int(65536/8/4), 60), z.pcpHighMax)
	var b bytes.Buffer
	require.NoError(t, a.WritePagetypeinfo(&b))
	require.Equal(t, 1, strings.Count(b.String(), "Page block order: 9"))
	require.NotContains(t, b.String(), "Node 0,")
	require.Equal(t, "1", a.memsAllowed())
}
