package mmsim_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// faultSystem is a 64 MiB machine with fault injection built in.
func faultSystem(t testing.TB, seed int64) *mmsim.System {
	t.Helper()
	cfg := smallConfig(12288)
	cfg.FaultInjection = true
	cfg.Seed = seed
	return newSystem(t, cfg)
}

// everywhere returns a facility's knobs that reach every request, as
// syzkaller sets them: no exemption for __GFP_DIRECT_RECLAIM, __GFP_HIGHMEM
// or small orders.
func everywhere() (mmsim.FailPageAlloc, mmsim.Failslab) {
	fa := mmsim.DefaultFailPageAlloc()
	fa.IgnoreGFPWait, fa.IgnoreGFPHighmem, fa.MinOrder = false, false, 0
	fs := mmsim.DefaultFailslab()
	fs.IgnoreGFPWait = false
	return fa, fs
}

// TestFaultInjectionOff checks that a System without Config.FaultInjection
// has none of the files: every setter refuses with ErrInvalid, and the
// readers show the kernel's defaults.
func TestFaultInjectionOff(t *testing.T) {
	s := newSystem(t, smallConfig(4096))
	tk := s.NewTask("t")
	fa, fs := everywhere()
	fa.Probability = 100
	require.ErrorIs(t, s.SetFailPageAlloc(fa), mmsim.ErrInvalid)
	require.ErrorIs(t, s.SetFailslab(fs), mmsim.ErrInvalid)
	require.ErrorIs(t, s.SetFailNth(tk, 1), mmsim.ErrInvalid)
	require.ErrorIs(t, s.SetMakeItFail(tk, true), mmsim.ErrInvalid)
	_, err := s.FailScope(tk, 1)
	require.ErrorIs(t, err, mmsim.ErrInvalid)
	assert.Equal(t, mmsim.DefaultFailPageAlloc(), s.FailPageAlloc())
	assert.Equal(t, mmsim.DefaultFailslab(), s.Failslab())
	assert.Zero(t, s.FailNth(tk))
	_, err = s.AllocPages(tk, gfp.NoWait, 1)
	require.NoError(t, err)
}

// TestFaultAttrValidation checks that a bad knob is refused with every
// bad field named, and that the facility keeps its knobs.
func TestFaultAttrValidation(t *testing.T) {
	s := faultSystem(t, 1)
	tk := s.NewTask("t")
	fa := mmsim.DefaultFailPageAlloc()
	fa.Probability, fa.Times, fa.Space, fa.Interval, fa.MinOrder = 101, -2, -1, -1, -1
	err := s.SetFailPageAlloc(fa)
	require.ErrorIs(t, err, mmsim.ErrInvalid)
	for _, field := range []string{"probability 101", "times -2", "space -1", "interval -1", "min-order -1"} {
		assert.Contains(t, err.Error(), field)
	}
	assert.Equal(t, mmsim.DefaultFailPageAlloc(), s.FailPageAlloc())
	fs := mmsim.DefaultFailslab()
	fs.Verbose = -1
	require.ErrorIs(t, s.SetFailslab(fs), mmsim.ErrInvalid)
	require.ErrorIs(t, s.SetFailNth(tk, -1), mmsim.ErrInvalid)
	_, err = s.FailScope(tk, -1)
	require.ErrorIs(t, err, mmsim.ErrInvalid)
	require.ErrorIs(t, s.SetFailNth(nil, 1), mmsim.ErrInvalid)
}

// pageStep is one page allocation of a knob test: by task 0 or 1.
type pageStep struct {
	task  int
	mask  gfp.Mask
	order zone.Order
	fail  bool
}

