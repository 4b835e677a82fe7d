package memalloc_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
)

const (
	noFS = memalloc.PFMemallocNoFS
	noIO = memalloc.PFMemallocNoIO
	pin  = memalloc.PFMemallocPin
)

// TestScopes checks the 7.2 cookie semantics of memalloc_flags_save/restore
// on well-formed scopes: the cookie is the bits newly set, nested saves of a
// set flag return 0, and scopes of different flags close in any order.
//
// Reference: include/linux/sched/mm.h:memalloc_flags_save(),
// memalloc_flags_restore() (commit 3f6d5e6a468d).
func TestScopes(t *testing.T) {
	t.Run("the cookie is the bits newly set (the pre-6.9 API returned the old bit instead)", func(t *testing.T) {
		tk := memalloc.NewTask("t")
		c := tk.SaveNoFS()
		require.Equal(t, noFS, c)
		require.Equal(t, noFS, tk.Flags())
		tk.Restore(c)
		require.Zero(t, tk.Flags())
		require.NoError(t, tk.Err())
	})
	t.Run("a nested save of the same flag returns 0 and its restore is a no-op", func(t *testing.T) {
		tk := memalloc.NewTask("t")
		outer := tk.SaveNoFS()
		inner := tk.SaveNoFS()
		require.Zero(t, inner)
		tk.Restore(inner)
		require.Equal(t, noFS, tk.Flags(), "the outermost restore ends the scope")
		tk.Restore(outer)
		require.Zero(t, tk.Flags())
		require.NoError(t, tk.Err())
	})
	t.Run("a save of several flags returns only those not yet set", func(t *testing.T) {
		tk := memalloc.NewTask("t")
		a := tk.SaveNoFS()
		b := tk.SaveFlags(noFS | noIO | pin)
		require.Equal(t, noIO|pin, b)
		tk.Restore(b)
		require.Equal(t, noFS, tk.Flags())
		tk.Restore(a)
		require.Zero(t, tk.Flags())
		require.NoError(t, tk.Err())
	})
	t.Run("scopes of different flags may be restored out of order", func(t *testing.T) {
		tk := memalloc.NewTask("t")
		fs := tk.SaveNoFS()
		io := tk.SaveNoIO()
		p := tk.SavePin()
		tk.Restore(fs)
		require.Equal(t, noIO|pin, tk.Flags())
		tk.Restore(p)
		tk.Restore(io)
		require.Zero(t, tk.Flags())
		require.NoError(t, tk.Err(), "out-of-order restore of different flags is correct kernel usage")
	})
	t.Run("nested zero cookies of different flags restored out of order are not misuse", func(t *testing.T) {
		tk := memalloc.NewTask("t")
		fs := tk.SaveNoFS()
		fs0 := tk.SaveNoFS()
		io := tk.SaveNoIO()
		io0 := tk.SaveNoIO()
		tk.Restore(fs0) // a Restore(0): which scope it closes cannot be told
		tk.Restore(fs)
		tk.Restore(io)
		tk.Restore(io0)
		require.Zero(t, tk.Flags())
		require.NoError(t, tk.Err())
	})
	t.Run("each helper sets its own flag; SaveMemalloc sets PF_MEMALLOC, not PF_MEMALLOC_NORECLAIM", func(t *testing.T) {
		for _, tc := range []struct {
			save func(*memalloc.Task) memalloc.Flags
			want memalloc.Flags
		}{
			{(*memalloc.Task).SaveNoFS, noFS},
			{(*memalloc.Task).SaveNoIO, noIO},
			{(*memalloc.Task).SavePin, pin},
			{(*memalloc.Task).SaveMemalloc, memalloc.PFMemalloc},
		} {
			tk := memalloc.NewTask("t")
			c := tc.save(tk)
			require.Equal(t, tc.want, c)
			require.Equal(t, tc.want, tk.Flags())
			tk.Restore(c)
			require.Zero(t, tk.Flags())
		}
	})
	t.Run("kswapd's lifelong PF_MEMALLOC survives a noreclaim scope", func(t *testing.T) {
		tk := memalloc.NewTaskWith("kswapd0", memalloc.WithFlags(memalloc.PFMemalloc|memalloc.PFKswapd))
		c := tk.SaveMemalloc()
		require.Zero(t, c)
		tk.Restore(c)
		require.Equal(t, memalloc.PFMemalloc|memalloc.PFKswapd, tk.Flags())
		require.NoError(t, tk.Err())
	})
	t.Run("a Restore(0) with no scope open is harmless", func(t *testing.T) {
		tk := memalloc.NewTask("t")
		tk.Restore(0)
		require.NoError(t, tk.Err())
	})
}

