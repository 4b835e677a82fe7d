package gfp_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
)

// TestString pins the tracepoint rendering: the 7.2 table order, greedy
// consumption, one hex token for leftovers, "none" for 0.
//
// Reference: include/trace/events/mmflags.h:show_gfp_flags(),
// kernel/trace/trace_output.c:trace_print_flags_seq().
func TestString(t *testing.T) {
	for _, tc := range []struct {
		name string
		mask gfp.Mask
		want string
	}{
		{"zero prints none", 0, "none"},
		{"a composite prints its name", gfp.Kernel, "GFP_KERNEL"},
		{"GFP_TRANSHUGE comes first in the table", gfp.TransHuge, "GFP_TRANSHUGE"},
		{"GFP_TRANSHUGE_LIGHT", gfp.TransHugeLight, "GFP_TRANSHUGE_LIGHT"},
		{"__GFP_RECLAIM is hidden by GFP_NOIO", gfp.Reclaim, "GFP_NOIO"},
		{"GFP_NOIO before GFP_NOWAIT: 0x2c00", 0x2c00, "GFP_NOIO|__GFP_NOWARN"},
		{"the kvmalloc kmalloc attempt 0x28c0", 0x28c0, "GFP_NOWAIT|__GFP_IO|__GFP_FS"},
		{"GFP_KERNEL|__GFP_HARDWALL is GFP_USER", gfp.Kernel | gfp.Hardwall, "GFP_USER"},
		{"__GFP_DMA prints as GFP_DMA", gfp.DMA, "GFP_DMA"},
		{"__GFP_DMA32 prints as GFP_DMA32", gfp.DMA32, "GFP_DMA32"},
		{"GFP_ATOMIC|__GFP_DMA (printf_kunit)", gfp.Atomic | gfp.DMA, "GFP_ATOMIC|GFP_DMA"},
		{"__GFP_HIGH (printf_kunit)", gfp.High, "__GFP_HIGH"},
		{"single bits follow bit order since v6.15", 0x2dc0, "GFP_KERNEL|__GFP_ZERO|__GFP_NOWARN"},
		{"anonymous fault mask", gfp.HighUserMovable | gfp.Zero | gfp.Comp, "GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP"},
		{"GFP_HIGHUSER_MOVABLE in a NOFS scope", gfp.HighUserMovable &^ gfp.FS,
			"GFP_NOFS|__GFP_HIGHMEM|__GFP_MOVABLE|__GFP_HARDWALL"},
		{"nested GFP_KERNEL", 0x92cc0, "GFP_KERNEL|__GFP_NOWARN|__GFP_NORETRY|__GFP_NOMEMALLOC"},
		{"slab's first attempt from a reclaimable cache", gfp.NoWait | gfp.Reclaimable | gfp.NoRetry | gfp.Comp,
			"GFP_NOWAIT|__GFP_RECLAIMABLE|__GFP_NORETRY|__GFP_COMP"},
		{"__GFP_NOLOCKDEP has a name with CONFIG_LOCKDEP", 0x1000000, "__GFP_NOLOCKDEP"},
		{"__GFP_NO_OBJ_EXT", 0x2000000, "__GFP_NO_OBJ_EXT"},
		{"GFP_NOFS|__GFP_NOLOCKDEP", gfp.NoFS | gfp.NoLockdep, "GFP_NOFS|__GFP_NOLOCKDEP"},
		{"the unused bit is a hex leftover", gfp.Kernel | 0x200, "GFP_KERNEL|0x200"},
		{"the unused bit alone", 0x200, "0x200"},
		{"~__GFP_BITS_MASK is one hex token (printf_kunit, lockdep layout)", ^gfp.BitsMask, "0xfc000000"},
		{"__GFP_HIGH|~__GFP_BITS_MASK (printf_kunit)", gfp.High | ^gfp.BitsMask, "__GFP_HIGH|0xfc000000"},
		{"all leftovers are gathered into one token", 0x4000200, "0x4000200"},
		{"every bit", 0xffffffff,
			// GFP_ATOMIC still matches after GFP_TRANSHUGE: HIGH and
			// KSWAPD_RECLAIM are not part of it.
			"GFP_TRANSHUGE|GFP_ATOMIC|GFP_DMA|GFP_DMA32|__GFP_RECLAIMABLE|__GFP_ZERO|" +
				"__GFP_WRITE|__GFP_RETRY_MAYFAIL|__GFP_NOFAIL|__GFP_NORETRY|" +
				"__GFP_MEMALLOC|__GFP_THISNODE|__GFP_ACCOUNT|__GFP_ZEROTAGS|__GFP_NOLOCKDEP|" +
				"__GFP_NO_OBJ_EXT|0xfc000200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.mask.String())
		})
	}
}

