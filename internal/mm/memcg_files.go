package mm

// The memory controller's files: memory.stat in both hierarchies' formats,
// the memcg part of the OOM report, and the v1 and v2 control files with
// the kernel's parsing, root restrictions and errno values.
//
// memory.stat follows the x86_64 configuration the OOM reports were taken
// on: CONFIG_SWAP and CONFIG_TRANSPARENT_HUGEPAGE; no CONFIG_ZSWAP, no
// CONFIG_NUMA_BALANCING, no CONFIG_DEBUG_VM, and no memory_hugetlb_accounting
// mount option. Lines for what mmsim does not count per cgroup (percpu,
// sock, and the vm events other than pgfault and pgmajfault: mmsim counts
// pswpin, pgactivate ... machine-wide only) print 0, as a kernel with
// nothing of the kind would.

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/sim"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// memcgMaxMutex is memcg_max_mutex: it orders v1 limit changes so that
// memory.max <= memsw.max holds. Like the kernel's, it is global.
var memcgMaxMutex sync.Mutex

// resetFailcnt zeroes the failure count (writing memory.failcnt).
//
// Kernel: mm/memcontrol-v1.c:mem_cgroup_reset() (RES_FAILCNT).
func (c *PageCounter) resetFailcnt() { c.failcnt.Store(0) }

// memcgStatSrc says where a memory.stat row's value comes from.
type memcgStatSrc uint8

const (
	statNode  memcgStatSrc = iota // a node counter's per-cgroup copy (lruvec_page_state)
	statLRU                       // an LRU list's size
	statKmem                      // MEMCG_KMEM
	statSwap                      // MEMCG_SWAP
	statSlab                      // NR_SLAB_RECLAIMABLE_B (idx 0), NR_SLAB_UNRECLAIMABLE_B (1)
	statEvent                     // a per-cgroup vm event
	statNone                      // not counted per cgroup by mmsim: 0
)

// memcgStatItem is a row of memory_stats[], memcg1_stats[] or one of the
// event arrays: the name, the counter, and the bytes per unit counted (1
// for counts).
type memcgStatItem struct {
	name string
	src  memcgStatSrc
	idx  int // a zone.NodeStat, an LRUList or a MemcgVMEvent, by src
	unit int64
}

func nodeItem(name string, i zone.NodeStat, unit int64) memcgStatItem {
	return memcgStatItem{name, statNode, int(i), unit}
}

func lruItems() []memcgStatItem {
	out := make([]memcgStatItem, NrLRULists)
	for l := range NrLRULists {
		out[l] = memcgStatItem{l.String(), statLRU, int(l), pageSize}
	}
	return out
}

// memcg1Stats are the v1 state rows, in memcg1_stat_names[] order.
//
// Kernel: mm/memcontrol-v1.c:memcg1_stats[], memcg1_stat_names[].
var memcg1Stats = []memcgStatItem{
	nodeItem("cache", zone.NodeNrFilePages, pageSize),
	nodeItem("rss", zone.NodeNrAnonPages, pageSize),
	nodeItem("rss_huge", zone.NodeNrAnonTransparentHugepages, pageSize),
	nodeItem("shmem", zone.NodeNrShmem, pageSize),
	nodeItem("mapped_file", zone.NodeNrMapped, pageSize),
	nodeItem("dirty", zone.NodeNrDirty, pageSize),
	nodeItem("writeback", zone.NodeNrWriteback, pageSize),
	nodeItem("workingset_refault_anon", zone.NodeWorkingsetRefaultAnon, 1),
	nodeItem("workingset_refault_file", zone.NodeWorkingsetRefaultFile, 1),
	{"swap", statSwap, 0, pageSize},
	nodeItem("swapcached", zone.NodeNrSwapcached, pageSize),
}

// memcg1Events are the v1 event rows (folio charges and uncharges for
// pgpgin/pgpgout, not pages).
//
// Kernel: mm/memcontrol-v1.c:memcg1_events[].
var memcg1Events = []memcgStatItem{
	{"pgpgin", statEvent, int(MemcgPgpgin), 1},
	{"pgpgout", statEvent, int(MemcgPgpgout), 1},
	{"pgfault", statEvent, int(MemcgPgfault), 1},
	{"pgmajfault", statEvent, int(MemcgPgmajfault), 1},
}

