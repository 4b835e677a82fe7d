package vmalloc

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// TestMaskConstants checks the masks vmalloc is built on against their
// values in mmsim's lockdep-on layout.
//
// Reference: mm/vmalloc.c:GFP_VMALLOC_SUPPORTED; include/asm-generic/pgalloc.h:GFP_PGTABLE_KERNEL.
func TestMaskConstants(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  gfp.Mask
		want gfp.Mask
	}{
		{"GFP_VMALLOC_SUPPORTED is 0x151ede0", gfp.VmallocSupported, 0x151ede0},
		{"GFP_PGTABLE_KERNEL is GFP_KERNEL|__GFP_ZERO", PgtableKernel, 0xdc0},
		{"the one-page page array mask of GFP_KERNEL is GFP_KERNEL|__GFP_ZERO", gfp.Kernel&gfp.ReclaimMask | gfp.Zero, 0xdc0},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, tc.got, "%s", tc.got) })
	}
}

// TestVmallocFixFlags checks that __vmalloc strips unsupported bits with
// one WARN per allocator in the kernel's words, and that kvmalloc does not
// filter.
//
// Reference: mm/vmalloc.c:__vmalloc_noprof(), vmalloc_fix_flags().
func TestVmallocFixFlags(t *testing.T) {
	m := newMachine(t, Options{})
	tk := memalloc.NewTask("t")
	mask := gfp.NoIO | gfp.NoWarn | gfp.Reclaimable
	addr, err := m.v.Vmalloc(tk, 8192, mask)
	require.NoError(t, err)
	require.Equal(t, []string{"Unexpected gfp: 0x10 (__GFP_RECLAIMABLE). Fixing up to gfp: 0x2c00 (GFP_NOIO|__GFP_NOWARN). Fix your code!"},
		m.texts(bug.Warn))
	for _, c := range m.hooks.seen {
		require.Zero(t, c.mask&gfp.Reclaimable, "a filtered request's page allocation %s kept __GFP_RECLAIMABLE", c.mask)
	}
	require.NoError(t, m.v.Vfree(tk, addr))

	for _, tc := range []struct {
		name      string
		kvmalloc  bool
		wantWarns int
	}{
		{"a second unsupported __vmalloc does not warn again", false, 1},
		{"kvmalloc's fallback is not filtered and does not warn", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m.hooks.reset()
			var addr uint64
			var err error
			if tc.kvmalloc {
				m.slab.fail = func(size int, _ gfp.Mask) bool { return size > 4096 }
				addr, err = m.v.Kvmalloc(tk, 8192, gfp.Kernel|gfp.Reclaimable)
			} else {
				addr, err = m.v.Vmalloc(tk, 8192, gfp.Kernel|gfp.Reclaimable)
			}
			require.NoError(t, err)
			require.Len(t, m.texts(bug.Warn), tc.wantWarns)
			kept := false
			for _, c := range m.hooks.seen {
				kept = kept || c.mask&gfp.Reclaimable != 0
			}
			require.Equal(t, tc.kvmalloc, kept, "__GFP_RECLAIMABLE reached the page allocator")
			require.NoError(t, m.v.Kvfree(tk, addr))
		})
	}
}

