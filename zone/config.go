package zone

import (
	"errors"
	"fmt"
	"math"

	"github.com/mmsim/mmsim/gfp"
)

// ZoneConfig describes one zone of a node: its pfn span and sizes. Present
// of the span's pages exist, and the others are holes where a PC has them
// (presentRuns): below 1 MiB for a span that starts there, else at the
// span's top. Of the present pages, the last Managed are handed to the
// buddy allocator at boot and the first Present-Managed stay reserved
// (the kernel image, the memmap, firmware), as memblock leaves them.
//
// Kernel: include/linux/mmzone.h:struct zone (zone_start_pfn,
// spanned_pages, present_pages, managed_pages).
type ZoneConfig struct {
	Type     gfp.ZoneType
	StartPFN PFN
	Spanned  int64
	Present  int64
	Managed  int64
}

// isaEndPFN is the first pfn above x86's legacy hole, at 1 MiB.
//
// Kernel: arch/x86/include/asm/e820/types.h:ISA_END_ADDRESS.
const isaEndPFN PFN = 0x100000 >> PageShift

// presentRuns returns the runs of zc's present pages, in pfn order. The
// missing pages are placed where a PC's firmware leaves them: in a span
// that starts below 1 MiB, just below it, from the top of the ISA hole
// down (the EBDA below 640 KiB and the BIOS areas above, e820-reserved),
// as far as they reach towards the span's start; any others (the PCI hole
// below 4 GiB, the end of a node's memory) at the span's top. The
// DefaultConfig's DMA zone (pfn 1-4095, 3998 present) so gets a PC's
// layout: pfns 0x9f-0xff missing, the low 158 pages reserved, and
// 0x100-0xfff managed, which boot as blocks of order 8, 9 and 10.
//
// Kernel: arch/x86/include/asm/e820/types.h (ISA_START_ADDRESS,
// ISA_END_ADDRESS), arch/x86/kernel/ebda.c:reserve_bios_regions().
func presentRuns(zc ZoneConfig) []pfnRange {
	start, end := zc.StartPFN, zc.StartPFN+PFN(zc.Spanned)
	hole := PFN(zc.Spanned - zc.Present)
	var runs []pfnRange
	if start < isaEndPFN && hole > 0 && end > isaEndPFN {
		low := min(hole, isaEndPFN-start)
		if start < isaEndPFN-low {
			runs = append(runs, pfnRange{start, isaEndPFN - low})
		}
		start, hole = isaEndPFN, hole-low
	}
	if start < end-hole {
		runs = append(runs, pfnRange{start, end - hole})
	}
	return runs
}

// managedRuns returns the runs of the last managed pages of present.
func managedRuns(present []pfnRange, managed int64) []pfnRange {
	var runs []pfnRange
	for i := len(present) - 1; i >= 0 && managed > 0; i-- {
		r := present[i]
		r.start = max(r.start, r.end-PFN(managed))
		managed -= int64(r.end - r.start)
		runs = append([]pfnRange{r}, runs...)
	}
	return runs
}

// NodeConfig describes one NUMA node: its populated zones, in zone order,
// and the simulated CPUs that belong to it. Zones it does not list exist
// empty, as the kernel prints them.
//
// Kernel: include/linux/mmzone.h:struct pglist_data.
type NodeConfig struct {
	Zones []ZoneConfig
	CPUs  []int
}

