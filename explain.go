package mmsim

import (
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// Explain allocates a block of 1<<order pages for t with mask, exactly as
// AllocPages does, and returns what the allocator did and why: the mask
// after t's scopes (and which scope removed what), the zone and
// migratetype, the zonelist walk with each watermark check and its numbers
// (the ones /proc/zoneinfo prints), pcp or buddy, fallbacks, every
// slow-path step in order — kswapd, the reserves, direct reclaim and what
// it was allowed to do, compaction, the retry decisions with their numbers,
// the OOM killer and whom it killed, __GFP_NOFAIL, sleeps — and how it
// ended. Explanation.String prints it in the kernel's terms.
//
// Explain is not a dry run: the allocation happens, with all its side
// effects (reclaim, kills, simulated time); a dry run would need a copy of
// the machine. Explanation.Page is the caller's, who must free it with
// FreePages; Explanation.Err is the allocation's own error, as AllocPages
// would have returned it. The error result is only for a call Explain
// cannot make: a nil task or one this System did not create (ErrInvalid),
// or a closed System.
//
// One explanation runs at a time; other tasks meanwhile allocate as usual
// and are not recorded. Explain must not be called from a trace
// subscriber or a report sink.
//
// Kernel: mm/page_alloc.c:__alloc_frozen_pages_noprof(), __alloc_pages_slowpath().
func (s *System) Explain(t *memalloc.Task, mask gfp.Mask, order zone.Order) (*zone.Explanation, error) {
	if err := s.check(t); err != nil {
		return nil, err
	}
	return s.alloc.Explain(t, mask, order, zone.ExplainOptions{
		Alloc:        func() (zone.Page, error) { return s.AllocPages(t, mask, order) },
		ReportCount:  s.reportCount,
		ReportsSince: s.reportsSince,
	})
}

// reportCount returns how many reports have been filed.
func (s *System) reportCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reports)
}

// reportsSince returns the reports from index i on.
func (s *System) reportsSince(i int) []Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= len(s.reports) {
		return nil
	}
	return append([]Report(nil), s.reports[i:]...)
}
