package zone

import (
	"sync"

	"github.com/mmsim/mmsim/internal/bug"
)

// The x86-64 direct map: the kernel's linear mapping of all memory, made at
// boot of 1 GiB, 2 MiB and 4 KiB entries, and split into smaller entries
// when one page of a large entry changes its attributes.

// pgLevel is a page-table level of the direct map, numbered as the kernel's
// enum pg_level (PG_LEVEL_NONE is 0).
//
// Kernel: arch/x86/include/asm/pgtable_types.h:enum pg_level.
type pgLevel int

const (
	pgLevel4K pgLevel = iota + 1 // PG_LEVEL_4K: a PTE
	pgLevel2M                    // PG_LEVEL_2M: a PMD with PSE
	pgLevel1G                    // PG_LEVEL_1G: a PUD with PSE
)

const (
	// ptrsPerPTE is PTRS_PER_PTE (= PTRS_PER_PMD): the entries a split
	// large entry becomes.
	ptrsPerPTE = 512
	// pmdShift and pudShift are PMD_SHIFT and PUD_SHIFT in pages.
	pmdShift = 21 - PageShift
	pudShift = 30 - PageShift
	// pmdNrPages and pudNrPages are the pages a 2 MiB and a 1 GiB entry map.
	pmdNrPages = 1 << pmdShift
	pudNrPages = 1 << pudShift
)

// pfnRange is a run [start, end) of pfns: present or managed pages of a
// zone.
type pfnRange struct{ start, end PFN }

// bootLevel returns the size of the boot entry that maps pfn, a pfn of r:
// the largest whose aligned block lies wholly in r. It agrees with the
// greedy walk of bootDirectMapCounts.
//
// Kernel: arch/x86/mm/init.c:split_mem_range().
func (r pfnRange) bootLevel(pfn PFN) pgLevel {
	if g := pfn &^ (pudNrPages - 1); g >= r.start && g+pudNrPages <= r.end {
		return pgLevel1G
	}
	if m := pfn &^ (pmdNrPages - 1); m >= r.start && m+pmdNrPages <= r.end {
		return pgLevel2M
	}
	return pgLevel4K
}

// DirectMap is the x86-64 kernel direct map of the machine's present
// memory: how many 4 KiB, 2 MiB and 1 GiB entries map it, which large
// entries have been split, and which pages are not present (as
// secretmem's set_direct_map_invalid_noflush leaves them).
//
// At boot each zone's present range is mapped with the largest entries that
// are aligned and fully present (gbpages on). A split is permanent: x86
// collapses split entries again only for CPA_COLLAPSE requests (execmem's
// read-only executable memory), which mmsim does not make. Only split
// regions and invalid pages take memory; an unsplit machine costs a few
// words however large it is.
//
// Every method is safe for concurrent use.
//
// Kernel: arch/x86/mm/pat/set_memory.c (direct_pages_count,
// set_direct_map_invalid_noflush(), set_direct_map_default_noflush()).
//
// Differences: the map covers the zones' present runs, each mapped
// apart, and the ISA range below 1 MiB whole, as init_mem_mapping maps it
// (no e820 ranges outside the zones); page attributes other than present
// are not modelled.
type DirectMap struct {
	a *Allocator
	// ranges are the ranges the boot maps, each apart: the ISA range,
	// then the zones' present runs, in zone order. Invariant: immutable
	// after New.
	ranges []pfnRange

	mu sync.Mutex
	// count is direct_pages_count: the entries of each level that map
	// present memory; index 0 (PG_LEVEL_NONE) is unused. An invalid page
	// still counts at its level. Invariant: count[pgLevel1G] is the boot
	// 1G entries less len(split1G); every split moved one entry down a
	// level as 512. Protected by mu.
	count [pgLevel1G + 1]int64
	// split1G holds the 1 GiB indices (pfn >> pudShift) of boot 1G entries
	// now split into 2M entries. Protected by mu.
	split1G map[PFN]struct{}
	// split2M holds the 2 MiB indices (pfn >> pmdShift) of 2M entries, from
	// boot or from a 1G split, now split into 4K entries. Invariant: each
	// lies in a boot 2M entry or in a split 1G entry. Protected by mu.
	split2M map[PFN]struct{}
	// invalid holds the pfns whose PTE is not present. Invariant: each lies
	// in a 4K entry (boot, or of a split 2M entry). Protected by mu.
	invalid map[PFN]struct{}
}

