package oom

import (
	"fmt"
	"io"
	"math"
	"strings"
	"sync"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/internal/mm"
	"github.com/mmsim/mmsim/internal/sim"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// Options are the OOM sysctls and what the report needs from the machine.
type Options struct {
	// PanicOnOOM is vm.panic_on_oom: 0 kills, 1 panics for an
	// unconstrained OOM, 2 always panics.
	PanicOnOOM int
	// KillAllocatingTask is vm.oom_kill_allocating_task.
	KillAllocatingTask bool
	// NoDumpTasks clears vm.oom_dump_tasks (default 1): no task table.
	NoDumpTasks bool
	// ShowMem writes the Mem-Info block for zones up to maxZone, as seen
	// from the CPU of the task printing.
	ShowMem func(w io.Writer, maxZone gfp.ZoneType, cpu int)
	// Report receives the reports.
	Report bug.Sink
	// Swappiness is vm.swappiness, which decides whether a cgroup's OOM
	// size counts its swap.
	Swappiness int
}

// Killer is the OOM killer of one machine.
//
// Kernel: mm/oom_kill.c.
type Killer struct {
	model *mm.Model
	alloc *zone.Allocator
	clock *sim.Clock
	opts  Options

	rs     sim.Ratelimit // oom_rs: DEFAULT_RATELIMIT_INTERVAL, DEFAULT_RATELIMIT_BURST
	reaper *Reaper

	mu       sync.Mutex
	kills    int64
	panicked bool // a simulated panic was reported: the machine is dead
}

// panic reports a simulated kernel panic, once: the kernel stops there,
// so there is no second. Later OOMs fail quietly.
func (k *Killer) panic(oc *oomControl, site, text string) {
	k.mu.Lock()
	first := !k.panicked
	k.panicked = true
	k.mu.Unlock()
	if first {
		// kernel/panic.c: the message, then the end marker.
		end := text[strings.LastIndex(text, "Kernel panic - not syncing: ")+len("Kernel panic - not syncing: "):]
		k.report(oc.t, bug.Panic, site, k.header(oc)+text+"\n---[ end Kernel panic - not syncing: "+end+" ]---")
	}
}

// Panicked reports whether the OOM killer has reported a kernel panic.
func (k *Killer) Panicked() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.panicked
}

// New returns the OOM killer of the machine m models; its reaper is a
// daemon of clock.
func New(m *mm.Model, clock *sim.Clock, opts Options) *Killer {
	k := &Killer{model: m, alloc: m.Allocator(), clock: clock, opts: opts,
		rs: sim.Ratelimit{Interval: 5 * sim.HZ * sim.Jiffy, Burst: 10}}
	k.reaper = newReaper(k)
	clock.Register(k.reaper)
	return k
}

// Reaper returns the OOM reaper thread.
func (k *Killer) Reaper() *Reaper { return k.reaper }

// Kills returns the processes killed so far.
func (k *Killer) Kills() int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.kills
}

// TotalPages is the OOM killer's memory size: totalram_pages + total swap
// pages.
func (k *Killer) TotalPages() int64 {
	return k.alloc.TotalramPages() + k.model.Swap().TotalPages()
}

// usage reads what oom_badness counts of an mm.
func usage(m *mm.MM) Usage {
	return Usage{RSSPages: m.RSS(), SwapPages: m.Counter(mm.MMSwapEnts), PgTablesBytes: m.PgtablesBytes()}
}

// unkillable is oom_unkillable_task: global init and kernel threads.
func unkillable(p *mm.Proc) bool { return p.Kthread || p.MM == nil || p.Task.PID() == 1 }

// Score returns /proc/PID/oom_score for p.
//
// Kernel: fs/proc/base.c:proc_oom_score().
func (k *Killer) Score(p *mm.Proc) int64 {
	if k.excluded(p) {
		return 0
	}
	return ProcScore(k.Usage(p), p.OOMScoreAdj(), k.TotalPages())
}

