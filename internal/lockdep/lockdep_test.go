package lockdep_test

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
	"github.com/mmsim/mmsim/memalloc"
)

// errZoneDeadlock stands for zone.ErrDeadlock, which the root passes.
var errZoneDeadlock = errors.New("zone: deadlock")

// sink collects reports.
type sink struct {
	mu   sync.Mutex
	reps []bug.Report
}

func (s *sink) add(r bug.Report) {
	s.mu.Lock()
	s.reps = append(s.reps, r)
	s.mu.Unlock()
}

func (s *sink) all() []bug.Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bug.Report(nil), s.reps...)
}

func (s *sink) kind(k bug.Kind) []bug.Report {
	var out []bug.Report
	for _, r := range s.all() {
		if r.Kind == k {
			out = append(out, r)
		}
	}
	return out
}

func newChecker(opts lockdep.Options) (*lockdep.Checker, *sink) {
	s := new(sink)
	opts.Report = s.add
	opts.Deadlock = errZoneDeadlock
	opts.Stacks = true
	return lockdep.New(opts), s
}

func task(name string, pid int, f memalloc.Flags) *memalloc.Task {
	return memalloc.NewTaskWith(name, memalloc.WithPID(pid), memalloc.WithFlags(f))
}

// lockInOrder takes the locks in order and releases them in reverse.
func lockInOrder(t *testing.T, tk *memalloc.Task, locks ...*lockdep.Lock) {
	for _, l := range locks {
		require.NoError(t, l.Lock(tk))
	}
	for i := len(locks) - 1; i >= 0; i-- {
		require.NoError(t, locks[i].Unlock(tk))
	}
}

// TestDependencyCycles checks that two tasks taking two locks in opposite
// orders are reported once, in lockdep's words, with both Go stacks, the
// first time the second order is seen — no wait needed — and that a
// consistent order is not.
//
// Reference: kernel/locking/lockdep.c:check_prev_add(), check_noncircular(),
// print_circular_bug(), print_circular_lock_scenario().
func TestDependencyCycles(t *testing.T) {
	tests := []struct {
		name    string
		second  []string // the order task 2 takes A and B (task 1: A, B)
		repeat  int      // how many times both run
		keep    bool     // Options.KeepReporting
		reports int
	}{
		{name: "the same order twice is no dependency problem", second: []string{"A", "B"}, repeat: 1, reports: 0},
		{name: "the opposite order is reported at once", second: []string{"B", "A"}, repeat: 1, reports: 1},
		{name: "the opposite order is reported only the first time", second: []string{"B", "A"}, repeat: 3, reports: 1},
		{name: "with KeepReporting one cycle is still reported once", second: []string{"B", "A"}, repeat: 3, keep: true, reports: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := newChecker(lockdep.Options{KeepReporting: tt.keep})
			locks := map[string]*lockdep.Lock{
				"A": c.NewLock(c.NewClass("&sb->s_type->i_mutex_key")),
				"B": c.NewLock(c.NewClass("&ip->i_lock")),
			}
			t1, t2 := task("t1", 1, 0), task("t2", 2, 0)
			for range tt.repeat {
				lockInOrder(t, t1, locks["A"], locks["B"])
				lockInOrder(t, t2, locks[tt.second[0]], locks[tt.second[1]])
			}
			assert.Equal(t, tt.reports, c.Reports())
			reps := s.all()
			require.Len(t, reps, tt.reports)
			if tt.reports == 0 {
				return
			}
			r := reps[0]
			assert.Equal(t, bug.Warn, r.Kind)
			assert.Equal(t, "kernel/locking/lockdep.c:print_circular_bug", r.Site)
			assert.Equal(t, "t2", r.Comm)
			for _, line := range []string{
				"======================================================\n" +
					"WARNING: possible circular locking dependency detected\n",
				"------------------------------------------------------\nt2/2 is trying to acquire lock:\n",
				" (&sb->s_type->i_mutex_key){+.+.}-{4:4}, at: lockdep_test.lockInOrder+0x",
				"\nbut task is already holding lock:\n",
				" (&ip->i_lock){+.+.}-{4:4}, at: ",
				"\nwhich lock already depends on the new lock.\n\n\nthe existing dependency chain (in reverse order) is:\n\n-> #1 (&ip->i_lock){+.+.}-{4:4}:\n",
				"\n-> #0 (&sb->s_type->i_mutex_key){+.+.}-{4:4}:\n",
				"\nother info that might help us debug this:\n\n Possible unsafe locking scenario:\n\n" +
					"       CPU0                    CPU1\n" +
					"       ----                    ----\n" +
					"  lock(&ip->i_lock);\n" +
					"                               lock(&sb->s_type->i_mutex_key);\n" +
					"                               lock(&ip->i_lock);\n" +
					"  lock(&sb->s_type->i_mutex_key);\n\n *** DEADLOCK ***\n\n",
				"1 lock held by t2/2:\n #0: ",
				"\nstack backtrace:\n",
			} {
				assert.Contains(t, r.Text, line)
			}
			assert.NotContains(t, r.Text, "Chain exists of", "a two-lock cycle has no chain")
			// Both Go stacks: where A→B was recorded (#1) and the
			// current one (#0), each through the test's helper.
			chain := r.Text[strings.Index(r.Text, "-> #1"):strings.Index(r.Text, "other info")]
			assert.Equal(t, 2, strings.Count(chain, "lockdep_test.lockInOrder+0x"), chain)
			assert.Equal(t, 2, strings.Count(chain, "lockdep_test.TestDependencyCycles.func"), chain)
			assert.NotContains(t, chain, "internal/lockdep.", "lockdep's own frames are left out")
		})
	}
}

