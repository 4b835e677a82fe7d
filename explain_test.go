package mmsim_test

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// requireKindsInOrder checks that the explanation's steps contain kinds
// as a subsequence: each in turn, after the one before.
func requireKindsInOrder(t testing.TB, e *zone.Explanation, kinds ...zone.StepKind) {
	t.Helper()
	i := 0
	for _, s := range e.Steps {
		if i < len(kinds) && s.Kind == kinds[i] {
			i++
		}
	}
	require.Equal(t, len(kinds), i, "steps should contain %v in order (missing from %v)\n%s",
		kinds, kinds[min(i, len(kinds)-1)], brief(e))
}

// requirePhrases checks that String() says each phrase.
func requirePhrases(t testing.TB, e *zone.Explanation, phrases ...string) {
	t.Helper()
	out := e.String()
	for _, p := range phrases {
		if !strings.Contains(out, p) {
			t.Fatalf("the explanation does not say %q:\n%s", p, brief(e))
		}
	}
}

// brief is an explanation's text cut to its first and last lines, for
// failure messages.
func brief(e *zone.Explanation) string {
	lines := strings.Split(e.String(), "\n")
	if len(lines) <= 120 {
		return strings.Join(lines, "\n")
	}
	return strings.Join(lines[:80], "\n") + fmt.Sprintf("\n... %d lines ...\n", len(lines)-120) +
		strings.Join(lines[len(lines)-40:], "\n")
}

// drainWith allocates with mask until the allocator refuses, and keeps
// the pages: it brings a machine down to where mask stops.
func drainWith(t *testing.T, s *mmsim.System, mask gfp.Mask) {
	t.Helper()
	tk := s.NewTask("drainer")
	for {
		if _, err := s.AllocPages(tk, mask|gfp.NoWarn, 0); err != nil {
			require.ErrorIs(t, err, mmsim.ErrNoMemory)
			return
		}
	}
}

// victimMachine is fullMachine("anon") with its hog made an OOM victim
// whose memory is not reaped yet: a blocking NOFAIL request of another task
// kills it and is served at once from the reserves, before the reaper's
// delay has passed. It returns the hog. (fullMachine keeps its hog to
// itself, so this builds the same machine the same way.)
func victimMachine(t *testing.T) (*mmsim.System, *memalloc.Task) {
	t.Helper()
	s := newSystem(t, pressureConfig(0))
	filler := s.NewTask("filler")
	require.NoError(t, s.SetOOMScoreAdj(filler, -1000))
	hog := s.NewTask("hog")
	_, err := s.TouchAnon(hog, 14000)
	require.NoError(t, err)
	full := false
	for range 50 {
		s.RunUntilIdle(time.Second)
		n := 0
		for ; ; n++ {
			if _, err := s.AllocPages(filler, gfp.Kernel|gfp.NoRetry|gfp.NoWarn, 0); err != nil {
				require.ErrorIs(t, err, mmsim.ErrNoMemory)
				break
			}
		}
		if full = n == 0; full {
			break
		}
	}
	require.True(t, full, "the fill reaches a fixpoint")
	killer := s.NewTask("killer")
	p, err := s.AllocPages(killer, gfp.Kernel|gfp.NoFail|gfp.NoWarn, 0)
	require.NoError(t, err)
	require.NoError(t, s.FreePages(killer, p, 0))
	require.Equal(t, int64(1), s.OOM().Kills())
	require.True(t, s.Killed(hog))
	return s, hog
}

