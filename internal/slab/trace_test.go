package slab

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

var pageAllocRe = regexp.MustCompile(`order=(\d+) migratetype=(\d+) gfp_flags=(\S+)$`)

// TestSlabPageMasksMatchCaptures allocates the first object of a cache
// with a caller's mask and checks the new slab's mm_page_alloc (order,
// migratetype, gfp_flags) against real lines of the shared captures.
//
// Reference: mm/slub.c:new_slab(), allocate_slab().
func TestSlabPageMasksMatchCaptures(t *testing.T) {
	real := strings.Split(strings.TrimRight(readTestdata(t, "slab_page_masks.txt"), "\n"), "\n")
	find := func(flags string) []string {
		for _, l := range real {
			if m := pageAllocRe.FindStringSubmatch(l); m != nil && m[3] == flags {
				return m[1:]
			}
		}
		t.Fatalf("no real line with gfp_flags=%s", flags)
		return nil
	}
	tests := []struct {
		name string
		// A cache made like this kernel cache, and the caller's mask.
		size  int
		args  CacheArgs
		flags Flags
		mask  gfp.Mask
		want  string // the real gfp_flags
	}{
		{name: "GFP_NOWAIT on an order-1 reclaimable cache keeps its one reclaim bit",
			size: 576, args: CacheArgs{Ctor: true}, flags: ReclaimAccount, mask: gfp.NoWait,
			want: "GFP_NOWAIT|__GFP_RECLAIMABLE|__GFP_NORETRY|__GFP_COMP"},
		{name: "GFP_NOFS above the minimum order drops reclaim and adds NOMEMALLOC",
			size: 688, args: CacheArgs{Ctor: true}, flags: ReclaimAccount | Account, mask: gfp.NoFS,
			want: "__GFP_RECLAIMABLE|__GFP_IO|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_NOMEMALLOC"},
		{name: "GFP_NOFS at order 0 keeps reclaim",
			size: 64, flags: 0, mask: gfp.NoFS,
			want: "GFP_NOFS|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP"},
		{name: "GFP_KERNEL on an order-0 reclaimable cache keeps reclaim",
			size: 64, flags: ReclaimAccount, mask: gfp.Kernel,
			want: "GFP_KERNEL|__GFP_RECLAIMABLE|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP"},
		{name: "GFP_ATOMIC on an order-0 reclaimable cache",
			size: 64, flags: ReclaimAccount, mask: gfp.Atomic,
			want: "GFP_ATOMIC|__GFP_RECLAIMABLE|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP"},
		{name: "GFP_NOFS on an order-0 reclaimable cache",
			size: 64, flags: ReclaimAccount, mask: gfp.NoFS,
			want: "GFP_NOFS|__GFP_RECLAIMABLE|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP"},
		{name: "__GFP_ZERO and __GFP_ACCOUNT do not reach the page allocator",
			size: 64, flags: 0, mask: gfp.NoFS | gfp.Zero | gfp.Account,
			want: "GFP_NOFS|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t, true)
			c, err := m.s.CreateCacheArgs("test", tt.size, tt.args, tt.flags)
			require.NoError(t, err)
			m.takeEvents()
			_, err = c.Alloc(memalloc.NewTask("t"), tt.mask)
			require.NoError(t, err)
			var got []string
			for _, ev := range m.takeEvents() {
				if ev.Kind == zone.EvPageAlloc {
					got = []string{strconv.Itoa(int(ev.Order)), strconv.Itoa(int(ev.Migratetype)), ev.Mask.String()}
				}
			}
			require.Equal(t, find(tt.want), got)
		})
	}
}

// TestSlabPageMasksFallback checks the two attempts' masks: NOFAIL is
// stripped from the first and kept in the min-order retry, which has no
// NOWARN/NORETRY of its own.
//
// Reference: mm/slub.c:allocate_slab() (ORDER_FALLBACK).
func TestSlabPageMasksFallback(t *testing.T) {
	m := newMachine(t, false)
	c, err := m.s.CreateCacheArgs("test", 688, CacheArgs{Ctor: true}, ReclaimAccount)
	require.NoError(t, err)
	require.Equal(t, zone.Order(2), c.Order())
	require.Equal(t, zone.Order(0), c.MinOrder())
	first, fallback := c.slabPageMasks(gfp.Kernel | gfp.NoFail | gfp.Zero | gfp.HighMem)
	require.Equal(t, "__GFP_RECLAIMABLE|__GFP_IO|__GFP_FS|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_NOMEMALLOC", first.String())
	require.Equal(t, "GFP_KERNEL|__GFP_RECLAIMABLE|__GFP_NOFAIL|__GFP_COMP", fallback.String())
}

