package zone

import (
	"errors"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

// AllocPagesBulk fills the empty (zero) entries of pages with order-0 pages
// and returns how many leading entries are populated. It takes them from the
// first zone whose low watermark covers the whole request, through the pcp
// list, without a per-page mm_page_alloc event; when it cannot (one page
// missing, no zone with room, nothing on the list) it falls back to one
// ordinary allocation, as the kernel does. Entries already set are kept.
//
// Kernel: mm/page_alloc.c:alloc_pages_bulk_noprof().
func (a *Allocator) AllocPagesBulk(t *memalloc.Task, mask gfp.Mask, pages []Page) (int, error) {
	if t == nil {
		return 0, invalidError("no task: every allocation needs its task (current)")
	}
	if cpu := t.CPU(); cpu < 0 || cpu >= len(a.cpuNode) {
		return 0, invalidError("task %s runs on CPU %d, which this machine does not have", t, cpu)
	}
	populated := 0
	for populated < len(pages) && pages[populated] != (Page{}) {
		populated++
	}
	want := len(pages) - populated
	if want == 0 {
		return populated, nil
	}
	if want == 1 || a.opts.Hooks != nil {
		return a.bulkFallback(t, mask, pages, populated)
	}
	mask &= a.allowedMask
	mask = t.GFPContext(mask)
	ac := allocContext{t: t}
	if err := a.prepare(&ac, mask); err != nil || ac.preferred < 0 {
		return a.bulkFallback(t, mask, pages, populated)
	}
	af := allocWmarkLow
	var z *Zone
	prefType := ac.zonelist[ac.preferred].typ
	for _, c := range ac.zonelist[ac.preferred:] {
		if c.typ > ac.highest {
			continue
		}
		if c.node != ac.zonelist[ac.preferred].node {
			break
		}
		if c.watermarkFast(0, c.wmarkPages(WmarkLow)+int64(want), prefType, af) {
			z = c
			break
		}
	}
	if z == nil {
		return a.bulkFallback(t, mask, pages, populated)
	}
	p := &z.pcp[t.CPU()]
	p.mu.Lock()
	l := &p.lists[orderToPindex(ac.mt, 0)]
	account := 0
	for populated < len(pages) {
		if pages[populated] != (Page{}) {
			populated++
			continue
		}
		if l.n == 0 {
			batch := z.nrPCPAlloc(p, 0)
			p.count += z.rmqueueBulk(t, 0, batch, l, ac.mt, af)
			if l.n == 0 {
				break
			}
		}
		off := l.popFront()
		p.count--
		s := psAlloc
		if mask&gfp.Movable != 0 {
			s |= psMovable
			z.countMovable(z.mm.pfnAt(off), 0, 1)
		}
		z.mm.setOwnerState(off, s)
		pages[populated] = Page{pfn: z.mm.pfnAt(off)}
		populated++
		account++
	}
	p.ev.pgalloc += int64(account)
	p.ev.numaLocal += int64(account)
	p.mu.Unlock()
	if account == 0 {
		return a.bulkFallback(t, mask, pages, populated)
	}
	return populated, nil
}

// bulkFallback allocates one page the ordinary way into pages[populated].
func (a *Allocator) bulkFallback(t *memalloc.Task, mask gfp.Mask, pages []Page, populated int) (int, error) {
	p, err := a.AllocPages(t, mask, 0)
	if err != nil {
		if errors.Is(err, ErrNoMemory) {
			return populated, nil // a short fill, as the kernel returns
		}
		return populated, err
	}
	pages[populated] = p
	return populated + 1, nil
}

// FreePagesBatched frees a batch of order-0 pages, as release_pages() frees
// a folio batch: each page is checked first and the batch is refused whole
// if one is bad; then mm_page_free fires for every page, and
// mm_page_free_batched for every page as it goes to the pcp list.
//
// Kernel: mm/page_alloc.c:free_unref_folios().
func (a *Allocator) FreePagesBatched(t *memalloc.Task, pages []Page) error {
	zones := make([]*Zone, len(pages))
	states := make([]uint8, len(pages))
	seen := make(map[PFN]bool, len(pages))
	for i, p := range pages {
		z, st, err := a.checkFree(t, p, 0)
		if err != nil {
			return err
		}
		states[i] = st
		if seen[p.pfn] {
			return a.freeBug(t, "free_unref_folios: pfn %#x appears twice in one batch (double free)", uint64(p.pfn))
		}
		seen[p.pfn] = true
		zones[i] = z
	}
	if a.trace.enabled() {
		for _, p := range pages {
			a.trace.emit(t, Event{Kind: EvPageFree, PFN: p.pfn})
		}
	}
	for i, p := range pages {
		a.freeChecked(t, zones[i], p, 0, states[i], EvPageFreeBatched)
	}
	return nil
}