// TestFaultInjectionPageAllocKnobs checks each knob of fail_page_alloc. Every
// injected failure is NULL with no slow path and no warn_alloc report.
//
// Reference: mm/fail_page_alloc.c:should_fail_alloc_page(),
// lib/fault-inject.c:should_fail_ex().
func TestFaultInjectionPageAllocKnobs(t *testing.T) {
	k, nw := gfp.Kernel, gfp.NoWait
	tests := []struct {
		name       string
		set        func(*mmsim.FailPageAlloc)
		makeItFail bool // task 1's make-it-fail
		steps      []pageStep
		wantLeft   int // times left
	}{
		{
			name:     "probability 100 fails every request that reaches the point",
			set:      func(fa *mmsim.FailPageAlloc) { fa.Probability, fa.Times = 100, -1 },
			steps:    []pageStep{{0, k, 0, true}, {0, k, 3, true}, {0, nw, 0, true}},
			wantLeft: -1,
		},
		{
			name:     "probability 0 fails nothing",
			set:      func(fa *mmsim.FailPageAlloc) { fa.Probability, fa.Times = 0, -1 },
			steps:    []pageStep{{0, k, 0, false}, {0, nw, 2, false}},
			wantLeft: -1,
		},
		{
			name:     "interval 3 fails every third candidate",
			set:      func(fa *mmsim.FailPageAlloc) { fa.Probability, fa.Times, fa.Interval = 100, -1, 3 },
			steps:    []pageStep{{0, k, 0, false}, {0, k, 0, false}, {0, k, 0, true}, {0, k, 0, false}, {0, k, 0, false}, {0, k, 0, true}},
			wantLeft: -1,
		},
		{
			name:     "times counts down and stops at 0",
			set:      func(fa *mmsim.FailPageAlloc) { fa.Probability, fa.Times = 100, 2 },
			steps:    []pageStep{{0, k, 0, true}, {0, k, 0, true}, {0, k, 0, false}, {0, k, 0, false}},
			wantLeft: 0,
		},
		{
			name: "space lets requests through while it lasts, counting pages",
			set:  func(fa *mmsim.FailPageAlloc) { fa.Probability, fa.Times, fa.Space = 100, -1, 5 },
			// 5 > 2 leaves 3; 3 > 1 leaves 2; 2 > 2 is false: fail.
			steps:    []pageStep{{0, k, 1, false}, {0, k, 0, false}, {0, k, 1, true}, {0, k, 0, false}, {0, k, 0, true}},
			wantLeft: -1,
		},
		{
			name: "min-order exempts smaller orders",
			set: func(fa *mmsim.FailPageAlloc) {
				fa.Probability, fa.Times, fa.MinOrder = 100, -1, 2
			},
			steps:    []pageStep{{0, k, 0, false}, {0, k, 1, false}, {0, k, 2, true}, {0, k, 3, true}},
			wantLeft: -1,
		},
		{
			name: "ignore-gfp-wait exempts requests that may direct-reclaim",
			set: func(fa *mmsim.FailPageAlloc) {
				fa.Probability, fa.Times, fa.IgnoreGFPWait = 100, -1, true
			},
			steps:    []pageStep{{0, k, 0, false}, {0, gfp.NoFS, 0, false}, {0, nw, 0, true}, {0, gfp.Atomic, 0, true}},
			wantLeft: -1,
		},
		{
			name: "ignore-gfp-highmem exempts GFP_HIGHUSER",
			set: func(fa *mmsim.FailPageAlloc) {
				fa.Probability, fa.Times, fa.IgnoreGFPHighmem = 100, -1, true
			},
			steps:    []pageStep{{0, gfp.HighUser, 0, false}, {0, gfp.HighUserMovable, 0, false}, {0, gfp.User, 0, true}},
			wantLeft: -1,
		},
		{
			name:       "the task filter fails only tasks with make-it-fail",
			set:        func(fa *mmsim.FailPageAlloc) { fa.Probability, fa.Times, fa.TaskFilter = 100, -1, true },
			makeItFail: true,
			steps:      []pageStep{{0, k, 0, false}, {1, k, 0, true}, {0, nw, 0, false}, {1, nw, 0, true}},
			wantLeft:   -1,
		},
		{
			name:     "__GFP_NOFAIL is never failed and uses up no times",
			set:      func(fa *mmsim.FailPageAlloc) { fa.Probability, fa.Times = 100, 1 },
			steps:    []pageStep{{0, k | gfp.NoFail, 0, false}, {0, k | gfp.NoFail, 2, false}, {0, k, 0, true}},
			wantLeft: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := faultSystem(t, 1)
			tasks := []*memalloc.Task{s.NewTask("t0"), s.NewTask("t1")}
			require.NoError(t, s.SetMakeItFail(tasks[1], tc.makeItFail))
			assert.Equal(t, tc.makeItFail, s.MakeItFail(tasks[1]))
			fa, _ := everywhere()
			fa.Verbose = 0
			tc.set(&fa)
			require.NoError(t, s.SetFailPageAlloc(fa))
			n := len(s.Reports())
			for i, st := range tc.steps {
				p, err := s.AllocPages(tasks[st.task], st.mask, st.order)
				if st.fail {
					require.ErrorIs(t, err, mmsim.ErrNoMemory, "step %d", i)
					assert.Contains(t, err.Error(), "fault injection", "step %d", i)
					continue
				}
				require.NoError(t, err, "step %d", i)
				require.NoError(t, s.FreePages(tasks[st.task], p, st.order))
			}
			assert.Empty(t, s.Reports()[n:], "no warn_alloc, no report at verbose 0")
			assert.Equal(t, tc.wantLeft, s.FailPageAlloc().Times)
			require.NoError(t, s.CheckInvariants())
		})
	}
}

