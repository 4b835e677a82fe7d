package mmsim

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// checkPFNTable checks m against the model: every key found at an entry
// its probe reaches, every entry in the model, and the counts.
func checkPFNTable(t *testing.T, m *pfnTable, model map[uint64]blockSlot) {
	t.Helper()
	var pages int64
	for pfn, s := range model {
		i := m.lookup(pfn)
		require.GreaterOrEqual(t, i, 0, "pfn %#x lost", pfn)
		require.Equal(t, s, m.ents[i].slot, "pfn %#x", pfn)
		pages += 1 << s.order()
	}
	n := 0
	for _, e := range m.ents {
		if e.key != 0 {
			n++
			_, ok := model[e.key-1]
			require.True(t, ok, "pfn %#x in the table, freed in the model", e.key-1)
		}
	}
	require.Equal(t, len(model), n)
	require.EqualValues(t, len(model), m.live)
	require.Equal(t, pages, m.pages)
	require.LessOrEqual(t, 2*m.live, int64(len(m.ents)), "more than half full")
}

// TestPFNTable runs random inserts and removes against a map: pfns
// dense in a few ranges (neighbours share home lines, runs wrap around
// the table's end) and scattered ones, across the table's growth.
func TestPFNTable(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	var m pfnTable
	model := map[uint64]blockSlot{}
	require.Equal(t, -1, m.lookup(5), "an empty table finds nothing")
	require.Zero(t, m.peek(5))
	draw := func() uint64 {
		switch r.IntN(3) {
		case 0:
			return uint64(r.IntN(4096)) // dense: long probe runs
		case 1:
			return 1<<30 + uint64(r.IntN(1<<12))<<9 // aligned, as large folios are
		}
		return r.Uint64N(maxRecordedPFN)
	}
	for step := range 100_000 {
		pfn := draw()
		if i := m.lookup(pfn); i >= 0 {
			s := m.remove(i)
			require.Equal(t, model[pfn], s, "pfn %#x", pfn)
			delete(model, pfn)
		} else {
			_, ok := model[pfn]
			require.False(t, ok, "pfn %#x not found", pfn)
			if len(model) < 3000 || r.IntN(2) == 0 {
				s := newBlockSlot(r.Uint64N(1<<40), int32(r.IntN(11)))
				m.insert(pfn, s)
				model[pfn] = s
			}
		}
		if step%25_000 == 0 {
			checkPFNTable(t, &m, model)
		}
	}
	checkPFNTable(t, &m, model)
	for pfn := range model {
		m.remove(m.lookup(pfn))
		delete(model, pfn)
	}
	checkPFNTable(t, &m, model)
	require.Zero(t, m.pages)

	// A released table's array comes back from the pool cleared (if the
	// pool keeps it: the race detector drops some Puts).
	m.insert(5, newBlockSlot(5, 0))
	n := len(m.ents)
	m.release()
	require.Zero(t, m.live)
	require.Empty(t, m.ents)
	var next pfnTable
	next.reuse()
	if len(next.ents) > 0 {
		require.Equal(t, n, len(next.ents))
		for _, e := range next.ents {
			require.Zero(t, e.key, "a reused array holds an old entry")
		}
		next.insert(3, newBlockSlot(9, 1))
		require.Equal(t, newBlockSlot(9, 1), next.ents[next.lookup(3)].slot)
		require.Equal(t, -1, next.lookup(5))
	}
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
	for pfn := uint64(4); len(same) < 5; pfn += 4 {
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
	require.Equal(t, newBlockSlot(0, 0), m.remove(m.lookup(0)))
	for _, pfn := range same[1:] {
		i := m.lookup(pfn)
		require.GreaterOrEqual(t, i, 0, "pfn %#x lost behind the hole", pfn)
		require.Equal(t, pfn, m.ents[i].slot.pfn())
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
