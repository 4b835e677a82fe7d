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
// *_noprof variants leave the caller's tag in place. mmsim does the same
// with the task's tag (memalloc.Task.SaveAllocTag), set where the macro
// would be, and keeps a walk of the Go stack for the allocations no tag
// covers:
//
//   - Each System method that allocates for its caller is an
//     alloc_hooks(): AllocPages, AllocPagesBulk, Kmalloc, KmemCacheAlloc,
//     Vmalloc, Kvmalloc, and those that fault pages in (TouchAnon, Read,
//     Write, ReadFile, WriteFile, Mmap, MmapFile, Mlock, Fork,
//     MemfdSecret). It takes the one frame that called it
//     (runtime.Callers(2, pc[:1])) and looks its pc up (callerTag): when
//     that frame is the user's (classify), the site's tag is the task's
//     until the method returns. When it is not (mmsim calling itself, as
//     Explain and replay do, or a standard-library frame, which may be a
//     callback) the method sets no tag, clearing any outer one, and the
//     hooks walk. An inner tag replaces an outer one, as a nested
//     alloc_hooks() does: a user's shrinker that calls Kmalloc inside
//     another call's reclaim is charged its own line.
//   - The walk, when the task has no tag, finds the first frame outside
//     mmsim: not in the module's packages, except its examples and
//     _test.go files, which are users. Runtime frames, golang.org/x/sync
//     (the daemons' goroutines) and standard-library frames that lead back
//     into mmsim (callbacks) are skipped. A stack with no such frame (a
//     daemon's work, on the daemon's own task) is charged to its outermost
//     mmsim frame. It is cached by call stack: one runtime.Callers of a
//     few frames and a map lookup under the profiler's lock.
//   - The tag and the walk give the same site: below a System method there
//     are only mmsim frames up to its caller, save user code the method
//     calls back (a shrinker, a work item), which allocates through System
//     methods of its own or on a task of its own; and a new slab.
//   - Everything a System call allocates on the way is charged to that
//     site, as the *_noprof paths are: a large kmalloc's pages, vmalloc's
//     and kvmalloc's pages and page tables, a fault's page tables, the
//     debug allocators' metadata. The exception is a new slab:
//     allocate_slab's page allocation goes through alloc_frozen_pages(),
//     whose alloc_hooks() gives it a tag of its own, so slab pages are
//     charged to "mm/slub.c:3280 func:alloc_slab_page" and a kmalloc's
//     site to the object alone, as on a real machine. Slab's newSlab sets
//     that tag on the task (slab.Allocator.SetSlabPageTag) around the new
//     slab, and the walk finds it through kernelAllocSites.
//   - A slab object is charged the cache's object stride (s->size); caches
//     with SLAB_NO_OBJ_EXT or SLAB_NOLEAKTRACE are not tracked. A page
//     block is charged PAGE_SIZE << order, once per call (alloc_pages_bulk
//     counts each page as a call). A free takes both back.
//   - Tags are listed in the order of their first use: the kernel lists
//     its tags in the order the linker laid them out, which a Go program
//     does not have. A tag stays listed once it is back at zero, as the
//     kernel prints every tag it has. A call site's tag is listed at its
//     first charge, not at the call: a call that allocates nothing lists
//     nothing.
//   - Each live page block's tag is kept in a table by pfn, one atomic
//     pointer a page, allocated a section at a time on first use: a page
//     charge and uncharge take no lock. Slab objects are kept in maps by
//     address, sharded by page.
//
// An order-0 AllocPages+FreePages pair costs about 5x what it does
// without profiling (BENCHMARKS.md), most of it the runtime.Callers of
// one frame: Go has no call-site macro, and no cheaper way to the caller's
// pc.
//
// Differences: a page migrated by compaction loses its tag
// (pgalloc_tag_swap is not modelled); no tag is ever "accurate:no"; the
// slabobj_ext vectors and page_ext that profiling itself costs are not
// allocated; kmalloc-no-objext caches are not created. User code called
// back inside a System call that allocates on the call's task without a
// System method, through a subpackage's API, is charged to the call's
// site where the walk would have found its own frame: it is a *_noprof
// call in the kernel's terms.

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
	// listed says the tag is in allocProfiler.tags: it has been charged.
	// Written under the profiler's mu, read without it.
	listed atomic.Bool
	// bytes and calls are the live bytes and allocations. Atomic: the
	// allocation paths add to them without the profiler's lock, as the
	// kernel's per-CPU counters are summed unlocked.
	bytes, calls atomic.Int64
	// pageRefs[o] is what a page block of order o charged here
	// remembers. Invariant: immutable after newTag.
	pageRefs [zone.MaxPageOrder + 1]tagRef
}

