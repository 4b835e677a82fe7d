package mm

import (
	"fmt"

	"github.com/mmsim/mmsim/zone"
)

// MlockLimit is RLIMIT_MEMLOCK's default: MLOCK_LIMIT, 8 MiB.
//
// Kernel: include/uapi/linux/resource.h:MLOCK_LIMIT.
const MlockLimit = 8 << 20

// RlimInfinity is RLIM_INFINITY.
const RlimInfinity = ^uint64(0)

// MlockOnFault is mlock2's MLOCK_ONFAULT.
const MlockOnFault = 0x01

// capability is a capability a process may hold: uid 0 holds them all.
// The numbers are include/uapi/linux/capability.h's.
type capability int

const (
	capIPCLock  capability = 14 // CAP_IPC_LOCK
	capSysAdmin capability = 21 // CAP_SYS_ADMIN
)

// capable reports whether p holds c: mmsim gives root (uid 0) every
// capability and other users none.
//
// Kernel: kernel/capability.c:capable().
func (p *Proc) capable(capability) bool { return p.UID == 0 }

// RlimitMemlock returns p's RLIMIT_MEMLOCK in bytes.
func (p *Proc) RlimitMemlock() uint64 { return p.rlimMemlock.Load() }

// SetRlimitMemlock sets p's RLIMIT_MEMLOCK in bytes (RlimInfinity: none),
// as setrlimit does.
//
// Kernel: kernel/sys.c:do_prlimit().
func (p *Proc) SetRlimitMemlock(bytes uint64) { p.rlimMemlock.Store(bytes) }

// lockLimitPages returns RLIMIT_MEMLOCK in pages.
func (p *Proc) lockLimitPages() int64 {
	l := p.rlimMemlock.Load()
	if l == RlimInfinity {
		return 1<<63 - 1
	}
	return int64(l >> pageShift)
}

// User returns p's user_struct.
func (p *Proc) User() *User { return p.user }

// SetUID makes p run as uid: its user_struct (for secretmem's charges),
// its capabilities, the UID the OOM report prints.
//
// Kernel: kernel/sys.c:__sys_setuid().
func (m *Model) SetUID(p *Proc, uid int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p.UID = uid
	p.user = m.userLocked(uid)
}

// userLocked returns uid's user_struct, creating it. Called with mu held.
func (m *Model) userLocked(uid int) *User {
	u := m.users[uid]
	if u == nil {
		u = &User{UID: uid}
		m.users[uid] = u
	}
	return u
}

// canDoMlock: a process may mlock at all if its RLIMIT_MEMLOCK is not 0 or
// it holds CAP_IPC_LOCK.
//
// Kernel: mm/mlock.c:can_do_mlock().
func (p *Proc) canDoMlock() bool { return p.rlimMemlock.Load() != 0 || p.capable(capIPCLock) }

// mlockFutureOK reports whether mapping length more bytes locked keeps p's
// mm within RLIMIT_MEMLOCK.
//
// Kernel: mm/mmap.c:mlock_future_ok().
func (p *Proc) mlockFutureOK(locked bool, length int64) bool {
	if !locked || p.capable(capIPCLock) {
		return true
	}
	return length>>pageShift+p.MM.lockedVM.Load() <= p.lockLimitPages()
}

// vmaSupportsMlock: neither a droppable nor a hugetlb mapping can be
// mlocked.
//
// Kernel: mm/internal.h:vma_supports_mlock().
func vmaSupportsMlock(v *VMA) bool { return v.flags&(VMDroppable|VMHugetlb) == 0 }

// LockedVM returns the mm's locked_vm in pages (VmLck).
func (mm *MM) LockedVM() int64 { return mm.lockedVM.Load() }

