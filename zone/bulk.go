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
// As in the kernel, the bulk part applies gfp_allowed_mask but not the
// task's scope; the one-page fallback applies both.
//
// Kernel: mm/page_alloc.c:alloc_pages_bulk_noprof().
func (a *Allocator) AllocPagesBulk(t *memalloc.Task, mask gfp.Mask, pages []Page) (int, error) {
	if err := a.taskError(t, "allocation"); err != nil {
		return 0, err
	}
	populated := 0
	for populated < len(pages) && pages[populated] != (Page{}) {
		populated++
	}
	want := len(pages) - populated
	if want == 0 {
		return populated, nil
	}
	if want == 1 || mask&gfp.Account != 0 && a.kmem.charger != nil {
		// An accounted bulk request takes one page the ordinary way,
		// charged there.
		return a.bulkFallback(t, mask, pages, populated)
	}
	mask &= a.allowedMask
	if mask.MobilityConflict() {
		return populated, a.mobilityConflict(t, mask)
	}
	ac := allocContext{t: t}
	if err := a.prepare(&ac, mask); err != nil || ac.preferred < 0 {
		return a.bulkFallback(t, mask, pages, populated)
	}
	h := a.opts.Hooks
	if h != nil {
		h.MightAlloc(t, mask)
		if h.ShouldFailAlloc(t, mask, 0) {
			return populated, nil // prepare_alloc_pages failed: goto out
		}
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
		if mark := c.wmarkPages(WmarkLow) + int64(want); c.watermarkFast0(0, mark, prefType, af) || c.watermarkRest(0, mark, prefType, af) {
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
	var fresh []Page // the pages this call allocated, for the hooks
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
		if h != nil {
			fresh = append(fresh, pages[populated])
		}
		populated++
		account++
	}
	p.ev.pgalloc += int64(account)
	p.ev.numaHit += int64(account)
	if z.node == a.cpuNode[t.CPU()] {
		p.ev.numaLocal += int64(account)
	} else {
		z.numaRemote[NumaOther].Add(int64(account))
	}
	p.mu.Unlock()
	if account == 0 {
		return a.bulkFallback(t, mask, pages, populated)
	}
	for _, pg := range fresh { // post_alloc_hook, after the pcp lock is dropped
		h.PostAlloc(t, pg, 0, mask)
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
	if err := a.taskError(t, "free"); err != nil { // an empty batch too
		return err
	}
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
	// First pass: free_pages_prepare per page (hooks, mm_page_free);
	// second pass: each page to the pcp list, with mm_page_free_batched.
	for _, p := range pages {
		a.freePrepare(t, p, 0)
	}
	for i, p := range pages {
		if a.trace.enabled() {
			a.trace.emit(t, Event{Kind: EvPageFreeBatched, PFN: p.pfn})
		}
		a.freeChecked(t, zones[i], p, 0, states[i])
	}
	return nil
}
