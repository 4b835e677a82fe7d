package mmsim_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/testutil"
)

// procfsBuddyZones returns the "Node N, zone NAME " prefix of each
// buddyinfo line.
func procfsBuddyZones(t *testing.T, s string) []string {
	t.Helper()
	line := regexp.MustCompile(`^(Node \d+, zone [ A-Za-z0-9]{8} )(?:[ 0-9]{6} ){11}$`)
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		m := line.FindStringSubmatch(l)
		require.NotNil(t, m, "buddyinfo line %q", l)
		out = append(out, m[1])
	}
	return out
}

func procfsFile(t *testing.T, snapshot, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "procfs", snapshot, name))
	require.NoError(t, err)
	return string(b)
}

// procfsPrint boots cfg and returns its zoneinfo, buddyinfo and meminfo.
func procfsPrint(t *testing.T, cfg mmsim.Config) (zoneinfo, buddyinfo, meminfo string) {
	t.Helper()
	s := newSystem(t, cfg)
	var z, b, m bytes.Buffer
	require.NoError(t, s.WriteZoneinfo(&z))
	require.NoError(t, s.WriteBuddyinfo(&b))
	require.NoError(t, s.WriteMeminfo(&m))
	return z.String(), b.String(), m.String()
}

// TestConfigFromProcfsRealSnapshots reads the live machine's /proc files at
// the start and the end of its rest run, with its /proc/sys/vm and without
// (the sysctls then inferred from the watermarks and protection), boots the
// Config and checks that the simulated zoneinfo has the real one's layout
// lines and buddyinfo the real one's zones. Where zoneinfo pins a sysctl
// the inference finds the real value: min_free_kbytes 67584 (set above the
// boot rule's 13716 by THP's recommended minimum), watermark_scale_factor
// 10 (only bounded to 1..13 by these zones: the default is taken),
// lowmem_reserve_ratio 256 256 (DMA and DMA32 pinned by their protection),
// 32 0 0 (Normal, Movable and Device have no managed pages above them: the
// defaults).
//
// Reference: mm/page_alloc.c:__setup_per_zone_wmarks(),
// setup_per_zone_lowmem_reserve(); mm/vmstat.c:zoneinfo_show_print().
func TestConfigFromProcfsRealSnapshots(t *testing.T) {
	for _, snapshot := range []string{"rest_start", "rest_end"} {
		for _, withSysVM := range []bool{false, true} {
			name := snapshot + "/inferred"
			if withSysVM {
				name = snapshot + "/sys_vm"
			}
			t.Run(name, func(t *testing.T) {
				zoneinfo := procfsFile(t, snapshot, "zoneinfo")
				var opts []mmsim.ProcfsOption
				if withSysVM {
					opts = append(opts, mmsim.WithSysVM(strings.NewReader(procfsFile(t, snapshot, "sys_vm"))))
				}
				cfg, err := mmsim.ConfigFromProcfs(strings.NewReader(zoneinfo),
					strings.NewReader(procfsFile(t, snapshot, "meminfo")), opts...)
				require.NoError(t, err)

				require.Equal(t, 2, cfg.CPUs)
				require.Len(t, cfg.Nodes, 1)
				require.Equal(t, []int{0, 1}, cfg.Nodes[0].CPUs)
				normal := int64(2162688)
				if snapshot == "rest_start" {
					normal = 131072
				}
				require.Equal(t, []mmsim.ZoneConfig{
					{Type: gfp.ZoneDMA, StartPFN: 1, Spanned: 4095, Present: 3998, Managed: 3840},
					{Type: gfp.ZoneDMA32, StartPFN: 4096, Spanned: 1044480, Present: 782336, Managed: 772915},
					{Type: gfp.ZoneNormal, StartPFN: 1048576, Spanned: 5505024, Present: 5505024, Managed: normal},
				}, cfg.Nodes[0].Zones)
				require.Equal(t, int64(67584), cfg.Sysctl.MinFreeKbytes)
				require.Equal(t, 10, cfg.Sysctl.WatermarkScaleFactor)
				require.Equal(t, [gfp.MaxNrZones]int{256, 256, 32, 0, 0}, cfg.Sysctl.LowmemReserveRatio)
				require.Equal(t, 0, cfg.Sysctl.PercpuPagelistHighFraction)
				require.Equal(t, int64(0), cfg.SwapPages)
				require.Equal(t, 60, cfg.Swappiness)
				require.Equal(t, 20, cfg.CompactionProactiveness)

				gotZoneinfo, gotBuddyinfo, _ := procfsPrint(t, cfg)
				want := testutil.ZoneinfoLayout(zoneinfo)
				require.Greater(t, len(want), 40)
				require.Equal(t, want, testutil.ZoneinfoLayout(gotZoneinfo))
				require.Equal(t, procfsBuddyZones(t, procfsFile(t, snapshot, "buddyinfo")), procfsBuddyZones(t, gotBuddyinfo))
				// DMA's pages are where the real machine's are (the hole
				// below 1 MiB): its free blocks match the real ones, which
				// nothing allocated after boot.
				realDMA := strings.SplitN(procfsFile(t, snapshot, "buddyinfo"), "\n", 2)[0]
				require.Equal(t, realDMA, strings.SplitN(gotBuddyinfo, "\n", 2)[0])
			})
		}
	}
}