// newTag returns a new, unlisted tag of site.
func newTag(site siteKey) *allocTag {
	tag := &allocTag{site: site}
	for o := range tag.pageRefs {
		tag.pageRefs[o] = tagRef{tag, zone.PageSize << o}
	}
	return tag
}

// pageRef returns what a page block of order charged to tag remembers.
func (tag *allocTag) pageRef(order zone.Order) *tagRef {
	if order >= 0 && int(order) < len(tag.pageRefs) {
		return &tag.pageRefs[order]
	}
	return &tagRef{tag, zone.PageSize << order}
}

// tagRef is what a live allocation remembers: its tag and its bytes.
type tagRef struct {
	tag   *allocTag
	bytes int64
}

// The page table: pageSectionPages pfns a section.
const (
	pageSectionShift = 15
	pageSectionPages = 1 << pageSectionShift
)

// pageSection holds the tag of every live page block whose first pfn it
// covers; nil for none.
type pageSection [pageSectionPages]atomic.Pointer[tagRef]

// objShards is how many maps the slab objects are kept in.
const objShards = 16

// objShard is one of them: the tag of every live slab object by its
// address.
type objShard struct {
	mu   sync.Mutex
	objs map[uint64]tagRef // protected by mu
}

// allocProfiler is the profiling state of one System.
type allocProfiler struct {
	// root is the module's directory as runtime frames spell it, with a
	// trailing slash: files below it print relative to it. Invariant:
	// immutable.
	root string
	// slabPage is alloc_slab_page's tag, which slab sets on the task
	// around a new slab. Invariant: immutable.
	slabPage *allocTag

	// callers caches callerTag: the tag of each entry point's call site
	// by pc, nil for a call site that is not the user's. Copied on
	// write: read without a lock, replaced under mu.
	callers atomic.Pointer[map[uintptr]*allocTag]

	// sections is the page table by pfn >> pageSectionShift, each
	// allocated on first use. Invariant: its length is immutable.
	sections []atomic.Pointer[pageSection]

	// objs holds the tag of every live slab object, by address.
	objs [objShards]objShard

	mu sync.Mutex
	// short and long cache the stack walk; a nil entry of short says
	// the site is deeper than shortDepth. Protected by mu.
	short map[shortKey]*allocTag
	long  map[longKey]*allocTag
	// tags are the listed tags in order of first use; bySite finds every
	// tag, listed or not. Protected by mu.
	tags   []*allocTag
	bySite map[siteKey]*allocTag
	// pages holds the tag of every live page block the page table does
	// not cover (none: the zones are fixed at boot). Protected by mu.
	pages map[zone.PFN]tagRef
}

// newAllocProfiler returns the profiler of a machine whose pfns are below
// endPFN.
func newAllocProfiler(endPFN zone.PFN) *allocProfiler {
	p := &allocProfiler{
		short:    map[shortKey]*allocTag{},
		long:     map[longKey]*allocTag{},
		bySite:   map[siteKey]*allocTag{},
		pages:    map[zone.PFN]tagRef{},
		sections: make([]atomic.Pointer[pageSection], (endPFN+pageSectionPages-1)>>pageSectionShift),
	}
	for i := range p.objs {
		p.objs[i].objs = map[uint64]tagRef{}
	}
	p.callers.Store(&map[uintptr]*allocTag{})
	if _, file, _, ok := runtime.Caller(0); ok {
		p.root = file[:strings.LastIndexByte(file, '/')+1]
	}
	p.slabPage = p.tagLocked(kernelAllocSites[slabNewSlab]) // p is not shared yet
	return p
}

// slabNewSlab is the function whose page allocation alloc_slab_page's
// alloc_hooks() stands for.
const slabNewSlab = "github.com/mmsim/mmsim/internal/slab.(*Cache).newSlab"

