package memalloc_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

// TestGFPContext pins current_gfp_context for every scope flag and the
// combinations that matter, in 7.2 and, for the reverted flags, as v6.9–v6.11
// had it.
//
// Reference: include/linux/sched/mm.h:current_gfp_context() (7.2, and
// v6.9–v6.11 before revert 9a8da05d7ad6).
func TestGFPContext(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags memalloc.Flags
		in    gfp.Mask
		want  gfp.Mask
	}{
		{"no scope changes nothing", 0, gfp.Kernel, gfp.Kernel},
		{"NOFS clears __GFP_FS", noFS, gfp.Kernel, gfp.NoFS},
		{"NOIO clears __GFP_IO and __GFP_FS", noIO, gfp.Kernel, gfp.NoIO},
		{"NOIO takes precedence over NOFS", noIO | noFS, gfp.Kernel, gfp.NoIO},
		{"PIN clears __GFP_MOVABLE: GFP_HIGHUSER_MOVABLE becomes GFP_HIGHUSER", pin, gfp.HighUserMovable, gfp.HighUser},
		{"NOFS and PIN together", noFS | pin, gfp.HighUserMovable, 0x100c42},
		{"NOIO never touches the reclaim bits or NOWARN", noIO, gfp.NoWait | gfp.Zero, gfp.NoWait | gfp.Zero},
		{"NOFS leaves a NOFAIL request blocking", noFS, gfp.Kernel | gfp.NoFail, gfp.NoFS | gfp.NoFail},
		{"NOIO on GFP_ATOMIC, which has neither IO nor FS", noIO, gfp.Atomic, gfp.Atomic},
		{"PF_MEMALLOC is not a gfp transform", memalloc.PFMemalloc, gfp.Kernel, gfp.Kernel},
		{"PF_KSWAPD is not a gfp transform", memalloc.PFKswapd | memalloc.PFMemalloc, gfp.Kernel, gfp.Kernel},
		{"PF_EXITING is not a gfp transform", memalloc.PFExiting, gfp.Kernel, gfp.Kernel},
		{"NOFS keeps __GFP_NOLOCKDEP", noFS, gfp.Kernel | gfp.NoLockdep, gfp.NoFS | gfp.NoLockdep},

		// The reverted flags, as v6.9–v6.11 had them (what-if, not upstream).
		{"NORECLAIM clears __GFP_DIRECT_RECLAIM only", memalloc.PFMemallocNoReclaim, gfp.Kernel, 0x8c0},
		{"NORECLAIM hides NOFS: __GFP_FS stays set (the else-if quirk)", memalloc.PFMemallocNoReclaim | noFS, gfp.Kernel, 0x8c0},
		{"NORECLAIM hides NOIO: __GFP_IO and __GFP_FS stay set", memalloc.PFMemallocNoReclaim | noIO, gfp.Kernel, 0x8c0},
		{"NORECLAIM turns GFP_NOFS|__GFP_NOFAIL into non-blocking NOFAIL", memalloc.PFMemallocNoReclaim, gfp.NoFS | gfp.NoFail, 0x8840},
		{"NORECLAIM still lets PIN clear __GFP_MOVABLE", memalloc.PFMemallocNoReclaim | pin, gfp.HighUserMovable, 0x1008c2},
		{"NOWARN adds __GFP_NOWARN, the only scope that ever added a bit", memalloc.PFMemallocNoWarn, gfp.Kernel, 0x2cc0},
		{"NOWARN with NOFS: the chain still applies NOFS", memalloc.PFMemallocNoWarn | noFS, gfp.Kernel, 0x2c40},
		{"NOWARN with NOIO and PIN", memalloc.PFMemallocNoWarn | noIO | pin, gfp.HighUserMovable, 0x102c02},
		{"NORECLAIM|NOWARN, as bcachefs used them", memalloc.PFMemallocNoReclaim | memalloc.PFMemallocNoWarn, gfp.Kernel, 0x28c0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk := memalloc.NewTask("t")
			defer tk.Restore(tk.SaveFlags(tc.flags))
			got := tk.GFPContext(tc.in)
			require.Equal(t, tc.want, got, "got %#x (%s), want %#x (%s)", uint32(got), got, uint32(tc.want), tc.want)
		})
	}

	t.Run("PIN moves GFP_HIGHUSER_MOVABLE out of ZONE_MOVABLE and MIGRATE_MOVABLE", func(t *testing.T) {
		tk := memalloc.NewTask("t")
		defer tk.Restore(tk.SavePin())
		m := tk.GFPContext(gfp.HighUserMovable)
		z, err := m.Zone()
		require.NoError(t, err)
		require.Equal(t, gfp.ZoneNormal, z)
		require.Equal(t, gfp.MigrateUnmovable, m.Migratetype())
	})

	t.Run("the bcachefs NORECLAIM scope makes a NOFAIL request non-blocking", func(t *testing.T) {
		tk := memalloc.NewTask("bch-btree")
		defer tk.Restore(tk.SaveFlags(memalloc.PFMemallocNoReclaim))
		m := tk.GFPContext(gfp.Kernel | gfp.NoFail)
		require.False(t, m.AllowsBlocking())
		require.NotZero(t, m&gfp.NoFail)
		require.Equal(t, "__GFP_IO|__GFP_FS|__GFP_KSWAPD_RECLAIM|__GFP_NOFAIL", m.String())
	})
}

// TestInGFPScope checks the allocator's shortcut test: true inside every
// scope GFPContext applies, false outside them and for the PF flags that
// are no gfp transform.
//
// Reference: include/linux/sched/mm.h:current_gfp_context().
func TestInGFPScope(t *testing.T) {
	tk := memalloc.NewTask("t")
	require.False(t, tk.InGFPScope(), "a new task")
	for _, f := range []memalloc.Flags{noFS, noIO, pin, memalloc.PFMemallocNoReclaim, memalloc.PFMemallocNoWarn} {
		cookie := tk.SaveFlags(f)
		require.True(t, tk.InGFPScope(), "inside %s", f)
		tk.Restore(cookie)
		require.False(t, tk.InGFPScope(), "after %s is restored", f)
	}
	for _, f := range []memalloc.Flags{memalloc.PFMemalloc, memalloc.PFKswapd | memalloc.PFMemalloc, memalloc.PFExiting} {
		require.False(t, memalloc.NewTaskWith("t", memalloc.WithFlags(f)).InGFPScope(), "%s", f)
	}
}