// TestDistinctCyclesWithKeepReporting checks the option that keeps lockdep
// on: a second, different cycle is reported too; by default lockdep is off
// after the first report, as debug_locks_off turns it off.
//
// Reference: lib/debug_locks.c:debug_locks_off().
func TestDistinctCyclesWithKeepReporting(t *testing.T) {
	for _, tt := range []struct {
		name    string
		keep    bool
		reports int
	}{
		{name: "by default only the first cycle of the run is reported", keep: false, reports: 1},
		{name: "with KeepReporting each distinct cycle is reported", keep: true, reports: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newChecker(lockdep.Options{KeepReporting: tt.keep})
			a, b := c.NewLock(c.NewClass("a")), c.NewLock(c.NewClass("b"))
			x, y := c.NewLock(c.NewClass("x")), c.NewLock(c.NewClass("y"))
			tk := task("t", 1, 0)
			lockInOrder(t, tk, a, b)
			lockInOrder(t, tk, b, a)
			lockInOrder(t, tk, x, y)
			lockInOrder(t, tk, y, x)
			assert.Equal(t, tt.reports, c.Reports())
			assert.Equal(t, !tt.keep, c.Off())
		})
	}
}

// TestFSReclaim checks the fs_reclaim annotation: a task holding L that
// might allocate with a mask that may enter filesystem reclaim records
// L → fs_reclaim, and a shrinker taking L under fs_reclaim then closes the
// cycle; a mask without __GFP_FS or __GFP_DIRECT_RECLAIM, a NOFS scope,
// __GFP_NOLOCKDEP or PF_MEMALLOC record nothing. The seed-001 case: a nested
// debug allocation keeps __GFP_NOLOCKDEP through gfp_nested_mask; one that
// loses it makes lockdep report a false positive.
//
// Reference: mm/page_alloc.c:__need_reclaim(), fs_reclaim_acquire();
// include/linux/gfp.h:gfp_nested_mask().
func TestFSReclaim(t *testing.T) {
	tests := []struct {
		name   string
		mask   gfp.Mask
		flags  memalloc.Flags
		nofs   bool // the allocating task opens a NOFS scope
		report bool
	}{
		{name: "GFP_KERNEL under L closes the cycle with a shrinker", mask: gfp.Kernel, report: true},
		{name: "GFP_NOFS under L does not", mask: gfp.NoFS},
		{name: "GFP_KERNEL in a NOFS scope does not", mask: gfp.Kernel, nofs: true},
		{name: "GFP_ATOMIC cannot reclaim and does not", mask: gfp.Atomic},
		{name: "__GFP_NOLOCKDEP opts out", mask: gfp.Kernel | gfp.NoLockdep},
		{name: "a PF_MEMALLOC task does not enter reclaim", mask: gfp.Kernel, flags: memalloc.PFMemalloc},
		{name: "a nested debug allocation keeps __GFP_NOLOCKDEP", mask: (gfp.Kernel | gfp.NoLockdep).Nested()},
		{name: "a nested debug allocation that lost __GFP_NOLOCKDEP is a false positive",
			mask: (gfp.Kernel | gfp.NoLockdep).Nested() &^ gfp.NoLockdep, report: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := newChecker(lockdep.Options{})
			l := c.NewLock(c.NewClass("&xfs_nondir_ilock_class"))
			fsop := task("fsop", 10, tt.flags)
			require.NoError(t, l.Lock(fsop))
			if tt.nofs {
				cookie := fsop.SaveNoFS()
				c.MightAlloc(fsop, tt.mask)
				fsop.Restore(cookie)
			} else {
				c.MightAlloc(fsop, tt.mask)
			}
			assert.Equal(t, []string{"&xfs_nondir_ilock_class"}, c.Held(fsop), "fs_reclaim is taken and released")
			require.NoError(t, l.Unlock(fsop))

			kswapd := task("kswapd0", 20, memalloc.PFMemalloc|memalloc.PFKswapd|memalloc.PFKthread)
			c.FSReclaimAcquire(kswapd)
			require.NoError(t, l.Lock(kswapd))
			assert.Equal(t, []string{"fs_reclaim", "&xfs_nondir_ilock_class"}, c.Held(kswapd))
			require.NoError(t, l.Unlock(kswapd))
			c.FSReclaimRelease(kswapd)
			assert.Empty(t, c.Held(kswapd))

			if !tt.report {
				assert.Zero(t, c.Reports())
				assert.Empty(t, s.all())
				return
			}
			require.Equal(t, 1, c.Reports())
			text := s.all()[0].Text
			assert.Contains(t, text, "kswapd0/20 is trying to acquire lock:\n")
			assert.Contains(t, text, " (&xfs_nondir_ilock_class){+.+.}-{4:4}, at: ")
			assert.Contains(t, text, "but task is already holding lock:\nffffffff83a4c5a0 (fs_reclaim){+.+.}-{0:0}, at: ")
			assert.Contains(t, text, "\n-> #1 (fs_reclaim){+.+.}-{0:0}:\n")
			assert.Contains(t, text, "  lock(fs_reclaim);\n                               lock(&xfs_nondir_ilock_class);\n")
		})
	}
}

