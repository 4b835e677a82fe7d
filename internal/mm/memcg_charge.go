package mm

import (
	"fmt"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// GFPMemcgUserCharge is the mask of an anonymous, copy-on-write or swap-in
// folio's charge: the fault paths charge with GFP_KERNEL whatever the
// folio's own mask, so that a memcg OOM report of an anonymous fault says
// GFP_KERNEL (as the real reports do).
//
// Kernel: mm/memory.c:alloc_anon_folio(), folio_prealloc(),
// mm/memcontrol.c:mem_cgroup_swapin_charge_folio() callers.
const GFPMemcgUserCharge = gfp.Kernel

// chargeFolio charges a new user folio of nr pages to the cgroup of p's
// address space (the mm owner's), with mask, and returns that cgroup. The
// root cgroup is never charged. A charge counts as a v1 page-in event.
//
// Kernel: mm/memcontrol.c:__mem_cgroup_charge(), charge_memcg(),
// mm/memcontrol-v1.c:memcg1_commit_charge().
func (m *Model) chargeFolio(p *Proc, mask gfp.Mask, nr int64) (*MemCgroup, error) {
	cg := m.cg.root
	if p != nil && p.MM != nil && p.MM.owner != nil {
		cg = p.MM.owner.Memcg()
	} else if p != nil {
		cg = p.Memcg()
	}
	if cg == nil {
		cg = m.cg.root
	}
	if !cg.IsRoot() {
		if err := m.tryChargeMemcg(p.Task, cg, mask, nr); err != nil {
			return nil, err
		}
		m.cg.charged.Add(1)
	}
	cg.vmEvents[MemcgPgpgin].Add(1)
	return cg, nil
}

// allocUserFolio allocates a user folio of order 0 for p with allocMask
// and charges it with chargeMask: the allocation, then mem_cgroup_charge,
// and on a failed charge the page goes back and the error is the charge's.
//
// Kernel: mm/memory.c:alloc_anon_folio() (vma_alloc_folio, then
// mem_cgroup_charge), mm/filemap.c:filemap_add_folio().
func (m *Model) allocUserFolio(p *Proc, allocMask, chargeMask gfp.Mask) (zone.Page, *MemCgroup, error) {
	pg, err := m.alloc.AllocPages(p.Task, allocMask, 0)
	if err != nil {
		return zone.Page{}, nil, err
	}
	cg, err := m.chargeFolio(p, chargeMask, 1)
	if err != nil {
		if ferr := m.alloc.FreePages(p.Task, pg, 0); ferr != nil {
			return zone.Page{}, nil, ferr
		}
		return zone.Page{}, nil, fmt.Errorf("mem_cgroup_charge: %w", err)
	}
	return pg, cg, nil
}

// cancelCharge returns a charge made for a folio that was never used.
//
// Kernel: mm/memcontrol.c:mem_cgroup_cancel_charge().
func (m *Model) cancelCharge(cg *MemCgroup, nr int64) {
	if cg == nil || cg.IsRoot() {
		return
	}
	m.cg.charged.Add(-1)
	m.uncharge(cg, nr)
}

// freeUnused frees a page allocated and charged for a folio that lost a
// race, and returns its charge.
func (m *Model) freeUnused(t *memalloc.Task, pg zone.Page, cg *MemCgroup) error {
	m.cancelCharge(cg, 1)
	return m.alloc.FreePages(t, pg, 0)
}

// unchargeFolio returns a folio's charge as it is freed: the pages, a v1
// page-out event, and a wake of tasks waiting in a v1 OOM.
//
// Kernel: mm/memcontrol.c:uncharge_folio(), uncharge_batch(),
// mm/memcontrol-v1.c:memcg1_uncharge_batch().
func (m *Model) unchargeFolio(f *Folio) {
	cg := f.node.memcg
	if cg == nil {
		return
	}
	cg.vmEvents[MemcgPgpgout].Add(1)
	if cg.IsRoot() {
		return
	}
	m.cg.charged.Add(-1)
	m.uncharge(cg, f.NrPages())
}

// FreeFolios uncharges folios and returns them to the page allocator, as
// the last folio_put does. Call it without the Model's lock.
//
// Kernel: mm/swap.c:folios_put_refs(), mm/memcontrol.c:__mem_cgroup_uncharge_folios().
func (m *Model) FreeFolios(t *memalloc.Task, fs []*Folio) error { return m.freeFolios(t, fs) }

// Memcg returns the cgroup the folio is charged to (the root for an
// uncharged one).
//
// Kernel: include/linux/memcontrol.h:folio_memcg().
func (f *Folio) Memcg() *MemCgroup { return f.node.memcg }

// ChargeKmemPage charges a kernel page block allocated with __GFP_ACCOUNT
// to the allocating task's cgroup, and returns the cgroup charged (nil for
// none: a kernel thread, a task without an mm, or the root cgroup).
//
// Kernel: mm/memcontrol.c:__memcg_kmem_charge_page(), current_obj_cgroup(),
// obj_cgroup_charge_pages(), memcg_account_kmem().
func (m *Model) ChargeKmemPage(t *memalloc.Task, mask gfp.Mask, order zone.Order) (*MemCgroup, error) {
	cg := m.currentObjCgroup(t)
	if cg == nil {
		return nil, nil
	}
	nr := int64(1) << order
	if err := m.tryChargeMemcg(t, cg, mask, nr); err != nil {
		return nil, err
	}
	m.accountKmem(cg, nr)
	return cg, nil
}

// UnchargeKmemPage returns a kernel page block's charge as t frees it:
// out of MEMCG_KMEM, and into t's CPU's stock, as the kernel does.
//
// Kernel: mm/memcontrol.c:__memcg_kmem_uncharge_page(), obj_cgroup_uncharge_pages().
func (m *Model) UnchargeKmemPage(t *memalloc.Task, cg *MemCgroup, order zone.Order) {
	nr := int64(1) << order
	m.accountKmem(cg, -nr)
	m.refillStock(m.stockCPU(t), cg, nr)
}

// stockCPU is the CPU whose charge stock t uses.
func (m *Model) stockCPU(t *memalloc.Task) int {
	if t == nil {
		return 0
	}
	if cpu := t.CPU(); cpu >= 0 && cpu < len(m.cg.stocks) {
		return cpu
	}
	return 0
}

// accountKmem counts kernel pages in MEMCG_KMEM and, on v1, in the kmem
// counter.
//
// Kernel: mm/memcontrol.c:memcg_account_kmem(), mm/memcontrol-v1.c:memcg1_account_kmem().
func (m *Model) accountKmem(cg *MemCgroup, nr int64) {
	cg.kmemPages.Add(nr)
	if m.cg.cgroupV1 {
		if nr > 0 {
			cg.kmem.Charge(nr)
		} else {
			cg.kmem.Uncharge(-nr)
		}
	}
}

// currentObjCgroup is the cgroup kernel allocations of t are charged to:
// its process's, unless it is a kernel thread or has no address space, or
// is in the root cgroup.
//
// Kernel: mm/memcontrol.c:current_obj_cgroup(), current_objcg_update().
func (m *Model) currentObjCgroup(t *memalloc.Task) *MemCgroup {
	if t == nil || t.Flags()&memalloc.PFKthread != 0 {
		return nil
	}
	p := m.Proc(t)
	if p == nil || p.MM == nil {
		return nil
	}
	cg := p.Memcg()
	if cg == nil || cg.IsRoot() {
		return nil
	}
	return cg
}

// ChargeObj charges a slab object of size bytes to t's cgroup and returns
// the cgroup (nil: nothing charged). Whole pages are charged as kmem; the
// remainder of the last page is kept for the next objects.
//
// mmsim keeps one byte stock per cgroup where the kernel keeps one per
// CPU (five cgroups each) plus the obj_cgroup's nr_charged_bytes: the
// pages charged are the same while one CPU allocates, and differ by at
// most a page per CPU otherwise.
//
// Kernel: mm/memcontrol.c:obj_cgroup_charge(), consume_obj_stock(),
// refill_obj_stock(), obj_cgroup_charge_account().
func (m *Model) ChargeObj(t *memalloc.Task, mask gfp.Mask, size int64, reclaimable bool) (*MemCgroup, error) {
	cg := m.currentObjCgroup(t)
	if cg == nil || size <= 0 {
		return nil, nil
	}
	cg.objMu.Lock()
	if cg.objBytes >= size {
		cg.objBytes -= size
		cg.objMu.Unlock()
		cg.slabBytes[slabIndex(reclaimable)].Add(size)
		return cg, nil
	}
	cg.objMu.Unlock()
	nr := size >> zone.PageShift
	rest := size & (zone.PageSize - 1)
	if rest != 0 {
		nr++
	}
	if err := m.tryChargeMemcg(t, cg, mask, nr); err != nil {
		return nil, err
	}
	m.accountKmem(cg, nr)
	if rest != 0 {
		m.refillObj(cg, zone.PageSize-rest)
	}
	cg.slabBytes[slabIndex(reclaimable)].Add(size)
	return cg, nil
}

// UnchargeObj returns a freed object's bytes to its cgroup's stock; whole
// pages past one go back to the counters.
//
// Kernel: mm/memcontrol.c:obj_cgroup_uncharge(), refill_obj_stock().
func (m *Model) UnchargeObj(cg *MemCgroup, size int64, reclaimable bool) {
	if cg != nil && size > 0 {
		cg.slabBytes[slabIndex(reclaimable)].Add(-size)
		m.refillObj(cg, size)
	}
}

func slabIndex(reclaimable bool) int {
	if reclaimable {
		return 0
	}
	return 1
}

// SlabBytes returns the bytes of slab objects charged to cg:
// NR_SLAB_RECLAIMABLE_B and NR_SLAB_UNRECLAIMABLE_B.
//
// Kernel: mm/memcontrol.c:mod_objcg_state().
func (cg *MemCgroup) SlabBytes() (reclaimable, unreclaimable int64) {
	return cg.slabBytes[0].Load(), cg.slabBytes[1].Load()
}

func (m *Model) refillObj(cg *MemCgroup, bytes int64) {
	// The stock may hold at most a page past what it was given back
	// whole: obj_cgroup_uncharge_pages sends whole pages to the counters.
	cg.objMu.Lock()
	cg.objBytes += bytes
	var nr int64
	if cg.objBytes > zone.PageSize {
		nr = cg.objBytes >> zone.PageShift
		cg.objBytes &= zone.PageSize - 1
	}
	cg.objMu.Unlock()
	if nr > 0 {
		m.accountKmem(cg, -nr)
		m.uncharge(cg, nr)
	}
}

// drainObjStock returns the whole pages of the byte stocks of root's
// subtree.
//
// Kernel: mm/memcontrol.c:drain_obj_stock().
func (m *Model) drainObjStock(root *MemCgroup) {
	for _, cg := range m.Subtree(root) {
		cg.objMu.Lock()
		nr := cg.objBytes >> zone.PageShift
		cg.objBytes &= zone.PageSize - 1
		cg.objMu.Unlock()
		if nr > 0 {
			m.accountKmem(cg, -nr)
			m.uncharge(cg, nr)
		}
	}
}

// countMemcgEvent counts a vm event in the cgroup of p's address space.
//
// Kernel: include/linux/memcontrol.h:count_memcg_event_mm().
func (m *Model) countMemcgEvent(p *Proc, e MemcgVMEvent) {
	if cg := p.Memcg(); cg != nil {
		cg.vmEvents[e].Add(1)
	}
}

// pageTableStat counts a page-table page of p's address space in
// NR_PAGETABLE, the node's and the cgroup's.
//
// Kernel: include/linux/mm.h:pagetable_pte_ctor() (lruvec_stat_add_folio).
func (m *Model) pageTableStat(p *Proc, pg zone.Page, delta int64) {
	m.alloc.ZoneOf(pg.PFN()).Node().ModState(zone.NodeNrPageTablePages, delta)
	if p != nil {
		if cg := p.Memcg(); cg != nil {
			cg.stat[zone.NodeNrPageTablePages].Add(delta)
		}
	}
}
