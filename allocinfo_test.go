package mmsim_test

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// profSystem is a 64 MiB machine with allocation profiling.
func profSystem(t testing.TB) *mmsim.System {
	t.Helper()
	cfg := smallConfig(12288)
	cfg.AllocProfiling = true
	return newSystem(t, cfg)
}

// The call sites of the tests: each returns the line of its allocation.

func allocPagesHere(t testing.TB, s *mmsim.System, tk *memalloc.Task, order zone.Order) (zone.Page, int) {
	_, _, line, _ := runtime.Caller(0)
	p, err := s.AllocPages(tk, gfp.Kernel, order)
	require.NoError(t, err)
	return p, line + 1
}

func kmallocHere(t testing.TB, s *mmsim.System, tk *memalloc.Task, size int) (mmsim.Object, int) {
	_, _, line, _ := runtime.Caller(0)
	o, err := s.Kmalloc(tk, size, gfp.Kernel)
	require.NoError(t, err)
	return o, line + 1
}

// tagAt returns the tag of file:line, failing if there is none.
func tagAt(t testing.TB, s *mmsim.System, file string, line int) mmsim.AllocTag {
	t.Helper()
	for _, tag := range s.Allocinfo() {
		if tag.File == file && tag.Line == line {
			return tag
		}
	}
	require.Failf(t, "no tag", "%s:%d in %v", file, line, s.Allocinfo())
	return mmsim.AllocTag{}
}

// TestAllocinfo checks allocation profiling from two call sites of this
// file: a page block and a slab object each show up as their own line
// with their bytes and calls, the new slab under the kmalloc is charged to
// alloc_slab_page, and frees take everything back (the lines stay, at 0).
//
// Reference: lib/alloc_tag.c:alloc_tag_to_text(), mm/page_alloc.c:__pgalloc_tag_add(),
// mm/slub.c:__alloc_tagging_slab_alloc_hook(), alloc_slab_page().
func TestAllocinfo(t *testing.T) {
	s := profSystem(t)
	tk := s.NewTask("t")
	p1, pageLine := allocPagesHere(t, s, tk, 1)
	p2, _ := allocPagesHere(t, s, tk, 0)
	o, objLine := kmallocHere(t, s, tk, 100)

	pages := tagAt(t, s, "allocinfo_test.go", pageLine)
	assert.Equal(t, mmsim.AllocTag{File: "allocinfo_test.go", Line: pageLine, Func: "allocPagesHere", Bytes: 3 * zone.PageSize, Calls: 2}, pages)
	obj := tagAt(t, s, "allocinfo_test.go", objLine)
	assert.Equal(t, mmsim.AllocTag{File: "allocinfo_test.go", Line: objLine, Func: "kmallocHere", Bytes: 128, Calls: 1}, obj,
		"kmalloc(100) is charged kmalloc-128's stride, not its slab")
	slabPages := tagAt(t, s, "mm/slub.c", 3280)
	assert.Equal(t, "alloc_slab_page", slabPages.Func)
	assert.Equal(t, int64(zone.PageSize<<s.KmemCache("kmalloc-128").Order()), slabPages.Bytes)
	assert.Equal(t, int64(1), slabPages.Calls)

	var b bytes.Buffer
	require.NoError(t, s.WriteAllocinfo(&b))
	lines := strings.Split(b.String(), "\n")
	assert.Equal(t, "allocinfo - version: 2.0", lines[0])
	assert.Equal(t, "#     <size>  <calls> <tag info>", lines[1])
	assert.Equal(t, fmt.Sprintf("       12288        2 allocinfo_test.go:%d func:allocPagesHere ", pageLine), lines[2])
	assert.Equal(t, fmt.Sprintf("         128        1 allocinfo_test.go:%d func:kmallocHere ", objLine), lines[4],
		"in order of first use: the kmalloc's slab page came first")
	assert.Equal(t, "", lines[len(lines)-1], "every line ends in a newline")

	require.NoError(t, s.FreePages(tk, p1, 1))
	require.NoError(t, s.FreePages(tk, p2, 0))
	require.NoError(t, s.Kfree(tk, o))
	assert.Equal(t, mmsim.AllocTag{File: "allocinfo_test.go", Line: pageLine, Func: "allocPagesHere"}, tagAt(t, s, "allocinfo_test.go", pageLine))
	assert.Zero(t, tagAt(t, s, "allocinfo_test.go", objLine).Calls)
	assert.Len(t, s.Allocinfo(), 3, "the kernel prints zero lines too")
}

