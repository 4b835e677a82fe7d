package mmsim

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/perfscript"
)

// A replay is a pipeline of two goroutines, the caller's and a decoder.
// The trace is split into blocks of whole lines, which parse alone. The
// caller replays the blocks in the order they were read; whenever the next
// one is not decoded yet, it decodes a later one itself rather than wait.
// The decoder goroutine decodes blocks as long as there is room for them.
// Parsing is most of a replay's work, so on a machine with two CPUs it
// spreads over both while the replay, the one sequential part, never
// waits for a CPU: a third goroutine would time-share with it. The replay
// sees the capture's order, so it is as deterministic as a single loop.
// A trace already in memory is cut into blocks in place: copying the tar
// capture's 26 MB into blocks had made its replay 8-15% slower.

// replayEvent is one decoded event: what the replay needs of a
// perfscript.Event, with the gfp mask parsed. It is kept small (80 bytes,
// where a perfscript.Event is over 200): a capture's events, written by
// one goroutine and read by another, are more bytes than its text.
type replayEvent struct {
	Time int64
	// Addr is what the event names: a page event's pfn, a slab event's
	// object (ptr), a vmap area's start.
	Addr uint64
	// Size is a slab allocation's bytes_req or a vmap area's size.
	Size int64
	TID  int
	// Line is the event's line in its block.
	Line, CPU int32
	// Order is a page event's order, saturated to the int32 range.
	Order int32
	// Mask is the parsed gfp_flags, of the names the modelled kernel
	// knows; MaskOK false means the text, GFP, is not a mask at all, and
	// Unknown that it names flags the modelled kernel lacks.
	Mask    gfp.Mask
	Kind    perfscript.Kind
	MaskOK  bool
	Unknown bool
	// Failed says the recorded allocation failed (perfscript.Event's).
	Failed bool
	// NewThread says the event's TID or comm is not the previous event's
	// in its block (the block's first event's always is).
	NewThread bool
	// Comm (set only with NewThread), GFP (set only when the mask was
	// rejected or names unknown flags) and Cache are runs of the block's
	// text.
	Comm, GFP, Cache span
}

// span is a run of a block's text, by offset and length (a block is at
// most replayMaxLine long, so 32 bits hold both).
type span struct{ off, n uint32 }

// spanOf returns the span of sub in text. sub must have been cut from
// text by plain slicing (as a Scanner Reset on text cuts its fields), so
// that the two share their end of capacity: sub starts cap(text) -
// cap(sub) bytes into text.
func spanOf(text, sub []byte) span {
	if len(sub) == 0 {
		return span{}
	}
	return span{uint32(cap(text) - cap(sub)), uint32(len(sub))}
}

// bytes returns the run s of text.
func (s span) bytes(text []byte) []byte { return text[s.off : s.off+s.n] }

// saturate32 converts n to int32, saturating at the type's bounds.
func saturate32(n int) int32 {
	return int32(min(max(n, math.MinInt32), math.MaxInt32))
}

// replayBlock is a run of whole lines of the trace and, once decoded,
// their events.
type replayBlock struct {
	// text is the block's lines: in buf, the block's own, when they
	// were read; when the trace was in memory, a part of the caller's
	// text or of inPlace's carry. Only buf and evs go back to the pool:
	// no block keeps a caller's text past its replay.
	text, buf []byte
	evs       []replayEvent
	// lines are the block's lines; malformed, badLine and bad the lines
	// skipped as not of perf's shape, and the first of them (its line
	// number within the block).
	lines, malformed, badLine int
	bad                       error
	// decoded says evs are ready. Protected by replayQueue.mu.
	decoded bool
}

