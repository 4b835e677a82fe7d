package oom

import (
	"fmt"
	"strings"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/internal/mm"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// MemcgOutOfMemory is out_of_memory for a memory cgroup over its limit:
// the victim is chosen among the cgroup's tasks only (CONSTRAINT_MEMCG,
// totalpages the cgroup's limit), the report shows the cgroup's counters
// and statistics instead of the machine's Mem-Info, and the request's
// mask does not matter: unlike a global OOM, a charge without __GFP_FS is
// killed for. panic_on_oom=1 does not panic for it, and
// oom_kill_allocating_task does not apply. With nothing killable it
// reports "Out of memory and no killable processes..." and returns false,
// never panicking. It reports whether it made progress.
//
// Kernel: mm/oom_kill.c:out_of_memory(), constrained_alloc(),
// mm/memcontrol.c:mem_cgroup_get_max(), mem_cgroup_scan_tasks().
func (k *Killer) MemcgOutOfMemory(t *memalloc.Task, cg *mm.MemCgroup, mask gfp.Mask, order zone.Order) bool {
	cur := k.model.Proc(t)
	if cur != nil && willFreeMem(cur) {
		k.markVictim(t, cur)
		return true
	}
	oc := &oomControl{t: t, mask: mask, order: order, total: max(k.memcgMax(cg), 1), memcg: cg}
	if k.opts.PanicOnOOM == 2 {
		k.panic(oc, "mm/oom_kill.c:check_panic_on_oom",
			"Kernel panic - not syncing: Out of memory: compulsory panic_on_oom is enabled")
		return false
	}
	victim, abort := k.selectBadProcess(oc)
	if abort {
		return true
	}
	if victim == nil {
		k.report(t, bug.OOM, "mm/oom_kill.c:out_of_memory", k.header(oc)+"Out of memory and no killable processes...")
		return false
	}
	k.killProcess(oc, victim, "Memory cgroup out of memory")
	return true
}

// memcgMax is the OOM killer's size of a cgroup: its memory limit, plus
// the swap it may use when its swappiness allows swapping.
//
// Kernel: mm/memcontrol.c:mem_cgroup_get_max().
func (k *Killer) memcgMax(cg *mm.MemCgroup) int64 {
	limit := cg.Memory().Max()
	swap := k.model.Swap().TotalPages()
	if k.opts.Swappiness == 0 {
		return limit
	}
	if k.model.CgroupV1() {
		return limit + min(cg.Memsw().Max()-limit, swap)
	}
	return limit + min(cg.Swap().Max(), swap)
}

// oomGroup returns the highest cgroup with memory.oom.group set between
// the victim's cgroup and the OOM's domain (the cgroup, or the root for a
// global OOM), or nil. cgroup v1 has no oom.group.
//
// Kernel: mm/memcontrol.c:mem_cgroup_get_oom_group().
func (k *Killer) oomGroup(oc *oomControl, victim *mm.Proc) *mm.MemCgroup {
	if k.model.CgroupV1() {
		return nil
	}
	domain := oc.memcg
	if domain == nil {
		domain = k.model.RootMemcg()
	}
	cg := victim.Memcg()
	if cg == nil || cg.IsRoot() || !cg.IsDescendant(domain) {
		return nil
	}
	var group *mm.MemCgroup
	for c := cg; c != nil; c = c.Parent() {
		if c.OOMGroup() {
			group = c
		}
		if c == domain {
			break
		}
	}
	return group
}

// killGroup kills every other task of an oom.group cgroup, except those
// with oom_score_adj -1000 and global init, counting MEMCG_OOM_GROUP_KILL.
//
// Kernel: mm/oom_kill.c:oom_kill_process(), oom_kill_memcg_member().
func (k *Killer) killGroup(oc *oomControl, group *mm.MemCgroup, victim *mm.Proc) {
	k.model.MemoryEvent(group, mm.MemcgOOMGroupKill)
	var b strings.Builder
	fmt.Fprintf(&b, "Tasks in %s are going to be killed due to memory.oom.group set", group.Path())
	k.report(oc.t, bug.OOM, "mm/oom_kill.c:oom_kill_process", b.String())
	for _, p := range k.model.MemcgProcs(group) {
		if p == victim || unkillable(p) || p.OOMScoreAdj() == ScoreAdjMin || p.Victim() {
			continue
		}
		k.killProcess(&oomControl{t: oc.t, mask: oc.mask, order: oc.order, total: oc.total, memcg: oc.memcg, quiet: true},
			p, "Memory cgroup out of memory")
	}
}
