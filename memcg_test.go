package mmsim_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// memcgMachine boots the default machine with the memory controller on
// v1 or v2 and makes one cgroup limited to limitPages.
func memcgMachine(t *testing.T, v1 bool, limitPages int64) (*mmsim.System, *mmsim.Cgroup, *memalloc.Task) {
	t.Helper()
	cfg := mmsim.DefaultConfig()
	cfg.CgroupV1 = v1
	s, err := mmsim.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	cg, err := s.NewCgroup(s.RootCgroup(), "box")
	require.NoError(t, err)
	admin := s.NewTask("admin")
	limitFile, limit := "memory.max", strconv.FormatInt(limitPages*pageBytes, 10)
	if v1 {
		limitFile = "memory.limit_in_bytes"
	}
	require.NoError(t, s.WriteCgroupFile(admin, cg, limitFile, limit))
	return s, cg, admin
}

// oomReports returns the texts of the OOM reports so far.
func oomReports(s *mmsim.System) []string {
	var out []string
	for _, r := range s.Reports() {
		if r.Kind == mmsim.ReportOOM {
			out = append(out, r.Text)
		}
	}
	return out
}

func readInt(t *testing.T, s *mmsim.System, cg *mmsim.Cgroup, file string) int64 {
	t.Helper()
	text, err := s.ReadCgroupFile(cg, file)
	require.NoError(t, err)
	n, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
	require.NoError(t, err, "%s: %q", file, text)
	return n
}

// An anonymous grower in a limited cgroup, with no swap, is killed by the
// memcg OOM killer: CONSTRAINT_MEMCG, the charge's GFP_KERNEL in the
// header, the cgroup's counters instead of Mem-Info, only the cgroup's
// tasks in the table; a task outside is untouched and the machine is far
// from its own OOM.
func TestMemcgOOMKillsInsideTheCgroup(t *testing.T) {
	s, cg, _ := memcgMachine(t, false, 4096)
	outside := s.NewTask("outside")
	_, err := s.TouchAnon(outside, 2000)
	require.NoError(t, err)
	grower := s.NewTask("grower")
	require.NoError(t, s.AttachTask(grower, cg))
	n, err := s.TouchAnon(grower, 8192)
	require.ErrorIs(t, err, mmsim.ErrKilled)
	assert.Less(t, n, int64(4096))
	assert.True(t, s.Killed(grower))
	assert.False(t, s.Killed(outside))

	reps := oomReports(s)
	require.NotEmpty(t, reps)
	text := strings.Join(reps, "\n")
	assert.Contains(t, text, "grower invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0")
	assert.Contains(t, text, "memory: usage 16384kB, limit 16384kB, failcnt ")
	assert.Contains(t, text, "swap: usage 0kB, limit 9007199254740988kB, failcnt 0")
	assert.Contains(t, text, "Memory cgroup stats for /box:")
	assert.NotContains(t, text, "Mem-Info:")
	assert.NotContains(t, text, " outside\n", "the task table lists the cgroup's tasks only")
	assert.Contains(t, text, "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/box,task_memcg=/box,task=grower,pid=")
	assert.Contains(t, text, "Memory cgroup out of memory: Killed process ")

	ev, err := s.ReadCgroupFile(cg, "memory.events")
	require.NoError(t, err)
	assert.Contains(t, ev, "oom 1\n")
	assert.Contains(t, ev, "oom_kill 1\n")
	require.NoError(t, s.Exit(grower))
	assert.LessOrEqual(t, readInt(t, s, cg, "memory.current"), int64(mmsim.MemcgChargeBatch*pageBytes),
		"after the exit only the per-cpu stock may stay charged")
}

