package slab

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// TestKmallocPicksCache checks the size index and kmalloc_type.
//
// Reference: include/linux/slab.h:__kmalloc_index(), kmalloc_type().
func TestKmallocPicksCache(t *testing.T) {
	tests := []struct {
		name string
		size int
		mask gfp.Mask
		want string
	}{
		{"one byte goes to kmalloc-8", 1, gfp.Kernel, "kmalloc-8"},
		{"nine bytes go to kmalloc-16", 9, gfp.Kernel, "kmalloc-16"},
		{"65 bytes go to kmalloc-96", 65, gfp.Kernel, "kmalloc-96"},
		{"96 bytes go to kmalloc-96", 96, gfp.Kernel, "kmalloc-96"},
		{"97 bytes go to kmalloc-128", 97, gfp.Kernel, "kmalloc-128"},
		{"129 bytes go to kmalloc-192", 129, gfp.Kernel, "kmalloc-192"},
		{"193 bytes go to kmalloc-256", 193, gfp.Kernel, "kmalloc-256"},
		{"8192 bytes go to kmalloc-8k", 8192, gfp.Kernel, "kmalloc-8k"},
		{"__GFP_RECLAIMABLE picks kmalloc-rcl", 100, gfp.Kernel | gfp.Reclaimable, "kmalloc-rcl-128"},
		{"__GFP_ACCOUNT picks kmalloc-cg", 1000, gfp.KernelAccount, "kmalloc-cg-1k"},
		{"__GFP_DMA picks dma-kmalloc", 32, gfp.Kernel | gfp.DMA, "dma-kmalloc-32"},
		{"__GFP_DMA beats __GFP_RECLAIMABLE", 32, gfp.DMA | gfp.Reclaimable, "dma-kmalloc-32"},
		{"__GFP_RECLAIMABLE beats __GFP_ACCOUNT", 32, gfp.KernelAccount | gfp.Reclaimable, "kmalloc-rcl-32"},
	}
	m := newMachine(t, true)
	tk := memalloc.NewTask("t")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, m.s.KmallocCache(tt.size, tt.mask).Name())
			before := m.s.Cache(tt.want).ActiveObjects()
			addr, err := m.s.Kmalloc(tk, tt.size, tt.mask)
			require.NoError(t, err)
			require.Equal(t, before+1, m.s.Cache(tt.want).ActiveObjects())
			n, err := m.s.Ksize(addr)
			require.NoError(t, err)
			require.Equal(t, m.s.Cache(tt.want).Size(), n)
			require.Equal(t, n, m.s.KmallocSizeRoundup(tt.size))
			require.NoError(t, m.s.Kfree(tk, addr))
			require.Equal(t, before, m.s.Cache(tt.want).ActiveObjects())
		})
	}
}