// TestExplainSlowPathBranches explains one request per branch of the slow
// path on a machine in the state that takes it, and checks the steps (their
// kinds, in order) and the words. The machines are those of the slow-path
// outcome table: "anon" is full of unreclaimable anonymous memory with a
// killable hog; "cache" is full of clean page cache.
//
// Reference: mm/page_alloc.c:__alloc_pages_slowpath(), __alloc_pages_may_oom(),
// should_reclaim_retry(), __gfp_pfmemalloc_flags(), gfp_to_alloc_flags().
func TestExplainSlowPathBranches(t *testing.T) {
	type tc struct {
		name string
		// state is "anon" or "cache" (fullMachine), "victim" (anon, the
		// hog killed but not reaped: the hog asks), "anon-atomic" (anon
		// drained by GFP_ATOMIC), "cache-nowait" (cache drained by
		// GFP_NOWAIT: below the min watermark, reclaimable page cache).
		state   string
		warn    bool // leave __GFP_NOWARN out
		mask    gfp.Mask
		order   zone.Order
		scope   memalloc.Flags
		outcome zone.Outcome
		kinds   []zone.StepKind
		phrases []string
	}
	const (
		SP  = zone.StepSlowPath
		AF  = zone.StepAllocFlags
		KS  = zone.StepKswapd
		FL  = zone.StepFreelist
		WM  = zone.StepWatermark
		RS  = zone.StepReserves
		NP  = zone.StepNoPage
		RT  = zone.StepRetry
		RE  = zone.StepReclaim
		CO  = zone.StepCompact
		RR  = zone.StepReclaimRetry
		CR  = zone.StepCompactRetry
		OOM = zone.StepOOM
		NF  = zone.StepNoFail
		WA  = zone.StepWarn
		ST  = zone.StepStall
		DL  = zone.StepDeadlock
		FA  = zone.StepFailed
		GP  = zone.StepGotPage
		RST = zone.StepRestart
		HA  = zone.StepHighatomic
	)
	for _, c := range []tc{
		{name: "GFP_KERNEL: reclaim finds nothing, the OOM killer kills the hog, the page follows",
			state: "anon", mask: gfp.Kernel, outcome: zone.OutcomeAfterOOM,
			kinds: []zone.StepKind{SP, AF, KS, FL, WM, RS, RE, RE, CO, RST, RR, HA, CR, FL, OOM, OOM, RT, GP},
			phrases: []string{"gfp_to_alloc_flags -> ALLOC_WMARK_MIN|ALLOC_CPUSET|ALLOC_KSWAPD (0x840)",
				"wakeup_kswapd node 0 order 0 highest zone Normal", "may enter fs: yes", "lockdep fs_reclaim map: taken",
				"0 pages reclaimed", "should_reclaim_retry: no_progress_loops 1", "unreserve_highatomic_pageblock(force=true)",
				"one more look at the high watermark", "OOM: oom_kill_process killed pid", "(hog)",
				"out_of_memory() -> true: a victim was killed", "outcome: page from the slow path after the OOM killer ran"}},
		{name: "NOFS scope: reclaim may not enter the fs, out_of_memory never kills, the stall limit ends it",
			state: "anon", warn: true, mask: gfp.Kernel, scope: memalloc.PFMemallocNoFS, outcome: zone.OutcomeStalled,
			kinds: []zone.StepKind{SP, AF, RE, RE, OOM, RT, zone.StepElided, zone.StepReport, ST, DL},
			phrases: []string{"__GFP_FS removed by PF_MEMALLOC_NOFS", "effective 0xc40(GFP_NOFS)",
				"may enter fs: no (__GFP_FS removed by PF_MEMALLOC_NOFS scope", "may do io: yes",
				"lockdep fs_reclaim map: not taken", "a request without __GFP_FS (__GFP_FS removed by PF_MEMALLOC_NOFS scope) never gets a kill",
				"check_alloc_stall_warn: 10.", `reported ("page allocation stall for N secs")`,
				"requester: page allocation stall for 10 secs: order:0, mode:0xc40(GFP_NOFS)",
				"mmsim stall limit", "ErrDeadlock",
				"outcome: stalled"}},
		{name: "GFP_NOIO: no __GFP_IO, so no __GFP_FS and no compaction",
			state: "anon", mask: gfp.NoIO | gfp.NoRetry, outcome: zone.OutcomeFailed,
			kinds: []zone.StepKind{SP, RE, RE, CO, NP, FA},
			phrases: []string{"can_compact no (gfp_compaction_allowed needs __GFP_IO: __GFP_IO not in the request)",
				"may enter fs: no (__GFP_FS not in the request", "may do io: no (__GFP_IO not in the request"}},
		{name: "GFP_NOWAIT: !can_direct_reclaim goes to nopage after the first attempt",
			state: "anon", mask: gfp.NoWait, outcome: zone.OutcomeFailed,
			kinds: []zone.StepKind{SP, AF, KS, FL, WM, RS, NP, RST, FA},
			phrases: []string{"ALLOC_WMARK_MIN|ALLOC_NON_BLOCK|ALLOC_CPUSET|ALLOC_KSWAPD (0x850)",
				"no __GFP_DIRECT_RECLAIM -> ALLOC_NON_BLOCK", "can_direct_reclaim no (__GFP_DIRECT_RECLAIM not in the request)",
				"!can_direct_reclaim (__GFP_DIRECT_RECLAIM not in the request): the caller will not reclaim: goto nopage",
				"warn_alloc(\"page allocation failure: order:0\"", "silent: __GFP_NOWARN"}},
		{name: "GFP_ATOMIC: reaches 3/8 of min where GFP_KERNEL stops",
			state: "anon", mask: gfp.Atomic, outcome: zone.OutcomeSlowPath,
			kinds: []zone.StepKind{SP, AF, KS, FL, WM, GP},
			phrases: []string{"ALLOC_WMARK_MIN|ALLOC_NON_BLOCK|ALLOC_MIN_RESERVE|ALLOC_KSWAPD (0x830)",
				"__GFP_HIGH -> ALLOC_MIN_RESERVE", "atomic ALLOC_MIN_RESERVE may ignore cpuset mems: no ALLOC_CPUSET",
				"watermark min ok: free 166 > min 230 lowered to 87 for the reserves"}},
		{name: "GFP_ATOMIC below its reserves: no ALLOC_CPUSET retries once at once, then nopage",
			state: "anon-atomic", mask: gfp.Atomic, outcome: zone.OutcomeFailed,
			kinds: []zone.StepKind{SP, AF, FL, WM, RS, RT, KS, FL, WM, NP, FA},
			phrases: []string{"goto retry (#1): no ALLOC_CPUSET: the nodemask is dropped",
				"!can_direct_reclaim (__GFP_DIRECT_RECLAIM not in the request)"}},
		{name: "GFP_ATOMIC order 1: ALLOC_HIGHATOMIC",
			state: "anon", mask: gfp.Atomic, order: 1, outcome: zone.OutcomeSlowPath,
			kinds: []zone.StepKind{SP, AF, FL, GP},
			phrases: []string{"0xa30", "order > 0 with ALLOC_MIN_RESERVE -> ALLOC_HIGHATOMIC",
				"no compact_first: the request cannot compact"}},
		{name: "__GFP_NORETRY: one round of reclaim, then nopage",
			state: "anon", mask: gfp.Kernel | gfp.NoRetry, outcome: zone.OutcomeFailed,
			kinds:   []zone.StepKind{SP, RE, RE, CO, NP, FA},
			phrases: []string{"__GFP_NORETRY: do not loop: goto nopage"}},
		{name: "__GFP_RETRY_MAYFAIL: reclaim retries run out, no OOM kill",
			state: "anon", mask: gfp.Kernel | gfp.RetryMayFail, outcome: zone.OutcomeFailed,
			kinds:   []zone.StepKind{SP, RE, RR, HA, OOM, NP, FA},
			phrases: []string{"OOM killer not invoked: __GFP_RETRY_MAYFAIL", "__alloc_pages_may_oom made no progress"}},
		{name: "costly order without __GFP_RETRY_MAYFAIL: compaction first, then nopage",
			state: "anon", mask: gfp.Kernel, order: 4, outcome: zone.OutcomeFailed,
			kinds: []zone.StepKind{SP, SP, AF, RS, RE, CO, RT, RE, RE, CO, NP, FA},
			phrases: []string{"compact_first: costly order 4", "INIT_COMPACT_PRIORITY (COMPACT_PRIO_ASYNC)",
				"compact_first: no direct reclaim in this round", "try_to_compact_pages(order 4, prio COMPACT_PRIO_ASYNC)",
				"compact_first done: reclaim and compact from now on; compact_priority back to DEF_COMPACT_PRIORITY",
				"costly order 4 > PAGE_ALLOC_COSTLY_ORDER without __GFP_RETRY_MAYFAIL: no retry: goto nopage"}},
		{name: "costly order with __GFP_RETRY_MAYFAIL: the OOM killer will not help high orders",
			state: "anon", mask: gfp.Kernel | gfp.RetryMayFail, order: 4, outcome: zone.OutcomeFailed,
			kinds: []zone.StepKind{SP, CO, RT, RE, CO, RR, CR, OOM, NP, FA},
			phrases: []string{"should_compact_retry not consulted: no reclaim progress",
				"OOM killer not invoked: order 4 > PAGE_ALLOC_COSTLY_ORDER"}},
		{name: "GFP_KERNEL|__GFP_DMA32: no OOM kill for lowmem",
			state: "anon", mask: gfp.Kernel | gfp.DMA32, outcome: zone.OutcomeFailed,
			kinds:   []zone.StepKind{SP, RE, RR, OOM, NP, FA},
			phrases: []string{"OOM killer not invoked: highest zone DMA32 < ZONE_NORMAL"}},
		{name: "blocking __GFP_NOFAIL: the OOM kill, then ALLOC_NO_WATERMARKS",
			state: "anon", mask: gfp.Kernel | gfp.NoFail, outcome: zone.OutcomeAfterOOM,
			kinds: []zone.StepKind{SP, OOM, OOM, FL, WM, GP},
			phrases: []string{"nofail yes", "OOM: oom_kill_process killed pid",
				"__GFP_NOFAIL: __alloc_pages_cpuset_fallback with ALLOC_NO_WATERMARKS",
				"but ALLOC_NO_WATERMARKS: take a page anyway"}},
		{name: "non-blocking __GFP_NOFAIL: WARN_ON_ONCE and NULL",
			state: "anon", mask: gfp.NoWait | gfp.NoFail, outcome: zone.OutcomeFailed,
			kinds: []zone.StepKind{SP, WA, AF, NP, NF, FA},
			phrases: []string{"WARN_ON_ONCE(!can_direct_reclaim)",
				"nopage: __GFP_NOFAIL but !can_direct_reclaim: the unreasonable request gets NULL: goto fail"}},
		{name: "the NORECLAIM what-if scope clears __GFP_DIRECT_RECLAIM",
			state: "anon", mask: gfp.Kernel, scope: memalloc.PFMemallocNoReclaim, outcome: zone.OutcomeFailed,
			kinds: []zone.StepKind{SP, AF, RS, NP, FA},
			phrases: []string{"__GFP_DIRECT_RECLAIM removed by PF_MEMALLOC_NORECLAIM",
				"!can_direct_reclaim (__GFP_DIRECT_RECLAIM removed by PF_MEMALLOC_NORECLAIM scope)"}},
		{name: "PF_MEMALLOC: ALLOC_NO_WATERMARKS, retried at once",
			state: "anon", mask: gfp.Kernel, scope: memalloc.PFMemalloc, outcome: zone.OutcomeSlowPath,
			kinds: []zone.StepKind{SP, AF, FL, WM, RS, RT, FL, WM, GP},
			phrases: []string{"task flags: PF_MEMALLOC", "__gfp_pfmemalloc_flags -> ALLOC_NO_WATERMARKS (PF_MEMALLOC",
				"goto retry (#1): can_retry_reserves", "but ALLOC_NO_WATERMARKS: take a page anyway"}},
		{name: "__GFP_MEMALLOC: ALLOC_NO_WATERMARKS in any context",
			state: "anon", mask: gfp.Kernel | gfp.Memalloc, outcome: zone.OutcomeSlowPath,
			kinds:   []zone.StepKind{SP, RS, RT, GP},
			phrases: []string{"__gfp_pfmemalloc_flags -> ALLOC_NO_WATERMARKS (__GFP_MEMALLOC)"}},
		{name: "PF_MEMALLOC with __GFP_NOMEMALLOC: no reserves, and the recursion guard",
			state: "anon", mask: gfp.Kernel | gfp.NoMemalloc, scope: memalloc.PFMemalloc, outcome: zone.OutcomeFailed,
			kinds: []zone.StepKind{SP, RS, NP, FA},
			phrases: []string{"__GFP_NOMEMALLOC denies them, even to this PF_MEMALLOC task",
				"current->flags & PF_MEMALLOC: avoid recursion of direct reclaim: goto nopage"}},
		{name: "__GFP_NOFAIL from PF_MEMALLOC: WARN, the guard, then ALLOC_MIN_RESERVE at nopage",
			state: "anon", mask: gfp.Kernel | gfp.NoFail | gfp.NoMemalloc, scope: memalloc.PFMemalloc, outcome: zone.OutcomeSlowPath,
			kinds: []zone.StepKind{SP, WA, NP, RST, FL, WM, GP},
			phrases: []string{"WARN_ON_ONCE(current->flags & PF_MEMALLOC)",
				"nopage: __GFP_NOFAIL: __alloc_pages_cpuset_fallback with ALLOC_MIN_RESERVE"}},
		{name: "the OOM victim gets ALLOC_OOM",
			state: "victim", mask: gfp.Kernel, outcome: zone.OutcomeSlowPath,
			kinds:   []zone.StepKind{SP, RS, RT, FL, WM, GP},
			phrases: []string{"ALLOC_OOM (tsk_is_oom_victim(current) (TIF_MEMDIE)", "ALLOC_WMARK_MIN|ALLOC_OOM|ALLOC_KSWAPD"}},
		{name: "the OOM victim with __GFP_NOMEMALLOC: nopage after out_of_memory",
			state: "victim", mask: gfp.Kernel | gfp.NoMemalloc, outcome: zone.OutcomeFailed,
			kinds: []zone.StepKind{SP, RS, RE, RR, OOM, NP, FA},
			phrases: []string{"__GFP_NOMEMALLOC denies them",
				"tsk_is_oom_victim(current) with __GFP_NOMEMALLOC: avoid looping with no watermarks: goto nopage"}},
		{name: "clean page cache: direct reclaim makes progress and the page follows",
			state: "cache-nowait", mask: gfp.Kernel, outcome: zone.OutcomeSlowPath,
			kinds: []zone.StepKind{SP, RE, RE, FL, WM, zone.StepFallback, zone.StepFallback, zone.StepPCP, KS, GP},
			phrases: []string{"pages reclaimed", "after direct reclaim: get_page_from_freelist",
				"boost_watermark: a fallback into a Movable pageblock raised watermark_boost to 512 and set ZONE_BOOSTED_WATERMARK",
				"rmqueue: ZONE_BOOSTED_WATERMARK set and ALLOC_KSWAPD: clear it and wakeup_kswapd"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s *mmsim.System
			var req *memalloc.Task
			switch c.state {
			case "victim":
				s, req = victimMachine(t)
			case "anon-atomic":
				s = fullMachine(t, "anon")
				drainWith(t, s, gfp.Atomic)
			case "cache-nowait":
				s = fullMachine(t, "cache")
				drainWith(t, s, gfp.NoWait)
			default:
				s = fullMachine(t, c.state)
			}
			if req == nil {
				req = s.NewTask("requester")
			}
			mask := c.mask
			if !c.warn {
				mask |= gfp.NoWarn
			}
			var cookie memalloc.Flags
			if c.scope != 0 {
				cookie = req.SaveFlags(c.scope)
			}
			e, err := s.Explain(req, mask, c.order)
			if c.scope != 0 {
				req.Restore(cookie)
			}
			require.NoError(t, err)
			require.Equal(t, c.outcome, e.Outcome, "%v\n%s", e.Err, e)
			requireKindsInOrder(t, e, c.kinds...)
			requirePhrases(t, e, c.phrases...)
			if e.Err == nil {
				require.NoError(t, s.FreePages(req, e.Page, c.order))
			}
			require.NoError(t, s.CheckInvariants())
		})
	}
}

