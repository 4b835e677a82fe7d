package zone

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/internal/sim"
	"github.com/mmsim/mmsim/memalloc"
)

// explainFake is a scripted slow path: reclaim, compaction and the OOM
// killer answer as a test sets them, and free the pages the test handed
// them (held) when they "make progress".
type explainFake struct {
	a      *Allocator
	holder *memalloc.Task
	held   []Page

	reclaimed     int64 // what TryToFreePages reports
	reclaimFrees  bool  // and whether it frees that many held pages
	reclaimable   int64 // what ReclaimablePages reports for every zone
	nested        gfp.Mask
	kswapdRunning map[int]bool

	compact  CompactResult
	suitable bool
	// kswapdWakes and kcompactdWakes count the wake calls.
	kswapdWakes, kcompactdWakes int

	oomProgress bool
	oomFrees    int // held pages an OOM "kill" frees
	victims     map[*memalloc.Task]bool
	oomCalls    int
}

// freeHeld frees n held pages, all the way to the buddy lists.
func (f *explainFake) freeHeld(n int) {
	for ; n > 0 && len(f.held) > 0; n-- {
		p := f.held[len(f.held)-1]
		f.held = f.held[:len(f.held)-1]
		if err := f.a.FreePages(f.holder, p, 0); err != nil {
			panic(err)
		}
	}
	f.a.DrainAllPages(f.holder)
}

func (f *explainFake) WakeKswapd(*Node, Order, gfp.ZoneType, gfp.Mask) KswapdWake {
	f.kswapdWakes++
	return KswapdWoken
}
func (f *explainFake) TryToFreePages(t *memalloc.Task, _ []*Zone, _ Order, _ gfp.Mask, _ gfp.ZoneType) int64 {
	if f.nested != 0 {
		if p, err := f.a.AllocPages(t, f.nested, 0); err == nil {
			_ = f.a.FreePages(t, p, 0)
		}
	}
	if f.reclaimFrees {
		f.freeHeld(int(f.reclaimed))
	}
	return f.reclaimed
}
func (f *explainFake) ReclaimablePages(*Zone) int64 { return f.reclaimable }
func (f *explainFake) KswapdRunning(n *Node) bool   { return f.kswapdRunning[n.ID()] }
func (f *explainFake) TryToCompactPages(*memalloc.Task, []*Zone, Order, gfp.Mask, gfp.ZoneType, int) (CompactResult, PFN, bool) {
	return f.compact, 0, false
}
func (f *explainFake) ZonelistSuitable([]*Zone, Order, gfp.ZoneType) bool { return f.suitable }
func (f *explainFake) WakeKcompactd(*Node, Order, gfp.ZoneType)           { f.kcompactdWakes++ }
func (f *explainFake) Allocated(*Zone, Order)                             {}
func (f *explainFake) OutOfMemory(*memalloc.Task, gfp.Mask, Order, gfp.ZoneType) bool {
	f.oomCalls++
	f.freeHeld(f.oomFrees)
	return f.oomProgress
}
func (f *explainFake) IsVictim(t *memalloc.Task) bool { return f.victims[t] }

// fakeClock is simulated time for the zone alone: sleeps and modelled work
// move it on.
type fakeClock struct{ now int64 }

// explainMachine boots smallMachine with the fake slow path plugged in
// after a fill: the holder allocates order-0 pages with fill (unless 0)
// until the allocator refuses (fillAll), and the fake holds them.
func explainMachine(t *testing.T, fill gfp.Mask, opts Options) (*Allocator, *explainFake, *fakeClock) {
	t.Helper()
	clk := &fakeClock{}
	if opts.Now == nil {
		opts.Now = func() int64 { return clk.now }
		opts.Sleep = func(d int64) { clk.now += d }
		opts.Advance = func(d int64) { clk.now += d }
	}
	a, err := New(smallMachine(), opts)
	require.NoError(t, err)
	f := &explainFake{a: a, holder: memalloc.NewTaskWith("holder", memalloc.WithPID(1)),
		victims: map[*memalloc.Task]bool{}, kswapdRunning: map[int]bool{}}
	if fill != 0 {
		f.held = fillAll(t, a, f.holder, fill)
	}
	a.SetSlowPath(SlowPath{Reclaim: f, Compact: f, OOM: f})
	return a, f, clk
}

// fillWith allocates order-0 pages for tk with mask until the allocator
// refuses.
func fillWith(t *testing.T, a *Allocator, tk *memalloc.Task, mask gfp.Mask) []Page {
	t.Helper()
	var held []Page
	for {
		p, err := a.AllocPages(tk, mask|gfp.NoWarn, 0)
		if err != nil {
			require.ErrorIs(t, err, ErrNoMemory)
			return held
		}
		held = append(held, p)
	}
}

// fillAll fills to a fixpoint: rounds of fillWith, each after the
// watermark boosts are dropped (as kswapd would) and followed by a drain of
// the pcp lists, until a round gets nothing. The zones are then just at
// the mask's watermark, unboosted, with empty pcp lists.
func fillAll(t *testing.T, a *Allocator, tk *memalloc.Task, mask gfp.Mask) []Page {
	t.Helper()
	var held []Page
	for {
		a.forEachZone(func(z *Zone) {
			z.boost.Store(0)
			z.flags.And(^zoneBoostedWatermark)
		})
		got := fillWith(t, a, tk, mask)
		held = append(held, got...)
		a.DrainAllPages(tk)
		if len(got) == 0 {
			return held
		}
	}
}

// kindsInOrder checks that kinds appear among the steps in this order.
func kindsInOrder(t *testing.T, e *Explanation, kinds ...StepKind) {
	t.Helper()
	i := 0
	for _, s := range e.Steps {
		if i < len(kinds) && s.Kind == kinds[i] {
			i++
		}
	}
	if i != len(kinds) {
		t.Fatalf("steps should contain %v in order; missing %v:\n%s", kinds, kinds[i], e)
	}
}

