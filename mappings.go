package mmsim

import (
	"fmt"
	"io"

	"github.com/mmsim/mmsim/internal/mm"
	"github.com/mmsim/mmsim/memalloc"
)

// User mappings: mmap, munmap, madvise, mlock, fork and the page faults
// that fill them, as a process sees them. Addresses are simulated user
// virtual addresses; each page holds one 64-bit word standing for its
// contents, so a test can see what survives reclaim, fork and madvise.

// The mapping API's types, re-exported from the mm model.
type (
	// Prot is mmap's prot: ProtRead|ProtWrite...
	Prot = mm.Prot
	// MapFlags is mmap's flags: MapPrivate|MapAnonymous...
	MapFlags = mm.MapFlags
	// Advice is madvise's advice: MadvDontNeed...
	Advice = mm.Advice
	// VMFlags are a mapping's vm_flags; String prints smaps' VmFlags.
	VMFlags = mm.VMFlags
	// Errno is a Linux errno value (EINVAL...): the mapping calls'
	// errors wrap one (errors.Is). EINVAL also matches ErrInvalid.
	Errno = mm.Errno
	// Outcome is what became of an access: AccessOK, AccessRetried...
	Outcome = mm.Outcome
	// AccessResult is an access's outcome, fault result and value.
	AccessResult = mm.AccessResult
	// FaultResult is vm_fault_t: VMFaultOOM, VMFaultSIGBUS...
	FaultResult = mm.FaultResult
	// Mapping describes one mapping of a task, as smaps would.
	Mapping = mm.MappingInfo
)

// The protections, mmap flags and madvise advice (uapi values).
const (
	ProtNone  = mm.ProtNone
	ProtRead  = mm.ProtRead
	ProtWrite = mm.ProtWrite
	ProtExec  = mm.ProtExec

	MapShared    = mm.MapShared
	MapPrivate   = mm.MapPrivate
	MapDroppable = mm.MapDroppable
	MapAnonymous = mm.MapAnonymous
	MapGrowsDown = mm.MapGrowsDown
	MapLocked    = mm.MapLocked
	MapNoReserve = mm.MapNoReserve
	MapPopulate  = mm.MapPopulate
	MapHugetlb   = mm.MapHugetlb

	MadvNormal     = mm.MadvNormal
	MadvDontNeed   = mm.MadvDontNeed
	MadvFree       = mm.MadvFree
	MadvDontFork   = mm.MadvDontFork
	MadvDoFork     = mm.MadvDoFork
	MadvDontDump   = mm.MadvDontDump
	MadvDoDump     = mm.MadvDoDump
	MadvWipeOnFork = mm.MadvWipeOnFork
	MadvKeepOnFork = mm.MadvKeepOnFork

	// MlockOnFault is mlock2's MLOCK_ONFAULT.
	MlockOnFault = mm.MlockOnFault
	// RlimInfinity is RLIM_INFINITY.
	RlimInfinity = mm.RlimInfinity
)

// The vm_flags bits a test may look for.
const (
	VMRead        = mm.VMRead
	VMWrite       = mm.VMWrite
	VMShared      = mm.VMShared
	VMLocked      = mm.VMLocked
	VMLockOnFault = mm.VMLockOnFault
	VMAccount     = mm.VMAccount
	VMNoReserve   = mm.VMNoReserve
	VMDontCopy    = mm.VMDontCopy
	VMWipeOnFork  = mm.VMWipeOnFork
	VMDontDump    = mm.VMDontDump
	VMDroppable   = mm.VMDroppable
)

// The errno values the mapping and cgroup calls return.
const (
	EPERM      = mm.EPERM
	EAGAIN     = mm.EAGAIN
	ENOMEM     = mm.ENOMEM
	EBUSY      = mm.EBUSY
	EEXIST     = mm.EEXIST
	ENOENT     = mm.ENOENT
	EINVAL     = mm.EINVAL
	ENFILE     = mm.ENFILE
	ENOSYS     = mm.ENOSYS
	EOPNOTSUPP = mm.EOPNOTSUPP
)

