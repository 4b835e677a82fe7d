package zone

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
)

// This file explains one allocation: Explain performs it, as AllocPages
// would, while the allocator records every decision on its way in the
// kernel's own terms — the mask after the task's scopes, the zonelist walk
// with each watermark check and its numbers, pcp or buddy, fallbacks, and
// each step of the slow path with the reason it was taken.
//
// Recording costs nothing when nobody explains: the allocator's fast path
// already leaves for the general path whenever anything watches (hooks,
// tracing, kmem accounting), and an Explain in progress is one more thing
// that watches. On the general path, every recording site tests the
// allocContext's recorder pointer, which is nil for every allocation but the
// explained one.

// StepKind says what part of the allocator a Step comes from.
//
// Kernel: none (mmsim's name for the mm/page_alloc.c decision a step
// records).
type StepKind uint8

// The kinds of Step, by the kernel function or decision they record.
//
// Kernel: mm/page_alloc.c (__alloc_frozen_pages_noprof and the functions it
// calls).
const (
	StepPrepare      StepKind = iota + 1 // prepare_alloc_pages: zone, zonelist, migratetype
	StepRefused                          // refused before any attempt: order, bad zone, mobility conflict, fault injection
	StepFreelist                         // a get_page_from_freelist attempt begins, with its alloc flags and purpose
	StepZoneSkip                         // the zonelist walk passed a zone over, or restarted
	StepWatermark                        // a zone's watermark check, with its numbers
	StepPCP                              // rmqueue_pcplist: a per-cpu list, its refill
	StepBuddy                            // rmqueue_buddy, __rmqueue_smallest
	StepFallback                         // __rmqueue_claim, __rmqueue_steal: another migratetype's block
	StepHighatomic                       // reserve_highatomic_pageblock, unreserve_highatomic_pageblock
	StepKswapd                           // wake_all_kswapds, wakeup_kswapd
	StepSlowPath                         // __alloc_pages_slowpath entry: what the request may do
	StepAllocFlags                       // gfp_to_alloc_flags and every later change of the alloc flags
	StepReserves                         // __gfp_pfmemalloc_flags: access to the memory reserves
	StepNoPage                           // goto nopage, with the reason
	StepRetry                            // goto retry, with the reason
	StepRestart                          // check_retry_cpuset, check_retry_zonelist
	StepStall                            // check_alloc_stall_warn
	StepReclaim                          // __alloc_pages_direct_reclaim: what reclaim may do, what it did
	StepCompact                          // __alloc_pages_direct_compact
	StepReclaimRetry                     // should_reclaim_retry, with its numbers
	StepCompactRetry                     // should_compact_retry
	StepOOM                              // __alloc_pages_may_oom, out_of_memory
	StepNoFail                           // __GFP_NOFAIL handling at nopage
	StepWarn                             // a WARN site the request hit
	StepSleep                            // the task slept (simulated time)
	StepCharge                           // the memcg kmem charge of a __GFP_ACCOUNT block
	StepNested                           // a nested allocation by the same task (inside reclaim or compaction)
	StepReport                           // a report another layer filed for the task meanwhile
	StepGotPage                          // the block handed out
	StepFailed                           // fail: warn_alloc and NULL
	StepDeadlock                         // mmsim's stall limit or NOFAIL dead end: ErrDeadlock
	StepElided                           // steps left out of a very long explanation
)

var stepKindNames = [...]string{
	StepPrepare:      "prepare",
	StepRefused:      "refused",
	StepFreelist:     "get_page_from_freelist",
	StepZoneSkip:     "zone-skip",
	StepWatermark:    "watermark",
	StepPCP:          "pcp",
	StepBuddy:        "buddy",
	StepFallback:     "fallback",
	StepHighatomic:   "highatomic",
	StepKswapd:       "kswapd",
	StepSlowPath:     "slowpath",
	StepAllocFlags:   "alloc_flags",
	StepReserves:     "reserves",
	StepNoPage:       "nopage",
	StepRetry:        "retry",
	StepRestart:      "restart",
	StepStall:        "stall",
	StepReclaim:      "reclaim",
	StepCompact:      "compaction",
	StepReclaimRetry: "should_reclaim_retry",
	StepCompactRetry: "should_compact_retry",
	StepOOM:          "oom",
	StepNoFail:       "nofail",
	StepWarn:         "WARN",
	StepSleep:        "sleep",
	StepCharge:       "memcg",
	StepNested:       "nested",
	StepReport:       "report",
	StepGotPage:      "page",
	StepFailed:       "failed",
	StepDeadlock:     "deadlock",
	StepElided:       "elided",
}

// String returns the kind's short name.
//
// Kernel: none.
func (k StepKind) String() string {
	if int(k) < len(stepKindNames) && stepKindNames[k] != "" {
		return stepKindNames[k]
	}
	return "StepKind(" + strconv.Itoa(int(k)) + ")"
}

// AllocFlags are the ALLOC_* flags the allocator derived for an attempt, as
// an Explanation shows them.
//
// Kernel: mm/internal.h (ALLOC_*).
type AllocFlags uint32

// String returns the flags as the kernel names them, "|"-joined:
// "ALLOC_WMARK_MIN|ALLOC_CPUSET|ALLOC_KSWAPD". The watermark index leads
// unless ALLOC_NO_WATERMARKS makes it moot.
//
// Kernel: mm/internal.h (ALLOC_*).
func (f AllocFlags) String() string {
	var parts []string
	af := allocFlags(f)
	if af&allocNoWatermarks == 0 {
		switch af & allocWmarkMask {
		case allocWmarkMin:
			parts = append(parts, "ALLOC_WMARK_MIN")
		case allocWmarkLow:
			parts = append(parts, "ALLOC_WMARK_LOW")
		case allocWmarkHigh:
			parts = append(parts, "ALLOC_WMARK_HIGH")
		default:
			parts = append(parts, "ALLOC_WMARK_"+strconv.Itoa(int(af&allocWmarkMask)))
		}
	}
	af &^= allocWmarkMask
	for _, n := range allocFlagNames {
		if af&n.f != 0 {
			parts = append(parts, n.name)
			af &^= n.f
		}
	}
	if af != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(uint64(af), 16))
	}
	return strings.Join(parts, "|")
}

