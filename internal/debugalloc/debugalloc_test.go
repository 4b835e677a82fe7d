package debugalloc

import (
	"errors"
	"testing"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errNoMem = errors.New("no memory")

// fakePages records the masks of the pool allocations and fails when told.
type fakePages struct {
	masks []gfp.Mask
	fail  bool
	held  int
}

func (f *fakePages) AllocPages(_ *memalloc.Task, mask gfp.Mask, order zone.Order) (zone.Page, error) {
	f.masks = append(f.masks, mask)
	if f.fail {
		return zone.Page{}, errNoMem
	}
	f.held++
	return zone.Page{}, nil
}

func (f *fakePages) FreePages(*memalloc.Task, zone.Page, zone.Order) error {
	f.held--
	return nil
}

func TestPoolMasks(t *testing.T) {
	// Reference: include/linux/gfp.h:gfp_nested_mask(); lib/stackdepot.c
	// before v6.11 for the pre-fix filter.
	for _, tc := range []struct {
		name          string
		in            gfp.Mask
		nested, preFx gfp.Mask
	}{
		{"GFP_KERNEL keeps its reclaim bits and gains NORETRY, NOMEMALLOC, NOWARN",
			gfp.Kernel, 0x92cc0, 0x2cc0},
		{"GFP_NOFS|__GFP_NOLOCKDEP keeps NOLOCKDEP only with the nested mask",
			gfp.NoFS | gfp.NoLockdep, 0x1092c40, 0x2c40},
		{"GFP_ATOMIC keeps __GFP_HIGH either way",
			gfp.Atomic, 0x92820, 0x2820},
		{"zone and mobility bits are dropped either way",
			gfp.HighUserMovable | gfp.Zero, 0x92cc0, 0x2cc0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.nested, tc.in.Nested(), "nested %s", tc.in.Nested())
			assert.Equal(t, tc.preFx, PreFixMask(tc.in), "pre-fix %s", PreFixMask(tc.in))
		})
	}
}

func TestStackDepotPools(t *testing.T) {
	// Reference: lib/stackdepot.c:stack_depot_save_flags(), depot_init_pool().
	task := memalloc.NewTask("test")
	for _, preFix := range []bool{false, true} {
		fp := &fakePages{}
		d := NewStackDepot(fp, preFix)
		mask := gfp.NoFS | gfp.NoLockdep
		h := d.Save(task, []uintptr{1, 2, 3}, mask, true)
		require.NotZero(t, h)
		assert.Equal(t, h, d.Save(task, []uintptr{1, 2, 3}, mask, true), "a stack is stored once")
		require.Len(t, fp.masks, 1, "a known stack allocates nothing")
		require.NotZero(t, d.Save(task, []uintptr{4}, mask, true))
		require.Len(t, fp.masks, 2, "the first pool, then the spare allocated ahead of need")
		want := mask.Nested()
		if preFix {
			want = PreFixMask(mask)
		}
		assert.Equal(t, want, fp.masks[0])
		// Records of 64 frames take 32+512 bytes: 30 fit a 16 KiB pool.
		frames := make([]uintptr, 64)
		for i := 0; i < 40; i++ {
			frames[0] = uintptr(100 + i)
			require.NotZero(t, d.Save(task, frames, mask, true))
		}
		st := d.Stats()
		assert.Equal(t, 2, st.Pools, "the spare became the second pool")
		assert.Equal(t, 42, st.Records)
		assert.Equal(t, 3, fp.held, "two pools in use and a new spare")
	}
}

func TestStackDepotNeverAllocatesWithoutSpinning(t *testing.T) {
	// Reference: lib/stackdepot.c:stack_depot_save_flags() (can_alloc needs
	// gfpflags_allow_spinning); include/linux/gfp.h:gfpflags_allow_spinning().
	task := memalloc.NewTask("test")
	fp := &fakePages{}
	d := NewStackDepot(fp, false)
	assert.Zero(t, d.Save(task, []uintptr{1}, gfp.Zero, true), "no pool and no way to get one")
	assert.Empty(t, fp.masks)
	assert.Zero(t, d.Save(task, []uintptr{1}, gfp.Kernel, false), "without STACK_DEPOT_FLAG_CAN_ALLOC")
	assert.Empty(t, fp.masks)
	fp.fail = true
	assert.Zero(t, d.Save(task, []uintptr{1}, gfp.Kernel, true), "the pool allocation failed")
	assert.Equal(t, 1, d.Stats().PoolFailures)
}

