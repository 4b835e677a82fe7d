// Package perfscript reads the text `perf script` prints for the kernel's
// memory-allocator tracepoints: the page allocator's kmem:mm_page_* events,
// slab's kmem:kmalloc, kfree, kmem_cache_alloc and kmem_cache_free, and
// vmalloc's vmap-area events. It is what System.Replay parses.
//
// A Scanner reads one line at a time into an Event whose byte-slice fields
// alias the line: nothing is allocated per event, which is what lets a
// replay run at millions of events per second. Lines that are not events
// (perf's '#' header, blank lines, the callchain under each event of a
// capture recorded with -g) are skipped; lines that are not of perf's
// shape are counted and skipped, never fatal.
//
// The line layout is perf's default for tracepoints:
//
//	COMM TID [CPU] SECS.USECS: SUBSYS:EVENT: FIELDS
//
// where COMM may hold blanks and dashes, so a line is split at the
// "TID [CPU]" pair, and FIELDS are the event's print fmt: key=value pairs,
// except alloc_vmap_area's "va_start: N". perf pads COMM to 16 columns,
// except above a callchain; with -F +pid it prints "PID/TID" for TID; with
// -F -comm no COMM; with -F -cpu no "[CPU]"; with -L a CPU without
// brackets. All five are read.
//
// Kernel: include/trace/events/kmem.h, include/trace/events/vmalloc.h
// (the print formats); tools/perf/builtin-script.c (the line).
package perfscript

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
)

// Kind is the tracepoint an Event records.
type Kind uint8

// The tracepoints a Scanner decodes. Other is any other well-formed event
// line (vmscan, oom, writeback, percpu...): its Name and Fields are set.
const (
	Other               Kind = iota
	PageAlloc                // kmem:mm_page_alloc
	PageFree                 // kmem:mm_page_free
	PageFreeBatched          // kmem:mm_page_free_batched
	PageAllocZoneLocked      // kmem:mm_page_alloc_zone_locked
	PagePcpuDrain            // kmem:mm_page_pcpu_drain
	PageAllocExtfrag         // kmem:mm_page_alloc_extfrag
	Kmalloc                  // kmem:kmalloc
	Kfree                    // kmem:kfree
	KmemCacheAlloc           // kmem:kmem_cache_alloc
	KmemCacheFree            // kmem:kmem_cache_free
	AllocVmapArea            // vmalloc:alloc_vmap_area
	FreeVmapArea             // vmalloc:free_vmap_area_noflush
	NrKinds
)

var kindNames = [NrKinds]string{
	Other:               "other",
	PageAlloc:           "kmem:mm_page_alloc",
	PageFree:            "kmem:mm_page_free",
	PageFreeBatched:     "kmem:mm_page_free_batched",
	PageAllocZoneLocked: "kmem:mm_page_alloc_zone_locked",
	PagePcpuDrain:       "kmem:mm_page_pcpu_drain",
	PageAllocExtfrag:    "kmem:mm_page_alloc_extfrag",
	Kmalloc:             "kmem:kmalloc",
	Kfree:               "kmem:kfree",
	KmemCacheAlloc:      "kmem:kmem_cache_alloc",
	KmemCacheFree:       "kmem:kmem_cache_free",
	AllocVmapArea:       "vmalloc:alloc_vmap_area",
	FreeVmapArea:        "vmalloc:free_vmap_area_noflush",
}

