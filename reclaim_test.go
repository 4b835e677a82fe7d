package mmsim_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/oom"
	"github.com/mmsim/mmsim/reclaim"
	"github.com/mmsim/mmsim/zone"
)

// pressureConfig is a machine of DMA (3840 pages) and 64 MiB of DMA32,
// small enough to fill in a test, with swapPages of swap.
func pressureConfig(swapPages int64) mmsim.Config {
	cfg := smallConfig(16384)
	cfg.SwapPages = swapPages
	return cfg
}

// reportsOf returns the reports of a kind.
func reportsOf(s *mmsim.System, k bug.Kind) []mmsim.Report {
	var out []mmsim.Report
	for _, r := range s.Reports() {
		if r.Kind == k {
			out = append(out, r)
		}
	}
	return out
}

// TestGlobalOOMKillsLargest: three processes fill memory with anonymous
// pages and there is no swap: the OOM killer kills the one with the highest
// badness, reports it in the kernel's words, and the reaper frees its
// memory, so that the others go on.
//
// Reference: mm/oom_kill.c:out_of_memory(), select_bad_process(),
// oom_kill_process(), oom_reaper().
func TestGlobalOOMKillsLargest(t *testing.T) {
	s := newSystem(t, pressureConfig(0))
	small, big, exempt := s.NewTask("small"), s.NewTask("big"), s.NewTask("exempt")
	require.NoError(t, s.SetOOMScoreAdj(exempt, -1000))
	_, err := s.TouchAnon(small, 1000)
	require.NoError(t, err)
	_, err = s.TouchAnon(exempt, 3000)
	require.NoError(t, err)
	_, err = s.TouchAnon(big, 1<<20) // more than the machine has
	require.ErrorIs(t, err, mmsim.ErrKilled, "big is the largest: it is the victim")
	require.True(t, s.Killed(big))
	require.False(t, s.Killed(small))
	require.False(t, s.Killed(exempt))
	require.Equal(t, int64(1), s.OOM().Kills())

	kills := reportsOf(s, bug.OOM)
	require.Len(t, kills, 1)
	text := kills[0].Text
	assert.True(t, strings.HasPrefix(text, "big invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP), order=0, oom_score_adj=0\n"), text)
	assert.Contains(t, text, "\nMem-Info:\n")
	assert.Contains(t, text, "\nTasks state (memory values in pages):\n[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name\n")
	assert.Contains(t, text, "\noom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=big,pid=1001,uid=0\n")
	assert.Contains(t, text, "\nOut of memory: Killed process 1001 (big) total-vm:")
	// exempt (-1000) is listed in the table all the same.
	assert.Contains(t, text, "        -1000 exempt\n")

	// The victim does not exit: after OOM_REAPER_DELAY (2 s) the reaper
	// takes its anonymous memory.
	s.Sleep(2*time.Second + time.Millisecond)
	require.Equal(t, int64(1), s.OOM().Reaper().Reaps())
	u, err := s.Usage(big)
	require.NoError(t, err)
	assert.Zero(t, u.RSSPages)
	reaped := reportsOf(s, bug.Info)
	require.Len(t, reaped, 1)
	assert.Equal(t, "oom_reaper: reaped process 1001 (big), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB", reaped[0].Text)

	// The others can allocate again.
	_, err = s.TouchAnon(small, 1000)
	require.NoError(t, err)
	require.NoError(t, s.CheckInvariants())
}

