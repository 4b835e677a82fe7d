package mm

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// mcfOps is a fake MemcgOps: reclaim and the OOM killer do what the test
// says, and the calls are counted.
type mcfOps struct {
	mu       sync.Mutex
	reclaim  func(cg *MemCgroup, nr int64) int64 // nil: nothing reclaimed
	oom      func(cg *MemCgroup) bool            // nil: nothing killable
	reclaims []int64                             // nr_pages of each reclaim call
	maySwap  []bool
	ooms     int
}

func (o *mcfOps) TryToFreeMemCgroupPages(_ *memalloc.Task, cg *MemCgroup, nr int64, _ gfp.Mask, maySwap bool) int64 {
	o.mu.Lock()
	o.reclaims = append(o.reclaims, nr)
	o.maySwap = append(o.maySwap, maySwap)
	f := o.reclaim
	o.mu.Unlock()
	if f == nil {
		return 0
	}
	return f(cg, nr)
}

func (o *mcfOps) MemcgOutOfMemory(_ *memalloc.Task, cg *MemCgroup, _ gfp.Mask, _ zone.Order) bool {
	o.mu.Lock()
	o.ooms++
	f := o.oom
	o.mu.Unlock()
	return f != nil && f(cg)
}

func (o *mcfOps) Sleep(*memalloc.Task, int64, func() bool) bool { return false }

// mcfMachine is a one-node machine of 4096 DMA32 pages with the memory
// controller on v1 or v2 and ops plugged in (nil: none), and a cgroup
// named name under the root.
func mcfMachine(t testing.TB, v1 bool, ops MemcgOps, name string) (*Model, *MemCgroup) {
	t.Helper()
	a, err := zone.New(zone.Config{NrCPUs: 1, Sysctl: zone.DefaultSysctl(), Nodes: []zone.NodeConfig{{CPUs: []int{0},
		Zones: []zone.ZoneConfig{{Type: gfp.ZoneDMA32, StartPFN: 4096, Spanned: 4096, Present: 4096, Managed: 4096}}}}}, zone.Options{})
	require.NoError(t, err)
	m := NewModel(a, 0, func() int64 { return 0 })
	m.SetMemcgOps(ops, v1)
	cg, err := m.NewMemcg(m.RootMemcg(), name)
	require.NoError(t, err)
	return m, cg
}

// mcfRead reads a cgroup file that must exist.
func mcfRead(t testing.TB, m *Model, cg *MemCgroup, name string) string {
	t.Helper()
	s, err := m.ReadMemcgFile(cg, name)
	require.NoError(t, err, name)
	return s
}

// mcfKeys returns the first word of each line of a stat text, and checks
// that each line is "key <unsigned integer>".
func mcfKeys(t testing.TB, text string) []string {
	t.Helper()
	require.True(t, strings.HasSuffix(text, "\n"))
	var keys []string
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		f := strings.Fields(line)
		require.Len(t, f, 2, "line %q", line)
		_, err := kstrtoull(f[1])
		require.NoError(t, err, "line %q", line)
		keys = append(keys, f[0])
	}
	return keys
}

// mcfStatValue returns key's value in a stat text.
func mcfStatValue(t testing.TB, text, key string) string {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			return v
		}
	}
	require.Failf(t, "no such key", "%s in\n%s", key, text)
	return ""
}

// memcg1RealStatKeys are the 42 keys of the stat lines of the real v1 OOM
// reports in /work/shared/traces/dmesg_oom_reports.txt (6.18.44; report
// #2, "Memory cgroup stats for /kc_pressure:"), in their order.
var memcg1RealStatKeys = []string{
	"cache", "rss", "rss_huge", "shmem", "mapped_file", "dirty", "writeback",
	"workingset_refault_anon", "workingset_refault_file", "swap", "swapcached",
	"pgpgin", "pgpgout", "pgfault", "pgmajfault",
	"inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable",
	"hierarchical_memory_limit", "hierarchical_memsw_limit",
	"total_cache", "total_rss", "total_rss_huge", "total_shmem", "total_mapped_file", "total_dirty", "total_writeback",
	"total_workingset_refault_anon", "total_workingset_refault_file", "total_swap", "total_swapcached",
	"total_pgpgin", "total_pgpgout", "total_pgfault", "total_pgmajfault",
	"total_inactive_anon", "total_active_anon", "total_inactive_file", "total_active_file", "total_unevictable",
}