const (
	// replayBlockSize is a block's text: about a hundred lines, enough
	// that handing a block on costs little per event, few enough that
	// the stages overlap from the start and that a block's text and
	// events are still in the caches when the other stage takes them
	// (16 KiB replayed the tar capture 10% faster than 64 KiB, in three
	// interleaved runs; 8 KiB as fast as 16).
	replayBlockSize = 16 << 10
	// replayBlocks is how many blocks are in flight: 256 KiB of text.
	replayBlocks = 16
	// replayMaxLine bounds a trace's lines, as for perfscript.Scanner:
	// a line of replayMaxLine bytes or more, not counting its newline,
	// ends the replay with bufio.ErrTooLong.
	replayMaxLine = 1 << 20
)

// replayDecoder is one decoder goroutine's state.
type replayDecoder struct {
	sc perfscript.Scanner
	// masks caches gfp.Parse per distinct text (ok false: rejected);
	// last holds the most recent, which consecutive events mostly share.
	masks    map[string]maskParse
	lastGFP  []byte
	lastMask maskParse
}

// newReplayDecoder returns a decoder that leaves undecoded the fields of
// the events a replay only counts.
func newReplayDecoder() *replayDecoder {
	d := &replayDecoder{masks: map[string]maskParse{}}
	d.sc.SkipFields(perfscript.PageAllocZoneLocked, perfscript.PagePcpuDrain, perfscript.PageAllocExtfrag)
	return d
}

// maskParse is gfp.ParseKnown's verdict on a text: ok false for a syntax
// error, unknown true when it named flags the modelled kernel lacks.
type maskParse struct {
	mask        gfp.Mask
	ok, unknown bool
}

// mask parses a recorded gfp_flags text, once per distinct text.
func (d *replayDecoder) mask(b []byte) maskParse {
	if d.lastGFP != nil && string(b) == string(d.lastGFP) {
		return d.lastMask
	}
	m, ok := d.masks[string(b)]
	if !ok {
		mask, unknown, err := gfp.ParseKnown(string(b))
		m = maskParse{mask, err == nil, len(unknown) > 0}
		d.masks[string(b)] = m
	}
	d.lastGFP = append(d.lastGFP[:0], b...)
	d.lastMask = m
	return m
}

// decode parses b's text into its events.
func (d *replayDecoder) decode(b *replayBlock) {
	evs := b.evs[:0] // a local: a store to b.evs per event would be a write barrier's
	d.sc.Reset(b.text)
	tid, comm := -1, []byte(nil)
	for d.sc.Scan() {
		ev := d.sc.Event()
		// The record is cleared and written where it is kept. One built
		// aside and appended is written to the stack field by field, then
		// copied sixteen bytes at a time, and those loads wait for the
		// stores before them: the first copy was a third of the
		// decoder's own samples, in a profile of the anon capture.
		evs = slices.Grow(evs, 1)[:len(evs)+1]
		re := &evs[len(evs)-1]
		*re = replayEvent{}
		re.Time, re.TID, re.Line, re.CPU, re.Kind = ev.Time, ev.TID, int32(ev.Line), saturate32(ev.CPU), ev.Kind
		if !d.sc.Repeated() && (ev.TID != tid || !sameComm(ev.Comm, comm)) {
			re.NewThread, re.Comm, tid, comm = true, spanOf(b.text, ev.Comm), ev.TID, ev.Comm
		}
		switch ev.Kind {
		case perfscript.PageAlloc, perfscript.PageFree, perfscript.PageFreeBatched:
			re.Addr, re.Order, re.Failed = ev.PFN, saturate32(ev.Order), ev.Failed
		case perfscript.Kmalloc, perfscript.KmemCacheAlloc, perfscript.Kfree, perfscript.KmemCacheFree:
			re.Addr, re.Size, re.Cache, re.Failed = ev.Ptr, ev.BytesReq, spanOf(b.text, ev.Cache), ev.Failed
		case perfscript.AllocVmapArea, perfscript.FreeVmapArea:
			re.Addr, re.Size, re.Failed = ev.VAStart, int64(min(ev.Size, math.MaxInt64)), ev.Failed
		}
		if ev.GFP != nil {
			m := d.mask(ev.GFP)
			re.Mask, re.MaskOK, re.Unknown = m.mask, m.ok, m.unknown
			if !m.ok || m.unknown {
				re.GFP = spanOf(b.text, ev.GFP)
			}
		}
	}
	b.evs = evs
	b.lines = d.sc.Line()
	b.malformed, _ = d.sc.Malformed()
	b.badLine, b.bad = d.sc.FirstMalformed()
}

