package zone

import (
	"fmt"
	"sync/atomic"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

// EventKind names a kmem tracepoint.
type EventKind uint8

// The page-allocator tracepoints.
//
// Kernel: include/trace/events/kmem.h.
const (
	EvPageAlloc           EventKind = iota + 1 // kmem:mm_page_alloc
	EvPageFree                                 // kmem:mm_page_free
	EvPageFreeBatched                          // kmem:mm_page_free_batched
	EvPageAllocZoneLocked                      // kmem:mm_page_alloc_zone_locked
	EvPagePcpuDrain                            // kmem:mm_page_pcpu_drain
	EvPageAllocExtfrag                         // kmem:mm_page_alloc_extfrag

	// The slab tracepoints (mm/slub.c), emitted through Allocator.Emit.
	EvKmalloc        // kmem:kmalloc
	EvKfree          // kmem:kfree
	EvKmemCacheAlloc // kmem:kmem_cache_alloc
	EvKmemCacheFree  // kmem:kmem_cache_free

	// The vmap-area tracepoints (mm/vmalloc.c), emitted through
	// Allocator.Emit.
	EvAllocVmapArea       // vmalloc:alloc_vmap_area
	EvFreeVmapAreaNoflush // vmalloc:free_vmap_area_noflush
	EvPurgeVmapAreaLazy   // vmalloc:purge_vmap_area_lazy

	// The memcg reclaim tracepoints (mm/vmscan.c) and the OOM killer's
	// mark_victim (mm/oom_kill.c), emitted through Allocator.Emit.
	EvMemcgReclaimBegin // vmscan:mm_vmscan_memcg_reclaim_begin
	EvMemcgReclaimEnd   // vmscan:mm_vmscan_memcg_reclaim_end
	EvMarkVictim        // oom:mark_victim
)

var eventNames = [...]string{
	EvPageAlloc:           "kmem:mm_page_alloc",
	EvPageFree:            "kmem:mm_page_free",
	EvPageFreeBatched:     "kmem:mm_page_free_batched",
	EvPageAllocZoneLocked: "kmem:mm_page_alloc_zone_locked",
	EvPagePcpuDrain:       "kmem:mm_page_pcpu_drain",
	EvPageAllocExtfrag:    "kmem:mm_page_alloc_extfrag",
	EvKmalloc:             "kmem:kmalloc",
	EvKfree:               "kmem:kfree",
	EvKmemCacheAlloc:      "kmem:kmem_cache_alloc",
	EvKmemCacheFree:       "kmem:kmem_cache_free",
	EvAllocVmapArea:       "vmalloc:alloc_vmap_area",
	EvFreeVmapAreaNoflush: "vmalloc:free_vmap_area_noflush",
	EvPurgeVmapAreaLazy:   "vmalloc:purge_vmap_area_lazy",
	EvMemcgReclaimBegin:   "vmscan:mm_vmscan_memcg_reclaim_begin",
	EvMemcgReclaimEnd:     "vmscan:mm_vmscan_memcg_reclaim_end",
	EvMarkVictim:          "oom:mark_victim",
}

// String returns the tracepoint's perf name, "kmem:mm_page_alloc".
func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "kmem:unknown"
}

// Event is one tracepoint hit, with the fields of its kernel format.
//
// Kernel: include/trace/events/kmem.h (TP_STRUCT__entry of each event).
type Event struct {
	Kind EventKind
	// Who and when: the task, its CPU, the simulated time in ns.
	Comm string
	PID  int
	CPU  int
	Time int64

	// NoPage is set on an mm_page_alloc of a failed allocation (page=NULL).
	NoPage      bool
	PFN         PFN
	Order       Order
	Migratetype gfp.Migratetype
	Mask        gfp.Mask // mm_page_alloc's gfp_flags
	// PercpuRefill is mm_page_alloc_zone_locked's percpu_refill.
	PercpuRefill bool
	// The mm_page_alloc_extfrag fields.
	FallbackOrder       Order
	FallbackMigratetype gfp.Migratetype
	ChangeOwnership     bool

	// The slab events' fields: call_site (a symbol+offset, "" for none),
	// ptr (0 prints as (nil)), the cache name, bytes_req, bytes_alloc,
	// node (-1: NUMA_NO_NODE) and accounted. Ptr is also the vmalloc
	// events' va_start, and purge_vmap_area_lazy's start.
	CallSite   string
	Ptr        uint64
	Name       string
	BytesReq   int64
	BytesAlloc int64
	Node       int
	Accounted  bool

	// The vmalloc events' fields: alloc_vmap_area's size, align, vstart,
	// vend and failed; free_vmap_area_noflush's nr_lazy and nr_lazy_max;
	// purge_vmap_area_lazy's end and num_purged.
	Size, Align  uint64
	VStart, VEnd uint64
	Failed       bool
	NrLazy       uint64
	NrLazyMax    uint64
	End          uint64
	NumPurged    uint64

	// The memcg reclaim events' memcg_id (the cgroup's id) and
	// nr_reclaimed.
	MemcgID     uint64
	NrReclaimed int64
	// mark_victim's fields: the victim's pid, comm and uid, its sizes in
	// KiB, and its oom_score_adj.
	VictimPID                                     int
	VictimComm                                    string
	VictimUID                                     int
	TotalVM, AnonRSS, FileRSS, ShmemRSS, PgTables uint64
	OOMScoreAdj                                   int
}