// Page cache in a full cgroup is reclaimed inside the limit: reading three
// times the limit succeeds, v1's failcnt rises, memcg reclaim runs (its
// tracepoints with the charge's mask made GFP_HIGHUSER_MOVABLE-complete),
// and nobody is killed.
func TestMemcgReclaimsPageCacheInsideTheLimit(t *testing.T) {
	s, cg, _ := memcgMachine(t, true, 2048)
	var begins, ends int
	var first string
	s.Trace(func(e mmsim.Event) {
		switch e.Kind {
		case zone.EvMemcgReclaimBegin:
			begins++
			if first == "" {
				first = e.String()
			}
		case zone.EvMemcgReclaimEnd:
			ends++
		}
	})
	reader := s.NewTask("cat")
	require.NoError(t, s.AttachTask(reader, cg))
	f := s.NewFile("data", gfp.HighUserMovable)
	n, err := s.ReadFile(reader, f, 0, 6144)
	require.NoError(t, err)
	assert.Equal(t, int64(6144), n)
	assert.LessOrEqual(t, readInt(t, s, cg, "memory.usage_in_bytes"), int64(2048*pageBytes))
	assert.LessOrEqual(t, readInt(t, s, cg, "memory.max_usage_in_bytes"), int64(2048*pageBytes))
	assert.Positive(t, readInt(t, s, cg, "memory.failcnt"))
	assert.Positive(t, begins)
	assert.Equal(t, begins, ends)
	assert.Contains(t, first, "vmscan:mm_vmscan_memcg_reclaim_begin: order=0 gfp_flags=GFP_HIGHUSER_MOVABLE pid=")
	assert.Empty(t, oomReports(s))
	oc, err := s.ReadCgroupFile(cg, "memory.oom_control")
	require.NoError(t, err)
	assert.Equal(t, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", oc)
}

// A GFP_NOFS charge in a full cgroup is OOM-killed for (SPEC §8.2: only
// a global OOM skips requests without __GFP_FS).
func TestMemcgNOFSChargeCanOOMKill(t *testing.T) {
	s, cg, _ := memcgMachine(t, false, 1024)
	hog := s.NewTask("hog")
	require.NoError(t, s.AttachTask(hog, cg))
	_, err := s.TouchAnon(hog, 900)
	require.NoError(t, err)
	fs := s.NewTask("fs_worker")
	require.NoError(t, s.AttachTask(fs, cg))
	var pages []zone.Page
	for i := 0; i < 400 && !s.Killed(hog); i++ {
		p, err := s.AllocPages(fs, gfp.NoFS|gfp.Account, 0)
		require.NoError(t, err)
		pages = append(pages, p)
	}
	assert.True(t, s.Killed(hog), "the NOFS charge killed the hog")
	text := strings.Join(oomReports(s), "\n")
	assert.Contains(t, text, "fs_worker invoked oom-killer: gfp_mask=0x400c40(GFP_NOFS|__GFP_ACCOUNT), order=0")
	assert.Contains(t, text, "task=hog")

	// The same request outside any cgroup, on a machine out of memory,
	// would be "progress" with no kill: the global rule.
	for _, p := range pages {
		require.NoError(t, s.FreePages(fs, p, 0))
	}
}

// The charge's gfp flags decide where a charge over the limit ends:
// a request that cannot sleep fails at once; __GFP_NORETRY after one
// reclaim; __GFP_RETRY_MAYFAIL after the retries, without an OOM;
// __GFP_HIGH (GFP_ATOMIC) is forced over the limit at once; __GFP_NOFAIL
// goes through the OOM killer first (here it kills the allocating task,
// the cgroup's only one), and once the task is dying it is forced.
func TestMemcgChargeFailureByMask(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mask   gfp.Mask
		fails  bool
		forced bool
		oom    bool
	}{
		{"nowait", gfp.NoWait | gfp.Account, true, false, false},
		{"noretry", gfp.Kernel | gfp.NoRetry | gfp.Account, true, false, false},
		{"retry_mayfail", gfp.Kernel | gfp.RetryMayFail | gfp.Account, true, false, false},
		{"nofail", gfp.Kernel | gfp.NoFail | gfp.Account, false, true, true},
		{"atomic", gfp.Atomic | gfp.Account, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, cg, _ := memcgMachine(t, false, 256)
			task := s.NewTask("k")
			require.NoError(t, s.AttachTask(task, cg))
			// Fill the cgroup with unreclaimable kernel pages, then take
			// what the per-cpu stock still holds pre-charged: a charge
			// that finds stock succeeds whatever the limit.
			for readInt(t, s, cg, "memory.current") < 256*pageBytes {
				_, err := s.AllocPages(task, gfp.Kernel|gfp.Account|gfp.NoFail, 0)
				require.NoError(t, err)
			}
			for {
				if _, err := s.AllocPages(task, gfp.NoWait|gfp.Account, 0); err != nil {
					break
				}
			}
			_, err := s.AllocPages(task, tc.mask, 0)
			if tc.fails {
				require.ErrorIs(t, err, mmsim.ErrNoMemory)
				assert.NotContains(t, err.Error(), "page allocation failure", "a failed charge is not a page allocation failure")
			} else {
				require.NoError(t, err)
			}
			if tc.forced {
				assert.Greater(t, readInt(t, s, cg, "memory.current"), int64(256*pageBytes))
			}
			assert.Equal(t, tc.oom, len(oomReports(s)) > 0, "OOM kill for %s", tc.name)
			assert.Equal(t, tc.oom, s.Killed(task))
		})
	}
}

