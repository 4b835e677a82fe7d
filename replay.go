package mmsim

import (
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/perfscript"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// Replay: a real kernel's allocator trace, run through a simulated machine.
//
// Each recorded allocation is made again, with its recorded mask and order,
// by a task standing for the recorded thread (one per TID, named by its
// comm, on the recorded CPU); each recorded free frees the block that
// allocation got here. The capture's pfns are the real machine's, so a
// table maps each recorded pfn (and each recorded slab or vmap address) to
// the simulated block that stands for it.

// ReplayOption configures a Replay.
type ReplayOption func(*replayConfig)

type replayConfig struct {
	sampleEvery time.Duration
	progress    io.Writer
	progressSet bool
	noDaemons   bool
	pagesOnly   bool
}

// ReplaySampleEvery sets how often, in the capture's own time, the report
// samples the free-page picture (buddyinfo, fragmentation and unusable
// indices, watermarks). Default 100 ms; the first and last events are
// always sampled.
func ReplaySampleEvery(d time.Duration) ReplayOption {
	return func(c *replayConfig) { c.sampleEvery = d }
}

// ReplayProgress draws a progress bar on w (nil: none). By default it is
// drawn on stderr when stderr is a terminal.
func ReplayProgress(w io.Writer) ReplayOption {
	return func(c *replayConfig) { c.progress, c.progressSet = w, true }
}

// ReplayWithoutDaemons leaves simulated time where allocation work puts
// it: kswapd, kcompactd and the flushers run only when an allocation
// wakes and waits on them. By default the replay lets simulated time
// follow the capture's timestamps, running the daemons due meanwhile.
func ReplayWithoutDaemons() ReplayOption {
	return func(c *replayConfig) { c.noDaemons = true }
}

// ReplayPagesOnly replays only the page allocator's events
// (mm_page_alloc, mm_page_free, mm_page_free_batched), counting the slab
// and vmalloc ones as skipped.
func ReplayPagesOnly() ReplayOption {
	return func(c *replayConfig) { c.pagesOnly = true }
}

// ReplayReport is what a Replay did.
type ReplayReport struct {
	// Lines is the number of lines read, Events the event lines among
	// them, Malformed the lines skipped as not of perf's shape (with the
	// first one's error in FirstMalformed).
	Lines, Events, Malformed int64
	FirstMalformed           error
	// ByKind counts the event lines per tracepoint (perfscript.Other for
	// the tracepoints a replay does not act on, such as vmscan's).
	ByKind [perfscript.NrKinds]int64
	// Every event is counted once in one of Replayed, Refused, Unpaired,
	// Batched, NilFrees and Skipped, which add up to Events.
	//
	// Replayed counts the events made again: allocations (those that
	// failed here included) and frees. Refused counts allocations whose
	// recorded values cannot be made (a gfp_flags text that is not a
	// mask, a pfn beyond MAX_PHYSMEM_BITS); they are listed in Failures
	// too. Unpaired counts frees of blocks the capture never saw
	// allocated (allocated before it started): skipped. Batched counts
	// the mm_page_free_batched events of pages whose mm_page_free came
	// first: free_unref_folios traces each folio twice, once as
	// __free_pages_prepare frees it and once as it commits the batch, and
	// the block was freed at the first. NilFrees counts kfree(NULL) and
	// kfree(ZERO_SIZE_PTR), traced before kfree's ZERO_OR_NULL_PTR check,
	// and kmem_cache_free(NULL). Skipped counts events a replay
	// does not act on (mm_page_alloc_zone_locked, mm_page_pcpu_drain, a
	// failed alloc_vmap_area, and anything else).
	Replayed, Refused, Unpaired, Batched, NilFrees, Skipped int64
	// Reallocated counts allocations of a recorded pfn (or object) still
	// held here, whose free the capture lost: the held block is freed
	// first. Those frees are not events of the capture.
	Reallocated int64
	// FailedInCapture counts the allocations the capture shows failing:
	// an mm_page_alloc of no page (pfn=0x0, page=(nil)), a kmalloc or
	// kmem_cache_alloc of ptr=(nil). The kernel traces a failure as it
	// does a success, with the NULL it returned. Each is made again and
	// counted in Replayed, so that the machine goes through what the
	// recorded one did (the slow path, reclaim, compaction); if it fails
	// here too, it is in Failures. FailedInCaptureOnly counts those that
	// succeeded here: as the recorded caller got nothing, and no event
	// of the capture will free what it got, each is freed at once.
	FailedInCapture, FailedInCaptureOnly int64
	// UnknownFlags counts, per flag name the modelled kernel lacks (a
	// capture of another kernel version or configuration), the
	// allocations whose gfp_flags named it. They are made with the bits of
	// the names it knows.
	UnknownFlags map[string]int64
	// Failures lists the allocations that failed here, by kind, mask and
	// order, most frequent first.
	Failures []ReplayFailure
	// Live counts what the replay still holds at the end: page blocks
	// (and their pages), slab objects, vmalloc areas.
	LiveBlocks, LivePages, LiveObjects, LiveVmalloc int64
	// Tasks is the number of recorded threads.
	Tasks int
	// Start and End are the capture's first and last timestamps
	// (nanoseconds since the real machine's boot); SimElapsed is the
	// simulated time the replay took.
	Start, End, SimElapsed int64
	// Samples is the free-page picture over the capture's time.
	Samples []ReplaySample
	// Zones says, per populated zone, how close the replay came to its
	// watermarks.
	Zones []ReplayZone
	// Activity is what the machine did to keep up: kswapd wakes, reclaim,
	// compaction, OOM kills, warn_alloc reports.
	Activity ReplayActivity
	// PanickedAt is the line at which the machine panicked (the OOM
	// killer found nothing to kill, or panic_on_oom), 0 if it did not.
	// A panicked machine is dead, so the replay stops there.
	PanickedAt int
	// Wall is the host time the replay took.
	Wall time.Duration
}

// ReplayFailure is one kind of failed allocation and how often it failed.
type ReplayFailure struct {
	Event string   // "kmem:mm_page_alloc", "kmem:kmalloc", ...
	Mask  gfp.Mask // the recorded mask
	Order int      // the order (page events), else -1
	Size  int64    // the size (slab and vmalloc events), else 0
	Err   string   // the first failure's error
	Count int64
}

// ReplaySample is the machine's free memory at one moment of the capture.
type ReplaySample struct {
	// Time is the capture's timestamp, nanoseconds since its first event;
	// Sim the simulated clock then.
	Time, Sim int64
	// Free counts free blocks per order, summed over every zone, as
	// /proc/buddyinfo shows them.
	Free [zone.NrPageOrders]int64
	// FreePages is the sum of free pages over every zone.
	FreePages int64
	// Zones holds per-zone detail, in ReplayReport.Zones order.
	Zones []ReplayZoneSample
}

// ReplayZoneSample is one zone at one sample.
type ReplayZoneSample struct {
	FreePages int64
	// FragIndex and Unusable are the kernel's fragmentation index and
	// unusable free index per order, in thousandths (FragIndex -1000:
	// a block of that order is free).
	FragIndex, Unusable [zone.NrPageOrders]int
}

// ReplayZone is one zone's watermark picture over the replay.
type ReplayZone struct {
	Name           string // "Node 0, zone Normal"
	Managed        int64
	Min, Low, High int64
	// MinFree is the fewest free pages seen at a sample.
	MinFree int64
	// BelowHigh, BelowLow and BelowMin count the samples at which the
	// zone's free pages were under that watermark; Crossings the samples
	// at which it went from above the low watermark to below it.
	BelowHigh, BelowLow, BelowMin, Crossings int64
}

// ReplayActivity is the machine's own work during the replay: deltas of
// its vm events.
type ReplayActivity struct {
	KswapdWakes                      int64
	PgscanKswapd, PgscanDirect       int64
	PgstealKswapd, PgstealDirect     int64
	Allocstall, CompactStall         int64
	OOMKills, WarnAllocs, OOMReports int64
	Panicked                         bool
}

// failKey keys ReplayReport.Failures.
type failKey struct {
	kind  perfscript.Kind
	mask  gfp.Mask
	order int
	size  int64
}

// replayObject is a recorded slab or vmalloc object's stand-in.
type replayObject struct {
	obj   Object
	cache *Cache // nil for kmalloc and vmalloc
}

// replayer is one Replay's state.
type replayer struct {
	s   *System
	cfg replayConfig
	rep *ReplayReport

	tasks    map[int]*memalloc.Task
	comms    map[int]string // each recorded thread's comm, as last seen
	lastTID  int
	lastTask *memalloc.Task
	nrCPUs   int
	// lastCPU is the last event's recorded CPU, cpu the machine's CPU
	// it maps to (-1 for -1, a line without a CPU).
	lastCPU int32
	cpu     int

	// text is the text of the block being replayed, which its events'
	// spans index.
	text  []byte
	pages pfnTable
	// freed holds, per recorded thread, the pfns its last mm_page_free
	// events named, for the mm_page_free_batched events that echo them;
	// freedTID and freedLast are the last thread's.
	freed     map[int]*freeEchoes
	freedTID  int
	freedLast *freeEchoes
	// unknownNames caches the unknown flag names per gfp_flags text.
	unknownNames map[string][]string
	// prefetched is prefetch's result, kept so that its loads are made.
	prefetched uint64
	objects    map[uint64]replayObject
	vmaps      map[uint64]Object
	caches     map[string]*Cache

	failures map[failKey]*ReplayFailure
	// panicked is set when a failure finds the machine panicked.
	panicked bool

	// Time: the capture's first timestamp, the simulated clock then, and
	// the next sample's capture time.
	t0, sim0, nextSample int64
	started              bool
	zones                []*zone.Zone
	above                []bool

	base ReplayActivity
}

// Replay reads `perf script` text of the allocator's tracepoints from r
// and makes every recorded allocation and free again on this machine.
// perf's default line is read, and the variants of a capture recorded
// with -g (the callchain under each event is skipped) or printed with
// -F +pid, -F -cpu or -F -comm. A thread whose comm changes (exec) is
// renamed.
// Events it cannot pair (a free of a block allocated before the capture
// started) are counted and skipped; a line not of perf's shape is counted
// and skipped; allocations that fail here are counted by mask and order.
// A gfp_flags naming flags the modelled kernel lacks (another version's
// or configuration's) is made with the flags it knows, and the others
// are counted by name.
// Only a read error of r, a line of 1 MiB or more (bufio.ErrTooLong), a
// simulated panic (the machine is dead) or a Close of the machine
// (ErrClosed, at the end of the block being replayed) ends a replay
// early. The blocks the capture left allocated stay allocated.
//
// Replayed: kmem:mm_page_alloc, mm_page_free and mm_page_free_batched
// (made with AllocPages and FreePages; a batched free that follows the
// mm_page_free of its page by its thread, as free_unref_folios traces
// both, is counted as that free's, and one that does not is freed alone);
// kmem:kmalloc, kfree, kmem_cache_alloc and kmem_cache_free (a cache the
// machine lacks is created with the recorded object size); and
// vmalloc:alloc_vmap_area / free_vmap_area_noflush, each area made as a
// vmalloc of its recorded size less the guard page. Every other event is
// counted and skipped.
//
// A replayed block stays allocated until its recorded free: the capture
// already holds the frees the real kernel's reclaim made, but not which
// file or process owned a block, so reclaim here cannot free one. A
// machine smaller than the workload's peak shows the pressure as
// watermark crossings, kswapd wakes, direct reclaim stalls, failures by
// mask and order and, for requests that may invoke it, the OOM killer.
//
// With allocation profiling on, everything a replay allocates is charged
// to the line that called Replay: the page and vmap events record no call
// site, and the slab events' call_site is a kernel symbol, no line of
// this program.
//
// Kernel: the inverse of include/trace/events/kmem.h (mm_page_alloc,
// mm_page_free, mm_page_free_batched, kmalloc, kfree, kmem_cache_alloc,
// kmem_cache_free) and include/trace/events/vmalloc.h.
func (s *System) Replay(r io.Reader, opts ...ReplayOption) (*ReplayReport, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("replay: %w", ErrClosed)
	}
	if r == nil {
		return nil, fmt.Errorf("%w: replay: no trace to read", ErrInvalid)
	}
	cfg := replayConfig{sampleEvery: 100 * time.Millisecond}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.sampleEvery <= 0 {
		return nil, fmt.Errorf("%w: replay: sample interval %v is not positive", ErrInvalid, cfg.sampleEvery)
	}
	if !cfg.progressSet && isTerminal(os.Stderr) {
		cfg.progress = os.Stderr
	}
	rp := &replayer{
		s: s, cfg: cfg, rep: &ReplayReport{},
		tasks:    map[int]*memalloc.Task{},
		comms:    map[int]string{},
		nrCPUs:   s.alloc.NrCPUs(),
		objects:  map[uint64]replayObject{},
		vmaps:    map[uint64]Object{},
		caches:   map[string]*Cache{},
		failures: map[failKey]*ReplayFailure{},
		freed:    map[int]*freeEchoes{},
		lastTID:  -1,
		lastCPU:  -1,
		cpu:      -1,

		unknownNames: map[string][]string{},
	}
	for _, n := range s.alloc.Nodes() {
		for t := 0; t < gfp.MaxNrZones; t++ {
			if z := n.Zone(gfp.ZoneType(t)); z != nil && z.Managed() > 0 {
				rp.zones = append(rp.zones, z)
				rp.rep.Zones = append(rp.rep.Zones, ReplayZone{
					Name: fmt.Sprintf("Node %d, zone %s", n.ID(), z.Name()), Managed: z.Managed(),
					Min: z.Watermark(zone.WmarkMin), Low: z.Watermark(zone.WmarkLow), High: z.Watermark(zone.WmarkHigh),
					MinFree: math.MaxInt64,
				})
				rp.above = append(rp.above, true)
			}
		}
	}
	rp.base = s.replayActivity()
	start := time.Now()
	rp.pages.reuse()
	err := rp.run(r)
	rp.finish()
	rp.pages.release()
	rp.rep.Wall = time.Since(start)
	return rp.rep, err
}

