package mmsim_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// smallConfig is a one-node machine with a 16 MiB DMA zone and a DMA32 zone
// of the given size, fully managed: small enough to exhaust in a test.
func smallConfig(dma32Pages int64) mmsim.Config {
	cfg := mmsim.SmallConfig(dma32Pages, dma32Pages)
	cfg.StallLimit = 15 * time.Second // past the 10 s stall warning, and quick
	return cfg
}

func newSystem(t testing.TB, cfg mmsim.Config) *mmsim.System {
	t.Helper()
	s, err := mmsim.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// state prints what the machine looks like, for before/after comparisons.
func state(t testing.TB, s *mmsim.System) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, s.WriteBuddyinfo(&b))
	require.NoError(t, s.WritePagetypeinfo(&b))
	require.NoError(t, s.WriteZoneinfo(&b))
	require.NoError(t, s.WriteVmstat(&b))
	require.NoError(t, s.CheckInvariants())
	return b.String()
}

// TestDefaultMachine checks the default machine: three populated zones,
// the kernel's boot-time min_free_kbytes, and where the common masks land.
//
// Reference: mm/page_alloc.c:calculate_min_free_kbytes(), include/linux/gfp.h:gfp_zone().
func TestDefaultMachine(t *testing.T) {
	s := newSystem(t, mmsim.DefaultConfig())
	// lowmem = 3840 + 770048 + 1282048 managed pages = 8223744 KiB;
	// int_sqrt(8223744 * 16) = 11470.
	require.Equal(t, int64(11470), s.Sysctl().MinFreeKbytes)
	tk := s.NewTask("init-like")
	require.Equal(t, 1000, tk.PID())
	require.Equal(t, 1, s.NewTask("second").CPU())
	for _, tc := range []struct {
		mask gfp.Mask
		want gfp.ZoneType
	}{
		{gfp.Kernel, gfp.ZoneNormal},
		{gfp.HighUserMovable, gfp.ZoneNormal}, // ZONE_MOVABLE is empty: the walk goes down to Normal
		{gfp.Kernel | gfp.DMA32, gfp.ZoneDMA32},
		{gfp.Kernel | gfp.DMA, gfp.ZoneDMA},
	} {
		p, err := s.AllocPages(tk, tc.mask, 0)
		require.NoError(t, err, "%s", tc.mask)
		require.Equal(t, tc.want, s.ZoneOf(p).Type(), "%s", tc.mask)
		require.NoError(t, s.FreePages(tk, p, 0))
	}
	require.NoError(t, s.CheckInvariants())
}

// TestConfigValidation checks that New lists every invalid field.
func TestConfigValidation(t *testing.T) {
	cfg := mmsim.DefaultConfig()
	cfg.CPUs = 0
	cfg.Sysctl.WatermarkScaleFactor = 0
	cfg.Sysctl.MinFreeKbytes = 1 << 31
	cfg.Sysctl.WatermarkBoostFactor = 1 << 31
	cfg.Sysctl.LowmemReserveRatio[1] = 1 << 31
	cfg.Nodes[0].Zones[1].Managed = cfg.Nodes[0].Zones[1].Present + 1
	_, err := mmsim.New(cfg)
	require.ErrorIs(t, err, mmsim.ErrInvalid)
	for _, want := range []string{"NrCPUs is 0", "WatermarkScaleFactor is 0", "want managed 782337 <= present 782336",
		"MinFreeKbytes is 2147483648: want 0 (the boot rule) to 2147483647",
		"WatermarkBoostFactor is 2147483648: want at most 2147483647",
		"LowmemReserveRatio[1] (DMA32) is 2147483648: want 0 to 2147483647"} {
		require.ErrorContains(t, err, want)
	}
}

// fill allocates blocks of the order with mask until the allocator
// refuses, and returns them.
func fill(t testing.TB, s *mmsim.System, tk *memalloc.Task, mask gfp.Mask, order zone.Order) []zone.Page {
	t.Helper()
	var held []zone.Page
	for {
		p, err := s.AllocPages(tk, mask|gfp.NoWarn, order)
		if err != nil {
			require.ErrorIs(t, err, mmsim.ErrNoMemory)
			return held
		}
		held = append(held, p)
	}
}

