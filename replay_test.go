package mmsim_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/internal/testutil"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/perfscript"
	"github.com/mmsim/mmsim/zone"
)

// readTrace returns a decompressed capture of testdata/traces.
func readTrace(tb testing.TB, name string) []byte {
	tb.Helper()
	return testutil.ReadGzipFile(tb, filepath.Join("testdata", "traces", name))
}

// TestReplayPageCaptures replays the bundled page-allocator captures
// through the default machine: no fatal error, no malformed line, every
// recorded allocation made (the 8 GiB machine has room for what a 24 GiB
// one allocated in these runs), every pairable free paired, and the
// machine's invariants intact.
func TestReplayPageCaptures(t *testing.T) {
	for _, c := range []struct {
		name                      string
		allocs, unpaired, batched int64
		reallocated, live         int64
	}{
		// The counts follow from the captures themselves (a script
		// pairing the text's events gives the same): allocations, frees
		// of blocks allocated before the capture, mm_page_free_batched
		// events echoing an mm_page_free on their CPU, allocations of a
		// pfn whose free was lost, blocks held at the end. Every batched
		// event of these captures echoes one.
		{"page_anon_mmap.perf.txt.gz", 33246, 77, 33017, 1, 108},
		{"page_tar_xz.perf.txt.gz", 57841, 390, 33092, 2172, 15422},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSystem(t, mmsim.DefaultConfig())
			rep, err := s.Replay(bytes.NewReader(readTrace(t, c.name)), mmsim.ReplayProgress(nil))
			require.NoError(t, err)
			require.Zero(t, rep.Malformed, "%v", rep.FirstMalformed)
			require.Equal(t, c.allocs, rep.ByKind[perfscript.PageAlloc])
			require.Empty(t, rep.Failures)
			require.Equal(t, c.unpaired, rep.Unpaired)
			require.Equal(t, c.batched, rep.Batched)
			require.Equal(t, c.reallocated, rep.Reallocated)
			require.Equal(t, c.live, rep.LiveBlocks)
			frees := rep.ByKind[perfscript.PageFree] + rep.ByKind[perfscript.PageFreeBatched]
			require.Equal(t, c.allocs+frees-c.unpaired-c.batched, rep.Replayed)
			requireEventsAddUp(t, rep)
			require.NotEmpty(t, rep.Samples)
			require.NoError(t, s.CheckInvariants())
			var text bytes.Buffer
			require.NoError(t, rep.WriteText(&text))
			require.Contains(t, text.String(), "failures: none")
		})
	}
}

// requireEventsAddUp checks that every event of a replay is counted once.
func requireEventsAddUp(t *testing.T, rep *mmsim.ReplayReport) {
	t.Helper()
	require.Equal(t, rep.Events, rep.Replayed+rep.Refused+rep.Unpaired+rep.Batched+rep.NilFrees+rep.Skipped,
		"replayed %d refused %d unpaired %d batched %d nil %d skipped %d",
		rep.Replayed, rep.Refused, rep.Unpaired, rep.Batched, rep.NilFrees, rep.Skipped)
	var byKind int64
	for _, n := range rep.ByKind {
		byKind += n
	}
	require.Equal(t, rep.Events, byKind)
}

// TestReplaySlabCapture replays the head of the slab capture: kmalloc,
// kmem_cache_alloc and their frees, vmap areas; kfree(NULL) is counted.
func TestReplaySlabCapture(t *testing.T) {
	s := newSystem(t, mmsim.DefaultConfig())
	rep, err := s.Replay(bytes.NewReader(readTrace(t, "slab_mix_head60k.perf.txt.gz")), mmsim.ReplayProgress(nil))
	require.NoError(t, err)
	require.Zero(t, rep.Malformed)
	require.Positive(t, rep.ByKind[perfscript.Kmalloc])
	require.Positive(t, rep.NilFrees)
	require.Positive(t, rep.Unpaired)
	require.Positive(t, rep.ByKind[perfscript.AllocVmapArea])
	require.Empty(t, rep.Failures)
	require.Positive(t, rep.LiveObjects)
	requireEventsAddUp(t, rep)
	require.NoError(t, s.CheckInvariants())
}

