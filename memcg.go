package mmsim

import (
	"fmt"
	"io"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/mm"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// Cgroup is a memory cgroup: a directory of the memory controller's
// hierarchy, with its limits, counters, LRU lists and statistics. Make one
// with System.NewCgroup, move tasks in with System.AttachTask, and read and
// write its files (memory.max, memory.stat, memory.limit_in_bytes ...)
// with ReadCgroupFile and WriteCgroupFile.
//
// Kernel: include/linux/memcontrol.h:struct mem_cgroup.
type Cgroup = mm.MemCgroup

// MemcgEvent names a memory.events counter (MemcgMax, MemcgOOMKill ...).
//
// Kernel: include/linux/memcontrol.h:enum memcg_memory_event.
type MemcgEvent = mm.MemcgEvent

// The memory.events counters.
const (
	MemcgLow          = mm.MemcgLow
	MemcgHigh         = mm.MemcgHigh
	MemcgMax          = mm.MemcgMax
	MemcgOOM          = mm.MemcgOOM
	MemcgOOMKill      = mm.MemcgOOMKill
	MemcgOOMGroupKill = mm.MemcgOOMGroupKill
)

// MemcgChargeBatch is MEMCG_CHARGE_BATCH: a charge takes this many pages
// at once and keeps the rest in the CPU's stock, so memory.current may be
// up to that much above what is in use.
//
// Kernel: include/linux/memcontrol.h:MEMCG_CHARGE_BATCH.
const MemcgChargeBatch = mm.MemcgChargeBatch

// RootCgroup returns the root of the memory controller's hierarchy: every
// task starts there, and nothing charged to it is limited.
func (s *System) RootCgroup() *Cgroup { return s.model.RootMemcg() }

// NewCgroup makes a child cgroup of parent (mkdir). The name must be a
// directory name; an existing one is EEXIST.
//
// Kernel: mm/memcontrol.c:mem_cgroup_css_alloc().
func (s *System) NewCgroup(parent *Cgroup, name string) (*Cgroup, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.model.NewMemcg(parent, name)
}

// AttachTask moves t's process into cg (echo PID > cgroup.procs). What it
// charged before stays charged where it was; what it charges from now on
// is charged to cg.
//
// Kernel: kernel/cgroup/cgroup.c:cgroup_attach_task(), mm/memcontrol.c:mem_cgroup_attach().
func (s *System) AttachTask(t *memalloc.Task, cg *Cgroup) error {
	p, err := s.proc(t)
	if err != nil {
		return err
	}
	return s.model.AttachMemcg(p, cg)
}

// CgroupOf returns the cgroup t's process belongs to.
//
// Kernel: include/linux/memcontrol.h:mem_cgroup_from_task().
func (s *System) CgroupOf(t *memalloc.Task) (*Cgroup, error) {
	p, err := s.proc(t)
	if err != nil {
		return nil, err
	}
	return p.Memcg(), nil
}

// ReadCgroupFile returns the text of one of cg's memory-controller files,
// as cat prints it: "memory.max", "memory.stat", "memory.events" on
// cgroup v2; "memory.limit_in_bytes", "memory.usage_in_bytes",
// "memory.failcnt", "memory.oom_control" ... on v1 (Config.CgroupV1).
//
// Kernel: mm/memcontrol.c (memory_files), mm/memcontrol-v1.c (mem_cgroup_legacy_files).
func (s *System) ReadCgroupFile(cg *Cgroup, name string) (string, error) {
	return s.model.ReadMemcgFile(cg, name)
}

// WriteCgroupFile writes value to one of cg's files on behalf of t, as
// echo does: a lower memory.max reclaims (and on v2 OOM-kills) down to it,
// a v1 memory.limit_in_bytes below what cannot be reclaimed fails with
// EBUSY.
//
// Kernel: mm/memcontrol.c:memory_max_write(), memory_high_write(),
// mm/memcontrol-v1.c:mem_cgroup_write(), mem_cgroup_resize_max().
func (s *System) WriteCgroupFile(t *memalloc.Task, cg *Cgroup, name, value string) error {
	if err := s.check(t); err != nil {
		return err
	}
	return s.model.WriteMemcgFile(t, cg, name, value)
}

// WriteCgroupStat writes cg's memory.stat.
//
// Kernel: mm/memcontrol.c:memory_stat_show(), mm/memcontrol-v1.c:memcg1_stat_format().
func (s *System) WriteCgroupStat(w io.Writer, cg *Cgroup) error { return s.model.WriteMemcgStat(w, cg) }

// memcgOps plugs memcg reclaim, the memcg OOM killer and the clock into
// the charge path.
type memcgOps struct{ s *System }

func (o memcgOps) TryToFreeMemCgroupPages(t *memalloc.Task, cg *mm.MemCgroup, nr int64, mask gfp.Mask, maySwap bool) int64 {
	return o.s.reclaim.TryToFreeMemCgroupPages(t, cg, nr, mask, maySwap)
}

func (o memcgOps) MemcgOutOfMemory(t *memalloc.Task, cg *mm.MemCgroup, mask gfp.Mask, order zone.Order) bool {
	return o.s.oom.MemcgOutOfMemory(t, cg, mask, order)
}

func (o memcgOps) Sleep(_ *memalloc.Task, d int64, wake func() bool) bool {
	return o.s.clock.Sleep(d, wake)
}

// kmemCharger charges __GFP_ACCOUNT page blocks to the allocating task's
// cgroup.
type kmemCharger struct{ m *mm.Model }

func (k kmemCharger) ChargeKmem(t *memalloc.Task, mask gfp.Mask, order zone.Order) (any, error) {
	cg, err := k.m.ChargeKmemPage(t, mask, order)
	if err != nil || cg == nil {
		return nil, err
	}
	return cg, nil
}

func (k kmemCharger) UnchargeKmem(t *memalloc.Task, owner any, order zone.Order) {
	if cg, ok := owner.(*mm.MemCgroup); ok {
		k.m.UnchargeKmemPage(t, cg, order)
	} else {
		panic(fmt.Sprintf("mmsim: internal: kmem owner %T is not a cgroup", owner))
	}
}

// objCharger charges accounted slab objects to the allocating task's
// cgroup.
type objCharger struct{ m *mm.Model }

func (o objCharger) ChargeObj(t *memalloc.Task, mask gfp.Mask, size int64, reclaimable bool) (any, error) {
	cg, err := o.m.ChargeObj(t, mask, size, reclaimable)
	if err != nil || cg == nil {
		return nil, err
	}
	return cg, nil
}

func (o objCharger) UnchargeObj(owner any, size int64, reclaimable bool) {
	if cg, ok := owner.(*mm.MemCgroup); ok {
		o.m.UnchargeObj(cg, size, reclaimable)
	}
}