// TestVmallocSizeChecks checks the size rules of the range function.
//
// Reference: mm/vmalloc.c:__vmalloc_node_range_noprof() (WARN_ON_ONCE(!size), totalram_pages).
func TestVmallocSizeChecks(t *testing.T) {
	for _, tc := range []struct {
		name       string
		size       int
		mask       gfp.Mask
		wantErr    error
		wantWarn   []string
		wantAllocs []string
	}{
		{"a negative size is invalid", -1, gfp.Kernel, zone.ErrInvalid, nil, nil},
		{"size 0 warns once and fails", 0, gfp.Kernel, zone.ErrInvalid, []string{"WARN_ON_ONCE(!size)"}, nil},
		{"more pages than totalram fails with warn_alloc", 63841 * 4096, gfp.Kernel, zone.ErrNoMemory, nil,
			[]string{"vmalloc error: size 261492736, exceeds total pages"}},
		{"__GFP_NOWARN silences the totalram report", 1 << 40, gfp.Kernel | gfp.NoWarn, zone.ErrNoMemory, nil, nil},
		{"exactly totalram pages passes the size check", 63840 * 4096, gfp.Kernel | gfp.NoWarn, zone.ErrNoMemory, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t, Options{})
			tk := memalloc.NewTask("t")
			_, err := m.v.Vmalloc(tk, tc.size, tc.mask)
			require.ErrorIs(t, err, tc.wantErr)
			require.Equal(t, tc.wantWarn, m.texts(bug.Warn))
			require.Equal(t, tc.wantAllocs, m.warnAllocs())
			require.Equal(t, Stats{LazyAreas: m.v.Stats().LazyAreas, LazyPages: m.v.Stats().LazyPages,
				Purges: m.v.Stats().Purges, TLBFlushes: m.v.Stats().TLBFlushes,
				PageTablePages: m.v.Stats().PageTablePages}, m.v.Stats(), "no area is left behind")
			require.Zero(t, m.nodeStat(zone.NodeNrVmalloc))
			require.Zero(t, m.slab.nlive())
		})
	}
}

// TestVmallocAccounting checks an allocation's footprint: the guard page,
// NR_VMALLOC, the page-table pages (one PMD page and one PTE page for the
// first 2 MiB, more only past it), and that vfree returns the data pages
// and the metadata but keeps the page tables.
//
// Reference: mm/vmalloc.c:__get_vm_area_node(), vm_area_alloc_pages(), vfree(); mm/memory.c:__pte_alloc_kernel().
func TestVmallocAccounting(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sizes     []int
		wantPages int64
		wantPT    int64
		wantVpage bool
	}{
		{"one page takes a PMD and a PTE page", []int{4096}, 1, 2, false},
		{"a partial page is rounded up", []int{5000}, 2, 2, false},
		{"two areas in the first 2 MiB share the PTE page", []int{4096, 16384}, 5, 2, false},
		{"513 pages need a vmalloc'ed page array and a second PTE page", []int{513 * 4096}, 513 + 2, 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t, Options{})
			tk := memalloc.NewTask("t")
			free0 := m.freePages()
			var addrs []uint64
			for _, sz := range tc.sizes {
				addr, err := m.v.Vmalloc(tk, sz, gfp.Kernel)
				require.NoError(t, err)
				require.True(t, IsVmallocAddr(addr))
				got, ok := m.v.Size(addr)
				require.True(t, ok)
				require.Equal(t, sz, got)
				addrs = append(addrs, addr)
			}
			require.Equal(t, tc.wantPages, m.nodeStat(zone.NodeNrVmalloc), "NR_VMALLOC")
			require.Equal(t, tc.wantPT, m.nodeStat(zone.NodeNrPageTablePages), "NR_PAGETABLE")
			require.Equal(t, tc.wantPT, m.v.Stats().PageTablePages)
			require.Equal(t, tc.wantPages, m.v.Stats().Pages)
			require.Equal(t, tc.wantVpage, strings.Contains(m.vmallocinfo(t), " vpages"))
			for _, a := range addrs {
				require.NoError(t, m.v.Vfree(tk, a))
			}
			m.a.DrainAllPages(tk)
			require.Zero(t, m.nodeStat(zone.NodeNrVmalloc))
			require.Equal(t, free0-tc.wantPT, m.freePages(), "every page but the page tables is back")
			require.Zero(t, m.slab.nlive(), "the vm_structs and page arrays are freed")
			require.NoError(t, m.a.CheckInvariants())
		})
	}
}

