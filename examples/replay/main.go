// This program replays a real kernel's page-allocator trace — perf script
// output of kmem:mm_page_alloc, mm_page_free and mm_page_free_batched
// captured on a Linux 6.18 machine while `tar | xz` compressed and
// unpacked a 117 MB tree (page-cache large folios of orders 0-8) — through
// four simulated machines: the capture's own machine, mirrored from the
// /proc/zoneinfo, /proc/meminfo and /proc/sys/vm it printed at the end of
// the run; the default 8 GiB one; the same booted with mem=4G (half size);
// and with mem=320M, just too small for the workload.
//
// Every recorded allocation is made again with its recorded gfp mask and
// order by a task standing for the recorded thread; every recorded free
// frees the block that allocation got. The program prints a comparison,
// then the full report of the small machine: which masks failed at which
// orders, how low each zone's free pages went against its watermarks, the
// free blocks per order and the kernel's fragmentation and unusable
// indices at the end, and what kswapd, direct reclaim and the OOM killer
// did. Next to the text it writes SVG pictures: free pages per order over
// the replay, and a pageblock map of the largest zone.
package main

import (
	"bytes"
	"embed"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/zone"
)

// capture is ../../testdata/traces/page_tar_xz.perf.txt.gz.
//
//go:embed page_tar_xz.perf.txt.gz
var capture []byte

// procfs holds the capture machine's /proc/zoneinfo, /proc/meminfo and
// /proc/sys/vm, from ../../testdata/procfs/rest_end.
//
//go:embed procfs
var procfs embed.FS

func main() {
	dir := flag.String("svg", filepath.Join(os.TempDir(), "mmsim-replay"), "directory for the SVG pictures")
	flag.Parse()
	if err := run(os.Stdout, *dir); err != nil {
		log.Fatalf("replay: %v", err)
	}
}

type machine struct {
	name   string
	mirror bool  // the capture's own machine, from its procfs
	mem    int64 // mem= in bytes; 0: the whole default machine
}

// mirrored builds the capture's machine from what its procfs printed.
func mirrored() (mmsim.Config, error) {
	var r [3]io.Reader
	for i, name := range []string{"zoneinfo", "meminfo", "sys_vm"} {
		b, err := procfs.ReadFile("procfs/" + name)
		if err != nil {
			return mmsim.Config{}, err
		}
		r[i] = bytes.NewReader(b)
	}
	return mmsim.ConfigFromProcfs(r[0], r[1], mmsim.WithSysVM(r[2]))
}

func run(w io.Writer, svgDir string) error {
	if err := os.MkdirAll(svgDir, 0o755); err != nil {
		return err
	}
	text, err := gunzip(capture)
	if err != nil {
		return err
	}
	machines := []machine{{name: "mirror: 6.18 VM", mirror: true}, {name: "default 8 GiB"},
		{name: "half: mem=4G", mem: 4 << 30}, {name: "small: mem=320M", mem: 320 << 20}}
	reports := make([]*mmsim.ReplayReport, len(machines))
	var last *mmsim.System
	for i, m := range machines {
		cfg := mmsim.DefaultConfig()
		if m.mirror {
			if cfg, err = mirrored(); err != nil {
				return err
			}
		}
		if m.mem > 0 {
			if cfg, err = cfg.MemLimit(m.mem); err != nil {
				return err
			}
		}
		s, err := mmsim.New(cfg)
		if err != nil {
			return err
		}
		rep, err := s.Replay(bytes.NewReader(text))
		if err != nil {
			s.Close()
			return err
		}
		reports[i] = rep
		slug := strings.TrimSuffix(strings.Fields(m.name)[0], ":")
		if err := writeSVGs(s, rep, svgDir, slug, m.name); err != nil {
			s.Close()
			return err
		}
		if last != nil {
			last.Close()
		}
		last = s
	}
	defer last.Close()

	fmt.Fprintf(w, "replay of page_tar_xz (%d events, %.1f s of a real 6.18 machine)\n\n",
		reports[0].Events, float64(reports[0].End-reports[0].Start)/1e9)
	fmt.Fprintf(w, "The mirror is the capture's machine as its /proc printed it at the end of the run\n")
	fmt.Fprintf(w, "(its Normal zone had 8448 MiB of 21 GiB initialised, the rest deferred).\n\n")
	fmt.Fprintf(w, "%-16s %9s %9s %9s %12s %10s %9s %10s %8s\n",
		"machine", "managed", "replayed", "failed", "fewest free", "below low", "kswapd", "allocstall", "oom_kill")
	for i, m := range machines {
		r := reports[i]
		var managed, fewest, below, failed int64
		for _, z := range r.Zones {
			managed += z.Managed
			below += z.BelowLow
		}
		fewest = -1
		for _, sm := range r.Samples {
			if fewest < 0 || sm.FreePages < fewest {
				fewest = sm.FreePages
			}
		}
		for _, f := range r.Failures {
			failed += f.Count
		}
		fmt.Fprintf(w, "%-16s %9s %9d %9d %12s %10d %9d %10d %8d\n", m.name, mib(managed), r.Replayed, failed,
			mib(fewest), below, r.Activity.KswapdWakes, r.Activity.Allocstall, r.Activity.OOMKills)
	}
	fmt.Fprintf(w, "\n(fewest free: the machine's free memory at its lowest sample; below low: samples at which a\n")
	fmt.Fprintf(w, "zone's free pages were under its low watermark)\n\n")
	fmt.Fprintf(w, "=== the %s machine in full\n", machines[len(machines)-1].name)
	if err := reports[len(reports)-1].WriteText(w); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n/proc/buddyinfo at the end:\n")
	if err := last.WriteBuddyinfo(w); err != nil {
		return err
	}
	fmt.Fprintf(w, "/sys/kernel/debug/extfrag/unusable_index at the end:\n")
	if err := last.WriteUnusableIndex(w); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "replay: SVG pictures in %s\n", svgDir)
	return nil
}

// writeSVGs writes the free pages per order over the replay, and the
// pageblock map of the machine's largest zone.
func writeSVGs(s *mmsim.System, rep *mmsim.ReplayReport, dir, slug, name string) error {
	f, err := os.Create(filepath.Join(dir, "free-pages-"+slug+".svg"))
	if err != nil {
		return err
	}
	err = rep.WriteFreePagesSVG(f, "free pages per order, replay of tar | xz on the "+name+" machine")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	var big *zone.Zone
	for _, n := range s.Nodes() {
		for t := 0; t < gfp.MaxNrZones; t++ {
			if z := n.Zone(gfp.ZoneType(t)); z != nil && (big == nil || z.Managed() > big.Managed()) {
				big = z
			}
		}
	}
	f, err = os.Create(filepath.Join(dir, "pageblocks-"+slug+".svg"))
	if err != nil {
		return err
	}
	err = s.WritePageblockSVG(f, big)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func mib(pages int64) string { return fmt.Sprintf("%d MiB", pages*zone.PageSize>>20) }