// run is the replay loop: the pipeline's blocks, event by event.
func (rp *replayer) run(r io.Reader) error {
	var bar *progressBar
	var read *atomic.Int64
	if rp.cfg.progress != nil {
		bar = newProgressBar(rp.cfg.progress, r)
		read = &bar.read
	}
	var last int64
	err := replayPipeline(r, read, func(b *replayBlock) bool {
		base := int(rp.rep.Lines)
		rp.rep.Lines += int64(b.lines)
		if b.malformed > 0 {
			if rp.rep.Malformed == 0 {
				rp.rep.FirstMalformed = fmt.Errorf("line %d: %w", base+b.badLine, b.bad)
			}
			rp.rep.Malformed += int64(b.malformed)
		}
		rp.text = b.text
		rp.prefetch(b.evs)
		for i := range b.evs {
			ev := &b.evs[i]
			rp.rep.Events++
			rp.rep.ByKind[ev.Kind]++
			if !rp.started {
				rp.started = true
				rp.t0, rp.sim0, rp.nextSample = ev.Time, rp.s.Now(), ev.Time
				rp.rep.Start = ev.Time
			}
			if ev.Time >= rp.nextSample {
				rp.advance(ev.Time)
				rp.sample(ev.Time)
				rp.nextSample = ev.Time + int64(rp.cfg.sampleEvery)
			}
			if ev.NewThread {
				rp.comm(ev, b.text)
			}
			rp.event(ev)
			last = ev.Time
			if rp.panicked {
				rp.rep.PanickedAt = base + int(ev.Line)
				return false
			}
		}
		if bar != nil {
			bar.draw(rp.rep.Events)
		}
		// A machine closed under the replay ends it.
		return !rp.s.closed.Load()
	})
	rp.text = nil // the last block's: back in the pool, or the caller's
	if rp.started {
		rp.rep.End = last
		rp.advance(last)
		rp.sample(last)
	}
	if bar != nil {
		bar.done(rp.rep.Events)
	}
	if err != nil {
		return fmt.Errorf("replay: reading the trace: %w", err)
	}
	if rp.s.closed.Load() {
		return fmt.Errorf("replay: %w", ErrClosed)
	}
	return nil
}

