package gfp_test

import (
	"math/bits"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
)

// valueCase pins one kernel value.
type valueCase struct {
	name string
	got  gfp.Mask
	want gfp.Mask
}

// checkValues runs one subtest per value.
func checkValues(t *testing.T, cases []valueCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.got, "got %#x", uint32(tc.got))
		})
	}
}

// TestBitValues pins every flag bit to its value in an x86_64 CONFIG_LOCKDEP=y
// build. The 0x200 hole (___GFP_UNUSED_BIT) must stay unused.
//
// Reference: include/linux/gfp_types.h (enum of ___GFP_*_BIT).
func TestBitValues(t *testing.T) {
	checkValues(t, []valueCase{
		{"__GFP_DMA", gfp.DMA, 0x1},
		{"__GFP_HIGHMEM", gfp.HighMem, 0x2},
		{"__GFP_DMA32", gfp.DMA32, 0x4},
		{"__GFP_MOVABLE", gfp.Movable, 0x8},
		{"__GFP_RECLAIMABLE", gfp.Reclaimable, 0x10},
		{"__GFP_HIGH", gfp.High, 0x20},
		{"__GFP_IO", gfp.IO, 0x40},
		{"__GFP_FS", gfp.FS, 0x80},
		{"__GFP_ZERO", gfp.Zero, 0x100},
		{"__GFP_DIRECT_RECLAIM", gfp.DirectReclaim, 0x400},
		{"__GFP_KSWAPD_RECLAIM", gfp.KswapdReclaim, 0x800},
		{"__GFP_WRITE", gfp.Write, 0x1000},
		{"__GFP_NOWARN", gfp.NoWarn, 0x2000},
		{"__GFP_RETRY_MAYFAIL", gfp.RetryMayFail, 0x4000},
		{"__GFP_NOFAIL", gfp.NoFail, 0x8000},
		{"__GFP_NORETRY", gfp.NoRetry, 0x10000},
		{"__GFP_MEMALLOC", gfp.Memalloc, 0x20000},
		{"__GFP_COMP", gfp.Comp, 0x40000},
		{"__GFP_NOMEMALLOC", gfp.NoMemalloc, 0x80000},
		{"__GFP_HARDWALL", gfp.Hardwall, 0x100000},
		{"__GFP_THISNODE", gfp.ThisNode, 0x200000},
		{"__GFP_ACCOUNT", gfp.Account, 0x400000},
		{"__GFP_ZEROTAGS", gfp.ZeroTags, 0x800000},
		{"__GFP_NOLOCKDEP is bit 24 with CONFIG_LOCKDEP", gfp.NoLockdep, 0x1000000},
		{"__GFP_NO_OBJ_EXT follows NOLOCKDEP at bit 25", gfp.NoObjExt, 0x2000000},
		{"__GFP_RECLAIM is both reclaim bits", gfp.Reclaim, 0xc00},
		{"__GFP_BITS_SHIFT is 26", gfp.Mask(gfp.BitsShift), 26},
		{"__GFP_BITS_MASK", gfp.BitsMask, 0x3ffffff},
	})

	t.Run("the single bits are distinct, one bit each, and skip 0x200", func(t *testing.T) {
		var all gfp.Mask
		for _, b := range []gfp.Mask{gfp.DMA, gfp.HighMem, gfp.DMA32, gfp.Movable,
			gfp.Reclaimable, gfp.High, gfp.IO, gfp.FS, gfp.Zero, gfp.DirectReclaim,
			gfp.KswapdReclaim, gfp.Write, gfp.NoWarn, gfp.RetryMayFail, gfp.NoFail,
			gfp.NoRetry, gfp.Memalloc, gfp.Comp, gfp.NoMemalloc, gfp.Hardwall,
			gfp.ThisNode, gfp.Account, gfp.ZeroTags, gfp.NoLockdep, gfp.NoObjExt} {
			require.Equal(t, 1, bits.OnesCount32(uint32(b)), "%#x", uint32(b))
			require.Zero(t, all&b, "%#x defined twice", uint32(b))
			all |= b
		}
		require.Equal(t, gfp.BitsMask&^0x200, all)
	})
}

