package docker

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/mount"

	"github.com/sparenet/spare/runtime"
	"github.com/sparenet/spare/runtime/internal/readonlytest"
)

// TestAttackReadOnlyPaths: a workload tries to write, chmod, truncate, remove, rename over, rename away and
// hard-link-replace a read-only file (at the top of /work, and in a directory of its own), a file in a read-only
// directory and the directory itself, and to rename the directories above them away: everything fails, and the
// bytes are the daemon's after the run. The rest of /work stays writable, the directories above a read-only path
// included (readonlytest). Without ReadOnlyPaths the same workload changes the file: the attacks are real.
func TestAttackReadOnlyPaths(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	r := newRuntime(t)
	s := lease(t, cli, readonlytest.Actions)
	readonlytest.Write(t, s.WorkDir)
	s.ReadOnlyPaths = readonlytest.ReadOnlyPaths
	w, err := r.Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	res := wait(t, w, 90*time.Second)
	log := readLog(t, s)
	if res.ExitCode != 0 {
		t.Fatalf("result %+v\n%s", res, log)
	}
	t.Logf("%s", log)
	readonlytest.Check(t, log, s.WorkDir)

	c := lease(t, cli, "tamper input.bin")
	readonlytest.Write(t, c.WorkDir)
	w, err = r.Start(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	res = wait(t, w, 90*time.Second)
	log = readLog(t, c)
	got := readonlytest.Lines(log)
	if res.ExitCode != 0 || got["input.bin chmod"] != "ok" || got["input.bin link-out"] != "ok" {
		t.Fatalf("without read-only paths: %+v\n%s", res, log)
	}
	if b, _ := os.ReadFile(filepath.Join(c.WorkDir, "input.bin")); bytes.Equal(b, []byte(readonlytest.Files["input.bin"])) {
		t.Errorf("without read-only paths the file was not changed: %q\n%s", b, log)
	}
}

// TestBindMounts: the mounts of the read-only paths follow /work's, a directory before what it holds, each from
// the work dir's path to /work's, read-only but for the directories above a read-only path, with /work's
// propagation.
func TestBindMounts(t *testing.T) {
	work := t.TempDir()
	readonlytest.Write(t, work)
	binds, err := runtime.ReadOnlyMounts(work, []string{"data", "weights/base.bin", "input.bin", "data/a.txt"})
	if err != nil {
		t.Fatal(err)
	}
	got := bindMounts(work, binds)
	var want []mount.Mount
	for _, m := range []struct {
		path string
		ro   bool
	}{{"data", true}, {"input.bin", true}, {"weights", false}, {"weights/base.bin", true}} {
		want = append(want, mount.Mount{Type: mount.TypeBind, Source: filepath.Join(work, m.path), Target: "/work/" + m.path,
			ReadOnly: m.ro, BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate}})
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("mounts\n%+v\nwant\n%+v", got, want)
	}
}

// TestStartRefusesReadOnlyPaths: a read-only path that is not clean and local, is missing, or is or passes
// through a symbolic link is refused before anything reaches the engine (which would bind what a link resolves
// to, on the host).
func TestStartRefusesReadOnlyPaths(t *testing.T) {
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	readonlytest.Write(t, work)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "secret"), []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct{ name, target string }{{"link", filepath.Join(host, "secret")}, {"linkdir", host}, {"data/sub/up", ".."}} {
		if err := os.Symlink(l.target, filepath.Join(work, filepath.FromSlash(l.name))); err != nil {
			t.Fatal(err)
		}
	}
	// Host: an address nothing answers on, so that a check that came too late would fail otherwise.
	r := &Runtime{Host: "tcp://127.0.0.1:1", Images: []string{AllowAny}}
	defer r.Close()
	for _, c := range []struct {
		paths []string
		want  string
	}{
		{[]string{"../log"}, `".."`},
		{[]string{"data/../input.bin"}, `".."`},
		{[]string{"/etc"}, "absolute"},
		{[]string{"."}, "work directory itself"},
		{[]string{""}, "work directory itself"},
		{[]string{"data/"}, "not clean"},
		{[]string{"absent.bin"}, "not in the work directory"},
		{[]string{"link"}, "symbolic link"},
		{[]string{"linkdir/secret"}, "symbolic link"},
		{[]string{"data/sub/up/input.bin"}, "symbolic link"},
		{[]string{"input.bin/x"}, "not a directory"},
	} {
		s := runtime.Spec{LeaseID: 5, Dir: dir, WorkDir: work, LogPath: filepath.Join(dir, "log"), Image: "img", ReadOnlyPaths: c.paths}
		_, err := r.Start(context.Background(), s)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "read-only path") {
			t.Errorf("Start with read-only paths %q: %v, want %q", c.paths, err, c.want)
		}
	}
}
