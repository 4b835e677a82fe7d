package slab

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// TestShouldFailslab checks where should_failslab runs: at the entry of
// every object allocation of every cache, after gfp_allowed_mask, before
// any slab is touched; a failure is NULL (ErrNoMemory, traced ptr=(nil))
// and leaves the cache as it was. A large kmalloc never reaches it.
//
// Reference: mm/slub.c:slab_pre_alloc_hook(), ___kmalloc_large_node().
func TestShouldFailslab(t *testing.T) {
	m := newMachine(t, true)
	tk := memalloc.NewTask("t")
	type call struct {
		cache string
		mask  gfp.Mask
	}
	var calls []call
	fail := true
	m.s.SetShouldFailslab(func(_ *memalloc.Task, c *Cache, mask gfp.Mask) bool {
		calls = append(calls, call{c.Name(), mask})
		return fail
	})
	c, err := m.s.CreateCache("test_obj", 100, 0, NoLeakTrace)
	require.NoError(t, err)

	_, err = c.Alloc(tk, gfp.Kernel)
	require.ErrorIs(t, err, zone.ErrNoMemory)
	assert.Contains(t, err.Error(), "failslab")
	_, err = m.s.Kmalloc(tk, 64, gfp.NoFS)
	require.ErrorIs(t, err, zone.ErrNoMemory)
	slabs, objs := c.Slabs()
	assert.Zero(t, slabs+objs, "a failed allocation touches no slab")
	assert.Zero(t, m.slabPages(zone.NodeNrSlabUnreclaimable))
	ev := m.takeEvents()
	require.Len(t, ev, 2)
	assert.Zero(t, ev[0].Ptr, "kmem_cache_alloc traced ptr=(nil)")
	assert.Zero(t, ev[1].Ptr, "kmalloc traced ptr=(nil)")

	// A large kmalloc goes to the page allocator, not through the hook.
	addr, err := m.s.Kmalloc(tk, 3*zone.PageSize, gfp.Kernel)
	require.NoError(t, err)
	require.NoError(t, m.s.Kfree(tk, addr))

	fail = false
	addr, err = c.Alloc(tk, gfp.Kernel|gfp.Mask(1<<30))
	require.NoError(t, err)
	require.NoError(t, c.Free(tk, addr))
	assert.Equal(t, []call{{"test_obj", gfp.Kernel}, {"kmalloc-64", gfp.NoFS}, {"test_obj", gfp.Kernel}}, calls,
		"the hook sees the caller's mask cut to gfp_allowed_mask")
}

// TestFailslabFlag checks SLAB_FAILSLAB: kmem_cache_create refuses it,
// sysfs's failslab attribute sets and clears it, and Flags shows it.
//
// Reference: mm/slab.h:SLAB_FLAGS_PERMITTED, mm/slub.c:failslab_store().
func TestFailslabFlag(t *testing.T) {
	m := newMachine(t, false)
	_, err := m.s.CreateCache("bad", 64, 0, Failslab)
	require.ErrorIs(t, err, zone.ErrInvalid)
	c, err := m.s.CreateCache("obj", 64, 0, HWCacheAlign)
	require.NoError(t, err)
	c.SetFailslab(true)
	assert.Equal(t, HWCacheAlign|Failslab, c.Flags())
	assert.Equal(t, "SLAB_HWCACHE_ALIGN|SLAB_FAILSLAB", c.Flags().String())
	c.SetFailslab(false)
	assert.Equal(t, HWCacheAlign, c.Flags())
	// CONFIG_FAILSLAB=y: _SLAB_FAILSLAB follows _SLAB_NO_MERGE (12).
	assert.Equal(t, Flags(1<<13), Failslab)
	assert.Equal(t, Flags(1<<14), Account)
}

type tagRec struct {
	mu    sync.Mutex
	live  map[uint64]int
	calls int
}

func (h *tagRec) TagAlloc(_ *memalloc.Task, _ *Cache, addr uint64, bytes int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.live[addr] = bytes
	h.calls++
}

func (h *tagRec) TagFree(_ *memalloc.Task, _ *Cache, addr uint64, bytes int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.live[addr] != bytes {
		panic("TagFree of an untagged object")
	}
	delete(h.live, addr)
}

// TestTagHooks checks the allocation-profiling hooks: every object of a
// cache without SLAB_NO_OBJ_EXT or SLAB_NOLEAKTRACE is tagged with s->size
// and untagged at free; large kmallocs are not objects.
//
// Reference: mm/slub.c:__alloc_tagging_slab_alloc_hook(),
// __alloc_tagging_slab_free_hook().
func TestTagHooks(t *testing.T) {
	m := newMachine(t, false)
	tk := memalloc.NewTask("t")
	h := &tagRec{live: map[uint64]int{}}
	m.s.SetTagHooks(h)
	plain, err := m.s.CreateCache("plain", 100, 0, 0)
	require.NoError(t, err)
	quiet, err := m.s.CreateCache("quiet", 100, 0, NoLeakTrace)
	require.NoError(t, err)

	a, err := plain.Alloc(tk, gfp.Kernel)
	require.NoError(t, err)
	b, err := m.s.Kmalloc(tk, 33, gfp.Kernel)
	require.NoError(t, err)
	q, err := quiet.Alloc(tk, gfp.Kernel)
	require.NoError(t, err)
	big, err := m.s.Kmalloc(tk, 20000, gfp.Kernel)
	require.NoError(t, err)
	assert.Equal(t, map[uint64]int{a: plain.Size(), b: 64}, h.live)

	require.NoError(t, plain.Free(tk, a))
	require.NoError(t, m.s.Kfree(tk, b))
	require.NoError(t, quiet.Free(tk, q))
	require.NoError(t, m.s.Kfree(tk, big))
	assert.Empty(t, h.live)
	assert.Equal(t, 2, h.calls)
	// A bad free is refused before the hook.
	require.Error(t, m.s.Kfree(tk, b))
	assert.Empty(t, h.live)
}
