package mmsim

import (
	"errors"
	"fmt"
	"time"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/mm"
	"github.com/mmsim/mmsim/reclaim"
	"github.com/mmsim/mmsim/zone"
)

// NodeConfig, ZoneConfig and Sysctl describe the simulated machine; see
// package zone.
type (
	NodeConfig = zone.NodeConfig
	ZoneConfig = zone.ZoneConfig
	Sysctl     = zone.Sysctl
)

// Config describes a simulated x86_64 machine: its NUMA nodes and their
// zones as pfn ranges (4 KiB pages), its simulated CPUs, the vm sysctls
// that shape allocation, and a seed.
type Config struct {
	// Nodes lists the NUMA nodes, each with its populated zones in zone
	// order and its CPUs. Zones a node does not list exist empty.
	Nodes []NodeConfig
	// CPUs is the number of simulated CPUs (0..CPUs-1), each in one node.
	CPUs int
	// Sysctl holds vm.min_free_kbytes (0: the kernel's boot rule),
	// watermark_scale_factor, watermark_boost_factor,
	// lowmem_reserve_ratio, percpu_pagelist_high_fraction, dirty ratios,
	// overcommit_ratio.
	Sysctl Sysctl
	// Seed makes every random choice of the simulator reproducible.
	Seed int64
	// PanicOnBug turns simulated BUGs into panics, like panic_on_oops,
	// for fail-fast debugging. PanicOnWarn does the same for WARNs, like
	// the panic_on_warn sysctl.
	PanicOnBug, PanicOnWarn bool

	// SwapPages is the size of the swap device in pages (0: no swap, as
	// on the live machine of ../shared/traces).
	SwapPages int64
	// Swappiness is vm.swappiness (0..200; the kernel's default 60).
	Swappiness int
	// CgroupV1 mounts the memory controller on the legacy hierarchy
	// (cgroup v1), as on the machine of the shared traces: memory+swap
	// and kmem counters, failcnt, memory.oom_control, the v1 memory.stat
	// and OOM report. The default is cgroup v2.
	CgroupV1 bool
	// PanicOnOOM is vm.panic_on_oom (0, 1 or 2) and OOMKillAllocatingTask
	// vm.oom_kill_allocating_task.
	PanicOnOOM            int
	OOMKillAllocatingTask bool
	// Async runs the machine's daemons (kswapd, kcompactd, the flushers,
	// the OOM reaper) each on its own goroutine, alongside the callers,
	// instead of inside the callers' waits; Close stops them. Simulated
	// time still moves only by modelled work and waits, but runs are no
	// longer reproducible bit for bit. Off by default: the deterministic
	// mode, in which a seeded program's output is always the same.
	Async bool
	// CompactionProactiveness is vm.compaction_proactiveness (0..100;
	// the kernel's default 20): how hard kcompactd compacts a node whose
	// free memory is fragmented when nothing asked it to. 0 turns
	// proactive compaction off, and with it kcompactd's 500 ms timer.
	CompactionProactiveness int
	// Costs are the modelled durations of reclaim's work, which advance
	// simulated time; DefaultConfig documents its values.
	Costs reclaim.Costs
	// RetryCost is the modelled cost of one round of the slow path's
	// retry loop beyond reclaim's own scanning: the zonelist walks, and
	// the cond_resched() that ends the round, which on a machine under
	// memory pressure (other tasks runnable) typically gives the CPU
	// away for a scheduler slice. Default 1 ms, an assumption (the CFS
	// minimum granularity is 0.75 ms, a tick 4 ms): it is what moves a
	// livelocked allocation to the stall warning and the StallLimit in
	// simulated time.
	RetryCost time.Duration
	// StallLimit is how much simulated time an allocation may spend
	// looping in the slow path before it returns an error wrapping
	// ErrDeadlock, where the kernel would loop for ever. 0 disables the
	// limit (a request that can never succeed then hangs, as in the
	// kernel). Default: 120 s, the hung-task detector's default timeout
	// (DEFAULT_HUNG_TASK_TIMEOUT).
	StallLimit time.Duration

	// Debug turns on the debugging facilities that allocate while an
	// allocation is in progress: kmemleak, page_owner and the stack
	// depot. Off by default, as in a production kernel.
	Debug DebugConfig
	// Lockdep turns on the lock-dependency checker: every allocation
	// that may enter filesystem reclaim takes the fs_reclaim map, and
	// every simulated lock and work item records its dependencies, so
	// a possible deadlock is reported the first time its lock order is
	// seen. Off by default: it costs on every allocation. Locks and
	// workqueues work without it, and a task that actually waits in a
	// cycle gets ErrDeadlock either way.
	Lockdep bool
	// FaultInjection builds the fault-injection facilities in, as
	// CONFIG_FAIL_PAGE_ALLOC, CONFIG_FAILSLAB and
	// CONFIG_FAULT_INJECTION_DEBUG_FS do: fail_page_alloc and failslab
	// (System.SetFailPageAlloc, SetFailslab), /proc/<pid>/make-it-fail
	// and /proc/<pid>/fail-nth (SetMakeItFail, SetFailNth) and
	// FailScope. They start with the kernel's defaults, which inject
	// nothing. Off by default: the allocator then keeps its hook-free
	// fast path.
	FaultInjection bool
	// AllocProfiling turns on memory allocation profiling
	// (CONFIG_MEM_ALLOC_PROFILING with vm.mem_profiling=1): every page
	// and slab object is charged to its Go call site, and
	// System.WriteAllocinfo prints /proc/allocinfo. Off by default: it
	// costs about five order-0 allocations' time on every allocation,
	// most of it finding the caller's frame (see BENCHMARKS.md).
	AllocProfiling bool
	// Nofail chooses what a __GFP_NOFAIL request that can never be
	// satisfied does (seed 000): the kernel's answer, an error, a BUG,
	// or a loop.
	Nofail NofailConfig
	// VmallocPreFix is a what-if: vmalloc's page tables are allocated
	// with the caller's mask and no scope, as before
	// memalloc_apply_gfp_scope() — a GFP_NOFS vmalloc can then recurse
	// into the filesystem from its page-table allocation.
	VmallocPreFix bool
	// DroppableWriteLost is a what-if (seed 003): the VM_DROPPABLE
	// series up to v14, where a write fault of a droppable mapping that
	// runs out of memory skipped the faulting instruction — the write is
	// lost (AccessWriteLost) — instead of retrying it as 7.2 does.
	DroppableWriteLost bool
	// Secretmem chooses how secretmem (memfd_secret) gets its pages
	// (seed 004): SecretUpstream, 7.2's order-0 pages at fault (the
	// default); SecretPMDPool, a 2 MiB pool per file; SecretBootPool, a
	// pool of PoolPages reserved at boot as a hard limit; or
	// SecretReserveAtMmap, every page reserved at mmap.
	Secretmem SecretConfig
}