var allocFlagNames = [...]struct {
	f    allocFlags
	name string
}{
	{allocNoWatermarks, "ALLOC_NO_WATERMARKS"},
	{allocOOM, "ALLOC_OOM"},
	{allocNonBlock, "ALLOC_NON_BLOCK"},
	{allocMinReserve, "ALLOC_MIN_RESERVE"},
	{allocCPUSet, "ALLOC_CPUSET"},
	{allocCMA, "ALLOC_CMA"},
	{allocNoFragment, "ALLOC_NOFRAGMENT"},
	{allocHighAtomic, "ALLOC_HIGHATOMIC"},
	{allocTrylock, "ALLOC_TRYLOCK"},
	{allocKswapd, "ALLOC_KSWAPD"},
}

// Step is one thing the allocator did or decided for an explained request.
// Text says it in the kernel's terms; the numeric fields hold the numbers
// of the steps that have them (zero elsewhere).
//
// Kernel: mm/page_alloc.c (the decision each Kind names).
type Step struct {
	Kind StepKind
	// Zone is the zone the step is about, as /proc/zoneinfo heads it
	// ("Node 0, zone Normal"), or "".
	Zone string
	// Text is the step in words.
	Text string
	// AllocFlags are the alloc flags of the attempt or check, for the
	// kinds that have them (StepFreelist, StepWatermark, StepAllocFlags,
	// StepReserves, StepReclaimRetry).
	AllocFlags AllocFlags
	// The watermark numbers of a StepWatermark or StepReclaimRetry:
	// __zone_watermark_ok(zone, order, Mark, highest_zoneidx, AllocFlags,
	// Free) passes when Free - Unusable > Min + Reserve (and, for order >
	// 0, a suitable free list holds a large enough block). Free is
	// NR_FREE_PAGES as /proc/zoneinfo prints it ("pages free"), or, in
	// should_reclaim_retry, the available pages (free + reclaimable);
	// Unusable is the order's alignment slack plus, for requests without
	// reserve access, the free highatomic pages; Mark is the watermark with
	// its boost (zoneinfo's min/low/high); Min is Mark lowered for the
	// reserves the flags grant; Reserve is lowmem_reserve[highest_zoneidx]
	// (zoneinfo's protection).
	Free, Unusable, Mark, Min, Reserve int64
	// Pages counts what a step moved: pages reclaimed, blocks a pcp
	// refill took, pages reclaimable in should_reclaim_retry.
	Pages int64
	// OK is the answer of a check or call: the watermark passed, the
	// retry was granted, out_of_memory() reported progress.
	OK bool
	// Time is when the step happened, in simulated ns; Elapsed is the
	// simulated time the call it records took (reclaim, compaction, the
	// OOM killer, a sleep).
	Time, Elapsed int64
	// Site is the kernel site of a StepReport or StepWarn.
	Site string

	// mark is how many reports had been filed when the step was recorded
	// (ExplainOptions.ReportCount), to place later reports among steps.
	mark int
}

// String returns the step as one line: "Node 0, zone Normal: text", the
// zone named as /proc/zoneinfo heads it.
//
// Kernel: mm/vmstat.c:zoneinfo_show_print() (the zone's name).
func (s Step) String() string {
	if s.Zone != "" {
		return s.Zone + ": " + s.Text
	}
	return s.Text
}

// ScopeEffect is what one of the task's PF_MEMALLOC_* scopes did to the
// request's mask in current_gfp_context(). Flag 0 stands for
// gfp_allowed_mask.
//
// Kernel: include/linux/sched/mm.h:current_gfp_context().
type ScopeEffect struct {
	Flag    memalloc.Flags
	Removed gfp.Mask // bits this scope removed
	Added   gfp.Mask // bits this scope added (only the reverted PF_MEMALLOC_NOWARN)
	// Note says why a scope that is set changed nothing.
	Note string
}

// String says it in words: "__GFP_FS removed by PF_MEMALLOC_NOFS", with
// the flags as the kernel prints them.
//
// Kernel: include/trace/events/mmflags.h (the flag names).
func (s ScopeEffect) String() string {
	by := s.Flag.String()
	if s.Flag == 0 {
		by = "gfp_allowed_mask"
	}
	var parts []string
	if s.Removed != 0 {
		parts = append(parts, s.Removed.String()+" removed by "+by)
	}
	if s.Added != 0 {
		parts = append(parts, s.Added.String()+" added by "+by)
	}
	if len(parts) == 0 {
		parts = append(parts, by+": no change")
	}
	if s.Note != "" {
		parts = append(parts, "("+s.Note+")")
	}
	return strings.Join(parts, " ")
}

// Outcome is how an explained allocation ended.
//
// Kernel: mm/page_alloc.c:__alloc_pages_slowpath() (got_pg, fail; mmsim
// adds the stall limit and the refusals).
type Outcome uint8

// The outcomes.
//
// Kernel: mm/page_alloc.c:__alloc_pages_slowpath().
const (
	OutcomeFastPath Outcome = iota + 1 // a block from get_page_from_freelist at the low watermark
	OutcomeSlowPath                    // a block from __alloc_pages_slowpath, the OOM killer not invoked
	OutcomeAfterOOM                    // a block from the slow path after out_of_memory() ran
	OutcomeFailed                      // no block: the error wraps ErrNoMemory
	OutcomeStalled                     // no block: the stall limit, the error wraps ErrDeadlock
	OutcomeRefused                     // refused as invalid or a BUG before any attempt
)

var outcomeNames = [...]string{
	OutcomeFastPath: "page from the fast path",
	OutcomeSlowPath: "page from the slow path",
	OutcomeAfterOOM: "page from the slow path after the OOM killer ran",
	OutcomeFailed:   "failed (NULL)",
	OutcomeStalled:  "stalled (mmsim's stall limit: the kernel would loop on)",
	OutcomeRefused:  "refused",
}