// says checks that String() contains each phrase.
func says(t *testing.T, e *Explanation, phrases ...string) {
	t.Helper()
	out := e.String()
	for _, p := range phrases {
		if !strings.Contains(out, p) {
			t.Fatalf("the explanation does not say %q:\n%s", p, out)
		}
	}
}

// stepsOf returns the steps of a kind.
func stepsOf(e *Explanation, k StepKind) []Step {
	var out []Step
	for _, s := range e.Steps {
		if s.Kind == k {
			out = append(out, s)
		}
	}
	return out
}

func explain(t *testing.T, a *Allocator, tk *memalloc.Task, mask gfp.Mask, order Order) *Explanation {
	t.Helper()
	e, err := a.Explain(tk, mask, order, ExplainOptions{})
	require.NoError(t, err)
	require.Nil(t, a.explaining.Load(), "no recorder is left behind")
	return e
}

// TestAllocFlagsString checks the ALLOC_* names against SPEC.md's worked
// values of gfp_to_alloc_flags.
//
// Reference: mm/internal.h (ALLOC_*), mm/page_alloc.c:gfp_to_alloc_flags().
func TestAllocFlagsString(t *testing.T) {
	for _, c := range []struct {
		mask  gfp.Mask
		order Order
		af    allocFlags
		want  string
	}{
		{gfp.Kernel, 0, 0x840, "ALLOC_WMARK_MIN|ALLOC_CPUSET|ALLOC_KSWAPD"},
		{gfp.Atomic, 0, 0x830, "ALLOC_WMARK_MIN|ALLOC_NON_BLOCK|ALLOC_MIN_RESERVE|ALLOC_KSWAPD"},
		{gfp.Atomic, 1, 0xa30, "ALLOC_WMARK_MIN|ALLOC_NON_BLOCK|ALLOC_MIN_RESERVE|ALLOC_HIGHATOMIC|ALLOC_KSWAPD"},
		{gfp.NoWait, 0, 0x850, "ALLOC_WMARK_MIN|ALLOC_NON_BLOCK|ALLOC_CPUSET|ALLOC_KSWAPD"},
		{gfp.NoWait | gfp.NoMemalloc, 0, 0x840, "ALLOC_WMARK_MIN|ALLOC_CPUSET|ALLOC_KSWAPD"},
		{0, 0, 0x50, "ALLOC_WMARK_MIN|ALLOC_NON_BLOCK|ALLOC_CPUSET"},
	} {
		require.Equal(t, c.af, gfpToAllocFlags(c.mask, c.order), "%s order %d", c.mask, c.order)
		require.Equal(t, c.want, AllocFlags(c.af).String())
	}
	require.Equal(t, "ALLOC_NO_WATERMARKS|ALLOC_KSWAPD", AllocFlags(allocNoWatermarks|allocKswapd).String())
	require.Equal(t, "ALLOC_WMARK_LOW|ALLOC_NOFRAGMENT|ALLOC_KSWAPD", AllocFlags(0x901).String())
	require.Equal(t, "ALLOC_WMARK_HIGH|ALLOC_CPUSET", AllocFlags(allocWmarkHigh|allocCPUSet).String())
}

// TestWatermarkNumbersAgree checks that the numbers an explanation shows
// give the answer of the check the allocator makes, for every order and
// combination of the flags that change the arithmetic, on zones in many
// states.
//
// Reference: mm/page_alloc.c:__zone_watermark_ok().
func TestWatermarkNumbersAgree(t *testing.T) {
	a, err := New(smallMachine(), Options{})
	require.NoError(t, err)
	tk := memalloc.NewTask("t")
	flagSets := []allocFlags{0, allocMinReserve, allocMinReserve | allocNonBlock, allocNonBlock, allocOOM,
		allocOOM | allocMinReserve, allocHighAtomic | allocMinReserve | allocNonBlock, allocNoWatermarks}
	check := func() {
		for _, z := range a.nodes[0].zones {
			if !z.populated() {
				continue
			}
			for o := Order(0); o <= MaxPageOrder; o++ {
				for _, af := range flagSets {
					for i := WmarkMin; i <= WmarkHigh; i++ {
						for _, free := range []int64{z.FreePages(), 0, 700, 3000} {
							mark := z.wmarkPages(i)
							n := z.watermarkNumbers(o, mark, gfp.ZoneNormal, af, free)
							require.Equal(t, z.watermarkOKFree(o, mark, gfp.ZoneNormal, af, free), n.passes(),
								"zone %s order %d %s mark %d free %d: %+v", z.Name(), o, AllocFlags(af), mark, free, n)
						}
					}
				}
			}
		}
	}
	check()
	var held []Page
	for i := 0; i < 59000; i++ {
		o := Order(i % 3)
		p, err := a.AllocPages(tk, gfp.Kernel|gfp.NoWarn, o)
		if err != nil {
			break
		}
		held = append(held, p)
		if i%5000 == 0 {
			check()
		}
	}
	check()
	for i, p := range held {
		if i%2 == 0 {
			require.NoError(t, a.FreePages(tk, p, Order(i%3)))
		}
	}
	check()
}

