// This program demonstrates MAP_DROPPABLE (seed 003), the mapping that
// holds vgetrandom()'s state, on a small machine (256 MiB, no swap) under
// memory pressure, in Linux 7.2's terms.
//
// MAP_DROPPABLE (9651fcedf7b9, v6.11) gives an anonymous mapping
// VM_DROPPABLE|VM_NORESERVE|VM_WIPEONFORK|VM_DONTDUMP ("dp nr wf dd" in
// smaps). folio_add_new_anon_rmap leaves its folios without PG_swapbacked,
// so they sit on the file LRU as MADV_FREE'd pages do, and
// try_to_unmap_one discards them even when dirty. A page of vgetrandom
// state that reclaim takes reads back as zero (the zero page), which the
// library notices and reinitialises. Nothing goes to swap, nothing is
// charged to Committed_AS, and a forked child sees zeroes.
//
// The program prints, in order:
//
//  1. The mapping, its VmFlags, and the calls the kernel refuses with
//     EINVAL: MAP_LOCKED, MAP_HUGETLB, MAP_GROWSDOWN, MADV_KEEPONFORK,
//     MADV_DODUMP. The order of the checks shows: a 16 MiB
//     MAP_DROPPABLE|MAP_LOCKED from a user without CAP_IPC_LOCK is EAGAIN,
//     because do_mmap checks mlock_future_ok before the map type, and an
//     mlock of 16 MiB is ENOMEM, because do_mlock checks RLIMIT_MEMLOCK
//     before it looks at the mappings. Within the limit, mlock succeeds,
//     faults the pages in (__mm_populate) and locks nothing: a VM_DROPPABLE
//     vma does not support mlock (vma_supports_mlock), so it gets no
//     VM_LOCKED and adds nothing to locked_vm.
//  2. fork: the child reads zeroes (VM_WIPEONFORK), the parent its values.
//  3. A hog growing to 234 MiB. The cache's 4096 pages go, all in the same
//     1 MiB step of the hog, and the OOM killer is not called. /proc/vmstat
//     shows how mmsim's reclaim, following shrink_folio_list, freed them:
//     once unmapped, the folio is dirty and, being !swapbacked, on the file
//     LRU, so it is counted in nr_vmscan_immediate_reclaim and pgactivate
//     and goes to activate_locked; putting it back drops its last
//     reference and frees it. pgsteal_* and pglazyfreed stay at 0.
//  4. The alternative: the same 16 MiB as an mlocked MAP_PRIVATE mapping.
//     It costs RLIMIT_MEMLOCK budget (mlock is ENOMEM at the default 8 MiB)
//     and shows in VmLck and Mlocked. Under the same hog it stays, and the
//     hog is OOM-killed about 16 MiB sooner.
//  5. A droppable fault that fails. handle_mm_fault strips VM_FAULT_OOM
//     for a VM_DROPPABLE vma, so the task gets no signal and the faulting
//     instruction runs again (AccessRetried). The series up to v14 skipped
//     the write instead (Config.DroppableWriteLost, AccessWriteLost). But
//     in a global OOM (mmsim has no memory cgroups) an order-0 user fault
//     does not fail for a task the OOM killer spares. out_of_memory kills
//     someone and __alloc_pages_slowpath retries until memory comes back,
//     or, when no one can be killed, the kernel panics ("System is
//     deadlocked on memory"). The fault fails only for the victim itself,
//     once its ALLOC_OOM access to the reserves (down to half the min
//     watermark) finds nothing, and then the task meets its SIGKILL on the
//     way back to user mode. The program sets this up faithfully. rng's
//     droppable pages are dropped by db's growth (db has oom_score_adj
//     -1000). A kworker takes what is left with __GFP_RETRY_MAYFAIL, which
//     stops at the min watermark and never calls the OOM killer. In case b
//     a GFP_ATOMIC burst follows, and it may go below the OOM reserves.
//     rng's write fault invokes the OOM killer, which picks rng itself.
//     With reserves left, the write completes and rng dies. Without them,
//     the fault fails and rng dies. The outcome is "killed" with or
//     without the what-if. The retried and lost writes need a failure that
//     spares the task, which the global case does not have, and the
//     program says so rather than show one.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatalf("droppable: %v", err)
	}
}

