package perfscript

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/internal/testutil"
)

// readCapture returns a decompressed capture of the root's testdata/traces.
func readCapture(tb testing.TB, name string) []byte {
	tb.Helper()
	return testutil.ReadGzipFile(tb, filepath.Join("..", "..", "testdata", "traces", name))
}

func TestParseLineEachKind(t *testing.T) {
	cases := []struct {
		line string
		want Event
	}{
		{"      anon_touch 12317 [001]   356.376714:             kmem:mm_page_alloc: page=0x13e094 pfn=0x13e094 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP",
			Event{Kind: PageAlloc, Comm: []byte("anon_touch"), TID: 12317, CPU: 1, Time: 356376714000, PFN: 0x13e094, Order: 0, Migratetype: 1, GFP: []byte("GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP")}},
		{"              sh 17024 [000]   432.859106:              kmem:mm_page_free: page=0x1f85bd pfn=0x1f85bd order=2",
			Event{Kind: PageFree, Comm: []byte("sh"), TID: 17024, Time: 432859106000, PFN: 0x1f85bd, Order: 2, Migratetype: -1}},
		{"             tar 17034 [000]   432.974426: kmem:mm_page_alloc_zone_locked: page=0x13bd20 pfn=0x13bd20 order=4 migratetype=1 percpu_refill=0",
			Event{Kind: PageAllocZoneLocked, Comm: []byte("tar"), TID: 17034, Time: 432974426000, PFN: 0x13bd20, Order: 4, Migratetype: 1}},
		{" kworker/1:2-eve 11240 [001]   492.427587:  vmalloc:free_vmap_area_noflush: va_start=0xffffc900044e8000 nr_lazy=11891 nr_lazy_max=16384",
			Event{Kind: FreeVmapArea, Comm: []byte("kworker/1:2-eve"), TID: 11240, CPU: 1, Time: 492427587000, VAStart: 0xffffc900044e8000, Migratetype: -1}},
		{"         python3 18432 [000]   492.382599:         vmalloc:alloc_vmap_area: va_start: 18446683600642834432 size=20480 align=16384 vstart=0xffffc90000000000 vend=0xffffe8ffffffffff failed=0",
			Event{Kind: AllocVmapArea, Comm: []byte("python3"), TID: 18432, Time: 492382599000, VAStart: 18446683600642834432, Size: 20480, Migratetype: -1}},
		{" peersbench.test 17238 [000]   492.317759:            kmem:kmem_cache_free: call_site=dequeue_signal+0xd4 ptr=0xffff888104cfa960 name=sigqueue",
			Event{Kind: KmemCacheFree, Comm: []byte("peersbench.test"), TID: 17238, Time: 492317759000, Ptr: 0xffff888104cfa960, Cache: []byte("sigqueue"), CallSite: []byte("dequeue_signal+0xd4"), Migratetype: -1}},
		{"            perf 18431 [001]   492.317791:                      kmem:kfree: call_site=sched_setaffinity+0x160 ptr=(nil)",
			Event{Kind: Kfree, Comm: []byte("perf"), TID: 18431, CPU: 1, Time: 492317791000, CallSite: []byte("sched_setaffinity+0x160"), Migratetype: -1}},
		// A comm with blanks and brackets: "1 [2]" is not "TID [CPU]",
		// since no timestamp follows it.
		{"  Web Content 1 [2] 7 [55] 55.5:    kmem:kmalloc: call_site=f+0x1 ptr=0xffff888102c8ab80 bytes_req=32 bytes_alloc=32 gfp_flags=GFP_KERNEL node=-1 accounted=false",
			Event{Kind: Kmalloc, Comm: []byte("Web Content 1 [2]"), TID: 7, CPU: 55, Time: 55500000000, Ptr: 0xffff888102c8ab80, BytesReq: 32, BytesAlloc: 32, GFP: []byte("GFP_KERNEL"), CallSite: []byte("f+0x1"), Migratetype: -1}},
		// perf script -F +pid: "%7d/%-7d ", the TID second.
		{"             tar   17030/17034   [001]   432.974426: kmem:mm_page_free: page=0x13bd20 pfn=0x13bd20 order=4",
			Event{Kind: PageFree, Comm: []byte("tar"), TID: 17034, CPU: 1, Time: 432974426000, PFN: 0x13bd20, Order: 4, Migratetype: -1}},
		// perf script -F -comm: the line starts with the TID.
		{"  17034 [001]   432.974426: kmem:mm_page_free: page=0x13bd20 pfn=0x13bd20 order=4",
			Event{Kind: PageFree, Comm: []byte{}, TID: 17034, CPU: 1, Time: 432974426000, PFN: 0x13bd20, Order: 4, Migratetype: -1}},
		// perf script -F -cpu: no "[CPU]"; a comm's own colon and digits
		// ("u8:2") are not the timestamp's.
		{"    kworker/u8:2 17034   432.974426: kmem:mm_page_free: page=0x13bd20 pfn=0x13bd20 order=4",
			Event{Kind: PageFree, Comm: []byte("kworker/u8:2"), TID: 17034, CPU: -1, Time: 432974426000, PFN: 0x13bd20, Order: 4, Migratetype: -1}},
		// Neither comm nor CPU, and PID/TID.
		{"  17030/17034     432.974426: kmem:mm_page_free: page=0x13bd20 pfn=0x13bd20 order=4",
			Event{Kind: PageFree, Comm: []byte{}, TID: 17034, CPU: -1, Time: 432974426000, PFN: 0x13bd20, Order: 4, Migratetype: -1}},
		// A "[" in the comm of a line without CPU.
		{"   Web [Content] x 7 55.5: kmem:mm_page_free: page=0x1 pfn=0x1 order=0",
			Event{Kind: PageFree, Comm: []byte("Web [Content] x"), TID: 7, CPU: -1, Time: 55500000000, PFN: 1, Migratetype: -1}},
		// A comm ending in a number, without CPU: a TID of 5 digits is
		// no -L CPU.
		{"    Web Content 2   17034   432.974426: kmem:mm_page_free: page=0x1 pfn=0x1 order=0",
			Event{Kind: PageFree, Comm: []byte("Web Content 2"), TID: 17034, CPU: -1, Time: 432974426000, PFN: 1, Migratetype: -1}},
		// ...but with a TID of at most 4 digits it reads as -L's "TID
		// CPU": the documented ambiguity.
		{"        worker 2   1234   1.500000: kmem:mm_page_free: page=0x1 pfn=0x1 order=0",
			Event{Kind: PageFree, Comm: []byte("worker"), TID: 2, CPU: 1234, Time: 1500000000, PFN: 1, Migratetype: -1}},
		// perf script -L: "%8.8s %7d %3d ", the CPU bare; with +pid.
		{"     tar   17034   5   432.974426: kmem:mm_page_free: page=0x13bd20 pfn=0x13bd20 order=4",
			Event{Kind: PageFree, Comm: []byte("tar"), TID: 17034, CPU: 5, Time: 432974426000, PFN: 0x13bd20, Order: 4, Migratetype: -1}},
		{"kworker/   17030/17034    12   432.974426: kmem:mm_page_free: page=0x13bd20 pfn=0x13bd20 order=4",
			Event{Kind: PageFree, Comm: []byte("kworker/"), TID: 17034, CPU: 12, Time: 432974426000, PFN: 0x13bd20, Order: 4, Migratetype: -1}},
	}
	for _, c := range cases {
		var ev Event
		err := ParseLine([]byte(c.line), &ev)
		require.NoError(t, err, c.line)
		ev.Name, ev.Fields = nil, nil
		require.Equal(t, c.want, ev, c.line)
	}
}

