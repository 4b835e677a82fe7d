package zone

import (
	"bufio"
	"fmt"
	"io"

	"github.com/mmsim/mmsim/gfp"
)

// The /proc files of the page allocator, in Linux 7.2's text layout. Fields
// mmsim does not model print what a kernel without that activity prints (0).

// WriteBuddyinfo writes /proc/buddyinfo: per populated zone, the number of
// free blocks of each order.
//
// Kernel: mm/vmstat.c:frag_show_print().
func (a *Allocator) WriteBuddyinfo(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, n := range a.nodes {
		for _, z := range n.zones {
			if !z.populated() {
				continue
			}
			fmt.Fprintf(bw, "Node %d, zone %8s ", n.id, z.Name())
			z.mu.Lock()
			nr := z.nrFree
			z.mu.Unlock()
			for _, c := range nr {
				fmt.Fprintf(bw, "%6d ", c)
			}
			bw.WriteByte('\n')
		}
	}
	return bw.Flush()
}

// pagetypeinfoCap is where /proc/pagetypeinfo stops counting a free list.
const pagetypeinfoCap = 100000

// WritePagetypeinfo writes /proc/pagetypeinfo: the free blocks per order and
// migratetype, and the pageblocks of each migratetype.
//
// Kernel: mm/vmstat.c:pagetypeinfo_show(), pagetypeinfo_showfree_print(),
// pagetypeinfo_showblockcount_print().
func (a *Allocator) WritePagetypeinfo(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, n := range a.nodes {
		if !n.hasMemory() {
			continue // only N_MEMORY nodes
		}
		fmt.Fprintf(bw, "Page block order: %d\n", PageblockOrder)
		fmt.Fprintf(bw, "Pages per block:  %d\n", PageblockNrPages)
		bw.WriteByte('\n')
		fmt.Fprintf(bw, "%-43s ", "Free pages count per migrate type at order")
		for o := 0; o < NrPageOrders; o++ {
			fmt.Fprintf(bw, "%6d ", o)
		}
		bw.WriteByte('\n')
		for _, z := range n.zones {
			if !z.populated() {
				continue
			}
			z.mu.Lock()
			for mt := gfp.Migratetype(0); int(mt) < gfp.MigrateTypes; mt++ {
				fmt.Fprintf(bw, "Node %4d, zone %8s, type %12s ", n.id, z.Name(), mt)
				for o := 0; o < NrPageOrders; o++ {
					c, over := z.free[o][mt].n, ""
					if c >= pagetypeinfoCap {
						c, over = pagetypeinfoCap, ">"
					}
					fmt.Fprintf(bw, "%s%6d ", over, c)
				}
				bw.WriteByte('\n')
			}
			z.mu.Unlock()
		}
		fmt.Fprintf(bw, "\n%-23s", "Number of blocks type ")
		for mt := gfp.Migratetype(0); int(mt) < gfp.MigrateTypes; mt++ {
			fmt.Fprintf(bw, "%12s ", mt)
		}
		bw.WriteByte('\n')
		for _, z := range n.zones {
			if !z.populated() {
				continue
			}
			var count [gfp.MigrateTypes]int64
			for pfn := z.startPFN; pfn < z.presentEnd; pfn += PageblockNrPages {
				count[z.blockMT(pfn)]++
			}
			fmt.Fprintf(bw, "Node %d, zone %8s ", n.id, z.Name())
			for _, c := range count {
				fmt.Fprintf(bw, "%12d ", c)
			}
			bw.WriteByte('\n')
		}
	}
	return bw.Flush()
}

// thpItem reports whether a node item prints in units of THPs.
//
// Kernel: mm/vmstat.c:vmstat_item_print_in_thp().
func thpItem(i NodeStat) bool {
	switch i {
	case NodeNrShmemHugepages, NodeNrShmemPmdmapped, NodeNrFileHugepages, NodeNrFilePmdmapped, NodeNrAnonTransparentHugepages:
		return true
	}
	return false
}

func nodeItemValue(v int64, i NodeStat) int64 {
	if thpItem(i) {
		return v / PageblockNrPages // HPAGE_PMD_NR
	}
	return v
}

