package vmalloc

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// directMap is where the fake slab's objects live (the x86_64 direct map).
const directMap uint64 = 0xffff888000000000

// fakeSlab is a kmalloc that hands out direct-map addresses, records the
// masks it is called with, and fails when fail says so.
type fakeSlab struct {
	mu    sync.Mutex
	next  uint64
	live  map[uint64]int
	calls []kcall
	fail  func(size int, mask gfp.Mask) bool
}

type kcall struct {
	size int
	mask gfp.Mask
}

func newFakeSlab() *fakeSlab { return &fakeSlab{live: map[uint64]int{}} }

func (s *fakeSlab) Kmalloc(t *memalloc.Task, size int, mask gfp.Mask) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, kcall{size, mask})
	if s.fail != nil && s.fail(size, mask) {
		return 0, fmt.Errorf("%w: fake kmalloc of %d bytes", zone.ErrNoMemory, size)
	}
	s.next += 1 << 20
	addr := directMap + s.next
	s.live[addr] = size
	return addr, nil
}

func (s *fakeSlab) Kfree(t *memalloc.Task, addr uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live[addr]; !ok {
		return fmt.Errorf("%w: fake kfree of %#x", zone.ErrBug, addr)
	}
	delete(s.live, addr)
	return nil
}

func (s *fakeSlab) nlive() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

func (s *fakeSlab) masks() []kcall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]kcall(nil), s.calls...)
}

// hooks records every page allocation's final mask and the task's flags
// then, and fails those fail selects.
type hooks struct {
	mu    sync.Mutex
	seen  []hookCall
	fail  func(mask gfp.Mask, order zone.Order) bool
	fails atomic.Int64
}

type hookCall struct {
	mask  gfp.Mask
	flags memalloc.Flags
}

func (h *hooks) MightAlloc(t *memalloc.Task, mask gfp.Mask) {
	h.mu.Lock()
	h.seen = append(h.seen, hookCall{mask, t.Flags()})
	h.mu.Unlock()
}

func (h *hooks) ShouldFailAlloc(t *memalloc.Task, mask gfp.Mask, order zone.Order) bool {
	h.mu.Lock()
	f := h.fail
	h.mu.Unlock()
	if f != nil && f(mask, order) {
		h.fails.Add(1)
		return true
	}
	return false
}

func (h *hooks) PostAlloc(*memalloc.Task, zone.Page, zone.Order, gfp.Mask) {}
func (h *hooks) FreePrepare(*memalloc.Task, zone.Page, zone.Order)         {}

func (h *hooks) setFail(f func(gfp.Mask, zone.Order) bool) {
	h.mu.Lock()
	h.fail = f
	h.mu.Unlock()
}

// pageTableCalls returns the recorded allocations that were page-table
// pages: GFP_PGTABLE_KERNEL under some scope, never __GFP_HIGHMEM (the
// data pages always have it).
func (h *hooks) pageTableCalls() []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookCall
	for _, c := range h.seen {
		if c.mask&gfp.HighMem == 0 && c.mask&gfp.Zero != 0 {
			out = append(out, c)
		}
	}
	return out
}

func (h *hooks) reset() {
	h.mu.Lock()
	h.seen = nil
	h.mu.Unlock()
}

// machine is a booted page allocator with the vmalloc layer on top.
type machine struct {
	a       *zone.Allocator
	v       *Allocator
	slab    *fakeSlab
	hooks   *hooks
	clock   atomic.Int64
	sleeps  atomic.Int64
	mu      sync.Mutex
	reports []bug.Report
}

// newMachine boots 2 CPUs with 63,840 managed pages (DMA and DMA32), as
// zone's smallMachine.
func newMachine(tb testing.TB, opts Options) *machine {
	tb.Helper()
	m := &machine{slab: newFakeSlab(), hooks: &hooks{}}
	cfg := zone.Config{NrCPUs: 2, Sysctl: zone.DefaultSysctl(), Nodes: []zone.NodeConfig{{CPUs: []int{0, 1}, Zones: []zone.ZoneConfig{
		{Type: gfp.ZoneDMA, StartPFN: 1, Spanned: 4095, Present: 3998, Managed: 3840},
		{Type: gfp.ZoneDMA32, StartPFN: 4096, Spanned: 61440, Present: 61440, Managed: 60000},
	}}}}
	report := func(r bug.Report) {
		m.mu.Lock()
		m.reports = append(m.reports, r)
		m.mu.Unlock()
	}
	now := func() int64 { return m.clock.Load() }
	sleep := func(d int64) { m.sleeps.Add(1); m.clock.Add(d) }
	a, err := zone.New(cfg, zone.Options{Report: report, Now: now, Sleep: sleep})
	require.NoError(tb, err)
	a.SetHooks(m.hooks)
	if opts.CPUs == 0 {
		opts.CPUs = 2
	}
	opts.Report, opts.Now, opts.Sleep = report, now, sleep
	m.a = a
	m.v = New(a, m.slab, opts)
	return m
}

// texts returns the reports' texts whose kind is k.
func (m *machine) texts(k bug.Kind) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range m.reports {
		if r.Kind == k {
			out = append(out, r.Text)
		}
	}
	return out
}

// warnAllocs returns the warn_alloc messages, cut before ", mode:".
func (m *machine) warnAllocs() []string {
	var out []string
	for _, s := range m.texts(bug.Alloc) {
		if i := strings.Index(s, ", mode:"); i >= 0 {
			s = s[:i]
		}
		if i := strings.Index(s, ": "); i >= 0 {
			s = s[i+2:] // drop the comm
		}
		out = append(out, s)
	}
	return out
}

func (m *machine) nodeStat(i zone.NodeStat) int64 { return m.a.Nodes()[0].State(i) }

func (m *machine) freePages() int64 {
	n := m.a.Nodes()[0]
	return n.Zone(gfp.ZoneDMA).FreePages() + n.Zone(gfp.ZoneDMA32).FreePages()
}

func (m *machine) vmallocinfo(tb testing.TB) string {
	var b strings.Builder
	require.NoError(tb, m.v.WriteVmallocinfo(&b))
	return b.String()
}