// Usage returns what oom_badness counts of p's address space (zero for a
// kernel thread).
func (k *Killer) Usage(p *mm.Proc) Usage {
	if p.MM == nil {
		return Usage{}
	}
	return usage(p.MM)
}

// excluded reports the exclusions of oom_badness that are properties of
// the task, not of its usage: global init, kernel threads, no mm, an mm
// already reaped (MMF_OOM_SKIP) or gone.
func (k *Killer) excluded(p *mm.Proc) bool {
	return unkillable(p) || p.MM.OOMSkip() || p.Exiting() && p.MM.TotalVM() == 0
}

// badness is oom_badness for a process: LONG_MIN for the excluded.
//
// Kernel: mm/oom_kill.c:oom_badness().
func (k *Killer) badness(p *mm.Proc) int64 {
	if k.excluded(p) {
		return math.MinInt64
	}
	points, ok := Badness(usage(p.MM), p.OOMScoreAdj(), k.TotalPages())
	if !ok {
		return math.MinInt64
	}
	return points
}

// IsVictim reports whether t's process was chosen by the OOM killer: its
// allocations may dip into the OOM reserves.
//
// Kernel: include/linux/oom.h:tsk_is_oom_victim().
func (k *Killer) IsVictim(t *memalloc.Task) bool {
	p := k.model.Proc(t)
	return p != nil && p.Victim()
}

// willFreeMem reports whether p is exiting and will free its memory soon:
// exiting, or killed (SIGKILL sets SIGNAL_GROUP_EXIT at once), with its mm
// not yet reaped, and not dumping core.
//
// Kernel: mm/oom_kill.c:task_will_free_mem(), __task_will_free_mem().
func willFreeMem(p *mm.Proc) bool {
	return p.MM != nil && (p.Exiting() || p.Victim()) && !p.MM.OOMSkip() && p.Task.Flags()&memalloc.PFDumpCore == 0
}

// OutOfMemory is out_of_memory for a global OOM: it kills a process for t's
// request and reports whether it made progress — a kill, an existing victim
// still exiting, or a request without __GFP_FS, which it never kills for
// and reports as progress so that the allocator retries.
//
// Kernel: mm/oom_kill.c:out_of_memory().
func (k *Killer) OutOfMemory(t *memalloc.Task, mask gfp.Mask, order zone.Order, highest gfp.ZoneType) bool {
	cur := k.model.Proc(t)
	if cur != nil && willFreeMem(cur) {
		k.markVictim(t, cur)
		return true
	}
	if mask&gfp.FS == 0 {
		return true
	}
	oc := &oomControl{t: t, mask: mask, order: order, total: k.TotalPages()}
	if p := k.opts.PanicOnOOM; p == 2 || p == 1 { // one node: CONSTRAINT_NONE
		kind := "system-wide"
		if p == 2 {
			kind = "compulsory"
		}
		k.panic(oc, "mm/oom_kill.c:check_panic_on_oom",
			fmt.Sprintf("Kernel panic - not syncing: Out of memory: %s panic_on_oom is enabled", kind))
		return false
	}
	if k.opts.KillAllocatingTask && cur != nil && !unkillable(cur) && cur.OOMScoreAdj() != ScoreAdjMin {
		k.killProcess(oc, cur, "Out of memory (oom_kill_allocating_task)")
		return true
	}
	victim, abort := k.selectBadProcess(oc)
	if abort {
		return true
	}
	if victim == nil {
		k.panic(oc, "mm/oom_kill.c:out_of_memory",
			"Out of memory and no killable processes...\nKernel panic - not syncing: System is deadlocked on memory")
		return false
	}
	k.killProcess(oc, victim, "Out of memory")
	return true
}

