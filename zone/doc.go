// Package zone will hold the page-allocator core: nodes and zones, the buddy
// free areas per order and migratetype, pageblocks, watermarks and
// lowmem_reserve, per-cpu page lists, zonelists, __alloc_pages with its fast
// path and slow path, __free_pages, and the /proc renderers of that state
// (buddyinfo, zoneinfo, pagetypeinfo). Reclaim, compaction and the OOM killer
// plug in through small interfaces defined here, so zone never imports the
// layers above it.
//
// Nothing is implemented yet: this package is filled in by the zone issue.
//
// Kernel: mm/page_alloc.c, mm/internal.h, include/linux/mmzone.h.
package zone