// TestNOFSNeverOOMKills is the core of the NOFS question: under the same
// pressure, an allocation in a PF_MEMALLOC_NOFS scope never triggers the
// global OOM killer — out_of_memory() returns "progress" without killing
// for a request without __GFP_FS — so it loops: the stall warning after
// 10 s, then ErrDeadlock at the stall limit. GFP_KERNEL kills.
//
// Reference: mm/oom_kill.c:out_of_memory() (the __GFP_FS test),
// mm/page_alloc.c:__alloc_pages_may_oom(), check_alloc_stall_warn().
func TestNOFSNeverOOMKills(t *testing.T) {
	s := newSystem(t, pressureConfig(0))
	hog, fs := s.NewTask("hog"), s.NewTask("fs-writer")
	_, err := s.TouchAnon(hog, 12000)
	require.NoError(t, err)

	cookie := fs.SaveNoFS()
	_, err = s.TouchAnon(fs, 1<<20)
	fs.Restore(cookie)
	require.ErrorIs(t, err, mmsim.ErrDeadlock)
	require.NotErrorIs(t, err, mmsim.ErrNoMemory)
	assert.Contains(t, err.Error(), "out_of_memory() never kills for a request without __GFP_FS")
	assert.Zero(t, s.OOM().Kills(), "a NOFS allocation never OOM-kills")
	assert.Empty(t, reportsOf(s, bug.OOM))
	var stalled bool
	for _, r := range reportsOf(s, bug.Alloc) {
		stalled = stalled || strings.Contains(r.Text, "fs-writer: page allocation stall for 1")
	}
	assert.True(t, stalled, "the stall warning fires after 10 s of simulated time")
	assert.GreaterOrEqual(t, s.Now(), int64(15*time.Second))

	// The same pressure without the scope kills: the hog first, the
	// largest.
	_, err = s.TouchAnon(fs, 1<<20)
	require.Error(t, err)
	kills := reportsOf(s, bug.OOM)
	require.NotEmpty(t, kills)
	assert.Contains(t, kills[0].Text, "task=hog,pid=1000")
	assert.True(t, s.Killed(hog))
}

// TestReclaimMaskRules pins what each mask lets direct reclaim do (SPEC
// §7.2), calling try_to_free_pages until it makes no more progress: clean
// page cache is dropped under any blocking mask; anonymous memory goes to
// swap only with __GFP_IO; the superblock shrinker frees only with
// __GFP_FS. The modelled costs are 0 so that simulated time stands still
// and kswapd (which reclaims with GFP_KERNEL whoever woke it) stays out of
// the picture.
//
// Reference: mm/vmscan.c:shrink_folio_list(), fs/super.c:super_cache_scan().
func TestReclaimMaskRules(t *testing.T) {
	type outcome struct{ cacheDropped, swapped, shrunk bool }
	for _, tc := range []struct {
		name string
		mask gfp.Mask
		want outcome
	}{
		{"GFP_KERNEL", gfp.Kernel, outcome{true, true, true}},
		{"GFP_NOFS", gfp.NoFS, outcome{true, true, false}},
		{"GFP_NOIO", gfp.NoIO, outcome{true, false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := pressureConfig(8192)
			cfg.Costs = reclaim.Costs{}
			s := newSystem(t, cfg)
			anon, reader, fsTask := s.NewTask("anon"), s.NewTask("reader"), s.NewTask("fs")
			cache := s.NewSuperCache(21)
			require.NoError(t, cache.Grow(fsTask, 21*500))
			f := s.NewFile("data", 0)
			_, err := s.ReadFile(reader, f, 0, 4000)
			require.NoError(t, err)
			_, err = s.TouchAnon(anon, 8000)
			require.NoError(t, err)
			objects, cached := cache.Objects(), s.CachedPages(f)
			n := s.Nodes()[0]
			zonelist := []*zone.Zone{n.Zone(gfp.ZoneDMA32), n.Zone(gfp.ZoneDMA)}
			req := s.NewTask("requester")
			for range 2000 {
				if s.Reclaim().TryToFreePages(req, zonelist, 0, tc.mask, gfp.ZoneNormal) == 0 {
					break
				}
			}
			u, err := s.Usage(anon)
			require.NoError(t, err)
			got := outcome{
				cacheDropped: s.CachedPages(f) == 0,
				swapped:      u.SwapPages > 0,
				shrunk:       cache.Objects() < objects,
			}
			assert.Equal(t, tc.want, got, "cache %d of %d pages left", s.CachedPages(f), cached)
			require.NoError(t, s.CheckInvariants())
		})
	}
}

