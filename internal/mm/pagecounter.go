package mm

import "sync/atomic"

// PageCounterMax is PAGE_COUNTER_MAX on 64-bit: LONG_MAX / PAGE_SIZE pages,
// the "no limit" of every counter (printed as 9007199254740988kB, or as
// "max" in the v2 files).
//
// Kernel: include/linux/page_counter.h:PAGE_COUNTER_MAX.
const PageCounterMax = int64(^uint64(0)>>1) / 4096

// PageCounter is a hierarchical page counter: usage charged to it is
// charged to every ancestor too, and a charge fails at the first one it
// would take past its max.
//
// The fields are atomic, as the kernel's: charges race with each other
// and with limit changes, and the algorithm is the kernel's speculative
// add-then-check, so the same races give the same answers.
//
// Kernel: include/linux/page_counter.h:struct page_counter,
// mm/page_counter.c.
type PageCounter struct {
	usage          atomic.Int64
	max            atomic.Int64
	high           atomic.Int64
	low, min       atomic.Int64
	watermark      atomic.Int64 // the peak: max_usage_in_bytes
	localWatermark atomic.Int64 // memory.peak's resettable peak
	failcnt        atomic.Int64

	// The protection tracking of the memory counter (protection_support):
	// the part of usage under min and low, and the children's sums.
	minUsage, lowUsage                 atomic.Int64
	childrenMinUsage, childrenLowUsage atomic.Int64
	emin, elow                         atomic.Int64

	parent       *PageCounter
	protection   bool
	trackFailcnt bool
}

// init is page_counter_init: no limit, no high, no protection.
//
// Kernel: include/linux/page_counter.h:page_counter_init().
func (c *PageCounter) init(parent *PageCounter, protection bool) {
	c.parent, c.protection = parent, protection
	c.max.Store(PageCounterMax)
	c.high.Store(PageCounterMax)
}

// Usage returns the pages charged (page_counter_read).
func (c *PageCounter) Usage() int64 { return c.usage.Load() }

// Max returns the limit in pages.
func (c *PageCounter) Max() int64 { return c.max.Load() }

// High returns the high boundary in pages.
func (c *PageCounter) High() int64 { return c.high.Load() }

// Low returns the best-effort protection in pages.
func (c *PageCounter) Low() int64 { return c.low.Load() }

// Min returns the hard protection in pages.
func (c *PageCounter) Min() int64 { return c.min.Load() }

// Watermark returns the highest usage seen.
func (c *PageCounter) Watermark() int64 { return c.watermark.Load() }

// LocalWatermark returns the highest usage since the last reset of
// memory.peak.
func (c *PageCounter) LocalWatermark() int64 { return c.localWatermark.Load() }

// Failcnt returns how often a charge failed at this counter (counted only
// on cgroup v1, where failcnt is a file).
func (c *PageCounter) Failcnt() int64 { return c.failcnt.Load() }

// propagateProtected updates the part of usage this counter's min and low
// protect, and the parent's sums of them.
//
// Kernel: mm/page_counter.c:propagate_protected_usage().
func (c *PageCounter) propagateProtected(usage int64) {
	if c.parent == nil {
		return
	}
	if p := min(usage, c.min.Load()); p != c.minUsage.Load() {
		if d := p - c.minUsage.Swap(p); d != 0 {
			c.parent.childrenMinUsage.Add(d)
		}
	}
	if p := min(usage, c.low.Load()); p != c.lowUsage.Load() {
		if d := p - c.lowUsage.Swap(p); d != 0 {
			c.parent.childrenLowUsage.Add(d)
		}
	}
}

// raiseWatermarks records a new usage in the peaks.
func (c *PageCounter) raiseWatermarks(n int64) {
	if n > c.localWatermark.Load() {
		c.localWatermark.Store(n)
		if n > c.watermark.Load() {
			c.watermark.Store(n)
		}
	}
}

// cancel takes nr pages off this counter alone. An underflow is a kernel
// bug: the counter is reset to zero and the caller reports it.
//
// Kernel: mm/page_counter.c:page_counter_cancel().
func (c *PageCounter) cancel(nr int64) (underflow bool) {
	n := c.usage.Add(-nr)
	if n < 0 {
		c.usage.Store(0)
		n, underflow = 0, true
	}
	if c.protection {
		c.propagateProtected(n)
	}
	return underflow
}

