package provider

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparenet/spare/runtime"
)

func TestParseLogQuery(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		q    string
		want logQuery
		err  string // a part of the 400's message
	}{
		{q: "", want: logQuery{}},
		{q: "follow=1", want: logQuery{follow: true}},
		{q: "follow=true&format=text", want: logQuery{follow: true}},
		{q: "format=jsonl&follow=0", want: logQuery{lines: true}},
		{q: "format=jsonl&since=2026-12-07T04:00:00Z&tail=5", want: logQuery{lines: true, since: t0, tail: 5}},
		{q: "format=jsonl&since=2026-12-07T05:00:00%2B01:00", want: logQuery{lines: true, since: t0}},
		{q: fmt.Sprintf("format=jsonl&since=%d", t0.UnixMilli()), want: logQuery{lines: true, since: t0}},
		{q: "format=jsonl&tail=0", want: logQuery{lines: true}},
		{q: "format=json", err: `format "json": text (the log's bytes, the default) or jsonl`},
		{q: "follow=yes", err: `follow "yes": 1 to follow`},
		{q: "format=jsonl&since=10m", err: `since "10m": an RFC 3339 time (2026-12-07T04:00:00Z) or unix milliseconds`},
		{q: "format=jsonl&since=-5", err: `since "-5"`},
		{q: "format=jsonl&tail=-1", err: `tail "-1": a number of lines, 0 to 100000`},
		{q: "format=jsonl&tail=100001", err: `tail "100001"`},
		{q: "format=jsonl&tail=x", err: `tail "x"`},
		{q: "tail=5", err: "since and tail select lines: add format=jsonl"},
		{q: "since=0", err: "add format=jsonl"},
		{q: "format=jsonl&tail=1&tail=2", err: "tail given 2 times: give it once"},
		{q: "follow=1&offset=4096", want: logQuery{follow: true, offset: 4096}},
		{q: "offset=0", want: logQuery{}},
		{q: "offset=-1", err: `offset "-1": the byte of the log to start from, 0 or more`},
		{q: "offset=1e3", err: `offset "1e3"`},
		{q: "format=jsonl&offset=5", err: "offset is the text form's"},
	} {
		v, err := url.ParseQuery(c.q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseLogQuery(v)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.q, err, c.err)
			}
			continue
		}
		if err != nil || got.lines != c.want.lines || got.follow != c.want.follow || got.tail != c.want.tail || !got.since.Equal(c.want.since) || got.offset != c.want.offset {
			t.Errorf("%q: %+v %v, want %+v", c.q, got, err, c.want)
		}
	}
	// A bad parameter is a 400 that names it.
	rec := httptest.NewRecorder()
	writeBadQuery(rec, &badQuery{"tail \"x\": a number"})
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), `tail \"x\"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// testLog writes a log and its index as a runtime would: each entry (stream, ms after t0, text).
func testLog(t *testing.T, t0 time.Time, entries ...any) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "log")
	w, files, err := runtime.OpenLogWriter(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for i := 0; i+2 < len(entries); i += 3 {
		if err := w.Write(entries[i].(runtime.Stream), t0.Add(time.Duration(entries[i+1].(int))*time.Millisecond), []byte(entries[i+2].(string))); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func testDaemon(maxLog int64) *Daemon {
	c := DefaultConfig()
	c.Limits.MaxLogBytes = maxLog
	return &Daemon{cfg: &c, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// getLines runs getLogLines on the query and decodes its answer.
func getLines(t *testing.T, d *Daemon, query, logPath string, ended func() bool) []LogLine {
	t.Helper()
	v, _ := url.ParseQuery(query)
	lq, err := parseLogQuery(v)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/leases/1/logs?"+query, nil)
	if ended == nil {
		ended = func() bool { return true }
	}
	d.getLogLines(rec, r, lq, logPath, ended)
	if ct := rec.Header().Get("Content-Type"); ct != LogLinesContentType {
		t.Fatalf("content type %q: %s", ct, rec.Body)
	}
	var lines []LogLine
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		var l LogLine
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

func show(lines []LogLine) string {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%s %s %q", l.Time, l.Stream, l.Text)
		if l.Partial {
			b.WriteString(" partial")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestGetLogLines(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	p := testLog(t, t0,
		runtime.Stdout, 0, "one\ntwo\n",
		runtime.Stderr, 1500, "oops \x1b[31m\xff\n",
		runtime.Stdout, 3000, `{"time":"1999-01-01T00:00:00Z","stream":"stderr","text":"forged"}`+"\n",
		runtime.Stdout, 4000, "no newline")
	d := testDaemon(64 << 20)
	all := `2026-12-07T04:00:00Z stdout "one"
