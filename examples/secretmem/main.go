// This program runs one secretmem workload under each of the four
// policies of the seed-004 debate and compares what they cost the kernel's
// direct map and what each process sees when it fails.
//
// memfd_secret(2) pages are removed from the kernel's direct map
// (set_direct_map_invalid_noflush), so that neither the kernel nor a
// Spectre gadget in it can read them through the linear mapping. On x86
// the direct map is built from 1 GiB and 2 MiB entries; taking out one
// 4 KiB page splits the 1 GiB entry that covers it into 2 MiB ones
// (direct_map_level3_splits) and that 2 MiB entry into 4 KiB ones
// (direct_map_level2_splits), and nothing ever merges them back: the
// kernel runs on smaller TLB entries for good. 7.2 (upstream) allocates an
// order-0 GFP_HIGHUSER|__GFP_ZERO page at each fault, charges it to the
// file owner's locked_vm against RLIMIT_MEMLOCK (VM_FAULT_SIGBUS over it)
// and removes it from the direct map: the pages land wherever the buddy
// allocator finds them, and each may split an entry of its own. The seed's
// proposal (pmd-pool) takes a whole 2 MiB block per file and removes it at
// once — at most one level-2 split per 512 pages — at the price of up to
// 511 pages per file off the direct map and unused, falling back to
// order 0 when no 2 MiB block is free. The v16 patch (boot-pool) reserves
// a pool at boot, off the direct map from the start, so that no split ever
// happens at run time — but the pool is a hard, machine-wide limit: once
// one user has used it up, every other user's fault is SIGBUS, though
// none of them is near their own RLIMIT_MEMLOCK. The counter-proposal
// (reserve-at-mmap) allocates and charges every page at mmap, so a
// process over its limit gets EAGAIN (ENOMEM when memory is short) from
// mmap, which it can handle, instead of a SIGBUS at a fault in the middle
// of its work, which it cannot.
//
// The workload, on a machine aged first (5120 free order-0 pages scattered
// 64 to a 2 MiB block, as kernel allocations leave them): four processes
// of three users create a secretmem file each, ftruncate it, map it shared
// and write every page, one process after the other; a SIGBUS ends a
// process's touching (it would die of it). vault wants 12 MiB under the
// default 8 MiB RLIMIT_MEMLOCK. The boot pool holds 8 MiB. Then everything
// is unmapped and closed: locked_vm drops to 0, the split counters and
// DirectMap4k do not.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatalf("secretmem: %v", err)
	}
}

const (
	pageSize = 4096
	mib      = 1 << 20
	// bootPoolPages is the boot pool's size: 8 MiB.
	bootPoolPages = 2048
)

// procSpec is one process of the workload.
type procSpec struct {
	comm string
	uid  int
	size int64 // bytes of secret memory it wants
}

var workload = []procSpec{
	{"gpg-agent", 1000, 4 * mib},
	{"ssh-agent", 1000, 3 * mib},
	{"vault", 1001, 12 * mib},
	{"keyd", 1002, 2 * mib},
}

var uids = []int{1000, 1001, 1002}

var policies = []mmsim.SecretPolicy{
	mmsim.SecretUpstream, mmsim.SecretPMDPool, mmsim.SecretBootPool, mmsim.SecretReserveAtMmap,
}

// procResult is what became of one process.
type procResult struct {
	spec    procSpec
	mmapErr error
	touched int64         // pages written successfully
	fail    mmsim.Outcome // the access that stopped it, if not AccessOK
	cause   string        // the SIGBUS's cause
	stopped bool          // an access failed
	stats   mmsim.SecretStats
}

// directMap is the DirectMap lines of /proc/meminfo, in kB.
type directMap struct{ k4, m2, g1 int64 }

// policyResult is one policy's run.
type policyResult struct {
	policy      mmsim.SecretPolicy
	procs       []procResult
	peak, after mmsim.SecretStats
	dmPeak      directMap
	dmAfter     directMap
	lockedPeak  map[int]int64
	lockedAfter map[int]int64
}

func run(w io.Writer) error {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	res, err := runAll()
	if err != nil {
		return err
	}
	report(bw, res)
	return nil
}