func TestParseLineMalformed(t *testing.T) {
	for _, l := range []string{
		"garbage",
		"sh 12 [000] x: kmem:mm_page_free: pfn=0x1 order=0",
		"sh 12 [000] 1.0: kmem:mm_page_free: pfn=0xzz order=0",
		"sh 12 [000] 1.0: kmem:mm_page_free: order=0",
		"sh 12 [000] 1.0: kmem:mm_page_alloc: pfn=0x1 order=0 migratetype=1",
		"sh 12 [0x] 1.0: kmem:mm_page_free: pfn=0x1 order=0",
		"sh 12 [000] 1.0: nocolon",
		"sh /12 [000] 1.0: kmem:mm_page_free: pfn=0x1 order=0",
		"sh 1x/12 [000] 1.0: kmem:mm_page_free: pfn=0x1 order=0",
		"sh 12 1.0 kmem:mm_page_free: pfn=0x1 order=0",
		"sh 12 1.0.1: kmem:mm_page_free: pfn=0x1 order=0",
		"sh12 1.0: kmem:mm_page_free: pfn=0x1 order=0",
		"sh x1 1.0: kmem:mm_page_free: pfn=0x1 order=0",
		"sh 12 :1.0 kmem:mm_page_free: pfn=0x1 order=0",
	} {
		var ev Event
		err := ParseLine([]byte(l), &ev)
		require.Error(t, err, l)
		require.True(t, errors.Is(err, ErrMalformed), l)
	}
}

// TestTimestamps: the six-digit fraction read in one word, the nine of
// perf script --ns, and fractions that are not all digits.
func TestTimestamps(t *testing.T) {
	for line, want := range map[string]int64{
		"sh 1 [000] 432.870411: kmem:mm_page_free: page=0x1 pfn=0x1 order=0":      432870411000,
		"sh 1 [000] 0.000009: kmem:mm_page_free: page=0x1 pfn=0x1 order=0":        9000,
		"sh 1 [000] 432.870411123: kmem:mm_page_free: page=0x1 pfn=0x1 order=0":   432870411123,
		"sh 1 [000] 432.87: kmem:mm_page_free: page=0x1 pfn=0x1 order=0":          432870000000,
		"sh 1 [000] 432: kmem:mm_page_free: page=0x1 pfn=0x1 order=0":             432000000000,
		"sh 1 [7] 99999999.999999: kmem:mm_page_free: page=0x1 pfn=0x1 order=0":   99999999999999000,
		"sh 1 [7] 9223372035.999999: kmem:mm_page_free: page=0x1 pfn=0x1 order=0": 9223372035999999000,
		"sh 1 [  12] 1.000001: kmem:mm_page_free: page=0x1 pfn=0x1 order=0":       1000001000,
		"sh 1 [1234] 1.100000: kmem:mm_page_free: page=0x1 pfn=0x1 order=0":       1100000000,
	} {
		var ev Event
		require.NoError(t, ParseLine([]byte(line), &ev), line)
		require.Equal(t, want, ev.Time, line)
	}
	for _, line := range []string{
		"sh 1 [000] 432.87041/: kmem:mm_page_free: page=0x1 pfn=0x1 order=0",
		"sh 1 [000] 432.8704:1: kmem:mm_page_free: page=0x1 pfn=0x1 order=0",
		"sh 1 [000] 432.a70411: kmem:mm_page_free: page=0x1 pfn=0x1 order=0",
		"sh 1 [000] 432.: kmem:mm_page_free: page=0x1 pfn=0x1 order=0",
		// Past what an int64 of nanoseconds holds.
		"sh 1 [000] 9223372037.000000: kmem:mm_page_free: page=0x1 pfn=0x1 order=0",
	} {
		var ev Event
		require.ErrorIs(t, ParseLine([]byte(line), &ev), ErrMalformed, line)
	}
}