// ladderConfig is a machine with one zone, DMA32, of 16384 pages:
// min_free_kbytes int_sqrt(65536*16) = 1024, so min 256, low 320, high 384.
func ladderConfig() mmsim.Config {
	cfg := mmsim.DefaultConfig()
	cfg.Nodes = []mmsim.NodeConfig{{CPUs: []int{0, 1}, Zones: []mmsim.ZoneConfig{
		{Type: gfp.ZoneDMA32, StartPFN: 4096, Spanned: 16384, Present: 16384, Managed: 16384},
	}}}
	return cfg
}

// TestReserveLadder fills the one-zone machine with order-4 GFP_KERNEL
// blocks (order 4 bypasses the pcp lists, so free pages stop right at the
// watermark; no reclaim can help) and measures how much further each
// request goes: GFP_NOWAIT not at all (NON_BLOCK alone does not lower min),
// __GFP_HIGH to min - min/2, GFP_ATOMIC a quarter of that further, an OOM
// victim's share is tested with the OOM killer; PF_MEMALLOC and
// __GFP_MEMALLOC take everything, unless __GFP_NOMEMALLOC.
//
// Reference: mm/page_alloc.c:__zone_watermark_ok(), gfp_to_alloc_flags(),
// __gfp_pfmemalloc_flags().
func TestReserveLadder(t *testing.T) {
	const min = 256
	half := int64(min - min/2)
	for _, tc := range []struct {
		name  string
		flags memalloc.Flags
		mask  gfp.Mask
		mark  int64 // where free pages stop; -1: nowhere (all taken)
	}{
		{"GFP_KERNEL stops at min", 0, gfp.Kernel, min},
		{"GFP_NOWAIT gets no access to the min reserve", 0, gfp.NoWait, min},
		{"__GFP_HIGH while blocking dips to min - min/2", 0, gfp.Kernel | gfp.High, half},
		{"GFP_ATOMIC dips a quarter further", 0, gfp.Atomic, half - half/4},
		{"a PF_MEMALLOC task ignores the watermarks", memalloc.PFMemalloc, gfp.Kernel, -1},
		{"__GFP_MEMALLOC ignores the watermarks", 0, gfp.Kernel | gfp.Memalloc, -1},
		{"__GFP_NOMEMALLOC beats PF_MEMALLOC", memalloc.PFMemalloc, gfp.Kernel | gfp.NoMemalloc, min},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSystem(t, ladderConfig())
			z := s.Nodes()[0].Zone(gfp.ZoneDMA32)
			require.Equal(t, int64(min), z.Watermark(zone.WmarkMin))
			tk := s.NewTask("filler")
			held := fill(t, s, tk, gfp.Kernel, 4)
			require.NotEmpty(t, held)
			// An order-4 request passes while free - 15 > mark.
			require.InDelta(t, float64(min+8), float64(z.FreePages()), 8)
			defer tk.Restore(tk.SaveFlags(tc.flags))
			fill(t, s, tk, tc.mask, 4)
			if tc.mark < 0 {
				require.Zero(t, z.FreePages())
			} else {
				require.InDelta(t, float64(tc.mark+8), float64(z.FreePages()), 8, "free pages %d", z.FreePages())
			}
			require.NoError(t, s.CheckInvariants())
		})
	}
}

