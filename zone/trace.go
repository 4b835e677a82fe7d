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
)

var eventNames = [...]string{
	EvPageAlloc:           "kmem:mm_page_alloc",
	EvPageFree:            "kmem:mm_page_free",
	EvPageFreeBatched:     "kmem:mm_page_free_batched",
	EvPageAllocZoneLocked: "kmem:mm_page_alloc_zone_locked",
	EvPagePcpuDrain:       "kmem:mm_page_pcpu_drain",
	EvPageAllocExtfrag:    "kmem:mm_page_alloc_extfrag",
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
}

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
//
// Kernel: include/trace/events/kmem.h (TP_printk of each event); perf's
// builtin-script.c for the header.
func (e Event) String() string {
	ts := fmt.Sprintf("%d.%06d", e.Time/1e9, e.Time%1e9/1e3)
	head := fmt.Sprintf("%16s %5d [%03d] %12s: %*s: ", e.Comm, e.PID, e.CPU, ts, perfNameWidth, e.Kind)
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
			PageblockOrder, e.Migratetype, e.FallbackMigratetype, b2i(e.FallbackOrder < PageblockOrder), b2i(e.ChangeOwnership))
	}
	return head
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
