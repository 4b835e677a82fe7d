package mmsim_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// Seed debate 001: do the nested allocations of debug code — the stack
// depot's pools, page_owner's stack-list nodes, kmemleak's metadata —
// keep the caller's constraints (gfp_nested_mask)? Each test runs the fix
// and, where the model has it, the pre-fix what-if (Config.Debug.PreFix).

// debugChainLevels gives 1<<10 distinct call chains to debugFresh.
const debugChainLevels = 10

// debugFresh allocates an order-0 page for tk from a call chain no other
// allocation uses: each bit of chain picks one of two callers per level,
// so page_owner saves a new stack in the stack depot for each chain.
func debugFresh(s *mmsim.System, tk *memalloc.Task, mask gfp.Mask, chain uint, levels int) (zone.Page, error) {
	if levels == 0 {
		return s.AllocPages(tk, mask, 0)
	}
	if chain&1 == 0 {
		return debugViaLeft(s, tk, mask, chain>>1, levels-1)
	}
	return debugViaRight(s, tk, mask, chain>>1, levels-1)
}

//go:noinline
func debugViaLeft(s *mmsim.System, tk *memalloc.Task, mask gfp.Mask, chain uint, levels int) (zone.Page, error) {
	return debugFresh(s, tk, mask, chain, levels)
}

//go:noinline
func debugViaRight(s *mmsim.System, tk *memalloc.Task, mask gfp.Mask, chain uint, levels int) (zone.Page, error) {
	return debugFresh(s, tk, mask, chain, levels)
}

// debugInodeShrinker is XFS's inode cache as reclaim sees it: Scan takes
// the inode lock (in the reclaiming task, under fs_reclaim), and stops
// without __GFP_FS as super_cache_scan does.
type debugInodeShrinker struct {
	ilock   *mmsim.Lock
	objects uint64
	scans   int
}

func (sh *debugInodeShrinker) Count(*mmsim.ShrinkControl) uint64 { return sh.objects }
func (sh *debugInodeShrinker) Seeks() int                        { return 2 }
func (sh *debugInodeShrinker) Scan(sc *mmsim.ShrinkControl) uint64 {
	if sc.GFPMask&gfp.FS == 0 {
		return mmsim.ShrinkStop
	}
	if err := sh.ilock.Lock(sc.Task); err != nil {
		return mmsim.ShrinkStop
	}
	n := min(sc.NrToScan, sh.objects)
	sh.objects -= n
	sh.scans++
	_ = sh.ilock.Unlock(sc.Task)
	return n
}

// debugExhaust fills s with unreclaimable pages: GFP_KERNEL|__GFP_NORETRY
// until it fails (near min), then GFP_ATOMIC until that fails too (below
// min), and drains the per-cpu lists so that a zone's free count is all
// its free pages.
func debugExhaust(t *testing.T, s *mmsim.System) {
	t.Helper()
	hog := s.NewTask("hog")
	for _, mask := range []gfp.Mask{gfp.Kernel | gfp.NoRetry | gfp.NoWarn, gfp.Atomic | gfp.NoWarn} {
		for {
			_, err := s.AllocPages(hog, mask, 0)
			if errors.Is(err, mmsim.ErrNoMemory) {
				break
			}
			require.NoError(t, err)
		}
	}
	require.NoError(t, s.DrainAllPages(hog))
}