// kernelAllocSites are the mmsim functions that stand for a kernel
// allocation made through alloc_hooks(): an allocation under them is
// charged to the kernel's site, not to the caller's.
var kernelAllocSites = map[string]siteKey{
	// allocate_slab -> alloc_slab_page -> alloc_frozen_pages(), which is
	// alloc_hooks(alloc_frozen_pages_noprof()) (mm/internal.h).
	slabNewSlab: {file: "mm/slub.c", line: 3280, fn: "alloc_slab_page"},
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

// tagLocked returns site's tag, creating it unlisted.
//
// Preconditions: p.mu is held.
func (p *allocProfiler) tagLocked(site siteKey) *allocTag {
	tag := p.bySite[site]
	if tag == nil {
		tag = newTag(site)
		p.bySite[site] = tag
	}
	return tag
}

// listLocked lists tag, if it is not yet: at its first charge.
//
// Preconditions: p.mu is held.
func (p *allocProfiler) listLocked(tag *allocTag) {
	if !tag.listed.Load() {
		tag.listed.Store(true)
		p.tags = append(p.tags, tag)
	}
}

// registerLocked returns site's tag, creating and listing it: the walk's
// tags are charged as they are found.
//
// Preconditions: p.mu is held.
func (p *allocProfiler) registerLocked(site siteKey) *allocTag {
	tag := p.tagLocked(site)
	p.listLocked(tag)
	return tag
}

// saveCallerTag is alloc_hooks() at the top of a System method that
// allocates for its caller: it sets t's allocation tag to the tag of the
// method's call site (the frame above the method) and returns the tag it
// replaced, for the method to restore when it returns:
//
//	if pr := s.prof; pr != nil {
//		defer t.RestoreAllocTag(pr.saveCallerTag(t))
//	}
//
// Kernel: include/linux/alloc_tag.h:alloc_hooks(), alloc_tag_save().
//
// One function rather than the same four lines in every method costs a
// frame more for runtime.Callers to unwind (a few tens of ns a call, with
// profiling on only).
func (p *allocProfiler) saveCallerTag(t *memalloc.Task) any {
	return p.saveTag(t, 4) // above Callers, saveTag, saveCallerTag and the System method
}

// saveTag is saveCallerTag for a method whose caller's frame is skip
// frames up from runtime.Callers's.
func (p *allocProfiler) saveTag(t *memalloc.Task, skip int) any {
	var pc [1]uintptr
	runtime.Callers(skip, pc[:])
	return t.SaveAllocTag(p.callerTag(pc[0]))
}

// callerTag is the alloc_tag that alloc_hooks() gives the allocations of
// a System method called from pc, its caller's frame as runtime.Callers
// gives it: the tag of the call site when that frame is the user's, nil
// when it is not (mmsim itself, a standard-library callback: the walk
// finds the site). The result goes to Task.SaveAllocTag. The common case
// is one lookup in a map read without a lock; the caller's
// runtime.Callers of one frame is the rest of the cost.
//
// Kernel: include/linux/alloc_tag.h:alloc_hooks(), DEFINE_ALLOC_TAG().
func (p *allocProfiler) callerTag(pc uintptr) any {
	tag, ok := (*p.callers.Load())[pc]
	if !ok {
		tag = p.resolveCaller(pc)
	}
	if tag == nil {
		return nil // not a typed nil: the task has no tag
	}
	return tag
}

// resolveCaller classifies the caller pc and caches its tag.
func (p *allocProfiler) resolveCaller(pc uintptr) *allocTag {
	fr, _ := runtime.CallersFrames([]uintptr{pc}).Next()
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.callers.Load()
	if tag, ok := old[pc]; ok {
		return tag
	}
	var tag *allocTag
	if classify(fr) == frameUser {
		tag = p.tagLocked(p.site(fr))
	}
	m := make(map[uintptr]*allocTag, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[pc] = tag
	p.callers.Store(&m)
	return tag
}

// current returns the tag an allocation made now by t is charged to: t's
// tag when it has one, else the call site the stack walk finds. skip is
// as for runtime.Callers, from the caller: where the walk starts.
func (p *allocProfiler) current(t *memalloc.Task, skip int) *allocTag {
	if t != nil {
		if tag, ok := t.AllocTag().(*allocTag); ok {
			if !tag.listed.Load() {
				p.mu.Lock()
				p.listLocked(tag)
				p.mu.Unlock()
			}
			return tag
		}
	}
	var key shortKey
	n := runtime.Callers(skip+1, key[:])
	p.mu.Lock()
	tag := p.shortLocked(&key, n)
	p.mu.Unlock()
	if tag == nil {
		tag = p.longTag(skip + 1)
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

// pageSlot returns the page table's slot of pfn, allocating its section
// when create is set; nil when the section is not there (and create is
// not set: nothing of it is charged), or when the table does not cover
// pfn (inTable false).
func (p *allocProfiler) pageSlot(pfn zone.PFN, create bool) (slot *atomic.Pointer[tagRef], inTable bool) {
	i := pfn >> pageSectionShift
	if i >= zone.PFN(len(p.sections)) {
		return nil, false
	}
	sec := p.sections[i].Load()
	if sec == nil {
		if !create {
			return nil, true
		}
		if sec = new(pageSection); !p.sections[i].CompareAndSwap(nil, sec) {
			sec = p.sections[i].Load()
		}
	}
	return &sec[pfn&(pageSectionPages-1)], true
}

// tagPages charges a new page block to t's allocation: pgalloc_tag_add.
// The common case is an atomic store in the page table and two atomic
// adds, with no lock.
//
// Kernel: mm/page_alloc.c:__pgalloc_tag_add(), include/linux/alloc_tag.h:alloc_tag_add().
func (p *allocProfiler) tagPages(t *memalloc.Task, pfn zone.PFN, order zone.Order) {
	tag := p.current(t, 2) // the walk starts at the hook
	ref := tag.pageRef(order)
	if slot, ok := p.pageSlot(pfn, true); ok {
		slot.Store(ref)
	} else {
		p.mu.Lock()
		p.pages[pfn] = *ref
		p.mu.Unlock()
	}
	tag.bytes.Add(ref.bytes)
	tag.calls.Add(1)
}

// untagPages takes a freed page block back: pgalloc_tag_sub.
//
// Kernel: mm/page_alloc.c:__pgalloc_tag_sub(), include/linux/alloc_tag.h:alloc_tag_sub().
func (p *allocProfiler) untagPages(pfn zone.PFN) {
	var ref *tagRef
	if slot, ok := p.pageSlot(pfn, false); ok {
		if slot != nil {
			ref = slot.Swap(nil)
		}
	} else {
		p.mu.Lock()
		if r, ok := p.pages[pfn]; ok {
			delete(p.pages, pfn)
			ref = &r
		}
		p.mu.Unlock()
	}
	if ref != nil {
		ref.tag.bytes.Add(-ref.bytes)
		ref.tag.calls.Add(-1)
	}
}

// objShard returns the shard that keeps the slab object at addr.
func (p *allocProfiler) objShard(addr uint64) *objShard {
	return &p.objs[(addr/zone.PageSize)%objShards]
}

// TagAlloc charges a new slab object to t's allocation (slab.TagHooks).
//
// Kernel: mm/slub.c:__alloc_tagging_slab_alloc_hook(), include/linux/alloc_tag.h:alloc_tag_add().
func (p *allocProfiler) TagAlloc(t *memalloc.Task, _ *slab.Cache, addr uint64, bytes int) {
	tag := p.current(t, 2) // the walk starts at the slab code that calls the hook
	sh := p.objShard(addr)
	sh.mu.Lock()
	sh.objs[addr] = tagRef{tag, int64(bytes)}
	sh.mu.Unlock()
	tag.bytes.Add(int64(bytes))
	tag.calls.Add(1)
}

// TagFree takes a freed slab object back (slab.TagHooks).
//
// Kernel: mm/slub.c:__alloc_tagging_slab_free_hook(), include/linux/alloc_tag.h:alloc_tag_sub().
func (p *allocProfiler) TagFree(_ *memalloc.Task, _ *slab.Cache, addr uint64, _ int) {
	sh := p.objShard(addr)
	sh.mu.Lock()
	ref, ok := sh.objs[addr]
	if ok {
		delete(sh.objs, addr)
	}
	sh.mu.Unlock()
	if ok {
		ref.tag.bytes.Add(-ref.bytes)
		ref.tag.calls.Add(-1)
	}
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