// TestExplainFastPathMatchesZoneinfo explains a request the fast path
// serves and checks the watermark check's numbers against /proc/zoneinfo
// read just before: "pages free", the high watermark, the protection.
//
// Reference: mm/page_alloc.c:get_page_from_freelist(), zone_watermark_fast();
// mm/vmstat.c:zoneinfo_show_print().
func TestExplainFastPathMatchesZoneinfo(t *testing.T) {
	s := newSystem(t, mmsim.DefaultConfig())
	tk := s.NewTask("fast")
	var b bytes.Buffer
	require.NoError(t, s.WriteZoneinfo(&b))
	zi := parseZoneinfo(t, b.String(), "Normal")

	e, err := s.Explain(tk, gfp.Kernel, 0)
	require.NoError(t, err)
	defer func() { require.NoError(t, s.FreePages(tk, e.Page, 0)) }()
	require.NoError(t, e.Err)
	require.Equal(t, zone.OutcomeFastPath, e.Outcome)
	require.Equal(t, gfp.Kernel, e.Effective)
	require.Equal(t, gfp.ZoneNormal, e.HighestZone)
	require.Equal(t, gfp.MigrateUnmovable, e.Migratetype)
	requireKindsInOrder(t, e, zone.StepPrepare, zone.StepFreelist, zone.StepWatermark, zone.StepPCP, zone.StepGotPage)
	var wm zone.Step
	for _, s := range e.Steps {
		if s.Kind == zone.StepWatermark {
			wm = s
			break
		}
	}
	require.Equal(t, "Node 0, zone Normal", wm.Zone)
	require.True(t, wm.OK)
	assert.Equal(t, zi["pages free"], wm.Free, "free pages as zoneinfo prints them")
	assert.Equal(t, zi["high"], wm.Mark, "the high watermark as zoneinfo prints it")
	assert.Equal(t, zi["protection Normal"], wm.Reserve, "lowmem_reserve[ZONE_NORMAL]: zoneinfo's protection")
	assert.Equal(t, zone.AllocFlags(0x901), wm.AllocFlags, "ALLOC_WMARK_LOW|ALLOC_NOFRAGMENT|ALLOC_KSWAPD")
	requirePhrases(t, e,
		fmt.Sprintf("Node 0, zone Normal: watermark high ok: free %d > high %d + lowmem_reserve 0 "+
			"(ALLOC_WMARK_LOW|ALLOC_NOFRAGMENT|ALLOC_KSWAPD)", zi["pages free"], zi["high"]),
		"fast path: get_page_from_freelist(GFP_KERNEL, ALLOC_WMARK_LOW|ALLOC_NOFRAGMENT|ALLOC_KSWAPD)",
		"rmqueue_pcplist: CPU 0's pcp list order 0 migratetype Unmovable empty: rmqueue_bulk refilled",
		"outcome: page from the fast path: pfn=0x")
	require.NotEmpty(t, e.Zone)
	require.Zero(t, e.Retries)
}