// String returns the tracepoint's perf name, "kmem:mm_page_alloc".
func (k Kind) String() string {
	if k < NrKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// kindOf returns the Kind of a perf event name.
func kindOf(name []byte) Kind {
	switch string(name) {
	case "kmem:mm_page_alloc":
		return PageAlloc
	case "kmem:mm_page_free":
		return PageFree
	case "kmem:mm_page_free_batched":
		return PageFreeBatched
	case "kmem:mm_page_alloc_zone_locked":
		return PageAllocZoneLocked
	case "kmem:mm_page_pcpu_drain":
		return PagePcpuDrain
	case "kmem:mm_page_alloc_extfrag":
		return PageAllocExtfrag
	case "kmem:kmalloc":
		return Kmalloc
	case "kmem:kfree":
		return Kfree
	case "kmem:kmem_cache_alloc":
		return KmemCacheAlloc
	case "kmem:kmem_cache_free":
		return KmemCacheFree
	case "vmalloc:alloc_vmap_area":
		return AllocVmapArea
	case "vmalloc:free_vmap_area_noflush":
		return FreeVmapArea
	}
	return Other
}

// Event is one decoded event line. Byte-slice fields alias the Scanner's
// buffer and are valid until the next Scan; copy what must outlive it.
// Only the fields of the event's Kind are set; the others keep the zero
// value.
type Event struct {
	Kind Kind
	Line int    // 1-based line number in the input
	Name []byte // "kmem:mm_page_alloc"
	Comm []byte // the task's comm; may hold blanks
	TID  int
	CPU  int   // -1 when the line has no CPU (perf script -F -cpu)
	Time int64 // nanoseconds since boot

	// The page events: pfn, order, migratetype (-1 when the event has
	// none) and, for mm_page_alloc, the gfp_flags text.
	PFN         uint64
	Order       int
	Migratetype int
	GFP         []byte

	// The slab events: the object's address, the sizes, the cache's name
	// (kmem_cache_*), the call site as perf printed it.
	Ptr        uint64
	BytesReq   int64
	BytesAlloc int64
	Cache      []byte
	CallSite   []byte

	// The vmalloc events: the area's start and size.
	VAStart uint64
	Size    uint64

	// Failed says the allocation the event traces failed. The kernel
	// traces a failure as it does a success, with what the print fmt
	// makes of the NULL it returned:
	//   - mm_page_alloc: pfn=0x0 (page=(nil)). The entry's pfn is -1UL,
	//     which the print fmt prints as 0; a real pfn 0 is never
	//     allocated on x86, whose setup reserves the first 1 MiB
	//     (arch/x86/kernel/setup.c).
	//   - kmalloc and kmem_cache_alloc: ptr=(nil), or any ptr of 0.
	//   - alloc_vmap_area: failed=1.
	Failed bool

	// Fields is the text after the event name.
	Fields []byte
}

// ErrMalformed is wrapped by the error ParseLine returns for a line that is
// not of perf's shape, or whose known event lacks a field.
var ErrMalformed = errors.New("malformed perf script line")

// Scanner reads events from perf script text, one at a time.
//
// It splits lines itself rather than through bufio.Scanner: a capture
// holds hundreds of thousands of short lines, and a split function call
// per line costs as much as decoding the line's head.
type Scanner struct {
	r io.Reader
	// buf[start:end] is read and not yet split into lines.
	buf        []byte
	start, end int
	eof        bool
	err        error

	line      int
	ev        Event
	malformed int
	// frames counts the callchain lines skipped.
	frames int
	// skip holds a bit per Kind whose fields are not decoded.
	skip uint32
	// badLine and badErr are the first malformed line and its error.
	badLine int
	badErr  error
	// rep is what the last line read in perf's columns leaves for the
	// next; repeats counts the lines read as its repeats. noRepeat (for
	// tests) reads every line by parseLine.
	rep      repeat
	repeats  int
	noRepeat bool
	// repeated is Repeated's answer.
	repeated bool
}

const (
	// scanBuf is the read buffer's initial size; a line longer than it
	// grows the buffer, up to maxLine.
	scanBuf = 256 << 10
	maxLine = 1 << 20
)

// NewScanner returns a Scanner reading r.
func NewScanner(r io.Reader) *Scanner {
	return &Scanner{r: r, buf: make([]byte, scanBuf)}
}

// Reset makes s scan the lines of b in place, from line 1, with no reader
// behind them: the events' byte slices alias b. A zero Scanner may be
// Reset. It is how a text already in memory is split among decoders.
// The kinds SkipFields set stay set.
func (s *Scanner) Reset(b []byte) {
	*s = Scanner{buf: b, end: len(b), eof: true, skip: s.skip, noRepeat: s.noRepeat}
}

// SkipFields makes s leave the fields of events of the kinds given
// undecoded: such an event has its head, Name and Kind, and its raw
// Fields, and a line whose fields are malformed is not noticed. It is for
// readers that only count those events.
func (s *Scanner) SkipFields(kinds ...Kind) {
	for _, k := range kinds {
		if k < NrKinds {
			s.skip |= 1 << k
		}
	}
}

// Scan advances to the next event line and reports whether there was one.
// Header, blank, callchain and malformed lines are skipped (Frames counts
// the callchain lines, Malformed the malformed ones).
func (s *Scanner) Scan() bool {
	for {
		b, ok := s.next()
		if !ok {
			return false
		}
		s.line++
		event, err := s.parse(b)
		if !event {
			continue
		}
		if err != nil {
			if isFrame(b) {
				s.frames++
				continue
			}
			s.malformed++
			if s.badErr == nil {
				s.badLine, s.badErr = s.line, err
			}
			continue
		}
		s.ev.Line = s.line
		return true
	}
}

// next returns the next line, without its newline or a carriage return
// before it. The line aliases buf until the next call.
func (s *Scanner) next() ([]byte, bool) {
	for {
		if i := bytes.IndexByte(s.buf[s.start:s.end], '\n'); i >= 0 {
			b := s.buf[s.start : s.start+i]
			s.start += i + 1
			return dropCR(b), true
		}
		if s.eof {
			if s.start == s.end {
				return nil, false
			}
			b := s.buf[s.start:s.end]
			s.start = s.end
			return dropCR(b), true
		}
		s.read()
	}
}

// read moves the unsplit tail to the front of buf and reads more after
// it, growing buf for a line longer than it. A read error or a line over
// maxLine ends the input. The last line, which s.rep compares, is gone.
func (s *Scanner) read() {
	s.rep.line = nil
	if s.start > 0 {
		s.end = copy(s.buf, s.buf[s.start:s.end])
		s.start = 0
	}
	if s.end == len(s.buf) {
		if len(s.buf) >= maxLine {
			s.err, s.eof = bufio.ErrTooLong, true
			return
		}
		s.buf = append(s.buf, make([]byte, len(s.buf))...)
	}
	for empty := 0; ; empty++ {
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		if err != nil {
			if err != io.EOF {
				s.err = err
			}
			s.eof = true
			return
		}
		if n > 0 {
			return
		}
		if empty == 100 {
			s.err, s.eof = io.ErrNoProgress, true
			return
		}
	}
}

func dropCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}

// Event returns the event Scan read. It is overwritten by the next Scan.
func (s *Scanner) Event() *Event { return &s.ev }

// Err returns the first read error, not io.EOF; bufio.ErrTooLong for a
// line over 1 MiB.
func (s *Scanner) Err() error { return s.err }