// TestAllocinfoCharges checks what each API charges to its caller: a bulk
// allocation one call per page, a large kmalloc its compound block (the
// page allocator's, no slab), vmalloc its pages (the *_noprof path).
//
// Reference: mm/slub.c:___kmalloc_large_node(), mm/vmalloc.c:vm_area_alloc_pages().
func TestAllocinfoCharges(t *testing.T) {
	s := profSystem(t)
	tk := s.NewTask("t")
	site := func() (string, int) {
		_, file, line, _ := runtime.Caller(1)
		return file[strings.LastIndexByte(file, '/')+1:], line + 1
	}

	file, line := site()
	n, err := s.AllocPagesBulk(tk, gfp.Kernel, make([]zone.Page, 4))
	require.NoError(t, err)
	require.Equal(t, 4, n)
	tag := tagAt(t, s, file, line)
	assert.Equal(t, int64(4), tag.Calls)
	assert.Equal(t, int64(4*zone.PageSize), tag.Bytes)
	assert.Equal(t, "TestAllocinfoCharges", tag.Func)

	file, line = site()
	big, err := s.Kmalloc(tk, 20000, gfp.Kernel)
	require.NoError(t, err)
	tag = tagAt(t, s, file, line)
	assert.Equal(t, mmsim.AllocTag{File: file, Line: line, Func: "TestAllocinfoCharges", Bytes: 8 * zone.PageSize, Calls: 1}, tag)
	require.NoError(t, s.Kfree(tk, big))
	assert.Zero(t, tagAt(t, s, file, line).Bytes)

	file, line = site()
	v, err := s.Vmalloc(tk, 5*zone.PageSize, gfp.Kernel)
	require.NoError(t, err)
	tag = tagAt(t, s, file, line)
	assert.GreaterOrEqual(t, tag.Bytes, int64(5*zone.PageSize), "vmalloc's pages are the caller's")
	require.NoError(t, s.Vfree(tk, v))
	assert.LessOrEqual(t, tagAt(t, s, file, line).Bytes, tag.Bytes-5*zone.PageSize)
}

// TestAllocinfoOff checks that without Config.AllocProfiling there is no
// /proc/allocinfo.
func TestAllocinfoOff(t *testing.T) {
	s := newSystem(t, smallConfig(4096))
	require.ErrorIs(t, s.WriteAllocinfo(&bytes.Buffer{}), mmsim.ErrInvalid)
	assert.Nil(t, s.Allocinfo())
}

// BenchmarkAllocProfiling measures what allocation profiling costs an
// order-0 AllocPages+FreePages pair on the default machine; the profiled
// run reports its time as a multiple of the unprofiled one (x-off).
func BenchmarkAllocProfiling(b *testing.B) {
	var off time.Duration // ns per pair without profiling
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("profiling=%v", map[bool]string{false: "off", true: "on"}[on]), func(b *testing.B) {
			cfg := mmsim.DefaultConfig()
			cfg.AllocProfiling = on
			order0Pairs(b, cfg)
			per := b.Elapsed() / time.Duration(b.N)
			if !on {
				off = per
			} else if off > 0 {
				b.ReportMetric(float64(per)/float64(off), "x-off")
			}
		})
	}
}