// parseZoneinfo returns the numbers of a zone's block of /proc/zoneinfo:
// "pages free", "min", "low", "high", and "protection <zone>".
func parseZoneinfo(t *testing.T, text, zoneName string) map[string]int64 {
	t.Helper()
	head := fmt.Sprintf("Node 0, zone %8s", zoneName)
	i := strings.Index(text, head)
	require.GreaterOrEqual(t, i, 0, "zone %s in zoneinfo", zoneName)
	block := text[i+len(head):]
	if j := strings.Index(block, "Node "); j > 0 {
		block = block[:j]
	}
	out := map[string]int64{}
	for _, line := range strings.Split(block, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "pages" && f[1] == "free":
			out["pages free"], _ = strconv.ParseInt(f[2], 10, 64)
		case len(f) == 2 && (f[0] == "min" || f[0] == "low" || f[0] == "high"):
			out[f[0]], _ = strconv.ParseInt(f[1], 10, 64)
		case len(f) > 1 && f[0] == "protection:":
			nums := strings.FieldsFunc(strings.Join(f[1:], ""), func(r rune) bool { return r == '(' || r == ')' || r == ',' })
			names := []string{"DMA", "DMA32", "Normal", "Movable"}
			for k, n := range nums {
				if k < len(names) {
					out["protection "+names[k]], _ = strconv.ParseInt(n, 10, 64)
				}
			}
		}
	}
	require.Contains(t, out, "pages free")
	return out
}

