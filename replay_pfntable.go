package mmsim

import (
	"math"
	"math/bits"
	"sync"
)

// blockSlot is the simulated block standing for a recorded one: its pfn
// in the low 48 bits, its order above.
type blockSlot uint64

func newBlockSlot(pfn uint64, order int32) blockSlot {
	return blockSlot(pfn) | blockSlot(order)<<48
}

func (s blockSlot) pfn() uint64  { return uint64(s) & (1<<48 - 1) }
func (s blockSlot) order() int32 { return int32(s >> 48) }

// maxRecordedPFN bounds the recorded pfns a replay accepts: x86-64's
// MAX_PHYSMEM_BITS (52 with five-level paging, 46 without:
// arch/x86/include/asm/sparsemem.h) less PAGE_SHIFT (12) gives 2^40
// pages, 4 PiB.
const maxRecordedPFN = 1 << 40

// pfnTable maps the recorded pfns of the blocks a replay holds to the
// simulated blocks standing for them: a hash table of the blocks live at
// once, open-addressed with linear probing and deleted from by backward
// shift, at most half full.
//
// A capture's pfns are scattered over the recorded machine's memory (the
// tar capture's 51,522 distinct pfns lie in 1,467 of the 6,058 512-page
// ranges up to its highest), so a table indexed by pfn would be mostly
// zeros to allocate, clear and page in; this one holds what is live.
// Eight pfns in a row share a home line, so a run of neighbouring order-0
// pages, as the pcp lists hand them out (nearly three events in four of
// the anon capture name the pfn after the last one's), costs one cache
// miss, not eight.
//
// An entry is eight bytes: the bundled captures' tables grow to 128K
// entries (more than 32K blocks live at once), 1 MiB, where sixteen-byte
// entries made 2 MiB, twice this machine's L2. A replay's lookups are
// mostly cache misses: the pass that takes them ahead (replayer.prefetch)
// was a fifth of the replay's sequential stage, and the eight-byte
// entries halved the table's misses in a 1 MiB cache model (cachegrind,
// the anon capture). A block whose recorded pfn or simulated block does
// not fit an entry (a recorded pfn of 2^32 - 1 or more, 16 TiB; a
// simulated pfn of 2^28 or more, 1 TiB) is kept in wide, a map.
type pfnTable struct {
	ents []pfnEntry // a power of two long, or empty
	// shift turns a hash into a home group: 64 - log2(len(ents)) +
	// pfnTableGroup.
	shift uint8
	// used counts the entries in ents.
	used int
	// wide holds the blocks that do not fit an entry, by recorded pfn.
	wide map[uint64]blockSlot
	// live counts the blocks, in ents and wide; pages the pages they hold.
	live, pages int64
}

// pfnEntry is one live block: its recorded pfn + 1 (0: the entry is
// empty), and its simulated block's pfn in the low pfnEntryPFNBits bits
// of block and its order above.
type pfnEntry struct{ key, block uint32 }

const (
	pfnTableMin   = 1 << 10 // entries in a table's first allocation
	pfnTableGroup = 3       // log2 of the neighbouring pfns sharing a home line
	// pfnEntryPFNBits bounds the simulated pfns an entry holds.
	pfnEntryPFNBits = 28
)

// fits reports whether the block s at recorded pfn fits an entry.
func fits(pfn uint64, s blockSlot) bool {
	return pfn < math.MaxUint32 && s.pfn() < 1<<pfnEntryPFNBits && s.order() < 1<<(32-pfnEntryPFNBits)
}

// slot returns the block of e.
func (e pfnEntry) slot() blockSlot {
	return newBlockSlot(uint64(e.block&(1<<pfnEntryPFNBits-1)), int32(e.block>>pfnEntryPFNBits))
}

// home returns the index where pfn's probe starts: a Fibonacci hash of
// pfn's group of eight, then its place within the group.
func (m *pfnTable) home(pfn uint64) int {
	// shift is below 64 (a table has pfnTableMin entries or more): the
	// mask tells the compiler so, sparing it a shift's check.
	g := (pfn >> pfnTableGroup) * 0x9e3779b97f4a7c15 >> (m.shift & 63)
	return int(g<<pfnTableGroup | pfn&(1<<pfnTableGroup-1))
}

