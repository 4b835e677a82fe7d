// Package gfp models gfp_t, the "get free pages" flags every kernel
// allocation takes: the flag bits with the kernel's values, the composites
// (GFP_KERNEL, GFP_NOFS, …), the masks the allocator picks them apart with,
// the zone and migratetype a mask selects, gfp_nested_mask, and the printed
// form the kernel's tracepoints and warn_alloc use, with a parser for it.
//
// It is a leaf: pure values and functions, no imports from the project, no
// state. Everything here is exact to Linux 7.2 (include/linux/gfp_types.h,
// include/linux/gfp.h, mm/internal.h, include/trace/events/mmflags.h).
//
// # The modelled configuration
//
// Optional GFP bits exist only when their config option is on, and every bit
// after the first optional one moves with the config. mmsim models an x86_64
// kernel (CONFIG_ZONE_DMA, CONFIG_ZONE_DMA32, CONFIG_ZONE_DEVICE, no HIGHMEM,
// no KASAN_HW_TAGS, CONFIG_SLAB_OBJ_EXT) built with CONFIG_LOCKDEP=y, because
// it has a lockdep of its own for which __GFP_NOLOCKDEP must be a real bit:
//
//	__GFP_NOLOCKDEP   0x1000000 (bit 24)
//	__GFP_NO_OBJ_EXT  0x2000000 (bit 25)
//	__GFP_BITS_SHIFT  26, __GFP_BITS_MASK 0x3ffffff
//
// A lockdep-off kernel — most distribution kernels, and the 6.18 machine the
// real traces in ../shared/traces come from — has no NOLOCKDEP bit
// (__GFP_NOLOCKDEP is 0 there), puts __GFP_NO_OBJ_EXT at 0x1000000 and has
// __GFP_BITS_SHIFT 25. Bits 0–23 are identical in every configuration, and so
// is everything those kernels print for masks that stay below 0x1000000. The
// masks built from NOLOCKDEP or the shift follow the lockdep layout:
//
//	GFP_RECLAIM_MASK       0x10bece0 (lockdep off: 0xbece0)
//	GFP_BOOT_MASK          0x3fff33f (0x1fff33f)
//	GFP_SLAB_BUG_MASK      0xfc000006 (0xfe000006)
//	GFP_VMALLOC_SUPPORTED  0x151ede0 (0x51ede0)
//	gfp_nested_mask keeps  0x1000ce0 (0xce0)
//
// # Printing
//
// String prints what the tracepoints print (show_gfp_flags: "none" for 0),
// Names what printk's %pGg prints ("" for 0), and Mode the "%#x(%pGg)" form
// warn_alloc and the OOM report embed. All three walk the kernel's name table
// (composites first, then single bits in bit order, as since v6.15) greedily,
// and print leftover bits as one lowercase hex token.
//
// # Kernel → Go
//
//	gfp_t                               Mask
//	___GFP_*_BIT                        unexported bit numbers
//	__GFP_DMA … __GFP_NO_OBJ_EXT        DMA, HighMem, DMA32, Movable, Reclaimable,
//	                                    High, IO, FS, Zero, DirectReclaim,
//	                                    KswapdReclaim, Write, NoWarn, RetryMayFail,
//	                                    NoFail, NoRetry, Memalloc, Comp, NoMemalloc,
//	                                    Hardwall, ThisNode, Account, ZeroTags,
//	                                    NoLockdep, NoObjExt
//	__GFP_RECLAIM                       Reclaim
//	GFP_ATOMIC, GFP_KERNEL, …           Atomic, Kernel, KernelAccount, NoWait, NoIO,
//	                                    NoFS, User, HighUser, HighUserMovable,
//	                                    TransHugeLight, TransHuge
//	GFP_DMA, GFP_DMA32                  DMA, DMA32 (the bits themselves)
//	__GFP_BITS_SHIFT, __GFP_BITS_MASK   BitsShift, BitsMask
//	GFP_ZONEMASK                        ZoneMask
//	GFP_MOVABLE_MASK, GFP_MOVABLE_SHIFT MovableMask, MovableShift
//	GFP_RECLAIM_MASK                    ReclaimMask
//	GFP_CONSTRAINT_MASK                 ConstraintMask
//	GFP_BOOT_MASK                       BootMask
//	GFP_SLAB_BUG_MASK                   SlabBugMask
//	GFP_VMALLOC_SUPPORTED               VmallocSupported
//	gfp_zone(), GFP_ZONE_TABLE/BAD      Mask.Zone, ErrBadZone
//	gfp_zonelist(), ZONELIST_*          Mask.Zonelist, ZonelistFallback, ZonelistNoFallback
//	enum zone_type, zone_names[]        ZoneType, ZoneType.String
//	gfp_migratetype()                   Mask.Migratetype, Mask.MobilityConflict
//	enum migratetype, migratetype_names Migratetype, Migratetype.String
//	gfp_nested_mask()                   Mask.Nested
//	gfpflags_allow_blocking()           Mask.AllowsBlocking
//	gfpflags_allow_spinning()           Mask.AllowsSpinning
//	gfp_has_io_fs()                     Mask.HasIOFS
//	gfp_compaction_allowed()            Mask.CompactionAllowed
//	show_gfp_flags() (tracepoints)      Mask.String
//	%pGg (printk)                       Mask.Names
//	"mode:%#x(%pGg)" (warn_alloc)       Mask.Mode
//	(none: the inverse of the above)    Parse, ErrUnknownFlag, ErrSyntax
//
// # Locking
//
// None: every value is immutable and every function pure.
package gfp
