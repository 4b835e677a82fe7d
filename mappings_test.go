package mmsim_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// pageBytes is PAGE_SIZE.
const pageBytes = 4096

// rw is the usual protection of a data mapping.
const rw = mmsim.ProtRead | mmsim.ProtWrite

// kbLines parses the "Name:   value kB" lines of a procfs file.
func kbLines(t testing.TB, write func(io.Writer) error) map[string]int64 {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, write(&b))
	out := map[string]int64{}
	sc := bufio.NewScanner(&b)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		f := strings.Fields(rest)
		if !ok || len(f) == 0 {
			continue
		}
		if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			out[name] = n
		}
	}
	return out
}

// statusKB returns tk's /proc/PID/status memory lines, in kB.
func statusKB(t testing.TB, s *mmsim.System, tk *memalloc.Task) map[string]int64 {
	t.Helper()
	return kbLines(t, func(w io.Writer) error { return s.WriteStatus(w, tk) })
}

// meminfoKB returns /proc/meminfo, in kB.
func meminfoKB(t testing.TB, s *mmsim.System) map[string]int64 {
	t.Helper()
	return kbLines(t, s.WriteMeminfo)
}

// committedPages returns /proc/meminfo's Committed_AS in pages.
func committedPages(t testing.TB, s *mmsim.System) int64 {
	t.Helper()
	return meminfoKB(t, s)["Committed_AS"] / 4
}

// mappingAt returns tk's mapping that holds addr.
func mappingAt(t testing.TB, s *mmsim.System, tk *memalloc.Task, addr uint64) (mmsim.Mapping, bool) {
	t.Helper()
	ms, err := s.Mappings(tk)
	require.NoError(t, err)
	for _, m := range ms {
		if m.Start <= addr && addr < m.End {
			return m, true
		}
	}
	return mmsim.Mapping{}, false
}

// flagsAt returns the vm_flags of tk's mapping at addr, which must exist.
func flagsAt(t testing.TB, s *mmsim.System, tk *memalloc.Task, addr uint64) mmsim.VMFlags {
	t.Helper()
	m, ok := mappingAt(t, s, tk, addr)
	require.True(t, ok, "no mapping at %#x", addr)
	return m.Flags
}

// mmapPages maps pages pages for tk and returns the address.
func mmapPages(t testing.TB, s *mmsim.System, tk *memalloc.Task, pages int64, prot mmsim.Prot, flags mmsim.MapFlags) uint64 {
	t.Helper()
	addr, err := s.Mmap(tk, pages*pageBytes, prot, flags|mmsim.MapAnonymous)
	require.NoError(t, err)
	return addr
}

// writePages writes base+i to page i of [addr, addr+pages pages).
func writePages(t testing.TB, s *mmsim.System, tk *memalloc.Task, addr uint64, pages int64, base uint64) {
	t.Helper()
	for i := range uint64(pages) {
		r, err := s.Write(tk, addr+i*pageBytes, base+i)
		require.NoError(t, err)
		require.Equal(t, mmsim.AccessOK, r.Outcome, "write of page %d", i)
	}
}

// readPage reads the word of page i at addr; the access must complete.
func readPage(t testing.TB, s *mmsim.System, tk *memalloc.Task, addr uint64, i int64) mmsim.AccessResult {
	t.Helper()
	r, err := s.Read(tk, addr+uint64(i)*pageBytes)
	require.NoError(t, err)
	require.Equal(t, mmsim.AccessOK, r.Outcome, "read of page %d", i)
	return r
}

// squeeze starts a task that faults in extra pages more than are free, so
// that reclaim must find them among the other tasks' pages.
func squeeze(t testing.TB, s *mmsim.System, extra int64) (*memalloc.Task, error) {
	t.Helper()
	hog := s.NewTask("hog")
	_, err := s.TouchAnon(hog, meminfoKB(t, s)["MemFree"]/4+extra)
	return hog, err
}

// pageAllocs returns the mm_page_alloc events, and so the masks, of what
// ran since the last take.
func pageAllocs(rec *recorder) []gfp.Mask {
	var out []gfp.Mask
	for _, e := range rec.take() {
		if e.Kind == zone.EvPageAlloc {
			out = append(out, e.Mask)
		}
	}
	return out
}

// TestMmapErrors checks do_mmap's refusals, their order and their errno:
// a zero length, the map types anonymous memory takes, MAP_DROPPABLE's
// incompatible flags, and MAP_LOCKED against RLIMIT_MEMLOCK — can_do_mlock
// (EPERM) before mlock_future_ok (EAGAIN), both before the map type. A
// refused call maps and charges nothing.
//
// Reference: mm/mmap.c:do_mmap(), ksys_mmap_pgoff(), mlock_future_ok(),
// mm/mlock.c:can_do_mlock().
func TestMmapErrors(t *testing.T) {
	const noLimit = -1
	for _, tc := range []struct {
		name string
		// initial state
		uid    int
		rlimit int64 // RLIMIT_MEMLOCK in pages; noLimit keeps the default 8 MiB
		// call
		pages int64
		prot  mmsim.Prot
		flags mmsim.MapFlags
		// expected
		want mmsim.Errno // 0: the mapping is made
	}{
		{name: "a length of zero is EINVAL", rlimit: noLimit,
			pages: 0, prot: rw, flags: mmsim.MapPrivate, want: mmsim.EINVAL},
		{name: "MAP_DROPPABLE with MAP_LOCKED is EINVAL", rlimit: noLimit,
			pages: 1, prot: rw, flags: mmsim.MapDroppable | mmsim.MapLocked, want: mmsim.EINVAL},
		{name: "MAP_DROPPABLE with MAP_HUGETLB is EINVAL", rlimit: noLimit,
			pages: 1, prot: rw, flags: mmsim.MapDroppable | mmsim.MapHugetlb, want: mmsim.EINVAL},
		{name: "MAP_DROPPABLE with MAP_GROWSDOWN is EINVAL", rlimit: noLimit,
			pages: 1, prot: rw, flags: mmsim.MapDroppable | mmsim.MapGrowsDown, want: mmsim.EINVAL},
		{name: "map type 0 is EINVAL", rlimit: noLimit,
			pages: 1, prot: rw, flags: 0, want: mmsim.EINVAL},
		{name: "MAP_SHARED_VALIDATE of anonymous memory is EINVAL", rlimit: noLimit,
			pages: 1, prot: rw, flags: mmsim.MapShared | mmsim.MapPrivate, want: mmsim.EINVAL},
		{name: "MAP_SHARED with MAP_GROWSDOWN is EINVAL", rlimit: noLimit,
			pages: 1, prot: rw, flags: mmsim.MapShared | mmsim.MapGrowsDown, want: mmsim.EINVAL},
		{name: "MAP_LOCKED under RLIMIT_MEMLOCK 0 is EPERM for a non-root task", uid: 1000, rlimit: 0,
			pages: 1, prot: rw, flags: mmsim.MapPrivate | mmsim.MapLocked, want: mmsim.EPERM},
		{name: "MAP_DROPPABLE|MAP_LOCKED under RLIMIT_MEMLOCK 0 is EPERM: can_do_mlock comes before the map type", uid: 1000, rlimit: 0,
			pages: 1, prot: rw, flags: mmsim.MapDroppable | mmsim.MapLocked, want: mmsim.EPERM},
		{name: "MAP_LOCKED beyond RLIMIT_MEMLOCK is EAGAIN", uid: 1000, rlimit: 8,
			pages: 9, prot: rw, flags: mmsim.MapPrivate | mmsim.MapLocked, want: mmsim.EAGAIN},
		{name: "MAP_LOCKED up to RLIMIT_MEMLOCK is allowed", uid: 1000, rlimit: 8,
			pages: 8, prot: rw, flags: mmsim.MapPrivate | mmsim.MapLocked},
		{name: "root's MAP_LOCKED ignores RLIMIT_MEMLOCK 0 (CAP_IPC_LOCK)", uid: 0, rlimit: 0,
			pages: 16, prot: rw, flags: mmsim.MapPrivate | mmsim.MapLocked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSystem(t, smallConfig(16384))
			tk := s.NewTask("mapper")
			require.NoError(t, s.SetUID(tk, tc.uid))
			if tc.rlimit != noLimit {
				require.NoError(t, s.SetRlimitMemlock(tk, uint64(tc.rlimit)*pageBytes))
			}
			addr, err := s.Mmap(tk, tc.pages*pageBytes, tc.prot, tc.flags|mmsim.MapAnonymous)
			ms, merr := s.Mappings(tk)
			require.NoError(t, merr)
			if tc.want == 0 {
				require.NoError(t, err)
				require.Len(t, ms, 1)
				require.Equal(t, addr, ms[0].Start)
				return
			}
			require.ErrorIs(t, err, tc.want)
			if tc.want == mmsim.EINVAL {
				require.ErrorIs(t, err, mmsim.ErrInvalid)
			} else {
				require.NotErrorIs(t, err, mmsim.ErrInvalid)
			}
			require.Empty(t, ms, "a refused mmap maps nothing")
			require.Zero(t, committedPages(t, s), "a refused mmap charges nothing")
		})
	}
}

