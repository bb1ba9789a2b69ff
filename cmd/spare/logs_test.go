package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestLogsHelpers: --tail keeps the last lines, following skips what was shown, -o json writes one object per
// line with a cluster's rank taken out of its prefix.
func TestLogsHelpers(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\nb\n", 5, "a\nb\n"},
		{"", 3, ""},
		{"only\n", 1, "only\n"},
	} {
		if got := string(lastLines([]byte(c.in), c.n)); got != c.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
	var out bytes.Buffer
	s := &skipWriter{w: &out, skip: 5}
	for _, part := range []string{"abc", "defg", "hij"} {
		s.Write([]byte(part))
	}
	if out.String() != "fghij" {
		t.Errorf("skipWriter passed %q", out.String())
	}
	out.Reset()
	j := &jsonLines{w: &out, lease: 7}
	j.Write([]byte("[rank 1] hello\n[rank 0, restart 1] wor"))
	j.Write([]byte("ld\nplain \"quoted\"\x1b[2J\nno newline"))
	if err := j.flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines: %q", len(lines), out.String())
	}
	type rec struct {
		Time  string `json:"time"`
		Lease uint64 `json:"lease"`
		Rank  *int   `json:"rank"`
		Text  string `json:"text"`
	}
	want := []struct {
		rank int // -1: none
		text string
	}{{1, "hello"}, {0, "world"}, {-1, "plain \"quoted\"\x1b[2J"}, {-1, "no newline"}}
	for i, l := range lines {
		var r rec
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
		if r.Lease != 7 || r.Time == "" || r.Text != want[i].text || (r.Rank == nil) != (want[i].rank < 0) || r.Rank != nil && *r.Rank != want[i].rank {
			t.Errorf("line %d: %+v, want %+v", i, r, want[i])
		}
	}
}
