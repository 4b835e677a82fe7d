package mmsim

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/zone"
)

// Building a Config from the /proc files of a live machine.
//
// zoneinfo says almost everything: the nodes, each zone's span and sizes,
// the CPUs (every populated zone lists its per-cpu pagesets), and the
// results of the vm sysctls — the watermarks and the lowmem protection —
// from which the sysctls themselves are recovered. The kernel computes
//
//	pages_min     = min_free_kbytes >> 2
//	tmp           = pages_min * managed / lowmem_managed   (u64 division)
//	min           = tmp, or clamp(managed/1024, 32, 128) for ZONE_MOVABLE
//	low - min     = max(tmp/4, managed * watermark_scale_factor / 10000)
//	high - low    = promo - high = low - min
//	protection[j] = (managed of the node's zones i+1..j) / lowmem_reserve_ratio[i]
//	                (0 when the ratio or zone i's managed is 0)
//
// where lowmem_managed sums the managed pages of every zone but Movable, on
// every node. Each printed number bounds its sysctl to an interval; the
// intervals of all zones are intersected. Where they leave a choice, the
// kernel's default is taken if it lies inside, else the smallest value —
// for min_free_kbytes the default is the boot rule's value, and a ratio
// whose protection entries are all 0 is 0. A sysctl no zone constrains
// (the ratio of a zone with no managed pages, or with no managed pages
// above it) keeps its default. percpu_pagelist_high_fraction is 0 when
// the pcp high_min and high_max fit it (high_min from the low watermark,
// high_max from managed/8, each split between the node's CPUs, at least
// four batches), else the smallest fraction giving high_min = high_max;
// it is inferred only when the CPUs' nodes are known (one node, or
// WithNodeCPUs). A min_free_kbytes of 0 becomes 1, which gives the same
// 0 pages: mmsim's 0 asks for the boot rule.

// ProcfsOption adjusts ConfigFromProcfs.
type ProcfsOption func(*procfsOptions)

type procfsOptions struct {
	sysVM    io.Reader
	seed     int64
	seedSet  bool
	nodeCPUs map[int][]int
}

// WithSysVM reads the machine's vm sysctls from a dump of /proc/sys/vm, one
// "name = value" line per file; unknown names are ignored. The values it
// gives replace the ones ConfigFromProcfs would infer, and must agree with
// the zoneinfo.
//
// Kernel: mm/page_alloc.c, mm/util.c, mm/vmscan.c, mm/oom_kill.c,
// mm/compaction.c, mm/page-writeback.c (the vm_table sysctls).
func WithSysVM(r io.Reader) ProcfsOption {
	return func(o *procfsOptions) { o.sysVM = r }
}

// WithSeed sets Config.Seed (default: DefaultConfig's).
func WithSeed(seed int64) ProcfsOption {
	return func(o *procfsOptions) { o.seed, o.seedSet = seed, true }
}

// WithNodeCPUs places the CPUs on nodes: node id to its CPU ids. zoneinfo
// does not say which node a CPU belongs to (every zone lists every online
// CPU), so by default every CPU is placed on node 0. On a machine with
// several nodes, the pcp high_min and high_max of the simulated zones then
// differ from the real ones unless this option gives the real placement
// (/sys/devices/system/node/nodeN/cpulist). Every CPU must be placed once.
//
// Kernel: mm/page_alloc.c:zone_highsize() (cpumask_of_node).
func WithNodeCPUs(nodeCPUs map[int][]int) ProcfsOption {
	return func(o *procfsOptions) { o.nodeCPUs = nodeCPUs }
}