// Malformed returns how many lines were skipped as malformed, and the first
// of their errors, "line N: ...".
func (s *Scanner) Malformed() (int, error) {
	if s.badErr == nil {
		return s.malformed, nil
	}
	return s.malformed, fmt.Errorf("line %d: %w", s.badLine, s.badErr)
}

// FirstMalformed returns the first malformed line's number and its error
// (0 and nil when there was none).
func (s *Scanner) FirstMalformed() (int, error) { return s.badLine, s.badErr }

// Line returns the number of lines read so far.
func (s *Scanner) Line() int { return s.line }

// Frames returns the number of callchain lines skipped so far: the
// stack perf script prints under each event of a capture recorded with
// -g, a frame a line.
func (s *Scanner) Frames() int { return s.frames }

// isFrame reports whether line is one frame of a callchain as perf script
// prints it under an event: a tab, the instruction pointer in hex padded
// to 16 columns, and then the symbol and the DSO, when known.
//
// Kernel: tools/perf/util/evsel_fprintf.c:sample__fprintf_callchain().
func isFrame(line []byte) bool {
	if len(line) < 2 || line[0] != '\t' {
		return false
	}
	ip := skipBlanks(line[1:])
	n := 0
	for n < len(ip) && hexDigit[ip[n]] <= 0xf {
		n++
	}
	return n > 0 && n <= 16 && (n == len(ip) || ip[n] == ' ')
}

// ParseLine decodes one event line into ev, resetting it first.
func ParseLine(b []byte, ev *Event) error {
	_, err := parseLine(b, ev, 0)
	return err
}

// parseLine is ParseLine leaving the fields of the kinds whose bits are
// set in skip undecoded. When headColumns read the head at the line's
// first '[', dot is the index of the timestamp's dot (0 otherwise): what
// a repeat may compare.
func parseLine(b []byte, ev *Event, skip uint32) (dot int, err error) {
	ev.reset()
	// "TID [CPU] TIME:": the first '[' preceded by blank + digits whose
	// "CPU]" and timestamp parse. A comm may itself hold "N [M]".
	for from := 0; ; {
		k := bytes.IndexByte(b[from:], '[')
		if k < 0 {
			break
		}
		k += from
		if rest, ok := ev.headColumns(b, k); ok {
			if from == 0 {
				dot = cap(b) - cap(rest) - 8
			}
			return dot, ev.body(rest, skip)
		}
		from = k + 1
		if rest, ok := ev.head(b, k, cpuBracketed); ok {
			return 0, ev.body(rest, skip)
		}
	}
	if rest, ok := ev.headNoBracket(b); ok {
		return 0, ev.body(rest, skip)
	}
	return 0, fmt.Errorf("%w: no \"TID [CPU] TIME:\" fields", ErrMalformed)
}

// parse decodes the line into s.ev: as a repeat of the last line read
// in perf's columns where it is one, else by parseLine. It reports false,
// and no error, for a line that holds no event: blank, or a comment.
//
// The repeat is tried on the line as it is, before its leading blanks
// are skipped: perf pads a comm to its column, so a repeat has the same
// blanks, and comparing them costs less than skipping them.
func (s *Scanner) parse(line []byte) (event bool, err error) {
	ev, r := &s.ev, &s.rep
	if rest, ok := r.readHead(line, ev); ok {
		s.repeats++
		if r.readName(line, ev) {
			err = ev.fields(s.skip)
		} else if err = ev.body(rest, s.skip); err == nil {
			r.noteName(line, ev)
		}
		if err == nil {
			s.repeated, r.last = r.last, true
		}
		return true, err
	}
	b := skipBlanks(line)
	if len(b) == 0 || b[0] == '#' {
		return false, nil
	}
	dot, err := parseLine(b, ev, s.skip)
	if err == nil {
		noted := dot > 0 && !s.noRepeat
		if noted {
			r.note(line, len(line)-len(b)+dot, ev)
		}
		s.repeated, r.last = false, noted
	}
	return true, err
}

// Repeated reports whether the event Scan last read repeats the head of
// the one before it, byte for byte up to its timestamp's dot: the same
// comm, TID and CPU, in the same second. False means not known: the two
// may still be the same thread's.
func (s *Scanner) Repeated() bool { return s.repeated }

// A repeat is what the last line whose head headColumns read at its first
// '[' leaves for the next. perf prints a thread's events one after another,
// and a trace is mostly runs of them: 96% of the tar capture's lines repeat
// the line before up to the timestamp's fraction ("COMM TID [CPU] SECS."),
// and 89% its event's name and the padding around it. Such a line is read
// by comparing those bytes, and the fraction's six digits; what parseLine
// would read of it is then known, as the same bytes read the same. Its
// fields are decoded as any line's.
type repeat struct {
	// line is the last line, with its leading blanks (the offsets below
	// count them); nil when there is none, or when the buffer it aliased
	// has moved. last says the last event read has its head.
	line []byte
	last bool
	// dot is the index of line's timestamp's dot: b[:dot+1] is compared.
	// min is the length headColumns needs of a line.
	dot, min int
	// comm and commEnd bound the comm; tid, cpu and secs (in
	// nanoseconds) are the head's other fields.
	comm, commEnd int
	tid, cpu      int
	secs          int64
	// named says the name's part applies: line[dot+8:fields], from the
	// timestamp's colon to the fields, is compared. nameAt and nameEnd
	// bound the event's name, of Kind kind.
	named           bool
	nameAt, nameEnd int
	fields          int
	kind            Kind
}