// TestHeadColumns: the column fast path reads what head reads, at every
// '[' of every line of the bundled captures and of lines at its edges,
// and it is the path the captures' lines take.
func TestHeadColumns(t *testing.T) {
	const name = "             kmem:mm_page_free: page=0x1 pfn=0x1 order=0"
	edges := map[string]bool{ // whether the column path reads the line
		"             tar 17034 [000]   432.870411:" + name:    true,
		"              xz     7 [001]     0.000001:" + name:    true,
		"              xz  1234 [123] 12345.999999:" + name:    true,
		"xz 99999 [000] 00432.870411:" + name:                  true,
		"              xz   12345 [000]   432.870411:" + name:  true, // 7.2's "%7d"
		"              xz 123456 [000]   432.870411:" + name:   true,
		"              xz  123456 [000]   432.870411:" + name:  true,
		"              xz 1234567 [000]   432.870411:" + name:  false, // no blank in the column
		"              xz 12345 [000] 123456.870411:" + name:   true,  // an uptime of 28 hours
		"              xz 12345 [000] 1234567.870411:" + name:  true,
		"              xz 12345 [000] 12345678.870411:" + name: false,
		"              xz 12345 [000]  1 3456.870411:" + name:  false,
		"              xz 12345 [000] 12 456.870411:" + name:   false,
		"              xz 12345 [000] 1 34567.870411:" + name:  false,
		"              xz 12345 [000]123456.870411:" + name:    false,
		"              xz 12345 [000]|123456.870411:" + name:   false,
		"              xz 12345 [000]  \x00432.870411:" + name: false,
		"              xz 12345 [000]  123456.870411:" + name:  true, // wider than perf pads it: what head reads
		"              xz  1 23 [000]   432.870411:" + name:    true, // TID 23, as head reads it
		"              xz 12345 [000]   4 2.870411:" + name:    false,
		"              xz 12345 [000]   432.870411123:" + name: false, // --ns
		"              xz 12345 [0a0]   432.870411:" + name:    false,
		"              xz 12345 [000]   432.87041a:" + name:    false,
		"              xz 12345 [000]  |432.870411:" + name:    false,
		"           17030/17034 [000]   432.870411:" + name:    false,
		"              xz 12345 [000]   432.870411" + name:     false,
		"              xz 12345 [000]      .870411:" + name:    false,
		"              xz 123\xb0 [000]   432.870411:" + name:  false,
		"              xz \xb012 [000]   432.870411:" + name:   false,
		"x 1 [000] 1.000000:" + name:                           false, // too near the start
	}
	for line, want := range edges {
		b := skipBlanks([]byte(line))
		k := bytes.IndexByte(b, '[')
		require.Equal(t, want, checkHeadColumns(t, b, k), "%q", line)
	}
	for _, capture := range []string{"page_tar_xz.perf.txt.gz", "page_anon_mmap.perf.txt.gz", "slab_mix_head60k.perf.txt.gz", "memcg_pressure_run1.perf.txt.gz"} {
		events, fast := 0, 0
		for line := range bytes.Lines(readCapture(t, capture)) {
			b := skipBlanks(bytes.TrimSuffix(line, []byte("\n")))
			if len(b) == 0 || b[0] == '#' {
				continue
			}
			events++
			for k := range b {
				if b[k] == '[' && checkHeadColumns(t, b, k) {
					fast++
					break
				}
			}
		}
		// All but the lines of perf's header.
		require.GreaterOrEqual(t, fast, events*99/100, capture)
	}
}

// checkHeadColumns checks that, if the column path reads the head at k,
// head reads it the same, and reports whether it did.
func checkHeadColumns(t testing.TB, b []byte, k int) bool {
	var fast, slow Event
	rest, ok := fast.headColumns(b, k)
	if !ok {
		return false
	}
	want, ok := slow.head(b, k, cpuBracketed)
	require.True(t, ok, "%q: the column path read a head head rejects", b)
	require.Equal(t, string(want), string(rest), "%q", b)
	require.Equal(t, cap(want), cap(rest), "%q", b)
	require.Equal(t, slow.TID, fast.TID, "%q", b)
	require.Equal(t, slow.CPU, fast.CPU, "%q", b)
	require.Equal(t, slow.Time, fast.Time, "%q", b)
	require.Equal(t, string(slow.Comm), string(fast.Comm), "%q", b)
	require.Equal(t, cap(slow.Comm), cap(fast.Comm), "%q: comm cut elsewhere", b)
	return true
}