// WriteZoneinfo writes /proc/zoneinfo: every zone of every node, its
// watermarks, sizes, protection, counters and pcp state; the node's
// counters once, before its first populated zone's.
//
// Kernel: mm/vmstat.c:zoneinfo_show_print().
func (a *Allocator) WriteZoneinfo(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, n := range a.nodes {
		first := true
		for _, z := range n.zones {
			fmt.Fprintf(bw, "Node %d, zone %8s", n.id, z.Name())
			if first && z.populated() {
				first = false
				bw.WriteString("\n  per-node stats")
				for i := NodeStat(0); i < nrNodeStats; i++ {
					fmt.Fprintf(bw, "\n      %-12s %d", i, nodeItemValue(n.State(i), i))
				}
			}
			fmt.Fprintf(bw, "\n  pages free     %d\n        boost    %d\n        min      %d"+
				"\n        low      %d\n        high     %d\n        promo    %d"+
				"\n        spanned  %d\n        present  %d\n        managed  %d\n        cma      %d",
				z.freePages.Load(), z.boost.Load(), z.wmarkPages(WmarkMin), z.wmarkPages(WmarkLow),
				z.wmarkPages(WmarkHigh), z.wmarkPages(WmarkPromo), z.spanned, z.present, z.managed, 0)
			fmt.Fprintf(bw, "\n        protection: (%d", z.lowmemReserve[0])
			for _, r := range z.lowmemReserve[1:] {
				fmt.Fprintf(bw, ", %d", r)
			}
			bw.WriteByte(')')
			if !z.populated() {
				bw.WriteByte('\n')
				continue
			}
			for i := ZoneStat(0); i < nrZoneStats; i++ {
				fmt.Fprintf(bw, "\n      %-12s %d", i, z.State(i))
			}
			for i := NumaStat(0); i < nrNumaStats; i++ {
				fmt.Fprintf(bw, "\n      %-12s %d", i, z.NumaEvent(i))
			}
			bw.WriteString("\n  pagesets")
			threshold := z.statThreshold()
			for cpu := range z.pcp {
				p := &z.pcp[cpu]
				p.mu.Lock()
				fmt.Fprintf(bw, "\n    cpu: %d\n              count:    %d\n              high:     %d"+
					"\n              batch:    %d\n              high_min: %d\n              high_max: %d",
					cpu, p.count, p.high, p.batch, p.highMin, p.highMax)
				p.mu.Unlock()
				fmt.Fprintf(bw, "\n  vm stats threshold: %d", threshold)
			}
			z.mu.Lock()
			reserved := z.reservedHighatomic
			z.mu.Unlock()
			fmt.Fprintf(bw, "\n  node_unreclaimable:  %d\n  start_pfn:           %d"+
				"\n  reserved_highatomic: %d\n  free_highatomic:     %d\n",
				0, z.startPFN, reserved, z.freeHighatomic.Load())
		}
	}
	return bw.Flush()
}

// memmapBootPages is nr_memmap_boot_pages: the pages of struct page (64
// bytes each) the kernel allocated at boot, 512 for each 128 MiB memory
// section that has memory. The live machine's 98304 (24 GiB, 192 sections)
// agrees.
//
// Kernel: mm/sparse.c:sparse_init_nid() (memmap_boot_pages_add),
// arch/x86/include/asm/sparsemem.h:SECTION_SIZE_BITS (27).
func (a *Allocator) memmapBootPages() int64 {
	const sectionShift = 27 - PageShift
	sections := map[PFN]bool{}
	a.forEachZone(func(z *Zone) {
		for _, r := range z.presentRuns {
			for s := r.start >> sectionShift; s <= (r.end-1)>>sectionShift; s++ {
				sections[s] = true
			}
		}
	})
	return int64(len(sections)) * (1 << sectionShift) * 64 / PageSize
}

// WriteVmstat writes /proc/vmstat: the zone, NUMA and node counters summed
// over the machine, the dirty thresholds, the memmap counters and the vm
// events.
//
// Kernel: mm/vmstat.c:vmstat_start(), vmstat_show().
func (a *Allocator) WriteVmstat(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for i := ZoneStat(0); i < nrZoneStats; i++ {
		fmt.Fprintf(bw, "%s %d\n", i, a.globalZoneState(i))
	}
	for i := NumaStat(0); i < nrNumaStats; i++ {
		var v int64
		a.forEachZone(func(z *Zone) { v += z.NumaEvent(i) })
		fmt.Fprintf(bw, "%s %d\n", i, v)
	}
	for i := NodeStat(0); i < nrNodeStats; i++ {
		fmt.Fprintf(bw, "%s %d\n", i, nodeItemValue(a.globalNodeState(i), i))
	}
	thresh, bg := a.DirtyLimits()
	for i, v := range []int64{thresh, bg, 0, a.memmapBootPages()} {
		fmt.Fprintf(bw, "%s %d\n", vmStatNames[i], v)
	}
	for e := VMEvent(0); e < nrVMEvents; e++ {
		fmt.Fprintf(bw, "%s %d\n", e, a.Event(e))
	}
	bw.WriteString("nr_unstable 0\n")
	return bw.Flush()
}

// vmallocTotalKB is VMALLOC_TOTAL >> 10 with 4-level paging on x86_64, as
// the live machine's /proc/meminfo prints it.
//
// Kernel: arch/x86/include/asm/pgtable_64_types.h:VMALLOC_SIZE_TB_L4 (32 TiB;
// VMALLOC_END is VMALLOC_START + 32 TiB - 1).
const vmallocTotalKB = 34359738367