// TestBadInputChangesNothing checks that every bad request returns the
// right sentinel and leaves the machine exactly as it was.
//
// Reference: mm/page_alloc.c:__alloc_frozen_pages_noprof() (order check),
// include/linux/gfp.h:gfp_zone() (VM_BUG_ON), free_pages_prepare().
func TestBadInputChangesNothing(t *testing.T) {
	s := newSystem(t, smallConfig(16384))
	tk := s.NewTask("caller")
	p, err := s.AllocPages(tk, gfp.Kernel, 2)
	require.NoError(t, err)
	other, err := mmsim.New(smallConfig(16384))
	require.NoError(t, err)
	before := state(t, s)
	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"order above MAX_PAGE_ORDER", func() error { _, err := s.AllocPages(tk, gfp.Kernel, 11); return err }, mmsim.ErrInvalid},
		{"order above MAX_PAGE_ORDER even with NOFAIL", func() error { _, err := s.AllocPages(tk, gfp.Kernel|gfp.NoFail, 11); return err }, mmsim.ErrInvalid},
		{"a negative order", func() error { _, err := s.AllocPages(tk, gfp.Kernel, -1); return err }, mmsim.ErrInvalid},
		{"a bad zone combination", func() error { _, err := s.AllocPages(tk, gfp.Kernel|gfp.DMA|gfp.DMA32, 0); return err }, mmsim.ErrBug},
		{"both mobility bits", func() error {
			_, err := s.AllocPages(tk, gfp.Kernel|gfp.Movable|gfp.Reclaimable, 0)
			return err
		}, mmsim.ErrInvalid},
		{"a bad zone combination wins over both mobility bits (gfp_zone runs first)", func() error {
			_, err := s.AllocPages(tk, gfp.Kernel|gfp.DMA|gfp.DMA32|gfp.Movable|gfp.Reclaimable, 0)
			return err
		}, mmsim.ErrBug},
		{"both mobility bits, in bulk", func() error {
			_, err := s.AllocPagesBulk(tk, gfp.Kernel|gfp.Movable|gfp.Reclaimable, make([]zone.Page, 4))
			return err
		}, mmsim.ErrInvalid},
		{"a nil task", func() error { _, err := s.AllocPages(nil, gfp.Kernel, 0); return err }, mmsim.ErrInvalid},
		{"a task of another System", func() error { _, err := s.AllocPages(other.NewTask("x"), gfp.Kernel, 0); return err }, mmsim.ErrInvalid},
		{"a task made outside any System", func() error { _, err := s.AllocPages(memalloc.NewTask("x"), gfp.Kernel, 0); return err }, mmsim.ErrInvalid},
		{"a free by a nil task", func() error { return s.FreePages(nil, p, 2) }, mmsim.ErrInvalid},
		{"a free by a task of another System", func() error { return s.FreePages(other.NewTask("x"), p, 2) }, mmsim.ErrInvalid},
		{"a free by a task made outside any System", func() error { return s.FreePages(memalloc.NewTask("x"), p, 2) }, mmsim.ErrInvalid},
		{"free with the wrong order", func() error { return s.FreePages(tk, p, 1) }, mmsim.ErrBug},
		{"free of a tail page", func() error { return s.FreePages(tk, zone.PageOf(p.PFN()+1), 0) }, mmsim.ErrBug},
		{"free of a pfn never handed out", func() error { return s.FreePages(tk, zone.PageOf(p.PFN()+64), 0) }, mmsim.ErrBug},
		{"free of a pfn in no zone", func() error { return s.FreePages(tk, zone.PageOf(1<<40), 0) }, mmsim.ErrBug},
		{"free of an order above MAX_PAGE_ORDER", func() error { return s.FreePages(tk, p, 11) }, mmsim.ErrBug},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			require.ErrorIs(t, err, tc.want)
			require.Equal(t, before, state(t, s), "the machine changed")
		})
	}
	var badZone = errors.Is
	_, err = s.AllocPages(tk, gfp.Kernel|gfp.DMA|gfp.DMA32, 0)
	require.True(t, badZone(err, gfp.ErrBadZone))

	t.Run("a double free", func(t *testing.T) {
		require.NoError(t, s.FreePages(tk, p, 2))
		after := state(t, s)
		require.ErrorIs(t, s.FreePages(tk, p, 2), mmsim.ErrBug)
		require.ErrorContains(t, s.FreePages(tk, p, 2), "double free")
		require.Equal(t, after, state(t, s))
	})
}

// TestOrderWarning checks that an order above MAX_PAGE_ORDER WARNs once,
// and not at all under __GFP_NOWARN (WARN_ON_ONCE_GFP).
//
// Reference: mm/internal.h:WARN_ON_ONCE_GFP().
func TestOrderWarning(t *testing.T) {
	s := newSystem(t, smallConfig(16384))
	tk := s.NewTask("caller")
	_, err := s.AllocPages(tk, gfp.Kernel|gfp.NoWarn, 11)
	require.ErrorIs(t, err, mmsim.ErrInvalid)
	require.Empty(t, s.Reports())
	for range 2 {
		_, err = s.AllocPages(tk, gfp.Kernel, 12)
		require.ErrorIs(t, err, mmsim.ErrInvalid)
	}
	r := s.Reports()
	require.Len(t, r, 1, "WARN_ON_ONCE fires once")
	require.Equal(t, bug.Warn, r[0].Kind)
	require.Contains(t, r[0].Text, "order 12 > MAX_PAGE_ORDER (10)")
}