// note records what parseLine read of b, a line (with its leading
// blanks) whose head headColumns read at its first '[', with its
// timestamp's dot at dot.
func (r *repeat) note(b []byte, dot int, ev *Event) {
	r.line, r.dot = b, dot
	// headColumns wants 21 bytes from the '[' on; they hold the colon
	// after the fraction, at dot+7.
	r.min = bytes.IndexByte(b, '[') + 21
	r.comm = cap(b) - cap(ev.Comm)
	r.commEnd = r.comm + len(ev.Comm)
	r.tid, r.cpu = ev.TID, ev.CPU
	r.secs = ev.Time - ev.Time%1e9
	r.noteName(b, ev)
}

// noteName records the name parseLine's body read of b, whose head r
// holds. A line whose fields are empty is not noted: that the next line's
// fields start where its own did would not be known from the bytes before
// them.
func (r *repeat) noteName(b []byte, ev *Event) {
	r.line = b
	r.nameAt = cap(b) - cap(ev.Name)
	r.nameEnd = r.nameAt + len(ev.Name)
	r.fields = cap(b) - cap(ev.Fields)
	r.kind = ev.Kind
	r.named = len(ev.Fields) > 0
}

// readHead reads b's head when b repeats r's line up to its timestamp's dot,
// leading blanks included, followed by six digits and a colon, as
// headColumns would; it resets ev first and returns what follows the colon.
func (r *repeat) readHead(b []byte, ev *Event) ([]byte, bool) {
	d := r.dot
	if r.line == nil || len(b) < r.min || b[d+7] != ':' || string(b[:d+1]) != string(r.line[:d+1]) {
		return nil, false
	}
	// The fraction, read as headColumns reads it: "S.dddddd" (a seconds
	// digit and the dot, which are r's) as "00dddddd".
	frac, ok := eightDigits(binary.LittleEndian.Uint64(b[d-1:])&^0xffff | 0x3030)
	if !ok {
		return nil, false
	}
	ev.reset()
	ev.TID, ev.CPU, ev.Time, ev.Comm = r.tid, r.cpu, r.secs+int64(frac)*1000, b[r.comm:r.commEnd]
	return b[d+8:], true
}

// readName reads b's event name when b, whose head readHead read, repeats r's
// line from the timestamp's colon up to its fields, and has a field there.
func (r *repeat) readName(b []byte, ev *Event) bool {
	f := r.fields
	if !r.named || len(b) <= f || b[f] == ' ' || string(b[r.dot+8:f]) != string(r.line[r.dot+8:f]) {
		return false
	}
	ev.Name, ev.Kind, ev.Fields = b[r.nameAt:r.nameEnd], r.kind, b[f:]
	return true
}

// reset clears what a previous line set: every field a Kind may set.
func (ev *Event) reset() {
	ev.PFN, ev.Order, ev.Migratetype, ev.GFP = 0, 0, -1, nil
	ev.Ptr, ev.BytesReq, ev.BytesAlloc, ev.Cache, ev.CallSite = 0, 0, 0, nil, nil
	ev.VAStart, ev.Size, ev.Failed = 0, 0, false
}

// The forms of a line's CPU, for head: perf's "[%03d]", none (-F -cpu), or
// perf script -L's bare "%3d".
const (
	cpuBracketed = iota
	cpuNone
	cpuBare
)

// head reads "COMM TID [CPU] TIME:" around the '[' at k, and returns what
// follows the timestamp's colon; or, in the other forms, "COMM TID TIME:"
// with the timestamp at k (CPU -1), or "COMM TID CPU TIME:" with the CPU
// at k. It scans with plain loops: the fields are short, and a call per
// field would cost more than the scan.
func (ev *Event) head(b []byte, k, form int) ([]byte, bool) {
	j := k - 1
	for j >= 0 && b[j] == ' ' {
		j--
	}
	// The TID's digits, read from the last.
	d := j
	var tid, scale int64 = 0, 1
	for d >= 0 && isDigit(b[d]) && j-d < 18 {
		tid += int64(b[d]-'0') * scale
		scale *= 10
		d--
	}
	if d == j || j == k-1 {
		return nil, false
	}
	if d >= 0 && b[d] == '/' {
		// perf's "PID/TID" (perf script -F +pid): the TID is the second.
		e := d - 1
		for e >= 0 && isDigit(b[e]) && d-e < 18 {
			e--
		}
		if e == d-1 {
			return nil, false
		}
		d = e
	}
	// The TID follows the comm and a blank, or starts the line when perf
	// printed no comm (-F -comm).
	if d >= 0 && b[d] != ' ' {
		return nil, false
	}
	i, cpu, n := k, -1, 0
	switch form {
	case cpuBare:
		// At most 4 digits: x86_64's NR_CPUS is at most 8192
		// (arch/x86/Kconfig:NR_CPUS_RANGE_END).
		for cpu = 0; i < len(b) && isDigit(b[i]) && n < 5; i, n = i+1, n+1 {
			cpu = cpu*10 + int(b[i]-'0')
		}
		if n == 0 || n > 4 || i >= len(b) || b[i] != ' ' {
			return nil, false
		}
		for i < len(b) && b[i] == ' ' {
			i++
		}
	case cpuBracketed:
		i, cpu = k+1, 0
		if i+4 <= len(b) && b[i+3] == ']' && isDigit(b[i]) && isDigit(b[i+1]) && isDigit(b[i+2]) {
			// perf's "[%03d]".
			cpu, n, i = int(b[i]-'0')*100+int(b[i+1]-'0')*10+int(b[i+2]-'0'), 3, i+3
		} else {
			for i < len(b) && b[i] == ' ' {
				i++
			}
			for ; i < len(b) && isDigit(b[i]) && n < 9; i, n = i+1, n+1 {
				cpu = cpu*10 + int(b[i]-'0')
			}
		}
		if n == 0 || i >= len(b) || b[i] != ']' {
			return nil, false
		}
		i++
		for i < len(b) && b[i] == ' ' {
			i++
		}
	}
	// SECS.FRAC: — perf prints 6 fraction digits, 9 with --ns.
	var secs int64
	for n = 0; i < len(b) && isDigit(b[i]) && n < 12; i, n = i+1, n+1 {
		secs = secs*10 + int64(b[i]-'0')
	}
	if n == 0 || i >= len(b) || secs > maxSecs {
		return nil, false
	}
	var frac int64
	if b[i] == '.' {
		i++
		if i+7 <= len(b) && b[i+6] == ':' {
			// The usual six digits, in one word: "S.dddddd" read as
			// "00dddddd" (i-2 holds a seconds digit and the dot).
			v, ok := eightDigits(binary.LittleEndian.Uint64(b[i-2:])&^0xffff | 0x3030)
			if !ok {
				return nil, false
			}
			frac, i = int64(v)*1000, i+6
		} else {
			for n = 0; i < len(b) && isDigit(b[i]) && n < 9; i, n = i+1, n+1 {
				frac = frac*10 + int64(b[i]-'0')
			}
			if n == 0 {
				return nil, false
			}
			for ; n < 9; n++ {
				frac *= 10
			}
		}
	}
	if i >= len(b) || b[i] != ':' {
		return nil, false
	}
	ev.TID, ev.CPU, ev.Time, ev.Comm = int(tid), cpu, secs*1e9+frac, trimBlanks(b[:max(d, 0)])
	return b[i+1:], true
}