// TestReplayPressure replays the tar capture through a machine too small
// for it: allocations fail, by mask and order, and the machine works to
// keep up — but the replay itself finishes without error.
func TestReplayPressure(t *testing.T) {
	s := newSystem(t, mmsim.SmallConfig(24<<10, 24<<10)) // 96 MiB
	rep, err := s.Replay(bytes.NewReader(readTrace(t, "page_tar_xz.perf.txt.gz")), mmsim.ReplayProgress(nil))
	require.NoError(t, err)
	require.NotEmpty(t, rep.Failures)
	require.Positive(t, rep.Activity.KswapdWakes)
	var below int64
	for _, z := range rep.Zones {
		below += z.BelowLow
	}
	require.Positive(t, below)
	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	require.Contains(t, text.String(), "× kmem:mm_page_alloc order:")
	requireEventsAddUp(t, rep)
	require.NoError(t, s.CheckInvariants())
}

// TestReplayBadInput: malformed lines and masks are counted, never fatal;
// a mask naming flags this kernel lacks is made with the rest; a nil
// reader and a bad option are errors; a read error ends the replay with
// that error.
func TestReplayBadInput(t *testing.T) {
	s := newSystem(t, mmsim.DefaultConfig())
	text := strings.Join([]string{
		"# header",
		"garbage line",
		"sh 1 [000] 1.000000: kmem:mm_page_alloc: page=0x10 pfn=0x10 order=0 migratetype=0 gfp_flags=GFP_KERNEL||__GFP_ZERO",
		"sh 1 [000] 1.000000: kmem:mm_page_alloc: page=0x14 pfn=0x14 order=0 migratetype=0 gfp_flags=GFP_KERNEL|__GFP_BOGUS",
		"sh 1 [000] 1.000000: kmem:mm_page_alloc: page=0x15 pfn=0x15 order=0 migratetype=0 gfp_flags=__GFP_BOGUS|GFP_ATOMIC|__GFP_SKIP_KASAN",
		"sh 1 [000] 1.000000: kmem:mm_page_alloc: page=0x16 pfn=0x16000000000 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
		"sh 1 [000] 1.000001: kmem:mm_page_alloc: page=0x11 pfn=0x11 order=11 migratetype=0 gfp_flags=GFP_KERNEL|__GFP_NOWARN",
		"sh 1 [000] 1.000002: kmem:mm_page_free: page=0x12 pfn=0x12 order=0",
		"sh 1 [000] 1.000003: kmem:mm_page_alloc: page=0x13 pfn=0x13 order=2 migratetype=0 gfp_flags=GFP_KERNEL",
		"sh 1 [000] 1.000004: kmem:mm_page_free: page=0x13 pfn=0x13 order=1",
		"sh 1 [000] 1.000005: kmem:mm_page_free: page=0x13 pfn=0x13 order=2",
		"sh 1 [000] 1.000005: kmem:mm_page_free_batched: page=0x13 pfn=0x13 order=0",
		"sh 1 [001] 1.000005: kmem:mm_page_free_batched: page=0x12 pfn=0x12 order=0",
		"sh 1 [000] 1.000005: kmem:mm_page_free: page=0x14 pfn=0x14 order=0",
		"sh 1 [000] 1.000005: kmem:mm_page_free_batched: page=0x15 pfn=0x15 order=0",
		"sh 1 [000] 1.000005: kmem:mm_page_free_batched: page=0x14 pfn=0x14 order=0",
		"sh 1 [000] 1.000006: kmem:mm_page_alloc: page=0x30 pfn=0x30 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
		"sh 1 [000] 1.000006: kmem:mm_page_free: page=0x30 pfn=0x30 order=0",
		"sh 1 [001] 1.000006: kmem:mm_page_free_batched: page=0x30 pfn=0x30 order=0",
		"sh 1 [000] 1.000006: kmem:mm_page_alloc: page=0x31 pfn=0x31 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
		"sh 1 [000] 1.000006: kmem:mm_page_free: page=0x31 pfn=0x31 order=0",
		"xz 2 [000] 1.000006: kmem:mm_page_free_batched: page=0x31 pfn=0x31 order=0",
		"sh 1 [000] 1.000006: kmem:mm_page_alloc: page=0x40 pfn=0x40 order=2 migratetype=0 gfp_flags=GFP_KERNEL",
		"sh 1 [000] 1.000006: kmem:mm_page_free: page=0x40 pfn=0x40 order=0",
		"sh 1 [000] 1.000006: kmem:mm_page_free_batched: page=0x40 pfn=0x40 order=0",
		"xz 2 [000] 1.000006: kmem:mm_page_free: page=0xffffffffffffffff pfn=0xffffffffffffffff order=0",
		"xz 2 [000] 1.000006: kmem:mm_page_free_batched: page=0xfffffffffffffffe pfn=0xfffffffffffffffe order=0",
		"sh 1 [000] 1.000006: kmem:kfree: call_site=x+0x1 ptr=(nil)",
		"sh 1 [000] 1.000007: vmscan:mm_vmscan_kswapd_wake: nid=0 zid=2 order=0",
	}, "\n")
	rep, err := s.Replay(strings.NewReader(text), mmsim.ReplayProgress(nil))
	require.NoError(t, err)
	require.EqualValues(t, 1, rep.Malformed)
	require.EqualValues(t, 27, rep.Events)
	// Frees never allocated (0x12, twice; pfns past MAX_PHYSMEM_BITS);
	// wrong-order frees (0x13 and 0x40); a batched free of a page
	// another thread freed (0x31).
	require.EqualValues(t, 7, rep.Unpaired)
	// Echoes of their thread's mm_page_free: 0x13's; 0x14's, after
	// 0x15's batched free (a real free: no mm_page_free came first);
	// 0x30's, on another CPU (the thread migrated); 0x40's, whose free
	// was of a part of the block, which stays allocated.
	require.EqualValues(t, 4, rep.Batched)
	require.EqualValues(t, 1, rep.NilFrees)
	require.EqualValues(t, 1, rep.Skipped)
	require.EqualValues(t, 2, rep.Refused) // "||"; a pfn beyond MAX_PHYSMEM_BITS
	require.Equal(t, map[string]int64{"__GFP_BOGUS": 2, "__GFP_SKIP_KASAN": 1}, rep.UnknownFlags)
	requireEventsAddUp(t, rep)
	require.Len(t, rep.Failures, 3)
	require.EqualValues(t, 1, rep.LiveBlocks)
	require.EqualValues(t, 4, rep.LivePages)
	for _, r := range s.Reports() {
		require.NotEqual(t, mmsim.ReportBug, r.Kind, "no bad free reached the machine: %s", r.Text)
	}
	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out))
	require.Contains(t, out.String(), "gfp flags this kernel lacks, left out of the masks made: __GFP_BOGUS (2) __GFP_SKIP_KASAN (1)\n")
	require.NoError(t, s.CheckInvariants())

	_, err = s.Replay(nil)
	require.True(t, errors.Is(err, mmsim.ErrInvalid))
	_, err = s.Replay(strings.NewReader(""), mmsim.ReplaySampleEvery(0))
	require.True(t, errors.Is(err, mmsim.ErrInvalid))
	boom := errors.New("boom")
	_, err = s.Replay(io.MultiReader(strings.NewReader(text), errReader{boom}))
	require.True(t, errors.Is(err, boom))
}