// newDirectMap maps a's present memory as the boot does: the ISA range
// first, then each run of present pages.
//
// Kernel: arch/x86/mm/init.c:init_mem_mapping(), init_memory_mapping().
func newDirectMap(a *Allocator) *DirectMap {
	d := &DirectMap{
		a:       a,
		split1G: map[PFN]struct{}{},
		split2M: map[PFN]struct{}{},
		invalid: map[PFN]struct{}{},
	}
	isaMapped := false
	a.forEachZone(func(z *Zone) {
		for _, r := range z.presentRuns {
			if r.start < isaEndPFN {
				// The ISA range is mapped whole, holes and all.
				if !isaMapped {
					d.ranges = append(d.ranges, pfnRange{0, isaEndPFN})
					isaMapped = true
				}
				r.start = isaEndPFN
			}
			if r.start < r.end {
				d.ranges = append(d.ranges, r)
			}
		}
	})
	d.count[pgLevel4K], d.count[pgLevel2M], d.count[pgLevel1G] = bootDirectMapCounts(d.ranges)
	return d
}

// bootDirectMapCounts returns how many 4 KiB, 2 MiB and 1 GiB entries map
// ranges at boot: from each range's start, the largest page size that is
// aligned and fits.
//
// Kernel: arch/x86/mm/init.c:init_memory_mapping() (split_mem_range),
// arch/x86/mm/init_64.c:phys_pud_init() (update_page_count).
func bootDirectMapCounts(ranges []pfnRange) (k4, m2, g1 int64) {
	for _, r := range ranges {
		for pfn := r.start; pfn < r.end; {
			switch {
			case pfn%pudNrPages == 0 && pfn+pudNrPages <= r.end:
				g1++
				pfn += pudNrPages
			case pfn%pmdNrPages == 0 && pfn+pmdNrPages <= r.end:
				m2++
				pfn += pmdNrPages
			default:
				k4++
				pfn++
			}
		}
	}
	return k4, m2, g1
}

// DirectMap returns the machine's direct map.
//
// Kernel: arch/x86/mm/init_64.c:kernel_physical_mapping_init().
func (a *Allocator) DirectMap() *DirectMap { return a.directMap }

// rangeOf returns the present range that holds pfn.
func (d *DirectMap) rangeOf(pfn PFN) (pfnRange, bool) {
	for _, r := range d.ranges {
		if pfn >= r.start && pfn < r.end {
			return r, true
		}
	}
	return pfnRange{}, false
}

// splitPageCountLocked counts the split of one entry of level into
// ptrsPerPTE entries of the level below.
//
// Preconditions:
//   - d.mu is held.
//
// Kernel: arch/x86/mm/pat/set_memory.c:split_page_count().
func (d *DirectMap) splitPageCountLocked(level pgLevel) {
	d.count[level]--
	ev := VMDirectMapLevel3Splits
	if level == pgLevel2M {
		ev = VMDirectMapLevel2Splits
	}
	d.a.CountEvent(ev, 1)
	d.count[level-1] += ptrsPerPTE
}

// bug reports a BUG at site and returns its error.
func (d *DirectMap) bug(site, format string, args ...any) error {
	err := bugError(format, args...)
	d.a.report(nil, bug.Bug, site, err.Error())
	return err
}

