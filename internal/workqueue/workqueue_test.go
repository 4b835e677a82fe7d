package workqueue_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/internal/lockdep"
	"github.com/mmsim/mmsim/internal/workqueue"
	"github.com/mmsim/mmsim/memalloc"
)

var errZoneDeadlock = errors.New("zone: deadlock")

type sink struct {
	mu   sync.Mutex
	reps []bug.Report
}

func (s *sink) add(r bug.Report) {
	s.mu.Lock()
	s.reps = append(s.reps, r)
	s.mu.Unlock()
}

func (s *sink) kind(k bug.Kind) []bug.Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []bug.Report
	for _, r := range s.reps {
		if r.Kind == k {
			out = append(out, r)
		}
	}
	return out
}

// machine is the little that the tests need of a System: pids, lockdep, a
// report log.
type machine struct {
	c    *lockdep.Checker
	s    *sink
	pid  int
	opts workqueue.Options
}

func newMachine() *machine {
	m := &machine{s: new(sink), pid: 100}
	m.c = lockdep.New(lockdep.Options{Report: m.s.add, Deadlock: errZoneDeadlock, Stacks: true})
	m.opts = workqueue.Options{Lockdep: m.c, Report: m.s.add, NewTask: m.newTask}
	return m
}

func (m *machine) newTask(name string, f memalloc.Flags) *memalloc.Task {
	m.pid++
	return memalloc.NewTaskWith(name, memalloc.WithPID(m.pid), memalloc.WithFlags(f))
}

// allocate is a fake GFP_KERNEL allocation that enters direct reclaim: the
// fs_reclaim annotation, then, if the request may enter the filesystem,
// a filesystem shrinker that needs fsLock under fs_reclaim.
func (m *machine) allocate(t *memalloc.Task, fsLock *lockdep.Lock) error {
	mask := t.GFPContext(gfp.Kernel)
	m.c.MightAlloc(t, mask)
	if mask&gfp.FS == 0 {
		return nil // the superblock shrinker returns SHRINK_STOP without __GFP_FS
	}
	m.c.FSReclaimAcquire(t)
	defer m.c.FSReclaimRelease(t)
	if err := fsLock.Lock(t); err != nil {
		return err
	}
	return fsLock.Unlock(t)
}

