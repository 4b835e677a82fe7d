package oom

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The expected values below are worked by hand from oom_badness and
// proc_oom_score (fs/proc/base.c), not computed by the code under test.
func TestBadness(t *testing.T) {
	u := Usage{RSSPages: 100000, SwapPages: 5000, PgTablesBytes: 409600} // 100 page-table pages
	tests := []struct {
		name   string
		u      Usage
		adj    int
		total  int64
		points int64
		ok     bool
		score  int64
	}{
		// 105100 pages; (1000 + 105100000/2000000) * 2 / 3 = 1052*2/3.
		{"adj 0", u, 0, 2000000, 105100, true, 701},
		// + 500 * (2000000/1000); 1105100000/2000000 = 552; 1552*2/3.
		{"adj +500", u, 500, 2000000, 1105100, true, 1034},
		// - 500*2000; -894900000/2000000 = -447 (toward zero); 553*2/3.
		{"adj -500", u, -500, 2000000, -894900, true, 368},
		// totalpages/1000 is floored: 2500999/1000 = 2500.
		{"floor of total/1000", u, 1, 2500999, 107600, true, 695},
		// -3*1000/2000 = -1.5 truncates to -1 (floor would give 665).
		{"truncation toward zero", Usage{RSSPages: 1}, -2, 2000, -3, true, 666},
		// The page-table bytes are floored to pages: 4095 bytes are 0.
		{"pgtables floor", Usage{RSSPages: 10, PgTablesBytes: 8191}, 0, 1000000, 11, true, 666},
		{"adj max, empty", Usage{}, 1000, 2000000, 2000000, true, 1333},
		{"adj max, all of memory", Usage{RSSPages: 2000000}, 1000, 2000000, 4000000, true, 2000},
		{"adj min excludes", u, -1000, 2000000, math.MinInt64, false, 0},
		{"adj below min clamps and excludes", u, -5000, 2000000, math.MinInt64, false, 0},
		{"adj above max clamps", Usage{}, 7000, 2000000, 2000000, true, 1333},
		{"no memory at all", u, 0, 0, 105100, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			points, ok := Badness(tt.u, tt.adj, tt.total)
			assert.Equal(t, tt.points, points)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.score, ProcScore(tt.u, tt.adj, tt.total))
		})
	}
}

// ProcScore stays in 0..2000 over the whole valid range.
func TestProcScoreRange(t *testing.T) {
	const total = 1 << 21
	for adj := -1000; adj <= 1000; adj += 7 {
		for _, rss := range []int64{0, 1, 1000, total / 2, total} {
			s := ProcScore(Usage{RSSPages: rss}, adj, total)
			assert.True(t, s >= 0 && s <= 2000, "adj %d rss %d: score %d", adj, rss, s)
		}
	}
}

func TestAdjFromLegacy(t *testing.T) {
	tests := []struct {
		oomAdj, adj int
		ok          bool
	}{
		{15, 1000, true},
		{-17, -1000, true},
		{-16, -941, true}, // -16000/17 = -941.17, toward zero
		{1, 58, true},
		{0, 0, true},
		{16, 0, false},
		{-18, 0, false},
	}
	for _, tt := range tests {
		adj, ok := AdjFromLegacy(tt.oomAdj)
		assert.Equal(t, tt.adj, adj, "oom_adj %d", tt.oomAdj)
		assert.Equal(t, tt.ok, ok, "oom_adj %d", tt.oomAdj)
	}
}
