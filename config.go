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
