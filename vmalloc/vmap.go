package vmalloc

import (
	"fmt"
	"math/bits"
	"sort"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// pageSize is PAGE_SIZE as an address quantity.
const pageSize = uint64(zone.PageSize)

// errENOENT is what __alloc_vmap_area returns when no free block fits
// (-ENOENT as an unsigned long), the va_start a failed alloc_vmap_area
// event prints.
const errENOENT = ^uint64(0) - 1 // -2

// vrange is a half-open range of kernel virtual addresses [start, end).
type vrange struct{ start, end uint64 }

// vmapSpace is the free-space side of the vmap area allocator: the free
// ranges, sorted by address and never adjacent (neighbours merge), and the
// lazily freed ranges waiting for a purge.
//
// All fields are protected by Allocator.mu.
type vmapSpace struct {
	// free is free_vmap_area_root/list: the free ranges in address order.
	// Invariant: sorted, non-empty ranges, no two touching.
	free []vrange
	// lazy is the vmap nodes' lazy lists: ranges unmapped but not yet
	// returned to free (their TLB entries are not yet flushed).
	lazy []vrange
	// nrLazy is vmap_lazy_nr: the pages of the ranges in lazy.
	// Invariant: nrLazy == Σ (end-start)/PAGE_SIZE over lazy.
	nrLazy uint64
}

// isWithin reports whether an allocation of length bytes aligned to align
// fits in r at or above vstart.
//
// Kernel: mm/vmalloc.c:is_within_this_va().
func isWithin(r vrange, length, align, vstart uint64) bool {
	start := max(r.start, vstart)
	nva := alignUp(start, align)
	if nva < start || nva+length < nva {
		return false // overflow
	}
	return nva+length <= r.end
}

// allocLocked takes size bytes aligned to align from the lowest free range
// that fits, inside [vstart, vend). It returns errENOENT when none does.
//
// Preconditions:
//   - v.mu is held.
//
// Kernel: mm/vmalloc.c:__alloc_vmap_area(), find_vmap_lowest_match(),
// va_alloc().
func (s *vmapSpace) allocLocked(size, align, vstart, vend uint64) uint64 {
	// The search length is made conservative for large alignments, so
	// that any block found is sure to fit once aligned, except when the
	// range is exactly the size (it could never succeed then).
	length := size
	if align > pageSize && vend-vstart != size {
		length = size + align - 1
	}
	for i, r := range s.free {
		if r.end <= vstart {
			continue
		}
		if r.start >= vend {
			break
		}
		if !isWithin(r, length, align, vstart) {
			continue
		}
		nva := alignUp(max(r.start, vstart), align)
		if nva+size > vend {
			return errENOENT // va_alloc: the aligned block ends past vend
		}
		s.clipLocked(i, nva, nva+size)
		return nva
	}
	return errENOENT
}

// clipLocked removes [start, end) from the free range at index i, which
// contains it, splitting it in two if need be.
//
// Kernel: mm/vmalloc.c:va_clip().
func (s *vmapSpace) clipLocked(i int, start, end uint64) {
	r := s.free[i]
	switch {
	case r.start == start && r.end == end:
		s.free = append(s.free[:i], s.free[i+1:]...)
	case r.start == start:
		s.free[i].start = end
	case r.end == end:
		s.free[i].end = start
	default:
		s.free = append(s.free, vrange{})
		copy(s.free[i+2:], s.free[i+1:])
		s.free[i] = vrange{r.start, start}
		s.free[i+1] = vrange{end, r.end}
	}
}

// insertFreeLocked returns [start, end) to the free ranges, merging it with
// its neighbours.
//
// Preconditions:
//   - v.mu is held;
//   - [start, end) overlaps no free range.
//
// Kernel: mm/vmalloc.c:merge_or_add_vmap_area_augment().
func (s *vmapSpace) insertFreeLocked(start, end uint64) {
	i := sort.Search(len(s.free), func(i int) bool { return s.free[i].start >= end })
	// i is the first range after; i-1 the one before, if any.
	mergePrev := i > 0 && s.free[i-1].end == start
	mergeNext := i < len(s.free) && s.free[i].start == end
	switch {
	case mergePrev && mergeNext:
		s.free[i-1].end = s.free[i].end
		s.free = append(s.free[:i], s.free[i+1:]...)
	case mergePrev:
		s.free[i-1].end = end
	case mergeNext:
		s.free[i].start = start
	default:
		s.free = append(s.free, vrange{})
		copy(s.free[i+1:], s.free[i:])
		s.free[i] = vrange{start, end}
	}
}

// lazyMaxPages is lazy_max_pages(): fls(num_online_cpus()) × 32 MiB of
// pages, the lazily freed space that triggers a purge.
//
// Kernel: mm/vmalloc.c:lazy_max_pages().
func (v *Allocator) lazyMaxPages() uint64 {
	cpus := max(v.opts.CPUs, 1)
	return uint64(bits.Len(uint(cpus))) * (32 << 20 / pageSize)
}

// allocVmapArea reserves size bytes of vmalloc space (guard page included
// by the caller) aligned to align. A blocking caller that finds no room
// purges the lazily freed areas once and retries; a non-blocking one
// fails at once.
//
// Kernel: mm/vmalloc.c:alloc_vmap_area().
func (v *Allocator) allocVmapArea(t *memalloc.Task, size, align uint64, mask gfp.Mask) (uint64, error) {
	if size == 0 || size%pageSize != 0 || align == 0 || align&(align-1) != 0 {
		return 0, fmt.Errorf("%w: vmalloc: alloc_vmap_area: size %d align %d (-EINVAL)", zone.ErrInvalid, size, align)
	}
	mask &= gfp.ReclaimMask // only reclaim behaviour flags are relevant
	allowBlock := mask.AllowsBlocking()
	purged := false
	for {
		v.mu.Lock()
		addr := v.space.allocLocked(size, align, v.vstart, v.vend)
		v.mu.Unlock()
		failed := addr == errENOENT
		if v.a.Tracing() {
			v.a.Emit(t, zone.Event{Kind: zone.EvAllocVmapArea, Ptr: addr, Size: size, Align: align,
				VStart: v.vstart, VEnd: v.vend, Failed: failed})
		}
		if !failed {
			return addr, nil
		}
		if !allowBlock {
			// No reclaim logic: sleeping is not allowed.
			return 0, fmt.Errorf("%w: vmalloc: no vmap space for %d bytes (non-blocking, no purge)", zone.ErrNoMemory, size)
		}
		if !purged {
			v.purgeVmapAreaLazy(t) // reclaim_and_purge_vmap_areas
			purged = true
			continue
		}
		// The vmap purge notifiers (none here) freed nothing.
		if mask&gfp.NoWarn == 0 {
			if ok, _ := v.printk.Allow(v.now()); ok {
				v.report(t, bug.Info, "mm/vmalloc.c:alloc_vmap_area", fmt.Sprintf(
					"vmalloc_node_range for size %d failed: Address range restricted to %#x - %#x", size, v.vstart, v.vend))
			}
		}
		return 0, fmt.Errorf("%w: vmalloc: no vmap space for %d bytes in %#x-%#x", zone.ErrNoMemory, size, v.vstart, v.vend)
	}
}

// freeVmapAreaNoflush puts an unmapped area on the lazy list; past
// lazy_max_pages() the lazy areas are purged.
//
// Differences: the kernel schedules drain_vmap_work to purge; mmsim purges
// at once, on the freeing task.
//
// Kernel: mm/vmalloc.c:free_vmap_area_noflush().
func (v *Allocator) freeVmapAreaNoflush(t *memalloc.Task, r vrange) {
	max := v.lazyMaxPages()
	v.mu.Lock()
	v.space.nrLazy += (r.end - r.start) / pageSize
	nrLazy := v.space.nrLazy
	v.space.lazy = append(v.space.lazy, r)
	v.mu.Unlock()
	if v.a.Tracing() {
		v.a.Emit(t, zone.Event{Kind: zone.EvFreeVmapAreaNoflush, Ptr: r.start, NrLazy: nrLazy, NrLazyMax: max})
	}
	if nrLazy > max {
		v.purgeVmapAreaLazy(t) // drain_vmap_area_work
	}
}

// purgeVmapAreaLazy flushes the TLB for the span of the lazily freed areas
// (one flush) and returns them to the free space.
//
// Kernel: mm/vmalloc.c:__purge_vmap_area_lazy(), purge_vmap_node().
func (v *Allocator) purgeVmapAreaLazy(t *memalloc.Task) {
	// Serialised, as vmap_purge_lock does; mu is taken inside.
	v.purgeMu.Lock()
	defer v.purgeMu.Unlock()
	start, end := ^uint64(0), uint64(0)
	v.mu.Lock()
	lazy := v.space.lazy
	v.space.lazy = nil
	for _, r := range lazy {
		start = min(start, r.start)
		end = max(end, r.end)
		v.space.insertFreeLocked(r.start, r.end)
		v.space.nrLazy -= (r.end - r.start) / pageSize
	}
	if len(lazy) > 0 {
		v.stats.TLBFlushes++ // flush_tlb_kernel_range(start, end)
	}
	v.stats.Purges++
	v.mu.Unlock()
	if v.a.Tracing() {
		v.a.Emit(t, zone.Event{Kind: zone.EvPurgeVmapAreaLazy, Ptr: start, End: end, NumPurged: uint64(len(lazy))})
	}
}

// alignUp rounds x up to a multiple of align, a power of two.
func alignUp(x, align uint64) uint64 { return (x + align - 1) &^ (align - 1) }
