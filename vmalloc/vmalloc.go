package vmalloc

import (
	"errors"
	"fmt"
	"sync"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/internal/sim"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// The vmalloc range of x86_64 with 4-level paging.
const (
	// Start is VMALLOC_START. Kernel: arch/x86/include/asm/pgtable_64_types.h:VMALLOC_START.
	Start uint64 = 0xffffc90000000000
	// End is VMALLOC_END, the last byte of the range (the range is
	// [Start, End), as is_vmalloc_addr and alloc_vmap_area treat it).
	// Kernel: arch/x86/include/asm/pgtable_64_types.h:VMALLOC_END.
	End uint64 = 0xffffe8ffffffffff
)

// vmStructSize is sizeof(struct vm_struct) on x86_64 without
// CONFIG_HAVE_ARCH_HUGE_VMALLOC: nine 8-byte fields (kmalloc-96).
const vmStructSize = 72

// Default callers, shown in /proc/vmallocinfo when the caller gives none.
const (
	defaultVmallocCaller  = "__vmalloc_noprof"
	defaultKvmallocCaller = "__kvmalloc_node_noprof"
)

// defaultStallLimit bounds the NOFAIL retry loops when Options.StallLimit
// is 0: two minutes of simulated one-tick sleeps, the hung-task timeout.
const defaultStallLimit = 120 * 1e9

// Slab is the kmalloc vmalloc needs (the page array, the vm_struct,
// kvmalloc's first attempt). The root package passes internal/slab's
// Allocator.
//
// Kernel: mm/slub.c:__kmalloc_node_noprof(), kfree().
type Slab interface {
	// Kmalloc returns the address of a size-byte object; errors wrap
	// zone.ErrNoMemory.
	Kmalloc(t *memalloc.Task, size int, mask gfp.Mask) (uint64, error)
	// Kfree frees an object Kmalloc returned.
	Kfree(t *memalloc.Task, addr uint64) error
}

// Options configures an Allocator. Every field may be zero.
type Options struct {
	// CPUs is num_online_cpus(), for lazy_max_pages() = fls(CPUs) × 32 MiB
	// of pages (16384 pages on 2 CPUs). 0 counts as 1.
	CPUs int
	// Report receives WARNs and warn_alloc reports.
	Report bug.Sink
	// Sleep lets d ns of simulated time pass for a task that waits
	// (schedule_timeout_uninterruptible(1) passes sim.Jiffy).
	Sleep func(d int64)
	// Now returns the simulated time in ns.
	Now func() int64
	// PreFix is a what-if: page tables are allocated as before
	// memalloc_apply_gfp_scope existed in vmap, with GFP_PGTABLE_KERNEL and
	// no scope whatever the caller's mask, so a GFP_NOFS vmalloc's
	// page-table allocation may recurse into the filesystem — the
	// reclaim-recursion deadlock the scope fixed.
	PreFix bool
	// FatalSignalPending reports whether t has a fatal signal pending
	// (fatal_signal_pending(current)); nil means never.
	FatalSignalPending func(t *memalloc.Task) bool
	// StallLimit bounds, in simulated ns of one-tick sleeps, the NOFAIL
	// loops the kernel runs for ever (vm_struct allocation, page-table
	// mapping); past it the call fails with zone.ErrDeadlock. 0 means two
	// minutes.
	StallLimit int64
}

// Allocator is the vmalloc layer of one machine: the vmap area allocator
// over [Start, End), the vm areas, and the vmalloc page tables.
//
// Kernel: mm/vmalloc.c.
type Allocator struct {
	a    *zone.Allocator
	slab Slab
	opts Options
	// vstart, vend is the range areas are taken from: VMALLOC_START and
	// VMALLOC_END (tests narrow it). Immutable.
	vstart, vend uint64

	once   bug.Once      // the WARN_ON_ONCE sites
	printk sim.Ratelimit // printk_ratelimit()

	// purgeMu is vmap_purge_lock: purges are serialised. Taken before mu.
	purgeMu sync.Mutex

	// mu protects everything below. It is never held across a page or
	// slab allocation (which may enter reclaim) nor across a report.
	mu    sync.Mutex
	space vmapSpace
	// busy holds the vm areas by address (the vmap nodes' busy trees).
	// Invariant: the ranges are disjoint and none is free or lazy.
	busy map[uint64]*vmStruct
	// pte and pmd are the populated page-table pages of the vmalloc range:
	// a PTE page per 2 MiB and a PMD page per 1 GiB, by index (addr >> 21,
	// addr >> 30). The kernel never frees them.
	pte, pmd map[uint64]bool
	// ptPages are the page-table pages, which stay allocated.
	ptPages []zone.Page
	stats   Stats
}

// vmStruct is one vm area: struct vm_struct with its vmap_area's range.
//
// Its fields are written before the area is published (uninitialized
// cleared under mu) and only read afterwards.
type vmStruct struct {
	addr      uint64 // va_start
	size      uint64 // vm->size: the pages and the guard page
	requested int    // vm->requested_size
	caller    string
	// uninitialized is VM_UNINITIALIZED: set until the pages are mapped.
	// Protected by mu.
	uninitialized bool
	chunks        []chunk // the data pages, as allocated
	nrPages       int
	pagesAddr     uint64 // the page array's address (kmalloc or vmalloc)
	vpages        bool   // the page array was vmalloc'ed
	kaddr         uint64 // the vm_struct's own kmalloc address
}

// chunk is a block of data pages. Differences: the kernel split_page()s a
// high-order block into order-0 pages; zone exports no split, so mmsim
// keeps the block and frees it whole.
type chunk struct {
	page  zone.Page
	order zone.Order
}

// New returns the vmalloc layer over the page allocator a, taking its
// metadata from s, which must not be nil.
//
// Kernel: mm/vmalloc.c:vmalloc_init(), vmap_init_free_space().
func New(a *zone.Allocator, s Slab, opts Options) *Allocator {
	if a == nil || s == nil {
		panic("vmalloc.New: the page allocator and the slab allocator are required")
	}
	v := &Allocator{
		a: a, slab: s, opts: opts,
		vstart: Start, vend: End,
		printk: sim.Ratelimit{Interval: 5 * sim.HZ * sim.Jiffy, Burst: 10},
		busy:   make(map[uint64]*vmStruct),
		pte:    make(map[uint64]bool),
		pmd:    make(map[uint64]bool),
	}
	v.space.free = []vrange{{v.vstart, v.vend}}
	return v
}

// IsVmallocAddr reports whether addr lies in the vmalloc range.
//
// Kernel: mm/vmalloc.c:is_vmalloc_addr().
func IsVmallocAddr(addr uint64) bool { return addr >= Start && addr < End }

// Vmalloc allocates size bytes of virtually contiguous memory, as
// __vmalloc(size, mask) does: bits outside GFP_VMALLOC_SUPPORTED are
// stripped with a one-time WARN. The caller shown in /proc/vmallocinfo is
// "__vmalloc_noprof"; VmallocSite names another.
//
// Kernel: mm/vmalloc.c:__vmalloc_noprof().
func (v *Allocator) Vmalloc(t *memalloc.Task, size int, mask gfp.Mask) (uint64, error) {
	return v.VmallocSite(t, defaultVmallocCaller, size, mask)
}

// VmallocSite is Vmalloc with the caller /proc/vmallocinfo shows
// ("bpf_prog_alloc_no_stats+0x39/0x230").
//
// Kernel: mm/vmalloc.c:__vmalloc_noprof(), vmalloc_fix_flags().
func (v *Allocator) VmallocSite(t *memalloc.Task, site string, size int, mask gfp.Mask) (uint64, error) {
	if size < 0 {
		return 0, fmt.Errorf("%w: vmalloc: negative size %d", zone.ErrInvalid, size)
	}
	if mask&^gfp.VmallocSupported != 0 {
		mask = v.fixFlags(t, mask)
	}
	return v.nodeRange(t, size, 1, mask, site)
}

// VmallocNode allocates size bytes aligned to align (a power of two) with
// mask unfiltered, as __vmalloc_node() does: the kernel stack of a new
// task is VmallocNode(t, "kernel_clone+0x94/0x3e0", 16384, 16384,
// gfp.Kernel|gfp.Zero) (THREADINFO_GFP & ~__GFP_ACCOUNT), whose area is
// 20480 bytes (the guard page included) aligned to 16384.
//
// Differences: an alignment that is not a power of two is refused with
// zone.ErrInvalid up front; the kernel fails it in alloc_vmap_area
// (-EINVAL) and reports a vm_struct allocation failure.
//
// Kernel: mm/vmalloc.c:__vmalloc_node_noprof(); kernel/fork.c:alloc_thread_stack_node().
func (v *Allocator) VmallocNode(t *memalloc.Task, site string, size int, align uint64, mask gfp.Mask) (uint64, error) {
	if size < 0 {
		return 0, fmt.Errorf("%w: vmalloc: negative size %d", zone.ErrInvalid, size)
	}
	if align == 0 || align&(align-1) != 0 {
		return 0, fmt.Errorf("%w: vmalloc: alignment %d is not a power of two", zone.ErrInvalid, align)
	}
	return v.nodeRange(t, size, align, mask, site)
}

// fixFlags strips the bits vmalloc does not support, with a WARN the first
// time.
//
// Kernel: mm/vmalloc.c:vmalloc_fix_flags().
func (v *Allocator) fixFlags(t *memalloc.Task, mask gfp.Mask) gfp.Mask {
	invalid := mask &^ gfp.VmallocSupported
	mask &= gfp.VmallocSupported
	if v.once.First("vmalloc_fix_flags") {
		v.report(t, bug.Warn, "mm/vmalloc.c:vmalloc_fix_flags", fmt.Sprintf(
			"Unexpected gfp: %#x (%s). Fixing up to gfp: %#x (%s). Fix your code!",
			uint64(invalid), invalid.Names(), uint64(mask), mask.Names()))
	}
	return mask
}

// nodeRange allocates size bytes of vmalloc space aligned to align and
// backs them with pages. Huge mappings are not modelled: x86_64 does not
// select CONFIG_HAVE_ARCH_HUGE_VMALLOC, so vmap_allow_huge is false and
// VM_ALLOW_HUGE_VMAP (kvmalloc's) changes nothing.
//
// Kernel: mm/vmalloc.c:__vmalloc_node_range_noprof().
func (v *Allocator) nodeRange(t *memalloc.Task, size int, align uint64, mask gfp.Mask, caller string) (uint64, error) {
	if size == 0 {
		if v.once.First("vmalloc-size-0") {
			v.report(t, bug.Warn, "mm/vmalloc.c:__vmalloc_node_range_noprof", "WARN_ON_ONCE(!size)")
		}
		return 0, fmt.Errorf("%w: vmalloc: size 0", zone.ErrInvalid)
	}
	if int64(uint64(size)>>zone.PageShift) > v.a.TotalramPages() {
		v.a.WarnAlloc(t, mask, fmt.Sprintf("vmalloc error: size %d, exceeds total pages", size))
		return 0, fmt.Errorf("%w: vmalloc: size %d exceeds total pages", zone.ErrNoMemory, size)
	}
	nofail := mask&gfp.NoFail != 0
	var waited int64
	for { // again:
		area, err := v.getVMAreaNode(t, size, align, mask, caller)
		if err == nil {
			return v.areaNode(t, area, mask)
		}
		if errors.Is(err, zone.ErrDeadlock) || errors.Is(err, zone.ErrBug) {
			return 0, err
		}
		retry := ""
		if nofail {
			retry = ". Retrying."
		}
		v.a.WarnAlloc(t, mask, fmt.Sprintf("vmalloc error: size %d, vm_struct allocation failed%s", size, retry))
		if !nofail {
			return 0, fmt.Errorf("%w: vmalloc: size %d, vm_struct allocation failed: %w", zone.ErrNoMemory, size, err)
		}
		if derr := v.stall(t, &waited, mask, "the vm_struct allocation"); derr != nil {
			return 0, derr
		}
	}
}

// getVMAreaNode allocates the vm_struct and reserves the area's range, the
// guard page included.
//
// Differences: the vmap_area comes from the per-node pools or
// vmap_area_cachep in the kernel; mmsim does not charge it.
//
// Kernel: mm/vmalloc.c:__get_vm_area_node().
func (v *Allocator) getVMAreaNode(t *memalloc.Task, size int, align uint64, mask gfp.Mask, caller string) (*vmStruct, error) {
	sz := alignUp(uint64(size), pageSize)
	// kzalloc_node(sizeof(*area), gfp_mask & GFP_RECLAIM_MASK, node)
	kaddr, err := v.slab.Kmalloc(t, vmStructSize, mask&gfp.ReclaimMask|gfp.Zero)
	if err != nil {
		return nil, err
	}
	addr, err := v.allocVmapArea(t, sz+pageSize, align, mask) // + the guard page
	if err != nil {
		if ferr := v.slab.Kfree(t, kaddr); ferr != nil {
			return nil, errors.Join(err, ferr)
		}
		return nil, err
	}
	area := &vmStruct{addr: addr, size: sz + pageSize, requested: size, caller: caller,
		uninitialized: true, kaddr: kaddr}
	v.mu.Lock()
	v.busy[addr] = area
	v.mu.Unlock()
	return area, nil
}

// areaNode allocates the page array and the pages, and maps them.
//
// Kernel: mm/vmalloc.c:__vmalloc_area_node().
func (v *Allocator) areaNode(t *memalloc.Task, area *vmStruct, mask gfp.Mask) (uint64, error) {
	nested := mask&gfp.ReclaimMask | gfp.Zero
	// __GFP_NOFAIL and the non-blocking flags are mutually exclusive.
	nofail := mask&gfp.NoFail != 0 && mask.AllowsBlocking()
	if mask&(gfp.DMA|gfp.DMA32) == 0 {
		mask |= gfp.HighMem
	}
	nr := int((area.size - pageSize) / pageSize)
	arraySize := nr * 8 // sizeof(struct page *)

	// The recursion is strictly bounded: the array of an array is 512
	// times smaller.
	var err error
	if arraySize > zone.PageSize {
		area.pagesAddr, err = v.nodeRange(t, arraySize, 1, nested, area.caller)
		area.vpages = err == nil
	} else {
		area.pagesAddr, err = v.slab.Kmalloc(t, arraySize, nested)
	}
	if err != nil {
		if !fatal(err) {
			v.a.WarnAlloc(t, mask, fmt.Sprintf("vmalloc error: size %d, failed to allocated page array size %d",
				nr*zone.PageSize, arraySize))
			err = fmt.Errorf("%w: vmalloc: size %d, failed to allocate the page array: %w", zone.ErrNoMemory, nr*zone.PageSize, err)
		}
		return 0, v.fail(t, area, err)
	}

	got, err := v.allocAreaPages(t, area, mask|gfp.NoWarn, nr) // vmalloc_gfp_adjust(gfp_mask, 0)
	if got != nr {
		if err == nil || !fatal(err) {
			if !v.fatalSignal(t) {
				v.a.WarnAlloc(t, mask, fmt.Sprintf("vmalloc error: size %d, failed to allocate pages", nr*zone.PageSize))
			}
			err = fmt.Errorf("%w: vmalloc: size %d, failed to allocate pages (%d of %d)", zone.ErrNoMemory, nr*zone.PageSize, got, nr)
		}
		return 0, v.fail(t, area, err)
	}

	// Page-table allocations ignore the caller's mask: the scope imposes it.
	cookie, scoped := v.applyGFPScope(t, mask)
	var waited int64
	for {
		err = v.vmapPagesRange(t, area.addr, area.addr+uint64(nr)*pageSize)
		if err == nil || !nofail || fatal(err) {
			break
		}
		if derr := v.stall(t, &waited, mask, "the page-table mapping"); derr != nil {
			err = derr
			break
		}
	}
	if scoped {
		t.Restore(cookie)
	}
	if err != nil {
		if !fatal(err) {
			v.a.WarnAlloc(t, mask, fmt.Sprintf("vmalloc error: size %d, failed to map pages", area.nrPages*zone.PageSize))
			err = fmt.Errorf("%w: vmalloc: size %d, failed to map pages: %w", zone.ErrNoMemory, area.nrPages*zone.PageSize, err)
		}
		return 0, v.fail(t, area, err)
	}

	v.mu.Lock()
	area.uninitialized = false // clear_vm_uninitialized_flag
	v.mu.Unlock()
	return area.addr, nil
}

// allocAreaPages allocates the nr data pages: opportunistic high-order
// blocks without direct reclaim first, then order-0 pages in bulk, then
// one at a time. It returns how many it got, and an error only when the
// page allocator returned one other than ErrNoMemory.
//
// Kernel: mm/vmalloc.c:vm_area_alloc_pages(), vmalloc_gfp_adjust().
func (v *Allocator) allocAreaPages(t *memalloc.Task, area *vmStruct, mask gfp.Mask, nr int) (int, error) {
	got := 0
	add := func(p zone.Page, order zone.Order) {
		area.chunks = append(area.chunks, chunk{p, order})
		v.a.ZoneOf(p.PFN()).Node().ModState(zone.NodeNrVmalloc, 1<<order)
		got += 1 << order
	}
	maxAttempt := zone.MaxPageOrder
	largeOrder := zone.Order(ilog2(nr))
	// vmalloc_gfp_adjust(gfp, large) without direct reclaim.
	largeMask := mask | gfp.NoWarn
	if largeOrder > 0 {
		largeMask &^= gfp.NoFail
	}
	largeMask &^= gfp.DirectReclaim
	largeOrder = min(maxAttempt, largeOrder)
	for largeOrder > 0 && nr-got > 0 {
		p, err := v.a.AllocPages(t, largeMask, largeOrder)
		if err != nil {
			if fatal(err) {
				area.nrPages = got
				return got, err
			}
			largeOrder--
			maxAttempt = largeOrder
			continue
		}
		add(p, largeOrder)
		if nr-got > 0 {
			largeOrder = min(maxAttempt, zone.Order(ilog2(nr-got)))
		}
	}
	// Order-0 pages: the bulk allocator, at most 100 pages a call.
	for got < nr {
		req := min(100, nr-got)
		buf := make([]zone.Page, req)
		n, err := v.a.AllocPagesBulk(t, mask, buf)
		for _, p := range buf[:n] {
			add(p, 0)
		}
		if err != nil && fatal(err) {
			area.nrPages = got
			return got, err
		}
		if n != req {
			break // fall back to the more permissive single-page allocator
		}
	}
	for got < nr {
		if mask&gfp.NoFail == 0 && v.fatalSignal(t) {
			break
		}
		p, err := v.a.AllocPages(t, mask, 0)
		if err != nil {
			if fatal(err) {
				area.nrPages = got
				return got, err
			}
			break
		}
		add(p, 0)
	}
	area.nrPages = got
	return got, nil
}

// fail undoes a partly built area and returns err: the pages, the page
// array, the range (lazily) and the vm_struct go back.
//
// Differences: the kernel defers this to a work item
// (defer_vm_area_cleanup); mmsim does it at once.
//
// Kernel: mm/vmalloc.c:__vmalloc_area_node() (fail), cleanup_vm_area_work().
func (v *Allocator) fail(t *memalloc.Task, area *vmStruct, err error) error {
	v.mu.Lock()
	delete(v.busy, area.addr)
	v.mu.Unlock()
	if ferr := v.release(t, area); ferr != nil {
		return errors.Join(err, ferr)
	}
	return err
}

// Vfree frees the area that starts at addr; 0 is a no-op. An address that
// does not start a live area is refused with the kernel's WARN and an
// error wrapping zone.ErrBug, and nothing changes.
//
// Kernel: mm/vmalloc.c:vfree(), remove_vm_area().
func (v *Allocator) Vfree(t *memalloc.Task, addr uint64) error {
	if addr == 0 {
		return nil
	}
	v.mu.Lock()
	area := v.busy[addr]
	if area == nil || area.uninitialized {
		v.mu.Unlock()
		text := fmt.Sprintf("Trying to vfree() nonexistent vm area (%016x)", addr)
		v.report(t, bug.Warn, "mm/vmalloc.c:vfree", text)
		return fmt.Errorf("%w: vmalloc: %s", zone.ErrBug, text)
	}
	delete(v.busy, addr)
	v.mu.Unlock()
	return v.release(t, area)
}

// release returns an area that is no longer in busy: its range goes to the
// lazy list, its pages to the page allocator, then the page array and the
// vm_struct are freed.
//
// Kernel: mm/vmalloc.c:vfree() (after remove_vm_area), vm_area_free_pages().
func (v *Allocator) release(t *memalloc.Task, area *vmStruct) error {
	v.freeVmapAreaNoflush(t, vrange{area.addr, area.addr + area.size})
	var errs []error
	for _, c := range area.chunks {
		v.a.ZoneOf(c.page.PFN()).Node().ModState(zone.NodeNrVmalloc, -(1 << c.order))
		if err := v.a.FreePages(t, c.page, c.order); err != nil {
			errs = append(errs, err)
		}
	}
	area.chunks = nil
	if area.pagesAddr != 0 { // kvfree(vm->pages)
		if area.vpages {
			errs = append(errs, v.Vfree(t, area.pagesAddr))
		} else {
			errs = append(errs, v.slab.Kfree(t, area.pagesAddr))
		}
	}
	errs = append(errs, v.slab.Kfree(t, area.kaddr))
	return errors.Join(errs...)
}

// Size returns the requested size of the live area that starts at addr.
//
// Kernel: mm/vmalloc.c:find_vm_area() (vm->requested_size).
func (v *Allocator) Size(addr uint64) (int, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	area := v.busy[addr]
	if area == nil || area.uninitialized {
		return 0, false
	}
	return area.requested, true
}

// stall sleeps one tick for a NOFAIL retry, or returns the ErrDeadlock
// error once the retries have slept past the stall limit.
//
// Kernel: schedule_timeout_uninterruptible(1) in the NOFAIL loops of
// mm/vmalloc.c:__vmalloc_node_range_noprof(), __vmalloc_area_node().
func (v *Allocator) stall(t *memalloc.Task, waited *int64, mask gfp.Mask, loop string) error {
	limit := v.opts.StallLimit
	if limit <= 0 {
		limit = defaultStallLimit
	}
	if *waited >= limit {
		return fmt.Errorf("%w: vmalloc: %s: __GFP_NOFAIL %s: %s still failing after %d ms of one-tick retries (the stall limit): "+
			"the kernel would retry for ever", zone.ErrDeadlock, t.Comm(), mask.Mode(), loop, *waited/1e6)
	}
	*waited += sim.Jiffy
	if v.opts.Sleep != nil {
		v.opts.Sleep(sim.Jiffy)
	}
	return nil
}

func (v *Allocator) fatalSignal(t *memalloc.Task) bool {
	return v.opts.FatalSignalPending != nil && v.opts.FatalSignalPending(t)
}

func (v *Allocator) now() int64 {
	if v.opts.Now == nil {
		return 0
	}
	return v.opts.Now()
}

func (v *Allocator) report(t *memalloc.Task, k bug.Kind, site, text string) {
	if v.opts.Report == nil {
		return
	}
	r := bug.Report{Kind: k, Site: site, Text: text, Time: v.now()}
	if t != nil {
		r.Comm, r.PID = t.Comm(), t.PID()
	}
	v.opts.Report(r)
}

// fatal reports whether err is one vmalloc passes up unchanged instead of
// treating as a failed allocation: anything but ErrNoMemory (ErrDeadlock,
// a simulated BUG, an invalid task).
func fatal(err error) bool { return err != nil && !errors.Is(err, zone.ErrNoMemory) }

// ilog2 is ilog2(n) for n > 0, and 0 for n <= 0.
func ilog2(n int) int {
	l := -1
	for n > 0 {
		n >>= 1
		l++
	}
	return max(l, 0)
}