// TestScopeHandOff is seed debate 002: a task in a NOFS scope holds a
// filesystem lock, queues work and flushes it; the worker, a task of its
// own without the submitter's scope, makes a GFP_KERNEL allocation that
// reclaims, and a filesystem shrinker needs the lock. Lockdep reports the
// cycle L → work → fs_reclaim → L and the shrinker's wait is a deadlock
// error rather than a hang. Carrying the scope (mmsim's opt-in), opening it
// in the work (the kernel's fix), or flushing on another workqueue after
// dropping the lock are silent.
//
// Reference: kernel/workqueue.c:process_one_work(), start_flush_work(),
// touch_work_lockdep_map(); mm/page_alloc.c:fs_reclaim_acquire();
// include/linux/sched/mm.h:memalloc_nofs_save().
func TestScopeHandOff(t *testing.T) {
	tests := []struct {
		name     string
		carry    bool // Queue with CarryScope
		nofsWork bool // the work opens its own NOFS scope
		separate bool // queue on another workqueue, flush after unlocking
		deadlock bool
	}{
		{name: "the scope does not survive the hand-off: reported and a deadlock", deadlock: true},
		{name: "a carried scope keeps reclaim out of the filesystem", carry: true},
		{name: "a NOFS scope opened in the work keeps reclaim out of the filesystem", nofsWork: true},
		{name: "work flushed on another workqueue after dropping the lock is silent", separate: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine()
			wq := workqueue.New("events", 0, m.opts)
			other := workqueue.New("xfs-inodegc", workqueue.Unbound, m.opts)
			l := m.c.NewLock(m.c.NewClass("&xfs_nondir_ilock_class"))
			var ran *memalloc.Task
			w := workqueue.NewWork("(work_completion)(&w->work)", func(wk *memalloc.Task) error {
				ran = wk
				if tt.nofsWork {
					defer wk.Restore(wk.SaveNoFS())
				}
				return m.allocate(wk, l)
			})
			fsop := m.newTask("fsop", 0)
			defer fsop.Restore(fsop.SaveNoFS()) // the submitter's own allocations must not recurse into the fs
			require.NoError(t, l.Lock(fsop))
			var opts []workqueue.QueueOption
			if tt.carry {
				opts = append(opts, workqueue.CarryScope())
			}
			var err error
			if tt.separate {
				require.True(t, other.Queue(fsop, w, opts...))
				require.NoError(t, l.Unlock(fsop))
				err = other.Flush(fsop)
			} else {
				require.True(t, wq.Queue(fsop, w, opts...))
				err = wq.FlushWork(fsop, w)
				require.NoError(t, l.Unlock(fsop))
			}
			require.NotNil(t, ran, "the work ran")
			assert.NotSame(t, fsop, ran, "on a worker task")
			assert.Equal(t, memalloc.PFWQWorker|memalloc.PFKthread, ran.Flags(), "with the worker's own flags after the run")
			if tt.separate {
				assert.Equal(t, "kworker/u4:0", ran.Comm())
			} else {
				assert.Equal(t, "kworker/0:0", ran.Comm())
			}
			assert.Empty(t, m.c.Held(ran), "the worker released its maps")
			assert.Nil(t, m.c.Waiting(fsop), "the flusher no longer waits")
			if !tt.deadlock {
				require.NoError(t, err)
				assert.Zero(t, m.c.Reports())
				assert.Empty(t, m.s.kind(bug.Warn))
				assert.Empty(t, m.s.kind(bug.Bug))
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, lockdep.ErrDeadlock)
			assert.ErrorIs(t, err, errZoneDeadlock)
			assert.ErrorIs(t, w.Err(), lockdep.ErrDeadlock)
			worker := ran.Comm() + "/" + itoa(ran.PID())
			assert.Contains(t, err.Error(), "deadlock: "+worker+" waits for (&xfs_nondir_ilock_class) held by fsop/101, "+
				"which waits for ((work_completion)(&w->work)) run by "+worker)

			require.Equal(t, 1, m.c.Reports())
			warns := m.s.kind(bug.Warn)
			require.Len(t, warns, 1)
			text := warns[0].Text
			for _, want := range []string{
				"WARNING: possible circular locking dependency detected\n",
				worker + " is trying to acquire lock:\n",
				" (&xfs_nondir_ilock_class){+.+.}-{4:4}, at: ",
				"but task is already holding lock:\nffffffff83a4c5a0 (fs_reclaim){+.+.}-{0:0}, at: ",
				"\n-> #2 (fs_reclaim){+.+.}-{0:0}:\n",
				"\n-> #1 ((work_completion)(&w->work)){+.+.}-{0:0}:\n",
				"\n-> #0 (&xfs_nondir_ilock_class){+.+.}-{4:4}:\n",
				"Chain exists of:\n  &xfs_nondir_ilock_class --> (work_completion)(&w->work) --> fs_reclaim\n\n",
				"  lock(fs_reclaim);\n" +
					"                               lock((work_completion)(&w->work));\n" +
					"                               lock(fs_reclaim);\n" +
					"  lock(&xfs_nondir_ilock_class);\n",
				"3 locks held by " + worker + ":\n",
				" ((wq_completion)events){+.+.}-{0:0}, at: workqueue.(*Workqueue).run+0x",
			} {
				assert.Contains(t, text, want)
			}
			// The Go stacks of the chain: the flush under the lock (#1)
			// and the allocation in the work (#2).
			assert.Regexp(t, `-> #1 [^\n]*:\n(       [^\n]*\n)*       workqueue\.\(\*Workqueue\)\.FlushWork`, text)
			assert.Regexp(t, `-> #2 [^\n]*:\n(       [^\n]*\n)*       workqueue_test\.\(\*machine\)\.allocate`, text)
			bugs := m.s.kind(bug.Bug)
			require.Len(t, bugs, 1)
			assert.Equal(t, "kernel/hung_task.c:check_hung_task", bugs[0].Site)
		})
	}
}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}