// DebugConfig selects the debug allocators (SPEC.md §5).
type DebugConfig struct {
	// Kmemleak tracks every slab and vmalloc object with a metadata
	// object allocated with the nested mask (CONFIG_DEBUG_KMEMLEAK).
	Kmemleak bool
	// KmemleakPoolSize is CONFIG_DEBUG_KMEMLEAK_MEM_POOL_SIZE, the static
	// fallback pool (0: the default, 16000).
	KmemleakPoolSize int
	// PageOwner records the stack of every page allocation in the stack
	// depot, whose pools it allocates (page_owner=on).
	PageOwner bool
	// PreFix is a what-if: the stack depot and page_owner use the masks
	// they had before gfp_nested_mask() —
	// ((mask &^ GFP_ZONEMASK) & (GFP_ATOMIC|GFP_KERNEL)) | __GFP_NOWARN —
	// which lose __GFP_NOLOCKDEP and never add __GFP_NOMEMALLOC or
	// __GFP_NORETRY. kmemleak always used the nested mask.
	PreFix bool
}

// NofailPolicy is what a __GFP_NOFAIL request that no amount of reclaim
// can satisfy does: one above MAX_PAGE_ORDER for the page allocator, above
// KMALLOC_MAX_SIZE for kmalloc, above INT_MAX (or NofailConfig's limit) for
// kvmalloc, above total RAM for vmalloc.
type NofailPolicy uint8

