// Package zone is the page allocator: nodes and zones, the buddy free lists
// per order and migratetype, pageblocks and their types, watermarks and the
// lowmem reserve, the per-cpu page lists, zonelists, __alloc_pages with its
// fast path and its slow path, __free_pages, alloc_pages_bulk, the
// page-allocator tracepoints, the vm counters and the /proc files of that
// state (buddyinfo, pagetypeinfo, zoneinfo, vmstat, meminfo).
//
// Reclaim, compaction and the OOM killer are reached through the small
// interfaces of slowpath.go (Reclaimer, Compactor, OOMKiller), in zone's own
// terms; the root package wires the packages that implement them. Hooks is
// the one interface for what later layers hang on every allocation and free
// (fault injection, lockdep's fs_reclaim annotation, page_owner, per-callsite
// accounting). All are optional: without them the fast path pays one nil
// check each.
//
// # Memory per simulated page
//
// The kernel's struct page is 64 bytes. mmsim keeps one owner byte for every
// page, and the buddy state byte and two free-list links (9 bytes a page)
// only where a MAX_ORDER block is split, in chunks made on first split and
// pooled when the block merges whole again (memmap.go). A machine right after
// boot costs about 1.1 bytes a page of heap, which the host backs only as
// pages are used; a fully split region 10.
//
// # Deliberate differences
//
//   - Counters are exact. The kernel folds per-cpu differences past a
//     threshold, so its watermark checks read a free count that lags by up
//     to threshold × CPUs; mmsim prints the thresholds but checks the exact
//     count.
//   - No cpusets, memory hotplug, deferred struct-page init, unaccepted
//     memory, CMA, page reporting or page shuffling; no real-time tasks (no
//     ALLOC_MIN_RESERVE for RT callers); every request runs in task context.
//   - A page counts as movable for the fallback heuristics while it is
//     allocated with __GFP_MOVABLE (the kernel asks PageLRU).
//   - A pcp list whose lock another task holds is waited for. The kernel
//     takes a pcp lock with pcp_spin_trylock and, when it fails (an
//     interrupt on the same CPU, a remote drain), goes to the buddy lists
//     (rmqueue_buddy, free_one_page); in mmsim tasks of one CPU run at once
//     on the host's threads, and waiting keeps their outcome the one the
//     kernel's CPU, which runs one task at a time, would give.
//   - The pcp lists are tuned as the kernel tunes them on allocation and
//     free, but the periodic work that decays pcp->high and drains idle
//     lists (decay_pcp_high, the vmstat worker) is not modelled yet, so
//     pages stay on a pcp list until a free overflows it or a drain runs.
//     PCPF_FREE_HIGH_BATCH follows an assumed 2 MiB of last-level cache per
//     CPU.
//   - A mask with both __GFP_MOVABLE and __GFP_RECLAIMABLE is refused with a
//     WARN (the kernel's VM_WARN_ON, then MIGRATE_HIGHATOMIC, which
//     order_to_pindex maps onto another order's pcp list and the fallback
//     table does not hold).
//   - Without reclaim and an OOM killer wired in, a blocking __GFP_NOFAIL
//     request that cannot be met returns ErrDeadlock where the kernel would
//     loop for ever.
//
// # Kernel → Go
//
//	pg_data_t, struct zone                  Node, Zone
//	pfn, order, struct page *               PFN, Order, Page
//	MAX_PAGE_ORDER, NR_PAGE_ORDERS          MaxPageOrder, NrPageOrders
//	PAGE_ALLOC_COSTLY_ORDER, pageblock_order CostlyOrder, PageblockOrder
//	WMARK_MIN/LOW/HIGH/PROMO                WmarkMin, WmarkLow, WmarkHigh, WmarkPromo
//	ALLOC_* (mm/internal.h)                 allocFlags (unexported)
//	struct free_area, free_list[]           Zone.free, freeList
//	struct per_cpu_pages                    pcpLists
//	__alloc_pages_noprof                    Allocator.AllocPages
//	alloc_pages_bulk_noprof                 Allocator.AllocPagesBulk
//	__free_pages, free_unref_folios         Allocator.FreePages, FreePagesBatched
//	get_page_from_freelist, rmqueue         getPageFromFreelist, rmqueue
//	__alloc_pages_slowpath                  slowpath
//	__rmqueue, __rmqueue_smallest           Zone.rmqueue, rmqueueSmallest
//	__rmqueue_claim, __rmqueue_steal        rmqueueClaim, rmqueueSteal
//	__free_one_page, expand                 freeOnePage, expand
//	reserve/unreserve_highatomic_pageblock  reserveHighatomicLocked, unreserveHighatomicLocked
//	__zone_watermark_ok, zone_watermark_fast watermarkOKFree, watermarkFast0 || watermarkRest
//	__setup_per_zone_wmarks                 setupWmarks
//	setup_per_zone_lowmem_reserve           setupLowmemReserve
//	calculate_min_free_kbytes               minFreeKbytes
//	nr_pcp_alloc, nr_pcp_high, nr_pcp_free  nrPCPAlloc, nrPCPHigh, nrPCPFree
//	drain_all_pages                         Allocator.DrainAllPages
//	wakeup_kswapd                           wakeupKswapd (records; Reclaimer wakes)
//	warn_alloc                              warnAlloc (a bug.Alloc report)
//	zone_stat_item, node_stat_item, vm_event_item  ZoneStat, NodeStat, VMEvent
//	trace_mm_page_*                         Event, EventKind
//
// # Lock order
//
//	pcpLists.mu (one CPU's lists of one zone)
//	└── Zone.mu (the zone lock: free lists, memmap buddy state, pageblocks)
//	Node.kswapd.mu, bug.Once, sim.Ratelimit: leaves, taken alone
//
// A page's owner state is written under the lock that holds the page: the
// pcp lock while it is on a pcp list, the zone lock while it moves to or
// from the buddy lists. CheckInvariants takes every lock of a zone.
package zone
