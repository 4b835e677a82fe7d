package vmalloc

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// TestKvmallocKmallocMask checks the mask of kvmalloc's kmalloc attempt,
// as the slab sees it.
//
// Reference: mm/slub.c:kmalloc_gfp_adjust().
func TestKvmallocKmallocMask(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		mask gfp.Mask
		want gfp.Mask
	}{
		{"a page or less keeps GFP_KERNEL", 4096, gfp.Kernel, gfp.Kernel},
		{"a page or less keeps NOFAIL", 100, gfp.Kernel | gfp.NoFail, gfp.Kernel | gfp.NoFail},
		{"above a page GFP_KERNEL adds NOWARN and drops DIRECT_RECLAIM", 4097, gfp.Kernel,
			gfp.Kernel&^gfp.DirectReclaim | gfp.NoWarn},
		{"RETRY_MAYFAIL keeps DIRECT_RECLAIM", 8192, gfp.Kernel | gfp.RetryMayFail,
			gfp.Kernel | gfp.RetryMayFail | gfp.NoWarn},
		{"NOFAIL is dropped", 8192, gfp.Kernel | gfp.NoFail, gfp.Kernel&^gfp.DirectReclaim | gfp.NoWarn},
		{"GFP_NOFS keeps its constraint", 1 << 20, gfp.NoFS, gfp.NoFS&^gfp.DirectReclaim | gfp.NoWarn},
		{"GFP_ATOMIC only gains NOWARN", 8192, gfp.Atomic, gfp.Atomic | gfp.NoWarn},
		{"NORETRY is kept (7.2 no longer adds it)", 8192, gfp.Kernel | gfp.NoRetry,
			gfp.Kernel&^gfp.DirectReclaim | gfp.NoRetry | gfp.NoWarn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, KmallocGFPAdjust(tc.mask, tc.size), "%s", KmallocGFPAdjust(tc.mask, tc.size))
			m := newMachine(t, Options{})
			tk := memalloc.NewTask("t")
			addr, err := m.v.Kvmalloc(tk, tc.size, tc.mask)
			require.NoError(t, err)
			calls := m.slab.masks()
			require.Equal(t, kcall{tc.size, tc.want}, calls[0], "%s", calls[0].mask)
			require.NoError(t, m.v.Kvfree(tk, addr))
			require.Zero(t, m.slab.nlive())
		})
	}
}

// TestKvmallocFallback checks when kvmalloc falls back to vmalloc and with
// what mask.
//
// Reference: mm/slub.c:__kvmalloc_node_noprof().
func TestKvmallocFallback(t *testing.T) {
	for _, tc := range []struct {
		name      string
		size      int
		mask      gfp.Mask
		wantErr   error
		wantVmall bool
		wantWarn  []string
	}{
		{"a page that kmalloc cannot give is not vmalloc'ed", 4096, gfp.Kernel, zone.ErrNoMemory, false, nil},
		{"two pages fall back to vmalloc", 8192, gfp.Kernel, nil, true, nil},
		{"GFP_NOWAIT falls back to vmalloc in 7.2", 8192, gfp.NoWait, nil, true, nil},
		{"GFP_ATOMIC falls back to vmalloc in 7.2", 8192, gfp.Atomic, nil, true, nil},
		{"above INT_MAX fails with a WARN", math.MaxInt32 + 1, gfp.Kernel, zone.ErrNoMemory, false,
			[]string{"WARN_ON_ONCE(!(flags & __GFP_NOWARN)): size > INT_MAX"}},
		{"above INT_MAX with NOWARN fails silently", math.MaxInt32 + 1, gfp.Kernel | gfp.NoWarn, zone.ErrNoMemory, false, nil},
		{"a negative size is invalid", -5, gfp.Kernel, zone.ErrInvalid, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t, Options{})
			tk := memalloc.NewTask("t")
			m.slab.fail = func(size int, _ gfp.Mask) bool { return size == tc.size }
			addr, err := m.v.Kvmalloc(tk, tc.size, tc.mask)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.wantVmall, IsVmallocAddr(addr))
			require.Equal(t, tc.wantWarn, m.texts(bug.Warn))
			if tc.wantVmall {
				// The vm_struct is allocated with the original mask, not the adjusted one.
				calls := m.slab.masks()
				require.Equal(t, kcall{vmStructSize, tc.mask&gfp.ReclaimMask | gfp.Zero}, calls[1])
			}
			require.NoError(t, m.v.Kvfree(tk, addr))
			require.Zero(t, m.slab.nlive())
			require.Zero(t, m.v.Stats().Areas)
		})
	}
	t.Run("the INT_MAX WARN fires once", func(t *testing.T) {
		m := newMachine(t, Options{})
		tk := memalloc.NewTask("t")
		m.slab.fail = func(int, gfp.Mask) bool { return true }
		for i := 0; i < 3; i++ {
			_, err := m.v.Kvmalloc(tk, math.MaxInt32+1, gfp.Kernel)
			require.ErrorIs(t, err, zone.ErrNoMemory)
		}
		require.Len(t, m.texts(bug.Warn), 1)
	})
}