// TestMmapVMFlags checks the vm_flags mmap gives anonymous mappings and
// what each charges to Committed_AS: MAP_DROPPABLE adds VM_DROPPABLE,
// VM_NORESERVE, VM_WIPEONFORK and VM_DONTDUMP and is never charged; a
// private writable mapping is VM_ACCOUNT; MAP_NORESERVE is VM_NORESERVE
// except under overcommit mode 2; shared anonymous memory is shmem,
// charged by shmem_acct_size unless VM_NORESERVE, whatever its protection.
//
// Reference: mm/mmap.c:do_mmap(), mm/vma.c:accountable_mapping(),
// __mmap_setup() (VM_ACCOUNT), mm/shmem.c:__shmem_file_setup(),
// shmem_acct_size().
func TestMmapVMFlags(t *testing.T) {
	const pages = 16
	for _, tc := range []struct {
		name string
		// initial state
		overcommit int
		// call
		prot  mmsim.Prot
		flags mmsim.MapFlags
		// expected
		set, clear mmsim.VMFlags
		charged    int64 // pages added to Committed_AS
	}{
		{name: "MAP_DROPPABLE is droppable, unreserved, wiped on fork and not dumped, and never charged",
			prot: rw, flags: mmsim.MapDroppable,
			set:   mmsim.VMDroppable | mmsim.VMNoReserve | mmsim.VMWipeOnFork | mmsim.VMDontDump | mmsim.VMRead | mmsim.VMWrite,
			clear: mmsim.VMAccount | mmsim.VMShared | mmsim.VMLocked, charged: 0},
		{name: "a private writable mapping is VM_ACCOUNT",
			prot: rw, flags: mmsim.MapPrivate,
			set:   mmsim.VMAccount | mmsim.VMRead | mmsim.VMWrite,
			clear: mmsim.VMNoReserve | mmsim.VMShared | mmsim.VMDroppable | mmsim.VMWipeOnFork | mmsim.VMDontDump, charged: pages},
		{name: "a private read-only mapping is not charged",
			prot: mmsim.ProtRead, flags: mmsim.MapPrivate,
			set: mmsim.VMRead, clear: mmsim.VMAccount | mmsim.VMWrite, charged: 0},
		{name: "MAP_NORESERVE is VM_NORESERVE and not charged in mode 0",
			prot: rw, flags: mmsim.MapPrivate | mmsim.MapNoReserve,
			set: mmsim.VMNoReserve, clear: mmsim.VMAccount, charged: 0},
		{name: "MAP_NORESERVE is ignored in mode 2: the mapping is charged", overcommit: 2,
			prot: rw, flags: mmsim.MapPrivate | mmsim.MapNoReserve,
			set: mmsim.VMAccount, clear: mmsim.VMNoReserve, charged: pages},
		{name: "MAP_DROPPABLE stays unreserved and uncharged in mode 2", overcommit: 2,
			prot: rw, flags: mmsim.MapDroppable,
			set: mmsim.VMDroppable | mmsim.VMNoReserve, clear: mmsim.VMAccount, charged: 0},
		{name: "shared anonymous memory is charged to Committed_AS",
			prot: rw, flags: mmsim.MapShared,
			set: mmsim.VMShared | mmsim.VMRead | mmsim.VMWrite, clear: mmsim.VMDroppable | mmsim.VMNoReserve, charged: pages},
		{name: "read-only shared anonymous memory is charged too",
			prot: mmsim.ProtRead, flags: mmsim.MapShared,
			set: mmsim.VMShared, clear: mmsim.VMWrite, charged: pages},
		{name: "shared anonymous memory with MAP_NORESERVE is not charged",
			prot: rw, flags: mmsim.MapShared | mmsim.MapNoReserve,
			set: mmsim.VMShared | mmsim.VMNoReserve, charged: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallConfig(16384)
			cfg.Sysctl.OvercommitMemory = tc.overcommit
			s := newSystem(t, cfg)
			tk := s.NewTask("mapper")
			addr := mmapPages(t, s, tk, pages, tc.prot, tc.flags)
			m, ok := mappingAt(t, s, tk, addr)
			require.True(t, ok)
			require.Equal(t, addr+pages*pageBytes, m.End)
			require.Equal(t, tc.set, m.Flags&tc.set, "VmFlags: %s", m.Flags)
			require.Zero(t, m.Flags&tc.clear, "VmFlags: %s", m.Flags)
			require.Equal(t, tc.charged, committedPages(t, s))
			require.NoError(t, s.Munmap(tk, addr, pages*pageBytes))
			require.Zero(t, committedPages(t, s), "munmap gives the charge back")
		})
	}
}

// TestSharedAnonymousChargeIsTheShmemFiles checks where the charge of
// shared anonymous memory lives: in its shmem file (shmem_acct_size at
// setup, shmem_unacct_size at eviction), not in the VMA — accountable_mapping
// is false for VM_SHARED, so the VMA has no VM_ACCOUNT (smaps shows no
// "ac"), and dup_mmap, which charges only VM_ACCOUNT VMAs, does not
// charge it again in the child.
//
// Reference: mm/vma.c:accountable_mapping(), mm/shmem.c:shmem_acct_size(),
// shmem_evict_inode(), mm/mmap.c:dup_mmap().
func TestSharedAnonymousChargeIsTheShmemFiles(t *testing.T) {
	const pages = 16
	s := newSystem(t, smallConfig(16384))
	tk := s.NewTask("parent")
	addr := mmapPages(t, s, tk, pages, rw, mmsim.MapShared)
	require.Equal(t, int64(pages), committedPages(t, s))
	_, err := s.Fork(tk, "child")
	require.NoError(t, err)
	assert.Zero(t, flagsAt(t, s, tk, addr)&mmsim.VMAccount, "the VMA of shared anonymous memory is not VM_ACCOUNT")
	assert.Equal(t, int64(pages), committedPages(t, s), "fork shares the shmem file: no second charge")
}

