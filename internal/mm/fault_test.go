package mm

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/zone"
)

// TestFaultOOMOutcomes fails a write fault's page allocation (the
// allocator's pre-allocation hook, as fail_page_alloc would) and checks
// what the task sees: a VM_DROPPABLE mapping's VM_FAULT_OOM is stripped —
// no page installed, nothing charged, no report, the access retried (or,
// with the v14 what-if, the write lost) — while an ordinary mapping's
// reaches pagefault_out_of_memory, which warns and retries.
//
// Reference: mm/memory.c:handle_mm_fault() (is_droppable),
// mm/oom_kill.c:pagefault_out_of_memory().
func TestFaultOOMOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		flags     MapFlags
		writeLost bool
		want      Outcome
		fault     FaultResult
		report    bool
	}{
		{"a droppable mapping's fault is retried", MapDroppable | MapAnonymous, false, AccessRetried, 0, false},
		{"the v14 what-if loses the write", MapDroppable | MapAnonymous, true, AccessWriteLost, 0, false},
		{"an ordinary mapping's VM_FAULT_OOM reaches the #PF handler", MapPrivate | MapAnonymous, false, AccessOOM, VMFaultOOM, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, m := secretMachine(t, 4096)
			var reports []string
			m.SetReport(func(_ *Proc, kind bug.Kind, site, text string) {
				if kind == bug.Info {
					reports = append(reports, text)
				}
			})
			m.SetFaultOptions(FaultOptions{DroppableWriteLost: tc.writeLost})
			p := secretProc(t, m, "p", 0, 0)
			addr, err := m.Mmap(p, MmapRequest{Len: 4 << pageShift, Prot: ProtRead | ProtWrite, Flags: tc.flags})
			require.NoError(t, err)
			require.Equal(t, AccessOK, touch(t, m, p, addr, 0).Outcome, "the first page (and its page table) faults in")
			a.SetHooks(failHooks{fail: func(mask gfp.Mask, _ zone.Order) bool { return mask&gfp.Movable != 0 }})
			res := touch(t, m, p, addr, 1)
			require.Equal(t, tc.want, res.Outcome)
			require.True(t, res.Faulted)
			require.Equal(t, tc.fault, res.Fault)
			require.ErrorIs(t, res.Err, zone.ErrNoMemory)
			require.Equal(t, int64(1), p.MM.Counter(MMAnonPages), "no page installed")
			if tc.report {
				require.Equal(t, []string{"Huh VM_FAULT_OOM leaked out to the #PF handler. Retrying PF"}, reports)
			} else {
				require.Empty(t, reports)
			}
			a.SetHooks(nil)
			res = touch(t, m, p, addr, 1)
			require.Equal(t, AccessOK, res.Outcome, "the retried access succeeds once memory is there")
			r, err := m.Access(p, addr+pageSize, false, 0)
			require.NoError(t, err)
			require.Equal(t, uint64(2), r.Value)
		})
	}
}

// TestShmemPartialMunmap unmaps half of a shared anonymous mapping: the
// split part keeps its own reference to the shmem file, so the other
// half's pages and contents stay until the last mapping goes.
//
// Reference: mm/vma.c:__split_vma() (get_file), mm/shmem.c:shmem_evict_inode().
func TestShmemPartialMunmap(t *testing.T) {
	a, m := secretMachine(t, 4096)
	p := secretProc(t, m, "p", 0, 0)
	before := freePages(a)
	addr, err := m.Mmap(p, MmapRequest{Len: 2 << pageShift, Prot: ProtRead | ProtWrite, Flags: MapShared | MapAnonymous})
	require.NoError(t, err)
	touch(t, m, p, addr, 0)
	touch(t, m, p, addr, 1)
	require.Equal(t, int64(2), p.MM.Counter(MMShmemPages))
	require.NoError(t, m.Munmap(p, addr, pageSize))
	r, err := m.Access(p, addr+pageSize, false, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(2), r.Value, "the second page survives")
	nd := a.Nodes()[0]
	require.Equal(t, int64(2), nd.State(zone.NodeNrShmem), "the file is not gone")
	require.NoError(t, m.Munmap(p, addr+pageSize, pageSize))
	require.Zero(t, nd.State(zone.NodeNrShmem))
	require.Zero(t, nd.State(zone.NodeNrMapped))
	require.Zero(t, m.Committed())
	a.DrainAllPages(p.Task)
	require.Equal(t, before, freePages(a), "every page back, the page table too")
}