// TestExplainFallbackClaim explains the first GFP_KERNEL request of a
// fresh machine, whose pageblocks all boot MIGRATE_MOVABLE: the pcp refill
// must fall back and claim a Movable block for Unmovable.
//
// Reference: mm/page_alloc.c:__rmqueue_claim(), try_to_claim_block().
func TestExplainFallbackClaim(t *testing.T) {
	s := newSystem(t, smallConfig(16384))
	tk := s.NewTask("first")
	e, err := s.Explain(tk, gfp.Kernel, 0)
	require.NoError(t, err)
	require.NoError(t, e.Err)
	requireKindsInOrder(t, e, zone.StepFreelist, zone.StepWatermark, zone.StepFallback, zone.StepPCP, zone.StepGotPage)
	requirePhrases(t, e, "fallback: __rmqueue_claim took a free order-10 Movable block",
		"for a Unmovable request of order 0: claimed the whole block (pageblocks re-typed Unmovable)")
	require.NoError(t, s.FreePages(tk, e.Page, 0))
}

// TestExplainScopes checks the mask header: which scope removed which bit.
//
// Reference: include/linux/sched/mm.h:current_gfp_context().
func TestExplainScopes(t *testing.T) {
	s := newSystem(t, smallConfig(16384))
	for _, c := range []struct {
		scope   memalloc.Flags
		mask    gfp.Mask
		eff     gfp.Mask
		phrases []string
	}{
		{memalloc.PFMemallocNoFS, gfp.Kernel, gfp.NoFS, []string{"__GFP_FS removed by PF_MEMALLOC_NOFS"}},
		{memalloc.PFMemallocNoIO | memalloc.PFMemallocNoFS, gfp.Kernel, gfp.NoIO,
			[]string{"__GFP_IO|__GFP_FS removed by PF_MEMALLOC_NOIO", "PF_MEMALLOC_NOFS: no change (already removed by a stronger scope)"}},
		{memalloc.PFMemallocPin, gfp.HighUserMovable, gfp.HighUser, []string{"__GFP_MOVABLE removed by PF_MEMALLOC_PIN"}},
		{memalloc.PFMemallocNoFS, gfp.NoIO, gfp.NoIO, []string{"PF_MEMALLOC_NOFS: no change (the bits it clears are not in the mask)"}},
		{memalloc.PFMemallocNoReclaim | memalloc.PFMemallocNoFS, gfp.Kernel, gfp.Kernel &^ gfp.DirectReclaim,
			[]string{"__GFP_DIRECT_RECLAIM removed by PF_MEMALLOC_NORECLAIM",
				"PF_MEMALLOC_NOFS: no change (current_gfp_context() left __GFP_FS set: an earlier flag took its else-if branch)"}},
	} {
		tk := s.NewTask("scoped")
		cookie := tk.SaveFlags(c.scope)
		e, err := s.Explain(tk, c.mask, 0)
		tk.Restore(cookie)
		require.NoError(t, err)
		require.NoError(t, e.Err)
		require.Equal(t, c.eff, e.Effective, "%s", e)
		requirePhrases(t, e, c.phrases...)
		require.NoError(t, s.FreePages(tk, e.Page, 0))
	}
}