// TestReplayCaptureFailures: the allocations a capture shows failing
// (traced with the NULL they returned) are made again and, when they
// succeed here, freed at once; they never stand for a block or object
// that a later event could pair with.
func TestReplayCaptureFailures(t *testing.T) {
	s := newSystem(t, mmsim.DefaultConfig())
	drainer := s.NewTask("drain")
	free := func() (n int64) {
		require.NoError(t, s.DrainAllPages(drainer))
		for _, nd := range s.Nodes() {
			for zt := range gfp.MaxNrZones {
				if z := nd.Zone(gfp.ZoneType(zt)); z != nil {
					n += z.FreePages()
				}
			}
		}
		return n
	}
	// The page events alone leave the machine's free pages as they were.
	pages := strings.Join([]string{
		"sh 1 [000] 1.000001: kmem:mm_page_alloc: page=(nil) pfn=0x0 order=2 migratetype=0 gfp_flags=GFP_KERNEL",
		"sh 1 [000] 1.000002: kmem:mm_page_alloc: page=(nil) pfn=0x0 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
	}, "\n")
	before := free()
	rep, err := s.Replay(strings.NewReader(pages), mmsim.ReplayProgress(nil))
	require.NoError(t, err)
	require.EqualValues(t, 2, rep.FailedInCaptureOnly)
	require.Equal(t, before, free(), "what succeeded here was freed")

	text := strings.Join([]string{
		"sh 1 [000] 1.000001: kmem:mm_page_alloc: page=(nil) pfn=0x0 order=2 migratetype=0 gfp_flags=GFP_KERNEL",
		"sh 1 [000] 1.000002: kmem:mm_page_alloc: page=(nil) pfn=0x0 order=2 migratetype=0 gfp_flags=GFP_KERNEL",
		// Beyond MAX_PAGE_ORDER: it fails here too.
		"sh 1 [000] 1.000003: kmem:mm_page_alloc: page=(nil) pfn=0x0 order=11 migratetype=0 gfp_flags=GFP_KERNEL|__GFP_NOWARN",
		"sh 1 [000] 1.000004: kmem:mm_page_free: page=(nil) pfn=0x0 order=2",
		"sh 1 [000] 1.000005: kmem:kmalloc: call_site=f+0x1 ptr=(nil) bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL node=-1 accounted=false",
		"sh 1 [000] 1.000006: kmem:kmem_cache_alloc: call_site=f+0x1 ptr=(nil) bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL node=-1 accounted=false name=kmalloc-64",
		"sh 1 [000] 1.000007: kmem:kfree: call_site=f+0x1 ptr=(nil)",
		"sh 1 [000] 1.000008: kmem:kfree: call_site=f+0x1 ptr=0x10",
		"sh 1 [000] 1.000009: kmem:kfree: call_site=f+0x1 ptr=0x11",
	}, "\n")
	active := s.KmemCache("kmalloc-64").ActiveObjects()
	rep, err = s.Replay(strings.NewReader(text), mmsim.ReplayProgress(nil))
	require.NoError(t, err)
	require.Equal(t, active, s.KmemCache("kmalloc-64").ActiveObjects(), "what succeeded here was freed")
	require.EqualValues(t, 5, rep.FailedInCapture)
	require.EqualValues(t, 4, rep.FailedInCaptureOnly)
	require.Zero(t, rep.Reallocated)
	require.EqualValues(t, 5, rep.Replayed)
	require.EqualValues(t, 2, rep.NilFrees) // NULL and ZERO_SIZE_PTR
	require.EqualValues(t, 2, rep.Unpaired) // pfn 0 and 0x11: never allocated
	requireEventsAddUp(t, rep)
	require.Zero(t, rep.LiveBlocks)
	require.Zero(t, rep.LiveObjects)
	require.Len(t, rep.Failures, 1)
	require.Equal(t, 11, rep.Failures[0].Order)
	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out))
	require.Contains(t, out.String(), "failed in the capture: 5 allocations, made again; 4 of them succeeded here and were freed at once\n")
	require.NoError(t, s.CheckInvariants())
}