// TestDebugPoolAllocationKeepsNoLockdep: XFS allocates with
// GFP_KERNEL|__GFP_NOLOCKDEP while holding an inode lock that its shrinker
// takes in reclaim (lockdep has seen fs_reclaim → xfs_ilock). When
// page_owner's stack depot allocates a pool for that allocation, the pool's
// nested mask keeps __GFP_NOLOCKDEP and lockdep stays quiet; with the
// pre-fix mask the pool allocation takes fs_reclaim under xfs_ilock and
// lockdep reports a circular dependency — the false positive the fix
// removed. The same allocation without __GFP_NOLOCKDEP is reported in
// either case, which shows the dependency was there to find.
//
// Reference: include/linux/gfp.h:gfp_nested_mask(),
// lib/stackdepot.c:stack_depot_save_flags(), mm/page_owner.c:save_stack(),
// mm/page_alloc.c:fs_reclaim_acquire(), kernel/locking/lockdep.c:check_noncircular().
func TestDebugPoolAllocationKeepsNoLockdep(t *testing.T) {
	for _, preFix := range []bool{false, true} {
		name := map[bool]string{false: "nested mask", true: "pre-fix"}[preFix]
		t.Run(name, func(t *testing.T) {
			cfg := smallConfig(16384)
			cfg.Lockdep = true
			cfg.Debug = mmsim.DebugConfig{PageOwner: true, PreFix: preFix}
			s := newSystem(t, cfg)
			ilock := s.NewLock("xfs_ilock")
			sh := &debugInodeShrinker{ilock: ilock, objects: 1 << 20}
			s.RegisterShrinker(sh)

			// Reclaim runs the shrinker; then the anonymous memory goes,
			// so that the allocations below need no reclaim.
			filler, reader := s.NewTask("filler"), s.NewTask("reader")
			_, err := s.TouchAnon(filler, 12000)
			require.NoError(t, err)
			_, err = s.ReadFile(reader, s.NewFile("data", 0), 0, 12000)
			require.NoError(t, err)
			require.NoError(t, s.Exit(filler))
			require.Positive(t, sh.scans, "reclaim ran the shrinker: lockdep saw fs_reclaim → xfs_ilock")
			require.Zero(t, s.LockdepReports())

			xfs := s.NewTask("xfs_io")
			require.NoError(t, ilock.Lock(xfs))
			before := s.DebugStats().StackDepot
			for chain := uint(0); s.DebugStats().StackDepot.PoolAllocs == before.PoolAllocs; chain++ {
				require.Less(t, chain, uint(1<<debugChainLevels), "the stack depot never needed a pool")
				_, err := debugFresh(s, xfs, gfp.Kernel|gfp.NoLockdep, chain, debugChainLevels)
				require.NoError(t, err)
			}
			st := s.DebugStats().StackDepot
			require.NoError(t, ilock.Unlock(xfs))
			assert.Equal(t, before.PoolFailures, st.PoolFailures, "the pool allocation succeeded")

			if !preFix {
				assert.Equal(t, gfp.Kernel|gfp.NoLockdep|gfp.NoRetry|gfp.NoMemalloc|gfp.NoWarn, st.LastPoolMask,
					"pool mask %v", st.LastPoolMask)
				assert.Zero(t, s.LockdepReports(), "__GFP_NOLOCKDEP reached the nested allocation")

				// Control: the caller's allocation itself without
				// __GFP_NOLOCKDEP is reported.
				require.NoError(t, ilock.Lock(xfs))
				_, err := s.AllocPages(xfs, gfp.Kernel, 0)
				require.NoError(t, err)
				require.NoError(t, ilock.Unlock(xfs))
				assert.Equal(t, 1, s.LockdepReports(), "GFP_KERNEL under xfs_ilock closes the cycle")
				return
			}
			assert.Equal(t, gfp.Kernel|gfp.NoWarn, st.LastPoolMask, "pool mask %v", st.LastPoolMask)
			assert.Equal(t, 1, s.LockdepReports())
			var found bool
			for _, r := range reportsSince(s, 0, mmsim.ReportWarn) {
				if !strings.Contains(r.Text, "WARNING: possible circular locking dependency detected") {
					continue
				}
				found = true
				assert.Equal(t, "xfs_io", r.Comm)
				assert.Contains(t, r.Text, "(fs_reclaim)", "the lock being acquired")
				_, held, _ := strings.Cut(r.Text, "but task is already holding lock:\n")
				held, _, _ = strings.Cut(held, "\n")
				assert.Contains(t, held, "(xfs_ilock)")
				_, bt, _ := strings.Cut(r.Text, "stack backtrace:\n")
				// page_owner's list-node kmalloc (might_alloc at slab's
				// entry) or the stack depot's pool: a nested debug
				// allocation, not the caller's, took fs_reclaim.
				assert.True(t, strings.Contains(bt, "StackDepot).Save") || strings.Contains(bt, "addStackRecordToList"),
					"a nested debug allocation took fs_reclaim:\n%s", bt)
			}
			assert.True(t, found, "a circular locking report in %v", s.Reports())
		})
	}
}