2026-12-07T04:00:00Z stdout "two"
2026-12-07T04:00:01.5Z stderr "oops \x1b[31m�"
2026-12-07T04:00:03Z stdout "{\"time\":\"1999-01-01T00:00:00Z\",\"stream\":\"stderr\",\"text\":\"forged\"}"
2026-12-07T04:00:04Z stdout "no newline" partial
`
	if got := show(getLines(t, d, "format=jsonl", p, nil)); got != all {
		t.Fatalf("all:\n%s\nwant:\n%s", got, all)
	}
	lines := strings.SplitAfter(all, "\n")
	if got := show(getLines(t, d, "format=jsonl&tail=2", p, nil)); got != lines[3]+lines[4] {
		t.Fatalf("tail 2:\n%s", got)
	}
	if got := show(getLines(t, d, "format=jsonl&since=2026-12-07T04:00:01.5Z", p, nil)); got != strings.Join(lines[2:], "") {
		t.Fatalf("since:\n%s", got)
	}
	if got := show(getLines(t, d, fmt.Sprintf("format=jsonl&since=%d&tail=1", t0.Add(time.Second).UnixMilli()), p, nil)); got != lines[4] {
		t.Fatalf("since and tail:\n%s", got)
	}
	if got := show(getLines(t, d, "format=jsonl&tail=100", p, nil)); got != all {
		t.Fatalf("tail 100:\n%s", got)
	}
	// max_log_bytes bounds the log read, then a note.
	got := getLines(t, testDaemon(6), "format=jsonl", p, nil)
	if len(got) != 3 || show(got[:2]) != "2026-12-07T04:00:00Z stdout \"one\"\n2026-12-07T04:00:00Z stdout \"tw\" partial\n" ||
		got[2].Stream != "spare" || !strings.Contains(got[2].Text, "log truncated at 6 bytes") {
		t.Fatalf("truncated:\n%s", show(got))
	}
	// A log without an index (written before there was one): lines without time or stream.
	if err := os.Remove(runtime.IndexPath(p)); err != nil {
		t.Fatal(err)
	}
	if got := getLines(t, d, "format=jsonl&tail=1", p, nil); len(got) != 1 || got[0].Time != "" || got[0].Stream != "" || got[0].Text != "no newline" {
		t.Fatalf("no index: %+v", got)
	}
	// No log yet, not following: no line.
	if got := getLines(t, d, "format=jsonl", filepath.Join(t.TempDir(), "log"), nil); len(got) != 0 {
		t.Fatalf("no log: %+v", got)
	}
}

// TestGetLogLinesFollow: following, lines come as they are written, a tail first; the answer ends once the
// workload has ended, with what it wrote last.
func TestGetLogLinesFollow(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	p := filepath.Join(t.TempDir(), "log")
	w, files, err := runtime.OpenLogWriter(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for i := range 5 {
		_ = w.Write(runtime.Stdout, t0, fmt.Appendf(nil, "old %d\n", i))
	}
	var ended atomic.Bool
	go func() {
		for i := range 3 {
			time.Sleep(30 * time.Millisecond)
			_ = w.Write(runtime.Stderr, t0.Add(time.Second), fmt.Appendf(nil, "new %d\n", i))
		}
		_ = w.Write(runtime.Stdout, t0.Add(2*time.Second), []byte("last, no newline"))
		ended.Store(true)
	}()
	got := show(getLines(t, testDaemon(64<<20), "format=jsonl&follow=1&tail=2", p, ended.Load))
	want := `2026-12-07T04:00:00Z stdout "old 3"
2026-12-07T04:00:00Z stdout "old 4"
2026-12-07T04:00:01Z stderr "new 0"
2026-12-07T04:00:01Z stderr "new 1"
2026-12-07T04:00:01Z stderr "new 2"
2026-12-07T04:00:02Z stdout "last, no newline" partial
`
	if got != want {
		t.Fatalf("followed:\n%s\nwant:\n%s", got, want)
	}
}

// TestGetLogLinesBigIndex: a log of many short lines alternating streams (an index bigger than the log) is
// read a chunk at a time, the index as far as each chunk needs, with the lines a whole read gives.
func TestGetLogLinesBigIndex(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	p := filepath.Join(t.TempDir(), "log")
	w, files, err := runtime.OpenLogWriter(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100_000 {
		_ = w.Write(runtime.Stream(1+i%2), t0.Add(time.Duration(i)*time.Millisecond), fmt.Appendf(nil, "%d\n", i%10))
	}
	for _, f := range files {
		f.Close()
	}
	log, _ := os.ReadFile(p)
	index, _ := os.ReadFile(runtime.IndexPath(p))
	if len(index) <= len(log) {
		t.Fatalf("index %d bytes, log %d: not the case this tests", len(index), len(log))
	}
	want := runtime.SplitLog(log, index)
	got := getLines(t, testDaemon(64<<20), "format=jsonl", p, nil)
	if len(got) != len(want) || len(got) != 100_000 {
		t.Fatalf("%d lines, want %d", len(got), len(want))
	}
	for i, l := range want {
		if got[i].Text != string(l.Text) || got[i].Stream != l.Stream.String() || got[i].Time != l.Time.Format(time.RFC3339Nano) {
			t.Fatalf("line %d: %+v, want %+v", i, got[i], l)
		}
	}
}