// prefetch loads the pfn table's home entry of every page event in evs
// before they are replayed. A capture's pfns are scattered, so nearly every entry
// is a cache miss; these loads do not depend on one another, so the CPU
// overlaps their misses, and the replay then finds the entries cached.
func (rp *replayer) prefetch(evs []replayEvent) {
	var sum uint64
	for i := range evs {
		switch evs[i].Kind {
		case perfscript.PageAlloc, perfscript.PageFree, perfscript.PageFreeBatched:
			sum += uint64(rp.pages.peek(evs[i].Addr))
		}
	}
	rp.prefetched = sum // a use, so the loads are kept
}

// comm notes the comm the capture gives ev's thread, at the first of a
// run of its events. A thread whose comm changes (exec, or
// prctl(PR_SET_NAME)) is renamed, as perf's COMM records rename it
// between two of its events; a line without a comm (perf script -F -comm)
// keeps the thread's name.
//
// Kernel: fs/exec.c:__set_task_comm().
func (rp *replayer) comm(ev *replayEvent, text []byte) {
	old, ok := rp.comms[ev.TID]
	if ok && (ev.Comm.n == 0 || string(ev.Comm.bytes(text)) == old) {
		return
	}
	name := recordedComm(ev, text)
	rp.comms[ev.TID] = name
	if t := rp.tasks[ev.TID]; t != nil {
		t.SetComm(name)
	}
}