// TestExplainRecordsOnlyItsTask runs other tasks' allocations and frees on
// other goroutines while one task is explained many times over: no
// explanation may contain another task's steps, every explanation must
// be whole, and the race detector must stay quiet.
func TestExplainRecordsOnlyItsTask(t *testing.T) {
	s := newSystem(t, mmsim.DefaultConfig())
	var g errgroup.Group
	stop := make(chan struct{})
	for i := range 3 {
		other := s.NewTask(fmt.Sprintf("other%d", i))
		g.Go(func() error {
			for {
				select {
				case <-stop:
					return nil
				default:
				}
				for o := range zone.Order(4) {
					p, err := s.AllocPages(other, gfp.Kernel, o)
					if err != nil {
						return err
					}
					if err := s.FreePages(other, p, o); err != nil {
						return err
					}
				}
			}
		})
	}
	me := s.NewTask("explained")
	for i := range 200 {
		order := zone.Order(i % 4)
		e, err := s.Explain(me, gfp.Kernel, order)
		if err != nil || e.Err != nil {
			close(stop)
			require.NoError(t, err)
			require.NoError(t, e.Err)
		}
		if e.Task != me.String() || e.Steps[0].Kind != zone.StepPrepare ||
			e.Steps[len(e.Steps)-1].Kind != zone.StepGotPage || e.Order != order {
			close(stop)
			t.Fatalf("explanation %d is not the explained task's alone:\n%s", i, e)
		}
		for _, st := range e.Steps {
			if st.Kind == zone.StepPrepare && st != e.Steps[0] || st.Kind == zone.StepGotPage && st != e.Steps[len(e.Steps)-1] {
				close(stop)
				t.Fatalf("explanation %d has a second allocation in it:\n%s", i, e)
			}
		}
		if err := s.FreePages(me, e.Page, order); err != nil {
			close(stop)
			require.NoError(t, err)
		}
	}
	close(stop)
	require.NoError(t, g.Wait())
	require.NoError(t, s.CheckInvariants())
}

