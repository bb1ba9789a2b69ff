package tenant

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/runtime"
	"github.com/sparenet/spare/termsafe"
)

// StreamLogs copies a lease's logs to w; with follow it returns when the workload has ended, resuming a stream
// the provider cut (FollowLogs).
func (t *Tenant) StreamLogs(ctx context.Context, leaseID uint64, follow bool, w io.Writer) error {
	if follow {
		return t.FollowLogs(ctx, leaseID, w, nil)
	}
	_, err := t.streamLogsFrom(ctx, leaseID, false, 0, w)
	return err
}

// streamLogsFrom copies a lease's log from byte offset on to w and returns how many bytes it copied.
func (t *Tenant) streamLogsFrom(ctx context.Context, leaseID uint64, follow bool, offset int64, w io.Writer) (int64, error) {
	provider, err := t.leaseProvider(ctx, leaseID)
	if err != nil {
		return 0, err
	}
	q := url.Values{}
	if follow {
		q.Set("follow", "1")
	}
	if offset > 0 {
		q.Set("offset", strconv.FormatInt(offset, 10))
	}
	path := fmt.Sprintf("/leases/%d/logs", leaseID)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	resp, err := t.call(ctx, provider, "GET", path, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if got := resp.Header.Get(logOffsetHeader); offset > 0 && got != strconv.FormatInt(offset, 10) {
		return 0, &LogOffsetError{LeaseID: leaseID, Asked: offset, Answered: got}
	}
	if w == nil {
		w = io.Discard
	}
	return io.Copy(w, resp.Body)
}

// logLimitCode is the provider's answer to a stream resumed past its log limit (provider.LogLimitCode).
const logLimitCode = "log_limit"

// logOffsetHeader is where a provider says at which byte its log stream starts (provider.LogOffsetHeader).
const logOffsetHeader = "Spare-Log-Offset"

// LogOffsetError is a provider that answered a resumed log stream from another byte than the one asked for:
// what it sent is not shown (it would repeat or skip lines), and the stream ends.
type LogOffsetError struct {
	LeaseID  uint64
	Asked    int64
	Answered string // the provider's Spare-Log-Offset, "" when it gave none
}

func (e *LogOffsetError) Error() string {
	answered := "without saying from which byte"
	if e.Answered != "" {
		answered = "from byte " + strconv.Quote(e.Answered)
	}
	return fmt.Sprintf("lease %d's provider answered the log stream resumed at byte %d %s: nothing of it was shown, so that no line appears twice or out of place ('spare logs %d' prints the log as the provider has it)",
		e.LeaseID, e.Asked, answered, e.LeaseID)
}

// Resuming a cut log stream: first after resumeFirst, then backing off to resumeMax between tries.
const (
	resumeFirst = 200 * time.Millisecond
	resumeMax   = time.Second
)

// FollowLogs follows a lease's log into w until its workload ends. A stream the provider cuts (it restarted, the
// connection dropped) is opened again from the last byte received, for as long as the lease runs on the ledger:
// nothing is shown twice or lost. Once the lease has ended on the ledger, what the log holds past that byte is
// fetched once more and the stream ends. onCut (nil: nothing) hears of each cut, with the bytes received so far.
// A refusal by the provider (not this tenant's lease, say) ends it at once.
func (t *Tenant) FollowLogs(ctx context.Context, leaseID uint64, w io.Writer, onCut func(err error, received int64)) error {
	var off int64
	wait := resumeFirst
	for {
		n, err := t.streamLogsFrom(ctx, leaseID, true, off, w)
		off += n
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var oe *LogOffsetError
		if errors.As(err, &oe) {
			return err
		}
		var ae *APIError
		if errors.As(err, &ae) && ae.Code == logLimitCode {
			return nil // the stream had reached the provider's limit before it was cut: there is no more
		}
		if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 {
			return err
		}
		if err == nil && t.workloadEnded(ctx, leaseID) {
			return nil
		}
		if l, lerr := t.c.Lease(ctx, leaseID); lerr == nil && l.State != api.LeasePending && l.State != api.LeaseActive {
			// Over on the ledger: the rest of the log, if the provider answers, and no more.
			n, ferr := t.streamLogsFrom(ctx, leaseID, false, off, w)
			off += n
			if ferr != nil {
				return fmt.Errorf("lease %d ended while its log stream was cut at byte %d: %w", leaseID, off, ferr)
			}
			return nil
		}
		if n > 0 {
			wait = resumeFirst
		}
		if err == nil {
			err = errors.New("the provider ended the stream while the workload runs")
		}
		if onCut != nil {
			onCut(err, off)
		}
		t.log.Info("log stream cut; resuming", "lease", leaseID, "received", off, "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, resumeMax)
	}
}

// workloadEnded reports whether the lease's provider says its workload has ended.
func (t *Tenant) workloadEnded(ctx context.Context, leaseID uint64) bool {
	provider, err := t.leaseProvider(ctx, leaseID)
	if err != nil {
		return false
	}
	resp, err := t.call(ctx, provider, "GET", fmt.Sprintf("/leases/%d/status", leaseID), nil)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var st struct {
		State string `json:"state"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, maxStatusBytes)).Decode(&st) != nil {
		return false
	}
	switch st.State { // the provider's lease states (provider.LeaseState)
	case "finishing", "revealing", "done":
		return true
	}
	return false
}

// LogQuery selects the lines StreamLogLines gets.
type LogQuery struct {
	Follow bool      // keep streaming until the workload has ended
	Since  time.Time // only lines the provider read at or after it (zero: all)
	Tail   int       // only the last Tail lines (of those since), then, following, every new one (0: all)
}

// LogLine is one line of a lease's output as its provider recorded it. Text is the provider's, unchanged:
// print it to a terminal through package termsafe.
type LogLine struct {
	Time    time.Time // when the provider's runtime read the line; zero when it has no time for it
	Stream  string    // "stdout" or "stderr"; "spare" for the provider's own note (log truncated); "" unknown
	Text    string    // without its newline
	Partial bool      // the line did not end with a newline (cut when too long, by the other stream, or at the end)
}

// Bounds on what a provider may send as log lines.
const (
	// MaxLogLineJSON is the longest JSON line accepted: a line of runtime.MaxLogLine bytes of control
	// characters, each escaped in six, and the rest.
	MaxLogLineJSON = 6*runtime.MaxLogLine + 512
	// MaxLogLinesBytes bounds one answer: a provider serves at most its limits.max_log_bytes of log (64 MiB by
	// default), which JSON makes at most a few times bigger.
	MaxLogLinesBytes = 1 << 30
	// maxLogText is the longest text a line may hold: runtime.MaxLogLine bytes, each invalid byte replaced by
	// U+FFFD (three bytes).
	maxLogText = 3 * runtime.MaxLogLine
)

// ErrNoLogLines is returned by StreamLogLines when the provider answers the log's bytes instead of lines: its
// API predates them (format=jsonl).
var ErrNoLogLines = errors.New("the provider does not serve log lines with times and streams (its API predates them): only the log's text is available")

// StreamLogLines calls fn for each line of a lease's output that q selects, with the time and the stream the
// provider recorded. With q.Follow it returns when the workload has ended. The provider's answer is checked
// line by line (DecodeLogLines); an error of fn ends the stream and is returned.
func (t *Tenant) StreamLogLines(ctx context.Context, leaseID uint64, q LogQuery, fn func(LogLine) error) error {
	provider, err := t.leaseProvider(ctx, leaseID)
	if err != nil {
		return err
	}
	v := url.Values{"format": {"jsonl"}}
	if q.Follow {
		v.Set("follow", "1")
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Tail > 0 {
		v.Set("tail", strconv.Itoa(q.Tail))
	}
	resp, err := t.call(ctx, provider, "GET", fmt.Sprintf("/leases/%d/logs?%s", leaseID, v.Encode()), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/jsonl" {
		return ErrNoLogLines
	}
	if err := DecodeLogLines(resp.Body, fn); err != nil {
		return fmt.Errorf("lease %d: %w", leaseID, err)
	}
	return nil
}

// ClusterLogLine is a line of one member of a cluster.
type ClusterLogLine struct {
	LogLine
	Rank    int
	LeaseID uint64
	Restart uint32 // the cluster's restart (0: the tenant's own order)
}

// StreamClusterLogLines calls fn for each line of every member of the cluster of orderID, as StreamLogLines
// does for one lease (q.Tail counts per member), never two calls at once. Lines of different members come in
// the order they arrive: sort on Time for the order they were written in.
func (t *Tenant) StreamClusterLogLines(ctx context.Context, orderID uint64, q LogQuery, fn func(ClusterLogLine) error) error {
	cv, err := t.c.Cluster(ctx, orderID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(cv.Members))
	for i, m := range cv.Members {
		wg.Go(func() {
			errs[i] = t.StreamLogLines(ctx, m.LeaseID, q, func(l LogLine) error {
				mu.Lock()
				defer mu.Unlock()
				err := fn(ClusterLogLine{LogLine: l, Rank: m.Rank, LeaseID: m.LeaseID, Restart: cv.Generation})
				if err != nil {
					cancel()
				}
				return err
			})
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// DecodeLogLines reads a provider's log lines (GET /leases/{id}/logs?format=jsonl: one JSON object per line,
// {"time", "stream", "text", "partial"}) and calls fn for each. It is strict where the provider could hurt:
// a line longer than MaxLogLineJSON, more than MaxLogLinesBytes in all, a line that is not one JSON object, a
// time that is not RFC 3339, an unknown stream, a text that holds a newline or is longer than a line can be: each
// is an error naming the line. Fields it does not know are ignored (a newer provider's).
func DecodeLogLines(r io.Reader, fn func(LogLine) error) error {
	br := bufio.NewReaderSize(io.LimitReader(r, MaxLogLinesBytes+1), 64<<10)
	var total int64
	for n := 1; ; n++ {
		b, err := readLogLine(br)
		total += int64(len(b))
		if total > MaxLogLinesBytes {
			return fmt.Errorf("the provider sent more than %d bytes of log lines", MaxLogLinesBytes)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			if errors.Is(err, errLogLineTooLong) {
				return fmt.Errorf("the provider's log line %d is longer than %d bytes", n, MaxLogLineJSON)
			}
			return err
		}
		if len(b) > 0 {
			if b[len(b)-1] != '\n' {
				return fmt.Errorf("the provider's log line %d ends without a newline: the answer was cut", n)
			}
			l, derr := decodeLogLine(b[:len(b)-1])
			if derr != nil {
				return fmt.Errorf("the provider's log line %d: %s", n, termsafe.String(derr.Error()))
			}
			if ferr := fn(l); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			return nil // EOF
		}
	}
}

var errLogLineTooLong = errors.New("log line too long")

// readLogLine reads up to and including a newline, at most MaxLogLineJSON bytes.
func readLogLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > MaxLogLineJSON {
			return nil, errLogLineTooLong
		}
		line = append(line, frag...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return line, err
	}
}

// decodeLogLine checks and decodes one JSON line (without its newline).
func decodeLogLine(b []byte) (LogLine, error) {
	var w struct {
		Time    *string `json:"time"`
		Stream  *string `json:"stream"`
		Text    *string `json:"text"`
		Partial bool    `json:"partial"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&w); err != nil {
		return LogLine{}, fmt.Errorf("not a JSON object with time, stream and text (%v)", err)
	}
	if dec.More() {
		return LogLine{}, errors.New("more than one JSON value on the line")
	}
	if w.Text == nil {
		return LogLine{}, errors.New("no text")
	}
	l := LogLine{Text: *w.Text, Partial: w.Partial}
	if len(l.Text) > maxLogText {
		return LogLine{}, fmt.Errorf("a text of %d bytes (a line has at most %d)", len(l.Text), maxLogText)
	}
	if strings.ContainsAny(l.Text, "\n") {
		return LogLine{}, errors.New("a text that holds a newline")
	}
	if w.Stream != nil {
		switch *w.Stream {
		case "stdout", "stderr", "spare", "":
			l.Stream = *w.Stream
		default:
			return LogLine{}, fmt.Errorf("stream %q (stdout or stderr)", clip(*w.Stream))
		}
	}
	if w.Time != nil && *w.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, *w.Time)
		if err != nil {
			return LogLine{}, fmt.Errorf("time %q is not RFC 3339", clip(*w.Time))
		}
		l.Time = t
	}
	return l, nil
}

// clip is s cut to a length fit for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
