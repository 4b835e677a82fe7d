package mmsim_test

import (
	"testing"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// FuzzBuddy turns a byte stream into allocations and frees across three
// tasks, two CPUs, every common mask and the NOFS/NOIO/PIN/PF_MEMALLOC
// scopes on a small machine. After every operation the invariant checker
// recomputes the allocator's state, and no block handed out may overlap
// another one still held; bad frees must be refused and change nothing.
func FuzzBuddy(f *testing.F) {
	f.Add([]byte{0x00, 0x10, 0x21, 0x80, 0x81})                   // a few allocations and frees
	f.Add([]byte{0x0f, 0x0f, 0x0f, 0x0f, 0x8f, 0xf0, 0xf1})       // high orders, bad frees
	f.Add([]byte{0x33, 0x44, 0x55, 0x66, 0x77, 0x90, 0xa0, 0xb0}) // masks and scopes
	masks := []gfp.Mask{gfp.Kernel, gfp.HighUserMovable, gfp.Kernel | gfp.Reclaimable, gfp.Atomic,
		gfp.NoWait, gfp.Kernel | gfp.DMA, gfp.NoFS | gfp.NoFail, gfp.Kernel | gfp.Memalloc,
		gfp.Kernel | gfp.Movable | gfp.Reclaimable} // the last has no migratetype: refused
	f.Fuzz(func(t *testing.T, ops []byte) {
		s, err := mmsim.New(smallConfig(4096))
		if err != nil {
			t.Fatal(err)
		}
		tasks := []*memalloc.Task{s.NewTask("a"), s.NewTask("b"), s.NewTask("c")}
		type blk struct {
			p zone.Page
			o zone.Order
		}
		var held []blk
		owner := map[zone.PFN]int{} // page → index+1 in held order of allocation, for overlap checks
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i], ops[i+1]
			tk := tasks[int(arg>>6)%len(tasks)]
			switch {
			case op < 0x80: // allocate
				order := zone.Order(op & 0x0f)
				if order > zone.MaxPageOrder {
					order = zone.Order(op & 0x3)
				}
				mask := masks[(int(op>>4)+int(arg))%len(masks)] | gfp.NoWarn
				var cookie memalloc.Flags
				switch arg & 3 {
				case 1:
					cookie = tk.SaveNoFS()
				case 2:
					cookie = tk.SaveNoIO()
				case 3:
					cookie = tk.SaveFlags(memalloc.PFMemallocPin | memalloc.PFMemalloc)
				}
				tk.SetCPU(int(arg>>2) & 1)
				p, err := s.AllocPages(tk, mask, order)
				tk.Restore(cookie)
				if err != nil {
					if !errorsIs(err, mmsim.ErrNoMemory) && !errorsIs(err, mmsim.ErrDeadlock) &&
						!(mask.MobilityConflict() && errorsIs(err, mmsim.ErrInvalid)) {
						t.Fatalf("op %d: %v", i, err)
					}
					break
				}
				for q := p.PFN(); q < p.PFN()+1<<order; q++ {
					if owner[q] != 0 {
						t.Fatalf("op %d: order-%d block at %#x overlaps a held block", i, order, uint64(p.PFN()))
					}
					owner[q] = 1
				}
				held = append(held, blk{p, order})
			case op < 0xf0 && len(held) > 0: // free a held block
				j := int(arg) % len(held)
				b := held[j]
				if err := s.FreePages(tk, b.p, b.o); err != nil {
					t.Fatalf("op %d: %v", i, err)
				}
				for q := b.p.PFN(); q < b.p.PFN()+1<<b.o; q++ {
					delete(owner, q)
				}
				held[j] = held[len(held)-1]
				held = held[:len(held)-1]
			default: // a bad free: a pfn that is not a held head, a tail, or a wrong order
				pfn := zone.PFN(4096 + int(arg)*7)
				if len(held) > 0 && arg&1 == 1 {
					b := held[int(arg)%len(held)]
					pfn = b.p.PFN() + zone.PFN(int(arg>>1)%(1<<b.o)) // a page of a held block
					if pfn == b.p.PFN() && zone.Order(arg&3) == b.o {
						break // that would be a correct free
					}
				} else if owner[pfn] != 0 {
					break
				}
				if err := s.FreePages(tk, zone.PageOf(pfn), zone.Order(arg&3)); !errorsIs(err, mmsim.ErrBug) {
					t.Fatalf("op %d: bad free of %#x returned %v", i, uint64(pfn), err)
				}
			}
			if err := s.CheckInvariants(); err != nil {
				t.Fatalf("op %d: %v", i, err)
			}
		}
		for _, b := range held {
			if err := s.FreePages(tasks[0], b.p, b.o); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	})
}