// runAll runs the workload under every policy.
func runAll() ([]policyResult, error) {
	var res []policyResult
	for _, pol := range policies {
		r, err := runPolicy(pol)
		if err != nil {
			return nil, fmt.Errorf("%v: %w", pol, err)
		}
		res = append(res, r)
	}
	return res, nil
}

type proc struct {
	t    *memalloc.Task
	f    *mmsim.File
	addr uint64
}

// runPolicy runs the workload on a fresh machine under pol.
func runPolicy(pol mmsim.SecretPolicy) (policyResult, error) {
	cfg := mmsim.DefaultConfig()
	cfg.Secretmem = mmsim.SecretConfig{Policy: pol}
	if pol == mmsim.SecretBootPool {
		cfg.Secretmem.PoolPages = bootPoolPages
	}
	s, err := mmsim.New(cfg)
	if err != nil {
		return policyResult{}, err
	}
	defer s.Close()
	r := policyResult{policy: pol, lockedPeak: map[int]int64{}, lockedAfter: map[int]int64{}}
	held, err := age(s)
	if err != nil {
		return r, err
	}

	procs := make([]proc, len(workload))
	for i, sp := range workload {
		p := &procs[i]
		p.t = s.NewTask(sp.comm)
		if err := s.SetUID(p.t, sp.uid); err != nil {
			return r, err
		}
		if p.f, err = s.MemfdSecret(p.t, 0); err != nil {
			return r, err
		}
		if err := s.Ftruncate(p.t, p.f, sp.size); err != nil {
			return r, err
		}
		pr := procResult{spec: sp}
		before := s.SecretmemStats()
		p.addr, pr.mmapErr = s.MmapFile(p.t, p.f, 0, sp.size, mmsim.ProtRead|mmsim.ProtWrite, mmsim.MapShared)
		if pr.mmapErr == nil {
			for pg := int64(0); pg < sp.size/pageSize; pg++ {
				a, err := s.Write(p.t, p.addr+uint64(pg*pageSize), uint64(pg)+1)
				if err != nil {
					return r, err
				}
				if a.Outcome != mmsim.AccessOK {
					pr.stopped, pr.fail = true, a.Outcome
					break
				}
				pr.touched++
			}
		}
		pr.stats = s.SecretmemStats()
		pr.cause = sigbusCause(before, pr.stats)
		r.procs = append(r.procs, pr)
	}

	r.peak = s.SecretmemStats()
	if r.dmPeak, err = readDirectMap(s); err != nil {
		return r, err
	}
	for _, u := range uids {
		r.lockedPeak[u] = s.LockedVM(u)
	}

	// Release everything: munmap and close.
	for i, sp := range workload {
		p := &procs[i]
		if r.procs[i].mmapErr == nil {
			if err := s.Munmap(p.t, p.addr, sp.size); err != nil {
				return r, err
			}
		}
		if err := s.CloseFile(p.t, p.f); err != nil {
			return r, err
		}
	}
	kern := s.NewTask("kworker/0:1")
	for _, pg := range held {
		if err := s.FreePages(kern, pg, 0); err != nil {
			return r, err
		}
	}
	r.after = s.SecretmemStats()
	if r.dmAfter, err = readDirectMap(s); err != nil {
		return r, err
	}
	for _, u := range uids {
		r.lockedAfter[u] = s.LockedVM(u)
	}
	return r, nil
}

// agePages is how many order-0 kernel pages age allocates (160 MiB);
// it frees one in agePitch of them.
const (
	agePages = 40960
	agePitch = 8
)

// age makes s look like a machine that has been up a while: it fills 80
// 2 MiB blocks with order-0 unmovable (GFP_KERNEL) pages, as slab and page
// tables would, and frees one page in eight, leaving 5120 free order-0
// pages scattered 64 to a 2 MiB block, on the buddy allocator's order-0
// free list, which serves order-0 requests first. It returns the pages it
// keeps.
func age(s *mmsim.System) ([]zone.Page, error) {
	t := s.NewTask("kworker/0:1")
	pages := make([]zone.Page, 0, agePages)
	for range agePages {
		pg, err := s.AllocPages(t, gfp.Kernel, 0)
		if err != nil {
			return nil, err
		}
		pages = append(pages, pg)
	}
	slices.SortFunc(pages, func(a, b zone.Page) int { return cmp.Compare(a.PFN(), b.PFN()) })
	held := pages[:0]
	for _, pg := range pages {
		if pg.PFN()%agePitch == 0 {
			if err := s.FreePages(t, pg, 0); err != nil {
				return nil, err
			}
			continue
		}
		held = append(held, pg)
	}
	// drain_all_pages, as direct reclaim does before it retries: the holes
	// leave CPU 0's pcp list for the buddy free lists, where every CPU's
	// allocations find them.
	if err := s.DrainAllPages(t); err != nil {
		return nil, err
	}
	return held, nil
}

