package gfp

// Mask is a set of GFP flags: the gfp_t every kernel allocation takes.
//
// The zero Mask is a valid mask with no flag set (it prints as "none").
//
// Kernel: include/linux/types.h:gfp_t.
type Mask uint32

// Bit numbers, in the order of the kernel's ___GFP_*_BIT enum for an x86_64
// build with CONFIG_LOCKDEP=y and CONFIG_KASAN_HW_TAGS=n. Optional bits are
// inserted only when their config option is on, so every bit after the first
// optional one moves with the config; bits 0..23 never move.
//
// Kernel: include/linux/gfp_types.h (enum of ___GFP_*_BIT).
const (
	bitDMA = iota
	bitHighMem
	bitDMA32
	bitMovable
	bitReclaimable
	bitHigh
	bitIO
	bitFS
	bitZero
	bitUnused // 0x200: ___GFP_UNUSED_BIT, was ___GFP_ATOMIC before v6.3
	bitDirectReclaim
	bitKswapdReclaim
	bitWrite
	bitNoWarn
	bitRetryMayFail
	bitNoFail
	bitNoRetry
	bitMemalloc
	bitComp
	bitNoMemalloc
	bitHardwall
	bitThisNode
	bitAccount
	bitZeroTags
	// ___GFP_SKIP_ZERO_BIT and ___GFP_SKIP_KASAN_BIT exist only with
	// CONFIG_KASAN_HW_TAGS, which x86_64 cannot enable.
	bitNoLockdep // CONFIG_LOCKDEP=y: mmsim has a lockdep of its own
	bitNoObjExt  // unconditional in 7.2
	bitLast      // ___GFP_LAST_BIT
)

// Physical address zone modifiers.
//
// Kernel: include/linux/gfp_types.h (DOC: Page mobility and placement hints).
const (
	// DMA asks for memory from ZONE_DMA (the lowest 16 MiB on x86_64).
	// Kernel: include/linux/gfp_types.h:__GFP_DMA.
	DMA Mask = 1 << bitDMA
	// HighMem allows ZONE_HIGHMEM. x86_64 has no highmem zone, so on its
	// own it selects ZONE_NORMAL; together with Movable it selects
	// ZONE_MOVABLE. Kernel: include/linux/gfp_types.h:__GFP_HIGHMEM.
	HighMem Mask = 1 << bitHighMem
	// DMA32 asks for memory below 4 GiB (ZONE_DMA32).
	// Kernel: include/linux/gfp_types.h:__GFP_DMA32.
	DMA32 Mask = 1 << bitDMA32
	// Movable marks the page as migratable or reclaimable: migratetype
	// MIGRATE_MOVABLE, and ZONE_MOVABLE when combined with HighMem.
	// Kernel: include/linux/gfp_types.h:__GFP_MOVABLE.
	Movable Mask = 1 << bitMovable
)

// Page mobility and placement hints.
//
// Kernel: include/linux/gfp_types.h (DOC: Page mobility and placement hints).
const (
	// Reclaimable marks slab pages of SLAB_RECLAIM_ACCOUNT caches, freeable
	// through shrinkers: migratetype MIGRATE_RECLAIMABLE.
	// Kernel: include/linux/gfp_types.h:__GFP_RECLAIMABLE.
	Reclaimable Mask = 1 << bitReclaimable
	// Write says the caller intends to dirty the page, so page-cache pages
	// are spread between nodes by their dirty limits.
	// Kernel: include/linux/gfp_types.h:__GFP_WRITE.
	Write Mask = 1 << bitWrite
	// Hardwall enforces the cpuset memory allocation policy.
	// Kernel: include/linux/gfp_types.h:__GFP_HARDWALL.
	Hardwall Mask = 1 << bitHardwall
	// ThisNode forces the allocation onto the requested node, with no
	// fallback. Kernel: include/linux/gfp_types.h:__GFP_THISNODE.
	ThisNode Mask = 1 << bitThisNode
	// Account charges the allocation to the kmem memory cgroup.
	// Kernel: include/linux/gfp_types.h:__GFP_ACCOUNT.
	Account Mask = 1 << bitAccount
	// NoObjExt forbids allocating a slab object-extension vector.
	// Kernel: include/linux/gfp_types.h:__GFP_NO_OBJ_EXT.
	NoObjExt Mask = 1 << bitNoObjExt
)

// Watermark modifiers: access to the emergency reserves.
//
// Kernel: include/linux/gfp_types.h (DOC: Watermark modifiers).
const (
	// High marks a high-priority request that may dip into part of the
	// min-watermark reserve. Kernel: include/linux/gfp_types.h:__GFP_HIGH.
	High Mask = 1 << bitHigh
	// Memalloc grants access to all memory reserves (ALLOC_NO_WATERMARKS).
	// Kernel: include/linux/gfp_types.h:__GFP_MEMALLOC.
	Memalloc Mask = 1 << bitMemalloc
	// NoMemalloc forbids the reserves; it beats both Memalloc and the
	// task's PF_MEMALLOC. Kernel: include/linux/gfp_types.h:__GFP_NOMEMALLOC.
	NoMemalloc Mask = 1 << bitNoMemalloc
)

