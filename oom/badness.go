package oom

import "math"

// OOM score adjustment limits, and the legacy oom_adj ones.
//
// Kernel: include/uapi/linux/oom.h.
const (
	ScoreAdjMin = -1000 // OOM_SCORE_ADJ_MIN: never killed
	ScoreAdjMax = 1000  // OOM_SCORE_ADJ_MAX

	Disable   = -17 // OOM_DISABLE (legacy oom_adj)
	AdjustMin = -16 // OOM_ADJUST_MIN
	AdjustMax = 15  // OOM_ADJUST_MAX
)

// Usage is what oom_badness counts of a task's mm, in pages and bytes: its
// resident set (file + anon + shmem pages), its swap entries and its page
// tables.
//
// Kernel: include/linux/mm.h:get_mm_rss_sum(), get_mm_counter_sum(MM_SWAPENTS),
// mm_pgtables_bytes().
type Usage struct {
	RSSPages      int64
	SwapPages     int64
	PgTablesBytes int64
}

// pageSize is PAGE_SIZE on x86_64.
const pageSize = 4096

// Badness returns the task's badness for a machine (or memcg) of
// totalPages: its rss, swap entries and page-table pages, plus adj times
// totalPages/1000 (floored) — possibly negative, never clamped. ok is false
// for a task oom_badness excludes: adj == OOM_SCORE_ADJ_MIN, for which it
// returns LONG_MIN (math.MinInt64) as the kernel does. The other exclusions
// (global init, kernel threads, no mm, MMF_OOM_SKIP, vfork) are properties
// of the task, not of its usage: the Killer applies them before it calls
// Badness.
//
// An adj outside [-1000, 1000] cannot be written to /proc/PID/oom_score_adj
// (the kernel refuses it with -EINVAL): Badness clamps it into the range.
//
// Kernel: mm/oom_kill.c:oom_badness().
func Badness(u Usage, adj int, totalPages int64) (points int64, ok bool) {
	adj = min(max(adj, ScoreAdjMin), ScoreAdjMax)
	if adj == ScoreAdjMin {
		return math.MinInt64, false
	}
	points = u.RSSPages + u.SwapPages + u.PgTablesBytes/pageSize
	// totalpages is unsigned long in the kernel: a negative total is no
	// machine, and 0 leaves the adjustment out.
	if totalPages > 0 {
		points += int64(adj) * (totalPages / 1000)
	}
	return points, true
}

// ProcScore returns what /proc/PID/oom_score prints for the task:
// (1000 + badness*1000/totalPages) * 2 / 3 in signed arithmetic that
// truncates toward zero, in 0..2000, and 0 for an excluded task. totalPages
// is totalram + total swap pages (Killer.TotalPages); a total of 0 or less,
// which no machine has, gives 0.
//
// Kernel: fs/proc/base.c:proc_oom_score().
func ProcScore(u Usage, adj int, totalPages int64) int64 {
	badness, ok := Badness(u, adj, totalPages)
	if !ok || totalPages <= 0 {
		return 0
	}
	return (1000 + badness*1000/totalPages) * 2 / 3
}

// AdjFromLegacy converts a value written to the legacy /proc/PID/oom_adj
// into an oom_score_adj: OOM_ADJUST_MAX (15) maps to OOM_SCORE_ADJ_MAX,
// OOM_DISABLE (-17) to OOM_SCORE_ADJ_MIN, anything else to adj*1000/17.
// ok is false for a value outside [-17, 15], which the kernel refuses with
// -EINVAL.
//
// Kernel: fs/proc/base.c:oom_adj_write().
func AdjFromLegacy(oomAdj int) (adj int, ok bool) {
	if oomAdj < Disable || oomAdj > AdjustMax {
		return 0, false
	}
	if oomAdj == AdjustMax {
		return ScoreAdjMax, true
	}
	return oomAdj * ScoreAdjMax / -Disable, true
}
