package mmsim_test

import (
	"bytes"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reportsSince returns the reports of kind made after the first n.
func reportsSince(s *mmsim.System, n int, kind mmsim.ReportKind) []mmsim.Report {
	var out []mmsim.Report
	for _, r := range s.Reports()[n:] {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

// TestKmallocAPI checks the root API's contract for kmalloc and kfree:
// kmalloc(0) is ZERO_SIZE_PTR, bad sizes and frees are refused without a
// change, and objects know their kind and size.
//
// Reference: mm/slub.c:__kmalloc_noprof(), kfree();
// include/linux/slab.h:ZERO_SIZE_PTR.
func TestKmallocAPI(t *testing.T) {
	s := newSystem(t, smallConfig(8192))
	task := s.NewTask("kmalloc")

	z, err := s.Kmalloc(task, 0, gfp.Kernel)
	require.NoError(t, err)
	assert.True(t, z.IsZeroSize())
	assert.Equal(t, uint64(16), z.Addr())
	require.NoError(t, s.Kfree(task, z), "kfree(ZERO_SIZE_PTR) does nothing")
	require.NoError(t, s.Kfree(task, mmsim.Object{}), "kfree(NULL) does nothing")

	_, err = s.Kmalloc(task, -1, gfp.Kernel)
	require.ErrorIs(t, err, mmsim.ErrInvalid)

	var before bytes.Buffer
	require.NoError(t, s.WriteSlabinfo(&before))
	o, err := s.Kmalloc(task, 100, gfp.Kernel)
	require.NoError(t, err)
	assert.Equal(t, 100, o.Size())
	assert.False(t, o.IsVmalloc())
	require.NoError(t, s.Kfree(task, o))
	require.ErrorIs(t, s.Kfree(task, o), mmsim.ErrBug, "a double free is a BUG")

	big, err := s.Kmalloc(task, 64<<10, gfp.Kernel)
	require.NoError(t, err)
	assert.False(t, big.IsVmalloc(), "a large kmalloc is still in the direct map")
	require.NoError(t, s.Kfree(task, big))

	v, err := s.Vmalloc(task, 3*4096, gfp.Kernel)
	require.NoError(t, err)
	assert.True(t, v.IsVmalloc())
	require.ErrorIs(t, s.Kfree(task, v), mmsim.ErrBug, "kfree of a vmalloc address")
	require.NoError(t, s.Kvfree(task, v))
	require.ErrorIs(t, s.Vfree(task, v), mmsim.ErrBug, "a second vfree")
	require.NoError(t, s.CheckInvariants())
}

// TestKvmallocFallback checks kvmalloc's rules on a fragmented machine,
// where no block above order 0 is free: sizes up to a page are kmalloc's
// whatever happens, larger ones fall back to vmalloc when the kmalloc
// attempt (no direct reclaim) fails, for blocking and non-blocking callers
// alike, and sizes above INT_MAX fail with a WARN.
//
// Reference: mm/slub.c:__kvmalloc_node_noprof(), kmalloc_gfp_adjust().
func TestKvmallocFallback(t *testing.T) {
	s := checkerboard(t)
	task := s.NewTask("kv")
	for _, tc := range []struct {
		name    string
		size    int
		mask    gfp.Mask
		vmalloc bool
	}{
		{"a page or less never falls back", 4096, gfp.Kernel, false},
		{"16 KiB under GFP_KERNEL falls back to vmalloc", 16 << 10, gfp.Kernel, true},
		{"16 KiB under GFP_NOFS falls back to vmalloc", 16 << 10, gfp.NoFS, true},
		{"16 KiB under GFP_NOWAIT falls back to vmalloc (7.2 supports it)", 16 << 10, gfp.NoWait, true},
		{"1 MiB under GFP_KERNEL falls back to vmalloc", 1 << 20, gfp.Kernel, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := s.Kvmalloc(task, tc.size, tc.mask)
			require.NoError(t, err)
			assert.Equal(t, tc.vmalloc, o.IsVmalloc())
			assert.Equal(t, tc.size, o.Size())
			require.NoError(t, s.Kvfree(task, o))
		})
	}
	n := len(s.Reports())
	_, err := s.Kvmalloc(task, math.MaxInt32+1, gfp.Kernel)
	require.ErrorIs(t, err, mmsim.ErrNoMemory)
	warns := reportsSince(s, n, mmsim.ReportWarn)
	require.Len(t, warns, 1, "above INT_MAX: WARN_ONCE")
	n = len(s.Reports())
	_, err = s.Kvmalloc(task, math.MaxInt32+1, gfp.Kernel)
	require.ErrorIs(t, err, mmsim.ErrNoMemory)
	assert.Empty(t, reportsSince(s, n, mmsim.ReportWarn), "only once")
}

// checkerboard returns a machine whose free memory is every other page:
// half of it free, no free block above order 0.
func checkerboard(t *testing.T) *mmsim.System {
	t.Helper()
	cfg := smallConfig(4096)
	cfg.Nodes[0].Zones = cfg.Nodes[0].Zones[1:] // DMA32 only
	s := newSystem(t, cfg)
	hog := s.NewTask("hog")
	var pages []mmsim.Page
	for {
		// __GFP_MEMALLOC: every page, the reserves included.
		p, err := s.AllocPages(hog, gfp.Atomic|gfp.Memalloc|gfp.NoWarn, 0)
		if err != nil {
			break
		}
		pages = append(pages, p)
	}
	sort.Slice(pages, func(i, j int) bool { return pages[i].PFN() < pages[j].PFN() })
	for _, p := range pages {
		if p.PFN()%2 == 1 {
			require.NoError(t, s.FreePages(hog, p, 0))
		}
	}
	require.NoError(t, s.DrainAllPages(hog))
	z := s.Nodes()[0].Zone(gfp.ZoneDMA32)
	for o, n := range z.FreeArea() {
		if o > 0 {
			require.Zero(t, n, "no free block of order %d", o)
		}
	}
	return s
}

// TestNofailPolicies runs the same four never-satisfiable __GFP_NOFAIL
// requests under each policy of Config.Nofail.
//
// Reference: mm/page_alloc.c:__alloc_pages_noprof() (order >
// MAX_PAGE_ORDER), mm/slub.c:__kvmalloc_node_noprof() (size > INT_MAX),
// mm/vmalloc.c:__vmalloc_node_range_noprof() (exceeds total pages).
func TestNofailPolicies(t *testing.T) {
	nofail := gfp.Kernel | gfp.NoFail
	requests := []struct {
		name string
		do   func(s *mmsim.System, task *memalloc.Task) error
		// kernel is the error 7.2 gives.
		kernel error
	}{
		{"alloc_pages order 11", func(s *mmsim.System, task *memalloc.Task) error {
			_, err := s.AllocPages(task, nofail, 11)
			return err
		}, mmsim.ErrInvalid},
		{"kmalloc 8 MiB", func(s *mmsim.System, task *memalloc.Task) error {
			_, err := s.Kmalloc(task, 8<<20, nofail)
			return err
		}, mmsim.ErrNoMemory},
		{"kvmalloc above INT_MAX", func(s *mmsim.System, task *memalloc.Task) error {
			_, err := s.Kvmalloc(task, math.MaxInt32+1, nofail)
			return err
		}, mmsim.ErrNoMemory},
		{"vmalloc above total RAM", func(s *mmsim.System, task *memalloc.Task) error {
			_, err := s.Vmalloc(task, 1<<30, nofail)
			return err
		}, mmsim.ErrNoMemory},
	}
	for _, policy := range []mmsim.NofailPolicy{mmsim.NofailKernel, mmsim.NofailFail, mmsim.NofailBug, mmsim.NofailLoop} {
		for _, rq := range requests {
			t.Run(policy.String()+"/"+rq.name, func(t *testing.T) {
				cfg := smallConfig(8192)
				cfg.Nofail.Policy = policy
				cfg.StallLimit = 30 * time.Second
				s := newSystem(t, cfg)
				task := s.NewTask("nofail")
				start := s.Now()
				err := rq.do(s, task)
				require.Error(t, err)
				switch policy {
				case mmsim.NofailKernel:
					require.ErrorIs(t, err, rq.kernel)
					assert.NotEmpty(t, s.Reports(), "7.2 says something: a WARN or warn_alloc")
				case mmsim.NofailFail:
					require.ErrorIs(t, err, mmsim.ErrNoMemory)
					assert.Contains(t, err.Error(), "__GFP_NOFAIL request can never be satisfied")
					assert.Empty(t, s.Reports(), "a plain failure, no WARN")
				case mmsim.NofailBug:
					require.ErrorIs(t, err, mmsim.ErrBug)
					require.ErrorIs(t, err, mmsim.ErrKilled)
					require.Len(t, reportsSince(s, 0, mmsim.ReportBug), 1)
					assert.True(t, s.Killed(task) || taskDead(s, task), "the caller is killed")
				case mmsim.NofailLoop:
					require.ErrorIs(t, err, mmsim.ErrDeadlock)
					assert.Len(t, reportsSince(s, 0, mmsim.ReportAlloc), 3, "a stall report at 10, 20 and 30 s")
					assert.Equal(t, int64(30*time.Second), s.Now()-start)
				}
			})
		}
	}
}

// taskDead reports whether t's context was cancelled (SIGKILL).
func taskDead(s *mmsim.System, t *memalloc.Task) bool { return s.Context(t).Err() != nil }

// TestKvmallocLimitPolicy checks the configured kvmalloc limit: it makes a
// NOFAIL kvmalloc never satisfiable under a non-kernel policy, and is
// ignored under the kernel's.
func TestKvmallocLimitPolicy(t *testing.T) {
	for _, policy := range []mmsim.NofailPolicy{mmsim.NofailKernel, mmsim.NofailFail} {
		cfg := smallConfig(8192)
		cfg.Nofail = mmsim.NofailConfig{Policy: policy, KvmallocLimitFraction: 0.01}
		s := newSystem(t, cfg)
		task := s.NewTask("kv")
		o, err := s.Kvmalloc(task, 1<<20, gfp.Kernel|gfp.NoFail)
		if policy == mmsim.NofailKernel {
			require.NoError(t, err, "the kernel has no such limit")
			require.NoError(t, s.Kvfree(task, o))
			continue
		}
		require.ErrorIs(t, err, mmsim.ErrNoMemory)
		assert.True(t, strings.Contains(err.Error(), "configured limit"), err.Error())
	}
}
