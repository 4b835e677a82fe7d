package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/testutil"
)

// TestBundled compares the report on the bundled capture with its golden file
// (regenerate with make golden and review the diff).
func TestBundled(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(&out, nil, nil))
	testutil.Golden(t, "bundled", out.Bytes())
}

// TestStdinAndFile reads the same two real lines from standard input and from
// a file, and checks the numbers the report gives.
func TestStdinAndFile(t *testing.T) {
	const text = `# a perf header line
      anon_touch 12317 [001]   356.376714:             kmem:mm_page_alloc: page=0x13e094 pfn=0x13e094 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP
 kworker/u8:3-ev   123 [000]   356.400000:                  kmem:kmalloc: call_site=x+0x1 ptr=0xffff888102c8ab80 bytes_req=32 bytes_alloc=32 gfp_flags=GFP_NOFS|__GFP_NOFAIL node=-1 accounted=false
`
	path := filepath.Join(t.TempDir(), "two.txt")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	for name, args := range map[string][]string{"stdin": {"-"}, "file": {path}} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, run(&out, strings.NewReader(text), args))
			s := out.String()
			require.Contains(t, s, "2 events carry gfp_flags, 2 distinct masks")
			require.Contains(t, s, "GFP_NOFS|__GFP_NOFAIL\n  seen     1 (kmem:kmalloc 1)\n  value    0x8c40     zone Normal, Unmovable, blocks, no fs\n")
			// The NORECLAIM what-if turns the NOFAIL request into a non-blocking one.
			require.Contains(t, s, "PF_MEMALLOC_NORECLAIM (6.9-6.11 what-if)   0x8840 __GFP_IO|__GFP_KSWAPD_RECLAIM|__GFP_NOFAIL (zone Normal, Unmovable, never blocks, no fs)")
			require.Contains(t, s, "memalloc_nofs_save                         0x140d4a GFP_NOFS|__GFP_HIGHMEM|__GFP_MOVABLE|__GFP_ZERO|__GFP_COMP|__GFP_HARDWALL")
		})
	}
}

// TestBadInput checks that a mask the kernel would never print is an error
// naming the line and the token, and that bad usage is an error too.
func TestBadInput(t *testing.T) {
	var out bytes.Buffer
	err := run(&out, strings.NewReader("a 1 [000] 1.0: kmem:mm_page_alloc: gfp_flags=GFP_KERNEL|__GFP_BOGUS\n"), []string{"-"})
	require.ErrorIs(t, err, gfp.ErrUnknownFlag)
	require.ErrorContains(t, err, `standard input: line 1`)
	require.ErrorContains(t, err, `"__GFP_BOGUS"`)

	require.Error(t, run(&out, nil, []string{"a", "b"}))
	require.ErrorIs(t, run(&out, nil, []string{filepath.Join(t.TempDir(), "missing")}), os.ErrNotExist)
}