// TestVfreeMisuse checks that a vfree of an address that does not start a
// live area warns in the kernel's words, fails with ErrBug and changes
// nothing, and that vfree(NULL) is a no-op.
//
// Reference: mm/vmalloc.c:vfree() ("Trying to vfree() nonexistent vm area").
func TestVfreeMisuse(t *testing.T) {
	m := newMachine(t, Options{})
	tk := memalloc.NewTask("t")
	addr, err := m.v.Vmalloc(tk, 8192, gfp.Kernel)
	require.NoError(t, err)
	require.NoError(t, m.v.Vfree(tk, 0))
	before, info := m.v.Stats(), m.vmallocinfo(t)
	for _, tc := range []struct {
		name string
		addr uint64
	}{
		{"an address inside the area", addr + 4096},
		{"an address never handed out", Start + 1<<30},
		{"an address outside the vmalloc range", directMap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(m.texts(bug.Warn))
			err := m.v.Vfree(tk, tc.addr)
			require.ErrorIs(t, err, zone.ErrBug)
			warns := m.texts(bug.Warn)
			require.Len(t, warns, n+1)
			require.Regexp(t, `^Trying to vfree\(\) nonexistent vm area \([0-9a-f]{16}\)$`, warns[n])
			require.Equal(t, before, m.v.Stats())
			require.Equal(t, info, m.vmallocinfo(t))
		})
	}
	require.NoError(t, m.v.Vfree(tk, addr))
	require.ErrorIs(t, m.v.Vfree(tk, addr), zone.ErrBug, "a double vfree")
}

// TestVmallocinfo checks /proc/vmallocinfo's lines against the shapes of
// the real rest_end snapshot: the size with the guard page, the caller,
// pages=, vmalloc, N0=, and an unpurged line per lazily freed area.
//
// Reference: mm/vmalloc.c:vmalloc_info_show(), show_purge_info().
func TestVmallocinfo(t *testing.T) {
	m := newMachine(t, Options{})
	tk := memalloc.NewTask("t")
	a1, err := m.v.VmallocSite(tk, "bpf_prog_alloc_no_stats+0x39/0x230", 4096, gfp.Kernel)
	require.NoError(t, err)
	a2, err := m.v.VmallocNode(tk, "kernel_clone+0x94/0x3e0", 16384, 16384, gfp.Kernel|gfp.Zero)
	require.NoError(t, err)
	a3, err := m.v.VmallocSite(tk, "n_tty_open+0x14/0xa0", 3*4096, gfp.Kernel)
	require.NoError(t, err)
	require.NoError(t, m.v.Vfree(tk, a3))
	want := "" +
		"0xffffc90000000000-0xffffc90000002000    8192 bpf_prog_alloc_no_stats+0x39/0x230 pages=1 vmalloc N0=1\n" +
		"0xffffc90000004000-0xffffc90000009000   20480 kernel_clone+0x94/0x3e0 pages=4 vmalloc N0=4\n" +
		"0xffffc90000009000-0xffffc9000000d000   16384 unpurged vm_area\n"
	require.Equal(t, want, m.vmallocinfo(t))
	require.Equal(t, uint64(0xffffc90000004000), a2, "16 KiB alignment skips the free page at 0x2000")
	require.NoError(t, m.v.Vfree(tk, a1))
	require.NoError(t, m.v.Vfree(tk, a2))
}