// memcgStats are the v2 state rows, in memory_stats[] order; "slab" is
// inserted after slab_unreclaimable by the formatter. The slab rows are
// the bytes of the objects charged to the cgroup (mod_objcg_state: a
// cgroup's slab counters never count slab pages, which are the node's),
// the kernel stack is counted in kB, as in the kernel.
//
// Kernel: mm/memcontrol.c:memory_stats[], memcg_page_state_output_unit().
var memcgStats = append(append([]memcgStatItem{
	nodeItem("anon", zone.NodeNrAnonPages, pageSize),
	nodeItem("file", zone.NodeNrFilePages, pageSize),
	{"kernel", statKmem, 0, pageSize},
	nodeItem("kernel_stack", zone.NodeNrKernelStack, 1024),
	nodeItem("pagetables", zone.NodeNrPageTablePages, pageSize),
	nodeItem("sec_pagetables", zone.NodeNrSecPageTablePages, pageSize),
	{"percpu", statNone, 0, 1},
	{"sock", statNone, 0, pageSize},
	nodeItem("vmalloc", zone.NodeNrVmalloc, pageSize),
	nodeItem("shmem", zone.NodeNrShmem, pageSize),
	nodeItem("file_mapped", zone.NodeNrMapped, pageSize),
	nodeItem("file_dirty", zone.NodeNrDirty, pageSize),
	nodeItem("file_writeback", zone.NodeNrWriteback, pageSize),
	nodeItem("swapcached", zone.NodeNrSwapcached, pageSize),
	nodeItem("anon_thp", zone.NodeNrAnonTransparentHugepages, pageSize),
	nodeItem("file_thp", zone.NodeNrFileHugepages, pageSize),
	nodeItem("shmem_thp", zone.NodeNrShmemHugepages, pageSize),
}, lruItems()...), []memcgStatItem{
	{"slab_reclaimable", statSlab, 0, 1},
	{"slab_unreclaimable", statSlab, 1, 1},
	nodeItem("workingset_refault_anon", zone.NodeWorkingsetRefaultAnon, 1),
	nodeItem("workingset_refault_file", zone.NodeWorkingsetRefaultFile, 1),
	nodeItem("workingset_activate_anon", zone.NodeWorkingsetActivateAnon, 1),
	nodeItem("workingset_activate_file", zone.NodeWorkingsetActivateFile, 1),
	nodeItem("workingset_restore_anon", zone.NodeWorkingsetRestoreAnon, 1),
	nodeItem("workingset_restore_file", zone.NodeWorkingsetRestoreFile, 1),
	nodeItem("workingset_nodereclaim", zone.NodeWorkingsetNodereclaim, 1),
	nodeItem("pgdemote_kswapd", zone.NodePgdemoteKswapd, 1),
	nodeItem("pgdemote_direct", zone.NodePgdemoteDirect, 1),
	nodeItem("pgdemote_khugepaged", zone.NodePgdemoteKhugepaged, 1),
	nodeItem("pgdemote_proactive", zone.NodePgdemoteProactive, 1),
	nodeItem("pgsteal_kswapd", zone.NodePgstealKswapd, 1),
	nodeItem("pgsteal_direct", zone.NodePgstealDirect, 1),
	nodeItem("pgsteal_khugepaged", zone.NodePgstealKhugepaged, 1),
	nodeItem("pgsteal_proactive", zone.NodePgstealProactive, 1),
	nodeItem("pgscan_kswapd", zone.NodePgscanKswapd, 1),
	nodeItem("pgscan_direct", zone.NodePgscanDirect, 1),
	nodeItem("pgscan_khugepaged", zone.NodePgscanKhugepaged, 1),
	nodeItem("pgscan_proactive", zone.NodePgscanProactive, 1),
	nodeItem("pgrefill", zone.NodePgrefill, 1),
}...)

// memcgVMEventStat are the v2 event rows (PGPGIN and PGPGOUT are skipped
// there). Only pgfault and pgmajfault are counted per cgroup by mmsim.
//
// Kernel: mm/memcontrol.c:memcg_vm_event_stat[].
var memcgVMEventStat = []memcgStatItem{
	{"pswpin", statNone, 0, 1},
	{"pswpout", statNone, 0, 1},
	{"pgfault", statEvent, int(MemcgPgfault), 1},
	{"pgmajfault", statEvent, int(MemcgPgmajfault), 1},
	{"pgactivate", statNone, 0, 1},
	{"pgdeactivate", statNone, 0, 1},
	{"pglazyfree", statNone, 0, 1},
	{"pglazyfreed", statNone, 0, 1},
	{"swpin_zero", statNone, 0, 1},
	{"swpout_zero", statNone, 0, 1},
	{"thp_fault_alloc", statNone, 0, 1},
	{"thp_collapse_alloc", statNone, 0, 1},
	{"thp_swpout", statNone, 0, 1},
	{"thp_swpout_fallback", statNone, 0, 1},
}

// memcgStatSnap is one cgroup's counters (local), or the sums over its
// subtree (hierarchical), read at one moment.
type memcgStatSnap struct {
	state      [zone.NrNodeStats]int64
	lru        [NrLRULists]int64
	kmem, swap int64
	slab       [2]int64
	events     [NrMemcgVMEvents]int64
}

// add adds c's own counters. Called with the Model's lock held (the LRU
// sizes).
func (s *memcgStatSnap) add(c *MemCgroup) {
	for i := range s.state {
		s.state[i] += c.stat[i].Load()
	}
	for _, v := range c.lruvecs {
		for l := range NrLRULists {
			s.lru[l] += v.Size(l, gfp.ZoneType(gfp.MaxNrZones-1))
		}
	}
	s.kmem += c.kmemPages.Load()
	s.swap += c.swapPages.Load()
	rec, unrec := c.SlabBytes()
	s.slab[0] += rec
	s.slab[1] += unrec
	for e := range s.events {
		s.events[e] += c.vmEvents[e].Load()
	}
}

// count returns an item's value in its own units; a state counter gone
// negative reads 0, as memcg_page_state does on SMP.
func (s *memcgStatSnap) count(it memcgStatItem) int64 {
	var v int64
	switch it.src {
	case statNode:
		v = s.state[it.idx]
	case statLRU:
		v = s.lru[it.idx]
	case statKmem:
		v = s.kmem
	case statSwap:
		v = s.swap
	case statSlab:
		v = s.slab[it.idx]
	case statEvent:
		v = s.events[it.idx]
	}
	return max(v, 0)
}