// TestUnlockBalance checks that releasing what the task does not hold is
// refused: lockdep's report, an error of the BUG class, and nothing
// changes — the owner keeps the lock and its held stack.
//
// Reference: kernel/locking/lockdep.c:print_unlock_imbalance_bug(),
// find_held_lock().
func TestUnlockBalance(t *testing.T) {
	tests := []struct {
		name    string
		ownerOK bool // another task owns the lock
		useMap  bool // release a lockdep map instead of a lock
	}{
		{name: "unlocking a free lock is refused"},
		{name: "unlocking another task's lock is refused", ownerOK: true},
		{name: "releasing a map never acquired is refused", useMap: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := newChecker(lockdep.Options{})
			l := c.NewLock(c.NewClass("&sb->s_umount"))
			owner, other := task("owner", 1, 0), task("other", 2, 0)
			if tt.ownerOK {
				require.NoError(t, l.Lock(owner))
			}
			var err error
			if tt.useMap {
				err = c.NewMap("(work_completion)(&w->work)").Release(other)
			} else {
				err = l.Unlock(other)
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, lockdep.ErrUnlockBalance)
			assert.ErrorIs(t, err, bug.ErrBug)
			require.Len(t, s.all(), 1)
			r := s.all()[0]
			assert.Equal(t, "kernel/locking/lockdep.c:print_unlock_imbalance_bug", r.Site)
			assert.Contains(t, r.Text, "=====================================\nWARNING: bad unlock balance detected!\n")
			assert.Contains(t, r.Text, "other/2 is trying to release lock (")
			assert.Contains(t, r.Text, "but there are no more locks to release!\n")
			assert.Contains(t, r.Text, "no locks held by other/2.\n")
			if tt.ownerOK {
				assert.Same(t, owner, l.Owner(), "the owner keeps the lock")
				assert.Equal(t, []string{"&sb->s_umount"}, c.Held(owner))
				require.NoError(t, l.Unlock(owner))
			} else {
				assert.Nil(t, l.Owner())
			}
			assert.Empty(t, c.Held(other))
		})
	}
}

// TestTryLock checks that a trylock records no dependency as the acquirer
// (the order B-then-A after a trylock of B under A is no cycle) and never
// waits.
//
// Reference: kernel/locking/lockdep.c:validate_chain() (trylocks skip it).
func TestTryLock(t *testing.T) {
	c, s := newChecker(lockdep.Options{})
	a, b := c.NewLock(c.NewClass("a")), c.NewLock(c.NewClass("b"))
	t1, t2 := task("t1", 1, 0), task("t2", 2, 0)
	require.NoError(t, a.Lock(t1))
	require.True(t, b.TryLock(t1))
	assert.False(t, b.TryLock(t2), "held: the trylock fails at once")
	require.NoError(t, b.Unlock(t1))
	require.NoError(t, a.Unlock(t1))
	lockInOrder(t, t2, b, a)
	assert.Zero(t, c.Reports())
	assert.Empty(t, s.all())
}

// TestRecursiveLocking checks that taking a second lock of a class the
// task holds is lockdep's recursive-locking report.
//
// Reference: kernel/locking/lockdep.c:check_deadlock(), print_deadlock_bug().
func TestRecursiveLocking(t *testing.T) {
	c, s := newChecker(lockdep.Options{})
	k := c.NewClass("&inode->i_rwsem")
	l1, l2 := c.NewLock(k), c.NewLock(k)
	lockInOrder(t, task("t", 1, 0), l1, l2)
	require.Equal(t, 1, c.Reports())
	assert.Contains(t, s.all()[0].Text, "WARNING: possible recursive locking detected\n")
	assert.Contains(t, s.all()[0].Text, " May be due to missing lock nesting notation\n")
}