// The outcomes of an access and the vm_fault_t bits.
const (
	AccessOK        = mm.AccessOK
	AccessRetried   = mm.AccessRetried
	AccessOOM       = mm.AccessOOM
	AccessSIGBUS    = mm.AccessSIGBUS
	AccessSIGSEGV   = mm.AccessSIGSEGV
	AccessKilled    = mm.AccessKilled
	AccessWriteLost = mm.AccessWriteLost

	VMFaultOOM     = mm.VMFaultOOM
	VMFaultSIGBUS  = mm.VMFaultSIGBUS
	VMFaultMajor   = mm.VMFaultMajor
	VMFaultSIGSEGV = mm.VMFaultSIGSEGV
)

// Mmap maps length bytes of anonymous memory for t and returns the
// address: flags must hold MapAnonymous and one of MapPrivate, MapShared
// (shmem) or MapDroppable. The kernel's checks apply in its order, with its
// errno: MAP_DROPPABLE with MAP_LOCKED, MAP_HUGETLB or MAP_GROWSDOWN is
// EINVAL; MAP_LOCKED beyond RLIMIT_MEMLOCK EAGAIN; a private writable
// mapping without MAP_NORESERVE is charged to Committed_AS, and refused
// with ENOMEM where vm.overcommit_memory says so. Nothing is allocated
// until the pages are touched, unless MapLocked or MapPopulate fault them
// in at once.
//
// Kernel: mm/mmap.c:do_mmap(), mm/vma.c:mmap_region().
func (s *System) Mmap(t *memalloc.Task, length int64, prot Prot, flags MapFlags) (uint64, error) {
	p, err := s.proc(t)
	if err != nil {
		return 0, err
	}
	if pr := s.prof; pr != nil {
		defer t.RestoreAllocTag(pr.saveCallerTag(t))
	}
	return s.model.Mmap(p, mm.MmapRequest{Len: length, Prot: prot, Flags: flags})
}

// MmapFile maps length bytes of file f from page pgoff for t: MapShared
// maps its page cache (a write dirties it for the flushers), MapPrivate
// copies a page on its first write.
//
// Kernel: mm/mmap.c:do_mmap() (a file mapping), mm/filemap.c:filemap_fault().
func (s *System) MmapFile(t *memalloc.Task, f *File, pgoff, length int64, prot Prot, flags MapFlags) (uint64, error) {
	p, err := s.proc(t)
	if err != nil {
		return 0, err
	}
	if pr := s.prof; pr != nil {
		defer t.RestoreAllocTag(pr.saveCallerTag(t))
	}
	if f == nil || pgoff < 0 {
		return 0, fmt.Errorf("mmap: no file, or a negative offset: %w", EINVAL)
	}
	return s.model.Mmap(p, mm.MmapRequest{Len: length, Prot: prot, Flags: flags, File: f.f, Pgoff: pgoff})
}

// Munmap unmaps [addr, addr+length) of t's address space.
//
// Kernel: mm/mmap.c:SYSCALL_DEFINE2(munmap).
func (s *System) Munmap(t *memalloc.Task, addr uint64, length int64) error {
	p, err := s.proc(t)
	if err != nil {
		return err
	}
	return s.model.Munmap(p, addr, length)
}

// Madvise gives advice about [addr, addr+length) of t's address space:
// MADV_DONTNEED drops the pages (they read as zero again), MADV_FREE makes
// them lazily freeable, and the flag advice (DONTDUMP, DODUMP, WIPEONFORK,
// KEEPONFORK, DONTFORK, DOFORK) changes vm_flags — with EINVAL for
// MADV_KEEPONFORK and MADV_DODUMP on a VM_DROPPABLE mapping.
//
// Kernel: mm/madvise.c:do_madvise().
func (s *System) Madvise(t *memalloc.Task, addr uint64, length int64, advice Advice) error {
	p, err := s.proc(t)
	if err != nil {
		return err
	}
	return s.model.Madvise(p, addr, length, advice)
}

// Mlock locks [addr, addr+length) into memory (mlock2 with flags 0 or
// MlockOnFault), against t's RLIMIT_MEMLOCK: ENOMEM over it, EPERM with a
// limit of 0, EAGAIN when the pages cannot be faulted in. A VM_DROPPABLE
// or secretmem mapping is silently left unlocked, as the kernel leaves it.
//
// Kernel: mm/mlock.c:do_mlock().
func (s *System) Mlock(t *memalloc.Task, addr uint64, length int64, flags int) error {
	p, err := s.proc(t)
	if err != nil {
		return err
	}
	if pr := s.prof; pr != nil {
		defer t.RestoreAllocTag(pr.saveCallerTag(t))
	}
	return s.model.Mlock(p, addr, length, flags)
}