// TestExplainRefusals: each way the entry refuses a request, before any
// attempt, with its own step and the allocation's own error.
//
// Reference: mm/page_alloc.c:__alloc_frozen_pages_noprof(), prepare_alloc_pages().
func TestExplainRefusals(t *testing.T) {
	a, _, _ := explainMachine(t, 0, Options{Hooks: &recordingHooks{failEvery: 1}})
	tk := memalloc.NewTask("t")
	for _, c := range []struct {
		mask    gfp.Mask
		order   Order
		err     error
		outcome Outcome
		phrase  string
	}{
		{gfp.Kernel | gfp.NoFail, MaxPageOrder + 1, ErrInvalid, OutcomeRefused, "order 11 > MAX_PAGE_ORDER (10): WARN_ON_ONCE_GFP"},
		{gfp.DMA | gfp.DMA32, 0, ErrBug, OutcomeRefused, "prepare_alloc_pages: gfp_zone:"},
		{gfp.Movable | gfp.Reclaimable, 0, ErrInvalid, OutcomeRefused, "gfp_migratetype: __GFP_MOVABLE and __GFP_RECLAIMABLE together"},
		{gfp.Kernel, 0, ErrNoMemory, OutcomeFailed, "should_fail_alloc_page: fault injection"},
	} {
		e := explain(t, a, tk, c.mask, c.order)
		require.ErrorIs(t, e.Err, c.err)
		require.Equal(t, c.outcome, e.Outcome)
		require.Len(t, stepsOf(e, StepRefused), 1, "%s", e)
		says(t, e, c.phrase)
	}
	_, err := a.Explain(nil, gfp.Kernel, 0, ExplainOptions{})
	require.ErrorIs(t, err, ErrInvalid)
	_, err = a.Explain(memalloc.NewTaskWith("far", memalloc.WithCPU(7)), gfp.Kernel, 0, ExplainOptions{})
	require.ErrorIs(t, err, ErrInvalid)
}

// TestExplainFastPathNumbers: the fast path's watermark step holds the
// zone's own numbers, and the rest of the walk follows.
//
// Reference: mm/page_alloc.c:get_page_from_freelist(), rmqueue_pcplist().
func TestExplainFastPathNumbers(t *testing.T) {
	a, _, _ := explainMachine(t, 0, Options{})
	tk := memalloc.NewTask("t")
	z := a.nodes[0].zones[gfp.ZoneDMA32]
	free := z.FreePages()
	e := explain(t, a, tk, gfp.Kernel, 0)
	require.NoError(t, e.Err)
	require.Equal(t, OutcomeFastPath, e.Outcome)
	kindsInOrder(t, e, StepPrepare, StepFreelist, StepWatermark, StepFallback, StepPCP, StepGotPage)
	wm := stepsOf(e, StepWatermark)[0]
	require.Equal(t, "Node 0, zone DMA32", wm.Zone)
	require.Equal(t, free, wm.Free)
	require.Equal(t, z.wmarkPages(WmarkHigh), wm.Mark)
	require.Equal(t, wm.Mark, wm.Min, "no reserve flag lowers the mark")
	require.Equal(t, z.lowmemReserve[gfp.ZoneNormal], wm.Reserve)
	require.True(t, wm.OK)
	says(t, e, fmt.Sprintf("watermark high ok: free %d > high %d + lowmem_reserve 0 (ALLOC_WMARK_LOW|ALLOC_KSWAPD)", free, wm.Mark))
	require.NoError(t, a.FreePages(tk, e.Page, 0))
	require.NoError(t, a.CheckInvariants())
}

// TestExplainStealWithoutClaim: a MIGRATE_MOVABLE request finds only small
// Unmovable blocks: should_try_claim_block says no below half a pageblock,
// and __rmqueue_steal takes one without changing its pageblock's type.
//
// Reference: mm/page_alloc.c:__rmqueue_claim(), __rmqueue_steal(),
// should_try_claim_block().
func TestExplainStealWithoutClaim(t *testing.T) {
	a, f, _ := explainMachine(t, 0, Options{})
	// Every page allocated as movable, so every pageblock stays Movable;
	// then every fourth page back: order-0 holes, 128 to a pageblock.
	holder := memalloc.NewTaskWith("mover", memalloc.WithFlags(memalloc.PFMemalloc))
	held := fillAll(t, a, holder, gfp.HighUserMovable)
	for _, p := range held {
		if p.PFN()%4 == 0 {
			require.NoError(t, a.FreePages(holder, p, 0))
		} else {
			f.held = append(f.held, p)
		}
	}
	a.DrainAllPages(holder)
	tk := memalloc.NewTask("slab")
	e := explain(t, a, tk, gfp.Kernel|gfp.Reclaimable, 0)
	require.NoError(t, e.Err, "%s", e)
	require.Equal(t, gfp.MigrateReclaimable, e.Migratetype)
	kindsInOrder(t, e, StepFreelist, StepWatermark, StepFallback, StepFallback, StepPCP, StepGotPage)
	says(t, e, "try_to_claim_block: pageblock", "of Movable has free 128 + compatible 0 < 256 pages: not claimed",
		"fallback: __rmqueue_steal took an order-0 Movable block", "for a Reclaimable request of order 0, leaving its pageblock Movable")
	require.NoError(t, a.FreePages(tk, e.Page, 0))
	require.NoError(t, a.CheckInvariants())
}

// TestExplainHighatomic: a high-order atomic request below the low
// watermark reserves its pageblock as MIGRATE_HIGHATOMIC; the next takes
// from the reserve first; a GFP_KERNEL request that then runs out of
// reclaim retries gives the block back before the OOM killer.
//
// Reference: mm/page_alloc.c:reserve_highatomic_pageblock(), rmqueue_buddy(),
// should_reclaim_retry(), unreserve_highatomic_pageblock().
func TestExplainHighatomic(t *testing.T) {
	a, _, _ := explainMachine(t, gfp.Kernel, Options{})
	tk := memalloc.NewTask("irq")
	e := explain(t, a, tk, gfp.Atomic, 1)
	require.NoError(t, e.Err, "%s", e)
	kindsInOrder(t, e, StepSlowPath, StepAllocFlags, StepFreelist, StepWatermark, StepPCP, StepHighatomic, StepHighatomic, StepGotPage)
	says(t, e, "ALLOC_HIGHATOMIC never refills it: go to the buddy allocator",
		"ALLOC_HIGHATOMIC tries the MIGRATE_HIGHATOMIC reserve first: empty",
		"reserve_highatomic_pageblock: pageblock of pfn", "is now MIGRATE_HIGHATOMIC (nr_reserved_highatomic 512 of at most 1024)")

	e2 := explain(t, a, tk, gfp.Atomic, 1)
	require.NoError(t, e2.Err)
	says(t, e2, "ALLOC_HIGHATOMIC tries the MIGRATE_HIGHATOMIC reserve first: got a block")

	other := memalloc.NewTask("kernel")
	fillAll(t, a, other, gfp.Kernel|gfp.NoRetry)
	e3 := explain(t, a, other, gfp.Kernel|gfp.NoWarn, 0)
	kindsInOrder(t, e3, StepReclaim, StepReclaimRetry, StepReclaimRetry, StepHighatomic, StepReclaimRetry, StepRetry)
	says(t, e3, "unreserve_highatomic_pageblock(force=true): a MIGRATE_HIGHATOMIC pageblock went back to Unmovable",
		"should_reclaim_retry: a highatomic pageblock was unreserved: retry")
	require.Zero(t, reservedHighatomicPages(a.nodes[0].zones[gfp.ZoneDMA32]))
}

