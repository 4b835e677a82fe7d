package mmsim

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mmsim/mmsim/internal/slab"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// Memory allocation profiling (Config.AllocProfiling): every page block
// and slab object is charged to a call site, and WriteAllocinfo prints
// the live bytes and allocations of each site as /proc/allocinfo does.
//
// In the kernel, alloc_hooks() around each allocation API sets
// current->alloc_tag to a tag of its call site, and the page allocator
// (post_alloc_hook) and slab (slab_post_alloc_hook) charge that tag; the
// *_noprof variants leave the caller's tag in place. mmsim has no macro
// at the call site, so it finds the site by walking the Go stack:
//
//   - The call site is the first frame outside mmsim: not in the module's
//     packages, except its examples and _test.go files, which are users.
//     Runtime frames, golang.org/x/sync (the daemons' goroutines) and
//     standard-library frames that lead back into mmsim (callbacks) are
//     skipped. A stack with no such frame (a daemon's work) is charged to
//     its outermost mmsim frame.
//   - Everything a System call allocates on the way is charged to that
//     site, as the *_noprof paths are: a large kmalloc's pages, vmalloc's
//     and kvmalloc's pages and page tables, the debug allocators'
//     metadata. The exception is a new slab: allocate_slab's page
//     allocation goes through alloc_frozen_pages(), whose alloc_hooks()
//     gives it a tag of its own, so slab pages are charged to
//     "mm/slub.c:3280 func:alloc_slab_page" and a kmalloc's site to the
//     object alone, as on a real machine.
//   - A slab object is charged the cache's object stride (s->size); caches
//     with SLAB_NO_OBJ_EXT or SLAB_NOLEAKTRACE are not tracked. A page
//     block is charged PAGE_SIZE << order, once per call (alloc_pages_bulk
//     counts each page as a call). A free takes both back.
//   - Tags are listed in the order of their first use: the kernel lists
//     its tags in the order the linker laid them out, which a Go program
//     does not have. A tag stays listed once it is back at zero, as the
//     kernel prints every tag it has.
//
// The stack walk is cached: a call stack seen before costs one
// runtime.Callers and a map lookup under the profiler's lock.
//
// Differences: a page migrated by compaction loses its tag
// (pgalloc_tag_swap is not modelled); no tag is ever "accurate:no"; the
// slabobj_ext vectors and page_ext that profiling itself costs are not
// allocated; kmalloc-no-objext caches are not created.

// The stack walk is keyed on the innermost frames: shortDepth of them,
// which hold the call site of every direct System call, and longDepth for
// the deeper paths (vmalloc's pages, the debug allocators' metadata).
const (
	shortDepth = 6
	longDepth  = 32
)

// shortKey and longKey are call stacks as runtime.Callers gives them,
// zero-padded.
type (
	shortKey [shortDepth]uintptr
	longKey  [longDepth]uintptr
)

// siteKey is a code tag: where an allocation is made.
//
// Kernel: include/linux/codetag.h:struct codetag.
type siteKey struct {
	file string
	line int
	fn   string
}

// allocTag is one site's counters.
//
// Kernel: include/linux/alloc_tag.h:struct alloc_tag.
type allocTag struct {
	site siteKey
	// bytes and calls are the live bytes and allocations. Atomic: the
	// allocation paths add to them after dropping the profiler's lock,
	// as the kernel's per-CPU counters are summed unlocked.
	bytes, calls atomic.Int64
}

// tagRef is what a live allocation remembers: its tag and its bytes.
type tagRef struct {
	tag   *allocTag
	bytes int64
}

// allocProfiler is the profiling state of one System.
type allocProfiler struct {
	// root is the module's directory as runtime frames spell it, with a
	// trailing slash: files below it print relative to it. Invariant:
	// immutable.
	root string

	mu sync.Mutex
	// short and long cache the stack walk; a nil entry of short says
	// the site is deeper than shortDepth. Protected by mu.
	short map[shortKey]*allocTag
	long  map[longKey]*allocTag
	// tags are the tags in order of first use; bySite finds them.
	// Protected by mu.
	tags   []*allocTag
	bySite map[siteKey]*allocTag
	// pages holds the tag of every live page block by its first pfn,
	// objs that of every live slab object by its address. Protected by mu.
	pages map[zone.PFN]tagRef
	objs  map[uint64]tagRef
}