// ConfigFromProcfs returns the Config of the machine that printed
// zoneinfo (its /proc/zoneinfo) and meminfo (its /proc/meminfo): its nodes
// and zones with their spans (start_pfn, spanned, present, managed), its
// CPUs, and vm sysctls — min_free_kbytes, watermark_scale_factor,
// lowmem_reserve_ratio, percpu_pagelist_high_fraction — that give its
// watermarks, protection and pcp sizes; WithSysVM supplies the sysctls
// instead. Everything else is DefaultConfig's. A System built from the
// Config prints the same zoneinfo layout (zone headers, watermarks, sizes,
// protection, pcp batch and high bounds) as the machine, and the same
// buddyinfo zones.
//
// Built, the Config is checked against the text: a watermark, protection
// or pcp bound the simulated machine would not print as the file does is
// an error naming the zone and the field. Every error wraps ErrInvalid and
// names the line at fault where there is one.
//
// What the files cannot say, and what is done instead:
//   - the CPUs' nodes: all on node 0 unless WithNodeCPUs places them;
//   - a zone that spans pages but has none present (ZONE_DEVICE memory, a
//     hole): zoneinfo does not print its start_pfn, and it holds nothing to
//     allocate, so it is left out of the Config — its watermarks and
//     protection are those of an empty zone, but its spanned line prints 0;
//   - watermark_boost at the time of the snapshot is taken out of the
//     watermarks; cma pages are ordinary managed pages (mmsim has no CMA);
//   - meminfo's MemTotal (totalram_pages) need not be the sum of the
//     zones' managed pages: on the machine of ../shared/traces it stays at
//     24684084 kB while the Normal zone's managed pages grow from 131072 to
//     2162688 during the run. It is only checked to lie between the managed
//     and the present pages. SwapTotal gives SwapPages. meminfo may be nil:
//     no check, no swap.
//
// Kernel: mm/vmstat.c:zoneinfo_show_print(),
// mm/page_alloc.c:__setup_per_zone_wmarks(), setup_per_zone_lowmem_reserve(),
// zone_highsize(), calculate_min_free_kbytes().
func ConfigFromProcfs(zoneinfo, meminfo io.Reader, opts ...ProcfsOption) (Config, error) {
	var o procfsOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if zoneinfo == nil {
		return Config{}, fmt.Errorf("%w: zoneinfo: no reader", ErrInvalid)
	}
	nodes, err := parseZoneinfo(zoneinfo)
	if err != nil {
		return Config{}, err
	}
	nrCPUs, err := procfsCPUs(nodes)
	if err != nil {
		return Config{}, err
	}

	cfg := DefaultConfig()
	if o.seedSet {
		cfg.Seed = o.seed
	}
	cfg.CPUs = nrCPUs
	cfg.Nodes = make([]NodeConfig, len(nodes))
	for n, zs := range nodes {
		for _, z := range zs {
			if z.val[pzPresent] == 0 {
				continue // see the doc comment: unpopulated zones stay unlisted
			}
			cfg.Nodes[n].Zones = append(cfg.Nodes[n].Zones, ZoneConfig{
				Type:     z.typ,
				StartPFN: zone.PFN(z.val[pzStartPFN]),
				Spanned:  z.val[pzSpanned],
				Present:  z.val[pzPresent],
				Managed:  z.val[pzManaged],
			})
		}
	}
	pcpTrusted := len(nodes) == 1 || o.nodeCPUs != nil
	if o.nodeCPUs == nil {
		cfg.Nodes[0].CPUs = make([]int, nrCPUs)
		for i := range nrCPUs {
			cfg.Nodes[0].CPUs[i] = i
		}
	} else {
		for id, cpus := range o.nodeCPUs {
			if id < 0 || id >= len(nodes) {
				return Config{}, fmt.Errorf("%w: WithNodeCPUs: node %d: zoneinfo has nodes 0..%d", ErrInvalid, id, len(nodes)-1)
			}
			cfg.Nodes[id].CPUs = slices.Clone(cpus)
		}
	}

	var given procfsGiven
	if o.sysVM != nil {
		if given, err = applySysVM(o.sysVM, &cfg); err != nil {
			return Config{}, err
		}
	}
	if err := inferSysctl(nodes, &cfg, given, pcpTrusted); err != nil {
		return Config{}, err
	}
	if meminfo != nil {
		if err := applyMeminfo(meminfo, nodes, &cfg); err != nil {
			return Config{}, err
		}
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	if err := verifyProcfs(nodes, cfg, pcpTrusted); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// The numeric fields of a zone in zoneinfo.
const (
	pzBoost = iota
	pzMin
	pzLow
	pzHigh
	pzPromo
	pzSpanned
	pzPresent
	pzManaged
	pzCMA
	pzStartPFN
	nrPZ
)

var pzNames = [nrPZ]string{"boost", "min", "low", "high", "promo", "spanned", "present", "managed", "cma", "start_pfn"}

// procfsPCP is one "cpu: N" block of a zone's pagesets; -1 is a value the
// text did not give.
type procfsPCP struct {
	cpu, line               int
	batch, highMin, highMax int64
}

// procfsZone is one zone of zoneinfo; val[i] is -1 when the text has no
// such line, and at[i] the line number of the one it has.
type procfsZone struct {
	node       int
	typ        gfp.ZoneType
	line       int
	val        [nrPZ]int64
	at         [nrPZ]int
	protection []int64
	protLine   int
	pagesets   bool
	pcp        []procfsPCP
}

func (z *procfsZone) String() string { return fmt.Sprintf("Node %d, zone %s", z.node, z.typ) }

// unboosted is a watermark as the kernel set it, without the boost the
// zone had when the file was printed.
func (z *procfsZone) unboosted(i int) int64 { return z.val[i] - max(z.val[pzBoost], 0) }

func procfsZoneType(name string) (gfp.ZoneType, bool) {
	for t := gfp.ZoneType(0); int(t) < gfp.MaxNrZones; t++ {
		if t.String() == name {
			return t, true
		}
	}
	return 0, false
}

// parseZoneinfo reads /proc/zoneinfo into its nodes, each with all five
// zones in zone order, as the kernel prints them.
func parseZoneinfo(r io.Reader) ([][]*procfsZone, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var (
		nodes [][]*procfsZone
		z     *procfsZone
		pcp   *procfsPCP
		ln    int
	)
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: zoneinfo line %d: "+format, append([]any{ErrInvalid, ln}, args...)...)
	}
	number := func(key, s string) (int64, error) {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, bad("%s %q: not a number", key, s)
		}
		return v, nil
	}
	// sizes bounds the page counts and pfns of the layout, far above any
	// machine's, so that the inference's arithmetic cannot overflow.
	const sizes = 1 << 40
	size := func(key, s string) (int64, error) {
		v, err := number(key, s)
		if err == nil && (v < 0 || v >= sizes) {
			return 0, bad("%s %d: want 0..2^40", key, v)
		}
		return v, err
	}
	for sc.Scan() {
		ln++
		text := sc.Text()
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		if f[0] == "Node" {
			if len(f) != 4 || !strings.HasSuffix(f[1], ",") || f[2] != "zone" {
				return nil, bad("%q: want \"Node N, zone NAME\"", text)
			}
			id, err := strconv.Atoi(strings.TrimSuffix(f[1], ","))
			if err != nil || id < 0 {
				return nil, bad("%q: node %q is not a node number", text, strings.TrimSuffix(f[1], ","))
			}
			typ, ok := procfsZoneType(f[3])
			if !ok {
				return nil, bad("unknown zone %q: mmsim models the x86_64 zones DMA, DMA32, Normal, Movable, Device", f[3])
			}
			if z != nil {
				if err := z.complete(); err != nil {
					return nil, err
				}
			}
			switch {
			case len(nodes) > 0 && id == len(nodes)-1:
				if want := gfp.ZoneType(len(nodes[id])); int(want) >= gfp.MaxNrZones || typ != want {
					return nil, bad("Node %d, zone %s: want the node's zones once each, in zone order (DMA, DMA32, Normal, Movable, Device)", id, typ)
				}
			case id == len(nodes):
				if id > 0 && len(nodes[id-1]) != gfp.MaxNrZones {
					return nil, bad("node %d begins after %d of node %d's %d zones (truncated?)", id, len(nodes[id-1]), id-1, gfp.MaxNrZones)
				}
				if typ != gfp.ZoneDMA {
					return nil, bad("Node %d, zone %s: want the node's zones once each, in zone order (DMA, DMA32, Normal, Movable, Device)", id, typ)
				}
				nodes = append(nodes, nil)
			default:
				return nil, bad("node %d after node %d: want nodes 0, 1, ... in order", id, len(nodes)-1)
			}
			z = &procfsZone{node: id, typ: typ, line: ln}
			for i := range z.val {
				z.val[i] = -1
			}
			nodes[id] = append(nodes[id], z)
			pcp = nil
			continue
		}
		if z == nil {
			return nil, bad("%q: want a \"Node N, zone NAME\" line first", text)
		}
		switch {
		case len(f) == 2 && f[0] == "per-node" && f[1] == "stats":
		case len(f) == 1 && f[0] == "pagesets":
			z.pagesets = true
		case f[0] == "protection:":
			if z.protection != nil {
				return nil, bad("a second protection line in %s", z)
			}
			s := strings.Join(f[1:], "")
			if !strings.HasPrefix(s, "(") || !strings.HasSuffix(s, ")") {
				return nil, bad("%q: want \"protection: (N, N, N, N, N)\"", strings.TrimSpace(text))
			}
			parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(s, "("), ")"), ",")
			if len(parts) != gfp.MaxNrZones {
				return nil, bad("protection has %d entries: want %d, one per zone", len(parts), gfp.MaxNrZones)
			}
			z.protection = make([]int64, len(parts))
			for i, p := range parts {
				v, err := size(fmt.Sprintf("protection entry %d", i), p)
				if err != nil {
					return nil, err
				}
				z.protection[i] = v
			}
			z.protLine = ln
		case len(f) >= 3 && f[0] == "vm" && f[1] == "stats" && f[2] == "threshold:":
			if len(f) != 4 || pcp == nil {
				return nil, bad("%q: want \"vm stats threshold: N\" after a cpu's pageset", strings.TrimSpace(text))
			}
			if _, err := number("vm stats threshold", f[3]); err != nil {
				return nil, err
			}
		case len(f) == 3 && f[0] == "pages" && f[1] == "free":
			if _, err := number("pages free", f[2]); err != nil {
				return nil, err
			}
		case len(f) == 2:
			key := f[0]
			v, err := number(strings.TrimSuffix(key, ":"), f[1])
			if err != nil {
				return nil, err
			}
			switch key {
			case "boost", "min", "low", "high", "promo", "spanned", "present", "managed", "cma", "start_pfn:":
				i := slices.Index(pzNames[:], strings.TrimSuffix(key, ":"))
				if z.val[i] >= 0 {
					return nil, bad("a second %s line in %s", pzNames[i], z)
				}
				if _, err := size(pzNames[i], f[1]); err != nil {
					return nil, err
				}
				z.val[i], z.at[i] = v, ln
			case "cpu:":
				if !z.pagesets || v < 0 || v >= 8192 {
					return nil, bad("cpu %d: want 0..8191 (NR_CPUS), after the \"pagesets\" line", v)
				}
				z.pcp = append(z.pcp, procfsPCP{cpu: int(v), line: ln, batch: -1, highMin: -1, highMax: -1})
				pcp = &z.pcp[len(z.pcp)-1]
			case "count:", "high:", "batch:", "high_min:", "high_max:":
				if pcp == nil {
					return nil, bad("%q outside a cpu's pageset", strings.TrimSpace(text))
				}
				if _, err := size(strings.TrimSuffix(key, ":"), f[1]); err != nil {
					return nil, err
				}
				switch key {
				case "batch:":
					pcp.batch = v
				case "high_min:":
					pcp.highMin = v
				case "high_max:":
					pcp.highMax = v
				}
			case "node_unreclaimable:", "reserved_highatomic:", "free_highatomic:":
			default:
				if strings.HasSuffix(key, ":") {
					return nil, bad("unknown line %q", strings.TrimSpace(text))
				}
				// A counter: the node's and the zone's vmstat items.
			}
		default:
			return nil, bad("unrecognised line %q", strings.TrimSpace(text))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: zoneinfo line %d: %w", ErrInvalid, ln+1, err)
	}
	if z == nil {
		return nil, fmt.Errorf("%w: zoneinfo: empty (no \"Node N, zone NAME\" line)", ErrInvalid)
	}
	if err := z.complete(); err != nil {
		return nil, err
	}
	if last := len(nodes) - 1; len(nodes[last]) != gfp.MaxNrZones {
		return nil, fmt.Errorf("%w: zoneinfo line %d: node %d ends after %d of its %d zones (truncated?)",
			ErrInvalid, ln, last, len(nodes[last]), gfp.MaxNrZones)
	}
	return nodes, nil
}