// TestOvercommitPolicies checks vm.overcommit_memory's three policies as
// __vm_enough_memory applies them to mmap: mode 0 refuses only a single
// request larger than RAM plus swap; mode 1 refuses nothing; mode 2 holds
// Committed_AS below CommitLimit (overcommit_ratio percent of RAM, or
// overcommit_kbytes, plus swap), less the admin reserve for tasks without
// CAP_SYS_ADMIN and min(total_vm/32, user_reserve) for the caller's mm.
// /proc/meminfo prints both numbers; munmap gives the charge back.
//
// Reference: mm/util.c:__vm_enough_memory(), vm_commit_limit(),
// mm/mmap.c:init_admin_reserve(), init_user_reserve(),
// fs/proc/meminfo.c:meminfo_proc_show().
func TestOvercommitPolicies(t *testing.T) {
	t.Run("mode 0 refuses one mapping larger than RAM plus swap", func(t *testing.T) {
		const swap = 1024
		s := newSystem(t, pressureConfig(swap))
		tk := s.NewTask("guess")
		max := meminfoKB(t, s)["MemTotal"]/4 + swap
		_, err := s.Mmap(tk, (max+1)*pageBytes, rw, mmsim.MapPrivate|mmsim.MapAnonymous)
		require.ErrorIs(t, err, mmsim.ENOMEM)
		require.Zero(t, committedPages(t, s), "a refused charge is taken back")
		var warned bool
		for _, r := range s.Reports() {
			warned = warned || r.Site == "mm/util.c:__vm_enough_memory" &&
				strings.Contains(r.Text, fmt.Sprintf("bytes: %d not enough memory for the allocation", (max+1)*pageBytes))
		}
		require.True(t, warned, "__vm_enough_memory's warning")
		// RAM plus swap exactly, twice: the heuristic looks at each
		// request alone, not at the total.
		mmapPages(t, s, tk, max, rw, mmsim.MapPrivate)
		mmapPages(t, s, tk, max, rw, mmsim.MapPrivate)
		mi := meminfoKB(t, s)
		require.Equal(t, 2*max*4, mi["Committed_AS"])
		require.Greater(t, mi["Committed_AS"], mi["CommitLimit"])
		// MAP_NORESERVE is not charged, so not checked either.
		mmapPages(t, s, tk, max+1, rw, mmsim.MapPrivate|mmsim.MapNoReserve)
	})

	t.Run("mode 1 grants anything", func(t *testing.T) {
		cfg := smallConfig(16384)
		cfg.Sysctl.OvercommitMemory = 1
		s := newSystem(t, cfg)
		tk := s.NewTask("always")
		huge := 100 * meminfoKB(t, s)["MemTotal"] / 4
		mmapPages(t, s, tk, huge, rw, mmsim.MapPrivate)
		mmapPages(t, s, tk, huge, rw, mmsim.MapShared)
		require.Equal(t, 2*huge, committedPages(t, s), "mode 1 still counts Committed_AS")
	})

	for _, tc := range []struct {
		name string
		// initial state
		ratio  int
		kbytes int64
		swap   int64
		// expected: the commit limit from MemTotal (pages)
		limit func(total int64) int64
	}{
		{name: "mode 2 with the default overcommit_ratio of 50 and no swap", ratio: 50,
			limit: func(total int64) int64 { return total * 50 / 100 }},
		{name: "mode 2 with overcommit_ratio 80 adds the swap", ratio: 80, swap: 2048,
			limit: func(total int64) int64 { return total*80/100 + 2048 }},
		{name: "mode 2 with overcommit_kbytes ignores the ratio", ratio: 50, kbytes: 20000, swap: 1024,
			limit: func(int64) int64 { return 20000/4 + 1024 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := pressureConfig(tc.swap)
			cfg.Sysctl.OvercommitMemory = 2
			cfg.Sysctl.OvercommitRatio = tc.ratio
			cfg.Sysctl.OvercommitKbytes = tc.kbytes
			s := newSystem(t, cfg)
			mi := meminfoKB(t, s)
			limit := tc.limit(mi["MemTotal"] / 4)
			require.Equal(t, limit*4, mi["CommitLimit"])
			c0 := committedPages(t, s)
			// root, and a fresh mm (total_vm 0): no reserve is taken.
			// __vm_enough_memory wants Committed_AS (the request
			// included) below the limit.
			tk := s.NewTask("root")
			most := limit - c0 - 1
			addr := mmapPages(t, s, tk, most, rw, mmsim.MapPrivate)
			require.Equal(t, (c0+most)*4, meminfoKB(t, s)["Committed_AS"])
			require.NoError(t, s.Munmap(tk, addr, most*pageBytes))
			require.Equal(t, c0, committedPages(t, s))
			_, err := s.Mmap(tk, (most+1)*pageBytes, rw, mmsim.MapPrivate|mmsim.MapAnonymous)
			require.ErrorIs(t, err, mmsim.ENOMEM)
			require.Equal(t, c0, committedPages(t, s))
		})
	}

	t.Run("mode 2 keeps the admin reserve from non-root tasks", func(t *testing.T) {
		cfg := smallConfig(16384)
		cfg.Sysctl.OvercommitMemory = 2
		s := newSystem(t, cfg)
		mi := meminfoKB(t, s)
		limit := mi["CommitLimit"] / 4
		// init_admin_reserve: min(free at boot / 32, 8 MiB).
		admin := min(mi["MemFree"]/32, 8192) / 4
		require.Positive(t, admin)
		user := s.NewTask("user")
		require.NoError(t, s.SetUID(user, 1000))
		root := s.NewTask("root")

		most := limit - admin - 1
		_, err := s.Mmap(user, (most+1)*pageBytes, rw, mmsim.MapPrivate|mmsim.MapAnonymous)
		require.ErrorIs(t, err, mmsim.ENOMEM, "the admin reserve is not the user's")
		addr := mmapPages(t, s, user, most, rw, mmsim.MapPrivate)
		require.NoError(t, s.Munmap(user, addr, most*pageBytes))
		// root gets the reserve.
		mmapPages(t, s, root, limit-1, rw, mmsim.MapPrivate)
	})

	t.Run("mode 2 keeps min(total_vm/32, user_reserve) from a large mm", func(t *testing.T) {
		cfg := smallConfig(16384)
		cfg.Sysctl.OvercommitMemory = 2
		s := newSystem(t, cfg)
		limit := meminfoKB(t, s)["CommitLimit"] / 4
		tk := s.NewTask("big")
		// 3200 read-only pages: not charged, but in total_vm.
		mmapPages(t, s, tk, 3200, mmsim.ProtRead, mmsim.MapPrivate)
		require.Zero(t, committedPages(t, s))
		most := limit - 3200/32 - 1
		_, err := s.Mmap(tk, (most+1)*pageBytes, rw, mmsim.MapPrivate|mmsim.MapAnonymous)
		require.ErrorIs(t, err, mmsim.ENOMEM)
		mmapPages(t, s, tk, most, rw, mmsim.MapPrivate)
	})

	t.Run("mode 2 charges MAP_NORESERVE but not MAP_DROPPABLE", func(t *testing.T) {
		cfg := smallConfig(16384)
		cfg.Sysctl.OvercommitMemory = 2
		s := newSystem(t, cfg)
		limit := meminfoKB(t, s)["CommitLimit"] / 4
		tk := s.NewTask("root")
		_, err := s.Mmap(tk, limit*pageBytes, rw, mmsim.MapPrivate|mmsim.MapAnonymous|mmsim.MapNoReserve)
		require.ErrorIs(t, err, mmsim.ENOMEM)
		mmapPages(t, s, tk, 2*limit, rw, mmsim.MapDroppable)
		require.Zero(t, committedPages(t, s))
	})

	t.Run("munmap of part of a mapping gives back that part", func(t *testing.T) {
		cfg := smallConfig(16384)
		cfg.Sysctl.OvercommitMemory = 2
		s := newSystem(t, cfg)
		tk := s.NewTask("root")
		addr := mmapPages(t, s, tk, 100, rw, mmsim.MapPrivate)
		mmapPages(t, s, tk, 50, mmsim.ProtRead, mmsim.MapPrivate)
		require.Equal(t, int64(100), committedPages(t, s))
		require.NoError(t, s.Munmap(tk, addr+40*pageBytes, 20*pageBytes))
		require.Equal(t, int64(80), committedPages(t, s))
		require.NoError(t, s.Munmap(tk, addr, 100*pageBytes))
		require.Zero(t, committedPages(t, s))
	})
}