// headColumns is head's fast path for the '[' at k, in perf's columns:
// "COMM TID [CPU] SECS.USECS:" with the TID right-aligned after a blank
// (the captures here pad it to five columns, as perf long did; 7.2's perf
// pads it to seven), of at most six digits; the CPU as "[%03d]"; and the
// timestamp as "%12s" pads it, with at most seven digits of seconds (an
// uptime below 115 days). It reads each field from one word, where head's
// loops cost about 400 instructions a line. It reports false for a line
// it cannot read so, which head then reads; a line it accepts (some
// padded otherwise than perf pads them among them), head would have read
// the same.
//
// Kernel: tools/perf/builtin-script.c:perf_sample__fprintf_start().
func (ev *Event) headColumns(b []byte, k int) ([]byte, bool) {
	if k < 8 || k+21 > len(b) {
		return nil, false
	}
	// The 29 bytes from the TID's column to where a timestamp with seven
	// digits of seconds ends.
	h := (*[29]byte)(b[k-8:])
	// e: the digits of seconds past five, which push the colon on.
	var e int
	switch byte(':') {
	case h[26]:
	case h[27]:
		e = 1
	case h[28]:
		e = 2
	default:
		return nil, false
	}
	// In four words: the TID's column and the blank before the '['; the
	// CPU's "[CCC] "; the dot and the seven bytes before it (the seconds'
	// column, after "] " or " " when it is narrower); the seconds' last
	// digit, the dot and the six digits after it.
	wt := binary.LittleEndian.Uint64(h[0:8])
	wc := binary.LittleEndian.Uint64(h[8:16])
	ws := binary.LittleEndian.Uint64(h[12+e:])
	wf := binary.LittleEndian.Uint64(h[18+e:])
	// The seconds' column is lanes 2-6, and one more below them for
	// each digit of seconds past five.
	sl := 0x0080808080800000 | 0x8080&^(uint64(0xffff)>>(8*e))
	if wt>>56 != ' ' || wc>>32&0xffff != 0x205d || ws>>56 != '.' { // "] " after the CPU
		return nil, false
	}
	// The TID: the digits that end at lane 6, after a blank in lane l.
	nd := nonDigits(wt) & 0x0080808080808080
	l := 7 - bits.LeadingZeros64(nd)/8
	tidDigits := uint64(0x00ffffffffffffff) >> (8*l + 8) << (8*l + 8)
	nds, ok1 := padded(ws, sl)
	// The CPU's three digits moved to lanes 5-7, and the fraction's to
	// lanes 2-7, with '0's below them.
	cpu, ok2 := eightDigits(wc<<32&^0xffffffffff | ascii0s&0xffffffffff)
	frac, ok3 := eightDigits(wf&^0xffff | 0x3030)
	// nd == 0 (seven digits, no blank) is tested before the shift by l,
	// which is then -1.
	if !(ok1 && ok2 && ok3) || nd == 0 || l == 6 || byte(wt>>(8*l)) != ' ' {
		return nil, false
	}
	tid := eightDigitsValue(wt&tidDigits<<8 | ascii0s&^(tidDigits<<8))
	secs := paddedValue(ws, nds, sl)
	d := k - 8 + l
	ev.TID, ev.CPU, ev.Time, ev.Comm = int(tid), int(cpu), int64(secs)*1e9+int64(frac)*1000, trimBlanks(b[:d])
	return b[k+19+e:], true
}