var perfHead = regexp.MustCompile(`^\s*(.+?)\s+(\d+) \[(\d+)\]\s+(\d+)\.(\d+):\s+(\S+): (.*)$`)
var ptrRe = regexp.MustCompile(`ptr=0x[0-9a-f]+`)

// TestTraceLinesMatchCapture replays real slab_mix lines on the simulator
// and checks that each event prints exactly as perf printed it, but for
// comm, pid, CPU and time (taken from the line) and the pointer.
//
// Reference: include/trace/events/kmem.h (kmalloc, kfree, kmem_cache_alloc,
// kmem_cache_free); mm/slub.c:kfree() (traced before the NULL check).
func TestTraceLinesMatchCapture(t *testing.T) {
	m := newMachine(t, true)
	for _, c := range []struct {
		name  string
		size  int
		args  CacheArgs
		flags Flags
	}{
		{"names_cache", 4096, CacheArgs{}, HWCacheAlign | Panic},
		// fs/file_table.c:files_init() (upstream; not in the trimmed tree).
		{"filp", 184, CacheArgs{UseFreeptrOffset: true, FreeptrOffset: 8}, HWCacheAlign | Panic | Account | TypesafeByRCU},
		{"sigqueue", 80, CacheArgs{Align: 8}, Panic | Account},
		{"pid", 184, CacheArgs{Align: 8}, HWCacheAlign | Panic | Account},
		{"anon_vma", 96, CacheArgs{Ctor: true}, TypesafeByRCU | Panic | Account},
	} {
		_, err := m.s.CreateCacheArgs(c.name, c.size, c.args, c.flags)
		require.NoError(t, err)
	}
	kv := regexp.MustCompile(`(\w+)=(\S+)`)
	live := map[string]uint64{} // real ptr → simulated address
	for _, line := range strings.Split(strings.TrimRight(readTestdata(t, "slab_mix_lines.txt"), "\n"), "\n") {
		h := perfHead.FindStringSubmatch(line)
		require.NotNil(t, h, line)
		f := map[string]string{}
		for _, m := range kv.FindAllStringSubmatch(h[7], -1) {
			f[m[1]] = m[2]
		}
		pid, _ := strconv.Atoi(h[2])
		cpu, _ := strconv.Atoi(h[3])
		tk := memalloc.NewTaskWith(h[1], memalloc.WithPID(pid), memalloc.WithCPU(cpu%2))
		mask, err := gfp.Parse(f["gfp_flags"])
		if f["gfp_flags"] == "" {
			mask, err = 0, nil
		}
		require.NoError(t, err)
		m.takeEvents()
		switch h[6] {
		case "kmem:kmalloc":
			req, _ := strconv.Atoi(f["bytes_req"])
			addr, err := m.s.KmallocSite(tk, f["call_site"], req, mask)
			require.NoError(t, err)
			live[f["ptr"]] = addr
		case "kmem:kmem_cache_alloc":
			addr, err := m.s.Cache(f["name"]).AllocSite(tk, f["call_site"], mask)
			require.NoError(t, err)
			live[f["ptr"]] = addr
		case "kmem:kfree":
			addr := live[f["ptr"]]
			if f["ptr"] != "(nil)" && addr == 0 {
				addr, _ = m.s.Kmalloc(tk, 32, gfp.Kernel) // allocated before the capture
				m.takeEvents()
			}
			require.NoError(t, m.s.KfreeSite(tk, f["call_site"], addr))
		case "kmem:kmem_cache_free":
			c := m.s.Cache(f["name"])
			addr := live[f["ptr"]]
			if addr == 0 {
				addr, _ = c.Alloc(tk, gfp.Kernel)
				m.takeEvents()
			}
			require.NoError(t, c.FreeSite(tk, f["call_site"], addr))
		}
		var got *zone.Event
		for _, ev := range m.takeEvents() {
			if ev.Kind >= zone.EvKmalloc && ev.Kind <= zone.EvKmemCacheFree {
				require.Nil(t, got, "one slab event per call: %s", line)
				ev := ev
				got = &ev
			}
		}
		require.NotNil(t, got, line)
		got.CPU = cpu
		sec, _ := strconv.ParseInt(h[4], 10, 64)
		usec, _ := strconv.ParseInt(h[5], 10, 64)
		got.Time = sec*1e9 + usec*1e3
		want := line
		if got.Ptr != 0 {
			want = ptrRe.ReplaceAllString(line, "ptr=0x"+strconv.FormatUint(got.Ptr, 16))
		}
		require.Equal(t, want, got.Format(31))
	}
}