const (
	pageSize   = 4096
	cachePages = 4096 // a cache of vgetrandom states, 16 MiB: big enough to matter
	cacheBytes = cachePages * pageSize
	hogStep    = 256   // pages the hog touches a turn: 1 MiB
	hogTarget  = 60000 // pages the hog asks for: 234 MiB of the 251 MiB managed
	uid        = 1000  // no CAP_IPC_LOCK: RLIMIT_MEMLOCK applies

	rw        = mmsim.ProtRead | mmsim.ProtWrite
	droppable = mmsim.MapDroppable | mmsim.MapAnonymous
	private   = mmsim.MapPrivate | mmsim.MapAnonymous
)

// machine is a 256 MiB VM without swap: DMA and 240 MiB of DMA32.
func machine() mmsim.Config {
	return mmsim.SmallConfig(61440, 60416)
}

func run(w io.Writer) error {
	_, err := simulate(w)
	return err
}

// facts are what the program found, for the tests.
type facts struct {
	// Calls holds the errno name each call of section 1 returned ("0"
	// for success), by call.
	Calls map[string]string
	// MlockVmLck is VmLck after the successful mlock of the droppable cache.
	MlockVmLck string
	// ChildZero and ParentKept count the pages read after fork.
	ChildZero, ParentKept int
	// Droppable and Mlocked are the pressure runs.
	Droppable, Mlocked pressure
	// Faults are section 5's outcomes, by case.
	Faults []faultResult
}

func simulate(w io.Writer) (facts, error) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	f := facts{Calls: map[string]string{}}
	fmt.Fprintf(bw, "MAP_DROPPABLE: vgetrandom's state on a 256 MiB machine without swap (Linux 7.2)\n\n")
	if err := mapping(bw, &f); err != nil {
		return f, err
	}
	var err error
	if f.Mlocked, err = mlocked(bw); err != nil {
		return f, err
	}
	table(bw, f.Droppable, f.Mlocked)
	if f.Faults, err = faults(bw); err != nil {
		return f, err
	}
	return f, nil
}

// mapping is sections 1 to 3: the droppable cache, fork, and the hog.
func mapping(w io.Writer, f *facts) error {
	s, err := mmsim.New(machine())
	if err != nil {
		return err
	}
	defer s.Close()
	cache := s.NewTask("cache")
	if err := s.SetUID(cache, uid); err != nil {
		return err
	}
	addr, err := s.Mmap(cache, cacheBytes, rw, droppable)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "1. The mapping (cache, pid %d, uid %d, RLIMIT_MEMLOCK 8 MiB)\n", cache.PID(), uid)
	fmt.Fprintf(w, "  mmap(16 MiB, PROT_READ|PROT_WRITE, MAP_DROPPABLE|MAP_ANONYMOUS) = %#x\n", addr)
	fmt.Fprintf(w, "  VmFlags: %s\n", vmFlags(s, cache, addr))
	call := func(name string, err error) {
		f.Calls[name] = errName(err)
		fmt.Fprintf(w, "  %-52s = %s\n", name, errName(err))
	}
	try := func(length int64, flags mmsim.MapFlags) error {
		_, err := s.Mmap(cache, length, rw, flags)
		return err
	}
	call("mmap(16 MiB, ...|MAP_LOCKED)", try(cacheBytes, droppable|mmsim.MapLocked))
	call("mmap(4 MiB, ...|MAP_LOCKED)", try(cacheBytes/4, droppable|mmsim.MapLocked))
	call("mmap(4 MiB, ...|MAP_HUGETLB)", try(cacheBytes/4, droppable|mmsim.MapHugetlb))
	call("mmap(4 MiB, ...|MAP_GROWSDOWN)", try(cacheBytes/4, droppable|mmsim.MapGrowsDown))
	call("madvise(cache, MADV_KEEPONFORK)", s.Madvise(cache, addr, cacheBytes, mmsim.MadvKeepOnFork))
	call("madvise(cache, MADV_DODUMP)", s.Madvise(cache, addr, cacheBytes, mmsim.MadvDoDump))
	call("mlock(cache, 16 MiB)", s.Mlock(cache, addr, cacheBytes, 0))
	call("mlock(cache, 4 MiB)", s.Mlock(cache, addr, cacheBytes/4, 0))
	st, err := status(s, cache, "VmLck")
	if err != nil {
		return err
	}
	f.MlockVmLck = st
	rss, err := status(s, cache, "VmRSS")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  after the mlock: %s, %s (populated), VmFlags: %s (no \"lo\")\n\n", st, rss, vmFlags(s, cache, addr))

	// 2. Fill the cache and fork.
	if err := fill(s, cache, addr); err != nil {
		return err
	}
	child, err := s.Fork(cache, "cache-child")
	if err != nil {
		return err
	}
	cz, _, _, err := readBack(s, child, addr)
	if err != nil {
		return err
	}
	_, pk, _, err := readBack(s, cache, addr)
	if err != nil {
		return err
	}
	f.ChildZero, f.ParentKept = cz, pk
	fmt.Fprintf(w, "2. Fork (each of the 4096 pages holds a distinct non-zero word)\n")
	fmt.Fprintf(w, "  child %d: %d pages read 0 (VM_WIPEONFORK); VmFlags: %s\n", child.PID(), cz, vmFlags(s, child, addr))
	fmt.Fprintf(w, "  parent %d: %d pages still hold their values\n\n", cache.PID(), pk)
	if err := s.Exit(child); err != nil {
		return err
	}

	// 3. Pressure.
	fmt.Fprintf(w, "3. Pressure: a hog touches anonymous memory, 1 MiB a turn, up to %d pages (%d MiB)\n", hogTarget, hogTarget*pageSize>>20)
	before, err := status(s, cache, "VmRSS", "RssAnon")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  cache before: %s\n", before)
	var hog *memalloc.Task
	f.Droppable, hog, err = grow(w, s, cache, addr)
	if err != nil {
		return err
	}
	after, err := status(s, cache, "VmRSS", "RssAnon")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  cache after:  %s\n", after)
	p := f.Droppable
	fmt.Fprintf(w, "  read back: %d pages read 0 (dropped), %d kept their value, %d other\n", p.Dropped, p.Kept, p.Other)
	fmt.Fprintf(w, "  OOM kills so far: %d\n", p.Kills)
	vm, err := procLines(s.WriteVmstat, "pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct",
		"pgactivate", "nr_vmscan_immediate_reclaim", "pglazyfree", "pglazyfreed", "pswpout", "oom_kill")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  /proc/vmstat: %s\n", vm)
	fmt.Fprintf(w, "  (each dirty droppable folio was unmapped, sent to activate_locked and freed when put back)\n")
	// vgetrandom finds its state zeroed and sets it up again.
	r, err := s.Write(cache, addr, 1)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  a write to a dropped page faults in a fresh one: %s\n", r.Outcome)
	if err := ceiling(w, s, hog, &f.Droppable); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return nil
}

