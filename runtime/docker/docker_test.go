package docker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/moby/moby/api/types/network"

	"github.com/sparenet/spare/runtime"
)

// Tests that need no engine: the configuration built for a Spec, and the log copier against a fake log stream.

func TestHostConfigGPUs(t *testing.T) {
	r := &Runtime{}
	s := runtime.Spec{LeaseID: 7, GPUs: []string{"GPU-2", "GPU-5"}, CPUMilli: 1500, MemoryBytes: 1 << 30}
	hc := r.hostConfig(s, "/leases/7/work")
	want := []container.DeviceRequest{{
		Driver:       "nvidia",
		DeviceIDs:    []string{"GPU-2", "GPU-5"},
		Capabilities: [][]string{{"gpu"}},
	}}
	if !reflect.DeepEqual(hc.DeviceRequests, want) {
		t.Fatalf("DeviceRequests = %+v, want %+v", hc.DeviceRequests, want)
	}
	if hc.DeviceRequests[0].Count != 0 {
		t.Fatal("Count must stay 0 when DeviceIDs name the GPUs")
	}
	s.GPUs[0] = "GPU-9"
	if hc.DeviceRequests[0].DeviceIDs[0] != "GPU-2" {
		t.Fatal("the device request aliases Spec.GPUs")
	}
	if hc.Privileged || !slices.Equal(hc.CapDrop, []string{"ALL"}) || len(hc.CapAdd) != 0 {
		t.Fatalf("privileges: Privileged=%v CapDrop=%v CapAdd=%v", hc.Privileged, hc.CapDrop, hc.CapAdd)
	}
	if !slices.Contains(hc.SecurityOpt, "no-new-privileges:true") {
		t.Fatalf("SecurityOpt = %v", hc.SecurityOpt)
	}
	if hc.NanoCPUs != 1_500_000_000 || hc.Memory != 1<<30 || hc.MemorySwap != 1<<30 {
		t.Fatalf("NanoCPUs=%d Memory=%d MemorySwap=%d", hc.NanoCPUs, hc.Memory, hc.MemorySwap)
	}
	if hc.PidsLimit == nil || *hc.PidsLimit != DefaultPidsLimit {
		t.Fatalf("PidsLimit = %v", hc.PidsLimit)
	}
	if string(hc.NetworkMode) != "spare-lease-7" {
		t.Fatalf("NetworkMode = %q", hc.NetworkMode)
	}
	if len(hc.Mounts) != 1 || hc.Mounts[0].Source != "/leases/7/work" || hc.Mounts[0].Target != "/work" || hc.Mounts[0].ReadOnly {
		t.Fatalf("Mounts = %+v", hc.Mounts)
	}

	// No GPUs, no limits: no device request, no memory or CPU limit.
	hc = r.hostConfig(runtime.Spec{LeaseID: 8}, "/w")
	if hc.DeviceRequests != nil || hc.Memory != 0 || hc.MemorySwap != 0 || hc.NanoCPUs != 0 {
		t.Fatalf("unlimited spec: %+v", hc.Resources)
	}
	if !hc.ReadonlyRootfs || hc.Init != nil {
		t.Fatal("the root is read-only and init off by default")
	}
	r = &Runtime{WritableRootFS: true, Init: true, PidsLimit: -1}
	hc = r.hostConfig(runtime.Spec{LeaseID: 8}, "/w")
	if hc.ReadonlyRootfs || hc.Tmpfs["/tmp"] == "" || hc.Init == nil || !*hc.Init || *hc.PidsLimit != -1 {
		t.Fatalf("options: ro=%v tmpfs=%v init=%v pids=%d", hc.ReadonlyRootfs, hc.Tmpfs, hc.Init, *hc.PidsLimit)
	}
}