// memcg2StatKeys are memory_stat_format's keys in 7.2 for x86_64 with
// CONFIG_SWAP and CONFIG_TRANSPARENT_HUGEPAGE, without CONFIG_ZSWAP,
// CONFIG_NUMA_BALANCING or hugetlb accounting.
var memcg2StatKeys = []string{
	"anon", "file", "kernel", "kernel_stack", "pagetables", "sec_pagetables", "percpu", "sock", "vmalloc", "shmem",
	"file_mapped", "file_dirty", "file_writeback", "swapcached", "anon_thp", "file_thp", "shmem_thp",
	"inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable",
	"slab_reclaimable", "slab_unreclaimable", "slab",
	"workingset_refault_anon", "workingset_refault_file", "workingset_activate_anon", "workingset_activate_file",
	"workingset_restore_anon", "workingset_restore_file", "workingset_nodereclaim",
	"pgdemote_kswapd", "pgdemote_direct", "pgdemote_khugepaged", "pgdemote_proactive",
	"pgsteal_kswapd", "pgsteal_direct", "pgsteal_khugepaged", "pgsteal_proactive",
	"pgscan_kswapd", "pgscan_direct", "pgscan_khugepaged", "pgscan_proactive", "pgrefill",
	"pgscan", "pgsteal",
	"pswpin", "pswpout", "pgfault", "pgmajfault", "pgactivate", "pgdeactivate", "pglazyfree", "pglazyfreed",
	"swpin_zero", "swpout_zero", "thp_fault_alloc", "thp_collapse_alloc", "thp_swpout", "thp_swpout_fallback",
}

// mcfFill gives cg some counters: node counters, kmem, swap, events, and
// pages on its LRU lists.
func mcfFill(m *Model, cg *MemCgroup, anon, file, lruInactiveAnon int64) {
	cg.stat[zone.NodeNrAnonPages].Add(anon)
	cg.stat[zone.NodeNrFilePages].Add(file)
	cg.stat[zone.NodeWorkingsetRefaultFile].Add(7)
	cg.slabBytes[0].Add(2000) // reclaimable
	cg.slabBytes[1].Add(3000)
	cg.stat[zone.NodeNrKernelStack].Add(16) // kB
	cg.stat[zone.NodePgscanDirect].Add(5)
	cg.stat[zone.NodePgscanKswapd].Add(1)
	cg.kmemPages.Add(4)
	cg.swapPages.Add(1)
	cg.vmEvents[MemcgPgpgin].Add(9)
	cg.vmEvents[MemcgPgfault].Add(11)
	m.Lock()
	cg.lruvecs[0].zoneSize[gfp.ZoneDMA32][LRUInactiveAnon] += lruInactiveAnon
	m.Unlock()
}

// TestMemcgStatV1 checks the v1 memory.stat against the real reports' 42
// keys and order, the local rows against the total_ rows of a parent, and
// the hierarchical limits.
//
// Reference: mm/memcontrol-v1.c:memcg1_stat_format().
func TestMemcgStatV1(t *testing.T) {
	m, cg := mcfMachine(t, true, nil, "kc_pressure")
	child, err := m.NewMemcg(cg, "child")
	require.NoError(t, err)
	sh := memalloc.NewTask("sh")
	require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.limit_in_bytes", "268435456\n"))
	require.NoError(t, m.WriteMemcgFile(sh, child, "memory.limit_in_bytes", "512M"))
	mcfFill(m, cg, 10, 0, 0)
	mcfFill(m, child, 100, 4, 6)

	stat := mcfRead(t, m, cg, "memory.stat")
	require.Equal(t, memcg1RealStatKeys, mcfKeys(t, stat))
	for _, tc := range []struct{ key, want string }{
		{"rss", "40960"},
		{"total_rss", "450560"},
		{"cache", "0"},
		{"total_cache", "16384"},
		{"workingset_refault_file", "7"}, // a count, not bytes
		{"total_workingset_refault_file", "14"},
		{"swap", "4096"},
		{"total_swap", "8192"},
		{"pgpgin", "9"},
		{"total_pgpgin", "18"},
		{"pgfault", "11"},
		{"inactive_anon", "0"},
		{"total_inactive_anon", "24576"},
		{"hierarchical_memory_limit", "268435456"},
		{"hierarchical_memsw_limit", "9223372036854771712"},
	} {
		assert.Equal(t, tc.want, mcfStatValue(t, stat, tc.key), tc.key)
	}
	childStat := mcfRead(t, m, child, "memory.stat")
	assert.Equal(t, "268435456", mcfStatValue(t, childStat, "hierarchical_memory_limit"), "the parent's lower limit")
	assert.Equal(t, "24576", mcfStatValue(t, childStat, "inactive_anon"))
	assert.Equal(t, "24576", mcfStatValue(t, childStat, "total_inactive_anon"))

	var b strings.Builder
	require.NoError(t, m.WriteMemcgStat(&b, cg))
	require.Equal(t, stat, b.String())
}