// mlocked is section 4: the cache as an mlocked private mapping.
func mlocked(w io.Writer) (pressure, error) {
	s, err := mmsim.New(machine())
	if err != nil {
		return pressure{}, err
	}
	defer s.Close()
	cache := s.NewTask("cache")
	if err := s.SetUID(cache, uid); err != nil {
		return pressure{}, err
	}
	addr, err := s.Mmap(cache, cacheBytes, rw, private)
	if err != nil {
		return pressure{}, err
	}
	fmt.Fprintf(w, "4. The alternative: the same 16 MiB as MAP_PRIVATE|MAP_ANONYMOUS, mlocked (uid %d)\n", uid)
	fmt.Fprintf(w, "  mlock(16 MiB) with RLIMIT_MEMLOCK 8 MiB = %s\n", errName(s.Mlock(cache, addr, cacheBytes, 0)))
	if err := s.SetRlimitMemlock(cache, cacheBytes); err != nil {
		return pressure{}, err
	}
	if err := s.Mlock(cache, addr, cacheBytes, 0); err != nil {
		return pressure{}, err
	}
	fmt.Fprintf(w, "  setrlimit(RLIMIT_MEMLOCK, 16 MiB); mlock(16 MiB) = 0\n")
	if err := fill(s, cache, addr); err != nil {
		return pressure{}, err
	}
	st, err := status(s, cache, "VmLck", "RssAnon")
	if err != nil {
		return pressure{}, err
	}
	mi, err := procLines(s.WriteMeminfo, "Mlocked", "Unevictable")
	if err != nil {
		return pressure{}, err
	}
	fmt.Fprintf(w, "  %s; /proc/meminfo %s\n", st, mi)
	fmt.Fprintf(w, "  VmFlags: %s\n", vmFlags(s, cache, addr))
	p, hog, err := grow(w, s, cache, addr)
	if err != nil {
		return pressure{}, err
	}
	fmt.Fprintf(w, "  read back: %d pages read 0, %d kept their value, %d other\n", p.Dropped, p.Kept, p.Other)
	if err := ceiling(w, s, hog, &p); err != nil {
		return pressure{}, err
	}
	fmt.Fprintln(w)
	return p, nil
}