// TestConfigFromProcfsSysVM checks that the /proc/sys/vm dump sets every
// sysctl Config has, and that values the zoneinfo does not constrain win
// over the defaults.
func TestConfigFromProcfsSysVM(t *testing.T) {
	sysVM := strings.NewReplacer(
		"watermark_boost_factor = 15000", "watermark_boost_factor = 0",
		"dirty_ratio = 20", "dirty_ratio = 30",
		"dirty_background_ratio = 10", "dirty_background_ratio = 5",
		"overcommit_memory = 0", "overcommit_memory = 2",
		"overcommit_ratio = 50", "overcommit_ratio = 80",
		"overcommit_kbytes = 0", "overcommit_kbytes = 0",
		"swappiness = 60", "swappiness = 100",
		"panic_on_oom = 0", "panic_on_oom = 1",
		"oom_kill_allocating_task = 0", "oom_kill_allocating_task = 1",
		"compaction_proactiveness = 20", "compaction_proactiveness = 0",
		"lowmem_reserve_ratio = 256 256 32 0 0", "lowmem_reserve_ratio = 256 256 7 0 0",
	).Replace(procfsFile(t, "rest_end", "sys_vm"))
	meminfo := strings.Replace(procfsFile(t, "rest_end", "meminfo"),
		"SwapTotal:             0 kB", "SwapTotal:       8388604 kB", 1)
	cfg, err := mmsim.ConfigFromProcfs(strings.NewReader(procfsFile(t, "rest_end", "zoneinfo")),
		strings.NewReader(meminfo), mmsim.WithSysVM(strings.NewReader(sysVM)), mmsim.WithSeed(42))
	require.NoError(t, err)
	s := cfg.Sysctl
	require.Equal(t, mmsim.Sysctl{
		MinFreeKbytes:        67584,
		WatermarkScaleFactor: 10,
		WatermarkBoostFactor: 0,
		LowmemReserveRatio:   [gfp.MaxNrZones]int{256, 256, 7, 0, 0},
		DirtyRatio:           30,
		DirtyBackgroundRatio: 5,
		OvercommitRatio:      80,
		OvercommitMemory:     2,
	}, s)
	require.Equal(t, 100, cfg.Swappiness)
	require.Equal(t, 1, cfg.PanicOnOOM)
	require.True(t, cfg.OOMKillAllocatingTask)
	require.Equal(t, 0, cfg.CompactionProactiveness)
	require.Equal(t, int64(8388604/4), cfg.SwapPages)
	require.Equal(t, int64(42), cfg.Seed)
}

// procfsTwoNodes is a two-node machine with a Movable zone and sysctls
// away from the defaults: node 0 with DMA, DMA32 and a small Normal zone,
// node 1 with Normal and Movable; CPUs 0-1 on node 0 and 2-4 on node 1.
func procfsTwoNodes() mmsim.Config {
	cfg := mmsim.DefaultConfig()
	cfg.CPUs = 5
	cfg.Nodes = []mmsim.NodeConfig{
		{CPUs: []int{0, 1}, Zones: []mmsim.ZoneConfig{
			{Type: gfp.ZoneDMA, StartPFN: 1, Spanned: 4095, Present: 3998, Managed: 3840},
			{Type: gfp.ZoneDMA32, StartPFN: 4096, Spanned: 1044480, Present: 782336, Managed: 770048},
			{Type: gfp.ZoneNormal, StartPFN: 1 << 20, Spanned: 262144, Present: 262144, Managed: 250000},
		}},
		{CPUs: []int{2, 3, 4}, Zones: []mmsim.ZoneConfig{
			{Type: gfp.ZoneNormal, StartPFN: 1<<20 + 262144, Spanned: 524288, Present: 524288, Managed: 520000},
			{Type: gfp.ZoneMovable, StartPFN: 1<<20 + 786432, Spanned: 262144, Present: 262144, Managed: 262144},
		}},
	}
	cfg.Sysctl.MinFreeKbytes = 20000
	cfg.Sysctl.WatermarkScaleFactor = 25
	cfg.Sysctl.LowmemReserveRatio = [gfp.MaxNrZones]int{256, 128, 16, 0, 0}
	return cfg
}

