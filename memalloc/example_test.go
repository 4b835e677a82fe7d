package memalloc_test

import (
	"fmt"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

// The README's example: a NOFS scope, and the reverted NORECLAIM scope as a
// what-if.
func Example() {
	t := memalloc.NewTask("xfs-writer")

	// The inode lock is held: reclaim must not recurse into the filesystem.
	cookie := t.SaveNoFS()
	m := t.GFPContext(gfp.Kernel | gfp.Zero)
	fmt.Println(m)
	fmt.Println(m.Mode())
	t.Restore(cookie)

	// The reverted bcachefs scope, as a what-if: NOFAIL inside it cannot block.
	cookie = t.SaveFlags(memalloc.PFMemallocNoReclaim)
	m = t.GFPContext(gfp.NoFS | gfp.NoFail)
	fmt.Println(m, m.AllowsBlocking())
	t.Restore(cookie)
	fmt.Println(t.Flags(), t.Err())
	// Output:
	// GFP_NOFS|__GFP_ZERO
	// 0xd40(GFP_NOFS|__GFP_ZERO)
	// __GFP_IO|__GFP_KSWAPD_RECLAIM|__GFP_NOFAIL false
	// 0 <nil>
}

func ExampleTask_Restore() {
	t := memalloc.NewTask("worker")
	outer := t.SaveNoFS()
	inner := t.SaveNoFS() // already in a NOFS scope: the cookie is 0
	fmt.Println(outer, inner)
	t.Restore(outer) // wrong order: the inner scope silently loses NOFS
	t.Restore(inner)
	fmt.Println(t.Err())
	// Output:
	// PF_MEMALLOC_NOFS 0
	// memalloc: memalloc_flags_restore(PF_MEMALLOC_NOFS) on task worker[0] (flags PF_MEMALLOC_NOFS): clears PF_MEMALLOC_NOFS, which a still-open memalloc_flags_save asked for
}
