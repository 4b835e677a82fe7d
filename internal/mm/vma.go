package mm

import (
	"sort"
	"strings"
)

// VMFlags are a mapping's vm_flags.
//
// Kernel: include/linux/mm.h:enum vma_flag_bits (VM_READ ...).
type VMFlags uint64

// The vm_flags bits mmsim uses, with the kernel's bit numbers (x86-64).
const (
	VMRead        VMFlags = 1 << 0
	VMWrite       VMFlags = 1 << 1
	VMExec        VMFlags = 1 << 2
	VMShared      VMFlags = 1 << 3
	VMMayRead     VMFlags = 1 << 4
	VMMayWrite    VMFlags = 1 << 5
	VMMayExec     VMFlags = 1 << 6
	VMMayShare    VMFlags = 1 << 7
	VMGrowsDown   VMFlags = 1 << 8
	VMLocked      VMFlags = 1 << 13
	VMDontCopy    VMFlags = 1 << 17
	VMLockOnFault VMFlags = 1 << 19
	VMAccount     VMFlags = 1 << 20
	VMNoReserve   VMFlags = 1 << 21
	VMHugetlb     VMFlags = 1 << 22
	VMWipeOnFork  VMFlags = 1 << 25
	VMDontDump    VMFlags = 1 << 26
	VMNoHugepage  VMFlags = 1 << 30
	VMDroppable   VMFlags = 1 << 40

	// VMLockedMask is VM_LOCKED_MASK: the flags mlock sets and munlock
	// clears.
	VMLockedMask = VMLocked | VMLockOnFault
)

// vmMnemonics are /proc/PID/smaps' VmFlags names, by bit.
//
// Kernel: fs/proc/task_mmu.c:show_smap_vma_flags().
var vmMnemonics = map[int]string{
	0: "rd", 1: "wr", 2: "ex", 3: "sh", 4: "mr", 5: "mw", 6: "me", 7: "ms",
	8: "gd", 10: "pf", 11: "gu", 13: "lo", 14: "io", 15: "sr", 16: "rr",
	17: "dc", 18: "de", 19: "lf", 20: "ac", 21: "nr", 22: "ht", 23: "sf",
	24: "ar", 25: "wf", 26: "dd", 27: "sd", 28: "mm", 29: "hg", 30: "nh",
	31: "mg", 40: "dp", 42: "sl",
}

// String returns the flags as smaps' VmFlags line spells them: "rd wr mr
// mw me ac".
func (f VMFlags) String() string {
	var names []string
	for bit := 0; bit < 64; bit++ {
		if f&(1<<bit) == 0 {
			continue
		}
		if n, ok := vmMnemonics[bit]; ok {
			names = append(names, n)
		} else {
			names = append(names, "??")
		}
	}
	return strings.Join(names, " ")
}

// VMA is one mapping of an address space: [Start, End) with its flags and
// what backs it.
//
// Kernel: include/linux/mm_types.h:struct vm_area_struct.
type VMA struct {
	mm *MM
	// start, end and flags change under both the mm's mmap lock (write)
	// and the Model's lock, so either lock suffices to read them.
	start, end uint64
	flags      VMFlags
	// file backs a file mapping, a shared anonymous mapping (its shmem
	// file) or secretmem; nil for a private anonymous mapping. pgoff is
	// the file page at start.
	file  *File
	pgoff int64
	// name is what /proc/PID/maps shows in the path column.
	name string
}

// Start and End return the mapping's bounds.
func (v *VMA) Start() uint64 { return v.start }
func (v *VMA) End() uint64   { return v.end }

// Flags returns vm_flags.
func (v *VMA) Flags() VMFlags { return v.flags }

// Pages returns the mapping's length in pages.
func (v *VMA) Pages() int64 { return int64(v.end-v.start) >> pageShift }

// Anonymous reports a private anonymous mapping (vma_is_anonymous; a
// shared one is backed by a shmem file).
func (v *VMA) Anonymous() bool { return v.file == nil }

// fileIndex returns the file page that addr maps.
func (v *VMA) fileIndex(addr uint64) int64 { return v.pgoff + int64(addr-v.start)>>pageShift }

const (
	pageShift = 12
	pageSize  = 1 << pageShift
)

// findVMA returns the mapping containing addr, or nil. Called with the mmap
// lock or the Model's lock held.
//
// Kernel: mm/mmap.c:find_vma() (but only a containing VMA).
func (mm *MM) findVMA(addr uint64) *VMA {
	i := sort.Search(len(mm.vmas), func(i int) bool { return mm.vmas[i].end > addr })
	if i < len(mm.vmas) && mm.vmas[i].start <= addr {
		return mm.vmas[i]
	}
	return nil
}

// vmasIn returns the mappings that intersect [start, end), in order.
func (mm *MM) vmasIn(start, end uint64) []*VMA {
	i := sort.Search(len(mm.vmas), func(i int) bool { return mm.vmas[i].end > start })
	var out []*VMA
	for ; i < len(mm.vmas) && mm.vmas[i].start < end; i++ {
		out = append(out, mm.vmas[i])
	}
	return out
}

// insertVMA adds v to the sorted list. Called with both locks held.
func (mm *MM) insertVMA(v *VMA) {
	i := sort.Search(len(mm.vmas), func(i int) bool { return mm.vmas[i].start >= v.end })
	mm.vmas = append(mm.vmas, nil)
	copy(mm.vmas[i+1:], mm.vmas[i:])
	mm.vmas[i] = v
}

// removeVMA takes v off the list. Called with both locks held.
func (mm *MM) removeVMA(v *VMA) {
	for i, w := range mm.vmas {
		if w == v {
			mm.vmas = append(mm.vmas[:i], mm.vmas[i+1:]...)
			return
		}
	}
}

// splitVMA splits v at addr (start < addr < end) and returns the upper
// part, which is inserted after it. Called with both locks held.
//
// Kernel: mm/vma.c:__split_vma().
func (mm *MM) splitVMA(v *VMA, addr uint64) *VMA {
	hi := *v
	hi.start = addr
	if hi.file != nil {
		hi.pgoff = v.fileIndex(addr)
	}
	v.end = addr
	if hi.file != nil {
		hi.file.mapRef(1) // the new part holds a reference of its own
	}
	mm.insertVMA(&hi)
	return &hi
}

// isolateRange splits the mappings at start and end so that every mapping
// intersecting [start, end) lies within it, and returns them. Called with
// both locks held.
func (mm *MM) isolateRange(start, end uint64) []*VMA {
	vs := mm.vmasIn(start, end)
	for i, v := range vs {
		if v.start < start {
			vs[i] = mm.splitVMA(v, start)
			v = vs[i]
		}
		if v.end > end {
			mm.splitVMA(v, end)
		}
	}
	return vs
}

// mergeVMAs joins neighbouring mappings that are alike again, as
// vma_merge does after a flags change. Called with both locks held.
//
// Kernel: mm/vma.c:vma_merge_existing_range() (the simple cases).
func (mm *MM) mergeVMAs() {
	out := mm.vmas[:0]
	for _, v := range mm.vmas {
		if n := len(out); n > 0 {
			p := out[n-1]
			if p.end == v.start && p.flags == v.flags && p.file == v.file && p.name == v.name &&
				(p.file == nil || p.fileIndex(v.start) == v.pgoff) {
				p.end = v.end
				if v.file != nil {
					v.file.mapRef(-1) // vma_complete: the merged part's reference goes
				}
				continue
			}
		}
		out = append(out, v)
	}
	for i := len(out); i < len(mm.vmas); i++ {
		mm.vmas[i] = nil
	}
	mm.vmas = out
}