// reservedHighatomicPages is nr_reserved_highatomic.
func reservedHighatomicPages(z *Zone) int64 {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.reservedHighatomic
}

// TestExplainUnreserveAfterReclaim: reclaim reports progress but the
// freelists still have nothing: the allocator gives a highatomic block back
// (keeping the zone's last), drains the pcp lists and tries once more.
//
// Reference: mm/page_alloc.c:__alloc_pages_direct_reclaim().
func TestExplainUnreserveAfterReclaim(t *testing.T) {
	a, f, _ := explainMachine(t, gfp.Kernel, Options{})
	z := a.nodes[0].zones[gfp.ZoneDMA32]
	// Two pageblocks reserved, as two atomic bursts would leave them.
	z.mu.Lock()
	var first PFN
	for _, p := range f.held {
		switch {
		case !z.spans(p.PFN()):
		case first == 0:
			first = p.PFN()
			z.reserveHighatomicLocked(first, 0)
		case p.PFN()/PageblockNrPages != first/PageblockNrPages:
			z.reserveHighatomicLocked(p.PFN(), 0)
		}
		if z.reservedHighatomic == 2*PageblockNrPages {
			break
		}
	}
	reserved := z.reservedHighatomic
	z.mu.Unlock()
	require.Equal(t, int64(2*PageblockNrPages), reserved)
	// A free page in each reserved block, for unreserve to find.
	var keep []Page
	freed := map[PFN]bool{}
	for _, p := range f.held {
		if b := p.PFN() / PageblockNrPages; z.spans(p.PFN()) && z.blockMT(p.PFN()) == mtHighAtomic && !freed[b] {
			freed[b] = true
			require.NoError(t, a.FreePages(f.holder, p, 0))
			continue
		}
		keep = append(keep, p)
	}
	f.held = keep
	a.DrainAllPages(f.holder)
	require.Len(t, freed, 2)
	f.reclaimed = 1 // progress, nothing freed
	tk := memalloc.NewTask("t")
	e := explain(t, a, tk, gfp.Kernel|gfp.NoWarn, 0)
	kindsInOrder(t, e, StepReclaim, StepReclaim, StepFreelist, StepReclaim, StepHighatomic, StepFreelist)
	says(t, e, "try_to_free_pages(order 0, GFP_KERNEL|__GFP_NOWARN) -> 1 pages reclaimed",
		"after direct reclaim: get_page_from_freelist", "progress but no page",
		"unreserve_highatomic_pageblock(force=false): a MIGRATE_HIGHATOMIC pageblock went back to Unmovable (nr_reserved_highatomic now 512)",
		"after unreserving and draining: get_page_from_freelist")
}

// TestExplainReclaimRetries: reclaim makes no progress but the zones hold
// plenty of reclaimable pages: should_reclaim_retry retries, with its
// numbers, until MAX_RECLAIM_RETRIES rounds without progress; a workqueue
// worker sleeps a tick each time.
//
// Reference: mm/page_alloc.c:should_reclaim_retry().
func TestExplainReclaimRetries(t *testing.T) {
	a, f, clk := explainMachine(t, gfp.Kernel, Options{})
	f.reclaimable = 100000
	tk := memalloc.NewTaskWith("kworker/0:1", memalloc.WithFlags(memalloc.PFWQWorker))
	start := clk.now
	e := explain(t, a, tk, gfp.Kernel|gfp.NoWarn, 0)
	require.ErrorIs(t, e.Err, ErrNoMemory)
	kindsInOrder(t, e, StepReclaimRetry, StepSleep, StepRetry)
	rr := stepsOf(e, StepReclaimRetry)
	require.True(t, rr[0].OK)
	require.Equal(t, int64(100000), rr[0].Pages)
	require.Equal(t, rr[0].Pages+a.nodes[0].zones[gfp.ZoneDMA32].FreePages(), rr[0].Free, "available = reclaimable + free")
	says(t, e, "should_reclaim_retry: no_progress_loops 16 (MAX_RECLAIM_RETRIES 16), available = reclaimable 100000",
		"-> retry", "should_reclaim_retry: no_progress_loops 17 > MAX_RECLAIM_RETRIES (16): no retry",
		"PF_WQ_WORKER: schedule_timeout_uninterruptible(1)")
	require.Len(t, stepsOf(e, StepSleep), 16)
	require.Equal(t, 16*sim.Jiffy, clk.now-start, "16 one-tick sleeps of simulated time")
	require.Equal(t, 16, e.Retries)
	require.Equal(t, 1, f.oomCalls)
}