// sigbusCause names the cause of the SIGBUS counted between a and b.
func sigbusCause(a, b mmsim.SecretStats) string {
	switch {
	case b.SIGBUSRlimit > a.SIGBUSRlimit:
		return "over RLIMIT_MEMLOCK"
	case b.SIGBUSPoolEmpty > a.SIGBUSPoolEmpty:
		return "boot pool empty"
	case b.SIGBUSBeyondSize > a.SIGBUSBeyondSize:
		return "beyond i_size"
	case b.SIGBUSDirectMap > a.SIGBUSDirectMap:
		return "direct map refused"
	}
	return ""
}

// readDirectMap parses the DirectMap lines of s's /proc/meminfo.
func readDirectMap(s *mmsim.System) (directMap, error) {
	var buf bytes.Buffer
	if err := s.WriteMeminfo(&buf); err != nil {
		return directMap{}, err
	}
	var dm directMap
	found := 0
	for _, line := range strings.Split(buf.String(), "\n") {
		var dst *int64
		switch {
		case strings.HasPrefix(line, "DirectMap4k:"):
			dst = &dm.k4
		case strings.HasPrefix(line, "DirectMap2M:"):
			dst = &dm.m2
		case strings.HasPrefix(line, "DirectMap1G:"):
			dst = &dm.g1
		default:
			continue
		}
		var name string
		if _, err := fmt.Sscanf(line, "%s %d kB", &name, dst); err != nil {
			return dm, fmt.Errorf("meminfo %q: %w", line, err)
		}
		found++
	}
	if found != 3 {
		return dm, fmt.Errorf("meminfo: %d DirectMap lines, want 3", found)
	}
	return dm, nil
}

func mmapFailures(m map[mmsim.Errno]int64) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, e := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%d %s", m[e], e.Name()))
	}
	return strings.Join(parts, ", ")
}