// TestAnonymousFaults checks the anonymous fault path as its allocations
// and outcomes show it: a write allocates a zeroed movable page
// (GFP_HIGHUSER_MOVABLE|__GFP_ZERO) after the page-table page
// (GFP_PGTABLE_USER); a read of an untouched page maps the shared zero page,
// allocating nothing and counting nothing in RssAnon, and a write to it
// later allocates as a first write does; a droppable mapping's allocation
// adds __GFP_NOWARN; a write to a read-only mapping, or any access where
// nothing is mapped, is SIGSEGV.
//
// Reference: mm/memory.c:do_anonymous_page(), wp_page_copy(), __pte_alloc(),
// include/linux/highmem.h:vma_alloc_zeroed_movable_folio(),
// mm/mempolicy.c:vma_alloc_folio_noprof(), arch/x86/mm/fault.c:access_error().
func TestAnonymousFaults(t *testing.T) {
	const anonMask = gfp.HighUserMovable | gfp.Zero
	const pgtableMask = gfp.Kernel | gfp.Zero | gfp.Account

	t.Run("a read maps the zero page; a write allocates a zeroed movable page", func(t *testing.T) {
		s := newSystem(t, smallConfig(16384))
		var rec recorder
		s.Trace(rec.add)
		tk := s.NewTask("toucher")
		addr := mmapPages(t, s, tk, 4, rw, mmsim.MapPrivate)
		require.Empty(t, pageAllocs(&rec), "mmap allocates nothing")

		r := readPage(t, s, tk, addr, 1)
		require.Zero(t, r.Value)
		require.True(t, r.Faulted)
		require.Equal(t, mmsim.FaultResult(0), r.Fault)
		masks := pageAllocs(&rec)
		require.Len(t, masks, 1, "the page table only, no page: %v", masks)
		require.Equal(t, pgtableMask, masks[0]&^gfp.Comp, "GFP_PGTABLE_USER: %v", masks[0])
		require.Zero(t, statusKB(t, s, tk)["RssAnon"], "the zero page is not in rss")
		r = readPage(t, s, tk, addr, 1)
		require.False(t, r.Faulted, "the zero page stays mapped")

		w, err := s.Write(tk, addr, 42)
		require.NoError(t, err)
		assert.Equal(t, mmsim.AccessOK, w.Outcome)
		assert.True(t, w.Faulted)
		assert.Equal(t, mmsim.FaultResult(0), w.Fault)
		masks = pageAllocs(&rec)
		require.Len(t, masks, 1, "%v", masks)
		require.Equal(t, anonMask, masks[0]&anonMask, "GFP_HIGHUSER_MOVABLE|__GFP_ZERO: %v", masks[0])
		require.Zero(t, masks[0]&gfp.NoWarn, "%v", masks[0])
		require.Equal(t, int64(4), statusKB(t, s, tk)["RssAnon"])
		r = readPage(t, s, tk, addr, 0)
		require.Equal(t, uint64(42), r.Value)
		require.False(t, r.Faulted, "the page is mapped")

		w, err = s.Write(tk, addr+pageBytes, 7)
		require.NoError(t, err)
		require.True(t, w.Faulted, "a write to the zero page faults")
		masks = pageAllocs(&rec)
		require.Len(t, masks, 1, "%v", masks)
		require.Equal(t, anonMask, masks[0]&anonMask, "wp_page_copy of the zero page: %v", masks[0])
		require.Equal(t, uint64(7), readPage(t, s, tk, addr, 1).Value)
		require.Equal(t, int64(8), statusKB(t, s, tk)["RssAnon"])
	})

	t.Run("a droppable mapping's page is allocated with __GFP_NOWARN", func(t *testing.T) {
		s := newSystem(t, smallConfig(16384))
		var rec recorder
		s.Trace(rec.add)
		tk := s.NewTask("toucher")
		addr := mmapPages(t, s, tk, 1, rw, mmsim.MapDroppable)
		writePages(t, s, tk, addr, 1, 1)
		masks := pageAllocs(&rec)
		require.Len(t, masks, 2, "%v", masks)
		require.Zero(t, masks[0]&gfp.NoWarn, "only vma_alloc_folio adds it, not the page table: %v", masks[0])
		require.Equal(t, anonMask|gfp.NoWarn, masks[1]&(anonMask|gfp.NoWarn), "%v", masks[1])
	})

	t.Run("user pages and page tables are allocated with __GFP_COMP", func(t *testing.T) {
		s := newSystem(t, smallConfig(16384))
		var rec recorder
		s.Trace(rec.add)
		tk := s.NewTask("toucher")
		addr := mmapPages(t, s, tk, 1, rw, mmsim.MapPrivate)
		writePages(t, s, tk, addr, 1, 1)
		masks := pageAllocs(&rec)
		require.Len(t, masks, 2, "%v", masks)
		assert.Equal(t, pgtableMask|gfp.Comp, masks[0], "%v", masks[0])
		assert.Equal(t, anonMask|gfp.Comp, masks[1], "%v", masks[1])
	})

	for _, tc := range []struct {
		name string
		// initial state
		prot mmsim.Prot
		// call
		offset int64 // in pages from the mapping's start
		write  bool
		// expected
		want mmsim.Outcome
	}{
		{name: "a write to a PROT_READ mapping is SIGSEGV", prot: mmsim.ProtRead, write: true, want: mmsim.AccessSIGSEGV},
		{name: "a read of a PROT_READ mapping is fine", prot: mmsim.ProtRead, want: mmsim.AccessOK},
		{name: "a read of a PROT_NONE mapping is SIGSEGV", prot: mmsim.ProtNone, want: mmsim.AccessSIGSEGV},
		{name: "a read past the end of the mapping is SIGSEGV", prot: rw, offset: 1, want: mmsim.AccessSIGSEGV},
		{name: "a write below the mapping is SIGSEGV", prot: rw, offset: -1, write: true, want: mmsim.AccessSIGSEGV},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSystem(t, smallConfig(16384))
			tk := s.NewTask("toucher")
			// Mappings are placed top-down: the hole left by the
			// guard is just past the end of the mapping under test.
			mmapPages(t, s, tk, 1, rw, mmsim.MapPrivate)
			guard := mmapPages(t, s, tk, 1, rw, mmsim.MapPrivate)
			require.NoError(t, s.Munmap(tk, guard, pageBytes))
			addr := mmapPages(t, s, tk, 1, tc.prot, mmsim.MapPrivate)
			var r mmsim.AccessResult
			var err error
			at := uint64(int64(addr) + tc.offset*pageBytes)
			if tc.write {
				r, err = s.Write(tk, at, 1)
			} else {
				r, err = s.Read(tk, at)
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, r.Outcome)
			if tc.want == mmsim.AccessSIGSEGV {
				require.Equal(t, mmsim.VMFaultSIGSEGV, r.Fault)
			}
			require.Zero(t, statusKB(t, s, tk)["RssAnon"])
		})
	}
}