// TestDebugAllocationsStayOutOfTheReserves: with free memory below the
// min watermark, a PF_MEMALLOC task (reclaim itself) allocates pages,
// each from a new stack. The task may use the reserves; page_owner's
// nested allocations may not: with the nested mask (__GFP_NOMEMALLOC)
// every stack depot pool and every stack-list node fails and the debug
// code takes no page, while with the pre-fix mask they succeed from the
// reserves and free memory drops further by their pages.
//
// Reference: include/linux/gfp.h:gfp_nested_mask(),
// mm/page_alloc.c:gfp_pfmemalloc_allowed(), __gfp_pfmemalloc_flags(),
// lib/stackdepot.c:stack_depot_save_flags(),
// mm/page_owner.c:add_stack_record_to_list().
func TestDebugAllocationsStayOutOfTheReserves(t *testing.T) {
	const n = 64
	for _, preFix := range []bool{false, true} {
		name := map[bool]string{false: "nested mask", true: "pre-fix"}[preFix]
		t.Run(name, func(t *testing.T) {
			cfg := smallConfig(16384)
			cfg.Debug = mmsim.DebugConfig{PageOwner: true, PreFix: preFix}
			s := newSystem(t, cfg)
			debugExhaust(t, s)
			z := s.Nodes()[0].Zone(gfp.ZoneDMA32)
			free0, minWmark := z.FreePages(), z.Watermark(zone.WmarkMin)
			require.Less(t, free0, minWmark, "the machine starts below min")
			require.Greater(t, free0, int64(2*n), "room in DMA32 for the test")
			st0 := s.DebugStats()

			tk := s.NewTask("reclaimer")
			cookie := tk.SaveMemalloc()
			for chain := range uint(n) {
				_, err := debugFresh(s, tk, gfp.Kernel, chain, debugChainLevels)
				require.NoError(t, err, "PF_MEMALLOC may use the reserves")
			}
			tk.Restore(cookie)
			require.NoError(t, tk.Err())
			require.NoError(t, s.DrainAllPages(tk))
			debugPages := free0 - z.FreePages() - n
			st := s.DebugStats()
			pools := st.StackDepot.PoolAllocs - st0.StackDepot.PoolAllocs
			poolFailures := st.StackDepot.PoolFailures - st0.StackDepot.PoolFailures
			lists := st.PageOwner.ListNodes - st0.PageOwner.ListNodes
			listFailures := st.PageOwner.ListFailures - st0.PageOwner.ListFailures
			require.Positive(t, pools, "the depot tried to allocate pools")

			if !preFix {
				assert.Equal(t, gfp.Kernel|gfp.NoRetry|gfp.NoMemalloc|gfp.NoWarn, st.StackDepot.LastPoolMask)
				assert.Equal(t, gfp.Kernel|gfp.NoRetry|gfp.NoMemalloc|gfp.NoWarn, st.PageOwner.LastListMask)
				assert.Equal(t, pools, poolFailures, "every pool allocation failed below min")
				assert.Positive(t, listFailures, "stack-list nodes failed below min")
				assert.Zero(t, debugPages, "the debug allocations took no page from the reserves")
				return
			}
			assert.Equal(t, gfp.Kernel|gfp.NoWarn, st.StackDepot.LastPoolMask)
			assert.Zero(t, poolFailures, "pre-fix pools come from the reserves")
			assert.Zero(t, listFailures)
			assert.Equal(t, n, lists, "a list node for each new stack")
			assert.GreaterOrEqual(t, debugPages, int64(4*pools), "each pool is four pages from the reserves")
			assert.Less(t, z.FreePages(), free0-n, "free memory fell below what the caller took")
		})
	}
}

