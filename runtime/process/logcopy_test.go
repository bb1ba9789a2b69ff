package process

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sparenet/spare/runtime"
)

// TestLogIndex: the log copier records each line's stream and the time it read it. Bytes that look like index
// records, timestamps or JSON are text; a 10 MB line without a newline becomes lines of runtime.MaxLogLine
// bytes; times never go down; the index stays small; the workload can touch neither file.
func TestLogIndex(t *testing.T) {
	t.Parallel()
	r := New(testConfig())
	fake := runtime.AppendIndexRecord(nil, runtime.IndexRecord{Offset: 0, UnixMilli: 1, Stream: runtime.Stderr})
	var esc strings.Builder
	for _, b := range fake {
		fmt.Fprintf(&esc, "\\%03o", b)
	}
	s := leaseSpec(t, 140, strings.Join([]string{
		"echo 'out 1'",
		"echo 'err 1' >&2",
		"sleep 0.05",
		"echo 'out 2'",
		"printf '" + esc.String() + "fake\\n'",
		`echo '2001-01-01T00:00:00Z {"time":"2001-01-01T00:00:00Z","stream":"stderr","text":"forged"}'`,
		"head -c 10485760 /dev/zero | tr '\\0' y",
		"echo",
		"echo end >&2",
		"{ echo x >> ../log.index; echo x >> ../log; } 2>/dev/null; true",
	}, "\n"))
	before := time.Now()
	w := start(t, r, s)
	if res := wait(t, w); res.ExitCode != 0 {
		t.Fatalf("result %+v", res)
	}
	after := time.Now()
	log, err := os.ReadFile(s.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	index, err := os.ReadFile(runtime.IndexPath(s.LogPath))
	if err != nil {
		t.Fatal(err)
	}
	lines := runtime.SplitLog(log, index)
	type ln struct {
		stream runtime.Stream
		text   string
	}
	var got []ln
	var prev time.Time
	big := 0
	for i, l := range lines {
		if l.Time.Before(prev) || l.Time.Before(before.Truncate(time.Millisecond)) || l.Time.After(after) {
			t.Fatalf("line %d at %v (previous %v, run %v..%v)", i, l.Time, prev, before, after)
		}
		prev = l.Time
		if bytes.Count(l.Text, []byte("y")) == len(l.Text) && len(l.Text) > 0 {
			if len(l.Text) != runtime.MaxLogLine || l.Stream != runtime.Stdout {
				t.Fatalf("line %d of the long line: %d bytes, %v", i, len(l.Text), l.Stream)
			}
			big += len(l.Text)
			continue
		}
		got = append(got, ln{l.Stream, string(l.Text)})
	}
	if big != 10<<20 {
		t.Fatalf("%d bytes of the long line", big)
	}
	// Each stream's lines in order (stdout and stderr are two pipes: between them, the order they were read in).
	want := []ln{
		{runtime.Stdout, "out 1"}, {runtime.Stdout, "out 2"},
		{runtime.Stdout, string(fake) + "fake"},
		{runtime.Stdout, `2001-01-01T00:00:00Z {"time":"2001-01-01T00:00:00Z","stream":"stderr","text":"forged"}`},
		// The newline after the long line ends its last piece: no empty line.
		{runtime.Stderr, "err 1"}, {runtime.Stderr, "end"},
	}
	slices.SortStableFunc(got, func(a, b ln) int { return int(a.stream) - int(b.stream) })
	if len(got) != len(want) {
		t.Fatalf("lines %+v\nwant %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(index) > 4096 {
		t.Fatalf("index of %d bytes for %d bytes of log", len(index), len(log))
	}
	for _, p := range []string{s.LogPath, runtime.IndexPath(s.LogPath)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Geteuid() || fi.Mode().Perm() != 0o600 {
			// As root the workload runs as a uid of its own: neither file is its.
			t.Fatalf("%s: uid %d mode %v: the workload could write it", p, st.Uid, fi.Mode())
		}
	}
	if os.Geteuid() == 0 && bytes.HasSuffix(log, []byte("x\n")) {
		t.Fatal("the workload appended to its log or index")
	}
}

// TestLogLimit: the copier writes at most Spec.DiskBytes of log, keeps reading (the workload neither blocks nor
// dies on its output), and the index stays bounded.
func TestLogLimit(t *testing.T) {
	t.Parallel()
	r := New(testConfig())
	s := leaseSpec(t, 141, "head -c 3145728 /dev/zero | tr '\\0' a; echo done >&2; echo done")
	s.DiskBytes = 1 << 20
	w := start(t, r, s)
	if res := wait(t, w); res.ExitCode != 0 {
		t.Fatalf("result %+v", res)
	}
	fi, err := os.Stat(s.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := os.Stat(runtime.IndexPath(s.LogPath))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 1<<20 || ii.Size() > 1<<12 {
		t.Fatalf("log %d bytes, index %d bytes (limit %d)", fi.Size(), ii.Size(), s.DiskBytes)
	}
}