// TestMadviseAdvice checks madvise's advice on anonymous mappings:
// MADV_DONTNEED zaps the pages (they read 0, RssAnon drops); MADV_FREE makes
// them lazily freeable, so reclaim frees them (pglazyfreed) unless written
// again, when they become swap-backed and stay; the flag advice refuses
// MADV_KEEPONFORK and MADV_DODUMP on a droppable mapping and
// MADV_WIPEONFORK on shared memory; a range with a hole is advised where
// mapped and fails with ENOMEM.
//
// Reference: mm/madvise.c:madvise_vma_behavior(), madvise_walk_vmas(),
// madvise_free_pte_range(), madvise_free_single_vma(),
// mm/swap.c:folio_mark_lazyfree(), mm/rmap.c:try_to_unmap_one() (the
// MADV_FREE check), mm/vmscan.c:shrink_folio_list() (PGLAZYFREED).
func TestMadviseAdvice(t *testing.T) {
	for _, tc := range []struct {
		name string
		// initial state
		flags mmsim.MapFlags
		// call
		advice mmsim.Advice
		// expected
		want       mmsim.Errno
		set, clear mmsim.VMFlags
	}{
		{name: "MADV_KEEPONFORK of a droppable mapping is EINVAL", flags: mmsim.MapDroppable,
			advice: mmsim.MadvKeepOnFork, want: mmsim.EINVAL, set: mmsim.VMWipeOnFork},
		{name: "MADV_DODUMP of a droppable mapping is EINVAL", flags: mmsim.MapDroppable,
			advice: mmsim.MadvDoDump, want: mmsim.EINVAL, set: mmsim.VMDontDump},
		{name: "MADV_DONTFORK of a droppable mapping is fine", flags: mmsim.MapDroppable,
			advice: mmsim.MadvDontFork, set: mmsim.VMDontCopy | mmsim.VMDroppable},
		{name: "MADV_WIPEONFORK of shared memory is EINVAL", flags: mmsim.MapShared,
			advice: mmsim.MadvWipeOnFork, want: mmsim.EINVAL, clear: mmsim.VMWipeOnFork},
		{name: "MADV_WIPEONFORK of private memory sets VM_WIPEONFORK", flags: mmsim.MapPrivate,
			advice: mmsim.MadvWipeOnFork, set: mmsim.VMWipeOnFork},
		{name: "MADV_KEEPONFORK of private memory clears it again", flags: mmsim.MapPrivate,
			advice: mmsim.MadvKeepOnFork, clear: mmsim.VMWipeOnFork},
		{name: "MADV_FREE of shared memory is EINVAL: it is not anonymous", flags: mmsim.MapShared,
			advice: mmsim.MadvFree, want: mmsim.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSystem(t, smallConfig(16384))
			tk := s.NewTask("advised")
			addr := mmapPages(t, s, tk, 4, rw, tc.flags)
			err := s.Madvise(tk, addr, 4*pageBytes, tc.advice)
			if tc.want != 0 {
				require.ErrorIs(t, err, tc.want)
			} else {
				require.NoError(t, err)
			}
			f := flagsAt(t, s, tk, addr)
			require.Equal(t, tc.set, f&tc.set, "VmFlags: %s", f)
			require.Zero(t, f&tc.clear, "VmFlags: %s", f)
		})
	}

	t.Run("MADV_DONTNEED zaps: the pages read 0 and leave rss", func(t *testing.T) {
		s := newSystem(t, smallConfig(16384))
		tk := s.NewTask("advised")
		addr := mmapPages(t, s, tk, 8, rw, mmsim.MapPrivate)
		writePages(t, s, tk, addr, 8, 100)
		require.Equal(t, int64(32), statusKB(t, s, tk)["RssAnon"])
		require.NoError(t, s.Madvise(tk, addr+2*pageBytes, 4*pageBytes, mmsim.MadvDontNeed))
		require.Equal(t, int64(16), statusKB(t, s, tk)["RssAnon"])
		for i, want := range []uint64{100, 101, 0, 0, 0, 0, 106, 107} {
			require.Equal(t, want, readPage(t, s, tk, addr, int64(i)).Value, "page %d", i)
		}
		require.Equal(t, int64(16), statusKB(t, s, tk)["RssAnon"], "the zero page is not rss")
	})

	t.Run("a range with a hole is advised where mapped and fails with ENOMEM", func(t *testing.T) {
		s := newSystem(t, smallConfig(16384))
		tk := s.NewTask("advised")
		addr := mmapPages(t, s, tk, 4, rw, mmsim.MapPrivate)
		writePages(t, s, tk, addr, 4, 100)
		require.NoError(t, s.Munmap(tk, addr+pageBytes, pageBytes))
		require.ErrorIs(t, s.Madvise(tk, addr, 4*pageBytes, mmsim.MadvDontNeed), mmsim.ENOMEM)
		for _, i := range []int64{0, 2, 3} {
			require.Zero(t, readPage(t, s, tk, addr, i).Value, "page %d was zapped", i)
		}
		require.ErrorIs(t, s.Madvise(tk, addr, 4*pageBytes, mmsim.MadvDontFork), mmsim.ENOMEM)
		require.NotZero(t, flagsAt(t, s, tk, addr)&mmsim.VMDontCopy)
		require.NotZero(t, flagsAt(t, s, tk, addr+2*pageBytes)&mmsim.VMDontCopy)
		require.NotZero(t, flagsAt(t, s, tk, addr+3*pageBytes)&mmsim.VMDontCopy)
		// A hole at the end too: the mapped part first.
		require.ErrorIs(t, s.Madvise(tk, addr+2*pageBytes, 8*pageBytes, mmsim.MadvDoFork), mmsim.ENOMEM)
		require.Zero(t, flagsAt(t, s, tk, addr+3*pageBytes)&mmsim.VMDontCopy)
		require.NotZero(t, flagsAt(t, s, tk, addr)&mmsim.VMDontCopy, "outside the range")
	})

	t.Run("MADV_FREE'd pages are freed under pressure unless written again", func(t *testing.T) {
		const pages, rewritten = 2000, 10
		s := newSystem(t, pressureConfig(0))
		tk := s.NewTask("advised")
		addr := mmapPages(t, s, tk, pages, rw, mmsim.MapPrivate)
		writePages(t, s, tk, addr, pages, 1000)
		require.NoError(t, s.Madvise(tk, addr, pages*pageBytes, mmsim.MadvFree))
		require.Equal(t, int64(pages), vmstat(t, s)["pglazyfree"])
		require.Equal(t, int64(pages*4), statusKB(t, s, tk)["RssAnon"], "MADV_FREE frees nothing yet")
		// Written again before reclaim comes: swap-backed again.
		writePages(t, s, tk, addr, rewritten, 5000)

		hog, err := squeeze(t, s, pages/2)
		require.NoError(t, err)
		require.False(t, s.Killed(hog))
		vs := vmstat(t, s)
		require.Positive(t, vs["pglazyfreed"])
		require.Zero(t, vs["oom_kill"])
		var zeros int64
		for i := range int64(pages) {
			v := readPage(t, s, tk, addr, i).Value
			switch {
			case i < rewritten:
				require.Equal(t, uint64(5000+i), v, "page %d was written after MADV_FREE: kept", i)
			case v == 0:
				zeros++
			default:
				require.Equal(t, uint64(1000+i), v, "page %d", i)
			}
		}
		require.Equal(t, vs["pglazyfreed"], zeros, "each freed page reads 0, and only those")
		require.GreaterOrEqual(t, zeros, int64(pages/2))
	})
}

