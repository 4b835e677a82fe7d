package memalloc

import "strconv"

// Flags is a set of PF_* task flags (task_struct.flags): the ones the
// allocator, reclaim and the OOM killer read, with the kernel's values.
//
// Kernel: include/linux/sched.h (PF_*).
type Flags uint32

// The PF_* flags mmsim models, with their 7.2 values.
//
// Kernel: include/linux/sched.h (PF_*).
const (
	// PFExiting marks a task that is exiting; the OOM killer lets it free
	// its memory rather than pick another victim.
	// Kernel: include/linux/sched.h:PF_EXITING.
	PFExiting Flags = 0x00000004
	// PFWQWorker marks a workqueue worker: reclaim retries sleep a tick
	// instead of cond_resched(). Kernel: include/linux/sched.h:PF_WQ_WORKER.
	PFWQWorker Flags = 0x00000020
	// PFDumpCore marks a task that dumped core: the page allocator does not
	// invoke the OOM killer for it. Kernel: include/linux/sched.h:PF_DUMPCORE.
	PFDumpCore Flags = 0x00000200
	// PFMemalloc means "allocating memory to free memory": the task may use
	// the memory reserves (ALLOC_NO_WATERMARKS, unless __GFP_NOMEMALLOC)
	// and never recurses into direct reclaim or compaction. It is not a gfp
	// transform. SaveMemalloc (memalloc_noreclaim_save) sets it — which
	// makes it easy to confuse with PFMemallocNoReclaim, a different flag.
	// Kernel: include/linux/sched.h:PF_MEMALLOC.
	PFMemalloc Flags = 0x00000800
	// PFKcompactd marks kcompactd. Kernel: include/linux/sched.h:PF_KCOMPACTD.
	PFKcompactd Flags = 0x00010000
	// PFKswapd marks kswapd. Kernel: include/linux/sched.h:PF_KSWAPD.
	PFKswapd Flags = 0x00020000
	// PFMemallocNoFS makes every allocation of the task behave as if
	// __GFP_FS were clear (SaveNoFS). Kernel: include/linux/sched.h:PF_MEMALLOC_NOFS.
	PFMemallocNoFS Flags = 0x00040000
	// PFMemallocNoIO makes every allocation of the task behave as if
	// __GFP_IO and __GFP_FS were clear (SaveNoIO).
	// Kernel: include/linux/sched.h:PF_MEMALLOC_NOIO.
	PFMemallocNoIO Flags = 0x00080000
	// PFKthread marks a kernel thread: never an OOM victim.
	// Kernel: include/linux/sched.h:PF_KTHREAD.
	PFKthread Flags = 0x00200000
	// PFMemallocNoReclaim made every allocation behave as if
	// __GFP_DIRECT_RECLAIM were clear. It existed only from v6.9 (likely)
	// to v6.12-rc3, when it was reverted (9a8da05d7ad6) because it turns
	// nested __GFP_NOFAIL requests into unsupported non-blocking NOFAIL
	// ones; 7.2 has a hole at this value. mmsim keeps it as a what-if, with
	// the 6.9–6.11 semantics (see Task.GFPContext). It is not upstream
	// behaviour. Kernel: include/linux/sched.h:PF__HOLE__00800000 (was
	// PF_MEMALLOC_NORECLAIM, commit eab0af905bfc).
	PFMemallocNoReclaim Flags = 0x00800000
	// PFMemallocNoWarn made every allocation inherit __GFP_NOWARN. Reverted
	// with PFMemallocNoReclaim; a what-if, not upstream behaviour.
	// Kernel: include/linux/sched.h:PF__HOLE__01000000 (was PF_MEMALLOC_NOWARN).
	PFMemallocNoWarn Flags = 0x01000000
	// PFMemallocPin makes every allocation avoid ZONE_MOVABLE and CMA: it
	// clears __GFP_MOVABLE (SavePin). Kernel: include/linux/sched.h:PF_MEMALLOC_PIN.
	PFMemallocPin Flags = 0x10000000
)

// flagNames lists the flags String names, in value order.
var flagNames = [...]struct {
	f    Flags
	name string
}{
	{PFExiting, "PF_EXITING"},
	{PFWQWorker, "PF_WQ_WORKER"},
	{PFDumpCore, "PF_DUMPCORE"},
	{PFMemalloc, "PF_MEMALLOC"},
	{PFKcompactd, "PF_KCOMPACTD"},
	{PFKswapd, "PF_KSWAPD"},
	{PFMemallocNoFS, "PF_MEMALLOC_NOFS"},
	{PFMemallocNoIO, "PF_MEMALLOC_NOIO"},
	{PFKthread, "PF_KTHREAD"},
	{PFMemallocNoReclaim, "PF_MEMALLOC_NORECLAIM"},
	{PFMemallocNoWarn, "PF_MEMALLOC_NOWARN"},
	{PFMemallocPin, "PF_MEMALLOC_PIN"},
}

// String returns the flags as "|"-joined kernel names, with any flag mmsim
// does not name as one hex token at the end, and "0" for none.
func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	var b []byte
	for _, n := range flagNames {
		if f&n.f == 0 {
			continue
		}
		if len(b) > 0 {
			b = append(b, '|')
		}
		b = append(b, n.name...)
		f &^= n.f
	}
	if f != 0 {
		if len(b) > 0 {
			b = append(b, '|')
		}
		b = append(b, "0x"...)
		b = strconv.AppendUint(b, uint64(f), 16)
	}
	return string(b)
}