// padded reports whether the lanes of w whose high bits lanes marks (a
// run ending at lane 6) hold a number as printf pads it to their width:
// blanks, then at least one digit. nd marks the lanes that are not
// digits, the blanks, for paddedValue.
func padded(w, lanes uint64) (nd uint64, ok bool) {
	nd = nonDigits(w) & lanes
	x := w ^ blanks
	digits := lanes &^ nd
	// Each lane a digit or a blank, and every blank below every digit
	// (so the last lane is a digit: with none, digits&-digits is 0).
	return nd, nd == lanes&^((x&low7s)+low7s|x) && nd < digits&-digits
}

// paddedValue returns the number padded found in w: its blanks made '0'
// (0x20|0x10; a digit has 0x10 set), its lanes moved up one, so that the
// last digit is in lane 7, and '0's in the lanes below them.
func paddedValue(w, nd, lanes uint64) uint64 {
	field := lanes >> 7 * 0xff << 8
	return eightDigitsValue((w|nd>>3)<<8&field | ascii0s&^field)
}

// maxSecs is the largest timestamp, in seconds, whose nanoseconds an
// int64 holds.
const maxSecs = (math.MaxInt64 - 999_999_999) / 1_000_000_000

// headNoBracket reads the head of a line without perf's "[CPU]": at the
// first colon that ends a timestamp preceded by a blank and a TID,
// "COMM TID TIME:" (perf script -F -cpu, or a field list without cpu) or,
// when the word before the timestamp is a number of at most 4 digits that
// follows a TID, "COMM TID CPU TIME:" (perf script -L, which prints the
// CPU as "%3d"). A comm whose last word is a number, on a line without the
// CPU and with a TID of at most 4 digits, reads as the second. head's
// timestamp ends at the first byte that is not a digit or the dot, so a
// head found here ends at the colon c.
//
// Kernel: tools/perf/builtin-script.c:perf_sample__fprintf_start() ("%8.8s"
// comm, "%7d" TID and "%3d" CPU under -L).
func (ev *Event) headNoBracket(b []byte) ([]byte, bool) {
	for from := 0; ; {
		c := bytes.IndexByte(b[from:], ':')
		if c < 0 {
			return nil, false
		}
		c += from
		from = c + 1
		// The timestamp's first digit: back over digits and one dot.
		s, dot := c, false
		for s > 0 && (isDigit(b[s-1]) || b[s-1] == '.' && !dot) {
			dot = dot || b[s-1] == '.'
			s--
		}
		if s == c || s == 0 || b[s-1] != ' ' {
			continue
		}
		// The word before the timestamp: the CPU of -L, or the TID.
		w := s - 1
		for w >= 0 && b[w] == ' ' {
			w--
		}
		for w >= 0 && isDigit(b[w]) {
			w--
		}
		if w < s-2 && (w < 0 || b[w] == ' ') {
			if rest, ok := ev.head(b, w+1, cpuBare); ok {
				return rest, true
			}
		}
		if rest, ok := ev.head(b, s, cpuNone); ok {
			return rest, true
		}
	}
}

// body reads "SUBSYS:EVENT: FIELDS".
func (ev *Event) body(rest []byte, skip uint32) error {
	rest = skipBlanks(rest)
	end, k := nameEnd(rest)
	if end < 0 {
		return fmt.Errorf("%w: no event name", ErrMalformed)
	}
	ev.Name, ev.Kind = rest[:end], k
	ev.Fields = skipBlanks(rest[end+1:])
	return ev.fields(skip)
}

// fields decodes the fields of ev's Kind, unless skip has its bit.
func (ev *Event) fields(skip uint32) error {
	k := ev.Kind
	if k == Other || skip&(1<<k) != 0 {
		return nil
	}
	switch k {
	case PageAlloc, PageFree, PageFreeBatched, PageAllocZoneLocked, PagePcpuDrain:
		if ev.pageFields() {
			return nil
		}
	}
	return decodeFields(ev)
}

// nameEnd returns the index of the colon that ends the event name
// "subsys:event:" at the start of b (-1 when there is none), and the
// name's Kind. The page events, most of a capture, are matched whole
// against their names (constant strings, which compile to a few word
// compares); any other name is found by its two colons.
func nameEnd(b []byte) (int, Kind) {
	const page = "kmem:mm_page_"
	if len(b) > len(page) && string(b[:len(page)]) == page {
		t := b[len(page):]
		k, n := Other, 0
		switch t[0] {
		case 'a':
			switch {
			case hasPrefix(t, "alloc:"):
				k, n = PageAlloc, len("alloc:")
			case hasPrefix(t, "alloc_zone_locked:"):
				k, n = PageAllocZoneLocked, len("alloc_zone_locked:")
			case hasPrefix(t, "alloc_extfrag:"):
				k, n = PageAllocExtfrag, len("alloc_extfrag:")
			}
		case 'f':
			switch {
			case hasPrefix(t, "free:"):
				k, n = PageFree, len("free:")
			case hasPrefix(t, "free_batched:"):
				k, n = PageFreeBatched, len("free_batched:")
			}
		case 'p':
			if hasPrefix(t, "pcpu_drain:") {
				k, n = PagePcpuDrain, len("pcpu_drain:")
			}
		}
		if k != Other {
			return len(page) + n - 1, k
		}
	}
	c1 := bytes.IndexByte(b, ':')
	if c1 < 0 {
		return -1, Other
	}
	c2 := bytes.IndexByte(b[c1+1:], ':')
	if c2 < 0 {
		return -1, Other
	}
	end := c1 + 1 + c2
	return end, kindOf(b[:end])
}

// hasPrefix is bytes.HasPrefix for a constant prefix, inlined.
func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