// sameComm reports whether a and b, two comms cut from a trace's text,
// are the same. A comm is at most 15 bytes (TASK_COMM_LEN) and is
// followed by its TID, so a word or two of loads compare it where the
// text goes on past it; any other is compared whole.
func sameComm(a, b []byte) bool {
	n := len(a)
	switch {
	case n != len(b):
		return false
	case n <= 8 && cap(a) >= 8 && cap(b) >= 8:
		x := binary.LittleEndian.Uint64(a[:8]) ^ binary.LittleEndian.Uint64(b[:8])
		return x<<(64-8*n) == 0
	case n > 8 && n <= 16:
		return binary.LittleEndian.Uint64(a) == binary.LittleEndian.Uint64(b) &&
			binary.LittleEndian.Uint64(a[n-8:]) == binary.LittleEndian.Uint64(b[n-8:])
	}
	return string(a) == string(b)
}

// splitter cuts the trace into blocks that end at a line's end.
type splitter struct {
	// r is the trace, read into each block's own buffer; or, when r is
	// nil, mem is what is left of a trace already in memory, which
	// blocks are cut from in place.
	r   io.Reader
	mem []byte
	// carry is the start of a line the last block read cut off.
	carry []byte
	eof   bool
	err   error
	// read, if not nil, counts the bytes cut into blocks.
	read *atomic.Int64
}

// fill cuts the next block into b, reporting false when the trace is over
// (or a read failed, or a line is too long for replayMaxLine: err says).
func (sp *splitter) fill(b *replayBlock) bool {
	var ok bool
	if sp.r == nil {
		ok = sp.cut(b)
	} else {
		ok = sp.readBlock(b)
	}
	if ok && sp.read != nil {
		sp.read.Add(int64(len(b.text)))
	}
	return ok
}

// cut makes b's text the next block of the in-memory trace: whole lines,
// at most replayBlockSize bytes of them, or one longer line; the trace's
// last line may lack its newline. A line too long for replayMaxLine ends
// the trace with bufio.ErrTooLong.
func (sp *splitter) cut(b *replayBlock) bool {
	if len(sp.mem) == 0 {
		return false
	}
	n := len(sp.mem)
	if n > replayBlockSize {
		if nl := bytes.LastIndexByte(sp.mem[:replayBlockSize], '\n'); nl >= 0 {
			n = nl + 1
		} else if nl = bytes.IndexByte(sp.mem, '\n'); nl >= 0 {
			n = nl + 1 // one line is the block
		}
	}
	line := n // less its newline: a block as long as replayMaxLine is one line
	if sp.mem[n-1] == '\n' {
		line--
	}
	if line >= replayMaxLine {
		sp.err, sp.mem = bufio.ErrTooLong, nil
		return false
	}
	// The block's capacity ends with it, so that nothing reading a word
	// past a field (sameComm) reads beyond the text it was handed.
	b.text, sp.mem = sp.mem[:n:n], sp.mem[n:]
	return true
}