// Fragmenting is mm_page_alloc_extfrag's fragmenting as the kernel
// computes it: the fallback took a block smaller than a pageblock, so
// the pageblock now mixes migratetypes.
//
// Kernel: include/trace/events/kmem.h:mm_page_alloc_extfrag (fragmenting).
func (e Event) Fragmenting() bool { return e.FallbackOrder < PageblockOrder }

// tracer delivers events to the subscribers. Subscribing is rare and
// tracing usually off, so the fast path pays one atomic load.
type tracer struct {
	on    atomic.Bool
	sinks atomic.Pointer[[]func(Event)]
	now   func() int64
}

func (tr *tracer) enabled() bool { return tr != nil && tr.on.Load() }

// subscribe adds a sink; it is called for every event from then on, from
// the allocating goroutine, and must not call back into the allocator.
func (tr *tracer) subscribe(f func(Event)) {
	for {
		old := tr.sinks.Load()
		var next []func(Event)
		if old != nil {
			next = append(next, *old...)
		}
		next = append(next, f)
		if tr.sinks.CompareAndSwap(old, &next) {
			tr.on.Store(true)
			return
		}
	}
}

func (tr *tracer) emit(t *memalloc.Task, ev Event) {
	if t != nil {
		ev.Comm, ev.PID, ev.CPU = t.Comm(), t.PID(), t.CPU()
	}
	if tr.now != nil {
		ev.Time = tr.now()
	}
	if s := tr.sinks.Load(); s != nil {
		for _, f := range *s {
			f(ev)
		}
	}
}

// perfNameWidth is the width perf gives the event-name column: the longest
// name among the recorded events, kmem:mm_page_alloc_zone_locked for the
// six page-allocator events.
const perfNameWidth = 30

// String returns the event as `perf script` prints it:
// "%16s %5d [%03d] %12s: %*s: fields", with the time as seconds and
// microseconds (truncated) and page= printed as the pfn, as perf does.
// mm_page_alloc_extfrag's fragmenting= is printed as perf prints it too:
// the value of fallback_order, where the kernel's own trace output
// prints fallback_order < pageblock_order, 0 or 1 (Event.Fragmenting).
// The event-name column is 30 wide, as in a recording of the page
// allocator's events; Format chooses another width.
//
// Kernel: include/trace/events/kmem.h (TP_printk of each event); perf's
// builtin-script.c for the header.
func (e Event) String() string { return e.Format(perfNameWidth) }