func TestPageOwnerListNodes(t *testing.T) {
	// Reference: mm/page_owner.c:__set_page_owner(), save_stack(),
	// add_stack_record_to_list().
	task := memalloc.NewTask("test")
	for _, preFix := range []bool{false, true} {
		fp := &fakePages{}
		var kmasks []gfp.Mask
		var po *PageOwner
		kmalloc := func(t *memalloc.Task, size int, mask gfp.Mask) (uint64, error) {
			kmasks = append(kmasks, mask)
			// kmalloc's own slab page is traced too: a recursive
			// call gets the dummy handle.
			po.SetPageOwner(t, zone.Page{}, 0, mask)
			return 0x1000, nil
		}
		po = NewPageOwner(NewStackDepot(fp, preFix), kmalloc, preFix)
		mask := gfp.Kernel | gfp.NoLockdep
		po.SetPageOwner(task, zone.Page{}, 0, mask)
		st := po.Stats()
		// The stack's node, then the dummy stack's: its first use is
		// the nested kmalloc's own page, traced with the dummy handle.
		require.Equal(t, 2, st.ListNodes)
		assert.Equal(t, 2, st.Dummy, "the nested kmalloc's page is not traced again")
		want := mask.Nested()
		if preFix {
			want = PreFixMask(mask)
		}
		assert.Equal(t, want, kmasks[0])
		assert.Equal(t, want, fp.masks[0], "the depot pool has the same mask")
		po.SetPageOwner(task, zone.Page{}, 0, 0)
		st = po.Stats()
		assert.Equal(t, 1, st.ListSkipped, "a non-spinning context never allocates a list node")
		assert.Equal(t, 2, st.ListNodes)
	}
}

// fakeCache is kmemleak's object cache.
type fakeCache struct {
	masks []gfp.Mask
	fail  bool
	next  uint64
	live  int
}

func (c *fakeCache) Alloc(_ *memalloc.Task, mask gfp.Mask) (uint64, error) {
	c.masks = append(c.masks, mask)
	if c.fail {
		return 0, errNoMem
	}
	c.next += 256
	c.live++
	return c.next, nil
}

func (c *fakeCache) Free(*memalloc.Task, uint64) error { c.live--; return nil }

func TestKmemleak(t *testing.T) {
	// Reference: mm/kmemleak.c:mem_pool_alloc(), __alloc_object(),
	// kmemleak_disable().
	task := memalloc.NewTask("test")
	var reports []bug.Report
	c := &fakeCache{}
	k := NewKmemleak(c, 2, func(r bug.Report) { reports = append(reports, r) }, nil)

	k.Alloc(task, 0xa0, 64, gfp.NoIO|gfp.Zero|gfp.Account)
	assert.Equal(t, (gfp.NoIO | gfp.Zero | gfp.Account).Nested(), c.masks[0])
	assert.Equal(t, gfp.NoIO|gfp.NoRetry|gfp.NoMemalloc|gfp.NoWarn, c.masks[0], "NOIO kept, NORETRY|NOMEMALLOC|NOWARN added")
	assert.Equal(t, 1, c.live)

	c.fail = true
	k.Alloc(task, 0xb0, 64, gfp.Kernel)
	k.Alloc(task, 0xc0, 64, gfp.Kernel)
	st := k.Stats()
	assert.Equal(t, 2, st.FromPool)
	assert.Zero(t, st.PoolFree)
	assert.False(t, st.Disabled)
	k.Free(task, 0xb0)
	assert.Equal(t, 1, k.Stats().PoolFree, "a pool object goes back to the pool")
	k.Alloc(task, 0xd0, 64, gfp.Kernel)
	k.Alloc(task, 0xe0, 64, gfp.Kernel)
	st = k.Stats()
	assert.True(t, st.Disabled)
	require.Len(t, reports, 3)
	assert.Equal(t, "Memory pool empty, consider increasing CONFIG_DEBUG_KMEMLEAK_MEM_POOL_SIZE", reports[0].Text)
	assert.Equal(t, "Kernel memory leak detector disabled", reports[2].Text)
	n := len(c.masks)
	k.Alloc(task, 0xf0, 64, gfp.Kernel)
	assert.Len(t, c.masks, n, "a disabled kmemleak tracks nothing")
	k.Free(task, 0xa0)
	assert.Zero(t, c.live)
}