// WriteMeminfo writes /proc/meminfo.
//
// Kernel: fs/proc/meminfo.c:meminfo_proc_show(),
// arch/x86/mm/pat/set_memory.c:arch_report_meminfo().
func (a *Allocator) WriteMeminfo(w io.Writer) error {
	bw := bufio.NewWriter(w)
	kb := func(label string, pages int64) { fmt.Fprintf(bw, "%s%8d kB\n", label, pages<<(PageShift-10)) }
	node := a.globalNodeState
	total := a.TotalramPages()
	x := ShowMemExtra{CommitLimit: total * int64(a.sysctl.OvercommitRatio) / 100}
	if a.opts.MemInfo != nil {
		x = a.opts.MemInfo()
	}
	cached := max(node(NodeNrFilePages)-node(NodeNrSwapcached), 0)
	kb("MemTotal:       ", total)
	kb("MemFree:        ", a.globalZoneState(ZoneNrFreePages))
	kb("MemAvailable:   ", a.MemAvailable())
	kb("Buffers:        ", 0)
	kb("Cached:         ", cached)
	kb("SwapCached:     ", node(NodeNrSwapcached))
	kb("Active:         ", node(NodeNrActiveAnon)+node(NodeNrActiveFile))
	kb("Inactive:       ", node(NodeNrInactiveAnon)+node(NodeNrInactiveFile))
	kb("Active(anon):   ", node(NodeNrActiveAnon))
	kb("Inactive(anon): ", node(NodeNrInactiveAnon))
	kb("Active(file):   ", node(NodeNrActiveFile))
	kb("Inactive(file): ", node(NodeNrInactiveFile))
	kb("Unevictable:    ", node(NodeNrUnevictable))
	kb("Mlocked:        ", a.globalZoneState(ZoneNrMlock))
	kb("SwapTotal:      ", x.SwapTotal)
	kb("SwapFree:       ", x.SwapFree)
	kb("Zswap:          ", 0)
	fmt.Fprintf(bw, "Zswapped:       %8d kB\n", 0)
	kb("Dirty:          ", node(NodeNrDirty))
	kb("Writeback:      ", node(NodeNrWriteback))
	kb("AnonPages:      ", node(NodeNrAnonPages))
	kb("Mapped:         ", node(NodeNrMapped))
	kb("Shmem:          ", node(NodeNrShmem))
	kb("KReclaimable:   ", node(NodeNrSlabReclaimable)+node(NodeNrKernelMiscReclaimable))
	kb("Slab:           ", node(NodeNrSlabReclaimable)+node(NodeNrSlabUnreclaimable))
	kb("SReclaimable:   ", node(NodeNrSlabReclaimable))
	kb("SUnreclaim:     ", node(NodeNrSlabUnreclaimable))
	fmt.Fprintf(bw, "KernelStack:    %8d kB\n", node(NodeNrKernelStack))
	kb("PageTables:     ", node(NodeNrPageTablePages))
	kb("SecPageTables:  ", node(NodeNrSecPageTablePages))
	kb("NFS_Unstable:   ", 0)
	kb("Bounce:         ", 0)
	kb("WritebackTmp:   ", 0)
	kb("CommitLimit:    ", x.CommitLimit)
	kb("Committed_AS:   ", x.CommittedAS)
	fmt.Fprintf(bw, "VmallocTotal:   %8d kB\n", int64(vmallocTotalKB))
	kb("VmallocUsed:    ", node(NodeNrVmalloc))
	kb("VmallocChunk:   ", 0)
	kb("Percpu:         ", 0)
	kb("AnonHugePages:  ", node(NodeNrAnonTransparentHugepages))
	kb("ShmemHugePages: ", node(NodeNrShmemHugepages))
	kb("ShmemPmdMapped: ", node(NodeNrShmemPmdmapped))
	kb("FileHugePages:  ", node(NodeNrFileHugepages))
	kb("FilePmdMapped:  ", node(NodeNrFilePmdmapped))
	kb("Balloon:        ", node(NodeNrBalloonPages))
	kb("GPUActive:      ", node(NodeNrGPUActive))
	kb("GPUReclaim:     ", node(NodeNrGPUReclaim))
	fmt.Fprintf(bw, "HugePages_Total:   %5d\nHugePages_Free:    %5d\nHugePages_Rsvd:    %5d\nHugePages_Surp:    %5d\n", 0, 0, 0, 0)
	fmt.Fprintf(bw, "Hugepagesize:   %8d kB\n", PageblockNrPages*PageSize>>10)
	fmt.Fprintf(bw, "Hugetlb:        %8d kB\n", 0)
	k4, m2, g1 := a.directMap.Counts()
	fmt.Fprintf(bw, "DirectMap4k:    %8d kB\nDirectMap2M:    %8d kB\nDirectMap1G:    %8d kB\n", k4*4, m2*2048, g1*1048576)
	return bw.Flush()
}