// String says the outcome in words.
//
// Kernel: none.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && outcomeNames[o] != "" {
		return outcomeNames[o]
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Explanation is what the allocator did for one request: the mask it
// really used and why, where it looked, what it found, every slow-path
// step in order, and how it ended.
//
// Kernel: mm/page_alloc.c:__alloc_frozen_pages_noprof(),
// __alloc_pages_slowpath().
type Explanation struct {
	// Task is the requesting task, "comm[pid]", and CPU its CPU.
	Task string
	CPU  int
	// Requested is the caller's mask; Effective the mask after
	// gfp_allowed_mask and current_gfp_context(), which the allocator
	// used; Scopes says which scope removed (or added) which bits.
	Requested, Effective gfp.Mask
	Scopes               []ScopeEffect
	// TaskFlags are the task's PF flags at the entry (PF_MEMALLOC, the
	// scopes, PF_WQ_WORKER, PF_DUMPCORE matter to the slow path).
	TaskFlags memalloc.Flags
	Order     Order
	// HighestZone is gfp_zone(Effective), Migratetype gfp_migratetype
	// (MIGRATE_UNMOVABLE when page_group_by_mobility_disabled), Zonelist
	// the zones the walk may visit, in order ("Node 0, zone Normal").
	// They are zero when the request was refused before prepare.
	HighestZone gfp.ZoneType
	Migratetype gfp.Migratetype
	Zonelist    []string
	// Steps are the steps in the order they happened. A request that
	// loops for long keeps its first and last steps, with one
	// StepElided between them.
	Steps []Step
	// Outcome, Page (owned by the caller, who must free it) and Zone (the
	// block's zone) say how it ended; Err is the allocation's own error.
	Outcome Outcome
	Page    Page
	Zone    string
	Err     error
	// Retries counts the slow path's goto retry; OOMCalls the calls of
	// out_of_memory().
	Retries, OOMCalls int
	// Start and End are the simulated times of the entry and the return.
	Start, End int64

	prepared bool
}

// Kinds returns the kinds of the steps, in order: a compact view for
// tests and tools.
//
// Kernel: none.
func (e *Explanation) Kinds() []StepKind {
	ks := make([]StepKind, len(e.Steps))
	for i, s := range e.Steps {
		ks[i] = s.Kind
	}
	return ks
}

// String prints the explanation: a header with the masks (as %pGg prints
// them) and scopes, the zone selection, one line per step stamped with its
// simulated time as dmesg stamps lines, and the outcome.
//
// Kernel: kernel/printk/printk.c (the [seconds.micros] stamp),
// mm/debug.c (%pGg).
func (e *Explanation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "explain: order-%d allocation by %s on CPU %d\n", e.Order, e.Task, e.CPU)
	fmt.Fprintf(&b, "mask: requested %s, effective %s\n", e.Requested.Mode(), e.Effective.Mode())
	for _, s := range e.Scopes {
		fmt.Fprintf(&b, "  %s\n", s)
	}
	if e.TaskFlags != 0 {
		fmt.Fprintf(&b, "task flags: %s\n", e.TaskFlags)
	}
	if e.prepared {
		fmt.Fprintf(&b, "gfp_zone: highest zone %s, gfp_migratetype: %s, zonelist: %s\n",
			e.HighestZone, e.Migratetype, strings.Join(e.Zonelist, "; "))
	}
	for _, s := range e.Steps {
		fmt.Fprintf(&b, "[%5d.%06d] %s\n", s.Time/1e9, s.Time%1e9/1e3, s)
	}
	fmt.Fprintf(&b, "outcome: %s", e.Outcome)
	if e.Err == nil && e.Outcome != 0 && e.Outcome != OutcomeRefused {
		fmt.Fprintf(&b, ": %s from %s", e.Page, e.Zone)
	}
	if e.Retries > 0 || e.OOMCalls > 0 {
		fmt.Fprintf(&b, " (%d retries, %d OOM killer calls)", e.Retries, e.OOMCalls)
	}
	if e.End > e.Start {
		fmt.Fprintf(&b, ", %s of simulated time", fmtNs(e.End-e.Start))
	}
	b.WriteByte('\n')
	if e.Err != nil {
		fmt.Fprintf(&b, "error: %v\n", e.Err)
	}
	return b.String()
}

// fmtNs prints simulated nanoseconds in the unit that reads best.
func fmtNs(ns int64) string {
	switch {
	case ns >= 1e9:
		return strconv.FormatFloat(float64(ns)/1e9, 'f', 3, 64) + " s"
	case ns >= 1e6:
		return strconv.FormatFloat(float64(ns)/1e6, 'f', 3, 64) + " ms"
	case ns >= 1e3:
		return strconv.FormatFloat(float64(ns)/1e3, 'f', 3, 64) + " us"
	}
	return strconv.FormatInt(ns, 10) + " ns"
}

// ExplainOptions connect Explain to the layers above the allocator.
//
// Kernel: none (the kernel's allocator calls vmscan.c and oom_kill.c
// directly).
type ExplainOptions struct {
	// Alloc makes the allocation through the caller's own entry point
	// (the System's, with its policies and accounting); it must call
	// AllocPages for the explained task, with the explained mask and
	// order, at most once. Nil calls AllocPages directly.
	Alloc func() (Page, error)
	// ReportCount returns how many reports the report sink has received;
	// ReportsSince returns those from index i on. With both, the
	// explanation includes, in place, the reports other layers (the OOM
	// killer) filed for the task while it allocated.
	ReportCount  func() int
	ReportsSince func(i int) []bug.Report
}