// cgroup v1 reports the real kernel's way: memory+swap and kmem lines, the
// 42-line v1 statistics, and oom_control counting the kill.
func TestMemcgV1OOMReport(t *testing.T) {
	s, cg, _ := memcgMachine(t, true, 4096)
	grower := s.NewTask("anon_touch")
	require.NoError(t, s.AttachTask(grower, cg))
	_, err := s.TouchAnon(grower, 8192)
	require.ErrorIs(t, err, mmsim.ErrKilled)
	text := strings.Join(oomReports(s), "\n")
	assert.Contains(t, text, "memory: usage 16384kB, limit 16384kB, failcnt ")
	assert.Contains(t, text, "memory+swap: usage 16384kB, limit 9007199254740988kB, failcnt 0")
	assert.Regexp(t, `kmem: usage \d+kB, limit 9007199254740988kB, failcnt 0`, text)
	assert.Contains(t, text, "hierarchical_memory_limit 16777216\n")
	assert.Contains(t, text, "hierarchical_memsw_limit 9223372036854771712\n")
	oc, err := s.ReadCgroupFile(cg, "memory.oom_control")
	require.NoError(t, err)
	assert.Equal(t, "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n", oc)
	// The page tables are kernel memory charged to the cgroup.
	assert.Positive(t, readInt(t, s, cg, "memory.kmem.usage_in_bytes"))
}

// With v1's oom_kill_disable the OOM killer leaves the cgroup alone: the
// faulting task waits at the end of its fault and the fault is retried.
func TestMemcgV1OOMKillDisable(t *testing.T) {
	s, cg, admin := memcgMachine(t, true, 1024)
	require.NoError(t, s.WriteCgroupFile(admin, cg, "memory.oom_control", "1"))
	p := s.NewTask("p")
	require.NoError(t, s.AttachTask(p, cg))
	addr, err := s.Mmap(p, 2048*pageBytes, rw, mmsim.MapPrivate|mmsim.MapAnonymous)
	require.NoError(t, err)
	var oomOutcome bool
	for i := uint64(0); i < 2048; i++ {
		res, err := s.Write(p, addr+i*pageBytes, 1)
		require.NoError(t, err)
		if res.Outcome == mmsim.AccessOOM {
			oomOutcome = true
			break
		}
	}
	assert.True(t, oomOutcome)
	assert.False(t, s.Killed(p))
	assert.Empty(t, oomReports(s))
	ev := readInt(t, s, cg, "memory.failcnt")
	assert.Positive(t, ev)
}