// pageFields is the fast path of the page events, whose fields come in
// the print fmt's order: "page=P pfn=0xN order=N[ migratetype=N[
// gfp_flags=S | percpu_refill=N]]". It reports false when the line is
// not of that shape; decodeFields then reads it.
func (ev *Event) pageFields() bool {
	f := ev.Fields
	if len(f) < 5 || string(f[:5]) != "page=" {
		return false
	}
	// The page pointer is not needed. Its print fmt is
	// "((struct page *)vmemmap_base) + (REC->pfn)", which perf prints
	// as the pfn's own text (so does every page event of the bundled
	// captures): its digits are read as hex on the way past it, and
	// when the pfn's text is the same, they are the pfn.
	i, hex := 5, len(f) >= 7 && f[5] == '0' && f[6] == 'x'
	if hex {
		i = 7
	}
	var pfn uint64
	var bad uint8
	for i < len(f) && f[i] != ' ' {
		d := hexDigit[f[i]]
		bad |= d
		pfn = pfn<<4 | uint64(d)
		i++
	}
	// The page's digits, from 7 to i, if it was "0x" and up to 16 of them.
	n := i - 7
	if !hex || n < 1 || n > 16 || bad > 0xf {
		n = 0
	}
	i++
	if i+6 > len(f) || string(f[i:i+6]) != "pfn=0x" {
		return false
	}
	i += 6
	// The pfn's text is the page's when the bytes of a word from each,
	// below the n-th, are the same.
	if n > 0 && n <= 8 && i+8 <= len(f) &&
		(binary.LittleEndian.Uint64(f[i:])^binary.LittleEndian.Uint64(f[7:]))<<(64-8*n) == 0 &&
		(i+n == len(f) || f[i+n] == ' ') {
		i += n
	} else {
		pfn, n = 0, 0
		for ; i < len(f) && f[i] != ' '; i, n = i+1, n+1 {
			d := hexDigit[f[i]]
			if d > 0xf {
				return false
			}
			pfn = pfn<<4 | uint64(d)
		}
		if n == 0 || n > 16 {
			return false
		}
	}
	ev.PFN = pfn
	if !keyAt(f, i+1, "order=") {
		return false
	}
	o, i, ok := decimal(f, i+1+len("order="))
	if !ok {
		return false
	}
	ev.Order = o
	switch ev.Kind {
	case PageFree, PageFreeBatched:
		return i >= len(f)
	}
	if !keyAt(f, i+1, "migratetype=") {
		return false
	}
	mt, i, ok := decimal(f, i+1+len("migratetype="))
	if !ok {
		return false
	}
	ev.Migratetype = mt
	if ev.Kind == PageAlloc {
		const key = "gfp_flags="
		i++
		if i+len(key) >= len(f) || !keyAt(f, i, key) {
			return false
		}
		v := f[i+len(key):]
		if bytes.IndexByte(v, ' ') >= 0 {
			return false
		}
		ev.GFP, ev.Failed = v, pfn == 0
	}
	return true
}

func isDigit(c byte) bool { return c-'0' <= 9 }

// eightDigits reads the eight ASCII digits of u, the first in its low
// byte, as one number: pairs, then quads, then the whole, each step one
// multiply. ok is false when a byte is not a digit.
func eightDigits(u uint64) (v uint64, ok bool) {
	// A digit's high nibble is 3 and adding 6 keeps it 3.
	if u&0xf0f0f0f0f0f0f0f0 != ascii0s || (u+0x0606060606060606)&0xf0f0f0f0f0f0f0f0 != ascii0s {
		return 0, false
	}
	return eightDigitsValue(u), true
}

// eightDigitsValue is eightDigits of a u known to be eight digits.
func eightDigitsValue(u uint64) uint64 {
	u -= ascii0s
	u = (u * (10<<8 + 1)) >> 8 & 0x00ff00ff00ff00ff
	u = (u * (100<<16 + 1)) >> 16 & 0x0000ffff0000ffff
	return (u * (10000<<32 + 1)) >> 32
}

// The words of the reads above: a byte of each in every lane.
const (
	ascii0s = 0x3030303030303030 // '0'
	blanks  = 0x2020202020202020 // ' '
	low7s   = 0x7f7f7f7f7f7f7f7f
)

// nonDigits marks, by its high bit, each byte of w that is not an ASCII
// digit. XOR with '0' makes a digit its value, 0-9; a byte of 10 or more
// then carries into its high bit when 0x76 is added to its low seven
// (which cannot carry further), or had it set already.
func nonDigits(w uint64) uint64 {
	x := w ^ ascii0s
	return ((x & low7s) + 0x7676767676767676 | x) & 0x8080808080808080
}

// hexDigit maps a byte to its value as a lower-case hex digit, 0xff for
// any other: a table, since the digits of a pfn mix 0-9 and a-f at random
// and a branch on which would mispredict.
var hexDigit = func() (t [256]uint8) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = uint8(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = uint8(c - 'a' + 10)
	}
	return t
}()

// keyAt reports whether f holds key at i. It inlines, so that key, a
// constant at every call, is compared as one.
func keyAt(f []byte, i int, key string) bool {
	return i+len(key) <= len(f) && string(f[i:i+len(key)]) == key
}

// decimal reads the decimal number at f[i:], of at most 9 digits and
// followed by a blank or the end, returning it and the index after it.
func decimal(f []byte, i int) (int, int, bool) {
	v, n := 0, 0
	for ; i < len(f) && isDigit(f[i]) && n < 9; i, n = i+1, n+1 {
		v = v*10 + int(f[i]-'0')
	}
	if n == 0 || (i < len(f) && f[i] != ' ') {
		return 0, 0, false
	}
	return v, i, true
}

