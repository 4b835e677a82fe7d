package slab

import (
	"strconv"
	"strings"
)

// Flags are the SLAB_* flags a cache is created with (slab_flags_t).
//
// The bit numbers follow the kernel's enum _slab_flag_bits, whose optional
// members move every later bit. mmsim models an x86_64 distribution config:
// CONFIG_DEBUG_OBJECTS=n, CONFIG_FAILSLAB=y (mmsim models failslab; it is
// armed at run time, as the kernel's is through debugfs), CONFIG_MEMCG=y,
// CONFIG_KASAN_GENERIC=n, CONFIG_KFENCE=y, CONFIG_SLUB_TINY=n,
// CONFIG_SLAB_OBJ_EXT=y on 64 bit.
//
// Kernel: include/linux/slab.h:slab_flags_t, enum _slab_flag_bits.
type Flags uint

// Bit numbers of enum _slab_flag_bits for the modelled config.
const (
	bitConsistencyChecks = iota
	bitRedZone
	bitPoison
	bitKmalloc
	bitHWCacheAlign
	bitCacheDMA
	bitCacheDMA32
	bitStoreUser
	bitPanic
	bitTypesafeByRCU
	bitTrace
	// _SLAB_DEBUG_OBJECTS: CONFIG_DEBUG_OBJECTS=n
	bitNoLeakTrace
	bitNoMerge
	bitFailslab // CONFIG_FAILSLAB=y
	bitAccount  // CONFIG_MEMCG=y
	// _SLAB_KASAN: CONFIG_KASAN_GENERIC=n
	bitNoUserFlags
	bitSkipKFENCE // CONFIG_KFENCE=y
	bitReclaimAccount
	bitObjectPoison
	bitCmpxchgDouble
	bitNoObjExt
	bitObjExtInObj
	bitNoSheaves
)

// The cache flags, at their kernel values for the modelled config.
//
// Kernel: include/linux/slab.h (SLAB_*).
const (
	// ConsistencyChecks is SLAB_CONSISTENCY_CHECKS (slub_debug=F).
	ConsistencyChecks Flags = 1 << bitConsistencyChecks
	// RedZone is SLAB_RED_ZONE (slub_debug=Z).
	RedZone Flags = 1 << bitRedZone
	// Poison is SLAB_POISON (slub_debug=P).
	Poison Flags = 1 << bitPoison
	// Kmalloc is SLAB_KMALLOC: the cache is one of the kmalloc caches.
	Kmalloc Flags = 1 << bitKmalloc
	// HWCacheAlign is SLAB_HWCACHE_ALIGN: align objects on cache lines
	// (64 bytes, halved while the object fits in half a line).
	HWCacheAlign Flags = 1 << bitHWCacheAlign
	// CacheDMA is SLAB_CACHE_DMA: slab pages come from ZONE_DMA.
	CacheDMA Flags = 1 << bitCacheDMA
	// CacheDMA32 is SLAB_CACHE_DMA32: slab pages come from ZONE_DMA32.
	CacheDMA32 Flags = 1 << bitCacheDMA32
	// StoreUser is SLAB_STORE_USER (slub_debug=U).
	StoreUser Flags = 1 << bitStoreUser
	// Panic is SLAB_PANIC: a failed kmem_cache_create panics.
	Panic Flags = 1 << bitPanic
	// TypesafeByRCU is SLAB_TYPESAFE_BY_RCU: slab pages are freed after
	// an RCU grace period, and the free pointer lives outside the object.
	TypesafeByRCU Flags = 1 << bitTypesafeByRCU
	// Trace is SLAB_TRACE (slub_debug=T).
	Trace Flags = 1 << bitTrace
	// NoLeakTrace is SLAB_NOLEAKTRACE: kmemleak does not track the
	// cache (the Hooks are not called).
	NoLeakTrace Flags = 1 << bitNoLeakTrace
	// NoMerge is SLAB_NO_MERGE: never merge with another cache.
	NoMerge Flags = 1 << bitNoMerge
	// Failslab is SLAB_FAILSLAB: failslab's cache-filter may fail the
	// cache's allocations. kmem_cache_create does not take it (it is
	// outside SLAB_FLAGS_PERMITTED); Cache.SetFailslab sets it, as
	// /sys/kernel/slab/<cache>/failslab does.
	Failslab Flags = 1 << bitFailslab
	// Account is SLAB_ACCOUNT: every object is charged to the memcg.
	Account Flags = 1 << bitAccount
	// NoUserFlags is SLAB_NO_USER_FLAGS: slub_debug does not apply.
	NoUserFlags Flags = 1 << bitNoUserFlags
	// SkipKFENCE is SLAB_SKIP_KFENCE.
	SkipKFENCE Flags = 1 << bitSkipKFENCE
	// ReclaimAccount is SLAB_RECLAIM_ACCOUNT: slab pages are
	// __GFP_RECLAIMABLE and counted in NR_SLAB_RECLAIMABLE_B.
	ReclaimAccount Flags = 1 << bitReclaimAccount
	// Temporary is SLAB_TEMPORARY, an alias of ReclaimAccount.
	Temporary Flags = ReclaimAccount
	// NoObjExt is SLAB_NO_OBJ_EXT.
	NoObjExt Flags = 1 << bitNoObjExt
	// NoSheaves is SLAB_NO_SHEAVES.
	NoSheaves Flags = 1 << bitNoSheaves

	objectPoison  Flags = 1 << bitObjectPoison
	cmpxchgDouble Flags = 1 << bitCmpxchgDouble
	objExtInObj   Flags = 1 << bitObjExtInObj
)