// TestExplainCompactRetries: an order-2 unmovable request compacts first;
// then should_compact_retry escalates the priority after a failure, retries
// a racing success, and asks compaction_zonelist_suitable after a skip.
//
// Reference: mm/page_alloc.c:__alloc_pages_slowpath() (compact_first),
// should_compact_retry().
func TestExplainCompactRetries(t *testing.T) {
	for _, c := range []struct {
		result  CompactResult
		phrases []string
	}{
		{CompactComplete, []string{"compact_first: high-order Unmovable request",
			"try_to_compact_pages(order 2, prio COMPACT_PRIO_ASYNC)",
			"should_compact_retry: COMPACT_COMPLETE: retry with compact_priority raised to COMPACT_PRIO_SYNC_FULL",
			"should_compact_retry: COMPACT_COMPLETE: compact_priority COMPACT_PRIO_SYNC_FULL is already MIN_COMPACT_PRIORITY: no retry"}},
		{CompactSuccess, []string{"COMPACT_SUCCESS but the allocation raced: compaction_retries 16 <= MAX_COMPACT_RETRIES 16",
			"should_compact_retry: COMPACT_SUCCESS: retry with compact_priority raised to COMPACT_PRIO_SYNC_FULL"}},
		{CompactSkipped, []string{"COMPACT_SKIPPED (too few free order-0 pages to migrate into): compaction_zonelist_suitable -> false"}},
	} {
		t.Run(c.result.String(), func(t *testing.T) {
			a, f, _ := explainMachine(t, gfp.Kernel, Options{})
			f.compact, f.reclaimed = c.result, 1
			tk := memalloc.NewTask("t")
			e := explain(t, a, tk, gfp.Kernel|gfp.NoWarn, 2)
			require.ErrorIs(t, e.Err, ErrNoMemory)
			kindsInOrder(t, e, StepSlowPath, StepSlowPath, StepReclaim, StepCompact, StepRetry, StepReclaim, StepCompact,
				StepReclaimRetry, StepCompactRetry, StepOOM)
			says(t, e, c.phrases...)
		})
	}
}

// TestExplainCompactFirstExits: the exits of a costly request: THP-like
// NORETRY|THISNODE stops after compaction; NORETRY keeps the async priority
// for its single round; a costly request that cannot compact stops even
// with RETRY_MAYFAIL.
//
// Reference: mm/page_alloc.c:__alloc_pages_slowpath().
func TestExplainCompactFirstExits(t *testing.T) {
	for _, c := range []struct {
		mask    gfp.Mask
		kinds   []StepKind
		phrases []string
	}{
		{gfp.Kernel | gfp.NoRetry | gfp.ThisNode, []StepKind{StepSlowPath, StepReclaim, StepCompact, StepNoPage, StepFailed},
			[]string{"ZONELIST_NOFALLBACK (__GFP_THISNODE)", "compact_first with __GFP_NORETRY|__GFP_THISNODE"}},
		{gfp.Kernel | gfp.NoRetry, []StepKind{StepCompact, StepRetry, StepReclaim, StepCompact, StepNoPage},
			[]string{"__GFP_NORETRY keeps the lowered COMPACT_PRIO_ASYNC", "__GFP_NORETRY: do not loop"}},
		{gfp.NoIO | gfp.RetryMayFail, []StepKind{StepSlowPath, StepReclaim, StepCompact, StepNoPage},
			[]string{"no compact_first: the request cannot compact",
				"costly order 4 > PAGE_ALLOC_COSTLY_ORDER that cannot compact (__GFP_IO not in the request)"}},
	} {
		a, f, _ := explainMachine(t, gfp.Kernel, Options{})
		f.compact = CompactComplete
		e := explain(t, a, memalloc.NewTask("t"), c.mask|gfp.NoWarn, 4)
		require.ErrorIs(t, e.Err, ErrNoMemory)
		kindsInOrder(t, e, c.kinds...)
		says(t, e, c.phrases...)
	}
}

// TestExplainOOMLockContended: another task holds oom_lock: the request
// counts it as progress, sleeps a tick, and retries; then it takes the lock
// itself and the "kill" frees memory.
//
// Reference: mm/page_alloc.c:__alloc_pages_may_oom().
func TestExplainOOMLockContended(t *testing.T) {
	clk := &fakeClock{}
	var a *Allocator
	locked := true
	opts := Options{Now: func() int64 { return clk.now }, Advance: func(d int64) { clk.now += d }}
	opts.Sleep = func(d int64) {
		clk.now += d
		if locked { // the other task finishes its OOM kill meanwhile
			locked = false
			a.oomLock.Unlock()
		}
	}
	a, f, _ := explainMachine(t, gfp.Kernel, opts)
	f.oomProgress, f.oomFrees = true, 2000
	a.oomLock.Lock()
	e := explain(t, a, memalloc.NewTask("t"), gfp.Kernel, 0)
	require.NoError(t, e.Err, "%s", e)
	require.Equal(t, OutcomeAfterOOM, e.Outcome)
	kindsInOrder(t, e, StepSleep, StepRetry, StepFreelist, StepOOM, StepRetry, StepGotPage)
	says(t, e, "oom_lock is held by another task, which is making progress for us: did_some_progress = 1, "+
		"schedule_timeout_uninterruptible(1) ("+fmtNs(sim.Jiffy)+")")
	require.NoError(t, a.FreePages(memalloc.NewTask("t"), e.Page, 0))
}

// TestExplainOOMVictimExit: an OOM victim with ALLOC_OOM that still finds
// nothing must not loop on the reserves: nopage after out_of_memory.
//
// Reference: mm/page_alloc.c:__alloc_pages_slowpath() (tsk_is_oom_victim).
func TestExplainOOMVictimExit(t *testing.T) {
	a, f, _ := explainMachine(t, 0, Options{})
	// Everything, down to the last page, taken by a PF_MEMALLOC task.
	f.held = fillAll(t, a, memalloc.NewTaskWith("reclaimer", memalloc.WithFlags(memalloc.PFMemalloc)), gfp.Kernel)
	f.oomProgress = true
	victim := memalloc.NewTask("victim")
	f.victims[victim] = true
	e := explain(t, a, victim, gfp.Kernel|gfp.NoWarn, 0)
	require.ErrorIs(t, e.Err, ErrNoMemory)
	kindsInOrder(t, e, StepReserves, StepRetry, StepFreelist, StepReclaim, StepOOM, StepNoPage, StepFailed)
	says(t, e, "__gfp_pfmemalloc_flags -> ALLOC_OOM (tsk_is_oom_victim(current) (TIF_MEMDIE)",
		"tsk_is_oom_victim(current) with ALLOC_OOM: avoid looping with no watermarks: goto nopage")
}