func TestEightDigits(t *testing.T) {
	le := func(s string) uint64 {
		var u uint64
		for i := len(s) - 1; i >= 0; i-- {
			u = u<<8 | uint64(s[i])
		}
		return u
	}
	for s, want := range map[string]uint64{"00000000": 0, "12345678": 12345678, "99999999": 99999999, "00870411": 870411, "10000000": 10000000} {
		v, ok := eightDigits(le(s))
		require.True(t, ok, s)
		require.Equal(t, want, v, s)
	}
	for _, s := range []string{"1234567/", "1234567:", "a2345678", "1234 678", "\x0012345678"[:8], "12345\xb678"} {
		_, ok := eightDigits(le(s))
		require.False(t, ok, "%q", s)
	}
}

// TestScannerLines: lines split however the reader hands the text over,
// a carriage return before the newline, a last line with no newline, a
// line longer than the read buffer, and one longer than 1 MiB ending the
// scan with bufio.ErrTooLong.
func TestScannerLines(t *testing.T) {
	ev := "sh 1 [000] 1.000000: kmem:mm_page_free: page=0x1 pfn=0x1 order=0"
	long := "sh 1 [000] 1.000001: sched:sched_switch: " + strings.Repeat("x", 300<<10)
	text := "# header\r\n" + ev + "\r\n\n" + long + "\n garbage\n" + ev
	for name, r := range map[string]io.Reader{
		"whole":    strings.NewReader(text),
		"one byte": iotest.OneByteReader(strings.NewReader(text)),
		"data+EOF": iotest.DataErrReader(strings.NewReader(text)),
	} {
		sc := NewScanner(r)
		var kinds []Kind
		var lines []int
		for sc.Scan() {
			kinds = append(kinds, sc.Event().Kind)
			lines = append(lines, sc.Event().Line)
		}
		require.NoError(t, sc.Err(), name)
		require.Equal(t, []Kind{PageFree, Other, PageFree}, kinds, name)
		require.Equal(t, []int{2, 4, 6}, lines, name)
		require.Equal(t, 6, sc.Line(), name)
		n, err := sc.Malformed()
		require.Equal(t, 1, n, name)
		require.ErrorContains(t, err, "line 5: ", name)
		l, err := sc.FirstMalformed()
		require.Equal(t, 5, l, name)
		require.ErrorIs(t, err, ErrMalformed, name)
	}

	sc := NewScanner(strings.NewReader(ev + "\n" + strings.Repeat("y", 1<<20) + "\n" + ev + "\n"))
	require.True(t, sc.Scan())
	require.False(t, sc.Scan())
	require.ErrorIs(t, sc.Err(), bufio.ErrTooLong)
}

// TestScannerCallchains: the stack perf script prints under each event of
// a capture recorded with -g (a tab, the ip padded to 16 columns, the
// symbol and the DSO; a blank line after) is skipped and counted, not
// malformed; a tab-led line that is not a frame still is.
func TestScannerCallchains(t *testing.T) {
	text := "tar 17034 [000]   432.974426: kmem:mm_page_alloc: page=0x13bd20 pfn=0x13bd20 order=0 migratetype=1 gfp_flags=GFP_KERNEL\n" +
		"\tffffffff8133d5a9 __alloc_frozen_pages_noprof+0x2a9 ([kernel.kallsyms])\n" +
		"\tffffffff8133e1c8 alloc_pages_mpol+0x98 ([kernel.kallsyms])\n" +
		"\t    7f0e9c2a1b2c [unknown] (/usr/lib/x86_64-linux-gnu/libc.so.6)\n" +
		"\n" +
		"tar 17034 [000]   432.974427: kmem:mm_page_free: page=0x13bd20 pfn=0x13bd20 order=0\n" +
		"\tffffffff81339e3e __free_frozen_pages+0x1be ([kernel.kallsyms])\n" +
		"\n" +
		"\tnot a frame\n"
	sc := NewScanner(strings.NewReader(text))
	var kinds []Kind
	for sc.Scan() {
		kinds = append(kinds, sc.Event().Kind)
	}
	require.Equal(t, []Kind{PageAlloc, PageFree}, kinds)
	require.Equal(t, 4, sc.Frames())
	n, err := sc.Malformed()
	require.Equal(t, 1, n)
	require.ErrorContains(t, err, "line 9: ")
}

// TestScannerReset scans text in place: the events alias it.
func TestScannerReset(t *testing.T) {
	text := []byte("garbage\n              sh 17024 [000]   432.859106:              kmem:mm_page_free: page=0x1f85bd pfn=0x1f85bd order=2")
	var sc Scanner
	sc.Reset(text)
	require.True(t, sc.Scan())
	ev := sc.Event()
	require.Equal(t, 2, ev.Line)
	require.Equal(t, uint64(0x1f85bd), ev.PFN)
	require.Equal(t, "sh", string(ev.Comm))
	require.Same(t, &text[len(text)-len("kmem:mm_page_free: page=0x1f85bd pfn=0x1f85bd order=2")], &ev.Name[0])
	require.False(t, sc.Scan())
	n, _ := sc.Malformed()
	require.Equal(t, 1, n)
	sc.Reset(text[8:])
	require.True(t, sc.Scan())
	require.Equal(t, 1, sc.Event().Line)
	n, _ = sc.Malformed()
	require.Zero(t, n)
}

