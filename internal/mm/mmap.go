package mm

import (
	"errors"
	"fmt"
	"slices"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// Prot is mmap's prot argument.
//
// Kernel: include/uapi/asm-generic/mman-common.h (PROT_*).
type Prot uint32

// The protections.
const (
	ProtNone  Prot = 0x0
	ProtRead  Prot = 0x1
	ProtWrite Prot = 0x2
	ProtExec  Prot = 0x4
)

// MapFlags is mmap's flags argument.
//
// Kernel: include/uapi/linux/mman.h, include/uapi/asm-generic/mman-common.h,
// include/uapi/asm-generic/mman.h (MAP_*).
type MapFlags uint32

// The mmap flags mmsim takes.
const (
	MapShared    MapFlags = 0x01
	MapPrivate   MapFlags = 0x02
	MapDroppable MapFlags = 0x08
	MapType      MapFlags = 0x0f
	MapFixed     MapFlags = 0x10
	MapAnonymous MapFlags = 0x20
	MapGrowsDown MapFlags = 0x0100
	MapLocked    MapFlags = 0x2000
	MapNoReserve MapFlags = 0x4000
	MapPopulate  MapFlags = 0x8000
	MapStack     MapFlags = 0x20000
	MapHugetlb   MapFlags = 0x40000
)

// The overcommit policies: vm.overcommit_memory.
//
// Kernel: include/uapi/linux/mman.h (OVERCOMMIT_*).
const (
	OvercommitGuess  = 0
	OvercommitAlways = 1
	OvercommitNever  = 2
)

// Overcommit holds the sysctls of commit accounting.
//
// Kernel: mm/util.c (sysctl_overcommit_*), mm/mmap.c (sysctl_*_reserve_kbytes).
type Overcommit struct {
	Memory int   // vm.overcommit_memory: 0, 1 or 2
	Ratio  int   // vm.overcommit_ratio, percent (50)
	Kbytes int64 // vm.overcommit_kbytes (0: use the ratio)
	// AdminReserveKbytes and UserReserveKbytes are
	// vm.admin_reserve_kbytes and vm.user_reserve_kbytes: at boot
	// min(free/32, 8 MiB) and min(free/32, 128 MiB).
	AdminReserveKbytes, UserReserveKbytes int64
}

// DefaultOvercommit returns the boot values for the machine a drives: the
// allocator's overcommit sysctls, and the reserves computed from the free
// memory at boot.
//
// Kernel: mm/mmap.c:init_user_reserve(), init_admin_reserve().
func DefaultOvercommit(a *zone.Allocator) Overcommit {
	var free int64
	for _, n := range a.Nodes() {
		for t := 0; t < gfp.MaxNrZones; t++ {
			if z := n.Zone(gfp.ZoneType(t)); z != nil {
				free += z.State(zone.ZoneNrFreePages)
			}
		}
	}
	freeKB := free << (zone.PageShift - 10)
	sc := a.Sysctl()
	return Overcommit{Memory: sc.OvercommitMemory, Ratio: sc.OvercommitRatio, Kbytes: sc.OvercommitKbytes,
		AdminReserveKbytes: min(freeKB/32, 8<<10), UserReserveKbytes: min(freeKB/32, 128<<10)}
}

// SetOvercommit sets the overcommit sysctls.
func (m *Model) SetOvercommit(o Overcommit) { m.overcommit = o }

// OvercommitSettings returns the overcommit sysctls in force.
func (m *Model) OvercommitSettings() Overcommit { return m.overcommit }

// Committed returns vm_committed_as in pages (Committed_AS).
func (m *Model) Committed() int64 { return m.committed.Load() }

// CommitLimit returns vm_commit_limit() in pages: overcommit_kbytes, or
// overcommit_ratio percent of RAM, plus swap.
//
// Kernel: mm/util.c:vm_commit_limit().
func (m *Model) CommitLimit() int64 {
	o := m.overcommit
	var allowed int64
	if o.Kbytes != 0 {
		allowed = o.Kbytes >> (zone.PageShift - 10)
	} else {
		allowed = m.alloc.TotalramPages() * int64(o.Ratio) / 100
	}
	return allowed + m.swap.total
}

// vmEnoughMemory charges pages to vm_committed_as if the overcommit policy
// allows it, and returns ENOMEM (with the kernel's rate-limited warning)
// if not. mm is the caller's address space (nil: none).
//
// Kernel: mm/util.c:__vm_enough_memory().
func (m *Model) vmEnoughMemory(p *Proc, mm *MM, pages int64) error {
	m.committed.Add(pages)
	o := m.overcommit
	switch o.Memory {
	case OvercommitAlways:
		return nil
	case OvercommitGuess:
		if pages <= m.alloc.TotalramPages()+m.swap.total {
			return nil
		}
	default:
		allowed := m.CommitLimit()
		if !p.capable(capSysAdmin) {
			allowed -= o.AdminReserveKbytes >> (zone.PageShift - 10)
		}
		if mm != nil {
			allowed -= min(mm.totalVM.Load()/32, o.UserReserveKbytes>>(zone.PageShift-10))
		}
		if m.committed.Load() < allowed {
			return nil
		}
	}
	if ok, _ := m.enoughRS.Allow(m.now()); ok {
		m.reportf(p, bug.Info, "mm/util.c:__vm_enough_memory", fmt.Sprintf(
			"__vm_enough_memory: pid: %d, comm: %s, bytes: %d not enough memory for the allocation",
			p.Task.PID(), p.Task.Comm(), pages<<pageShift))
	}
	m.committed.Add(-pages)
	return ENOMEM
}

// unaccount gives back a commit charge: vm_unacct_memory.
func (m *Model) unaccount(pages int64) { m.committed.Add(-pages) }

// MmapRequest is one mmap call.
type MmapRequest struct {
	Len   int64
	Prot  Prot
	Flags MapFlags
	// File is the file to map (nil with MapAnonymous); Pgoff the first
	// page of it.
	File  *File
	Pgoff int64
}

// calcVMFlags turns mmap's arguments into vm_flags, with the VM_MAY* bits
// do_mmap adds.
//
// Kernel: include/linux/mman.h:calc_vm_prot_bits(), calc_vm_flag_bits(),
// mm/mmap.c:do_mmap().
func calcVMFlags(prot Prot, flags MapFlags) VMFlags {
	var f VMFlags
	if prot&ProtRead != 0 {
		f |= VMRead
	}
	if prot&ProtWrite != 0 {
		f |= VMWrite
	}
	if prot&ProtExec != 0 {
		f |= VMExec
	}
	if flags&MapGrowsDown != 0 {
		f |= VMGrowsDown
	}
	if flags&MapLocked != 0 {
		f |= VMLocked
	}
	if flags&MapStack != 0 {
		f |= VMNoHugepage
	}
	return f | VMMayRead | VMMayWrite | VMMayExec
}

// Mmap maps a new region for p and returns its address. The checks come
// in the kernel's order and fail with its errno; an accountable mapping
// (private and writable, or shared anonymous, without VM_NORESERVE) is
// charged to Committed_AS; a VM_LOCKED mapping (MAP_LOCKED) counts in
// locked_vm and, like MAP_POPULATE, is faulted in at once.
//
// Kernel: mm/mmap.c:do_mmap(), mm/vma.c:mmap_region(), __mmap_region(),
// mm/util.c:vm_mmap_pgoff(), mm/shmem.c:shmem_zero_setup(),
// mm/secretmem.c:secretmem_mmap_prepare().
func (m *Model) Mmap(p *Proc, r MmapRequest) (uint64, error) {
	if p.MM == nil {
		return 0, fmt.Errorf("%w: %s is a kernel thread: it has no address space", zone.ErrInvalid, p.Task)
	}
	if r.Len <= 0 {
		return 0, fmt.Errorf("mmap: length %d: %w", r.Len, EINVAL)
	}
	length := uint64(r.Len+pageSize-1) &^ (pageSize - 1)
	if length > taskSize {
		return 0, fmt.Errorf("mmap: length %d: %w", r.Len, ENOMEM)
	}
	if r.Flags&MapFixed != 0 {
		return 0, fmt.Errorf("mmap: MAP_FIXED is not modelled: %w", EINVAL)
	}
	if (r.File == nil) != (r.Flags&MapAnonymous != 0) {
		return 0, fmt.Errorf("mmap: a file mapping without a file, or MAP_ANONYMOUS with one: %w", EINVAL)
	}
	mm := p.MM
	mm.mmapLock.Lock()
	defer mm.mmapLock.Unlock()
	if m.releasedMM(mm) {
		return 0, fmt.Errorf("%w: %s: its address space is gone", ErrKilled, p.Task)
	}
	vmFlags := calcVMFlags(r.Prot, r.Flags)
	// __get_unmapped_area: top-down below the last mapping.
	if mm.mmapBase < length || mm.mmapBase-length < heapStart+heapRoom {
		return 0, fmt.Errorf("mmap: no room for %d bytes: %w", length, ENOMEM)
	}
	addr := mm.mmapBase - length
	if r.Flags&MapLocked != 0 && !p.canDoMlock() {
		return 0, fmt.Errorf("mmap: MAP_LOCKED with RLIMIT_MEMLOCK 0: %w", EPERM)
	}
	if !p.mlockFutureOK(vmFlags&VMLocked != 0, int64(length)) {
		return 0, fmt.Errorf("mmap: MAP_LOCKED of %d bytes over RLIMIT_MEMLOCK: %w", length, EAGAIN)
	}
	var file *File
	pgoff := r.Pgoff
	if r.File != nil {
		file = r.File
		switch r.Flags & MapType {
		case MapShared:
			vmFlags |= VMShared | VMMayShare
		case MapPrivate:
		default:
			return 0, fmt.Errorf("mmap: map type %#x of a file: %w", uint32(r.Flags&MapType), EINVAL)
		}
		if vmFlags&VMGrowsDown != 0 {
			return 0, fmt.Errorf("mmap: MAP_GROWSDOWN of a file: %w", EINVAL)
		}
	} else {
		switch r.Flags & MapType {
		case MapShared:
			if vmFlags&VMGrowsDown != 0 {
				return 0, fmt.Errorf("mmap: MAP_SHARED|MAP_GROWSDOWN: %w", EINVAL)
			}
			pgoff = 0
			vmFlags |= VMShared | VMMayShare
		case MapDroppable:
			// A locked or stack area makes no sense to be droppable, nor
			// does a hugetlb one (for now).
			if r.Flags&(MapLocked|MapHugetlb) != 0 {
				return 0, fmt.Errorf("mmap: MAP_DROPPABLE with MAP_LOCKED or MAP_HUGETLB: %w", EINVAL)
			}
			if vmFlags&VMGrowsDown != 0 {
				return 0, fmt.Errorf("mmap: MAP_DROPPABLE with MAP_GROWSDOWN: %w", EINVAL)
			}
			// Droppable pages are not reserved, and too volatile to
			// survive a fork or a core dump.
			vmFlags |= VMDroppable | VMNoReserve | VMWipeOnFork | VMDontDump
			pgoff = int64(addr >> pageShift)
		case MapPrivate:
			pgoff = int64(addr >> pageShift)
		default:
			return 0, fmt.Errorf("mmap: map type %#x: %w", uint32(r.Flags&MapType), EINVAL)
		}
		if r.Flags&MapHugetlb != 0 {
			return 0, fmt.Errorf("mmap: MAP_HUGETLB: no hugetlb pages are reserved: %w", ENOMEM)
		}
	}
	if r.Flags&MapNoReserve != 0 && m.overcommit.Memory != OvercommitNever {
		vmFlags |= VMNoReserve
	}
	if file != nil && file.secret != nil {
		if vmFlags&(VMShared|VMMayShare) == 0 {
			return 0, fmt.Errorf("mmap: secretmem allows shared mappings only: %w", EINVAL)
		}
		vmFlags |= VMDontDump
		if err := m.secretMmap(p, file, int64(length)); err != nil {
			return 0, err
		}
	}
	pages := int64(length) >> pageShift
	// accountable_mapping: private and writable; shared anonymous memory
	// is charged to its shmem file instead (shmem_acct_size), without
	// VM_ACCOUNT, and given back when the file goes.
	shmemAcct := r.File == nil && vmFlags&VMShared != 0 && vmFlags&VMNoReserve == 0
	if shmemAcct {
		if err := m.vmEnoughMemory(p, mm, pages); err != nil {
			return 0, fmt.Errorf("mmap of %d bytes: shmem_acct_size: %w", length, err)
		}
	}
	if vmFlags&VMNoReserve == 0 && vmFlags&(VMWrite|VMShared) == VMWrite {
		if err := m.vmEnoughMemory(p, mm, pages); err != nil {
			if file != nil && file.secret != nil {
				m.secretMunmap(file, int64(length))
			}
			return 0, fmt.Errorf("mmap of %d bytes: %w", length, err)
		}
		vmFlags |= VMAccount
	}
	v := &VMA{mm: mm, start: addr, end: addr + length, flags: vmFlags, file: file, pgoff: pgoff}
	if r.File == nil && vmFlags&VMShared != 0 {
		v.file = m.newShmemFile()
		v.name = "/dev/zero (deleted)"
		if shmemAcct {
			v.file.acctPages = pages
		}
	} else if file != nil {
		v.name = file.name
		file.mapRef(1)
	}
	if vmFlags&VMLocked != 0 && !vmaSupportsMlock(v) {
		v.flags &^= VMLockedMask
	}
	m.mu.Lock()
	mm.insertVMA(v)
	m.mu.Unlock()
	mm.mmapBase = addr
	mm.totalVM.Add(pages)
	if v.flags&VMLocked != 0 {
		mm.lockedVM.Add(pages)
	}
	if r.Flags&MapPopulate != 0 || v.flags&VMLocked != 0 {
		m.populateLocked(p, v, v.start, v.end) // errors are ignored, as mm_populate's
	}
	return addr, nil
}

func (m *Model) releasedMM(mm *MM) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return mm.released
}