// Format is String with the event-name column width perf chose for a
// recording: the longest name among its recorded events (31 for the
// slab_mix capture's event list).
func (e Event) Format(nameWidth int) string {
	ts := fmt.Sprintf("%d.%06d", e.Time/1e9, e.Time%1e9/1e3)
	head := fmt.Sprintf("%16s %5d [%03d] %12s: %*s: ", e.Comm, e.PID, e.CPU, ts, nameWidth, e.Kind)
	page := fmt.Sprintf("page=0x%x pfn=0x%x", uint64(e.PFN), uint64(e.PFN))
	switch e.Kind {
	case EvPageAlloc:
		if e.NoPage {
			page = "page=(nil) pfn=0x0"
		}
		return head + fmt.Sprintf("%s order=%d migratetype=%d gfp_flags=%s", page, e.Order, e.Migratetype, e.Mask)
	case EvPageFree:
		return head + fmt.Sprintf("%s order=%d", page, e.Order)
	case EvPageFreeBatched:
		return head + page + " order=0"
	case EvPageAllocZoneLocked:
		return head + fmt.Sprintf("%s order=%d migratetype=%d percpu_refill=%d", page, e.Order, e.Migratetype, b2i(e.PercpuRefill))
	case EvPagePcpuDrain:
		return head + fmt.Sprintf("%s order=%d migratetype=%d", page, e.Order, e.Migratetype)
	case EvPageAllocExtfrag:
		return head + fmt.Sprintf("%s alloc_order=%d fallback_order=%d pageblock_order=%d alloc_migratetype=%d "+
			"fallback_migratetype=%d fragmenting=%d change_ownership=%d", page, e.Order, e.FallbackOrder,
			PageblockOrder, e.Migratetype, e.FallbackMigratetype, e.FallbackOrder, b2i(e.ChangeOwnership))
	case EvKmalloc:
		return head + fmt.Sprintf("call_site=%s ptr=%s bytes_req=%d bytes_alloc=%d gfp_flags=%s node=%d accounted=%t",
			callSite(e.CallSite), ptr(e.Ptr), e.BytesReq, e.BytesAlloc, e.Mask, e.Node, e.Accounted)
	case EvKfree:
		return head + fmt.Sprintf("call_site=%s ptr=%s", callSite(e.CallSite), ptr(e.Ptr))
	case EvKmemCacheAlloc:
		return head + fmt.Sprintf("call_site=%s ptr=%s name=%s bytes_req=%d bytes_alloc=%d gfp_flags=%s node=%d accounted=%t",
			callSite(e.CallSite), ptr(e.Ptr), e.Name, e.BytesReq, e.BytesAlloc, e.Mask, e.Node, e.Accounted)
	case EvKmemCacheFree:
		return head + fmt.Sprintf("call_site=%s ptr=%s name=%s", callSite(e.CallSite), ptr(e.Ptr), e.Name)
	case EvAllocVmapArea:
		// va_start in decimal: the kernel's own format says %lu.
		return head + fmt.Sprintf("va_start: %d size=%d align=%d vstart=0x%x vend=0x%x failed=%d",
			e.Ptr, e.Size, e.Align, e.VStart, e.VEnd, b2i(e.Failed))
	case EvFreeVmapAreaNoflush:
		return head + fmt.Sprintf("va_start=0x%x nr_lazy=%d nr_lazy_max=%d", e.Ptr, e.NrLazy, e.NrLazyMax)
	case EvPurgeVmapAreaLazy:
		return head + fmt.Sprintf("start=0x%x end=0x%x num_purged=%d", e.Ptr, e.End, e.NumPurged)
	case EvMemcgReclaimBegin:
		// The trailing %s is "(in-irq)" or empty: reclaim never runs in
		// an interrupt here.
		return head + fmt.Sprintf("order=%d gfp_flags=%s pid=%d memcg_id=%d ", e.Order, e.Mask, e.PID, e.MemcgID)
	case EvMemcgReclaimEnd:
		return head + fmt.Sprintf("nr_reclaimed=%d pid=%d memcg_id=%d ", e.NrReclaimed, e.PID, e.MemcgID)
	case EvMarkVictim:
		return head + fmt.Sprintf("pid=%d comm=%s total-vm=%dkB anon-rss=%dkB file-rss:%dkB shmem-rss:%dkB uid=%d pgtables=%dkB oom_score_adj=%d",
			e.VictimPID, e.VictimComm, e.TotalVM, e.AnonRSS, e.FileRSS, e.ShmemRSS, e.VictimUID, e.PgTables, e.OOMScoreAdj)
	}
	return head
}

// callSite prints call_site as perf's %pS does: the symbol+offset, or
// 0x0 for none.
func callSite(s string) string {
	if s == "" {
		return "0x0"
	}
	return s
}

// ptr prints a pointer as perf's %p does: (nil) for NULL.
func ptr(p uint64) string {
	if p == 0 {
		return "(nil)"
	}
	return fmt.Sprintf("0x%x", p)
}

// Tracing reports whether any subscriber listens: the layers above build
// their events only then.
func (a *Allocator) Tracing() bool { return a.trace.enabled() }

// Emit delivers an event of a layer above the page allocator (slab,
// vmalloc) to the subscribers, stamped with t and the time, in the one
// stream Subscribe reads. ev.Kind must be one of the slab or vmalloc
// kinds.
func (a *Allocator) Emit(t *memalloc.Task, ev Event) {
	if a.trace.enabled() {
		a.trace.emit(t, ev)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