// TestConfigFromProcfsTwoNodes prints the zoneinfo of a two-node machine
// and reads it back: the nodes, zones and spans come back equal, and the
// inferred sysctls give the same watermarks and protection, with the CPUs'
// nodes given (WithNodeCPUs) and without (every CPU on node 0, so only the
// pcp high bounds differ). With percpu_pagelist_high_fraction set, it is
// inferred from high_min = high_max.
func TestConfigFromProcfsTwoNodes(t *testing.T) {
	nodeCPUs := map[int][]int{0: {0, 1}, 1: {2, 3, 4}}
	for name, fraction := range map[string]int{"default": 0, "high_fraction": 16} {
		t.Run(name, func(t *testing.T) {
			orig := procfsTwoNodes()
			orig.Sysctl.PercpuPagelistHighFraction = fraction
			zoneinfo, buddyinfo, meminfo := procfsPrint(t, orig)

			cfg, err := mmsim.ConfigFromProcfs(strings.NewReader(zoneinfo), strings.NewReader(meminfo),
				mmsim.WithNodeCPUs(nodeCPUs))
			require.NoError(t, err)
			require.Equal(t, orig.Nodes, cfg.Nodes)
			require.Equal(t, orig.CPUs, cfg.CPUs)
			require.Equal(t, orig.Sysctl.MinFreeKbytes>>2, cfg.Sysctl.MinFreeKbytes>>2)
			require.Equal(t, orig.Sysctl.WatermarkScaleFactor, cfg.Sysctl.WatermarkScaleFactor)
			require.Equal(t, orig.Sysctl.LowmemReserveRatio, cfg.Sysctl.LowmemReserveRatio)
			require.Equal(t, fraction, cfg.Sysctl.PercpuPagelistHighFraction)
			gotZoneinfo, gotBuddyinfo, _ := procfsPrint(t, cfg)
			require.Equal(t, testutil.ZoneinfoLayout(zoneinfo), testutil.ZoneinfoLayout(gotZoneinfo))
			require.Equal(t, procfsBuddyZones(t, buddyinfo), procfsBuddyZones(t, gotBuddyinfo))

			// Without the CPUs' nodes: all on node 0, same zones and
			// watermarks; the pcp high bounds are not checked.
			cfg, err = mmsim.ConfigFromProcfs(strings.NewReader(zoneinfo), nil)
			require.NoError(t, err)
			require.Equal(t, []int{0, 1, 2, 3, 4}, cfg.Nodes[0].CPUs)
			require.Empty(t, cfg.Nodes[1].CPUs)
			for n := range orig.Nodes {
				require.Equal(t, orig.Nodes[n].Zones, cfg.Nodes[n].Zones)
			}
			gotZoneinfo, _, _ = procfsPrint(t, cfg)
			noPCP := func(lines []string) []string {
				var out []string
				for _, l := range lines {
					if !strings.Contains(l, "high_min:") && !strings.Contains(l, "high_max:") {
						out = append(out, l)
					}
				}
				return out
			}
			require.Equal(t, noPCP(testutil.ZoneinfoLayout(zoneinfo)), noPCP(testutil.ZoneinfoLayout(gotZoneinfo)))
		})
	}
}

// TestConfigFromProcfsBoostAndEmptySpan checks what the text of a busy or
// unusual machine changes: a watermark boost in force is taken out of the
// watermarks, and a zone that spans pages but has none present (whose
// start_pfn zoneinfo does not print) is left out of the Config.
func TestConfigFromProcfsBoostAndEmptySpan(t *testing.T) {
	real := procfsFile(t, "rest_end", "zoneinfo")
	boosted := strings.Replace(real, `        boost    0
        min      4442
        low      5552
        high     6662
        promo    7772`, `        boost    300
        min      4742
        low      5852
        high     6962
        promo    8072`, 1)
	require.NotEqual(t, real, boosted)
	cfg, err := mmsim.ConfigFromProcfs(strings.NewReader(boosted), nil)
	require.NoError(t, err)
	require.Equal(t, int64(67584), cfg.Sysctl.MinFreeKbytes)

	spanned := strings.Replace(real, `Node 0, zone   Device
  pages free     0
        boost    0
        min      0
        low      0
        high     0
        promo    0
        spanned  0`, `Node 0, zone   Device
  pages free     0
        boost    0
        min      0
        low      0
        high     0
        promo    0
        spanned  262144`, 1)
	require.NotEqual(t, real, spanned)
	cfg, err = mmsim.ConfigFromProcfs(strings.NewReader(spanned), nil)
	require.NoError(t, err)
	require.Len(t, cfg.Nodes[0].Zones, 3)
}