// TestDebugKmemleakMetadataUsesTheNestedMask: kmemleak allocates each
// object's metadata with the nested mask of the object's: the caller's
// IO, FS, reclaim, HIGH and NOLOCKDEP bits kept, NORETRY, NOMEMALLOC and
// NOWARN added, everything else dropped.
//
// Reference: mm/kmemleak.c:mem_pool_alloc(), include/linux/gfp.h:gfp_nested_mask().
func TestDebugKmemleakMetadataUsesTheNestedMask(t *testing.T) {
	const added = gfp.NoRetry | gfp.NoMemalloc | gfp.NoWarn
	for _, tc := range []struct {
		name       string
		mask, want gfp.Mask
	}{
		{"GFP_NOFS", gfp.NoFS, gfp.Reclaim | gfp.IO | added},
		{"GFP_KERNEL|__GFP_NOLOCKDEP", gfp.Kernel | gfp.NoLockdep, gfp.Kernel | gfp.NoLockdep | added},
		{"GFP_ATOMIC", gfp.Atomic, gfp.High | gfp.KswapdReclaim | added},
		{"GFP_KERNEL|__GFP_ZERO|__GFP_NOFAIL|__GFP_ACCOUNT", gfp.Kernel | gfp.Zero | gfp.NoFail | gfp.Account, gfp.Kernel | added},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallConfig(4096)
			cfg.Debug.Kmemleak = true
			s := newSystem(t, cfg)
			tk := s.NewTask("xfs_io")
			_, err := s.Kmalloc(tk, 64, tc.mask)
			require.NoError(t, err)
			st := s.DebugStats().Kmemleak
			assert.Equal(t, 1, st.FromCache)
			assert.Equal(t, 1, st.Objects)
			assert.Equal(t, tc.want, st.LastMask, "metadata mask %v", st.LastMask)
			assert.Equal(t, tc.mask&gfp.FS, st.LastMask&gfp.FS, "__GFP_FS as the caller's")
		})
	}
}

// TestDebugKmemleakFallsBackToItsPoolThenDisablesItself: below the min
// watermark a PF_MEMALLOC task's GFP_NOFS kmallocs succeed from the
// reserves, but kmemleak's metadata (__GFP_NOMEMALLOC) cannot grow its
// cache: it takes objects from the static pool, and when that is empty
// kmemleak disables itself with the kernel's messages and tracks nothing
// more.
//
// Reference: mm/kmemleak.c:mem_pool_alloc(), __alloc_object(), kmemleak_disable().
func TestDebugKmemleakFallsBackToItsPoolThenDisablesItself(t *testing.T) {
	const poolSize = 8
	cfg := smallConfig(16384)
	cfg.Debug = mmsim.DebugConfig{Kmemleak: true, KmemleakPoolSize: poolSize}
	s := newSystem(t, cfg)
	tk := s.NewTask("xfs_io")
	debugExhaust(t, s)
	st0 := s.DebugStats().Kmemleak
	require.Equal(t, poolSize, st0.PoolFree)
	require.False(t, st0.Disabled)

	cookie := tk.SaveMemalloc()
	n := 0
	for ; n < 4096 && !s.DebugStats().Kmemleak.Disabled; n++ {
		_, err := s.Kmalloc(tk, 64, gfp.NoFS)
		require.NoError(t, err, "PF_MEMALLOC kmalloc uses the reserves")
	}
	tk.Restore(cookie)
	st := s.DebugStats().Kmemleak
	require.True(t, st.Disabled, "kmemleak disabled itself after %d kmallocs", n)
	assert.Equal(t, poolSize, st.FromPool, "the whole static pool was used")
	assert.Zero(t, st.PoolFree)
	assert.Equal(t, gfp.Reclaim|gfp.IO|gfp.NoRetry|gfp.NoMemalloc|gfp.NoWarn, st.LastMask)
	assert.Equal(t, st.FromCache+st.FromPool, st.Objects, "every tracked object has its metadata")

	var texts []string
	for _, r := range reportsSince(s, 0, mmsim.ReportInfo) {
		if strings.HasPrefix(r.Site, "mm/kmemleak.c") {
			texts = append(texts, r.Text)
		}
	}
	assert.Equal(t, []string{
		"Memory pool empty, consider increasing CONFIG_DEBUG_KMEMLEAK_MEM_POOL_SIZE",
		"Cannot allocate a kmemleak_object structure",
		"Kernel memory leak detector disabled",
	}, texts)

	// Disabled for good: nothing more is tracked.
	cookie = tk.SaveMemalloc()
	_, err := s.Kmalloc(tk, 64, gfp.Kernel)
	tk.Restore(cookie)
	require.NoError(t, err)
	after := s.DebugStats().Kmemleak
	assert.Equal(t, st.FromCache, after.FromCache)
	assert.Equal(t, st.Objects, after.Objects)
}
