package provider

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sparenet/spare/reqsig"
	"github.com/sparenet/spare/runtime"
)

// The line form of GET /leases/{id}/logs: ?format=jsonl answers one JSON object per line of the workload's
// output, from its log and the log's index (runtime.IndexPath, written by the runtime as it copied the output):
//
//	{"time": "2026-12-07T04:00:00.123Z", "stream": "stdout", "text": "step 1 loss 0.5"}
//
// time is when the runtime read the line (millisecond precision; absent for a log written without an index),
// stream "stdout" or "stderr" ("spare" for the provider's own note that it stopped at limits.max_log_bytes),
// text the line without its newline (invalid UTF-8 replaced), "partial": true for a line that did not end with
// a newline (cut at runtime.MaxLogLine bytes, by the other stream's output, or the end of the log). Parameters:
//
//	follow=1      keep answering lines until the workload has ended (also 0, true, false)
//	since=T       only lines read at or after T: RFC 3339 (2026-12-07T04:00:00Z) or unix milliseconds
//	tail=N        only the last N lines (of those since T), then, following, every new one; 0..MaxLogTail
//
// Without format (or format=text) the answer is the log's bytes, as before; since and tail need format=jsonl.

// LogLine is one line of the line form of the logs route.
type LogLine struct {
	Time    string `json:"time,omitempty"`
	Stream  string `json:"stream"`
	Text    string `json:"text"`
	Partial bool   `json:"partial,omitempty"`
}

// LogLinesContentType is the line form's content type.
const LogLinesContentType = "application/jsonl; charset=utf-8"

// LogLimitCode is the logs route's error code for a stream resumed past the log's limit (HTTP 416).
const LogLimitCode = "log_limit"

// LogOffsetHeader says at which byte of the log the logs route's text body starts (its offset parameter): a
// tenant resuming a cut stream checks it, so that a provider cannot show a line twice or out of place.
const LogOffsetHeader = "Spare-Log-Offset"

// MaxLogTail is the largest tail the logs route takes.
const MaxLogTail = 100_000

// logPartialAfter is how long a followed line without its newline waits for the rest before it is sent as a
// partial line (a progress bar).
const logPartialAfter = time.Second

// logQuery is the logs route's parameters.
type logQuery struct {
	lines  bool
	follow bool
	since  time.Time // zero: all
	tail   int       // 0: all
	offset int64     // the text form: the first byte to send (a stream resumed after a cut)
}

// badQuery is a parameter's error, said to the tenant as a 400.
type badQuery struct{ msg string }

func (e *badQuery) Error() string { return e.msg }

// parseLogQuery validates the logs route's parameters.
func parseLogQuery(q url.Values) (logQuery, error) {
	var lq logQuery
	one := func(name string) (string, bool, error) {
		v, ok := q[name]
		if !ok {
			return "", false, nil
		}
		if len(v) != 1 {
			return "", false, &badQuery{fmt.Sprintf("%s given %d times: give it once", name, len(v))}
		}
		return v[0], true, nil
	}
	format, _, err := one("format")
	if err != nil {
		return lq, err
	}
	switch format {
	case "", "text":
	case "jsonl":
		lq.lines = true
	default:
		return lq, &badQuery{fmt.Sprintf("format %q: text (the log's bytes, the default) or jsonl (a JSON object per line)", format)}
	}
	if v, ok, err := one("follow"); err != nil {
		return lq, err
	} else if ok {
		switch v {
		case "1", "true":
			lq.follow = true
		case "", "0", "false":
		default:
			return lq, &badQuery{fmt.Sprintf("follow %q: 1 to follow the log until the workload ends, 0 not to", v)}
		}
	}
	if v, ok, err := one("since"); err != nil {
		return lq, err
	} else if ok {
		t, err := parseLogSince(v)
		if err != nil {
			return lq, err
		}
		lq.since = t
	}
	if v, ok, err := one("tail"); err != nil {
		return lq, err
	} else if ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxLogTail {
			return lq, &badQuery{fmt.Sprintf("tail %q: a number of lines, 0 to %d (0: all)", v, MaxLogTail)}
		}
		lq.tail = n
	}
	if v, ok, err := one("offset"); err != nil {
		return lq, err
	} else if ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 1<<50 {
			return lq, &badQuery{fmt.Sprintf("offset %q: the byte of the log to start from, 0 or more (what a cut stream had received)", v)}
		}
		if lq.lines {
			return lq, &badQuery{"offset is the text form's: drop it, or format=jsonl"}
		}
		lq.offset = n
	}
	if !lq.lines && (!lq.since.IsZero() || lq.tail > 0) {
		return lq, &badQuery{"since and tail select lines: add format=jsonl"}
	}
	return lq, nil
}