// Kernel memory with __GFP_ACCOUNT — accounted slab objects, page tables —
// is charged to the allocating task's cgroup and given back when freed.
func TestMemcgKmemAccounting(t *testing.T) {
	s, cg, _ := memcgMachine(t, false, 1<<20)
	task := s.NewTask("k")
	require.NoError(t, s.AttachTask(task, cg))
	stat := func() map[string]int64 {
		var b strings.Builder
		require.NoError(t, s.WriteCgroupStat(&b, cg))
		out := map[string]int64{}
		for _, l := range strings.Split(b.String(), "\n") {
			if k, v, ok := strings.Cut(l, " "); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				out[k] = n
			}
		}
		return out
	}
	var ptrs []mmsim.Object
	for i := 0; i < 256; i++ {
		p, err := s.Kmalloc(task, 512, gfp.KernelAccount)
		require.NoError(t, err)
		ptrs = append(ptrs, p)
	}
	st := stat()
	assert.Equal(t, int64(256*(512+8)), st["slab_unreclaimable"], "objects are charged with their obj_cgroup pointer")
	assert.GreaterOrEqual(t, st["kernel"], st["slab_unreclaimable"])
	for _, p := range ptrs {
		require.NoError(t, s.Kfree(task, p))
	}
	assert.Zero(t, stat()["slab_unreclaimable"])
	// A root-cgroup task's accounted allocations are not charged.
	root := s.NewTask("r")
	_, err := s.Kmalloc(root, 512, gfp.KernelAccount)
	require.NoError(t, err)
	assert.Zero(t, stat()["slab_unreclaimable"])
}

// memory.high makes a task over it reclaim and, when that does not bring
// the cgroup back, sleep in simulated time (MEMCG_HIGH counted).
func TestMemcgHighThrottles(t *testing.T) {
	s, cg, admin := memcgMachine(t, false, 1<<20)
	require.NoError(t, s.WriteCgroupFile(admin, cg, "memory.high", strconv.Itoa(2048*pageBytes)))
	p := s.NewTask("p")
	require.NoError(t, s.AttachTask(p, cg))
	before := s.Now()
	_, err := s.TouchAnon(p, 4096)
	require.NoError(t, err)
	ev, err := s.ReadCgroupFile(cg, "memory.events")
	require.NoError(t, err)
	assert.NotContains(t, ev, "high 0\n")
	assert.Greater(t, s.Now()-before, int64(10e6), "throttled for more than HZ/100")
	assert.Empty(t, oomReports(s))
}

// memory.low keeps a protected sibling's page cache while the other one
// is reclaimed under the parent's limit.
func TestMemcgLowProtects(t *testing.T) {
	s, err := mmsim.New(mmsim.DefaultConfig())
	require.NoError(t, err)
	defer s.Close()
	admin := s.NewTask("admin")
	parent, err := s.NewCgroup(s.RootCgroup(), "parent")
	require.NoError(t, err)
	require.NoError(t, s.WriteCgroupFile(admin, parent, "memory.max", strconv.Itoa(4096*pageBytes)))
	prot, err := s.NewCgroup(parent, "prot")
	require.NoError(t, err)
	free, err := s.NewCgroup(parent, "free")
	require.NoError(t, err)
	require.NoError(t, s.WriteCgroupFile(admin, prot, "memory.low", strconv.Itoa(2048*pageBytes)))
	a, b := s.NewTask("a"), s.NewTask("b")
	require.NoError(t, s.AttachTask(a, prot))
	require.NoError(t, s.AttachTask(b, free))
	_, err = s.ReadFile(a, s.NewFile("fa", gfp.HighUserMovable), 0, 1800)
	require.NoError(t, err)
	_, err = s.ReadFile(b, s.NewFile("fb", gfp.HighUserMovable), 0, 8000)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, readInt(t, s, prot, "memory.current"), int64(1800*pageBytes),
		"the protected group's cache was left alone")
}

// Errors say what was wrong in the kernel's terms.
func TestMemcgErrors(t *testing.T) {
	s, cg, admin := memcgMachine(t, false, 1024)
	_, err := s.NewCgroup(s.RootCgroup(), "box")
	assert.True(t, errors.Is(err, mmsim.EEXIST), "%v", err)
	_, err = s.NewCgroup(cg, "a/b")
	assert.ErrorIs(t, err, mmsim.ErrInvalid)
	assert.Error(t, s.WriteCgroupFile(admin, cg, "memory.max", "12x"))
	_, err = s.ReadCgroupFile(cg, "memory.limit_in_bytes")
	assert.Error(t, err, "a v1 file on a v2 machine")
	assert.Equal(t, fmt.Sprint(int64(1024*pageBytes)), strings.TrimSpace(mustRead(t, s, cg, "memory.max")))
}