func TestContainerConfigCommand(t *testing.T) {
	s := runtime.Spec{LeaseID: 42, Image: "img:1", Command: "echo hi > out", Env: []string{"A=1", "B=2"}}
	dl := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	cfg := containerConfig(s, "sha256:0123", "1000:1000", dl, 10)
	if !slices.Equal(cfg.Entrypoint, []string{"/bin/sh", "-c"}) || !slices.Equal(cfg.Cmd, []string{"echo hi > out"}) {
		t.Fatalf("Entrypoint=%v Cmd=%v", cfg.Entrypoint, cfg.Cmd)
	}
	if !slices.Equal(cfg.Env, s.Env) || cfg.WorkingDir != "/work" || cfg.User != "1000:1000" || cfg.Image != "sha256:0123" {
		t.Fatalf("config: %+v", cfg)
	}
	want := map[string]string{LabelManaged: "true", LabelLease: "42", LabelDeadline: "2030-01-02T03:04:05.000000006Z"}
	if !reflect.DeepEqual(cfg.Labels, want) {
		t.Fatalf("Labels = %v", cfg.Labels)
	}
	s.Command = ""
	cfg = containerConfig(s, "sha256:0123", "1:1", time.Time{}, 10)
	if cfg.Entrypoint != nil || cfg.Cmd != nil {
		t.Fatalf("empty command must keep the image's entrypoint and cmd: %v %v", cfg.Entrypoint, cfg.Cmd)
	}
	if cfg.Labels[LabelDeadline] != "" {
		t.Fatal("no deadline")
	}
	s.Env = nil
	if cfg := containerConfig(s, "sha256:0123", "1:1", time.Time{}, 10); cfg.Env == nil || len(cfg.Env) != 0 {
		t.Fatalf("Env = %#v, want empty and non-nil", cfg.Env)
	}
}

func TestSplitStamp(t *testing.T) {
	ts, msg := splitStamp([]byte("2026-05-07T21:09:36.000000001Z hello world\n"))
	if ts != time.Date(2026, 5, 7, 21, 9, 36, 1, time.UTC).UnixNano() || string(msg) != "hello world\n" {
		t.Fatalf("%d %q", ts, msg)
	}
	if ts, msg := splitStamp([]byte("garbage\n")); ts != 0 || string(msg) != "garbage\n" {
		t.Fatalf("%d %q", ts, msg)
	}
	if got := sinceParam(1_700_000_000_000_000_042); got != "1700000000.000000042" {
		t.Fatal(got)
	}
}

// fakeEntry is one entry of a fake container log, in the engine's file order.
type fakeEntry struct {
	t      int64
	stream byte
	msg    string
}

