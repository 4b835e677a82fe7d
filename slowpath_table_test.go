package mmsim_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// The slow-path outcome table: mask × order × scope × memory state →
// what the request gets. Each expectation is derived from the kernel's
// rules (SPEC.md §6.4, §6.8, §8.2), not observed.
//
// Reference: mm/page_alloc.c:__alloc_pages_slowpath(), __alloc_pages_may_oom(),
// mm/oom_kill.c:out_of_memory().

type outcome string

const (
	ok      outcome = "ok"     // the request got its page, nobody killed
	okAfter outcome = "oom+ok" // the OOM killer killed the hog, then the request got its page
	fail    outcome = "fail"   // ErrNoMemory, nobody killed
	stall   outcome = "stall"  // ErrDeadlock at the stall limit, nobody killed
)

// fullMachine fills pressureConfig's memory. "anon": a killable hog holds
// 14000 pages of anonymous memory (no swap: only the OOM killer can free
// them) and an unkillable task's GFP_KERNEL|__GFP_NORETRY pages take the
// rest — they stop at the min watermark without reaching the OOM killer —
// filling again after kswapd has run and dropped the watermark boosts the
// fill's fallbacks raised (and kcompactd, woken for them, has drained the
// per-cpu lists), until nothing more fits. "cache": the unkillable task takes all but 12000
// pages, and a reader fills those with clean page cache, read twice as
// far as memory goes.
func fullMachine(t *testing.T, state string) *mmsim.System {
	s := newSystem(t, pressureConfig(0))
	filler := s.NewTask("filler")
	require.NoError(t, s.SetOOMScoreAdj(filler, -1000))
	fill := func(limit int) int {
		for n := 0; n < limit; n++ {
			if _, err := s.AllocPages(filler, gfp.Kernel|gfp.NoRetry|gfp.NoWarn, 0); err != nil {
				require.ErrorIs(t, err, mmsim.ErrNoMemory)
				return n
			}
		}
		return limit
	}
	switch state {
	case "anon":
		hog := s.NewTask("hog")
		_, err := s.TouchAnon(hog, 14000)
		require.NoError(t, err)
		// Until a fixpoint: each fill's fallbacks may boost a zone's
		// watermarks, which kswapd drops when it runs, and kcompactd
		// (woken for the boost) drains the per-cpu lists.
		full := false
		for range 50 {
			s.RunUntilIdle(time.Second)
			if full = fill(1<<30) == 0; full {
				break
			}
		}
		require.True(t, full, "the fill reaches a fixpoint")
	case "cache":
		fill(20224 - 12000)
		r := s.NewTask("reader")
		require.NoError(t, s.SetOOMScoreAdj(r, -1000))
		f := s.NewFile("cache", 0)
		_, err := s.ReadFile(r, f, 0, 24000)
		require.NoError(t, err)
		require.Greater(t, s.CachedPages(f), int64(10000), "memory is full of clean page cache")
	}
	require.Zero(t, s.OOM().Kills())
	return s
}

func TestSlowPathOutcomes(t *testing.T) {
	for _, tc := range []struct {
		state string
		mask  gfp.Mask
		order zone.Order
		scope memalloc.Flags
		want  outcome
		warn  bool
		why   string
	}{
		{"anon", gfp.Kernel, 0, 0, okAfter, false, "blocking, __GFP_FS, order <= 3, highest zone Normal: OOM kill"},
		{"anon", gfp.NoFS, 0, 0, stall, false, "out_of_memory() reports progress without a kill for !__GFP_FS"},
		{"anon", gfp.Kernel, 0, memalloc.PFMemallocNoFS, stall, false, "the NOFS scope clears __GFP_FS"},
		{"anon", gfp.NoIO, 0, 0, stall, false, "GFP_NOIO has no __GFP_FS either"},
		{"anon", gfp.NoWait, 0, 0, fail, false, "no direct reclaim: nopage after the reserves retry"},
		{"anon", gfp.Atomic, 0, 0, ok, false, "__GFP_HIGH|NON_BLOCK reaches 3/8 of min, below where the filler stopped"},
		{"anon", gfp.Kernel | gfp.NoRetry, 0, 0, fail, false, "__GFP_NORETRY stops after one reclaim round"},
		{"anon", gfp.Kernel | gfp.RetryMayFail, 0, 0, fail, false, "__GFP_RETRY_MAYFAIL never OOM-kills"},
		{"anon", gfp.Kernel, 4, 0, fail, false, "costly order without RETRY_MAYFAIL stops before the OOM killer"},
		{"anon", gfp.Kernel | gfp.DMA32, 0, 0, fail, false, "highest zone below Normal: no OOM kill"},
		{"anon", gfp.Kernel | gfp.NoFail, 0, 0, okAfter, false, "blocking NOFAIL: OOM kill, then the page"},
		{"anon", gfp.NoWait | gfp.NoFail, 0, 0, fail, true, "NOFAIL without direct reclaim: WARN_ON_ONCE and NULL"},
		{"anon", gfp.Kernel, 0, memalloc.PFMemallocNoReclaim, fail, false, "the NORECLAIM what-if clears __GFP_DIRECT_RECLAIM"},
		{"anon", gfp.Kernel | gfp.NoFail, 0, memalloc.PFMemallocNoReclaim, fail, true, "NOFAIL inside NORECLAIM: WARN and NULL"},
		{"anon", gfp.Kernel, 0, memalloc.PFMemalloc, ok, false, "PF_MEMALLOC: ALLOC_NO_WATERMARKS"},
		{"anon", gfp.Kernel | gfp.NoMemalloc, 0, memalloc.PFMemalloc, fail, false, "PF_MEMALLOC with NOMEMALLOC: no reserves, no reclaim recursion"},
		{"cache", gfp.Kernel, 0, 0, ok, false, "clean page cache is reclaimed"},
		{"cache", gfp.NoFS, 0, 0, ok, false, "clean page cache needs no __GFP_FS"},
		{"cache", gfp.NoIO, 0, 0, ok, false, "nor __GFP_IO"},
	} {
		name := tc.mask.String()
		if tc.scope != 0 {
			name += "/" + tc.scope.String()
		}
		t.Run(tc.state+"/"+name+"/order"+string(rune('0'+tc.order)), func(t *testing.T) {
			s := fullMachine(t, tc.state)
			req := s.NewTask("requester")
			var cookie memalloc.Flags
			if tc.scope != 0 {
				cookie = req.SaveFlags(tc.scope)
			}
			_, err := s.AllocPages(req, tc.mask|gfp.NoWarn, tc.order)
			if tc.scope != 0 {
				req.Restore(cookie)
			}
			var got outcome
			switch {
			case err == nil && s.OOM().Kills() > 0:
				got = okAfter
			case err == nil:
				got = ok
			case errors.Is(err, mmsim.ErrDeadlock):
				got = stall
			case errors.Is(err, mmsim.ErrNoMemory) && s.OOM().Kills() == 0:
				got = fail
			default:
				t.Fatalf("unexpected: %v (kills %d)", err, s.OOM().Kills())
			}
			assert.Equal(t, tc.want, got, "%s: %v", tc.why, err)
			assert.Equal(t, tc.warn, len(reportsOf(s, bug.Warn)) > 0, "WARN")
			if got == stall {
				assert.NotErrorIs(t, err, mmsim.ErrNoMemory)
			}
			require.NoError(t, s.CheckInvariants())
		})
	}
}