// TestLazyPurge checks that freed areas wait on the lazy list until more
// than lazy_max_pages() (fls(2) × 8192 = 16384 pages on 2 CPUs) are
// lazy, and that one purge (one TLB flush) returns them all to the free
// space.
//
// Reference: mm/vmalloc.c:free_vmap_area_noflush(), lazy_max_pages(), __purge_vmap_area_lazy().
func TestLazyPurge(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cpus        int
		frees       int
		wantLazy    int64
		wantFlushes int64
	}{
		// An 8 MiB area is 2048 pages and a guard page; its 16 KiB page
		// array is itself vmalloc'ed (4 pages and a guard page), and is
		// freed after the area.
		{"seven 8 MiB areas stay lazy on 2 CPUs", 2, 7, 7 * 2054, 0},
		{"the eighth area pushes nr_lazy past 16384 and purges; its page array stays lazy", 2, 8, 5, 1},
		{"on 1 CPU the limit is 8192 pages: the fourth area purges", 1, 4, 5, 1},
		{"on 4 CPUs the limit is 24576 pages", 4, 8, 8 * 2054, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t, Options{CPUs: tc.cpus})
			tk := memalloc.NewTask("t")
			for i := 0; i < tc.frees; i++ {
				addr, err := m.v.Vmalloc(tk, 8<<20, gfp.Kernel)
				require.NoError(t, err)
				require.NoError(t, m.v.Vfree(tk, addr))
			}
			s := m.v.Stats()
			require.Equal(t, tc.wantLazy, s.LazyPages)
			require.Equal(t, tc.wantFlushes, s.TLBFlushes)
			if tc.wantFlushes > 0 {
				addr, err := m.v.Vmalloc(tk, 4096, gfp.Kernel)
				require.NoError(t, err)
				require.Equal(t, Start, addr, "the purged space is reused from the lowest address")
			}
		})
	}
}

// TestVmapSpaceExhaustion checks the overflow path of alloc_vmap_area on a
// narrowed range: a non-blocking caller fails at once although lazy space
// exists; a blocking one purges and retries; with nothing to purge it
// fails with the pr_warn.
//
// Reference: mm/vmalloc.c:alloc_vmap_area() (overflow).
func TestVmapSpaceExhaustion(t *testing.T) {
	m := newMachine(t, Options{})
	m.v.vend = Start + 3*4096 // room for one 2-page area with its guard page
	m.v.space.free = []vrange{{m.v.vstart, m.v.vend}}
	tk := memalloc.NewTask("t")
	addr, err := m.v.Vmalloc(tk, 8192, gfp.Kernel)
	require.NoError(t, err)
	require.NoError(t, m.v.Vfree(tk, addr))

	_, err = m.v.Vmalloc(tk, 8192, gfp.Atomic)
	require.ErrorIs(t, err, zone.ErrNoMemory, "GFP_ATOMIC may not purge")
	require.Equal(t, []string{"vmalloc error: size 8192, vm_struct allocation failed"}, m.warnAllocs())
	require.Zero(t, m.slab.nlive(), "the vm_struct is freed again")

	addr, err = m.v.Vmalloc(tk, 8192, gfp.Kernel)
	require.NoError(t, err, "GFP_KERNEL purges the lazy area and retries")
	require.Equal(t, int64(1), m.v.Stats().TLBFlushes)

	_, err = m.v.Vmalloc(tk, 8192, gfp.Kernel)
	require.ErrorIs(t, err, zone.ErrNoMemory)
	require.Equal(t, []string{"vmalloc_node_range for size 12288 failed: Address range restricted to 0xffffc90000000000 - 0xffffc90000003000"},
		m.texts(bug.Info))
	require.NoError(t, m.v.Vfree(tk, addr))
}