// TestDirtyPagesAreNeverWrittenByReclaim: with only dirty page cache to
// reclaim, reclaim marks the pages PG_reclaim and wakes the flushers; the
// pages are freed only after the flushers wrote them.
//
// Reference: mm/vmscan.c:shrink_folio_list() (dirty file folios),
// mm/swap.c:folio_rotate_reclaimable().
func TestDirtyPagesAreNeverWrittenByReclaim(t *testing.T) {
	cfg := pressureConfig(0)
	cfg.Sysctl.DirtyRatio = 100 // let the writer dirty everything unthrottled
	cfg.Sysctl.DirtyBackgroundRatio = 99
	s := newSystem(t, cfg)
	w := s.NewTask("writer")
	f := s.NewFile("log", 0)
	_, err := s.WriteFile(w, f, 0, 15000)
	require.NoError(t, err)
	written := s.Reclaim().Flusher().Written()
	req := s.NewTask("requester")
	for i := 0; i < 6000; i++ {
		_, err := s.AllocPages(req, gfp.Kernel, 0)
		require.NoError(t, err, "the flushers clean pages and reclaim frees them")
	}
	assert.Greater(t, s.Reclaim().Flusher().Written(), written, "the flushers did the writing")
	var vmstat strings.Builder
	require.NoError(t, s.WriteVmstat(&vmstat))
	assert.Contains(t, vmstat.String(), "\nnr_vmscan_write 0\n", "reclaim itself wrote nothing")
	assert.NotContains(t, vmstat.String(), "\nnr_vmscan_immediate_reclaim 0\n", "dirty pages were marked for immediate reclaim")
	require.NoError(t, s.CheckInvariants())
}

// TestOOMScore checks /proc/PID/oom_score against oom_badness worked by
// hand for the machine: totalpages = totalram + swap.
func TestOOMScore(t *testing.T) {
	s := newSystem(t, pressureConfig(4096))
	a, b := s.NewTask("a"), s.NewTask("b")
	_, err := s.TouchAnon(a, 2000)
	require.NoError(t, err)
	require.NoError(t, s.SetOOMScoreAdj(b, 500))
	total := int64(3840+16384) + 4096 // managed pages + swap
	require.Equal(t, total, s.OOM().TotalPages())
	// a: rss 2000 + 4 page-table pages (16384 bytes / 4096) = 2004.
	u, err := s.Usage(a)
	require.NoError(t, err)
	require.Equal(t, oom.Usage{RSSPages: 2000, PgTablesBytes: 4 * 4096}, u)
	score, err := s.OOMScore(a)
	require.NoError(t, err)
	assert.Equal(t, (1000+int64(2004)*1000/total)*2/3, score)
	// b: no memory, adj 500: 500 * (24320/1000) = 12000.
	score, err = s.OOMScore(b)
	require.NoError(t, err)
	assert.Equal(t, (1000+int64(500*24)*1000/total)*2/3, score)
	require.ErrorIs(t, s.SetOOMScoreAdj(b, 1001), mmsim.ErrInvalid)
}

// TestOOMTieGoesToLater: equal badness, the later process is chosen (the
// comparison is <, not <=).
//
// Reference: mm/oom_kill.c:oom_evaluate_task().
func TestOOMTieGoesToLater(t *testing.T) {
	s := newSystem(t, pressureConfig(0))
	first, second := s.NewTask("first"), s.NewTask("second")
	_, err := s.TouchAnon(first, 5000)
	require.NoError(t, err)
	_, err = s.TouchAnon(second, 5000)
	require.NoError(t, err)
	// A third, exempt task pushes the machine over.
	pusher := s.NewTask("pusher")
	require.NoError(t, s.SetOOMScoreAdj(pusher, -1000))
	_, err = s.TouchAnon(pusher, 1<<20)
	require.Error(t, err)
	kills := reportsOf(s, bug.OOM)
	require.NotEmpty(t, kills)
	assert.Contains(t, kills[0].Text, "task=second,", "ties go to the later-iterated task")
}