// TestReplayVmapAreaRetry: a failed alloc_vmap_area is skipped, not made:
// a caller that may block purges and retries, and the retry's event is the
// allocation (mm/vmalloc.c:alloc_vmap_area), so making both would hold two
// areas for one.
func TestReplayVmapAreaRetry(t *testing.T) {
	s := newSystem(t, mmsim.DefaultConfig())
	text := strings.Join([]string{
		// va_start is -ENOENT when no free range fits (__alloc_vmap_area);
		// vstart and vend bound x86-64's vmalloc space with four-level
		// paging (Documentation/arch/x86/x86_64/mm.rst).
		"sh 1 [000] 1.000001: vmalloc:alloc_vmap_area: va_start: 18446744073709551614 size=12288 align=4096 vstart=0xffffc90000000000 vend=0xffffe8ffffffffff failed=1",
		"sh 1 [000] 1.000002: vmalloc:alloc_vmap_area: va_start: 18446683600570023936 size=12288 align=4096 vstart=0xffffc90000000000 vend=0xffffe8ffffffffff failed=0",
		"sh 1 [000] 1.000003: vmalloc:free_vmap_area_noflush: va_start=0xffffc90000000000 nr_lazy=3 nr_lazy_max=32768",
	}, "\n")
	rep, err := s.Replay(strings.NewReader(text), mmsim.ReplayProgress(nil))
	require.NoError(t, err)
	require.EqualValues(t, 1, rep.Skipped)
	require.EqualValues(t, 2, rep.Replayed)
	require.Zero(t, rep.Unpaired)
	require.Zero(t, rep.FailedInCapture)
	require.Zero(t, rep.LiveVmalloc)
	require.Empty(t, rep.Failures)
	requireEventsAddUp(t, rep)
	require.NoError(t, s.CheckInvariants())
}

