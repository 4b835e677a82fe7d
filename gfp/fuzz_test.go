package gfp_test

import (
	"testing"

	"github.com/mmsim/mmsim/gfp"
)

// FuzzParse checks that Parse never panics, and that whatever it accepts
// prints to a string that parses back to the same mask.
func FuzzParse(f *testing.F) {
	f.Add("GFP_KERNEL")                     // a composite
	f.Add("GFP_KERNEL|__GFP_ZERO")          // composite and bit
	f.Add("GFP_NOIO|__GFP_NOWARN")          // the greedy-order case
	f.Add("__GFP_HIGH|0xfc000000")          // leftover hex
	f.Add("none")                           // zero
	f.Add("")                               // empty
	f.Add("GFP_KERNEL||")                   // empty tokens
	f.Add("0x")                             // hex without digits
	f.Add(" GFP_NOFS | __GFP_NOLOCKDEP ")   // blanks
	f.Add("0xffffffffffffffffffffffffffff") // overflow
	f.Fuzz(func(t *testing.T, s string) {
		m, err := gfp.Parse(s)
		if err != nil {
			return
		}
		back, err := gfp.Parse(m.String())
		if err != nil || back != m {
			t.Fatalf("Parse(%q) = %#x, which prints %q and parses back to %#x, %v", s, uint32(m), m.String(), uint32(back), err)
		}
	})
}

// FuzzStringRoundTrip checks Parse(m.String()) == m for every mask, and that
// Names and String agree except for zero.
func FuzzStringRoundTrip(f *testing.F) {
	for _, m := range []uint32{0, 0xcc0, 0x2c00, 0x200, 0xfc000020, 0xffffffff, 0x1000000, 0x2000000} {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, v uint32) {
		m := gfp.Mask(v)
		back, err := gfp.Parse(m.String())
		if err != nil || back != m {
			t.Fatalf("%#x prints %q, which parses to %#x, %v", v, m.String(), uint32(back), err)
		}
		if m != 0 && m.Names() != m.String() {
			t.Fatalf("%#x: %%pGg %q differs from the tracepoint's %q", v, m.Names(), m.String())
		}
	})
}

// FuzzNested checks the algebra of gfp_nested_mask: it is idempotent, never
// adds a reclaim, IO, FS or reserve bit the caller did not have, always adds
// NORETRY|NOMEMALLOC|NOWARN, and keeps nothing outside its keep mask.
func FuzzNested(f *testing.F) {
	for _, m := range []uint32{0, 0xcc0, 0xc40, 0xc00, 0x820, 0x2800, 0x1000c40, 0xffffffff} {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, v uint32) {
		m := gfp.Mask(v)
		n := m.Nested()
		if n.Nested() != n {
			t.Fatalf("Nested is not idempotent on %s: %s then %s", m, n, n.Nested())
		}
		const constraints = gfp.Reclaim | gfp.IO | gfp.FS | gfp.High | gfp.Memalloc
		if n&constraints&^m != 0 {
			t.Fatalf("Nested(%s) = %s adds %s", m, n, n&constraints&^m)
		}
		const add = gfp.NoRetry | gfp.NoMemalloc | gfp.NoWarn
		if n&add != add {
			t.Fatalf("Nested(%s) = %s lacks %s", m, n, add&^n)
		}
		if n&^(gfp.Kernel|gfp.Atomic|gfp.NoLockdep|add) != 0 {
			t.Fatalf("Nested(%s) = %s keeps bits outside its mask", m, n)
		}
	})
}
