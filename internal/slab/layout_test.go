package slab

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLayoutMatchesRealSlabinfo creates caches as the kernel creates them
// (object size as the tracepoints report it in bytes_req, alignment and
// flags from the kernel source) on a 2-CPU machine, as the captured
// machine was, and checks <objsize> <objperslab> <pagesperslab> against
// the real /proc/slabinfo. The kmalloc caches come from New.
//
// Reference: mm/slub.c:calculate_sizes(), calculate_order();
// mm/slab_common.c:calculate_alignment(), create_kmalloc_caches().
func TestLayoutMatchesRealSlabinfo(t *testing.T) {
	real := map[string]slabinfoLine{}
	for _, l := range parseSlabinfo(t, readTestdata(t, "slabinfo_rest_end.txt")) {
		real[l.name] = l
	}
	tests := []struct {
		name  string
		size  int // s->object_size: bytes_req of kmem_cache_alloc in slab_mix
		args  CacheArgs
		flags Flags
	}{
		// kernel/pid.c:pid_idr_init(); __alignof__(struct pid) is 8.
		{name: "pid", size: 184, args: CacheArgs{Align: 8}, flags: HWCacheAlign | Panic | Account},
		// kernel/signal.c:signals_init(): KMEM_CACHE(sigqueue).
		{name: "sigqueue", size: 80, args: CacheArgs{Align: 8}, flags: Panic | Account},
		// kernel/fork.c:proc_caches_init().
		{name: "signal_cache", size: 1152, flags: HWCacheAlign | Panic | Account},
		{name: "sighand_cache", size: 2080, args: CacheArgs{Ctor: true}, flags: HWCacheAlign | Panic | TypesafeByRCU | Account},
		{name: "files_cache", size: 704, flags: HWCacheAlign | Panic | Account},
		{name: "mm_struct", size: 1568, flags: HWCacheAlign | Panic | Account},
		// mm/vma_init.c:vma_state_init(): the free pointer sits in the
		// object (its offset does not change the layout).
		{name: "vm_area_struct", size: 192, args: CacheArgs{UseFreeptrOffset: true, FreeptrOffset: 64},
			flags: HWCacheAlign | Panic | TypesafeByRCU | Account},
		// mm/rmap.c:anon_vma_init().
		{name: "anon_vma", size: 96, args: CacheArgs{Ctor: true}, flags: TypesafeByRCU | Panic | Account},
		{name: "anon_vma_chain", size: 64, args: CacheArgs{Align: 8}, flags: Panic | Account},
		// lib/maple_tree.c:maple_tree_init(): aligned to its size.
		{name: "maple_node", size: 256, args: CacheArgs{Align: 256}, flags: Panic},
		// lib/radix-tree.c:radix_tree_init().
		{name: "radix_tree_node", size: 576, args: CacheArgs{Ctor: true}, flags: Panic | ReclaimAccount},
		// fs/proc/inode.c:proc_init_kmemcache().
		{name: "proc_inode_cache", size: 688, args: CacheArgs{Ctor: true}, flags: ReclaimAccount | Account | Panic},
		{name: "pde_opener", size: 40, flags: Account | Panic},
		// fs/dcache.c:vfs_caches_init() (PATH_MAX), not in the trimmed tree.
		{name: "names_cache", size: 4096, flags: HWCacheAlign | Panic},
	}
	m := newMachine(t, false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, ok := real[tt.name]
			require.True(t, ok, "testdata has no %s line", tt.name)
			c, err := m.s.CreateCacheArgs(tt.name, tt.size, tt.args, tt.flags)
			require.NoError(t, err)
			require.Equal(t, []int{want.objsize, want.perslab, want.pages},
				[]int{c.Size(), c.ObjectsPerSlab(), 1 << c.Order()}, "objsize objperslab pagesperslab")
		})
	}
	n := 0
	for name, want := range real {
		if !strings.Contains(name, "kmalloc") {
			continue
		}
		n++
		c := m.s.Cache(name)
		require.NotNil(t, c, name)
		require.Equal(t, []int{want.objsize, want.perslab, want.pages},
			[]int{c.Size(), c.ObjectsPerSlab(), 1 << c.Order()}, name)
	}
	require.Equal(t, 4*13, n, "kmalloc caches in testdata")
}

// TestCalculateOrderDependsOnCPUs checks min_objects = 4*(fls(cpus)+1):
// kmalloc-256 fits 16 objects in one page, enough for 2 CPUs (12) but not
// for 64 (32), where it takes an order-1 slab.
//
// Reference: mm/slub.c:calculate_order().
func TestCalculateOrderDependsOnCPUs(t *testing.T) {
	tests := []struct {
		name      string
		cpus      int
		size      int
		wantOrder int
	}{
		{name: "two CPUs keep kmalloc-256 at order 0", cpus: 2, size: 256, wantOrder: 0},
		{name: "64 CPUs raise kmalloc-256 to order 1", cpus: 64, size: 256, wantOrder: 1},
		{name: "one CPU takes min_objects 8", cpus: 1, size: 512, wantOrder: 0},
		{name: "an object above slub_max_order falls back to get_order", cpus: 2, size: 40000, wantOrder: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, ok := calculateOrder(tt.size, slubMinObjects(tt.cpus))
			require.True(t, ok)
			require.Equal(t, tt.wantOrder, int(o))
		})
	}
}
