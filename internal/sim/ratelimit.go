package sim

import "sync"

// Ratelimit is the kernel's ratelimit_state on the simulated clock: at
// most Burst events per Interval nanoseconds. The zero value with Interval
// and Burst set is ready to use.
//
// Kernel: lib/ratelimit.c:___ratelimit().
type Ratelimit struct {
	Interval int64
	Burst    int

	mu      sync.Mutex
	begin   int64
	printed int
	missed  int
	started bool
}

// Allow reports whether an event may be printed at now, and how many were
// suppressed in the interval that just ended (the kernel prints them as
// "%s: %d callbacks suppressed").
func (r *Ratelimit) Allow(now int64) (ok bool, suppressed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		r.started, r.begin = true, now
	}
	if now > r.begin+r.Interval { // time_is_before_jiffies: strictly after
		suppressed, r.missed = r.missed, 0
		r.begin, r.printed = now, 0
	}
	if r.printed < r.Burst {
		r.printed++
		return true, suppressed
	}
	r.missed++
	return false, suppressed
}