// Munlock unlocks [addr, addr+length).
//
// Kernel: mm/mlock.c:SYSCALL_DEFINE2(munlock).
func (s *System) Munlock(t *memalloc.Task, addr uint64, length int64) error {
	p, err := s.proc(t)
	if err != nil {
		return err
	}
	return s.model.Munlock(p, addr, length)
}

// Read reads the word at addr for t, as a load instruction would: the
// result says whether it faulted and how the fault ended (AccessOK,
// AccessRetried for a VM_DROPPABLE mapping out of memory, AccessSIGBUS,
// AccessSIGSEGV, ...). A page never written, or dropped since, reads 0.
// The error is for misuse (a task of another System, a killed task).
//
// Kernel: arch/x86/mm/fault.c:do_user_addr_fault(), mm/memory.c:handle_mm_fault().
func (s *System) Read(t *memalloc.Task, addr uint64) (AccessResult, error) {
	p, err := s.proc(t)
	if err != nil {
		return AccessResult{}, err
	}
	if pr := s.prof; pr != nil {
		defer t.RestoreAllocTag(pr.saveCallerTag(t))
	}
	return s.model.Access(p, addr, false, 0)
}

// Write writes val to the word at addr for t, as a store would; see Read.
//
// Kernel: arch/x86/mm/fault.c:do_user_addr_fault(), mm/memory.c:handle_mm_fault().
func (s *System) Write(t *memalloc.Task, addr uint64, val uint64) (AccessResult, error) {
	p, err := s.proc(t)
	if err != nil {
		return AccessResult{}, err
	}
	if pr := s.prof; pr != nil {
		defer t.RestoreAllocTag(pr.saveCallerTag(t))
	}
	return s.model.Access(p, addr, true, val)
}

// Fork creates a child of t named name and returns its task: it inherits
// the mappings (VM_DROPPABLE too), without VM_LOCKED; VM_WIPEONFORK
// mappings read as zero in it; private pages are shared copy-on-write.
// It fails with ENOMEM when the commit charge or the page tables cannot
// be had.
//
// Kernel: kernel/fork.c:copy_process(), mm/mmap.c:dup_mmap().
func (s *System) Fork(t *memalloc.Task, name string) (*memalloc.Task, error) {
	p, err := s.proc(t)
	if err != nil {
		return nil, err
	}
	if pr := s.prof; pr != nil {
		defer t.RestoreAllocTag(pr.saveCallerTag(t))
	}
	pid := int(s.nextPID.Add(1) - 1)
	cpu := int((s.nextCPU.Add(1) - 1) % int64(s.cfg.CPUs))
	c := memalloc.NewTaskWith(name, memalloc.WithPID(pid), memalloc.WithCPU(cpu), memalloc.WithOwner(&s.owner))
	if _, err := s.model.Fork(p, c); err != nil {
		return nil, err
	}
	return c, nil
}

// SetUID makes t run as user uid (setuid): uid 0 holds every capability
// (CAP_IPC_LOCK lifts RLIMIT_MEMLOCK for mlock, CAP_SYS_ADMIN keeps the
// admin reserve in overcommit mode 2), any other uid none. Tasks start as
// uid 0.
//
// Kernel: kernel/sys.c:__sys_setuid().
func (s *System) SetUID(t *memalloc.Task, uid int) error {
	p, err := s.proc(t)
	if err != nil {
		return err
	}
	if uid < 0 {
		return fmt.Errorf("setuid(%d): %w", uid, EINVAL)
	}
	s.model.SetUID(p, uid)
	return nil
}

// SetRlimitMemlock sets t's RLIMIT_MEMLOCK in bytes (RlimInfinity for
// none; the default is 8 MiB, MLOCK_LIMIT).
//
// Kernel: kernel/sys.c:do_prlimit().
func (s *System) SetRlimitMemlock(t *memalloc.Task, bytes uint64) error {
	p, err := s.proc(t)
	if err != nil {
		return err
	}
	p.SetRlimitMemlock(bytes)
	return nil
}

