package zone

import (
	"strconv"

	"github.com/mmsim/mmsim/gfp"
)

// PFN is a page frame number: a physical address divided by the page size.
//
// Kernel: include/linux/pfn.h (unsigned long pfn).
type PFN uint64

// Order is an allocation order: a block of 1<<order contiguous pages.
//
// Kernel: unsigned int order (mm/page_alloc.c).
type Order int

// nrPages returns 1<<o, the pages of a block of order o (0..MaxPageOrder).
// The mask proves the shift in range, so the hot paths pay no check for it.
//
// Kernel: 1 << order, as mm/page_alloc.c counts a block's pages
// (free_frozen_page_commit: pcp->count += 1 << order).
func (o Order) nrPages() int { return 1 << (uint(o) & 63) }

// PageShift is log2 of the page size: 4 KiB pages, as on x86_64.
//
// Kernel: arch/x86/include/asm/page_types.h:PAGE_SHIFT.
const (
	PageShift = 12
	PageSize  = 1 << PageShift
)

// Orders and pageblocks.
//
// Kernel: include/linux/mmzone.h, include/linux/pageblock-flags.h.
const (
	// MaxPageOrder is the largest order the buddy allocator hands out
	// (inclusive): 4 MiB blocks. Kernel: include/linux/mmzone.h:MAX_PAGE_ORDER.
	MaxPageOrder Order = 10
	// NrPageOrders is the number of orders, 0..MaxPageOrder.
	// Kernel: include/linux/mmzone.h:NR_PAGE_ORDERS.
	NrPageOrders = int(MaxPageOrder) + 1
	// CostlyOrder is PAGE_ALLOC_COSTLY_ORDER: orders above it are costly.
	// Kernel: include/linux/mmzone.h:PAGE_ALLOC_COSTLY_ORDER.
	CostlyOrder Order = 3
	// PageblockOrder is pageblock_order on x86_64: min(HUGETLB_PAGE_ORDER, 10).
	// Kernel: include/linux/pageblock-flags.h:pageblock_order.
	PageblockOrder Order = 9
	// PageblockNrPages is the number of pages in a pageblock.
	// Kernel: include/linux/pageblock-flags.h:pageblock_nr_pages.
	PageblockNrPages = 1 << PageblockOrder
	// maxOrderNrPages is the number of pages in a MAX_PAGE_ORDER block.
	// Kernel: include/linux/mmzone.h:MAX_ORDER_NR_PAGES.
	maxOrderNrPages = 1 << MaxPageOrder
)

// Watermark indices into a zone's watermarks.
//
// Kernel: include/linux/mmzone.h:enum zone_watermarks.
const (
	WmarkMin   = 0
	WmarkLow   = 1
	WmarkHigh  = 2
	WmarkPromo = 3
	nrWmarks   = 4
)

// Page is a handle on an allocated block: the pfn of its first page. It is
// a small value; the order travels beside it, as in the kernel's
// __free_pages(page, order).
//
// Kernel: struct page * (the head page of the block).
type Page struct{ pfn PFN }

// PFN returns the page frame number of the block's first page.
//
// Kernel: include/asm-generic/memory_model.h:page_to_pfn().
func (p Page) PFN() PFN { return p.pfn }

// PageOf returns the handle of the block whose first page is pfn, as a
// replay maps a recorded pfn to the page it freed.
func PageOf(pfn PFN) Page { return Page{pfn: pfn} }

// String returns "pfn=0x…", as the tracepoints print a page.
func (p Page) String() string { return "pfn=0x" + strconv.FormatUint(uint64(p.pfn), 16) }

// allocFlags are the ALLOC_* flags the allocator derives from a request.
//
// Kernel: mm/internal.h (ALLOC_*).
type allocFlags uint32

const (
	allocWmarkMin      allocFlags = WmarkMin
	allocWmarkLow      allocFlags = WmarkLow
	allocWmarkHigh     allocFlags = WmarkHigh
	allocNoWatermarks  allocFlags = 0x04
	allocWmarkMask     allocFlags = allocNoWatermarks - 1
	allocOOM           allocFlags = 0x08
	allocNonBlock      allocFlags = 0x10
	allocMinReserve    allocFlags = 0x20 // the value of __GFP_HIGH, by design
	allocCPUSet        allocFlags = 0x40
	allocCMA           allocFlags = 0x80
	allocNoFragment    allocFlags = 0x100
	allocHighAtomic    allocFlags = 0x200
	allocTrylock       allocFlags = 0x400
	allocKswapd        allocFlags = 0x800 // the value of __GFP_KSWAPD_RECLAIM, by design
	allocReserves      allocFlags = allocNonBlock | allocMinReserve | allocHighAtomic | allocOOM
	gfpToAllocPassthru            = gfp.High | gfp.KswapdReclaim
)

// Migratetype indices used inside the zone, re-exported from gfp for brevity.
const (
	mtUnmovable   = gfp.MigrateUnmovable
	mtMovable     = gfp.MigrateMovable
	mtReclaimable = gfp.MigrateReclaimable
	mtHighAtomic  = gfp.MigrateHighAtomic
	mtIsolate     = gfp.MigrateIsolate
	nrMigrate     = gfp.MigrateTypes
)
