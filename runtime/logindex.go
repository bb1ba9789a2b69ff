package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// # Log index
//
// A lease's log (Spec.LogPath) holds the workload's stdout and stderr exactly as written, merged, with nothing
// added: what `spare deploy` and `spare logs` stream raw. Beside it, IndexPath(LogPath) is a sidecar that says
// when each part of the log was read and from which stream. The workload never writes either file: a runtime
// copies its output (the process runtime's log copier, a process of the daemon's user; the docker runtime's
// log follower), so no byte the workload writes, framing-like or not, can forge an index entry.
//
// The index is a sequence of fixed-size records of IndexRecordSize bytes:
//
//	offset   8 bytes  big-endian: where in the log the bytes the record covers begin
//	time     6 bytes  big-endian unix milliseconds: when the runtime read them (docker: the engine's time)
//	stream   1 byte   1 stdout, 2 stderr
//	version  1 byte   0
//
// A record covers the log from its offset up to the next record's offset (the last one: to the log's end).
// Records are written at line starts only (see LineSplitter for what a line is), and only when the stream or
// the millisecond changes, so a line's time is the time of the record its first byte lies in. Offsets never go
// down; times never go down (a clock stepping back repeats the last time). The writer appends a record before
// the bytes it covers, and a reader reads the log before the index, so a reader always has the record of
// every log byte it read.
//
// Bounds: a record is written only while the index stays no bigger than the log plus IndexSlack (a workload
// that alternates one-byte writes between its streams gets some of its bytes attributed to the previous record,
// never an index much larger than its log: lines of 16 bytes or more never need the slack), and a writer with a limit stops appending to both files once they reach it together.
// Lines are at most MaxLogLine bytes: a longer one is split (the rest is a new line, of the same time when it
// was read at once).

// IndexRecordSize is the size of one index record.
const IndexRecordSize = 16

// IndexSlack is how much bigger than its log an index may grow (records for very short lines).
const IndexSlack = 4 << 20

// MaxLogLine is the longest line a log line has (without its newline): longer lines are split.
const MaxLogLine = 16 << 10

// Stream is where a workload wrote bytes.
type Stream uint8

const (
	StreamUnknown Stream = 0 // bytes with no index record (a log written before the index existed)
	Stdout        Stream = 1
	Stderr        Stream = 2
)

func (s Stream) String() string {
	switch s {
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	}
	return ""
}

// IndexPath is the index file of the log at logPath.
func IndexPath(logPath string) string { return logPath + ".index" }

// IndexRecord is one index record: the log bytes from Offset on were read at UnixMilli from Stream.
type IndexRecord struct {
	Offset    int64
	UnixMilli int64
	Stream    Stream
}

// Time is the record's time (zero for a zero UnixMilli).
func (r IndexRecord) Time() time.Time {
	if r.UnixMilli <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(r.UnixMilli).UTC()
}

const maxMilli = 1<<48 - 1

// AppendIndexRecord appends r's encoding to b.
func AppendIndexRecord(b []byte, r IndexRecord) []byte {
	var rec [IndexRecordSize]byte
	binary.BigEndian.PutUint64(rec[0:8], uint64(max(r.Offset, 0)))
	ms := uint64(min(max(r.UnixMilli, 0), maxMilli))
	for i := range 6 {
		rec[8+i] = byte(ms >> (40 - 8*i))
	}
	rec[14] = byte(r.Stream)
	return append(b, rec[:]...)
}

// ErrBadIndexRecord is returned by DecodeIndexRecord for a record no writer writes.
var ErrBadIndexRecord = errors.New("log index: bad record")

// DecodeIndexRecord decodes one record (exactly IndexRecordSize bytes).
func DecodeIndexRecord(b []byte) (IndexRecord, error) {
	if len(b) != IndexRecordSize {
		return IndexRecord{}, fmt.Errorf("%w: %d bytes, want %d", ErrBadIndexRecord, len(b), IndexRecordSize)
	}
	off := binary.BigEndian.Uint64(b[0:8])
	ms := uint64(b[8])<<40 | uint64(b[9])<<32 | uint64(b[10])<<24 | uint64(b[11])<<16 | uint64(b[12])<<8 | uint64(b[13])
	s := Stream(b[14])
	if off > 1<<62 || (s != Stdout && s != Stderr) || b[15] != 0 {
		return IndexRecord{}, ErrBadIndexRecord
	}
	return IndexRecord{Offset: int64(off), UnixMilli: int64(ms), Stream: s}, nil
}

