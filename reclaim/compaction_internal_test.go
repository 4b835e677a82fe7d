package reclaim

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/mmsim/mmsim/zone"
)

// TestDeferral walks compaction_deferred's back-off: after the k-th
// consecutive failure the next 2^k - 1 attempts are skipped and the 2^k-th
// runs, up to 2^6; orders below the lowest failed one are never deferred;
// a successful allocation resets the back-off.
//
// Reference: mm/compaction.c:defer_compaction(), compaction_deferred(),
// compaction_defer_reset().
func TestDeferral(t *testing.T) {
	var zc zoneCompact
	assert.False(t, zc.deferred(4), "nothing failed yet")
	zc.deferReset(4, false) // a success at order 4: compact_order_failed = 5
	for k := 1; k <= 8; k++ {
		zc.deferCompaction(4)
		skipped := 0
		for zc.deferred(4) {
			skipped++
		}
		want := 1<<min(k, compactMaxDeferShift) - 1
		assert.Equal(t, want, skipped, "after %d failures", k)
	}
	assert.False(t, zc.deferred(3), "order 3 is below the lowest failed order")
	assert.True(t, zc.restartingLocked(4), "64 attempts at the maximum shift: restart")
	zc.deferReset(4, true)
	assert.False(t, zc.deferred(4), "an allocation success resets the back-off")
	assert.Equal(t, zone.Order(5), zc.orderFailed)
}