// SetInvalid unmaps one page from the direct map (clears _PAGE_PRESENT and
// _PAGE_RW of its PTE), as secretmem does for the pages it hands out. A 1
// GiB entry that covers the page is first split into 512 2 MiB entries
// (DirectMap1G one entry less, DirectMap2M 512 more, one
// direct_map_level3_splits), then the 2 MiB entry that covers it into 512 4
// KiB entries (one direct_map_level2_splits). The splits stay when the page
// is mapped again (SetDefault).
//
// A pfn outside present memory is refused with an error wrapping
// ErrInvalid; a page already invalid with an error wrapping ErrBug (and a
// BUG report). Neither changes anything.
//
// Kernel: arch/x86/mm/pat/set_memory.c:set_direct_map_invalid_noflush(),
// __change_page_attr(), split_large_page(), split_page_count().
//
// Differences: the kernel's CPA clears bits already clear without
// complaint; mmsim treats a second invalidate as a caller bug. Where the
// kernel's CPA finds no mapping it WARNs or ignores the request.
func (d *DirectMap) SetInvalid(pfn PFN) error {
	r, ok := d.rangeOf(pfn)
	if z := d.a.ZoneOf(pfn); !ok || z == nil || !z.presentPage(pfn) {
		return invalidError("set_direct_map_invalid_noflush(pfn %#x): the pfn is not in present memory", uint64(pfn))
	}
	d.mu.Lock()
	if _, ok := d.invalid[pfn]; ok {
		d.mu.Unlock()
		return d.bug("arch/x86/mm/pat/set_memory.c:set_direct_map_invalid_noflush",
			"set_direct_map_invalid_noflush(pfn %#x): the page is already not present in the direct map", uint64(pfn))
	}
	level := r.bootLevel(pfn)
	if level == pgLevel1G {
		if _, split := d.split1G[pfn>>pudShift]; !split {
			d.split1G[pfn>>pudShift] = struct{}{}
			d.splitPageCountLocked(pgLevel1G)
		}
		level = pgLevel2M
	}
	if level == pgLevel2M {
		if _, split := d.split2M[pfn>>pmdShift]; !split {
			d.split2M[pfn>>pmdShift] = struct{}{}
			d.splitPageCountLocked(pgLevel2M)
		}
	}
	d.invalid[pfn] = struct{}{}
	d.mu.Unlock()
	return nil
}

// SetDefault maps an invalid page again, present and writable. It never
// merges entries back: x86 collapses split entries only for CPA_COLLAPSE
// requests (execmem's ROX memory), which secretmem does not make, so the
// splits SetInvalid made are permanent and the counts do not change.
//
// A pfn outside present memory is refused with an error wrapping
// ErrInvalid; a page that is not invalid with an error wrapping ErrBug (and
// a BUG report). Neither changes anything.
//
// Kernel: arch/x86/mm/pat/set_memory.c:set_direct_map_default_noflush(),
// __change_page_attr(); collapse_large_pages() runs only for CPA_COLLAPSE.
//
// Differences: the kernel's CPA sets bits already set without complaint;
// mmsim treats restoring a mapped page as a caller bug.
func (d *DirectMap) SetDefault(pfn PFN) error {
	if _, ok := d.rangeOf(pfn); !ok {
		return invalidError("set_direct_map_default_noflush(pfn %#x): the pfn is not in present memory", uint64(pfn))
	}
	d.mu.Lock()
	if _, ok := d.invalid[pfn]; !ok {
		d.mu.Unlock()
		return d.bug("arch/x86/mm/pat/set_memory.c:set_direct_map_default_noflush",
			"set_direct_map_default_noflush(pfn %#x): the page is already present in the direct map", uint64(pfn))
	}
	delete(d.invalid, pfn)
	d.mu.Unlock()
	return nil
}

// Invalid reports whether pfn's page is not present in the direct map
// (SetInvalid without SetDefault since). A pfn outside present memory is
// not invalid.
//
// Kernel: arch/x86/mm/pat/set_memory.c:kernel_page_present() (negated).
func (d *DirectMap) Invalid(pfn PFN) bool {
	d.mu.Lock()
	_, ok := d.invalid[pfn]
	d.mu.Unlock()
	return ok
}

// Counts returns the entries of each size that map present memory, as
// /proc/meminfo's DirectMap4k, DirectMap2M and DirectMap1G count them (in
// entries, not kB). An invalid page still counts as a 4 KiB entry: the
// kernel changes direct_pages_count only when it splits or collapses.
//
// Kernel: arch/x86/mm/pat/set_memory.c:arch_report_meminfo()
// (direct_pages_count[PG_LEVEL_4K..PG_LEVEL_1G]).
func (d *DirectMap) Counts() (k4, m2, g1 int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count[pgLevel4K], d.count[pgLevel2M], d.count[pgLevel1G]
}