// TestComposites pins the composite masks to their 7.2 values; GFP_NOWAIT has
// carried __GFP_NOWARN since v6.17.
//
// Reference: include/linux/gfp_types.h (Useful GFP flag combinations).
func TestComposites(t *testing.T) {
	checkValues(t, []valueCase{
		{"GFP_ATOMIC is HIGH|KSWAPD_RECLAIM (no __GFP_ATOMIC since v6.3)", gfp.Atomic, 0x820},
		{"GFP_KERNEL", gfp.Kernel, 0xcc0},
		{"GFP_KERNEL_ACCOUNT", gfp.KernelAccount, 0x400cc0},
		{"GFP_NOWAIT includes __GFP_NOWARN since v6.17", gfp.NoWait, 0x2800},
		{"GFP_NOIO equals __GFP_RECLAIM", gfp.NoIO, 0xc00},
		{"GFP_NOFS", gfp.NoFS, 0xc40},
		{"GFP_USER", gfp.User, 0x100cc0},
		{"GFP_DMA is the bit", gfp.DMA, 0x1},
		{"GFP_DMA32 is the bit", gfp.DMA32, 0x4},
		{"GFP_HIGHUSER", gfp.HighUser, 0x100cc2},
		{"GFP_HIGHUSER_MOVABLE (SKIP_KASAN is 0 on x86_64)", gfp.HighUserMovable, 0x100cca},
		{"GFP_TRANSHUGE_LIGHT drops both reclaim bits", gfp.TransHugeLight, 0x1c20ca},
		{"GFP_TRANSHUGE adds DIRECT_RECLAIM back", gfp.TransHuge, 0x1c24ca},
	})
}

// TestMasks pins the allocator's masks, recomputed for the lockdep layout
// (NOLOCKDEP at 0x1000000, shift 26).
//
// Reference: include/linux/gfp_types.h:GFP_ZONEMASK, include/linux/gfp.h,
// mm/internal.h, mm/vmalloc.c:GFP_VMALLOC_SUPPORTED.
func TestMasks(t *testing.T) {
	checkValues(t, []valueCase{
		{"GFP_ZONEMASK", gfp.ZoneMask, 0xf},
		{"GFP_MOVABLE_MASK", gfp.MovableMask, 0x18},
		{"GFP_MOVABLE_SHIFT", gfp.Mask(gfp.MovableShift), 3},
		{"GFP_RECLAIM_MASK includes NOLOCKDEP", gfp.ReclaimMask, 0x10bece0},
		{"GFP_CONSTRAINT_MASK", gfp.ConstraintMask, 0x300000},
		{"GFP_BOOT_MASK is BITS_MASK without RECLAIM, IO, FS", gfp.BootMask, 0x3fff33f},
		{"GFP_SLAB_BUG_MASK has every bit above BITS_MASK", gfp.SlabBugMask, 0xfc000006},
		{"GFP_VMALLOC_SUPPORTED includes NOLOCKDEP", gfp.VmallocSupported, 0x151ede0},
	})
}

// TestPredicates pins the small predicates of gfp.h.
//
// Reference: include/linux/gfp.h:gfpflags_allow_blocking(),
// gfpflags_allow_spinning(), gfp_has_io_fs(), gfp_compaction_allowed().
func TestPredicates(t *testing.T) {
	for _, tc := range []struct {
		name                                     string
		mask                                     gfp.Mask
		blocking, spinning, ioFS, compact, undef bool
	}{
		{"GFP_KERNEL may do everything", gfp.Kernel, true, true, true, true, false},
		{"GFP_NOFS blocks and compacts but lacks FS", gfp.NoFS, true, true, false, true, false},
		{"GFP_NOIO blocks but never compacts", gfp.NoIO, true, true, false, false, false},
		{"GFP_ATOMIC spins through KSWAPD_RECLAIM but never blocks", gfp.Atomic, false, true, false, false, false},
		{"GFP_NOWAIT spins but never blocks", gfp.NoWait, false, true, false, false, false},
		{"the alloc_pages_nolock style (no reclaim bit) may not even spin", gfp.Zero | gfp.NoWarn, false, false, false, false, false},
		{"DIRECT_RECLAIM alone blocks", gfp.DirectReclaim, true, true, false, false, false},
		{"GFP_TRANSHUGE_LIGHT neither blocks nor spins", gfp.TransHugeLight, false, false, true, true, false},
		{"the unused 0x200 bit is undefined", gfp.Kernel | 0x200, true, true, true, true, true},
		{"bits above __GFP_BITS_MASK are undefined", 0x4000000, false, false, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.blocking, tc.mask.AllowsBlocking(), "AllowsBlocking")
			require.Equal(t, tc.spinning, tc.mask.AllowsSpinning(), "AllowsSpinning")
			require.Equal(t, tc.ioFS, tc.mask.HasIOFS(), "HasIOFS")
			require.Equal(t, tc.compact, tc.mask.CompactionAllowed(), "CompactionAllowed")
			require.Equal(t, tc.undef, tc.mask.Undefined() != 0, "Undefined")
		})
	}
}