// TestAllocinfoTaskTag checks the task's allocation tag (current->alloc_tag)
// as the System methods set it: for the duration of the call, the same tag
// for every call from one line and another for another line, the slab
// page tag around a new slab, none for an allocation mmsim makes on its own
// behalf (Explain's, whose site the stack walk finds), and the old tag put
// back on return, also when the call fails.
//
// Reference: include/linux/alloc_tag.h:alloc_hooks(), alloc_tag_save(),
// alloc_tag_restore(); mm/slub.c:alloc_slab_page().
func TestAllocinfoTaskTag(t *testing.T) {
	s := profSystem(t)
	tk := s.NewTask("t")
	var seen []any // tk's tag at each of its mm_page_alloc events
	s.Trace(func(ev mmsim.Event) {
		if ev.Kind == zone.EvPageAlloc && ev.PID == tk.PID() && !ev.NoPage {
			seen = append(seen, tk.AllocTag()) // tk's goroutine: the event is its allocation's
		}
	})
	alloc := func(f func() (zone.Page, error)) (zone.Page, any) {
		seen = nil
		p, err := f()
		require.NoError(t, err)
		require.Len(t, seen, 1)
		return p, seen[0]
	}

	var pages []zone.Page
	var tags []any
	for range 2 {
		p, tag := alloc(func() (zone.Page, error) { return s.AllocPages(tk, gfp.Kernel, 0) }) // one line, twice
		pages, tags = append(pages, p), append(tags, tag)
	}
	p, other := alloc(func() (zone.Page, error) {
		return s.AllocPages(tk, gfp.Kernel, 0) // another line
	})
	pages = append(pages, p)
	require.NotNil(t, tags[0], "an AllocPages from a test line runs under that line's tag")
	assert.Same(t, tags[0], tags[1], "one call site, one tag")
	assert.NotSame(t, tags[0], other, "another call site, another tag")
	assert.Nil(t, tk.AllocTag(), "the tag is put back on return")

	// A new slab's page runs under alloc_slab_page's tag, the object
	// under the caller's, which is put back after the slab.
	c, err := s.KmemCacheCreate("tasktag_cache", 256, 8, 0)
	require.NoError(t, err)
	seen = nil
	o, err := s.KmemCacheAlloc(tk, c, gfp.Kernel)
	require.NoError(t, err)
	require.Len(t, seen, 1, "the first object needs a slab")
	require.NotNil(t, seen[0])
	assert.NotSame(t, tags[0], seen[0])
	assert.NotSame(t, other, seen[0])
	assert.Nil(t, tk.AllocTag())

	// Explain allocates through AllocPages from inside mmsim: no tag,
	// and the walk charges the page to Explain's caller, as before.
	before := s.Allocinfo()
	file, line := callSite()
	e, err := s.Explain(tk, gfp.Kernel, 0)
	require.NoError(t, err)
	require.NoError(t, e.Err)
	assert.Equal(t, []any{nil}, seen[1:], "mmsim's own call sets no tag")
	assert.Equal(t, int64(zone.PageSize), tagAt(t, s, file, line).Bytes)
	assert.Len(t, s.Allocinfo(), len(before)+1)
	require.NoError(t, s.FreePages(tk, e.Page, 0))

	// A call that fails, or allocates nothing, lists no tag.
	_, err = s.AllocPages(tk, gfp.Kernel, zone.MaxPageOrder+1)
	require.Error(t, err)
	_, err = s.AllocPagesBulk(tk, gfp.Kernel, nil)
	require.NoError(t, err)
	assert.Nil(t, tk.AllocTag())
	assert.Len(t, s.Allocinfo(), len(before)+1, "a tag is listed at its first charge")

	for _, p := range pages {
		require.NoError(t, s.FreePages(tk, p, 0))
	}
	require.NoError(t, s.KmemCacheFree(tk, c, o))
}

// callSite returns the file (its name) and the line after its caller's.
func callSite() (string, int) {
	_, file, line, _ := runtime.Caller(1)
	return file[strings.LastIndexByte(file, '/')+1:], line + 1
}

// kmallocVia is a user helper: its Kmalloc line is the call site of every
// allocation made through it, whichever line calls it.
func kmallocVia(s *mmsim.System, tk *memalloc.Task, size int) (mmsim.Object, int, error) {
	_, _, line, _ := runtime.Caller(0)
	o, err := s.Kmalloc(tk, size, gfp.Kernel)
	return o, line + 1, err
}