// complete checks that the zone has every line the machine's layout needs.
func (z *procfsZone) complete() error {
	missing := func(what string) error {
		return fmt.Errorf("%w: zoneinfo line %d: %s has no %s line (truncated?)", ErrInvalid, z.line, z, what)
	}
	for _, i := range []int{pzMin, pzLow, pzHigh, pzSpanned, pzPresent, pzManaged} {
		if z.val[i] < 0 {
			return missing(pzNames[i])
		}
	}
	if z.protection == nil {
		return missing("protection")
	}
	if z.val[pzManaged] > z.val[pzPresent] || z.val[pzPresent] > z.val[pzSpanned] {
		return fmt.Errorf("%w: zoneinfo line %d: %s: want managed %d <= present %d <= spanned %d",
			ErrInvalid, z.at[pzManaged], z, z.val[pzManaged], z.val[pzPresent], z.val[pzSpanned])
	}
	if z.val[pzPresent] == 0 {
		return nil
	}
	if z.val[pzStartPFN] < 0 {
		return missing("start_pfn")
	}
	if len(z.pcp) == 0 {
		return missing("pagesets \"cpu:\"")
	}
	for _, p := range z.pcp {
		if p.batch < 0 {
			return fmt.Errorf("%w: zoneinfo line %d: %s: cpu %d has no batch line (truncated?)", ErrInvalid, p.line, z, p.cpu)
		}
	}
	return nil
}

