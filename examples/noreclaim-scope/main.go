// This program runs the bcachefs pattern from the PF_MEMALLOC_NORECLAIM
// debate (v6.9–v6.11, reverted): allocate under a lock without reclaim,
// and on failure drop the lock and retry with GFP_KERNEL. It compares the
// lock hold time, in simulated time, of three ways to allocate under the
// lock while a reader keeps the page cache growing and memory short:
//
//   - plain GFP_KERNEL under the lock: direct reclaim runs with the lock
//     held;
//   - GFP_NOWAIT under the lock, GFP_KERNEL after dropping it;
//   - GFP_KERNEL in a PF_MEMALLOC_NORECLAIM scope (the what-if: 6.9's
//     current_gfp_context() clears __GFP_DIRECT_RECLAIM), GFP_KERNEL after
//     dropping the lock.
//
// Most allocations find free pages (kswapd keeps ahead, and the fast path
// costs no simulated time), so the medians are 0: the difference is in the
// tail — the allocations that ran direct reclaim with the lock held.
//
// Then it asks what the debate asked: a __GFP_NOFAIL request inside the
// NORECLAIM scope cannot reclaim, so the page allocator WARNs once and
// fails it — a NOFAIL caller that does not expect NULL.
package main

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatalf("noreclaim-scope: %v", err)
	}
}

// machine is 128 MiB: DMA and 112 MiB of DMA32, no swap.
func machine() mmsim.Config {
	return mmsim.SmallConfig(28672, 28160)
}

// strategy allocates one page "under the lock" and returns the page and
// the lock hold time; it may drop the lock and retry outside it.
type strategy struct {
	name  string
	alloc func(s *mmsim.System, t *memalloc.Task) (zone.Page, time.Duration, error)
}

func run(w io.Writer) error {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	fmt.Fprintln(bw, "Each run: a 128 MiB machine without swap, 24000 pages held by a kernel cache, a reader")
	fmt.Fprintln(bw, "writing a file through the page cache; a worker makes 3000 allocations under a lock,")
	fmt.Fprintln(bw, "each followed by 3 pages written to the file. Lock hold time in simulated time:")
	fmt.Fprintln(bw)
	for _, st := range []strategy{
		{"GFP_KERNEL under the lock", underLock},
		{"GFP_NOWAIT, then unlock + GFP_KERNEL", tryThenRetry(gfp.NoWait, false)},
		{"NORECLAIM scope (what-if), then unlock + GFP_KERNEL", tryThenRetry(gfp.Kernel, true)},
	} {
		if err := runOne(bw, st); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
	}
	return nofail(bw)
}

// underLock allocates with GFP_KERNEL with the lock held throughout.
func underLock(s *mmsim.System, t *memalloc.Task) (zone.Page, time.Duration, error) {
	start := s.Now()
	p, err := s.AllocPages(t, gfp.Kernel, 0)
	return p, time.Duration(s.Now() - start), err
}

// tryThenRetry allocates under the lock without reclaim — with mask, in a
// NORECLAIM scope if scope — and, failing, drops the lock and allocates
// with GFP_KERNEL outside it.
func tryThenRetry(mask gfp.Mask, scope bool) func(*mmsim.System, *memalloc.Task) (zone.Page, time.Duration, error) {
	return func(s *mmsim.System, t *memalloc.Task) (zone.Page, time.Duration, error) {
		start := s.Now()
		var cookie memalloc.Flags
		if scope {
			cookie = t.SaveFlags(memalloc.PFMemallocNoReclaim)
		}
		p, err := s.AllocPages(t, mask|gfp.NoWarn, 0)
		if scope {
			t.Restore(cookie)
		}
		hold := time.Duration(s.Now() - start)
		if err == nil {
			return p, hold, nil
		}
		// Drop the lock, allocate with reclaim, take the lock again.
		p, err = s.AllocPages(t, gfp.Kernel, 0)
		return p, hold, err
	}
}

func setup(s *mmsim.System) (*memalloc.Task, *memalloc.Task, *mmsim.File, error) {
	kcache, reader := s.NewTask("kcache"), s.NewTask("reader")
	for range 24000 {
		if _, err := s.AllocPages(kcache, gfp.Kernel, 0); err != nil {
			return nil, nil, nil, err
		}
	}
	f := s.NewFile("stream", 0)
	if _, err := s.ReadFile(reader, f, 0, 6000); err != nil {
		return nil, nil, nil, err
	}
	return kcache, reader, f, nil
}

func runOne(w io.Writer, st strategy) error {
	s, err := mmsim.New(machine())
	if err != nil {
		return err
	}
	defer s.Close()
	_, reader, f, err := setup(s)
	if err != nil {
		return err
	}
	worker := s.NewTask("worker")
	var hold mmsim.Histogram
	reclaimedUnderLock := 0
	next := int64(6000)
	start := s.Now()
	for range 3000 {
		// The pages stay allocated: the worker keeps what it takes.
		_, d, err := st.alloc(s, worker)
		if err != nil {
			return err
		}
		hold.Add(d)
		if d > 0 {
			reclaimedUnderLock++
		}
		if _, err := s.WriteFile(reader, f, next, 3); err != nil {
			return err
		}
		next += 3
	}
	fmt.Fprintf(w, "  %s\n", st.name)
	fmt.Fprintf(w, "    hold: %v p99.9=%v\n", &hold, hold.Quantile(0.999))
	fmt.Fprintf(w, "    %d of %d allocations held the lock across direct reclaim; the run took %v of simulated time\n",
		reclaimedUnderLock, hold.Count(), time.Duration(s.Now()-start))
	return nil
}

// nofail asks for a __GFP_NOFAIL page inside the NORECLAIM scope with memory
// short.
func nofail(w io.Writer) error {
	s, err := mmsim.New(machine())
	if err != nil {
		return err
	}
	defer s.Close()
	if _, _, _, err := setup(s); err != nil {
		return err
	}
	t := s.NewTask("bch-worker")
	cookie := t.SaveFlags(memalloc.PFMemallocNoReclaim)
	var failure error
	n := 0
	for ; n < 20000; n++ {
		if _, err := s.AllocPages(t, gfp.Kernel|gfp.NoFail, 0); err != nil {
			failure = err
			break
		}
	}
	t.Restore(cookie)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "GFP_KERNEL|__GFP_NOFAIL inside the NORECLAIM scope (effective mask without __GFP_DIRECT_RECLAIM):")
	fmt.Fprintf(w, "  %d pages, then: %v\n", n, failure)
	for _, r := range s.Reports() {
		if r.Kind == mmsim.ReportWarn {
			fmt.Fprintf(w, "  WARNING: %s (%s)\n", r.Text, r.Site)
		}
		if r.Kind == mmsim.ReportAlloc {
			fmt.Fprintf(w, "  report: %s\n", strings.SplitN(r.Text, "\n", 2)[0])
		}
	}
	fmt.Fprintln(w, "  A NOFAIL request that cannot reclaim returns NULL after one WARN: the reason the scope was reverted.")
	return nil
}