// TestRescuer checks worker creation under memory pressure: a work that
// needs a second worker while creating one fails runs on the rescuer of a
// WQ_MEM_RECLAIM workqueue, and cannot run on any other.
//
// Reference: kernel/workqueue.c:init_rescuer(), format_worker_id(),
// maybe_create_worker(), rescuer_thread().
func TestRescuer(t *testing.T) {
	tests := []struct {
		name    string
		flags   workqueue.Flags
		rescuer string // who runs the inner work; "" for nobody
	}{
		{name: "a WQ_MEM_RECLAIM workqueue's rescuer runs the work", flags: workqueue.MemReclaim, rescuer: "kworker/R-xfs-l"}, // "kworker/R-xfs-log" cut to TASK_COMM_LEN-1,
		{name: "without WQ_MEM_RECLAIM the work cannot run", flags: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine()
			opts := m.opts
			var asked []string
			opts.AllocWorker = func(name string) error {
				asked = append(asked, name)
				return errors.New("-ENOMEM")
			}
			wq := workqueue.New("xfs-log", tt.flags, opts)
			if tt.rescuer != "" {
				require.NotNil(t, wq.Rescuer())
				assert.Equal(t, tt.rescuer, wq.Rescuer().Comm())
				assert.Equal(t, memalloc.PFWQWorker|memalloc.PFKthread, wq.Rescuer().Flags())
			} else {
				assert.Nil(t, wq.Rescuer())
			}
			var innerRan *memalloc.Task
			inner := workqueue.NewWork("(work_completion)(&inner)", func(wk *memalloc.Task) error {
				innerRan = wk
				return nil
			})
			outer := workqueue.NewWork("(work_completion)(&outer)", func(wk *memalloc.Task) error {
				wq.Queue(wk, inner)
				return wq.FlushWork(wk, inner)
			})
			fsop := m.newTask("fsop", 0)
			require.True(t, wq.Queue(fsop, outer))
			err := wq.FlushWork(fsop, outer)
			assert.Equal(t, []string{"kworker/0:1"}, asked, "the first worker needs no allocation, the second does")
			if tt.rescuer == "" {
				assert.ErrorIs(t, err, workqueue.ErrNoWorker)
				assert.Nil(t, innerRan)
				assert.True(t, inner.Pending(), "the work stays queued")
				return
			}
			require.NoError(t, err)
			require.NotNil(t, innerRan)
			assert.Equal(t, tt.rescuer, innerRan.Comm())
		})
	}
}

// TestQueueAndDestroy checks queue_work's pending rule, that Flush runs
// everything queued, and that a destroyed workqueue refuses work with a
// WARN.
//
// Reference: kernel/workqueue.c:queue_work(), __queue_work(),
// __flush_workqueue(), destroy_workqueue().
func TestQueueAndDestroy(t *testing.T) {
	m := newMachine()
	wq := workqueue.New("events", 0, m.opts)
	tk := m.newTask("t", 0)
	runs := 0
	w1 := workqueue.NewWork("w1", func(*memalloc.Task) error { runs++; return nil })
	w2 := workqueue.NewWork("w2", func(*memalloc.Task) error { runs++; return errors.New("w2 failed") })
	require.True(t, wq.Queue(tk, w1))
	assert.False(t, wq.Queue(tk, w1), "already pending")
	require.True(t, wq.Queue(tk, w2))
	assert.Equal(t, 2, wq.Pending())
	assert.Zero(t, runs, "work runs only when flushed or scheduled")
	assert.ErrorContains(t, wq.Flush(tk), "w2 failed")
	assert.Equal(t, 2, runs)
	assert.NoError(t, wq.FlushWork(tk, w1), "idle: nothing to wait for")
	require.True(t, wq.Queue(tk, w1))
	assert.Equal(t, 1, wq.RunPending())
	assert.Equal(t, 3, runs)
	require.True(t, wq.Queue(tk, w1))
	require.NoError(t, wq.Destroy(tk))
	assert.Equal(t, 4, runs, "destroy drains")
	assert.False(t, wq.Queue(tk, w1))
	warns := m.s.kind(bug.Warn)
	require.Len(t, warns, 1)
	assert.Equal(t, "workqueue: cannot queue w1 on wq events", warns[0].Text)
}

