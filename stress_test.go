package mmsim_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

var stressOps = flag.Int64("stress.ops", 1e6, "operations of TestStress (10^8 for a long run: go test -run Stress -stress.ops=100000000)")

// mib256 is a 256 MiB machine: 16 MiB of DMA and 240 MiB of DMA32.
func mib256() mmsim.Config {
	return mmsim.SmallConfig(61440, 61440)
}

// TestStress runs 16 goroutines, each with its own task, doing randomized
// allocations and frees (orders 0..10, every common mask, NOFS/NOIO/PIN
// scopes, bulk and batched calls) on a 256 MiB machine, with invariant
// checks sampled during the run and a full one at the end; every page is
// returned and the machine ends as it started.
func TestStress(t *testing.T) {
	const workers = 16
	s := newSystem(t, mib256())
	freeAtBoot := freePages(s)
	masks := []gfp.Mask{gfp.Kernel, gfp.HighUserMovable, gfp.Kernel | gfp.Reclaimable, gfp.Atomic,
		gfp.NoWait, gfp.Kernel | gfp.DMA32, gfp.Kernel | gfp.DMA, gfp.NoFS | gfp.Zero, gfp.Kernel | gfp.Comp,
		gfp.TransHugeLight}
	scopes := []func(*memalloc.Task) memalloc.Flags{
		(*memalloc.Task).SaveNoFS, (*memalloc.Task).SaveNoIO, (*memalloc.Task).SavePin,
	}
	perWorker := *stressOps / workers
	var checks sync.Mutex // one sampled check at a time
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			tk := s.NewTask(fmt.Sprintf("stress/%d", w))
			type blk struct {
				p zone.Page
				o zone.Order
			}
			var held []blk
			for i := int64(0); i < perWorker; i++ {
				switch op := r.IntN(100); {
				case op < 45 && len(held) < 2000:
					o := zone.Order(r.IntN(4))
					if r.IntN(50) == 0 {
						o = zone.Order(4 + r.IntN(7))
					}
					var cookie memalloc.Flags
					scoped := r.IntN(8) == 0
					if scoped {
						cookie = scopes[r.IntN(len(scopes))](tk)
					}
					p, err := s.AllocPages(tk, masks[r.IntN(len(masks))]|gfp.NoWarn, o)
					if scoped {
						tk.Restore(cookie)
					}
					if err == nil {
						held = append(held, blk{p, o})
					} else if !isNoMemory(err) {
						return err
					}
				case op < 47:
					pages := make([]zone.Page, 1+r.IntN(32))
					n, err := s.AllocPagesBulk(tk, gfp.Kernel|gfp.NoWarn, pages)
					if err != nil {
						return err
					}
					for _, p := range pages[:n] {
						held = append(held, blk{p, 0})
					}
				case op < 49 && len(held) > 0:
					var batch []zone.Page
					kept := held[:0]
					for _, b := range held {
						if b.o == 0 && len(batch) < 16 {
							batch = append(batch, b.p)
						} else {
							kept = append(kept, b)
						}
					}
					held = kept
					if err := s.FreePagesBatched(tk, batch); err != nil {
						return err
					}
				case op < 95 && len(held) > 0:
					j := r.IntN(len(held))
					if err := s.FreePages(tk, held[j].p, held[j].o); err != nil {
						return err
					}
					held[j] = held[len(held)-1]
					held = held[:len(held)-1]
				}
				if i%5000 == 4999 { // a sampled check, with the other workers running
					checks.Lock()
					err := s.CheckInvariants()
					checks.Unlock()
					if err != nil {
						return fmt.Errorf("worker %d op %d: %w", w, i, err)
					}
				}
				if r.IntN(1000) == 0 {
					tk.SetCPU(r.IntN(2))
				}
			}
			for _, b := range held {
				if err := s.FreePages(tk, b.p, b.o); err != nil {
					return err
				}
			}
			return tk.Err()
		})
	}
	require.NoError(t, g.Wait())
	require.NoError(t, s.DrainAllPages(s.NewTask("drain")))
	require.NoError(t, s.CheckInvariants())
	// Every page came back. (Pageblocks keep the types fallbacks gave
	// them, as in the kernel, so the free lists need not look as at boot.)
	require.Equal(t, freeAtBoot, freePages(s))
}

// freePages returns NR_FREE_PAGES summed over the machine's zones.
func freePages(s *mmsim.System) int64 {
	var n int64
	for _, nd := range s.Nodes() {
		for t := range gfp.MaxNrZones {
			n += nd.Zone(gfp.ZoneType(t)).FreePages()
		}
	}
	return n
}

func isNoMemory(err error) bool { return err != nil && errorsIs(err, mmsim.ErrNoMemory) }
