package zone

import (
	"bufio"
	"fmt"
	"io"
)

// This file is the external-fragmentation arithmetic of mm/vmstat.c: the
// fragmentation index that compaction consults (vm.extfrag_threshold) and
// the unusable free space index, and the two debugfs files that print them
// per zone and order, /sys/kernel/debug/extfrag/extfrag_index and
// /sys/kernel/debug/extfrag/unusable_index.
//
// Both indices read only the free areas' nr_free: a block on a per-cpu list
// is not free to them, and neither migratetypes nor pageblocks matter. Like
// the kernel they are in thousandths.

// contigPageInfo is what the free areas say about one request order: the
// free pages, the free blocks of every order, and how many blocks of the
// request's order the free blocks of that order or above could be split
// into.
//
// Kernel: mm/vmstat.c:struct contig_page_info.
type contigPageInfo struct {
	freePages, freeBlocksTotal, freeBlocksSuitable int64
}

// fillContigPageInfo tallies the free areas' block counts nr for a request
// of order suitable. An order outside 0..MaxPageOrder (the kernel's order
// is unsigned, so a negative one is huge) finds no suitable block.
//
// Kernel: mm/vmstat.c:fill_contig_page_info().
func fillContigPageInfo(nr *[NrPageOrders]int64, suitable Order) contigPageInfo {
	var info contigPageInfo
	for o, blocks := range nr {
		info.freeBlocksTotal += blocks
		info.freePages += blocks << o
		if suitable >= 0 && Order(o) >= suitable {
			info.freeBlocksSuitable += blocks << (Order(o) - suitable)
		}
	}
	return info
}

// fragmentationIndex is the index of info for the order, in thousandths:
// 0 when nothing is free, -1000 when a block of the order is free, else
// 1000 - (1000 + 1000*free/2^order) / blocks, which tends to 0 when a
// failure would be for want of memory and to 1000 when it would be for
// fragmentation. The formula can go below 0 (down to -999) when few
// blocks hold almost a request's worth of pages: the kernel returns that
// value as it is, and so does mmsim. ok is false for an order outside
// 0..MaxPageOrder, where the kernel WARNs and returns 0.
//
// Kernel: mm/vmstat.c:__fragmentation_index().
func fragmentationIndex(order Order, info contigPageInfo) (index int, ok bool) {
	if order < 0 || order > MaxPageOrder {
		return 0, false
	}
	switch {
	case info.freeBlocksTotal == 0:
		return 0, true
	case info.freeBlocksSuitable > 0:
		return -1000, true
	}
	requested := int64(1) << order
	return int(1000 - (1000+info.freePages*1000/requested)/info.freeBlocksTotal), true
}

// unusableFreeIndex is the share of the free pages, in thousandths, that
// lie in blocks too small for the order: 0 when every free page could
// serve it, 1000 when none could, or when nothing is free.
//
// Kernel: mm/vmstat.c:unusable_free_index().
func unusableFreeIndex(order Order, info contigPageInfo) int {
	if info.freePages == 0 {
		return 1000
	}
	var usable int64
	if order >= 0 && order <= MaxPageOrder {
		usable = info.freeBlocksSuitable << order
	}
	return int((info.freePages - usable) * 1000 / info.freePages)
}

// FragmentationIndex returns the zone's fragmentation index for a request
// of the order, in thousandths, from its free areas at this moment (read
// under the zone lock): -1000 when a free block of the order exists (the
// request would not fail for fragmentation), 0 when the zone has no free
// block at all; otherwise towards 0 a failure would be for lack of memory
// and towards 1000 for external fragmentation (values a little below 0
// are possible, as in the kernel). An order above MaxPageOrder (or
// negative) fires the kernel's WARN_ON_ONCE and returns 0.
//
// Compaction skips a zone whose index for a costly order lies in
// 0..vm.extfrag_threshold (500).
//
// Kernel: mm/vmstat.c:fragmentation_index(), __fragmentation_index().
func (z *Zone) FragmentationIndex(order Order) int {
	z.mu.Lock()
	nr := z.nrFree
	z.mu.Unlock()
	index, ok := fragmentationIndex(order, fillContigPageInfo(&nr, order))
	if !ok {
		z.node.alloc.warnOnce("__fragmentation_index", "mm/vmstat.c:__fragmentation_index",
			"WARN_ON_ONCE(order > MAX_PAGE_ORDER): fragmentation index of order %d", order)
	}
	return index
}

// UnusableIndex returns the zone's unusable free space index for a request
// of the order, in thousandths: the share of its free pages (as the buddy
// free areas hold them now, read under the zone lock) that lie in blocks
// smaller than the order. 0 means no external fragmentation for that
// order; 1000 means none of the free memory can serve it, or nothing is
// free. An order above MaxPageOrder (or negative) finds no block large
// enough.
//
// Kernel: mm/vmstat.c:unusable_free_index().
func (z *Zone) UnusableIndex(order Order) int {
	z.mu.Lock()
	nr := z.nrFree
	z.mu.Unlock()
	return unusableFreeIndex(order, fillContigPageInfo(&nr, order))
}

// writeIndexFile writes one line per populated zone of every node:
// "Node %d, zone %8s " and then, per order, the index printed by format
// from its value divided by 1000 and its remainder (C's truncating
// division, so -1000 prints as -1.000 and -500 as 0.-500, as the
// kernel's seq_printf does). Each zone's free areas are read once, under
// its lock, as walk_zones_in_node holds the lock across the print.
//
// Kernel: mm/vmstat.c:walk_zones_in_node().
func (a *Allocator) writeIndexFile(w io.Writer, format string, index func(Order, contigPageInfo) int) error {
	bw := bufio.NewWriter(w)
	for _, n := range a.nodes {
		for _, z := range n.zones {
			if !z.populated() {
				continue
			}
			z.mu.Lock()
			nr := z.nrFree
			z.mu.Unlock()
			fmt.Fprintf(bw, "Node %d, zone %8s ", n.id, z.Name())
			for o := Order(0); o <= MaxPageOrder; o++ {
				v := index(o, fillContigPageInfo(&nr, o))
				fmt.Fprintf(bw, format, v/1000, v%1000)
			}
			bw.WriteByte('\n')
		}
	}
	return bw.Flush()
}

// WriteExtfragIndex writes /sys/kernel/debug/extfrag/extfrag_index: for
// each populated zone, "Node %d, zone %8s " and the fragmentation index of
// every order 0..MaxPageOrder as "%2d.%03d " (-1.000 for orders a free
// block could serve now).
//
// Kernel: mm/vmstat.c:extfrag_show(), extfrag_show_print().
func (a *Allocator) WriteExtfragIndex(w io.Writer) error {
	return a.writeIndexFile(w, "%2d.%03d ", func(o Order, info contigPageInfo) int {
		v, _ := fragmentationIndex(o, info)
		return v
	})
}

// WriteUnusableIndex writes /sys/kernel/debug/extfrag/unusable_index: for
// each populated zone (a node without memory prints nothing), "Node %d,
// zone %8s " and the unusable free space index of every order
// 0..MaxPageOrder as "%d.%03d ".
//
// Kernel: mm/vmstat.c:unusable_show(), unusable_show_print().
func (a *Allocator) WriteUnusableIndex(w io.Writer) error {
	return a.writeIndexFile(w, "%d.%03d ", unusableFreeIndex)
}
