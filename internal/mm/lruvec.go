package mm

import (
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/zone"
)

// Lruvec is one node's LRU lists.
//
// Kernel: include/linux/mmzone.h:struct lruvec.
type Lruvec struct {
	node *zone.Node

	// lists are protected by the Model's lock (mmsim's one lock for the
	// mm model stands in for the kernel's per-node lru_lock).
	lists [NrLRULists]folioList
	// onLRU indexes the folios on the lists by their first page, for
	// compaction's migration scanner, which walks pfns (the kernel reads
	// PageLRU from the struct page at each pfn).
	onLRU map[zone.PFN]*Folio
}

// NewLruvec returns the empty LRU lists of node n.
func NewLruvec(n *zone.Node) *Lruvec { return &Lruvec{node: n, onLRU: map[zone.PFN]*Folio{}} }

// Node returns the lists' node.
func (v *Lruvec) Node() *zone.Node { return v.node }

// account moves nr pages of list l into (nr > 0) or out of (nr < 0) the
// node's and zone's counters.
//
// Kernel: include/linux/mm_inline.h:update_lru_size().
func (v *Lruvec) account(f *Folio, l LRUList, nr int64) {
	v.node.ModState(zone.NodeNrInactiveAnon+zone.NodeStat(l), nr)
	z := f.zone()
	z.ModState(zone.ZoneNrZoneInactiveAnon+zone.ZoneStat(l), nr)
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
		n += v.node.Zone(t).State(zone.ZoneNrZoneInactiveAnon + zone.ZoneStat(l))
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
		v.node.ModState(iso, taken)
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
	v.node.ModState(iso, -nr)
}
