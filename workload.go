package mmsim

import (
	"context"
	"fmt"
	"time"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/mm"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/oom"
	"github.com/mmsim/mmsim/reclaim"
)

// The workload: what user processes do to memory — touch anonymous memory,
// read and write files — so that reclaim has pages to reclaim and the OOM
// killer processes to choose from. Every Task NewTask returns is a user
// process with an address space.

// proc returns t's process, refusing tasks of other Systems and exited ones.
func (s *System) proc(t *memalloc.Task) (*mm.Proc, error) {
	if err := s.check(t); err != nil {
		return nil, err
	}
	p := s.model.Proc(t)
	if p == nil {
		return nil, fmt.Errorf("%w: task %s has exited", ErrInvalid, t)
	}
	return p, nil
}

// TouchAnon faults in pages new pages of anonymous memory for t, as a
// program writing to fresh pages of a private mapping does: each a zeroed
// movable page (GFP_HIGHUSER_MOVABLE|__GFP_ZERO) on the inactive anon
// list, with a page-table page (GFP_PGTABLE_USER) every 512 pages. It
// returns how many pages it faulted in, and the first failure: an
// allocation error, or one wrapping ErrKilled once the OOM killer chose t.
//
// Kernel: mm/memory.c:do_anonymous_page().
func (s *System) TouchAnon(t *memalloc.Task, pages int64) (int64, error) {
	p, err := s.proc(t)
	if err != nil {
		return 0, err
	}
	if pr := s.prof; pr != nil {
		defer t.RestoreAllocTag(pr.saveCallerTag(t))
	}
	if pages < 0 {
		return 0, fmt.Errorf("%w: TouchAnon of %d pages", ErrInvalid, pages)
	}
	return s.model.FaultAnon(p, pages)
}

// File is a simulated file: its page cache.
type File struct{ f *mm.File }

// Name returns the file's name.
func (f *File) Name() string { return f.f.Name() }

// NewFile returns a new empty file whose page cache allocates with mask;
// 0 means GFP_HIGHUSER_MOVABLE, the default mapping_gfp_mask. A
// filesystem's metadata mapping would pass GFP_NOFS.
//
// Kernel: include/linux/pagemap.h:mapping_set_gfp_mask().
func (s *System) NewFile(name string, mask gfp.Mask) *File {
	return &File{s.model.NewFile(name, mask)}
}

// CachedPages returns how many pages of f are in the page cache.
func (s *System) CachedPages(f *File) int64 { return s.model.CachedPages(f.f) }

// ReadFile reads pages [index, index+n) of f for t: missing pages are read
// into the page cache (inactive file list), cached ones are marked
// accessed (a second access activates them).
//
// Kernel: mm/filemap.c:filemap_read().
func (s *System) ReadFile(t *memalloc.Task, f *File, index, n int64) (int64, error) {
	if pr := s.prof; pr != nil && s.check(t) == nil {
		defer t.RestoreAllocTag(pr.saveCallerTag(t))
	}
	return s.access(t, f, index, n, false)
}

// WriteFile writes pages [index, index+n) of f for t: the pages are
// dirtied, for the flushers to write back; a writer far above the
// background threshold is paused (balance_dirty_pages) while the flushers
// run.
//
// Kernel: mm/filemap.c:generic_perform_write(),
// mm/page-writeback.c:balance_dirty_pages().
func (s *System) WriteFile(t *memalloc.Task, f *File, index, n int64) (int64, error) {
	if pr := s.prof; pr != nil && s.check(t) == nil {
		defer t.RestoreAllocTag(pr.saveCallerTag(t))
	}
	done, err := s.access(t, f, index, n, true)
	if err == nil {
		s.balanceDirtyPages()
	}
	return done, err
}

func (s *System) access(t *memalloc.Task, f *File, index, n int64, write bool) (int64, error) {
	p, err := s.proc(t)
	if err != nil {
		return 0, err
	}
	if f == nil || f.f == nil || index < 0 || n < 0 {
		return 0, fmt.Errorf("%w: file access at page %d, %d pages", ErrInvalid, index, n)
	}
	return s.model.AccessFile(p, f.f, index, n, write)
}

// maxPause is MAX_PAUSE: the longest a dirtying task sleeps at a time.
const maxPause = int64(time.Second / 5)