// TestKmallocZeroAndLarge checks kmalloc(0), the large kmalloc path and
// the limits.
//
// Reference: mm/slub.c:__do_kmalloc_node(), ___kmalloc_large_node(),
// free_large_kmalloc().
func TestKmallocZeroAndLarge(t *testing.T) {
	m := newMachine(t, true)
	tk := memalloc.NewTask("t")
	unrecl := m.slabPages(zone.NodeNrSlabUnreclaimable)

	addr, err := m.s.Kmalloc(tk, 0, gfp.Kernel)
	require.NoError(t, err)
	require.Equal(t, ZeroSizePtr, addr)
	require.Empty(t, m.takeEvents(), "kmalloc(0) returns before the tracepoint")
	require.NoError(t, m.s.Kfree(tk, ZeroSizePtr))
	require.NoError(t, m.s.Kfree(tk, 0))
	n, err := m.s.Ksize(ZeroSizePtr)
	require.NoError(t, err)
	require.Zero(t, n)
	m.takeEvents()

	addr, err = m.s.KmallocSite(tk, "caller+0x1", 10000, gfp.Kernel)
	require.NoError(t, err)
	require.Zero(t, (addr-DirectMap)%(4*zone.PageSize), "a large kmalloc is its block")
	var lines []string
	for _, ev := range m.takeEvents() {
		switch ev.Kind {
		case zone.EvPageAlloc:
			lines = append(lines, fmt.Sprintf("page order=%d %s", ev.Order, ev.Mask))
		case zone.EvKmalloc:
			lines = append(lines, fmt.Sprintf("kmalloc %s %d %d %s", ev.CallSite, ev.BytesReq, ev.BytesAlloc, ev.Mask))
		}
	}
	require.Equal(t, []string{
		"page order=2 GFP_KERNEL|__GFP_COMP",
		"kmalloc __kmalloc_noprof 10000 16384 GFP_KERNEL",
		"kmalloc caller+0x1 10000 16384 GFP_KERNEL",
	}, lines)
	require.Equal(t, unrecl+4, m.slabPages(zone.NodeNrSlabUnreclaimable))
	n, err = m.s.Ksize(addr)
	require.NoError(t, err)
	require.Equal(t, 16384, n)
	require.ErrorIs(t, m.s.Kfree(tk, addr+8), zone.ErrBug, "a pointer into a large kmalloc")
	require.NoError(t, m.s.Kfree(tk, addr))
	require.Equal(t, unrecl, m.slabPages(zone.NodeNrSlabUnreclaimable))
	require.ErrorIs(t, m.s.Kfree(tk, addr), zone.ErrBug, "a second kfree of a large kmalloc")

	_, err = m.s.Kmalloc(tk, KmallocMaxSize+1, gfp.Kernel)
	require.ErrorIs(t, err, zone.ErrInvalid)
	_, err = m.s.Kmalloc(tk, -1, gfp.Kernel)
	require.ErrorIs(t, err, zone.ErrInvalid)
	addr, err = m.s.Kmalloc(tk, KmallocMaxSize, gfp.Kernel)
	require.NoError(t, err, "KMALLOC_MAX_SIZE is an order-10 block")
	require.NoError(t, m.s.Kfree(tk, addr))
	require.Equal(t, unrecl, m.slabPages(zone.NodeNrSlabUnreclaimable))
}

// TestBadFreesChangeNothing checks that double frees, pointers into
// objects, wrong caches and foreign addresses are refused with ErrBug and
// a report, and leave every count as it was.
//
// Reference: mm/slub.c:free_consistency_checks(), set_freepointer(),
// warn_free_bad_obj(), free_large_kmalloc().
func TestBadFreesChangeNothing(t *testing.T) {
	m := newMachine(t, false)
	tk := memalloc.NewTask("t")
	c, err := m.s.CreateCache("test", 100, 0, 0)
	require.NoError(t, err)
	other, err := m.s.CreateCache("other", 100, 0, 0)
	require.NoError(t, err)
	a, err := c.Alloc(tk, gfp.Kernel)
	require.NoError(t, err)
	b, err := c.Alloc(tk, gfp.Kernel)
	require.NoError(t, err)
	k, err := m.s.Kmalloc(tk, 64, gfp.Kernel)
	require.NoError(t, err)
	require.NoError(t, c.Free(tk, b))

	tests := []struct {
		name     string
		free     func() error
		wantKind bug.Kind
		wantText string
	}{
		{"freeing the freelist head again is the naive double-free BUG", func() error { return c.Free(tk, b) }, bug.Bug, "double free or corruption"},
		{"kfree of a freed object is a double free", func() error { return m.s.Kfree(tk, b) }, bug.Bug, "double free or corruption"},
		{"a pointer into an object is an invalid object pointer", func() error { return c.Free(tk, a+8) }, bug.Bug, "Invalid object pointer"},
		{"kfree of a pointer into a kmalloc object", func() error { return m.s.Kfree(tk, k+1) }, bug.Bug, "Invalid object pointer"},
		{"an object of another cache WARNs", func() error { return other.Free(tk, a) }, bug.Warn, "object belongs to different cache test"},
		{"an address in no slab WARNs", func() error { return c.Free(tk, DirectMap+0x1000) }, bug.Warn, "object is not in a slab page"},
		{"kfree of an address in no slab WARNs", func() error { return m.s.Kfree(tk, DirectMap+0x1000) }, bug.Warn, "Not a kmalloc allocation"},
		{"kfree of a user address", func() error { return m.s.Kfree(tk, 0x7fff0000) }, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := m.slabinfo(t)
			active := c.ActiveObjects()
			m.takeReports()
			require.ErrorIs(t, tt.free(), zone.ErrBug)
			require.Equal(t, before, m.slabinfo(t))
			require.Equal(t, active, c.ActiveObjects())
			if tt.wantKind != 0 {
				r := m.takeReports()
				require.Len(t, r, 1)
				require.Equal(t, tt.wantKind, r[0].Kind)
				require.Contains(t, r[0].Text, tt.wantText)
			}
		})
	}
	require.NoError(t, c.Free(tk, a))
	require.NoError(t, m.s.Kfree(tk, k))
	require.Zero(t, c.ActiveObjects())
}