// LogWriter appends a workload's output to its log and index. It is not safe for concurrent use.
type LogWriter struct {
	log, idx       io.Writer
	size, idxSize  int64
	limit          int64 // the log's most bytes; 0: none
	last           IndexRecord
	haveRec        bool
	lineLen        int // text bytes of the line in progress, as LineSplitter counts them
	recBuf         []byte
	Dropped        int64 // bytes not written: over the limit
	droppedRecords int64
	buffered       bool
	logBuf, idxBuf []byte
}

// NewLogWriter appends to log and idx (both opened for appending), whose sizes now are logSize and idxSize. An
// index whose size is not a whole number of records (a writer died mid-record) must be truncated first:
// OpenLogWriter does that. The first write starts a new record whatever the last one was.
func NewLogWriter(log, idx io.Writer, logSize, idxSize, limit int64) *LogWriter {
	return &LogWriter{log: log, idx: idx, size: logSize, idxSize: idxSize, limit: limit}
}

// OpenLogWriter opens (creates) the log at logPath and its index for appending, without following a link at
// either path, and returns a writer and the files (to close). limit bounds the log (0: no bound).
func OpenLogWriter(logPath string, limit int64) (*LogWriter, []*os.File, error) {
	logf, err := openAppend(logPath)
	if err != nil {
		return nil, nil, err
	}
	idxf, err := openAppend(IndexPath(logPath))
	if err != nil {
		logf.Close()
		return nil, nil, err
	}
	w, err := NewLogWriterFiles(logf, idxf, limit)
	if err != nil {
		logf.Close()
		idxf.Close()
		return nil, nil, err
	}
	return w, []*os.File{logf, idxf}, nil
}

// NewLogWriterFiles is NewLogWriter on open files: it takes their sizes, truncates a torn last index record and
// keeps the last record's time, so that times stay monotonic across writers.
func NewLogWriterFiles(logf, idxf *os.File, limit int64) (*LogWriter, error) {
	li, err := logf.Stat()
	if err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	ii, err := idxf.Stat()
	if err != nil {
		return nil, fmt.Errorf("log index: %w", err)
	}
	if !li.Mode().IsRegular() || !ii.Mode().IsRegular() {
		return nil, errors.New("log: not a regular file")
	}
	isz := ii.Size()
	if r := isz % IndexRecordSize; r != 0 {
		isz -= r
		if err := idxf.Truncate(isz); err != nil {
			return nil, fmt.Errorf("log index: %w", err)
		}
	}
	w := NewLogWriter(logf, idxf, li.Size(), isz, limit)
	if isz >= IndexRecordSize {
		b := make([]byte, IndexRecordSize)
		if _, err := idxf.ReadAt(b, isz-IndexRecordSize); err == nil {
			if r, err := DecodeIndexRecord(b); err == nil {
				w.last.UnixMilli = r.UnixMilli
			}
		}
	}
	return w, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	return f, nil
}

// Size is the log's size as this writer knows it.
func (w *LogWriter) Size() int64 { return w.size }