// TestAllocationFailure checks the error and warn_alloc's report of a
// failed allocation, and its rate limit (one per 10 s of simulated time).
//
// Reference: mm/page_alloc.c:warn_alloc().
func TestAllocationFailure(t *testing.T) {
	s := newSystem(t, smallConfig(16384))
	tk := s.NewTask("dd")
	fill(t, s, tk, gfp.Kernel|gfp.DMA32, 0)
	_, err := s.AllocPages(tk, gfp.Kernel|gfp.DMA32, 3)
	require.ErrorIs(t, err, mmsim.ErrNoMemory)
	require.ErrorContains(t, err, "page allocation failure: order:3, mode:0xcc4(GFP_KERNEL|GFP_DMA32), nodemask=(null)")
	_, err = s.AllocPages(tk, gfp.Kernel|gfp.DMA32, 3)
	require.ErrorIs(t, err, mmsim.ErrNoMemory)
	var allocReports []mmsim.Report
	for _, r := range s.Reports() {
		if r.Kind == bug.Alloc {
			allocReports = append(allocReports, r)
		}
	}
	require.Len(t, allocReports, 1, "rate-limited to one per 10 s")
	text := allocReports[0].Text
	require.True(t, strings.HasPrefix(text, "dd: page allocation failure: order:3, mode:0xcc4(GFP_KERNEL|GFP_DMA32), nodemask=(null),cpuset=/,mems_allowed=0\nMem-Info:\n"), text)
	// warn_alloc shows the zones up to the request's highest, DMA32: no
	// Normal zone line.
	require.Contains(t, text, "\nNode 0 DMA32 free:")
	require.NotContains(t, text, "\nNode 0 Normal free:")
	require.True(t, strings.HasSuffix(text, " pages reserved"), text)
}

// TestNofail checks __GFP_NOFAIL on a machine with nothing that could free
// memory: order > MAX_PAGE_ORDER fails; a non-blocking NOFAIL WARNs and
// fails; a blocking one first takes the min reserve, then would loop for
// ever, which mmsim reports as ErrDeadlock instead of hanging.
//
// Reference: mm/page_alloc.c:__alloc_pages_slowpath() (nopage).
func TestNofail(t *testing.T) {
	s := newSystem(t, smallConfig(16384))
	tk := s.NewTask("writer")
	fill(t, s, tk, gfp.Kernel|gfp.DMA32, 0)

	_, err := s.AllocPages(tk, gfp.NoWait|gfp.NoFail|gfp.DMA32, 0)
	require.ErrorIs(t, err, mmsim.ErrNoMemory, "a non-blocking NOFAIL request can fail")
	var warned bool
	for _, r := range s.Reports() {
		warned = warned || r.Kind == bug.Warn && strings.Contains(r.Text, "cannot direct-reclaim")
	}
	require.True(t, warned)

	more := 0
	for {
		_, err := s.AllocPages(tk, gfp.Kernel|gfp.NoFail|gfp.DMA32, 0)
		if err != nil {
			require.ErrorIs(t, err, mmsim.ErrDeadlock)
			require.NotErrorIs(t, err, mmsim.ErrNoMemory, "a blocking NOFAIL request never returns ErrNoMemory")
			require.ErrorContains(t, err, "__alloc_pages_slowpath")
			break
		}
		more++
	}
	require.Positive(t, more, "blocking NOFAIL first dips into the min reserve (ALLOC_MIN_RESERVE at nopage)")
	require.NoError(t, s.CheckInvariants())

	// A request whose highest zone is Normal reaches __alloc_pages_may_oom,
	// where NOFAIL takes ALLOC_NO_WATERMARKS and reports progress: with
	// nothing left at all, that is the same endless loop.
	fill(t, s, tk, gfp.Kernel|gfp.Memalloc, 0)
	_, err = s.AllocPages(tk, gfp.Kernel|gfp.NoFail, 0)
	require.ErrorIs(t, err, mmsim.ErrDeadlock)
}