// Mlock locks [addr, addr+length) of p's address space (mlock2 with
// flags 0 or MLOCK_ONFAULT): the mappings become VM_LOCKED, count in
// locked_vm, and their pages are faulted in (not with MLOCK_ONFAULT) and
// made unevictable.
//
// Kernel: mm/mlock.c:do_mlock(), apply_vma_lock_flags(), mlock_fixup(),
// mm/gup.c:__mm_populate().
func (m *Model) Mlock(p *Proc, addr uint64, length int64, flags int) error {
	if p.MM == nil {
		return fmt.Errorf("%w: %s is a kernel thread: it has no address space", zone.ErrInvalid, p.Task)
	}
	if flags&^MlockOnFault != 0 {
		return fmt.Errorf("mlock2: flags %#x: %w", flags, EINVAL)
	}
	if !p.canDoMlock() {
		return fmt.Errorf("mlock: RLIMIT_MEMLOCK is 0: %w", EPERM)
	}
	if length < 0 {
		return fmt.Errorf("mlock: length %d: %w", length, EINVAL)
	}
	start, end := addr&^(pageSize-1), (addr+uint64(length)+pageSize-1)&^(pageSize-1)
	newFlags := VMLocked
	if flags&MlockOnFault != 0 {
		newFlags |= VMLockOnFault
	}
	mm := p.MM
	mm.mmapLock.Lock()
	defer mm.mmapLock.Unlock()
	locked := int64(end-start)>>pageShift + mm.lockedVM.Load()
	if locked > p.lockLimitPages() && !p.capable(capIPCLock) {
		// Pages already locked in the range do not count twice.
		locked -= m.countMlocked(mm, start, end)
	}
	if locked > p.lockLimitPages() && !p.capable(capIPCLock) {
		return fmt.Errorf("mlock of %d bytes: over RLIMIT_MEMLOCK %d: %w", end-start, p.RlimitMemlock(), ENOMEM)
	}
	if err := m.applyLockFlags(mm, start, end, newFlags); err != nil {
		return err
	}
	if newFlags&VMLockOnFault != 0 {
		return nil
	}
	// __mm_populate: an -ENOMEM becomes EAGAIN, a bad range ENOMEM.
	for _, v := range mm.vmasIn(start, end) {
		if err := m.populateLocked(p, v, max(v.start, start), min(v.end, end)); err != nil {
			return fmt.Errorf("mlock: faulting in: %w", EAGAIN)
		}
	}
	return nil
}

// Munlock unlocks [addr, addr+length): the mappings lose VM_LOCKED, their
// pages become evictable again.
//
// Kernel: mm/mlock.c:SYSCALL_DEFINE2(munlock).
func (m *Model) Munlock(p *Proc, addr uint64, length int64) error {
	if p.MM == nil {
		return fmt.Errorf("%w: %s is a kernel thread: it has no address space", zone.ErrInvalid, p.Task)
	}
	if length < 0 {
		return fmt.Errorf("munlock: length %d: %w", length, EINVAL)
	}
	start, end := addr&^(pageSize-1), (addr+uint64(length)+pageSize-1)&^(pageSize-1)
	mm := p.MM
	mm.mmapLock.Lock()
	defer mm.mmapLock.Unlock()
	return m.applyLockFlags(mm, start, end, 0)
}

// countMlocked counts the pages of [start, end) already in VM_LOCKED
// mappings.
//
// Kernel: mm/mlock.c:count_mm_mlocked_page_nr().
func (m *Model) countMlocked(mm *MM, start, end uint64) int64 {
	var n int64
	for _, v := range mm.vmasIn(start, end) {
		if v.flags&VMLocked != 0 {
			n += int64(min(v.end, end)-max(v.start, start)) >> pageShift
		}
	}
	return n
}