// readBlock reads the next block's text into b's own buffer.
func (sp *splitter) readBlock(b *replayBlock) bool {
	if sp.eof && len(sp.carry) == 0 {
		return false
	}
	// Room for the carried line and as much again.
	if n := min(max(replayBlockSize, 2*len(sp.carry)), replayMaxLine); cap(b.buf) < n {
		b.buf = make([]byte, 0, n)
	}
	b.text = append(b.buf[:0], sp.carry...)
	sp.carry = sp.carry[:0]
	for {
		for !sp.eof && len(b.text) < cap(b.text) {
			n, err := sp.r.Read(b.text[len(b.text):cap(b.text)])
			b.text = b.text[:len(b.text)+n]
			if err != nil {
				if err != io.EOF {
					sp.err = err
				}
				sp.eof = true
			}
		}
		if sp.eof {
			b.buf = b.text
			return len(b.text) > 0
		}
		if nl := bytes.LastIndexByte(b.text, '\n'); nl >= 0 {
			sp.carry = append(sp.carry, b.text[nl+1:]...)
			b.buf, b.text = b.text, b.text[:nl+1]
			return true
		}
		// One line fills the block: grow it, as far as a line may be.
		if len(b.text) >= replayMaxLine {
			sp.err, sp.eof = bufio.ErrTooLong, true
			return false
		}
		grown := make([]byte, len(b.text), min(2*len(b.text), replayMaxLine))
		copy(grown, b.text)
		b.text = grown
	}
}

// replayQueue is the blocks of one replay: split from the trace in order,
// decoded by either goroutine, replayed by the caller's.
type replayQueue struct {
	mu sync.Mutex
	// cond is signalled when a block is decoded or freed, and at a stop.
	cond sync.Cond
	// sp cuts the trace; ended says it has no more. Protected by mu.
	sp    *splitter
	ended bool
	// free are the blocks not in use; queue the blocks split and not
	// yet replayed, in the trace's order. Protected by mu.
	free, queue []*replayBlock
	// stopped says the replay ended early. Protected by mu.
	stopped bool
}

// claimLocked splits the trace's next block into a free block and queues
// it, or returns nil when no block is free or the trace is over.
//
// Preconditions: q.mu is held.
func (q *replayQueue) claimLocked() *replayBlock {
	if q.ended || len(q.free) == 0 {
		return nil
	}
	b := q.free[len(q.free)-1]
	if !q.sp.fill(b) {
		q.ended = true
		return nil
	}
	q.free = q.free[:len(q.free)-1]
	b.decoded = false
	q.queue = append(q.queue, b)
	return b
}

// decodeLocked decodes b with d, dropping q.mu meanwhile.
//
// Preconditions: q.mu is held.
func (q *replayQueue) decodeLocked(d *replayDecoder, b *replayBlock) {
	q.mu.Unlock()
	d.decode(b)
	q.mu.Lock()
	b.decoded = true
	q.cond.Broadcast()
}

// replayPipeline splits and decodes r and hands each block to replay, in
// the trace's order, on the caller's goroutine. replay returns false to
// stop early; the decoder goroutine then stops too. It returns when both
// have, with the read error that ended the trace, if any. read, if not
// nil, counts the bytes of the trace taken.
//
// A trace already in memory, in a bytes.Reader or a bytes.Buffer, is not
// copied: their WriteTo hands the text to inPlace's Write, which replays
// it before returning.
func replayPipeline(r io.Reader, read *atomic.Int64, replay func(*replayBlock) bool) error {
	switch r.(type) {
	case *bytes.Reader, *bytes.Buffer:
		// These two, whose WriteTo makes one Write of all the text
		// left. Each Write runs a pipeline of its own, so a WriterTo
		// writing in small pieces (a bufio.Reader's) would be slower
		// than reading.
		w := &inPlace{read: read, replay: replay}
		_, err := r.(io.WriterTo).WriteTo(w)
		if err == nil && len(w.carry) > 0 && !w.stopped {
			// The last line, without a newline.
			err = w.run(w.carry)
		}
		if err == errReplayStopped {
			err = nil
		}
		return err
	}
	_, err := runPipeline(&splitter{r: r, read: read}, replay)
	return err
}

// inPlace is the io.Writer a trace in memory is written to. Each Write
// replays the text it is given, in place, and returns when done with
// it, as io.Writer requires; a line split between two Writes is carried,
// copied, to the next. What the last Write leaves in carry, a last line
// without its newline, is its caller's to run.
type inPlace struct {
	read   *atomic.Int64
	replay func(*replayBlock) bool
	// carry is the start of a line the last Write cut off.
	carry []byte
	// stopped says replay ended the replay early.
	stopped bool
}