// coreFlags and debugFlags are what kmem_cache_create accepts.
//
// Kernel: mm/slab.h:SLAB_CORE_FLAGS, SLAB_DEBUG_FLAGS, SLAB_FLAGS_PERMITTED.
const (
	coreFlags = HWCacheAlign | CacheDMA | CacheDMA32 | Panic | TypesafeByRCU |
		NoLeakTrace | ReclaimAccount | Temporary | Account | NoUserFlags |
		Kmalloc | NoMerge
	debugFlags     = RedZone | Poison | StoreUser | Trace | ConsistencyChecks
	flagsPermitted = coreFlags | debugFlags
)

var flagNames = []struct {
	f    Flags
	name string
}{
	{ConsistencyChecks, "SLAB_CONSISTENCY_CHECKS"}, {RedZone, "SLAB_RED_ZONE"},
	{Poison, "SLAB_POISON"}, {Kmalloc, "SLAB_KMALLOC"}, {HWCacheAlign, "SLAB_HWCACHE_ALIGN"},
	{CacheDMA, "SLAB_CACHE_DMA"}, {CacheDMA32, "SLAB_CACHE_DMA32"}, {StoreUser, "SLAB_STORE_USER"},
	{Panic, "SLAB_PANIC"}, {TypesafeByRCU, "SLAB_TYPESAFE_BY_RCU"}, {Trace, "SLAB_TRACE"},
	{NoLeakTrace, "SLAB_NOLEAKTRACE"}, {NoMerge, "SLAB_NO_MERGE"}, {Failslab, "SLAB_FAILSLAB"}, {Account, "SLAB_ACCOUNT"},
	{NoUserFlags, "SLAB_NO_USER_FLAGS"}, {SkipKFENCE, "SLAB_SKIP_KFENCE"},
	{ReclaimAccount, "SLAB_RECLAIM_ACCOUNT"}, {objectPoison, "__OBJECT_POISON"},
	{cmpxchgDouble, "__CMPXCHG_DOUBLE"}, {NoObjExt, "SLAB_NO_OBJ_EXT"},
	{objExtInObj, "SLAB_OBJ_EXT_IN_OBJ"}, {NoSheaves, "SLAB_NO_SHEAVES"},
}

// String returns the flags as "SLAB_HWCACHE_ALIGN|SLAB_ACCOUNT", "0" for
// none; unknown bits print as one hex token.
//
// Kernel: include/linux/slab.h (the SLAB_* names).
func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	var parts []string
	for _, n := range flagNames {
		if f&n.f != 0 {
			parts = append(parts, n.name)
			f &^= n.f
		}
	}
	if f != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(uint64(f), 16))
	}
	return strings.Join(parts, "|")
}
