package zone

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

// buddyState prints everything the buddy lists are: each free list's
// blocks in order, the zone's free counts and list bits, every MAX_ORDER
// block's chunk (or none) and state bytes, and the owner bytes; then
// pcpState. Two allocators that did the same work print the same.
func buddyState(a *Allocator) string {
	var b strings.Builder
	a.forEachZone(func(z *Zone) {
		if !z.populated() {
			return
		}
		z.mu.Lock()
		fmt.Fprintf(&b, "zone %s free %d highatomic %d blocks %d nonEmpty %#x nrFree %v\n",
			z.typ, z.freePages.Load(), z.freeHighatomic.Load(), z.freePagesBlocks, z.nonEmpty.Load(), z.nrFree)
		for o := Order(0); o <= MaxPageOrder; o++ {
			for mt := range z.free[o] {
				l := &z.free[o][mt]
				fmt.Fprintf(&b, "%d/%d (%d):", o, mt, l.n)
				for off := l.head; off != nilLink; off = z.mm.linkOf(off, o).next {
					fmt.Fprintf(&b, " %d", off)
				}
				b.WriteByte('\n')
			}
		}
		for i := range z.mm.blocks {
			blk := &z.mm.blocks[i]
			if blk.chunk == nil {
				fmt.Fprintf(&b, "block %d whole %#x\n", i, blk.state)
				continue
			}
			fmt.Fprintf(&b, "block %d chunk:", i)
			for j, st := range blk.chunk.state {
				if st != psNone {
					fmt.Fprintf(&b, " %d=%#x", j, st)
				}
			}
			b.WriteByte('\n')
		}
		b.WriteString("owner:")
		for off, st := range z.mm.owner {
			if st != psNone {
				fmt.Fprintf(&b, " %d=%#x", off, st)
			}
		}
		b.WriteByte('\n')
		z.mu.Unlock()
	})
	b.WriteString(pcpState(a))
	return b.String()
}

// withoutRuns makes a's bulk refills take one block a call.
func withoutRuns(a *Allocator) *Allocator {
	a.forEachZone(func(z *Zone) { z.noRuns = true })
	return a
}

// TestRmqueueRun: a run leaves the zone as the calls of
// __rmqueue_smallest it stands for do, from blocks of every order, for
// runs that take part of the block, all of it, or ask for more than it
// has; the run is the calls' blocks, in their order.
func TestRmqueueRun(t *testing.T) {
	for _, order := range []Order{0, 1, 3, PageblockOrder} {
		for _, n := range []int{1, 3, 5, 63, 1 << (MaxPageOrder - order), 1<<(MaxPageOrder-order) + 7} {
			for _, pre := range []int{0, 1, 6, 700} {
				t.Run(fmt.Sprintf("order %d n %d after %d", order, n, pre), func(t *testing.T) {
					boot := func() (*Allocator, *Zone) {
						a, err := New(smallMachine(), Options{})
						require.NoError(t, err)
						z := a.nodes[0].zones[gfp.ZoneDMA32]
						// Split blocks first, so that the run starts
						// from blocks of other orders.
						z.mu.Lock()
						for range pre {
							_, ok := z.rmqueueSmallest(nil, 0, mtMovable, nil)
							require.True(t, ok)
						}
						z.mu.Unlock()
						return a, z
					}
					ra, rz := boot()
					ca, cz := boot()
					require.Equal(t, buddyState(ca), buddyState(ra))
					// The run is of the block the first call finds:
					// the smallest on mt's lists of the order or larger.
					o := order
					for cz.free[o][mtMovable].empty() {
						o++
					}
					var want []PFN
					cz.mu.Lock()
					for range min(n, 1<<(o-order)) {
						pfn, ok := cz.rmqueueSmallest(nil, order, mtMovable, nil)
						require.True(t, ok)
						want = append(want, pfn)
					}
					cz.mu.Unlock()
					for i := range want {
						require.Equal(t, want[0]+PFN(i)<<order, want[i], "the calls' blocks are one run")
					}
					rz.mu.Lock()
					pfn, got := rz.rmqueueRun(order, n, mtMovable)
					rz.mu.Unlock()
					require.Equal(t, len(want), got)
					require.Equal(t, want[0], pfn)
					require.Equal(t, buddyState(ca), buddyState(ra))
				})
			}
		}
	}
}

// TestRmqueueRuns runs one workload on two machines, one refilling its
// pcp lists by runs and one a call at a time, and requires the same
// blocks at every step and the same buddy and pcp state after every
// fifth and at the end: allocations
// of every pcp order and the THP order, with every mobility, frees, pcp
// drains, and enough pressure that refills fall back to other
// migratetypes' blocks.
func TestRmqueueRuns(t *testing.T) {
	boot := func() *Allocator {
		a, err := New(smallMachine(), Options{})
		require.NoError(t, err)
		return a
	}
	runs, calls := boot(), withoutRuns(boot())
	task := func(cpu int) *memalloc.Task { return memalloc.NewTaskWith("t", memalloc.WithCPU(cpu)) }
	rt, ct := []*memalloc.Task{task(0), task(1)}, []*memalloc.Task{task(0), task(1)}
	masks := []gfp.Mask{gfp.Kernel, gfp.HighUserMovable, gfp.Kernel | gfp.Reclaimable, gfp.Kernel | gfp.DMA32}
	orders := []Order{0, 0, 0, 1, 2, 3, PageblockOrder}
	rng := rand.New(rand.NewPCG(11, 11))
	type blk struct {
		p     Page
		order Order
	}
	var held []blk
	var pages int64
	for step := range 6000 {
		cpu := rng.IntN(2)
		switch r := rng.IntN(100); {
		case r == 0:
			runs.DrainAllPages(rt[cpu])
			calls.DrainAllPages(ct[cpu])
		case r < 45 && len(held) > 0 || pages > 50000:
			i := rng.IntN(len(held))
			b := held[i]
			held[i] = held[len(held)-1]
			held = held[:len(held)-1]
			pages -= 1 << b.order
			require.NoError(t, runs.FreePages(rt[cpu], b.p, b.order))
			require.NoError(t, calls.FreePages(ct[cpu], b.p, b.order))
		default:
			mask, order := masks[rng.IntN(len(masks))]|gfp.NoWarn, orders[rng.IntN(len(orders))]
			pr, errR := runs.AllocPages(rt[cpu], mask, order)
			pc, errC := calls.AllocPages(ct[cpu], mask, order)
			require.Equal(t, errR == nil, errC == nil, "step %d", step)
			require.Equal(t, pc, pr, "step %d: %s order %d on CPU %d", step, mask, order, cpu)
			if errR == nil {
				held = append(held, blk{pr, order})
				pages += 1 << order
			}
		}
		if step%5 == 0 {
			require.Equal(t, buddyState(calls), buddyState(runs), "step %d", step)
		}
	}
	require.Equal(t, buddyState(calls), buddyState(runs))
	require.NoError(t, runs.CheckInvariants())
	// Every pageblock booted movable: the others were claimed by
	// fallbacks.
	claimed := 0
	runs.forEachZone(func(z *Zone) {
		for i := range z.pageblockMT {
			if gfp.Migratetype(z.pageblockMT[i].Load()) != mtMovable {
				claimed++
			}
		}
	})
	require.Greater(t, claimed, 5, "pageblocks claimed by fallbacks")
	var nr [2]int64
	for i, a := range []*Allocator{runs, calls} {
		a.forEachZone(func(z *Zone) { nr[i] += z.nrRuns })
	}
	require.Greater(t, nr[0], int64(100), "refills by runs")
	require.Zero(t, nr[1])
}
