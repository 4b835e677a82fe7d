package testutil

import (
	"bufio"
	"compress/gzip"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// PerfEvent is one event line of `perf script` output, split into its parts.
type PerfEvent struct {
	Line   int               // 1-based line number in the input
	Comm   string            // task name; may contain blanks
	TID    int               // thread id
	CPU    int               // the [NNN] field
	Event  string            // "kmem:mm_page_alloc"
	Fields map[string]string // the key=value pairs after the event name
}

// ReadPerf returns every event line of perf-script text; header lines ('#')
// and blank lines are skipped. A line that is not of perf's shape fails the
// test. The comm may contain blanks, so the line is split at the "TID [CPU]"
// pair, as perf itself lays it out.
func ReadPerf(t testing.TB, r io.Reader) []PerfEvent {
	t.Helper()
	var evs []PerfEvent
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if s := strings.TrimSpace(line); s == "" || s[0] == '#' {
			continue
		}
		ev, ok := splitPerfLine(line)
		require.True(t, ok, "line %d is not a perf script event line: %q", n, line)
		ev.Line = n
		evs = append(evs, ev)
	}
	require.NoError(t, sc.Err())
	return evs
}

// ReadPerfFile is ReadPerf on a file, gunzipped when its name ends in .gz.
func ReadPerfFile(t testing.TB, path string) []PerfEvent {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		require.NoError(t, err)
		defer zr.Close()
		r = zr
	}
	return ReadPerf(t, r)
}

func splitPerfLine(line string) (PerfEvent, bool) {
	var ev PerfEvent
	// Find "TID [CPU]": the first "[" preceded by a number.
	open := strings.Index(line, " [")
	for open >= 0 {
		head := strings.TrimRight(line[:open], " ")
		sp := strings.LastIndexByte(head, ' ')
		if tid, err := strconv.Atoi(head[sp+1:]); err == nil && sp >= 0 {
			ev.TID = tid
			ev.Comm = strings.TrimSpace(head[:sp])
			break
		}
		next := strings.Index(line[open+2:], " [")
		if next < 0 {
			return ev, false
		}
		open += 2 + next
	}
	if open < 0 {
		return ev, false
	}
	rest := line[open+2:]
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return ev, false
	}
	cpu, err := strconv.Atoi(rest[:end])
	if err != nil {
		return ev, false
	}
	ev.CPU = cpu
	f := strings.Fields(rest[end+1:])
	// f[0] is the timestamp "356.376714:", f[1] the event name "kmem:mm_page_alloc:".
	if len(f) < 2 || !strings.HasSuffix(f[0], ":") || !strings.HasSuffix(f[1], ":") {
		return ev, false
	}
	ev.Event = strings.TrimSuffix(f[1], ":")
	ev.Fields = make(map[string]string, len(f)-2)
	for _, kv := range f[2:] {
		if k, v, ok := strings.Cut(kv, "="); ok {
			ev.Fields[k] = v
		}
	}
	return ev, true
}

// ReadGzipFile returns the decompressed contents of a .gz file, such as a
// capture of testdata/traces.
func ReadGzipFile(tb testing.TB, path string) []byte {
	tb.Helper()
	f, err := os.Open(path)
	require.NoError(tb, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(tb, err)
	b, err := io.ReadAll(zr)
	require.NoError(tb, err)
	return b
}
