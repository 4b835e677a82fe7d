package zone

import (
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
