package mmsim_test

import (
	"strings"
	"testing"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lockingShrinker is a filesystem shrinker that needs lock in reclaim and,
// as super_cache_scan does, stops without __GFP_FS.
type lockingShrinker struct {
	lock *mmsim.Lock
	err  error
}

func (sh *lockingShrinker) Count(*mmsim.ShrinkControl) uint64 { return 1024 }
func (sh *lockingShrinker) Seeks() int                        { return 2 }
func (sh *lockingShrinker) Scan(sc *mmsim.ShrinkControl) uint64 {
	if sc.GFPMask&gfp.FS == 0 || sh.err != nil {
		return mmsim.ShrinkStop
	}
	if err := sh.lock.Lock(sc.Task); err != nil {
		sh.err = err
		return mmsim.ShrinkStop
	}
	_ = sh.lock.Unlock(sc.Task)
	return 0
}

// lockdepMachine is a machine with lockdep, a shrinker that takes an
// "inode lock", and memory filled to the min watermark by a hog whose
// reclaim ran the shrinker (so lockdep knows fs_reclaim --> the lock).
func lockdepMachine(t *testing.T, prefix bool) (*mmsim.System, *lockingShrinker) {
	t.Helper()
	cfg := smallConfig(8192)
	cfg.Lockdep = true
	cfg.VmallocPreFix = prefix
	s := newSystem(t, cfg)
	sh := &lockingShrinker{lock: s.NewLock("&xfs_nondir_ilock_class")}
	s.RegisterShrinker(sh)
	hog := s.NewTask("hog")
	for {
		if _, err := s.AllocPages(hog, gfp.Kernel|gfp.NoRetry|gfp.NoWarn, 0); err != nil {
			break
		}
	}
	require.Zero(t, s.LockdepReports())
	return s, sh
}

// TestWorkqueueScopeHandOff is seed 002 through the System: a NOFS task
// holding the inode lock flushes work whose GFP_KERNEL allocation enters
// reclaim, where the shrinker needs the inode lock. lockdep reports the
// cycle and the wait is a deadlock; carrying the scope, or a separate
// workqueue flushed after unlocking, is silent.
//
// Reference: kernel/workqueue.c:process_one_work(), __flush_work();
// mm/page_alloc.c:fs_reclaim_acquire(); include/linux/sched/mm.h
// (the scope is the task's, not the work's).
func TestWorkqueueScopeHandOff(t *testing.T) {
	for _, tc := range []struct {
		name            string
		carry, separate bool
	}{
		{name: "the scope does not travel: reported, and a deadlock"},
		{name: "a carried scope keeps reclaim out of the filesystem", carry: true},
		{name: "a separate workqueue flushed after unlocking is silent", separate: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, sh := lockdepMachine(t, false)
			var worker *memalloc.Task
			w := mmsim.NewWork("(work_completion)(&ip->i_ioend_work)", func(wk *memalloc.Task) error {
				worker = wk
				_, _ = s.AllocPages(wk, gfp.Kernel|gfp.NoRetry|gfp.NoWarn, 0)
				return sh.err
			})
			fsop := s.NewTask("xfs_fsop")
			defer fsop.Restore(fsop.SaveNoFS())
			require.NoError(t, sh.lock.Lock(fsop))
			var opts []mmsim.QueueOption
			if tc.carry {
				opts = append(opts, mmsim.CarryScope())
			}
			var err error
			if tc.separate {
				wq := s.NewWorkqueue("xfs-inodegc", mmsim.WQUnbound|mmsim.WQMemReclaim)
				require.True(t, wq.Queue(fsop, w, opts...))
				require.NoError(t, sh.lock.Unlock(fsop))
				err = wq.Flush(fsop)
			} else {
				wq := s.NewWorkqueue("events", 0)
				require.True(t, wq.Queue(fsop, w, opts...))
				err = wq.FlushWork(fsop, w)
				require.NoError(t, sh.lock.Unlock(fsop))
			}
			require.NotNil(t, worker)
			assert.NotSame(t, fsop, worker, "the work ran on a worker task")
			assert.Zero(t, worker.Flags()&memalloc.PFMemallocNoFS, "the worker keeps its own flags")
			if tc.carry || tc.separate {
				require.NoError(t, err)
				assert.Zero(t, s.LockdepReports())
				assert.Empty(t, reportsOf(s, mmsim.ReportBug))
				return
			}
			require.ErrorIs(t, err, mmsim.ErrDeadlock)
			require.Equal(t, 1, s.LockdepReports())
			warns := reportsOf(s, mmsim.ReportWarn)
			require.Len(t, warns, 1)
			assert.Contains(t, warns[0].Text, "WARNING: possible circular locking dependency detected")
			assert.Contains(t, warns[0].Text,
				"fs_reclaim --> &xfs_nondir_ilock_class --> (work_completion)(&ip->i_ioend_work)")
			bugs := reportsOf(s, mmsim.ReportBug)
			require.NotEmpty(t, bugs)
			assert.True(t, strings.HasPrefix(bugs[0].Text, "deadlock: kworker/"), bugs[0].Text)
		})
	}
}

