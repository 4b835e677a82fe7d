// Package reclaim will hold page reclaim: the LRU lists, shrinkers, direct
// reclaim (try_to_free_pages) with its __GFP_IO/__GFP_FS rules, kswapd per
// node, and compaction, implementing the interfaces package zone defines.
//
// Nothing is implemented yet: this package is filled in by the slow-path and
// reclaim issue.
//
// Kernel: mm/vmscan.c, mm/compaction.c.
package reclaim
