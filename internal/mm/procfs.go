package mm

import (
	"bufio"
	"fmt"
	"io"
)

// WriteStatus writes the memory lines of /proc/PID/status for p, from
// VmPeak to VmSwap, as task_mem prints them (values in kB, right-aligned
// in 8 columns).
//
// Kernel: fs/proc/task_mmu.c:task_mem().
func (m *Model) WriteStatus(w io.Writer, p *Proc) error {
	bw := bufio.NewWriter(w)
	mm := p.MM
	if mm == nil {
		return nil // a kernel thread prints no Vm lines
	}
	var data, stack int64
	m.mu.Lock()
	for _, v := range mm.vmas {
		switch {
		case v.flags&VMGrowsDown != 0: // is_stack_mapping
			stack += v.Pages()
		case v.flags&(VMWrite|VMShared) == VMWrite: // is_data_mapping
			data += v.Pages()
		}
	}
	m.mu.Unlock()
	anon, file, shmem := mm.Counter(MMAnonPages), mm.Counter(MMFilePages), mm.Counter(MMShmemPages)
	totalVM, rss := mm.totalVM.Load(), anon+file+shmem
	kb := func(label string, pages int64) { fmt.Fprintf(bw, "%s\t%8d kB\n", label, pages<<(pageShift-10)) }
	kb("VmPeak:", max(totalVM, mm.hiwaterVM.Load()))
	kb("VmSize:", totalVM)
	kb("VmLck:", mm.lockedVM.Load())
	kb("VmPin:", 0)
	kb("VmHWM:", max(rss, mm.hiwaterRSS.Load()))
	kb("VmRSS:", rss)
	kb("RssAnon:", anon)
	kb("RssFile:", file)
	kb("RssShmem:", shmem)
	kb("VmData:", data)
	kb("VmStk:", stack)
	kb("VmExe:", 0)
	kb("VmLib:", 0)
	fmt.Fprintf(bw, "VmPTE:\t%8d kB\n", mm.PgtablesBytes()>>10)
	kb("VmSwap:", mm.Counter(MMSwapEnts))
	return bw.Flush()
}

// updateHiwater records the peaks of rss and total_vm before they drop.
//
// Kernel: include/linux/mm.h:update_hiwater_rss(), update_hiwater_vm().
func (mm *MM) updateHiwater() {
	if rss := mm.RSS(); rss > mm.hiwaterRSS.Load() {
		mm.hiwaterRSS.Store(rss)
	}
	if vm := mm.totalVM.Load(); vm > mm.hiwaterVM.Load() {
		mm.hiwaterVM.Store(vm)
	}
}
