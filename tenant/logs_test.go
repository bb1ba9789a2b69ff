package tenant

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/runtime"
)

func decodeAll(s string) ([]LogLine, error) {
	var lines []LogLine
	err := DecodeLogLines(strings.NewReader(s), func(l LogLine) error {
		lines = append(lines, l)
		return nil
	})
	return lines, err
}

func TestDecodeLogLines(t *testing.T) {
	lines, err := decodeAll(`{"time":"2026-12-07T04:00:00.5Z","stream":"stdout","text":"one"}
{"time":"2026-12-07T04:00:01Z","stream":"stderr","text":"two \u001b[31m","partial":true,"rank":3}
{"stream":"","text":""}
{"stream":"spare","text":"[spare: log truncated]"}
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []LogLine{
		{Time: time.Date(2026, 12, 7, 4, 0, 0, 5e8, time.UTC), Stream: "stdout", Text: "one"},
		{Time: time.Date(2026, 12, 7, 4, 0, 1, 0, time.UTC), Stream: "stderr", Text: "two \x1b[31m", Partial: true},
		{},
		{Stream: "spare", Text: "[spare: log truncated]"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%+v", lines)
	}
	for i := range want {
		if !lines[i].Time.Equal(want[i].Time) || lines[i].Stream != want[i].Stream || lines[i].Text != want[i].Text || lines[i].Partial != want[i].Partial {
			t.Fatalf("line %d: %+v, want %+v", i, lines[i], want[i])
		}
	}
	if lines, err := decodeAll(""); err != nil || len(lines) != 0 {
		t.Fatalf("empty: %v %v", lines, err)
	}
}

func TestDecodeLogLinesRejects(t *testing.T) {
	long := `{"text":"` + strings.Repeat("a", MaxLogLineJSON) + `"}` + "\n"
	for _, c := range []struct{ in, err string }{
		{"not json\n", "log line 1: not a JSON object"},
		{`{"text":"a"}` + "\n" + `{"text":"b"} {"text":"c"}` + "\n", "log line 2: more than one JSON value"},
		{`{"stream":"stdout"}` + "\n", "log line 1: no text"},
		{`{"text":"a","stream":"stdin"}` + "\n", `stream "stdin"`},
		{`{"text":"a","time":"yesterday"}` + "\n", `time "yesterday" is not RFC 3339`},
		{`{"text":"a\nb"}` + "\n", "holds a newline"},
		{`{"text":"a"}`, "log line 1 ends without a newline"},
		{long, "longer than"},
		{`{"text":"` + strings.Repeat("b", 3*runtime.MaxLogLine+1) + `"}` + "\n", "a text of"},
		{`{"text":"a","time":"` + strings.Repeat(`\u001b`, 100) + `"}` + "\n", `time "\x1b\x1b`},
	} {
		_, err := decodeAll(c.in)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%.60q: %v, want %q", c.in, err, c.err)
		}
		if err != nil && strings.ContainsRune(err.Error(), 0x1b) {
			t.Errorf("%.60q: the error holds an escape: %q", c.in, err)
		}
	}
	// fn's error ends the stream and is returned as is.
	stop := errors.New("stop")
	err := DecodeLogLines(strings.NewReader("{\"text\":\"a\"}\n{\"text\":\"b\"}\n"), func(LogLine) error { return stop })
	if err != stop {
		t.Fatalf("%v", err)
	}
}

// FuzzDecodeLogLines: whatever a provider sends, the decoder returns lines within the bounds or an error
// without escape sequences, never panics.
func FuzzDecodeLogLines(f *testing.F) {
	f.Add("{\"time\":\"2026-12-07T04:00:00Z\",\"stream\":\"stdout\",\"text\":\"x\"}\n")
	f.Add("{\"text\":\"\\u001b]0;title\\u0007\"}\n{}\n")
	f.Add("{\"text\":\"a\",\"time\":null,\"stream\":null}\n[1]\n")
	f.Fuzz(func(t *testing.T, in string) {
		err := DecodeLogLines(strings.NewReader(in), func(l LogLine) error {
			if len(l.Text) > maxLogText || strings.Contains(l.Text, "\n") {
				t.Fatalf("line %q", l.Text)
			}
			switch l.Stream {
			case "", "stdout", "stderr", "spare":
			default:
				t.Fatalf("stream %q", l.Stream)
			}
			return nil
		})
		if err != nil && strings.ContainsAny(err.Error(), "\x1b\x07\u009b") {
			t.Fatalf("error %q", err)
		}
	})
}
