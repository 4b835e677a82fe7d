package mm

import (
	"fmt"

	"github.com/mmsim/mmsim/zone"
)

// Advice is madvise's advice argument.
//
// Kernel: include/uapi/asm-generic/mman-common.h (MADV_*).
type Advice int

// The advice mmsim models.
const (
	MadvNormal     Advice = 0
	MadvDontNeed   Advice = 4
	MadvFree       Advice = 8
	MadvDontFork   Advice = 10
	MadvDoFork     Advice = 11
	MadvDontDump   Advice = 16
	MadvDoDump     Advice = 17
	MadvWipeOnFork Advice = 18
	MadvKeepOnFork Advice = 19
)

var adviceNames = map[Advice]string{
	MadvNormal: "MADV_NORMAL", MadvDontNeed: "MADV_DONTNEED", MadvFree: "MADV_FREE",
	MadvDontFork: "MADV_DONTFORK", MadvDoFork: "MADV_DOFORK", MadvDontDump: "MADV_DONTDUMP",
	MadvDoDump: "MADV_DODUMP", MadvWipeOnFork: "MADV_WIPEONFORK", MadvKeepOnFork: "MADV_KEEPONFORK",
}

// String returns the advice's uapi name.
func (a Advice) String() string {
	if n, ok := adviceNames[a]; ok {
		return n
	}
	return fmt.Sprintf("MADV_%d", int(a))
}

// vmSpecial is VM_SPECIAL: VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP.
// mmsim creates no such mapping.
const vmSpecial VMFlags = 1<<14 | 1<<18 | 1<<10 | 1<<28

// Madvise applies advice to [addr, addr+length) of p's address space. A
// range with unmapped holes is advised where mapped and then fails with
// ENOMEM, as the kernel's does.
//
// Kernel: mm/madvise.c:do_madvise(), madvise_walk_vmas(), madvise_update_vma(),
// madvise_vma_behavior(), madvise_dontneed_free(), madvise_free_pte_range().
func (m *Model) Madvise(p *Proc, addr uint64, length int64, advice Advice) error {
	if p.MM == nil {
		return fmt.Errorf("%w: %s is a kernel thread: it has no address space", zone.ErrInvalid, p.Task)
	}
	if _, ok := adviceNames[advice]; !ok {
		return fmt.Errorf("madvise: advice %d: %w", int(advice), EINVAL)
	}
	if addr&(pageSize-1) != 0 || length < 0 {
		return fmt.Errorf("madvise(%#x, %d): %w", addr, length, EINVAL)
	}
	end := addr + (uint64(length)+pageSize-1)&^(pageSize-1)
	if end < addr {
		return fmt.Errorf("madvise: range wraps: %w", EINVAL)
	}
	if end == addr {
		return nil
	}
	mm := p.MM
	mm.mmapLock.Lock()
	defer mm.mmapLock.Unlock()
	m.mu.Lock()
	vs := mm.isolateRange(addr, end)
	unmapped := len(vs) == 0 || vs[0].start > addr || vs[len(vs)-1].end < end
	for i := 1; i < len(vs); i++ {
		unmapped = unmapped || vs[i-1].end != vs[i].start
	}
	var free []*Folio
	var err error
	for _, v := range vs {
		switch advice {
		case MadvDontNeed, MadvFree:
			if v.flags&(VMLocked|VMHugetlb) != 0 || advice == MadvFree && v.file != nil {
				err = fmt.Errorf("%s of a locked, hugetlb or file mapping: %w", advice, EINVAL)
				break
			}
			if advice == MadvDontNeed {
				free = append(free, m.zapRangeLocked(mm, v.start, v.end)...)
			} else {
				m.lazyfreeRangeLocked(mm, v.start, v.end)
			}
		default:
			err = m.madviseFlagsLocked(v, advice)
		}
		if err != nil {
			break
		}
	}
	mm.mergeVMAs()
	m.mu.Unlock()
	if ferr := m.freeFolios(p.Task, free); ferr != nil {
		return ferr
	}
	if err != nil {
		return fmt.Errorf("madvise: %w", err)
	}
	if unmapped {
		return fmt.Errorf("madvise(%#x, %d): part of the range is not mapped: %w", addr, length, ENOMEM)
	}
	return nil
}

// madviseFlagsLocked changes a mapping's flags for advice.
//
// Kernel: mm/madvise.c:madvise_vma_behavior().
func (m *Model) madviseFlagsLocked(v *VMA, advice Advice) error {
	f := v.flags
	switch advice {
	case MadvNormal:
	case MadvDontFork:
		f |= VMDontCopy
	case MadvDoFork:
		if f&vmSpecial != 0 {
			return fmt.Errorf("MADV_DOFORK of a special mapping: %w", EINVAL)
		}
		f &^= VMDontCopy
	case MadvWipeOnFork:
		// MADV_WIPEONFORK is only supported on anonymous memory.
		if v.file != nil || f&VMShared != 0 {
			return fmt.Errorf("MADV_WIPEONFORK of a file or shared mapping: %w", EINVAL)
		}
		f |= VMWipeOnFork
	case MadvKeepOnFork:
		if f&VMDroppable != 0 {
			return fmt.Errorf("MADV_KEEPONFORK of a VM_DROPPABLE mapping: %w", EINVAL)
		}
		f &^= VMWipeOnFork
	case MadvDontDump:
		f |= VMDontDump
	case MadvDoDump:
		if f&vmSpecial != 0 || f&VMDroppable != 0 {
			return fmt.Errorf("MADV_DODUMP of a VM_DROPPABLE or special mapping: %w", EINVAL)
		}
		f &^= VMDontDump
	}
	v.flags = f
	return nil
}

// lazyfreeRangeLocked is MADV_FREE over [start, end): swap entries are
// dropped; each anonymous page mapped only here is made clean and old and,
// if swap-backed, lazily freeable — moved to the inactive file list, where
// reclaim frees it unless it is written again first. Shared pages (after
// fork) are left alone.
//
// Kernel: mm/madvise.c:madvise_free_pte_range(), mm/swap.c:folio_mark_lazyfree().
func (m *Model) lazyfreeRangeLocked(mm *MM, start, end uint64) {
	for addr := start; addr < end; addr += pageSize {
		e := mm.lookupPTE(addr)
		switch {
		case e == nil:
			addr = (vpn(addr)/ptesPerTable+1)*ptesPerTable<<pageShift - pageSize
		case e.swap != nil:
			m.freeSwapLocked(e.swap)
			mm.counters[MMSwapEnts].Add(-1)
			*e = pte{}
		case e.present() && e.folio != zeroFolio && e.folio.anon && len(e.folio.rmap) == 1:
			f := e.folio
			e.dirty = false
			f.Flags &^= PGDirty
			f.Young = false
			if f.Flags&PGSwapBacked != 0 && f.onLRU && f.Flags&(PGUnevictable|PGMlocked) == 0 {
				f.node.del(f)
				f.Flags &^= PGSwapBacked | PGActive | PGReferenced
				f.node.add(f)
				m.alloc.CountEvent(zone.VMPglazyfree, f.NrPages())
			}
		}
	}
}
