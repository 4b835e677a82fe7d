package mmsim_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/testutil"
	"github.com/mmsim/mmsim/zone"
)

// The benchmarks of the zone issue. Each runs the naive reference
// (internal/testutil.RefBuddy) in the same run and reports the ratio as
// x-naive; the bare free-page stack is reported as x-floor where it applies.
// Run: make bench BENCH=. PKG=. BENCHFLAGS='-benchmem -count 5'

// timeN times f for n iterations.
func timeN(n int, f func()) time.Duration {
	start := time.Now()
	for range n {
		f()
	}
	return time.Since(start)
}

// timeInterleaved runs each of fs n times, in turns of a few thousand
// calls, and returns the time each took in all. On a shared machine whose
// speed drifts from second to second, each then sees the same drift, and
// their ratio holds still where back-to-back runs' does not.
func timeInterleaved(n int, fs ...func()) []time.Duration {
	const turn = 4096
	d := make([]time.Duration, len(fs))
	for done := 0; done < n; done += turn {
		m := min(turn, n-done)
		for i, f := range fs {
			d[i] += timeN(m, f)
		}
	}
	return d
}

// reportRatios reports ours's ns/op (replacing the timer's, which also
// timed the references) and ours's ratio to each reference.
func reportRatios(b *testing.B, ours, naive time.Duration, bare ...time.Duration) {
	b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(float64(ours)/float64(naive), "x-naive")
	b.ReportMetric(float64(naive.Nanoseconds())/float64(b.N), "naive-ns/op")
	for _, f := range bare {
		b.ReportMetric(float64(ours)/float64(f), "x-floor")
	}
}