// TestSlabsAreAccountedAndDiscarded fills slabs, checks slabinfo and the
// node counters, frees everything (empty slabs beyond min_partial go
// back), then shrinks the cache to nothing.
//
// Reference: mm/slub.c:__slab_free() (slab_empty), discard_slab(),
// account_slab(), __kmem_cache_shrink(); mm/slub.c:get_slabinfo().
func TestSlabsAreAccountedAndDiscarded(t *testing.T) {
	m := newMachine(t, false)
	tk := memalloc.NewTask("t")
	c, err := m.s.CreateCacheArgs("rcl", 688, CacheArgs{Ctor: true}, ReclaimAccount)
	require.NoError(t, err)
	require.Equal(t, 23, c.ObjectsPerSlab())
	require.Equal(t, 5, c.MinPartial())
	recl0 := m.slabPages(zone.NodeNrSlabReclaimable)
	var objs []uint64
	for i := 0; i < 23*20; i++ {
		a, err := c.Alloc(tk, gfp.Kernel)
		require.NoError(t, err)
		objs = append(objs, a)
	}
	line := func() slabinfoLine {
		for _, l := range parseSlabinfo(t, m.slabinfo(t)) {
			if l.name == "rcl" {
				return l
			}
		}
		t.Fatal("no rcl line")
		return slabinfoLine{}
	}
	require.Equal(t, slabinfoLine{name: "rcl", active: 460, num: 460, objsize: 696, perslab: 23, pages: 4, activeSlabs: 20, numSlabs: 20}, line())
	require.Equal(t, recl0+20*4, m.slabPages(zone.NodeNrSlabReclaimable))

	// Free one object of every slab: all but the CPU slab go partial.
	for i := 0; i < 20; i++ {
		require.NoError(t, c.Free(tk, objs[i*23]))
	}
	require.Equal(t, slabinfoLine{name: "rcl", active: 460 - 19, num: 460, objsize: 696, perslab: 23, pages: 4, activeSlabs: 20, numSlabs: 20}, line())
	for i := 0; i < 20; i++ {
		for j := 1; j < 23; j++ {
			require.NoError(t, c.Free(tk, objs[i*23+j]))
		}
	}
	require.Zero(t, c.ActiveObjects())
	// An empty slab is discarded while the node has min_partial (5)
	// partial slabs counting itself: 4 stay, and the CPU slab.
	got := line()
	require.Equal(t, 5, got.numSlabs)
	require.Equal(t, 23, got.active, "the CPU slab's free objects count as active")
	require.Equal(t, recl0+5*4, m.slabPages(zone.NodeNrSlabReclaimable))

	require.Equal(t, 5*4, c.Shrink(tk))
	require.Equal(t, slabinfoLine{name: "rcl", perslab: 23, objsize: 696, pages: 4}, line())
	require.Equal(t, recl0, m.slabPages(zone.NodeNrSlabReclaimable))
	require.NoError(t, m.pa.CheckInvariants())
}

