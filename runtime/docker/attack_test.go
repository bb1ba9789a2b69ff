package docker

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// Tests that play a hostile tenant against a real engine (skipped without one, failing with CI=true).

// TestAttackSetuidRootFile: a workload tries to leave a root-owned, setuid file in /work (chown to root, chmod
// u+s). It runs as the lease's uid, so the file is the lease's, and no file under the work dir is root-owned
// afterwards, not even those the daemon put there before the start. A symbolic link the work dir held, to a
// root-owned host file, is changed itself, not its target.
func TestAttackSetuidRootFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the per-lease uid is given as root only")
	}
	t.Parallel()
	cli := engine(t)
	s := lease(t, cli, "setuid /work/evil setuid /work/input.sh status")
	// What the daemon wrote before the start: a root-owned input, and a link to a root-owned host file.
	if err := os.WriteFile(filepath.Join(s.WorkDir, "input.sh"), []byte("data\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(t.TempDir(), "host-file")
	if err := os.WriteFile(host, []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, filepath.Join(s.WorkDir, "link")); err != nil {
		t.Fatal(err)
	}
	w, err := newRuntime(t).Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	res := wait(t, w, 30*time.Second)
	log := readLog(t, s)
	if res.ExitCode != 0 || !strings.Contains(log, "setuid /work/evil") {
		t.Fatalf("result %+v\n%s", res, log)
	}
	if !regexp.MustCompile(`setuid /work/evil chown: \S*operation_not_permitted`).MatchString(log) {
		t.Errorf("chown to root was not refused:\n%s", log)
	}
	if !strings.Contains(log, "NoNewPrivs: 1") || !strings.Contains(log, "CapEff: 0000000000000000") {
		t.Errorf("privileges in the container:\n%s", log)
	}
	uid, _ := LeaseUID(0, 0, s.LeaseID)
	err = filepath.WalkDir(s.WorkDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid == 0 || st.Gid == 0 {
			t.Errorf("%s is owned by %d:%d (mode %v) after the workload", p, st.Uid, st.Gid, fi.Mode())
		}
		if fi.Mode()&os.ModeSetuid != 0 && int(st.Uid) != uid {
			t.Errorf("%s is setuid to %d, not the lease's uid %d", p, st.Uid, uid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(host); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Fatalf("the host file behind a link in the work dir changed owner: %v %v", fi.Sys(), err)
	}
}

// TestAttackFillOutsideWork: on a lease with a 32 MiB disk, a workload tries to write 200 MiB outside /work: in
// the root file system (read-only), /tmp and /var/tmp (tmpfs of the lease's disk) and /dev/shm (half the
// memory). Every attempt stops well short; /tmp was writable up to its size.
func TestAttackFillOutsideWork(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	s := lease(t, cli, "fill /big 200 fill /tmp/big 200 fill /var/tmp/big 200 fill /run/big 200 fill /dev/shm/big 200")
	s.DiskBytes = 32 << 20
	s.MemoryBytes = 256 << 20 // the tmpfs are RAM, counted in it: 32 + 32 + 16 + 128 MiB fit
	w, err := newRuntime(t).Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	res := wait(t, w, 60*time.Second)
	log := readLog(t, s)
	if res.ExitCode != 0 || res.OOMKilled {
		t.Fatalf("result %+v\n%s", res, log)
	}
	stopped := regexp.MustCompile(`fill (\S+) stopped after (\d+) MiB: (.*)`)
	got := map[string]int{}
	for _, m := range stopped.FindAllStringSubmatch(log, -1) {
		got[m[1]], _ = strconv.Atoi(m[2])
	}
	for path, most := range map[string]int{"/big": 0, "/tmp/big": 32, "/var/tmp/big": 32, "/run/big": 16, "/dev/shm/big": 128} {
		n, ok := got[path]
		if !ok || n > most {
			t.Errorf("%s: wrote %d MiB (stopped: %v), want at most %d:\n%s", path, n, ok, most, log)
		}
	}
	if !strings.Contains(log, "fill /big stopped after 0 MiB") || !strings.Contains(log, "read-only file system") {
		t.Errorf("the root file system is not read-only:\n%s", log)
	}
	if got["/tmp/big"] < 16 {
		t.Errorf("/tmp took only %d MiB of the lease's 32:\n%s", got["/tmp/big"], log)
	}
}

// TestAttackSeeProcesses: a workload lists /proc: it sees only its own processes (a PID namespace of its own),
// not the host's nor another lease's, running at the same time.
func TestAttackSeeProcesses(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	other := lease(t, cli, "out other-started sleep 30s")
	r := newRuntime(t)
	wo, err := r.Start(context.Background(), other)
	if err != nil {
		t.Fatal(err)
	}
	defer wo.Stop(context.Background())
	waitLog(t, other, "other-started", 20*time.Second)
	s := lease(t, cli, "ps")
	w, err := r.Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	res := wait(t, w, 30*time.Second)
	log := readLog(t, s)
	if res.ExitCode != 0 || !strings.Contains(log, "PROCS ") {
		t.Fatalf("result %+v\n%s", res, log)
	}
	for line := range strings.Lines(log) {
		if rest, ok := strings.CutPrefix(line, "PROC "); ok {
			pid, cmd, _ := strings.Cut(strings.TrimSpace(rest), " ")
			if pid != "1" || cmd != "/bin/sh -c ps" {
				t.Errorf("the workload sees process %s (%q):\n%s", pid, cmd, log)
			}
		}
	}
	if !strings.Contains(log, "PROCS 1\n") {
		t.Errorf("the workload sees more than itself:\n%s", log)
	}
}

// TestAttackImageNotAllowed: an image outside the allowlist is refused before anything is created, and so is an
// allowed-looking name that the engine would resolve as an image ID prefix.
func TestAttackImageNotAllowed(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	s := lease(t, cli, "out ran")
	r := newRuntime(t)
	r.Images = []string{"docker.io/library/python", "ghcr.io/org/img@sha256:" + strings.Repeat("a", 64)}
	if _, err := r.Start(context.Background(), s); !errors.Is(err, ErrImageNotAllowed) || !strings.Contains(err.Error(), s.Image) {
		t.Fatalf("Start of an image not allowed: %v", err)
	}
	r.Images = nil
	if _, err := r.Start(context.Background(), s); !errors.Is(err, ErrImageNotAllowed) {
		t.Fatalf("Start with no allowlist: %v", err)
	}
	// Everything allowed by name, but an image ID prefix is not a name the image is stored under.
	insp, err := cli.ImageInspect(context.Background(), s.Image)
	if err != nil {
		t.Fatal(err)
	}
	r.Images = []string{AllowAny}
	s.Image = strings.TrimPrefix(insp.ID, "sha256:")[:12]
	if _, err := r.Start(context.Background(), s); !errors.Is(err, ErrImageNotFound) {
		t.Fatalf("Start of an image ID prefix %s: %v", s.Image, err)
	}
	if _, err := os.Stat(s.LogPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("something ran: %v %q", err, readLog(t, s))
	}
	assertGone(t, cli, s)
}

// TestAttackRunAsRoot: the image would run as root; the workload is the lease's uid and gid, with no
// supplementary groups, no capabilities and the engine's seccomp filter.
func TestAttackRunAsRoot(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	s := lease(t, cli, "id groups status")
	w, err := newRuntime(t).Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if res := wait(t, w, 30*time.Second); res.ExitCode != 0 {
		t.Fatalf("result %+v\n%s", res, readLog(t, s))
	}
	log := readLog(t, s)
	uid := os.Geteuid()
	if uid == 0 {
		uid, _ = LeaseUID(0, 0, s.LeaseID)
	}
	want := "UID " + strconv.Itoa(uid) + " GID "
	if !strings.Contains(log, want) || strings.Contains(log, "UID 0 ") || strings.Contains(log, "GID 0\n") {
		t.Fatalf("the workload runs as:\n%s\nwant %s…", log, want)
	}
	if !strings.Contains(log, "GROUPS\n") && !strings.Contains(log, "GROUPS "+strconv.Itoa(uid)+"\n") {
		t.Errorf("supplementary groups:\n%s", log)
	}
	if !strings.Contains(log, "Seccomp: 2") || !strings.Contains(log, "NoNewPrivs: 1") {
		t.Errorf("no seccomp filter or no no_new_privs:\n%s", log)
	}
	ci, err := cli.ImageInspect(context.Background(), s.Image)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Config != nil && ci.Config.User != "" {
		t.Fatalf("the test image sets USER %q: it should want root", ci.Config.User)
	}
}

// TestGuaranteesThisHost: what Guarantees reports for this host's engine is what its docker info says.
func TestGuaranteesThisHost(t *testing.T) {
	cli := engine(t)
	r := newRuntime(t)
	got := r.Guarantees(context.Background())
	info, err := cli.Info(context.Background(), client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := guaranteesFrom(info.Info, os.Geteuid() == 0, false)
	if len(got) != len(want) {
		t.Fatalf("got %d guarantees, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%+v != %+v", got[i], want[i])
		}
		t.Logf("%s ok=%v required=%v %s%s", got[i].Name, got[i].OK, got[i].Required, got[i].Mechanism, got[i].Missing)
	}
}
