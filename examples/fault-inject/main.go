// This program demonstrates fault injection walking every error path of a
// modelled filesystem mount, as syzkaller's fail-nth does with a system
// call: it mounts once to warm the caches, once inside a FailScope that
// only counts, then once more for each n = 1, 2, … with the nth
// allocation made inside the scope failed, until a run reaches no nth
// allocation. fail_page_alloc and failslab are set as syzkaller sets them
// (ignore-gfp-wait off, min-order 0), so every request counts.
//
// The mount (fillSuper) allocates a superblock from its kmem cache, an
// inode hash table with kvmalloc, a zeroed page for the block bitmap, a
// journal head with kmalloc under GFP_NOFS and the root inode from its
// cache, and unwinds on failure. Two bugs are planted in the unwinding:
// a journal failure jumps past the bitmap page's free (a leak), and a
// root-inode failure frees the superblock twice (a double free, which the
// slab allocator refuses with a BUG).
//
// One line per injection point: the request that was failed (the
// facility, the cache and object size or the page order, the mask), what
// mount returned, and what was left behind once it returned and anything
// it mounted was unmounted — "ok", or "leak: N pages / M objects" with the
// call site /proc/allocinfo (Config.AllocProfiling) charges them to, and
// the BUG report of a path that misbehaved. Note run 2: failing kvmalloc's
// kmalloc attempt is no error at all, the vmalloc fallback takes over (one
// injected failure per run never reaches the fallback's own allocations).
// At the end, /proc/allocinfo still charges the leaked page to its line.
package main

import (
	"bufio"
	"errors"
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
		log.Fatalf("fault-inject: %v", err)
	}
}

// machine is a 64 MiB VM with fault injection and allocation profiling
// built in.
func machine() mmsim.Config {
	cfg := mmsim.SmallConfig(12288, 12288)
	cfg.FaultInjection = true
	cfg.AllocProfiling = true
	return cfg
}

// fsType is the modelled filesystem: its two caches.
type fsType struct {
	sbCache, inodeCache *mmsim.Cache
}

// superBlock is a mounted instance.
type superBlock struct {
	sb, hash, journal, root mmsim.Object
	bitmap                  zone.Page
}

// hashSize is the inode hash table's size: above KMALLOC_MAX_CACHE_SIZE,
// so kvmalloc tries a large kmalloc first.
const hashSize = 16 << 10

// fillSuper mounts an instance of fs, with the two planted bugs.
func (fs *fsType) fillSuper(s *mmsim.System, tk *memalloc.Task) (*superBlock, error) {
	var m superBlock
	var err error
	if m.sb, err = s.KmemCacheAlloc(tk, fs.sbCache, gfp.Kernel); err != nil {
		return nil, err
	}
	if m.hash, err = s.Kvmalloc(tk, hashSize, gfp.Kernel); err != nil {
		return nil, errors.Join(err, s.KmemCacheFree(tk, fs.sbCache, m.sb))
	}
	if m.bitmap, err = s.AllocPages(tk, gfp.Kernel|gfp.Zero, 0); err != nil {
		return nil, errors.Join(err, s.Kvfree(tk, m.hash), s.KmemCacheFree(tk, fs.sbCache, m.sb))
	}
	if m.journal, err = s.Kmalloc(tk, 512, gfp.NoFS); err != nil {
		// Planted bug: "goto out_free_hash" skips the bitmap page.
		return nil, errors.Join(err, s.Kvfree(tk, m.hash), s.KmemCacheFree(tk, fs.sbCache, m.sb))
	}
	if m.root, err = s.KmemCacheAlloc(tk, fs.inodeCache, gfp.NoFS); err != nil {
		err = errors.Join(err, s.Kfree(tk, m.journal), s.FreePages(tk, m.bitmap, 0), s.Kvfree(tk, m.hash),
			s.KmemCacheFree(tk, fs.sbCache, m.sb))
		// Planted bug: the error path and the superblock's release
		// both free it.
		return nil, errors.Join(err, s.KmemCacheFree(tk, fs.sbCache, m.sb))
	}
	return &m, nil
}

// killSB unmounts m.
func (fs *fsType) killSB(s *mmsim.System, tk *memalloc.Task, m *superBlock) error {
	return errors.Join(s.KmemCacheFree(tk, fs.inodeCache, m.root), s.Kfree(tk, m.journal),
		s.FreePages(tk, m.bitmap, 0), s.Kvfree(tk, m.hash), s.KmemCacheFree(tk, fs.sbCache, m.sb))
}

// usage is what a run may leave behind: page blocks in use outside slab,
// and live slab objects.
type usage struct{ pages, objects int64 }

// measure drains the per-cpu lists and counts what is in use.
func measure(s *mmsim.System, tk *memalloc.Task) (usage, error) {
	if err := s.DrainAllPages(tk); err != nil {
		return usage{}, err
	}
	var u usage
	for _, n := range s.Nodes() {
		for zt := range gfp.MaxNrZones {
			z := n.Zone(gfp.ZoneType(zt))
			u.pages += z.Managed() - z.FreePages()
		}
		// Slab pages stay with their caches; kernel page tables (vmalloc's)
		// are never freed.
		u.pages -= n.State(zone.NodeNrSlabReclaimable) + n.State(zone.NodeNrSlabUnreclaimable) +
			n.State(zone.NodeNrPageTablePages)
	}
	var b strings.Builder
	if err := s.WriteSlabinfo(&b); err != nil {
		return usage{}, err
	}
	for _, line := range strings.Split(b.String(), "\n")[2:] {
		if name, _, ok := strings.Cut(line, " "); ok {
			u.objects += int64(s.KmemCache(name).ActiveObjects())
		}
	}
	return u, nil
}

