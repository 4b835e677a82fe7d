package vmalloc

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

const slabMixCapture = "/work/shared/traces/slab_mix.perf.txt.gz"

// firstVmallocLines returns the first real line of each vmalloc event in
// the slab_mix capture.
func firstVmallocLines(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(slabMixCapture)
	if err != nil {
		t.Skipf("capture not available: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	out := map[string]string{}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, ev := range []string{"vmalloc:alloc_vmap_area:", "vmalloc:free_vmap_area_noflush:"} {
			if _, ok := out[ev]; !ok && strings.Contains(line, ev) && !strings.HasPrefix(line, "#") {
				out[ev] = line
			}
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// TestTraceShapes reproduces the slab_mix capture's vmalloc lines: a new
// task's 16 KiB kernel stack (THREAD_SIZE aligned to THREAD_ALIGN) is an
// alloc_vmap_area of size=20480 (the guard page included) align=16384
// over VMALLOC_START..VMALLOC_END, and its free reports nr_lazy (5 pages
// a stack) against nr_lazy_max=16384 on 2 CPUs. The lines must match byte
// for byte once the addresses and nr_lazy, which depend on the machine's
// history, are put in.
//
// Reference: include/trace/events/vmalloc.h; kernel/fork.c:alloc_thread_stack_node(); mm/vmalloc.c:alloc_vmap_area(), free_vmap_area_noflush().
func TestTraceShapes(t *testing.T) {
	real := firstVmallocLines(t)
	m := newMachine(t, Options{})
	var mu sync.Mutex
	var got []zone.Event
	m.a.Subscribe(func(e zone.Event) {
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
	})
	vm := func() []zone.Event {
		mu.Lock()
		defer mu.Unlock()
		var out []zone.Event
		for _, e := range got {
			if e.Kind == zone.EvAllocVmapArea || e.Kind == zone.EvFreeVmapAreaNoflush || e.Kind == zone.EvPurgeVmapAreaLazy {
				out = append(out, e)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		event string
		comm  string
		pid   int
		cpu   int
		time  int64
		fix   func(real string, e zone.Event) string
	}{
		{"a kernel stack's alloc_vmap_area", "vmalloc:alloc_vmap_area:", "python3", 18432, 0, 492382599000,
			func(real string, e zone.Event) string {
				return regexp.MustCompile(`va_start: \d+`).ReplaceAllString(real, fmt.Sprintf("va_start: %d", e.Ptr))
			}},
		{"a kernel stack's free_vmap_area_noflush", "vmalloc:free_vmap_area_noflush:", "kworker/1:2-eve", 11240, 1, 492427587000,
			func(real string, e zone.Event) string {
				s := regexp.MustCompile(`va_start=0x[0-9a-f]+`).ReplaceAllString(real, fmt.Sprintf("va_start=0x%x", e.Ptr))
				return regexp.MustCompile(`nr_lazy=\d+`).ReplaceAllString(s, fmt.Sprintf("nr_lazy=%d", e.NrLazy))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line, ok := real[tc.event]
			require.True(t, ok, "no %s line in the capture", tc.event)
			m.clock.Store(tc.time)
			tk := memalloc.NewTaskWith(tc.comm, memalloc.WithPID(tc.pid), memalloc.WithCPU(tc.cpu))
			mu.Lock()
			got = nil
			mu.Unlock()
			addr, err := m.v.VmallocNode(tk, "kernel_clone+0x94/0x3e0", 16384, 16384, gfp.Kernel|gfp.Zero)
			require.NoError(t, err)
			if tc.event == "vmalloc:free_vmap_area_noflush:" {
				mu.Lock()
				got = nil
				mu.Unlock()
				require.NoError(t, m.v.Vfree(tk, addr))
			}
			evs := vm()
			require.Len(t, evs, 1)
			require.Equal(t, tc.fix(line, evs[0]), evs[0].Format(31))
			if tc.event == "vmalloc:alloc_vmap_area:" {
				require.Equal(t, uint64(20480), evs[0].Size)
				require.Equal(t, uint64(16384), evs[0].Align)
			} else {
				require.Equal(t, uint64(5), evs[0].NrLazy)
				require.Equal(t, uint64(16384), evs[0].NrLazyMax)
			}
		})
	}
	t.Run("a purge reports the span and the areas purged", func(t *testing.T) {
		tk := memalloc.NewTask("t")
		mu.Lock()
		got = nil
		mu.Unlock()
		// The second stack (freed above) sits at the next 16 KiB boundary after the first.
		m.v.purgeVmapAreaLazy(tk)
		evs := vm()
		require.Len(t, evs, 1)
		require.Regexp(t, `vmalloc:purge_vmap_area_lazy: start=0xffffc90000008000 end=0xffffc9000000d000 num_purged=1$`, evs[0].Format(31))
	})
}
