package gfp_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
)

// TestZone walks all 16 combinations of the zone modifiers. At most one of
// DMA, DMA32 and HIGHMEM may be set, and only MOVABLE|HIGHMEM reaches
// ZONE_MOVABLE; bad rows are errors, decoding as the empty slot (ZONE_DMA) as
// a kernel without CONFIG_DEBUG_VM would.
//
// Reference: include/linux/gfp.h:gfp_zone(), GFP_ZONE_TABLE, GFP_ZONE_BAD.
func TestZone(t *testing.T) {
	const bad = -1
	want := [16]gfp.ZoneType{
		0x0: gfp.ZoneNormal,
		0x1: gfp.ZoneDMA,
		0x2: gfp.ZoneNormal, // OPT_ZONE_HIGHMEM is ZONE_NORMAL without CONFIG_HIGHMEM
		0x3: bad,
		0x4: gfp.ZoneDMA32,
		0x5: bad, 0x6: bad, 0x7: bad,
		0x8: gfp.ZoneNormal,
		0x9: gfp.ZoneDMA,
		0xa: gfp.ZoneMovable,
		0xb: bad,
		0xc: gfp.ZoneDMA32,
		0xd: bad, 0xe: bad, 0xf: bad,
	}
	for bits := range gfp.Mask(16) {
		t.Run(fmt.Sprintf("zone bits %#x (%s)", uint32(bits), bits), func(t *testing.T) {
			// The other bits of the mask never matter.
			for _, other := range []gfp.Mask{0, gfp.Kernel, gfp.User | gfp.Comp | gfp.Zero, gfp.BitsMask &^ gfp.ZoneMask} {
				z, err := (bits | other).Zone()
				if want[bits] == bad {
					require.ErrorIs(t, err, gfp.ErrBadZone)
					require.ErrorContains(t, err, "at most one of __GFP_DMA, __GFP_DMA32 and __GFP_HIGHMEM")
					require.Equal(t, gfp.ZoneDMA, z, "the empty table slot decodes as 0")
					continue
				}
				require.NoError(t, err)
				require.Equal(t, want[bits], z)
			}
		})
	}

	t.Run("the error names the clashing bits in the kernel's words", func(t *testing.T) {
		_, err := (gfp.Kernel | gfp.DMA | gfp.DMA32).Zone()
		require.EqualError(t, err, "gfp: invalid zone modifier combination: __GFP_DMA|__GFP_DMA32 "+
			"in mask 0xcc5(GFP_KERNEL|GFP_DMA|GFP_DMA32): at most one of __GFP_DMA, __GFP_DMA32 and __GFP_HIGHMEM may be set")
	})

	t.Run("the masks people use", func(t *testing.T) {
		for _, tc := range []struct {
			mask gfp.Mask
			want gfp.ZoneType
		}{
			{gfp.Kernel, gfp.ZoneNormal},
			{gfp.Kernel | gfp.Movable, gfp.ZoneNormal},
			{gfp.HighUser, gfp.ZoneNormal},
			{gfp.HighUserMovable, gfp.ZoneMovable},
			{gfp.TransHuge, gfp.ZoneMovable},
			{gfp.Kernel | gfp.DMA32, gfp.ZoneDMA32},
			{gfp.Atomic | gfp.DMA, gfp.ZoneDMA},
		} {
			z, err := tc.mask.Zone()
			require.NoError(t, err)
			require.Equal(t, tc.want, z, "%s", tc.mask)
		}
	})
}

// TestZonelist pins gfp_zonelist: __GFP_THISNODE selects the node's own
// zones only (CONFIG_NUMA=y).
//
// Reference: include/linux/gfp.h:gfp_zonelist().
func TestZonelist(t *testing.T) {
	require.Equal(t, gfp.ZonelistFallback, gfp.Kernel.Zonelist())
	require.Equal(t, gfp.ZonelistNoFallback, (gfp.TransHuge | gfp.ThisNode).Zonelist())
	require.Equal(t, gfp.Zonelist(0), gfp.ZonelistFallback)
	require.Equal(t, gfp.Zonelist(1), gfp.ZonelistNoFallback)
}

