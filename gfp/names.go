package gfp

// flagName is one entry of the kernel's GFP name table.
type flagName struct {
	mask Mask
	name string
}

// names is the kernel's GFP name table in its 7.2 order: the composites first,
// then every single bit in ascending bit order (generated from the same list as
// the tracepoint enums since v6.15). Printing walks it greedily, so the order
// is part of the output: GFP_NOIO comes before GFP_NOWAIT and hides
// __GFP_RECLAIM, and __GFP_DMA/__GFP_DMA32 always print as GFP_DMA/GFP_DMA32.
//
// The optional tail is the one of an x86_64 build with CONFIG_LOCKDEP=y:
// __GFP_NOLOCKDEP then __GFP_NO_OBJ_EXT (no __GFP_SKIP_ZERO/__GFP_SKIP_KASAN,
// which need CONFIG_KASAN_HW_TAGS).
//
// Kernel: include/trace/events/mmflags.h:__def_gfpflag_names, TRACE_GFP_FLAGS.
var names = [...]flagName{
	{TransHuge, "GFP_TRANSHUGE"},
	{TransHugeLight, "GFP_TRANSHUGE_LIGHT"},
	{HighUserMovable, "GFP_HIGHUSER_MOVABLE"},
	{HighUser, "GFP_HIGHUSER"},
	{User, "GFP_USER"},
	{KernelAccount, "GFP_KERNEL_ACCOUNT"},
	{Kernel, "GFP_KERNEL"},
	{NoFS, "GFP_NOFS"},
	{Atomic, "GFP_ATOMIC"},
	{NoIO, "GFP_NOIO"},
	{NoWait, "GFP_NOWAIT"},
	{DMA, "GFP_DMA"},
	{DMA32, "GFP_DMA32"},
	{Reclaim, "__GFP_RECLAIM"},

	{DMA, "__GFP_DMA"},
	{HighMem, "__GFP_HIGHMEM"},
	{DMA32, "__GFP_DMA32"},
	{Movable, "__GFP_MOVABLE"},
	{Reclaimable, "__GFP_RECLAIMABLE"},
	{High, "__GFP_HIGH"},
	{IO, "__GFP_IO"},
	{FS, "__GFP_FS"},
	{Zero, "__GFP_ZERO"},
	{DirectReclaim, "__GFP_DIRECT_RECLAIM"},
	{KswapdReclaim, "__GFP_KSWAPD_RECLAIM"},
	{Write, "__GFP_WRITE"},
	{NoWarn, "__GFP_NOWARN"},
	{RetryMayFail, "__GFP_RETRY_MAYFAIL"},
	{NoFail, "__GFP_NOFAIL"},
	{NoRetry, "__GFP_NORETRY"},
	{Memalloc, "__GFP_MEMALLOC"},
	{Comp, "__GFP_COMP"},
	{NoMemalloc, "__GFP_NOMEMALLOC"},
	{Hardwall, "__GFP_HARDWALL"},
	{ThisNode, "__GFP_THISNODE"},
	{Account, "__GFP_ACCOUNT"},
	{ZeroTags, "__GFP_ZEROTAGS"},
	{NoLockdep, "__GFP_NOLOCKDEP"},
	{NoObjExt, "__GFP_NO_OBJ_EXT"},
}

// unconfigured names kernel flags that are 0 in the configuration mmsim
// models, so that Parse can say why it refuses them rather than calling them
// unknown.
var unconfigured = map[string]string{
	"__GFP_SKIP_ZERO":  "CONFIG_KASAN_HW_TAGS, which x86_64 cannot enable",
	"__GFP_SKIP_KASAN": "CONFIG_KASAN_HW_TAGS, which x86_64 cannot enable",
	"__GFP_ATOMIC":     "a kernel before v6.3 (0x200 is unused since)",
}

// byName maps every name of the table to its mask, for Parse.
var byName = func() map[string]Mask {
	m := make(map[string]Mask, len(names))
	for _, n := range names {
		m[n.name] = n.mask
	}
	return m
}()
