package vmalloc

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

// TestPageTableScope checks the scope each caller mask puts around the
// page-table allocations, seen at the page allocator (the final mask and
// the task's flags), and that the scope is closed afterwards.
//
// Reference: mm/vmalloc.c:memalloc_apply_gfp_scope(), __vmalloc_area_node().
func TestPageTableScope(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mask      gfp.Mask
		prefix    bool
		wantFlags memalloc.Flags
		wantMask  gfp.Mask
	}{
		{"GFP_KERNEL opens no scope", gfp.Kernel, false, 0, PgtableKernel},
		{"GFP_NOFS opens a NOFS scope", gfp.NoFS, false, memalloc.PFMemallocNoFS, PgtableKernel &^ gfp.FS},
		{"GFP_NOIO opens a NOIO scope", gfp.NoIO, false, memalloc.PFMemallocNoIO, PgtableKernel &^ (gfp.FS | gfp.IO)},
		{"GFP_ATOMIC sets PF_MEMALLOC", gfp.Atomic, false, memalloc.PFMemalloc, PgtableKernel},
		{"GFP_NOWAIT sets PF_MEMALLOC", gfp.NoWait, false, memalloc.PFMemalloc, PgtableKernel},
		{"NORETRY sets PF_MEMALLOC", gfp.Kernel | gfp.NoRetry, false, memalloc.PFMemalloc, PgtableKernel},
		{"RETRY_MAYFAIL sets PF_MEMALLOC", gfp.Kernel | gfp.RetryMayFail, false, memalloc.PFMemalloc, PgtableKernel},
		{"NORETRY wins over NOFS", gfp.NoFS | gfp.NoRetry, false, memalloc.PFMemalloc, PgtableKernel},
		// The what-if: before the scope, a GFP_NOFS vmalloc allocated its
		// page tables with __GFP_FS and could recurse into the filesystem.
		{"before the fix GFP_NOFS page tables keep __GFP_FS", gfp.NoFS, true, 0, PgtableKernel},
		{"before the fix GFP_NOIO page tables keep __GFP_IO|__GFP_FS", gfp.NoIO, true, 0, PgtableKernel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t, Options{PreFix: tc.prefix})
			tk := memalloc.NewTask("t")
			addr, err := m.v.Vmalloc(tk, 4096, tc.mask)
			require.NoError(t, err)
			calls := m.hooks.pageTableCalls()
			require.Len(t, calls, 2, "a PMD page and a PTE page")
			for _, c := range calls {
				require.Equal(t, tc.wantMask, c.mask, "%s", c.mask)
				require.Equal(t, tc.wantFlags, c.flags, "%s", c.flags)
			}
			if tc.mask == gfp.NoFS || tc.mask == gfp.NoIO {
				require.Equal(t, tc.prefix, calls[0].mask&gfp.FS != 0,
					"__GFP_FS is effective for a NOFS/NOIO caller's page tables exactly under PreFix")
			}
			require.Zero(t, tk.Flags(), "the scope is closed after mapping")
			require.NoError(t, tk.Err())
			require.NoError(t, m.v.Vfree(tk, addr))
		})
	}
}

// TestPageTableScopeNested checks that a caller already in PF_MEMALLOC
// keeps it after an atomic vmalloc (the save returns 0 and the restore
// clears nothing), and that memalloc records no misuse.
//
// Reference: mm/vmalloc.c:memalloc_restore_scope(); include/linux/sched/mm.h:memalloc_flags_save().
func TestPageTableScopeNested(t *testing.T) {
	m := newMachine(t, Options{})
	tk := memalloc.NewTask("t")
	cookie := tk.SaveMemalloc()
	addr, err := m.v.Vmalloc(tk, 4096, gfp.Atomic)
	require.NoError(t, err)
	require.Equal(t, memalloc.PFMemalloc, tk.Flags())
	tk.Restore(cookie)
	require.Zero(t, tk.Flags())
	require.NoError(t, tk.Err())
	require.NoError(t, m.v.Vfree(tk, addr))
}
