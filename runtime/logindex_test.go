package runtime

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type memWriter struct{ log, idx bytes.Buffer }

func newMem() (*memWriter, *LogWriter) {
	m := &memWriter{}
	return m, NewLogWriter(&m.log, &m.idx, 0, 0, 0)
}

func TestIndexRecordRoundTrip(t *testing.T) {
	for _, r := range []IndexRecord{
		{Offset: 0, UnixMilli: 1, Stream: Stdout},
		{Offset: 1<<40 + 5, UnixMilli: time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC).UnixMilli(), Stream: Stderr},
	} {
		b := AppendIndexRecord(nil, r)
		if len(b) != IndexRecordSize {
			t.Fatalf("%d bytes", len(b))
		}
		got, err := DecodeIndexRecord(b)
		if err != nil || got != r {
			t.Fatalf("%+v -> %+v, %v", r, got, err)
		}
	}
	for _, bad := range [][]byte{
		make([]byte, 15),
		AppendIndexRecord(nil, IndexRecord{Stream: 3}),
		append(AppendIndexRecord(nil, IndexRecord{Stream: Stdout})[:15], 1), // version
	} {
		if _, err := DecodeIndexRecord(bad); err == nil {
			t.Fatalf("%x decoded", bad)
		}
	}
}

// TestLogWriterLines: lines keep their stream and the time they were read; a line read in two parts keeps its
// first part's time; times never go down although the clock does.
func TestLogWriterLines(t *testing.T) {
	m, w := newMem()
	t0 := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	writes := []struct {
		s    Stream
		ms   int
		text string
	}{
		{Stdout, 0, "one\ntw"},
		{Stdout, 5, "o\nthree\n"},
		{Stderr, 6, "err\n"},
		{Stdout, 6, "four"},
		{Stderr, 7, "x\n"},
		{Stdout, 3, "five\n"}, // the clock stepped back
		{Stdout, 9, "\n"},
	}
	for _, wr := range writes {
		if err := w.Write(wr.s, at(wr.ms), []byte(wr.text)); err != nil {
			t.Fatal(err)
		}
	}
	lines := SplitLog(m.log.Bytes(), m.idx.Bytes())
	var got []string
	for _, l := range lines {
		got = append(got, fmt.Sprintf("%s %d %q %v", l.Stream, l.Time.Sub(t0).Milliseconds(), l.Text, l.Partial))
	}
	want := []string{
		`stdout 0 "one" false`,
		`stdout 0 "two" false`,
		`stdout 5 "three" false`,
		`stderr 6 "err" false`,
		`stdout 6 "four" true`, // cut by stderr's line
		`stderr 7 "x" false`,
		`stdout 7 "five" false`, // never before the last time
		`stdout 9 "" false`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if m.log.String() != "one\ntwo\nthree\nerr\nfourx\nfive\n\n" {
		t.Fatalf("log %q", m.log.String())
	}
}

// TestLogWriterHostileBytes: framing-like bytes, fake timestamps and record-like bytes in the output are text;
// a 10 MB line without a newline becomes lines of MaxLogLine bytes; the index stays small.
func TestLogWriterHostileBytes(t *testing.T) {
	m, w := newMem()
	now := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	fake := string(AppendIndexRecord(nil, IndexRecord{Offset: 0, UnixMilli: 1, Stream: Stderr}))
	evil := "2001-01-01T00:00:00Z {\"stream\":\"stderr\",\"text\":\"x\"}\x01\x00\x00\x00\x00\x00\x00\x05" + fake + "\n"
	if err := w.Write(Stdout, now, []byte(evil)); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("y"), 10<<20)
	for i := 0; i < len(big); i += 1 << 16 {
		now = now.Add(time.Millisecond)
		if err := w.Write(Stdout, now, big[i:i+1<<16]); err != nil {
			t.Fatal(err)
		}
	}
	lines := SplitLog(m.log.Bytes(), m.idx.Bytes())
	if string(lines[0].Text) != strings.TrimSuffix(evil, "\n") || lines[0].Stream != Stdout {
		t.Fatalf("first line %+v", lines[0])
	}
	total := 0
	for i, l := range lines[1:] {
		if len(l.Text) > MaxLogLine || l.Stream != Stdout {
			t.Fatalf("line %d: %d bytes, %v", i, len(l.Text), l.Stream)
		}
		if i > 0 && l.Time.Before(lines[i].Time) {
			t.Fatalf("line %d goes back in time", i)
		}
		total += len(l.Text)
	}
	if total != len(big) || len(lines) != 1+(10<<20)/MaxLogLine {
		t.Fatalf("%d lines, %d bytes", len(lines), total)
	}
	// One record per read at most (and only at a line start): 160 reads of 64 KiB, 4 lines each.
	if m.idx.Len() > 200*IndexRecordSize {
		t.Fatalf("index of %d bytes for %d bytes of log", m.idx.Len(), m.log.Len())
	}
	// The split lines keep the time of the read their first byte came in.
	if got := lines[5].Time.Sub(lines[1].Time); got != time.Millisecond {
		t.Fatalf("line 5 read %v after line 1", got)
	}
}

