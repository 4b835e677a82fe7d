// Package mm is mmsim's model of what user memory is made of, shared by
// reclaim, the OOM killer and (later) the mapping code: folios with their
// page flags and LRU membership, the per-node LRU lists, anonymous memory
// owned by an address space (struct mm_struct and its rss counters), the
// page cache of simulated files, the swap device, and the processes that
// own address spaces. memalloc.Task keeps only what allocation needs; a
// Proc joins a Task to its MM.
//
// Simplifications, each deliberate: an anonymous folio has one owner (no
// fork, so no shared anon rmap); a file folio is in the page cache only
// (file mappings come with the mapping issue); swap-out completes at once
// (the I/O's modelled cost is charged to the reclaimer) so a swapped folio
// is freed in the same pass; swap-in of a swapped page is not modelled;
// the flushers' writeback of a dirty page-cache folio completes when they
// write it (their cost is their own time), so no folio is ever under
// writeback (PG_writeback, nr_writeback) and reclaim's writeback cases do
// not arise.
//
// Locking: one mutex, the Model's, protects the LRU lists, every folio's
// fields, the mm folio sets, the page cache and the dirty queue; rss and
// swap counters are atomics. It is never held across a call into the page
// allocator, which may enter reclaim and take it.
//
// Kernel: include/linux/mm_types.h (struct folio, struct mm_struct),
// include/linux/mmzone.h (struct lruvec), mm/swap.c, mm/filemap.c,
// mm/memory.c, mm/swapfile.c.
package mm
