// This program demonstrates mmsim's gfp and memalloc packages on real kernel
// output: it reads `perf script` text of allocator tracepoints and, for each
// distinct gfp mask it sees, prints how often it was seen, its value, the zone
// and migratetype it selects, and what it becomes inside a PF_MEMALLOC_NOFS,
// a PF_MEMALLOC_NOIO and a PF_MEMALLOC_NORECLAIM scope.
//
// Usage:
//
//	gfp-decode            the bundled capture (a real Linux 6.18 trace)
//	gfp-decode FILE       a perf script file, gzipped or not
//	gfp-decode -          perf script text on standard input
//
// The masks of kmem:mm_page_alloc events are already the task's effective
// masks: the page allocator applies current_gfp_context before the tracepoint
// fires. Slab events (kmem:kmalloc, kmem:kmem_cache_alloc) show the caller's
// own flags: slab does not apply the scope, the page allocator under it does.
// The scope lines show what each request would become in that scope.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
	"log"
	"os"
	"sort"
	"strings"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

// bundled is a real capture: page allocator events while a program mmaps,
// touches and unmaps anonymous memory, plus THPs (Linux 6.18.44, x86_64).
//
//go:embed testdata/page_anon_mmap.perf.txt.gz
var bundled []byte

const bundledName = "page_anon_mmap.perf.txt.gz (bundled capture, Linux 6.18.44)"

func main() {
	if err := run(os.Stdout, os.Stdin, os.Args[1:]); err != nil {
		log.Fatalf("gfp-decode: %v", err)
	}
}

// run decodes the input args name (none: the bundled capture; "-": stdin)
// and writes the report to w.
func run(w io.Writer, stdin io.Reader, args []string) error {
	var (
		in   io.Reader
		name string
	)
	switch {
	case len(args) > 1:
		return fmt.Errorf("usage: gfp-decode [FILE | -]")
	case len(args) == 0:
		in, name = bytes.NewReader(bundled), bundledName
	case args[0] == "-":
		in, name = stdin, "standard input"
	default:
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, args[0]
	}
	r, err := maybeGunzip(in)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	seen, err := collect(r)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return report(w, name, seen)
}

// maybeGunzip returns r decompressed if it starts with the gzip magic.
func maybeGunzip(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return gzip.NewReader(br)
	}
	return br, nil
}

// maskStats is what was seen of one gfp mask.
type maskStats struct {
	mask   gfp.Mask
	count  int
	events map[string]int // tracepoint name → count
}

// collect reads perf script text and counts every gfp_flags= it carries, per
// mask and per tracepoint.
func collect(r io.Reader) (map[gfp.Mask]*maskStats, error) {
	seen := make(map[gfp.Mask]*maskStats)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		event, flags := "", ""
		for _, f := range strings.Fields(line) {
			if event == "" && strings.Count(f, ":") == 2 && strings.HasSuffix(f, ":") {
				event = strings.TrimSuffix(f, ":")
			}
			if v, ok := strings.CutPrefix(f, "gfp_flags="); ok {
				flags = v
				break
			}
		}
		if flags == "" {
			continue
		}
		m, err := gfp.Parse(flags)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		s := seen[m]
		if s == nil {
			s = &maskStats{mask: m, events: make(map[string]int)}
			seen[m] = s
		}
		s.count++
		s.events[event]++
	}
	return seen, sc.Err()
}

// scopes are the task contexts each mask is shown under.
var scopes = []struct {
	label string
	flags memalloc.Flags
}{
	{"memalloc_nofs_save", memalloc.PFMemallocNoFS},
	{"memalloc_noio_save", memalloc.PFMemallocNoIO},
	{"PF_MEMALLOC_NORECLAIM (6.9-6.11 what-if)", memalloc.PFMemallocNoReclaim},
}

func report(w io.Writer, name string, seen map[gfp.Mask]*maskStats) error {
	all := make([]*maskStats, 0, len(seen))
	total := 0
	for _, s := range seen {
		all = append(all, s)
		total += s.count
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].count != all[j].count {
			return all[i].count > all[j].count
		}
		return all[i].mask < all[j].mask
	})

	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%s: %d events carry gfp_flags, %d distinct masks\n", name, total, len(all))
	fmt.Fprintf(bw, "(mm_page_alloc masks are already the task's effective ones, slab events show the caller's;\n"+
		" the scope lines show what each would become in that scope)\n")
	t := memalloc.NewTask("gfp-decode")
	for _, s := range all {
		fmt.Fprintf(bw, "\n%s\n", s.mask)
		fmt.Fprintf(bw, "  seen     %d (%s)\n", s.count, eventCounts(s.events))
		fmt.Fprintf(bw, "  value    %-10s %s\n", fmt.Sprintf("%#x", uint32(s.mask)), describe(s.mask))
		for _, sc := range scopes {
			cookie := t.SaveFlags(sc.flags)
			m := t.GFPContext(s.mask)
			t.Restore(cookie)
			if m == s.mask {
				fmt.Fprintf(bw, "  %-42s unchanged\n", sc.label)
				continue
			}
			fmt.Fprintf(bw, "  %-42s %#x %s (%s)\n", sc.label, uint32(m), m, describe(m))
		}
	}
	if err := t.Err(); err != nil {
		return err
	}
	return bw.Flush()
}

// describe says what the allocator does with a mask: zone, migratetype,
// whether it may block and whether it may call into the filesystem.
func describe(m gfp.Mask) string {
	zone := "zone BAD"
	if z, err := m.Zone(); err == nil {
		zone = "zone " + z.String()
	}
	return fmt.Sprintf("%s, %s, %s, %s", zone, m.Migratetype(), yesNo(m.AllowsBlocking(), "blocks", "never blocks"),
		yesNo(m&gfp.FS != 0, "may enter the fs", yesNo(m&gfp.IO != 0, "no fs", "no fs, no io")))
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func eventCounts(events map[string]int) string {
	names := make([]string, 0, len(events))
	for n := range events {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, events[n])
	}
	return strings.Join(parts, ", ")
}