// TestScopeMisuse checks that misuse the kernel silently gets wrong is kept
// as a sticky error wrapping ErrScope and the BUG sentinel, while the flags
// follow the kernel's arithmetic (flags &= ~cookie).
//
// Reference: include/linux/sched/mm.h:memalloc_flags_restore().
func TestScopeMisuse(t *testing.T) {
	for _, tc := range []struct {
		name      string
		run       func(tk *memalloc.Task)
		wantFlags memalloc.Flags
		wantText  string
	}{
		{
			name: "a double restore",
			run: func(tk *memalloc.Task) {
				c := tk.SaveNoFS()
				tk.Restore(c)
				tk.Restore(c)
			},
			wantFlags: 0,
			wantText:  "memalloc_flags_restore(PF_MEMALLOC_NOFS) on task t[7] (flags 0): PF_MEMALLOC_NOFS is not set",
		},
		{
			name:      "a cookie of a flag that was never set",
			run:       func(tk *memalloc.Task) { tk.Restore(noIO) },
			wantFlags: 0,
			wantText:  "PF_MEMALLOC_NOIO is not set",
		},
		{
			name: "the outer scope closed while an inner scope of the same flag is open",
			run: func(tk *memalloc.Task) {
				outer := tk.SaveNoFS()
				inner := tk.SaveNoFS()
				tk.Restore(outer) // the inner scope silently loses NOFS
				tk.Restore(inner)
			},
			wantFlags: 0,
			wantText:  "clears PF_MEMALLOC_NOFS, which a still-open memalloc_flags_save asked for",
		},
		{
			name: "a save that asked for the flag is still open",
			run: func(tk *memalloc.Task) {
				a := tk.SaveNoFS()
				b := tk.SaveFlags(noFS | noIO) // returns NOIO, relies on NOFS too
				tk.Restore(a)
				require.Equal(t, noIO, tk.Flags())
				tk.Restore(b)
			},
			wantFlags: 0,
			wantText:  "clears PF_MEMALLOC_NOFS",
		},
		{
			name: "restoring with the flags instead of the cookies",
			run: func(tk *memalloc.Task) {
				tk.SaveNoFS()
				tk.SaveNoIO()
				tk.Restore(noFS | noIO | pin)
			},
			wantFlags: 0,
			wantText:  "PF_MEMALLOC_PIN is not set",
		},
		{
			name: "a stale cookie of a scope that was reopened",
			run: func(tk *memalloc.Task) {
				stale := tk.SaveFlags(noFS | noIO)
				tk.Restore(stale)
				fs := tk.SaveNoFS()
				io := tk.SaveNoIO()
				tk.Restore(stale) // clears both; neither open scope returned it
				tk.Restore(io)
				tk.Restore(fs)
			},
			wantFlags: 0,
			wantText:  "clears PF_MEMALLOC_NOFS|PF_MEMALLOC_NOIO, which a still-open memalloc_flags_save asked for",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk := memalloc.NewTaskWith("t", memalloc.WithPID(7))
			tc.run(tk)
			require.Equal(t, tc.wantFlags, tk.Flags(), "the flags follow the kernel's arithmetic")
			err := tk.Err()
			require.ErrorIs(t, err, memalloc.ErrScope)
			require.ErrorIs(t, err, bug.ErrBug)
			require.ErrorContains(t, err, tc.wantText)
			var se *memalloc.ScopeError
			require.ErrorAs(t, err, &se)
			require.Equal(t, "t[7]", se.Task)
		})
	}

	t.Run("the first misuse sticks", func(t *testing.T) {
		tk := memalloc.NewTask("t")
		tk.Restore(noIO)
		first := tk.Err()
		tk.Restore(pin)
		require.Same(t, first, tk.Err())
		// Later correct scopes still work.
		tk.Restore(tk.SaveNoFS())
		require.Zero(t, tk.Flags())
		require.Same(t, first, tk.Err())
	})
}

// TestScopeMisuseThroughZeroCookies checks misuse that is certain although a
// Restore(0) hides which zero-cookie scope it closed.
func TestScopeMisuseThroughZeroCookies(t *testing.T) {
	t.Run("every zero-cookie scope left open asked for a bit being cleared", func(t *testing.T) {
		tk := memalloc.NewTask("t")
		s1 := tk.SaveFlags(noFS | noIO)
		tk.SaveNoFS()       // 0
		s3 := tk.SaveNoIO() // 0
		tk.Restore(s3)      // closes one of the two zero-cookie scopes
		tk.Restore(s1)      // the other is still open and loses its flag
		require.ErrorIs(t, tk.Err(), memalloc.ErrScope)
		require.ErrorContains(t, tk.Err(), "which a still-open memalloc_flags_save asked for")
	})
	t.Run("scopes opened after an ambiguous Restore(0) stay exact", func(t *testing.T) {
		tk := memalloc.NewTask("t")
		tk.SaveNoFS()
		tk.SaveNoIO()
		tk.SaveNoFS()      // 0
		d := tk.SaveNoIO() // 0
		tk.Restore(d)      // ambiguous: NOFS or NOIO
		p := tk.SavePin()
		tk.SavePin()  // 0, certainly open
		tk.Restore(p) // the outer PIN scope closed before the inner one
		require.ErrorContains(t, tk.Err(), "clears PF_MEMALLOC_PIN, which a still-open memalloc_flags_save asked for")
	})
	t.Run("a forged cookie clearing a flag the task was created with", func(t *testing.T) {
		tk := memalloc.NewTaskWith("kswapd0", memalloc.WithFlags(memalloc.PFMemalloc|memalloc.PFKswapd))
		tk.Restore(memalloc.PFMemalloc)
		require.Equal(t, memalloc.PFKswapd, tk.Flags(), "the kernel's arithmetic clears it")
		require.ErrorContains(t, tk.Err(), "clears PF_MEMALLOC, which the task has had since it was created")
	})
}