// TestNofailWithReclaim: a blocking NOFAIL request under pressure gets its
// page — reclaim frees page cache — and never returns ErrNoMemory.
func TestNofailWithReclaim(t *testing.T) {
	s := newSystem(t, pressureConfig(0))
	r := s.NewTask("reader")
	f := s.NewFile("big", 0)
	_, err := s.ReadFile(r, f, 0, 14000)
	require.NoError(t, err)
	k := s.NewTask("kernel")
	for i := 0; i < 6000; i++ {
		_, err := s.AllocPages(k, gfp.Kernel|gfp.NoFail, 0)
		require.NoError(t, err)
	}
	assert.Less(t, s.CachedPages(f), int64(14000))
}

// TestKswapdBalances: a wakeup below the low watermark runs kswapd, which
// reclaims page cache until the zones are above their high watermarks and
// then sleeps.
//
// Reference: mm/vmscan.c:wakeup_kswapd(), balance_pgdat(), kswapd_try_to_sleep().
func TestKswapdBalances(t *testing.T) {
	s := newSystem(t, pressureConfig(0))
	r := s.NewTask("reader")
	f := s.NewFile("big", 0)
	_, err := s.ReadFile(r, f, 0, 19800)
	require.NoError(t, err)
	k := s.Reclaim().Kswapd(0)
	require.Positive(t, s.Nodes()[0].KswapdWakes())
	s.RunUntilIdle(time.Minute)
	require.False(t, k.Running(), "kswapd sleeps once balanced")
	assert.Zero(t, k.Failures())
	z := s.Nodes()[0].Zone(gfp.ZoneDMA32)
	assert.Greater(t, z.FreePages(), z.Watermark(zone.WmarkHigh), "kswapd reclaims to the high watermark")
}

// TestConcurrentPressure runs processes on several goroutines under memory
// pressure — anonymous memory with swap, page-cache reads and writes, kernel
// allocations — so that direct reclaim, kswapd, the flushers, the OOM
// killer and the reaper all run at once (under the race detector in make
// test). Every process then exits and the machine must be whole.
func TestConcurrentPressure(t *testing.T) {
	s := newSystem(t, pressureConfig(4096))
	require.NoError(t, pressureWorkers(s, 6))
	s.RunUntilIdle(10 * time.Second)
	require.NoError(t, s.CheckInvariants())
}