// Explain performs one allocation for t, exactly as AllocPages would —
// the same result, the same side effects (reclaim, compaction, OOM kills,
// sleeps in simulated time) — while recording what the allocator does and
// why, and returns the record. It is not a dry run: a dry run would need a
// copy of the machine. The block in Explanation.Page is the caller's, who
// must free it; Explanation.Err is the allocation's own error. The error
// result is only for a request Explain cannot make: a nil task, or one on a
// CPU the machine does not have (wrapping ErrInvalid).
//
// One explanation runs at a time: Explain waits for one in progress.
// Meanwhile every other task allocates as usual, unrecorded (they leave
// the fast path's shortcut for the general path, which gives the same
// answers). Nested allocations t makes inside its own reclaim, compaction
// or a hook appear as one StepNested each. A request the caller's entry
// refuses before AllocPages (ExplainOptions.Alloc) is one StepRefused.
// Explain must not be called from a hook, a trace subscriber or a report
// sink.
//
// Kernel: mm/page_alloc.c:__alloc_frozen_pages_noprof() (what it records).
func (a *Allocator) Explain(t *memalloc.Task, mask gfp.Mask, order Order, opts ExplainOptions) (*Explanation, error) {
	if err := a.taskError(t, "allocation"); err != nil {
		return nil, err
	}
	a.explainMu.Lock()
	defer a.explainMu.Unlock()
	r := &recorder{a: a, t: t, opts: opts}
	r.e.Task, r.e.CPU, r.e.Requested, r.e.Order = t.String(), t.CPU(), mask, order
	r.e.Start = a.now()
	if opts.ReportCount != nil {
		r.firstReport = opts.ReportCount()
	}
	a.explaining.Store(r)
	a.watch.Or(watchExplain)
	// Unpublished even if the allocation panics (Config.PanicOnWarn).
	defer a.unpublish()
	var p Page
	var err error
	if opts.Alloc != nil {
		p, err = opts.Alloc()
	} else {
		p, err = a.AllocPages(t, mask, order)
	}
	a.unpublish()
	return r.end(p, err), nil
}

// unpublish ends the recording: allocations return to the fast path's
// shortcut. Preconditions: a.explainMu is held.
func (a *Allocator) unpublish() {
	a.watch.And(^watchExplain)
	a.explaining.Store(nil)
}

// Recording phases.
const (
	recWaiting   = iota // the explained allocation has not reached AllocPages
	recRecording        // it is in AllocPages
	recDone             // it has returned
)

// The length limits of a recording: a request that loops (a NOFAIL
// request, one the OOM killer keeps retrying) keeps its first
// explainHeadSteps and its last explainTailSteps steps, and up to
// explainTailSteps notable ones from between.
const (
	explainHeadSteps = 1500
	explainTailSteps = 500
)

// recorder collects one Explanation. a, t and opts are immutable once the
// recorder is published in Allocator.explaining: other tasks read t to see
// that the recorder is not theirs. Everything else is owned by the explained
// task's goroutine.
type recorder struct {
	a    *Allocator
	t    *memalloc.Task
	opts ExplainOptions
	e    Explanation

	phase int
	// tail is a ring of the latest steps once head is full; tailNext is
	// where the next one goes; elided counts the steps dropped between,
	// and kept holds the notable ones among them.
	tail     []Step
	tailNext int
	elided   int
	kept     []Step
	// firstElided is the first step elided: the marker takes its time and
	// report mark, so that reports filed meanwhile follow the marker.
	firstElided Step
	// bulk is set while rmqueue_bulk refills a pcp list: its
	// __rmqueue_smallest calls are counted in bulkSmallest, not listed.
	bulk         bool
	bulkSmallest int
	// slow is set once the slow path is entered; firstReport is the
	// report count at the start.
	slow        bool
	firstReport int
	// saidNoReserves and saidNoRestart keep a repeated answer to one step.
	saidNoReserves, saidNoRestart bool
}

// explainFor returns the recorder for t's allocation, or nil when t is not
// the explained task or its explained allocation is over. nested is set for
// an allocation t makes while its explained one is in progress.
func (a *Allocator) explainFor(t *memalloc.Task) (r *recorder, nested bool) {
	r = a.explaining.Load()
	if r == nil || r.t != t {
		return nil, false
	}
	switch r.phase {
	case recWaiting:
		return r, false
	case recRecording:
		return r, true
	}
	return nil, false
}

// begin starts recording t's allocation: the mask, the scopes.
func (r *recorder) begin(req, eff gfp.Mask) {
	r.phase = recRecording
	r.e.Requested, r.e.Effective = req, eff
	r.e.TaskFlags = r.t.Flags()
	r.e.Scopes = scopeEffects(r.e.TaskFlags, req, req&r.a.allowedMask, eff)
}

// scopeEffects attributes the bits current_gfp_context() changed to the
// scope flags that changed them. Each flag's own effect comes from
// GFPContext itself, on a scratch task with that flag alone; a bit two
// flags would both clear goes to the one the kernel tests first (NOIO before
// NOFS; the reverted NORECLAIM before both).
func scopeEffects(pf memalloc.Flags, req, allowed, eff gfp.Mask) []ScopeEffect {
	var out []ScopeEffect
	if cut := req &^ allowed; cut != 0 {
		out = append(out, ScopeEffect{Removed: cut})
	}
	removed, added := allowed&^eff, eff&^allowed
	var claimed gfp.Mask
	for _, f := range []memalloc.Flags{memalloc.PFMemallocNoReclaim, memalloc.PFMemallocNoIO,
		memalloc.PFMemallocNoFS, memalloc.PFMemallocPin, memalloc.PFMemallocNoWarn} {
		if pf&f == 0 {
			continue
		}
		alone := memalloc.NewTaskWith("explain", memalloc.WithFlags(f)).GFPContext(allowed)
		wouldRemove, wouldAdd := allowed&^alone, alone&^allowed
		se := ScopeEffect{Flag: f, Removed: wouldRemove & removed &^ claimed, Added: wouldAdd & added}
		claimed |= se.Removed
		switch {
		case wouldRemove == 0 && wouldAdd == 0:
			se.Note = "the bits it clears are not in the mask"
		case wouldRemove&^removed != 0:
			se.Note = "current_gfp_context() left " + (wouldRemove &^ removed).String() +
				" set: an earlier flag took its else-if branch"
		case se.Removed == 0 && se.Added == 0:
			se.Note = "already removed by a stronger scope"
		}
		out = append(out, se)
	}
	return out
}

// refusedOrder records a request refused for its order, at the entry.
func (r *recorder) refusedOrder(mask gfp.Mask, order Order) {
	// The kernel refuses before it applies the scopes; the effective mask
	// shown is what they would have made of it.
	r.begin(mask, r.t.GFPContext(mask&r.a.allowedMask))
	text := fmt.Sprintf("__alloc_frozen_pages_noprof: order %d", order)
	if order > MaxPageOrder {
		text += fmt.Sprintf(" > MAX_PAGE_ORDER (%d): WARN_ON_ONCE_GFP (silent under __GFP_NOWARN) and NULL, "+
			"even with __GFP_NOFAIL", MaxPageOrder)
	} else {
		text += " is negative: refused"
	}
	r.add(Step{Kind: StepRefused, Site: "mm/page_alloc.c:__alloc_frozen_pages_noprof", Text: text})
	r.phase = recDone
}