// TestExplainNofailDeadlock: a blocking NOFAIL request on a machine with
// no page left and nothing that could free one: mmsim says so instead of
// looping for ever.
//
// Reference: mm/page_alloc.c:__alloc_pages_slowpath() (nopage, __GFP_NOFAIL).
func TestExplainNofailDeadlock(t *testing.T) {
	a, err := New(smallMachine(), Options{})
	require.NoError(t, err)
	fillAll(t, a, memalloc.NewTaskWith("reclaimer", memalloc.WithFlags(memalloc.PFMemalloc)), gfp.Kernel)
	e := explain(t, a, memalloc.NewTask("t"), gfp.Kernel|gfp.NoFail|gfp.NoWarn, 0)
	require.ErrorIs(t, e.Err, ErrDeadlock)
	require.Equal(t, OutcomeStalled, e.Outcome)
	kindsInOrder(t, e, StepReclaim, StepCompact, StepOOM, StepFreelist, StepDeadlock)
	says(t, e, "the machine has no reclaim: no progress", "the machine has no OOM killer",
		"__GFP_NOFAIL: __alloc_pages_cpuset_fallback with ALLOC_NO_WATERMARKS",
		"mmsim: __GFP_NOFAIL with neither reclaim nor an OOM killer")
}

// TestExplainStallLimitAndReports: a request the OOM killer keeps "helping"
// without freeing anything loops; the stall warning prints at 10 s and the
// stall limit ends it. The report sink's reports appear in place, and the
// long loop is cut in the middle with its notable steps kept.
//
// Reference: mm/page_alloc.c:check_alloc_stall_warn(), __alloc_pages_slowpath().
func TestExplainStallLimitAndReports(t *testing.T) {
	var mu sync.Mutex
	var reports []bug.Report
	sink := func(r bug.Report) {
		mu.Lock()
		reports = append(reports, r)
		mu.Unlock()
	}
	clk := &fakeClock{}
	a, f, _ := explainMachine(t, gfp.Kernel, Options{Report: sink, StallLimit: 15e9, RetryCost: 5e6,
		Now: func() int64 { return clk.now }, Sleep: func(d int64) { clk.now += d }, Advance: func(d int64) { clk.now += d }})
	f.oomProgress = true
	tk := memalloc.NewTask("stuck")
	e, err := a.Explain(tk, gfp.NoFS, 0, ExplainOptions{
		ReportCount: func() int { mu.Lock(); defer mu.Unlock(); return len(reports) },
		ReportsSince: func(i int) []bug.Report {
			mu.Lock()
			defer mu.Unlock()
			return append([]bug.Report(nil), reports[i:]...)
		},
	})
	require.NoError(t, err)
	require.ErrorIs(t, e.Err, ErrDeadlock)
	require.Equal(t, OutcomeStalled, e.Outcome)
	kindsInOrder(t, e, StepSlowPath, StepOOM, StepRetry, StepElided, StepReport, StepStall, StepDeadlock)
	require.Equal(t, StepDeadlock, e.Steps[len(e.Steps)-1].Kind)
	says(t, e, "steps of the same loop elided", "page allocation stall for 10 secs: order:0, mode:0xc40(GFP_NOFS)",
		`check_alloc_stall_warn: 10.000 s in the slow path (>= ALLOC_STALL_WARN_MSECS 10 s): reported`,
		"mmsim stall limit: 15.005 s in __alloc_pages_slowpath (limit 15.000 s)")
	require.LessOrEqual(t, len(e.Steps), explainHeadSteps+explainTailSteps+10)
	require.Equal(t, 3001, e.Retries)
}

// TestExplainKmemCharge: a __GFP_ACCOUNT block whose memcg charge fails is
// freed again and the request returns NULL.
//
// Reference: mm/page_alloc.c:__alloc_frozen_pages_noprof() (__memcg_kmem_charge_page).
func TestExplainKmemCharge(t *testing.T) {
	a, _, _ := explainMachine(t, 0, Options{})
	a.SetKmemCharger(failingCharger{})
	e := explain(t, a, memalloc.NewTask("t"), gfp.Kernel|gfp.Account, 0)
	require.ErrorIs(t, e.Err, ErrNoMemory)
	kindsInOrder(t, e, StepFreelist, StepPCP, StepCharge)
	says(t, e, "the memcg kmem charge failed (__memcg_kmem_charge_page: zone: out of memory: over the limit): the block is freed and the request returns NULL")
	require.Equal(t, OutcomeFailed, e.Outcome)
}

type failingCharger struct{}

func (failingCharger) ChargeKmem(*memalloc.Task, gfp.Mask, Order) (any, error) {
	return nil, fmt.Errorf("%w: over the limit", ErrNoMemory)
}
func (failingCharger) UnchargeKmem(*memalloc.Task, any, Order) {}

// TestExplainNested: reclaim itself allocates for the task (under
// PF_MEMALLOC): the explanation shows it as one nested step.
func TestExplainNested(t *testing.T) {
	a, f, _ := explainMachine(t, gfp.Kernel, Options{})
	f.nested, f.reclaimed, f.reclaimFrees = gfp.NoIO, 8, true
	tk := memalloc.NewTask("t")
	e := explain(t, a, tk, gfp.Kernel, 0)
	require.NoError(t, e.Err, "%s", e)
	kindsInOrder(t, e, StepReclaim, StepNested, StepReclaim, StepFreelist, StepGotPage)
	says(t, e, "nested allocation by the same task while the explained one is in progress "+
		"(from its reclaim, compaction or a hook, under PF_MEMALLOC): order 0 GFP_NOIO -> ok")
	require.Len(t, stepsOf(e, StepPrepare), 1, "the nested request is not explained step by step")
}

