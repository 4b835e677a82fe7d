package sim

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/sync/errgroup"
)

// tickDaemon runs every period until it has run n times.
type tickDaemon struct {
	name   string
	next   int64
	period int64
	runs   []int64
	n      int
}

func (d *tickDaemon) Name() string { return d.name }
func (d *tickDaemon) Next() int64  { return d.next }
func (d *tickDaemon) Run(now int64) {
	d.runs = append(d.runs, now)
	if len(d.runs) >= d.n {
		d.next = Never
		return
	}
	d.next = now + d.period
}

func TestSleepRunsDueDaemonsInOrder(t *testing.T) {
	var c Clock
	a := &tickDaemon{name: "a", next: 10, period: 100, n: 3}
	b := &tickDaemon{name: "b", next: 50, period: 1000, n: 5}
	c.Register(a)
	c.Register(b)
	c.Advance(5)
	assert.False(t, c.Sleep(300, nil))
	assert.Equal(t, int64(305), c.Now())
	assert.Equal(t, []int64{10, 110, 210}, a.runs)
	assert.Equal(t, []int64{50}, b.runs)
}

func TestSleepEndsWhenConditionHolds(t *testing.T) {
	var c Clock
	a := &tickDaemon{name: "a", next: 0, period: Jiffy, n: 100}
	c.Register(a)
	ok := c.Sleep(HZ*Jiffy, func() bool { return len(a.runs) == 4 })
	assert.True(t, ok)
	assert.Equal(t, 3*Jiffy, c.Now(), "the fourth run is at 3 ticks")
	assert.Equal(t, int64(4_000_000), Jiffy, "HZ=250")
}

func TestStepAndRunUntilIdle(t *testing.T) {
	var c Clock
	a := &tickDaemon{name: "a", next: 100, period: 100, n: 4}
	c.Register(a)
	assert.False(t, c.Step(50))
	assert.True(t, c.Step(100))
	assert.Equal(t, int64(100), c.Now())
	assert.Equal(t, 3, c.RunUntilIdle(1e9))
	assert.Equal(t, int64(400), c.Now())
	assert.Equal(t, 0, c.RunUntilIdle(1e9))
}

func TestRatelimit(t *testing.T) {
	r := Ratelimit{Interval: 10, Burst: 2}
	ok, _ := r.Allow(0)
	assert.True(t, ok)
	ok, _ = r.Allow(5)
	assert.True(t, ok)
	ok, _ = r.Allow(9)
	assert.False(t, ok, "the burst is spent")
	ok, _ = r.Allow(10)
	assert.False(t, ok, "the interval ends strictly after begin+interval")
	ok, suppressed := r.Allow(11)
	assert.True(t, ok)
	assert.Equal(t, 2, suppressed)
}

// TestAsyncWaitsRunDaemonsOnTheirGoroutines checks the asynchronous mode:
// a wait lets each daemon's own goroutine run what falls due, in time
// order for a single caller, and the goroutines stop with the context.
func TestAsyncWaitsRunDaemonsOnTheirGoroutines(t *testing.T) {
	var c Clock
	a := &tickDaemon{name: "a", next: 10, period: 100, n: 3}
	b := &tickDaemon{name: "b", next: 50, period: 1000, n: 5}
	c.Register(a)
	c.Register(b)
	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	c.Start(ctx, &g)
	c.Advance(5)
	assert.False(t, c.Sleep(300, nil))
	assert.Equal(t, int64(305), c.Now())
	c.mu.Lock() // the daemons' state is the clock's to guard
	assert.Equal(t, []int64{10, 110, 210}, a.runs)
	assert.Equal(t, []int64{50}, b.runs)
	c.mu.Unlock()
	assert.Equal(t, 2, c.RunUntilIdle(2000), "b at 1050 and 2050")
	cancel()
	assert.NoError(t, g.Wait())
	assert.Equal(t, 2, c.RunUntilIdle(2000), "after the stop, waits run daemons inline: b at 3050 and 4050")
}

// lookDaemon counts the looks at it, and runs a hook on each.
type lookDaemon struct {
	tickDaemon
	looks  int
	onLook func()
}

func (d *lookDaemon) Next() int64 {
	d.looks++
	if d.onLook != nil {
		d.onLook()
	}
	return d.next
}

// TestAdvanceLooksOnlyWhenDue: Advance runs a daemon when the clock
// reaches its time, and looks at the daemons again only then or after a
// Kick; a wakeup that comes while it looks is not lost.
func TestAdvanceLooksOnlyWhenDue(t *testing.T) {
	var c Clock
	a := &lookDaemon{tickDaemon: tickDaemon{name: "a", next: 100, period: 100, n: 2}}
	c.Register(a)
	c.Advance(10)
	looks := a.looks
	for range 8 {
		c.Advance(10)
	}
	assert.Equal(t, looks, a.looks, "looked before 100")
	assert.Empty(t, a.runs)
	c.Advance(10)
	assert.Equal(t, []int64{100}, a.runs)
	c.Advance(150)
	assert.Equal(t, []int64{100, 200}, a.runs)
	c.Advance(10) // a sleeps for good: one look, then none
	looks = a.looks
	c.Advance(1000)
	assert.Equal(t, looks, a.looks, "looked at a sleeping daemon")

	// A wakeup: the next Advance runs it.
	a.next, a.n = c.Now(), 3
	c.Kick()
	c.Advance(1)
	assert.Len(t, a.runs, 3)

	// A wakeup of b while Advance looks at a (another goroutine's, after
	// the look passed b): the look does not hide it.
	var c2 Clock
	b := &tickDaemon{name: "b", next: Never, period: 1, n: 1}
	a2 := &lookDaemon{tickDaemon: tickDaemon{name: "a", next: 1000, period: 1000, n: 1}}
	c2.Register(b)
	c2.Register(a2)
	a2.onLook = func() {
		a2.onLook = nil
		b.next = c2.Now()
		c2.Kick()
	}
	c2.Advance(1) // looks at b, asleep, then at a, which wakes b
	assert.Empty(t, b.runs)
	c2.Advance(1)
	assert.Len(t, b.runs, 1, "a wakeup during a look was lost")
}
