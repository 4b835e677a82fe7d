// Package reclaim is page reclaim on the mm model: direct reclaim for the
// page allocator's slow path (try_to_free_pages), kswapd per node, the
// shrinkers, the flusher threads that clean dirty page cache, and the swap
// device anonymous memory goes to; and memory compaction (direct
// compaction, kcompactd per node, proactive compaction, vm.compact_memory),
// which moves movable folios to make free blocks of high order. It
// implements zone.Reclaimer and zone.Compactor.
//
// What reclaim may do follows the kernel (SPEC.md §7): it never writes dirty
// file pages (it marks them PG_reclaim and activates them; the flushers
// write); __GFP_IO gates adding anonymous pages to swap; __GFP_FS gates
// pageout of dirty swap-backed pages and the filesystem shrinkers; a
// non-blocking mask never reaches it (the allocator stops first).
//
// Simplified, and documented where it is: the LRU cost model
// (lru_note_cost) is not tracked, so get_scan_count's SCAN_FRACT split is
// the plain swappiness one (60:140); workingset refault detection is not
// modelled; a swap-out completes at once, its I/O cost charged to the
// reclaimer; the classic two-list LRU is modelled, not MGLRU.
//
// Compaction's simplifications are listed at the top of compaction.go.
//
// Kernel: mm/vmscan.c, mm/shrinker.c, fs/super.c, fs/fs-writeback.c,
// mm/compaction.c.
package reclaim
