package mmsim

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// checkPFNTable checks m against the model: every block found where it
// belongs (an entry its probe reaches, or wide), nothing else held, and
// the counts.
func checkPFNTable(t *testing.T, m *pfnTable, model map[uint64]blockSlot) {
	t.Helper()
	var pages int64
	nwide := 0
	for pfn, s := range model {
		pages += 1 << s.order()
		if !fits(pfn, s) {
			require.Equal(t, s, m.wide[pfn], "pfn %#x", pfn)
			require.Equal(t, -1, m.lookup(pfn), "pfn %#x", pfn)
			nwide++
			continue
		}
		i := m.lookup(pfn)
		require.GreaterOrEqual(t, i, 0, "pfn %#x lost", pfn)
		require.Equal(t, s, m.ents[i].slot(), "pfn %#x", pfn)
		_, inWide := m.wide[pfn]
		require.False(t, inWide, "pfn %#x in wide too", pfn)
	}
	n := 0
	for _, e := range m.ents {
		if e.key != 0 {
			n++
			_, ok := model[uint64(e.key-1)]
			require.True(t, ok, "pfn %#x in the table, freed in the model", e.key-1)
		}
	}
	require.Equal(t, len(model)-nwide, n)
	require.Equal(t, n, m.used)
	require.Len(t, m.wide, nwide)
	require.EqualValues(t, len(model), m.live)
	require.Equal(t, pages, m.pages)
	require.LessOrEqual(t, 2*m.used, len(m.ents), "more than half full")
}

// TestPFNTable runs random inserts and takes against a map: pfns dense
// in a few ranges (neighbours share home lines, runs wrap around the
// table's end) and scattered ones, some too wide for an entry, with
// simulated blocks that fit an entry and ones that do not, across the
// table's growth.
func TestPFNTable(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	var m pfnTable
	model := map[uint64]blockSlot{}
	require.Equal(t, -1, m.lookup(5), "an empty table finds nothing")
	require.Zero(t, m.peek(5))
	_, ok := m.take(5, 0, true)
	require.False(t, ok)
	draw := func() uint64 {
		switch r.IntN(4) {
		case 0:
			return uint64(r.IntN(4096)) // dense: long probe runs
		case 1:
			return 1<<30 + uint64(r.IntN(1<<12))<<9 // aligned, as large folios are
		case 2:
			return math.MaxUint32 - 2 + uint64(r.IntN(4)) // both sides of an entry's key
		}
		return r.Uint64N(maxRecordedPFN)
	}
	block := func() blockSlot {
		if r.IntN(4) == 0 {
			return newBlockSlot(r.Uint64N(1<<40), int32(r.IntN(11)))
		}
		return newBlockSlot(r.Uint64N(1<<pfnEntryPFNBits), int32(r.IntN(11)))
	}
	var wide, narrow int
	for step := range 100_000 {
		pfn := draw()
		want, held := model[pfn]
		order := want.order()
		if r.IntN(4) == 0 {
			order = int32(r.IntN(11)) // a free of another order leaves the block
		}
		anyOrder := r.IntN(2) == 0
		s, ok := m.take(pfn, order, anyOrder)
		require.Equal(t, held && (anyOrder || order == want.order()), ok, "pfn %#x", pfn)
		if ok {
			require.Equal(t, want, s, "pfn %#x", pfn)
			delete(model, pfn)
		} else if !held && (len(model) < 3000 || r.IntN(2) == 0) {
			s := block()
			m.insert(pfn, s)
			model[pfn] = s
			if fits(pfn, s) {
				narrow++
			} else {
				wide++
			}
		}
		if step%25_000 == 0 {
			checkPFNTable(t, &m, model)
		}
	}
	require.Greater(t, narrow, 10_000)
	require.Greater(t, wide, 5_000)
	checkPFNTable(t, &m, model)
	for pfn, want := range model {
		s, ok := m.take(pfn, want.order(), false)
		require.True(t, ok)
		require.Equal(t, want, s)
		delete(model, pfn)
	}
	checkPFNTable(t, &m, model)
	require.Zero(t, m.pages)

	// A released table's array comes back from the pool cleared (if the
	// pool keeps it: the race detector drops some Puts).
	m.insert(5, newBlockSlot(5, 0))
	m.insert(1<<33, newBlockSlot(6, 0))
	n := len(m.ents)
	m.release()
	require.Zero(t, m.live)
	require.Empty(t, m.ents)
	require.Empty(t, m.wide)
	var next pfnTable
	next.reuse()
	if len(next.ents) > 0 {
		require.Equal(t, n, len(next.ents))
		for _, e := range next.ents {
			require.Zero(t, e.key, "a reused array holds an old entry")
		}
		next.insert(3, newBlockSlot(9, 1))
		require.Equal(t, newBlockSlot(9, 1), next.ents[next.lookup(3)].slot())
		require.Equal(t, -1, next.lookup(5))
	}
}