// TestKswapdWake checks that an allocation that finds the zone below its
// low watermark wakes kswapd (recorded: the daemon comes with reclaim), and
// that GFP_TRANSHUGE_LIGHT, without __GFP_KSWAPD_RECLAIM, never does.
//
// Reference: mm/page_alloc.c:wake_all_kswapds(), mm/vmscan.c:wakeup_kswapd().
func TestKswapdWake(t *testing.T) {
	s := newSystem(t, smallConfig(16384))
	tk := s.NewTask("filler")
	node := s.Nodes()[0]
	fill(t, s, tk, gfp.TransHugeLight&^gfp.Movable&^gfp.HighMem|gfp.DMA32, 0)
	require.Zero(t, node.KswapdWakes())
	fill(t, s, tk, gfp.Kernel|gfp.DMA32, 0)
	require.Positive(t, node.KswapdWakes())
	order, highest := node.KswapdRequest()
	require.Equal(t, zone.Order(0), order)
	require.Equal(t, gfp.ZoneDMA32, highest)
}

var errorsIs = errors.Is

// TestTaskOnMissingCPU checks that a task moved to a CPU the machine does
// not have is refused by every call, and that nothing panics.
func TestTaskOnMissingCPU(t *testing.T) {
	s := newSystem(t, smallConfig(16384))
	tk := s.NewTask("lost")
	p, err := s.AllocPages(tk, gfp.Kernel, 0)
	require.NoError(t, err)
	before := state(t, s)
	for _, cpu := range []int{2, 99, -1} {
		tk.SetCPU(cpu)
		_, err := s.AllocPages(tk, gfp.Kernel, 0)
		require.ErrorIs(t, err, mmsim.ErrInvalid)
		_, err = s.AllocPagesBulk(tk, gfp.Kernel, make([]zone.Page, 8))
		require.ErrorIs(t, err, mmsim.ErrInvalid)
		require.ErrorIs(t, s.FreePages(tk, p, 0), mmsim.ErrInvalid)
		require.ErrorIs(t, s.FreePagesBatched(tk, []zone.Page{p}), mmsim.ErrInvalid)
		require.Equal(t, before, state(t, s))
	}
	tk.SetCPU(0)
	require.NoError(t, s.FreePages(tk, p, 0))
}

// TestCallsAfterClose checks that Close turns AllocPages and FreePages
// away in the deterministic mode too (no daemons to stop), whichever entry
// they took before, and that the refused free leaves the page allocated.
func TestCallsAfterClose(t *testing.T) {
	s, err := mmsim.New(smallConfig(16384))
	require.NoError(t, err)
	tk := s.NewTask("caller")
	p, err := s.AllocPages(tk, gfp.Kernel, 0)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = s.AllocPages(tk, gfp.Kernel, 0)
	require.ErrorIs(t, err, mmsim.ErrClosed)
	require.ErrorIs(t, s.FreePages(tk, p, 0), mmsim.ErrClosed)
	require.ErrorIs(t, s.FreePages(nil, p, 0), mmsim.ErrClosed, "after Close, Close is the reason")
	require.NoError(t, s.Close(), "a second Close is a no-op")
	require.NoError(t, s.CheckInvariants())
	var buf bytes.Buffer
	require.NoError(t, s.WriteVmstat(&buf))
	require.Contains(t, buf.String(), "\npgfree 0\n", "the refused free freed nothing")
}

// TestForeignTaskEitherEntry checks that a task another System created is
// refused in the same words whichever way AllocPages and FreePages reach
// the page allocator: straight (a plain machine) or through the System's
// wrapper (here, with latency recording on).
func TestForeignTaskEitherEntry(t *testing.T) {
	s := newSystem(t, smallConfig(16384))
	other := newSystem(t, smallConfig(16384))
	stranger := other.NewTask("stranger")
	p, err := s.AllocPages(s.NewTask("owner"), gfp.Kernel, 0)
	require.NoError(t, err)
	refusals := func() (string, string) {
		_, errA := s.AllocPages(stranger, gfp.Kernel, 0)
		errF := s.FreePages(stranger, p, 0)
		require.ErrorIs(t, errA, mmsim.ErrInvalid)
		require.ErrorIs(t, errF, mmsim.ErrInvalid)
		return errA.Error(), errF.Error()
	}
	directA, directF := refusals()
	s.EnableLatency(false)
	wrappedA, wrappedF := refusals()
	require.Equal(t, directA, wrappedA)
	require.Equal(t, directF, wrappedF)
	require.Contains(t, directA, "task stranger")
}