// Write appends p, read from stream s at time t, to the log, with the index record it needs first.
func (w *LogWriter) Write(s Stream, t time.Time, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if w.limit > 0 {
		room := w.limit - w.size
		if room < int64(len(p)) {
			n := max(room, 0)
			w.Dropped += int64(len(p)) - n
			p = p[:n]
			if len(p) == 0 {
				return nil
			}
		}
	}
	ms := max(t.UnixMilli(), w.last.UnixMilli) // never down
	ll := w.lineLen
	if !w.haveRec || s != w.last.Stream {
		ll = 0 // a new record ends the line in progress
	}
	first := -1
	for i, b := range p {
		start := ll == 0 || (b != '\n' && ll == MaxLogLine)
		if start && first < 0 {
			first = i
		}
		switch {
		case b == '\n':
			ll = 0
		case ll == MaxLogLine:
			ll = 1
		default:
			ll++
		}
	}
	need := !w.haveRec || s != w.last.Stream || (first >= 0 && ms != w.last.UnixMilli)
	if need {
		if first < 0 || s != w.last.Stream || !w.haveRec {
			first = 0
		}
		rec := IndexRecord{Offset: w.size + int64(first), UnixMilli: ms, Stream: s}
		if w.idxSize+IndexRecordSize <= w.size+int64(len(p))+IndexSlack { // the index never outgrows the log by more
			if w.buffered {
				w.idxBuf = AppendIndexRecord(w.idxBuf, rec)
				w.idxSize += IndexRecordSize
			} else {
				w.recBuf = AppendIndexRecord(w.recBuf[:0], rec)
				n, err := w.idx.Write(w.recBuf)
				w.idxSize += int64(n)
				if err != nil {
					return fmt.Errorf("log index: %w", err)
				}
			}
			w.last, w.haveRec = rec, true
		} else {
			// No room: the bytes continue the previous record's line (or have no record at all).
			w.droppedRecords++
			ll = recount(p, w.lineLen)
		}
	}
	if w.buffered {
		w.logBuf = append(w.logBuf, p...)
		w.size += int64(len(p))
		w.lineLen = ll
		return nil
	}
	n, err := w.log.Write(p)
	w.size += int64(n)
	w.lineLen = ll
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	return nil
}

// SetBuffered makes Write keep what it would write in memory until Flush (a batch of many small writes).
func (w *LogWriter) SetBuffered() { w.buffered = true }

// Buffered is how many log bytes wait for Flush.
func (w *LogWriter) Buffered() int { return len(w.logBuf) }

// Flush writes what a buffered writer holds: the index records first, then the log bytes. It returns how many
// of the buffered log bytes reached the log. After an error the writer must not be used again (its sizes no
// longer match the files): make a new one.
func (w *LogWriter) Flush() (int, error) {
	if len(w.idxBuf) > 0 {
		_, err := w.idx.Write(w.idxBuf)
		w.idxBuf = w.idxBuf[:0]
		if err != nil {
			w.logBuf = w.logBuf[:0]
			return 0, fmt.Errorf("log index: %w", err)
		}
	}
	n, err := w.log.Write(w.logBuf)
	w.logBuf = w.logBuf[:0]
	if err != nil {
		return n, fmt.Errorf("log: %w", err)
	}
	return n, nil
}

// recount is the line length after p when the line in progress had ll bytes.
func recount(p []byte, ll int) int {
	for _, b := range p {
		switch {
		case b == '\n':
			ll = 0
		case ll == MaxLogLine:
			ll = 1
		default:
			ll++
		}
	}
	return ll
}

// LogLine is one line of a log: its time and stream (zero when the index has no record for it), its text
// without the newline, where it begins in the log, and whether it ended without a newline (cut at
// MaxLogLine, at a change of stream, or at the end of the log).
type LogLine struct {
	Offset  int64
	Time    time.Time
	Stream  Stream
	Text    []byte
	Partial bool
}

// LineSplitter turns a log's bytes and its index records into lines. Feed it the log from its start in order,
// with AddRecords before Feed for every record whose offset is below the end of what Feed gets. A line is the
// bytes up to a newline (not included), or MaxLogLine bytes, or the bytes up to the next record. Bad records
// (offsets that go down) are ignored. Its memory is bounded by MaxLogLine and the records not yet reached.
type LineSplitter struct {
	pending []IndexRecord
	cur     IndexRecord
	haveCur bool
	pos     int64 // offset of the next byte Feed gets
	line    []byte
	started bool
	start   IndexRecord // the record of the line's first byte
	lineOff int64
	lastOff int64 // the highest record offset accepted
}

// AddRecords queues index records, in the index's order.
func (s *LineSplitter) AddRecords(rs ...IndexRecord) {
	for _, r := range rs {
		if r.Offset < s.lastOff || r.Offset < s.pos {
			continue // offsets never go down: a corrupt or foreign record
		}
		s.lastOff = r.Offset
		s.pending = append(s.pending, r)
	}
}

