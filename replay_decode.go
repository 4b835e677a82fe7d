package mmsim

import (
	"sync"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/perfscript"
)

// The replay is a two-stage pipeline: a decoder goroutine parses the text
// into batches of replayEvents while the caller's goroutine replays the
// previous batch, so a machine with two CPUs parses and simulates at once.
// Both stages are sequential and the batches keep the capture's order, so
// a replay is as deterministic as a single loop.

// replayEvent is one decoded event, copied out of the scanner's buffer:
// what the replay needs of a perfscript.Event, with the gfp mask parsed.
type replayEvent struct {
	Kind     perfscript.Kind
	Line     int
	TID, CPU int
	Time     int64

	PFN   uint64
	Order int
	// Mask is the parsed gfp_flags; MaskOK false means gfp.Parse
	// rejected GFP, which is then kept for the error.
	Mask   gfp.Mask
	MaskOK bool
	GFP    []byte

	// Comm is set on a thread's first event only: the replay records it
	// then, and makes the thread's task at its first allocation or free.
	Comm []byte

	Ptr      uint64
	BytesReq int64
	Cache    []byte

	VAStart, Size uint64
	Failed        bool
}

// replayBatch is a run of decoded events; the byte slices of its events
// point into arena.
type replayBatch struct {
	evs   []replayEvent
	arena []byte
}

const (
	// replayBatchLen is the events of one batch: enough that the hand-off
	// costs little per event, few enough that the two stages overlap.
	replayBatchLen = 512
	// replayBatches is how many batches are in flight.
	replayBatches = 4
)

// replayDecoder is the first stage. Its state belongs to its goroutine.
type replayDecoder struct {
	sc *perfscript.Scanner
	// masks caches gfp.Parse per distinct text (ok false: rejected);
	// last holds the most recent, which consecutive events mostly share.
	masks    map[string]maskParse
	lastGFP  []byte
	lastMask maskParse
	// seen holds the threads whose first event has been decoded.
	seen map[int]bool
}

type maskParse struct {
	mask gfp.Mask
	ok   bool
}

// mask parses a recorded gfp_flags text, once per distinct text.
func (d *replayDecoder) mask(b []byte) maskParse {
	if d.lastGFP != nil && string(b) == string(d.lastGFP) {
		return d.lastMask
	}
	m, ok := d.masks[string(b)]
	if !ok {
		mask, err := gfp.Parse(string(b))
		m = maskParse{mask, err == nil}
		d.masks[string(b)] = m
	}
	d.lastGFP = append(d.lastGFP[:0], b...)
	d.lastMask = m
	return m
}

// fill decodes up to replayBatchLen events into b and reports whether it
// decoded any.
func (d *replayDecoder) fill(b *replayBatch) bool {
	b.evs, b.arena = b.evs[:0], b.arena[:0]
	for len(b.evs) < replayBatchLen && d.sc.Scan() {
		ev := d.sc.Event()
		b.evs = append(b.evs, replayEvent{
			Kind: ev.Kind, Line: ev.Line, TID: ev.TID, CPU: ev.CPU, Time: ev.Time,
			PFN: ev.PFN, Order: ev.Order, Ptr: ev.Ptr, BytesReq: ev.BytesReq,
			VAStart: ev.VAStart, Size: ev.Size, Failed: ev.Failed,
		})
		re := &b.evs[len(b.evs)-1]
		if !d.seen[ev.TID] {
			d.seen[ev.TID] = true
			re.Comm = b.copy(ev.Comm)
		}
		if ev.GFP != nil {
			m := d.mask(ev.GFP)
			re.Mask, re.MaskOK = m.mask, m.ok
			if !m.ok {
				re.GFP = b.copy(ev.GFP)
			}
		}
		if ev.Cache != nil {
			re.Cache = b.copy(ev.Cache)
		}
	}
	return len(b.evs) > 0
}

// copy copies s into the arena. An arena that grows leaves the earlier
// slices on the old array, which stays alive under them.
func (b *replayBatch) copy(s []byte) []byte {
	start := len(b.arena)
	b.arena = append(b.arena, s...)
	return b.arena[start:len(b.arena):len(b.arena)]
}

// pipeline runs the decoder on its own goroutine and hands each batch to
// replay, in order, on the caller's goroutine. replay returns false to stop
// early; the decoder then stops too. pipeline returns when both have.
func (d *replayDecoder) pipeline(replay func(*replayBatch) bool) {
	full := make(chan *replayBatch, replayBatches)
	free := make(chan *replayBatch, replayBatches)
	for range replayBatches {
		free <- &replayBatch{evs: make([]replayEvent, 0, replayBatchLen)}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(full)
		for {
			var b *replayBatch
			select {
			case b = <-free:
			case <-done:
				return
			}
			if !d.fill(b) {
				return
			}
			select {
			case full <- b:
			case <-done:
				return
			}
		}
	}()
	for b := range full {
		if !replay(b) {
			close(done)
			for range full {
			}
			break
		}
		free <- b
	}
	wg.Wait()
}