// TestFaultInjectionDump checks fail_dump's report: the kernel's text with the
// knobs before times counts down, as a notice (ReportInfo); verbose 0 and
// __GFP_NOWARN silence it but still fail the request.
//
// Reference: lib/fault-inject.c:fail_dump(), should_fail_ex() (FAULT_NOWARN).
func TestFaultInjectionDump(t *testing.T) {
	s := faultSystem(t, 1)
	tk := s.NewTask("dumper")
	fa, fs := everywhere()
	fa.Probability, fa.Times, fa.Interval, fa.Verbose = 100, 3, 1, 1
	require.NoError(t, s.SetFailPageAlloc(fa))
	fs.Probability, fs.Times = 100, -1
	require.NoError(t, s.SetFailslab(fs))
	n := len(s.Reports())

	_, err := s.AllocPages(tk, gfp.Kernel, 0)
	require.ErrorIs(t, err, mmsim.ErrNoMemory)
	_, err = s.AllocPages(tk, gfp.Kernel|gfp.NoWarn, 0)
	require.ErrorIs(t, err, mmsim.ErrNoMemory)
	_, err = s.Kmalloc(tk, 32, gfp.Kernel)
	require.ErrorIs(t, err, mmsim.ErrNoMemory)

	r := s.Reports()[n:]
	require.Len(t, r, 2)
	assert.Equal(t, mmsim.ReportInfo, r[0].Kind)
	assert.Equal(t, "lib/fault-inject.c:fail_dump", r[0].Site)
	assert.Equal(t, "FAULT_INJECTION: forcing a failure.\nname fail_page_alloc, interval 1, probability 100, space 0, times 3", r[0].Text)
	assert.Equal(t, "dumper", r[0].Comm)
	assert.Equal(t, "FAULT_INJECTION: forcing a failure.\nname failslab, interval 1, probability 100, space 0, times -1", r[1].Text)
	assert.Equal(t, 1, s.FailPageAlloc().Times, "the silenced failure counted down too")
}

