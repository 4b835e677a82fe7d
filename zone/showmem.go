package zone

import (
	"fmt"
	"io"
	"strings"

	"github.com/mmsim/mmsim/gfp"
)

// ShowMemExtra is what the Mem-Info block needs from the layers above the
// allocator.
type ShowMemExtra struct {
	// Hopeless reports whether node nid's kswapd has given up
	// (kswapd_failures >= MAX_RECLAIM_RETRIES): "all_unreclaimable? yes".
	Hopeless func(nid int) bool
	// Swap: pages in the swap cache, free and total swap pages.
	SwapCache, SwapFree, SwapTotal int64
	// CPU is the CPU of the task printing, for local_pcp.
	CPU int
	// CommittedAS and CommitLimit are /proc/meminfo's commit lines, in
	// pages: vm_committed_as and vm_commit_limit().
	CommittedAS, CommitLimit int64
}

// k converts pages to KiB: K().
func k(pages int64) int64 { return pages << (PageShift - 10) }

// migratetypeLetters are show_migration_types' letters, in enum order
// (no CMA in the modelled config).
var migratetypeLetters = [...]byte{'U', 'M', 'E', 'H', 'I'}

// ShowMem writes the "Mem-Info:" block the OOM killer and warn_alloc print,
// for the zones up to maxZone, as the kernel's __show_mem does on a machine
// with one memory node per NUMA node, no highmem, no CMA, no hugetlb pool
// and no hwpoison.
//
// Kernel: mm/show_mem.c:__show_mem(), show_free_areas(), mm/swap_state.c:show_swap_cache_info().
func (a *Allocator) ShowMem(w io.Writer, maxZone gfp.ZoneType, x ShowMemExtra) {
	var b strings.Builder
	type zoneSnap struct {
		z       *Zone
		freePCP int64
		local   int64
		nr      [NrPageOrders]int64
		types   [NrPageOrders]string
		resHA   int64
	}
	var zs []zoneSnap
	var freePCP int64
	a.forEachZone(func(z *Zone) {
		if !z.populated() || z.typ > maxZone {
			return
		}
		s := zoneSnap{z: z}
		for cpu := range z.pcp {
			p := &z.pcp[cpu]
			p.mu.Lock()
			s.freePCP += int64(p.count)
			if cpu == x.CPU {
				s.local = int64(p.count)
			}
			p.mu.Unlock()
		}
		freePCP += s.freePCP
		z.mu.Lock()
		for o := range NrPageOrders {
			s.nr[o] = z.nrFree[o]
			var t []byte
			for mt := range migratetypeLetters {
				if z.free[o][mt].n > 0 {
					t = append(t, migratetypeLetters[mt])
				}
			}
			s.types[o] = string(t)
		}
		s.resHA = z.reservedHighatomic
		z.mu.Unlock()
		zs = append(zs, s)
	})
	g := a.globalNodeState
	b.WriteString("Mem-Info:\n")
	fmt.Fprintf(&b, "active_anon:%d inactive_anon:%d isolated_anon:%d\n"+
		" active_file:%d inactive_file:%d isolated_file:%d\n"+
		" unevictable:%d dirty:%d writeback:%d\n"+
		" slab_reclaimable:%d slab_unreclaimable:%d\n"+
		" mapped:%d shmem:%d pagetables:%d\n"+
		" sec_pagetables:%d bounce:%d\n"+
		" kernel_misc_reclaimable:%d\n"+
		" free:%d free_pcp:%d free_cma:%d\n",
		g(NodeNrActiveAnon), g(NodeNrInactiveAnon), g(NodeNrIsolatedAnon),
		g(NodeNrActiveFile), g(NodeNrInactiveFile), g(NodeNrIsolatedFile),
		g(NodeNrUnevictable), g(NodeNrDirty), g(NodeNrWriteback),
		g(NodeNrSlabReclaimable), g(NodeNrSlabUnreclaimable),
		g(NodeNrMapped), g(NodeNrShmem), g(NodeNrPageTablePages),
		g(NodeNrSecPageTablePages), 0,
		g(NodeNrKernelMiscReclaimable),
		a.globalZoneState(ZoneNrFreePages), freePCP, a.globalZoneState(ZoneNrFreeCMA))
	for _, n := range a.nodes {
		shown := false
		for _, s := range zs {
			shown = shown || s.z.node == n && s.z.managed > 0
		}
		if !shown {
			continue
		}
		st := n.State
		hopeless := "no"
		if x.Hopeless != nil && x.Hopeless(n.id) {
			hopeless = "yes"
		}
		fmt.Fprintf(&b, "Node %d active_anon:%dkB inactive_anon:%dkB active_file:%dkB inactive_file:%dkB"+
			" unevictable:%dkB isolated(anon):%dkB isolated(file):%dkB mapped:%dkB dirty:%dkB"+
			" writeback:%dkB shmem:%dkB shmem_thp:%dkB shmem_pmdmapped:%dkB anon_thp:%dkB"+
			" kernel_stack:%dkB pagetables:%dkB sec_pagetables:%dkB all_unreclaimable? %s Balloon:%dkB"+
			" gpu_active:%dkB gpu_reclaim:%dkB\n",
			n.id, k(st(NodeNrActiveAnon)), k(st(NodeNrInactiveAnon)), k(st(NodeNrActiveFile)), k(st(NodeNrInactiveFile)),
			k(st(NodeNrUnevictable)), k(st(NodeNrIsolatedAnon)), k(st(NodeNrIsolatedFile)), k(st(NodeNrMapped)), k(st(NodeNrDirty)),
			k(st(NodeNrWriteback)), k(st(NodeNrShmem)), k(st(NodeNrShmemHugepages)), k(st(NodeNrShmemPmdmapped)), k(st(NodeNrAnonTransparentHugepages)),
			st(NodeNrKernelStack), k(st(NodeNrPageTablePages)), k(st(NodeNrSecPageTablePages)), hopeless, k(st(NodeNrBalloonPages)),
			k(st(NodeNrGPUActive)), k(st(NodeNrGPUReclaim)))
	}
	for _, s := range zs {
		z := s.z
		fmt.Fprintf(&b, "Node %d %s free:%dkB boost:%dkB min:%dkB low:%dkB high:%dkB"+
			" reserved_highatomic:%dKB free_highatomic:%dKB"+
			" active_anon:%dkB inactive_anon:%dkB active_file:%dkB inactive_file:%dkB"+
			" unevictable:%dkB writepending:%dkB zspages:%dkB present:%dkB managed:%dkB"+
			" mlocked:%dkB bounce:%dkB free_pcp:%dkB local_pcp:%dkB free_cma:%dkB\n",
			z.node.id, z.Name(), k(z.freePages.Load()), k(z.boost.Load()),
			k(z.wmarkPages(WmarkMin)), k(z.wmarkPages(WmarkLow)), k(z.wmarkPages(WmarkHigh)),
			k(s.resHA), k(z.freeHighatomic.Load()),
			k(z.State(ZoneNrZoneActiveAnon)), k(z.State(ZoneNrZoneInactiveAnon)), k(z.State(ZoneNrZoneActiveFile)), k(z.State(ZoneNrZoneInactiveFile)),
			k(z.State(ZoneNrZoneUnevictable)), k(z.State(ZoneNrZoneWritePending)), k(z.State(ZoneNrZspages)), k(z.present), k(z.managed),
			k(z.State(ZoneNrMlock)), 0, k(s.freePCP), k(s.local), k(z.State(ZoneNrFreeCMA)))
		b.WriteString("lowmem_reserve[]:")
		for _, r := range z.lowmemReserve {
			fmt.Fprintf(&b, " %d", r)
		}
		b.WriteByte('\n')
	}
	for _, s := range zs {
		var total int64
		fmt.Fprintf(&b, "Node %d %s: ", s.z.node.id, s.z.Name())
		for o := range NrPageOrders {
			fmt.Fprintf(&b, "%d*%dkB ", s.nr[o], k(1)<<o)
			if s.nr[o] > 0 {
				fmt.Fprintf(&b, "(%s) ", s.types[o])
			}
			total += s.nr[o] << o
		}
		fmt.Fprintf(&b, "= %dkB\n", k(total))
	}
	fmt.Fprintf(&b, "%d total pagecache pages\n", g(NodeNrFilePages))
	fmt.Fprintf(&b, "%d pages in swap cache\n", x.SwapCache)
	fmt.Fprintf(&b, "Free swap  = %dkB\n", k(x.SwapFree))
	fmt.Fprintf(&b, "Total swap = %dkB\n", k(x.SwapTotal))
	var present, reserved int64
	a.forEachZone(func(z *Zone) {
		if z.populated() {
			present += z.present
			reserved += z.present - z.managed
		}
	})
	fmt.Fprintf(&b, "%d pages RAM\n", present)
	b.WriteString("0 pages HighMem/MovableOnly\n")
	fmt.Fprintf(&b, "%d pages reserved\n", reserved)
	io.WriteString(w, b.String())
}