// Sysctl holds the vm sysctls that shape allocation.
//
// Kernel: mm/page_alloc.c (min_free_kbytes, watermark_scale_factor,
// watermark_boost_factor, lowmem_reserve_ratio,
// percpu_pagelist_high_fraction).
type Sysctl struct {
	// MinFreeKbytes is vm.min_free_kbytes; 0 asks for the kernel's boot
	// rule, clamp(int_sqrt(lowmem_kbytes*16), 128, 262144).
	MinFreeKbytes int64
	// WatermarkScaleFactor is vm.watermark_scale_factor (1..3000,
	// default 10: 0.1% of a zone between watermarks).
	WatermarkScaleFactor int
	// WatermarkBoostFactor is vm.watermark_boost_factor (default 15000; 0
	// disables boosting).
	WatermarkBoostFactor int
	// LowmemReserveRatio is vm.lowmem_reserve_ratio, per zone type
	// (default 256 256 32 0 0; 0 means no reserve).
	LowmemReserveRatio [gfp.MaxNrZones]int
	// PercpuPagelistHighFraction is vm.percpu_pagelist_high_fraction (0,
	// the default, or at least 8).
	PercpuPagelistHighFraction int
	// DirtyRatio and DirtyBackgroundRatio are vm.dirty_ratio and
	// vm.dirty_background_ratio, in percent (defaults 20 and 10).
	DirtyRatio, DirtyBackgroundRatio int
	// OvercommitRatio is vm.overcommit_ratio, in percent (default 50).
	OvercommitRatio int
	// OvercommitMemory is vm.overcommit_memory: 0 (heuristic, the
	// default), 1 (always) or 2 (never: strict commit accounting).
	OvercommitMemory int
	// OvercommitKbytes is vm.overcommit_kbytes: when not 0, the commit
	// limit's RAM part instead of OvercommitRatio.
	OvercommitKbytes int64
}

// DefaultSysctl returns the kernel's defaults.
//
// Kernel: mm/page_alloc.c (the sysctls' initialisers).
func DefaultSysctl() Sysctl {
	return Sysctl{
		WatermarkScaleFactor: 10,
		WatermarkBoostFactor: 15000,
		LowmemReserveRatio:   [gfp.MaxNrZones]int{256, 256, 32, 0, 0},
		DirtyRatio:           20,
		DirtyBackgroundRatio: 10,
		OvercommitRatio:      50,
	}
}

// Config describes the machine an Allocator manages.
type Config struct {
	Nodes  []NodeConfig
	NrCPUs int
	Sysctl Sysctl
}

// ErrConfig is wrapped by every error Validate returns.
var ErrConfig = errors.New("zone: invalid machine configuration")

// maxPFN bounds the simulated physical address space: 2^46 bytes, the x86_64
// four-level paging limit.
//
// Kernel: arch/x86/include/asm/sparsemem.h:MAX_PHYSMEM_BITS (46).
const maxPFN = PFN(1) << (46 - PageShift)