// TestSkipFields: the kinds a Scanner skips keep their head, name and raw
// fields, undecoded, even when the fields are malformed; other kinds are
// decoded and checked as before; Reset keeps the set.
func TestSkipFields(t *testing.T) {
	text := []byte(strings.Join([]string{
		"tar 17034 [000]   432.974426: kmem:mm_page_alloc_zone_locked: page=0x13bd20 pfn=0x13bd20 order=4 migratetype=1 percpu_refill=0",
		"tar 17034 [001]   432.974427: kmem:mm_page_pcpu_drain: pfn=0xzz",
		"tar 17034 [000]   432.974428: kmem:mm_page_free: page=0x13bd20 pfn=0x13bd20 order=4",
		"tar 17034 [000]   432.974429: kmem:mm_page_free: pfn=0xzz order=4",
	}, "\n"))
	var sc Scanner
	sc.SkipFields(PageAllocZoneLocked, PagePcpuDrain, NrKinds)
	for range 2 {
		sc.Reset(text)
		require.True(t, sc.Scan())
		ev := sc.Event()
		require.Equal(t, PageAllocZoneLocked, ev.Kind)
		require.Equal(t, "kmem:mm_page_alloc_zone_locked", string(ev.Name))
		require.Equal(t, 17034, ev.TID)
		require.Equal(t, int64(432974426000), ev.Time)
		require.Zero(t, ev.PFN)
		require.Equal(t, "page=0x13bd20 pfn=0x13bd20 order=4 migratetype=1 percpu_refill=0", string(ev.Fields))
		require.True(t, sc.Scan())
		require.Equal(t, PagePcpuDrain, sc.Event().Kind)
		require.Equal(t, 1, sc.Event().CPU)
		require.True(t, sc.Scan())
		require.Equal(t, PageFree, sc.Event().Kind)
		require.Equal(t, uint64(0x13bd20), sc.Event().PFN)
		require.False(t, sc.Scan())
		n, _ := sc.Malformed()
		require.Equal(t, 1, n)
		line, err := sc.FirstMalformed()
		require.Equal(t, 4, line)
		require.ErrorIs(t, err, ErrMalformed)
	}
}

// TestNameEnd: the page events' names matched whole end where the two
// colons say, with the same kind; near misses fall to the general rule.
func TestNameEnd(t *testing.T) {
	for k := Other + 1; k < NrKinds; k++ {
		for _, tail := range []string{": a=1", ":", ":x"} {
			b := []byte(k.String() + tail)
			end, got := nameEnd(b)
			require.Equal(t, len(k.String()), end, string(b))
			require.Equal(t, k, got, string(b))
		}
	}
	for _, c := range []struct {
		name string
		end  int
		k    Kind
	}{
		{"kmem:mm_page_allocx: f=1", 19, Other},
		{"kmem:mm_page_free_batchedx: f", 26, Other},
		{"kmem:mm_page_alloc_zone: f", 23, Other},
		{"kmem:mm_page_alloc", -1, Other},
		{"kmem:mm_page_", -1, Other},
		{"vmscan:mm_vmscan_kswapd_wake: nid=0", 28, Other},
	} {
		end, k := nameEnd([]byte(c.name))
		require.Equal(t, c.end, end, c.name)
		require.Equal(t, c.k, k, c.name)
	}
}

// TestCapturesParse reads every bundled real capture: every event line
// parses, and the counts per tracepoint are the capture's own.
func TestCapturesParse(t *testing.T) {
	want := map[string]map[Kind]int{
		"page_tar_xz.perf.txt.gz":    {PageAlloc: 57841, PageFree: 40637, PageFreeBatched: 33092, PageAllocZoneLocked: 28396, PagePcpuDrain: 21168},
		"page_anon_mmap.perf.txt.gz": {PageAlloc: 33246, PageFree: 33214, PageFreeBatched: 33017, PageAllocZoneLocked: 187, PagePcpuDrain: 120},
	}
	for name, counts := range want {
		sc := NewScanner(bytes.NewReader(readCapture(t, name)))
		got := map[Kind]int{}
		for sc.Scan() {
			got[sc.Event().Kind]++
		}
		require.NoError(t, sc.Err())
		n, first := sc.Malformed()
		require.Zero(t, n, "%s: %v", name, first)
		require.Equal(t, counts, got, name)
	}
	sc := NewScanner(bytes.NewReader(readCapture(t, "slab_mix_head60k.perf.txt.gz")))
	got := map[Kind]int{}
	for sc.Scan() {
		got[sc.Event().Kind]++
	}
	n, first := sc.Malformed()
	require.Zero(t, n, "%v", first)
	for _, k := range []Kind{Kmalloc, Kfree, KmemCacheAlloc, KmemCacheFree, AllocVmapArea, FreeVmapArea, Other} {
		require.Positive(t, got[k], k.String())
	}
}

// BenchmarkParse measures parsing alone: the floor of a replay.
func BenchmarkParse(b *testing.B) {
	data := readCapture(b, "page_tar_xz.perf.txt.gz")
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	events := 0
	for b.Loop() {
		sc := NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			events++
		}
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds()/1e6, "Mevents/s")
}

// BenchmarkLines is the floor under BenchmarkParse: splitting lines only.
func BenchmarkLines(b *testing.B) {
	data := readCapture(b, "page_tar_xz.perf.txt.gz")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
		}
	}
}