// TestMemcgStatV2 checks the v2 memory.stat keys and order, the units
// (bytes, kB-counted kernel stack, counts) and that every value is the
// subtree's.
//
// Reference: mm/memcontrol.c:memcg_stat_format(), memory_stats[].
func TestMemcgStatV2(t *testing.T) {
	m, cg := mcfMachine(t, false, nil, "a")
	child, err := m.NewMemcg(cg, "b")
	require.NoError(t, err)
	mcfFill(m, cg, 10, 0, 0)
	mcfFill(m, child, 100, 4, 6)

	stat := mcfRead(t, m, cg, "memory.stat")
	require.Equal(t, memcg2StatKeys, mcfKeys(t, stat))
	for _, tc := range []struct{ key, want string }{
		{"anon", "450560"},
		{"file", "16384"},
		{"kernel", "32768"},
		{"kernel_stack", "32768"},
		{"slab_reclaimable", "4000"}, // bytes of objects
		{"slab_unreclaimable", "6000"},
		{"slab", "10000"},
		{"inactive_anon", "24576"},
		{"workingset_refault_file", "14"},
		{"pgscan_direct", "10"},
		{"pgscan", "12"},
		{"pgsteal", "0"},
		{"pgfault", "22"},
		{"pswpin", "0"},
	} {
		assert.Equal(t, tc.want, mcfStatValue(t, stat, tc.key), tc.key)
	}
	assert.Equal(t, "409600", mcfStatValue(t, mcfRead(t, m, child, "memory.stat"), "anon"))
	rootStat := mcfRead(t, m, m.RootMemcg(), "memory.stat")
	assert.Equal(t, memcg2StatKeys, mcfKeys(t, rootStat), "the root has memory.stat")
}