// TestFaultInjectionSlabKnobs checks failslab: kmalloc and kmem_cache_alloc fail
// with NULL, a large kmalloc is the page allocator's, __GFP_NOFAIL and
// (by default) direct-reclaim requests are exempt, and cache-filter
// limits it to SLAB_FAILSLAB caches.
//
// Reference: mm/failslab.c:should_failslab(), mm/slub.c:slab_pre_alloc_hook().
func TestFaultInjectionSlabKnobs(t *testing.T) {
	s := faultSystem(t, 1)
	tk := s.NewTask("t")
	c, err := s.KmemCacheCreate("test_inode", 600, 0, mmsim.SlabHWCacheAlign)
	require.NoError(t, err)
	fs := mmsim.DefaultFailslab()
	fs.Probability, fs.Times, fs.Verbose = 100, -1, 0
	require.NoError(t, s.SetFailslab(fs))

	ok := func(o mmsim.Object, err error) mmsim.Object {
		t.Helper()
		require.NoError(t, err)
		return o
	}
	fails := func(_ mmsim.Object, err error) {
		t.Helper()
		require.ErrorIs(t, err, mmsim.ErrNoMemory)
		assert.Contains(t, err.Error(), "failslab")
	}
	// ignore-gfp-wait (the default) exempts GFP_KERNEL.
	require.NoError(t, s.Kfree(tk, ok(s.Kmalloc(tk, 64, gfp.Kernel))))
	fails(s.Kmalloc(tk, 64, gfp.Atomic))
	fails(s.KmemCacheAlloc(tk, c, gfp.NoWait))
	require.NoError(t, s.Kfree(tk, ok(s.Kmalloc(tk, 64, gfp.Atomic|gfp.NoFail))))
	// A large kmalloc is a page allocation.
	require.NoError(t, s.Kfree(tk, ok(s.Kmalloc(tk, 3*zone.PageSize, gfp.Atomic))))
	assert.Zero(t, c.ActiveObjects())

	fs.IgnoreGFPWait = false
	fs.CacheFilter = true
	require.NoError(t, s.SetFailslab(fs))
	require.NoError(t, s.KmemCacheFree(tk, c, ok(s.KmemCacheAlloc(tk, c, gfp.Kernel))))
	c.SetFailslab(true)
	fails(s.KmemCacheAlloc(tk, c, gfp.Kernel))
	require.NoError(t, s.Kfree(tk, ok(s.Kmalloc(tk, 64, gfp.Kernel))))
	require.NoError(t, s.CheckInvariants())
}

// TestFaultInjectionFailNth checks /proc/<pid>/fail-nth on pages and slab objects: the
// nth request of the task that reaches a fault point fails, whatever the
// probability; __GFP_NOFAIL and exempt requests do not count; other tasks
// are not affected; the file reads what is left, then 0.
//
// Reference: lib/fault-inject.c:should_fail_ex() (current->fail_nth),
// mm/fail_page_alloc.c:should_fail_alloc_page().
func TestFaultInjectionFailNth(t *testing.T) {
	s := faultSystem(t, 1)
	tk, other := s.NewTask("syz-executor"), s.NewTask("other")
	fa, fs := everywhere()
	fa.MinOrder = 1 // order-0 page requests are exempt
	require.NoError(t, s.SetFailPageAlloc(fa))
	require.NoError(t, s.SetFailslab(fs))
	// Warm the kmalloc-64 cache so that kmalloc needs no new slab.
	o, err := s.Kmalloc(tk, 64, gfp.Kernel)
	require.NoError(t, err)
	require.NoError(t, s.Kfree(tk, o))

	require.NoError(t, s.SetFailNth(tk, 4))
	steps := []struct {
		name string
		do   func() error
		left int
	}{
		{"order-0 page: exempt", func() error { return allocFree(s, tk, gfp.Kernel, 0) }, 4},
		{"order-1 page: counts", func() error { return allocFree(s, tk, gfp.Kernel, 1) }, 3},
		{"another task's request", func() error { return allocFree(s, other, gfp.Kernel, 1) }, 3},
		{"__GFP_NOFAIL: exempt", func() error { return allocFree(s, tk, gfp.Kernel|gfp.NoFail, 2) }, 3},
		{"kmalloc: counts", func() error { return kmallocFree(s, tk, gfp.Kernel) }, 2},
		{"__GFP_NOFAIL kmalloc: exempt", func() error { return kmallocFree(s, tk, gfp.Kernel|gfp.NoFail) }, 2},
		{"order-2 page: counts", func() error { return allocFree(s, tk, gfp.Kernel, 2) }, 1},
	}
	for _, st := range steps {
		require.NoError(t, st.do(), st.name)
		require.Equal(t, st.left, s.FailNth(tk), st.name)
	}
	require.ErrorIs(t, kmallocFree(s, tk, gfp.Kernel), mmsim.ErrNoMemory, "the 4th fails")
	require.Zero(t, s.FailNth(tk))
	require.NoError(t, kmallocFree(s, tk, gfp.Kernel), "and only the 4th")
	assert.Equal(t, 1, s.FailPageAlloc().Times, "probability 0: times untouched")
	assert.Equal(t, 0, s.Failslab().Times, "the injected failure counted times down")

	require.NoError(t, s.SetFailNth(tk, 1))
	require.ErrorIs(t, allocFree(s, tk, gfp.NoWait, 3), mmsim.ErrNoMemory)
	require.NoError(t, s.CheckInvariants())
}

func allocFree(s *mmsim.System, tk *memalloc.Task, mask gfp.Mask, order zone.Order) error {
	p, err := s.AllocPages(tk, mask, order)
	if err != nil {
		return err
	}
	return s.FreePages(tk, p, order)
}

func kmallocFree(s *mmsim.System, tk *memalloc.Task, mask gfp.Mask) error {
	o, err := s.Kmalloc(tk, 64, mask)
	if err != nil {
		return err
	}
	return s.Kfree(tk, o)
}

// TestFaultInjectionScope checks the scoped fail-nth: the count and the points
// inside, the injected request, nesting, and End restoring the task's
// fail-nth; ending an outer scope first is refused.
func TestFaultInjectionScope(t *testing.T) {
	s := faultSystem(t, 1)
	tk := s.NewTask("t")
	fa, fs := everywhere()
	require.NoError(t, s.SetFailPageAlloc(fa))
	require.NoError(t, s.SetFailslab(fs))
	require.NoError(t, s.SetFailNth(tk, 7))

	outer, err := s.FailScope(tk, 0) // counts only
	require.NoError(t, err)
	require.NoError(t, allocFree(s, tk, gfp.Kernel, 0))
	inner, err := s.FailScope(tk, 2)
	require.NoError(t, err)
	require.ErrorIs(t, outer.End(), mmsim.ErrInvalid)
	require.NoError(t, allocFree(s, tk, gfp.Kernel, 1))
	require.ErrorIs(t, allocFree(s, tk, gfp.NoFS, 0), mmsim.ErrNoMemory)
	require.NoError(t, allocFree(s, tk, gfp.Kernel|gfp.NoFail, 0))
	require.NoError(t, allocFree(s, tk, gfp.Kernel, 0))
	require.NoError(t, inner.End())
	require.NoError(t, inner.End(), "a second End does nothing")
	assert.Zero(t, s.FailNth(tk), "the outer scope's 0 is back")
	require.NoError(t, allocFree(s, tk, gfp.Kernel, 0))
	require.NoError(t, outer.End())
	assert.Equal(t, 7, s.FailNth(tk), "the task's own fail-nth is back")

	assert.True(t, inner.Hit())
	assert.Equal(t, 3, inner.Count())
	fp, ok := inner.Injected()
	require.True(t, ok)
	assert.Equal(t, mmsim.FaultPoint{Facility: mmsim.FacilityFailPageAlloc, Mask: gfp.NoFS, Order: 0, Size: 1}, fp)
	assert.Equal(t, "fail_page_alloc order:0 mode:0xc40(GFP_NOFS)", fp.String())
	assert.False(t, outer.Hit())
	assert.Equal(t, 5, outer.Count())
	pts := outer.Points()
	require.Len(t, pts, 5)
	assert.Equal(t, gfp.NoFS, pts[2].Mask)
	_, ok = outer.Injected()
	assert.False(t, ok)
}