// TestAllocinfoSites checks where each kind of allocation is charged: a
// user helper called from two lines charges its own line; a kvmalloc's
// memory, kmalloc'd or vmalloc'd, pages and page tables, and a
// kmem_cache_alloc's object go to the caller's line while a new slab's
// pages go to alloc_slab_page; a fault's pages (TouchAnon) go to the
// caller's line; a workqueue item's allocations to the item's line.
//
// Reference: include/linux/alloc_tag.h:alloc_hooks(), mm/slub.c:alloc_slab_page(),
// __kvmalloc_node_noprof(), mm/vmalloc.c:vm_area_alloc_pages().
func TestAllocinfoSites(t *testing.T) {
	s := profSystem(t)
	tk := s.NewTask("t")

	o1, line, err := kmallocVia(s, tk, 100)
	require.NoError(t, err)
	o2, line2, err := kmallocVia(s, tk, 100)
	require.NoError(t, err)
	require.Equal(t, line, line2)
	assert.Equal(t, mmsim.AllocTag{File: "allocinfo_test.go", Line: line, Func: "kmallocVia", Bytes: 256, Calls: 2},
		tagAt(t, s, "allocinfo_test.go", line))
	require.NoError(t, s.Kfree(tk, o1))
	require.NoError(t, s.Kfree(tk, o2))

	slabPages := func() int64 { return tagAt(t, s, "mm/slub.c", 3280).Bytes }
	c, err := s.KmemCacheCreate("sites_cache", 512, 8, 0)
	require.NoError(t, err)
	inSlabs := slabPages()
	file, line := callSite()
	o, err := s.KmemCacheAlloc(tk, c, gfp.Kernel)
	require.NoError(t, err)
	assert.Equal(t, mmsim.AllocTag{File: file, Line: line, Func: "TestAllocinfoSites", Bytes: 512, Calls: 1}, tagAt(t, s, file, line))
	assert.Equal(t, int64(zone.PageSize<<c.Order()), slabPages()-inSlabs, "the new slab is alloc_slab_page's")
	require.NoError(t, s.KmemCacheFree(tk, c, o))

	for _, size := range []int{3 * zone.PageSize, 2 << 20, mmsim.KmallocMaxSize + zone.PageSize} {
		inSlabs = slabPages()
		file, line = callSite()
		v, err := s.Kvmalloc(tk, size, gfp.Kernel)
		require.NoError(t, err)
		tag := tagAt(t, s, file, line)
		assert.GreaterOrEqual(t, tag.Bytes+slabPages()-inSlabs, int64(size), "kvmalloc(%d): all of it is charged", size)
		assert.Positive(t, tag.Bytes, "kvmalloc(%d): to the caller", size)
		require.NoError(t, s.Kvfree(tk, v))
	}

	file, line = callSite()
	n, err := s.TouchAnon(tk, 20)
	require.NoError(t, err)
	require.Equal(t, int64(20), n)
	assert.GreaterOrEqual(t, tagAt(t, s, file, line).Bytes, int64(20*zone.PageSize), "a fault's pages are its caller's")

	wq := s.NewWorkqueue("sites", 0)
	var workLine int
	var wo mmsim.Object
	work := mmsim.NewWork("sites", func(kt *memalloc.Task) error {
		var err error
		_, workLine = callSite()
		wo, err = s.Kmalloc(kt, 64, gfp.Kernel)
		return err
	})
	require.True(t, wq.Queue(tk, work))
	require.NoError(t, wq.FlushWork(tk, work))
	assert.Equal(t, int64(64), tagAt(t, s, "allocinfo_test.go", workLine).Bytes, "a work item's kmalloc is its line's")
	require.NoError(t, s.Kfree(tk, wo))
	require.NoError(t, s.CheckInvariants())
}