// TestPageCounterMemparse checks the size parser of every limit file.
//
// Reference: mm/page_counter.c:page_counter_memparse(), lib/cmdline.c:memparse().
func TestPageCounterMemparse(t *testing.T) {
	for _, tc := range []struct {
		name, buf, unlimited string
		want                 int64
		err                  error
	}{
		{"bytes round down to pages", "4097", "max", 1, nil},
		{"under a page is none", "1000", "max", 0, nil},
		{"a k suffix", "1k", "max", 0, nil},
		{"a K suffix", "4K", "-1", 1, nil},
		{"a G suffix", "1G", "max", 262144, nil},
		{"an e suffix in decimal", "1e", "max", 1 << 48, nil},
		{"e is a digit in hex", "0x1e", "max", 0, nil},
		{"hex", "0x2000", "max", 2, nil},
		{"octal", "020000", "max", 2, nil},
		{"8 is not octal", "08", "max", 0, EINVAL},
		{"0x without a digit", "0x", "max", 0, EINVAL},
		{"the v2 unlimited", "max", "max", PageCounterMax, nil},
		{"the v1 unlimited", "-1", "-1", PageCounterMax, nil},
		{"-1 on v2", "-1", "max", 0, EINVAL},
		{"max on v1", "max", "-1", 0, EINVAL},
		{"trailing garbage", "12x", "max", 0, EINVAL},
		{"two suffixes", "1kk", "max", 0, EINVAL},
		{"a suffix alone", "k", "max", 0, EINVAL},
		{"unstripped space", " 4096", "max", 0, EINVAL},
		{"empty is zero", "", "max", 0, nil},
		{"overflow saturates", "99999999999999999999999", "max", PageCounterMax, nil},
		{"a shift overflow saturates", "16E", "max", PageCounterMax, nil},
		{"the largest limit", "9223372036854771712", "max", PageCounterMax, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pageCounterMemparse(tc.buf, tc.unlimited)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestKstrtox checks the integer parsers of oom_control, use_hierarchy
// and memory.oom.group.
//
// Reference: lib/kstrtox.c:kstrtoull(), kstrtoint().
func TestKstrtox(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want uint64
		err  error
	}{
		{"1", 1, nil}, {"1\n", 1, nil}, {"+1", 1, nil}, {"0x10", 16, nil}, {"010", 8, nil},
		{"", 0, EINVAL}, {"1\n\n", 0, EINVAL}, {" 1", 0, EINVAL}, {"-1", 0, EINVAL}, {"1 ", 0, EINVAL},
		{"18446744073709551615", 1<<64 - 1, nil}, {"18446744073709551616", 0, ERANGE},
	} {
		got, err := kstrtoull(tc.s)
		if tc.err != nil {
			require.ErrorIs(t, err, tc.err, "%q", tc.s)
			continue
		}
		require.NoError(t, err, "%q", tc.s)
		require.Equal(t, tc.want, got, "%q", tc.s)
	}
	for _, tc := range []struct {
		s    string
		want int
		err  error
	}{
		{"-1", -1, nil}, {"0", 0, nil}, {"2147483647", 1<<31 - 1, nil}, {"-2147483648", -1 << 31, nil},
		{"2147483648", 0, ERANGE}, {"-+1", 0, EINVAL}, {"--1", 0, EINVAL},
	} {
		got, err := kstrtoint(tc.s)
		if tc.err != nil {
			require.ErrorIs(t, err, tc.err, "%q", tc.s)
			continue
		}
		require.NoError(t, err, "%q", tc.s)
		require.Equal(t, tc.want, got, "%q", tc.s)
	}
}

// TestMemcgLimitFiles writes and reads back the limits of both
// hierarchies: rounding, the unlimited spellings, parse errors.
//
// Reference: mm/memcontrol-v1.c:mem_cgroup_write(), mem_cgroup_read_u64(),
// mm/memcontrol.c:memory_max_write(), seq_puts_memcg_tunable().
func TestMemcgLimitFiles(t *testing.T) {
	sh := memalloc.NewTask("sh")
	for _, tc := range []struct {
		name      string
		v1        bool
		file, buf string
		want      string
		err       error
	}{
		{"v1 unlimited reads as the largest page multiple", true, "memory.limit_in_bytes", "", "9223372036854771712\n", nil},
		{"v1 rounds down to a page", true, "memory.limit_in_bytes", "4097\n", "4096\n", nil},
		{"v1 takes -1 for unlimited", true, "memory.limit_in_bytes", "-1", "9223372036854771712\n", nil},
		{"v1 refuses max", true, "memory.limit_in_bytes", "max", "", EINVAL},
		{"v1 refuses trailing garbage", true, "memory.limit_in_bytes", "12x", "", EINVAL},
		{"v1 memsw limit below the memory limit", true, "memory.memsw.limit_in_bytes", "1G", "", EINVAL},
		{"v1 kmem limit is ignored", true, "memory.kmem.limit_in_bytes", "1M", "9223372036854771712\n", nil},
		{"v1 soft limit is ignored", true, "memory.soft_limit_in_bytes", "1M", "9223372036854771712\n", nil},
		{"v2 unlimited reads max", false, "memory.max", "", "max\n", nil},
		{"v2 takes max", false, "memory.max", "max\n", "max\n", nil},
		{"v2 rounds down: 1k is no page", false, "memory.max", "1k", "0\n", nil},
		{"v2 refuses -1", false, "memory.max", "-1", "", EINVAL},
		{"v2 refuses trailing garbage", false, "memory.high", "12x", "", EINVAL},
		{"v2 high", false, "memory.high", " 2M \n", "2097152\n", nil},
		{"v2 min", false, "memory.min", "8192", "8192\n", nil},
		{"v2 low defaults to 0", false, "memory.low", "", "0\n", nil},
		{"v2 swap.max", false, "memory.swap.max", "0", "0\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, cg := mcfMachine(t, tc.v1, nil, "c")
			err := m.WriteMemcgFile(sh, cg, tc.file, tc.buf)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, mcfRead(t, m, cg, tc.file))
		})
	}
}

