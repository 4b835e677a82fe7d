package memalloc_test

import (
	"testing"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

// upstream is every PF flag that exists in 7.2 among those mmsim names.
const upstream = memalloc.PFExiting | memalloc.PFWQWorker | memalloc.PFDumpCore |
	memalloc.PFMemalloc | memalloc.PFKcompactd | memalloc.PFKswapd |
	memalloc.PFMemallocNoFS | memalloc.PFMemallocNoIO | memalloc.PFKthread |
	memalloc.PFMemallocPin

// FuzzGFPContext checks the algebra of current_gfp_context. With upstream
// flags it only removes bits, and only IO, FS and MOVABLE; NOIO leaves neither
// IO nor FS, NOFS leaves no FS, PIN leaves no MOVABLE; applying it twice
// changes nothing more. With the reverted flags it may also remove
// DIRECT_RECLAIM and add NOWARN, and nothing else.
func FuzzGFPContext(f *testing.F) {
	f.Add(uint32(memalloc.PFMemallocNoFS), uint32(gfp.Kernel))
	f.Add(uint32(memalloc.PFMemallocNoIO|memalloc.PFMemallocNoFS), uint32(gfp.Kernel))
	f.Add(uint32(memalloc.PFMemallocPin), uint32(gfp.HighUserMovable))
	f.Add(uint32(memalloc.PFMemallocNoReclaim|memalloc.PFMemallocNoFS), uint32(gfp.Kernel|gfp.NoFail))
	f.Add(uint32(0xffffffff), uint32(0xffffffff))
	f.Fuzz(func(t *testing.T, pf, mask uint32) {
		flags, m := memalloc.Flags(pf), gfp.Mask(mask)
		tk := memalloc.NewTaskWith("fuzz", memalloc.WithFlags(flags&upstream))
		got := tk.GFPContext(m)
		if got&^m != 0 {
			t.Fatalf("flags %s add %s to %s", flags&upstream, got&^m, m)
		}
		if removed := m &^ got; removed&^(gfp.IO|gfp.FS|gfp.Movable) != 0 {
			t.Fatalf("flags %s remove %s from %s", flags&upstream, removed, m)
		}
		if tk.Flags()&memalloc.PFMemallocNoIO != 0 && got&(gfp.IO|gfp.FS) != 0 ||
			tk.Flags()&memalloc.PFMemallocNoFS != 0 && got&gfp.FS != 0 ||
			tk.Flags()&memalloc.PFMemallocPin != 0 && got&gfp.Movable != 0 {
			t.Fatalf("flags %s leave %s", tk.Flags(), got)
		}
		if tk.GFPContext(got) != got {
			t.Fatalf("not idempotent under %s: %s then %s", tk.Flags(), got, tk.GFPContext(got))
		}

		what := memalloc.NewTaskWith("what-if", memalloc.WithFlags(flags))
		got = what.GFPContext(m)
		if !what.InGFPScope() && got != m {
			t.Fatalf("flags %s: InGFPScope is false, yet GFPContext(%s) is %s", flags, m, got)
		}
		if added := got &^ m; added&^gfp.NoWarn != 0 {
			t.Fatalf("flags %s add %s to %s", flags, added, m)
		}
		if removed := m &^ got; removed&^(gfp.IO|gfp.FS|gfp.Movable|gfp.DirectReclaim) != 0 {
			t.Fatalf("flags %s remove %s from %s", flags, removed, m)
		}
	})
}

// scopeFlag picks a scope flag set from the low bits of a byte.
func scopeFlag(b byte) memalloc.Flags {
	var f memalloc.Flags
	for i, pf := range []memalloc.Flags{memalloc.PFMemallocNoFS, memalloc.PFMemallocNoIO,
		memalloc.PFMemallocPin, memalloc.PFMemalloc, memalloc.PFMemallocNoReclaim} {
		if b&(1<<i) != 0 {
			f |= pf
		}
	}
	return f
}

// FuzzScopes turns bytes into properly nested saves and restores: after each
// restore the flags are what they were before the matching save, at the end
// they are back to the start, and no misuse is reported.
func FuzzScopes(f *testing.F) {
	f.Add([]byte{0x02, 0x02, 0x01, 0x01})       // nested NOFS, unwound
	f.Add([]byte{0x02, 0x04, 0x0e, 0x01, 0x01}) // NOFS, NOIO, NOFS|NOIO|PIN
	f.Add([]byte{0x10, 0x3e, 0x01, 0x20, 0x01}) // several at once
	f.Add([]byte{0x02, 0x02, 0x02, 0x02, 0x02}) // never unwound by hand
	f.Fuzz(func(t *testing.T, ops []byte) {
		start := memalloc.PFKthread
		tk := memalloc.NewTaskWith("fuzz", memalloc.WithFlags(start))
		type open struct{ cookie, before memalloc.Flags }
		var stack []open
		unwind := func() {
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			tk.Restore(top.cookie)
			if tk.Flags() != top.before {
				t.Fatalf("restore(%s) left %s, want %s", top.cookie, tk.Flags(), top.before)
			}
		}
		for _, b := range ops {
			if b&1 == 0 && len(stack) < 32 {
				before := tk.Flags()
				stack = append(stack, open{tk.SaveFlags(scopeFlag(b >> 1)), before})
			} else if len(stack) > 0 {
				unwind()
			}
		}
		for len(stack) > 0 {
			unwind()
		}
		if tk.Flags() != start || tk.Err() != nil {
			t.Fatalf("flags %s (want %s), err %v", tk.Flags(), start, tk.Err())
		}
	})
}

// FuzzScopeMisuse throws arbitrary saves and restores (any cookie, any order)
// at a task: it never panics, and its flags always follow the kernel's
// arithmetic, flags |= f on save and flags &= ^cookie on restore, whatever
// misuse it records.
func FuzzScopeMisuse(f *testing.F) {
	f.Add([]byte{0x02, 0x03, 0x03})       // double restore
	f.Add([]byte{0x02, 0x02, 0x05, 0x01}) // outer closed first
	f.Add([]byte{0x07, 0x0b, 0x13})       // forged cookies
	f.Fuzz(func(t *testing.T, ops []byte) {
		tk := memalloc.NewTask("fuzz")
		var shadow memalloc.Flags
		var cookies []memalloc.Flags
		for _, b := range ops {
			switch {
			case b&1 == 0:
				fl := scopeFlag(b >> 1)
				cookies = append(cookies, tk.SaveFlags(fl))
				shadow |= fl
			case b&2 == 0 && len(cookies) > 0:
				c := cookies[int(b>>2)%len(cookies)] // any cookie, any order, maybe twice
				tk.Restore(c)
				shadow &^= c
			default:
				c := scopeFlag(b >> 2) // a forged cookie
				tk.Restore(c)
				shadow &^= c
			}
			if tk.Flags() != shadow {
				t.Fatalf("flags %s, the kernel's arithmetic gives %s", tk.Flags(), shadow)
			}
		}
	})
}

// FuzzScopeDetection drives saves and restores, in any order, against a
// reference that knows which save each restore belongs to. It checks that
// misuse is never reported when there was none — in particular, restoring
// scopes of different flags out of order is fine — and that a restore of
// bits that are not set, or of a cookie whose save is known to the ledger
// while another save that asked for one of its bits is open without any
// Restore(0) in between to blur it, is always reported.
func FuzzScopeDetection(f *testing.F) {
	f.Add([]byte{0x02, 0x04, 0x01, 0x05})             // NOFS, NOIO, restore out of order
	f.Add([]byte{0x06, 0x02, 0x04, 0x09, 0x01})       // the reviewer's blurred case
	f.Add([]byte{0x02, 0x04, 0x02, 0x04, 0x0d, 0x10}) // LIFO zero cookies
	f.Add([]byte{0x02, 0x02, 0x01, 0x03})             // outer closed before inner
	f.Add([]byte{0x0a, 0x07, 0x13, 0x02})             // forged cookies
	f.Fuzz(func(t *testing.T, ops []byte) {
		base := memalloc.PFKthread | memalloc.PFMemalloc
		tk := memalloc.NewTaskWith("fuzz", memalloc.WithFlags(base))
		type save struct {
			req, cookie memalloc.Flags
			open        bool
		}
		var saves []save
		misused := false
		for _, b := range ops {
			flagsBefore := tk.Flags()
			switch b & 3 {
			case 0: // save
				fl := scopeFlag(b >> 2)
				saves = append(saves, save{req: fl, cookie: tk.SaveFlags(fl), open: true})
				continue
			case 1, 2: // restore an earlier save, open or not
				if len(saves) == 0 {
					continue
				}
				i := int(b>>2) % len(saves)
				s := &saves[i]
				bad := !s.open || s.cookie&^flagsBefore != 0
				for j, o := range saves {
					if j != i && o.open && o.req&s.cookie != 0 {
						bad = true
					}
				}
				s.open = false
				misused = misused || bad
				tk.Restore(s.cookie)
			case 3: // a forged cookie: misuse unless it changes nothing
				c := scopeFlag(b >> 2)
				if c != 0 {
					misused = true
				}
				tk.Restore(c)
				if c&^flagsBefore != 0 && tk.Err() == nil {
					t.Fatalf("restore of %s with flags %s not reported", c, flagsBefore)
				}
			}
			if !misused && tk.Err() != nil {
				t.Fatalf("false report after correct usage: %v", tk.Err())
			}
		}
	})
}