// balanceDirtyPages pauses the writer while the dirty pages are above the
// midpoint between the background and dirty thresholds, longer the closer
// they are to the dirty threshold, at most MAX_PAUSE a call, and wakes the
// flushers when they are above the background threshold. The kernel's
// pause follows a rate-control curve; mmsim scales linearly between the
// freerun point and the limit.
//
// Kernel: mm/page-writeback.c:balance_dirty_pages().
func (s *System) balanceDirtyPages() {
	thresh, bg := s.alloc.DirtyLimits()
	dirty := s.model.DirtyPages()
	if dirty > bg {
		s.reclaim.Flusher().Kick(s.Now())
	}
	freerun := (thresh + bg) / 2
	if dirty <= freerun {
		return
	}
	pause := maxPause
	if dirty < thresh && thresh > freerun {
		pause = maxPause * (dirty - freerun) / (thresh - freerun)
	}
	s.clock.Sleep(pause, func() bool { return s.model.DirtyPages() <= freerun })
}

// SetOOMScoreAdj writes /proc/PID/oom_score_adj for t: -1000..1000.
//
// Kernel: fs/proc/base.c:oom_score_adj_write().
func (s *System) SetOOMScoreAdj(t *memalloc.Task, adj int) error {
	p, err := s.proc(t)
	if err != nil {
		return err
	}
	if adj < oom.ScoreAdjMin || adj > oom.ScoreAdjMax {
		return fmt.Errorf("%w: oom_score_adj %d: the range is %d..%d (-EINVAL)", ErrInvalid, adj, oom.ScoreAdjMin, oom.ScoreAdjMax)
	}
	p.SetOOMScoreAdj(adj)
	return nil
}

// OOMScore reads /proc/PID/oom_score for t.
//
// Kernel: fs/proc/base.c:proc_oom_score().
func (s *System) OOMScore(t *memalloc.Task) (int64, error) {
	p, err := s.proc(t)
	if err != nil {
		return 0, err
	}
	return s.oom.Score(p), nil
}

// Usage returns what the OOM killer counts of t's address space.
func (s *System) Usage(t *memalloc.Task) (oom.Usage, error) {
	p, err := s.proc(t)
	if err != nil {
		return oom.Usage{}, err
	}
	return s.oom.Usage(p), nil
}

// Context returns t's context: cancelled when t is killed or exits.
func (s *System) Context(t *memalloc.Task) context.Context {
	p, err := s.proc(t)
	if err != nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	return p.Context()
}

// Killed reports whether the OOM killer chose t.
func (s *System) Killed(t *memalloc.Task) bool {
	p, err := s.proc(t)
	return err == nil && p.Victim()
}

// Exit ends t's process: its anonymous memory, swap entries and page
// tables are freed. The task may not be used afterwards.
//
// Kernel: kernel/exit.c:do_exit().
func (s *System) Exit(t *memalloc.Task) error {
	p, err := s.proc(t)
	if err != nil {
		return err
	}
	return s.model.Exit(p)
}

// Sleep lets d of simulated time pass, running the daemons (kswapd, the
// flushers, the OOM reaper) that are due meanwhile.
func (s *System) Sleep(d time.Duration) { s.clock.Sleep(int64(d), nil) }

// Step runs the daemon due first within d of simulated time, advancing
// the clock to it, and reports whether one ran.
func (s *System) Step(d time.Duration) bool { return s.clock.Step(int64(d)) }

// RunUntilIdle runs the daemons until none is due within d of simulated
// time, and returns the steps run.
func (s *System) RunUntilIdle(d time.Duration) int { return s.clock.RunUntilIdle(int64(d)) }

// Reclaim returns the machine's page reclaim: kswapd, the flushers, the
// shrinkers.
func (s *System) Reclaim() *reclaim.Reclaimer { return s.reclaim }

// OOM returns the machine's OOM killer.
func (s *System) OOM() *oom.Killer { return s.oom }

// Compaction returns the machine's compaction: direct compaction's state,
// kcompactd per node, fragmentation indices and scores.
func (s *System) Compaction() *reclaim.Compactor { return s.compact }

// CompactMemory compacts every zone of every node whole, as t writing 1 to
// /proc/sys/vm/compact_memory does; t's CPU is busy for the modelled time.
//
// Kernel: mm/compaction.c:sysctl_compaction_handler(), compact_nodes().
func (s *System) CompactMemory(t *memalloc.Task) error {
	if err := s.check(t); err != nil {
		return err
	}
	for nid := range s.alloc.Nodes() {
		s.compact.CompactNode(t, nid)
	}
	return nil
}

// NewSuperCache returns a filesystem's dentry and inode caches, registered
// with reclaim as a superblock shrinker: objsPerPage objects a slab page.
func (s *System) NewSuperCache(objsPerPage int) *reclaim.SuperCache {
	c := reclaim.NewSuperCache(s.alloc, objsPerPage)
	s.reclaim.RegisterShrinker(c)
	return c
}
