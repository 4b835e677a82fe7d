// This program runs seed debate 001: do the nested allocations that debug
// code makes while an allocation is in progress — the stack depot's pools
// and page_owner's stack-list nodes, kmemleak's metadata objects — keep
// the caller's constraints? Since gfp_nested_mask() they derive their
// mask from the caller's: keep __GFP_IO, __GFP_FS, the reclaim bits,
// __GFP_HIGH and __GFP_NOLOCKDEP, and add
// __GFP_NORETRY|__GFP_NOMEMALLOC|__GFP_NOWARN. Before it the stack depot
// and page_owner used ((mask & ~GFP_ZONEMASK) & (GFP_ATOMIC|GFP_KERNEL)) |
// __GFP_NOWARN, which Config.Debug.PreFix brings back as a what-if. Each
// part runs with the fix and with the pre-fix masks:
//
//   - the lockdep false positive: XFS allocates with
//     GFP_KERNEL|__GFP_NOLOCKDEP while holding an inode lock that its
//     shrinker also takes in reclaim; the depot's pool allocation must not
//     drop __GFP_NOLOCKDEP;
//   - the reserves: a PF_MEMALLOC task (reclaim itself) allocates below
//     the min watermark; the debug allocations it triggers must not drain
//     the reserves meant for it;
//   - kmemleak, which always used the nested mask: a GFP_NOFS kmalloc's
//     metadata, the static pool when the object cache fails, and
//     kmemleak disabling itself when the pool runs dry.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"regexp"
	"strings"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/reclaim"
	"github.com/mmsim/mmsim/zone"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatalf("nested-mask: %v", err)
	}
}

// machine is DMA and 64 MiB of DMA32, no swap, with the debug facilities
// d and, if asked, lockdep.
func machine(d mmsim.DebugConfig, lockdep bool) mmsim.Config {
	cfg := mmsim.SmallConfig(16384, 16384)
	cfg.Debug = d
	cfg.Lockdep = lockdep
	return cfg
}

func run(w io.Writer) error {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	fmt.Fprintln(bw, "1. lockdep: the inode shrinker took xfs_ilock in reclaim (fs_reclaim --> xfs_ilock); now xfs_io")
	fmt.Fprintln(bw, "   holds xfs_ilock and allocates GFP_KERNEL|__GFP_NOLOCKDEP until page_owner's depot needs a pool")
	for _, preFix := range []bool{false, true} {
		if err := lockdepPart(bw, preFix); err != nil {
			return fmt.Errorf("lockdep (PreFix %v): %w", preFix, err)
		}
	}
	fmt.Fprintln(bw)
	fmt.Fprintf(bw, "2. reserves: below the min watermark, a PF_MEMALLOC task allocates %d pages, page_owner on\n", memallocPages)
	for _, preFix := range []bool{false, true} {
		if err := reservesPart(bw, preFix); err != nil {
			return fmt.Errorf("reserves (PreFix %v): %w", preFix, err)
		}
	}
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "3. kmemleak (always the nested mask), with a static pool of 8 objects")
	return kmemleakPart(bw)
}

func label(preFix bool) string {
	if preFix {
		return "pre-fix (what-if)"
	}
	return "gfp_nested_mask"
}

// inodeCache is XFS's inode cache as reclaim sees it: its shrinker takes
// the inode lock of each inode it reclaims, so every lock order with
// fs_reclaim that xfs_ilock is taken in includes fs_reclaim → xfs_ilock.
//
// Kernel: fs/xfs/xfs_icache.c:xfs_reclaim_inodes_nr(), fs/super.c:super_cache_scan().
type inodeCache struct {
	ilock   *mmsim.Lock
	objects uint64
	scans   int
}

func (c *inodeCache) Count(*mmsim.ShrinkControl) uint64 { return c.objects }

func (c *inodeCache) Scan(sc *mmsim.ShrinkControl) uint64 {
	if sc.GFPMask&gfp.FS == 0 {
		return mmsim.ShrinkStop // super_cache_scan: no __GFP_FS, no fs reclaim
	}
	if err := c.ilock.Lock(sc.Task); err != nil {
		return mmsim.ShrinkStop // kswapd running inline found it held
	}
	n := min(sc.NrToScan, c.objects)
	c.objects -= n
	c.scans++
	_ = c.ilock.Unlock(sc.Task)
	return n
}

func (c *inodeCache) Seeks() int { return reclaim.DefaultSeeks }

// fresh allocates a block for t from a call chain no allocation has used
// before: each bit of chain picks one of two callers, level by level, as
// different call sites of one allocation function would. page_owner saves
// each chain as a new stack in the stack depot.
func fresh(s *mmsim.System, t *memalloc.Task, mask gfp.Mask, chain uint, levels int) (zone.Page, error) {
	if levels == 0 {
		return s.AllocPages(t, mask, 0)
	}
	if chain&1 == 0 {
		return viaLeft(s, t, mask, chain>>1, levels-1)
	}
	return viaRight(s, t, mask, chain>>1, levels-1)
}