// pressure is what a hog run found.
type pressure struct {
	// HogPages is what the hog got of its hogTarget; WentAt the hog's size
	// after the turn in which the cache lost its first page (0: never).
	HogPages, WentAt int64
	// Kills counts OOM kills during the hog's growth to hogTarget; Victim
	// names the first victim.
	Kills  int64
	Victim string
	// Dropped, Kept and Other count the cache's pages read back.
	Dropped, Kept, Other int
	// VmLck is the memlock budget used.
	VmLck string
	// Ceiling is the hog's size when it was OOM-killed.
	Ceiling int64
}

// grow runs a hog up to hogTarget pages or until the OOM killer steps in,
// then reads cache's pages back.
func grow(w io.Writer, s *mmsim.System, cache *memalloc.Task, addr uint64) (pressure, *memalloc.Task, error) {
	var p pressure
	var err error
	if p.VmLck, err = status(s, cache, "VmLck"); err != nil {
		return p, nil, err
	}
	hog := s.NewTask("hog")
	for p.HogPages < hogTarget && s.OOM().Kills() == 0 {
		n, err := s.TouchAnon(hog, min(hogStep, hogTarget-p.HogPages))
		p.HogPages += n
		if err != nil && !errors.Is(err, mmsim.ErrKilled) {
			return p, nil, fmt.Errorf("hog: %w", err)
		}
		if u, err := s.Usage(cache); err == nil && u.RSSPages < cachePages && p.WentAt == 0 {
			p.WentAt = p.HogPages
			fmt.Fprintf(w, "  hog at %d pages: the cache's resident pages fell to %d\n", p.HogPages, u.RSSPages)
		}
	}
	p.Kills = s.OOM().Kills()
	if p.Kills > 0 {
		p.Victim = victim(s)
		fmt.Fprintf(w, "  hog at %d pages: %s\n", p.HogPages, killLine(s))
		p.Ceiling = p.HogPages
	} else {
		fmt.Fprintf(w, "  hog at %d pages: no OOM kill\n", p.HogPages)
	}
	p.Dropped, p.Kept, p.Other, err = readBack(s, cache, addr)
	return p, hog, err
}

// ceiling lets the hog grow on until the OOM killer stops it, unless it
// already did, and records the hog's size then.
func ceiling(w io.Writer, s *mmsim.System, hog *memalloc.Task, p *pressure) error {
	if p.Ceiling != 0 {
		return nil
	}
	p.Ceiling = p.HogPages
	for s.OOM().Kills() == 0 {
		n, err := s.TouchAnon(hog, hogStep)
		p.Ceiling += n
		if err != nil && !errors.Is(err, mmsim.ErrKilled) {
			return fmt.Errorf("hog: %w", err)
		}
	}
	fmt.Fprintf(w, "  the hog goes on: at %d pages, %s\n", p.Ceiling, killLine(s))
	return nil
}

// table prints sections 3 and 4 side by side.
func table(w io.Writer, d, m pressure) {
	fmt.Fprintf(w, "   The hog asks for %d pages          droppable   mlocked private\n", hogTarget)
	row := func(name string, a, b any) { fmt.Fprintf(w, "   %-34s %10v %17v\n", name, a, b) }
	row("memlock budget used (VmLck)", strings.TrimPrefix(d.VmLck, "VmLck: "), strings.TrimPrefix(m.VmLck, "VmLck: "))
	row("cache pages kept", d.Kept, m.Kept)
	row("cache pages dropped (read 0)", d.Dropped, m.Dropped)
	row("hog pages granted", d.HogPages, m.HogPages)
	row("OOM kills", d.Kills, m.Kills)
	row("hog size at its OOM kill", d.Ceiling, m.Ceiling)
	fmt.Fprintln(w)
}

// faultCase is one run of section 5.
type faultCase struct {
	// WriteLost is Config.DroppableWriteLost.
	WriteLost bool
	// Atomic adds the GFP_ATOMIC burst that takes the OOM reserves.
	Atomic bool
}

// faultResult is what became of rng's write.
type faultResult struct {
	faultCase
	Access mmsim.AccessResult
	// Killed: rng was chosen by the OOM killer; Kills counts the kills.
	Killed bool
	Kills  int64
	// Header is the OOM report's first line, Kill its "Killed process"
	// line; Free is MemFree before the write.
	Header, Kill, Free string
	// MayFail and Atomic count the kworker's pages.
	MayFail, AtomicPages int
}