// procfsCPUs returns the number of CPUs: every populated zone must list the
// same CPUs, 0..n-1, as a kernel with every possible CPU online does.
func procfsCPUs(nodes [][]*procfsZone) (int, error) {
	var ref *procfsZone
	for _, zs := range nodes {
		for _, z := range zs {
			if len(z.pcp) == 0 {
				continue
			}
			if ref == nil {
				ref = z
				for i, p := range z.pcp {
					if p.cpu != i {
						return 0, fmt.Errorf("%w: zoneinfo line %d: %s lists cpu %d where cpu %d belongs: mmsim's CPUs are 0..n-1, all online",
							ErrInvalid, p.line, z, p.cpu, i)
					}
				}
				continue
			}
			if len(z.pcp) != len(ref.pcp) {
				return 0, fmt.Errorf("%w: zoneinfo line %d: %s lists %d CPUs, %s %d",
					ErrInvalid, z.line, z, len(z.pcp), ref, len(ref.pcp))
			}
			for i, p := range z.pcp {
				if p.cpu != i {
					return 0, fmt.Errorf("%w: zoneinfo line %d: %s lists cpu %d where %s lists cpu %d",
						ErrInvalid, p.line, z, p.cpu, ref, i)
				}
			}
		}
	}
	if ref == nil {
		return 0, fmt.Errorf("%w: zoneinfo: no zone has present pages", ErrInvalid)
	}
	return len(ref.pcp), nil
}