// TestExplainArguments: a nil or foreign task is an error of Explain
// itself; a request the allocator refuses is an explanation with the
// allocation's own error.
func TestExplainArguments(t *testing.T) {
	s := newSystem(t, smallConfig(16384))
	_, err := s.Explain(nil, gfp.Kernel, 0)
	require.ErrorIs(t, err, mmsim.ErrInvalid)
	_, err = s.Explain(memalloc.NewTask("stranger"), gfp.Kernel, 0)
	require.ErrorIs(t, err, mmsim.ErrInvalid)

	tk := s.NewTask("t")
	e, err := s.Explain(tk, gfp.Kernel|gfp.NoWarn, zone.MaxPageOrder+1)
	require.NoError(t, err)
	require.ErrorIs(t, e.Err, mmsim.ErrInvalid)
	require.Equal(t, zone.OutcomeRefused, e.Outcome)
	requireKindsInOrder(t, e, zone.StepRefused)
	requirePhrases(t, e, "order 11 > MAX_PAGE_ORDER (10)", "outcome: refused")

	e, err = s.Explain(tk, gfp.DMA|gfp.DMA32, 0)
	require.NoError(t, err)
	require.True(t, errors.Is(e.Err, mmsim.ErrBug))
	requirePhrases(t, e, "prepare_alloc_pages: gfp_zone")
}

// TestExplainKswapdHopelessWakesKcompactd explains a request that cannot
// reclaim on a node whose kswapd has given up: wakeup_kswapd leaves kswapd
// asleep and wakes kcompactd instead.
//
// The machine: every page is taken with __GFP_MEMALLOC (past every
// watermark and reserve), then every odd pfn is freed, so that half the
// memory is free, far above the high watermarks, but no two free pages are
// buddies: no free block of order 1 or more exists, and no page is on an
// LRU for reclaim to free. Each GFP_NOWAIT order-3 request then fails and
// wakes kswapd for order 3, whose balance_pgdat reclaims nothing: one
// kswapd_failure per wake, MAX_RECLAIM_RETRIES of them make the node
// hopeless. The node is balanced at order 0 but not at order 3, so only the
// hopeless half of the condition holds for the explained order-3 request.
// A request with __GFP_DIRECT_RECLAIM takes the same branch without the
// kcompactd wakeup.
//
// Reference: mm/vmscan.c:wakeup_kswapd(), kswapd_test_hopeless(),
// balance_pgdat(); mm/compaction.c:wakeup_kcompactd().
func TestExplainKswapdHopelessWakesKcompactd(t *testing.T) {
	s := newSystem(t, smallConfig(16384))
	frag := s.NewTask("frag")
	var pages []zone.Page
	for {
		p, err := s.AllocPages(frag, gfp.NoWait|gfp.Memalloc|gfp.NoWarn, 0)
		if err != nil {
			require.ErrorIs(t, err, mmsim.ErrNoMemory)
			break
		}
		pages = append(pages, p)
	}
	for _, p := range pages {
		if p.PFN()%2 == 1 {
			require.NoError(t, s.FreePages(frag, p, 0))
		}
	}
	s.RunUntilIdle(time.Second)

	n := s.Nodes()[0]
	k := s.Reclaim().Kswapd(0)
	kc := s.Compaction().Kcompactd(0)
	require.True(t, n.Balanced(0, gfp.ZoneNormal), "half the memory is free: balanced at order 0")
	require.False(t, n.Balanced(3, gfp.ZoneNormal), "no free block of order 3: not balanced at order 3")
	require.Zero(t, k.Failures())
	for i := 0; i < zone.MaxReclaimRetries; i++ {
		_, err := s.AllocPages(frag, gfp.NoWait|gfp.NoWarn, 3)
		require.ErrorIs(t, err, mmsim.ErrNoMemory)
		s.RunUntilIdle(time.Second)
		require.Equal(t, i+1, k.Failures(), "each order-3 wake is one balance_pgdat that reclaims nothing")
	}
	require.True(t, k.Waiting(), "the hopeless kswapd sleeps on kswapd_wait (waitqueue_active)")
	require.False(t, k.Running())
	require.False(t, n.Balanced(3, gfp.ZoneNormal), "compaction cannot move kernel pages: still no order-3 block")

	kRuns, kNext, kcWakes := k.Runs(), k.Next(), kc.Wakes()
	require.Greater(t, kc.Next(), s.Now(), "kcompactd waits on its timeout")
	req := s.NewTask("requester")
	e, err := s.Explain(req, gfp.NoWait|gfp.NoWarn, 3)
	require.NoError(t, err)
	require.Equal(t, zone.OutcomeFailed, e.Outcome, "%s", e)
	require.ErrorIs(t, e.Err, mmsim.ErrNoMemory)
	require.Equal(t, zone.Order(3), e.Order)
	require.Equal(t, gfp.NoWait|gfp.NoWarn, e.Effective)
	require.Equal(t, gfp.ZoneNormal, e.HighestZone)
	requireKindsInOrder(t, e, zone.StepSlowPath, zone.StepAllocFlags, zone.StepKswapd, zone.StepFreelist,
		zone.StepWatermark, zone.StepReserves, zone.StepNoPage, zone.StepFailed)
	const branch = "kswapd_failures >= MAX_RECLAIM_RETRIES (16): a hopeless node, left to direct reclaim: " +
		"kswapd not woken; the request cannot reclaim, so wakeup_kcompactd instead"
	var ks []zone.Step
	for _, st := range e.Steps {
		if st.Kind == zone.StepKswapd {
			ks = append(ks, st)
		}
	}
	require.Len(t, ks, 1, "one node, no retry: one wakeup_kswapd\n%s", e)
	assert.Empty(t, ks[0].Zone, "wake_all_kswapds is about the node")
	assert.Equal(t, "wake_all_kswapds: wakeup_kswapd node 0 order 3 highest zone Normal: "+branch, ks[0].Text)
	requirePhrases(t, e, "wakeup_kswapd node 0 order 3 highest zone Normal: "+branch,
		"ALLOC_WMARK_MIN|ALLOC_NON_BLOCK|ALLOC_CPUSET|ALLOC_KSWAPD (0x850)",
		"!can_direct_reclaim (__GFP_DIRECT_RECLAIM not in the request)", "outcome: failed (NULL)")
	assert.NotContains(t, e.String(), "woken (kswapd_order")

	// The machine agrees with the words: kswapd was not made runnable;
	// kcompactd was, now, and runs.
	assert.Equal(t, kNext, k.Next(), "kswapd still asleep")
	assert.True(t, k.Waiting())
	assert.Equal(t, s.Now(), kc.Next(), "wakeup_kcompactd: kcompactd due now")
	order, highest := n.KswapdRequest()
	assert.Equal(t, zone.Order(3), order, "kswapd_order is raised before the branch")
	assert.Equal(t, gfp.ZoneNormal, highest)
	s.RunUntilIdle(time.Second)
	assert.Equal(t, kRuns, k.Runs(), "kswapd did not run")
	assert.Equal(t, kcWakes+1, kc.Wakes(), "kcompactd did its work once")
	assert.Equal(t, zone.MaxReclaimRetries, k.Failures())

	// With __GFP_DIRECT_RECLAIM the branch is the same, without kcompactd:
	// the caller compacts and reclaims itself.
	e, err = s.Explain(req, gfp.Kernel|gfp.NoRetry|gfp.NoWarn, 3)
	require.NoError(t, err)
	require.Equal(t, zone.OutcomeFailed, e.Outcome, "%s", e)
	requirePhrases(t, e, "wakeup_kswapd node 0 order 3 highest zone Normal: kswapd_failures >= MAX_RECLAIM_RETRIES (16): "+
		"a hopeless node, left to direct reclaim: kswapd not woken\n")
	assert.NotContains(t, e.String(), "wakeup_kcompactd instead")
	assert.NotContains(t, e.String(), "woken (kswapd_order")
	assert.Equal(t, kRuns, k.Runs(), "kswapd did not run")
	require.NoError(t, s.CheckInvariants())
}