// TestMlockLimitsAndCounters checks mlock against RLIMIT_MEMLOCK (EPERM at
// 0, ENOMEM over it, neither for root with CAP_IPC_LOCK), the counters
// that show locked memory (VmLck from locked_vm, /proc/meminfo's Mlocked
// from NR_MLOCK and Unevictable from the unevictable LRU), MLOCK_ONFAULT,
// which locks without populating, mlock of a droppable mapping, which
// succeeds and locks nothing, and that reclaim leaves locked pages alone
// while it swaps their unlocked neighbours.
//
// Reference: mm/mlock.c:do_mlock(), can_do_mlock(), mlock_fixup(),
// apply_vma_lock_flags(), mm/internal.h:vma_supports_mlock(),
// mm/gup.c:populate_vma_page_range(), fs/proc/task_mmu.c:task_mem(),
// fs/proc/meminfo.c:meminfo_proc_show(), mm/rmap.c:try_to_unmap_one().
func TestMlockLimitsAndCounters(t *testing.T) {
	for _, tc := range []struct {
		name string
		// initial state: a 16-page private writable mapping
		uid    int
		rlimit int64 // pages
		// call
		start, pages int64 // in pages from the mapping's start
		flags        int
		// expected
		want      mmsim.Errno
		locked    int64 // VmLck, pages
		populated int64 // RssAnon and Mlocked, pages
	}{
		{name: "a non-root task within RLIMIT_MEMLOCK locks", uid: 1000, rlimit: 16, pages: 16, locked: 16, populated: 16},
		{name: "a non-root task over RLIMIT_MEMLOCK gets ENOMEM", uid: 1000, rlimit: 8, pages: 16, want: mmsim.ENOMEM},
		{name: "a non-root task with RLIMIT_MEMLOCK 0 gets EPERM", uid: 1000, rlimit: 0, pages: 1, want: mmsim.EPERM},
		{name: "root ignores RLIMIT_MEMLOCK", uid: 0, rlimit: 0, pages: 16, locked: 16, populated: 16},
		{name: "an unknown mlock2 flag is EINVAL", uid: 0, rlimit: 16, pages: 1, flags: 2, want: mmsim.EINVAL},
		{name: "a range that starts where nothing is mapped is ENOMEM and locks nothing", uid: 0, rlimit: 64,
			start: -1, pages: 17, want: mmsim.ENOMEM},
		{name: "a range that runs past the mapping locks the mapping, populates nothing and fails with ENOMEM", uid: 0, rlimit: 64,
			pages: 17, want: mmsim.ENOMEM, locked: 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSystem(t, smallConfig(16384))
			tk := s.NewTask("locker")
			require.NoError(t, s.SetUID(tk, tc.uid))
			require.NoError(t, s.SetRlimitMemlock(tk, uint64(tc.rlimit)*pageBytes))
			addr := mmapPages(t, s, tk, 16, rw, mmsim.MapPrivate)
			err := s.Mlock(tk, uint64(int64(addr)+tc.start*pageBytes), tc.pages*pageBytes, tc.flags)
			if tc.want != 0 {
				require.ErrorIs(t, err, tc.want)
			} else {
				require.NoError(t, err)
			}
			st := statusKB(t, s, tk)
			assert.Equal(t, tc.locked*4, st["VmLck"])
			assert.Equal(t, tc.locked != 0, flagsAt(t, s, tk, addr)&mmsim.VMLocked != 0)
			assert.Equal(t, tc.populated*4, st["RssAnon"])
			assert.Equal(t, tc.populated*4, meminfoKB(t, s)["Mlocked"])
		})
	}

	t.Run("locked pages show in VmLck and Mlocked until munlock", func(t *testing.T) {
		s := newSystem(t, smallConfig(16384))
		tk := s.NewTask("locker")
		addr := mmapPages(t, s, tk, 32, rw, mmsim.MapPrivate)
		require.NoError(t, s.Mlock(tk, addr, 32*pageBytes, 0))
		require.NotZero(t, flagsAt(t, s, tk, addr)&mmsim.VMLocked)
		st, mi := statusKB(t, s, tk), meminfoKB(t, s)
		assert.Equal(t, int64(128), st["VmLck"])
		assert.Equal(t, int64(128), st["RssAnon"])
		assert.Equal(t, int64(128), mi["Mlocked"])
		assert.Equal(t, int64(32), vmstat(t, s)["unevictable_pgs_mlocked"])

		require.NoError(t, s.Munlock(tk, addr, 32*pageBytes))
		require.Zero(t, flagsAt(t, s, tk, addr)&mmsim.VMLocked)
		st, mi = statusKB(t, s, tk), meminfoKB(t, s)
		assert.Zero(t, st["VmLck"])
		assert.Equal(t, int64(128), st["RssAnon"], "munlock keeps the pages")
		assert.Zero(t, mi["Mlocked"])
		assert.Equal(t, int64(32), vmstat(t, s)["unevictable_pgs_munlocked"])
	})

	t.Run("mlocked pages are on the unevictable list until munlock", func(t *testing.T) {
		s := newSystem(t, smallConfig(16384))
		tk := s.NewTask("locker")
		addr := mmapPages(t, s, tk, 32, rw, mmsim.MapPrivate)
		writePages(t, s, tk, addr, 16, 1) // 16 on an LRU list, 16 new
		require.NoError(t, s.Mlock(tk, addr, 32*pageBytes, 0))
		mi := meminfoKB(t, s)
		assert.Equal(t, int64(128), mi["Unevictable"])
		assert.Zero(t, mi["Active(anon)"]+mi["Inactive(anon)"])
		assert.Equal(t, int64(32), vmstat(t, s)["unevictable_pgs_culled"])
		require.NoError(t, s.Munlock(tk, addr, 32*pageBytes))
		mi = meminfoKB(t, s)
		assert.Zero(t, mi["Unevictable"])
		assert.Equal(t, int64(128), mi["Active(anon)"]+mi["Inactive(anon)"])
		assert.Equal(t, int64(32), vmstat(t, s)["unevictable_pgs_rescued"])
	})

	t.Run("MAP_LOCKED locks and populates at mmap", func(t *testing.T) {
		s := newSystem(t, smallConfig(16384))
		tk := s.NewTask("locker")
		addr := mmapPages(t, s, tk, 16, rw, mmsim.MapPrivate|mmsim.MapLocked)
		require.NotZero(t, flagsAt(t, s, tk, addr)&mmsim.VMLocked)
		st := statusKB(t, s, tk)
		require.Equal(t, int64(64), st["VmLck"])
		require.Equal(t, int64(64), st["RssAnon"])
		require.Equal(t, int64(64), meminfoKB(t, s)["Mlocked"])
		require.NoError(t, s.Munmap(tk, addr, 16*pageBytes))
		require.Zero(t, statusKB(t, s, tk)["VmLck"])
		require.Zero(t, meminfoKB(t, s)["Mlocked"])
	})

	t.Run("MLOCK_ONFAULT locks without populating", func(t *testing.T) {
		s := newSystem(t, smallConfig(16384))
		tk := s.NewTask("locker")
		addr := mmapPages(t, s, tk, 16, rw, mmsim.MapPrivate)
		require.NoError(t, s.Mlock(tk, addr, 16*pageBytes, mmsim.MlockOnFault))
		f := flagsAt(t, s, tk, addr)
		require.Equal(t, mmsim.VMLocked|mmsim.VMLockOnFault, f&(mmsim.VMLocked|mmsim.VMLockOnFault), "VmFlags: %s", f)
		st := statusKB(t, s, tk)
		require.Equal(t, int64(64), st["VmLck"], "locked_vm counts the range")
		require.Zero(t, st["RssAnon"], "nothing faulted in")
		require.Zero(t, meminfoKB(t, s)["Mlocked"])
		writePages(t, s, tk, addr, 2, 1)
		require.Equal(t, int64(8), meminfoKB(t, s)["Mlocked"], "a page faulted in later is mlocked")
	})

	t.Run("mlock of a droppable mapping succeeds and locks nothing", func(t *testing.T) {
		s := newSystem(t, smallConfig(16384))
		tk := s.NewTask("locker")
		addr := mmapPages(t, s, tk, 16, rw, mmsim.MapDroppable)
		require.NoError(t, s.Mlock(tk, addr, 16*pageBytes, 0))
		require.Zero(t, flagsAt(t, s, tk, addr)&(mmsim.VMLocked|mmsim.VMLockOnFault))
		st := statusKB(t, s, tk)
		require.Zero(t, st["VmLck"])
		require.Zero(t, meminfoKB(t, s)["Mlocked"])
		// __mm_populate still runs over the range: the pages are
		// faulted in, write faults of a private writable mapping.
		require.Equal(t, int64(64), st["RssAnon"])
		require.NoError(t, s.Munlock(tk, addr, 16*pageBytes))
		require.Zero(t, statusKB(t, s, tk)["VmLck"])
	})

	t.Run("reclaim swaps unlocked pages and leaves locked ones", func(t *testing.T) {
		const pages, plainPages = 1000, 3000
		s := newSystem(t, pressureConfig(8192))
		tk := s.NewTask("locker")
		locked := mmapPages(t, s, tk, pages, rw, mmsim.MapPrivate)
		plain := mmapPages(t, s, tk, plainPages, rw, mmsim.MapPrivate)
		writePages(t, s, tk, locked, pages, 1)
		writePages(t, s, tk, plain, plainPages, 1_000_001)
		require.NoError(t, s.Mlock(tk, locked, pages*pageBytes, 0))
		hog, err := squeeze(t, s, 4000)
		require.NoError(t, err)
		require.False(t, s.Killed(hog))
		require.False(t, s.Killed(tk))
		st := statusKB(t, s, tk)
		swapped := st["VmSwap"] / 4
		require.Positive(t, swapped, "the unlocked pages went to swap")
		require.Equal(t, int64(pages*4), st["VmLck"])
		require.Equal(t, int64(pages*4), meminfoKB(t, s)["Mlocked"])
		// The hog leaves, so that reading back reclaims nothing more.
		require.NoError(t, s.Exit(hog))
		for i := range int64(pages) {
			r := readPage(t, s, tk, locked, i)
			require.False(t, r.Faulted, "locked page %d stayed mapped", i)
			require.Equal(t, uint64(1+i), r.Value)
		}
		var major int64
		for i := range int64(plainPages) {
			r := readPage(t, s, tk, plain, i)
			require.Equal(t, uint64(1_000_001+i), r.Value)
			if r.Fault&mmsim.VMFaultMajor != 0 {
				major++
			}
		}
		require.Equal(t, swapped, major, "every swap entry was an unlocked page")
	})
}

