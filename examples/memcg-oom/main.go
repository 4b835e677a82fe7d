// This program shows memory cgroups at their limits, in Linux 7.2's terms
// (cgroup v2), on the default machine (8 GiB, no swap).
//
// Two cgroups, "batch" and "web", each get memory.max = 64 MiB. web reads a
// file and touches some anonymous memory, and is then left alone. batch
// first reads three times its limit of file data: every charge past the
// limit runs memcg reclaim (try_to_free_mem_cgroup_pages, traced by
// mm_vmscan_memcg_reclaim_begin/end), which takes batch's own page cache,
// and nothing else on the machine. Then a task of batch grows anonymous
// memory. With no swap nothing of it can be reclaimed; after
// MAX_RECLAIM_RETRIES the charge (GFP_KERNEL, from the anonymous fault)
// calls the memcg OOM killer, which chooses among batch's tasks only
// (CONSTRAINT_MEMCG) and prints the cgroup's counters and memory.stat
// instead of the machine's Mem-Info. web, the rest of the machine, and
// kswapd see nothing of it.
//
// Last, a third cgroup, "fs", shows the rule that differs from a global
// OOM (SPEC §8.2): out_of_memory returns "progress" without killing for a
// request without __GFP_FS only when the OOM is global. A GFP_NOFS charge
// (a filesystem allocating accounted kernel memory) in a full cgroup is
// OOM-killed for.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

const (
	pageSize = 4096
	mib      = 1 << 20
)

// facts is what the run established, for the test.
type facts struct {
	ReclaimRounds   int   // mm_vmscan_memcg_reclaim_begin events while batch read
	ReclaimedPages  int64 // their nr_reclaimed
	BatchPeak       int64 // batch's memory.peak in bytes
	Victim          string
	OOMHeader       string
	WebBefore       int64
	WebAfter        int64
	KswapdWakes     int64
	GlobalOOM       bool
	NOFSKilled      bool
	NOFSHeader      string
	BatchOOMKills   string
	OtherOOMReports int
}

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "memcg-oom:", err)
		os.Exit(1)
	}
}

func run(w io.Writer) error {
	_, err := simulate(w)
	return err
}