// TestZoneTypeString pins the zone names /proc/zoneinfo prints and the
// indices the tracepoints print.
//
// Reference: mm/page_alloc.c:zone_names[], include/linux/mmzone.h:enum zone_type.
func TestZoneTypeString(t *testing.T) {
	require.Equal(t, 5, gfp.MaxNrZones)
	for i, want := range []string{"DMA", "DMA32", "Normal", "Movable", "Device"} {
		require.Equal(t, want, gfp.ZoneType(i).String())
	}
	require.Equal(t, gfp.ZoneType(2), gfp.ZoneNormal)
	require.Equal(t, "ZoneType(5)", gfp.ZoneType(5).String())
	require.Equal(t, "ZoneType(-1)", gfp.ZoneType(-1).String())
}

// TestMigratetype pins gfp_migratetype and the names of /proc/pagetypeinfo.
//
// Reference: include/linux/gfp.h:gfp_migratetype(), mm/page_alloc.c:migratetype_names[].
func TestMigratetype(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mask     gfp.Mask
		want     gfp.Migratetype
		conflict bool
	}{
		{"GFP_KERNEL is unmovable", gfp.Kernel, gfp.MigrateUnmovable, false},
		{"GFP_HIGHUSER_MOVABLE is movable", gfp.HighUserMovable, gfp.MigrateMovable, false},
		{"GFP_KERNEL|__GFP_MOVABLE is movable but stays in Normal", gfp.Kernel | gfp.Movable, gfp.MigrateMovable, false},
		{"__GFP_RECLAIMABLE is reclaimable", gfp.Kernel | gfp.Reclaimable, gfp.MigrateReclaimable, false},
		{"both bits give 3, HighAtomic's value, with VM_WARN_ON", gfp.Movable | gfp.Reclaimable, gfp.MigrateHighAtomic, true},
		{"zone bits do not matter", gfp.DMA | gfp.HighMem | gfp.DMA32, gfp.MigrateUnmovable, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.mask.Migratetype())
			require.Equal(t, tc.conflict, tc.mask.MobilityConflict())
		})
	}
	require.Equal(t, 3, gfp.MigratePCPTypes)
	require.Equal(t, 5, gfp.MigrateTypes)
	for i, want := range []string{"Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"} {
		require.Equal(t, want, gfp.Migratetype(i).String())
	}
	require.Equal(t, "Migratetype(5)", gfp.Migratetype(5).String())
}

// TestNested pins gfp_nested_mask: keep 0x1000ce0, add 0x92000.
//
// Reference: include/linux/gfp.h:gfp_nested_mask().
func TestNested(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   gfp.Mask
		want gfp.Mask
	}{
		{"GFP_KERNEL", gfp.Kernel, 0x92cc0},
		{"GFP_NOWAIT", gfp.NoWait, 0x92800},
		{"zero", 0, 0x92000},
		{"GFP_NOFS keeps the NOFS constraint", gfp.NoFS, 0x92c40},
		{"GFP_NOIO keeps the NOIO constraint", gfp.NoIO, 0x92c00},
		{"GFP_ATOMIC keeps __GFP_HIGH", gfp.Atomic, 0x92820},
		{"__GFP_NOLOCKDEP survives", gfp.NoFS | gfp.NoLockdep, 0x1092c40},
		{"NOFAIL, ZERO, COMP, ACCOUNT and the zone are dropped",
			gfp.KernelAccount | gfp.NoFail | gfp.Zero | gfp.Comp | gfp.DMA32, 0x92cc0},
		{"MEMALLOC is dropped and NOMEMALLOC added", gfp.Atomic | gfp.Memalloc, 0x92820},
		{"RETRY_MAYFAIL, HARDWALL, THISNODE, WRITE, mobility are dropped",
			gfp.HighUserMovable | gfp.RetryMayFail | gfp.ThisNode | gfp.Write | gfp.Reclaimable, 0x92cc0},
		{"invalid bits are dropped", 0xfc000200 | gfp.Kernel, 0x92cc0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.Nested()
			require.Equal(t, tc.want, got, "got %#x (%s)", uint32(got), got)
		})
	}
	require.Equal(t, "GFP_KERNEL|__GFP_NOWARN|__GFP_NORETRY|__GFP_NOMEMALLOC", gfp.Kernel.Nested().String())
}