// The policies of the seed-000 debate.
const (
	// NofailKernel does what 7.2 does in each API: the page allocator
	// and kmalloc WARN and return NULL, kvmalloc WARNs once (unless
	// __GFP_NOWARN) and returns NULL, vmalloc prints warn_alloc's
	// "exceeds total pages" and returns NULL. The request fails with
	// ErrNoMemory (ErrInvalid for a page order above MAX_PAGE_ORDER).
	NofailKernel NofailPolicy = iota
	// NofailFail fails the request at once with an error wrapping
	// ErrNoMemory that says why, without a WARN: the proposal that a
	// NOFAIL request the allocator can never satisfy is a plain failure
	// the caller must handle.
	NofailFail
	// NofailBug treats the request as a bug of its caller: a BUG
	// report, the task killed (SIGKILL), an error wrapping ErrBug and
	// ErrKilled — the BUG_ON() position of the thread.
	NofailBug
	// NofailLoop honours "never fail" literally: the request sleeps and
	// retries, with the stall warning every 10 s, until Config's
	// StallLimit ends it with ErrDeadlock.
	NofailLoop
)

func (p NofailPolicy) String() string {
	switch p {
	case NofailKernel:
		return "kernel"
	case NofailFail:
		return "fail"
	case NofailBug:
		return "bug"
	case NofailLoop:
		return "loop"
	}
	return fmt.Sprintf("NofailPolicy(%d)", uint8(p))
}

// NofailConfig is the policy and kvmalloc's configured limit.
type NofailConfig struct {
	Policy NofailPolicy
	// KvmallocLimitPages and KvmallocLimitFraction (of total RAM) set a
	// size above which a NOFAIL kvmalloc counts as never satisfiable,
	// besides INT_MAX; 0 means no limit. The kernel has neither: under
	// NofailKernel they are ignored.
	KvmallocLimitPages    int64
	KvmallocLimitFraction float64
}

// DefaultConfig returns a small machine: one node, two CPUs, 8 GiB of RAM
// laid out as on a typical x86_64 PC — ZONE_DMA below 16 MiB (pfn 0 and the
// legacy BIOS areas missing), ZONE_DMA32 below 4 GiB with the PCI hole
// above 3 GiB, ZONE_NORMAL above 4 GiB, empty Movable and Device zones —
// with the kernel's default sysctls (min_free_kbytes from its boot rule).
// The reserved pages (present but not managed: the kernel image, the
// memmap, firmware) are about what a real kernel of that size keeps.
func DefaultConfig() Config {
	return Config{
		Nodes: []NodeConfig{{
			CPUs: []int{0, 1},
			Zones: []ZoneConfig{
				{Type: gfp.ZoneDMA, StartPFN: 1, Spanned: 4095, Present: 3998, Managed: 3840},
				{Type: gfp.ZoneDMA32, StartPFN: 4096, Spanned: 1044480, Present: 782336, Managed: 770048},
				{Type: gfp.ZoneNormal, StartPFN: 1 << 20, Spanned: 1310720, Present: 1310720, Managed: 1282048},
			},
		}},
		CPUs:       2,
		Sysctl:     zone.DefaultSysctl(),
		Seed:       1,
		Swappiness: 60,
		// Proactive compaction is on in the kernel; mmsim's default
		// machine keeps the kernel's value.
		CompactionProactiveness: 20,
		Costs:                   reclaim.DefaultCosts(),
		RetryCost:               time.Millisecond,
		StallLimit:              120 * time.Second,
	}
}

// SmallConfig returns DefaultConfig's machine shrunk to a PC's 16 MiB DMA
// zone and a DMA32 zone of dma32Pages pages from 16 MiB up, managed of
// them managed by the buddy allocator (the rest reserved at boot), and no
// Normal zone: the small machines the examples and tests run.
func SmallConfig(dma32Pages, managed int64) Config {
	cfg := DefaultConfig()
	dma := cfg.Nodes[0].Zones[0]
	cfg.Nodes = []NodeConfig{{CPUs: cfg.Nodes[0].CPUs, Zones: []ZoneConfig{
		dma,
		{Type: gfp.ZoneDMA32, StartPFN: 4096, Spanned: dma32Pages, Present: dma32Pages, Managed: managed},
	}}}
	return cfg
}

