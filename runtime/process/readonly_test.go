package process

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/runtime"
	"github.com/sparenet/spare/runtime/internal/readonlytest"
)

// Read-only paths (Spec.ReadOnlyPaths, the job's Vault inputs) in the sandbox, attacked by a workload that owns
// them (the work dir is given to the lease's uid) and tries every way to change them: runtime/docker's test
// workload, whose tamper and tamperdir actions the docker runtime's test plays too.

// tamperBinary builds runtime/docker's test workload into a host directory the sandbox shows (outside /tmp).
func tamperBinary(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go toolchain to build the test workload")
	}
	bin := filepath.Join(hostDir(t, 0o755), "workload")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "../docker/testdata/workload")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the test workload: %v\n%s", err, out)
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestAttackReadOnlyPaths: a workload tries to write, chmod, truncate, remove, rename over, rename away and
// hard-link-replace a read-only file (at the top of the work dir, and in a directory of its own), a file in a
// read-only directory and the directory itself, and to rename the directories above them away: everything fails,
// and the bytes are the daemon's after the run. The rest of the work dir stays writable, the directories above a
// read-only path included (readonlytest). Without ReadOnlyPaths the same workload changes the file: the attacks
// are real.
func TestAttackReadOnlyPaths(t *testing.T) {
	t.Parallel()
	r := sandboxRuntime(t)
	bin := tamperBinary(t)
	s := leaseSpec(t, 150, bin+" "+readonlytest.Actions)
	readonlytest.Write(t, s.WorkDir)
	s.ReadOnlyPaths = readonlytest.ReadOnlyPaths
	s.Timeout = 60 * time.Second
	w := start(t, r, s)
	if !w.st.Sandboxed || !strings.Contains(w.st.Limits, "read-only paths") {
		t.Errorf("limits %q", w.st.Limits)
	}
	res, err := w.Wait(ctxT(t, 60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	log := readLog(t, s)
	if res.ExitCode != 0 {
		t.Fatalf("result %+v\n%s", res, log)
	}
	t.Logf("%s", log)
	readonlytest.Check(t, log, s.WorkDir)

	// The control: the same attacks without the mounts change the file.
	c := leaseSpec(t, 151, bin+" tamper input.bin")
	readonlytest.Write(t, c.WorkDir)
	res, log = runLease(t, r, c)
	got := readonlytest.Lines(log)
	if res.ExitCode != 0 || got["input.bin chmod"] != "ok" || got["input.bin link-out"] != "ok" {
		t.Fatalf("without read-only paths: %+v\n%s", res, log)
	}
	if b, _ := os.ReadFile(filepath.Join(c.WorkDir, "input.bin")); bytes.Equal(b, []byte(readonlytest.Files["input.bin"])) {
		t.Errorf("without read-only paths the file was not changed: %q\n%s", b, log)
	}
}

// TestReadOnlyPathsRefused: Start refuses a read-only path that is not clean and local, missing, or a symbolic
// link or under one, before anything runs; the sandbox init itself refuses a link at the path or above it
// (openat2 RESOLVE_NO_SYMLINKS), should one appear after Start's check.
func TestReadOnlyPathsRefused(t *testing.T) {
	t.Parallel()
	r := sandboxRuntime(t)
	for i, c := range []struct {
		paths []string
		want  string
	}{
		{[]string{"../lease/log"}, `".."`},
		{[]string{"/etc/passwd"}, "absolute"},
		{[]string{"."}, "work directory itself"},
		{[]string{"a//b"}, "not clean"},
		{[]string{"absent"}, "not in the work directory"},
		{[]string{"link"}, "symbolic link"},
		{[]string{"linkdir/f"}, "symbolic link"},
	} {
		s := leaseSpec(t, 152, "echo should-not-run > ran")
		host := hostDir(t, 0o755)
		if err := os.WriteFile(filepath.Join(host, "f"), []byte("host\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(host, "f"), filepath.Join(s.WorkDir, "link")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(host, filepath.Join(s.WorkDir, "linkdir")); err != nil {
			t.Fatal(err)
		}
		s.ReadOnlyPaths = c.paths
		w, err := r.Start(ctxT(t, 10*time.Second), s)
		if err == nil {
			_, _ = w.Wait(ctxT(t, 10*time.Second))
			t.Errorf("%d: Start with %q succeeded", i, c.paths)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d: Start with %q: %v, want %q", i, c.paths, err, c.want)
		}
		if _, err := os.Stat(filepath.Join(s.WorkDir, "ran")); err == nil {
			t.Errorf("%d: the command ran", i)
		}
	}

	// The init, given links that Start's check would have refused.
	s := leaseSpec(t, 153, "true")
	host := hostDir(t, 0o755)
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct{ name, target string }{{"link", filepath.Join(host, "f")}, {"linkdir", host}, {"rel", "."}} {
		if err := os.Symlink(l.target, filepath.Join(s.WorkDir, l.name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.WorkDir, "fifo-not"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, binds := range [][]runtime.BindMount{
		{{Path: "link", ReadOnly: true}},
		{{Path: "linkdir"}, {Path: "linkdir/f", ReadOnly: true}},
		{{Path: "rel"}, {Path: "rel/fifo-not", ReadOnly: true}},
		{{Path: "fifo-not"}}, // a pin must be a directory
		{{Path: "../work", ReadOnly: true}},
	} {
		reply := runInit(t, sandboxConfig{UID: 65534, GID: 65534, WorkDir: s.WorkDir, Binds: binds, Args: []string{"/bin/true"}})
		if !strings.Contains(reply, "read-only path") {
			t.Errorf("%d: the init with %+v answered %q, want a refusal", i, binds, reply)
		}
	}
}

// runInit runs a sandbox init with c and returns its answer ("" when it exec'd).
func runInit(t *testing.T, c sandboxConfig) string {
	t.Helper()
	sb, err := spawnSandbox()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sb.close()
		_ = sb.cmd.Wait()
	}()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	reply, err := sb.run(c, [4]*os.File{null, null, null, null}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return reply
}
