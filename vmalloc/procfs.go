package vmalloc

import (
	"bytes"
	"fmt"
	"io"
	"slices"
)

// Stats is the state of the vmalloc layer.
type Stats struct {
	// Areas is the number of live vm areas.
	Areas int
	// Pages is the pages backing them: VmallocUsed, NR_VMALLOC.
	Pages int64
	// LazyAreas and LazyPages are the freed areas not yet purged, and
	// their pages with the guard pages (vmap_lazy_nr).
	LazyAreas int
	LazyPages int64
	// Purges counts purge_vmap_area_lazy runs; TLBFlushes those that had
	// areas to purge and so flushed the TLB (flush_tlb_kernel_range).
	Purges     int64
	TLBFlushes int64
	// PageTablePages is the page-table pages allocated for the vmalloc
	// range (never freed).
	PageTablePages int64
}

// Stats returns the layer's counters.
//
// Kernel: mm/vmalloc.c:vmalloc_nr_pages(), vmap_lazy_nr.
func (v *Allocator) Stats() Stats {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.stats
	for _, a := range v.busy {
		if a.uninitialized {
			continue
		}
		s.Areas++
		s.Pages += int64(a.nrPages)
	}
	s.LazyAreas = len(v.space.lazy)
	s.LazyPages = int64(v.space.nrLazy)
	return s
}

// WriteVmallocinfo writes /proc/vmallocinfo: a line per live vm area
// ("0x…-0x…   20480 kernel_clone+0x94/0x3e0 pages=4 vmalloc N0=4", the size
// with the guard page, " vpages" when the page array is itself vmalloc'ed),
// then a line per lazily freed area ("unpurged vm_area").
//
// Differences: addresses print unhashed (kptr_restrict=0 with
// no_hash_pointers), and the areas in address order rather than in the
// order of the vmap nodes' lists.
//
// Kernel: mm/vmalloc.c:vmalloc_info_show(), show_numa_info(), show_purge_info().
func (v *Allocator) WriteVmallocinfo(w io.Writer) error {
	var b bytes.Buffer
	v.mu.Lock()
	areas := make([]*vmStruct, 0, len(v.busy))
	for _, a := range v.busy {
		if !a.uninitialized {
			areas = append(areas, a)
		}
	}
	lazy := slices.Clone(v.space.lazy)
	slices.SortFunc(areas, func(a, b *vmStruct) int { return cmpU64(a.addr, b.addr) })
	slices.SortFunc(lazy, func(a, b vrange) int { return cmpU64(a.start, b.start) })
	for _, a := range areas {
		fmt.Fprintf(&b, "0x%016x-0x%016x %7d", a.addr, a.addr+a.size, a.size)
		if a.caller != "" {
			fmt.Fprintf(&b, " %s", a.caller)
		}
		if a.nrPages > 0 {
			fmt.Fprintf(&b, " pages=%d", a.nrPages)
		}
		b.WriteString(" vmalloc")
		if a.vpages {
			b.WriteString(" vpages")
		}
		// show_numa_info: the pages per node, for nodes with memory.
		counts := map[int]int{}
		for _, c := range a.chunks {
			counts[v.a.ZoneOf(c.page.PFN()).Node().ID()] += 1 << c.order
		}
		for _, n := range v.a.Nodes() {
			if c := counts[n.ID()]; c > 0 {
				fmt.Fprintf(&b, " N%d=%d", n.ID(), c)
			}
		}
		b.WriteByte('\n')
	}
	v.mu.Unlock()
	for _, r := range lazy {
		fmt.Fprintf(&b, "0x%016x-0x%016x %7d unpurged vm_area\n", r.start, r.end, r.end-r.start)
	}
	_, err := w.Write(b.Bytes())
	return err
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