// output returns an item's value as printed.
//
// Kernel: mm/memcontrol.c:memcg_page_state_output().
func (s *memcgStatSnap) output(it memcgStatItem) int64 { return s.count(it) * it.unit }

// memcgStatSnapshot reads cg's own counters and its subtree's sums.
func (m *Model) memcgStatSnapshot(cg *MemCgroup) (local, total memcgStatSnap) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.Subtree(cg) { // cgMu nests inside mu
		total.add(c)
		if c == cg {
			local.add(c)
		}
	}
	return local, total
}

// checkMemcg refuses a cgroup of another machine.
func (m *Model) checkMemcg(cg *MemCgroup) error {
	if cg == nil || cg.model != m {
		return fmt.Errorf("%w: the cgroup is not of this machine", zone.ErrInvalid)
	}
	return nil
}

// WriteMemcgStat writes cg's memory.stat: on cgroup v1 the 42 lines of
// memcg1_stat_format (cg's own counters, the hierarchical limits, then the
// subtree's sums as total_*); on v2 memory_stat_format's lines, all of
// them sums over cg's subtree. Call it without the Model's lock.
//
// Kernel: mm/memcontrol.c:memory_stat_format(), memcg_stat_format(),
// mm/memcontrol-v1.c:memcg1_stat_format().
func (m *Model) WriteMemcgStat(w io.Writer, cg *MemCgroup) error {
	if err := m.checkMemcg(cg); err != nil {
		return err
	}
	var b strings.Builder
	if m.CgroupV1() {
		m.memcg1StatFormat(&b, cg)
	} else {
		m.memcgStatFormat(&b, cg)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// memcg1StatFormat is the v1 memory.stat.
//
// Kernel: mm/memcontrol-v1.c:memcg1_stat_format().
func (m *Model) memcg1StatFormat(b *strings.Builder, cg *MemCgroup) {
	local, total := m.memcgStatSnapshot(cg)
	rows := append(append(append([]memcgStatItem{}, memcg1Stats...), memcg1Events...), lruItems()...)
	for _, it := range rows {
		fmt.Fprintf(b, "%s %d\n", it.name, local.output(it))
	}
	memory, memsw := PageCounterMax, PageCounterMax
	for c := cg; c != nil; c = c.parent {
		memory = min(memory, c.memory.Max())
		memsw = min(memsw, c.memsw.Max())
	}
	fmt.Fprintf(b, "hierarchical_memory_limit %d\n", memory*pageSize)
	fmt.Fprintf(b, "hierarchical_memsw_limit %d\n", memsw*pageSize)
	for _, it := range rows {
		fmt.Fprintf(b, "total_%s %d\n", it.name, total.output(it))
	}
}

// memcgStatFormat is the v2 memory.stat.
//
// Kernel: mm/memcontrol.c:memcg_stat_format().
func (m *Model) memcgStatFormat(b *strings.Builder, cg *MemCgroup) {
	_, total := m.memcgStatSnapshot(cg)
	for _, it := range memcgStats {
		fmt.Fprintf(b, "%s %d\n", it.name, total.output(it))
		if it.src == statSlab && it.idx == 1 {
			fmt.Fprintf(b, "slab %d\n", total.output(it)+total.output(memcgStatItem{src: statSlab, idx: 0, unit: 1}))
		}
	}
	sum := func(items ...zone.NodeStat) int64 {
		var n int64
		for _, i := range items {
			n += total.count(nodeItem("", i, 1))
		}
		return n
	}
	fmt.Fprintf(b, "pgscan %d\n", sum(zone.NodePgscanKswapd, zone.NodePgscanDirect, zone.NodePgscanProactive, zone.NodePgscanKhugepaged))
	fmt.Fprintf(b, "pgsteal %d\n", sum(zone.NodePgstealKswapd, zone.NodePgstealDirect, zone.NodePgstealProactive, zone.NodePgstealKhugepaged))
	for _, it := range memcgVMEventStat {
		fmt.Fprintf(b, "%s %d\n", it.name, total.output(it))
	}
}

// WriteOOMMeminfo writes the memory cgroup part of an OOM report for cg:
// the memory counter (failcnt: the counter's on v1, the max event count on
// v2), then v2's swap counter or v1's memory+swap and kmem counters, the
// "Memory cgroup stats for" line and cg's memory.stat, one line each, as
// printk records them. Call it without the Model's lock.
//
// Kernel: mm/memcontrol.c:mem_cgroup_print_oom_meminfo().
func (m *Model) WriteOOMMeminfo(w io.Writer, cg *MemCgroup) {
	if m.checkMemcg(cg) != nil {
		return
	}
	var b strings.Builder
	k := func(pages int64) int64 { return pages << (pageShift - 10) }
	failcnt := cg.memory.Failcnt()
	if !m.CgroupV1() {
		failcnt = cg.Event(MemcgMax, false)
	}
	fmt.Fprintf(&b, "memory: usage %dkB, limit %dkB, failcnt %d\n", k(cg.memory.Usage()), k(cg.memory.Max()), failcnt)
	if !m.CgroupV1() {
		fmt.Fprintf(&b, "swap: usage %dkB, limit %dkB, failcnt %d\n", k(cg.swap.Usage()), k(cg.swap.Max()), cg.Event(MemcgSwapMax, false))
	} else {
		fmt.Fprintf(&b, "memory+swap: usage %dkB, limit %dkB, failcnt %d\n", k(cg.memsw.Usage()), k(cg.memsw.Max()), cg.memsw.Failcnt())
		fmt.Fprintf(&b, "kmem: usage %dkB, limit %dkB, failcnt %d\n", k(cg.kmem.Usage()), k(cg.kmem.Max()), cg.kmem.Failcnt())
	}
	fmt.Fprintf(&b, "Memory cgroup stats for %s:\n", cg.Path())
	_ = m.WriteMemcgStat(&b, cg) // a strings.Builder does not fail
	_, _ = io.WriteString(w, b.String())
}

// WriteOOMProtection writes the OOM report's protection line on cgroup v2:
// the memory.min and memory.low protected usage of cg's children (nil: the
// root's, for a global OOM). It writes nothing on v1. The kernel's
// pr_warn has no newline; the next record starts a line anyway, so the
// line written here ends in one.
//
// Kernel: mm/memcontrol.c:mem_cgroup_show_protected_memory().
func (m *Model) WriteOOMProtection(w io.Writer, cg *MemCgroup) {
	if m.CgroupV1() {
		return
	}
	if cg == nil {
		cg = m.cg.root
	}
	if m.checkMemcg(cg) != nil {
		return
	}
	fmt.Fprintf(w, "Memory cgroup min protection %dkB -- low protection %dkB\n",
		cg.memory.childrenMinUsage.Load()<<(pageShift-10), cg.memory.childrenLowUsage.Load()<<(pageShift-10))
}

// memfileType and memfileAttr decode a v1 resource-counter file name, as
// the kernel's cft->private does.
type memfileType int

const (
	memfileMem   memfileType = iota // _MEM
	memfileMemsw                    // _MEMSWAP
	memfileKmem                     // _KMEM
)

type memfileAttr int

const (
	resUsage     memfileAttr = iota // RES_USAGE
	resLimit                        // RES_LIMIT
	resMaxUsage                     // RES_MAX_USAGE
	resFailcnt                      // RES_FAILCNT
	resSoftLimit                    // RES_SOFT_LIMIT (memory only)
)

// memcg1ResFile decodes "memory.[memsw.|kmem.]<attr>".
func memcg1ResFile(name string) (memfileType, memfileAttr, bool) {
	rest, ok := strings.CutPrefix(name, "memory.")
	if !ok {
		return 0, 0, false
	}
	typ := memfileMem
	if r, ok := strings.CutPrefix(rest, "memsw."); ok {
		typ, rest = memfileMemsw, r
	} else if r, ok := strings.CutPrefix(rest, "kmem."); ok {
		typ, rest = memfileKmem, r
	}
	switch rest {
	case "usage_in_bytes":
		return typ, resUsage, true
	case "limit_in_bytes":
		return typ, resLimit, true
	case "max_usage_in_bytes":
		return typ, resMaxUsage, true
	case "failcnt":
		return typ, resFailcnt, true
	case "soft_limit_in_bytes":
		return typ, resSoftLimit, typ == memfileMem
	}
	return 0, 0, false
}

func (cg *MemCgroup) memfileCounter(typ memfileType) *PageCounter {
	switch typ {
	case memfileMemsw:
		return &cg.memsw
	case memfileKmem:
		return &cg.kmem
	}
	return &cg.memory
}

// memcgFiles are the files this model has besides the v1 resource-counter
// files, and whether each can be written; v2's are hidden in the root
// cgroup (CFTYPE_NOT_ON_ROOT) except memory.stat.
var (
	memcg1Files = map[string]bool{"memory.oom_control": true, "memory.stat": false, "memory.use_hierarchy": true}
	memcg2Files = map[string]bool{
		"memory.current": false, "memory.min": true, "memory.low": true, "memory.high": true,
		"memory.max": true, "memory.peak": true, "memory.events": false, "memory.events.local": false,
		"memory.stat": false, "memory.oom.group": true,
		"memory.swap.current": false, "memory.swap.high": true, "memory.swap.max": true,
		"memory.swap.peak": true, "memory.swap.events": false,
	}
)

// lookupMemcgFile reports whether cg has a file name in the current
// hierarchy and whether it has a write handler; a missing file is ENOENT.
func (m *Model) lookupMemcgFile(cg *MemCgroup, name string) (writable bool, err error) {
	if m.CgroupV1() {
		if _, attr, ok := memcg1ResFile(name); ok {
			return attr != resUsage, nil
		}
		if w, ok := memcg1Files[name]; ok {
			return w, nil
		}
	} else if w, ok := memcg2Files[name]; ok && (name == "memory.stat" || !cg.IsRoot()) {
		return w, nil
	}
	hier := "v2"
	if m.CgroupV1() {
		hier = "v1"
	}
	return false, fmt.Errorf("%w: cgroup %s has no file %s (cgroup %s)", ENOENT, cg.Path(), name, hier)
}

// ReadMemcgFile returns the text of one of cg's memory-controller files,
// as a read of a freshly opened file returns it. cgroup v1:
// memory.{,memsw.,kmem.}{usage_in_bytes,limit_in_bytes,max_usage_in_bytes,failcnt},
// memory.soft_limit_in_bytes, memory.oom_control, memory.stat,
// memory.use_hierarchy. cgroup v2: memory.{current,min,low,high,max,peak},
// memory.events{,.local}, memory.stat, memory.oom.group,
// memory.swap.{current,high,max,peak,events}. The root cgroup has only
// memory.stat on v2, every file on v1. Another name is ENOENT.
//
// mmsim keeps no per-open-file state: memory.peak reads the counter's
// local watermark, which equals the lifetime peak until memory.peak is
// written and then the peak since the last write (as the kernel shows it
// to the writer's file descriptor; the kernel shows a fresh one the
// lifetime peak). Call it without the Model's lock.
//
// Kernel: mm/memcontrol.c:memory_files[], swap_files[],
// mm/memcontrol-v1.c:mem_cgroup_legacy_files[], memsw_files[],
// mem_cgroup_read_u64(), mem_cgroup_oom_control_read().
func (m *Model) ReadMemcgFile(cg *MemCgroup, name string) (string, error) {
	if err := m.checkMemcg(cg); err != nil {
		return "", err
	}
	if _, err := m.lookupMemcgFile(cg, name); err != nil {
		return "", err
	}
	u64 := func(v int64) string { return strconv.FormatUint(uint64(max(v, 0)), 10) + "\n" }
	tunable := func(v int64) string {
		if v == PageCounterMax {
			return "max\n"
		}
		return u64(v * pageSize)
	}
	events := func(ev *[NrMemcgEvents]int64) string {
		return fmt.Sprintf("low %d\nhigh %d\nmax %d\noom %d\noom_kill %d\noom_group_kill %d\nsock_throttled %d\n",
			ev[MemcgLow], ev[MemcgHigh], ev[MemcgMax], ev[MemcgOOM], ev[MemcgOOMKill], ev[MemcgOOMGroupKill], ev[MemcgSockThrottled])
	}
	if typ, attr, ok := memcg1ResFile(name); ok && m.CgroupV1() {
		c := cg.memfileCounter(typ)
		switch attr {
		case resUsage:
			return u64(m.memcg1Usage(cg, typ) * pageSize), nil
		case resLimit:
			return u64(c.Max() * pageSize), nil
		case resMaxUsage:
			return u64(c.Watermark() * pageSize), nil
		case resFailcnt:
			return u64(c.Failcnt()), nil
		case resSoftLimit:
			return u64(PageCounterMax * pageSize), nil
		}
	}
	switch name {
	case "memory.stat":
		var b strings.Builder
		err := m.WriteMemcgStat(&b, cg)
		return b.String(), err
	case "memory.oom_control":
		return fmt.Sprintf("oom_kill_disable %d\nunder_oom %d\noom_kill %d\n",
			memcgBool(cg.OOMKillDisable()), memcgBool(cg.UnderOOM()), cg.Event(MemcgOOMKill, false)), nil
	case "memory.use_hierarchy":
		return "1\n", nil
	case "memory.current":
		return u64(cg.memory.Usage() * pageSize), nil
	case "memory.min":
		return tunable(cg.memory.Min()), nil
	case "memory.low":
		return tunable(cg.memory.Low()), nil
	case "memory.high":
		return tunable(cg.memory.High()), nil
	case "memory.max":
		return tunable(cg.memory.Max()), nil
	case "memory.peak":
		return u64(cg.memory.LocalWatermark() * pageSize), nil
	case "memory.events", "memory.events.local":
		var ev [NrMemcgEvents]int64
		for e := range ev {
			ev[e] = cg.Event(MemcgEvent(e), name == "memory.events.local")
		}
		return events(&ev), nil
	case "memory.oom.group":
		return fmt.Sprintf("%d\n", memcgBool(cg.OOMGroup())), nil
	case "memory.swap.current":
		return u64(cg.swap.Usage() * pageSize), nil
	case "memory.swap.high":
		return tunable(cg.swap.High()), nil
	case "memory.swap.max":
		return tunable(cg.swap.Max()), nil
	case "memory.swap.peak":
		return u64(cg.swap.LocalWatermark() * pageSize), nil
	case "memory.swap.events":
		return fmt.Sprintf("high %d\nmax %d\nfail %d\n",
			cg.Event(MemcgSwapHigh, false), cg.Event(MemcgSwapMax, false), cg.Event(MemcgSwapFail, false)), nil
	}
	return "", fmt.Errorf("%w: %s has no read handler", EINVAL, name) // not reached: lookup knows every name
}

func memcgBool(v bool) int {
	if v {
		return 1
	}
	return 0
}

// memcg1Usage is a v1 counter's usage in pages; the root cgroup's memory
// and memory+swap usage are estimated from the machine's page cache and
// anonymous pages (and swap in use), as the kernel does, since nothing is
// charged to the root.
//
// Kernel: mm/memcontrol-v1.c:mem_cgroup_usage().
func (m *Model) memcg1Usage(cg *MemCgroup, typ memfileType) int64 {
	if typ == memfileKmem || !cg.IsRoot() {
		return cg.memfileCounter(typ).Usage()
	}
	var v int64
	for _, n := range m.alloc.Nodes() {
		v += n.State(zone.NodeNrFilePages) + n.State(zone.NodeNrAnonPages)
	}
	v = max(v, 0)
	if typ == memfileMemsw {
		v += m.swap.TotalPages() - m.swap.FreePages()
	}
	return v
}

// WriteMemcgFile writes value to one of cg's files on behalf of t, as
// write(2) of those bytes would (a trailing newline, as echo adds, is
// fine). An empty write does nothing; a file without a write handler is
// EINVAL; a name ReadMemcgFile does not know is ENOENT. Sizes parse as
// page_counter_memparse does: an integer in C notation (0x, leading-0
// octal) with an optional K/M/G/T/P/E suffix, rounded down to pages, or
// the unlimited spelling ("-1" on v1, "max" on v2); anything else is
// EINVAL.
//
// cgroup v1: memory.limit_in_bytes and memory.memsw.limit_in_bytes keep
// memory <= memory+swap (EINVAL) and refuse a limit below usage after a
// drain of the charge stocks and reclaim that frees nothing (EBUSY),
// leaving the limit unchanged; the root's limits are EINVAL;
// kmem.limit_in_bytes and soft_limit_in_bytes are accepted and ignored (the
// kernel's once-only deprecation warnings are not reported);
// max_usage_in_bytes resets the peak and failcnt the failure count,
// whatever is written; oom_control takes 0 or 1 (not on the root);
// use_hierarchy only 1.
//
// cgroup v2: memory.min and memory.low set the protection; memory.high
// sets the boundary and reclaims down to it, giving up after
// MAX_RECLAIM_RETRIES+1 passes that free nothing; memory.max sets the
// limit at once, even below usage, reclaims with MAX_RECLAIM_RETRIES
// passes that free nothing to spare, then counts an oom event and runs the
// memcg OOM killer until usage fits or nothing is killable; neither
// write fails once parsed, and neither reclaims without MemcgOps. A
// killed writer stops reclaiming (a pending signal). memory.peak and
// memory.swap.peak reset the local peak to the current usage.
// memory.oom.group takes 0 or 1, memory.swap.max and memory.swap.high a
// size. Call it without the Model's lock.
//
// Kernel: mm/memcontrol-v1.c:mem_cgroup_write(), mem_cgroup_resize_max(),
// mem_cgroup_reset(), mem_cgroup_oom_control_write(),
// mem_cgroup_hierarchy_write(), mm/memcontrol.c:memory_min_write(),
// memory_low_write(), memory_high_write(), memory_max_write(),
// memory_peak_write(), memory_oom_group_write(), swap_max_write(),
// kernel/cgroup/cgroup.c:cgroup_file_write().
func (m *Model) WriteMemcgFile(t *memalloc.Task, cg *MemCgroup, name, value string) error {
	if err := m.checkMemcg(cg); err != nil {
		return err
	}
	if t == nil {
		return fmt.Errorf("%w: a cgroup file is written by a task", zone.ErrInvalid)
	}
	writable, err := m.lookupMemcgFile(cg, name)
	if err != nil {
		return err
	}
	if value == "" {
		return nil // cgroup_file_write: nothing to do for 0 bytes
	}
	if i := strings.IndexByte(value, 0); i >= 0 {
		value = value[:i] // the handlers see a C string
	}
	if !writable {
		return fmt.Errorf("%w: %s is read-only", EINVAL, name)
	}
	if m.CgroupV1() {
		return m.writeMemcg1File(t, cg, name, value)
	}
	return m.writeMemcg2File(t, cg, name, value)
}

// writeMemcg1File is WriteMemcgFile on cgroup v1.
func (m *Model) writeMemcg1File(t *memalloc.Task, cg *MemCgroup, name, value string) error {
	if typ, attr, ok := memcg1ResFile(name); ok {
		c := cg.memfileCounter(typ)
		switch attr {
		case resMaxUsage:
			c.ResetWatermark()
			return nil
		case resFailcnt:
			c.resetFailcnt()
			return nil
		}
		nr, err := pageCounterMemparse(strstrip(value), "-1")
		if err != nil {
			return fmt.Errorf("%w: %s", err, name)
		}
		if attr == resSoftLimit {
			return nil // deprecated: no effect
		}
		if cg.IsRoot() {
			return fmt.Errorf("%w: the root cgroup has no %s", EINVAL, name)
		}
		if typ == memfileKmem {
			return nil // deprecated: no effect
		}
		return m.memcg1ResizeMax(t, cg, nr, typ == memfileMemsw)
	}
	v, err := kstrtoull(value)
	if err != nil {
		return fmt.Errorf("%w: %s", err, name)
	}
	switch name {
	case "memory.oom_control":
		if cg.IsRoot() || v > 1 {
			return fmt.Errorf("%w: %s takes 0 or 1, and not in the root cgroup", EINVAL, name)
		}
		// Clearing it wakes the tasks waiting in the cgroup's OOM
		// (memcg1_oom_recover): their wait polls the setting.
		cg.SetOOMKillDisable(v == 1)
		return nil
	case "memory.use_hierarchy":
		if v != 1 {
			return fmt.Errorf("%w: non-hierarchical mode is gone", EINVAL)
		}
		return nil
	}
	return fmt.Errorf("%w: %s has no write handler", EINVAL, name) // not reached
}

// memcg1ResizeMax sets a v1 memory or memory+swap limit: it keeps memory
// <= memory+swap, and when usage is above the new limit drains the
// charge stocks once, then reclaims a little at a time for as long as
// reclaim makes progress (no retry budget, no OOM), and fails with EBUSY
// when it makes none. A pending signal is EINTR.
//
// Kernel: mm/memcontrol-v1.c:mem_cgroup_resize_max().
func (m *Model) memcg1ResizeMax(t *memalloc.Task, cg *MemCgroup, nr int64, memsw bool) error {
	c := &cg.memory
	file := "memory.limit_in_bytes"
	if memsw {
		c, file = &cg.memsw, "memory.memsw.limit_in_bytes"
	}
	drained := false
	for {
		if m.signalPending(t) {
			return fmt.Errorf("%w: %s: %s was killed", EINTR, file, t)
		}
		memcgMaxMutex.Lock()
		invariant := nr <= cg.memsw.Max()
		if memsw {
			invariant = nr >= cg.memory.Max()
		}
		if !invariant {
			memcgMaxMutex.Unlock()
			return fmt.Errorf("%w: %s: memory.limit_in_bytes must not exceed memory.memsw.limit_in_bytes", EINVAL, file)
		}
		ok := c.SetMax(nr)
		memcgMaxMutex.Unlock()
		if ok {
			// An enlarged limit wakes the tasks waiting in the cgroup's
			// OOM (memcg1_oom_recover): their wait polls the margin.
			return nil
		}
		if !drained {
			m.DrainAllStock(cg)
			drained = true
			continue
		}
		ops := m.MemcgOps()
		if ops == nil || ops.TryToFreeMemCgroupPages(t, cg, 1, gfp.Kernel, !memsw) == 0 {
			return fmt.Errorf("%w: %s: usage %d pages above %d and nothing reclaimable", EBUSY, file, c.Usage(), nr)
		}
	}
}

// writeMemcg2File is WriteMemcgFile on cgroup v2.
func (m *Model) writeMemcg2File(t *memalloc.Task, cg *MemCgroup, name, value string) error {
	switch name {
	case "memory.peak":
		cg.memory.localWatermark.Store(cg.memory.Usage())
		return nil
	case "memory.swap.peak":
		cg.swap.localWatermark.Store(cg.swap.Usage())
		return nil
	case "memory.oom.group":
		v, err := kstrtoint(strstrip(value))
		if err != nil {
			return fmt.Errorf("%w: %s", err, name)
		}
		if v != 0 && v != 1 {
			return fmt.Errorf("%w: %s takes 0 or 1", EINVAL, name)
		}
		cg.SetOOMGroup(v == 1)
		return nil
	}
	nr, err := pageCounterMemparse(strstrip(value), "max")
	if err != nil {
		return fmt.Errorf("%w: %s", err, name)
	}
	switch name {
	case "memory.min":
		cg.memory.setMin(nr)
	case "memory.low":
		cg.memory.setLow(nr)
	case "memory.high":
		cg.memory.high.Store(nr)
		m.memoryHighReclaim(t, cg, nr)
	case "memory.max":
		cg.memory.max.Store(nr)
		m.memoryMaxReclaim(t, cg, nr)
	case "memory.swap.high":
		cg.swap.high.Store(nr)
	case "memory.swap.max":
		cg.swap.max.Store(nr)
	}
	return nil
}

// memoryHighReclaim is memory.high's write loop: reclaim until usage is
// down to high, high changes, the writer is killed, or reclaim has freed
// nothing MAX_RECLAIM_RETRIES+1 times; the stocks are drained first. It
// never OOM-kills.
//
// Kernel: mm/memcontrol.c:memory_high_write().
func (m *Model) memoryHighReclaim(t *memalloc.Task, cg *MemCgroup, high int64) {
	retries := MaxReclaimRetries
	drained := false
	for {
		usage := cg.memory.Usage()
		if high != cg.memory.High() || usage <= high || m.signalPending(t) {
			return
		}
		if !drained {
			m.DrainAllStock(cg)
			drained = true
			continue
		}
		ops := m.MemcgOps()
		if ops == nil {
			return
		}
		if ops.TryToFreeMemCgroupPages(t, cg, usage-high, gfp.Kernel, true) == 0 {
			if retries == 0 {
				return
			}
			retries--
		}
	}
}

// memoryMaxReclaim is memory.max's write loop: reclaim until usage is
// down to max, max changes or the writer is killed; after
// MAX_RECLAIM_RETRIES passes that free nothing, count MEMCG_OOM and run
// the memcg OOM killer, again and again, until it finds nothing to kill.
// The stocks are drained first.
//
// Kernel: mm/memcontrol.c:memory_max_write().
func (m *Model) memoryMaxReclaim(t *memalloc.Task, cg *MemCgroup, limit int64) {
	reclaims := MaxReclaimRetries
	drained := false
	for {
		usage := cg.memory.Usage()
		if limit != cg.memory.Max() || usage <= limit || m.signalPending(t) {
			return
		}
		if !drained {
			m.DrainAllStock(cg)
			drained = true
			continue
		}
		ops := m.MemcgOps()
		if ops == nil {
			return
		}
		if reclaims > 0 {
			if ops.TryToFreeMemCgroupPages(t, cg, usage-limit, gfp.Kernel, true) == 0 {
				reclaims--
			}
			continue
		}
		m.MemoryEvent(cg, MemcgOOM)
		if !m.MemcgOutOfMemory(t, cg, gfp.Kernel, 0) {
			return
		}
		// cond_resched: in the kernel real time passes while a victim
		// exits; here a jiffy of simulated time does, so that the OOM
		// reaper gets to a victim that is not exiting on its own.
		ops.Sleep(t, sim.Jiffy, nil)
	}
}

// signalPending reports whether t has a signal pending: in mmsim, the
// SIGKILL of an OOM kill.
//
// Kernel: include/linux/sched/signal.h:signal_pending().
func (m *Model) signalPending(t *memalloc.Task) bool {
	p := m.Proc(t)
	return p != nil && p.Victim()
}

// strstrip removes leading and trailing white space, as the kernel's
// isspace() has it (which counts 0xa0, Latin-1's no-break space).
//
// Kernel: lib/string_helpers.c:strim(), lib/ctype.c.
func strstrip(s string) string {
	space := func(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') || c == 0xa0 }
	for s != "" && space(s[0]) {
		s = s[1:]
	}
	for s != "" && space(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// parseRadix picks the base of a base-0 integer ("0x" followed by a hex
// digit: 16; a leading 0: 8; else 10) and skips a "0x".
//
// Kernel: lib/kstrtox.c:_parse_integer_fixup_radix().
func parseRadix(s string) (string, uint64) {
	if s != "" && s[0] == '0' {
		if len(s) > 2 && (s[1] == 'x' || s[1] == 'X') && isXdigit(s[2]) {
			return s[2:], 16
		}
		return s, 8
	}
	return s, 10
}

func isXdigit(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c|0x20 && c|0x20 <= 'f')
}

// parseInteger converts the longest prefix of digits of base and returns
// the value (saturated at the maximum on overflow), the digits used and
// whether it overflowed.
//
// Kernel: lib/kstrtox.c:_parse_integer_limit().
func parseInteger(s string, base uint64) (v uint64, n int, overflow bool) {
	for ; n < len(s); n++ {
		c := s[n]
		var d uint64
		switch {
		case '0' <= c && c <= '9':
			d = uint64(c - '0')
		case 'a' <= c|0x20 && c|0x20 <= 'f':
			d = uint64(c|0x20-'a') + 10
		default:
			return v, n, overflow
		}
		if d >= base {
			return v, n, overflow
		}
		if v > (^uint64(0)-d)/base {
			v, overflow = ^uint64(0), true
			continue
		}
		v = v*base + d
	}
	return v, n, overflow
}

// memparse parses a size: a base-0 integer (overflow saturates) and an
// optional K, M, G, T, P or E (either case), and returns the bytes and
// what follows.
//
// Kernel: lib/cmdline.c:memparse(), lib/vsprintf.c:simple_strtoull().
func memparse(s string) (uint64, string) {
	digits, base := parseRadix(s)
	v, n, _ := parseInteger(digits, base)
	rest := digits[n:]
	consumed := len(s) - len(rest)
	shl := 0
	if rest != "" {
		// c|0x20 folds only the upper-case letter onto each of these.
		shl = 10 * (strings.IndexByte("kmgtpe", rest[0]|0x20) + 1)
	}
	if shl != 0 && consumed > 0 {
		if v > ^uint64(0)>>shl {
			v = ^uint64(0)
		} else {
			v <<= shl
		}
		rest = rest[1:]
	}
	return v, rest
}

// pageCounterMemparse parses a page counter setting: unlimited is the
// exact string unlimited, else memparse's bytes rounded down to pages (at
// most PAGE_COUNTER_MAX); trailing characters are EINVAL.
//
// Kernel: mm/page_counter.c:page_counter_memparse().
func pageCounterMemparse(buf, unlimited string) (int64, error) {
	if buf == unlimited {
		return PageCounterMax, nil
	}
	bytes, rest := memparse(buf)
	if rest != "" {
		return 0, fmt.Errorf("%w: %q is not a size", EINVAL, buf)
	}
	return int64(min(bytes/pageSize, uint64(PageCounterMax))), nil
}

// kstrtoullBare is kstrtoull without the leading '+': all digits, then
// at most one newline.
//
// Kernel: lib/kstrtox.c:_kstrtoull().
func kstrtoullBare(s string) (uint64, error) {
	digits, base := parseRadix(s)
	v, n, overflow := parseInteger(digits, base)
	if overflow {
		return 0, fmt.Errorf("%w: %q is out of range", ERANGE, s)
	}
	if n == 0 {
		return 0, fmt.Errorf("%w: %q is not a number", EINVAL, s)
	}
	rest := strings.TrimPrefix(digits[n:], "\n")
	if rest != "" {
		return 0, fmt.Errorf("%w: %q is not a number", EINVAL, s)
	}
	return v, nil
}

// kstrtoull parses an unsigned base-0 integer, as cgroup files with a
// write_u64 handler take them.
//
// Kernel: lib/kstrtox.c:kstrtoull().
func kstrtoull(s string) (uint64, error) {
	return kstrtoullBare(strings.TrimPrefix(s, "+"))
}

// kstrtoint parses a signed base-0 int.
//
// Kernel: lib/kstrtox.c:kstrtoint(), kstrtoll().
func kstrtoint(s string) (int, error) {
	var v int64
	if r, ok := strings.CutPrefix(s, "-"); ok {
		u, err := kstrtoullBare(r)
		if err != nil {
			return 0, err
		}
		if u > 1<<63 {
			return 0, fmt.Errorf("%w: %q is out of range", ERANGE, s)
		}
		v = int64(-u)
	} else {
		u, err := kstrtoull(s)
		if err != nil {
			return 0, err
		}
		if u > 1<<63-1 {
			return 0, fmt.Errorf("%w: %q is out of range", ERANGE, s)
		}
		v = int64(u)
	}
	if v != int64(int32(v)) {
		return 0, fmt.Errorf("%w: %q is out of range", ERANGE, s)
	}
	return int(v), nil
}