// TestConcurrentUse runs many goroutines on both CPUs through kmalloc,
// kfree and a cache, with hooks that allocate, under the race detector;
// everything freed and shrunk, the slab counters are back at zero.
//
// Reference: mm/slub.c (per-cpu slabs and the node list_lock).
func TestConcurrentUse(t *testing.T) {
	m := newMachine(t, true)
	c, err := m.s.CreateCache("conc", 200, 0, HWCacheAlign)
	require.NoError(t, err)
	h := &leakHooks{s: m.s, live: map[uint64]uint64{}}
	h.meta, err = m.s.CreateCache("kmemleak_object", 256, 0, NoLeakTrace)
	require.NoError(t, err)
	m.s.SetHooks(h)
	var g errgroup.Group
	for w := 0; w < 8; w++ {
		tk := memalloc.NewTaskWith(fmt.Sprint("w", w), memalloc.WithCPU(w%2), memalloc.WithPID(100+w))
		g.Go(func() error {
			var held []uint64
			for i := 0; i < 2000; i++ {
				var a uint64
				var err error
				switch i % 3 {
				case 0:
					a, err = c.Alloc(tk, gfp.Kernel)
				case 1:
					a, err = m.s.Kmalloc(tk, 1+(i*37)%9000, gfp.Kernel)
				default:
					a, err = m.s.Kmalloc(tk, 1+(i*13)%600, gfp.KernelAccount)
				}
				if err != nil {
					return err
				}
				held = append(held, a)
				if i%4 == 3 {
					for _, a := range held[:len(held)/2] {
						if err := m.s.Kfree(tk, a); err != nil {
							return err
						}
					}
					held = held[len(held)/2:]
				}
			}
			for _, a := range held {
				if err := m.s.Kfree(tk, a); err != nil {
					return err
				}
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
	require.Empty(t, h.live, "every PostAlloc has its Free")
	tk := memalloc.NewTask("shrink")
	m.s.mu.Lock()
	caches := append([]*Cache(nil), m.s.caches...)
	m.s.mu.Unlock()
	for _, c := range caches {
		require.Zero(t, c.ActiveObjects(), c.Name())
		c.Shrink(tk)
	}
	require.Zero(t, m.slabPages(zone.NodeNrSlabUnreclaimable))
	require.Zero(t, m.slabPages(zone.NodeNrSlabReclaimable))
	require.Empty(t, m.s.pages)
	require.NoError(t, m.pa.CheckInvariants())
}

// leakHooks is a kmemleak-like Hooks: it records every object in an
// object of its own NoLeakTrace cache, allocated from inside the hook.
type leakHooks struct {
	s    *Allocator
	meta *Cache
	mu   sync.Mutex
	live map[uint64]uint64
}

func (h *leakHooks) PostAlloc(t *memalloc.Task, c *Cache, addr uint64, size int, mask gfp.Mask) {
	rec, err := h.meta.Alloc(t, mask.Nested())
	if err != nil {
		panic(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, dup := h.live[addr]; dup {
		panic(fmt.Sprintf("PostAlloc of live 0x%x", addr))
	}
	h.live[addr] = rec
}

func (h *leakHooks) Free(t *memalloc.Task, c *Cache, addr uint64) {
	h.mu.Lock()
	rec, ok := h.live[addr]
	delete(h.live, addr)
	h.mu.Unlock()
	if !ok {
		panic(fmt.Sprintf("Free of unknown 0x%x", addr))
	}
	if err := h.meta.Free(t, rec); err != nil {
		panic(err)
	}
}

// TestCreateCacheRejectsBadInput checks that bad kmem_cache_create
// arguments are errors wrapping ErrInvalid, never panics.
//
// Reference: mm/slab_common.c:kmem_cache_sanity_check(),
// __kmem_cache_create_args() (SLAB_FLAGS_PERMITTED).
func TestCreateCacheRejectsBadInput(t *testing.T) {
	tests := []struct {
		name  string
		cname string
		size  int
		align int
		flags Flags
	}{
		{"an empty name", "", 8, 0, 0},
		{"a zero size", "z", 0, 0, 0},
		{"a negative size", "n", -5, 0, 0},
		{"a size above KMALLOC_MAX_SIZE", "big", KmallocMaxSize + 1, 0, 0},
		{"an alignment that is not a power of two", "a", 64, 24, 0},
		{"a negative alignment", "a", 64, -8, 0},
		{"an internal flag", "f", 64, 0, cmpxchgDouble},
		{"a debug flag", "d", 64, 0, RedZone},
	}
	m := newMachine(t, false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := m.s.CreateCache(tt.cname, tt.size, tt.align, tt.flags)
			require.ErrorIs(t, err, zone.ErrInvalid)
			require.Nil(t, c)
		})
	}
	_, err := m.s.CreateCacheArgs("huge", KmallocMaxSize, CacheArgs{Ctor: true}, 0)
	require.ErrorIs(t, err, zone.ErrInvalid, "no order holds the object with its free pointer")
	_, err = m.s.CreateCache("kmalloc-64", 64, 0, 0)
	require.NoError(t, err, "a duplicate name only WARNs")
	r := m.takeReports()
	require.Contains(t, r[len(r)-1].Text, "kmem_cache of name 'kmalloc-64' already exists")
}

// TestKmallocFixFlags checks that GFP_SLAB_BUG_MASK bits are stripped
// from the slab page's mask, with the kernel's warning.
//
// Reference: mm/slab_common.c:kmalloc_fix_flags(), mm/slub.c:new_slab().
func TestKmallocFixFlags(t *testing.T) {
	m := newMachine(t, true)
	tk := memalloc.NewTask("t")
	c, err := m.s.CreateCache("fix", 64, 0, 0)
	require.NoError(t, err)
	m.takeEvents()
	_, err = c.Alloc(tk, gfp.Kernel|gfp.HighMem)
	require.NoError(t, err)
	r := m.takeReports()
	require.Len(t, r, 1)
	require.Equal(t, "Unexpected gfp: 0x2 (__GFP_HIGHMEM). Fixing up to gfp: 0xcc0 (GFP_KERNEL). Fix your code!", r[0].Text)
	var masks []string
	for _, ev := range m.takeEvents() {
		switch ev.Kind {
		case zone.EvPageAlloc, zone.EvKmemCacheAlloc:
			masks = append(masks, ev.Kind.String()+" "+ev.Mask.String())
		}
	}
	require.Equal(t, []string{
		"kmem:mm_page_alloc GFP_KERNEL|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP",
		"kmem:kmem_cache_alloc GFP_KERNEL|__GFP_HIGHMEM",
	}, masks, "the tracepoint shows the caller's mask")
}

// TestSlabinfoOrderAndHeader checks the header lines and that the kmalloc
// caches are listed in the real file's order (newest first).
//
// Reference: mm/slab_common.c:print_slabinfo_header(), slab_start(),
// create_kmalloc_caches().
func TestSlabinfoOrderAndHeader(t *testing.T) {
	real := readTestdata(t, "slabinfo_rest_end.txt")
	m := newMachine(t, false)
	got := m.slabinfo(t)
	realLines, gotLines := strings.Split(real, "\n"), strings.Split(got, "\n")
	require.Equal(t, realLines[:2], gotLines[:2])
	names := func(text string) []string {
		var n []string
		for _, l := range parseSlabinfo(t, text) {
			if strings.Contains(l.name, "kmalloc-") {
				n = append(n, l.name)
			}
		}
		return n
	}
	require.Equal(t, names(real), names(got))
	// An empty cache prints as the kernel prints dma-kmalloc-8k.
	require.Contains(t, got, "dma-kmalloc-8k         0      0   8192    4    8 : tunables    0    0    0 : slabdata      0      0      0\n")
	c, err := m.s.CreateCache("newest", 24, 0, 0)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(strings.Split(m.slabinfo(t), "\n")[2], "newest "), "a new cache is listed first")
	_ = c
	require.True(t, errors.Is(zone.ErrBug, bug.ErrBug))
}
