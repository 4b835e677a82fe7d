// This program demonstrates the page allocator's watermarks on the default
// simulated machine (8 GiB, two CPUs, DMA/DMA32/Normal): it prints
// /proc/buddyinfo and /proc/zoneinfo at boot, allocates order-0 GFP_KERNEL
// pages until the allocator refuses — a zone is skipped once its free pages
// fail the min watermark plus the lowmem reserve that protects it from
// requests that could have used a higher zone — shows that GFP_ATOMIC still
// gets pages from the reserve below min, and prints the two files again.
//
// Watch ZONE_NORMAL: its free count ends at 0, below min. That is the
// kernel's arithmetic, not a leak: pcp refills take batch << alloc_factor
// pages (63 << 5 = 2016 after a long run of allocations) from the buddy
// lists without a watermark check, and NR_FREE_PAGES does not count pages
// sitting on the per-cpu lists. The last refill moved the zone's remaining
// pages to CPU 0's list, where they stay until a drain.
//
// The filler allocates raw kernel pages, which reclaim cannot take back, and
// it is exempt from the OOM killer (oom_score_adj -1000), so the GFP_KERNEL
// failure is warn_alloc's "page allocation failure" after the OOM killer
// found nothing to kill (a simulated panic, reported once). Were the filler
// killable, the OOM killer would choose it, and as an OOM victim it would
// go on into half the min reserve (ALLOC_OOM) — see examples/oom-kill.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatalf("watermarks: %v", err)
	}
}

func run(w io.Writer) error {
	s, err := mmsim.New(mmsim.DefaultConfig())
	if err != nil {
		return fmt.Errorf("booting system: %w", err)
	}
	defer s.Close()
	bw := bufio.NewWriter(w)
	defer bw.Flush()

	fmt.Fprintf(bw, "Booted the default machine: min_free_kbytes %d (the kernel's boot rule).\n\n", s.Sysctl().MinFreeKbytes)
	if err := procfs(bw, s, "at boot"); err != nil {
		return err
	}

	t := s.NewTask("filler")
	if err := s.SetOOMScoreAdj(t, -1000); err != nil {
		return err
	}
	n, failure := fillUntilRefused(s, t, gfp.Kernel)
	fmt.Fprintf(bw, "\nGFP_KERNEL allocated %d pages (%d MiB), then: %v\n", n, n>>8, failure)
	for _, r := range s.Reports() {
		lines := strings.Split(r.Text, "\n")
		fmt.Fprintf(bw, "  report (%s): %s\n", r.Kind, lines[0])
		if len(lines) > 1 {
			fmt.Fprintf(bw, "    ... %d more lines (Mem-Info; for the OOM killer, the task table) ...\n    %s\n", len(lines)-2, lines[len(lines)-1])
		}
	}
	wakes := fmt.Sprintf("%d times", s.Nodes()[0].KswapdWakes())
	if s.Nodes()[0].KswapdWakes() == 1 {
		wakes = "once"
	}
	k := s.Reclaim().Kswapd(0)
	fmt.Fprintf(bw, "kswapd was woken %s and ran %d times; %d runs in a row reclaimed nothing.\n", wakes, k.Runs(), k.Failures())
	if k.Failures() >= zone.MaxReclaimRetries {
		fmt.Fprintln(bw, "The node is hopeless (kswapd_failures >= MAX_RECLAIM_RETRIES): wakeup_kswapd leaves kswapd asleep.")
	}
	fmt.Fprintln(bw, "\nWhere each zone stopped:")
	for _, ty := range []gfp.ZoneType{gfp.ZoneDMA, gfp.ZoneDMA32, gfp.ZoneNormal} {
		z := s.Nodes()[0].Zone(ty)
		fmt.Fprintf(bw, "  %-6s free %7d  min %5d  low %5d  high %5d  protection against Normal requests %5d\n",
			z.Name(), z.FreePages(), z.Watermark(zone.WmarkMin), z.Watermark(zone.WmarkLow),
			z.Watermark(zone.WmarkHigh), z.LowmemReserve(gfp.ZoneNormal))
	}
	fmt.Fprintln(bw, "  (Normal's last pcp refill took up to 63<<5 pages without a watermark check: see the pagesets below.")
	fmt.Fprintln(bw, "   DMA is never used: its protection against Normal requests exceeds its free pages.)")

	a, failure := fillUntilRefused(s, t, gfp.Atomic)
	fmt.Fprintf(bw, "\nGFP_ATOMIC (__GFP_HIGH without direct reclaim: 3/8 of min) then took %d more pages, then: %v\n", a, failure)
	fmt.Fprintln(bw)
	return procfs(bw, s, "after")
}

// fillUntilRefused allocates order-0 pages with mask until the allocator
// refuses, and returns how many it got and the error that stopped it.
func fillUntilRefused(s *mmsim.System, t *memalloc.Task, mask gfp.Mask) (int, error) {
	n := 0
	for {
		if _, err := s.AllocPages(t, mask, 0); err != nil {
			return n, err
		}
		n++
	}
}

// procfs prints /proc/buddyinfo and /proc/zoneinfo, the latter without its
// per-node counters, which stay 0 on a machine without reclaim or mappings.
func procfs(w io.Writer, s *mmsim.System, when string) error {
	fmt.Fprintf(w, "/proc/buddyinfo %s:\n", when)
	if err := s.WriteBuddyinfo(w); err != nil {
		return err
	}
	var zi bytes.Buffer
	if err := s.WriteZoneinfo(&zi); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n/proc/zoneinfo %s (per-node stats omitted):\n", when)
	skip := false
	for _, l := range strings.SplitAfter(zi.String(), "\n") {
		switch {
		case strings.HasPrefix(l, "  per-node stats"):
			skip = true
			continue
		case skip && strings.HasPrefix(l, "      "):
			continue
		}
		skip = false
		io.WriteString(w, l)
	}
	return nil
}