// TestConfigFromProcfsNilOption: a nil option is ignored, as Replay's are.
func TestConfigFromProcfsNilOption(t *testing.T) {
	zoneinfo := procfsFile(t, "rest_end", "zoneinfo")
	meminfo := procfsFile(t, "rest_end", "meminfo")
	_, err := mmsim.ConfigFromProcfs(strings.NewReader(zoneinfo), strings.NewReader(meminfo), nil)
	require.NoError(t, err)
}

// TestConfigFromProcfsErrors feeds bad text: each error wraps ErrInvalid
// and says what is wrong, with the line where there is one.
func TestConfigFromProcfsErrors(t *testing.T) {
	zoneinfo := procfsFile(t, "rest_end", "zoneinfo")
	meminfo := procfsFile(t, "rest_end", "meminfo")
	lines := strings.SplitAfter(zoneinfo, "\n")
	replace := func(old, new string) string {
		require.Contains(t, zoneinfo, old)
		return strings.Replace(zoneinfo, old, new, 1)
	}
	type test struct {
		zoneinfo, meminfo string
		opts              []mmsim.ProcfsOption
		want              string // in the message
	}
	withSysVM := func(s string) []mmsim.ProcfsOption {
		return []mmsim.ProcfsOption{mmsim.WithSysVM(strings.NewReader(s))}
	}
	tests := map[string]test{
		"empty":                    {zoneinfo: "", want: "empty"},
		"garbage":                  {zoneinfo: "hello world\n", want: "line 1"},
		"binary":                   {zoneinfo: "\x00\x01\x02\xff\n\x7f", want: "line 1"},
		"header only":              {zoneinfo: "Node 0, zone      DMA\n", want: "line 1: Node 0, zone DMA has no min line"},
		"spanned missing":          {zoneinfo: replace("        spanned  1044480\n", ""), want: "zone DMA32 has no spanned line"},
		"managed not a number":     {zoneinfo: replace("managed  772915", "managed  77x915"), want: `managed "77x915": not a number`},
		"unknown zone":             {zoneinfo: replace("zone   Normal", "zone  HighMem"), want: `unknown zone "HighMem"`},
		"zones out of order":       {zoneinfo: replace("zone   Normal", "zone  Movable"), want: "in zone order"},
		"truncated in a zone":      {zoneinfo: strings.Join(lines[:110], ""), want: "no start_pfn line"},
		"truncated after a zone":   {zoneinfo: strings.Join(lines[:190], ""), want: "ends after 3 of its 5 zones"},
		"node out of order":        {zoneinfo: replace("Node 0, zone   Normal", "Node 2, zone   Normal"), want: "node 2 after node 0"},
		"short protection":         {zoneinfo: replace("protection: (0, 0, 8448, 8448, 8448)", "protection: (0, 0, 8448)"), want: "protection has 3 entries"},
		"unknown pcp line":         {zoneinfo: replace("high_min: 2776", "high_mid: 2776"), want: `unknown line "high_mid: 2776"`},
		"cpu missing":              {zoneinfo: replace("    cpu: 1\n", "    cpu: 2\n"), want: "lists cpu 2 where cpu 1 belongs"},
		"min of no sysctl":         {zoneinfo: replace("min      4442", "min      4000"), want: "zone DMA32: min 4000"},
		"protection of no ratio":   {zoneinfo: replace("protection: (0, 0, 8448, 8448, 8448)", "protection: (0, 0, 8448, 9000, 8448)"), want: "zone DMA32: protection"},
		"high not low plus gap":    {zoneinfo: replace("high     6662", "high     6663"), want: "zone DMA32: high 6663, but min_free_kbytes 67584"},
		"managed above present":    {zoneinfo: replace("managed  772915", "managed  782337"), want: "want managed 782337 <= present 782336"},
		"huge value":               {zoneinfo: replace("spanned  1044480", "spanned  99999999999999999"), want: "spanned 99999999999999999: want 0..2^40"},
		"meminfo without total":    {zoneinfo: zoneinfo, meminfo: "SwapTotal: 0 kB\n", want: "no MemTotal"},
		"meminfo garbage":          {zoneinfo: zoneinfo, meminfo: "MemTotal 5\n", want: "meminfo line 1"},
		"meminfo other machine":    {zoneinfo: zoneinfo, meminfo: "MemTotal: 1000 kB\nSwapTotal: 0 kB\n", want: "MemTotal 1000 kB is outside"},
		"sys_vm contradicts":       {zoneinfo: zoneinfo, opts: withSysVM("min_free_kbytes = 60000\n"), want: "line 56: Node 0, zone DMA: min 22, but min_free_kbytes 60000 and watermark_scale_factor 10 give 19"},
		"sys_vm ratio contradicts": {zoneinfo: zoneinfo, opts: withSysVM("lowmem_reserve_ratio = 100 256 32 0 0\n"), want: "zone DMA: protection [0 3019 11467 11467 11467], but lowmem_reserve_ratio [100 256 32 0 0]"},
		"sys_vm not a number":      {zoneinfo: zoneinfo, opts: withSysVM("swappiness = 60\nwatermark_scale_factor = ten\n"), want: `sys_vm line 2: watermark_scale_factor = "ten"`},
		"sys_vm garbage":           {zoneinfo: zoneinfo, opts: withSysVM("nonsense\n"), want: "sys_vm line 1"},
		"sys_vm out of range":      {zoneinfo: zoneinfo, opts: withSysVM("swappiness = 250\n"), want: "vm.swappiness takes 0..200"},
		"node cpus of no node":     {zoneinfo: zoneinfo, opts: []mmsim.ProcfsOption{mmsim.WithNodeCPUs(map[int][]int{3: {0, 1}})}, want: "WithNodeCPUs: node 3"},
		"node cpus miss a cpu":     {zoneinfo: zoneinfo, opts: []mmsim.ProcfsOption{mmsim.WithNodeCPUs(map[int][]int{0: {0}})}, want: "1 of 2 CPUs belong to no node"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			mi := tc.meminfo
			if mi == "" {
				mi = meminfo
			}
			_, err := mmsim.ConfigFromProcfs(strings.NewReader(tc.zoneinfo), strings.NewReader(mi), tc.opts...)
			require.Error(t, err)
			require.True(t, errors.Is(err, mmsim.ErrInvalid), "%v", err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := mmsim.ConfigFromProcfs(nil, nil)
	require.ErrorIs(t, err, mmsim.ErrInvalid)
}

// FuzzConfigFromProcfs feeds mangled zoneinfo and meminfo: ConfigFromProcfs
// never panics, its errors wrap ErrInvalid, and a Config it returns boots.
// The seeds are the real files without their counters, which the parser
// skips: small inputs keep the fuzzer fast.
func FuzzConfigFromProcfs(f *testing.F) {
	counter := regexp.MustCompile(`^\s+[a-z][a-z0-9_]*\s+\d+$`)
	for _, snapshot := range []string{"rest_start", "rest_end"} {
		z, err := os.ReadFile(filepath.Join("testdata", "procfs", snapshot, "zoneinfo"))
		if err != nil {
			f.Fatal(err)
		}
		var lines []string
		for _, l := range strings.SplitAfter(string(z), "\n") {
			if !counter.MatchString(strings.TrimSuffix(l, "\n")) || testutil.IsZoneinfoLayoutLine(l) {
				lines = append(lines, l)
			}
		}
		z = []byte(strings.Join(lines, ""))
		m := []byte("MemTotal:       24684084 kB\nSwapTotal:             0 kB\n")
		f.Add(z, m)
		f.Add(z[:len(z)/2], m[:len(m)/3])
	}
	f.Add([]byte("Node 0, zone DMA\n  pages free 1\n"), []byte("MemTotal: 4 kB\n"))
	f.Fuzz(func(t *testing.T, zoneinfo, meminfo []byte) {
		cfg, err := mmsim.ConfigFromProcfs(bytes.NewReader(zoneinfo), bytes.NewReader(meminfo))
		if err != nil {
			if !errors.Is(err, mmsim.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		s, err := mmsim.New(cfg)
		if err != nil {
			t.Fatalf("a Config ConfigFromProcfs returned does not boot: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
}