// TestForkAddressSpace checks what a child inherits: every mapping but
// MADV_DONTFORK ones, VM_DROPPABLE included, none VM_LOCKED (VmLck 0);
// VM_WIPEONFORK (and so droppable) mappings read 0 in the child; private
// pages shared copy-on-write — both read the same, each counts them in
// RssAnon, and a write by either side is not seen by the other; each
// VM_ACCOUNT mapping charged again to Committed_AS.
//
// Reference: kernel/fork.c:copy_process(), dup_mm(), mm/mmap.c:dup_mmap(),
// mm/memory.c:copy_page_range(), copy_present_ptes(), do_wp_page().
func TestForkAddressSpace(t *testing.T) {
	s := newSystem(t, smallConfig(16384))
	parent := s.NewTask("parent")
	type region struct {
		name  string
		pages int64
		prot  mmsim.Prot
		flags mmsim.MapFlags
		// after the mmap
		advice  mmsim.Advice
		written bool
		mlocked bool
		// expected in the child
		absent, zero bool
	}
	regions := []*region{
		{name: "private", pages: 8, prot: rw, flags: mmsim.MapPrivate, written: true},
		{name: "read-only", pages: 4, prot: mmsim.ProtRead, flags: mmsim.MapPrivate},
		{name: "droppable", pages: 4, prot: rw, flags: mmsim.MapDroppable, written: true, zero: true},
		{name: "wipe-on-fork", pages: 4, prot: rw, flags: mmsim.MapPrivate, advice: mmsim.MadvWipeOnFork, written: true, zero: true},
		{name: "dont-fork", pages: 4, prot: rw, flags: mmsim.MapPrivate, advice: mmsim.MadvDontFork, written: true, absent: true},
		{name: "locked", pages: 4, prot: rw, flags: mmsim.MapPrivate, written: true, mlocked: true},
	}
	addrs := map[string]uint64{}
	var parentRss, childRss, charged, childVM int64
	for n, r := range regions {
		a := mmapPages(t, s, parent, r.pages, r.prot, r.flags)
		addrs[r.name] = a
		if r.advice != mmsim.MadvNormal {
			require.NoError(t, s.Madvise(parent, a, r.pages*pageBytes, r.advice), r.name)
		}
		if r.written {
			writePages(t, s, parent, a, r.pages, uint64(n+1)*1000)
			parentRss += r.pages
			if !r.zero && !r.absent {
				childRss += r.pages
			}
		}
		if r.mlocked {
			require.NoError(t, s.Mlock(parent, a, r.pages*pageBytes, 0))
		}
		if !r.absent {
			childVM += r.pages
			if r.prot&mmsim.ProtWrite != 0 && r.flags == mmsim.MapPrivate {
				charged += r.pages
			}
		}
	}
	c0 := committedPages(t, s)
	child, err := s.Fork(parent, "child")
	require.NoError(t, err)
	require.Equal(t, c0+charged, committedPages(t, s), "the child's VM_ACCOUNT mappings are charged")

	ps, cs := statusKB(t, s, parent), statusKB(t, s, child)
	assert.Equal(t, parentRss*4, ps["RssAnon"])
	assert.Equal(t, childRss*4, cs["RssAnon"], "the shared pages count in both")
	assert.Equal(t, int64(16), ps["VmLck"])
	assert.Zero(t, cs["VmLck"], "mlock is not inherited")
	assert.Equal(t, childVM*4, cs["VmSize"])

	for n, r := range regions {
		a := addrs[r.name]
		m, ok := mappingAt(t, s, child, a)
		if r.absent {
			require.False(t, ok, "%s: MADV_DONTFORK", r.name)
			res, err := s.Read(child, a)
			require.NoError(t, err)
			require.Equal(t, mmsim.AccessSIGSEGV, res.Outcome, r.name)
			continue
		}
		require.True(t, ok, r.name)
		pf := flagsAt(t, s, parent, a)
		require.Equal(t, pf&^(mmsim.VMLocked|mmsim.VMLockOnFault), m.Flags, "%s: the flags but VM_LOCKED", r.name)
		require.Zero(t, m.Flags&mmsim.VMLocked, r.name)
		if r.flags == mmsim.MapDroppable {
			require.NotZero(t, m.Flags&mmsim.VMDroppable, "VM_DROPPABLE is inherited")
		}
		for i := range r.pages {
			want := uint64(0)
			if r.written && !r.zero {
				want = uint64(n+1)*1000 + uint64(i)
			}
			require.Equal(t, want, readPage(t, s, child, a, i).Value, "%s page %d in the child", r.name, i)
			if r.written {
				require.Equal(t, uint64(n+1)*1000+uint64(i), readPage(t, s, parent, a, i).Value, "%s page %d in the parent", r.name, i)
			}
		}
	}

	// Copy-on-write, both ways.
	priv := addrs["private"]
	_, err = s.Write(child, priv, 77)
	require.NoError(t, err)
	_, err = s.Write(parent, priv+pageBytes, 88)
	require.NoError(t, err)
	require.Equal(t, uint64(1000), readPage(t, s, parent, priv, 0).Value, "the child's write is its own")
	require.Equal(t, uint64(77), readPage(t, s, child, priv, 0).Value)
	require.Equal(t, uint64(1001), readPage(t, s, child, priv, 1).Value, "the parent's write is its own")
	require.Equal(t, uint64(88), readPage(t, s, parent, priv, 1).Value)
	assert.Equal(t, parentRss*4, statusKB(t, s, parent)["RssAnon"])
	assert.Equal(t, childRss*4, statusKB(t, s, child)["RssAnon"])

	require.NoError(t, s.Exit(child))
	require.Equal(t, c0, committedPages(t, s), "exit gives the child's charges back")
}