// TestFaultInjectionDeterminism checks that the probability test follows
// Config.Seed: the same seed fails the same requests, another seed others.
func TestFaultInjectionDeterminism(t *testing.T) {
	run := func(seed int64) string {
		s := faultSystem(t, seed)
		tk := s.NewTask("t")
		fa, fs := everywhere()
		fa.Probability, fa.Times, fa.Verbose = 30, -1, 0
		fs.Probability, fs.Times, fs.Verbose = 30, -1, 0
		require.NoError(t, s.SetFailPageAlloc(fa))
		require.NoError(t, s.SetFailslab(fs))
		var b []byte
		for i := range 200 {
			var err error
			if i%2 == 0 {
				err = allocFree(s, tk, gfp.Kernel, zone.Order(i%3))
			} else {
				err = kmallocFree(s, tk, gfp.Kernel)
			}
			if errors.Is(err, mmsim.ErrNoMemory) {
				b = append(b, 'x')
			} else {
				require.NoError(t, err)
				b = append(b, '.')
			}
		}
		return string(b)
	}
	a, b, c := run(42), run(42), run(43)
	assert.Equal(t, a, b)
	assert.NotEqual(t, a, c)
	assert.Contains(t, a, "x")
	assert.Contains(t, a, ".")
}

// usage is what a code path may leak: page blocks in use outside slab,
// and live objects of the named caches.
type usage struct{ pages, objects int64 }

func measure(t testing.TB, s *mmsim.System, tk *memalloc.Task, caches ...string) usage {
	t.Helper()
	require.NoError(t, s.DrainAllPages(tk))
	var u usage
	for _, n := range s.Nodes() {
		for zt := range gfp.MaxNrZones {
			z := n.Zone(gfp.ZoneType(zt))
			u.pages += z.Managed() - z.FreePages()
		}
		u.pages -= n.State(zone.NodeNrSlabReclaimable) + n.State(zone.NodeNrSlabUnreclaimable)
	}
	for _, c := range caches {
		u.objects += int64(s.KmemCache(c).ActiveObjects())
	}
	return u
}

// probe is a modelled driver probe with a planted bug: it allocates a
// context object, a page and a buffer object, and when the buffer's
// allocation fails it frees the context but forgets the page.
func probe(s *mmsim.System, tk *memalloc.Task) (release func() error, err error) {
	ctx, err := s.Kmalloc(tk, 64, gfp.Kernel)
	if err != nil {
		return nil, err
	}
	page, err := s.AllocPages(tk, gfp.Kernel, 0)
	if err != nil {
		return nil, errors.Join(err, s.Kfree(tk, ctx))
	}
	buf, err := s.Kmalloc(tk, 128, gfp.Kernel)
	if err != nil {
		return nil, errors.Join(err, s.Kfree(tk, ctx)) // the planted leak: page
	}
	return func() error {
		return errors.Join(s.Kfree(tk, buf), s.FreePages(tk, page, 0), s.Kfree(tk, ctx))
	}, nil
}

