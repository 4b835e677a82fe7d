package mmsim

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

// TestInPlaceWrites: however a trace in memory is handed over in Writes,
// the blocks replayed are its lines, whole and in order; with one Write,
// each a part of the text written, not a copy, but for the last line,
// which lacks its newline. A replay stopped early takes no more and ends
// without an error; a line too long ends it with bufio.ErrTooLong; no
// block keeps the text once the replay is over.
func TestInPlaceWrites(t *testing.T) {
	var b strings.Builder
	for i := range 4000 {
		fmt.Fprintf(&b, "line %d %s\n", i, strings.Repeat("x", i%97))
	}
	b.WriteString("last line, no newline")
	text := []byte(b.String())

	for _, chunk := range []int{len(text), 1, 7, 4093, replayBlockSize, replayBlockSize + 1} {
		var got bytes.Buffer
		copied := 0
		w := &inPlace{replay: func(blk *replayBlock) bool {
			require.True(t, len(blk.text) > 0 && (blk.text[len(blk.text)-1] == '\n' || got.Len()+len(blk.text) == len(text)),
				"chunk %d: a block of part of a line", chunk)
			if !bytes.Equal(blk.text, text[got.Len():got.Len()+len(blk.text)]) {
				t.Fatalf("chunk %d: block at %d out of order", chunk, got.Len())
			}
			if &blk.text[0] != &text[got.Len()] {
				copied++
			}
			got.Write(blk.text)
			return true
		}}
		for off := 0; off < len(text); off += chunk {
			n, err := w.Write(text[off:min(off+chunk, len(text))])
			require.NoError(t, err)
			require.Equal(t, min(chunk, len(text)-off), n)
		}
		require.NoError(t, w.run(w.carry))
		require.Equal(t, string(text), got.String(), "chunk %d", chunk)
		if chunk == len(text) {
			require.Equal(t, 1, copied, "one Write: only the last line, carried for its newline, is copied")
		}
	}

	// Replay's readers of a text in memory are cut in place.
	for _, r := range []io.Reader{bytes.NewReader(text), bytes.NewBuffer(text)} {
		off, copied := 0, 0
		require.NoError(t, replayPipeline(r, nil, func(blk *replayBlock) bool {
			if &blk.text[0] != &text[off] {
				copied++
			}
			off += len(blk.text)
			return true
		}))
		require.Equal(t, len(text), off)
		require.Equal(t, 1, copied, "%T", r)
	}

	// A replay in place keeps nothing of the text: a replay read after
	// it, into pooled blocks with lines split between reads, leaves it
	// as it was.
	kept := bytes.Clone(text)
	require.NoError(t, replayPipeline(bytes.NewReader(kept), nil, func(*replayBlock) bool { return true }))
	require.NoError(t, replayPipeline(iotest.HalfReader(strings.NewReader(strings.Repeat("z\n", 50000))), nil,
		func(*replayBlock) bool { return true }))
	require.Equal(t, text, kept)

	// Stopped, in memory: no error.
	require.NoError(t, replayPipeline(bytes.NewReader(text), nil, func(*replayBlock) bool { return false }))

	// Stopped after the first block: the Write says so, and takes no more.
	blocks := 0
	w := &inPlace{replay: func(*replayBlock) bool { blocks++; return false }}
	_, err := w.Write(text)
	require.ErrorIs(t, err, errReplayStopped)
	_, err = w.Write(text)
	require.ErrorIs(t, err, errReplayStopped)
	require.Equal(t, 1, blocks)

	// A line longer than replayMaxLine, whole or in pieces.
	long := bytes.Repeat([]byte("y"), replayMaxLine+1)
	w = &inPlace{replay: func(*replayBlock) bool { return true }}
	_, err = w.Write(long)
	require.ErrorIs(t, err, bufio.ErrTooLong)
	w = &inPlace{replay: func(*replayBlock) bool { return true }}
	_, err = w.Write([]byte("a\nb"))
	require.NoError(t, err)
	_, err = w.Write(long)
	require.ErrorIs(t, err, bufio.ErrTooLong)
}