// Charge charges nr pages to the counter and its ancestors, past any limit.
//
// Kernel: mm/page_counter.c:page_counter_charge().
func (c *PageCounter) Charge(nr int64) {
	for p := c; p != nil; p = p.parent {
		n := p.usage.Add(nr)
		if c.protection {
			p.propagateProtected(n)
		}
		p.raiseWatermarks(n)
	}
}

// TryCharge charges nr pages to the counter and its ancestors unless one of
// them would go past its max; then it charges none, counts a failure in
// that counter's failcnt (where tracked) and returns it.
//
// Kernel: mm/page_counter.c:page_counter_try_charge().
func (c *PageCounter) TryCharge(nr int64) (fail *PageCounter) {
	for p := c; p != nil; p = p.parent {
		n := p.usage.Add(nr)
		if n > p.max.Load() {
			p.usage.Add(-nr)
			if p.trackFailcnt {
				p.failcnt.Add(1)
			}
			for q := c; q != p; q = q.parent {
				q.cancel(nr)
			}
			return p
		}
		if c.protection {
			p.propagateProtected(n)
		}
		p.raiseWatermarks(n)
	}
	return nil
}

// Uncharge takes nr pages off the counter and its ancestors, and reports
// whether any went below zero.
//
// Kernel: mm/page_counter.c:page_counter_uncharge().
func (c *PageCounter) Uncharge(nr int64) (underflow bool) {
	for p := c; p != nil; p = p.parent {
		underflow = p.cancel(nr) || underflow
	}
	return underflow
}

// SetMax sets the limit unless usage is already above it: then it returns
// false (-EBUSY) and the limit is unchanged.
//
// Kernel: mm/page_counter.c:page_counter_set_max().
func (c *PageCounter) SetMax(nr int64) bool {
	for {
		usage := c.usage.Load()
		if usage > nr {
			return false
		}
		old := c.max.Swap(nr)
		if c.usage.Load() <= usage || nr >= old {
			return true
		}
		c.max.Store(old)
	}
}

// setMin and setLow set the protections and propagate them up.
//
// Kernel: mm/page_counter.c:page_counter_set_min(), page_counter_set_low().
func (c *PageCounter) setMin(nr int64) {
	c.min.Store(nr)
	for p := c; p != nil; p = p.parent {
		p.propagateProtected(p.usage.Load())
	}
}

func (c *PageCounter) setLow(nr int64) {
	c.low.Store(nr)
	for p := c; p != nil; p = p.parent {
		p.propagateProtected(p.usage.Load())
	}
}

// ResetWatermark sets the peak to the current usage (writing
// memory.max_usage_in_bytes).
//
// Kernel: include/linux/page_counter.h:page_counter_reset_watermark().
func (c *PageCounter) ResetWatermark() {
	u := c.usage.Load()
	c.watermark.Store(u)
	c.localWatermark.Store(u)
}

// effectiveProtection distributes a parent's effective protection among
// its children in proportion to their protected usage.
//
// Kernel: mm/page_counter.c:effective_protection().
func effectiveProtection(usage, parentUsage, setting, parentEffective, siblingsProtected int64, recursive bool) int64 {
	protected := min(usage, setting)
	if siblingsProtected > parentEffective {
		return protected * parentEffective / siblingsProtected
	}
	ep := protected
	if !recursive {
		return ep
	}
	if parentEffective > siblingsProtected && parentUsage > siblingsProtected && usage > protected {
		unclaimed := parentEffective - siblingsProtected
		unclaimed = unclaimed * (usage - protected) / (parentUsage - siblingsProtected)
		ep += unclaimed
	}
	return ep
}

// calculateProtection computes the counter's emin and elow for a reclaim
// of the subtree under root.
//
// Kernel: mm/page_counter.c:page_counter_calculate_protection().
func (c *PageCounter) calculateProtection(root *PageCounter, recursive bool) {
	if root == c {
		return
	}
	usage := c.usage.Load()
	if usage == 0 {
		return
	}
	p := c.parent
	if p == root {
		c.emin.Store(c.min.Load())
		c.elow.Store(c.low.Load())
		return
	}
	pu := p.usage.Load()
	c.emin.Store(effectiveProtection(usage, pu, c.min.Load(), p.emin.Load(), p.childrenMinUsage.Load(), recursive))
	c.elow.Store(effectiveProtection(usage, pu, c.low.Load(), p.elow.Load(), p.childrenLowUsage.Load(), recursive))
}