// waitFor polls cond for up to a second.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestContention checks real waits between goroutines: a contended lock
// whose owner waits for nothing blocks until released and then proceeds;
// an ABBA wait gives the second waiter a deadlock error (wrapping both
// sentinels, with a BUG report naming the tasks) instead of hanging, and
// the first proceeds once the second backs off; a task that runs inline
// (kswapd) does not block but gets ErrWouldBlock.
//
// Reference: kernel/locking/mutex.c:__mutex_lock_common(),
// kernel/hung_task.c:check_hung_task().
func TestContention(t *testing.T) {
	t.Run("a contended lock blocks until released", func(t *testing.T) {
		c, _ := newChecker(lockdep.Options{})
		a := c.NewLock(c.NewClass("a"))
		t1, t2 := task("t1", 1, 0), task("t2", 2, 0)
		require.NoError(t, a.Lock(t1))
		got := make(chan error, 1)
		go func() { got <- a.Lock(t2) }()
		waitFor(t, func() bool { return c.Waiting(t2) != nil }, "t2 to wait")
		select {
		case err := <-got:
			t.Fatalf("Lock returned while the lock was held: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		require.NoError(t, a.Unlock(t1))
		select {
		case err := <-got:
			require.NoError(t, err)
		case <-time.After(time.Second):
			t.Fatal("Lock did not proceed after the release")
		}
		assert.Same(t, t2, a.Owner())
		assert.Nil(t, c.Waiting(t2))
		require.NoError(t, a.Unlock(t2))
	})
	t.Run("an ABBA wait is a deadlock error, not a hang", func(t *testing.T) {
		c, s := newChecker(lockdep.Options{})
		a, b := c.NewLock(c.NewClass("a")), c.NewLock(c.NewClass("b"))
		t1, t2 := task("t1", 1, 0), task("t2", 2, 0)
		require.NoError(t, a.Lock(t1))
		require.NoError(t, b.Lock(t2))
		got := make(chan error, 1)
		go func() { got <- b.Lock(t1) }()
		waitFor(t, func() bool { return c.Waiting(t1) != nil }, "t1 to wait")
		done := make(chan error, 1)
		go func() { done <- a.Lock(t2) }()
		var err error
		select {
		case err = <-done:
		case <-time.After(time.Second):
			t.Fatal("the ABBA wait hung")
		}
		require.Error(t, err)
		assert.ErrorIs(t, err, lockdep.ErrDeadlock)
		assert.ErrorIs(t, err, errZoneDeadlock)
		assert.Contains(t, err.Error(), "t2/2 waits for (a) held by t1/1, which waits for (b) held by t2/2")
		bugs := s.kind(bug.Bug)
		require.Len(t, bugs, 1)
		assert.True(t, strings.HasPrefix(bugs[0].Text, "deadlock: t2/2 waits for (a)"), bugs[0].Text)
		assert.Equal(t, 1, c.Reports(), "lockdep reported the order too")
		require.NoError(t, b.Unlock(t2))
		select {
		case err := <-got:
			require.NoError(t, err)
		case <-time.After(time.Second):
			t.Fatal("t1 did not get b")
		}
		assert.Equal(t, []string{"a", "b"}, c.Held(t1))
	})
	t.Run("an inline daemon does not block", func(t *testing.T) {
		c, _ := newChecker(lockdep.Options{Inline: func(t *memalloc.Task) bool {
			return t.Flags()&(memalloc.PFKswapd|memalloc.PFKcompactd) != 0
		}})
		a := c.NewLock(c.NewClass("a"))
		owner := task("fsop", 1, 0)
		kswapd := task("kswapd0", 2, memalloc.PFMemalloc|memalloc.PFKswapd)
		require.NoError(t, a.Lock(owner))
		err := a.Lock(kswapd)
		assert.ErrorIs(t, err, lockdep.ErrWouldBlock)
		assert.Nil(t, c.Waiting(kswapd))
		assert.Same(t, owner, a.Owner())
		require.NoError(t, a.Unlock(owner))
		require.NoError(t, a.Lock(kswapd), "free: no wait needed")
		require.NoError(t, a.Unlock(kswapd))
	})
	t.Run("a lock held by the task itself is a deadlock", func(t *testing.T) {
		c, _ := newChecker(lockdep.Options{})
		a := c.NewLock(c.NewClass("a"))
		tk := task("t", 1, 0)
		require.NoError(t, a.Lock(tk))
		assert.ErrorIs(t, a.Lock(tk), lockdep.ErrDeadlock)
		require.NoError(t, a.Unlock(tk))
	})
}