// Mappings returns t's mappings in address order.
//
// Kernel: fs/proc/task_mmu.c:show_smap() (start, end, VmFlags).
func (s *System) Mappings(t *memalloc.Task) ([]Mapping, error) {
	p, err := s.proc(t)
	if err != nil {
		return nil, err
	}
	return s.model.Mappings(p), nil
}

// WriteStatus writes the memory lines of /proc/PID/status for t (VmPeak
// to VmSwap: VmLck, VmRSS, RssAnon, RssFile, RssShmem among them).
//
// Kernel: fs/proc/task_mmu.c:task_mem().
func (s *System) WriteStatus(w io.Writer, t *memalloc.Task) error {
	p, err := s.proc(t)
	if err != nil {
		return err
	}
	return s.model.WriteStatus(w, p)
}

// secretmem (memfd_secret) files and their allocation policies.
type (
	// SecretPolicy is how secretmem gets its pages: SecretUpstream (7.2,
	// the default), SecretPMDPool, SecretBootPool, SecretReserveAtMmap —
	// the seed-004 debate.
	SecretPolicy = mm.SecretPolicy
	// SecretConfig is Config.Secretmem: the policy and, for
	// SecretBootPool, the pool's size in pages.
	SecretConfig = mm.SecretConfig
	// SecretStats are secretmem's counters: faults by outcome, mmap
	// failures, pool use, direct-map invalidations and splits.
	SecretStats = mm.SecretStats
)

// The secretmem policies.
const (
	SecretUpstream      = mm.SecretUpstream
	SecretPMDPool       = mm.SecretPMDPool
	SecretBootPool      = mm.SecretBootPool
	SecretReserveAtMmap = mm.SecretReserveAtMmap
	// OCloexec is O_CLOEXEC, the one flag memfd_secret takes.
	OCloexec = mm.OCloexec
)

// MemfdSecret creates a secretmem file for t (memfd_secret(2)): size 0
// until Ftruncate, mappable shared only (MmapFile with MapShared); its
// pages are GFP_HIGHUSER, zeroed, unevictable, never migrated, removed
// from the direct map at fault and charged to the creating user's
// locked_vm against the faulting task's RLIMIT_MEMLOCK (SIGBUS over it).
//
// Kernel: mm/secretmem.c:SYSCALL_DEFINE1(memfd_secret), secretmem_fault().
func (s *System) MemfdSecret(t *memalloc.Task, flags uint) (*File, error) {
	p, err := s.proc(t)
	if err != nil {
		return nil, err
	}
	if pr := s.prof; pr != nil {
		defer t.RestoreAllocTag(pr.saveCallerTag(t))
	}
	f, err := s.model.MemfdSecret(p, flags)
	if err != nil {
		return nil, err
	}
	return &File{f: f}, nil
}

// Ftruncate sets the size of secretmem file f, once: a second change is
// EINVAL, as secretmem_setattr refuses it.
//
// Kernel: mm/secretmem.c:secretmem_setattr().
func (s *System) Ftruncate(t *memalloc.Task, f *File, size int64) error {
	if _, err := s.proc(t); err != nil {
		return err
	}
	if f == nil || !f.f.IsSecretmem() {
		return fmt.Errorf("ftruncate: mmsim truncates secretmem files only: %w", EINVAL)
	}
	return s.model.SecretTruncate(f.f, size)
}

// CloseFile closes t's descriptor of secretmem file f: the file is
// released (its pages freed, the direct map restored, the locked_vm
// charge given back) once it is also unmapped everywhere.
//
// Kernel: mm/secretmem.c:secretmem_release().
func (s *System) CloseFile(t *memalloc.Task, f *File) error {
	if _, err := s.proc(t); err != nil {
		return err
	}
	if f == nil || !f.f.IsSecretmem() {
		return fmt.Errorf("close: mmsim closes secretmem files only: %w", EINVAL)
	}
	return s.model.SecretClose(t, f.f)
}

// SecretmemStats returns secretmem's counters.
func (s *System) SecretmemStats() SecretStats { return s.model.SecretStats() }

// LockedVM returns the locked_vm of user uid's user_struct in pages: what
// secretmem charged to that user.
//
// Kernel: include/linux/sched/user.h:struct user_struct (locked_vm).
func (s *System) LockedVM(uid int) int64 { return s.model.UserLockedVM(uid) }
