package reclaim

import (
	"sync"

	"github.com/mmsim/mmsim/internal/sim"
)

// Flusher is the writeback threads: in the background they write dirty page
// cache while it is above the background threshold, every
// dirty_writeback_centisecs (5 s) they write what was dirtied more than
// dirty_expire_centisecs (30 s) ago, and reclaim that finds only dirty
// pages asks them to write everything.
//
// Kernel: fs/fs-writeback.c:wb_workfn(), wb_check_background_flush(),
// wb_check_old_data_flush(), wakeup_flusher_threads().
type Flusher struct {
	r *Reclaimer

	mu      sync.Mutex
	next    int64
	all     bool  // wakeup_flusher_threads: write everything dirty
	written int64 // pages written
}

// Writeback intervals, in ns. Kernel: mm/page-writeback.c
// (dirty_writeback_interval = 5 * 100, dirty_expire_interval = 30 * 100
// centisecs).
const (
	dirtyWritebackInterval = int64(5e9)
	dirtyExpireInterval    = int64(30e9)
	// maxWritebackPages is MAX_WRITEBACK_PAGES: one chunk of work.
	maxWritebackPages = 1024
)

func newFlusher(r *Reclaimer) *Flusher { return &Flusher{r: r, next: dirtyWritebackInterval} }

// Name returns the thread's comm.
func (f *Flusher) Name() string { return "kworker/u4:1-flush-8:0" }

// Next returns when the flusher runs next.
func (f *Flusher) Next() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next
}

// Written returns the pages the flusher has written.
func (f *Flusher) Written() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written
}

// Kick wakes the flusher for background writeback (balance_dirty_pages
// found the dirty pages above the background threshold).
func (f *Flusher) Kick(now int64) {
	f.mu.Lock()
	f.next = min(f.next, now)
	f.mu.Unlock()
	f.r.clock.Kick()
}

func (f *Flusher) wakeAll(now int64) {
	f.mu.Lock()
	f.all = true
	f.next = min(f.next, now)
	f.mu.Unlock()
	f.r.clock.Kick()
}

// Run writes one chunk: everything (after a reclaim wakeup), the excess
// over the background threshold, or the expired pages.
func (f *Flusher) Run(now int64) {
	m := f.r.model
	_, bg := f.r.alloc.DirtyLimits()
	f.mu.Lock()
	all := f.all
	f.mu.Unlock()
	var written int64
	switch {
	case all || m.DirtyPages() > bg:
		written = m.Writeback(maxWritebackPages, now)
	default:
		written = m.Writeback(maxWritebackPages, now-dirtyExpireInterval)
	}
	cost := written * f.r.costs.WritebackPage
	f.mu.Lock()
	defer f.mu.Unlock()
	f.written += written
	dirty := m.DirtyPages()
	switch {
	case dirty == 0:
		f.all = false
		f.next = now + cost + dirtyWritebackInterval
	case (f.all || dirty > bg) && written > 0:
		f.next = now + max(cost, 1)
	default:
		f.all = false
		f.next = now + cost + dirtyWritebackInterval
	}
	if f.next <= now {
		f.next = now + sim.Jiffy
	}
}