// Brk grows p's heap by pages and returns the address of the first new
// page. The heap is a private, writable, accounted mapping.
//
// Kernel: mm/mmap.c:brk(), mm/vma.c:do_brk_flags().
func (m *Model) Brk(p *Proc, pages int64) (uint64, error) {
	mm := p.MM
	mm.mmapLock.Lock()
	defer mm.mmapLock.Unlock()
	if m.releasedMM(mm) {
		return 0, fmt.Errorf("%w: %s: its address space is gone", ErrKilled, p.Task)
	}
	if err := m.vmEnoughMemory(p, mm, pages); err != nil {
		return 0, fmt.Errorf("brk: %w", err)
	}
	length := uint64(pages) << pageShift
	m.mu.Lock()
	if mm.heap == nil {
		mm.heap = &VMA{mm: mm, start: heapStart, end: heapStart, name: "[heap]",
			flags: VMRead | VMWrite | VMMayRead | VMMayWrite | VMMayExec | VMAccount}
		mm.insertVMA(mm.heap)
	}
	addr := mm.heap.end
	mm.heap.end += length
	m.mu.Unlock()
	mm.totalVM.Add(pages)
	return addr, nil
}

// Munmap removes the mappings in [addr, addr+length): their pages are
// unmapped (an anonymous page mapped nowhere else is freed), their commit
// charge and locked_vm given back, and page tables no mapping needs any
// more freed.
//
// Kernel: mm/vma.c:do_vmi_munmap(), vms_complete_munmap_vmas(), mm/memory.c:free_pgtables().
func (m *Model) Munmap(p *Proc, addr uint64, length int64) error {
	if p.MM == nil {
		return fmt.Errorf("%w: %s is a kernel thread: it has no address space", zone.ErrInvalid, p.Task)
	}
	if addr&(pageSize-1) != 0 || addr > taskSize || length <= 0 || uint64(length) > taskSize-addr {
		return fmt.Errorf("munmap(%#x, %d): %w", addr, length, EINVAL)
	}
	end := addr + (uint64(length)+pageSize-1)&^(pageSize-1)
	mm := p.MM
	mm.mmapLock.Lock()
	defer mm.mmapLock.Unlock()
	return m.unmapRegion(p.Task, mm, addr, end)
}