// TestLogWriterBounds: one-byte writes alternating streams cannot make the index much bigger than the log, and
// a limit stops the log.
func TestLogWriterBounds(t *testing.T) {
	m, w := newMem()
	now := time.Now()
	n := IndexSlack / IndexRecordSize * 2
	for i := range n {
		if err := w.Write(Stream(1+i%2), now.Add(time.Duration(i)*time.Millisecond), []byte{'a'}); err != nil {
			t.Fatal(err)
		}
	}
	if int64(m.idx.Len()) > int64(m.log.Len())+IndexSlack+IndexRecordSize {
		t.Fatalf("index %d bytes, log %d", m.idx.Len(), m.log.Len())
	}
	if m.log.Len() != n {
		t.Fatalf("log %d bytes, want %d", m.log.Len(), n)
	}

	m2 := &memWriter{}
	w2 := NewLogWriter(&m2.log, &m2.idx, 0, 0, 100)
	for range 10 {
		_ = w2.Write(Stdout, now, bytes.Repeat([]byte("z"), 30))
	}
	if m2.log.Len() != 100 || w2.Dropped != 200 {
		t.Fatalf("log %d bytes, dropped %d", m2.log.Len(), w2.Dropped)
	}
}

// TestOpenLogWriterResumes: a second writer on the same files truncates a torn record, keeps times monotonic
// and starts a new record.
func TestOpenLogWriterResumes(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "log")
	w, files, err := OpenLogWriter(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	_ = w.Write(Stderr, t0, []byte("a\npartial"))
	for _, f := range files {
		f.Close()
	}
	f, _ := os.OpenFile(IndexPath(p), os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{1, 2, 3}) // torn
	f.Close()
	w, files, err = OpenLogWriter(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = w.Write(Stdout, t0.Add(-time.Hour), []byte("b\n"))
	for _, f := range files {
		f.Close()
	}
	log, _ := os.ReadFile(p)
	idx, _ := os.ReadFile(IndexPath(p))
	var got []string
	for _, l := range SplitLog(log, idx) {
		got = append(got, fmt.Sprintf("%s %s %q", l.Stream, l.Time.Format(time.RFC3339), l.Text))
	}
	want := `stderr 2026-12-07T04:00:00Z "a"|stderr 2026-12-07T04:00:00Z "partial"|stdout 2026-12-07T04:00:00Z "b"`
	if strings.Join(got, "|") != want {
		t.Fatalf("%s\nwant %s", strings.Join(got, "|"), want)
	}
	// Links are not followed.
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenLogWriter(filepath.Join(dir, "link"), 0); err == nil {
		t.Fatal("opened a log through a link")
	}
}

// TestLineSplitterIncremental: feeding a log in pieces, with records added as they appear, gives the lines a
// whole read gives.
func TestLineSplitterIncremental(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m, w := newMem()
	now := time.Now()
	for range 2000 {
		var b []byte
		for range rng.IntN(40) {
			b = append(b, "ab\n"[rng.IntN(3)])
		}
		if rng.IntN(50) == 0 {
			b = bytes.Repeat([]byte("q"), rng.IntN(3*MaxLogLine))
		}
		now = now.Add(time.Duration(rng.IntN(3)) * time.Millisecond)
		_ = w.Write(Stream(1+rng.IntN(2)), now, b)
	}
	want := SplitLog(m.log.Bytes(), m.idx.Bytes())
	var s LineSplitter
	var got []LogLine
	rs, _ := DecodeIndex(m.idx.Bytes())
	log := m.log.Bytes()
	ri := 0
	for pos := 0; pos < len(log); {
		n := min(len(log)-pos, 1+rng.IntN(5000))
		for ri < len(rs) && rs[ri].Offset < int64(pos+n) {
			s.AddRecords(rs[ri])
			ri++
		}
		_ = s.Feed(log[pos:pos+n], func(l LogLine) error {
			l.Text = append([]byte(nil), l.Text...)
			got = append(got, l)
			return nil
		})
		pos += n
	}
	_ = s.Flush(func(l LogLine) error { got = append(got, l); return nil })
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Offset != want[i].Offset || !bytes.Equal(got[i].Text, want[i].Text) || got[i].Stream != want[i].Stream || !got[i].Time.Equal(want[i].Time) {
			t.Fatalf("line %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// FuzzSplitLog: any index and log bytes (a corrupt or foreign index) give lines that are the log's bytes in
// order, newlines taken out, none longer than MaxLogLine, never a panic.
func FuzzSplitLog(f *testing.F) {
	idx := AppendIndexRecord(nil, IndexRecord{Offset: 0, UnixMilli: 5, Stream: Stdout})
	idx = AppendIndexRecord(idx, IndexRecord{Offset: 3, UnixMilli: 6, Stream: Stderr})
	f.Add([]byte("ab\ncd\nef"), idx)
	f.Add([]byte("\n\n\n"), AppendIndexRecord(nil, IndexRecord{Offset: 99, UnixMilli: 1, Stream: Stderr}))
	f.Add(bytes.Repeat([]byte("x"), MaxLogLine+3), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, log, index []byte) {
		lines := SplitLog(log, index)
		var rebuilt []byte
		var last int64 = -1
		for _, l := range lines {
			if len(l.Text) > MaxLogLine {
				t.Fatalf("line of %d bytes", len(l.Text))
			}
			if l.Offset <= last {
				t.Fatalf("offset %d after %d", l.Offset, last)
			}
			last = l.Offset
			// Bytes between lines are the newlines taken out.
			for int64(len(rebuilt)) < l.Offset {
				rebuilt = append(rebuilt, '\n')
			}
			rebuilt = append(rebuilt, l.Text...)
		}
		for len(rebuilt) < len(log) {
			rebuilt = append(rebuilt, '\n')
		}
		if !bytes.Equal(rebuilt, log) {
			t.Fatalf("lines do not rebuild the log")
		}
	})
}
