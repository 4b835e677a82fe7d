package mmsim

import (
	"fmt"
	"math/bits"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/mmsim/mmsim/gfp"
)

// Latency accounting: how long each AllocPages call took in simulated time,
// as histograms per gfp mask and, optionally, per call site. Off by
// default: the allocation path then pays one pointer test.

// histSub is the number of sub-buckets per power of two: values are kept
// to within 1/histSub (12.5%).
const histSub = 8

// Histogram is a log-linear histogram of durations in simulated
// nanoseconds: exact below 8 ns, then eight buckets per power of two.
type Histogram struct {
	count   int64
	sum     int64
	max     int64
	buckets [64 * histSub]int64
}

// bucket returns v's bucket.
func bucket(v int64) int {
	if v < histSub {
		return int(max(v, 0))
	}
	e := bits.Len64(uint64(v)) - 1 // v in [2^e, 2^(e+1))
	sub := int(v>>(e-3)) & (histSub - 1)
	return (e-2)*histSub + sub
}

// bucketHigh returns the largest value of bucket i.
func bucketHigh(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	e := i/histSub + 2
	sub := int64(i % histSub)
	lo := int64(1)<<e + sub<<(e-3)
	return lo + int64(1)<<(e-3) - 1
}

func (h *Histogram) add(v int64) {
	h.count++
	h.sum += v
	h.max = max(h.max, v)
	h.buckets[bucket(v)]++
}

// Add records one sample: a caller's own interval in simulated time, such
// as a lock hold measured with System.Now.
func (h *Histogram) Add(d time.Duration) { h.add(int64(d)) }

// Count returns the number of samples.
func (h *Histogram) Count() int64 { return h.count }

// Max returns the largest sample, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the mean sample.
func (h *Histogram) Mean() time.Duration {
	if h.count == 0 {
		return 0
	}
	return time.Duration(h.sum / h.count)
}

// Quantile returns the q-quantile (0..1) as the upper edge of its bucket
// (at most 12.5% above the true value), never above Max.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	rank := int64(q*float64(h.count) + 0.5)
	rank = min(max(rank, 1), h.count)
	var seen int64
	for i, n := range h.buckets {
		seen += n
		if seen >= rank {
			return time.Duration(min(bucketHigh(i), h.max))
		}
	}
	return time.Duration(h.max)
}

// String prints count, p50, p99 and max.
func (h *Histogram) String() string {
	return fmt.Sprintf("n=%d p50=%v p99=%v max=%v", h.count, h.Quantile(0.5), h.Quantile(0.99), h.Max())
}

// latency holds the histograms.
type latency struct {
	callSites bool
	mu        sync.Mutex
	byKey     map[string]*Histogram
}

// EnableLatency starts recording the simulated latency of every AllocPages
// call, keyed by the mask as the tracepoint prints it ("GFP_KERNEL") and,
// with callSites, by the caller's file:line too ("GFP_KERNEL @ main.go:42").
// Call it before the calls to measure.
func (s *System) EnableLatency(callSites bool) {
	s.lat.Store(&latency{callSites: callSites, byKey: map[string]*Histogram{}})
	s.setEntry()
}

// Latency returns a copy of the latency histograms by key, and the keys in
// order.
func (s *System) Latency() (map[string]*Histogram, []string) {
	l := s.lat.Load()
	if l == nil {
		return nil, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]*Histogram, len(l.byKey))
	keys := make([]string, 0, len(l.byKey))
	for k, h := range l.byKey {
		c := *h
		out[k] = &c
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return out, keys
}

// record adds one call's latency; skip is the caller depth of the call
// site.
func (l *latency) record(mask gfp.Mask, d int64, skip int) {
	key := mask.String()
	if l.callSites {
		if _, file, line, ok := runtime.Caller(skip); ok {
			for i := len(file) - 1; i >= 0; i-- {
				if file[i] == '/' {
					file = file[i+1:]
					break
				}
			}
			key = fmt.Sprintf("%s @ %s:%d", key, file, line)
		}
	}
	l.mu.Lock()
	h := l.byKey[key]
	if h == nil {
		h = &Histogram{}
		l.byKey[key] = h
	}
	h.add(d)
	l.mu.Unlock()
}