// Reclaim modifiers.
//
// Kernel: include/linux/gfp_types.h (DOC: Reclaim modifiers).
const (
	// IO allows reclaim to start physical I/O (swap out anonymous pages).
	// Kernel: include/linux/gfp_types.h:__GFP_IO.
	IO Mask = 1 << bitIO
	// FS allows reclaim to call into the filesystems (dirty pages of
	// swap-backed mappings, filesystem shrinkers).
	// Kernel: include/linux/gfp_types.h:__GFP_FS.
	FS Mask = 1 << bitFS
	// DirectReclaim lets the caller enter direct reclaim: it may block.
	// Kernel: include/linux/gfp_types.h:__GFP_DIRECT_RECLAIM.
	DirectReclaim Mask = 1 << bitDirectReclaim
	// KswapdReclaim wakes kswapd when the low watermark is reached.
	// Kernel: include/linux/gfp_types.h:__GFP_KSWAPD_RECLAIM.
	KswapdReclaim Mask = 1 << bitKswapdReclaim
	// Reclaim is both reclaim bits. It has the value of NoIO, which is why
	// it never prints under its own name.
	// Kernel: include/linux/gfp_types.h:__GFP_RECLAIM.
	Reclaim Mask = DirectReclaim | KswapdReclaim
	// RetryMayFail retries hard but may fail, and never invokes the OOM
	// killer. Kernel: include/linux/gfp_types.h:__GFP_RETRY_MAYFAIL.
	RetryMayFail Mask = 1 << bitRetryMayFail
	// NoFail makes the allocator retry for ever.
	// Kernel: include/linux/gfp_types.h:__GFP_NOFAIL.
	NoFail Mask = 1 << bitNoFail
	// NoRetry gives up after one light round of reclaim and compaction and
	// never invokes the OOM killer. Kernel: include/linux/gfp_types.h:__GFP_NORETRY.
	NoRetry Mask = 1 << bitNoRetry
)

// Action modifiers.
//
// Kernel: include/linux/gfp_types.h (DOC: Action modifiers).
const (
	// NoWarn suppresses allocation-failure reports and every
	// WARN_ON_ONCE_GFP site. Kernel: include/linux/gfp_types.h:__GFP_NOWARN.
	NoWarn Mask = 1 << bitNoWarn
	// Comp sets up compound-page metadata.
	// Kernel: include/linux/gfp_types.h:__GFP_COMP.
	Comp Mask = 1 << bitComp
	// Zero returns zeroed memory. Kernel: include/linux/gfp_types.h:__GFP_ZERO.
	Zero Mask = 1 << bitZero
	// ZeroTags zeroes memory tags too when zeroing (arm64 MTE; inert on
	// x86_64 but still a bit). Kernel: include/linux/gfp_types.h:__GFP_ZEROTAGS.
	ZeroTags Mask = 1 << bitZeroTags
	// NoLockdep keeps lockdep's fs_reclaim annotation away from the
	// allocation. It is a real bit because mmsim models CONFIG_LOCKDEP=y.
	// Kernel: include/linux/gfp_types.h:__GFP_NOLOCKDEP.
	NoLockdep Mask = 1 << bitNoLockdep
)

// skipKASAN is __GFP_SKIP_KASAN, which is 0 without CONFIG_KASAN_HW_TAGS. It is
// kept so the composites below read as the kernel defines them.
const skipKASAN Mask = 0

// BitsShift is the number of GFP bits in use, and BitsMask those bits.
//
// Kernel: include/linux/gfp_types.h:__GFP_BITS_SHIFT, __GFP_BITS_MASK.
const (
	BitsShift          = bitLast
	BitsMask      Mask = 1<<BitsShift - 1
	unusedBit     Mask = 1 << bitUnused
	invalidBits   Mask = ^BitsMask
	undefinedBits Mask = invalidBits | unusedBit
)