// fakeLog serves the entries stamped at or after since as the engine would, multiplexed with timestamps, and
// breaks the stream after cut bytes (0: never).
func fakeLog(entries []fakeEntry, cut int) logSource {
	return func(ctx context.Context, since int64) (io.ReadCloser, error) {
		var b bytes.Buffer
		for _, e := range entries {
			if e.t < since {
				continue
			}
			p := time.Unix(0, e.t).UTC().Format("2006-01-02T15:04:05.000000000Z07:00") + " " + e.msg
			var h [8]byte
			h[0] = e.stream
			binary.BigEndian.PutUint32(h[4:], uint32(len(p)))
			b.Write(h[:])
			b.WriteString(p)
		}
		var r io.Reader = &b
		if cut > 0 && cut < b.Len() {
			r = io.MultiReader(io.LimitReader(&b, int64(cut)), errReader{})
		}
		return io.NopCloser(r), nil
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// TestLogCopierResume breaks the log stream at random points and resumes from the cursor file or from an older
// cursor (as the persisted State would hold), with entries written slightly out of timestamp order and the
// anchor moving: LogPath must end up with every entry exactly once, in order.
func TestLogCopierResume(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 1))
		margin := 200 * time.Millisecond
		var entries []fakeEntry
		var want strings.Builder
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
		n := 1 + rng.IntN(200)
		for i := range n {
			now += rng.Int64N(int64(50 * time.Millisecond))
			ts := now
			if rng.IntN(5) == 0 { // stamped before an entry already written (within the margin)
				ts -= rng.Int64N(int64(margin / 2))
			}
			if len(entries) > 0 && rng.IntN(7) == 0 {
				ts = entries[len(entries)-1].t // same nanosecond as the previous one
			}
			msg := fmt.Sprintf("entry %d %s", i, strings.Repeat("x", rng.IntN(40)))
			if rng.IntN(6) != 0 {
				msg += "\n"
			}
			entries = append(entries, fakeEntry{t: ts, stream: byte(1 + rng.IntN(2)), msg: msg})
			want.WriteString(msg)
		}
		dir := t.TempDir()
		logPath := filepath.Join(dir, "log")
		// Something the daemon wrote before the container started, not part of its log.
		if err := os.WriteFile(logPath, []byte("prelude\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cursorPath := filepath.Join(dir, "cursor")
		var published []cursor
		lc := &logCopier{logPath: logPath, cursorPath: cursorPath, margin: margin, every: 2 * margin,
			published: func(c cursor) { published = append(published, c) }}
		cur := cursor{Offset: int64(len("prelude\n"))}
		if err := writeCursor(cursorPath, cur); err != nil {
			t.Fatal(err)
		}
		for round := 0; ; round++ {
			cut := 0
			if round < 6 {
				cut = 1 + rng.IntN(3000)
			}
			lc.open = fakeLog(entries, cut)
			_, err := lc.copyOnce(context.Background(), cur)
			if err == nil {
				break
			}
			if cut == 0 {
				t.Fatalf("seed %d: %v", seed, err)
			}
			// Resume as a new process would: from the cursor file, or an older cursor.
			var ok bool
			cur, ok = readCursor(cursorPath)
			if !ok {
				t.Fatalf("seed %d: no cursor", seed)
			}
			if len(published) > 0 && rng.IntN(2) == 0 {
				cur = published[rng.IntN(len(published))]
			}
		}
		got, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "prelude\n"+want.String() {
			t.Fatalf("seed %d: LogPath differs\n got: %q\nwant: %q", seed, got, "prelude\n"+want.String())
		}
		// The index gives every byte the stream of its entry, with times that never go down.
		index, err := os.ReadFile(runtime.IndexPath(logPath))
		if err != nil {
			t.Fatal(err)
		}
		checkIndexStreams(t, seed, entries, int64(len("prelude\n")), got, index)
	}
}

// checkIndexStreams checks that the index of log gives each byte after from the stream of its entry, and
// offsets and times that never go down.
func checkIndexStreams(t *testing.T, seed uint64, entries []fakeEntry, from int64, log, index []byte) {
	t.Helper()
	rs, n := runtime.DecodeIndex(index)
	if n != len(index) || len(rs) != len(index)/runtime.IndexRecordSize {
		t.Fatalf("seed %d: index of %d bytes has %d good records", seed, len(index), len(rs))
	}
	if len(rs) == 0 || rs[0].Offset != from {
		t.Fatalf("seed %d: first record %+v, want offset %d", seed, rs, from)
	}
	off := from
	for _, e := range entries {
		for range len(e.msg) {
			i := sort.Search(len(rs), func(i int) bool { return rs[i].Offset > off }) - 1
			if i < 0 || rs[i].Stream != runtime.Stream(e.stream) {
				t.Fatalf("seed %d: byte %d (%q) of stream %d: record %+v", seed, off, e.msg, e.stream, rs[max(i, 0)])
			}
			off++
		}
	}
	for i := 1; i < len(rs); i++ {
		if rs[i].Offset < rs[i-1].Offset || rs[i].UnixMilli < rs[i-1].UnixMilli {
			t.Fatalf("seed %d: records %+v then %+v", seed, rs[i-1], rs[i])
		}
	}
	if off != int64(len(log)) {
		t.Fatalf("seed %d: %d bytes checked of %d", seed, off, len(log))
	}
}

// TestLogCopierAnchorMoves checks that a long log does not make a resume read it all again.
func TestLogCopierAnchorMoves(t *testing.T) {
	var entries []fakeEntry
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := range 1000 {
		entries = append(entries, fakeEntry{t: start + int64(i)*int64(time.Second), stream: 1, msg: fmt.Sprintf("%d\n", i)})
	}
	dir := t.TempDir()
	lc := &logCopier{logPath: filepath.Join(dir, "log"), cursorPath: filepath.Join(dir, "cursor"),
		margin: defaultAnchorMargin, every: defaultAnchorEvery, open: fakeLog(entries, 0)}
	cur, err := lc.copyOnce(context.Background(), cursor{})
	if err != nil {
		t.Fatal(err)
	}
	last := start + 999*int64(time.Second)
	if cur.Anchor < last-int64(defaultAnchorMargin+defaultAnchorEvery) || cur.Anchor > last-int64(defaultAnchorMargin) {
		t.Fatalf("anchor %v, last entry %v", time.Unix(0, cur.Anchor), time.Unix(0, last))
	}
	if c, ok := readCursor(lc.cursorPath); !ok || c != cur {
		t.Fatalf("cursor file %+v, want %+v", c, cur)
	}
	// Resuming reads only the entries since the anchor, and adds nothing.
	fi, _ := os.Stat(lc.logPath)
	if _, err := lc.copyOnce(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
	if fi2, _ := os.Stat(lc.logPath); fi2.Size() != fi.Size() {
		t.Fatalf("resume appended %d bytes", fi2.Size()-fi.Size())
	}
}

func TestCursorRecord(t *testing.T) {
	c := cursor{Anchor: 1<<62 + 12345, Bytes: 1 << 50, Offset: 1 << 51}
	if len(encodeCursor(c)) != cursorRecord {
		t.Fatal("record size")
	}
	p := filepath.Join(t.TempDir(), "c")
	if err := writeCursor(p, c); err != nil {
		t.Fatal(err)
	}
	if got, ok := readCursor(p); !ok || got != c {
		t.Fatalf("%+v %v", got, ok)
	}
	if (cursor{Bytes: 10, Offset: 100}).skip(130) != 40 || (cursor{Bytes: 10, Offset: 100}).skip(50) != 10 {
		t.Fatal("skip")
	}
}

// TestServicePortsPublished: each declared port is exposed and published on its host port, over TCP.
func TestServicePortsPublished(t *testing.T) {
	r := &Runtime{}
	s := runtime.Spec{LeaseID: 9, Image: "svc:1", Ports: []runtime.PortMap{{Port: 8000, Host: 31005}, {Port: 9090, Host: 31006}}}
	hc := r.hostConfig(s, "/w")
	if len(hc.PortBindings) != 2 {
		t.Fatalf("PortBindings = %+v", hc.PortBindings)
	}
	for _, pm := range s.Ports {
		port, _ := network.ParsePort(strconv.Itoa(int(pm.Port)) + "/tcp")
		b := hc.PortBindings[port]
		if len(b) != 1 || b[0].HostPort != strconv.Itoa(pm.Host) {
			t.Fatalf("port %d bound to %+v", pm.Port, b)
		}
	}
	if cfg := containerConfig(s, "sha256:0123", "1:1", time.Time{}, 10); len(cfg.ExposedPorts) != 2 {
		t.Fatalf("ExposedPorts = %+v", cfg.ExposedPorts)
	}
	if hc = r.hostConfig(runtime.Spec{LeaseID: 9}, "/w"); hc.PortBindings != nil {
		t.Fatalf("a job without ports publishes %+v", hc.PortBindings)
	}
	// A cluster member shares the host's network: nothing is published, every other isolation stays.
	s.HostNetwork = true
	hc = r.hostConfig(s, "/w")
	if hc.NetworkMode != "host" || hc.PortBindings != nil || len(hc.CapDrop) != 1 || hc.IpcMode != "private" || hc.Privileged {
		t.Fatalf("host network config %+v", hc)
	}
	if cfg := containerConfig(s, "sha256:0123", "1:1", time.Time{}, 10); len(cfg.ExposedPorts) != 0 {
		t.Fatalf("host network ExposedPorts = %+v", cfg.ExposedPorts)
	}
}