// faults is section 5.
func faults(w io.Writer) ([]faultResult, error) {
	fmt.Fprintf(w, "5. A droppable write fault that fails\n")
	var out []faultResult
	for _, fc := range []faultCase{{false, false}, {false, true}, {true, false}, {true, true}} {
		r, err := failingFault(fc)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	b := out[1]
	fmt.Fprintf(w, "  rng (uid %d) fills 16 MiB of MAP_DROPPABLE. db (oom_score_adj -1000) grows until rng's pages\n", uid)
	fmt.Fprintf(w, "  are dropped. A kworker takes %d pages with GFP_KERNEL|__GFP_RETRY_MAYFAIL: it stops at the min\n", b.MayFail)
	fmt.Fprintf(w, "  watermark and never calls the OOM killer. In case b it then takes %d more with GFP_ATOMIC, which\n", b.AtomicPages)
	fmt.Fprintf(w, "  may go below the OOM victim's reserves. Then rng writes a dropped page (MemFree: a. %s, b. %s):\n",
		strings.TrimPrefix(out[0].Free, "MemFree: "), strings.TrimPrefix(b.Free, "MemFree: "))
	fmt.Fprintf(w, "    %s\n    %s\n", b.Header, b.Kill)
	fmt.Fprintf(w, "  (__GFP_NOWARN: vma_alloc_folio adds it for a VM_DROPPABLE vma.)\n")
	fmt.Fprintf(w, "   %-32s %-16s %s\n", "rng's write", "7.2", "DroppableWriteLost (v14)")
	for i, name := range []string{"a. the OOM reserves are left", "b. the OOM reserves are gone"} {
		fmt.Fprintf(w, "   %-32s %-16s %s\n", name, outcome(out[i]), outcome(out[2+i]))
	}
	fmt.Fprintf(w, "  In a, rng's retry with ALLOC_OOM got a page: the write completed, and rng died of the SIGKILL.\n")
	fmt.Fprintf(w, "  In b, the allocation failed:\n    %v\n", b.Access.Err)
	fmt.Fprintf(w, "  handle_mm_fault stripped VM_FAULT_OOM (fault result %s) and rng, the OOM victim, died on its way back\n", b.Access.Fault)
	fmt.Fprintf(w, "  to user mode, under either rule.\n")
	fmt.Fprintf(w, "  Not shown: \"retry\" and \"write lost\". They need a fault that fails for a task the OOM killer spares,\n")
	fmt.Fprintf(w, "  as when a memory cgroup at its limit finds nothing to kill and the charge fails. In a global OOM the\n")
	fmt.Fprintf(w, "  allocator retries after another task's kill, and with no task left to kill the kernel panics (\"System\n")
	fmt.Fprintf(w, "  is deadlocked on memory\"). mmsim has no memcg, so this program cannot show either faithfully.\n")
	return out, nil
}

func outcome(r faultResult) string {
	s := r.Access.Outcome.String()
	if r.Killed && r.Access.Outcome != mmsim.AccessKilled {
		s += ", then killed"
	}
	return s
}

// failingFault sets up section 5's machine and writes rng's droppable page.
func failingFault(fc faultCase) (faultResult, error) {
	r := faultResult{faultCase: fc}
	cfg := machine()
	cfg.DroppableWriteLost = fc.WriteLost
	s, err := mmsim.New(cfg)
	if err != nil {
		return r, err
	}
	defer s.Close()
	rng := s.NewTask("rng")
	if err := s.SetUID(rng, uid); err != nil {
		return r, err
	}
	addr, err := s.Mmap(rng, cacheBytes, rw, droppable)
	if err != nil {
		return r, err
	}
	if err := fill(s, rng, addr); err != nil {
		return r, err
	}
	db := s.NewTask("db")
	if err := s.SetOOMScoreAdj(db, -1000); err != nil {
		return r, err
	}
	for {
		if _, err := s.TouchAnon(db, hogStep); err != nil {
			return r, fmt.Errorf("db: %w", err)
		}
		u, err := s.Usage(rng)
		if err != nil {
			return r, err
		}
		if u.RSSPages == 0 {
			break
		}
	}
	wq := s.NewWorkqueue("filler", 0)
	take := func(mask gfp.Mask) (int, error) {
		n := 0
		work := mmsim.NewWork("fill", func(t *memalloc.Task) error {
			for {
				if _, err := s.AllocPages(t, mask, 0); err != nil {
					return nil // the allocator gave up: memory is taken
				}
				n++
			}
		})
		wq.Queue(db, work)
		wq.RunPending()
		return n, work.Err()
	}
	if r.MayFail, err = take(gfp.Kernel | gfp.RetryMayFail | gfp.NoWarn); err != nil {
		return r, err
	}
	if fc.Atomic {
		if r.AtomicPages, err = take(gfp.Atomic | gfp.NoWarn); err != nil {
			return r, err
		}
	}
	if r.Free, err = procLines(s.WriteMeminfo, "MemFree"); err != nil {
		return r, err
	}
	if s.OOM().Kills() != 0 {
		return r, fmt.Errorf("an OOM kill before rng's write")
	}
	if r.Access, err = s.Write(rng, addr+8*pageSize, 0xdead); err != nil {
		return r, err
	}
	r.Killed, r.Kills = s.Killed(rng), s.OOM().Kills()
	for _, rep := range s.Reports() {
		if rep.Kind == mmsim.ReportOOM {
			r.Header = strings.SplitN(rep.Text, "\n", 2)[0]
			r.Kill = killLine(s)
			break
		}
	}
	return r, nil
}

// fill writes a distinct non-zero word to each page of the cache.
func fill(s *mmsim.System, t *memalloc.Task, addr uint64) error {
	for i := uint64(0); i < cachePages; i++ {
		r, err := s.Write(t, addr+i*pageSize, value(i))
		if err != nil {
			return err
		}
		if r.Outcome != mmsim.AccessOK {
			return fmt.Errorf("filling page %d: %s", i, r.Outcome)
		}
	}
	return nil
}

func value(i uint64) uint64 { return 0x5eed0000 + i }

// readBack reads each page of the cache and counts those that read 0,
// those that hold their value, and any other.
func readBack(s *mmsim.System, t *memalloc.Task, addr uint64) (zero, kept, other int, err error) {
	for i := uint64(0); i < cachePages; i++ {
		r, err := s.Read(t, addr+i*pageSize)
		if err != nil {
			return zero, kept, other, err
		}
		switch {
		case r.Outcome != mmsim.AccessOK:
			return zero, kept, other, fmt.Errorf("reading page %d: %s", i, r.Outcome)
		case r.Value == 0:
			zero++
		case r.Value == value(i):
			kept++
		default:
			other++
		}
	}
	return zero, kept, other, nil
}

// vmFlags returns the VmFlags of t's mapping at addr.
func vmFlags(s *mmsim.System, t *memalloc.Task, addr uint64) string {
	ms, err := s.Mappings(t)
	if err != nil {
		return err.Error()
	}
	for _, m := range ms {
		if m.Start <= addr && addr < m.End {
			return m.Flags.String()
		}
	}
	return "(no mapping)"
}

// errName names an errno: "EINVAL", or "0" for success.
func errName(err error) string {
	var e mmsim.Errno
	switch {
	case err == nil:
		return "0"
	case errors.As(err, &e):
		return e.Name()
	}
	return err.Error()
}

// status returns t's /proc/PID/status lines named by keys, joined.
func status(s *mmsim.System, t *memalloc.Task, keys ...string) (string, error) {
	return procLines(func(w io.Writer) error { return s.WriteStatus(w, t) }, keys...)
}

// procLines returns the lines of a /proc file named by keys, in keys'
// order, with their spacing squeezed: "VmLck: 0 kB, VmRSS: 16384 kB".
func procLines(write func(io.Writer) error, keys ...string) (string, error) {
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return "", err
	}
	lines := map[string]string{}
	for _, l := range strings.Split(b.String(), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			lines[strings.TrimSuffix(f[0], ":")] = strings.Join(f, " ")
		}
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		l, ok := lines[k]
		if !ok {
			return "", fmt.Errorf("no %s line", k)
		}
		out = append(out, l)
	}
	return strings.Join(out, ", "), nil
}

// killLine returns the first OOM report's "Killed process" line.
func killLine(s *mmsim.System) string {
	for _, r := range s.Reports() {
		if r.Kind != mmsim.ReportOOM {
			continue
		}
		for _, l := range strings.Split(r.Text, "\n") {
			if strings.Contains(l, "Killed process") {
				return l
			}
		}
	}
	return "(no OOM report)"
}

// victim returns the first OOM victim's comm.
func victim(s *mmsim.System) string {
	for _, r := range s.Reports() {
		if r.Kind == mmsim.ReportOOM {
			if i := strings.Index(r.Text, ",task="); i >= 0 {
				return strings.SplitN(r.Text[i+len(",task="):], ",", 2)[0]
			}
		}
	}
	return ""
}
