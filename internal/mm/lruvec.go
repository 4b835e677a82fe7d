package mm

import (
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/zone"
)

// Lruvec is one memory cgroup's LRU lists on one node (the root cgroup's
// hold the pages charged to no other).
//
// Kernel: include/linux/mmzone.h:struct lruvec, include/linux/memcontrol.h:
// struct mem_cgroup_per_node.
type Lruvec struct {
	node  *zone.Node
	memcg *MemCgroup

	// lists and zoneSize are protected by the Model's lock (mmsim's one
	// lock for the mm model stands in for the kernel's per-node
	// lru_lock). zoneSize counts the pages of each list by zone
	// (lru_zone_size).
	lists    [NrLRULists]folioList
	zoneSize [gfp.MaxNrZones][NrLRULists]int64
	// onLRU indexes the folios on every lruvec of the node by their first
	// page, for compaction's migration scanner, which walks pfns (the
	// kernel reads PageLRU from the struct page at each pfn). The
	// lruvecs of one node share it.
	onLRU map[zone.PFN]*Folio
}

// NewLruvec returns the empty LRU lists of node n for the root cgroup.
func NewLruvec(n *zone.Node) *Lruvec { return &Lruvec{node: n, onLRU: map[zone.PFN]*Folio{}} }

// Node returns the lists' node.
func (v *Lruvec) Node() *zone.Node { return v.node }

// Memcg returns the lists' memory cgroup.
func (v *Lruvec) Memcg() *MemCgroup { return v.memcg }

// ModState adds delta to a node counter and to the cgroup's copy of it.
//
// Kernel: mm/memcontrol.c:mod_lruvec_state().
func (v *Lruvec) ModState(i zone.NodeStat, delta int64) {
	v.node.ModState(i, delta)
	if v.memcg != nil {
		v.memcg.stat[i].Add(delta)
	}
}

// account moves nr pages of list l into (nr > 0) or out of (nr < 0) the
// node's, the zone's and the cgroup's counters.
//
// Kernel: include/linux/mm_inline.h:update_lru_size(),
// mm/memcontrol.c:mem_cgroup_update_lru_size().
func (v *Lruvec) account(f *Folio, l LRUList, nr int64) {
	v.ModState(zone.NodeNrInactiveAnon+zone.NodeStat(l), nr)
	z := f.zone()
	z.ModState(zone.ZoneNrZoneInactiveAnon+zone.ZoneStat(l), nr)
	v.zoneSize[f.zoneType][l] += nr
}

func (f *Folio) zone() *zone.Zone { return f.node.node.Zone(f.zoneType) }

// add puts f at the head of the list its flags choose. Called with the
// lock held.
//
// Kernel: include/linux/mm_inline.h:lruvec_add_folio().
func (v *Lruvec) add(f *Folio) {
	l := f.lruFor()
	f.lru, f.onLRU = l, true
	v.lists[l].pushHead(f)
	v.onLRU[f.page.PFN()] = f
	v.account(f, l, f.NrPages())
}

// addTail puts f at the tail, where reclaim looks first (folio_rotate_reclaimable).
func (v *Lruvec) addTail(f *Folio) {
	l := f.lruFor()
	f.lru, f.onLRU = l, true
	v.lists[l].pushTail(f)
	v.onLRU[f.page.PFN()] = f
	v.account(f, l, f.NrPages())
}

// del takes f off its list. Called with the lock held.
//
// Kernel: include/linux/mm_inline.h:lruvec_del_folio().
func (v *Lruvec) del(f *Folio) {
	if !f.onLRU {
		return
	}
	v.lists[f.lru].remove(f)
	delete(v.onLRU, f.page.PFN())
	v.account(f, f.lru, -f.NrPages())
	f.onLRU = false
}

// The methods below are called with the Model's lock held.

// Size returns the pages on list l in zones up to highest.
//
// Kernel: mm/vmscan.c:lruvec_lru_size().
func (v *Lruvec) Size(l LRUList, highest gfp.ZoneType) int64 {
	var n int64
	for t := gfp.ZoneType(0); t <= highest && int(t) < gfp.MaxNrZones; t++ {
		n += v.zoneSize[t][l]
	}
	return n
}

// Isolate takes up to nrToScan pages' worth of folios from the tail of
// list l, passing over (and putting back at the head) folios of zones above
// highest — at most SWAP_CLUSTER_MAX_SKIPPED of them, so that a list full
// of them cannot stall the scan — and returns them with the pages taken,
// the pages looked at (taken and skipped: the nr_scanned reclaim counts),
// and the pages skipped per zone (pgskip_*). The caller owns the isolated
// folios until Putback.
//
// Kernel: mm/vmscan.c:isolate_lru_folios().
func (v *Lruvec) Isolate(l LRUList, nrToScan int64, highest gfp.ZoneType) (folios []*Folio, taken, scanned int64, skipped [gfp.MaxNrZones]int64) {
	const maxSkipped = 32 << 10 // SWAP_CLUSTER_MAX_SKIPPED
	var skip []*Folio
	list := &v.lists[l]
	for taken < nrToScan && list.tail != nil {
		f := list.tail
		v.del(f)
		scanned += f.NrPages()
		if len(skip) < maxSkipped && f.zoneType > highest {
			skip = append(skip, f)
			skipped[f.zoneType] += f.NrPages()
			continue
		}
		taken += f.NrPages()
		folios = append(folios, f)
	}
	for _, f := range skip { // splice the skipped back at the head
		v.add(f)
	}
	if len(folios) > 0 {
		iso := zone.NodeNrIsolatedAnon
		if l.IsFile() {
			iso = zone.NodeNrIsolatedFile
		}
		v.ModState(iso, taken)
	}
	return folios, taken, scanned, skipped
}

// Putback returns isolated folios to the lists their flags now choose, at
// the head, and drops them from nr_isolated_*. Folios the caller freed
// must not be passed.
//
// Kernel: mm/vmscan.c:move_folios_to_lru().
func (v *Lruvec) Putback(folios []*Folio, isolatedFrom LRUList) {
	var nr int64
	for _, f := range folios {
		nr += f.NrPages()
		v.add(f)
	}
	v.Unisolate(isolatedFrom, nr)
}

// Unisolate drops nr pages isolated from list l from nr_isolated_*: the
// folios were put back or freed.
func (v *Lruvec) Unisolate(l LRUList, nr int64) {
	iso := zone.NodeNrIsolatedAnon
	if l.IsFile() {
		iso = zone.NodeNrIsolatedFile
	}
	v.ModState(iso, -nr)
}