// Validate checks the configuration and returns an error listing every
// invalid field, or nil.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	if c.NrCPUs < 1 || c.NrCPUs > 8192 {
		bad("NrCPUs is %d: want 1..8192 (NR_CPUS)", c.NrCPUs)
	}
	if len(c.Nodes) == 0 || len(c.Nodes) > 64 {
		bad("%d nodes: want 1..64", len(c.Nodes))
	}
	cpuNode := map[int]int{}
	var prevEnd PFN
	pages := int64(0)
	for ni, n := range c.Nodes {
		for _, cpu := range n.CPUs {
			if cpu < 0 || cpu >= c.NrCPUs {
				bad("Nodes[%d].CPUs has CPU %d: want 0..%d", ni, cpu, c.NrCPUs-1)
			} else if other, dup := cpuNode[cpu]; dup {
				bad("CPU %d is in Nodes[%d] and Nodes[%d]", cpu, other, ni)
			} else {
				cpuNode[cpu] = ni
			}
		}
		prevType := gfp.ZoneType(-1)
		for zi, z := range n.Zones {
			where := fmt.Sprintf("Nodes[%d].Zones[%d] (%s)", ni, zi, z.Type)
			if z.Type < 0 || int(z.Type) >= gfp.MaxNrZones {
				bad("Nodes[%d].Zones[%d].Type is %d: not a zone type", ni, zi, int(z.Type))
				continue
			}
			if z.Type == gfp.ZoneDevice {
				bad("%s: ZONE_DEVICE memory is never handed to the buddy allocator", where)
			}
			if z.Type <= prevType {
				bad("%s: zones must be listed once each, in zone order", where)
			}
			prevType = z.Type
			if z.Spanned <= 0 || z.Present < 0 || z.Managed < 0 {
				bad("%s: spanned %d, present %d, managed %d: want spanned > 0, the others >= 0",
					where, z.Spanned, z.Present, z.Managed)
				continue
			}
			if z.Present > z.Spanned || z.Managed > z.Present {
				bad("%s: want managed %d <= present %d <= spanned %d", where, z.Managed, z.Present, z.Spanned)
			}
			end := z.StartPFN + PFN(z.Spanned)
			if end > maxPFN || end < z.StartPFN {
				bad("%s: span ends at pfn %#x, beyond the 46-bit physical address space", where, uint64(end))
				continue
			}
			if z.StartPFN == 0 && z.Managed == z.Present && z.Present > 0 {
				bad("%s: pfn 0 would be managed: x86 reserves the first page (and the zero Page names pfn 0); "+
					"start at pfn 1 or keep a reserved page", where)
			}
			if z.StartPFN < prevEnd {
				bad("%s: starts at pfn %#x, inside the previous zone (which ends at %#x)",
					where, uint64(z.StartPFN), uint64(prevEnd))
			}
			if z.Spanned > 1<<30 {
				bad("%s: %d pages is more than one simulated zone may span (4 TiB)", where, z.Spanned)
			}
			prevEnd = end
			pages += z.Managed
		}
	}
	if len(cpuNode) != c.NrCPUs && c.NrCPUs >= 1 && len(errs) == 0 {
		bad("%d of %d CPUs belong to no node", c.NrCPUs-len(cpuNode), c.NrCPUs)
	}
	if pages == 0 && len(errs) == 0 {
		bad("no zone has managed pages: nothing to allocate from")
	}
	s := c.Sysctl
	if s.MinFreeKbytes < 0 || s.MinFreeKbytes > math.MaxInt32 {
		bad("Sysctl.MinFreeKbytes is %d: want 0 (the boot rule) to %d (an int, as the kernel's)", s.MinFreeKbytes, math.MaxInt32)
	}
	// The kernel's other int sysctls cannot exceed INT_MAX either.
	for _, v := range []struct {
		name string
		v    int
	}{
		{"WatermarkBoostFactor", s.WatermarkBoostFactor},
		{"PercpuPagelistHighFraction", s.PercpuPagelistHighFraction},
		{"OvercommitRatio", s.OvercommitRatio},
	} {
		if v.v > math.MaxInt32 {
			bad("Sysctl.%s is %d: want at most %d (an int, as the kernel's)", v.name, v.v, math.MaxInt32)
		}
	}
	if s.WatermarkScaleFactor < 1 || s.WatermarkScaleFactor > 3000 {
		bad("Sysctl.WatermarkScaleFactor is %d: want 1..3000", s.WatermarkScaleFactor)
	}
	if s.WatermarkBoostFactor < 0 {
		bad("Sysctl.WatermarkBoostFactor is %d: want 0 or more", s.WatermarkBoostFactor)
	}
	for i, r := range s.LowmemReserveRatio {
		if r < 0 || r > math.MaxInt32 {
			bad("Sysctl.LowmemReserveRatio[%d] (%s) is %d: want 0 to %d (an int, as the kernel's)", i, gfp.ZoneType(i), r, math.MaxInt32)
		}
	}
	if s.OvercommitRatio < 0 {
		bad("Sysctl.OvercommitRatio is %d: want 0 or more", s.OvercommitRatio)
	}
	if s.OvercommitMemory < 0 || s.OvercommitMemory > 2 {
		bad("Sysctl.OvercommitMemory is %d: want 0, 1 or 2", s.OvercommitMemory)
	}
	if s.OvercommitKbytes < 0 {
		bad("Sysctl.OvercommitKbytes is %d: want 0 or more", s.OvercommitKbytes)
	}
	if s.DirtyRatio < 0 || s.DirtyRatio > 100 {
		bad("Sysctl.DirtyRatio is %d: want 0..100", s.DirtyRatio)
	}
	if s.DirtyBackgroundRatio < 0 || s.DirtyBackgroundRatio > 100 {
		bad("Sysctl.DirtyBackgroundRatio is %d: want 0..100", s.DirtyBackgroundRatio)
	}
	if f := s.PercpuPagelistHighFraction; f != 0 && f < minPercpuPagelistHighFraction {
		bad("Sysctl.PercpuPagelistHighFraction is %d: want 0 or at least %d", f, minPercpuPagelistHighFraction)
	}
	return errors.Join(errs...)
}