// field bits say which fields a line carried.
const (
	fPFN = 1 << iota
	fOrder
	fMT
	fGFP
	fPtr
	fReq
	fAlloc
	fName
	fVA
	fSize
)

// need lists the fields each Kind must carry.
var need = [NrKinds]uint16{
	PageAlloc:           fPFN | fOrder | fMT | fGFP,
	PageFree:            fPFN | fOrder,
	PageFreeBatched:     fPFN,
	PageAllocZoneLocked: fPFN | fOrder | fMT,
	PagePcpuDrain:       fPFN | fOrder | fMT,
	PageAllocExtfrag:    fPFN,
	Kmalloc:             fPtr | fReq | fAlloc | fGFP,
	Kfree:               fPtr,
	KmemCacheAlloc:      fPtr | fReq | fAlloc | fGFP | fName,
	KmemCacheFree:       fPtr,
	AllocVmapArea:       fVA | fSize,
	FreeVmapArea:        fVA,
}

// decodeFields reads the key=value pairs of a known event.
func decodeFields(ev *Event) error {
	var seen uint16
	f := ev.Fields
	for len(f) > 0 {
		sp := bytes.IndexByte(f, ' ')
		tok := f
		if sp >= 0 {
			tok, f = f[:sp], skipBlanks(f[sp+1:])
		} else {
			f = nil
		}
		eq := bytes.IndexByte(tok, '=')
		var key, val []byte
		switch {
		case eq >= 0:
			key, val = tok[:eq], tok[eq+1:]
		case len(tok) > 1 && tok[len(tok)-1] == ':':
			// "va_start: N", alloc_vmap_area's own format.
			key = tok[:len(tok)-1]
			sp := bytes.IndexByte(f, ' ')
			if sp < 0 {
				val, f = f, nil
			} else {
				val, f = f[:sp], skipBlanks(f[sp+1:])
			}
		default:
			continue
		}
		var ok bool
		switch string(key) {
		case "pfn":
			ev.PFN, ok = parseUint(val)
			seen |= fPFN
		case "order":
			var n int64
			n, ok = atoi(val)
			ev.Order = int(n)
			seen |= fOrder
		case "migratetype":
			var n int64
			n, ok = atoi(val)
			ev.Migratetype = int(n)
			seen |= fMT
		case "gfp_flags":
			ev.GFP, ok = val, len(val) > 0
			seen |= fGFP
		case "ptr":
			ev.Ptr, ok = parseUint(val)
			seen |= fPtr
		case "bytes_req":
			ev.BytesReq, ok = atoi(val)
			seen |= fReq
		case "bytes_alloc":
			ev.BytesAlloc, ok = atoi(val)
			seen |= fAlloc
		case "name":
			ev.Cache, ok = val, len(val) > 0
			seen |= fName
		case "call_site":
			ev.CallSite, ok = val, true
		case "va_start":
			ev.VAStart, ok = parseUint(val)
			seen |= fVA
		case "size":
			ev.Size, ok = parseUint(val)
			seen |= fSize
		case "failed":
			var n int64
			n, ok = atoi(val)
			ev.Failed = n != 0
		default:
			ok = true
		}
		if !ok {
			return fmt.Errorf("%w: %s: bad %s=%q", ErrMalformed, ev.Name, key, val)
		}
	}
	if missing := need[ev.Kind] &^ seen; missing != 0 {
		return fmt.Errorf("%w: %s: missing fields (%s)", ErrMalformed, ev.Name, missingNames(missing))
	}
	switch ev.Kind {
	case PageAlloc:
		ev.Failed = ev.PFN == 0
	case Kmalloc, KmemCacheAlloc:
		ev.Failed = ev.Ptr == 0
	}
	return nil
}

func missingNames(m uint16) string {
	names := []string{"pfn", "order", "migratetype", "gfp_flags", "ptr", "bytes_req", "bytes_alloc", "name", "va_start", "size"}
	var out []byte
	for i, n := range names {
		if m&(1<<i) != 0 {
			if len(out) > 0 {
				out = append(out, ", "...)
			}
			out = append(out, n...)
		}
	}
	return string(out)
}

// atoi reads a decimal integer, with an optional minus sign.
func atoi(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// parseUint reads "0x..." hex, a decimal number, or "(nil)" (0).
func parseUint(b []byte) (uint64, bool) {
	if len(b) > 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X') {
		b = b[2:]
		if len(b) > 16 {
			return 0, false
		}
		var n uint64
		for _, c := range b {
			switch {
			case c >= '0' && c <= '9':
				n = n<<4 | uint64(c-'0')
			case c >= 'a' && c <= 'f':
				n = n<<4 | uint64(c-'a'+10)
			case c >= 'A' && c <= 'F':
				n = n<<4 | uint64(c-'A'+10)
			default:
				return 0, false
			}
		}
		return n, true
	}
	if string(b) == "(nil)" {
		return 0, true
	}
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// skipBlanks drops leading blanks, a word at a time: perf pads its
// columns wide.
func skipBlanks(b []byte) []byte {
	for len(b) >= 8 {
		if x := binary.LittleEndian.Uint64(b) ^ blanks; x != 0 {
			return b[bits.TrailingZeros64(x)/8:]
		}
		b = b[8:]
	}
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	return b
}

func trimBlanks(b []byte) []byte {
	b = skipBlanks(b)
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}