// TestVmallocFailures checks each failure point: its warn_alloc text, the
// error, and that everything taken so far is given back.
//
// Reference: mm/vmalloc.c:__vmalloc_area_node(), __vmalloc_node_range_noprof().
func TestVmallocFailures(t *testing.T) {
	isData := func(mask gfp.Mask, _ zone.Order) bool { return mask&gfp.HighMem != 0 }
	isPT := func(mask gfp.Mask, _ zone.Order) bool { return mask&gfp.HighMem == 0 }
	for _, tc := range []struct {
		name      string
		size      int
		mask      gfp.Mask
		slabFail  func(int, gfp.Mask) bool
		pageFail  func(gfp.Mask, zone.Order) bool
		wantErr   error
		wantAlloc []string
	}{
		{"the vm_struct allocation fails", 8192, gfp.Kernel,
			func(size int, _ gfp.Mask) bool { return size == vmStructSize }, nil, zone.ErrNoMemory,
			[]string{"vmalloc error: size 8192, vm_struct allocation failed"}},
		{"the page array allocation fails", 8192, gfp.Kernel,
			func(size int, _ gfp.Mask) bool { return size == 16 }, nil, zone.ErrNoMemory,
			[]string{"vmalloc error: size 8192, failed to allocated page array size 16"}},
		{"the data pages fail", 4 * 4096, gfp.Kernel, nil, isData, zone.ErrNoMemory,
			[]string{"vmalloc error: size 16384, failed to allocate pages"}},
		{"the page tables fail", 4096, gfp.Kernel, nil, isPT, zone.ErrNoMemory,
			[]string{"vmalloc error: size 4096, failed to map pages"}},
		{"__GFP_NOWARN silences the report", 4096, gfp.Kernel | gfp.NoWarn, nil, isData, zone.ErrNoMemory, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t, Options{})
			tk := memalloc.NewTask("t")
			free0 := m.freePages()
			m.slab.fail = tc.slabFail
			m.hooks.setFail(tc.pageFail)
			_, err := m.v.Vmalloc(tk, tc.size, tc.mask)
			require.ErrorIs(t, err, tc.wantErr)
			require.Equal(t, tc.wantAlloc, m.warnAllocs())
			m.a.DrainAllPages(tk)
			assert.Equal(t, free0-m.v.Stats().PageTablePages, m.freePages())
			assert.Zero(t, m.nodeStat(zone.NodeNrVmalloc))
			assert.Zero(t, m.slab.nlive())
			assert.Zero(t, m.v.Stats().Areas)
			assert.Empty(t, m.v.busy)
		})
	}
}

// TestVmallocNofail checks the NOFAIL loops: the vm_struct allocation
// retries with ". Retrying." and a one-tick sleep until it succeeds; the
// mapping retries with one-tick sleeps, and a loop that can never succeed
// ends with ErrDeadlock at the stall limit; a non-blocking NOFAIL request
// does not retry the mapping.
//
// Reference: mm/vmalloc.c:__vmalloc_node_range_noprof() (again), __vmalloc_area_node() (nofail).
func TestVmallocNofail(t *testing.T) {
	t.Run("the vm_struct allocation is retried until it succeeds", func(t *testing.T) {
		m := newMachine(t, Options{})
		tk := memalloc.NewTask("t")
		n := 0
		m.slab.fail = func(size int, _ gfp.Mask) bool {
			if size == vmStructSize && n < 3 {
				n++
				return true
			}
			return false
		}
		addr, err := m.v.Vmalloc(tk, 4096, gfp.Kernel|gfp.NoFail)
		require.NoError(t, err)
		require.Equal(t, int64(3), m.sleeps.Load())
		require.Equal(t, "vmalloc error: size 4096, vm_struct allocation failed. Retrying.", m.warnAllocs()[0])
		require.NoError(t, m.v.Vfree(tk, addr))
	})
	for _, tc := range []struct {
		name       string
		mask       gfp.Mask
		wantErr    error
		wantSleeps int64
	}{
		{"a blocking NOFAIL mapping retries to the stall limit", gfp.Kernel | gfp.NoFail, zone.ErrDeadlock, 10},
		{"a non-blocking NOFAIL mapping fails at once", gfp.Atomic | gfp.NoFail, zone.ErrNoMemory, 0},
		{"without NOFAIL the mapping fails at once", gfp.Kernel, zone.ErrNoMemory, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t, Options{StallLimit: 10 * 4e6})
			tk := memalloc.NewTask("t")
			m.hooks.setFail(func(mask gfp.Mask, _ zone.Order) bool { return mask&gfp.HighMem == 0 })
			_, err := m.v.Vmalloc(tk, 4096, tc.mask)
			require.ErrorIs(t, err, tc.wantErr)
			require.Equal(t, tc.wantSleeps, m.sleeps.Load())
			require.Zero(t, tk.Flags(), "the scope is closed")
			require.Zero(t, m.nodeStat(zone.NodeNrVmalloc))
		})
	}
}