// TestAllocinfoConcurrent charges and uncharges from several tasks at
// once, from the same lines, and checks that the counters hold exactly
// what is still live (run it with -race).
func TestAllocinfoConcurrent(t *testing.T) {
	s := profSystem(t)
	const workers, rounds = 4, 300
	type live struct {
		pages []zone.Page
		objs  []mmsim.Object
	}
	kept := make([]live, workers)
	var pageLine, objLine int
	var g errgroup.Group
	for w := range workers {
		tk := s.NewTask(fmt.Sprintf("w%d", w))
		g.Go(func() error {
			for i := range rounds {
				_, _, pl, _ := runtime.Caller(0)
				p, err := s.AllocPages(tk, gfp.Kernel, zone.Order(i%3))
				if err != nil {
					return err
				}
				_, _, ol, _ := runtime.Caller(0)
				o, err := s.Kmalloc(tk, 200, gfp.Kernel)
				if err != nil {
					return err
				}
				if w == 0 && i == 0 {
					pageLine, objLine = pl+1, ol+1
				}
				if i%2 == 0 {
					kept[w].pages, kept[w].objs = append(kept[w].pages, p), append(kept[w].objs, o)
					continue
				}
				if err := s.FreePages(tk, p, zone.Order(i%3)); err != nil {
					return err
				}
				if err := s.Kfree(tk, o); err != nil {
					return err
				}
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
	var pageBytes int64
	for i := 0; i < rounds; i += 2 {
		pageBytes += zone.PageSize << (i % 3)
	}
	pages := tagAt(t, s, "allocinfo_test.go", pageLine)
	assert.Equal(t, int64(workers*rounds/2), pages.Calls)
	assert.Equal(t, workers*pageBytes, pages.Bytes)
	objs := tagAt(t, s, "allocinfo_test.go", objLine)
	assert.Equal(t, mmsim.AllocTag{File: "allocinfo_test.go", Line: objLine, Func: "TestAllocinfoConcurrent.func1",
		Bytes: workers * rounds / 2 * 256, Calls: workers * rounds / 2}, objs)

	tk := s.NewTask("free")
	for w := range kept {
		for i, p := range kept[w].pages {
			require.NoError(t, s.FreePages(tk, p, zone.Order(2*i%3)))
		}
		for _, o := range kept[w].objs {
			require.NoError(t, s.Kfree(tk, o))
		}
	}
	assert.Zero(t, tagAt(t, s, "allocinfo_test.go", pageLine).Bytes)
	assert.Zero(t, tagAt(t, s, "allocinfo_test.go", objLine).Bytes)
	require.NoError(t, s.CheckInvariants())
}

// TestReplayAllocinfo: with profiling on, what a replay allocates is
// charged to the line that called Replay — page blocks and slab objects
// alike (a new slab's page to alloc_slab_page, as always).
func TestReplayAllocinfo(t *testing.T) {
	s := profSystem(t)
	text := strings.Join([]string{
		"sh 1 [000] 1.000000: kmem:mm_page_alloc: page=0x10 pfn=0x10 order=1 migratetype=0 gfp_flags=GFP_KERNEL",
		"sh 1 [000] 1.000001: kmem:mm_page_alloc: page=0x20 pfn=0x20 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
		"sh 1 [000] 1.000002: kmem:kmalloc: call_site=f+0x1 ptr=0xffff888102c8ab80 bytes_req=100 bytes_alloc=128 gfp_flags=GFP_KERNEL node=-1 accounted=false",
		"sh 1 [000] 1.000003: kmem:mm_page_free: page=0x20 pfn=0x20 order=0",
	}, "\n")
	_, _, line, _ := runtime.Caller(0)
	_, err := s.Replay(strings.NewReader(text), mmsim.ReplayProgress(nil))
	require.NoError(t, err)
	tag := tagAt(t, s, "allocinfo_test.go", line+1)
	require.Equal(t, "TestReplayAllocinfo", tag.Func)
	// The order-1 block and the 128-byte object are held; the order-0
	// block came and went.
	require.EqualValues(t, 2*zone.PageSize+128, tag.Bytes)
	require.EqualValues(t, 2, tag.Calls)
}