// TestExplainKswapdAwake: a request that finds kswapd woken already, and
// not yet run, only raises kswapd_order (wakeup_kswapd returns at its
// waitqueue_active test), and it is not counted as a wake: KswapdWakes
// counts the mm_vmscan_wakeup_kswapd events.
//
// Reference: mm/vmscan.c:wakeup_kswapd().
func TestExplainKswapdAwake(t *testing.T) {
	s := newSystem(t, smallConfig(16384))
	frag := s.NewTask("frag")
	for {
		if _, err := s.AllocPages(frag, gfp.NoWait|gfp.NoWarn, 0); err != nil {
			break
		}
	}
	n := s.Nodes()[0]
	k := s.Reclaim().Kswapd(0)
	require.True(t, k.Running(), "the failing GFP_NOWAIT request woke kswapd")
	wakes := n.KswapdWakes()
	require.EqualValues(t, 1, wakes)

	e, err := s.Explain(s.NewTask("requester"), gfp.NoWait|gfp.NoWarn, 2)
	require.NoError(t, err)
	requirePhrases(t, e, "wakeup_kswapd node 0 order 2 highest zone Normal: kswapd awake already (waitqueue_active is false): "+
		"it will read the raised kswapd_order and kswapd_highest_zoneidx")
	assert.NotContains(t, e.String(), "woken (kswapd_order")
	assert.Equal(t, wakes, n.KswapdWakes())
	order, _ := n.KswapdRequest()
	assert.Equal(t, zone.Order(2), order)
	require.NoError(t, s.CheckInvariants())
}
