// This program walks kvmalloc across the kmalloc/vmalloc border (seed 000)
// under GFP_KERNEL, GFP_NOFS and GFP_NOWAIT, on a fresh machine and on one
// whose free memory is every other page (no free block above order 0).
// For each request it prints kvmalloc's kmalloc attempt — the mask 7.2
// gives it above PAGE_SIZE (__GFP_NOWARN added, __GFP_DIRECT_RECLAIM and
// __GFP_NOFAIL dropped) and what it got — and whether vmalloc took over.
//
// Then it asks the seed's question: what should a __GFP_NOFAIL request
// that can never be satisfied do? The same four requests — alloc_pages of
// order 11, kmalloc of 8 MiB, kvmalloc above INT_MAX, vmalloc above total
// RAM — under each policy of Config.Nofail: 7.2's answer, a plain
// failure, a BUG that kills the caller, a loop until the stall report.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/vmalloc"
	"github.com/mmsim/mmsim/zone"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatalf("kvmalloc-fallback: %v", err)
	}
}

func run(w io.Writer) error {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	for _, frag := range []bool{false, true} {
		if err := border(bw, frag); err != nil {
			return err
		}
	}
	return nofail(bw)
}

// machine is a 32 MiB DMA32-only machine, free memory checkerboarded if
// frag.
func machine(cfg mmsim.Config, frag bool) (*mmsim.System, error) {
	cfg.Nodes[0].Zones = cfg.Nodes[0].Zones[1:]
	s, err := mmsim.New(cfg)
	if err != nil || !frag {
		return s, err
	}
	hog := s.NewTask("hog")
	var pages []mmsim.Page
	for {
		// __GFP_MEMALLOC: every page, the reserves included.
		p, err := s.AllocPages(hog, gfp.Atomic|gfp.Memalloc|gfp.NoWarn, 0)
		if err != nil {
			break
		}
		pages = append(pages, p)
	}
	sort.Slice(pages, func(i, j int) bool { return pages[i].PFN() < pages[j].PFN() })
	for _, p := range pages {
		if p.PFN()%2 == 1 {
			if err := s.FreePages(hog, p, 0); err != nil {
				return nil, err
			}
		}
	}
	return s, s.DrainAllPages(hog)
}

func border(w io.Writer, frag bool) error {
	s, err := machine(mmsim.SmallConfig(8192, 8192), frag)
	if err != nil {
		return err
	}
	defer s.Close()
	var evs []mmsim.Event
	s.Trace(func(e mmsim.Event) { evs = append(evs, e) })
	if frag {
		fmt.Fprintln(w, "=== every other page free: no free block above order 0")
	} else {
		fmt.Fprintln(w, "=== a fresh machine")
	}
	fmt.Fprintf(w, "%-10s %-8s %-45s %s\n", "mask", "size", "kmalloc attempt", "result")
	task := s.NewTask("kv")
	for _, mask := range []gfp.Mask{gfp.Kernel, gfp.NoFS, gfp.NoWait} {
		for _, size := range []int{4096, 4097, 16 << 10, 1 << 20} {
			evs = evs[:0]
			o, err := s.Kvmalloc(task, size, mask)
			attempt := "none"
			for _, e := range evs {
				if e.Kind == zone.EvKmalloc {
					got := fmt.Sprintf("%d bytes", e.BytesAlloc)
					if e.Ptr == 0 {
						got = "NULL"
					}
					attempt = fmt.Sprintf("%s -> %s", vmalloc.KmallocGFPAdjust(mask, size), got)
					break
				}
			}
			result := "kmalloc"
			switch {
			case err != nil:
				result = "failed: " + errName(err)
			case o.IsVmalloc():
				result = fmt.Sprintf("vmalloc (%d pages)", (size+4095)/4096)
			}
			fmt.Fprintf(w, "%-10s %-8d %-45s %s\n", mask, size, attempt, result)
			if err == nil {
				if err := s.Kvfree(task, o); err != nil {
					return err
				}
			}
		}
	}
	fmt.Fprintln(w)
	return nil
}

type request struct {
	name string
	do   func(s *mmsim.System, t *memalloc.Task) error
}

func nofail(w io.Writer) error {
	m := gfp.Kernel | gfp.NoFail
	reqs := []request{
		{"alloc_pages(order 11)", func(s *mmsim.System, t *memalloc.Task) error {
			_, err := s.AllocPages(t, m, 11)
			return err
		}},
		{"kmalloc(8 MiB)", func(s *mmsim.System, t *memalloc.Task) error {
			_, err := s.Kmalloc(t, 8<<20, m)
			return err
		}},
		{"kvmalloc(INT_MAX+1)", func(s *mmsim.System, t *memalloc.Task) error {
			_, err := s.Kvmalloc(t, math.MaxInt32+1, m)
			return err
		}},
		{"vmalloc(1 GiB > RAM)", func(s *mmsim.System, t *memalloc.Task) error {
			_, err := s.Vmalloc(t, 1<<30, m)
			return err
		}},
	}
	fmt.Fprintf(w, "=== GFP_KERNEL|__GFP_NOFAIL requests that can never be satisfied (StallLimit 30s)\n")
	for _, p := range []mmsim.NofailPolicy{mmsim.NofailKernel, mmsim.NofailFail, mmsim.NofailBug, mmsim.NofailLoop} {
		fmt.Fprintf(w, "\n--- policy %s\n", p)
		for _, rq := range reqs {
			cfg := mmsim.SmallConfig(8192, 8192)
			cfg.Nofail.Policy = p
			cfg.StallLimit = 30 * time.Second
			s, err := machine(cfg, false)
			if err != nil {
				return err
			}
			t := s.NewTask("caller")
			start := s.Now()
			err = rq.do(s, t)
			fmt.Fprintf(w, "%-22s %s after %v", rq.name, errName(err), time.Duration(s.Now()-start))
			if s.Killed(t) || s.Context(t).Err() != nil {
				fmt.Fprint(w, ", caller killed")
			}
			fmt.Fprintln(w)
			for _, r := range s.Reports() {
				line, _, _ := strings.Cut(r.Text, "\n")
				fmt.Fprintf(w, "    %s: %s\n", r.Kind, line)
			}
			s.Close()
		}
	}
	return nil
}

// errName names the sentinels err wraps.
func errName(err error) string {
	if err == nil {
		return "ok"
	}
	var names []string
	for _, e := range []struct {
		err  error
		name string
	}{{mmsim.ErrNoMemory, "ErrNoMemory"}, {mmsim.ErrInvalid, "ErrInvalid"}, {mmsim.ErrBug, "ErrBug"},
		{mmsim.ErrKilled, "ErrKilled"}, {mmsim.ErrDeadlock, "ErrDeadlock"}} {
		if errors.Is(err, e.err) {
			names = append(names, e.name)
		}
	}
	return strings.Join(names, "+")
}