// The composite masks callers use.
//
// Kernel: include/linux/gfp_types.h (DOC: Useful GFP flag combinations).
const (
	// Atomic is for callers that cannot sleep and need the allocation to
	// succeed: it may use part of the reserves.
	// Kernel: include/linux/gfp_types.h:GFP_ATOMIC.
	Atomic Mask = High | KswapdReclaim
	// Kernel is the typical kernel-internal allocation: it may reclaim,
	// do I/O and call into filesystems. Kernel: include/linux/gfp_types.h:GFP_KERNEL.
	Kernel Mask = Reclaim | IO | FS
	// KernelAccount is Kernel charged to kmemcg.
	// Kernel: include/linux/gfp_types.h:GFP_KERNEL_ACCOUNT.
	KernelAccount Mask = Kernel | Account
	// NoWait never blocks and, since v6.17, never warns.
	// Kernel: include/linux/gfp_types.h:GFP_NOWAIT.
	NoWait Mask = KswapdReclaim | NoWarn
	// NoIO may reclaim but never starts I/O. New code should use the
	// PF_MEMALLOC_NOIO scope instead. Kernel: include/linux/gfp_types.h:GFP_NOIO.
	NoIO Mask = Reclaim
	// NoFS may reclaim and do I/O but never calls into filesystems. New
	// code should use the PF_MEMALLOC_NOFS scope instead.
	// Kernel: include/linux/gfp_types.h:GFP_NOFS.
	NoFS Mask = Reclaim | IO
	// User is for userspace allocations the kernel or hardware also
	// access directly. Kernel: include/linux/gfp_types.h:GFP_USER.
	User Mask = Reclaim | IO | FS | Hardwall
	// HighUser is User that may come from highmem.
	// Kernel: include/linux/gfp_types.h:GFP_HIGHUSER.
	HighUser Mask = User | HighMem
	// HighUserMovable is the mask of anonymous and page-cache pages:
	// ZONE_MOVABLE is allowed. Kernel: include/linux/gfp_types.h:GFP_HIGHUSER_MOVABLE.
	HighUserMovable Mask = HighUser | Movable | skipKASAN
	// TransHugeLight is the THP mask that neither reclaims nor wakes kswapd.
	// Kernel: include/linux/gfp_types.h:GFP_TRANSHUGE_LIGHT.
	TransHugeLight Mask = (HighUserMovable | Comp | NoMemalloc | NoWarn) &^ Reclaim
	// TransHuge is the THP mask that may direct-reclaim.
	// Kernel: include/linux/gfp_types.h:GFP_TRANSHUGE.
	TransHuge Mask = TransHugeLight | DirectReclaim
)

// Masks the allocator uses to pick bits apart.
const (
	// ZoneMask is the four zone modifier bits that index gfp_zone's table.
	// Kernel: include/linux/gfp_types.h:GFP_ZONEMASK.
	ZoneMask Mask = DMA | HighMem | DMA32 | Movable
	// MovableMask is the two mobility bits that give the migratetype.
	// Kernel: include/linux/gfp.h:GFP_MOVABLE_MASK.
	MovableMask Mask = Reclaimable | Movable
	// MovableShift turns MovableMask bits into a migratetype.
	// Kernel: include/linux/gfp.h:GFP_MOVABLE_SHIFT.
	MovableShift = bitMovable
	// ReclaimMask is what an allocation may pass down to reclaim and to the
	// allocations reclaim makes on its behalf.
	// Kernel: mm/internal.h:GFP_RECLAIM_MASK.
	ReclaimMask Mask = Reclaim | High | IO | FS | NoWarn | RetryMayFail | NoFail |
		NoRetry | Memalloc | NoMemalloc | NoLockdep
	// ConstraintMask is the bits that constrain placement (cpuset, node).
	// Kernel: mm/internal.h:GFP_CONSTRAINT_MASK.
	ConstraintMask Mask = Hardwall | ThisNode
	// BootMask is gfp_allowed_mask during early boot: no reclaim, no I/O,
	// no filesystems. Kernel: mm/internal.h:GFP_BOOT_MASK.
	BootMask Mask = BitsMask &^ (Reclaim | IO | FS)
	// SlabBugMask is the bits a slab allocation must never carry.
	// Kernel: mm/internal.h:GFP_SLAB_BUG_MASK.
	SlabBugMask Mask = DMA32 | HighMem | ^BitsMask
	// VmallocSupported is every flag vmalloc honours; it strips the others
	// with a one-time "Unexpected gfp" warning.
	// Kernel: mm/vmalloc.c:GFP_VMALLOC_SUPPORTED.
	VmallocSupported Mask = Kernel | Atomic | NoWait | NoFail | Zero | NoRetry |
		RetryMayFail | NoFS | NoIO | KernelAccount | User | NoLockdep | skipKASAN
)

// AllowsBlocking reports whether the mask may sleep: whether it has
// __GFP_DIRECT_RECLAIM.
//
// Kernel: include/linux/gfp.h:gfpflags_allow_blocking().
func (m Mask) AllowsBlocking() bool { return m&DirectReclaim != 0 }

// AllowsSpinning reports whether the mask may take spinlocks: whether it has
// either reclaim bit. Only the alloc_pages_nolock() style, with no reclaim bit
// at all, may not.
//
// Kernel: include/linux/gfp.h:gfpflags_allow_spinning().
func (m Mask) AllowsSpinning() bool { return m&Reclaim != 0 }

// HasIOFS reports whether the mask has both __GFP_IO and __GFP_FS.
//
// Kernel: include/linux/gfp.h:gfp_has_io_fs().
func (m Mask) HasIOFS() bool { return m&(IO|FS) == IO|FS }

// CompactionAllowed reports whether direct compaction may run for the mask:
// it needs __GFP_IO, so GFP_NOIO contexts never compact. mmsim models
// CONFIG_COMPACTION=y.
//
// Kernel: include/linux/gfp.h:gfp_compaction_allowed().
func (m Mask) CompactionAllowed() bool { return m&IO != 0 }

// Undefined returns the bits of m that name no flag: the unused bit 0x200 and
// every bit at or above BitsShift. They print as one hex token.
//
// Kernel: include/linux/gfp_types.h (___GFP_UNUSED_BIT, __GFP_BITS_MASK).
func (m Mask) Undefined() Mask { return m & undefinedBits }