// TestFaultInjectionFindsPlantedLeak walks every allocation of probe with
// a FailScope of 1, 2, … until a run injects nothing, and checks after
// each failed run what it left behind: only the run that fails the third
// allocation leaks, and what it leaks is one order-0 page — the block of
// injection point 2.
func TestFaultInjectionFindsPlantedLeak(t *testing.T) {
	s := faultSystem(t, 1)
	tk := s.NewTask("modprobe")
	fa, fs := everywhere()
	require.NoError(t, s.SetFailPageAlloc(fa))
	require.NoError(t, s.SetFailslab(fs))
	caches := []string{"kmalloc-64", "kmalloc-128"}

	// A first run creates the slabs, which take two more fault points
	// (the slab pages); a second lists the path's own points.
	var points []mmsim.FaultPoint
	for _, want := range []int{5, 3} {
		count, err := s.FailScope(tk, 0)
		require.NoError(t, err)
		release, err := probe(s, tk)
		require.NoError(t, err)
		require.NoError(t, count.End())
		require.NoError(t, release())
		points = count.Points()
		require.Len(t, points, want, "%v", points)
	}

	base := measure(t, s, tk, caches...)
	var leaks []string
	n := 1
	for ; ; n++ {
		sc, err := s.FailScope(tk, n)
		require.NoError(t, err)
		release, perr := probe(s, tk)
		require.NoError(t, sc.End())
		if !sc.Hit() {
			require.NoError(t, perr)
			require.Equal(t, n-1, sc.Count(), "a clean run reaches every point")
			require.NoError(t, release())
			break
		}
		require.ErrorIs(t, perr, mmsim.ErrNoMemory, "run %d", n)
		fp, _ := sc.Injected()
		require.Equal(t, points[n-1], fp, "run %d fails the nth point of the clean run", n)
		if u := measure(t, s, tk, caches...); u != base {
			leaks = append(leaks, fmt.Sprintf("failing point %d (%s) leaks %d page(s), %d object(s)",
				n, fp, u.pages-base.pages, u.objects-base.objects))
			base = u
		}
	}
	require.Equal(t, 4, n, "three points, then a clean run")
	require.Equal(t, []string{
		"failing point 3 (failslab kmalloc-128 (128 bytes) mode:0xcc0(GFP_KERNEL)) leaks 1 page(s), 0 object(s)",
	}, leaks)
	// The leaked page is point 2's: the path's only page block.
	assert.Equal(t, mmsim.FaultPoint{Facility: mmsim.FacilityFailPageAlloc, Mask: gfp.Kernel, Size: 1}, points[1])
	require.NoError(t, s.CheckInvariants())
}

// TestFaultInjectionConcurrentWithDebug runs fault injection, allocation
// profiling, kmemleak and page_owner together from two tasks at once:
// every failure is a plain ErrNoMemory, nothing is refused as a BUG, and
// the machine stays consistent (run it with -race).
func TestFaultInjectionConcurrentWithDebug(t *testing.T) {
	cfg := smallConfig(12288)
	cfg.FaultInjection, cfg.AllocProfiling = true, true
	cfg.Debug.Kmemleak, cfg.Debug.PageOwner = true, true
	s := newSystem(t, cfg)
	fa, fs := everywhere()
	fa.Probability, fa.Times, fa.Verbose = 20, -1, 0
	fs.Probability, fs.Times, fs.Verbose = 20, -1, 0
	require.NoError(t, s.SetFailPageAlloc(fa))
	require.NoError(t, s.SetFailslab(fs))
	var g errgroup.Group
	for i := range 2 {
		tk := s.NewTask(fmt.Sprintf("worker%d", i))
		g.Go(func() error {
			for j := range 200 {
				var err error
				switch j % 4 {
				case 0:
					err = allocFree(s, tk, gfp.Kernel, zone.Order(j%4))
				case 1:
					err = kmallocFree(s, tk, gfp.Kernel)
				case 2:
					var o mmsim.Object
					if o, err = s.Kvmalloc(tk, 5*zone.PageSize, gfp.Kernel); err == nil {
						err = s.Kvfree(tk, o)
					}
				case 3:
					if sc, serr := s.FailScope(tk, 1+j%3); serr != nil {
						err = serr
					} else {
						err = errors.Join(kmallocFree(s, tk, gfp.Kernel), sc.End())
					}
				}
				if err != nil && !errors.Is(err, mmsim.ErrNoMemory) {
					return err
				}
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
	assert.Empty(t, reportsSince(s, 0, mmsim.ReportBug))
	require.NoError(t, s.CheckInvariants())
	require.NotEmpty(t, s.Allocinfo())
}

// BenchmarkFaultInjection measures what building fault injection in costs
// an order-0 AllocPages+FreePages pair while nothing is armed: the hooks
// (which also take the allocator off its hook-free fast path) and one
// atomic load.
func BenchmarkFaultInjection(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("faultinject=%v", on), func(b *testing.B) {
			cfg := mmsim.DefaultConfig()
			cfg.FaultInjection = on
			order0Pairs(b, cfg)
		})
	}
}
