package slab

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/zone"
)

// machine is a 2-CPU, one-node machine of 256 MiB (DMA and DMA32 zones),
// as the zone package's tests build, with a slab allocator on it and a
// log of reports and tracepoint events.
type machine struct {
	pa *zone.Allocator
	s  *Allocator

	mu      sync.Mutex
	reports []bug.Report
	events  []zone.Event
}

func newMachine(tb testing.TB, trace bool) *machine {
	tb.Helper()
	m := &machine{}
	sink := func(r bug.Report) { m.mu.Lock(); m.reports = append(m.reports, r); m.mu.Unlock() }
	cfg := zone.Config{NrCPUs: 2, Sysctl: zone.DefaultSysctl(), Nodes: []zone.NodeConfig{{CPUs: []int{0, 1}, Zones: []zone.ZoneConfig{
		{Type: gfp.ZoneDMA, StartPFN: 1, Spanned: 4095, Present: 3998, Managed: 3840},
		{Type: gfp.ZoneDMA32, StartPFN: 4096, Spanned: 61440, Present: 61440, Managed: 60000},
	}}}}
	pa, err := zone.New(cfg, zone.Options{Report: sink})
	require.NoError(tb, err)
	s, err := New(pa, Options{CPUs: 2, Report: sink})
	require.NoError(tb, err)
	m.pa, m.s = pa, s
	if trace {
		pa.Subscribe(func(ev zone.Event) { m.mu.Lock(); m.events = append(m.events, ev); m.mu.Unlock() })
	}
	return m
}

func (m *machine) takeEvents() []zone.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	ev := m.events
	m.events = nil
	return ev
}

func (m *machine) takeReports() []bug.Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.reports
	m.reports = nil
	return r
}

func (m *machine) slabPages(i zone.NodeStat) int64 { return m.pa.Nodes()[0].State(i) }

func (m *machine) slabinfo(tb testing.TB) string {
	tb.Helper()
	var b strings.Builder
	require.NoError(tb, m.s.WriteSlabinfo(&b))
	return b.String()
}

// slabinfoLine is one parsed /proc/slabinfo line.
type slabinfoLine struct {
	name                                 string
	active, num, objsize, perslab, pages int
	activeSlabs, numSlabs                int
}

func parseSlabinfo(tb testing.TB, text string) []slabinfoLine {
	tb.Helper()
	var out []slabinfoLine
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 16 || f[0] == "#" {
			continue
		}
		n := func(i int) int {
			v, err := strconv.Atoi(f[i])
			require.NoError(tb, err, sc.Text())
			return v
		}
		out = append(out, slabinfoLine{name: f[0], active: n(1), num: n(2), objsize: n(3), perslab: n(4), pages: n(5),
			activeSlabs: n(13), numSlabs: n(14)})
	}
	return out
}

func readTestdata(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(tb, err)
	return string(b)
}