// TestMemcg1ResizeMax checks the v1 limit write below usage: one drain,
// then reclaim of a page at a time for as long as it frees something;
// EBUSY and the old limit when it frees nothing; the memory <= memsw rule;
// no limit on the root.
//
// Reference: mm/memcontrol-v1.c:mem_cgroup_resize_max().
func TestMemcg1ResizeMax(t *testing.T) {
	sh := memalloc.NewTask("sh")
	t.Run("reclaim that frees nothing gives EBUSY", func(t *testing.T) {
		ops := &mcfOps{}
		m, cg := mcfMachine(t, true, ops, "c")
		cg.Memory().Charge(100)
		err := m.WriteMemcgFile(sh, cg, "memory.limit_in_bytes", "0x40000") // 64 pages
		require.ErrorIs(t, err, EBUSY)
		require.Equal(t, "9223372036854771712\n", mcfRead(t, m, cg, "memory.limit_in_bytes"), "the limit is unchanged")
		require.Equal(t, []int64{1}, ops.reclaims, "one reclaim of SWAP_CLUSTER_MAX after the drain")
		require.Equal(t, []bool{true}, ops.maySwap)
	})
	t.Run("reclaim that frees pages goes on", func(t *testing.T) {
		ops := &mcfOps{reclaim: func(cg *MemCgroup, _ int64) int64 { cg.Memory().Uncharge(32); return 32 }}
		m, cg := mcfMachine(t, true, ops, "c")
		cg.Memory().Charge(100)
		require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.limit_in_bytes", "256k"))
		require.Equal(t, "262144\n", mcfRead(t, m, cg, "memory.limit_in_bytes"))
		require.Len(t, ops.reclaims, 2, "100 -> 68 -> 36 pages")
	})
	t.Run("a memsw limit reclaims without swap", func(t *testing.T) {
		ops := &mcfOps{}
		m, cg := mcfMachine(t, true, ops, "c")
		cg.Memsw().Charge(100)
		require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.limit_in_bytes", "4096"))
		require.ErrorIs(t, m.WriteMemcgFile(sh, cg, "memory.memsw.limit_in_bytes", "4096"), EBUSY)
		require.Equal(t, []bool{false}, ops.maySwap)
	})
	t.Run("memory must stay under memory+swap", func(t *testing.T) {
		m, cg := mcfMachine(t, true, nil, "c")
		require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.limit_in_bytes", "256M"))
		require.ErrorIs(t, m.WriteMemcgFile(sh, cg, "memory.memsw.limit_in_bytes", "128M"), EINVAL)
		require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.memsw.limit_in_bytes", "512M"))
		require.ErrorIs(t, m.WriteMemcgFile(sh, cg, "memory.limit_in_bytes", "1G"), EINVAL)
		require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.limit_in_bytes", "512M"))
	})
	t.Run("the root has no limit", func(t *testing.T) {
		m, _ := mcfMachine(t, true, nil, "c")
		for _, f := range []string{"memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.kmem.limit_in_bytes"} {
			require.ErrorIs(t, m.WriteMemcgFile(sh, m.RootMemcg(), f, "1G"), EINVAL, f)
		}
		require.NoError(t, m.WriteMemcgFile(sh, m.RootMemcg(), "memory.soft_limit_in_bytes", "1G"))
	})
}

// TestMemcg1Counters checks the v1 usage, peak and failcnt files and their
// resets.
//
// Reference: mm/memcontrol-v1.c:mem_cgroup_read_u64(), mem_cgroup_reset().
func TestMemcg1Counters(t *testing.T) {
	sh := memalloc.NewTask("sh")
	m, cg := mcfMachine(t, true, nil, "c")
	require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.limit_in_bytes", "40960"))
	cg.Memory().Charge(8)
	require.NotNil(t, cg.Memory().TryCharge(3), "past the limit")
	require.NotNil(t, cg.Memory().TryCharge(3))
	cg.Memory().Uncharge(6)
	assert.Equal(t, "8192\n", mcfRead(t, m, cg, "memory.usage_in_bytes"))
	assert.Equal(t, "32768\n", mcfRead(t, m, cg, "memory.max_usage_in_bytes"))
	assert.Equal(t, "2\n", mcfRead(t, m, cg, "memory.failcnt"))
	assert.Equal(t, "0\n", mcfRead(t, m, cg, "memory.kmem.failcnt"))
	require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.failcnt", "0\n"))
	require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.max_usage_in_bytes", "anything"))
	assert.Equal(t, "0\n", mcfRead(t, m, cg, "memory.failcnt"))
	assert.Equal(t, "8192\n", mcfRead(t, m, cg, "memory.max_usage_in_bytes"))
	assert.Equal(t, "1\n", mcfRead(t, m, cg, "memory.use_hierarchy"))
	require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.use_hierarchy", "1\n"))
	require.ErrorIs(t, m.WriteMemcgFile(sh, cg, "memory.use_hierarchy", "0"), EINVAL)
	require.ErrorIs(t, m.WriteMemcgFile(sh, cg, "memory.usage_in_bytes", "0"), EINVAL, "read-only")
}

