package zone

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

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

// TestBadOrder0Frees checks the order-0 frees FreePages's common case must
// turn away, each on a page it would otherwise put on a pcp list: a double
// free while the page is on a per-cpu list and after it went back to the
// buddy lists, the tail page of an order-1 block, and a page of an order-1
// block freed as order 0. Each is a BUG and changes nothing.
//
// Reference: mm/page_alloc.c:free_pages_prepare() (free_page_is_bad, the
// PageBuddy check of __free_one_page).
func TestBadOrder0Frees(t *testing.T) {
	a, err := New(smallMachine(), Options{})
	require.NoError(t, err)
	tk := memalloc.NewTask("t")
	p, err := a.AllocPages(tk, gfp.Kernel, 0)
	require.NoError(t, err)
	pair, err := a.AllocPages(tk, gfp.Kernel, 1)
	require.NoError(t, err)
	refused := func(p Page, order Order, text string) {
		t.Helper()
		before := pcpState(a)
		err := a.FreePages(tk, p, order)
		require.ErrorIs(t, err, ErrBug)
		require.ErrorContains(t, err, text)
		require.Equal(t, before, pcpState(a), "the refused free changed the machine")
	}
	require.NoError(t, a.FreePages(tk, p, 0))
	refused(p, 0, "double free: the page is free, on a per-cpu list")
	refused(PageOf(pair.PFN()+1), 0, "the page heads no allocated block")
	refused(pair, 0, "the block was allocated with order 1")
	a.DrainAllPages(tk)
	refused(p, 0, "double free: the page is free, on the buddy lists")
	require.NoError(t, a.FreePages(tk, pair, 1))
	require.NoError(t, a.CheckInvariants())
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
		for cpu, n := range a.cpuNode {
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
					mask := zb
					if zl == 1 {
						mask |= gfp.ThisNode
					}
					r := a.routes[cpu][routeIndex(mask)]
					require.Same(t, want, r.z, "CPU %d zonelist %d zone bits %#x", cpu, zl, uint32(zb))
					if want != nil {
						require.Same(t, &want.pcp[cpu], r.p, "CPU %d zonelist %d zone bits %#x", cpu, zl, uint32(zb))
						require.Equal(t, want.node == n, r.p.local, "CPU %d zonelist %d zone bits %#x", cpu, zl, uint32(zb))
					}
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

// TestOwner checks Options.Owner: every entry that takes a task refuses one
// created for another owner, or for none, with ErrInvalid and changes
// nothing; the owner's own tasks are served.
func TestOwner(t *testing.T) {
	var mine, theirs memalloc.Owner
	a, err := New(smallMachine(), Options{Owner: &mine})
	require.NoError(t, err)
	require.Same(t, &mine, a.Owner())
	tk := memalloc.NewTaskWith("mine", memalloc.WithOwner(&mine))
	p, err := a.AllocPages(tk, gfp.Kernel, 0)
	require.NoError(t, err)
	free := a.nodes[0].zones[gfp.ZoneDMA32].FreePages()
	for _, stranger := range []*memalloc.Task{
		memalloc.NewTaskWith("theirs", memalloc.WithOwner(&theirs)),
		memalloc.NewTask("nobody's"),
	} {
		_, err := a.AllocPages(stranger, gfp.Kernel, 0)
		require.ErrorIs(t, err, ErrInvalid)
		require.ErrorContains(t, err, "belongs to another machine")
		require.ErrorIs(t, a.FreePages(stranger, p, 0), ErrInvalid)
		_, err = a.AllocPagesBulk(stranger, gfp.Kernel, make([]Page, 4))
		require.ErrorIs(t, err, ErrInvalid)
		require.ErrorIs(t, a.FreePagesBatched(stranger, []Page{p}), ErrInvalid)
		require.ErrorIs(t, a.FreePagesBatched(stranger, nil), ErrInvalid, "an empty batch too")
		_, err = a.Explain(stranger, gfp.Kernel, 0, ExplainOptions{})
		require.ErrorIs(t, err, ErrInvalid)
	}
	require.Equal(t, free, a.nodes[0].zones[gfp.ZoneDMA32].FreePages(), "the refusals changed nothing")
	require.NoError(t, a.FreePages(tk, p, 0))
	require.NoError(t, a.CheckInvariants())
}

// allocGeneral is AllocPages by its general path alone: allocEntrySlow
// without allocPCPOrder, for the tests that run the fast paths against it.
func (a *Allocator) allocGeneral(t *memalloc.Task, mask gfp.Mask, order Order) (Page, error) {
	if t == nil || t.Owner() != a.opts.Owner || uint(t.CPU()) >= uint(len(a.cpuNode)) || uint(order) > uint(MaxPageOrder) {
		return Page{}, a.refuseRequest(t, mask, order)
	}
	return a.allocSlow(t, mask, t.GFPContext(mask&a.allowedMask), order)
}

// TestFastPaths checks the written-out common cases of AllocPages and
// FreePages against the general code they shortcut. Two identical machines
// run the same random allocations and frees; one goes through AllocPages
// and FreePages, the other through allocGeneral (prepare_alloc_pages and
// get_page_from_freelist in full) and freeSlow (checkFree, freePrepare and
// freeChecked). After every step their pcp lists and zones must agree field
// for field. The steps drive every condition of the shortcuts: lists
// filling to pcp->high and draining, pcp->high pushed outside its bounds
// (as a new percpu_pagelist_high_fraction leaves it until nr_pcp_high
// clamps it), ZONE_BELOW_HIGH and ZONE_RECLAIM_ACTIVE, order 1-3 blocks in
// between (PCPF_PREV_FREE_HIGH_ORDER, free_high), movable pages,
// highatomic and isolated pageblocks, free_count at its cap, a task in a
// memalloc_pin_save scope (which takes __GFP_MOVABLE away), and a pcp lock
// another goroutine holds when the call comes (the shortcut's trylock
// fails, and the general code waits).
//
// Reference: mm/page_alloc.c:rmqueue_pcplist(), free_frozen_page_commit(),
// nr_pcp_high(); include/linux/sched/mm.h:current_gfp_context().
func TestFastPaths(t *testing.T) {
	boot := func() *Allocator {
		a, err := New(smallMachine(), Options{})
		require.NoError(t, err)
		return a
	}
	fast, general := boot(), boot()
	type blk struct {
		p     Page
		order Order
	}
	tasks := func() []*memalloc.Task {
		return []*memalloc.Task{
			memalloc.NewTaskWith("cpu0", memalloc.WithCPU(0)),
			memalloc.NewTaskWith("cpu1", memalloc.WithCPU(1)),
		}
	}
	ft, gt := tasks(), tasks()
	masks := []gfp.Mask{gfp.Kernel, gfp.HighUserMovable, gfp.Kernel | gfp.Reclaimable, gfp.User | gfp.Movable}
	rng := rand.New(rand.NewPCG(7, 7))
	var held []blk
	both := func(f func(z *Zone)) {
		f(fast.nodes[0].zones[gfp.ZoneDMA32])
		f(general.nodes[0].zones[gfp.ZoneDMA32])
	}
	// contend holds the fast machine's pcp lock of a CPU from another
	// goroutine for a moment, from now.
	contend := func(cpu int) {
		pc := &fast.nodes[0].zones[gfp.ZoneDMA32].pcp[cpu]
		pc.mu.Lock()
		time.AfterFunc(200*time.Microsecond, pc.mu.Unlock)
	}
	freeBoth := func(cpu int, p Page, order Order) {
		if rng.IntN(200) == 0 {
			contend(cpu)
		}
		require.NoError(t, fast.FreePages(ft[cpu], p, order))
		require.NoError(t, general.freeSlow(gt[cpu], p, order))
	}
	allocBoth := func(step, cpu int, mask gfp.Mask, order Order) (Page, bool) {
		if rng.IntN(20) == 0 {
			fc, gc := ft[cpu].SavePin(), gt[cpu].SavePin()
			defer ft[cpu].Restore(fc)
			defer gt[cpu].Restore(gc)
		}
		if rng.IntN(200) == 0 {
			contend(cpu)
		}
		pf, errF := fast.AllocPages(ft[cpu], mask, order)
		pg, errG := general.allocGeneral(gt[cpu], mask, order)
		require.Equal(t, errF == nil, errG == nil, "step %d", step)
		require.Equal(t, pf, pg, "step %d", step)
		return pf, errF == nil
	}
	for step := range 60000 {
		switch r := rng.IntN(1000); {
		case r < 3: // pcp->high outside [high_min, high_max], both ways
			cpu, up := rng.IntN(2), rng.IntN(2) == 0
			both(func(z *Zone) {
				pc := &z.pcp[cpu]
				if up {
					pc.high = pc.highMax + 7
				} else {
					pc.high = pc.highMin - 1
				}
			})
		case r < 6: // reclaim starts or stops, the zone crosses its high watermark
			bit := [2]uint32{zoneReclaimActive, zoneBelowHigh}[rng.IntN(2)]
			on := rng.IntN(2) == 0
			both(func(z *Zone) {
				if on {
					z.flags.Or(bit)
				} else {
					z.flags.And(^bit)
				}
			})
		case r < 8: // a pageblock changes type under allocated pages
			if len(held) == 0 {
				continue
			}
			pfn, claim, to := held[rng.IntN(len(held))].p.PFN(), rng.IntN(2) == 0, gfp.Migratetype(rng.IntN(gfp.MigratePCPTypes))
			both(func(z *Zone) {
				z.mu.Lock()
				defer z.mu.Unlock()
				// No unreserve: giving a reserve back can leave two
				// free order-9 buddies unmerged, as the kernel can,
				// which CheckInvariants does not allow.
				if old := z.blockMT(pfn); !claim {
					z.reserveHighatomicLocked(pfn, 0)
				} else if int(old) < gfp.MigratePCPTypes {
					z.moveFreepagesBlockType(pfn, old, to) // steal_suitable_fallback's claim
				}
			})
		case r < 10: // a burst of frees on one CPU, to fill its lists to pcp->high
			cpu, mask := rng.IntN(2), masks[rng.IntN(len(masks))]
			var burst []Page
			for range 200 + rng.IntN(1000) {
				if p, ok := allocBoth(step, cpu, mask, 0); ok {
					burst = append(burst, p)
				}
			}
			for _, p := range burst {
				freeBoth(cpu, p, 0)
			}
			require.Equal(t, pcpState(fast), pcpState(general), "step %d", step)
		case r < 500 || len(held) == 0:
			order := Order(0)
			if rng.IntN(10) == 0 {
				order = Order(1 + rng.IntN(3))
			}
			mask, cpu := masks[rng.IntN(len(masks))], rng.IntN(2)
			if p, ok := allocBoth(step, cpu, mask, order); ok {
				held = append(held, blk{p, order})
			}
		default:
			i := rng.IntN(len(held))
			b := held[i]
			held[i] = held[len(held)-1]
			held = held[:len(held)-1]
			freeBoth(rng.IntN(2), b.p, b.order) // not always on the allocating CPU
		}
		if step%64 == 0 || step < 2000 {
			require.Equal(t, pcpState(fast), pcpState(general), "step %d", step)
		}
	}
	require.Equal(t, pcpState(fast), pcpState(general))
	require.NoError(t, fast.CheckInvariants())
	require.NoError(t, general.CheckInvariants())
}

// TestFastPathsTwoNodes runs the fast paths against the general code on two
// nodes, where node 1 has no DMA32: a GFP_DMA32 request from node 1's CPU
// is served by node 0 (zone_statistics counts it numa_other), and with a
// reclaimer whose kswapd of node 0 is running, get_page_from_freelist
// leaves node 0 for a second pass, which the fast path must not shortcut.
//
// Reference: mm/page_alloc.c:get_page_from_freelist(), zone_statistics().
func TestFastPathsTwoNodes(t *testing.T) {
	for _, kswapd := range []bool{false, true} {
		t.Run(fmt.Sprintf("kswapd of node 0 running=%v", kswapd), func(t *testing.T) {
			boot := func() *Allocator {
				a, err := New(twoNodes(), Options{})
				require.NoError(t, err)
				if kswapd {
					f := &explainFake{a: a, kswapdRunning: map[int]bool{0: true}, victims: map[*memalloc.Task]bool{}}
					a.SetSlowPath(SlowPath{Reclaim: f, Compact: f, OOM: f})
				}
				return a
			}
			fast, general := boot(), boot()
			task := func(cpu int) *memalloc.Task { return memalloc.NewTaskWith("t", memalloc.WithCPU(cpu)) }
			ft, gt := []*memalloc.Task{task(0), task(1)}, []*memalloc.Task{task(0), task(1)}
			masks := []gfp.Mask{gfp.Kernel, gfp.Kernel | gfp.DMA32, gfp.HighUserMovable, gfp.Kernel | gfp.ThisNode}
			rng := rand.New(rand.NewPCG(3, 3))
			var held []Page
			for step := range 4000 {
				cpu := rng.IntN(2)
				if rng.IntN(2) == 0 || len(held) == 0 {
					mask := masks[rng.IntN(len(masks))]
					pf, errF := fast.AllocPages(ft[cpu], mask, 0)
					pg, errG := general.allocGeneral(gt[cpu], mask, 0)
					require.Equal(t, errF == nil, errG == nil, "step %d", step)
					require.Equal(t, pf, pg, "step %d: %s from CPU %d", step, mask, cpu)
					held = append(held, pf)
					continue
				}
				i := rng.IntN(len(held))
				p := held[i]
				held[i] = held[len(held)-1]
				held = held[:len(held)-1]
				require.NoError(t, fast.FreePages(ft[cpu], p, 0))
				require.NoError(t, general.freeSlow(gt[cpu], p, 0))
			}
			require.Equal(t, pcpState(fast), pcpState(general))
		})
	}
}

// pcpState prints every pcp list's state and contents, every zone's flags
// and pageblock movable counts, and the zone files, for TestFastPaths.
func pcpState(a *Allocator) string {
	var b strings.Builder
	a.forEachZone(func(z *Zone) {
		fmt.Fprintf(&b, "zone %s flags %#x\n", z.typ, z.flags.Load())
		for i := range z.movable {
			fmt.Fprintf(&b, "%d ", z.movable[i].Load())
		}
		b.WriteByte('\n')
		for cpu := range z.pcp {
			pc := &z.pcp[cpu]
			pc.mu.Lock()
			fmt.Fprintf(&b, "cpu %d count %d high %d [%d,%d] batch %d allocFactor %d freeCount %d flags %#x ev %+v\n",
				cpu, pc.count, pc.high, pc.highMin, pc.highMax, pc.batch, pc.allocFactor, pc.freeCount, pc.flags, pc.ev)
			for i := range pc.lists {
				l := &pc.lists[i]
				fmt.Fprintf(&b, " %d:", i)
				for j := 0; j < l.n; j++ {
					fmt.Fprintf(&b, " %d", l.buf[(l.head+j)&l.m])
				}
				b.WriteByte('\n')
			}
			pc.mu.Unlock()
		}
	})
	_ = a.WriteBuddyinfo(&b)
	_ = a.WritePagetypeinfo(&b)
	_ = a.WriteZoneinfo(&b)
	_ = a.WriteVmstat(&b)
	return b.String()
}

// TestHighOrderWatermark: above order 0, zone_watermark_fast asks the
// free lists too. With free pages far above the high watermark but every
// free block on the buddy lists of order 0, an order-1 request fails the
// zone's check, and neither AllocPages nor the general path takes the
// order-1 block its pcp list holds; an order-0 request is served. A check
// of the count alone would hand out the pcp block.
func TestHighOrderWatermark(t *testing.T) {
	cfg := Config{NrCPUs: 1, Sysctl: DefaultSysctl(), Nodes: []NodeConfig{{CPUs: []int{0}, Zones: []ZoneConfig{
		{Type: gfp.ZoneDMA32, StartPFN: 4096, Spanned: 2048, Present: 2048, Managed: 2048},
	}}}}
	boot := func() (*Allocator, *memalloc.Task) {
		a, err := New(cfg, Options{})
		require.NoError(t, err)
		tk := memalloc.NewTaskWith("t", memalloc.WithCPU(0))
		// An order-1 block, and every page the zone gives order-0
		// requests that may not wait.
		b, err := a.AllocPages(tk, gfp.Kernel, 1)
		require.NoError(t, err)
		var pages []Page
		for {
			p, err := a.AllocPages(tk, gfp.NoWait, 0)
			if err != nil {
				break
			}
			pages = append(pages, p)
		}
		// Every other one back, to the buddy lists: free order-0
		// blocks whose buddies stay allocated.
		for _, p := range pages {
			if p.PFN()%2 == 0 {
				require.NoError(t, a.FreePages(tk, p, 0))
			}
		}
		a.DrainAllPages(tk)
		// The blocks of order 1 or more left below the min watermark
		// taken too, as if allocated.
		z := a.nodes[0].zones[gfp.ZoneDMA32]
		z.mu.Lock()
		for mt := range gfp.Migratetype(gfp.MigrateTypes) {
			for {
				if _, ok := z.rmqueueSmallest(nil, 1, mt, nil); !ok {
					break
				}
			}
		}
		z.mu.Unlock()
		require.NoError(t, a.FreePages(tk, b, 1)) // to the pcp list
		return a, tk
	}
	fast, ft := boot()
	general, gt := boot()
	z := fast.nodes[0].zones[gfp.ZoneDMA32]
	require.Greater(t, z.FreePages(), 4*z.wmarkPages(WmarkHigh), "free pages far above the high watermark")
	require.False(t, z.suitableFreeList(1, 0), "no free block of order 1 or more on the buddy lists")
	require.NotZero(t, z.pcp[0].lists[orderToPindex(mtUnmovable, 1)].n, "the order-1 block on the pcp list")
	pf, errF := fast.AllocPages(ft, gfp.NoWait, 1)
	_, errG := general.allocGeneral(gt, gfp.NoWait, 1)
	require.Error(t, errG)
	require.Error(t, errF, "the fast path handed out %v", pf)
	require.Equal(t, pcpState(general), pcpState(fast))
	_, err := fast.AllocPages(ft, gfp.NoWait, 0)
	require.NoError(t, err)
}

// TestZeroingCost: a __GFP_ZERO request charges the clearing of every
// page of its block to the clock, on the fast path (a block from the pcp
// list) and the general one (a refill first), for each pcp order.
func TestZeroingCost(t *testing.T) {
	var charged int64
	a, err := New(smallMachine(), Options{ZeroPageCost: 100, Advance: func(d int64) { charged += d }})
	require.NoError(t, err)
	tk := memalloc.NewTaskWith("t", memalloc.WithCPU(0))
	for order := Order(0); order <= CostlyOrder; order++ {
		for i := range 3 { // a refill, then blocks it left on the list
			charged = 0
			_, err := a.AllocPages(tk, gfp.Kernel|gfp.Zero, order)
			require.NoError(t, err)
			require.Equal(t, int64(100)<<order, charged, "order %d, request %d", order, i)
		}
		charged = 0
		_, err := a.AllocPages(tk, gfp.Kernel, order)
		require.NoError(t, err)
		require.Zero(t, charged, "order %d without __GFP_ZERO", order)
	}
}

// TestPCPOrderFastPath: an allocation of a pcp order above 0 whose
// list holds a block takes allocPCPOrder's common case, and gets the
// block the general path gives a twin machine.
func TestPCPOrderFastPath(t *testing.T) {
	boot := func() (*Allocator, *memalloc.Task) {
		a, err := New(smallMachine(), Options{})
		require.NoError(t, err)
		return a, memalloc.NewTaskWith("t", memalloc.WithCPU(1))
	}
	fast, ft := boot()
	general, gt := boot()
	for order := Order(1); order <= CostlyOrder; order++ {
		for _, mask := range []gfp.Mask{gfp.Kernel, gfp.HighUserMovable | gfp.Zero} {
			// The first refills the list; the next find it holding blocks.
			_, err := fast.AllocPages(ft, mask, order)
			require.NoError(t, err)
			_, err = general.allocGeneral(gt, mask, order)
			require.NoError(t, err)
			pf, ok := fast.allocPCPOrder(ft, mask, order)
			require.True(t, ok, "order %d %s", order, mask)
			pg, err := general.allocGeneral(gt, mask, order)
			require.NoError(t, err)
			require.Equal(t, pg, pf, "order %d %s", order, mask)
			require.Equal(t, pcpState(general), pcpState(fast))
		}
	}
}
