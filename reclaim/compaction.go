package reclaim

import (
	"sync"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/mm"
	"github.com/mmsim/mmsim/internal/sim"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// This file is mm/compaction.c: direct compaction for the slow path, the
// per-node kcompactd, and proactive compaction. The buddy-side primitives
// (free-page isolation, capture) are zone's; the folios that move are
// internal/mm's.
//
// What mmsim simplifies, and why it does not change the answers the slow
// path sees:
//   - No fast searches (fast_find_migrateblock, fast_isolate_freepages):
//     they choose where the linear scanners start, not what succeeds.
//   - Isolation and migration are one step under the mm model's lock
//     (mm.Model.Migrate): nr_isolated_* never rises, so too_many_isolated
//     never throttles, and async compaction contends only on the zone's
//     compaction (a second async compactor of the same zone backs off as
//     the kernel's trylock of the zone or lru lock does).
//   - One compaction runs per zone at a time; the kernel lets several
//     share a zone. skip_on_failure's order-block retreat is not modelled:
//     migration fails only for want of a target.
//   - __reset_isolation_suitable clears every skip bit instead of sampling
//     each pageblock for a free or LRU page.
//   - The async free scanner's stride is not modelled (it looks at every
//     pfn), a failed migration target is found by one free-scanner pass,
//     and migration targets see no post_alloc_hook (mmsim's Hooks).
//   - The suitability tests run with an ordinary request's alloc flags: a
//     __GFP_HIGH or OOM-victim request may compact where the kernel finds
//     its lowered watermark met.
//   - kcompactd builds a compact_control per zone; the kernel reuses one,
//     so whole_zone can carry over to the next zone.

// Compaction constants.
//
// Kernel: mm/compaction.c (COMPACT_MAX_DEFER_SHIFT,
// HPAGE_FRAG_CHECK_INTERVAL_MSEC, sysctl_extfrag_threshold),
// include/linux/swap.h:COMPACT_CLUSTER_MAX.
const (
	compactClusterMax     = SwapClusterMax
	compactMaxDeferShift  = 6
	extfragThreshold      = 500
	kcompactdTimeout      = 500 * 1_000_000 // ns: msecs_to_jiffies(500)
	compactionHPageOrder  = zone.PageblockOrder
	defaultProactiveness  = 20
	orderCompactWholeZone = zone.Order(-1) // cc->order == -1: compact_node, vm.compact_memory
)

// Compactor is compaction for one machine. It implements zone.Compactor.
//
// Kernel: mm/compaction.c.
type Compactor struct {
	r     *Reclaimer
	alloc *zone.Allocator
	model *mm.Model
	clock *sim.Clock
	costs Costs
	// proactiveness is vm.compaction_proactiveness.
	proactiveness int

	zones     map[*zone.Zone]*zoneCompact // immutable after New
	kcompactd []*Kcompactd
}

// zoneCompact is a zone's compaction state: struct zone's compact_* fields
// and its pageblocks' skip bits.
type zoneCompact struct {
	// run serializes compactions of the zone (see the file comment).
	run sync.Mutex

	mu sync.Mutex // protects the fields below
	// Deferral: compact_considered, compact_defer_shift,
	// compact_order_failed.
	considered, deferShift int
	orderFailed            zone.Order
	// The scanners' cached positions; [0] async, [1] sync. All start at
	// 0, as in the kernel, whose struct zone is zeroed.
	cachedMigrate [2]zone.PFN
	cachedFree    zone.PFN
	initMigrate   zone.PFN // compact_init_migrate_pfn
	initFree      zone.PFN // compact_init_free_pfn
	// blockskipFlush: the skip bits may be cleared (compact_blockskip_flush).
	blockskipFlush bool
	// skip holds PB_compact_skip per pageblock, from the zone's first.
	skip []bool
}

// NewCompactor returns compaction for the machine r reclaims, with a
// kcompactd per node registered as a daemon of r's clock. proactiveness is
// vm.compaction_proactiveness (0 turns proactive compaction off; negative
// takes the default, 20).
func NewCompactor(r *Reclaimer, proactiveness int) *Compactor {
	if proactiveness < 0 || proactiveness > 100 {
		proactiveness = defaultProactiveness
	}
	c := &Compactor{r: r, alloc: r.alloc, model: r.model, clock: r.clock, costs: r.costs,
		proactiveness: proactiveness, zones: map[*zone.Zone]*zoneCompact{}}
	for _, n := range c.alloc.Nodes() {
		for t := gfp.ZoneType(0); int(t) < gfp.MaxNrZones; t++ {
			z := n.Zone(t)
			if z == nil || z.Present() == 0 {
				continue
			}
			first := z.StartPFN() &^ (zone.PageblockNrPages - 1)
			blocks := (int64(z.EndPFN()-first) + zone.PageblockNrPages - 1) / zone.PageblockNrPages
			c.zones[z] = &zoneCompact{skip: make([]bool, blocks)}
		}
		k := newKcompactd(c, n)
		c.kcompactd = append(c.kcompactd, k)
		c.clock.Register(k)
	}
	r.compact = c
	return c
}

// Kcompactd returns node nid's kcompactd.
func (c *Compactor) Kcompactd(nid int) *Kcompactd { return c.kcompactd[nid] }

// compactGap is the free-page margin compaction wants: min(2<<order,
// COMPACT_CLUSTER_MAX).
//
// Kernel: include/linux/compaction.h:compact_gap().
func compactGap(order zone.Order) int64 { return min(int64(2)<<order, compactClusterMax) }

// contigInfo is fill_contig_page_info's tally for one order.
type contigInfo struct{ freePages, freeBlocksTotal, freeBlocksSuitable int64 }

func fillContigInfo(z *zone.Zone, order zone.Order) contigInfo {
	var ci contigInfo
	for o, n := range z.FreeArea() {
		ci.freeBlocksTotal += n
		ci.freePages += n << o
		if zone.Order(o) >= order {
			ci.freeBlocksSuitable += n << (zone.Order(o) - order)
		}
	}
	return ci
}

// extfragForOrder is the percentage of free memory in blocks too small for
// the order.
//
// Kernel: mm/vmstat.c:extfrag_for_order().
func extfragForOrder(z *zone.Zone, order zone.Order) int64 {
	ci := fillContigInfo(z, order)
	if ci.freePages == 0 {
		return 0
	}
	return (ci.freePages - ci.freeBlocksSuitable<<order) * 100 / ci.freePages
}

// suitableFree is __compaction_suitable: would the zone, with free pages
// free, stay above the watermark plus compact_gap (and, for costly orders,
// the low-min distance) while compaction holds isolated pages.
//
// Kernel: mm/compaction.c:__compaction_suitable().
func suitableFree(z *zone.Zone, order zone.Order, mark int64, highest gfp.ZoneType, free int64) bool {
	mark += compactGap(order)
	if order > zone.CostlyOrder {
		mark += z.Watermark(zone.WmarkLow) - z.Watermark(zone.WmarkMin)
	}
	return z.WatermarkOKFree(0, mark, highest, free)
}

// suitable is compaction_suitable: suitableFree on the zone's free pages,
// and for costly orders a fragmentation index above extfrag_threshold
// (a failure for want of memory is reclaim's, not compaction's).
//
// Kernel: mm/compaction.c:compaction_suitable().
func suitable(z *zone.Zone, order zone.Order, mark int64, highest gfp.ZoneType) bool {
	ok := suitableFree(z, order, mark, highest, z.FreePages())
	if ok && order > zone.CostlyOrder {
		if fi := z.FragmentationIndex(order); fi >= 0 && fi <= extfragThreshold {
			return false
		}
	}
	return ok
}

// suitAllocationOrder decides whether compacting z for the order is
// needed (CompactSuccess: the watermark is met already), pointless
// (CompactSkipped) or worth it (CompactContinue). mark is the request's
// watermark (min for the slow path and kcompactd), boost included.
//
// Kernel: mm/compaction.c:compaction_suit_allocation_order().
func suitAllocationOrder(z *zone.Zone, order zone.Order, highest gfp.ZoneType, async bool) zone.CompactResult {
	mark := z.Watermark(zone.WmarkMin) + z.Boost()
	free := z.FreePages()
	if z.WatermarkOKFree(order, mark, highest, free) {
		return zone.CompactSuccess
	}
	if order > zone.CostlyOrder && async && !z.WatermarkOKFree(0, mark+compactGap(order), highest, free) {
		return zone.CompactSkipped
	}
	if !suitable(z, order, mark, highest) {
		return zone.CompactSkipped
	}
	return zone.CompactContinue
}

// deferred is compaction_deferred: whether to skip compacting the zone
// for the order after recent failures (1<<defer_shift attempts are
// considered before the next runs).
//
// Kernel: mm/compaction.c:compaction_deferred().
func (zc *zoneCompact) deferred(order zone.Order) bool {
	zc.mu.Lock()
	defer zc.mu.Unlock()
	if order < zc.orderFailed {
		return false
	}
	zc.considered++
	if limit := 1 << zc.deferShift; zc.considered >= limit {
		zc.considered = limit
		return false
	}
	return true
}

// deferCompaction records a failure: the next attempts at the order or
// above are skipped for longer.
//
// Kernel: mm/compaction.c:defer_compaction().
func (zc *zoneCompact) deferCompaction(order zone.Order) {
	zc.mu.Lock()
	defer zc.mu.Unlock()
	zc.considered = 0
	if zc.deferShift < compactMaxDeferShift {
		zc.deferShift++
	}
	if order < zc.orderFailed {
		zc.orderFailed = order
	}
}

// deferReset records a success: an allocation that succeeded resets the
// back-off; any success raises the lowest order that failed.
//
// Kernel: mm/compaction.c:compaction_defer_reset().
func (zc *zoneCompact) deferReset(order zone.Order, allocSuccess bool) {
	zc.mu.Lock()
	defer zc.mu.Unlock()
	if allocSuccess {
		zc.considered, zc.deferShift = 0, 0
	}
	if order >= zc.orderFailed {
		zc.orderFailed = order + 1
	}
}

// restarting reports whether compaction has failed at the order so often
// that it should start over with the skip bits cleared.
//
// Kernel: mm/compaction.c:compaction_restarting().
func (zc *zoneCompact) restartingLocked(order zone.Order) bool {
	return order >= zc.orderFailed && zc.deferShift == compactMaxDeferShift && zc.considered >= 1<<compactMaxDeferShift
}

// resetIsolationLocked clears the zone's skip bits if compaction asked for
// it (scanners met in direct compaction), and starts the scanners over.
//
// Kernel: mm/compaction.c:__reset_isolation_suitable().
func (zc *zoneCompact) resetIsolationLocked(z *zone.Zone) {
	if !zc.blockskipFlush {
		return
	}
	zc.blockskipFlush = false
	clear(zc.skip)
	zc.resetCachedLocked(z)
	zc.initMigrate, zc.initFree = zc.cachedMigrate[0], zc.cachedFree
}

// resetCachedLocked puts the scanners back at the zone's ends.
//
// Kernel: mm/compaction.c:reset_cached_positions().
func (zc *zoneCompact) resetCachedLocked(z *zone.Zone) {
	zc.cachedMigrate = [2]zone.PFN{z.StartPFN(), z.StartPFN()}
	zc.cachedFree = pageblockStart(z.EndPFN() - 1)
}

// ResetIsolation clears the skip bits of every zone of node n that asked
// for it, as kswapd does before its nap.
//
// Kernel: mm/compaction.c:reset_isolation_suitable().
func (c *Compactor) ResetIsolation(n *zone.Node) {
	for t := gfp.ZoneType(0); int(t) < gfp.MaxNrZones; t++ {
		z := n.Zone(t)
		if zc := c.zones[z]; zc != nil {
			zc.mu.Lock()
			zc.resetIsolationLocked(z)
			zc.mu.Unlock()
		}
	}
}

func pageblockStart(pfn zone.PFN) zone.PFN { return pfn &^ (zone.PageblockNrPages - 1) }
func pageblockEnd(pfn zone.PFN) zone.PFN   { return pageblockStart(pfn) + zone.PageblockNrPages }

// skipIndex returns pfn's index in the zone's skip bits.
func (zc *zoneCompact) skipIndex(z *zone.Zone, pfn zone.PFN) int {
	return int((pfn - pageblockStart(z.StartPFN())) >> zone.PageblockOrder)
}

// compactControl is one compaction of one zone.
//
// Kernel: mm/internal.h:struct compact_control.
type compactControl struct {
	c  *Compactor
	z  *zone.Zone
	zc *zoneCompact
	t  *memalloc.Task

	order   zone.Order // -1: the whole zone (compact_node)
	mt      gfp.Migratetype
	mask    gfp.Mask
	highest gfp.ZoneType
	mode    mm.MigrateMode
	direct  bool
	// proactive is kcompactd's proactive compaction.
	proactive           bool
	wholeZone           bool
	ignoreSkipHint      bool
	ignoreBlockSuitable bool
	finishPageblock     bool
	contended           bool

	migratePFN, freePFN zone.PFN
	lastMigrated        zone.PFN
	freepages           []zone.Page // isolated migration targets
	capc                *zone.Capture

	migrateScanned, freeScanned int64
	isolated                    int64
	migrated, failed            int64
}

// scannersMet reports whether the free scanner has reached the migration
// scanner's pageblock.
//
// Kernel: mm/compaction.c:compact_scanners_met().
func (cc *compactControl) scannersMet() bool {
	return cc.freePFN>>zone.PageblockOrder <= cc.migratePFN>>zone.PageblockOrder
}

// fatal reports a fatal signal: the compacting task was OOM-killed.
func (cc *compactControl) fatal() bool { return cc.t != nil && cc.c.r.killed(cc.t) }

// compactZone compacts cc.z: the migration scanner moves up from the
// cached position, moving movable folios into pages the free scanner
// isolates coming down, until a page of the order can be had or the
// scanners meet. Its modelled time is cc.cost(). runZone has made the
// suitability test (compaction_suit_allocation_order) already.
//
// Kernel: mm/compaction.c:compact_zone().
func (cc *compactControl) compactZone() zone.CompactResult {
	z, zc := cc.z, cc.zc
	sync := 0
	if cc.mode != mm.MigrateAsync {
		sync = 1
	}
	zc.mu.Lock()
	if cc.order >= 0 && zc.restartingLocked(cc.order) {
		zc.resetIsolationLocked(z)
	}
	start, end := z.StartPFN(), z.EndPFN()
	if cc.wholeZone {
		cc.migratePFN, cc.freePFN = start, pageblockStart(end-1)
	} else {
		cc.migratePFN, cc.freePFN = zc.cachedMigrate[sync], zc.cachedFree
		if cc.freePFN < start || cc.freePFN >= end {
			cc.freePFN = pageblockStart(end - 1)
			zc.cachedFree = cc.freePFN
		}
		if cc.migratePFN < start || cc.migratePFN >= end {
			cc.migratePFN = start
			zc.cachedMigrate = [2]zone.PFN{start, start}
		}
		if cc.migratePFN <= zc.initMigrate {
			cc.wholeZone = true
		}
	}
	updateCached := sync == 0 && zc.cachedMigrate[0] == zc.cachedMigrate[1]
	zc.mu.Unlock()

	var ret zone.CompactResult
	for {
		if ret = cc.finished(); ret != zone.CompactContinue {
			break
		}
		cc.finishPageblock = pageblockStart(cc.lastMigrated) == pageblockStart(cc.migratePFN)
		isolated, enomem := cc.isolateAndMigrate()
		if !isolated {
			if updateCached {
				zc.mu.Lock()
				zc.cachedMigrate[1] = zc.cachedMigrate[0]
				zc.mu.Unlock()
			}
		} else {
			updateCached = false
			cc.lastMigrated = max(start, pageblockStart(cc.migratePFN-1))
			if enomem && !cc.scannersMet() {
				ret = zone.CompactContended
				break
			}
			if cc.capc != nil && cc.capc.Captured {
				ret = zone.CompactSuccess
				break
			}
		}
		// check_drain: mmsim's migrated pages went straight to the
		// buddy lists (zone.Allocator.FreeMigrated).
		if cc.order > 0 && cc.lastMigrated != 0 && cc.lastMigrated < cc.migratePFN&^(1<<cc.order-1) {
			cc.lastMigrated = 0
		}
	}
	if len(cc.freepages) > 0 {
		var highest zone.PFN
		for _, p := range cc.freepages {
			highest = max(highest, p.PFN())
		}
		z.ReleaseFreePages(cc.freepages, cc.capc)
		cc.freepages = nil
		zc.mu.Lock()
		if hb := pageblockStart(highest); hb > zc.cachedFree {
			zc.cachedFree = hb
		}
		zc.mu.Unlock()
	}
	cc.c.alloc.CountEvent(zone.VMCompactMigrateScanned, cc.migrateScanned)
	cc.c.alloc.CountEvent(zone.VMCompactFreeScanned, cc.freeScanned)
	return ret
}

// finished decides whether compaction is done: the scanners met, a free
// block of the order and type exists (checked only on a pageblock
// boundary, so that a started pageblock is finished first), or the task
// was killed.
//
// Kernel: mm/compaction.c:compact_finished(), __compact_finished().
func (cc *compactControl) finished() zone.CompactResult {
	z, zc := cc.z, cc.zc
	if cc.scannersMet() {
		zc.mu.Lock()
		zc.resetCachedLocked(z)
		if cc.direct {
			zc.blockskipFlush = true
		}
		zc.mu.Unlock()
		if cc.wholeZone {
			return zone.CompactComplete
		}
		return zone.CompactPartialSkipped
	}
	ret := zone.CompactContinue
	switch {
	case cc.proactive:
		if !cc.c.r.kswapd[z.Node().ID()].Waiting() {
			return zone.CompactPartialSkipped
		}
		if extfragForOrder(z, compactionHPageOrder) <= int64(cc.c.wmarkLow()) {
			ret = zone.CompactSuccess
		}
	case cc.order < 0:
		if cc.fatal() {
			return zone.CompactContended
		}
		return zone.CompactContinue
	case cc.migratePFN&(zone.PageblockNrPages-1) != 0:
		return zone.CompactContinue
	default:
		if ready, fallback := z.FreeBlockFor(cc.order, cc.mt); ready || fallback {
			return zone.CompactSuccess
		}
	}
	if cc.contended || cc.fatal() {
		return zone.CompactContended
	}
	return ret
}

// suitableSource reports whether the migration scanner should look at the
// pageblock at pfn: async direct compaction keeps to movable blocks for
// movable or pageblock-sized requests, and to the request's own type
// otherwise.
//
// Kernel: mm/compaction.c:suitable_migration_source().
func (cc *compactControl) suitableSource(pfn zone.PFN) bool {
	if !cc.direct || cc.mode != mm.MigrateAsync {
		return true
	}
	bt := cc.z.PageblockMigratetype(pfn)
	if cc.mt == gfp.MigrateMovable || cc.order >= zone.PageblockOrder {
		return bt == gfp.MigrateMovable
	}
	return bt == cc.mt
}

// suitableTarget reports whether the free scanner should take pages from
// the pageblock at pfn: a movable block not already free at the order.
//
// Kernel: mm/compaction.c:suitable_migration_target().
func (cc *compactControl) suitableTarget(pfn zone.PFN) bool {
	limit := zone.PageblockOrder
	if cc.order > 0 {
		limit = cc.order
	}
	if o, free := cc.z.FreeBlockOrder(pfn); free && o >= limit {
		return false
	}
	if cc.ignoreBlockSuitable {
		return true
	}
	return cc.z.PageblockMigratetype(pfn) == gfp.MigrateMovable
}

// updateCachedMigrate moves the cached migration position past pfn's
// pageblock.
//
// Kernel: mm/compaction.c:update_cached_migrate().
func (cc *compactControl) updateCachedMigrate(pfn zone.PFN) {
	p := (pfn + zone.PageblockNrPages) &^ (zone.PageblockNrPages - 1) // ALIGN(pfn+1, pageblock_nr_pages)
	zc := cc.zc
	zc.mu.Lock()
	zc.cachedMigrate[0] = max(zc.cachedMigrate[0], p)
	if cc.mode != mm.MigrateAsync {
		zc.cachedMigrate[1] = max(zc.cachedMigrate[1], p)
	}
	zc.mu.Unlock()
}

func (cc *compactControl) skipped(pfn zone.PFN) bool {
	if cc.ignoreSkipHint {
		return false
	}
	cc.zc.mu.Lock()
	defer cc.zc.mu.Unlock()
	return cc.zc.skip[cc.zc.skipIndex(cc.z, pfn)]
}

func (cc *compactControl) setSkip(pfn zone.PFN) {
	cc.zc.mu.Lock()
	cc.zc.skip[cc.zc.skipIndex(cc.z, pfn)] = true
	cc.zc.mu.Unlock()
}

// isolateAndMigrate is one step of the migration scanner — the next
// suitable pageblock, up to COMPACT_CLUSTER_MAX pages of it (all of it
// when the pageblock must be finished) — and the migration of what it
// took. It reports whether it isolated anything, and whether a folio
// found no target (-ENOMEM).
//
// Kernel: mm/compaction.c:isolate_migratepages(),
// isolate_migratepages_block(), mm/migrate.c:migrate_pages().
func (cc *compactControl) isolateAndMigrate() (isolated, enomem bool) {
	z := cc.z
	low := max(cc.migratePFN, z.StartPFN())
	for blockEnd := pageblockEnd(low); blockEnd <= cc.freePFN; blockEnd += zone.PageblockNrPages {
		blockStart := blockEnd - zone.PageblockNrPages
		if !z.PageblockValid(blockStart) {
			low, cc.migratePFN = blockEnd, blockEnd
			continue
		}
		if low == blockStart || low == z.StartPFN() {
			if cc.skipped(blockStart) {
				low, cc.migratePFN = blockEnd, blockEnd
				continue
			}
		}
		if !cc.suitableSource(blockStart) {
			cc.updateCachedMigrate(blockEnd)
			low, cc.migratePFN = blockEnd, blockEnd
			continue
		}
		batch := int64(compactClusterMax)
		if cc.finishPageblock {
			batch = zone.PageblockNrPages
		}
		began := low == blockStart || low == z.StartPFN()
		st, old := cc.c.model.Migrate(z.Node().ID(), low, blockEnd, cc.mode, cc.mask&gfp.FS != 0, batch, cc.target)
		for _, p := range old {
			if err := cc.c.alloc.FreeMigrated(cc.t, p, 0, cc.capc); err != nil {
				panic("mmsim: internal: compaction freed a page the allocator did not hand out: " + err.Error())
			}
		}
		cc.migrateScanned += st.Scanned
		cc.migrated += st.Succeeded
		cc.failed += st.Failed
		// test_and_set_skip on the first folio taken from a block whose
		// scan began at its start: the block is marked at once (unless
		// the hint is ignored, which still counts as the update).
		skipUpdated := began && st.Isolated > 0
		if skipUpdated && !cc.ignoreSkipHint {
			cc.setSkip(blockStart)
		}
		if st.Next == blockEnd && (st.Isolated == 0 || cc.finishPageblock) {
			if began && !skipUpdated {
				cc.setSkip(blockStart)
			}
			cc.updateCachedMigrate(blockEnd)
		}
		cc.migratePFN = st.Next
		if st.Isolated > 0 {
			cc.isolated += st.Isolated
			cc.c.alloc.CountEvent(zone.VMCompactIsolated, st.Isolated)
			cc.c.alloc.CountEvent(zone.VMPgmigrateSuccess, st.Succeeded)
			cc.c.alloc.CountEvent(zone.VMPgmigrateFail, st.Failed)
		}
		return st.Isolated > 0, st.Failed > 0 && len(cc.freepages) == 0
	}
	cc.migratePFN = max(cc.migratePFN, pageblockStart(cc.freePFN))
	return false, false
}

// target is compaction_alloc: a migration target from the isolated free
// pages, running the free scanner when there are none.
//
// Kernel: mm/compaction.c:compaction_alloc().
func (cc *compactControl) target(want int64) (zone.Page, bool) {
	if len(cc.freepages) == 0 {
		cc.isolateFreepages(want)
		if len(cc.freepages) == 0 {
			return zone.Page{}, false
		}
	}
	p := cc.freepages[0]
	cc.freepages = cc.freepages[1:]
	return p, true
}

// isolateFreepages is the free scanner: from the cached position down,
// pageblock by pageblock, it isolates free pages of suitable blocks until
// it holds want, a block stops it (the watermark), or it passes the
// migration scanner (the scanners then meet).
//
// Kernel: mm/compaction.c:isolate_freepages().
func (cc *compactControl) isolateFreepages(want int64) {
	z := cc.z
	const pb = zone.PageblockNrPages
	low := pageblockEnd(cc.migratePFN) // at least one pageblock: no underflow below
	blockStart, isolateStart := pageblockStart(cc.freePFN), cc.freePFN
	for ; blockStart >= low; blockStart, isolateStart = blockStart-pb, blockStart-pb {
		blockEnd := min(blockStart+pb, z.EndPFN())
		if !z.PageblockValid(blockStart) || !cc.suitableTarget(blockStart) || cc.skipped(blockStart) {
			continue
		}
		pages, scanned, next := z.IsolateFreePages(isolateStart, blockEnd, want-int64(len(cc.freepages)))
		cc.freeScanned += scanned
		if len(pages) > 0 {
			cc.isolated += int64(len(pages))
			cc.c.alloc.CountEvent(zone.VMCompactIsolated, int64(len(pages)))
			cc.freepages = append(cc.freepages, pages...)
		}
		whole := next >= blockEnd
		if whole { // update_pageblock_skip
			cc.setSkip(blockStart)
			cc.zc.mu.Lock()
			cc.zc.cachedFree = min(cc.zc.cachedFree, blockStart-pb)
			cc.zc.mu.Unlock()
		}
		if int64(len(cc.freepages)) >= want {
			isolateStart = next
			if whole {
				isolateStart = blockStart - pb // restart at the block below
			}
			break
		}
		if !whole { // stopped early: the watermark
			isolateStart = next
			break
		}
	}
	cc.freePFN = isolateStart
}

// TryToCompactPages is direct compaction: each zone of the zonelist up to
// the highest, not deferred (below SYNC_FULL), is compacted until one
// yields the page; failures at a synchronous priority defer the zone. A
// block of the order freed during compaction is captured for the caller.
//
// Kernel: mm/compaction.c:try_to_compact_pages(), compact_zone_order().
func (c *Compactor) TryToCompactPages(t *memalloc.Task, zonelist []*zone.Zone, order zone.Order, mask gfp.Mask, highest gfp.ZoneType, prio int) (zone.CompactResult, zone.PFN, bool) {
	rc := zone.CompactSkipped
	if !mask.CompactionAllowed() {
		return rc, 0, false
	}
	capc := &zone.Capture{Order: order, MT: mask.Migratetype(), Movable: mask&gfp.Movable != 0}
	var cost int64
	for _, z := range zonelist {
		zc := c.zones[z]
		if z.Type() > highest || zc == nil {
			continue
		}
		if prio > zone.CompactPrioSyncFull && zc.deferred(order) {
			rc = max(rc, zone.CompactDeferred)
			continue
		}
		cc := &compactControl{c: c, z: z, zc: zc, t: t, order: order, mt: mask.Migratetype(), mask: mask,
			highest: highest, direct: true, capc: capc,
			wholeZone:           prio == zone.CompactPrioSyncFull,
			ignoreSkipHint:      prio == zone.CompactPrioSyncFull,
			ignoreBlockSuitable: prio == zone.CompactPrioSyncFull}
		if prio != zone.CompactPrioAsync {
			cc.mode = mm.MigrateSyncLight
		}
		capc.Zone = z
		status := c.runZone(cc)
		capc.Zone = nil
		cost += cc.cost()
		if capc.Captured {
			status = zone.CompactSuccess
		}
		rc = max(rc, status)
		if status == zone.CompactSuccess {
			zc.deferReset(order, false)
			break
		}
		if prio != zone.CompactPrioAsync && (status == zone.CompactComplete || status == zone.CompactPartialSkipped) {
			zc.deferCompaction(order)
		}
		if cc.fatal() {
			break
		}
	}
	c.clock.Advance(cost)
	if capc.Captured {
		return rc, capc.Page.PFN(), true
	}
	return rc, 0, false
}

// runZone runs cc on its zone, one compaction per zone at a time: async
// compaction gives up with CompactContended when another holds the zone,
// as it would on the kernel's contended zone or lru lock.
func (c *Compactor) runZone(cc *compactControl) zone.CompactResult {
	// compact_zone's suitability test comes before any contention.
	if cc.order > 0 {
		if ret := suitAllocationOrder(cc.z, cc.order, cc.highest, cc.mode == mm.MigrateAsync); ret != zone.CompactContinue {
			return ret
		}
	}
	if cc.mode == mm.MigrateAsync {
		if !cc.zc.run.TryLock() {
			return zone.CompactContended
		}
	} else {
		cc.zc.run.Lock()
	}
	defer cc.zc.run.Unlock()
	return cc.compactZone()
}

// cost is the modelled time of the compaction: pfns scanned and pages
// moved.
func (cc *compactControl) cost() int64 {
	return (cc.migrateScanned+cc.freeScanned)*cc.c.costs.CompactScanPage + cc.migrated*cc.c.costs.CompactMovePage
}

// ZonelistSuitable reports whether compaction could help in some zone of
// the zonelist once reclaim has freed what it can: after a skipped
// compaction, the slow path retries only if so.
//
// Kernel: mm/compaction.c:compaction_zonelist_suitable().
func (c *Compactor) ZonelistSuitable(zonelist []*zone.Zone, order zone.Order, highest gfp.ZoneType) bool {
	if order <= 0 {
		return false // should_compact_retry asks only for order > 0
	}
	for _, z := range zonelist {
		if z.Type() > highest || c.zones[z] == nil {
			continue
		}
		available := c.r.ReclaimablePages(z)/int64(order) + z.FreePages()
		if suitableFree(z, order, z.Watermark(zone.WmarkMin)+z.Boost(), highest, available) {
			return true
		}
	}
	return false
}

// WakeKcompactd wakes node n's kcompactd for the order.
//
// Kernel: mm/compaction.c:wakeup_kcompactd().
func (c *Compactor) WakeKcompactd(n *zone.Node, order zone.Order, highest gfp.ZoneType) {
	if !c.r.kswapd[n.ID()].Waiting() {
		return // kswapd is awake: wakeup_kswapd returns before this branch
	}
	c.kcompactd[n.ID()].Wake(c.clock.Now(), order, highest)
}

// Allocated is the slow path's report of a page got after compaction:
// the zone keeps its skip bits and forgets its failures at the order.
//
// Kernel: mm/page_alloc.c:__alloc_pages_direct_compact() (the success
// branch).
func (c *Compactor) Allocated(z *zone.Zone, order zone.Order) {
	zc := c.zones[z]
	if zc == nil {
		return
	}
	zc.mu.Lock()
	zc.blockskipFlush = false
	zc.mu.Unlock()
	zc.deferReset(order, true)
}

// CompactNode compacts every zone of node nid whole, as writing to
// /proc/sys/vm/compact_memory (or the node's sysfs compact file) does, and
// returns the modelled time it took. The caller's CPU is busy meanwhile:
// the clock advances.
//
// Kernel: mm/compaction.c:compact_node(), sysctl_compaction_handler().
func (c *Compactor) CompactNode(t *memalloc.Task, nid int) {
	n := c.alloc.Nodes()[nid]
	cost := c.compactNode(t, n, false)
	c.clock.Advance(cost)
}

// compactNode runs a whole-zone compaction on each populated zone of n;
// proactive runs count as kcompactd's.
func (c *Compactor) compactNode(t *memalloc.Task, n *zone.Node, proactive bool) int64 {
	var cost int64
	for ty := gfp.ZoneType(0); int(ty) < gfp.MaxNrZones; ty++ {
		z := n.Zone(ty)
		zc := c.zones[z]
		if zc == nil {
			continue
		}
		if t != nil && c.r.killed(t) {
			break // -EINTR
		}
		cc := &compactControl{c: c, z: z, zc: zc, t: t, order: orderCompactWholeZone, mt: gfp.MigrateUnmovable,
			mask: gfp.Kernel, highest: ty, mode: mm.MigrateSync, proactive: proactive,
			wholeZone: true, ignoreSkipHint: true}
		if proactive {
			cc.mode = mm.MigrateSyncLight
		}
		c.runZone(cc)
		cost += cc.cost()
		if proactive {
			c.alloc.CountEvent(zone.VMCompactDaemonMigrateScanned, cc.migrateScanned)
			c.alloc.CountEvent(zone.VMCompactDaemonFreeScanned, cc.freeScanned)
		}
	}
	return cost
}

// wmarkLow is the fragmentation score proactive compaction brings a node
// down to; wmarkHigh the score that starts it.
//
// Kernel: mm/compaction.c:fragmentation_score_wmark().
func (c *Compactor) wmarkLow() int { return 100 - c.proactiveness }
func (c *Compactor) wmarkHigh() int {
	low := c.wmarkLow()
	return min(low+min(10, low/2), 100)
}

// FragmentationScore is node n's fragmentation score: each zone's
// extfrag_for_order at pageblock order, weighted by its present pages.
//
// Kernel: mm/compaction.c:fragmentation_score_node().
func (c *Compactor) FragmentationScore(n *zone.Node) int64 {
	var present int64
	for t := gfp.ZoneType(0); int(t) < gfp.MaxNrZones; t++ {
		present += n.Zone(t).Present()
	}
	var score int64
	for t := gfp.ZoneType(0); int(t) < gfp.MaxNrZones; t++ {
		z := n.Zone(t)
		if c.zones[z] == nil {
			continue
		}
		score += z.Present() * extfragForOrder(z, compactionHPageOrder) / (present + 1)
	}
	return score
}
