package vmalloc

import (
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// PgtableKernel is the mask of kernel page-table pages: GFP_KERNEL |
// __GFP_ZERO | __GFP_SKIP_KASAN (0 without KASAN_HW_TAGS), whatever the
// caller of vmalloc asked for.
//
// Kernel: include/asm-generic/pgalloc.h:GFP_PGTABLE_KERNEL.
const PgtableKernel = gfp.Kernel | gfp.Zero

// The spans one page-table page maps on x86_64 with 4-level paging: a PTE
// page maps 2 MiB (PMD_SIZE), a PMD page 1 GiB (PUD_SIZE). The PUD pages
// of the vmalloc range are preallocated at boot
// (arch/x86/mm/init_64.c:preallocate_vmalloc_pages), so never allocated
// here.
const (
	pmdShift = 21
	pudShift = 30
)

// applyGFPScope opens the scope that imposes the caller's constraints on
// the page-table allocations, which use GFP_PGTABLE_KERNEL: PF_MEMALLOC
// (no reclaim, reserves) for a non-blocking, NORETRY or RETRY_MAYFAIL
// caller, NOFS for GFP_NOFS, NOIO for GFP_NOIO, none for GFP_KERNEL. It
// returns the cookie and whether a scope was opened. Under Options.PreFix
// it opens none.
//
// Differences: memalloc_restore_scope skips a 0 cookie (the flag was
// already set); mmsim restores it anyway, which changes no flag and keeps
// memalloc's record of open scopes balanced.
//
// Kernel: mm/vmalloc.c:memalloc_apply_gfp_scope(), memalloc_restore_scope().
func (v *Allocator) applyGFPScope(t *memalloc.Task, mask gfp.Mask) (memalloc.Flags, bool) {
	if v.opts.PreFix {
		return 0, false
	}
	switch {
	case !mask.AllowsBlocking() || mask&(gfp.RetryMayFail|gfp.NoRetry) != 0:
		// No reclaim at all, so that the mapping cannot OOM.
		return t.SaveMemalloc(), true
	case mask&(gfp.FS|gfp.IO) == gfp.IO:
		// GFP_NOFS: reclaim must not recurse into the filesystem.
		return t.SaveNoFS(), true
	case mask&(gfp.FS|gfp.IO) == 0:
		// GFP_NOIO: reclaim must not start I/O.
		return t.SaveNoIO(), true
	}
	return 0, false
}

// vmapPagesRange makes sure the page tables that map [start, end) exist,
// allocating a PMD page per 1 GiB and a PTE page per 2 MiB the first time
// the range is used, with GFP_PGTABLE_KERNEL under the task's scope. The
// pages are counted in NR_PAGETABLE and never freed, as in the kernel. A
// failure leaves the pages already installed in place.
//
// Kernel: mm/vmalloc.c:__vmap_pages_range(), vmap_pages_pte_range();
// mm/memory.c:__pte_alloc_kernel(), __pmd_alloc().
func (v *Allocator) vmapPagesRange(t *memalloc.Task, start, end uint64) error {
	for c := start &^ (1<<pmdShift - 1); c < end; c += 1 << pmdShift {
		if err := v.populate(t, v.pmd, c>>pudShift); err != nil {
			return err
		}
		if err := v.populate(t, v.pte, c>>pmdShift); err != nil {
			return err
		}
	}
	return nil
}

// populate installs the page-table page of table[key] if it is missing. As
// __pte_alloc_kernel does, the page is allocated without the lock and
// freed again if another task installed one meanwhile.
func (v *Allocator) populate(t *memalloc.Task, table map[uint64]bool, key uint64) error {
	v.mu.Lock()
	have := table[key]
	v.mu.Unlock()
	if have {
		return nil
	}
	p, err := v.a.AllocPages(t, PgtableKernel, 0)
	if err != nil {
		return err
	}
	v.mu.Lock()
	if table[key] {
		v.mu.Unlock()
		return v.a.FreePages(t, p, 0)
	}
	table[key] = true
	v.ptPages = append(v.ptPages, p)
	v.stats.PageTablePages++
	v.mu.Unlock()
	v.a.ZoneOf(p.PFN()).Node().ModState(zone.NodeNrPageTablePages, 1)
	return nil
}