func newAllocProfiler() *allocProfiler {
	p := &allocProfiler{
		short:  map[shortKey]*allocTag{},
		long:   map[longKey]*allocTag{},
		bySite: map[siteKey]*allocTag{},
		pages:  map[zone.PFN]tagRef{},
		objs:   map[uint64]tagRef{},
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		p.root = file[:strings.LastIndexByte(file, '/')+1]
	}
	return p
}

// kernelAllocSites are the mmsim functions that stand for a kernel
// allocation made through alloc_hooks(): an allocation under them is
// charged to the kernel's site, not to the caller's.
var kernelAllocSites = map[string]siteKey{
	// allocate_slab -> alloc_slab_page -> alloc_frozen_pages(), which is
	// alloc_hooks(alloc_frozen_pages_noprof()) (mm/internal.h).
	"github.com/mmsim/mmsim/internal/slab.(*Cache).newSlab": {file: "mm/slub.c", line: 3280, fn: "alloc_slab_page"},
}

// The classes of a stack frame.
const (
	frameUser     = iota // the call site
	frameMmsim           // inside the simulator
	framePlumbing        // the runtime, errgroup: never a call site
	frameStd             // the standard library: a call site unless it leads back into mmsim
)

// classify says what kind of frame fr is.
func classify(fr runtime.Frame) int {
	fn := fr.Function
	switch {
	case strings.HasSuffix(fr.File, "_test.go"), strings.HasPrefix(fn, "github.com/mmsim/mmsim/examples/"):
		return frameUser
	case strings.HasPrefix(fn, "github.com/mmsim/mmsim.") || strings.HasPrefix(fn, "github.com/mmsim/mmsim/"):
		return frameMmsim
	case strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "golang.org/x/sync/"):
		return framePlumbing
	}
	// A standard-library package path has no dot in its first element;
	// package main has none either but is a program.
	pkg := fn
	slash := strings.LastIndexByte(fn, '/') + 1
	if dot := strings.IndexByte(fn[slash:], '.'); dot >= 0 {
		pkg = fn[:slash+dot]
	}
	if first, _, _ := strings.Cut(pkg, "/"); pkg != "main" && !strings.Contains(first, ".") {
		return frameStd
	}
	return frameUser
}

// resolve finds the site of the stack pcs: the first kernel site or user
// frame, skipping standard-library frames that lead back into mmsim. ok
// is false when pcs hold no user frame, or when cut (pcs may not be the
// whole stack) and the last frames are standard-library ones that might
// lead back into mmsim; outer is the outermost mmsim frame's site.
func (p *allocProfiler) resolve(pcs []uintptr, cut bool) (site siteKey, ok bool, outer siteKey) {
	var frames []runtime.Frame
	it := runtime.CallersFrames(pcs)
	for {
		fr, more := it.Next()
		frames = append(frames, fr)
		if !more {
			break
		}
	}
	for i, fr := range frames {
		if k, ok := kernelAllocSites[fr.Function]; ok {
			return k, true, k
		}
		switch classify(fr) {
		case frameMmsim:
			outer = p.site(fr)
		case frameStd:
			j := i + 1
			for j < len(frames) && classify(frames[j]) == frameStd {
				j++
			}
			if j < len(frames) && classify(frames[j]) == frameMmsim {
				continue // a callback inside mmsim
			}
			if j == len(frames) && cut {
				return siteKey{}, false, outer
			}
			return p.site(fr), true, outer
		case frameUser:
			return p.site(fr), true, outer
		}
	}
	return siteKey{}, false, outer
}