// pressureWorkers runs n goroutines, each with its own task, that fault
// anonymous memory, read and write files and allocate pages until they
// are done or killed.
func pressureWorkers(s *mmsim.System, n int) error {
	var g errgroup.Group
	for i := range n {
		tk := s.NewTask(fmt.Sprintf("worker%d", i))
		f := s.NewFile(fmt.Sprintf("file%d", i), 0)
		g.Go(func() error {
			defer func() { _ = s.Exit(tk) }()
			var held []zone.Page
			for round := range 40 {
				var err error
				switch round % 4 {
				case 0:
					_, err = s.TouchAnon(tk, 200)
				case 1:
					_, err = s.ReadFile(tk, f, int64(round)*100, 300)
				case 2:
					_, err = s.WriteFile(tk, f, int64(round)*50, 100)
				case 3:
					var p zone.Page
					if p, err = s.AllocPages(tk, gfp.Kernel|gfp.NoWarn, 0); err == nil {
						held = append(held, p)
					}
				}
				if errors.Is(err, mmsim.ErrKilled) {
					break
				}
				if err != nil && !errors.Is(err, mmsim.ErrNoMemory) && !errors.Is(err, mmsim.ErrDeadlock) {
					return err
				}
			}
			for _, p := range held {
				if err := s.FreePages(tk, p, 0); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// daemonGoroutines counts the goroutines errgroups started that are still
// there (started or not): outside pressureWorkers, the daemons'.
func daemonGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "created by golang.org/x/sync/errgroup.(*Group).Go")
}

// TestAsyncMode runs the pressure workload with the daemons on their own
// goroutines: kswapd and the flushers run, the machine stays consistent,
// and Close stops every goroutine it started.
func TestAsyncMode(t *testing.T) {
	cfg := pressureConfig(4096)
	cfg.Async = true
	s, err := mmsim.New(cfg)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, daemonGoroutines(), 4, "kswapd, kcompactd, the flushers and the reaper have goroutines")
	require.NoError(t, pressureWorkers(s, 6))
	s.RunUntilIdle(10 * time.Second)
	assert.Positive(t, s.Reclaim().Kswapd(0).Runs(), "kswapd ran on its goroutine")
	assert.Positive(t, s.Reclaim().Flusher().Written(), "the flushers ran on theirs")
	require.NoError(t, s.CheckInvariants())
	require.NoError(t, s.Close())
	for i := 0; daemonGoroutines() > 0 && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	require.Zero(t, daemonGoroutines(), "Close stops the daemons' goroutines")
	_, err = s.AllocPages(s.NewTask("late"), gfp.Kernel, 0)
	require.ErrorIs(t, err, mmsim.ErrClosed)
}

// TestOOMSysctls: panic_on_oom reports the panic instead of killing;
// oom_kill_allocating_task kills the allocating task, not the largest.
//
// Reference: mm/oom_kill.c:check_panic_on_oom(), out_of_memory().
func TestOOMSysctls(t *testing.T) {
	t.Run("panic_on_oom", func(t *testing.T) {
		cfg := pressureConfig(0)
		cfg.PanicOnOOM = 1
		s := newSystem(t, cfg)
		hog := s.NewTask("hog")
		_, err := s.TouchAnon(hog, 1<<20)
		require.Error(t, err)
		assert.Zero(t, s.OOM().Kills())
		panics := reportsOf(s, bug.Panic)
		require.Len(t, panics, 1, "reported once")
		assert.True(t, strings.HasSuffix(panics[0].Text, "\nKernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled\n"+
			"---[ end Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled ]---"), panics[0].Text)
	})
	t.Run("oom_kill_allocating_task", func(t *testing.T) {
		cfg := pressureConfig(0)
		cfg.OOMKillAllocatingTask = true
		s := newSystem(t, cfg)
		big, small := s.NewTask("big"), s.NewTask("small")
		_, err := s.TouchAnon(big, 15000)
		require.NoError(t, err)
		_, err = s.TouchAnon(small, 1<<20)
		require.ErrorIs(t, err, mmsim.ErrKilled)
		assert.True(t, s.Killed(small))
		assert.False(t, s.Killed(big))
		kills := reportsOf(s, bug.OOM)
		require.NotEmpty(t, kills)
		assert.Contains(t, kills[0].Text, "\nOut of memory (oom_kill_allocating_task): Killed process 1001 (small)")
	})
}

// TestLatencyCallSites: with call sites on, each AllocPages call site has
// its own histogram.
func TestLatencyCallSites(t *testing.T) {
	s := newSystem(t, pressureConfig(0))
	tk := s.NewTask("lat")
	s.EnableLatency(true)
	for range 3 {
		_, err := s.AllocPages(tk, gfp.Kernel, 0)
		require.NoError(t, err)
	}
	_, err := s.AllocPages(tk, gfp.NoFS, 0)
	require.NoError(t, err)
	hists, keys := s.Latency()
	require.Len(t, keys, 2)
	for _, k := range keys {
		assert.Contains(t, k, " @ reclaim_test.go:")
	}
	assert.Equal(t, int64(3), hists[keys[0]].Count())
	assert.True(t, strings.HasPrefix(keys[0], "GFP_KERNEL @ "))
}

// TestKswapdBalancedRunIsNoFailure: a kswapd run that finds the node
// balanced leaves kswapd_failures alone (balance_pgdat's goto out), so
// wakeups of a balanced node never make it hopeless.
//
// Reference: mm/vmscan.c:balance_pgdat().
func TestKswapdBalancedRunIsNoFailure(t *testing.T) {
	s := newSystem(t, pressureConfig(0))
	n := s.Nodes()[0]
	k := s.Reclaim().Kswapd(0)
	for range 20 {
		s.Reclaim().WakeKswapd(n, 0, gfp.ZoneNormal, gfp.Kernel)
		s.RunUntilIdle(time.Second)
	}
	assert.Equal(t, int64(20), k.Runs())
	assert.Zero(t, k.Failures())
}

// TestPageCacheSecondReadActivates: the read that brings a page in marks it
// accessed; the second read activates it.
//
// Reference: mm/filemap.c:filemap_read(), mm/swap.c:folio_mark_accessed().
func TestPageCacheSecondReadActivates(t *testing.T) {
	s := newSystem(t, pressureConfig(0))
	r := s.NewTask("reader")
	f := s.NewFile("f", 0)
	_, err := s.ReadFile(r, f, 0, 10)
	require.NoError(t, err)
	z := s.Nodes()[0].Zone(gfp.ZoneDMA32)
	assert.Equal(t, int64(10), z.State(zone.ZoneNrZoneInactiveFile))
	_, err = s.ReadFile(r, f, 0, 10)
	require.NoError(t, err)
	assert.Equal(t, int64(10), z.State(zone.ZoneNrZoneActiveFile), "the second read activates")
}

// TestReclaimSkipsHigherZones: a GFP_DMA32 request reclaims only DMA32's
// page cache; isolation passes over the Normal zone's folios, counts them
// in pgskip_normal and in pgscan, and leaves them on the list.
//
// Reference: mm/vmscan.c:isolate_lru_folios().
func TestReclaimSkipsHigherZones(t *testing.T) {
	cfg := smallConfig(4096)
	cfg.Nodes[0].Zones = append(cfg.Nodes[0].Zones[1:], mmsim.ZoneConfig{Type: gfp.ZoneNormal, StartPFN: 1 << 20, Spanned: 8192, Present: 8192, Managed: 8192})
	s := newSystem(t, cfg)
	r := s.NewTask("reader")
	// The older file fits Normal, the preferred zone; the newer one
	// spills into DMA32. The inactive list's tail holds Normal's folios.
	for _, name := range []string{"old", "new"} {
		_, err := s.ReadFile(r, s.NewFile(name, 0), 0, 5500)
		require.NoError(t, err)
	}
	req := s.NewTask("dma32")
	for i := 0; i < 2000; i++ {
		_, err := s.AllocPages(req, gfp.Kernel|gfp.DMA32, 0)
		require.NoError(t, err, "DMA32's clean page cache is reclaimed")
	}
	st := vmstat(t, s)
	assert.Positive(t, st["pgskip_normal"], "Normal's folios were passed over")
	assert.Zero(t, st["pgskip_dma32"])
	assert.GreaterOrEqual(t, st["pgscan_direct"]+st["pgscan_kswapd"], st["pgskip_normal"], "skipped pages count as scanned")
	assert.Positive(t, s.Nodes()[0].Zone(gfp.ZoneNormal).State(zone.ZoneNrZoneInactiveFile)+s.Nodes()[0].Zone(gfp.ZoneNormal).State(zone.ZoneNrZoneActiveFile), "Normal keeps its page cache")
	require.NoError(t, s.CheckInvariants())
}
