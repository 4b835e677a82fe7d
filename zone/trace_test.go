package zone

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
)

// parsePerfLine reads a real perf line into an Event, field by field.
func parsePerfLine(t *testing.T, line string) Event {
	t.Helper()
	var ev Event
	// "%16s %5d [%03d] %12s: %30s: fields"
	ev.Comm = strings.TrimSpace(line[:16])
	pid, err := strconv.Atoi(strings.TrimSpace(line[17:22]))
	require.NoError(t, err)
	ev.PID = pid
	cpu, err := strconv.Atoi(line[24:27])
	require.NoError(t, err)
	ev.CPU = cpu
	sec, usec, _ := strings.Cut(strings.TrimSpace(line[29:41]), ".")
	s, _ := strconv.ParseInt(sec, 10, 64)
	u, _ := strconv.ParseInt(usec, 10, 64)
	ev.Time = s*1e9 + u*1e3
	name := strings.TrimSpace(line[43:73])
	for k := EvPageAlloc; k <= EvPageAllocExtfrag; k++ {
		if k.String() == name {
			ev.Kind = k
		}
	}
	require.NotZero(t, ev.Kind, "unknown event %q", name)
	for _, f := range strings.Fields(line[75:]) {
		k, v, _ := strings.Cut(f, "=")
		n, _ := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64)
		d, _ := strconv.Atoi(v)
		switch k {
		case "pfn":
			ev.PFN = PFN(n)
		case "order":
			ev.Order = Order(d)
		case "migratetype":
			ev.Migratetype = gfp.Migratetype(d)
		case "percpu_refill":
			ev.PercpuRefill = d == 1
		case "gfp_flags":
			m, err := gfp.Parse(v)
			require.NoError(t, err)
			ev.Mask = m
		}
	}
	return ev
}

// TestEventStringMatchesPerf rebuilds each real perf line of the page-event
// sample from its fields and checks that Event.String prints it byte for
// byte: the perf header layout, the kernel's TP_printk field order, page=
// as the pfn, gfp_flags in the kernel's rendering.
//
// Reference: include/trace/events/kmem.h; perf's builtin-script.c.
func TestEventStringMatchesPerf(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "perf_page_events.txt"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	kinds := map[EventKind]int{}
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		ev := parsePerfLine(t, line)
		require.Equal(t, line, ev.String())
		kinds[ev.Kind]++
	}
	require.NoError(t, sc.Err())
	require.Len(t, kinds, 5)

	// A failed allocation prints a NULL page, as the kernel's format does
	// for pfn -1 and perf for a NULL %p.
	failed := Event{Kind: EvPageAlloc, Comm: "t", PID: 1, NoPage: true, Order: 3, Mask: gfp.Kernel}
	require.True(t, strings.HasSuffix(failed.String(), "kmem:mm_page_alloc: page=(nil) pfn=0x0 order=3 migratetype=0 gfp_flags=GFP_KERNEL"))
	// mm_page_alloc_extfrag: the kernel's fragmenting is fallback_order <
	// pageblock_order; perf prints fallback_order's value
	// (../shared/traces/README.md).
	ext := Event{Kind: EvPageAllocExtfrag, Comm: "t", PFN: 0x100, FallbackOrder: 4, Migratetype: mtUnmovable, FallbackMigratetype: mtMovable}
	require.True(t, strings.HasSuffix(ext.String(), "kmem:mm_page_alloc_extfrag: page=0x100 pfn=0x100 alloc_order=0 fallback_order=4 "+
		"pageblock_order=9 alloc_migratetype=0 fallback_migratetype=1 fragmenting=4 change_ownership=0"))
	require.True(t, ext.Fragmenting())
	ext.FallbackOrder = PageblockOrder
	require.False(t, ext.Fragmenting())
	require.Contains(t, ext.String(), " fragmenting=9 ")
}