// procfsGiven records the sysctls WithSysVM set, which are not inferred.
type procfsGiven struct {
	minFree, scale, ratio, highFraction bool
}

// applySysVM sets the Config fields of the sysctls a /proc/sys/vm dump
// names.
func applySysVM(r io.Reader, cfg *Config) (procfsGiven, error) {
	var given procfsGiven
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	ln := 0
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: sys_vm line %d: "+format, append([]any{ErrInvalid, ln}, args...)...)
	}
	seen := map[string]bool{}
	for sc.Scan() {
		ln++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		name, value, ok := strings.Cut(text, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return given, bad("%q: want \"name = value\"", text)
		}
		if seen[name] {
			return given, bad("a second %s line", name)
		}
		seen[name] = true
		num := func() (int64, error) {
			v, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return 0, bad("%s = %q: not a number", name, value)
			}
			return v, nil
		}
		toInt := func(dst *int) error {
			v, err := num()
			if err != nil {
				return err
			}
			if v < math.MinInt32 || v > math.MaxInt32 {
				return bad("%s = %d: out of the sysctl's int range", name, v)
			}
			*dst = int(v)
			return nil
		}
		s := &cfg.Sysctl
		var err error
		switch name {
		case "min_free_kbytes":
			var v int64
			v, err = num()
			// 0 pages_min: mmsim's MinFreeKbytes 0 means the boot
			// rule, and 1 kbyte gives the same 0 pages.
			s.MinFreeKbytes, given.minFree = max(v, 1), true
			if v < 0 {
				err = bad("min_free_kbytes = %d: want 0 or more", v)
			}
		case "watermark_scale_factor":
			err = toInt(&s.WatermarkScaleFactor)
			given.scale = true
		case "watermark_boost_factor":
			err = toInt(&s.WatermarkBoostFactor)
		case "lowmem_reserve_ratio":
			f := strings.Fields(value)
			if len(f) != gfp.MaxNrZones {
				return given, bad("lowmem_reserve_ratio has %d entries: want %d, one per zone", len(f), gfp.MaxNrZones)
			}
			for i, e := range f {
				v, perr := strconv.Atoi(e)
				if perr != nil {
					return given, bad("lowmem_reserve_ratio entry %d %q: not a number", i, e)
				}
				// The kernel's handler stores a ratio below 1 as 0.
				s.LowmemReserveRatio[i] = max(v, 0)
			}
			given.ratio = true
		case "percpu_pagelist_high_fraction":
			err = toInt(&s.PercpuPagelistHighFraction)
			given.highFraction = true
		case "dirty_ratio":
			err = toInt(&s.DirtyRatio)
		case "dirty_background_ratio":
			err = toInt(&s.DirtyBackgroundRatio)
		case "overcommit_ratio":
			err = toInt(&s.OvercommitRatio)
		case "overcommit_memory":
			err = toInt(&s.OvercommitMemory)
		case "overcommit_kbytes":
			s.OvercommitKbytes, err = num()
		case "swappiness":
			err = toInt(&cfg.Swappiness)
		case "panic_on_oom":
			err = toInt(&cfg.PanicOnOOM)
		case "oom_kill_allocating_task":
			var v int64
			v, err = num()
			cfg.OOMKillAllocatingTask = v != 0
		case "compaction_proactiveness":
			err = toInt(&cfg.CompactionProactiveness)
		}
		if err != nil {
			return given, err
		}
	}
	if err := sc.Err(); err != nil {
		return given, fmt.Errorf("%w: sys_vm line %d: %w", ErrInvalid, ln+1, err)
	}
	return given, nil
}

