// This program puts a small machine (256 MiB, no swap) under anonymous
// memory pressure from four processes with different oom_score_adj, as
// the mm list's OOM discussions set it up: a database told to be spared
// (-500), a browser told to go first (+300), a batch job (0) and sshd,
// exempt (-1000). They touch memory in turns until the OOM killer steps in.
// The program prints /proc/PID/oom_score for each before the OOM, the OOM
// report as the kernel prints it, the reaper's line, and the scores after.
//
// Watch the scores: oom_score is (1000 + badness*1000/totalpages)*2/3,
// where badness is rss + swap entries + page-table pages plus
// oom_score_adj * totalpages/1000 — so the browser, smaller than the
// database, is killed first, and sshd never is.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/memalloc"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatalf("oom-kill: %v", err)
	}
}

// machine is a 256 MiB VM: DMA and 240 MiB of DMA32.
func machine() mmsim.Config {
	return mmsim.SmallConfig(61440, 60416)
}

type proc struct {
	t     *memalloc.Task
	adj   int
	chunk int64 // pages touched per turn
}

func run(w io.Writer) error {
	s, err := mmsim.New(machine())
	if err != nil {
		return err
	}
	defer s.Close()
	bw := bufio.NewWriter(w)
	defer bw.Flush()

	procs := []*proc{
		{t: s.NewTask("postgres"), adj: -500, chunk: 400},
		{t: s.NewTask("chrome"), adj: 300, chunk: 300},
		{t: s.NewTask("batch"), adj: 0, chunk: 200},
		{t: s.NewTask("sshd"), adj: -1000, chunk: 20},
	}
	for _, p := range procs {
		if err := s.SetOOMScoreAdj(p.t, p.adj); err != nil {
			return err
		}
	}
	fmt.Fprintf(bw, "A 256 MiB machine without swap: totalpages (RAM + swap) = %d.\n\n", s.OOM().TotalPages())

	// Touch memory in turns until the first kill.
	for s.OOM().Kills() == 0 {
		for _, p := range procs {
			if s.Killed(p.t) {
				continue
			}
			if _, err := s.TouchAnon(p.t, p.chunk); err != nil && !errors.Is(err, mmsim.ErrKilled) {
				return fmt.Errorf("%s: %w", p.t.Comm(), err)
			}
			if s.OOM().Kills() > 0 {
				break
			}
		}
	}
	for _, r := range s.Reports() {
		if r.Kind == mmsim.ReportOOM {
			fmt.Fprintf(bw, "The kernel log (the OOM report; mmsim prints no CPU line and no stack):\n\n%s\n\n", r.Text)
		}
	}
	scores(bw, s, procs, "right after the kill (the victim is still resident)")

	// The victim does not exit by itself: the reaper takes its memory
	// after OOM_REAPER_DELAY.
	s.Sleep(3 * time.Second)
	for _, r := range s.Reports() {
		if r.Kind == mmsim.ReportInfo {
			fmt.Fprintf(bw, "%s\n\n", r.Text)
		}
	}
	scores(bw, s, procs, "after the reaper (the victim's mm is MMF_OOM_SKIP: it scores 0)")
	fmt.Fprintf(bw, "Simulated time: %v.\n", time.Duration(s.Now()))
	return nil
}

func scores(w io.Writer, s *mmsim.System, procs []*proc, when string) {
	fmt.Fprintf(w, "/proc/PID/oom_score %s:\n", when)
	fmt.Fprintf(w, "  %-8s %5s %6s %9s %9s %s\n", "comm", "pid", "adj", "rss", "oom_score", "")
	for _, p := range procs {
		u, _ := s.Usage(p.t)
		score, _ := s.OOMScore(p.t)
		state := ""
		if s.Killed(p.t) {
			state = "killed"
		}
		fmt.Fprintf(w, "  %-8s %5d %6d %9d %9d %s\n", p.t.Comm(), p.t.PID(), p.adj, u.RSSPages, score, state)
	}
	fmt.Fprintln(w)
}
