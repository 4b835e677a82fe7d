package memalloc_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/memalloc"
)

// TestFlagValues pins the PF_* values, the two reverted ones at their
// 6.9–6.11 values (holes in 7.2).
//
// Reference: include/linux/sched.h (PF_*); commit eab0af905bfc for the
// reverted PF_MEMALLOC_NORECLAIM and PF_MEMALLOC_NOWARN.
func TestFlagValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  memalloc.Flags
		want memalloc.Flags
	}{
		{"PF_EXITING", memalloc.PFExiting, 0x4},
		{"PF_WQ_WORKER", memalloc.PFWQWorker, 0x20},
		{"PF_DUMPCORE", memalloc.PFDumpCore, 0x200},
		{"PF_MEMALLOC", memalloc.PFMemalloc, 0x800},
		{"PF_KCOMPACTD", memalloc.PFKcompactd, 0x10000},
		{"PF_KSWAPD", memalloc.PFKswapd, 0x20000},
		{"PF_MEMALLOC_NOFS", memalloc.PFMemallocNoFS, 0x40000},
		{"PF_MEMALLOC_NOIO", memalloc.PFMemallocNoIO, 0x80000},
		{"PF_KTHREAD", memalloc.PFKthread, 0x200000},
		{"PF_MEMALLOC_NORECLAIM", memalloc.PFMemallocNoReclaim, 0x800000}, // reverted in v6.12-rc3
		{"PF_MEMALLOC_NOWARN", memalloc.PFMemallocNoWarn, 0x1000000},      // reverted in v6.12-rc3
		{"PF_MEMALLOC_PIN", memalloc.PFMemallocPin, 0x10000000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.got)
			require.Equal(t, tc.name, tc.got.String())
		})
	}
	require.Equal(t, "0", memalloc.Flags(0).String())
	require.Equal(t, "PF_MEMALLOC|PF_MEMALLOC_NOFS|0x40000000", (memalloc.PFMemallocNoFS | memalloc.PFMemalloc | 0x40000000).String())
}

// TestNewTask checks what a new task carries: no PF flags, the kernel's comm
// truncation, and the options the System uses.
//
// Reference: include/linux/sched.h:TASK_COMM_LEN.
func TestNewTask(t *testing.T) {
	tk := memalloc.NewTask("writer")
	require.Equal(t, "writer", tk.Comm())
	require.Zero(t, tk.Flags(), "a new task has no PF flags")
	require.Zero(t, tk.PID())
	require.Zero(t, tk.CPU())
	require.NoError(t, tk.Err())
	require.Equal(t, "writer[0]", tk.String())

	long := memalloc.NewTask("kworker/u8:3-events_unbound")
	require.Equal(t, "kworker/u8:3-ev", long.Comm(), "comm keeps TASK_COMM_LEN-1 = 15 bytes, as perf shows")

	k := memalloc.NewTaskWith("kswapd0", memalloc.WithPID(42), memalloc.WithCPU(1),
		memalloc.WithFlags(memalloc.PFKthread|memalloc.PFKswapd|memalloc.PFMemalloc))
	require.Equal(t, 42, k.PID())
	require.Equal(t, 1, k.CPU())
	require.Equal(t, memalloc.PFKthread|memalloc.PFKswapd|memalloc.PFMemalloc, k.Flags())
	k.SetCPU(0)
	require.Zero(t, k.CPU())

	// exec renames the task, to at most 15 bytes; readers on other
	// goroutines see one name or the other (the race detector checks).
	sh := memalloc.NewTaskWith("sh", memalloc.WithPID(7))
	done := make(chan string)
	go func() { done <- sh.Comm() }()
	sh.SetComm("tar")
	require.Contains(t, []string{"sh", "tar"}, <-done)
	require.Equal(t, "tar[7]", sh.String())
	sh.SetComm("systemd-journald-worker")
	require.Equal(t, "systemd-journal", sh.Comm())
}

// TestTaskContext checks that a context carries the task itself.
func TestTaskContext(t *testing.T) {
	tk := memalloc.NewTask("ctx")
	ctx := memalloc.WithTask(context.Background(), tk)
	require.Same(t, tk, memalloc.TaskFrom(ctx))
	require.Nil(t, memalloc.TaskFrom(context.Background()))

	// The context carries the task, not a snapshot of its flags.
	defer tk.Restore(tk.SaveNoFS())
	require.Equal(t, memalloc.PFMemallocNoFS, memalloc.TaskFrom(ctx).Flags())
}
