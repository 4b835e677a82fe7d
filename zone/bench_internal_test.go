package zone

import (
	"testing"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

func benchAllocator(b *testing.B) (*Allocator, *memalloc.Task) {
	a, err := New(Config{NrCPUs: 2, Sysctl: DefaultSysctl(), Nodes: []NodeConfig{{CPUs: []int{0, 1}, Zones: []ZoneConfig{
		{Type: gfp.ZoneDMA, StartPFN: 1, Spanned: 4095, Present: 3998, Managed: 3840},
		{Type: gfp.ZoneDMA32, StartPFN: 4096, Spanned: 1044480, Present: 782336, Managed: 770048},
		{Type: gfp.ZoneNormal, StartPFN: 1 << 20, Spanned: 1310720, Present: 1310720, Managed: 1282048},
	}}}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	return a, memalloc.NewTask("bench")
}

// BenchmarkLayers splits the order-0 pair into its layers, to see where
// the time goes: the allocator entry points, and the pcp list alone.
func BenchmarkLayers(b *testing.B) {
	b.Run("layer=zone-entry", func(b *testing.B) {
		a, t := benchAllocator(b)
		for b.Loop() {
			p, _ := a.AllocPages(t, gfp.Kernel, 0)
			_ = a.FreePages(t, p, 0)
		}
	})
	b.Run("layer=pcp-only", func(b *testing.B) {
		a, t := benchAllocator(b)
		z := a.nodes[0].zones[gfp.ZoneNormal]
		p, _ := a.AllocPages(t, gfp.Kernel, 0)
		_ = a.FreePages(t, p, 0)
		pc := &z.pcp[0]
		for b.Loop() {
			pc.mu.Lock()
			off := pc.lists[0].popFront()
			pc.mu.Unlock()
			pc.mu.Lock()
			pc.lists[0].pushFront(off)
			pc.mu.Unlock()
		}
	})
	b.Run("layer=gfpcontext+prepare", func(b *testing.B) {
		a, t := benchAllocator(b)
		var ac allocContext
		for b.Loop() {
			ac = allocContext{t: t}
			_ = a.prepare(&ac, t.GFPContext(gfp.Kernel))
		}
	})
}