// oomControl is one OOM's request.
//
// Kernel: include/linux/oom.h:struct oom_control.
type oomControl struct {
	t     *memalloc.Task
	mask  gfp.Mask
	order zone.Order
	total int64
	// memcg is the cgroup of a memcg OOM (nil: a global OOM).
	memcg *mm.MemCgroup
	// quiet marks the kill of an oom.group member: only its "Killed
	// process" line (__oom_kill_process alone).
	quiet bool
}

// procs returns the processes the OOM may look at: every process, or the
// memcg's (mem_cgroup_scan_tasks).
func (k *Killer) procs(oc *oomControl) []*mm.Proc {
	if oc.memcg != nil {
		return k.model.MemcgProcs(oc.memcg)
	}
	return k.model.Procs()
}

// selectBadProcess picks the process with the highest badness; ties go to
// the one iterated last. An existing victim that has not been reaped aborts
// the selection: it will free memory.
//
// Kernel: mm/oom_kill.c:select_bad_process(), oom_evaluate_task().
func (k *Killer) selectBadProcess(oc *oomControl) (victim *mm.Proc, abort bool) {
	chosen := int64(math.MinInt64)
	for _, p := range k.procs(oc) {
		if unkillable(p) {
			continue
		}
		if p.Victim() {
			if p.MM.OOMSkip() {
				continue
			}
			return nil, true
		}
		points := k.badness(p)
		if points == math.MinInt64 || points < chosen {
			continue
		}
		victim, chosen = p, points
	}
	return victim, false
}

// markVictim marks p an OOM victim and queues the reaper.
//
// Kernel: mm/oom_kill.c:mark_oom_victim(), queue_oom_reaper().
func (k *Killer) markVictim(t *memalloc.Task, p *mm.Proc) {
	if p.Kill() {
		k.traceMarkVictim(t, p)
		k.reaper.queue(p, k.clock.Now()+oomReaperDelay)
	}
}

// traceMarkVictim emits oom:mark_victim for p, as t marks it.
//
// Kernel: mm/oom_kill.c:mark_oom_victim() (trace_mark_victim).
func (k *Killer) traceMarkVictim(t *memalloc.Task, p *mm.Proc) {
	if !k.alloc.Tracing() || p.MM == nil {
		return
	}
	m := p.MM
	k.alloc.Emit(t, zone.Event{Kind: zone.EvMarkVictim, VictimPID: p.Task.PID(), VictimComm: p.Task.Comm(),
		VictimUID: p.UID, TotalVM: uint64(kb(m.TotalVM())), AnonRSS: uint64(kb(m.Counter(mm.MMAnonPages))),
		FileRSS: uint64(kb(m.Counter(mm.MMFilePages))), ShmemRSS: uint64(kb(m.Counter(mm.MMShmemPages))),
		PgTables: uint64(m.PgtablesBytes() >> 10), OOMScoreAdj: p.OOMScoreAdj()})
}