func mustRead(t *testing.T, s *mmsim.System, cg *mmsim.Cgroup, name string) string {
	t.Helper()
	text, err := s.ReadCgroupFile(cg, name)
	require.NoError(t, err)
	return text
}

// Lowering memory.max below what cannot be reclaimed OOM-kills inside the
// cgroup until it fits (v2), where v1's limit_in_bytes refuses with EBUSY.
func TestMemcgLoweringTheLimit(t *testing.T) {
	s, cg, admin := memcgMachine(t, false, 1<<20)
	p := s.NewTask("p")
	require.NoError(t, s.AttachTask(p, cg))
	_, err := s.TouchAnon(p, 2048)
	require.NoError(t, err)
	require.NoError(t, s.WriteCgroupFile(admin, cg, "memory.max", strconv.Itoa(1024*pageBytes)))
	assert.True(t, s.Killed(p))
	assert.LessOrEqual(t, readInt(t, s, cg, "memory.current"), int64(1024*pageBytes))
	assert.Contains(t, strings.Join(oomReports(s), "\n"), "admin invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0")

	s1, cg1, admin1 := memcgMachine(t, true, 1<<20)
	p1 := s1.NewTask("p")
	require.NoError(t, s1.AttachTask(p1, cg1))
	_, err = s1.TouchAnon(p1, 2048)
	require.NoError(t, err)
	err = s1.WriteCgroupFile(admin1, cg1, "memory.limit_in_bytes", strconv.Itoa(1024*pageBytes))
	assert.ErrorIs(t, err, mmsim.EBUSY)
	assert.False(t, s1.Killed(p1))
}

// statField returns one row of a cgroup's memory.stat.
func statField(t *testing.T, s *mmsim.System, cg *mmsim.Cgroup, key string) int64 {
	t.Helper()
	text, err := s.ReadCgroupFile(cg, "memory.stat")
	require.NoError(t, err)
	for _, l := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && k == key {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("memory.stat has no %s", key)
	return 0
}

// TestMemcgSlabFreeRace: tasks of two cgroups allocate and free accounted
// objects of one cache at once, so a freed object is soon another
// cgroup's. Every free returns its own object's charge — the record of
// it leaves before the object is back on the freelist, as
// memcg_slab_free_hook runs before do_slab_free — so when all is freed
// neither cgroup is left holding slab bytes.
//
// Reference: mm/slub.c:slab_free() (memcg_slab_free_hook, then
// do_slab_free).
func TestMemcgSlabFreeRace(t *testing.T) {
	s := newSystem(t, mmsim.DefaultConfig())
	var cgs []*mmsim.Cgroup
	for _, name := range []string{"a", "b"} {
		cg, err := s.NewCgroup(s.RootCgroup(), name)
		require.NoError(t, err)
		cgs = append(cgs, cg)
	}
	const workers, rounds, held = 8, 400, 16
	errs := make(chan error, workers)
	for w := range workers {
		tk := s.NewTask(fmt.Sprintf("w%d", w))
		require.NoError(t, s.AttachTask(tk, cgs[w%2]))
		go func() {
			var objs []mmsim.Object
			for r := range rounds {
				o, err := s.Kmalloc(tk, 200, gfp.KernelAccount)
				if err != nil {
					errs <- err
					return
				}
				objs = append(objs, o)
				if len(objs) == held || r == rounds-1 {
					for _, o := range objs {
						if err := s.Kfree(tk, o); err != nil {
							errs <- err
							return
						}
					}
					objs = objs[:0]
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		require.NoError(t, <-errs)
	}
	for _, cg := range cgs {
		assert.Zero(t, statField(t, s, cg, "slab"), "every object freed: no slab bytes left charged")
	}
	require.NoError(t, s.CheckInvariants())
}