// applyMeminfo checks MemTotal against the zones and sets SwapPages from
// SwapTotal.
func applyMeminfo(r io.Reader, nodes [][]*procfsZone, cfg *Config) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	ln := 0
	kb := map[string]int64{}
	for sc.Scan() {
		ln++
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		name, rest, ok := strings.Cut(text, ":")
		f := strings.Fields(rest)
		if !ok || name == "" || len(f) == 0 || len(f) > 2 || (len(f) == 2 && f[1] != "kB") {
			return fmt.Errorf("%w: meminfo line %d: %q: want \"Name: N kB\"", ErrInvalid, ln, text)
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return fmt.Errorf("%w: meminfo line %d: %s %q: not a number", ErrInvalid, ln, name, f[0])
		}
		kb[name] = v
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: meminfo line %d: %w", ErrInvalid, ln+1, err)
	}
	for _, name := range []string{"MemTotal", "SwapTotal"} {
		if _, ok := kb[name]; !ok {
			return fmt.Errorf("%w: meminfo has no %s line", ErrInvalid, name)
		}
	}
	var managed, present int64
	for _, zs := range nodes {
		for _, z := range zs {
			managed += z.val[pzManaged]
			present += z.val[pzPresent]
		}
	}
	const kbPerPage = zone.PageSize >> 10
	if total := kb["MemTotal"]; total < managed*kbPerPage || total > present*kbPerPage {
		return fmt.Errorf("%w: meminfo MemTotal %d kB is outside the zones' managed %d kB .. present %d kB: not the machine of the zoneinfo",
			ErrInvalid, total, managed*kbPerPage, present*kbPerPage)
	}
	if kb["SwapTotal"] < 0 {
		return fmt.Errorf("%w: meminfo SwapTotal %d kB: want 0 or more", ErrInvalid, kb["SwapTotal"])
	}
	cfg.SwapPages = kb["SwapTotal"] / kbPerPage
	return nil
}