func simulate(w io.Writer) (*facts, error) {
	f := &facts{}
	cfg := mmsim.DefaultConfig()
	s, err := mmsim.New(cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	admin := s.NewTask("admin")
	mk := func(name string, max int64) (*mmsim.Cgroup, error) {
		cg, err := s.NewCgroup(s.RootCgroup(), name)
		if err != nil {
			return nil, err
		}
		return cg, s.WriteCgroupFile(admin, cg, "memory.max", fmt.Sprint(max))
	}
	batch, err := mk("batch", 64*mib)
	if err != nil {
		return nil, err
	}
	web, err := mk("web", 64*mib)
	if err != nil {
		return nil, err
	}
	read := func(cg *mmsim.Cgroup, file string) string {
		text, err := s.ReadCgroupFile(cg, file)
		if err != nil {
			return err.Error()
		}
		return text
	}
	current := func(cg *mmsim.Cgroup) int64 {
		var n int64
		fmt.Sscan(read(cg, "memory.current"), &n)
		return n
	}

	fmt.Fprintln(w, "== two cgroups, memory.max = 64 MiB each")
	server := s.NewTask("server")
	if err := s.AttachTask(server, web); err != nil {
		return nil, err
	}
	if _, err := s.ReadFile(server, s.NewFile("web.db", gfp.HighUserMovable), 0, 8*mib/pageSize); err != nil {
		return nil, err
	}
	if _, err := s.TouchAnon(server, 16*mib/pageSize); err != nil {
		return nil, err
	}
	f.WebBefore = current(web)
	fmt.Fprintf(w, "web:   memory.current %d (8 MiB of cache, 16 MiB anonymous, page tables, the per-cpu stock)\n", f.WebBefore)

	fmt.Fprintln(w, "\n== batch reads 192 MiB of files through its 64 MiB")
	var reclaimOn bool
	s.Trace(func(e mmsim.Event) {
		if !reclaimOn {
			return
		}
		switch e.Kind {
		case zone.EvMemcgReclaimBegin:
			if f.ReclaimRounds == 0 {
				fmt.Fprintln(w, "first reclaim: "+strings.TrimSpace(e.Format(36)))
			}
			f.ReclaimRounds++
		case zone.EvMemcgReclaimEnd:
			f.ReclaimedPages += e.NrReclaimed
		}
	})
	cat := s.NewTask("cat")
	if err := s.AttachTask(cat, batch); err != nil {
		return nil, err
	}
	reclaimOn = true
	if _, err := s.ReadFile(cat, s.NewFile("input", gfp.HighUserMovable), 0, 192*mib/pageSize); err != nil {
		return nil, err
	}
	reclaimOn = false
	fmt.Sscan(read(batch, "memory.peak"), &f.BatchPeak)
	fmt.Fprintf(w, "memcg reclaim rounds: %d, pages reclaimed: %d, batch's memory.peak: %d (the limit: %d)\n",
		f.ReclaimRounds, f.ReclaimedPages, f.BatchPeak, 64*mib)
	fmt.Fprint(w, "batch memory.events:\n"+indent(read(batch, "memory.events")))

	fmt.Fprintln(w, "\n== a task of batch grows anonymous memory (no swap)")
	grower := s.NewTask("grower")
	if err := s.AttachTask(grower, batch); err != nil {
		return nil, err
	}
	before := len(s.Reports())
	n, err := s.TouchAnon(grower, 128*mib/pageSize)
	fmt.Fprintf(w, "grower faulted in %d pages: %v\n", n, err)
	for _, r := range s.Reports()[before:] {
		if r.Kind != mmsim.ReportOOM {
			continue
		}
		if f.OOMHeader == "" {
			f.OOMHeader = strings.SplitN(r.Text, "\n", 2)[0]
			fmt.Fprintln(w, "the OOM report:")
			fmt.Fprint(w, indent(r.Text+"\n"))
		} else {
			f.OtherOOMReports++
		}
	}
	if s.Killed(grower) {
		f.Victim = "grower"
	}
	f.BatchOOMKills = read(batch, "memory.events")
	fmt.Fprint(w, "batch memory.events:\n"+indent(f.BatchOOMKills))
	if err := s.Exit(grower); err != nil {
		return nil, err
	}

	fmt.Fprintln(w, "\n== the rest of the machine")
	f.WebAfter = current(web)
	fmt.Fprintf(w, "web:   memory.current %d (before: %d)\n", f.WebAfter, f.WebBefore)
	vm := vmstat(s)
	f.KswapdWakes = vm["pageoutrun"]
	fmt.Fprintf(w, "vmstat: pageoutrun %d, allocstall_normal %d, oom_kill %d (the memcg kill is counted here too)\n",
		vm["pageoutrun"], vm["allocstall_normal"], vm["oom_kill"])

	fmt.Fprintln(w, "\n== a GFP_NOFS charge in a full cgroup")
	fsg, err := mk("fs", 8*mib)
	if err != nil {
		return nil, err
	}
	hog := s.NewTask("hog")
	worker := s.NewTask("xfs_worker")
	for _, t := range []*memalloc.Task{hog, worker} {
		if err := s.AttachTask(t, fsg); err != nil {
			return nil, err
		}
	}
	if _, err := s.TouchAnon(hog, 7*mib/pageSize); err != nil {
		return nil, err
	}
	before = len(s.Reports())
	for i := 0; i < 512 && !s.Killed(hog); i++ {
		if _, err := s.AllocPages(worker, gfp.NoFS|gfp.Account, 0); err != nil {
			return nil, err
		}
	}
	f.NOFSKilled = s.Killed(hog)
	for _, r := range s.Reports()[before:] {
		if r.Kind == mmsim.ReportOOM && f.NOFSHeader == "" {
			f.NOFSHeader = strings.SplitN(r.Text, "\n", 2)[0]
		}
	}
	fmt.Fprintln(w, f.NOFSHeader)
	fmt.Fprintf(w, "hog killed: %v; a global OOM would have returned \"progress\" for this mask and killed nobody\n", f.NOFSKilled)
	return f, nil
}

// vmstat reads /proc/vmstat.
func vmstat(s *mmsim.System) map[string]int64 {
	var b strings.Builder
	_ = s.WriteVmstat(&b)
	out := map[string]int64{}
	for _, l := range strings.Split(b.String(), "\n") {
		var k string
		var v int64
		if _, err := fmt.Sscan(l, &k, &v); err == nil {
			out[k] = v
		}
	}
	return out
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString("    " + l)
		}
	}
	return b.String()
}
