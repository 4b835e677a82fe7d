package mmsim_test

import (
	"fmt"
	"strings"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
)

// Boot the default machine, allocate a page with GFP_KERNEL, see where it
// came from, and print /proc/buddyinfo as the kernel lays it out (each line
// ends with a space in the real file; trimmed here for the example). The
// first unmovable allocation claimed an order-10 block of ZONE_NORMAL and
// refilled the pcp list with 63 pages from it: the rest of that block is
// free as one block of each order 9, 8, 7, 6 and 0.
func Example() {
	s, err := mmsim.New(mmsim.DefaultConfig()) // 8 GiB, two CPUs, DMA/DMA32/Normal
	if err != nil {
		panic(err)
	}
	defer s.Close()
	t := s.NewTask("writer")
	p, err := s.AllocPages(t, gfp.Kernel, 0)
	fmt.Println(s.ZoneOf(p).Type(), err)
	if err := s.FreePages(t, p, 0); err != nil {
		panic(err)
	}
	var b strings.Builder
	if err := s.WriteBuddyinfo(&b); err != nil {
		panic(err)
	}
	for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		fmt.Println(strings.TrimRight(line, " "))
	}
	// Output:
	// Normal <nil>
	// Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1      3
	// Node 0, zone    DMA32      0      0      0      0      0      0      0      0      0      0    752
	// Node 0, zone   Normal      1      0      0      0      0      0      1      1      1      1   1251
}

// A GFP_NOFS scope: the allocation's mask loses __GFP_FS, and the
// tracepoint shows the mask the page allocator really used.
func Example_scope() {
	s, err := mmsim.New(mmsim.DefaultConfig())
	if err != nil {
		panic(err)
	}
	defer s.Close()
	s.Trace(func(e mmsim.Event) {
		if e.Kind.String() == "kmem:mm_page_alloc" {
			fmt.Println(e.Mask)
		}
	})
	t := s.NewTask("xfs-writer")
	// The inode lock is held: reclaim must not recurse into the filesystem.
	cookie := t.SaveNoFS()
	p, err := s.AllocPages(t, gfp.Kernel|gfp.Zero, 0)
	t.Restore(cookie)
	if err != nil {
		panic(err)
	}
	s.FreePages(t, p, 0)
	// Output:
	// GFP_NOFS|__GFP_ZERO
}