// BenchmarkAllocFreeOrder0 is the order-0 pair: AllocPages(t, GFP_KERNEL, 0)
// then FreePages, warm. The reference keeps the freed page's buddy
// allocated so that the page never merges.
func BenchmarkAllocFreeOrder0(b *testing.B) {
	s, err := mmsim.New(mmsim.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	t := s.NewTask("bench")
	for range 100 { // warm the pcp list
		p, _ := s.AllocPages(t, gfp.Kernel, 0)
		_ = s.FreePages(t, p, 0)
	}
	ref := testutil.NewRefBuddy(1 << 21)
	keep, _ := ref.Alloc(0)
	_ = keep
	floor := testutil.NewFreeStack(1 << 10)
	b.ReportAllocs()
	b.ResetTimer()
	d := timeInterleaved(b.N, func() {
		p, err := s.AllocPages(t, gfp.Kernel, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.FreePages(t, p, 0); err != nil {
			b.Fatal(err)
		}
	}, func() {
		p, _ := ref.Alloc(0)
		ref.Free(p, 0)
	}, func() {
		p, _ := floor.Pop()
		floor.Push(p)
	})
	reportRatios(b, d[0], d[1], d[2])
}

// churnOrder draws an order with P(o) = (2/3)(1/3)^o, capped at 10.
func churnOrder(r *rand.Rand) zone.Order {
	o := zone.Order(0)
	for o < zone.MaxPageOrder && r.IntN(3) == 0 {
		o++
	}
	return o
}

// BenchmarkChurn holds 196,608 pages' worth of blocks (75% of 1 GiB); each
// step frees a random held block and allocates a new one with GFP_KERNEL,
// orders drawn with P(o) = (2/3)(1/3)^o, seed 1. The reference does the same
// on a buddy of the machine's size.
func BenchmarkChurn(b *testing.B) {
	const hold = 196608
	s, err := mmsim.New(mmsim.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	t := s.NewTask("churn")
	type blk struct {
		p zone.Page
		o zone.Order
	}
	r := rand.New(rand.NewPCG(1, 1))
	var held []blk
	for n := 0; n < hold; {
		o := churnOrder(r)
		p, err := s.AllocPages(t, gfp.Kernel, o)
		if err != nil {
			b.Fatal(err)
		}
		held = append(held, blk{p, o})
		n += 1 << o
	}
	ref := testutil.NewRefBuddy(1 << 21)
	type rblk struct {
		p int32
		o int
	}
	rr := rand.New(rand.NewPCG(1, 1))
	var rheld []rblk
	for n := 0; n < hold; {
		o := int(churnOrder(rr))
		p, _ := ref.Alloc(o)
		rheld = append(rheld, rblk{p, o})
		n += 1 << o
	}
	b.ReportAllocs()
	b.ResetTimer()
	d := timeInterleaved(b.N, func() {
		i := r.IntN(len(held))
		if err := s.FreePages(t, held[i].p, held[i].o); err != nil {
			b.Fatal(err)
		}
		o := churnOrder(r)
		p, err := s.AllocPages(t, gfp.Kernel, o)
		if err != nil {
			b.Fatal(err)
		}
		held[i] = blk{p, o}
	}, func() {
		i := rr.IntN(len(rheld))
		ref.Free(rheld[i].p, rheld[i].o)
		o := int(churnOrder(rr))
		p, _ := ref.Alloc(o)
		rheld[i] = rblk{p, o}
	})
	reportRatios(b, d[0], d[1])
}

// bigConfig is a 64 GiB machine: DMA, 3 GiB of DMA32, 61 GiB of Normal.
func bigConfig() mmsim.Config {
	cfg := mmsim.DefaultConfig()
	cfg.Nodes[0].Zones[2].Spanned = 61 << (30 - 12)
	cfg.Nodes[0].Zones[2].Present = 61 << (30 - 12)
	cfg.Nodes[0].Zones[2].Managed = 61<<(30-12) - 61<<(30-12)/64
	return cfg
}

func managed(cfg mmsim.Config) int64 {
	var n int64
	for _, z := range cfg.Nodes[0].Zones {
		n += z.Managed
	}
	return n
}

func heapGrowth(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.HeapAlloc - before.HeapAlloc
}

// BenchmarkNew boots a 64 GiB machine, next to the reference's init of the
// same number of pages, and reports the host memory per simulated page right
// after New (heap growth / managed pages) for both.
func BenchmarkNew(b *testing.B) {
	cfg := bigConfig()
	pages := managed(cfg)
	var sys *mmsim.System
	var ref *testutil.RefBuddy
	b.ReportAllocs()
	ours := timeN(b.N, func() {
		var err error
		if sys, err = mmsim.New(cfg); err != nil {
			b.Fatal(err)
		}
	})
	b.StopTimer()
	naive := timeN(b.N, func() { ref = testutil.NewRefBuddy(int(pages)) })
	sys, ref = nil, nil
	oursBytes := heapGrowth(func() { sys, _ = mmsim.New(cfg) })
	refBytes := heapGrowth(func() { ref = testutil.NewRefBuddy(int(pages)) })
	runtime.KeepAlive(sys)
	runtime.KeepAlive(ref)
	b.ReportMetric(float64(ours)/float64(naive), "x-naive")
	b.ReportMetric(float64(oursBytes)/float64(pages), "B/page")
	b.ReportMetric(float64(refBytes)/float64(pages), "naive-B/page")
}

// BenchmarkAllocParallel runs the order-0 pair on tasks=N goroutines, each
// with its own task (spread over the two CPUs), for the scaling report.
func BenchmarkAllocParallel(b *testing.B) {
	for _, tasks := range []int{1, 2} {
		b.Run(fmt.Sprintf("tasks=%d", tasks), func(b *testing.B) {
			s, err := mmsim.New(mmsim.DefaultConfig())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.SetParallelism(1)
			runtime.GOMAXPROCS(tasks)
			defer runtime.GOMAXPROCS(runtime.NumCPU())
			b.RunParallel(func(pb *testing.PB) {
				t := s.NewTask("par")
				for pb.Next() {
					p, err := s.AllocPages(t, gfp.Kernel, 0)
					if err != nil {
						b.Error(err)
						return
					}
					_ = s.FreePages(t, p, 0)
				}
			})
		})
	}
}

// order0Pairs runs b's loop of order-0 AllocPages(GFP_KERNEL) + FreePages
// pairs on a machine built from cfg: what a facility that hooks every
// allocation costs the plain pair.
func order0Pairs(b *testing.B, cfg mmsim.Config) {
	b.Helper()
	s, err := mmsim.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	t := s.NewTask("bench")
	b.ReportAllocs()
	for b.Loop() {
		p, err := s.AllocPages(t, gfp.Kernel, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.FreePages(t, p, 0); err != nil {
			b.Fatal(err)
		}
	}
}