// removedBy says why mask lacks bit: which scope removed it, or that the
// request never had it.
func (r *recorder) removedBy(bit gfp.Mask) string {
	for _, s := range r.e.Scopes {
		if s.Removed&bit != 0 {
			if s.Flag == 0 {
				return bit.String() + " cut by gfp_allowed_mask"
			}
			return bit.String() + " removed by " + s.Flag.String() + " scope"
		}
	}
	return bit.String() + " not in the request"
}

// add records a step, stamping its time and report mark.
func (r *recorder) add(s Step) {
	if s.Time == 0 {
		s.Time = r.a.now()
	}
	if r.opts.ReportCount != nil {
		s.mark = r.opts.ReportCount()
	}
	if len(r.e.Steps) < explainHeadSteps {
		r.e.Steps = append(r.e.Steps, s)
		return
	}
	if len(r.tail) < explainTailSteps {
		r.tail = append(r.tail, s)
		return
	}
	if old := r.tail[r.tailNext]; old.notable() && len(r.kept) < explainTailSteps {
		r.kept = append(r.kept, old)
	} else {
		if r.elided == 0 {
			r.firstElided = old
		}
		r.elided++
	}
	r.tail[r.tailNext] = s
	r.tailNext = (r.tailNext + 1) % explainTailSteps
}

// notable reports whether a step is rare enough to keep when the middle of
// a long loop is elided: a warning, a report, a fallback, a highatomic
// change, a nested allocation, a stall warning that printed.
func (s Step) notable() bool {
	switch s.Kind {
	case StepWarn, StepReport, StepFallback, StepNested, StepCharge, StepDeadlock:
		return true
	case StepStall, StepHighatomic:
		return s.OK
	}
	return false
}

// addf records a step of the kind about zone z (nil for none).
func (r *recorder) addf(kind StepKind, z *Zone, format string, args ...any) {
	r.add(Step{Kind: kind, Zone: zoneLabel(z), Text: fmt.Sprintf(format, args...)})
}

// addOK records a step with its answer ok.
func (r *recorder) addOK(kind StepKind, z *Zone, ok bool, format string, args ...any) {
	r.add(Step{Kind: kind, Zone: zoneLabel(z), OK: ok, Text: fmt.Sprintf(format, args...)})
}

// zoneLabel names a zone as /proc/zoneinfo heads it, without its padding.
func zoneLabel(z *Zone) string {
	if z == nil {
		return ""
	}
	return fmt.Sprintf("Node %d, zone %s", z.node.id, z.Name())
}

// prepared records prepare_alloc_pages' answers.
func (r *recorder) prepared(ac *allocContext, mask gfp.Mask) {
	e := &r.e
	e.prepared = true
	e.HighestZone, e.Migratetype = ac.highest, ac.mt
	e.Zonelist = e.Zonelist[:0]
	for _, z := range ac.zonelist {
		if z.typ <= ac.highest {
			e.Zonelist = append(e.Zonelist, zoneLabel(z))
		}
	}
	mt := "gfp_migratetype -> " + ac.mt.String()
	if r.a.mobilityDisabled {
		mt = "page_group_by_mobility_disabled: every request is " + ac.mt.String()
	}
	pref := "none: no zone up to " + ac.highest.String() + " has memory"
	if ac.preferred >= 0 {
		pref = zoneLabel(ac.zonelist[ac.preferred])
	}
	zl := "ZONELIST_FALLBACK"
	if mask&gfp.ThisNode != 0 {
		zl = "ZONELIST_NOFALLBACK (__GFP_THISNODE)"
	}
	r.addf(StepPrepare, nil, "prepare_alloc_pages: gfp_zone -> highest zone %s; %s of node %d (CPU %d); %s; preferred zone %s",
		ac.highest, zl, r.a.cpuNode[ac.t.CPU()].id, ac.t.CPU(), mt, pref)
}

// freelist records the start of a get_page_from_freelist attempt.
func (r *recorder) freelist(why string, mask gfp.Mask, af allocFlags) {
	r.add(Step{Kind: StepFreelist, AllocFlags: AllocFlags(af),
		Text: fmt.Sprintf("%s: get_page_from_freelist(%s, %s)", why, mask, AllocFlags(af))})
}

// wmarkNames are the watermarks' names as zoneinfo prints them.
var wmarkNames = [nrWmarks]string{"min", "low", "high", "promo"}

// watermark records one watermark check of zone z: the numbers of
// __zone_watermark_ok, and ok, the answer the allocator got.
func (r *recorder) watermark(z *Zone, order Order, idx int, highest gfp.ZoneType, af allocFlags, ok bool, what string) {
	mark := z.wmarkPages(idx)
	n := z.watermarkNumbers(order, mark, highest, af, z.freePages.Load())
	s := Step{Kind: StepWatermark, Zone: zoneLabel(z), AllocFlags: AllocFlags(af), OK: ok,
		Free: n.free, Unusable: n.unusable, Mark: n.mark, Min: n.min, Reserve: n.reserve}
	s.Text = "watermark " + wmarkNames[idx] + " " + okWord(ok) + ": " + n.describe(wmarkNames[idx], order, ok, af)
	if b := z.boost.Load(); b != 0 {
		s.Text += fmt.Sprintf("; the mark includes watermark_boost %d", b)
		if ok && !n.passes() && order == 0 && af&allocMinReserve != 0 && af&allocWmarkMask == allocWmarkMin {
			s.Text += " (zone_watermark_fast retried without it for ALLOC_MIN_RESERVE: passed)"
		}
	}
	if what != "" {
		s.Text += "; " + what
	}
	r.add(s)
}

func okWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "failed"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// describe says a check's arithmetic: "free 1234 > low 56 + lowmem_reserve
// 0 (ALLOC_WMARK_LOW|ALLOC_KSWAPD)".
func (n wmarkNumbers) describe(name string, order Order, ok bool, af allocFlags) string {
	var b strings.Builder
	fmt.Fprintf(&b, "free %d", n.free)
	if n.unusable != 0 {
		fmt.Fprintf(&b, " - unusable %d", n.unusable)
		if n.highatomic != 0 {
			fmt.Fprintf(&b, " (free highatomic %d, no ALLOC_RESERVES flag)", n.highatomic)
		}
	}
	if n.freeOK {
		b.WriteString(" > ")
	} else {
		b.WriteString(" <= ")
	}
	fmt.Fprintf(&b, "%s %d", name, n.mark)
	if n.min != n.mark {
		fmt.Fprintf(&b, " lowered to %d for the reserves", n.min)
	}
	fmt.Fprintf(&b, " + lowmem_reserve %d (%s)", n.reserve, AllocFlags(af))
	if n.freeOK && order > 0 {
		if n.listOK {
			fmt.Fprintf(&b, "; a free list it may use holds a block of order >= %d", order)
		} else {
			fmt.Fprintf(&b, "; but no free list it may use holds a block of order >= %d", order)
		}
	}
	return b.String()
}

// reclaimAllowed records what direct reclaim may do for the request.
func (r *recorder) reclaimAllowed(mask gfp.Mask, fsReclaim bool) {
	fs, io := mask&gfp.FS != 0, mask&gfp.IO != 0
	text := "direct reclaim allowed: __GFP_DIRECT_RECLAIM set; __perform_reclaim sets PF_MEMALLOC (memalloc_noreclaim_save) " +
		"and calls try_to_free_pages with scan_control may_writepage=1 may_unmap=1 may_swap=1; may enter fs: " + yesNo(fs)
	if !fs {
		text += " (" + r.removedBy(gfp.FS) + ": no pageout of dirty shmem or swap-cache folios, the superblock " +
			"shrinker stops, throttle_direct_reclaim waits at most HZ)"
	}
	text += "; may do io: " + yesNo(io)
	if !io {
		text += " (" + r.removedBy(gfp.IO) + ": anonymous folios are not added to swap)"
	}
	text += "; dirty file folios are never written by reclaim; lockdep fs_reclaim map: "
	if fsReclaim {
		text += "taken"
	} else {
		text += "not taken"
	}
	r.addf(StepReclaim, nil, "%s", text)
}

// pcpRefill records a refill of an empty pcp list.
func (r *recorder) pcpRefill(z *Zone, cpu int, order Order, mt gfp.Migratetype, batch, got int) {
	r.add(Step{Kind: StepPCP, Zone: zoneLabel(z), Pages: int64(got), Text: fmt.Sprintf(
		"rmqueue_pcplist: CPU %d's pcp list order %d migratetype %s empty: rmqueue_bulk refilled %d of %d blocks "+
			"(%d taken by __rmqueue_smallest, any others by the fallbacks above)", cpu, order, mt, got, batch, r.bulkSmallest)})
	r.bulkSmallest = 0
}

// smallest records a __rmqueue_smallest success (counted during a bulk
// refill).
func (r *recorder) smallest(z *Zone, order, found Order, mt gfp.Migratetype, pfn PFN) {
	if r.bulk {
		r.bulkSmallest++
		return
	}
	text := fmt.Sprintf("buddy: __rmqueue_smallest order %d migratetype %s: ", order, mt)
	if found == order {
		text += fmt.Sprintf("took the free block at pfn %#x", uint64(pfn))
	} else {
		text += fmt.Sprintf("split a free order-%d block at pfn %#x (expand)", found, uint64(pfn))
	}
	r.addf(StepBuddy, z, "%s", text)
}

// end finishes the recording: the outcome, the reports of other layers in
// place, the elided steps.
func (r *recorder) end(p Page, err error) *Explanation {
	e := &r.e
	e.End = r.a.now()
	if r.phase == recWaiting {
		// The caller's entry refused the request before the page
		// allocator saw it.
		e.Effective = e.Requested
		r.addf(StepRefused, nil, "refused before the page allocator: %v", err)
	}
	r.phase = recDone
	e.Page, e.Err = p, err
	switch {
	case err == nil && !r.slow:
		e.Outcome = OutcomeFastPath
	case err == nil && e.OOMCalls > 0:
		e.Outcome = OutcomeAfterOOM
	case err == nil:
		e.Outcome = OutcomeSlowPath
	case errors.Is(err, ErrDeadlock):
		e.Outcome = OutcomeStalled
	case errors.Is(err, ErrInvalid) || errors.Is(err, ErrBug):
		e.Outcome = OutcomeRefused
	default:
		e.Outcome = OutcomeFailed
	}
	if err == nil {
		e.Zone = zoneLabel(r.a.ZoneOf(p.pfn))
	}
	if len(r.tail) > 0 {
		tail := make([]Step, 0, len(r.tail))
		tail = append(append(tail, r.tail[r.tailNext:]...), r.tail[:r.tailNext]...)
		if r.elided > 0 {
			first := r.firstElided
			e.Steps = append(e.Steps, Step{Kind: StepElided, Time: first.Time, mark: first.mark,
				Text: fmt.Sprintf("... %d steps of the same loop elided (%d notable ones kept) ...", r.elided, len(r.kept))})
		}
		e.Steps = append(e.Steps, r.kept...)
		e.Steps = append(e.Steps, tail...)
	}
	if r.opts.ReportsSince != nil {
		r.mergeReports(r.opts.ReportsSince(r.firstReport))
	}
	return e
}

// killedRe finds the victim in the OOM killer's report.
var killedRe = regexp.MustCompile(`Killed process (\d+) \(([^)]*)\)`)

