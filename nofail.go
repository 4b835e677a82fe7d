package mmsim

import (
	"fmt"
	"time"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
)

// nofailStallWarn is how often NofailLoop reports its stall: every 10 s,
// as warn_alloc's stall warning (ALLOC_STALL_WARN_MSECS).
const nofailStallWarn = 10 * time.Second

// nofailNever applies Config.Nofail to a __GFP_NOFAIL request of api that
// can never be satisfied (why says what makes it so). It returns
// handled=false under NofailKernel, where the API goes on with 7.2's own
// answer; otherwise the request's error.
func (s *System) nofailNever(t *memalloc.Task, api, site, why string, mask gfp.Mask) (handled bool, err error) {
	what := fmt.Sprintf("%s: __GFP_NOFAIL request can never be satisfied: %s, mode:%s", api, why, mask.Mode())
	switch s.cfg.Nofail.Policy {
	case NofailFail:
		return true, fmt.Errorf("%w: %s", ErrNoMemory, what)
	case NofailBug:
		s.reportAs(t, bug.Bug, site, "kernel BUG: "+what+" (policy: bug, the caller is killed)")
		if p := s.model.Proc(t); p != nil {
			p.Kill()
		}
		return true, fmt.Errorf("%w: %w: %s", ErrBug, ErrKilled, what)
	case NofailLoop:
		return true, s.nofailLoop(t, site, what)
	}
	return false, nil
}

// nofailLoop retries for ever, as "never fail" says, in steps of the
// stall-warning period: a stall report every 10 s of simulated time, then
// ErrDeadlock at Config.StallLimit (or never, with no limit, as the kernel
// would hang).
func (s *System) nofailLoop(t *memalloc.Task, site, what string) error {
	start := s.Now()
	for {
		s.clock.Sleep(int64(nofailStallWarn), nil)
		waited := time.Duration(s.Now() - start)
		s.reportAs(t, bug.Alloc, site, fmt.Sprintf("%s: allocation stall for %d secs (policy: loop): %s",
			t.Comm(), int64(waited/time.Second), what))
		if lim := s.cfg.StallLimit; lim > 0 && waited >= lim {
			return fmt.Errorf("%w: %s: looped %v (policy: loop)", ErrDeadlock, what, waited)
		}
	}
}

// reportAs files a report of kind from t at site.
func (s *System) reportAs(t *memalloc.Task, kind bug.Kind, site, text string) {
	s.report(Report{Kind: kind, Site: site, Text: text, Comm: t.Comm(), PID: t.PID(), Time: s.Now()})
}
