package mmsim_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
)

// The README's library example: an allocation, a NOFS scope, and what
// Explain says of an allocation made inside it.
func ExampleSystem_nofsScope() {
	s, _ := mmsim.New(mmsim.DefaultConfig()) // x86_64, 8 GiB, two CPUs, DMA/DMA32/Normal
	defer s.Close()
	t := s.NewTask("xfs_writer")

	p, _ := s.AllocPages(t, gfp.Kernel, 0) // alloc_pages(GFP_KERNEL, 0)
	fmt.Println(s.ZoneOf(p).Name())        // Normal
	s.FreePages(t, p, 0)

	cookie := t.SaveNoFS() // memalloc_nofs_save(): the inode lock is held
	fmt.Println(t.GFPContext(gfp.Kernel | gfp.Zero))
	e, _ := s.Explain(t, gfp.Kernel, 3) // what the allocator did, and why
	fmt.Println(e.Effective, e.Scopes[0])
	fmt.Println(e.Outcome, e.Zone)
	s.FreePages(t, e.Page, 3)
	t.Restore(cookie)

	s.WriteBuddyinfo(io.Discard) // /proc/buddyinfo, in the kernel's layout
	// Output:
	// Normal
	// GFP_NOFS|__GFP_ZERO
	// GFP_NOFS __GFP_FS removed by PF_MEMALLOC_NOFS
	// page from the fast path Node 0, zone Normal
}

// TestReadmeNOFSNeverOOMKills is the README's semantics test, kept honest
// here: on a machine full of anonymous memory and without swap, a NOFS
// allocation never invokes the OOM killer — it loops until the machine's
// StallLimit calls it a livelock — while a GFP_KERNEL one kills.
func TestReadmeNOFSNeverOOMKills(t *testing.T) {
	cfg := mmsim.SmallConfig(61440, 60416) // a 256 MiB machine, no swap
	cfg.Seed = 1
	s, err := mmsim.New(cfg)
	require.NoError(t, err)
	defer s.Close()

	hog := s.NewTask("hog")
	_, err = s.TouchAnon(hog, 61440) // anonymous memory until the machine is nearly full
	require.NoError(t, err)

	fs := s.NewTask("xfs_writer")
	cookie := fs.SaveNoFS() // the inode lock is held
	for err == nil {
		_, err = s.AllocPages(fs, gfp.Kernel, 0) // GFP_KERNEL, made GFP_NOFS by the scope
	}
	fs.Restore(cookie)
	require.ErrorIs(t, err, mmsim.ErrDeadlock) // looped for Config.StallLimit: no OOM kill
	require.False(t, s.Killed(hog))

	_, err = s.AllocPages(s.NewTask("kworker"), gfp.Kernel, 0)
	require.NoError(t, err) // GFP_KERNEL may OOM-kill: the hog goes
	require.True(t, s.Killed(hog))
	var vmstat bytes.Buffer
	require.NoError(t, s.WriteVmstat(&vmstat))
	require.Contains(t, vmstat.String(), "\noom_kill 1\n")
}
