package memalloc_test

import (
	"testing"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

var sinkMask gfp.Mask

// bareNoFS is the floor GFPContext is measured against: the one mask
// operation a NOFS scope comes down to, with the flags read from a plain word.
//
//go:noinline
func bareNoFS(pf *uint32, m gfp.Mask) gfp.Mask {
	if *pf&uint32(memalloc.PFMemallocNoFS) != 0 {
		return m &^ gfp.FS
	}
	return m
}

// BenchmarkGFPContext measures current_gfp_context, which the allocator runs
// on every allocation, per scope, next to the bare floor.
func BenchmarkGFPContext(b *testing.B) {
	for _, bc := range []struct {
		name  string
		flags memalloc.Flags
	}{
		{"scope=none", 0},
		{"scope=nofs", memalloc.PFMemallocNoFS},
		{"scope=noio+pin", memalloc.PFMemallocNoIO | memalloc.PFMemallocPin},
		{"scope=noreclaim", memalloc.PFMemallocNoReclaim},
	} {
		b.Run(bc.name, func(b *testing.B) {
			t := memalloc.NewTaskWith("bench", memalloc.WithFlags(bc.flags))
			m := gfp.Kernel
			for b.Loop() {
				sinkMask = t.GFPContext(m)
			}
		})
	}
	b.Run("reference=bare", func(b *testing.B) {
		pf := uint32(memalloc.PFMemallocNoFS)
		for b.Loop() {
			sinkMask = bareNoFS(&pf, gfp.Kernel)
		}
	})
}

// BenchmarkScope measures one save/restore pair, which reclaim runs around
// every direct reclaim (PF_MEMALLOC) and filesystems around every locked
// section.
func BenchmarkScope(b *testing.B) {
	b.Run("depth=1", func(b *testing.B) {
		t := memalloc.NewTask("bench")
		for b.Loop() {
			t.Restore(t.SaveNoFS())
		}
	})
	b.Run("depth=4", func(b *testing.B) {
		t := memalloc.NewTask("bench")
		for b.Loop() {
			a := t.SaveNoFS()
			c := t.SaveNoIO()
			d := t.SaveNoFS()
			e := t.SaveMemalloc()
			t.Restore(e)
			t.Restore(d)
			t.Restore(c)
			t.Restore(a)
		}
	})
}