//go:noinline
func viaLeft(s *mmsim.System, t *memalloc.Task, mask gfp.Mask, chain uint, levels int) (zone.Page, error) {
	return fresh(s, t, mask, chain, levels)
}

//go:noinline
func viaRight(s *mmsim.System, t *memalloc.Task, mask gfp.Mask, chain uint, levels int) (zone.Page, error) {
	return fresh(s, t, mask, chain, levels)
}

// chainLevels gives 1024 distinct call chains.
const chainLevels = 10

// lockdepPart records fs_reclaim → xfs_ilock through the inode shrinker in
// reclaim, then takes xfs_ilock and allocates with
// GFP_KERNEL|__GFP_NOLOCKDEP from new stacks until page_owner's stack
// depot allocates a pool under the lock.
func lockdepPart(w io.Writer, preFix bool) error {
	s, err := mmsim.New(machine(mmsim.DebugConfig{PageOwner: true, PreFix: preFix}, true))
	if err != nil {
		return err
	}
	defer s.Close()
	ilock := s.NewLock("xfs_ilock")
	icache := &inodeCache{ilock: ilock, objects: 1 << 20}
	s.RegisterShrinker(icache)

	// Memory pressure: anonymous memory and a file read through the page
	// cache fill the machine, reclaim runs the inode shrinker; then the
	// anonymous memory goes away, leaving room.
	filler, reader := s.NewTask("filler"), s.NewTask("reader")
	if _, err := s.TouchAnon(filler, 12000); err != nil {
		return err
	}
	if _, err := s.ReadFile(reader, s.NewFile("data", 0), 0, 12000); err != nil {
		return err
	}
	if err := s.Exit(filler); err != nil {
		return err
	}
	if icache.scans == 0 {
		return errors.New("reclaim never ran the inode shrinker")
	}

	xfs := s.NewTask("xfs_io")
	if err := ilock.Lock(xfs); err != nil {
		return err
	}
	before := s.DebugStats().StackDepot.PoolAllocs
	var pages []zone.Page
	for chain := uint(0); s.DebugStats().StackDepot.PoolAllocs == before; chain++ {
		if chain == 1<<chainLevels {
			return errors.New("the stack depot never needed a new pool")
		}
		p, err := fresh(s, xfs, gfp.Kernel|gfp.NoLockdep, chain, chainLevels)
		if err != nil {
			return err
		}
		pages = append(pages, p)
	}
	if err := ilock.Unlock(xfs); err != nil {
		return err
	}
	for _, p := range pages {
		if err := s.FreePages(xfs, p, 0); err != nil {
			return err
		}
	}
	st := s.DebugStats()
	fmt.Fprintf(w, "  %s: pool allocated under xfs_ilock with %v\n", label(preFix), st.StackDepot.LastPoolMask)
	fmt.Fprintf(w, "    page_owner's list node with %v\n", st.PageOwner.LastListMask)
	if s.LockdepReports() == 0 {
		fmt.Fprintln(w, "    lockdep: no report")
	}
	for _, r := range s.Reports() {
		if r.Kind == mmsim.ReportWarn && strings.Contains(r.Text, "circular locking") {
			writeCircular(w, r.Text)
		}
	}
	return nil
}

// lockName finds the class name in a line of a lockdep report
// ("ffff888100000080 (xfs_ilock){+.+.}-{4:4}, at: ...").
var lockName = regexp.MustCompile(`\(([^()]+)\)\{`)