// unmapRegion is munmap's work. Called with mmapLock held for writing.
func (m *Model) unmapRegion(t *memalloc.Task, mm *MM, start, end uint64) error {
	m.mu.Lock()
	vs := mm.isolateRange(start, end)
	var free []*Folio
	var files []*VMA
	for _, v := range vs {
		free = append(free, m.zapRangeLocked(mm, v.start, v.end)...)
		mm.removeVMA(v)
		if v == mm.heap {
			mm.heap = nil
		}
		pages := v.Pages()
		mm.updateHiwater()
		mm.totalVM.Add(-pages)
		if v.flags&VMLocked != 0 {
			mm.lockedVM.Add(-pages)
		}
		if v.flags&VMAccount != 0 {
			m.unaccount(pages)
		}
		if v.file != nil {
			files = append(files, v)
		}
	}
	pts := m.unusedTablesLocked(mm, start, end)
	m.mu.Unlock()
	errs := []error{m.freeFolios(t, free)}
	for _, pt := range pts {
		errs = append(errs, m.freePageTable(t, mm, pt))
	}
	for _, v := range files {
		errs = append(errs, m.fileUnmapped(t, v.file, v))
	}
	return errors.Join(errs...)
}

// unusedTablesLocked takes out the page tables in [start, end) that no
// mapping covers any more. Called with the Model's lock held.
func (m *Model) unusedTablesLocked(mm *MM, start, end uint64) []*ptTable {
	var out []*ptTable
	const span = ptesPerTable << pageShift
	lo, hi := vpn(start)/ptesPerTable, vpn(end-1)/ptesPerTable
	var keys []uint64
	for key := range mm.tables {
		if key >= lo && key <= hi {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys) // free in address order: deterministic
	for _, key := range keys {
		base := key * ptesPerTable << pageShift
		if len(mm.vmasIn(base, base+span)) > 0 {
			continue
		}
		out = append(out, mm.tables[key])
		delete(mm.tables, key)
	}
	return out
}

// exitMmap tears down p's address space at exit: every mapping unmapped,
// its charges given back, the page tables freed.
//
// Kernel: mm/mmap.c:exit_mmap().
func (m *Model) exitMmap(p *Proc) error {
	mm := p.MM
	mm.mmapLock.Lock()
	defer mm.mmapLock.Unlock()
	err := m.unmapRegion(p.Task, mm, 0, taskSize)
	_, err2 := m.ReleaseAnon(p.Task, mm, true)
	mm.totalVM.Store(0)
	return errors.Join(err, err2)
}

// Mappings returns a snapshot of p's mappings: start, end, flags and name
// of each, in address order.
func (m *Model) Mappings(p *Proc) []MappingInfo {
	if p.MM == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []MappingInfo
	for _, v := range p.MM.vmas {
		out = append(out, MappingInfo{Start: v.start, End: v.end, Flags: v.flags, Name: v.name})
	}
	return out
}

// MappingInfo describes one mapping, as /proc/PID/smaps would.
type MappingInfo struct {
	Start, End uint64
	Flags      VMFlags
	Name       string
}
