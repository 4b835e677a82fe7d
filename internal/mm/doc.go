// Package mm is mmsim's model of what user memory is made of, shared by
// reclaim, the OOM killer and the mapping calls: folios with their
// page flags and LRU membership, the per-node LRU lists, anonymous memory
// owned by an address space (struct mm_struct and its rss counters), the
// page cache of simulated files, the swap device, and the processes that
// own address spaces. memalloc.Task keeps only what allocation needs; a
// Proc joins a Task to its MM.
//
// Address spaces: an MM holds its mappings (VMA, with the kernel's
// vm_flags values), a page table (512-entry tables, each a page allocated
// with GFP_PGTABLE_USER) whose entries are none, a present page (the
// shared zero page after a read of untouched anonymous memory), or a swap
// entry, and the rss counters. Faults follow handle_mm_fault: anonymous
// pages, copy-on-write after fork, swap-in, page-cache and shmem pages,
// secretmem's own handler; VM_DROPPABLE strips VM_FAULT_OOM. Each page
// holds one word standing for its contents, so what a dropped, wiped or
// copied page reads back is observable. mmap, munmap, madvise, mlock and
// fork keep the kernel's checks, errno values and accounting
// (Committed_AS, locked_vm, the user's locked_vm for secretmem).
//
// Simplifications, each deliberate: MAP_FIXED, mremap and mprotect are not
// modelled; mappings are placed top-down with no gaps reused; a folio has
// one accessed bit (folio_referenced counts 0 or 1); swap-out completes at
// once (the I/O's modelled cost is charged to the reclaimer) so a swapped
// folio is freed in the same pass and no swap cache remains; the
// flushers' writeback of a dirty page-cache folio completes when they
// write it, so no folio is ever under writeback (PG_writeback,
// nr_writeback) and reclaim's writeback cases do not arise; page tables
// above the PTE level are not allocated; a task is a single-threaded
// process (one task per mm).
//
// Locking, in order:
//
//	MM.mmapLock (mmap_lock: mmap, munmap, madvise, mlock, fork write it;
//	  faults read it)
//	  Model.mu (the LRU lists, every folio's fields, page tables, the
//	    VMA list's contents, page caches, the dirty queue: the kernel's
//	    lru_lock, page-table locks and i_pages lock in one)
//	    memcgState.cgMu (the cgroup tree)
//
// Memory cgroups (memcg*.go) follow mm/memcontrol.c: page counters are
// atomics charged speculatively as page_counter_try_charge does; each
// cgroup has an lruvec per node and a copy of every node counter its
// lruvecs change; charges go through try_charge_memcg with its per-cpu
// stocks (each under its own lock). Secretmem pages are not charged
// (the kernel charges them through filemap_add_folio), nor are swap
// entries moved to the memsw/swap counters.
//
// rss, locked_vm, Committed_AS and swap counters are atomics. Model.mu is
// never held across a call into the page allocator, which may enter
// reclaim and take it; mmapLock may be (faults allocate under it, as in
// the kernel). Reclaim and the OOM reaper change page tables under
// Model.mu alone, as rmap walks do without mmap_lock.
//
// Kernel: include/linux/mm_types.h (struct folio, struct mm_struct,
// struct vm_area_struct), include/linux/mmzone.h (struct lruvec),
// mm/memory.c, mm/mmap.c, mm/vma.c, mm/madvise.c, mm/mlock.c, mm/rmap.c,
// mm/swap.c, mm/filemap.c, mm/shmem.c, mm/swapfile.c, mm/secretmem.c,
// kernel/fork.c, mm/memcontrol.c, mm/memcontrol-v1.c, mm/page_counter.c.
package mm
