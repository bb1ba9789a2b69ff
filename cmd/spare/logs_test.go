package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/tenant"
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

// TestLogsFlags: --since takes a duration before now or an RFC 3339 time; bad values, and a bad --tail, are
// refused before anything is asked of the network, naming the flag and the fix. --help documents them.
func TestLogsFlags(t *testing.T) {
	now := time.Date(2026, 12, 7, 4, 30, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
		err  string
	}{
		{"10m", now.Add(-10 * time.Minute), ""},
		{"1h30m", now.Add(-90 * time.Minute), ""},
		{"0s", now, ""},
		{"2026-12-07T04:00:00Z", time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC), ""},
		{"2026-12-07T05:00:00.5+01:00", time.Date(2026, 12, 7, 4, 0, 0, 5e8, time.UTC), ""},
		{"-5m", time.Time{}, "--since -5m: a duration before now is positive"},
		{"yesterday", time.Time{}, `--since "yesterday": give a duration before now (10m, 1h30m) or an RFC 3339 time`},
		{"2026-12-07", time.Time{}, `--since "2026-12-07"`},
	} {
		got, err := parseSince(c.in, now)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want %q", c.in, err, c.err)
			}
		} else if err != nil || !got.Equal(c.want) {
			t.Errorf("%q: %v %v, want %v", c.in, got, err, c.want)
		}
	}
	home := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", "soon"}, "--since \"soon\""},
		{[]string{"--since", "-1h"}, "--since -1h"},
		{[]string{"--tail", "-1"}, "--tail -1"},
		{[]string{"--tail", "100001"}, "--tail 100001: at most 100000"},
	} {
		_, err := run(t, append([]string{"--home", home, "logs", "1"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	help, err := run(t, "logs", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--since", "--tail", "-t, --timestamps", "-f, --follow", "stream", "RFC 3339", "partial"} {
		if !strings.Contains(help, want) {
			t.Errorf("spare logs --help does not mention %q:\n%s", want, help)
		}
	}
}

// TestLinePrinter: -o json writes the provider's time, the stream and the text of each line; text output
// prints the text as in the log (a partial line without its newline), or each line after its time with -t and
// after its rank for a cluster.
func TestLinePrinter(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 4, 0, 0, 123e6, time.UTC)
	lines := []tenant.LogLine{
		{Time: t0, Stream: "stdout", Text: "one"},
		{Time: t0.Add(time.Second), Stream: "stderr", Text: "err \x1b[2J", Partial: true},
		{Time: t0.Add(2 * time.Second), Stream: "stdout", Text: "two"},
		{Stream: "stdout", Text: "no time", Partial: true},
	}
	print := func(p *linePrinter, rank *int) string {
		var b bytes.Buffer
		p.w = &b
		for _, l := range lines {
			if err := p.print(l, 7, rank, 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.end(); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if got := print(&linePrinter{}, nil); got != "one\nerr \x1b[2Jtwo\nno time\n" {
		t.Errorf("text: %q", got)
	}
	if got := print(&linePrinter{timestamps: true}, nil); got != "2026-12-07T04:00:00.123Z one\n2026-12-07T04:00:01.123Z err \x1b[2J\n2026-12-07T04:00:02.123Z two\n- no time\n" {
		t.Errorf("timestamps: %q", got)
	}
	rank := 1
	if got := print(&linePrinter{}, &rank); got != "[rank 1] one\n[rank 1] err \x1b[2J\n[rank 1] two\n[rank 1] no time\n" {
		t.Errorf("cluster: %q", got)
	}
	got := print(&linePrinter{json: true}, &rank)
	want := `{"time":"2026-12-07T04:00:00.123Z","lease":7,"rank":1,"stream":"stdout","text":"one"}
{"time":"2026-12-07T04:00:01.123Z","lease":7,"rank":1,"stream":"stderr","text":"err \u001b[2J","partial":true}
{"time":"2026-12-07T04:00:02.123Z","lease":7,"rank":1,"stream":"stdout","text":"two"}
{"lease":7,"rank":1,"stream":"stdout","text":"no time","partial":true}
`
	if got != want {
		t.Errorf("json:\n%s\nwant:\n%s", got, want)
	}
}

// TestLogsOnDev runs `spare logs` against a lease of `spare dev`: -o json has each line's stream and the time
// the provider read it; --tail and --since select lines; -t prefixes times; plain output is the log's bytes.
func TestLogsOnDev(t *testing.T) {
	home := filepath.Join(t.TempDir(), "dev")
	startDevnet(t, home)
	job := filepath.Join(t.TempDir(), "job.yaml")
	if err := os.WriteFile(job, []byte("run: echo one; echo two >&2; sleep 1.5; echo three\nduration: 5m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "--home", home, "--yes", "deploy", job, "-o", "json")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	var dep struct {
		LeaseID uint64 `json:"lease_id"`
	}
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&dep); err != nil || dep.LeaseID == 0 {
		t.Fatalf("deploy -o json: %v\n%s", err, out)
	}
	id := strconv.FormatUint(dep.LeaseID, 10)
	type rec struct {
		Time   time.Time `json:"time"`
		Lease  uint64    `json:"lease"`
		Stream string    `json:"stream"`
		Text   string    `json:"text"`
	}
	jsonLines := func(args ...string) []rec {
		t.Helper()
		out, err := run(t, append([]string{"--home", home, "logs", id, "-o", "json"}, args...)...)
		if err != nil {
			t.Fatalf("logs %v: %v\n%s", args, err, out)
		}
		var rs []rec
		for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
			if l == "" {
				continue
			}
			var r rec
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("logs %v: %q: %v", args, l, err)
			}
			rs = append(rs, r)
		}
		return rs
	}
	all := jsonLines()
	byText := map[string]rec{}
	for _, r := range all {
		byText[r.Text] = r
	}
	one, two, three := byText["one"], byText["two"], byText["three"]
	if len(all) != 3 || one.Stream != "stdout" || two.Stream != "stderr" || three.Stream != "stdout" || one.Lease != dep.LeaseID {
		t.Fatalf("-o json: %+v", all)
	}
	if one.Time.IsZero() || three.Time.Sub(one.Time) < time.Second || time.Since(one.Time) > time.Minute {
		t.Fatalf("times: one %v, three %v", one.Time, three.Time)
	}
	if got := jsonLines("--tail", "1"); len(got) != 1 || got[0].Text != "three" {
		t.Fatalf("--tail 1: %+v", got)
	}
	since := three.Time.Add(-500 * time.Millisecond).Format(time.RFC3339Nano)
	if got := jsonLines("--since", since); len(got) != 1 || got[0].Text != "three" {
		t.Fatalf("--since %s: %+v", since, got)
	}
	if got := jsonLines("--since", "1h", "--tail", "2"); len(got) != 2 || got[1].Text != "three" {
		t.Fatalf("--since 1h --tail 2: %+v", got)
	}
	out, err = run(t, "--home", home, "logs", id, "--since", since, "-t")
	if want := three.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00") + " three\n"; err != nil || out != want {
		t.Fatalf("--since -t: %v %q, want %q", err, out, want)
	}
	out, err = run(t, "--home", home, "logs", id)
	if err != nil || (out != "one\ntwo\nthree\n" && out != "two\none\nthree\n") {
		t.Fatalf("plain: %v %q", err, out)
	}
}