// FuzzParseLine: no line panics the parser, and a line it accepts has a
// head it can print back: its comm is a part of the line, its TID and
// time are not negative, its CPU is -1 (no "[CPU]") or more.
func FuzzParseLine(f *testing.F) {
	for _, l := range []string{
		"              sh 17024 [000]   432.858501:             kmem:mm_page_alloc: page=0x1c98da pfn=0x1c98da order=0 migratetype=0 gfp_flags=GFP_KERNEL",
		"    kworker/u8:2 17034   432.974426: kmem:mm_page_free: page=0x13bd20 pfn=0x13bd20 order=4",
		"  17030/17034     432.974426: kmem:mm_page_free: page=0x13bd20 pfn=0x13bd20 order=4",
		"  Web Content 1 [2] 7 [55] 55.5:    kmem:kmalloc: call_site=f+0x1 ptr=0xffff888102c8ab80 bytes_req=32 bytes_alloc=32 gfp_flags=GFP_KERNEL node=-1 accounted=false",
		"sh 1 [000] 432.870411123: kmem:mm_page_free: page=0x1 pfn=0x1 order=0",
		"1 2: a:b:",
	} {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) {
		for k, b := 0, []byte(line); k < len(b); k++ {
			if b[k] == '[' {
				checkHeadColumns(t, b, k)
			}
		}
		var ev Event
		if err := ParseLine([]byte(line), &ev); err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		require.True(t, strings.Contains(line, string(ev.Comm)))
		require.GreaterOrEqual(t, ev.TID, 0)
		require.GreaterOrEqual(t, ev.Time, int64(0))
		require.GreaterOrEqual(t, ev.CPU, -1)
	})
}

// scanned is an Event as a test compares it: its byte slices as where
// they are in the text (or, read through a reader, what they hold).
type scanned struct {
	Kind                                   Kind
	Line, TID, CPU, Order, Migratetype     int
	Time, BytesReq, BytesAlloc             int64
	PFN, Ptr, VAStart, Size                uint64
	Failed                                 bool
	Name, Comm, GFP, Cache, CallSite, Flds view
}

// A view is a byte slice of an Event: nil or not, its offset from the
// text's start and its length (in place), or its bytes (read).
type view struct {
	nonNil   bool
	off, n   int
	contents string
}

// bytes returns what v holds of text.
func (v view) bytes(text []byte) []byte {
	if v.contents != "" {
		return []byte(v.contents)
	}
	return text[v.off : v.off+v.n]
}

// scanAll scans text in place (r nil) or through r, with or without the
// repeat path, and returns its events, the scanner's counts and how many
// lines it read as repeats. It requires that an event Repeated says
// repeats the one before has its comm, TID, CPU and second.
func scanAll(t testing.TB, text []byte, r io.Reader, noRepeat bool) (evs []scanned, counts [4]int, repeats int) {
	var sc Scanner
	if r != nil {
		sc = *NewScanner(r)
	}
	sc.noRepeat = noRepeat
	if r == nil {
		sc.Reset(text)
	}
	v := func(b []byte) view {
		if r != nil {
			return view{nonNil: b != nil, contents: string(b)}
		}
		return view{nonNil: b != nil, off: cap(text) - cap(b), n: len(b)}
	}
	for sc.Scan() {
		ev := sc.Event()
		if sc.Repeated() {
			require.NotEmpty(t, evs)
			last := evs[len(evs)-1]
			require.Equal(t, []any{last.TID, last.CPU, last.Time / 1e9, string(last.Comm.bytes(text))},
				[]any{ev.TID, ev.CPU, ev.Time / 1e9, string(ev.Comm)}, "line %d", ev.Line)
		}
		evs = append(evs, scanned{
			ev.Kind, ev.Line, ev.TID, ev.CPU, ev.Order, ev.Migratetype,
			ev.Time, ev.BytesReq, ev.BytesAlloc, ev.PFN, ev.Ptr, ev.VAStart, ev.Size, ev.Failed,
			v(ev.Name), v(ev.Comm), v(ev.GFP), v(ev.Cache), v(ev.CallSite), v(ev.Fields),
		})
	}
	bad, _ := sc.FirstMalformed()
	m, _ := sc.Malformed()
	return evs, [4]int{sc.Line(), m, bad, sc.Frames()}, sc.repeats
}

// checkRepeats requires that scanning text reads the same events, in
// place and through r (which reads text), with the repeat path as without
// it, and returns the events and how many of them were read as repeats,
// in place.
func checkRepeats(t testing.TB, text []byte, r io.Reader) (events, repeats int) {
	want, wantCounts, _ := scanAll(t, text, nil, true)
	got, counts, repeats := scanAll(t, text, nil, false)
	require.Equal(t, want, got)
	require.Equal(t, wantCounts, counts)
	if r != nil {
		want, wantCounts, _ := scanAll(t, text, bytes.NewReader(text), true)
		got, counts, _ := scanAll(t, text, r, false)
		require.Equal(t, want, got)
		require.Equal(t, wantCounts, counts)
	}
	return len(want), repeats
}