// TestReplayWidePFNs: recorded pfns too wide for the pfn table's
// entries (2^32 - 1 and up, to the largest a replay takes) pair their
// allocations and frees as narrow ones do, with the same order check.
func TestReplayWidePFNs(t *testing.T) {
	s := newSystem(t, mmsim.DefaultConfig())
	var lines []string
	add := func(f string, args ...any) { lines = append(lines, fmt.Sprintf(f, args...)) }
	pfns := []uint64{0xfffffffe, 0xffffffff, 0x100000000, 0xffffffffff}
	for _, pfn := range pfns {
		add("sh 1 [000] 1.000000: kmem:mm_page_alloc: page=0x%x pfn=0x%x order=1 migratetype=0 gfp_flags=GFP_KERNEL", pfn, pfn)
	}
	for _, pfn := range pfns {
		add("sh 1 [000] 1.000001: kmem:mm_page_free: page=0x%x pfn=0x%x order=0", pfn, pfn) // a part: unpaired
		add("sh 1 [000] 1.000002: kmem:mm_page_free: page=0x%x pfn=0x%x order=1", pfn, pfn)
	}
	add("sh 1 [000] 1.000003: kmem:mm_page_alloc: page=0x10 pfn=0x10000000000 order=0 migratetype=0 gfp_flags=GFP_KERNEL")
	rep, err := s.Replay(strings.NewReader(strings.Join(lines, "\n")), mmsim.ReplayProgress(nil))
	require.NoError(t, err)
	require.EqualValues(t, 4, rep.Unpaired, "the order-0 frees of order-1 blocks")
	require.EqualValues(t, 8, rep.Replayed, "four allocations and their frees")
	require.EqualValues(t, 1, rep.Refused, "2^40 is past MAX_PHYSMEM_BITS")
	require.Zero(t, rep.LiveBlocks)
	require.Zero(t, rep.LivePages)
	requireEventsAddUp(t, rep)
	require.NoError(t, s.CheckInvariants())
}

// TestReplayClosed: a replay of a closed machine, or one closed under it,
// ends with ErrClosed, not with allocation failures.
func TestReplayClosed(t *testing.T) {
	data := readTrace(t, "page_anon_mmap.perf.txt.gz")
	s, err := mmsim.New(mmsim.DefaultConfig())
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = s.Replay(bytes.NewReader(data), mmsim.ReplayProgress(nil))
	require.ErrorIs(t, err, mmsim.ErrClosed)

	s, err = mmsim.New(mmsim.DefaultConfig())
	require.NoError(t, err)
	r := &closeAfter{r: bytes.NewReader(data), n: 1 << 20, close: func() { _ = s.Close() }}
	rep, err := s.Replay(r, mmsim.ReplayProgress(nil))
	require.ErrorIs(t, err, mmsim.ErrClosed)
	require.Less(t, rep.Events, int64(99784)) // it stopped early

	// In memory, cut in place: closed at the progress bar's first draw,
	// after the first block.
	s, err = mmsim.New(mmsim.DefaultConfig())
	require.NoError(t, err)
	rep, err = s.Replay(bytes.NewReader(data), mmsim.ReplayProgress(closeOnWrite{func() { _ = s.Close() }}))
	require.ErrorIs(t, err, mmsim.ErrClosed)
	require.Less(t, rep.Events, int64(99784))
}

// closeOnWrite calls close at each Write.
type closeOnWrite struct{ close func() }