// writeCircular prints the parts of lockdep's circular-dependency report
// that do not depend on the build: the headline, the two locks, the first
// frames of the stack that closed the cycle, and the unsafe scenario.
func writeCircular(w io.Writer, text string) {
	lines := strings.Split(text, "\n")
	var acquire, held string
	var stack []string
	for i, l := range lines {
		switch {
		case strings.HasSuffix(l, "is trying to acquire lock:") && i+1 < len(lines):
			acquire = strings.TrimSuffix(l, " is trying to acquire lock:")
			if m := lockName.FindStringSubmatch(lines[i+1]); m != nil {
				acquire += " acquires " + m[1]
			}
		case l == "but task is already holding lock:" && i+1 < len(lines):
			if m := lockName.FindStringSubmatch(lines[i+1]); m != nil {
				held = m[1]
			}
		case l == "stack backtrace:":
			for _, f := range lines[i+1:] {
				if fn, _, ok := strings.Cut(strings.TrimSpace(f), "+0x"); ok && len(stack) < 3 {
					stack = append(stack, fn)
				}
			}
		}
	}
	fmt.Fprintf(w, "    lockdep: %s\n", lines[1])
	fmt.Fprintf(w, "      %s holding %s, in %s\n", acquire, held, strings.Join(stack, " < "))
	in := false
	for _, l := range lines {
		if strings.HasPrefix(l, " Possible unsafe locking scenario") {
			in = true
			continue
		}
		if in && strings.Contains(l, "lock(") {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
}

// exhaust fills the machine: GFP_KERNEL|__GFP_NORETRY|__GFP_NOWARN pages
// until the allocator refuses (nothing is reclaimable, so free memory ends
// near the min watermark), then GFP_ATOMIC|__GFP_NOWARN pages, as a
// network receive path would, which may go below min, until those fail
// too. The per-cpu lists are drained, so that the zones' free counts are
// every free page.
func exhaust(s *mmsim.System) error {
	hog := s.NewTask("hog")
	for _, mask := range []gfp.Mask{gfp.Kernel | gfp.NoRetry | gfp.NoWarn, gfp.Atomic | gfp.NoWarn} {
		for {
			_, err := s.AllocPages(hog, mask, 0)
			if errors.Is(err, mmsim.ErrNoMemory) {
				break
			}
			if err != nil {
				return err
			}
		}
	}
	return s.DrainAllPages(hog)
}

// memallocPages is how many pages the PF_MEMALLOC task allocates, each
// from a new stack.
const memallocPages = 64

// reservesPart fills the machine below the min watermark, then a
// PF_MEMALLOC task allocates pages from new stacks, as reclaim does for
// its own needs; page_owner's nested allocations follow each.
func reservesPart(w io.Writer, preFix bool) error {
	s, err := mmsim.New(machine(mmsim.DebugConfig{PageOwner: true, PreFix: preFix}, false))
	if err != nil {
		return err
	}
	defer s.Close()
	if err := exhaust(s); err != nil {
		return err
	}
	t := s.NewTask("reclaimer")
	z := s.Nodes()[0].Zone(gfp.ZoneDMA32)
	minWmark, free0 := z.Watermark(zone.WmarkMin), z.FreePages()
	st0 := s.DebugStats()
	cookie := t.SaveMemalloc()
	for chain := range uint(memallocPages) {
		if _, err := fresh(s, t, gfp.Kernel, chain, chainLevels); err != nil {
			t.Restore(cookie)
			return err
		}
	}
	t.Restore(cookie)
	if err := s.DrainAllPages(t); err != nil {
		return err
	}
	free1 := z.FreePages()
	st := s.DebugStats()
	fmt.Fprintf(w, "  %s: DMA32 free %d -> %d pages (min %d): %d for the caller, %d for debug\n",
		label(preFix), free0, free1, minWmark, memallocPages, free0-free1-memallocPages)
	fmt.Fprintf(w, "    pool mask %v\n", st.StackDepot.LastPoolMask)
	fmt.Fprintf(w, "    depot pool allocations: %d tried, %d failed; page_owner list nodes: %d allocated, %d failed; stacks not saved: %d\n",
		st.StackDepot.PoolAllocs-st0.StackDepot.PoolAllocs, st.StackDepot.PoolFailures-st0.StackDepot.PoolFailures,
		st.PageOwner.ListNodes-st0.PageOwner.ListNodes, st.PageOwner.ListFailures-st0.PageOwner.ListFailures,
		st.PageOwner.Failed-st0.PageOwner.Failed)
	return nil
}

// kmemleakPart kmallocs with GFP_NOFS on a healthy machine, then fills it
// and kmallocs under PF_MEMALLOC until kmemleak gives up.
func kmemleakPart(w io.Writer) error {
	s, err := mmsim.New(machine(mmsim.DebugConfig{Kmemleak: true, KmemleakPoolSize: 8}, false))
	if err != nil {
		return err
	}
	defer s.Close()
	t := s.NewTask("xfs_io")
	if _, err := s.Kmalloc(t, 64, gfp.NoFS); err != nil {
		return err
	}
	st0 := s.DebugStats().Kmemleak
	fmt.Fprintf(w, "  kmalloc(64, GFP_NOFS): kmemleak_object allocated with %v\n", st0.LastMask)
	if err := exhaust(s); err != nil {
		return err
	}
	cookie := t.SaveMemalloc()
	n := 0
	for ; n < 4096 && !s.DebugStats().Kmemleak.Disabled; n++ {
		if _, err := s.Kmalloc(t, 64, gfp.NoFS); err != nil {
			t.Restore(cookie)
			return err
		}
	}
	t.Restore(cookie)
	st := s.DebugStats().Kmemleak
	fmt.Fprintf(w, "  below min, PF_MEMALLOC: %d kmalloc(64, GFP_NOFS) use the reserves; kmemleak_object may not:\n", n)
	fmt.Fprintf(w, "    %d from the object cache, %d from the static pool (%d left), then\n",
		st.FromCache-st0.FromCache, st.FromPool-st0.FromPool, st.PoolFree)
	for _, r := range s.Reports() {
		if r.Kind == mmsim.ReportInfo && strings.HasPrefix(r.Site, "mm/kmemleak.c") {
			fmt.Fprintf(w, "    kmemleak: %s\n", r.Text)
		}
	}
	return nil
}