// twoNodes is a machine with DMA32 and Normal on node 0 and Normal on
// node 1, one CPU each.
func twoNodes() Config {
	return Config{NrCPUs: 2, Sysctl: DefaultSysctl(), Nodes: []NodeConfig{
		{CPUs: []int{0}, Zones: []ZoneConfig{
			{Type: gfp.ZoneDMA32, StartPFN: 4096, Spanned: 61440, Present: 61440, Managed: 60000},
			{Type: gfp.ZoneNormal, StartPFN: 1 << 20, Spanned: 65536, Present: 65536, Managed: 65536}}},
		{CPUs: []int{1}, Zones: []ZoneConfig{
			{Type: gfp.ZoneNormal, StartPFN: 2 << 20, Spanned: 65536, Present: 65536, Managed: 65536}}},
	}}
}

// TestExplainZonelistWalk on two nodes: nodes whose kswapd runs wait for a
// second pass; ALLOC_NOFRAGMENT gives way when the walk must go remote.
//
// Reference: mm/page_alloc.c:get_page_from_freelist().
func TestExplainZonelistWalk(t *testing.T) {
	a, err := New(twoNodes(), Options{})
	require.NoError(t, err)
	f := &explainFake{a: a, kswapdRunning: map[int]bool{0: true}, victims: map[*memalloc.Task]bool{}}
	a.SetSlowPath(SlowPath{Reclaim: f, Compact: f, OOM: f})
	tk := memalloc.NewTask("t")
	e := explain(t, a, tk, gfp.Kernel, 0)
	require.NoError(t, e.Err)
	says(t, e, "Node 0, zone Normal: kswapd of node 0 is running: left for a second pass",
		"Node 0, zone DMA32: kswapd of node 0 is running", "got pfn=0x2")
	require.NoError(t, a.FreePages(tk, e.Page, 0))

	// Node 0 below its watermarks (a boost as large as the zones, as a
	// burst of fallbacks might raise): NOFRAGMENT restarts the walk when it
	// reaches node 1.
	f.kswapdRunning = map[int]bool{}
	for _, z := range a.nodes[0].zones {
		z.boost.Store(z.managed)
	}
	e = explain(t, a, tk, gfp.Kernel, 0)
	require.NoError(t, e.Err)
	kindsInOrder(t, e, StepWatermark, StepWatermark, StepZoneSkip, StepWatermark, StepWatermark, StepWatermark, StepGotPage)
	says(t, e, "Node 1, zone Normal: ALLOC_NOFRAGMENT: the walk reached node 1, remote from the preferred zone's: "+
		"restart it without ALLOC_NOFRAGMENT")
	require.Equal(t, "Node 1, zone Normal", e.Zone)
}

// TestScopeEffects attributes each removed bit to the scope that removed
// it, in the kernel's precedence.
//
// Reference: include/linux/sched/mm.h:current_gfp_context().
func TestScopeEffects(t *testing.T) {
	for _, c := range []struct {
		pf   memalloc.Flags
		mask gfp.Mask
		want []string
	}{
		{memalloc.PFMemallocNoFS, gfp.Kernel, []string{"__GFP_FS removed by PF_MEMALLOC_NOFS"}},
		{memalloc.PFMemallocNoIO | memalloc.PFMemallocNoFS | memalloc.PFMemallocPin, gfp.HighUserMovable,
			[]string{"__GFP_IO|__GFP_FS removed by PF_MEMALLOC_NOIO",
				"PF_MEMALLOC_NOFS: no change (already removed by a stronger scope)",
				"__GFP_MOVABLE removed by PF_MEMALLOC_PIN"}},
		{memalloc.PFMemallocNoWarn, gfp.Kernel, []string{"__GFP_NOWARN added by PF_MEMALLOC_NOWARN"}},
		{memalloc.PFMemalloc | memalloc.PFKswapd, gfp.Kernel, nil},
	} {
		tk := memalloc.NewTaskWith("t", memalloc.WithFlags(c.pf))
		eff := tk.GFPContext(c.mask)
		var got []string
		for _, s := range scopeEffects(c.pf, c.mask, c.mask, eff) {
			got = append(got, s.String())
		}
		require.Equal(t, c.want, got, "%s under %s", c.mask, c.pf)
	}
	cut := scopeEffects(0, gfp.Kernel, gfp.Kernel&^gfp.FS, gfp.Kernel&^gfp.FS)
	require.Equal(t, "__GFP_FS removed by gfp_allowed_mask", cut[0].String())
}

