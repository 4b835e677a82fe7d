package gfp

import "strconv"

// Migratetype is a page mobility class: which free lists a page comes from
// and which pageblocks it groups with. The values are those of an x86_64
// kernel without CONFIG_CMA and with CONFIG_MEMORY_ISOLATION, as the
// migratetype= field of kmem:mm_page_alloc prints them.
//
// Kernel: include/linux/mmzone.h:enum migratetype.
type Migratetype int

// The migrate types.
//
// Kernel: include/linux/mmzone.h:enum migratetype.
const (
	MigrateUnmovable   Migratetype = iota // kernel allocations
	MigrateMovable                        // user pages, page cache: migratable
	MigrateReclaimable                    // reclaimable slab (shrinkers free it)
	MigrateHighAtomic                     // the high-order atomic reserve
	MigrateIsolate                        // isolated for migration or offlining; never allocated from
)

const (
	// MigratePCPTypes is the number of types kept on the per-cpu lists;
	// MigrateHighAtomic shares its value.
	// Kernel: include/linux/mmzone.h:MIGRATE_PCPTYPES.
	MigratePCPTypes = int(MigrateHighAtomic)
	// MigrateTypes is the number of migrate types.
	// Kernel: include/linux/mmzone.h:MIGRATE_TYPES.
	MigrateTypes = int(MigrateIsolate) + 1
)

// migratetypeNames holds the names /proc/pagetypeinfo prints.
//
// Kernel: mm/page_alloc.c:migratetype_names[].
var migratetypeNames = [MigrateTypes]string{"Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"}

// String returns the name /proc/pagetypeinfo prints for the type.
//
// Kernel: mm/page_alloc.c:migratetype_names[].
func (mt Migratetype) String() string {
	if mt < 0 || int(mt) >= MigrateTypes {
		return "Migratetype(" + strconv.Itoa(int(mt)) + ")"
	}
	return migratetypeNames[mt]
}

// Migratetype returns the migrate type the mask asks for: its two mobility
// bits shifted down. Both bits together give 3, MigrateHighAtomic's value,
// where the kernel also fires VM_WARN_ON; see MobilityConflict. The
// allocator, not this function, applies page_group_by_mobility_disabled.
//
// Kernel: include/linux/gfp.h:gfp_migratetype().
func (m Mask) Migratetype() Migratetype {
	return Migratetype((m & MovableMask) >> MovableShift)
}

// MobilityConflict reports whether the mask has both __GFP_MOVABLE and
// __GFP_RECLAIMABLE, the combination on which gfp_migratetype() fires
// VM_WARN_ON.
//
// Kernel: include/linux/gfp.h:gfp_migratetype() (VM_WARN_ON).
func (m Mask) MobilityConflict() bool { return m&MovableMask == MovableMask }