// chunkReader reads n bytes at a time: the Scanner's buffer is refilled,
// moving the line a repeat compares, every few lines.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// TestRepeats: a line read as a repeat of the last line read in perf's
// columns reads as parseLine reads it, in the bundled captures, through a
// reader whose refills move the buffer, and at the edges of what a repeat
// compares; and the captures' lines are mostly read so.
func TestRepeats(t *testing.T) {
	const (
		a  = "             tar 17034 [000]   432.870411:             kmem:mm_page_alloc: page=0x1 pfn=0x1 order=0 migratetype=1 gfp_flags=GFP_KERNEL"
		f  = "             tar 17034 [000]   432.870412:              kmem:mm_page_free: page=0x1 pfn=0x1 order=0"
		f2 = "             tar 17034 [000]   432.870413:              kmem:mm_page_free: page=0x2 pfn=0x2 order=1"
	)
	edges := []struct {
		name    string
		lines   []string
		repeats int
	}{
		{"same head, same name", []string{f, f2}, 1},
		{"same head, another name", []string{a, f, f2}, 2},
		{"a fraction not of digits", []string{f, strings.Replace(f2, "870413", "87041a", 1), f2}, 1},
		{"seven digits of fraction", []string{f, strings.Replace(f2, "870413", "8704139", 1), f2}, 1},
		{"five digits of fraction", []string{f, strings.Replace(f2, "870413", "87041 ", 1), f2}, 1},
		{"no colon after the fraction", []string{f, strings.Replace(f2, "870413:", "870413 ", 1), f2}, 1},
		{"the next second", []string{f, strings.Replace(f2, "432.870413", "433.000001", 1), f2}, 0},
		{"a wider second", []string{
			strings.Replace(f, "  432.", "99999.", 1), strings.Replace(f2, "  432.", "100000.", 1),
			strings.Replace(f2, "  432.", "100000.", 1)}, 1},
		{"another TID", []string{f, strings.Replace(f2, "17034", "17035", 1)}, 0},
		{"another CPU", []string{f, strings.Replace(f2, "[000]", "[001]", 1)}, 0},
		{"another comm, as wide", []string{f, strings.Replace(f2, "tar", "cat", 1)}, 0},
		{"the comm one column wider", []string{f, strings.Replace(f2, "  tar", " btar", 1)}, 0},
		// The blanks before the comm are compared too, not skipped.
		{"one blank more before the comm", []string{f, " " + f2, f2}, 0},
		{"no blanks before the comm", []string{strings.TrimLeft(f, " "), strings.TrimLeft(f2, " ")}, 1},
		{"a comment in the comm's column", []string{f, strings.Replace(f2, "tar", "#ar", 1), f2}, 1},
		{"no fields", []string{strings.Replace(f, " kmem:mm_page_free: page=0x1 pfn=0x1 order=0", "sched:sched_foo:", 1), f2, f2}, 2},
		{"fields after two blanks", []string{f, strings.Replace(f2, ": page", ":  page", 1), f2}, 2},
		{"the name one column on", []string{f, strings.Replace(f2, "  kmem", " kmem:", 1), f2}, 2},
		{"a line ending in the fraction", []string{f, f2[:strings.Index(f2, ":")], f2}, 1},
		{"a line ending at the colon", []string{f, f2[:strings.Index(f2, ":")+1], f2}, 1},
		{"a malformed field", []string{f, strings.Replace(f2, "order=1", "order=x", 1), f2}, 2},
		{"a malformed line between", []string{f, "garbage", f2}, 1},
		{"a comment between", []string{f, "# x", "", f2}, 1},
		{"CRLF", []string{f + "\r", f2 + "\r"}, 1},
		{"a '[' in the comm", []string{
			strings.Replace(f, "    tar", "a [1] 2", 1), strings.Replace(f2, "    tar", "a [1] 2", 1)}, 0},
		{"PID/TID", []string{
			strings.Replace(f, "tar 17034", "1/17034", 1), strings.Replace(f2, "tar 17034", "1/17034", 1)}, 0},
		{"--ns", []string{f[:41] + "123" + f[41:], f2[:41] + "123" + f2[41:]}, 0},
		{"a '[' after the head", []string{f + " [x]", f2 + " [x]"}, 1},
	}
	for _, e := range edges {
		text := []byte(strings.Join(e.lines, "\n"))
		_, repeats := checkRepeats(t, text, chunkReader{bytes.NewReader(text), 7})
		require.Equal(t, e.repeats, repeats, e.name)
	}
	for _, capture := range []string{"page_tar_xz.perf.txt.gz", "page_anon_mmap.perf.txt.gz", "slab_mix_head60k.perf.txt.gz", "memcg_pressure_run1.perf.txt.gz"} {
		text := readCapture(t, capture)
		events, repeats := checkRepeats(t, text, chunkReader{bytes.NewReader(text), 4000})
		require.GreaterOrEqual(t, repeats, events*9/10, capture)
		var sc Scanner
		sc.Reset(text)
		repeated := 0
		for sc.Scan() {
			if sc.Repeated() {
				repeated++
			}
		}
		require.GreaterOrEqual(t, repeated, events*85/100, capture)
	}
}

// FuzzScanRepeats: a text scans to the same events with the repeat path
// as without it.
func FuzzScanRepeats(f *testing.F) {
	f.Add("             tar 17034 [000]   432.870411:             kmem:mm_page_alloc: page=0x1 pfn=0x1 order=0 migratetype=1 gfp_flags=GFP_KERNEL\n" +
		"             tar 17034 [000]   432.870412:              kmem:mm_page_free: page=0x1 pfn=0x1 order=0\n" +
		"             tar 17034 [000]   432.870413:              kmem:mm_page_free: page=0x2 pfn=0x2 order=1\n")
	f.Add("sh 1 [000] 1.000000: a:b: x\nsh 1 [000] 1.000001: a:b: y\nsh 1 [000] 1.000002: a:b:\nsh 1 [000] 1.000003: a:b:  z\n")
	f.Fuzz(func(t *testing.T, text string) {
		checkRepeats(t, []byte(text), chunkReader{strings.NewReader(text), 5})
	})
}