// TestExplainOneAtATime: explanations of two tasks run concurrently are
// serialized, each records its own task's request only, and the race
// detector stays quiet.
func TestExplainOneAtATime(t *testing.T) {
	a, err := New(smallMachine(), Options{})
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for cpu := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk := memalloc.NewTaskWith(fmt.Sprintf("t%d", cpu), memalloc.WithCPU(cpu), memalloc.WithPID(cpu+1))
			for range 200 {
				e, err := a.Explain(tk, gfp.Kernel, 1, ExplainOptions{})
				if err == nil {
					err = e.Err
				}
				if err == nil && (e.Task != tk.String() || len(stepsOf(e, StepPrepare)) != 1) {
					err = fmt.Errorf("foreign steps in %s's explanation:\n%s", tk, e)
				}
				if err == nil {
					err = a.FreePages(tk, e.Page, 1)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, a.CheckInvariants())
}

// TestExplainOOMNotInvoked: the reasons __alloc_pages_may_oom gives up
// before out_of_memory() that a full machine's GFP_KERNEL-like request can
// reach (the order, RETRY_MAYFAIL and lowmem ones are in the root tests).
//
// Reference: mm/page_alloc.c:__alloc_pages_may_oom().
func TestExplainOOMNotInvoked(t *testing.T) {
	for _, c := range []struct {
		task   *memalloc.Task
		mask   gfp.Mask
		phrase string
	}{
		{memalloc.NewTaskWith("core", memalloc.WithFlags(memalloc.PFDumpCore)), gfp.Kernel,
			"OOM killer not invoked: PF_DUMPCORE: coredumps can quickly deplete all memory reserves"},
		{memalloc.NewTask("local"), gfp.Kernel | gfp.ThisNode,
			"OOM killer not invoked: __GFP_THISNODE: the OOM killer may not free memory on a specific node"},
	} {
		a, f, _ := explainMachine(t, gfp.Kernel, Options{})
		e := explain(t, a, c.task, c.mask|gfp.NoWarn, 0)
		require.ErrorIs(t, e.Err, ErrNoMemory)
		require.Zero(t, f.oomCalls)
		kindsInOrder(t, e, StepReclaimRetry, StepFreelist, StepOOM, StepNoPage, StepFailed)
		says(t, e, c.phrase)
	}
}

// TestExplainNofail: the __GFP_NOFAIL paths of a blocking request. When
// the OOM killer makes no progress, WARN_ON_ONCE_GFP fires and the request
// counts as progress anyway, with ALLOC_NO_WATERMARKS. When it cannot even
// get there (PF_MEMALLOC's recursion guard) and ALLOC_MIN_RESERVE finds
// nothing at nopage, it loops — until mmsim's stall limit.
//
// Reference: mm/page_alloc.c:__alloc_pages_may_oom(), __alloc_pages_slowpath()
// (nopage).
func TestExplainNofail(t *testing.T) {
	a, f, _ := explainMachine(t, gfp.Kernel, Options{Report: func(bug.Report) {}})
	e := explain(t, a, memalloc.NewTask("t"), gfp.Kernel|gfp.NoFail, 0)
	require.NoError(t, e.Err, "%s", e)
	require.Equal(t, 1, f.oomCalls)
	kindsInOrder(t, e, StepOOM, StepWarn, StepFreelist, StepWatermark, StepGotPage)
	says(t, e, "out_of_memory() -> false", "WARN_ON_ONCE_GFP(__GFP_NOFAIL): out_of_memory() made no progress",
		"__GFP_NOFAIL: __alloc_pages_cpuset_fallback with ALLOC_NO_WATERMARKS",
		"but ALLOC_NO_WATERMARKS: take a page anyway")

	clk := &fakeClock{}
	a, f, _ = explainMachine(t, 0, Options{StallLimit: 1e9, RetryCost: 10e6,
		Now: func() int64 { return clk.now }, Sleep: func(d int64) { clk.now += d }, Advance: func(d int64) { clk.now += d }})
	f.held = fillAll(t, a, memalloc.NewTaskWith("reclaimer", memalloc.WithFlags(memalloc.PFMemalloc)), gfp.Kernel)
	tk := memalloc.NewTaskWith("kswapd0", memalloc.WithFlags(memalloc.PFMemalloc|memalloc.PFKswapd))
	e = explain(t, a, tk, gfp.Kernel|gfp.NoFail|gfp.NoMemalloc|gfp.NoWarn, 0)
	require.ErrorIs(t, e.Err, ErrDeadlock)
	kindsInOrder(t, e, StepWarn, StepNoPage, StepFreelist, StepRetry, StepNoPage, StepRetry, StepDeadlock)
	says(t, e, "WARN_ON_ONCE(current->flags & PF_MEMALLOC)",
		"nopage: __GFP_NOFAIL: __alloc_pages_cpuset_fallback with ALLOC_MIN_RESERVE (ALLOC_CPUSET first)",
		"__alloc_pages_cpuset_fallback: again without ALLOC_CPUSET",
		"goto retry (#1): __GFP_NOFAIL never fails: cond_resched, goto retry",
		"mmsim stall limit", "looping through the __GFP_NOFAIL retry at nopage")
	require.Equal(t, 0, f.oomCalls, "the recursion guard keeps it from reclaim and the OOM killer")
}

// TestWakeupKswapdBalanced: wakeup_kswapd on a node whose kswapd sleeps
// and which is balanced and not boosted leaves kswapd asleep, and for a
// request that cannot reclaim wakes kcompactd instead; a boosted node
// wakes kswapd. Through the allocator this branch needs a fast path that
// failed on a node that is balanced — in the kernel, a cpuset the fast
// path honours and wake_all_kswapds does not, or a boost reset between
// try_to_claim_block and rmqueue's ZONE_BOOSTED_WATERMARK test. mmsim has
// neither cpusets nor that race, so the rule is tested here, with the
// words Explain prints after "wakeup_kswapd node N ...: ".
//
// Reference: mm/vmscan.c:wakeup_kswapd().
func TestWakeupKswapdBalanced(t *testing.T) {
	a, f, _ := explainMachine(t, 0, Options{})
	tk := memalloc.NewTask("t")
	n := a.nodes[0]
	z := n.zones[gfp.ZoneDMA32]
	require.True(t, n.Balanced(3, gfp.ZoneDMA32), "a machine with all its memory free is balanced")

	got := a.wakeupKswapd(tk, z, gfp.NoWait, 3, gfp.ZoneDMA32)
	require.Equal(t, "pgdat_balanced and not boosted: kswapd not woken; the request cannot reclaim, so wakeup_kcompactd instead", got)
	require.Equal(t, 1, f.kcompactdWakes)
	require.Zero(t, f.kswapdWakes)
	order, highest := n.KswapdRequest()
	require.Equal(t, Order(3), order, "kswapd_order is raised before the test")
	require.Equal(t, gfp.ZoneDMA32, highest)

	got = a.wakeupKswapd(tk, z, gfp.Kernel, 2, gfp.ZoneDMA32)
	require.Equal(t, "pgdat_balanced and not boosted: kswapd not woken", got, "a request that reclaims wakes no kcompactd")
	require.Equal(t, 1, f.kcompactdWakes)
	require.Zero(t, f.kswapdWakes)

	z.boost.Store(PageblockNrPages)
	got = a.wakeupKswapd(tk, z, gfp.NoWait, 0, gfp.ZoneDMA32)
	require.Equal(t, "woken (kswapd_order and kswapd_highest_zoneidx raised to the request's)", got, "a boosted node wakes kswapd")
	require.Equal(t, 1, f.kswapdWakes)
	require.Equal(t, 1, f.kcompactdWakes)
	require.EqualValues(t, 1, n.KswapdWakes())
}