// TestPFNTableFits: the bounds of what an entry holds.
func TestPFNTableFits(t *testing.T) {
	ok := newBlockSlot(1<<pfnEntryPFNBits-1, 10)
	require.True(t, fits(math.MaxUint32-1, ok), "the largest key: pfn + 1 is 2^32 - 1")
	require.False(t, fits(math.MaxUint32, ok), "pfn + 1 would be 2^32")
	require.False(t, fits(5, newBlockSlot(1<<pfnEntryPFNBits, 0)), "a simulated pfn past the entry's bits")
	require.False(t, fits(5, newBlockSlot(0, 16)), "an order past the entry's bits")
	var m pfnTable
	m.insert(math.MaxUint32-1, ok)
	require.Equal(t, ok, m.ents[m.lookup(math.MaxUint32-1)].slot())
	require.Empty(t, m.wide)
}

// TestPFNTableRemoveShifts removes the head of a probe run whose later
// entries were displaced from the same home: each must still be found,
// which fails if remove leaves a hole before them.
func TestPFNTableRemoveShifts(t *testing.T) {
	var m pfnTable
	m.grow()
	n := uint64(len(m.ents))
	// Pfns whose groups hash alike are hard to name; pfns that differ by
	// a multiple of the table's size times the group do not share a home
	// either. So find some that do, by brute force.
	home := m.home(0)
	same := []uint64{0}
	for pfn := uint64(1) << pfnTableGroup; len(same) < 5; pfn += 1 << pfnTableGroup {
		if m.home(pfn) == home {
			same = append(same, pfn)
		}
	}
	for _, pfn := range same {
		m.insert(pfn, newBlockSlot(pfn, 0))
	}
	for i, pfn := range same {
		require.Equal(t, (home+i)%int(n), m.lookup(pfn), "pfn %#x", pfn)
	}
	s, ok := m.take(0, 0, false)
	require.True(t, ok)
	require.Equal(t, newBlockSlot(0, 0), s)
	for _, pfn := range same[1:] {
		i := m.lookup(pfn)
		require.GreaterOrEqual(t, i, 0, "pfn %#x lost behind the hole", pfn)
		require.Equal(t, pfn, m.ents[i].slot().pfn())
	}
	require.Equal(t, home, m.lookup(same[1]), "the next of the run moves into the hole")
}

// TestBlockSlot round-trips a block through its slot.
func TestBlockSlot(t *testing.T) {
	s := newBlockSlot(1<<40-1, 10)
	require.Equal(t, uint64(1<<40-1), s.pfn())
	require.Equal(t, int32(10), s.order())
}

// TestSameComm: the word compare of two comms agrees with a byte compare,
// for every length up to past a comm's, with the text going on past the
// comm (as in a trace) or not.
func TestSameComm(t *testing.T) {
	text := []byte("abcdefghijklmnopqrstu 17034 [000] abcdefghijklmnopqrstu 17034 [000]")
	const second = 34
	for n := 0; n <= 21; n++ {
		for flip := -1; flip < n; flip++ {
			b := bytes.Clone(text)
			if flip >= 0 {
				b[second+flip] ^= 0x20
			}
			x, y := b[:n], b[second:second+n]
			require.Equal(t, bytes.Equal(x, y), sameComm(x, y), "n %d flip %d", n, flip)
			// Cut at their ends: no room past them.
			x, y = bytes.Clone(x), bytes.Clone(y)
			require.Equal(t, bytes.Equal(x, y), sameComm(x, y), "cut, n %d flip %d", n, flip)
		}
		require.False(t, sameComm(text[:n], text[second:second+n+1]), "lengths %d and %d", n, n+1)
	}
}