// mergeReports places the reports filed for the task during the
// allocation among the steps, by the report count each step saw: a
// report filed before step i was recorded goes before it.
func (r *recorder) mergeReports(reports []bug.Report) {
	if len(reports) == 0 {
		return
	}
	comm, pid := r.t.Comm(), r.t.PID()
	var out []Step
	i := 0
	for k, rep := range reports {
		idx := r.firstReport + k
		for i < len(r.e.Steps) && r.e.Steps[i].mark <= idx {
			out = append(out, r.e.Steps[i])
			i++
		}
		if rep.Comm != comm || rep.PID != pid {
			continue
		}
		first, _, _ := strings.Cut(rep.Text, "\n")
		s := Step{Kind: StepReport, Site: rep.Site, Time: rep.Time, Text: rep.Kind.String() + " at " + rep.Site + ": " + first}
		if rep.Kind == bug.OOM {
			if m := killedRe.FindStringSubmatch(rep.Text); m != nil {
				s.Kind = StepOOM
				s.Text = fmt.Sprintf("OOM: oom_kill_process killed pid %s (%s)", m[1], m[2])
			}
		}
		out = append(out, s)
	}
	r.e.Steps = append(out, r.e.Steps[i:]...)
}

// reserveHighatomic records what reserve_highatomic_pageblock did after an
// ALLOC_HIGHATOMIC allocation at pfn; before is nr_reserved_highatomic
// before it ran.
// Preconditions: z.mu is held.
func (r *recorder) reserveHighatomic(z *Zone, pfn PFN, before int64) {
	text := "reserve_highatomic_pageblock: "
	maxManaged := alignUp(z.managed/100, PageblockNrPages)
	switch {
	case z.reservedHighatomic > before:
		text += fmt.Sprintf("pageblock of pfn %#x is now MIGRATE_HIGHATOMIC (nr_reserved_highatomic %d of at most %d)",
			uint64(pfn), z.reservedHighatomic, maxManaged)
	case z.managed/100 < PageblockNrPages:
		text += fmt.Sprintf("not reserved: 1%% of the zone (%d pages) is less than a pageblock", z.managed/100)
	case before >= maxManaged:
		text += fmt.Sprintf("not reserved: nr_reserved_highatomic %d already at its limit %d (about 1%% of the zone)",
			before, maxManaged)
	default:
		text += fmt.Sprintf("not reserved: the pageblock of pfn %#x is %s already, or not mergeable", uint64(pfn), z.blockMT(pfn))
	}
	r.addOK(StepHighatomic, z, z.reservedHighatomic > before, "%s", text)
}

// slowpathEntry records what the slow path's request may do.
func (r *recorder) slowpathEntry(mask gfp.Mask, order Order, canDirectReclaim, canCompact, costly, nofail bool) {
	r.slow = true
	dr := "yes (__GFP_DIRECT_RECLAIM)"
	if !canDirectReclaim {
		dr = "no (" + r.removedBy(gfp.DirectReclaim) + ")"
	}
	cc := "yes (gfp_compaction_allowed: __GFP_IO)"
	if !canCompact {
		if canDirectReclaim {
			cc = "no (gfp_compaction_allowed needs __GFP_IO: " + r.removedBy(gfp.IO) + ")"
		} else {
			cc = "no (no direct reclaim)"
		}
	}
	r.addf(StepSlowPath, nil, "__alloc_pages_slowpath: the fast path found no zone above its low watermark; "+
		"can_direct_reclaim %s, can_compact %s, costly_order %s (order %d, PAGE_ALLOC_COSTLY_ORDER %d), nofail %s",
		dr, cc, yesNo(costly), order, CostlyOrder, yesNo(nofail))
}

// compactFirst records whether the slow path compacts before it
// reclaims.
func (r *recorder) compactFirst(order Order, costly, canCompact, first bool, mt gfp.Migratetype, mask gfp.Mask) {
	if order == 0 {
		return
	}
	switch {
	case first && costly:
		r.addf(StepSlowPath, nil, "compact_first: costly order %d: direct compaction before reclaim, at "+
			"INIT_COMPACT_PRIORITY (COMPACT_PRIO_ASYNC)", order)
	case first:
		r.addf(StepSlowPath, nil, "compact_first: high-order %s request (not MIGRATE_MOVABLE): direct compaction before "+
			"reclaim, at INIT_COMPACT_PRIORITY (COMPACT_PRIO_ASYNC), to keep fragmentation within its migratetype", mt)
	case !canCompact:
		r.addf(StepSlowPath, nil, "no compact_first: the request cannot compact")
	default:
		r.addf(StepSlowPath, nil, "no compact_first: a non-costly MIGRATE_MOVABLE request reclaims first, at "+
			"DEF_COMPACT_PRIORITY (COMPACT_PRIO_SYNC_LIGHT)")
	}
}

// allocFlags records gfp_to_alloc_flags' answer and its reasons.
func (r *recorder) allocFlags(mask gfp.Mask, order Order, af allocFlags) {
	why := []string{"ALLOC_WMARK_MIN: the slow path works down to the min watermark"}
	if mask&gfp.KswapdReclaim != 0 {
		why = append(why, "__GFP_KSWAPD_RECLAIM -> ALLOC_KSWAPD")
	}
	if mask&gfp.High != 0 {
		why = append(why, "__GFP_HIGH -> ALLOC_MIN_RESERVE")
	}
	if mask&gfp.DirectReclaim == 0 {
		if mask&gfp.NoMemalloc != 0 {
			why = append(why, "no __GFP_DIRECT_RECLAIM, but __GFP_NOMEMALLOC: no ALLOC_NON_BLOCK")
		} else {
			why = append(why, "no __GFP_DIRECT_RECLAIM -> ALLOC_NON_BLOCK")
			if af&allocHighAtomic != 0 {
				why = append(why, "order > 0 with ALLOC_MIN_RESERVE -> ALLOC_HIGHATOMIC")
			}
		}
		if af&allocMinReserve != 0 {
			why = append(why, "atomic ALLOC_MIN_RESERVE may ignore cpuset mems: no ALLOC_CPUSET")
		}
	}
	r.add(Step{Kind: StepAllocFlags, AllocFlags: AllocFlags(af), Text: fmt.Sprintf(
		"slow path: gfp_to_alloc_flags -> %s (%#x): %s", AllocFlags(af), uint32(af), strings.Join(why, "; "))})
}

// reserves records __gfp_pfmemalloc_flags: the reserve access the request
// gets, which replaces its alloc flags.
func (r *recorder) reserves(mask gfp.Mask, reserve, af allocFlags, first bool) {
	pf := r.t.Flags()
	if reserve == 0 {
		if r.saidNoReserves {
			return
		}
		r.saidNoReserves = true
		why := "not PF_MEMALLOC, no __GFP_MEMALLOC, not an OOM victim"
		if mask&gfp.NoMemalloc != 0 {
			why = "__GFP_NOMEMALLOC denies them"
			if pf&memalloc.PFMemalloc != 0 {
				why += ", even to this PF_MEMALLOC task"
			}
		}
		r.add(Step{Kind: StepReserves, AllocFlags: AllocFlags(af),
			Text: "__gfp_pfmemalloc_flags -> 0: no access to the memory reserves (" + why + ")"})
		return
	}
	var why string
	switch {
	case mask&gfp.Memalloc != 0:
		why = "__GFP_MEMALLOC"
	case pf&memalloc.PFMemalloc != 0:
		why = "PF_MEMALLOC: the task allocates to free memory"
	default:
		why = "tsk_is_oom_victim(current) (TIF_MEMDIE): the victim may dip into the reserves to exit"
	}
	name := "ALLOC_NO_WATERMARKS"
	if reserve == allocOOM {
		name = "ALLOC_OOM"
	}
	text := fmt.Sprintf("__gfp_pfmemalloc_flags -> %s (%s): the alloc flags become %s, the nodemask is dropped",
		name, why, AllocFlags(af))
	if !first {
		text += " (the reserves retry already ran)"
	}
	r.add(Step{Kind: StepReserves, AllocFlags: AllocFlags(af), Text: text})
}

// retry records a goto retry.
func (r *recorder) retry(why string) {
	r.e.Retries++
	r.addf(StepRetry, nil, "goto retry (#%d): %s", r.e.Retries, why)
}

// noRestart records, once, that the cpuset and zonelist checks never
// restart the slow path in mmsim.
func (r *recorder) noRestart() {
	if r.saidNoRestart {
		return
	}
	r.saidNoRestart = true
	r.addf(StepRestart, nil, "check_retry_cpuset/check_retry_zonelist: no cpuset or zonelist change (mmsim models "+
		"no cpusets and never rebuilds zonelists): no goto restart, here or later")
}

// compactPrioName names a compaction priority.
func compactPrioName(prio int) string {
	switch prio {
	case CompactPrioSyncFull:
		return "COMPACT_PRIO_SYNC_FULL"
	case CompactPrioSyncLight:
		return "COMPACT_PRIO_SYNC_LIGHT"
	case CompactPrioAsync:
		return "COMPACT_PRIO_ASYNC"
	}
	return strconv.Itoa(prio)
}

// compactResultName names a compaction result as the kernel's enum does.
func compactResultName(c CompactResult) string { return "COMPACT_" + strings.ToUpper(c.String()) }

// compactRetry records should_compact_retry's answer; prio and retries
// are their values after the call.
func (r *recorder) compactRetry(order Order, result CompactResult, prio, retries int, ok bool) {
	var text string
	maxRetries := maxCompactRetries
	if order > CostlyOrder {
		maxRetries /= 4
	}
	switch {
	case order == 0:
		text = "order 0: compaction cannot help: no retry"
	case result == CompactSkipped:
		text = fmt.Sprintf("COMPACT_SKIPPED (too few free order-0 pages to migrate into): compaction_zonelist_suitable -> %t", ok)
	case ok && result == CompactSuccess && retries > 0:
		text = fmt.Sprintf("COMPACT_SUCCESS but the allocation raced: compaction_retries %d <= MAX_COMPACT_RETRIES %d", retries, maxRetries)
	case ok:
		text = fmt.Sprintf("%s: retry with compact_priority raised to %s", compactResultName(result), compactPrioName(prio))
	default:
		minPrio := "MIN_COMPACT_PRIORITY"
		if order > CostlyOrder {
			minPrio = "MIN_COMPACT_COSTLY_PRIORITY"
		}
		text = fmt.Sprintf("%s: compact_priority %s is already %s: no retry", compactResultName(result), compactPrioName(prio), minPrio)
	}
	r.add(Step{Kind: StepCompactRetry, OK: ok, Text: "should_compact_retry: " + text})
}

// reclaimRetryZone records should_reclaim_retry's look at one zone.
func (r *recorder) reclaimRetryZone(z *Zone, order Order, highest gfp.ZoneType, af allocFlags, reclaimable, available int64, loops int, ok bool) {
	n := z.watermarkNumbers(order, z.wmark[WmarkMin].Load()+z.boost.Load(), highest, af, available)
	verdict := "-> no"
	if ok {
		verdict = "-> retry"
	}
	r.add(Step{Kind: StepReclaimRetry, Zone: zoneLabel(z), AllocFlags: AllocFlags(af), OK: ok, Pages: reclaimable,
		Free: n.free, Unusable: n.unusable, Mark: n.mark, Min: n.min, Reserve: n.reserve,
		Text: fmt.Sprintf("should_reclaim_retry: no_progress_loops %d (MAX_RECLAIM_RETRIES %d), available = reclaimable %d + free %d: "+
			"__zone_watermark_ok(min): available %s %s", loops, MaxReclaimRetries, reclaimable, available-reclaimable,
			strings.TrimPrefix(n.describe("min", order, ok, af), "free "), verdict)})
}

// outOfMemory records an out_of_memory() call.
func (r *recorder) outOfMemory(mask gfp.Mask, have, progress bool, elapsed int64) {
	if !have {
		r.addf(StepOOM, nil, "__alloc_pages_may_oom: the machine has no OOM killer: no progress")
		return
	}
	r.e.OOMCalls++
	var why string
	switch {
	case progress && mask&gfp.FS == 0:
		why = "true: a request without __GFP_FS (" + r.removedBy(gfp.FS) + ") never gets a kill: out_of_memory() " +
			"reports progress so that the allocator retries (unless the task itself is exiting)"
	case progress:
		why = "true: a victim was killed, or one is still exiting (see the OOM report)"
	default:
		why = "false: no progress (panic_on_oom, or nothing killable)"
	}
	r.add(Step{Kind: StepOOM, OK: progress, Elapsed: elapsed, Text: fmt.Sprintf(
		"__alloc_pages_may_oom: out_of_memory() -> %s (%s of simulated time)", why, fmtNs(elapsed))})
}