func report(w io.Writer, res []policyResult) {
	fmt.Fprintf(w, "secretmem on an 8 GiB machine (DefaultConfig): RLIMIT_MEMLOCK 8 MiB (2048 pages) for every process;\n")
	fmt.Fprintf(w, "boot-pool reserves %d pages (%d MiB) at boot.\n\n", bootPoolPages, bootPoolPages*pageSize/mib)
	fmt.Fprintf(w, "The machine is aged first: %d order-0 GFP_KERNEL pages allocated, one in %d freed\n", agePages, agePitch)
	fmt.Fprintf(w, "(%d free pages scattered %d to a 2 MiB block).\n\n", agePages/agePitch, 512/agePitch)
	fmt.Fprintf(w, "Workload, in order (each writes every page of its shared mapping until a fault fails):\n")
	for _, sp := range workload {
		fmt.Fprintf(w, "  %-10s uid %d  %2d MiB (%4d pages)\n", sp.comm, sp.uid, sp.size/mib, sp.size/pageSize)
	}

	fmt.Fprintf(w, "\nWhat each process saw:\n")
	line := func(first string, cell func(r policyResult) string) {
		var b strings.Builder
		fmt.Fprintf(&b, "%-16s", first)
		for _, r := range res {
			fmt.Fprintf(&b, " %-24s", cell(r))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line("", func(r policyResult) string { return r.policy.String() })
	for i, sp := range workload {
		line(fmt.Sprintf("%s/%d", sp.comm, sp.uid), func(r policyResult) string { return describe(r.procs[i]) })
	}

	type row struct {
		name string
		f    func(r policyResult) string
	}
	d := func(v int64) string { return fmt.Sprint(v) }
	rows := []row{
		{"pages faulted in", func(r policyResult) string { return d(r.peak.Faults) }},
		{"pages off direct map", func(r policyResult) string { return d(r.peak.DirectMapInvalid) }},
		{"pmd blocks/fallbacks", func(r policyResult) string {
			return fmt.Sprintf("%d/%d", r.peak.PMDBlocks, r.peak.PMDFallbacks)
		}},
		{"pool pages/free", func(r policyResult) string {
			return fmt.Sprintf("%d/%d", r.peak.PoolPages, r.peak.PoolFree)
		}},
		{"level2 splits", func(r policyResult) string { return d(r.peak.DirectMapLevel2Splits) }},
		{"level3 splits", func(r policyResult) string { return d(r.peak.DirectMapLevel3Splits) }},
		{"DirectMap4k kB", func(r policyResult) string { return d(r.dmPeak.k4) }},
		{"DirectMap2M kB", func(r policyResult) string { return d(r.dmPeak.m2) }},
		{"DirectMap1G kB", func(r policyResult) string { return d(r.dmPeak.g1) }},
		{"SIGBUS faults", func(r policyResult) string { return d(r.peak.SIGBUSFaults) }},
		{"  over rlimit", func(r policyResult) string { return d(r.peak.SIGBUSRlimit) }},
		{"  pool empty", func(r policyResult) string { return d(r.peak.SIGBUSPoolEmpty) }},
		{"OOM faults", func(r policyResult) string { return d(r.peak.OOMFaults) }},
		{"mmap failures", func(r policyResult) string { return mmapFailures(r.peak.MmapFailures) }},
	}
	for _, u := range uids {
		rows = append(rows, row{fmt.Sprintf("locked_vm uid %d", u), func(r policyResult) string { return d(r.lockedPeak[u]) }})
	}
	table := func(title string, rows []row) {
		fmt.Fprintf(w, "\n%s\n%-22s", title, "")
		for _, r := range res {
			fmt.Fprintf(w, " %16s", r.policy)
		}
		fmt.Fprintln(w)
		for _, rw := range rows {
			fmt.Fprintf(w, "%-22s", rw.name)
			for _, r := range res {
				fmt.Fprintf(w, " %16s", rw.f(r))
			}
			fmt.Fprintln(w)
		}
	}
	table("After the workload (locked_vm in pages):", rows)

	after := []row{
		{"secretmem files", func(r policyResult) string { return d(r.after.Users) }},
		{"pages off direct map", func(r policyResult) string { return d(r.after.DirectMapInvalid) }},
		{"level2 splits", func(r policyResult) string { return d(r.after.DirectMapLevel2Splits) }},
		{"level3 splits", func(r policyResult) string { return d(r.after.DirectMapLevel3Splits) }},
		{"DirectMap4k kB", func(r policyResult) string { return d(r.dmAfter.k4) }},
		{"DirectMap2M kB", func(r policyResult) string { return d(r.dmAfter.m2) }},
		{"DirectMap1G kB", func(r policyResult) string { return d(r.dmAfter.g1) }},
	}
	for _, u := range uids {
		after = append(after, row{fmt.Sprintf("locked_vm uid %d", u), func(r policyResult) string { return d(r.lockedAfter[u]) }})
	}
	table("After munmap and close of every file:", after)

	fmt.Fprintf(w, "\nThe locked_vm charges are gone; the splits are not: x86 never merges a split\n")
	fmt.Fprintf(w, "direct-map entry back, so the 4 KiB entries outlive the secrets that caused them.\n")
	fmt.Fprintf(w, "(boot-pool's pages stay off the direct map in the pool after release.)\n")
}

// describe summarizes what one process saw.
func describe(p procResult) string {
	switch {
	case p.mmapErr != nil:
		var e mmsim.Errno
		for _, c := range []mmsim.Errno{mmsim.EAGAIN, mmsim.ENOMEM} {
			if errors.Is(p.mmapErr, c) {
				e = c
			}
		}
		if e != 0 {
			return "mmap " + e.Name()
		}
		return "mmap failed"
	case p.stopped && p.fail == mmsim.AccessSIGBUS:
		return fmt.Sprintf("SIGBUS@%d %s", p.touched, shortCause(p.cause))
	case p.stopped:
		return fmt.Sprintf("%v@%d", p.fail, p.touched)
	}
	return fmt.Sprintf("ok %d pages", p.touched)
}

func shortCause(c string) string {
	switch c {
	case "over RLIMIT_MEMLOCK":
		return "(rlimit)"
	case "boot pool empty":
		return "(pool empty)"
	}
	return "(" + c + ")"
}