// TestVmallocPageTableScope checks the fix seed debates argue over for
// vmalloc: its page tables take no gfp flags, so a GFP_NOFS caller's
// constraint is imposed with a NOFS scope. A task holding the inode lock
// (which reclaim's shrinker takes) vmallocs with GFP_NOFS: silent with
// the scope; under the pre-fix what-if the page-table allocation is
// GFP_KERNEL with the lock held, and lockdep reports the recursion into
// the filesystem.
//
// Reference: mm/vmalloc.c:__vmalloc_area_node() (memalloc_apply_gfp_scope).
func TestVmallocPageTableScope(t *testing.T) {
	for _, prefix := range []bool{false, true} {
		s, sh := lockdepMachine(t, prefix)
		task := s.NewTask("xfs_fsop")
		require.NoError(t, sh.lock.Lock(task))
		o, err := s.Vmalloc(task, 8192, gfp.NoFS)
		require.NoError(t, sh.lock.Unlock(task))
		if err == nil {
			require.NoError(t, s.Vfree(task, o))
		}
		if !prefix {
			assert.Zero(t, s.LockdepReports(), "the NOFS scope keeps the page tables out of fs reclaim")
			continue
		}
		require.Equal(t, 1, s.LockdepReports(), "pre-fix: GFP_KERNEL page tables under the inode lock")
		warns := reportsOf(s, mmsim.ReportWarn)
		require.NotEmpty(t, warns)
		assert.Contains(t, warns[len(warns)-1].Text, "(fs_reclaim)")
	}
}

// TestKmallocTakesFSReclaim checks that lockdep sees every slab
// allocation, not only those that need a new slab page: might_alloc() runs
// at slab's entry.
//
// Reference: mm/slub.c:slab_pre_alloc_hook(), include/linux/sched/mm.h:might_alloc().
func TestKmallocTakesFSReclaim(t *testing.T) {
	for _, mask := range []gfp.Mask{gfp.NoFS, gfp.Kernel} {
		s, sh := lockdepMachine(t, false)
		task := s.NewTask("xfs_fsop")
		o, err := s.Kmalloc(task, 64, gfp.Atomic) // the cache has a slab now
		require.NoError(t, err)
		require.NoError(t, sh.lock.Lock(task))
		o2, err := s.Kmalloc(task, 64, mask)
		require.NoError(t, sh.lock.Unlock(task))
		require.NoError(t, err)
		require.NoError(t, s.Kfree(task, o))
		require.NoError(t, s.Kfree(task, o2))
		if mask == gfp.NoFS {
			assert.Zero(t, s.LockdepReports(), "GFP_NOFS never takes fs_reclaim")
		} else {
			assert.Equal(t, 1, s.LockdepReports(), "GFP_KERNEL under the inode lock, from a warm cache")
		}
	}
}