// TestFlushDependency checks the flush-dependency WARN: a PF_MEMALLOC task
// flushing a workqueue without WQ_MEM_RECLAIM.
//
// Reference: kernel/workqueue.c:check_flush_dependency().
func TestFlushDependency(t *testing.T) {
	for _, tt := range []struct {
		name  string
		flags workqueue.Flags
		warn  bool
	}{
		{name: "a PF_MEMALLOC task flushing !WQ_MEM_RECLAIM work is warned about", warn: true},
		{name: "flushing a WQ_MEM_RECLAIM workqueue is fine", flags: workqueue.MemReclaim},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine()
			wq := workqueue.New("events", tt.flags, m.opts)
			w := workqueue.NewWork("w", func(*memalloc.Task) error { return nil })
			tk := m.newTask("kswapd0", memalloc.PFMemalloc|memalloc.PFKswapd)
			require.True(t, wq.Queue(tk, w))
			require.NoError(t, wq.FlushWork(tk, w))
			warns := m.s.kind(bug.Warn)
			if !tt.warn {
				assert.Empty(t, warns)
				return
			}
			require.Len(t, warns, 1)
			assert.Equal(t, "workqueue: PF_MEMALLOC task 101(kswapd0) is flushing !WQ_MEM_RECLAIM events:w", warns[0].Text)
		})
	}
}

// TestLeakedLock checks that a work returning with a lock held is reported.
//
// Reference: kernel/workqueue.c:process_one_work().
func TestLeakedLock(t *testing.T) {
	m := newMachine()
	wq := workqueue.New("events", 0, m.opts)
	l := m.c.NewLock(m.c.NewClass("leaked"))
	w := workqueue.NewWork("w", func(wk *memalloc.Task) error { return l.Lock(wk) })
	tk := m.newTask("t", 0)
	require.True(t, wq.Queue(tk, w))
	require.NoError(t, wq.FlushWork(tk, w))
	bugs := m.s.kind(bug.Bug)
	require.Len(t, bugs, 1)
	assert.True(t, strings.HasPrefix(bugs[0].Text, "BUG: workqueue leaked atomic, lock or RCU: kworker/0:0[102]\n"), bugs[0].Text)
	assert.Contains(t, bugs[0].Text, "lock=0->1")
}

// TestFlushWaitsForARunElsewhere checks a flush of work that another
// goroutine is running: the flusher waits for that run, and a work that
// flushes itself is a deadlock error rather than a hang.
//
// Reference: kernel/workqueue.c:__flush_work().
func TestFlushWaitsForARunElsewhere(t *testing.T) {
	m := newMachine()
	wq := workqueue.New("events", 0, m.opts)
	started, release := make(chan struct{}), make(chan struct{})
	w := workqueue.NewWork("w", func(*memalloc.Task) error {
		close(started)
		<-release
		return errors.New("slow work done")
	})
	tk := m.newTask("t", 0)
	require.True(t, wq.Queue(tk, w))
	go wq.RunPending()
	<-started
	got := make(chan error, 1)
	go func() { got <- wq.FlushWork(tk, w) }()
	for m.c.Waiting(tk) == nil {
		select {
		case err := <-got:
			t.Fatalf("flush returned before the run ended: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	close(release)
	assert.ErrorContains(t, <-got, "slow work done")

	var self *workqueue.Work
	self = workqueue.NewWork("self", func(wk *memalloc.Task) error { return wq.FlushWork(wk, self) })
	require.True(t, wq.Queue(tk, self))
	assert.ErrorIs(t, wq.FlushWork(tk, self), lockdep.ErrDeadlock)
}
