package mmsim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestHistogramBuckets(t *testing.T) {
	// Every value lies in its bucket, and buckets tile the line.
	prevHigh := int64(-1)
	for i := 0; i < 40*histSub; i++ {
		hi := bucketHigh(i)
		assert.Equal(t, i, bucket(prevHigh+1), "low edge of bucket %d", i)
		assert.Equal(t, i, bucket(hi), "high edge of bucket %d", i)
		assert.LessOrEqual(t, float64(hi-prevHigh), float64(prevHigh+1)/histSub+1, "bucket %d is within 12.5%%", i)
		prevHigh = hi
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	for v := int64(1); v <= 1000; v++ {
		h.add(v * 1000) // 1 µs .. 1 ms
	}
	assert.Equal(t, int64(1000), h.Count())
	assert.Equal(t, time.Millisecond, h.Max())
	p50 := h.Quantile(0.5)
	assert.True(t, p50 >= 500*time.Microsecond && p50 <= 563*time.Microsecond, "p50 %v", p50)
	p99 := h.Quantile(0.99)
	assert.True(t, p99 >= 990*time.Microsecond && p99 <= time.Millisecond, "p99 %v", p99)
	assert.Equal(t, time.Duration(500500), h.Mean())
}
