// This program meets the same memory pressure three ways — GFP_KERNEL,
// GFP_NOFS, and GFP_KERNEL inside a memalloc_nofs_save() scope — and shows
// which reclaim paths each may use and what happens when they run out.
//
// The machine (128 MiB, no swap) holds a "hog" process's anonymous memory
// (which only the OOM killer can free: there is no swap), some clean page
// cache (any blocking allocation may drop it) and a filesystem's dentry and
// inode caches (only a __GFP_FS allocation's reclaim may shrink them: the
// superblock shrinker returns SHRINK_STOP without it). A kernel task then
// asks for more pages than reclaim can find.
//
//   - GFP_KERNEL drops the cache, shrinks the dentries, and when nothing is
//     left the OOM killer kills the hog: the request succeeds.
//   - GFP_NOFS drops the cache; the dentries go only as far as kswapd
//     (which reclaims with GFP_KERNEL) takes them; then out_of_memory()
//     refuses to kill for a request without __GFP_FS and reports progress,
//     so the request loops: the 10 s stall warning, then mmsim's stall
//     limit (ErrDeadlock), where the kernel would loop for ever.
//   - The NOFS scope behaves as GFP_NOFS: current_gfp_context() clears
//     __GFP_FS from every allocation in it, though the caller passed
//     GFP_KERNEL — the latency histograms are keyed by what the caller
//     passed.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatalf("nofs-reclaim: %v", err)
	}
}

// machine is 128 MiB: DMA and 112 MiB of DMA32, no swap. The stall limit
// is 30 s of simulated time, to keep the demo short.
func machine() mmsim.Config {
	cfg := mmsim.SmallConfig(28672, 28160)
	cfg.StallLimit = 30 * time.Second
	return cfg
}

type scenario struct {
	name  string
	mask  gfp.Mask
	scope bool
}

func run(w io.Writer) error {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	fmt.Fprintln(bw, "Each run: a 128 MiB machine without swap; a hog holds 20000 pages of anonymous memory,")
	fmt.Fprintln(bw, "a file 4000 pages of clean page cache, a filesystem 300 pages of dentries and inodes;")
	fmt.Fprintln(bw, "then a kernel task allocates 12000 order-0 pages with the mask.")
	for _, sc := range []scenario{
		{"GFP_KERNEL", gfp.Kernel, false},
		{"GFP_NOFS", gfp.NoFS, false},
		{"GFP_KERNEL in a NOFS scope", gfp.Kernel, true},
	} {
		if err := runOne(bw, sc); err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
	}
	return nil
}

func runOne(w io.Writer, sc scenario) error {
	s, err := mmsim.New(machine())
	if err != nil {
		return err
	}
	defer s.Close()
	hog, reader, fs, kernel := s.NewTask("hog"), s.NewTask("reader"), s.NewTask("mount"), s.NewTask("kworker")
	if _, err := s.TouchAnon(hog, 20000); err != nil {
		return err
	}
	f := s.NewFile("data", 0)
	if _, err := s.ReadFile(reader, f, 0, 4000); err != nil {
		return err
	}
	dcache := s.NewSuperCache(21)
	if err := dcache.Grow(fs, 21*300); err != nil {
		return err
	}
	s.RunUntilIdle(time.Second) // let kswapd settle
	cached, dentries := s.CachedPages(f), dcache.Objects()
	s.EnableLatency(false)
	start := s.Now()

	var cookie memalloc.Flags
	if sc.scope {
		cookie = kernel.SaveNoFS()
	}
	got := 0
	var failure error
	for got < 12000 {
		if _, err := s.AllocPages(kernel, sc.mask, 0); err != nil {
			failure = err
			break
		}
		got++
	}
	if sc.scope {
		kernel.Restore(cookie)
	}

	fmt.Fprintf(w, "\n=== %s (%s)\n", sc.name, sc.mask.Mode())
	fmt.Fprintf(w, "  got %d of 12000 pages in %v of simulated time\n", got, time.Duration(s.Now()-start))
	if failure != nil {
		fmt.Fprintf(w, "  stopped: %v\n", shorten(failure))
		if errors.Is(failure, mmsim.ErrDeadlock) {
			fmt.Fprintln(w, "  (ErrDeadlock: the kernel would still be looping)")
		}
	}
	fmt.Fprintf(w, "  page cache dropped:      %d of %d pages\n", cached-s.CachedPages(f), cached)
	fmt.Fprintf(w, "  dentries/inodes freed:   %d of %d objects\n", dentries-dcache.Objects(), dentries)
	fmt.Fprintf(w, "  OOM kills:               %d", s.OOM().Kills())
	if s.Killed(hog) {
		fmt.Fprint(w, " (the hog)")
	}
	fmt.Fprintln(w)
	for _, r := range s.Reports() {
		switch {
		case r.Kind == mmsim.ReportAlloc && strings.Contains(r.Text, "stall"):
			fmt.Fprintf(w, "  report: %s\n", firstLine(r.Text))
		case r.Kind == mmsim.ReportOOM:
			fmt.Fprintf(w, "  report: %s\n", firstLine(r.Text))
		}
	}
	hists, keys := s.Latency()
	for _, k := range keys {
		fmt.Fprintf(w, "  latency %-11s %v\n", k, hists[k])
	}
	return nil
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

// shorten keeps an error's first clause.
func shorten(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ", looping through "); i > 0 {
		return msg[:i] + " (looping through " + strings.TrimSuffix(msg[i+len(", looping through "):], ": the kernel would retry for ever") + ")"
	}
	return msg
}