// parseLogSince reads since: an RFC 3339 time or unix milliseconds.
func parseLogSince(v string) (time.Time, error) {
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms >= 0 && ms < 1<<47 {
		return time.UnixMilli(ms), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.Time{}, &badQuery{fmt.Sprintf("since %q: an RFC 3339 time (2026-12-07T04:00:00Z) or unix milliseconds", v)}
}

// lineSource reads a lease's log and index as they grow, at most limit bytes of log, opening each without
// following a link once it exists.
type lineSource struct {
	logPath, idxPath string
	log, idx         *os.File
	sp               runtime.LineSplitter
	idxTail          []byte // a torn record's start
	lastRec          int64  // the highest record offset read
	limit, read      int64
	buf              []byte
}

func newLineSource(logPath string, limit int64) *lineSource {
	return &lineSource{logPath: logPath, idxPath: runtime.IndexPath(logPath), limit: limit, buf: make([]byte, 64<<10), lastRec: -1}
}

func (s *lineSource) close() {
	for _, f := range []*os.File{s.log, s.idx} {
		if f != nil {
			f.Close()
		}
	}
}

// truncated reports whether the source stopped at its limit.
func (s *lineSource) truncated() bool { return s.read >= s.limit }

// step reads the log to its end (or the limit), then the index records the runtime wrote before those bytes,
// and emits the lines they complete. It reports whether it read any log byte.
func (s *lineSource) step(emit func(runtime.LogLine) error) (bool, error) {
	if s.log == nil {
		f, err := openLog(s.logPath)
		if err != nil {
			if os.IsNotExist(err) {
				return false, nil // nothing written yet
			}
			return false, err
		}
		s.log = f
	}
	progress := false
	for s.read < s.limit {
		n, rerr := s.log.Read(s.buf[:min(int64(len(s.buf)), s.limit-s.read)])
		if n > 0 {
			progress = true
			s.read += int64(n)
			// The index after the log: every record of the bytes just read is there (the runtime appends a
			// record before its bytes).
			if err := s.readIndex(s.read); err != nil {
				return progress, err
			}
			if err := s.sp.Feed(s.buf[:n], emit); err != nil {
				return progress, err
			}
		}
		if rerr != nil || n == 0 {
			if rerr != nil && !errors.Is(rerr, io.EOF) {
				return progress, rerr
			}
			break
		}
	}
	return progress, nil
}

// readIndex reads index records until one at or beyond upTo (the log bytes read so far): the records a
// splitter holds are those of one read of the log, however big the index.
func (s *lineSource) readIndex(upTo int64) error {
	if s.idx == nil {
		f, err := openLog(s.idxPath)
		if err != nil {
			if os.IsNotExist(err) {
				return nil // a log without an index: lines of no time and no stream
			}
			return err
		}
		s.idx = f
	}
	var b [64 * runtime.IndexRecordSize]byte
	for s.lastRec < upTo {
		n, err := s.idx.Read(b[:])
		if n > 0 {
			data := append(s.idxTail, b[:n]...)
			rs, used := runtime.DecodeIndex(data)
			s.sp.AddRecords(rs...)
			for _, r := range rs {
				s.lastRec = max(s.lastRec, r.Offset)
			}
			s.idxTail = append(s.idxTail[:0:0], data[used:]...)
		}
		if err != nil || n == 0 {
			return nil
		}
	}
	return nil
}

// getLogLines answers the line form of the logs route; see the top of this file.
func (d *Daemon) getLogLines(w http.ResponseWriter, r *http.Request, lq logQuery, logPath string, ended func() bool) {
	limit := d.cfg.Limits.MaxLogBytes
	skip := 0
	if lq.tail > 0 {
		// First count the lines there are now (of those since), then send from the tail-th last one on: two
		// reads of the log, no line held in memory.
		count := 0
		src := newLineSource(logPath, limit)
		countLine := func(l runtime.LogLine) error {
			if !l.Time.Before(lq.since) {
				count++
			}
			return nil
		}
		for {
			progress, err := src.step(countLine)
			if err != nil {
				src.close()
				d.writeErr(w, err)
				return
			}
			if !progress || src.truncated() {
				break
			}
		}
		_ = src.sp.Flush(countLine)
		src.close()
		skip = max(count-lq.tail, 0)
	}
	src := newLineSource(logPath, limit)
	defer src.close()
	w.Header().Set("Content-Type", LogLinesContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	bw := bufio.NewWriterSize(streamWriter(w, r), 32<<10) // the write deadline extended before each write
	flusher, _ := w.(http.Flusher)
	flush := func() bool {
		if bw.Flush() != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	var rec []byte
	write := func(l LogLine) error {
		var err error
		rec, err = json.Marshal(l)
		if err != nil {
			return err
		}
		if _, err := bw.Write(append(rec, '\n')); err != nil {
			return err
		}
		return nil
	}
	emit := func(l runtime.LogLine) error {
		if l.Time.Before(lq.since) {
			return nil
		}
		if skip > 0 {
			skip--
			return nil
		}
		ll := LogLine{Stream: l.Stream.String(), Text: string(l.Text), Partial: l.Partial}
		if !l.Time.IsZero() {
			ll.Time = l.Time.UTC().Format(time.RFC3339Nano)
		}
		return write(ll)
	}
	finish := func() {
		if src.sp.Flush(emit) != nil {
			return
		}
		if src.truncated() {
			_ = write(LogLine{Stream: "spare", Text: fmt.Sprintf("[spare: log truncated at %d bytes by the provider (limits.max_log_bytes)]", limit)})
		}
		flush()
	}
	idle := time.Now()
	for {
		progress, err := src.step(emit)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				d.log.Warn("tenant API: log lines", "err", err)
			}
			flush()
			return
		}
		if src.truncated() || !lq.follow {
			finish()
			return
		}
		if !flush() {
			return
		}
		if progress {
			idle = time.Now()
		} else if src.sp.Pending() && time.Since(idle) >= logPartialAfter {
			// A line without its newline for a while (a progress bar): send what there is.
			if src.sp.Flush(emit) != nil || !flush() {
				return
			}
		}
		if ended() {
			_, _ = src.step(emit) // what the workload wrote last
			finish()
			return
		}
		extendWriteDeadline(w, r) // a quiet workload is no slow client (see getLogs)
		select {
		case <-r.Context().Done():
			return
		case <-time.After(logPoll):
		}
	}
}

// writeBadQuery answers a parameter's error.
func writeBadQuery(w http.ResponseWriter, err error) {
	var bq *badQuery
	if errors.As(err, &bq) {
		reqsig.WriteError(w, http.StatusBadRequest, "bad_request", bq.msg)
		return
	}
	reqsig.WriteError(w, http.StatusBadRequest, "bad_request", strings.TrimSpace(err.Error()))
}
