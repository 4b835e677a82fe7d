package oom

import (
	"fmt"
	"sync"

	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/internal/mm"
	"github.com/mmsim/mmsim/internal/sim"
	"github.com/mmsim/mmsim/memalloc"
)

// oomReaperDelay is OOM_REAPER_DELAY: the victim has two seconds to exit on
// its own before the reaper tears its memory down.
//
// Kernel: mm/oom_kill.c:OOM_REAPER_DELAY.
const oomReaperDelay = 2 * sim.HZ * sim.Jiffy

// Reaper is the oom_reaper thread: after OOM_REAPER_DELAY it frees a
// victim's anonymous memory, unless the victim got there first, and sets
// MMF_OOM_SKIP so that the OOM killer looks past it.
//
// Kernel: mm/oom_kill.c:oom_reaper(), oom_reap_task(), __oom_reap_task_mm().
type Reaper struct {
	k    *Killer
	task *memalloc.Task

	mu      sync.Mutex
	pending []reapEntry
	reaps   int64
}

type reapEntry struct {
	p   *mm.Proc
	due int64
}

func newReaper(k *Killer) *Reaper {
	return &Reaper{k: k, task: memalloc.NewTaskWith("oom_reaper",
		memalloc.WithFlags(memalloc.PFKthread), memalloc.WithPID(30), memalloc.WithOwner(k.alloc.Owner()))}
}

func (r *Reaper) queue(p *mm.Proc, due int64) {
	r.mu.Lock()
	r.pending = append(r.pending, reapEntry{p, due})
	r.mu.Unlock()
	r.k.clock.Kick() // it may be due sooner than the clock last looked
}

// Name returns "oom_reaper".
func (r *Reaper) Name() string { return "oom_reaper" }

// Reaps returns how many victims the reaper tore down.
func (r *Reaper) Reaps() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reaps
}

// Next returns when the first queued victim is due.
func (r *Reaper) Next() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := sim.Never
	for _, e := range r.pending {
		next = min(next, e.due)
	}
	return next
}

// Run reaps every victim due by now.
func (r *Reaper) Run(now int64) {
	r.mu.Lock()
	var due []*mm.Proc
	rest := r.pending[:0]
	for _, e := range r.pending {
		if e.due <= now {
			due = append(due, e.p)
		} else {
			rest = append(rest, e)
		}
	}
	r.pending = rest
	r.mu.Unlock()
	for _, p := range due {
		r.reap(p)
	}
}

func (r *Reaper) reap(p *mm.Proc) {
	m := p.MM
	if m == nil || m.OOMSkip() {
		return // it exited on its own: wake_oom_reaper says nothing
	}
	if _, err := r.k.model.ReleaseAnon(r.task, m, false); err != nil {
		r.k.report(r.task, bug.Bug, "mm/oom_kill.c:__oom_reap_task_mm", err.Error())
	}
	m.SetOOMSkip()
	r.mu.Lock()
	r.reaps++
	r.mu.Unlock()
	r.k.report(r.task, bug.Info, "mm/oom_kill.c:oom_reap_task_mm", fmt.Sprintf(
		"oom_reaper: reaped process %d (%s), now anon-rss:%dkB, file-rss:%dkB, shmem-rss:%dkB",
		p.Task.PID(), p.Task.Comm(), kb(m.Counter(mm.MMAnonPages)), kb(m.Counter(mm.MMFilePages)), kb(m.Counter(mm.MMShmemPages))))
}
