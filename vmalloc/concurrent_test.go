package vmalloc

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// TestConcurrent runs vmalloc, kvmalloc and their frees from eight
// goroutines, reading /proc/vmallocinfo and the stats meanwhile, then
// checks that every data page and every object came back and that the
// address space is whole again after a purge.
//
// Reference: mm/vmalloc.c (free_vmap_area_lock, vmap_purge_lock).
func TestConcurrent(t *testing.T) {
	m := newMachine(t, Options{})
	free0 := m.freePages()
	var g errgroup.Group
	for w := 0; w < 8; w++ {
		g.Go(func() error {
			tk := memalloc.NewTaskWith(fmt.Sprintf("w%d", w), memalloc.WithPID(100+w), memalloc.WithCPU(w%2))
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			var live []uint64
			for i := 0; i < 300; i++ {
				switch {
				case len(live) > 0 && rng.IntN(3) == 0:
					j := rng.IntN(len(live))
					if err := m.v.Kvfree(tk, live[j]); err != nil {
						return err
					}
					live = append(live[:j], live[j+1:]...)
				case i%50 == 0:
					if err := m.v.WriteVmallocinfo(discard{}); err != nil {
						return err
					}
					_ = m.v.Stats()
				default:
					size := 1 + rng.IntN(40*4096)
					var addr uint64
					var err error
					if rng.IntN(2) == 0 {
						addr, err = m.v.Vmalloc(tk, size, gfp.Kernel)
					} else {
						addr, err = m.v.Kvmalloc(tk, size, gfp.Kernel)
					}
					if err != nil {
						return err
					}
					live = append(live, addr)
				}
			}
			for _, a := range live {
				if err := m.v.Kvfree(tk, a); err != nil {
					return err
				}
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
	tk := memalloc.NewTask("t")
	m.v.purgeVmapAreaLazy(tk)
	m.a.DrainAllPages(tk)
	s := m.v.Stats()
	require.Zero(t, s.Areas)
	require.Zero(t, s.LazyPages)
	require.Zero(t, m.nodeStat(zone.NodeNrVmalloc))
	require.Zero(t, m.slab.nlive())
	require.Equal(t, free0-s.PageTablePages, m.freePages())
	require.Equal(t, []vrange{{Start, End}}, m.v.space.free, "the free space merged back whole")
	require.NoError(t, m.a.CheckInvariants())
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