// applyLockFlags sets the lock flags of every mapping in [start, end),
// which must be mapped without a hole (ENOMEM), and mlocks or munlocks
// their present pages. secretmem and the mappings that cannot be mlocked
// are left as they are. Called with mmapLock held for writing.
//
// Kernel: mm/mlock.c:apply_vma_lock_flags(), mlock_fixup(), mlock_vma_pages_range().
func (m *Model) applyLockFlags(mm *MM, start, end uint64, lockFlags VMFlags) error {
	if end < start {
		return fmt.Errorf("mlock: range wraps: %w", EINVAL)
	}
	if end == start {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if mm.findVMA(start) == nil {
		return fmt.Errorf("mlock: %#x is not mapped: %w", start, ENOMEM)
	}
	// The mappings up to a hole are changed, then the hole is ENOMEM.
	defer mm.mergeVMAs()
	next := start
	for _, v := range mm.isolateRange(start, end) {
		if v.start != next {
			return fmt.Errorf("mlock: [%#x, %#x) is not mapped: %w", next, v.start, ENOMEM)
		}
		next = v.end
		newFlags := v.flags&^VMLockedMask | lockFlags
		if newFlags == v.flags || (v.file != nil && v.file.secret != nil) || !vmaSupportsMlock(v) {
			continue
		}
		pages := v.Pages()
		switch {
		case newFlags&VMLocked == 0:
			mm.lockedVM.Add(-pages)
		case v.flags&VMLocked == 0:
			mm.lockedVM.Add(pages)
		}
		wasLocked := v.flags&VMLocked != 0
		v.flags = newFlags
		if wasLocked == (newFlags&VMLocked != 0) {
			continue
		}
		for addr := v.start; addr < v.end; addr += pageSize {
			e := mm.lookupPTE(addr)
			if e == nil || !e.present() || e.folio == zeroFolio {
				continue
			}
			if newFlags&VMLocked != 0 {
				m.mlockFolioLocked(e.folio)
			} else if !m.mappedLockedElsewhere(e.folio, mm, vpn(addr)) {
				m.munlockFolioLocked(e.folio)
			}
		}
	}
	if next < end {
		return fmt.Errorf("mlock: [%#x, %#x) is not mapped: %w", next, end, ENOMEM)
	}
	return nil
}

// mappedLockedElsewhere reports whether another VM_LOCKED mapping maps f.
func (m *Model) mappedLockedElsewhere(f *Folio, mm *MM, v uint64) bool {
	for _, r := range f.rmap {
		if r.mm == mm && r.vpn == v {
			continue
		}
		if w := r.mm.findVMA(r.vpn << pageShift); w != nil && w.flags&VMLocked != 0 {
			return true
		}
	}
	return false
}

// mlockNewFolioLocked marks a folio not yet on an LRU list mlocked: it
// will go on the unevictable list (culled there).
//
// Kernel: mm/mlock.c:mlock_new_folio(), __mlock_new_folio().
func (m *Model) mlockNewFolioLocked(f *Folio) {
	f.Flags |= PGMlocked
	f.zone().ModState(zone.ZoneNrMlock, f.NrPages())
	m.alloc.CountEvent(zone.VMUnevictablePgsMlocked, f.NrPages())
	m.alloc.CountEvent(zone.VMUnevictablePgsCulled, f.NrPages())
}

// mlockFolioLocked mlocks a folio already on (or isolated from) an LRU
// list: PG_mlocked, NR_MLOCK, and the unevictable list.
//
// Kernel: mm/mlock.c:mlock_folio(), __mlock_folio().
func (m *Model) mlockFolioLocked(f *Folio) {
	if f.Flags&PGMlocked != 0 {
		return
	}
	onLRU := f.onLRU
	if onLRU {
		f.node.del(f)
	}
	m.mlockNewFolioLocked(f)
	if onLRU {
		f.node.add(f)
	}
}

// munlockFolioLocked clears PG_mlocked: the folio goes back to an
// evictable list (unless it is unevictable for another reason).
//
// Kernel: mm/mlock.c:munlock_folio(), __munlock_folio().
func (m *Model) munlockFolioLocked(f *Folio) {
	if f.Flags&PGMlocked == 0 {
		return
	}
	onLRU := f.onLRU
	if onLRU {
		f.node.del(f)
	}
	f.Flags &^= PGMlocked
	f.zone().ModState(zone.ZoneNrMlock, -f.NrPages())
	m.alloc.CountEvent(zone.VMUnevictablePgsMunlocked, f.NrPages())
	if onLRU {
		f.node.add(f)
		if f.Flags&PGUnevictable == 0 {
			m.alloc.CountEvent(zone.VMUnevictablePgsRescued, f.NrPages())
		}
	}
}

// populateLocked faults in [start, end) of v, as mm_populate does: a
// write fault for a private writable mapping (to break copy-on-write), a
// read fault otherwise. It stops at the first failure. Called with the
// mmap lock held.
//
// Kernel: mm/gup.c:populate_vma_page_range().
func (m *Model) populateLocked(p *Proc, v *VMA, start, end uint64) error {
	write := v.flags&(VMWrite|VMShared) == VMWrite
	if v.flags&(VMRead|VMWrite|VMExec) == 0 {
		return nil // PROT_NONE: nothing to populate
	}
	for addr := start; addr < end; addr += pageSize {
		res, err := m.accessMmapLocked(p, addr, accessOp{write: write, touch: true})
		if err != nil {
			return err
		}
		if res.Outcome != AccessOK {
			if res.Err != nil {
				return res.Err
			}
			return fmt.Errorf("populate: %s at %#x", res.Outcome, addr)
		}
	}
	return nil
}

// UserLockedVM returns user uid's locked_vm in pages (0 for a user never
// seen).
func (m *Model) UserLockedVM(uid int) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u := m.users[uid]; u != nil {
		return u.LockedVM()
	}
	return 0
}