func (c closeOnWrite) Write(p []byte) (int, error) {
	c.close()
	return len(p), nil
}

// closeAfter reads r and calls close once n bytes have been read.
type closeAfter struct {
	r     io.Reader
	n     int
	close func()
}

func (c *closeAfter) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	if c.n -= k; c.n <= 0 && c.close != nil {
		c.close()
		c.close = nil
	}
	return k, err
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// TestReplayProgressBar draws the bar on a writer given explicitly.
func TestReplayProgressBar(t *testing.T) {
	s := newSystem(t, mmsim.DefaultConfig())
	var bar bytes.Buffer
	data := readTrace(t, "page_anon_mmap.perf.txt.gz")
	_, err := s.Replay(bytes.NewReader(data), mmsim.ReplayProgress(&bar))
	require.NoError(t, err)
	require.Contains(t, bar.String(), "100%")
	require.Contains(t, bar.String(), "events\n")
}

var _ = gfp.Kernel

// TestReplayBlocks checks the pipeline's splitting of the trace into
// blocks: however the reader hands the text over, a replay sees the same
// lines in the same order — a line longer than a block, malformed lines
// numbered from the trace's start, a last line with no newline — and a
// line over 1 MiB ends the replay with bufio.ErrTooLong.
func TestReplayBlocks(t *testing.T) {
	var b strings.Builder
	line := 0
	add := func(format string, args ...any) {
		line++
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	for i := range 3000 {
		ts := fmt.Sprintf("%d.%06d", 10+i/1000, i%1000*1000)
		add("%16s %5d [%03d] %s: kmem:mm_page_alloc: page=0x%x pfn=0x%x order=%d migratetype=0 gfp_flags=GFP_KERNEL", "kworker/u8:3", 100+i%7, i%4, ts, 0x1000+i, 0x1000+i, i%3)
		switch i {
		case 1500:
			add("garbage %d", i)
		case 2000:
			add("%16s %5d [%03d] %s: sched:sched_switch: %s", "big", 7, 0, ts, strings.Repeat("x", 100<<10))
		}
		if i%2 == 0 {
			add("%16s %5d [%03d] %s: kmem:mm_page_free: page=0x%x pfn=0x%x order=%d", "kworker/u8:3", 100+i%7, i%4, ts, 0x1000+i, 0x1000+i, i%3)
		}
	}
	b.WriteString("sh 1 [000] 13.000000: kmem:mm_page_free: page=0x1001 pfn=0x1001 order=1") // no newline
	line++
	text := b.String()
	firstBad := strings.Count(text[:strings.Index(text, "garbage")], "\n") + 1

	replay := func(r io.Reader) *mmsim.ReplayReport {
		s := newSystem(t, mmsim.DefaultConfig())
		rep, err := s.Replay(r, mmsim.ReplayProgress(nil))
		require.NoError(t, err)
		rep.Wall = 0
		return rep
	}
	want := replay(strings.NewReader(text))
	require.EqualValues(t, line, want.Lines)
	require.EqualValues(t, 1, want.Malformed)
	require.ErrorContains(t, want.FirstMalformed, fmt.Sprintf("line %d:", firstBad))
	require.EqualValues(t, 3000, want.ByKind[perfscript.PageAlloc])
	require.EqualValues(t, 1501, want.ByKind[perfscript.PageFree])
	require.EqualValues(t, 1, want.ByKind[perfscript.Other])
	require.EqualValues(t, 1500-1, want.LiveBlocks) // the last line frees an odd pfn's block
	for name, r := range map[string]io.Reader{
		"one byte":  iotest.OneByteReader(strings.NewReader(text)),
		"half":      iotest.HalfReader(strings.NewReader(text)),
		"data+EOF":  iotest.DataErrReader(strings.NewReader(text)),
		"4093-byte": &chunkReader{strings.NewReader(text), 4093},
		// In memory: cut in place.
		"bytes.Reader": bytes.NewReader([]byte(text)),
		"bytes.Buffer": bytes.NewBufferString(text),
	} {
		require.Equal(t, want, replay(r), name)
	}

	// A line of 1 MiB or more, not counting its newline, is too long,
	// read or in memory, last or not.
	head := text[:strings.LastIndexByte(text[:1000], '\n')+1]
	for _, n := range []int{1<<20 - 1, 1 << 20, 1<<20 + 1} {
		for _, end := range []string{"\n", "", "\n" + head} {
			long := head + strings.Repeat("y", n) + end
			var want error
			if n >= 1<<20 {
				want = bufio.ErrTooLong
			}
			for name, r := range map[string]io.Reader{
				"read":      strings.NewReader(long),
				"in memory": bytes.NewReader([]byte(long)),
			} {
				s := newSystem(t, mmsim.DefaultConfig())
				rep, err := s.Replay(r, mmsim.ReplayProgress(nil))
				if want == nil {
					require.NoError(t, err, "%s: %d bytes, then %.1q", name, n, end)
					lines := strings.Count(long, "\n")
					if !strings.HasSuffix(long, "\n") {
						lines++
					}
					require.EqualValues(t, lines, rep.Lines, name)
				} else {
					require.ErrorIs(t, err, want, "%s: %d bytes, then %.1q", name, n, end)
				}
			}
		}
	}
}

// TestReplayEventText: what a replay keeps of an event's text — the
// thread's comm, a rejected gfp_flags, a kmem cache's name — is read from
// the right place in a block that is not the trace's first.
func TestReplayEventText(t *testing.T) {
	var b strings.Builder
	for i := range 2000 { // 2000 lines of ~130 bytes: several blocks
		fmt.Fprintf(&b, "%16s %5d [000] 1.%06d: kmem:mm_page_free: page=0x%x pfn=0x%x order=0\n", "filler", 9, i, 0x1000+i, 0x1000+i)
	}
	for _, l := range []string{
		"   my comm 1 [2] 55 [001] 2.000000: kmem:mm_page_alloc: page=0x10 pfn=0x10 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
		"   my comm 1 [2] 55 [001] 2.000001: kmem:mm_page_alloc: page=0x11 pfn=0x11 order=0 migratetype=0 gfp_flags=GFP_KERNEL||__GFP_BOGUS",
		"   my comm 1 [2] 55 [001] 2.000002: kmem:kmem_cache_alloc: call_site=f+0x1 ptr=0xffff888104cfa960 bytes_req=200 bytes_alloc=200 gfp_flags=GFP_KERNEL node=-1 accounted=false name=replay_test_cache",
	} {
		b.WriteString(l + "\n")
	}
	s := newSystem(t, mmsim.DefaultConfig())
	var lines []string
	s.Trace(func(e mmsim.Event) {
		if e.Kind == zone.EvPageAlloc {
			lines = append(lines, e.String())
		}
	})
	rep, err := s.Replay(strings.NewReader(b.String()), mmsim.ReplayProgress(nil))
	require.NoError(t, err)
	require.NotEmpty(t, lines) // the first is the replayed page's; the cache's slab follows
	require.True(t, strings.HasPrefix(strings.TrimLeft(lines[0], " "), "my comm 1 [2] "), lines[0])
	require.Len(t, rep.Failures, 1)
	require.Contains(t, rep.Failures[0].Err, `"GFP_KERNEL||__GFP_BOGUS"`)
	var slabinfo bytes.Buffer
	require.NoError(t, s.WriteSlabinfo(&slabinfo))
	require.Contains(t, slabinfo.String(), "\nreplay_test_cache ")
}

// TestReplayExecRenames: a thread whose comm changes between two of its
// events (exec) is one task, renamed: its later allocations carry the new
// name.
func TestReplayExecRenames(t *testing.T) {
	text := strings.Join([]string{
		"              sh 17034 [000]   432.858501: kmem:mm_page_alloc: page=0x10 pfn=0x10 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
		"             tar 17034 [000]   432.858502: kmem:mm_page_alloc: page=0x11 pfn=0x11 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
		"             tar 17034 [000]   432.858503: kmem:mm_page_free: page=0x10 pfn=0x10 order=0",
		"              xz 17035 [000]   432.858504: kmem:mm_page_alloc: page=0x12 pfn=0x12 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
		"             tar 17034 [000]   432.858505: kmem:mm_page_alloc: page=0x13 pfn=0x13 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
	}, "\n")
	s := newSystem(t, mmsim.DefaultConfig())
	var comms []string
	s.Trace(func(e mmsim.Event) {
		if e.Kind == zone.EvPageAlloc {
			comms = append(comms, strings.Fields(e.String())[0])
		}
	})
	rep, err := s.Replay(strings.NewReader(text), mmsim.ReplayProgress(nil))
	require.NoError(t, err)
	require.Equal(t, 2, rep.Tasks)
	require.Equal(t, []string{"sh", "tar", "xz", "tar"}, comms)
	require.EqualValues(t, 5, rep.Replayed)
}

// TestReplayPerfVariants: a capture recorded with -g (a callchain under
// each event, comms unpadded), and ones printed with -F +pid ("PID/TID"),
// -F -cpu, -L or -F -comm replay like the plain one: no line is malformed, the
// frees find their allocations, a thread without a comm is named as perf
// names it.
func TestReplayPerfVariants(t *testing.T) {
	for name, c := range map[string]struct {
		alloc, free, stack string
		comm               string
	}{
		"callchain": {
			alloc: "tar 17034 [000]   432.974426: kmem:mm_page_alloc: page=0x13bd20 pfn=0x13bd20 order=1 migratetype=1 gfp_flags=GFP_KERNEL",
			free:  "tar 17034 [000]   432.974427: kmem:mm_page_free: page=0x13bd20 pfn=0x13bd20 order=1",
			stack: "\tffffffff8133d5a9 __alloc_frozen_pages_noprof+0x2a9 ([kernel.kallsyms])\n\t    7f0e9c2a1b2c [unknown] (/usr/lib/libc.so.6)\n",
			comm:  "tar",
		},
		"pid/tid": {
			alloc: "             tar   17030/17034   [000]   432.974426: kmem:mm_page_alloc: page=0x13bd20 pfn=0x13bd20 order=1 migratetype=1 gfp_flags=GFP_KERNEL",
			free:  "             tar   17030/17034   [000]   432.974427: kmem:mm_page_free: page=0x13bd20 pfn=0x13bd20 order=1",
			comm:  "tar",
		},
		"no cpu": {
			alloc: "             tar 17034   432.974426: kmem:mm_page_alloc: page=0x13bd20 pfn=0x13bd20 order=1 migratetype=1 gfp_flags=GFP_KERNEL",
			free:  "             tar 17034   432.974427: kmem:mm_page_free: page=0x13bd20 pfn=0x13bd20 order=1",
			comm:  "tar",
		},
		"latency (-L)": {
			alloc: "     tar   17034   1   432.974426: kmem:mm_page_alloc: page=0x13bd20 pfn=0x13bd20 order=1 migratetype=1 gfp_flags=GFP_KERNEL",
			free:  "     tar   17034   1   432.974427: kmem:mm_page_free: page=0x13bd20 pfn=0x13bd20 order=1",
			comm:  "tar",
		},
		"no comm": {
			alloc: "  17034 [000]   432.974426: kmem:mm_page_alloc: page=0x13bd20 pfn=0x13bd20 order=1 migratetype=1 gfp_flags=GFP_KERNEL",
			free:  "  17034 [000]   432.974427: kmem:mm_page_free: page=0x13bd20 pfn=0x13bd20 order=1",
			comm:  ":17034",
		},
	} {
		s := newSystem(t, mmsim.DefaultConfig())
		var comms []string
		s.Trace(func(e mmsim.Event) {
			if e.Kind == zone.EvPageAlloc {
				comms = append(comms, strings.Fields(e.String())[0])
			}
		})
		text := c.alloc + "\n" + c.stack + "\n" + c.free + "\n" + c.stack + "\n"
		rep, err := s.Replay(strings.NewReader(text), mmsim.ReplayProgress(nil))
		require.NoError(t, err, name)
		require.Zero(t, rep.Malformed, name)
		require.EqualValues(t, 2, rep.Events, name)
		require.EqualValues(t, 2, rep.Replayed, name)
		require.Zero(t, rep.Unpaired, name)
		require.Zero(t, rep.LiveBlocks, name)
		require.Equal(t, []string{c.comm}, comms, name)
	}
}

// chunkReader reads at most n bytes at a time.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }
