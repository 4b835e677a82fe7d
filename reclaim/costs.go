package reclaim

// Costs are the modelled durations, in nanoseconds of simulated time, of
// the work reclaim does. The defaults are assumptions for a machine of the
// live kernel's class (NVMe swap and storage), named where they come from.
type Costs struct {
	// ScanPage is shrink_folio_list's work on one folio (rmap walk,
	// locking, flag tests): about 0.1–0.5 µs in published reclaim
	// profiles; default 200 ns.
	ScanPage int64
	// SwapOutPage is writing one page to swap: a 4 KiB random write at
	// ~400 MB/s (a mid-range NVMe device); default 10 µs.
	SwapOutPage int64
	// WritebackPage is the flushers writing one dirty page-cache page;
	// default 10 µs, as for swap.
	WritebackPage int64
	// ShrinkObject is a shrinker freeing one object (a dentry or inode);
	// default 100 ns.
	ShrinkObject int64
	// CompactMovePage is migrating one page during compaction: copy
	// plus remap; default 2 µs.
	CompactMovePage int64
	// CompactScanPage is a compaction scanner looking at one pfn (a
	// struct page read and a flag test); default 10 ns.
	CompactScanPage int64
	// ZeroPage is clearing one 4 KiB page for a __GFP_ZERO allocation
	// (an anonymous fault, a page table): clear_page at ~20 GB/s, the
	// memory bandwidth of one core of the live machine's class; default
	// 200 ns.
	ZeroPage int64
	// MemcgReclaimCall is the fixed cost of one try_to_free_mem_cgroup_pages
	// call (thirteen priorities over the cgroup's lists, the stat reads,
	// cond_resched), whatever it reclaims: in memcg_pressure_run1, 18
	// fruitless calls took 454 µs; default 25 µs. It is what lets time
	// pass, and an OOM victim's memory be reaped, while a charge retries.
	MemcgReclaimCall int64
}

// DefaultCosts returns the documented defaults.
func DefaultCosts() Costs {
	return Costs{
		ScanPage:        200,
		SwapOutPage:     10_000,
		WritebackPage:   10_000,
		ShrinkObject:    100,
		CompactMovePage: 2_000,
		CompactScanPage: 10,
		ZeroPage:        200,

		MemcgReclaimCall: 25_000,
	}
}