// site returns fr's code tag: the file relative to the module root (or its
// directory and name, outside it), the line, the function without its
// package path.
func (p *allocProfiler) site(fr runtime.Frame) siteKey {
	file := fr.File
	if p.root != "" && strings.HasPrefix(file, p.root) {
		file = file[len(p.root):]
	} else {
		file = filepath.ToSlash(filepath.Join(filepath.Base(filepath.Dir(file)), filepath.Base(file)))
	}
	fn := fr.Function
	if i := strings.LastIndexByte(fn, '/'); i >= 0 {
		fn = fn[i+1:]
	}
	if i := strings.IndexByte(fn, '.'); i >= 0 {
		fn = fn[i+1:]
	}
	return siteKey{file: file, line: fr.Line, fn: fn}
}

// registerLocked returns site's tag, creating it.
//
// Preconditions: p.mu is held.
func (p *allocProfiler) registerLocked(site siteKey) *allocTag {
	tag := p.bySite[site]
	if tag == nil {
		tag = &allocTag{site: site}
		p.bySite[site] = tag
		p.tags = append(p.tags, tag)
	}
	return tag
}

// shortLocked returns the tag of the short stack key (n frames), or nil
// when the site is deeper.
//
// Preconditions: p.mu is held.
func (p *allocProfiler) shortLocked(key *shortKey, n int) *allocTag {
	if tag, seen := p.short[*key]; seen {
		return tag
	}
	var tag *allocTag
	site, ok, outer := p.resolve(append([]uintptr(nil), key[:n]...), n == len(key))
	switch {
	case ok:
		tag = p.registerLocked(site)
	case n < len(key): // the whole stack, and no user frame in it
		tag = p.registerLocked(outer)
	}
	p.short[*key] = tag
	return tag
}

// longTag returns the tag of a call stack whose site is deeper than
// shortDepth; skip is as for runtime.Callers, from the caller.
func (p *allocProfiler) longTag(skip int) *allocTag {
	var key longKey
	n := runtime.Callers(skip+1, key[:])
	p.mu.Lock()
	defer p.mu.Unlock()
	if tag := p.long[key]; tag != nil {
		return tag
	}
	site, ok, outer := p.resolve(append([]uintptr(nil), key[:n]...), n == len(key))
	switch {
	case ok:
	case n < len(key):
		site = outer
	default:
		// Deeper still: walk the whole stack, and do not cache (the
		// same key may come from other sites).
		deep := make([]uintptr, 1024)
		if site, ok, outer = p.resolve(deep[:runtime.Callers(skip+1, deep)], false); !ok {
			site = outer
		}
		return p.registerLocked(site)
	}
	tag := p.registerLocked(site)
	p.long[key] = tag
	return tag
}

// charge records a live allocation of bytes at the caller's site: a page
// block at pfn (obj false) or a slab object at addr. The common case is
// one runtime.Callers of shortDepth frames and one map lookup.
//
// Kernel: include/linux/alloc_tag.h:alloc_tag_add().
func (p *allocProfiler) charge(obj bool, id uint64, bytes int64) {
	var key shortKey
	n := runtime.Callers(3, key[:]) // above charge and its hook
	p.mu.Lock()
	tag := p.shortLocked(&key, n)
	if tag == nil {
		p.mu.Unlock()
		tag = p.longTag(3)
		p.mu.Lock()
	}
	if obj {
		p.objs[id] = tagRef{tag, bytes}
	} else {
		p.pages[zone.PFN(id)] = tagRef{tag, bytes}
	}
	p.mu.Unlock()
	tag.bytes.Add(bytes)
	tag.calls.Add(1)
}

// uncharge takes a freed allocation back from its tag.
//
// Kernel: include/linux/alloc_tag.h:alloc_tag_sub().
func (p *allocProfiler) uncharge(obj bool, id uint64) {
	p.mu.Lock()
	var ref tagRef
	var ok bool
	if obj {
		if ref, ok = p.objs[id]; ok {
			delete(p.objs, id)
		}
	} else {
		if ref, ok = p.pages[zone.PFN(id)]; ok {
			delete(p.pages, zone.PFN(id))
		}
	}
	p.mu.Unlock()
	if ok {
		ref.tag.bytes.Add(-ref.bytes)
		ref.tag.calls.Add(-1)
	}
}