// TestFailed: an allocation event says it failed as the kernel traces a
// failure, with the NULL it returned; frees and successes do not.
func TestFailed(t *testing.T) {
	const head = "             tar 17034 [000]   432.870411: "
	for fields, want := range map[string]bool{
		"kmem:mm_page_alloc: page=(nil) pfn=0x0 order=3 migratetype=1 gfp_flags=GFP_KERNEL":                      true,
		"kmem:mm_page_alloc: page=0x1 pfn=0x1 order=3 migratetype=1 gfp_flags=GFP_KERNEL":                        false,
		"kmem:mm_page_alloc: pfn=0x0 page=(nil) order=3 migratetype=1 gfp_flags=GFP_KERNEL":                      true, // decodeFields
		"kmem:mm_page_alloc: page=0x1 pfn=0x1 order=3 migratetype=1 gfp_flags=GFP_KERNEL x=1":                    false,
		"kmem:mm_page_alloc: page=(nil) pfn=0x0 order=3 migratetype=1 gfp_flags=GFP_KERNEL x=1":                  true,
		"kmem:mm_page_free: page=(nil) pfn=0x0 order=0":                                                          false,
		"kmem:mm_page_alloc_zone_locked: page=(nil) pfn=0x0 order=0 migratetype=1 percpu_refill=1":               false,
		"kmem:kmalloc: call_site=f+0x1 ptr=(nil) bytes_req=32 bytes_alloc=32 gfp_flags=GFP_KERNEL":               true,
		"kmem:kmalloc: call_site=f+0x1 ptr=0x0 bytes_req=32 bytes_alloc=32 gfp_flags=GFP_KERNEL":                 true,
		"kmem:kmalloc: call_site=f+0x1 ptr=0xff bytes_req=32 bytes_alloc=32 gfp_flags=GFP_KERNEL":                false,
		"kmem:kmem_cache_alloc: call_site=f+0x1 ptr=(nil) bytes_req=8 bytes_alloc=8 gfp_flags=GFP_KERNEL name=x": true,
		"kmem:kfree: call_site=f+0x1 ptr=(nil)":                                                                  false,
		"vmalloc:alloc_vmap_area: va_start: 0 size=8192 align=4096 vstart=0x1 vend=0x2 failed=1":                 true,
		"vmalloc:alloc_vmap_area: va_start: 4096 size=8192 align=4096 vstart=0x1 vend=0x2 failed=0":              false,
	} {
		var ev Event
		require.NoError(t, ParseLine([]byte(head+fields), &ev), fields)
		require.Equal(t, want, ev.Failed, fields)
	}
	// A failure after a success, and the reverse, read as repeats.
	text := head + "kmem:mm_page_alloc: page=(nil) pfn=0x0 order=3 migratetype=1 gfp_flags=GFP_KERNEL\n" +
		strings.Replace(head, "411", "412", 1) + "kmem:mm_page_alloc: page=0x8 pfn=0x8 order=3 migratetype=1 gfp_flags=GFP_KERNEL\n" +
		strings.Replace(head, "411", "413", 1) + "kmem:mm_page_alloc: page=(nil) pfn=0x0 order=3 migratetype=1 gfp_flags=GFP_KERNEL\n"
	sc := NewScanner(strings.NewReader(text))
	var got []bool
	for sc.Scan() {
		got = append(got, sc.Event().Failed)
	}
	require.Equal(t, []bool{true, false, true}, got)
	require.Equal(t, 2, sc.repeats)
}

// TestPagePfnText: the pfn is read from the page's digits when its text
// is the same, and from its own otherwise.
func TestPagePfnText(t *testing.T) {
	for fields, want := range map[string]uint64{ // 0: malformed
		"page=0x251fb8 pfn=0x251fb8 order=0":                       0x251fb8,
		"page=0x251fb8 pfn=0x251fb8":                               0, // no order
		"page=0xffffea0004a7ee00 pfn=0x129fb8 order=0":             0x129fb8,
		"page=0x12 pfn=0x1 order=0":                                0x1,
		"page=0x1 pfn=0x12 order=0":                                0x12,
		"page=0x1 pfn=0x1x order=0":                                0,
		"page=0x1 pfn=0x1zorder=0":                                 0,
		"page=0x1x pfn=0x1x order=0":                               0,
		"page= pfn=0x7 order=0":                                    0x7,
		"page=a pfn=0x7 order=0":                                   0x7,
		"page=(nil) pfn=0x7 order=0":                               0x7,
		"page=0X7 pfn=0x7 order=0":                                 0x7,
		"page=0x123456789 pfn=0x123456789 order=0":                 0x123456789,
		"page=0x1234567890abcdef pfn=0x1234567890abcdef order=0":   0x1234567890abcdef,
		"page=0x11234567890abcdef pfn=0x11234567890abcdef order=0": 0,
		"page=0x pfn=0x order=0":                                   0,
		"page=0x1 pfn=0x1":                                         0,
	} {
		var ev Event
		err := ParseLine([]byte("tar 17034 [000] 432.870411: kmem:mm_page_free: "+fields), &ev)
		if want == 0 {
			require.ErrorIs(t, err, ErrMalformed, fields)
			continue
		}
		require.NoError(t, err, fields)
		require.Equal(t, want, ev.PFN, fields)
	}
}