// recordedComm returns the comm a capture gives ev's thread; a capture
// printed without comms (perf script -F -comm) gets the name perf gives a
// thread whose comm it never saw, ":TID".
//
// Kernel: tools/perf/util/thread.c:thread__new() (the ":%d" comm).
func recordedComm(ev *replayEvent, text []byte) string {
	if ev.Comm.n == 0 {
		return ":" + strconv.Itoa(ev.TID)
	}
	return string(ev.Comm.bytes(text))
}

// advance lets simulated time catch up with the capture's, running the
// daemons due meanwhile. Time spent by allocation work is not given back:
// when the simulation is ahead, nothing happens.
func (rp *replayer) advance(at int64) {
	if rp.cfg.noDaemons {
		return
	}
	if d := rp.sim0 + (at - rp.t0) - rp.s.Now(); d > 0 {
		rp.s.Sleep(time.Duration(d))
	}
}

// task returns the task standing for the recorded thread, on its recorded
// CPU (modulo the machine's).
func (rp *replayer) task(ev *replayEvent) *memalloc.Task {
	t := rp.lastTask
	if ev.TID != rp.lastTID {
		t = rp.tasks[ev.TID]
		if t == nil {
			t = rp.s.NewTask(rp.comms[ev.TID])
			rp.tasks[ev.TID] = t
		}
		rp.lastTID, rp.lastTask = ev.TID, t
	}
	// The CPU of a run of events is mapped once: a division takes
	// tens of cycles.
	if ev.CPU != rp.lastCPU {
		rp.lastCPU, rp.cpu = ev.CPU, int(ev.CPU)%rp.nrCPUs
	}
	// A line without a CPU (-1) leaves the task where it is.
	if cpu := rp.cpu; cpu != t.CPU() && cpu >= 0 {
		t.SetCPU(cpu)
	}
	return t
}

// event replays one event.
func (rp *replayer) event(ev *replayEvent) {
	switch ev.Kind {
	case perfscript.PageAlloc:
		rp.pageAlloc(ev)
	case perfscript.PageFree, perfscript.PageFreeBatched:
		rp.pageFree(ev)
	case perfscript.Kmalloc, perfscript.KmemCacheAlloc:
		if rp.cfg.pagesOnly {
			rp.rep.Skipped++
			return
		}
		rp.slabAlloc(ev)
	case perfscript.Kfree, perfscript.KmemCacheFree:
		if rp.cfg.pagesOnly {
			rp.rep.Skipped++
			return
		}
		rp.slabFree(ev)
	case perfscript.AllocVmapArea:
		if rp.cfg.pagesOnly {
			rp.rep.Skipped++
			return
		}
		rp.vmapAlloc(ev)
	case perfscript.FreeVmapArea:
		if rp.cfg.pagesOnly {
			rp.rep.Skipped++
			return
		}
		rp.vmapFree(ev)
	default:
		rp.rep.Skipped++
	}
}

func (rp *replayer) pageAlloc(ev *replayEvent) {
	mask := ev.Mask
	if !ev.MaskOK || ev.Unknown {
		var ok bool
		if mask, ok = rp.mask(ev, int64(ev.Order)); !ok {
			return
		}
	}
	if ev.Addr >= maxRecordedPFN {
		rp.rep.Refused++
		rp.fail(ev, mask, int64(ev.Order), fmt.Errorf("%w: pfn %#x out of range", ErrInvalid, ev.Addr))
		return
	}
	t := rp.task(ev)
	if ev.Failed {
		rp.rep.FailedInCapture++
		p, err := rp.s.AllocPages(t, mask, zone.Order(ev.Order))
		rp.rep.Replayed++
		if err != nil {
			rp.fail(ev, mask, int64(ev.Order), err)
			return
		}
		rp.rep.FailedInCaptureOnly++
		rp.freeBlock(t, newBlockSlot(uint64(p.PFN()), ev.Order))
		return
	}
	if s, ok := rp.pages.take(ev.Addr, 0, true); ok {
		// The capture lost this block's free: free it now.
		rp.rep.Reallocated++
		rp.freeBlock(t, s)
	}
	p, err := rp.s.AllocPages(t, mask, zone.Order(ev.Order))
	rp.rep.Replayed++
	if err != nil {
		rp.fail(ev, mask, int64(ev.Order), err)
		return
	}
	rp.pages.insert(ev.Addr, newBlockSlot(uint64(p.PFN()), ev.Order))
}

// mask returns the mask ev's allocation is made with when its recorded
// text is not all known flags: the known ones, noting the names it lacks;
// or false (the event refused) when the text is not a mask.
func (rp *replayer) mask(ev *replayEvent, sizeOrOrder int64) (gfp.Mask, bool) {
	text := ev.GFP.bytes(rp.text)
	if !ev.MaskOK {
		rp.rep.Refused++
		rp.fail(ev, 0, sizeOrOrder, fmt.Errorf("%w: gfp_flags %q is not a gfp mask", ErrInvalid, text))
		return 0, false
	}
	names, ok := rp.unknownNames[string(text)]
	if !ok {
		_, names, _ = gfp.ParseKnown(string(text))
		rp.unknownNames[string(text)] = names
	}
	if rp.rep.UnknownFlags == nil {
		rp.rep.UnknownFlags = map[string]int64{}
	}
	for _, n := range names {
		rp.rep.UnknownFlags[n]++
	}
	return ev.Mask, true
}

func (rp *replayer) pageFree(ev *replayEvent) {
	if ev.Kind == perfscript.PageFreeBatched {
		// The echo of an mm_page_free: that free was the page's, whatever
		// it did (it may have been a part of a block split since).
		if rp.echoes(ev.TID).take(ev.Addr) {
			rp.rep.Batched++
			return
		}
	} else {
		rp.echoes(ev.TID).push(ev.Addr)
	}
	// An mm_page_free of another order than the block's is not the
	// block that was allocated: a part of a split one.
	s, ok := rp.pages.take(ev.Addr, ev.Order, ev.Kind == perfscript.PageFreeBatched)
	if !ok {
		rp.rep.Unpaired++
		return
	}
	rp.freeBlock(rp.task(ev), s)
	rp.rep.Replayed++
}

// echoes returns the recorded thread's free echoes. A batched free echoes
// an mm_page_free of its page by the same thread: free_unref_folios
// traces a batch's frees as it prepares them, then its batched events, in
// the same order, so a batched free finds its page among the thread's
// last frees, and the ones before it that it skips had no batched echo.
// The thread, not the CPU: the task may migrate between the two loops.
//
// Kernel: mm/page_alloc.c:free_unref_folios() (trace_mm_page_free in
// __free_pages_prepare, then trace_mm_page_free_batched per folio).
func (rp *replayer) echoes(tid int) *freeEchoes {
	if rp.freedLast != nil && tid == rp.freedTID {
		return rp.freedLast
	}
	e := rp.freed[tid]
	if e == nil {
		e = &freeEchoes{}
		rp.freed[tid] = e
	}
	rp.freedTID, rp.freedLast = tid, e
	return e
}

// freeEchoes is a ring of the pfns one thread's last mm_page_free events
// named, oldest first. free_unref_folios traces a batch of at most
// FOLIO_BATCH_SIZE (31) folios' frees before their batched events, and
// frees from interrupts on the thread's CPU may fall between, so twice
// that is room.
type freeEchoes struct {
	pfns [echoRing]uint64
	// head indexes the oldest; size counts the pfns held.
	head, size uint
}

// echoRing is a freeEchoes' size, a power of two.
const echoRing = 64

// push remembers pfn, forgetting the oldest when the ring is full.
func (e *freeEchoes) push(pfn uint64) {
	if e.size == echoRing {
		e.head = (e.head + 1) % echoRing
		e.size--
	}
	e.pfns[(e.head+e.size)%echoRing] = pfn
	e.size++
}

// take reports whether pfn is remembered, forgetting it and every older
// pfn if so.
func (e *freeEchoes) take(pfn uint64) bool {
	for i := range e.size {
		if e.pfns[(e.head+i)%echoRing] == pfn {
			e.head = (e.head + i + 1) % echoRing
			e.size -= i + 1
			return true
		}
	}
	return false
}

// freeBlock frees the simulated block s, taken from the pfn table.
func (rp *replayer) freeBlock(t *memalloc.Task, s blockSlot) {
	pfn, order := zone.PFN(s.pfn()), zone.Order(s.order())
	if err := rp.s.FreePages(t, zone.PageOf(pfn), order); err != nil {
		rp.fail(&replayEvent{Kind: perfscript.PageFree}, 0, int64(order), err)
	}
}

func (rp *replayer) slabAlloc(ev *replayEvent) {
	mask := ev.Mask
	if !ev.MaskOK || ev.Unknown {
		var ok bool
		if mask, ok = rp.mask(ev, -ev.Size); !ok {
			return
		}
	}
	t := rp.task(ev)
	if ev.Failed {
		rp.rep.FailedInCapture++
	} else if old, held := rp.objects[ev.Addr]; held {
		rp.rep.Reallocated++
		rp.freeObject(t, ev.Addr, old)
	}
	var (
		o     Object
		err   error
		cache *Cache
	)
	if ev.Kind == perfscript.KmemCacheAlloc {
		if cache, err = rp.cache(ev); err == nil {
			o, err = rp.s.KmemCacheAlloc(t, cache, mask)
		}
	} else {
		o, err = rp.s.Kmalloc(t, int(ev.Size), mask)
	}
	rp.rep.Replayed++
	if err != nil {
		rp.fail(ev, mask, -ev.Size, err)
		return
	}
	if ev.Failed {
		rp.rep.FailedInCaptureOnly++
		rp.release(t, replayObject{obj: o, cache: cache})
		return
	}
	rp.objects[ev.Addr] = replayObject{obj: o, cache: cache}
}

// cache returns the machine's cache of the recorded name, creating it
// with the recorded object size when the machine has none.
func (rp *replayer) cache(ev *replayEvent) (*Cache, error) {
	if c, ok := rp.caches[string(ev.Cache.bytes(rp.text))]; ok {
		return c, nil
	}
	name := string(ev.Cache.bytes(rp.text))
	c := rp.s.KmemCache(name)
	if c == nil {
		var err error
		if c, err = rp.s.KmemCacheCreate(name, int(ev.Size), 8, 0); err != nil {
			return nil, err
		}
	}
	rp.caches[name] = c
	return c, nil
}

func (rp *replayer) slabFree(ev *replayEvent) {
	// kfree traces its argument before its ZERO_OR_NULL_PTR check:
	// NULL, or ZERO_SIZE_PTR (16), what kmalloc(0) returns.
	if ev.Addr == 0 || ev.Kind == perfscript.Kfree && ev.Addr <= zeroSizePtr {
		rp.rep.NilFrees++
		return
	}
	o, held := rp.objects[ev.Addr]
	if !held {
		rp.rep.Unpaired++
		return
	}
	rp.freeObject(rp.task(ev), ev.Addr, o)
	rp.rep.Replayed++
}

// zeroSizePtr is ZERO_SIZE_PTR (include/linux/slab.h).
const zeroSizePtr = 16

// freeObject frees the object held for the recorded ptr.
func (rp *replayer) freeObject(t *memalloc.Task, ptr uint64, o replayObject) {
	delete(rp.objects, ptr)
	rp.release(t, o)
}

// release frees o on the machine.
func (rp *replayer) release(t *memalloc.Task, o replayObject) {
	var err error
	if o.cache != nil {
		err = rp.s.KmemCacheFree(t, o.cache, o.obj)
	} else {
		err = rp.s.Kfree(t, o.obj)
	}
	if err != nil {
		rp.fail(&replayEvent{Kind: perfscript.Kfree}, 0, 0, err)
	}
}

// vmapAlloc makes a recorded vmap area as a vmalloc of its size less the
// guard page, with GFP_KERNEL (alloc_vmap_area records no mask). A failed
// one (failed=1) is skipped: it failed for want of a free range between
// vstart and vend (its va_start is -ENOENT or -ERANGE), not of memory, and
// this machine's vmalloc space has ranges of its own; a caller that may
// block then purges the lazily freed areas and retries, tracing again, so
// the retry's event is the outcome (mm/vmalloc.c:alloc_vmap_area).
func (rp *replayer) vmapAlloc(ev *replayEvent) {
	if ev.Failed {
		rp.rep.Skipped++
		return
	}
	t := rp.task(ev)
	if old, held := rp.vmaps[ev.Addr]; held {
		rp.rep.Reallocated++
		delete(rp.vmaps, ev.Addr)
		if err := rp.s.Vfree(t, old); err != nil {
			rp.fail(&replayEvent{Kind: perfscript.FreeVmapArea}, 0, 0, err)
		}
	}
	size := ev.Size - zone.PageSize
	if size <= 0 {
		size = ev.Size
	}
	o, err := rp.s.Vmalloc(t, int(size), gfp.Kernel)
	rp.rep.Replayed++
	if err != nil {
		rp.fail(ev, gfp.Kernel, -size, err)
		return
	}
	rp.vmaps[ev.Addr] = o
}

func (rp *replayer) vmapFree(ev *replayEvent) {
	o, held := rp.vmaps[ev.Addr]
	if !held {
		rp.rep.Unpaired++
		return
	}
	delete(rp.vmaps, ev.Addr)
	if err := rp.s.Vfree(rp.task(ev), o); err != nil {
		rp.fail(ev, 0, 0, err)
	}
	rp.rep.Replayed++
}

// fail counts a failed allocation. sizeOrOrder is the order (≥ 0) or
// minus the size.
func (rp *replayer) fail(ev *replayEvent, mask gfp.Mask, sizeOrOrder int64, err error) {
	k := failKey{kind: ev.Kind, mask: mask, order: -1}
	if sizeOrOrder >= 0 {
		k.order = int(sizeOrOrder)
	} else {
		k.size = -sizeOrOrder
	}
	f := rp.failures[k]
	if f == nil {
		f = &ReplayFailure{Event: ev.Kind.String(), Mask: mask, Order: k.order, Size: k.size, Err: err.Error()}
		rp.failures[k] = f
	}
	f.Count++
	if rp.s.oom.Panicked() {
		rp.panicked = true
	}
}

// sample records the free-page picture at capture time at.
func (rp *replayer) sample(at int64) {
	sm := ReplaySample{Time: at - rp.t0, Sim: rp.s.Now() - rp.sim0, Zones: make([]ReplayZoneSample, len(rp.zones))}
	for i, z := range rp.zones {
		fa := z.FreeArea()
		zs := &sm.Zones[i]
		for o := range fa {
			sm.Free[o] += fa[o]
			zs.FreePages += fa[o] << o
			zs.FragIndex[o] = z.FragmentationIndex(zone.Order(o))
			zs.Unusable[o] = z.UnusableIndex(zone.Order(o))
		}
		sm.FreePages += zs.FreePages
		rz := &rp.rep.Zones[i]
		free := zs.FreePages
		rz.MinFree = min(rz.MinFree, free)
		if free < rz.High {
			rz.BelowHigh++
		}
		if free < rz.Low {
			rz.BelowLow++
			if rp.above[i] {
				rz.Crossings++
			}
			rp.above[i] = false
		} else {
			rp.above[i] = true
		}
		if free < rz.Min {
			rz.BelowMin++
		}
	}
	rp.rep.Samples = append(rp.rep.Samples, sm)
}

// finish fills the report's totals.
func (rp *replayer) finish() {
	r := rp.rep
	r.Tasks = len(rp.tasks)
	r.SimElapsed = rp.s.Now() - rp.sim0
	r.LiveBlocks, r.LivePages = rp.pages.live, rp.pages.pages
	r.LiveObjects = int64(len(rp.objects))
	r.LiveVmalloc = int64(len(rp.vmaps))
	for _, f := range rp.failures {
		r.Failures = append(r.Failures, *f)
	}
	sort.Slice(r.Failures, func(i, j int) bool {
		a, b := r.Failures[i], r.Failures[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Event != b.Event {
			return a.Event < b.Event
		}
		if a.Mask != b.Mask {
			return a.Mask < b.Mask
		}
		if a.Order != b.Order {
			return a.Order < b.Order
		}
		return a.Size < b.Size
	})
	for i := range r.Zones {
		if r.Zones[i].MinFree == math.MaxInt64 {
			r.Zones[i].MinFree = 0
		}
	}
	end := rp.s.replayActivity()
	b := rp.base
	r.Activity = ReplayActivity{
		KswapdWakes:   end.KswapdWakes - b.KswapdWakes,
		PgscanKswapd:  end.PgscanKswapd - b.PgscanKswapd,
		PgscanDirect:  end.PgscanDirect - b.PgscanDirect,
		PgstealKswapd: end.PgstealKswapd - b.PgstealKswapd,
		PgstealDirect: end.PgstealDirect - b.PgstealDirect,
		Allocstall:    end.Allocstall - b.Allocstall,
		CompactStall:  end.CompactStall - b.CompactStall,
		OOMKills:      end.OOMKills - b.OOMKills,
		WarnAllocs:    end.WarnAllocs - b.WarnAllocs,
		OOMReports:    end.OOMReports - b.OOMReports,
		Panicked:      end.Panicked,
	}
}

// replayActivity reads the counters ReplayActivity is made of.
func (s *System) replayActivity() ReplayActivity {
	var a ReplayActivity
	for _, n := range s.alloc.Nodes() {
		a.KswapdWakes += n.KswapdWakes()
		a.PgscanKswapd += n.State(zone.NodePgscanKswapd)
		a.PgscanDirect += n.State(zone.NodePgscanDirect)
		a.PgstealKswapd += n.State(zone.NodePgstealKswapd)
		a.PgstealDirect += n.State(zone.NodePgstealDirect)
	}
	for e := zone.VMAllocstallDMA; e <= zone.VMAllocstallDevice; e++ {
		a.Allocstall += s.alloc.Event(e)
	}
	a.CompactStall = s.alloc.Event(zone.VMCompactStall)
	a.OOMKills = s.alloc.Event(zone.VMOOMKill)
	for _, r := range s.Reports() {
		switch r.Kind {
		case ReportAlloc:
			a.WarnAllocs++
		case ReportOOM:
			a.OOMReports++
		}
	}
	a.Panicked = s.oom.Panicked()
	return a
}

// EventsPerSecond returns the replayed allocations and frees per second
// of host time.
func (r *ReplayReport) EventsPerSecond() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(r.Replayed) / r.Wall.Seconds()
}

// WriteText prints the report: what was replayed, what failed, the
// watermarks and the fragmentation at the end, and what the machine did.
// Host timings are left out, so the text is the same on every run.
func (r *ReplayReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "capture: %d lines, %d events over %.3f s (%d malformed)\n",
		r.Lines, r.Events, float64(r.End-r.Start)/1e9, r.Malformed)
	fmt.Fprintf(&b, "replayed: %d allocations and frees by %d tasks; simulated time %.3f s\n",
		r.Replayed, r.Tasks, float64(r.SimElapsed)/1e9)
	for k := perfscript.Kind(0); k < perfscript.NrKinds; k++ {
		if r.ByKind[k] > 0 {
			fmt.Fprintf(&b, "  %-32s %8d\n", k, r.ByKind[k])
		}
	}
	fmt.Fprintf(&b, "not replayed: %d unpaired frees, %d batched frees of pages mm_page_free freed, %d kfree(NULL), %d refused, %d other events; %d lost frees redone\n",
		r.Unpaired, r.Batched, r.NilFrees, r.Refused, r.Skipped, r.Reallocated)
	if r.FailedInCapture > 0 {
		fmt.Fprintf(&b, "failed in the capture: %d allocations, made again; %d of them succeeded here and were freed at once\n",
			r.FailedInCapture, r.FailedInCaptureOnly)
	}
	if len(r.UnknownFlags) > 0 {
		names := make([]string, 0, len(r.UnknownFlags))
		for n := range r.UnknownFlags {
			names = append(names, n)
		}
		sort.Strings(names)
		b.WriteString("gfp flags this kernel lacks, left out of the masks made:")
		for _, n := range names {
			fmt.Fprintf(&b, " %s (%d)", n, r.UnknownFlags[n])
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "held at the end: %d blocks (%d pages), %d slab objects, %d vmalloc areas\n",
		r.LiveBlocks, r.LivePages, r.LiveObjects, r.LiveVmalloc)
	if len(r.Failures) == 0 {
		b.WriteString("failures: none\n")
	} else {
		b.WriteString("failures:\n")
		for _, f := range r.Failures {
			what := fmt.Sprintf("order:%d", f.Order)
			if f.Order < 0 {
				what = fmt.Sprintf("size:%d", f.Size)
			}
			fmt.Fprintf(&b, "  %6d × %s %s, mode:%#x(%s)\n", f.Count, f.Event, what, uint32(f.Mask), f.Mask)
		}
	}
	b.WriteString("watermarks (pages; samples below each):\n")
	for _, z := range r.Zones {
		fmt.Fprintf(&b, "  %-22s min %6d low %6d high %6d  fewest free %8d  below high %d, low %d, min %d; crossed low %d times\n",
			z.Name, z.Min, z.Low, z.High, z.MinFree, z.BelowHigh, z.BelowLow, z.BelowMin, z.Crossings)
	}
	if n := len(r.Samples); n > 0 {
		first, last := r.Samples[0], r.Samples[n-1]
		fmt.Fprintf(&b, "free blocks per order (%d samples), first and last:\n", n)
		for _, sm := range []ReplaySample{first, last} {
			fmt.Fprintf(&b, "  t=%8.3fs", float64(sm.Time)/1e9)
			for _, c := range sm.Free {
				fmt.Fprintf(&b, " %6d", c)
			}
			b.WriteByte('\n')
		}
		indices := func(title string, of func(ReplayZoneSample) [zone.NrPageOrders]int) {
			b.WriteString(title)
			for i, z := range r.Zones {
				fmt.Fprintf(&b, "  %-22s", z.Name)
				for _, v := range of(last.Zones[i]) {
					fmt.Fprintf(&b, " %s", thousandths(v))
				}
				b.WriteByte('\n')
			}
		}
		indices("fragmentation index at the end (order: value, -1.000 = a block is free):\n",
			func(zs ReplayZoneSample) [zone.NrPageOrders]int { return zs.FragIndex })
		indices("unusable free index at the end:\n",
			func(zs ReplayZoneSample) [zone.NrPageOrders]int { return zs.Unusable })
	}
	a := r.Activity
	fmt.Fprintf(&b, "machine: kswapd woken %d times; pgscan kswapd %d direct %d; pgsteal kswapd %d direct %d; allocstall %d; compact_stall %d; oom_kill %d; warn_alloc reports %d",
		a.KswapdWakes, a.PgscanKswapd, a.PgscanDirect, a.PgstealKswapd, a.PgstealDirect, a.Allocstall, a.CompactStall, a.OOMKills, a.WarnAllocs)
	b.WriteByte('\n')
	if r.PanickedAt > 0 {
		fmt.Fprintf(&b, "the machine panicked at line %d of the capture: the replay stopped there\n", r.PanickedAt)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// thousandths prints an index in thousandths as "%d.%03d" with the sign
// in front. The debugfs files print the same for -1000 ("-1.000"), but C's
// truncating division prints a rarer -500 as "0.-500" there
// (mm/vmstat.c:extfrag_show_print(); see zone.Allocator.WriteExtfragIndex).
func thousandths(v int) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%03d", sign, v/1000, v%1000)
}

// WriteFreePagesSVG draws the free pages of each order, summed over every
// zone, over the capture's time: WriteFreePagesSVG of the report's
// samples.
func (r *ReplayReport) WriteFreePagesSVG(w io.Writer, title string) error {
	t := make([]float64, len(r.Samples))
	free := make([][zone.NrPageOrders]int64, len(r.Samples))
	for i, sm := range r.Samples {
		t[i] = float64(sm.Time) / 1e9
		free[i] = sm.Free
	}
	return WriteFreePagesSVG(w, title, t, free)
}
