package mmsim

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// isTerminal reports whether f is a terminal (a character device), the
// test the standard library's own tools make without a terminal package.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar shows how much of the trace a replay has taken, redrawing
// one line on w at most ten times a second: "replay [=====>    ] 45% 1.2
// MB/2.7 MB 123456 events". The size is known when the reader is a file
// (or has a Len or Size method); otherwise the bar shows bytes and events
// only.
type progressBar struct {
	w     io.Writer
	total int64
	// read counts the bytes of the trace cut into blocks. It is written
	// by whichever replay goroutine cuts the next block, and read by the
	// caller's, which draws.
	read atomic.Int64
	last time.Time
}

// newProgressBar returns a bar on w for a replay of r.
func newProgressBar(w io.Writer, r io.Reader) *progressBar {
	p := &progressBar{w: w, total: -1}
	switch v := r.(type) {
	case interface{ Len() int }:
		p.total = int64(v.Len())
	case interface{ Size() int64 }:
		p.total = v.Size()
	case *os.File:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() {
			p.total = fi.Size()
		}
	}
	return p
}

// draw redraws the bar if a tenth of a second has passed.
func (p *progressBar) draw(events int64) {
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.print(events, false)
	}
}

// done draws the final state and ends the line.
func (p *progressBar) done(events int64) { p.print(events, true) }

func (p *progressBar) print(events int64, final bool) {
	const width = 30
	var b strings.Builder
	b.WriteString("\rreplay ")
	if p.total > 0 {
		frac := min(float64(p.read.Load())/float64(p.total), 1)
		fill := int(frac * width)
		b.WriteByte('[')
		b.WriteString(strings.Repeat("=", fill))
		if fill < width {
			b.WriteByte('>')
			b.WriteString(strings.Repeat(" ", width-fill-1))
		}
		fmt.Fprintf(&b, "] %3.0f%% %s/%s", frac*100, mbytes(p.read.Load()), mbytes(p.total))
	} else {
		b.WriteString(mbytes(p.read.Load()))
	}
	fmt.Fprintf(&b, " %d events", events)
	if final {
		b.WriteByte('\n')
	}
	io.WriteString(p.w, b.String())
}

func mbytes(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