// TestDroppableUnderPressure checks VM_DROPPABLE under memory pressure:
// its folios are not swap-backed, so reclaim drops them — dirty or not —
// rather than swapping them, they read 0 afterwards, and while they
// remain no OOM kill is needed; an ordinary mapping beside them goes to
// swap instead.
//
// Reference: mm/rmap.c:folio_add_new_anon_rmap(), try_to_unmap_one(),
// mm/vmscan.c:shrink_folio_list(), mm/memory.c:handle_mm_fault().
func TestDroppableUnderPressure(t *testing.T) {
	t.Run("without swap the pages are dropped and nothing is killed", func(t *testing.T) {
		const pages = 4000
		s := newSystem(t, pressureConfig(0))
		tk := s.NewTask("droppable")
		addr := mmapPages(t, s, tk, pages, rw, mmsim.MapDroppable)
		writePages(t, s, tk, addr, pages, 1)
		hog, err := squeeze(t, s, pages/2)
		require.NoError(t, err)
		require.False(t, s.Killed(hog))
		require.False(t, s.Killed(tk))
		vs := vmstat(t, s)
		require.Zero(t, vs["oom_kill"])
		require.Zero(t, vs["pswpout"])
		rss := statusKB(t, s, tk)["RssAnon"] / 4
		require.LessOrEqual(t, rss, int64(pages/2))
		var zeros int64
		for i := range int64(pages) {
			switch v := readPage(t, s, tk, addr, i).Value; v {
			case 0:
				zeros++
			default:
				require.Equal(t, uint64(1+i), v, "page %d", i)
			}
		}
		require.Equal(t, pages-rss, zeros, "the dropped pages read 0")
	})

	t.Run("with swap the pages are dropped while an ordinary mapping is swapped", func(t *testing.T) {
		const pages = 3000
		s := newSystem(t, pressureConfig(8192))
		tk := s.NewTask("mixed")
		drop := mmapPages(t, s, tk, pages, rw, mmsim.MapDroppable)
		plain := mmapPages(t, s, tk, pages, rw, mmsim.MapPrivate)
		writePages(t, s, tk, drop, pages, 1)
		writePages(t, s, tk, plain, pages, 1_000_001)
		hog, err := squeeze(t, s, 4000)
		require.NoError(t, err)
		require.False(t, s.Killed(hog))
		require.Positive(t, vmstat(t, s)["pswpout"])
		swapped := statusKB(t, s, tk)["VmSwap"] / 4
		require.Positive(t, swapped)
		// The hog leaves, so that reading back reclaims nothing more.
		require.NoError(t, s.Exit(hog))
		var zeros int64
		for i := range int64(pages) {
			r := readPage(t, s, tk, drop, i)
			require.Zero(t, r.Fault&mmsim.VMFaultMajor, "droppable page %d came from swap", i)
			if r.Value == 0 {
				zeros++
			} else {
				require.Equal(t, uint64(1+i), r.Value)
			}
		}
		require.Positive(t, zeros)
		var major int64
		for i := range int64(pages) {
			r := readPage(t, s, tk, plain, i)
			require.Equal(t, uint64(1_000_001+i), r.Value, "an ordinary page keeps its contents")
			if r.Fault&mmsim.VMFaultMajor != 0 {
				major++
			}
		}
		require.Equal(t, swapped, major, "every swap entry was an ordinary page")
	})
}

// TestProcPIDStatus checks /proc/PID/status's memory lines against what
// the task mapped and touched: RssAnon for private anonymous pages,
// RssShmem for shared anonymous ones, RssFile for a shared file mapping's
// pages, VmRSS their sum, VmSize every mapping, VmPTE its page tables,
// VmHWM the peak of VmRSS, VmSwap its swapped pages.
//
// Reference: fs/proc/task_mmu.c:task_mem(), include/linux/mm.h:get_mm_rss(),
// update_hiwater_rss(), mm/memory.c:zap_vma_range_batched().
func TestProcPIDStatus(t *testing.T) {
	t.Run("rss by kind, size, page tables and the peak", func(t *testing.T) {
		s := newSystem(t, smallConfig(16384))
		tk := s.NewTask("status")
		anon := mmapPages(t, s, tk, 10, rw, mmsim.MapPrivate)
		shm := mmapPages(t, s, tk, 6, rw, mmsim.MapShared)
		f := s.NewFile("data", 0)
		file, err := s.MmapFile(tk, f, 0, 8*pageBytes, mmsim.ProtRead, mmsim.MapShared)
		require.NoError(t, err)
		writePages(t, s, tk, anon, 10, 1)
		writePages(t, s, tk, shm, 6, 1)
		for i := range int64(5) {
			readPage(t, s, tk, file, i)
		}
		st := statusKB(t, s, tk)
		assert.Equal(t, int64(40), st["RssAnon"])
		assert.Equal(t, int64(24), st["RssShmem"])
		assert.Equal(t, int64(20), st["RssFile"])
		assert.Equal(t, st["RssAnon"]+st["RssFile"]+st["RssShmem"], st["VmRSS"])
		assert.Equal(t, int64(96), st["VmSize"])
		assert.Equal(t, int64(96), st["VmPeak"])
		assert.GreaterOrEqual(t, st["VmHWM"], st["VmRSS"])
		assert.Positive(t, st["VmPTE"])
		assert.Equal(t, meminfoKB(t, s)["PageTables"], st["VmPTE"], "the only process: all the page tables are its")
		assert.Zero(t, st["VmSwap"])

		require.NoError(t, s.Madvise(tk, anon, 10*pageBytes, mmsim.MadvDontNeed))
		require.NoError(t, s.Munmap(tk, file, 8*pageBytes))
		st = statusKB(t, s, tk)
		assert.Zero(t, st["RssAnon"])
		assert.Zero(t, st["RssFile"])
		assert.Equal(t, int64(24), st["VmRSS"])
		assert.Equal(t, int64(84), st["VmHWM"], "the peak stays")
		assert.Equal(t, int64(64), st["VmSize"])
		assert.Equal(t, int64(96), st["VmPeak"])
	})

	t.Run("swapped pages move from RssAnon to VmSwap", func(t *testing.T) {
		const pages = 3000
		s := newSystem(t, pressureConfig(8192))
		tk := s.NewTask("status")
		addr := mmapPages(t, s, tk, pages, rw, mmsim.MapPrivate)
		writePages(t, s, tk, addr, pages, 1)
		hogPages := meminfoKB(t, s)["MemFree"]/4 + 4000
		hog, err := squeeze(t, s, 4000)
		require.NoError(t, err)
		require.False(t, s.Killed(hog))
		// Which task's pages kswapd swaps depends on the LRU's aging;
		// each task's pages are in RAM or in swap, and some are swapped.
		st, hs := statusKB(t, s, tk), statusKB(t, s, hog)
		require.Positive(t, st["VmSwap"]+hs["VmSwap"])
		require.Equal(t, int64(pages*4), st["RssAnon"]+st["VmSwap"])
		require.Equal(t, hogPages*4, hs["RssAnon"]+hs["VmSwap"])
		require.Equal(t, st["RssAnon"], st["VmRSS"])
		require.Equal(t, hs["RssAnon"], hs["VmRSS"])
		require.Equal(t, int64(pages*4), st["VmHWM"])
		mi := meminfoKB(t, s)
		require.GreaterOrEqual(t, mi["SwapTotal"]-mi["SwapFree"], st["VmSwap"]+hs["VmSwap"])
	})
}