// tagPages charges a new page block: pgalloc_tag_add.
//
// Kernel: mm/page_alloc.c:__pgalloc_tag_add().
func (p *allocProfiler) tagPages(pfn zone.PFN, order zone.Order) {
	p.charge(false, uint64(pfn), zone.PageSize<<order)
}

// untagPages takes a freed page block back: pgalloc_tag_sub.
//
// Kernel: mm/page_alloc.c:__pgalloc_tag_sub().
func (p *allocProfiler) untagPages(pfn zone.PFN) { p.uncharge(false, uint64(pfn)) }

// TagAlloc charges a new slab object (slab.TagHooks).
//
// Kernel: mm/slub.c:__alloc_tagging_slab_alloc_hook().
func (p *allocProfiler) TagAlloc(_ *memalloc.Task, _ *slab.Cache, addr uint64, bytes int) {
	p.charge(true, addr, int64(bytes))
}

// TagFree takes a freed slab object back (slab.TagHooks).
//
// Kernel: mm/slub.c:__alloc_tagging_slab_free_hook().
func (p *allocProfiler) TagFree(_ *memalloc.Task, _ *slab.Cache, addr uint64, _ int) {
	p.uncharge(true, addr)
}

// AllocTag is one line of /proc/allocinfo: a call site, and the bytes and
// number of the allocations made there that are still live.
//
// Kernel: include/linux/alloc_tag.h:struct alloc_tag, struct codetag.
type AllocTag struct {
	// File, Line and Func name the site: a Go file relative to the
	// mmsim module (or its directory and name outside it) and the
	// function without its package path, or a kernel site such as
	// mm/slub.c:3280 alloc_slab_page.
	File string
	Line int
	Func string
	// Bytes and Calls are the live bytes and allocations.
	Bytes, Calls int64
}

// String prints the tag as its /proc/allocinfo line, without the newline:
// "%12lli %8llu file:line func:name " (the trailing space is the kernel's).
//
// Kernel: lib/alloc_tag.c:alloc_tag_to_text(), lib/codetag.c:codetag_to_text().
func (a AllocTag) String() string {
	return fmt.Sprintf("%12d %8d %s:%d func:%s ", a.Bytes, a.Calls, a.File, a.Line, a.Func)
}

// Allocinfo returns every tag in /proc/allocinfo's order (first use),
// including those back at zero; nil without Config.AllocProfiling.
//
// Kernel: lib/alloc_tag.c:allocinfo_show().
func (s *System) Allocinfo() []AllocTag {
	p := s.prof
	if p == nil {
		return nil
	}
	p.mu.Lock()
	tags := append([]*allocTag(nil), p.tags...)
	p.mu.Unlock()
	out := make([]AllocTag, len(tags))
	for i, t := range tags {
		out[i] = AllocTag{File: t.site.file, Line: t.site.line, Func: t.site.fn, Bytes: t.bytes.Load(), Calls: t.calls.Load()}
	}
	return out
}

// WriteAllocinfo writes /proc/allocinfo: the version header, the column
// header, then one line per tag (Allocinfo's order). Without
// Config.AllocProfiling the file does not exist: the error wraps
// ErrInvalid.
//
// Kernel: lib/alloc_tag.c:print_allocinfo_header(), allocinfo_show().
func (s *System) WriteAllocinfo(w io.Writer) error {
	if s.prof == nil {
		return fmt.Errorf("%w: /proc/allocinfo: allocation profiling is off (Config.AllocProfiling)", ErrInvalid)
	}
	bw := bufio.NewWriter(w)
	bw.WriteString("allocinfo - version: 2.0\n")
	bw.WriteString("#     <size>  <calls> <tag info>\n")
	for _, t := range s.Allocinfo() {
		bw.WriteString(t.String())
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