// TestNamesAndMode pins the printk renderings: %pGg is empty for 0, and
// warn_alloc's "%#x(%pGg)" prints 0x0 for zero, as the kernel's vsprintf does.
//
// Reference: lib/vsprintf.c:flags_string(), mm/page_alloc.c:warn_alloc().
func TestNamesAndMode(t *testing.T) {
	for _, tc := range []struct {
		name        string
		mask        gfp.Mask
		names, mode string
	}{
		{"zero is empty in %pGg", 0, "", "0x0()"},
		{"GFP_KERNEL", gfp.Kernel, "GFP_KERNEL", "0xcc0(GFP_KERNEL)"},
		{"warn_alloc's example", gfp.Kernel | gfp.Comp, "GFP_KERNEL|__GFP_COMP", "0x40cc0(GFP_KERNEL|__GFP_COMP)"},
		{"leftovers", gfp.High | ^gfp.BitsMask, "__GFP_HIGH|0xfc000000", "0xfc000020(__GFP_HIGH|0xfc000000)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.names, tc.mask.Names())
			require.Equal(t, tc.mode, tc.mask.Mode())
			if tc.mask != 0 {
				require.Equal(t, tc.mask.String(), tc.mask.Names(), "%%pGg and the tracepoint agree except for 0")
			}
		})
	}
}

// TestParse covers what Parse accepts beyond String's own output, and the
// errors it gives.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want gfp.Mask
		err  error
	}{
		{"none", "none", 0, nil},
		{"a composite", "GFP_KERNEL", gfp.Kernel, nil},
		{"a composite and a bit", "GFP_KERNEL|__GFP_ZERO", gfp.Kernel | gfp.Zero, nil},
		{"single bits only", "__GFP_IO|__GFP_FS", gfp.IO | gfp.FS, nil},
		{"__GFP_RECLAIM, which String never prints", "__GFP_RECLAIM", gfp.Reclaim, nil},
		{"__GFP_DMA, which String prints as GFP_DMA", "__GFP_DMA", gfp.DMA, nil},
		{"overlapping names", "GFP_NOFS|GFP_KERNEL", gfp.Kernel, nil},
		{"source-code spacing", "GFP_NOFS | __GFP_NOFAIL", gfp.NoFS | gfp.NoFail, nil},
		{"hex tokens", "GFP_KERNEL|0x200", gfp.Kernel | 0x200, nil},
		{"upper-case hex", "0XCC0", gfp.Kernel, nil},
		{"a full 32-bit hex token", "0xffffffff", 0xffffffff, nil},
		{"__GFP_NOLOCKDEP", "GFP_NOFS|__GFP_NOLOCKDEP", 0x1000c40, nil},

		{"empty input", "", 0, gfp.ErrSyntax},
		{"an empty token", "GFP_KERNEL||__GFP_ZERO", 0, gfp.ErrSyntax},
		{"a trailing bar", "GFP_KERNEL|", 0, gfp.ErrSyntax},
		{"none mixed with flags", "none|GFP_KERNEL", 0, gfp.ErrSyntax},
		{"hex without digits", "0x", 0, gfp.ErrSyntax},
		{"hex wider than gfp_t", "0x100000000", 0, gfp.ErrSyntax},
		{"a decimal number", "3264", 0, gfp.ErrUnknownFlag},
		{"an unknown name", "GFP_KERNAL", 0, gfp.ErrUnknownFlag},
		{"lower case is not the kernel's spelling", "gfp_kernel", 0, gfp.ErrUnknownFlag},
		{"__GFP_ATOMIC is gone since v6.3", "__GFP_ATOMIC", 0, gfp.ErrUnknownFlag},
		{"__GFP_SKIP_KASAN needs KASAN_HW_TAGS", "GFP_HIGHUSER_MOVABLE|__GFP_SKIP_KASAN", 0, gfp.ErrUnknownFlag},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := gfp.Parse(tc.in)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got, "got %s", got)
		})
	}

	t.Run("an error names the bad token", func(t *testing.T) {
		_, err := gfp.Parse("GFP_KERNEL|__GFP_NOTAFLAG")
		require.ErrorContains(t, err, `"__GFP_NOTAFLAG"`)
		require.False(t, errors.Is(err, gfp.ErrSyntax))
	})
}

