package zone

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

// smallMachine is a 256 MiB machine: a 16 MiB DMA zone like a PC's and a
// DMA32 zone with 60000 managed pages, two CPUs.
func smallMachine() Config {
	return Config{NrCPUs: 2, Sysctl: DefaultSysctl(), Nodes: []NodeConfig{{CPUs: []int{0, 1}, Zones: []ZoneConfig{
		{Type: gfp.ZoneDMA, StartPFN: 1, Spanned: 4095, Present: 3998, Managed: 3840},
		{Type: gfp.ZoneDMA32, StartPFN: 4096, Spanned: 61440, Present: 61440, Managed: 60000},
	}}}}
}

// TestEveryPageComesBack allocates and frees blocks of every pcp order and
// the THP order, drains the pcp lists, and checks that NR_FREE_PAGES is back
// where it booted and that a double free is refused.
func TestEveryPageComesBack(t *testing.T) {
	a, err := New(smallMachine(), Options{})
	require.NoError(t, err)
	dma32 := a.nodes[0].zones[gfp.ZoneDMA32]
	free0 := dma32.FreePages()
	require.Equal(t, int64(60000), free0)
	tk := memalloc.NewTask("t")
	var pages []Page
	var orders []Order
	for i := 0; i < 2000; i++ {
		o := Order(i % 4)
		if i%97 == 0 {
			o = 9
		}
		p, err := a.AllocPages(tk, gfp.Kernel, o)
		require.NoError(t, err)
		pages = append(pages, p)
		orders = append(orders, o)
	}
	for i, p := range pages {
		require.NoError(t, a.FreePages(tk, p, orders[i]))
	}
	a.DrainAllPages(tk)
	require.Equal(t, free0, dma32.FreePages())
	require.Equal(t, int64(3840), a.nodes[0].zones[gfp.ZoneDMA].FreePages())
	t.Logf("min_free_kbytes %d wmarks %d %d %d", a.sysctl.MinFreeKbytes, dma32.Watermark(0), dma32.Watermark(1), dma32.Watermark(2))
	require.ErrorIs(t, a.FreePages(tk, pages[0], orders[0]), ErrBug)
}

// TestInvariantsUnderMixedChurn runs 20,000 random operations with every
// common migratetype on two CPUs, checking invariants every 1,000.
func TestInvariantsUnderMixedChurn(t *testing.T) {
	a, err := New(smallMachine(), Options{})
	require.NoError(t, err)
	require.NoError(t, a.CheckInvariants())
	tk := memalloc.NewTask("t")
	type blk struct {
		p Page
		o Order
	}
	var held []blk
	masks := []gfp.Mask{gfp.Kernel, gfp.HighUserMovable, gfp.Kernel | gfp.Reclaimable, gfp.Atomic, gfp.NoWait}
	seed := uint32(1)
	rnd := func(n int) int { seed = seed*1664525 + 1013904223; return int(seed>>8) % n }
	for i := 0; i < 20000; i++ {
		if len(held) > 0 && rnd(3) == 0 {
			j := rnd(len(held))
			require.NoError(t, a.FreePages(tk, held[j].p, held[j].o))
			held = append(held[:j], held[j+1:]...)
		} else {
			o := Order(rnd(4))
			if rnd(20) == 0 {
				o = Order(4 + rnd(7))
			}
			tk.SetCPU(rnd(2))
			p, err := a.AllocPages(tk, masks[rnd(len(masks))], o)
			if err == nil {
				held = append(held, blk{p, o})
			}
		}
		if i%1000 == 0 {
			require.NoError(t, a.CheckInvariants(), "step %d", i)
		}
	}
	require.NoError(t, a.CheckInvariants())
	for _, b := range held {
		require.NoError(t, a.FreePages(tk, b.p, b.o))
	}
	a.DrainAllPages(tk)
	require.NoError(t, a.CheckInvariants())
	require.Equal(t, int64(60000), a.nodes[0].zones[gfp.ZoneDMA32].FreePages())
}

// TestFastZone checks the fast path's preferred-zone table against
// gfp_zone and first_zones_zonelist worked out from the zonelists, for
// every zone-modifier combination and both zonelists, on a machine with a
// DMA zone and on two nodes (the second without DMA32); then allocates
// through it from the node without DMA32.
//
// Reference: include/linux/gfp.h:gfp_zone(), include/linux/mmzone.h:first_zones_zonelist().
func TestFastZone(t *testing.T) {
	for _, cfg := range []Config{smallMachine(), twoNodes()} {
		a, err := New(cfg, Options{})
		require.NoError(t, err)
		for _, n := range a.nodes {
			for zl := range 2 {
				for zb := range gfp.Mask(16) {
					var want *Zone // nil for a combination gfp_zone refuses
					if hz, err := zb.Zone(); err == nil {
						for _, z := range n.zonelists[zl] {
							if z.typ <= hz {
								want = z
								break
							}
						}
					}
					require.Same(t, want, n.fastZone[zl][zb], "node %d zonelist %d zone bits %#x", n.id, zl, uint32(zb))
				}
			}
		}
	}
	a, err := New(twoNodes(), Options{})
	require.NoError(t, err)
	task := memalloc.NewTaskWith("cpu1", memalloc.WithCPU(1))
	p, err := a.AllocPages(task, gfp.Kernel|gfp.DMA32, 0)
	require.NoError(t, err)
	z := a.ZoneOf(p.PFN())
	require.Equal(t, gfp.ZoneDMA32, z.typ, "GFP_DMA32 from node 1 falls back to node 0's DMA32")
	require.Equal(t, 0, z.node.id)
	_, err = a.AllocPages(task, gfp.Kernel|gfp.DMA32|gfp.ThisNode|gfp.NoWarn, 0)
	require.ErrorIs(t, err, ErrNoMemory, "__GFP_THISNODE: node 1 has no zone at or below DMA32")
	require.NoError(t, a.FreePages(task, p, 0))
}
