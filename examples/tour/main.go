// This program is a tour of mmsim in five screens, for a newcomer:
//
//  1. boot a machine and read its /proc/zoneinfo;
//  2. allocate pages under the gfp masks that matter, and ask the
//     allocator to explain one allocation;
//  3. open a PF_MEMALLOC_NOFS scope and watch the mask change;
//  4. push a small machine until reclaim runs and the OOM killer kills;
//  5. replay a real kernel's trace.
//
// Each screen is a few lines of the library's API; read the source next
// to the output.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/zone"
)

// capture is the first 20,000 lines of
// ../../testdata/traces/page_anon_mmap.perf.txt.gz: a program mmaps,
// touches and unmaps 128 MiB of anonymous memory on a Linux 6.18 machine.
//
//go:embed page_anon_mmap_head.perf.txt.gz
var capture []byte

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatalf("tour: %v", err)
	}
}

func run(out io.Writer) error {
	w := bufio.NewWriter(out)
	defer w.Flush()
	for _, screen := range []func(io.Writer) error{boot, masks, scopes, pressure, replay} {
		if err := screen(w); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	return nil
}

func heading(w io.Writer, s string) {
	fmt.Fprintf(w, "%s\n%s\n", s, strings.Repeat("=", len(s)))
}

// boot: a System is one simulated machine. DefaultConfig is x86_64 with 8
// GiB in one node (zones DMA, DMA32, Normal; Movable and Device empty), two
// CPUs and the kernel's default sysctls.
func boot(w io.Writer) error {
	heading(w, "1. Boot a machine")
	s, err := mmsim.New(mmsim.DefaultConfig())
	if err != nil {
		return err
	}
	defer s.Close()
	var zi bytes.Buffer
	if err := s.WriteZoneinfo(&zi); err != nil {
		return err
	}
	fmt.Fprintln(w, "The layout lines of its /proc/zoneinfo (watermarks from min_free_kbytes, the")
	fmt.Fprintln(w, "lowmem reserves in `protection`), exactly as the kernel prints them:")
	fmt.Fprintln(w)
	for _, l := range strings.Split(zi.String(), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && (strings.HasPrefix(l, "Node") || f[0] == "min" || f[0] == "low" || f[0] == "high" ||
			f[0] == "managed" || f[0] == "protection:") {
			fmt.Fprintln(w, l)
		}
	}
	return nil
}

// masks: AllocPages takes the task (the kernel's "current"), the mask and
// the order; the mask picks the zone and the migratetype.
func masks(w io.Writer) error {
	heading(w, "2. Allocate under the masks that matter")
	s, err := mmsim.New(mmsim.DefaultConfig())
	if err != nil {
		return err
	}
	defer s.Close()
	t := s.NewTask("tour")
	for _, c := range []struct {
		mask  gfp.Mask
		order zone.Order
		why   string
	}{
		{gfp.Kernel, 0, "the default: may sleep, reclaim, do I/O and enter the filesystem"},
		{gfp.Atomic, 0, "interrupt context: no sleeping, may dip below the min watermark"},
		{gfp.HighUserMovable, 0, "user memory: movable, from the highest zone"},
		{gfp.Kernel | gfp.DMA32, 0, "a device that addresses 32 bits"},
		{gfp.Kernel | gfp.NoRetry | gfp.NoWarn | gfp.Comp, 3, "an order-3 slab page: try, but do not retry hard"},
		{gfp.TransHuge, 9, "a transparent huge page"},
	} {
		p, err := s.AllocPages(t, c.mask, c.order)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%-48s order %d -> pfn %#7x in %-6s (%s)\n", c.mask, c.order, p.PFN(), s.ZoneOf(p).Name(), c.why)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Explain one allocation — what the allocator did and why:")
	e, err := s.Explain(t, gfp.Kernel, 3)
	if err != nil {
		return err
	}
	fmt.Fprint(w, indent(e.String()))
	return s.FreePages(t, e.Page, 3)
}

// scopes: memalloc_nofs_save() and friends are Task methods. The scope
// changes every allocation made inside it, through current_gfp_context().
func scopes(w io.Writer) error {
	heading(w, "3. Open a NOFS scope and see the mask change")
	s, err := mmsim.New(mmsim.DefaultConfig())
	if err != nil {
		return err
	}
	defer s.Close()
	t := s.NewTask("xfs_trans")
	fmt.Fprintf(w, "outside any scope:        GFP_KERNEL is %v\n", t.GFPContext(gfp.Kernel))
	cookie := t.SaveNoFS()
	fmt.Fprintf(w, "in memalloc_nofs_save():  GFP_KERNEL is %v\n", t.GFPContext(gfp.Kernel))
	inner := t.SaveNoIO()
	fmt.Fprintf(w, "and memalloc_noio_save(): GFP_KERNEL is %v\n", t.GFPContext(gfp.Kernel))
	t.Restore(inner)
	t.Restore(cookie)
	fmt.Fprintf(w, "after both restores:      GFP_KERNEL is %v\n", t.GFPContext(gfp.Kernel))
	return nil
}

// pressure: a 256 MiB machine without swap; two processes touch anonymous
// memory until the OOM killer steps in.
func pressure(w io.Writer) error {
	heading(w, "4. Push memory: reclaim, then the OOM killer")
	s, err := mmsim.New(mmsim.SmallConfig(61440, 60416))
	if err != nil {
		return err
	}
	defer s.Close()
	// Some page cache first, which reclaim can take back.
	f := s.NewFile("data.bin", gfp.HighUserMovable)
	reader := s.NewTask("cat")
	if _, err := s.ReadFile(reader, f, 0, 16384); err != nil {
		return err
	}
	a, b := s.NewTask("grower"), s.NewTask("browser")
	for s.OOM().Kills() == 0 {
		if _, err := s.TouchAnon(a, 512); err != nil && !errors.Is(err, mmsim.ErrKilled) {
			return err
		}
		if s.OOM().Kills() > 0 {
			break
		}
		if _, err := s.TouchAnon(b, 256); err != nil && !errors.Is(err, mmsim.ErrKilled) {
			return err
		}
	}
	var vm bytes.Buffer
	if err := s.WriteVmstat(&vm); err != nil {
		return err
	}
	fmt.Fprintln(w, "/proc/vmstat, the reclaim lines:")
	for _, l := range strings.Split(vm.String(), "\n") {
		for _, k := range []string{"pgscan_kswapd ", "pgscan_direct ", "pgsteal_kswapd ", "pgsteal_direct ", "allocstall_movable ", "oom_kill "} {
			if strings.HasPrefix(l, k) {
				fmt.Fprintln(w, "  "+l)
			}
		}
	}
	for _, r := range s.Reports() {
		if r.Kind != mmsim.ReportOOM {
			continue
		}
		fmt.Fprintln(w, "The OOM report's first and last lines:")
		lines := strings.Split(strings.TrimRight(r.Text, "\n"), "\n")
		fmt.Fprintln(w, "  "+lines[0])
		fmt.Fprintln(w, "  ...")
		for _, l := range lines[len(lines)-2:] {
			fmt.Fprintln(w, "  "+l)
		}
		break
	}
	return nil
}

// replay: a perf script capture of a real 6.18 kernel, run through the
// default machine.
func replay(w io.Writer) error {
	heading(w, "5. Replay a real trace")
	s, err := mmsim.New(mmsim.DefaultConfig())
	if err != nil {
		return err
	}
	defer s.Close()
	zr, err := gzip.NewReader(bytes.NewReader(capture))
	if err != nil {
		return err
	}
	rep, err := s.Replay(zr, mmsim.ReplayProgress(nil))
	if err != nil {
		return err
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		return err
	}
	lines := strings.Split(text.String(), "\n")
	fmt.Fprint(w, indent(strings.Join(lines[:min(len(lines), 10)], "\n")+"\n"))
	fmt.Fprintln(w, "examples/replay runs a whole capture on three machines and draws SVG pictures.")
	return nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}