// TestParseKnown reads text another kernel printed: unknown names are
// set aside, known ones and numbers kept, syntax errors still refused.
func TestParseKnown(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    gfp.Mask
		unknown []string
		err     error
	}{
		{"all known", "GFP_KERNEL|__GFP_ZERO", gfp.Kernel | gfp.Zero, nil, nil},
		{"none", "none", 0, nil, nil},
		{"a future flag", "GFP_KERNEL|__GFP_FUTURE|__GFP_COMP", gfp.Kernel | gfp.Comp, []string{"__GFP_FUTURE"}, nil},
		{"an unconfigured flag and a hex rest", "GFP_HIGHUSER_MOVABLE|__GFP_SKIP_KASAN|0x200",
			gfp.HighUserMovable | 0x200, []string{"__GFP_SKIP_KASAN"}, nil},
		{"only unknown", "__GFP_A | __GFP_B", 0, []string{"__GFP_A", "__GFP_B"}, nil},
		{"an empty token", "GFP_KERNEL||__GFP_FUTURE", 0, nil, gfp.ErrSyntax},
		{"not a flag name", "GFP_KERNEL|hello", 0, nil, gfp.ErrUnknownFlag},
		{"a decimal number", "3264", 0, nil, gfp.ErrUnknownFlag},
		{"a bad number", "__GFP_FUTURE|0xg", 0, nil, gfp.ErrSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, unknown, err := gfp.ParseKnown(tc.in)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got, "got %s", got)
			require.Equal(t, tc.unknown, unknown)
		})
	}
}

// TestParseRoundTripsEveryBitPair prints and parses back every mask of one or
// two bits, and every composite with every bit.
func TestParseRoundTripsEveryBitPair(t *testing.T) {
	check := func(m gfp.Mask) {
		got, err := gfp.Parse(m.String())
		require.NoError(t, err, "%#x prints %q", uint32(m), m.String())
		require.Equal(t, m, got, "%#x prints %q", uint32(m), m.String())
	}
	for i := range 32 {
		for j := i; j < 32; j++ {
			check(gfp.Mask(1)<<i | gfp.Mask(1)<<j)
		}
		for _, c := range []gfp.Mask{gfp.Kernel, gfp.NoFS, gfp.NoIO, gfp.Atomic, gfp.NoWait,
			gfp.User, gfp.HighUser, gfp.HighUserMovable, gfp.TransHuge, gfp.TransHugeLight, gfp.KernelAccount} {
			check(c | gfp.Mask(1)<<i)
			check(c &^ (gfp.Mask(1) << i))
		}
	}
}

func ExampleMask_String() {
	fmt.Println(gfp.Kernel | gfp.Zero)
	fmt.Println(gfp.Mask(0x2c00)) // GFP_NOIO comes before GFP_NOWAIT in the table
	fmt.Println(gfp.Mask(0))
	// Output:
	// GFP_KERNEL|__GFP_ZERO
	// GFP_NOIO|__GFP_NOWARN
	// none
}

func ExampleMask_Mode() {
	fmt.Printf("page allocation failure: order:%d, mode:%s, nodemask=(null)\n", 4, (gfp.Kernel | gfp.Comp).Mode())
	// Output:
	// page allocation failure: order:4, mode:0x40cc0(GFP_KERNEL|__GFP_COMP), nodemask=(null)
}

func ExampleParse() {
	m, err := gfp.Parse("GFP_NOFS|__GFP_NOFAIL")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%#x %s blocking=%t\n", uint32(m), m, m.AllowsBlocking())
	// Output:
	// 0x8c40 GFP_NOFS|__GFP_NOFAIL blocking=true
}