// Pos is the log offset of the next byte Feed expects.
func (s *LineSplitter) Pos() int64 { return s.pos }

// Feed processes log bytes from Pos on and calls emit for each line they complete. The line given to emit is
// valid only during the call.
func (s *LineSplitter) Feed(p []byte, emit func(LogLine) error) error {
	for len(p) > 0 {
		// The records that begin at the current position (the last of several at one offset wins).
		for len(s.pending) > 0 && s.pending[0].Offset <= s.pos {
			if s.started {
				if err := s.emit(true, emit); err != nil {
					return err
				}
			}
			s.cur, s.haveCur = s.pending[0], true
			s.pending = s.pending[1:]
		}
		if len(s.pending) == 0 {
			s.pending = nil // let the backing array go
		}
		// The bytes up to the next record.
		n := len(p)
		if len(s.pending) > 0 {
			n = int(min(int64(n), s.pending[0].Offset-s.pos))
		}
		chunk := p[:n]
		p = p[n:]
		for len(chunk) > 0 {
			if !s.started {
				s.started, s.start, s.lineOff = true, s.cur, s.pos
				if !s.haveCur {
					s.start = IndexRecord{}
				}
			}
			room := MaxLogLine - len(s.line)
			i := indexNewline(chunk, room+1)
			switch {
			case i >= 0: // a newline within the line's room
				s.line = append(s.line, chunk[:i]...)
				s.pos += int64(i + 1)
				chunk = chunk[i+1:]
				if err := s.emit(false, emit); err != nil {
					return err
				}
			case len(chunk) > room: // the line is full and another byte comes that is not a newline
				s.line = append(s.line, chunk[:room]...)
				s.pos += int64(room)
				chunk = chunk[room:]
				if err := s.emit(true, emit); err != nil {
					return err
				}
			default:
				s.line = append(s.line, chunk...)
				s.pos += int64(len(chunk))
				chunk = nil
			}
		}
	}
	return nil
}

// indexNewline is the index of the first '\n' among the first n bytes of b, or -1.
func indexNewline(b []byte, n int) int {
	if n < len(b) {
		b = b[:n]
	}
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}

func (s *LineSplitter) emit(partial bool, emit func(LogLine) error) error {
	l := LogLine{Offset: s.lineOff, Time: s.start.Time(), Stream: s.start.Stream, Text: s.line, Partial: partial}
	s.started = false
	err := emit(l)
	s.line = s.line[:0]
	return err
}

// Pending reports whether a line is in progress (bytes without their newline yet).
func (s *LineSplitter) Pending() bool { return s.started }

// Flush emits the line in progress, if any, as a partial line: at the end of a log that will not grow.
func (s *LineSplitter) Flush(emit func(LogLine) error) error {
	if !s.started {
		return nil
	}
	return s.emit(true, emit)
}

// DecodeIndex decodes the whole records at the start of b, leaving out bad ones, and returns how many bytes it
// used (a multiple of IndexRecordSize: a torn last record waits for its end).
func DecodeIndex(b []byte) ([]IndexRecord, int) {
	n := len(b) - len(b)%IndexRecordSize
	rs := make([]IndexRecord, 0, n/IndexRecordSize)
	for i := 0; i < n; i += IndexRecordSize {
		if r, err := DecodeIndexRecord(b[i : i+IndexRecordSize]); err == nil {
			rs = append(rs, r)
		}
	}
	return rs, n
}

// SplitLog is the lines of a whole log and its index (both read at once, the log first): for tests and tools;
// the provider reads them as they grow.
func SplitLog(log, index []byte) []LogLine {
	var s LineSplitter
	rs, _ := DecodeIndex(index)
	s.AddRecords(rs...)
	var lines []LogLine
	keep := func(l LogLine) error {
		l.Text = append([]byte(nil), l.Text...)
		lines = append(lines, l)
		return nil
	}
	_ = s.Feed(log, keep)
	_ = s.Flush(keep)
	return lines
}