// lookup returns the index of pfn's entry, or -1 if ents holds none (the
// block may be in wide).
func (m *pfnTable) lookup(pfn uint64) int {
	if len(m.ents) == 0 || pfn >= math.MaxUint32 {
		return -1
	}
	key := uint32(pfn + 1)
	mask := len(m.ents) - 1
	for i := m.home(pfn); ; i = (i + 1) & mask {
		switch m.ents[i].key {
		case key:
			return i
		case 0:
			return -1
		}
	}
}

// peek loads pfn's home entry and returns its key, for a caller that
// wants the line in the cache before it needs it.
func (m *pfnTable) peek(pfn uint64) uint32 {
	if len(m.ents) == 0 {
		return 0
	}
	return m.ents[m.home(pfn)].key
}

// insert adds pfn's block.
//
// Preconditions: pfn < maxRecordedPFN and pfn holds no block.
func (m *pfnTable) insert(pfn uint64, s blockSlot) {
	m.live++
	m.pages += 1 << s.order()
	if !fits(pfn, s) {
		if m.wide == nil {
			m.wide = map[uint64]blockSlot{}
		}
		m.wide[pfn] = s
		return
	}
	if 2*(m.used+1) > len(m.ents) {
		m.grow()
	}
	m.place(pfnEntry{uint32(pfn + 1), uint32(s.pfn()) | uint32(s.order())<<pfnEntryPFNBits})
	m.used++
}

// take removes pfn's block and returns it, if pfn holds a block and
// either anyOrder is set or the block's order is order.
func (m *pfnTable) take(pfn uint64, order int32, anyOrder bool) (blockSlot, bool) {
	var s blockSlot
	if i := m.lookup(pfn); i >= 0 {
		if s = m.ents[i].slot(); !anyOrder && s.order() != order {
			return 0, false
		}
		m.remove(i)
	} else {
		var ok bool
		if len(m.wide) == 0 {
			return 0, false // the common case, without a map lookup's call
		}
		if s, ok = m.wide[pfn]; !ok || !anyOrder && s.order() != order {
			return 0, false
		}
		delete(m.wide, pfn)
	}
	m.live--
	m.pages -= 1 << s.order()
	return s, true
}

// remove empties entry i. Each entry after it in the run that would be
// found sooner at i moves back into the hole, so that no probe stops at
// an empty entry before reaching its key.
func (m *pfnTable) remove(i int) {
	m.used--
	mask := len(m.ents) - 1
	for j := (i + 1) & mask; m.ents[j].key != 0; j = (j + 1) & mask {
		// The entry at j may fill the hole at i if its home is not
		// cyclically in (i, j]: its probe passed i on the way to j.
		if h := m.home(uint64(m.ents[j].key - 1)); (j-h)&mask >= (j-i)&mask {
			m.ents[i] = m.ents[j]
			i = j
		}
	}
	m.ents[i] = pfnEntry{}
}

// pfnEntriesPool keeps the entry arrays of finished replays' tables,
// cleared. A capture's table grows to megabytes, and memory new to the
// process costs a page fault per 4 KiB on its first write: when the heap
// had just grown, the faults of the tar capture's table made its replay
// a third slower. A replay after another starts with its predecessor's
// array.
var pfnEntriesPool sync.Pool // of *[]pfnEntry

// reuse starts m with a pooled array, if there is one.
//
// Preconditions: m is new.
func (m *pfnTable) reuse() {
	if p, ok := pfnEntriesPool.Get().(*[]pfnEntry); ok {
		m.setEntries(*p)
	}
}

// release clears m, giving its array to the pool.
func (m *pfnTable) release() {
	if ents := m.ents; len(ents) > 0 {
		clear(ents)
		pfnEntriesPool.Put(&ents)
	}
	*m = pfnTable{}
}

// setEntries makes ents, empty and a power of two long, m's array.
func (m *pfnTable) setEntries(ents []pfnEntry) {
	m.ents = ents
	m.shift = uint8(64 - bits.TrailingZeros(uint(len(ents))) + pfnTableGroup)
}

// grow doubles the table (or makes its first) and rehashes the entries.
func (m *pfnTable) grow() {
	old := m.ents
	n := max(2*len(old), pfnTableMin)
	m.setEntries(make([]pfnEntry, n))
	for _, e := range old {
		if e.key != 0 {
			m.place(e)
		}
	}
}

// place puts e at the first empty entry of its probe.
func (m *pfnTable) place(e pfnEntry) {
	mask := len(m.ents) - 1
	i := m.home(uint64(e.key - 1))
	for m.ents[i].key != 0 {
		i = (i + 1) & mask
	}
	m.ents[i] = e
}