// growth returns the call sites of this program whose live allocations
// grew between two /proc/allocinfo snapshots.
func growth(before, after []mmsim.AllocTag) []string {
	was := map[string]int64{}
	for _, t := range before {
		was[fmt.Sprintf("%s:%d", t.File, t.Line)] = t.Calls
	}
	var out []string
	for _, t := range after {
		site := fmt.Sprintf("%s:%d", t.File, t.Line)
		if strings.HasPrefix(t.File, "examples/") && t.Calls > was[site] {
			out = append(out, fmt.Sprintf("%s func:%s", site, t.Func))
		}
	}
	return out
}

func run(w io.Writer) error {
	s, err := mmsim.New(machine())
	if err != nil {
		return fmt.Errorf("booting system: %w", err)
	}
	defer s.Close()
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	tk := s.NewTask("mount")

	fs := &fsType{}
	if fs.sbCache, err = s.KmemCacheCreate("myfs_sb", 1024, 0, mmsim.SlabHWCacheAlign); err != nil {
		return err
	}
	if fs.inodeCache, err = s.KmemCacheCreate("myfs_inode", 600, 0, mmsim.SlabReclaimAccount|mmsim.SlabHWCacheAlign); err != nil {
		return err
	}
	fa := mmsim.DefaultFailPageAlloc()
	fa.IgnoreGFPWait, fa.IgnoreGFPHighmem, fa.MinOrder, fa.Verbose = false, false, 0, 0
	fsl := mmsim.DefaultFailslab()
	fsl.IgnoreGFPWait, fsl.Verbose = false, 0
	if err := s.SetFailPageAlloc(fa); err != nil {
		return err
	}
	if err := s.SetFailslab(fsl); err != nil {
		return err
	}

	// mountOnce mounts under a FailScope of n and unmounts what mounted.
	mountOnce := func(n int) (*mmsim.FailScope, string, error) {
		sc, err := s.FailScope(tk, n)
		if err != nil {
			return nil, "", err
		}
		m, merr := fs.fillSuper(s, tk)
		if err := sc.End(); err != nil {
			return nil, "", err
		}
		if merr != nil {
			return sc, describe(merr), nil
		}
		ret := "mounted"
		if m.hash.IsVmalloc() {
			ret += " (hash table from vmalloc)"
		}
		return sc, ret, fs.killSB(s, tk, m)
	}

	// Warm up: the caches' first slabs, and vmalloc's page tables (which
	// only the fallback of kvmalloc would otherwise build, mid-walk).
	if _, _, err := mountOnce(0); err != nil {
		return err
	}
	v, err := s.Vmalloc(tk, hashSize, gfp.Kernel)
	if err != nil {
		return err
	}
	if err := s.Vfree(tk, v); err != nil {
		return err
	}
	sc, _, err := mountOnce(0)
	if err != nil {
		return err
	}
	fmt.Fprintf(bw, "mount reaches %d fault points:\n", sc.Count())
	for i, p := range sc.Points() {
		fmt.Fprintf(bw, "  %2d  %s\n", i+1, p)
	}
	fmt.Fprintln(bw)

	base, err := measure(s, tk)
	if err != nil {
		return err
	}
	tags := s.Allocinfo()
	nReports := len(s.Reports())
	fmt.Fprintln(bw, "fail-nth walk:")
	for n := 1; ; n++ {
		sc, ret, err := mountOnce(n)
		if err != nil {
			return err
		}
		fp, hit := sc.Injected()
		if !hit {
			fmt.Fprintf(bw, "  %2d  nothing to fail (%d points): %s\n", n, sc.Count(), ret)
			break
		}
		u, err := measure(s, tk)
		if err != nil {
			return err
		}
		after := "ok"
		if u != base {
			after = fmt.Sprintf("leak: %d pages / %d objects", u.pages-base.pages, u.objects-base.objects)
			if sites := growth(tags, s.Allocinfo()); len(sites) > 0 {
				after += " from " + strings.Join(sites, ", ")
			}
			base = u
		}
		tags = s.Allocinfo()
		fmt.Fprintf(bw, "  %2d  %-78s -> %s; %s\n", n, fp, ret, after)
		for _, r := range s.Reports()[nReports:] {
			if r.Kind == mmsim.ReportBug || r.Kind == mmsim.ReportWarn {
				fmt.Fprintf(bw, "      misbehaves: %s: %s\n", r.Kind, r.Text)
			}
		}
		nReports = len(s.Reports())
	}
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "/proc/allocinfo, the lines of fillSuper:")
	for _, t := range s.Allocinfo() {
		if t.Func == "(*fsType).fillSuper" {
			fmt.Fprintln(bw, t)
		}
	}
	return s.CheckInvariants()
}

// describe says what fillSuper returned: -ENOMEM, and any BUG its
// unwinding ran into.
func describe(err error) string {
	switch {
	case errors.Is(err, mmsim.ErrBug) && errors.Is(err, mmsim.ErrNoMemory):
		return "-ENOMEM, and a refused free (ErrBug)"
	case errors.Is(err, mmsim.ErrNoMemory):
		return "-ENOMEM"
	}
	return err.Error()
}
