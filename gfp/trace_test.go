package gfp_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/testutil"
)

// checkRealEvents checks, for every event of a real kernel's perf capture,
// that its gfp_flags= string parses and prints back identically, and that
// every kmem:mm_page_alloc event's migratetype= is Migratetype() of its
// flags (the tracepoint records the flags after current_gfp_context, and
// ac.migratetype is computed from them). It returns how many events it checked.
//
// Reference: include/trace/events/kmem.h:mm_page_alloc,
// mm/page_alloc.c:prepare_alloc_pages().
func checkRealEvents(t *testing.T, evs []testutil.PerfEvent) (flags, allocs int) {
	t.Helper()
	for _, ev := range evs {
		s, ok := ev.Fields["gfp_flags"]
		if !ok {
			continue
		}
		m, err := gfp.Parse(s)
		require.NoError(t, err, "line %d", ev.Line)
		require.Equal(t, s, m.String(), "line %d: %#x", ev.Line, uint32(m))
		flags++
		if ev.Event != "kmem:mm_page_alloc" {
			continue
		}
		mt, err := strconv.Atoi(ev.Fields["migratetype"])
		require.NoError(t, err, "line %d", ev.Line)
		require.Equal(t, gfp.Migratetype(mt), m.Migratetype(), "line %d: %s", ev.Line, s)
		allocs++
	}
	return flags, allocs
}

// TestRealTraceFlags runs checkRealEvents over the trimmed real-kernel file
// kept in testdata: one line per distinct (event, gfp_flags, migratetype) of
// the four captures.
func TestRealTraceFlags(t *testing.T) {
	evs := testutil.ReadPerfFile(t, filepath.Join("testdata", "perf_gfp_flags.txt"))
	flags, allocs := checkRealEvents(t, evs)
	require.Equal(t, len(evs), flags, "every line of the file carries gfp_flags")
	require.Equal(t, 40, allocs, "the distinct mm_page_alloc lines of the four captures")
}

// TestRealTraceFlagsFull runs checkRealEvents over the whole captures where
// they are: ../shared/traces beside the repository (as on CI), or wherever
// MMSIM_TRACES points. Without them it says so and skips; the trimmed file
// above always runs.
func TestRealTraceFlagsFull(t *testing.T) {
	dir := os.Getenv("MMSIM_TRACES")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "traces")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.perf.txt.gz"))
	if len(files) == 0 {
		t.Skipf("no captures in %s (set MMSIM_TRACES)", dir)
	}
	if testing.Short() {
		t.Skip("the full captures take a few seconds; -short skips them")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			flags, allocs := checkRealEvents(t, testutil.ReadPerfFile(t, f))
			require.NotZero(t, flags)
			t.Logf("%d gfp_flags strings, %d mm_page_alloc migratetypes checked", flags, allocs)
		})
	}
}