// TestMemcg1OOMControl checks memory.oom_control's three lines and its
// writes.
//
// Reference: mm/memcontrol-v1.c:mem_cgroup_oom_control_read(),
// mem_cgroup_oom_control_write().
func TestMemcg1OOMControl(t *testing.T) {
	sh := memalloc.NewTask("sh")
	m, cg := mcfMachine(t, true, nil, "c")
	require.Equal(t, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", mcfRead(t, m, cg, "memory.oom_control"))
	require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.oom_control", "1\n"))
	m.MemoryEvent(cg, MemcgOOMKill)
	require.Equal(t, "oom_kill_disable 1\nunder_oom 0\noom_kill 1\n", mcfRead(t, m, cg, "memory.oom_control"))
	child, err := m.NewMemcg(cg, "child")
	require.NoError(t, err)
	require.Equal(t, "oom_kill_disable 1\nunder_oom 0\noom_kill 0\n", mcfRead(t, m, child, "memory.oom_control"),
		"inherited; v1 counts the kill in the victim's cgroup only")
	require.Equal(t, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", mcfRead(t, m, m.RootMemcg(), "memory.oom_control"),
		"v1 events do not go up the tree")
	for _, buf := range []string{"2", " 1", "x"} {
		require.ErrorIs(t, m.WriteMemcgFile(sh, cg, "memory.oom_control", buf), EINVAL, "%q", buf)
	}
	require.ErrorIs(t, m.WriteMemcgFile(sh, m.RootMemcg(), "memory.oom_control", "1"), EINVAL)
	require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.oom_control", "0"))
	require.False(t, cg.OOMKillDisable())
}

// TestMemcgEvents checks memory.events (hierarchical below the root) and
// memory.events.local.
//
// Reference: mm/memcontrol.c:__memory_events_show(), __memcg_memory_event().
func TestMemcgEvents(t *testing.T) {
	m, cg := mcfMachine(t, false, nil, "a")
	child, err := m.NewMemcg(cg, "b")
	require.NoError(t, err)
	m.MemoryEvent(child, MemcgMax)
	m.MemoryEvent(child, MemcgMax)
	m.MemoryEvent(child, MemcgOOM)
	m.MemoryEvent(cg, MemcgOOMKill)
	require.Equal(t, "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\noom_group_kill 0\nsock_throttled 0\n", mcfRead(t, m, cg, "memory.events"))
	require.Equal(t, "low 0\nhigh 0\nmax 0\noom 0\noom_kill 1\noom_group_kill 0\nsock_throttled 0\n", mcfRead(t, m, cg, "memory.events.local"))
	require.Equal(t, "low 0\nhigh 0\nmax 2\noom 1\noom_kill 0\noom_group_kill 0\nsock_throttled 0\n", mcfRead(t, m, child, "memory.events.local"))
	m.MemoryEvent(child, MemcgSwapMax)
	require.Equal(t, "high 0\nmax 1\nfail 0\n", mcfRead(t, m, cg, "memory.swap.events"))
}

// TestMemcgFileNames checks which files exist where, and the errors of the
// others.
//
// Reference: kernel/cgroup/cgroup.c:cgroup_file_write() (CFTYPE_NOT_ON_ROOT,
// a file without a write handler, an empty write).
func TestMemcgFileNames(t *testing.T) {
	sh := memalloc.NewTask("sh")
	v1, c1 := mcfMachine(t, true, nil, "c")
	v2, c2 := mcfMachine(t, false, nil, "c")
	for _, tc := range []struct {
		name string
		m    *Model
		cg   *MemCgroup
		file string
	}{
		{"an unknown file", v2, c2, "memory.bogus"},
		{"a v1 file on v2", v2, c2, "memory.limit_in_bytes"},
		{"a v2 file on v1", v1, c1, "memory.max"},
		{"v1 has no memsw soft limit", v1, c1, "memory.memsw.soft_limit_in_bytes"},
		{"the v2 root has no memory.current", v2, v2.RootMemcg(), "memory.current"},
		{"the v2 root has no memory.max", v2, v2.RootMemcg(), "memory.max"},
	} {
		_, err := tc.m.ReadMemcgFile(tc.cg, tc.file)
		require.ErrorIs(t, err, ENOENT, tc.name)
		require.ErrorIs(t, tc.m.WriteMemcgFile(sh, tc.cg, tc.file, "1"), ENOENT, tc.name)
	}
	require.ErrorIs(t, v2.WriteMemcgFile(sh, c2, "memory.stat", "1"), EINVAL, "read-only")
	require.NoError(t, v2.WriteMemcgFile(sh, c2, "memory.stat", ""), "an empty write does nothing")
	require.NoError(t, v2.WriteMemcgFile(sh, c2, "memory.max", ""), "an empty write does nothing")
	require.Equal(t, "max\n", mcfRead(t, v2, c2, "memory.max"))
	require.NoError(t, v2.WriteMemcgFile(sh, c2, "memory.max", "\n"), "a lone newline is the size 0")
	require.Equal(t, "0\n", mcfRead(t, v2, c2, "memory.max"))
	_, err := v2.ReadMemcgFile(c1, "memory.stat")
	require.ErrorIs(t, err, zone.ErrInvalid, "a cgroup of another machine")
	require.ErrorIs(t, v2.WriteMemcgFile(nil, c2, "memory.max", "1"), zone.ErrInvalid, "no task")

	root := v1.RootMemcg()
	for _, f := range []string{"memory.usage_in_bytes", "memory.limit_in_bytes", "memory.memsw.usage_in_bytes",
		"memory.kmem.usage_in_bytes", "memory.oom_control", "memory.stat", "memory.use_hierarchy"} {
		mcfRead(t, v1, root, f)
	}
}

// TestMemcg2OOMGroupAndPeak checks memory.oom.group and memory.peak.
//
// Reference: mm/memcontrol.c:memory_oom_group_write(), peak_show(), peak_write().
func TestMemcg2OOMGroupAndPeak(t *testing.T) {
	sh := memalloc.NewTask("sh")
	m, cg := mcfMachine(t, false, nil, "c")
	require.Equal(t, "0\n", mcfRead(t, m, cg, "memory.oom.group"))
	require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.oom.group", "1\n"))
	require.Equal(t, "1\n", mcfRead(t, m, cg, "memory.oom.group"))
	require.ErrorIs(t, m.WriteMemcgFile(sh, cg, "memory.oom.group", "2"), EINVAL)
	require.ErrorIs(t, m.WriteMemcgFile(sh, cg, "memory.oom.group", "-1"), EINVAL)
	require.ErrorIs(t, m.WriteMemcgFile(sh, cg, "memory.oom.group", "99999999999"), ERANGE)

	cg.Memory().Charge(10)
	cg.Memory().Uncharge(5)
	require.Equal(t, "20480\n", mcfRead(t, m, cg, "memory.current"))
	require.Equal(t, "40960\n", mcfRead(t, m, cg, "memory.peak"))
	require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.peak", "reset\n"))
	require.Equal(t, "20480\n", mcfRead(t, m, cg, "memory.peak"), "the peak since the write")
	cg.Memory().Charge(1)
	require.Equal(t, "24576\n", mcfRead(t, m, cg, "memory.peak"))
	require.Equal(t, int64(10), cg.Memory().Watermark(), "the lifetime peak stays")
}

// TestMemcg2MaxWrite checks memory.max's write below usage: the limit is
// set at once; one drain; MAX_RECLAIM_RETRIES reclaims that free nothing;
// then an oom event and the OOM killer until it finds nothing to kill or
// usage fits. memory.high gives up after one more reclaim and never OOMs.
//
// Reference: mm/memcontrol.c:memory_max_write(), memory_high_write().
func TestMemcg2MaxWrite(t *testing.T) {
	sh := memalloc.NewTask("sh")
	t.Run("nothing reclaimable and nothing killable", func(t *testing.T) {
		ops := &mcfOps{}
		m, cg := mcfMachine(t, false, ops, "c")
		cg.Memory().Charge(100)
		require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.max", "64k"))
		require.Equal(t, "65536\n", mcfRead(t, m, cg, "memory.max"), "set below usage")
		require.Len(t, ops.reclaims, MaxReclaimRetries)
		require.Equal(t, int64(84), ops.reclaims[0], "usage - max")
		require.Equal(t, 1, ops.ooms)
		require.Equal(t, int64(1), cg.Event(MemcgOOM, false))
	})
	t.Run("the OOM killer frees the cgroup", func(t *testing.T) {
		kills := 0
		ops := &mcfOps{oom: func(cg *MemCgroup) bool { kills++; cg.Memory().Uncharge(50); return true }}
		m, cg := mcfMachine(t, false, ops, "c")
		cg.Memory().Charge(100)
		require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.max", "64k"))
		require.Equal(t, 2, kills, "100 -> 50 -> 0 pages")
		require.Equal(t, int64(2), cg.Event(MemcgOOM, false))
	})
	t.Run("memory.high reclaims and never kills", func(t *testing.T) {
		ops := &mcfOps{oom: func(*MemCgroup) bool { panic("memory.high OOM-killed") }}
		m, cg := mcfMachine(t, false, ops, "c")
		cg.Memory().Charge(100)
		require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.high", "64k"))
		require.Equal(t, "65536\n", mcfRead(t, m, cg, "memory.high"))
		require.Len(t, ops.reclaims, MaxReclaimRetries+1)
		require.Zero(t, ops.ooms)
	})
	t.Run("reclaim that makes progress reaches the limit", func(t *testing.T) {
		ops := &mcfOps{reclaim: func(cg *MemCgroup, nr int64) int64 { n := min(nr, 10); cg.Memory().Uncharge(n); return n }}
		m, cg := mcfMachine(t, false, ops, "c")
		cg.Memory().Charge(100)
		require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.max", "64k"))
		require.Equal(t, int64(16), cg.Memory().Usage())
		require.Zero(t, ops.ooms)
	})
	t.Run("without MemcgOps the limit is only set", func(t *testing.T) {
		m, cg := mcfMachine(t, false, nil, "c")
		cg.Memory().Charge(100)
		require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.max", "0"))
		require.Equal(t, "0\n", mcfRead(t, m, cg, "memory.max"))
		require.Equal(t, int64(100), cg.Memory().Usage())
	})
}

// TestWriteOOMMeminfo checks the memcg part of the OOM report on both
// hierarchies against the real v1 report's line shapes, and v2's
// protection line.
//
// Reference: mm/memcontrol.c:mem_cgroup_print_oom_meminfo(),
// mem_cgroup_show_protected_memory().
func TestWriteOOMMeminfo(t *testing.T) {
	sh := memalloc.NewTask("sh")
	t.Run("v1", func(t *testing.T) {
		m, cg := mcfMachine(t, true, nil, "kc_pressure")
		require.NoError(t, m.WriteMemcgFile(sh, cg, "memory.limit_in_bytes", "256M"))
		var b strings.Builder
		m.WriteOOMMeminfo(&b, cg)
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		require.Len(t, lines, 4+42)
		require.Equal(t, []string{
			"memory: usage 0kB, limit 262144kB, failcnt 0",
			"memory+swap: usage 0kB, limit 9007199254740988kB, failcnt 0",
			"kmem: usage 0kB, limit 9007199254740988kB, failcnt 0",
			"Memory cgroup stats for /kc_pressure:",
		}, lines[:4])
		require.Equal(t, memcg1RealStatKeys, mcfKeys(t, strings.Join(lines[4:], "\n")+"\n"))
		var p strings.Builder
		m.WriteOOMProtection(&p, cg)
		require.Empty(t, p.String(), "v1 has no protection line")
	})
	t.Run("v2", func(t *testing.T) {
		m, cg := mcfMachine(t, false, nil, "a")
		child, err := m.NewMemcg(cg, "b")
		require.NoError(t, err)
		require.NoError(t, m.WriteMemcgFile(sh, child, "memory.min", "1M"))
		require.NoError(t, m.WriteMemcgFile(sh, child, "memory.low", "64k"))
		child.Memory().Charge(100)
		m.MemoryEvent(cg, MemcgMax)
		var b strings.Builder
		m.WriteOOMMeminfo(&b, cg)
		lines := strings.Split(b.String(), "\n")
		require.Equal(t, []string{
			"memory: usage 400kB, limit 9007199254740988kB, failcnt 1",
			"swap: usage 0kB, limit 9007199254740988kB, failcnt 0",
			"Memory cgroup stats for /a:",
		}, lines[:3])
		require.Equal(t, memcg2StatKeys, mcfKeys(t, strings.Join(lines[3:], "\n")))
		var p strings.Builder
		m.WriteOOMProtection(&p, cg)
		require.Equal(t, "Memory cgroup min protection 400kB -- low protection 64kB\n", p.String())
		p.Reset()
		m.WriteOOMProtection(&p, nil)
		require.Equal(t, "Memory cgroup min protection 0kB -- low protection 0kB\n", p.String(), "the root's, for a global OOM")
	})
}

// TestMemcgFilesConcurrent reads the statistics and moves the limits
// while charges come and go, for the race detector.
func TestMemcgFilesConcurrent(t *testing.T) {
	ops := &mcfOps{}
	m, cg := mcfMachine(t, false, ops, "c")
	var g errgroup.Group
	for i := range 4 {
		g.Go(func() error {
			task := memalloc.NewTask("w")
			for j := range 200 {
				switch (i + j) % 4 {
				case 0:
					cg.Memory().Charge(3)
					cg.Memory().Uncharge(3)
				case 1:
					if _, err := m.ReadMemcgFile(cg, "memory.stat"); err != nil {
						return err
					}
				case 2:
					if err := m.WriteMemcgFile(task, cg, "memory.high", "1M"); err != nil {
						return err
					}
				case 3:
					var b strings.Builder
					m.WriteOOMMeminfo(&b, cg)
					if !strings.HasPrefix(b.String(), "memory: usage ") {
						return errors.New("no memory: line")
					}
				}
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
}
