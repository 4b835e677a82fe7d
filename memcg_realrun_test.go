package mmsim_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/zone"
)

// TestMemcgPressureRun1 runs a workload shaped like the real capture
// memcg_pressure_run1 (../shared/traces: a cgroup v1 memcg limited to
// 256 MiB on a machine without swap; 600 MB of file reads, a 150 MB
// write, then an anonymous grower) and checks that the simulator tells the
// real kernel's story: the page cache is reclaimed inside the limit
// (memcg reclaim only: no kswapd, no direct reclaim), failcnt rises, and
// one OOM kill of the grower is triggered by a GFP_KERNEL charge from an
// anonymous fault, counted by memory.oom_control. The figures are logged
// for the comparison with the real ones (failcnt 3903, 487 reclaim rounds
// before the kill, the kill 1.68 s after the start).
func TestMemcgPressureRun1(t *testing.T) {
	cfg := mmsim.DefaultConfig()
	cfg.CgroupV1 = true
	cfg.Sysctl.MinFreeKbytes = 67584 // the live machine's (khugepaged's recommendation)
	s, err := mmsim.New(cfg)
	require.NoError(t, err)
	defer s.Close()
	cg, err := s.NewCgroup(s.RootCgroup(), "kc_pressure")
	require.NoError(t, err)
	admin := s.NewTask("run_pressure.sh")
	require.NoError(t, s.WriteCgroupFile(admin, cg, "memory.limit_in_bytes", "268435456"))

	var rounds, roundsAtKill int
	var reclaimed int64
	var killAt int64
	s.Trace(func(e mmsim.Event) {
		switch e.Kind {
		case zone.EvMemcgReclaimBegin:
			rounds++
		case zone.EvMemcgReclaimEnd:
			reclaimed += e.NrReclaimed
		case zone.EvMarkVictim:
			if killAt == 0 {
				killAt, roundsAtKill = e.Time, rounds
			}
		}
	})
	start := s.Now()
	const mb = 1000 * 1000
	cat := s.NewTask("cat")
	require.NoError(t, s.AttachTask(cat, cg))
	_, err = s.ReadFile(cat, s.NewFile("data", gfp.HighUserMovable), 0, 600*mb/pageBytes)
	require.NoError(t, err)
	failcntAfterRead := readInt(t, s, cg, "memory.failcnt")
	dd := s.NewTask("dd")
	require.NoError(t, s.AttachTask(dd, cg))
	_, err = s.WriteFile(dd, s.NewFile("out", gfp.HighUserMovable), 0, 150*mb/pageBytes)
	require.NoError(t, err)
	grower := s.NewTask("anon_touch")
	require.NoError(t, s.AttachTask(grower, cg))
	_, err = s.TouchAnon(grower, 512<<20/pageBytes)
	require.ErrorIs(t, err, mmsim.ErrKilled)

	reps := oomReports(s)
	require.NotEmpty(t, reps)
	text := reps[0]
	assert.True(t, strings.HasPrefix(text, "anon_touch invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n"))
	assert.Contains(t, text, "memory: usage 262144kB, limit 262144kB, failcnt ")
	assert.Contains(t, text, "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/kc_pressure,task_memcg=/kc_pressure,task=anon_touch,")
	assert.Contains(t, text, "Memory cgroup out of memory: Killed process ")
	assert.True(t, s.Killed(grower))
	assert.False(t, s.Killed(cat) || s.Killed(dd))
	oc := mustRead(t, s, cg, "memory.oom_control")
	assert.Equal(t, "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n", oc)
	failcnt := readInt(t, s, cg, "memory.failcnt")
	assert.Greater(t, failcnt, failcntAfterRead)
	assert.Positive(t, failcntAfterRead)
	assert.Positive(t, roundsAtKill)
	t.Logf("simulated: failcnt %d (after the read %d), memcg reclaim rounds before the kill %d (in all %d, %d pages), kill %.3f s after the start",
		failcnt, failcntAfterRead, roundsAtKill, rounds, reclaimed, float64(killAt-start)/1e9)
}