// errReplayStopped ends a WriteTo whose replay stopped early.
var errReplayStopped = errors.New("replay stopped")

// Write replays p's whole lines. On an error (the replay stopped early, a
// line too long) it reports 0 bytes written, whatever it replayed: the
// position of a reader whose replay ended early is not specified.
func (w *inPlace) Write(p []byte) (int, error) {
	if w.stopped {
		return 0, errReplayStopped
	}
	text := p
	if len(w.carry) > 0 {
		nl := bytes.IndexByte(p, '\n')
		if nl < 0 {
			if len(w.carry)+len(p) >= replayMaxLine {
				return 0, bufio.ErrTooLong
			}
			w.carry = append(w.carry, p...)
			return len(p), nil
		}
		w.carry = append(w.carry, p[:nl+1]...)
		if err := w.run(w.carry); err != nil {
			return 0, err
		}
		w.carry, text = w.carry[:0], p[nl+1:]
	}
	nl := bytes.LastIndexByte(text, '\n')
	if err := w.run(text[:nl+1]); err != nil {
		return 0, err
	}
	if rest := text[nl+1:]; len(rest) > 0 {
		if len(rest) >= replayMaxLine {
			return 0, bufio.ErrTooLong
		}
		w.carry = append(w.carry, rest...)
	}
	return len(p), nil
}

// run replays text, whole lines, cut into blocks in place.
func (w *inPlace) run(text []byte) error {
	if len(text) == 0 {
		return nil
	}
	stopped, err := runPipeline(&splitter{mem: text, read: w.read}, w.replay)
	if stopped {
		w.stopped, err = true, errReplayStopped
	}
	return err
}

// runPipeline runs the two goroutines over sp's blocks, reporting whether
// replay stopped the replay early and, if not, sp's error: a block cut
// ahead of a stop does not make the replay's error.
func runPipeline(sp *splitter, replay func(*replayBlock) bool) (stopped bool, err error) {
	q := &replayQueue{sp: sp}
	q.cond.L = &q.mu
	for range replayBlocks {
		b, _ := replayBlockPool.Get().(*replayBlock)
		if b == nil {
			b = &replayBlock{}
		}
		q.free = append(q.free, b)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		d := newReplayDecoder()
		q.mu.Lock()
		defer q.mu.Unlock()
		for !q.stopped {
			if b := q.claimLocked(); b != nil {
				q.decodeLocked(d, b)
				continue
			}
			if q.ended {
				return
			}
			q.cond.Wait()
		}
	})
	d := newReplayDecoder()
	q.mu.Lock()
	for {
		if len(q.queue) > 0 && q.queue[0].decoded {
			b := q.queue[0]
			q.queue = q.queue[1:]
			q.mu.Unlock()
			ok := replay(b)
			q.mu.Lock()
			q.free = append(q.free, b)
			q.stopped = !ok
			q.cond.Broadcast()
			if !ok {
				break
			}
			continue
		}
		if b := q.claimLocked(); b != nil {
			q.decodeLocked(d, b)
			continue
		}
		if len(q.queue) == 0 && q.ended {
			break
		}
		q.cond.Wait()
	}
	stopped = q.stopped
	q.mu.Unlock()
	wg.Wait()
	for _, b := range append(q.free, q.queue...) {
		// The block's own buffer, not a text it may have been cut from.
		*b = replayBlock{buf: b.buf[:0], evs: b.evs[:0]}
		replayBlockPool.Put(b)
	}
	if stopped {
		return true, nil
	}
	return false, sp.err
}

// replayBlockPool keeps finished replays' blocks, with their own buffers
// and event arrays (never a text cut in place), as pfnEntriesPool does the
// pfn table's.
var replayBlockPool sync.Pool // of *replayBlock
