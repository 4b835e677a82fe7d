package bug

import (
	"fmt"
	"sync"
)

// Kind says what a Report is.
type Kind uint8

// The kinds of report.
const (
	// Warn is a simulated WARN: the kernel prints a warning with a stack
	// and carries on down its fallback path.
	Warn Kind = iota + 1
	// Bug is a simulated BUG: the kernel would oops; mmsim refuses the
	// request and leaves the machine as it was.
	Bug
	// Alloc is warn_alloc's report of a failed allocation (a pr_warn
	// with the memory state, not a WARN).
	Alloc
	// OOM is the OOM killer's report: the header, the memory state, the
	// task table, the oom-kill line and the kill.
	OOM
	// Info is an informational kernel message (pr_info), such as the
	// OOM reaper's.
	Info
	// Panic is a simulated kernel panic (panic_on_oom, or no killable
	// task): the kernel would stop; mmsim reports it and fails the
	// request.
	Panic
)

func (k Kind) String() string {
	switch k {
	case Warn:
		return "WARNING"
	case Bug:
		return "BUG"
	case Alloc:
		return "warn_alloc"
	case OOM:
		return "oom-kill"
	case Info:
		return "info"
	case Panic:
		return "Kernel panic"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Report is one simulated kernel report: a WARN, a BUG, or a page
// allocation failure report.
type Report struct {
	Kind Kind
	// Site is the kernel function that reports, as "mm/page_alloc.c:warn_alloc".
	Site string
	// Text is what the kernel prints, in its words.
	Text string
	// Comm and PID name the task that hit it.
	Comm string
	PID  int
	// Time is the simulated time, in nanoseconds.
	Time int64
}

func (r Report) String() string {
	return fmt.Sprintf("%s: %s (%s, task %s[%d])", r.Kind, r.Text, r.Site, r.Comm, r.PID)
}

// Sink receives reports. It must be safe for concurrent use.
type Sink func(Report)

// Once remembers which WARN_ON_ONCE sites have fired.
type Once struct {
	mu    sync.Mutex
	fired map[string]bool
}

// First reports whether key fires for the first time, and marks it fired.
func (o *Once) First(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fired[key] {
		return false
	}
	if o.fired == nil {
		o.fired = make(map[string]bool)
	}
	o.fired[key] = true
	return true
}
