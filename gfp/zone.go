package gfp

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// ZoneType is a zone index: enum zone_type of an x86_64 build with
// CONFIG_ZONE_DMA, CONFIG_ZONE_DMA32 and CONFIG_ZONE_DEVICE, and without
// CONFIG_HIGHMEM. Tracepoints and /proc print these numbers.
//
// Kernel: include/linux/mmzone.h:enum zone_type.
type ZoneType int

// The zone indices. x86_64 has no ZONE_HIGHMEM, so __GFP_HIGHMEM alone selects
// ZoneNormal, as it does there.
//
// Kernel: include/linux/mmzone.h:enum zone_type.
const (
	ZoneDMA     ZoneType = iota // below 16 MiB
	ZoneDMA32                   // below 4 GiB
	ZoneNormal                  // the rest of RAM
	ZoneMovable                 // only movable pages (kernelcore=/movable_node)
	ZoneDevice                  // device memory, never handed out by the buddy allocator
)

// MaxNrZones is the number of zone types.
//
// Kernel: include/linux/mmzone.h:__MAX_NR_ZONES (MAX_NR_ZONES).
const MaxNrZones = int(ZoneDevice) + 1

// zoneNames holds the kernel's zone names, as /proc/zoneinfo prints them.
//
// Kernel: mm/page_alloc.c:zone_names[].
var zoneNames = [MaxNrZones]string{"DMA", "DMA32", "Normal", "Movable", "Device"}

// String returns the kernel's name of the zone ("DMA", "DMA32", "Normal",
// "Movable", "Device").
//
// Kernel: mm/page_alloc.c:zone_names[].
func (z ZoneType) String() string {
	if z < 0 || int(z) >= MaxNrZones {
		return "ZoneType(" + strconv.Itoa(int(z)) + ")"
	}
	return zoneNames[z]
}

// ErrBadZone is wrapped by the error Zone returns for a combination of zone
// modifiers the kernel rejects.
var ErrBadZone = errors.New("gfp: invalid zone modifier combination")

// zonesShift is the width of one gfp_zone table entry. ZONES_SHIFT is 3 for
// five zones, but with CONFIG_ZONE_DEVICE and at most five zones the kernel
// packs entries in 2 bits, ZONE_DEVICE not being a valid GFP zone.
//
// Kernel: include/linux/gfp.h:GFP_ZONES_SHIFT.
const zonesShift = 2

// zoneTable is GFP_ZONE_TABLE: the zone of each of the 16 combinations of the
// ZoneMask bits, zonesShift bits per entry, built exactly as the kernel's
// macro is (the OPT_ZONE_* of this config: DMA, DMA32, and HIGHMEM as NORMAL).
// The slots it does not name stay 0 and are marked in zoneBad.
//
// Kernel: include/linux/gfp.h:GFP_ZONE_TABLE.
const zoneTable = uint64(ZoneNormal)<<(0*zonesShift) |
	uint64(ZoneDMA)<<(DMA*zonesShift) |
	uint64(ZoneNormal)<<(HighMem*zonesShift) | // OPT_ZONE_HIGHMEM
	uint64(ZoneDMA32)<<(DMA32*zonesShift) |
	uint64(ZoneNormal)<<(Movable*zonesShift) |
	uint64(ZoneDMA)<<((Movable|DMA)*zonesShift) |
	uint64(ZoneMovable)<<((Movable|HighMem)*zonesShift) |
	uint64(ZoneDMA32)<<((Movable|DMA32)*zonesShift)

// zoneBad is GFP_ZONE_BAD: one bit per illegal combination of zone modifiers
// (more than one of DMA, DMA32 and HIGHMEM).
//
// Kernel: include/linux/gfp.h:GFP_ZONE_BAD.
const zoneBad = 1<<(DMA|HighMem) |
	1<<(DMA|DMA32) |
	1<<(DMA32|HighMem) |
	1<<(DMA|DMA32|HighMem) |
	1<<(Movable|HighMem|DMA) |
	1<<(Movable|DMA32|DMA) |
	1<<(Movable|DMA32|HighMem) |
	1<<(Movable|DMA32|DMA|HighMem)

// bitNames prints each bit of m by its single-bit name (__GFP_DMA, never the
// GFP_DMA the greedy table walk prints).
func bitNames(m Mask) string {
	var s []string
	for _, n := range names {
		if bits.OnesCount32(uint32(n.mask)) == 1 && m&n.mask != 0 && strings.HasPrefix(n.name, "__") {
			s = append(s, n.name)
		}
	}
	return strings.Join(s, "|")
}

// Zonelist selects one of a node's zonelists.
//
// Kernel: include/linux/mmzone.h:ZONELIST_FALLBACK, ZONELIST_NOFALLBACK.
type Zonelist int

const (
	// ZonelistFallback lists the zones of every node, nearest first.
	ZonelistFallback Zonelist = iota
	// ZonelistNoFallback lists the node's own zones only (__GFP_THISNODE).
	ZonelistNoFallback
)

// Zonelist returns the zonelist an allocation with the mask walks: the
// node's own zones only for __GFP_THISNODE (mmsim models CONFIG_NUMA=y),
// every node's by distance otherwise.
//
// Kernel: include/linux/gfp.h:gfp_zonelist().
func (m Mask) Zonelist() Zonelist {
	// ZONELIST_NOFALLBACK is 1: the bit itself, without a branch.
	return Zonelist(m & ThisNode >> bitThisNode)
}

// Zone returns the highest zone the mask may allocate from: gfp_zone(). The
// allocator walks the zonelist from there downwards.
//
// For an illegal combination of zone modifiers (say __GFP_DMA|__GFP_DMA32) it
// returns an error wrapping ErrBadZone, where a CONFIG_DEBUG_VM kernel hits
// VM_BUG_ON, together with the zone a kernel without CONFIG_DEBUG_VM would
// use: the empty table slot, ZoneDMA.
//
// Kernel: include/linux/gfp.h:gfp_zone().
func (m Mask) Zone() (ZoneType, error) {
	bit := m & ZoneMask
	z := ZoneType(zoneTable >> (uint(bit) * zonesShift) & (1<<zonesShift - 1))
	if zoneBad>>bit&1 != 0 {
		return z, fmt.Errorf("%w: %s in mask %s: at most one of "+
			"__GFP_DMA, __GFP_DMA32 and __GFP_HIGHMEM may be set",
			ErrBadZone, bitNames(bit), m.Mode())
	}
	return z, nil
}