// killProcess kills the victim: the report (rate limited), SIGKILL, the
// "Killed process" line, the reaper.
//
// Kernel: mm/oom_kill.c:oom_kill_process(), __oom_kill_process().
func (k *Killer) killProcess(oc *oomControl, victim *mm.Proc, message string) {
	if willFreeMem(victim) {
		k.markVictim(oc.t, victim)
		return
	}
	var b strings.Builder
	ok, suppressed := false, 0
	if !oc.quiet {
		ok, suppressed = k.rs.Allow(k.clock.Now())
	}
	if suppressed > 0 {
		k.report(oc.t, bug.Info, "lib/ratelimit.c:___ratelimit", fmt.Sprintf("oom_kill_process: %d callbacks suppressed", suppressed))
	}
	if ok {
		b.WriteString(k.header(oc))
		constraint, domain := "CONSTRAINT_NONE", "global_oom"
		if oc.memcg != nil {
			constraint, domain = "CONSTRAINT_MEMCG", "oom_memcg="+oc.memcg.Path()
		}
		fmt.Fprintf(&b, "oom-kill:constraint=%s,nodemask=(null),cpuset=/,mems_allowed=%s,%s,task_memcg=%s,task=%s,pid=%d,uid=%d\n",
			constraint, k.memsAllowed(), domain, victim.Memcg().Path(), victim.Task.Comm(), victim.Task.PID(), victim.UID)
	}
	var group *mm.MemCgroup
	if !oc.quiet {
		group = k.oomGroup(oc, victim)
	}
	mmv := victim.MM
	fmt.Fprintf(&b, "%s: Killed process %d (%s) total-vm:%dkB, anon-rss:%dkB, file-rss:%dkB, shmem-rss:%dkB, UID:%d pgtables:%dkB oom_score_adj:%d",
		message, victim.Task.PID(), victim.Task.Comm(), kb(mmv.TotalVM()),
		kb(mmv.Counter(mm.MMAnonPages)), kb(mmv.Counter(mm.MMFilePages)), kb(mmv.Counter(mm.MMShmemPages)),
		victim.UID, mmv.PgtablesBytes()>>10, victim.OOMScoreAdj())
	k.alloc.CountEvent(zone.VMOOMKill, 1)
	if cg := victim.Memcg(); cg != nil {
		k.model.MemoryEvent(cg, mm.MemcgOOMKill)
	}
	k.markVictim(oc.t, victim)
	k.mu.Lock()
	k.kills++
	k.mu.Unlock()
	k.report(oc.t, bug.OOM, "mm/oom_kill.c:oom_kill_process", b.String())
	if group != nil {
		k.killGroup(oc, group, victim)
	}
}

// kb converts pages to KiB: K().
func kb(pages int64) int64 { return pages << (zone.PageShift - 10) }

// memsAllowed is current's mems_allowed: the nodes with memory.
func (k *Killer) memsAllowed() string { return k.alloc.MemsAllowed() }

// header is dump_header for a global OOM: the invocation line, the memory
// state, and the task table.
//
// Kernel: mm/oom_kill.c:dump_header(), dump_tasks(), dump_task().
func (k *Killer) header(oc *oomControl) string {
	var b strings.Builder
	adj := 0
	if p := k.model.Proc(oc.t); p != nil {
		adj = p.OOMScoreAdj()
	}
	fmt.Fprintf(&b, "%s invoked oom-killer: gfp_mask=%#x(%s), order=%d, oom_score_adj=%d\n",
		oc.t.Comm(), uint64(oc.mask), oc.mask.Names(), oc.order, adj)
	switch {
	case oc.memcg != nil:
		k.model.WriteOOMMeminfo(&b, oc.memcg)
	case k.opts.ShowMem != nil:
		hz, _ := oc.mask.Zone() // the allocator refused a bad zone long before
		k.opts.ShowMem(&b, hz, oc.t.CPU())
	}
	k.model.WriteOOMProtection(&b, oc.memcg) // v2 only; the root's for a global OOM
	if k.opts.NoDumpTasks {
		return b.String()
	}
	b.WriteString("Tasks state (memory values in pages):\n")
	b.WriteString("[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name\n")
	for _, p := range k.procs(oc) {
		if unkillable(p) {
			continue
		}
		m := p.MM
		fmt.Fprintf(&b, "[%7d] %5d %5d %8d %8d %8d %8d %9d %8d %8d         %5d %s\n",
			p.Task.PID(), p.UID, p.Task.PID(), m.TotalVM(), m.RSS(),
			m.Counter(mm.MMAnonPages), m.Counter(mm.MMFilePages), m.Counter(mm.MMShmemPages),
			m.PgtablesBytes(), m.Counter(mm.MMSwapEnts), p.OOMScoreAdj(), p.Task.Comm())
	}
	return b.String()
}

func (k *Killer) report(t *memalloc.Task, kind bug.Kind, site, text string) {
	if k.opts.Report == nil {
		return
	}
	k.opts.Report(bug.Report{Kind: kind, Site: site, Text: text, Comm: t.Comm(), PID: t.PID(), Time: k.clock.Now()})
}