// validate checks the whole configuration and returns an error listing
// every invalid field, wrapping ErrInvalid.
func (c *Config) validate() error {
	var errs []error
	zc := c.zoneConfig()
	if err := zc.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.SwapPages < 0 {
		errs = append(errs, fmt.Errorf("SwapPages %d: a swap device has a size of 0 or more pages", c.SwapPages))
	}
	if c.Swappiness < 0 || c.Swappiness > 200 {
		errs = append(errs, fmt.Errorf("Swappiness %d: vm.swappiness takes 0..200", c.Swappiness))
	}
	if c.PanicOnOOM < 0 || c.PanicOnOOM > 2 {
		errs = append(errs, fmt.Errorf("PanicOnOOM %d: vm.panic_on_oom takes 0, 1 or 2", c.PanicOnOOM))
	}
	if c.RetryCost < 0 {
		errs = append(errs, fmt.Errorf("RetryCost %v: a modelled cost is 0 or more", c.RetryCost))
	}
	if c.StallLimit < 0 {
		errs = append(errs, fmt.Errorf("StallLimit %v: a limit is 0 (none) or positive", c.StallLimit))
	}
	if c.CompactionProactiveness < 0 || c.CompactionProactiveness > 100 {
		errs = append(errs, fmt.Errorf("CompactionProactiveness %d: vm.compaction_proactiveness takes 0..100", c.CompactionProactiveness))
	}
	if c.Nofail.Policy > NofailLoop {
		errs = append(errs, fmt.Errorf("Nofail.Policy %d: one of NofailKernel, NofailFail, NofailBug, NofailLoop", c.Nofail.Policy))
	}
	if c.Nofail.KvmallocLimitPages < 0 || c.Nofail.KvmallocLimitFraction < 0 || c.Nofail.KvmallocLimitFraction > 1 {
		errs = append(errs, fmt.Errorf("Nofail %+v: the kvmalloc limit is a page count of 0 or more and a fraction of total RAM in 0..1", c.Nofail))
	}
	if c.Debug.KmemleakPoolSize < 0 {
		errs = append(errs, fmt.Errorf("Debug.KmemleakPoolSize %d: CONFIG_DEBUG_KMEMLEAK_MEM_POOL_SIZE is 0 (the default) or positive", c.Debug.KmemleakPoolSize))
	}
	co := c.Costs
	for _, v := range []int64{co.ScanPage, co.SwapOutPage, co.WritebackPage, co.ShrinkObject, co.CompactMovePage, co.CompactScanPage, co.ZeroPage} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("Costs %+v: a modelled cost is 0 or more nanoseconds", co))
			break
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

func (c *Config) zoneConfig() zone.Config {
	return zone.Config{Nodes: c.Nodes, NrCPUs: c.CPUs, Sysctl: c.Sysctl}
}

// Errors. Every error the System returns wraps one of them (errors.Is).
var (
	// ErrNoMemory: an allocation failed (the kernel returned NULL).
	ErrNoMemory = zone.ErrNoMemory
	// ErrInvalid: the request or the configuration is invalid (the
	// kernel would refuse it, with a WARN where it WARNs).
	ErrInvalid = zone.ErrInvalid
	// ErrBug: the request is what the kernel would answer with BUG():
	// a double free, a bad zone combination, scope misuse. The machine is
	// left as it was.
	ErrBug = zone.ErrBug
	// ErrDeadlock: the kernel would retry the allocation for ever and
	// nothing left could free memory; the error says which loop.
	ErrDeadlock = zone.ErrDeadlock
	// ErrClosed: the System was closed.
	ErrClosed = errors.New("mmsim: system closed")
	// ErrKilled: the task was killed (by the OOM killer) and is exiting;
	// its Context is cancelled.
	ErrKilled = mm.ErrKilled
)
