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
