package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sparenet/spare/runtime"
)

// helperEnv names the file of a helperJob: the test binary then plays a daemon that starts workloads and
// dies without a word, as a crashed daemon would.
const helperEnv = "SPARE_PROCESS_TEST_HELPER"

type helperJob struct {
	Config Config
	Specs  []runtime.Spec
	Out    string // where the states go, as a JSON array
}

var (
	testCgroupRoot string
	testUIDBase    uint32
)

func TestMain(m *testing.M) {
	if f := os.Getenv(helperEnv); f != "" {
		helperDaemon(f)
		return
	}
	// The daemon's own environment, which must not reach workloads.
	os.Setenv("SECRET", "hunter2")
	os.Setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3,4,5,6,7")
	os.Setenv("NVIDIA_VISIBLE_DEVICES", "all")
	// Per test process, so that concurrent test runs never share a uid or a cgroup.
	testUIDBase = 2_000_000_000 + uint32(os.Getpid()%1000)*100_000
	if os.Geteuid() == 0 {
		if mount, err := cgroup2Mount(); err == nil {
			testCgroupRoot = filepath.Join(mount, fmt.Sprintf("spare-test-%d", os.Getpid()))
		}
	}
	code := m.Run()
	if testCgroupRoot != "" {
		_ = removeCgroup(testCgroupRoot, 2*time.Second)
		for _, m := range v1Mounts() {
			_ = removeCgroupsV1([]string{filepath.Join(m, filepath.Base(testCgroupRoot))}, 2*time.Second)
		}
	}
	os.Exit(code)
}

func helperDaemon(file string) {
	b, err := os.ReadFile(file)
	if err != nil {
		panic(err)
	}
	var job helperJob
	if err := json.Unmarshal(b, &job); err != nil {
		panic(err)
	}
	r := New(job.Config)
	var states []json.RawMessage
	for _, s := range job.Specs {
		w, err := r.Start(context.Background(), s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(3)
		}
		states = append(states, w.State())
	}
	out, _ := json.Marshal(states)
	if err := os.WriteFile(job.Out, out, 0o600); err != nil {
		panic(err)
	}
	os.Exit(0) // no Wait, no cleanup: a crash
}

func testConfig() Config {
	return Config{UIDBase: testUIDBase, UIDRange: 100_000, StopGrace: 300 * time.Millisecond, CgroupRoot: testCgroupRoot}
}

// leaseSpec makes a lease directory DIR with DIR/work and DIR/log.
func leaseSpec(t *testing.T, id uint64, command string) runtime.Spec {
	t.Helper()
	base := t.TempDir()
	// t.TempDir's parent is 0700: let per-lease uids through, as a daemon's lease root must.
	if err := os.Chmod(filepath.Dir(base), 0o711); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "lease")
	work := filepath.Join(dir, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	return runtime.Spec{
		LeaseID: id, Dir: dir, WorkDir: work, LogPath: filepath.Join(dir, "log"), Command: command,
		Env: []string{"LANG=C"},
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func start(t *testing.T, r *Runtime, s runtime.Spec) *Workload {
	t.Helper()
	w, err := r.Start(ctxT(t, 5*time.Second), s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return w.(*Workload)
}

func wait(t *testing.T, w runtime.Workload) runtime.Result {
	t.Helper()
	res, err := w.Wait(ctxT(t, 20*time.Second))
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return res
}

func readLog(t *testing.T, s runtime.Spec) string {
	t.Helper()
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// eventually polls cond every 10 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dead reports whether pid no longer runs (gone or a zombie).
func dead(pid int) bool {
	st, err := readStat(pid)
	return err != nil || st.zombie()
}

func readPID(t *testing.T, file string) int {
	t.Helper()
	var pid int
	eventually(t, 5*time.Second, file, func() bool {
		b, err := os.ReadFile(file)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

// workloadPID reads a pid a workload wrote into file and returns it as the host sees it: a sandboxed
// workload has a PID namespace of its own, whose pids mean nothing outside.
func workloadPID(t *testing.T, w *Workload, file string) int {
	t.Helper()
	pid := readPID(t, file)
	if !w.st.Sandboxed {
		return pid
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", w.st.PID))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range listPIDs() {
		if n, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p)); n != ns {
			continue
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
				f := strings.Fields(v)
				if len(f) >= 2 && f[len(f)-1] == strconv.Itoa(pid) {
					return p
				}
			}
		}
	}
	t.Fatalf("no process is pid %d in the namespace of the workload %d", pid, w.st.PID)
	return 0
}

// TestMechanism: the runtime's account of its isolation matches what it set up: per-lease uids and the sandbox
// when the daemon is root, the cgroup it found (or why none), and a memory limit it can enforce. Under CI=true the
// host is the kind providers run on: a root daemon with the sandbox and a cgroup for memory.
func TestMechanism(t *testing.T) {
	r := New(testConfig())
	m := r.Mechanism()
	t.Logf("limit mechanism on this host: %s", m)
	if want := os.Geteuid() == 0; strings.Contains(m, "per-lease uid") != want || r.root != want {
		t.Errorf("root %v, but the account says %q", r.root, m)
	}
	if r.cg != nil && !strings.Contains(m, "cgroup v2 under "+r.cg.path) || r.cg == nil && !strings.Contains(m, "no cgroup v2 ("+r.cgWhy+")") {
		t.Errorf("cgroup v2 %v (%s), but the account says %q", r.cg != nil, r.cgWhy, m)
	}
	if r.v1 != nil && !strings.Contains(m, "cgroup v1 ") {
		t.Errorf("cgroup v1 in use, but the account says %q", m)
	}
	if os.Getenv("CI") == "true" {
		if ok, why := r.sandbox(); !r.root || !ok {
			t.Errorf("CI: root %v, sandbox %v (%s): the provider's host kind runs leases sandboxed as root", r.root, ok, why)
		}
		if r.cg == nil && r.v1 == nil {
			t.Errorf("CI: no cgroup at all (%s): memory limits could not be enforced", r.cgWhy)
		}
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	r := New(testConfig())
	s3 := leaseSpec(t, 1, "echo hello; echo oops >&2; exit 3")
	s3.MemoryBytes = 256 << 20 // a limit that is not hit must not report an OOM
	if err := os.WriteFile(s3.LogPath, []byte("previous run\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s0 := leaseSpec(t, 2, "echo ok")
	w3, w0 := start(t, r, s3), start(t, r, s0)

	res := wait(t, w3)
	if res.ExitCode != 3 || res.OOMKilled || res.TimedOut || res.Stopped {
		t.Fatalf("result %+v, want exit 3 only", res)
	}
	if res.StartedAt.IsZero() || res.EndedAt.Before(res.StartedAt) {
		t.Fatalf("times %v..%v", res.StartedAt, res.EndedAt)
	}
	// stdout and stderr are two pipes: each stream's order is kept, not necessarily the order between them.
	if got := readLog(t, s3); got != "previous run\nhello\noops\n" && got != "previous run\noops\nhello\n" {
		t.Fatalf("log %q", got)
	}
	if again := wait(t, w3); again != res {
		t.Fatalf("second Wait %+v, first %+v", again, res)
	}
	res0 := wait(t, w0)
	if res0.ExitCode != 0 || res0.Reason != "exited with code 0" {
		t.Fatalf("result %+v", res0)
	}
	if got := readLog(t, s0); got != "ok\n" {
		t.Fatalf("log %q", got)
	}
	if err := w0.Stop(ctxT(t, time.Second)); err != nil {
		t.Fatalf("Stop after the end: %v", err)
	}
	var st map[string]any
	if err := json.Unmarshal(w3.State(), &st); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"pid", "start_ticks", "pgid", "uid", "started_at", "limits"} {
		if _, ok := st[k]; !ok {
			t.Errorf("state lacks %s: %s", k, w3.State())
		}
	}
	if w3.st.Cgroup != "" {
		if _, err := os.Stat(w3.st.Cgroup); err == nil {
			t.Errorf("cgroup %s left behind", w3.st.Cgroup)
		}
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	r := New(testConfig())
	s := leaseSpec(t, 3, "")
	if _, err := r.Start(context.Background(), s); err == nil {
		t.Fatal("empty command started")
	}
	s = leaseSpec(t, 3, "true")
	s.WorkDir = filepath.Join(s.Dir, "missing")
	if _, err := r.Start(context.Background(), s); err == nil {
		t.Fatal("missing work dir started")
	}
}

func envOf(t *testing.T, log string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(log), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("env line %q", line)
		}
		env[k] = v
	}
	return env
}

func TestEnvIsolation(t *testing.T) {
	t.Parallel()
	r := New(testConfig())
	s := leaseSpec(t, 10, "env")
	s.GPUs = []string{"GPU-2", "GPU-5"} // of a fake 8
	s.Env = []string{"FOO=bar", "CUDA_VISIBLE_DEVICES=GPU-2,GPU-5", "NVIDIA_VISIBLE_DEVICES=GPU-2,GPU-5", "HOME=/nonexistent"}
	wait(t, start(t, r, s))
	env := envOf(t, readLog(t, s))
	want := map[string]string{
		"FOO": "bar", "CUDA_VISIBLE_DEVICES": "GPU-2,GPU-5", "NVIDIA_VISIBLE_DEVICES": "GPU-2,GPU-5",
		"HOME": "/nonexistent", "PATH": defaultPath, "PWD": s.WorkDir,
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	for k := range env {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected variable %s=%s", k, env[k])
		}
	}

	// Spec.Env without the GPU variables: they come from Spec.GPUs, never from the daemon.
	s2 := leaseSpec(t, 11, "env")
	s2.GPUs = []string{"GPU-2", "GPU-5"}
	s2.Env = nil
	wait(t, start(t, r, s2))
	env = envOf(t, readLog(t, s2))
	if env["CUDA_VISIBLE_DEVICES"] != "GPU-2,GPU-5" || env["NVIDIA_VISIBLE_DEVICES"] != "GPU-2,GPU-5" || env["HOME"] != s2.WorkDir {
		t.Errorf("env %v", env)
	}
	if _, ok := env["SECRET"]; ok {
		t.Error("the daemon's SECRET leaked")
	}

	// No GPUs: none visible.
	s3 := leaseSpec(t, 12, "env")
	wait(t, start(t, r, s3))
	env = envOf(t, readLog(t, s3))
	if v, ok := env["CUDA_VISIBLE_DEVICES"]; !ok || v != "" || env["NVIDIA_VISIBLE_DEVICES"] != "void" {
		t.Errorf("no-GPU env %v", env)
	}
}

func TestTimeoutKillsWholeWorkload(t *testing.T) {
	t.Parallel()
	noCgroup := testConfig()
	noCgroup.CgroupRoot = "none"
	for i, c := range []struct {
		name string
		cfg  Config
	}{{"default", testConfig()}, {"no-cgroup", noCgroup}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			testTimeout(t, New(c.cfg), 20+uint64(i))
		})
	}
}

func testTimeout(t *testing.T, r *Runtime, id uint64) {
	cmd := `sleep 300 & echo $! > bg.pid
sleep 300 </dev/null >/dev/null 2>&1 &
echo started
sleep 300`
	haveSetsid := false
	if _, err := exec.LookPath("setsid"); err == nil {
		haveSetsid = true
		cmd = "setsid sleep 300 & echo $! > esc.pid\n" + cmd
	}
	s := leaseSpec(t, id, cmd)
	// Long enough for the shell to write its pid files on a loaded machine (CI shares its cores) before the limit
	// kills it; the assertions are about what the limit kills, not how fast.
	s.Timeout = 2 * time.Second
	t0 := time.Now()
	w := start(t, r, s)
	bg := workloadPID(t, w, filepath.Join(s.WorkDir, "bg.pid"))
	esc := 0
	if haveSetsid {
		esc = workloadPID(t, w, filepath.Join(s.WorkDir, "esc.pid"))
	}
	res := wait(t, w)
	el := time.Since(t0)
	if !res.TimedOut || res.Stopped || res.OOMKilled {
		t.Fatalf("result %+v", res)
	}
	if !strings.HasPrefix(res.Reason, "duration reached (2s)") || strings.Contains(res.Reason, "killed by killed") {
		t.Fatalf("reason %q, want it to start with the duration reached, in words", res.Reason)
	}
	if el < s.Timeout || el > s.Timeout+5*time.Second {
		t.Fatalf("ended after %v", el)
	}
	t.Logf("%s: result %+v after %v", r.Mechanism(), res, el)
	eventually(t, 2*time.Second, "background grandchild to die", func() bool { return dead(bg) })
	if esc != 0 {
		if w.st.Isolated || w.st.Cgroup != "" {
			eventually(t, 2*time.Second, "setsid escapee to die", func() bool { return dead(esc) })
		} else if !dead(esc) {
			t.Logf("setsid escapee %d survives: no per-lease uid and no cgroup", esc)
			_ = exec.Command("kill", "-9", strconv.Itoa(esc)).Run()
		}
	}
}

// TestCgroupKill checks that a workload is born in its cgroup and that the cgroup alone (no per-lease uid
// scan, no session) is enough to end a process that left the session.
func TestCgroupKill(t *testing.T) {
	t.Parallel()
	r := New(testConfig())
	r.init()
	if r.cg == nil {
		t.Skipf("no cgroup: %s", r.cgWhy)
	}
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid")
	}
	s := leaseSpec(t, 25, "setsid sleep 300 & echo $! > esc.pid; echo ready; sleep 300")
	w := start(t, r, s)
	esc := workloadPID(t, w, filepath.Join(s.WorkDir, "esc.pid"))
	for _, pid := range []int{w.st.PID, esc} {
		if cg, err := procCgroup(pid); err != nil || cg != w.st.CgroupRel {
			t.Errorf("pid %d in cgroup %q (%v), want %q", pid, cg, err, w.st.CgroupRel)
		}
	}
	if pids := cgroupPIDs(w.st.Cgroup); !slices.Contains(pids, esc) {
		t.Errorf("cgroup.procs %v lacks %d", pids, esc)
	}
	signalCgroup(w.st.Cgroup, 9)
	eventually(t, 2*time.Second, "the escapee to die", func() bool { return dead(esc) })
	res := wait(t, w)
	if res.ExitCode != 137 {
		t.Errorf("result %+v", res)
	}
	if _, err := os.Stat(w.st.Cgroup); err == nil {
		t.Errorf("cgroup %s left behind", w.st.Cgroup)
	}
}

func TestWriteLimits(t *testing.T) {
	dir := t.TempDir()
	files := []string{"memory.oom.group", "memory.max", "memory.swap.max", "cpu.max", "pids.max"}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctrl := map[string]bool{"memory": true, "cpu": true, "pids": true}
	if err := writeLimits(dir, ctrl, leaseLimits{memory: 1 << 30, cpuMilli: 2500, pids: 512}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"memory.oom.group": "1", "memory.max": "1073741824", "memory.swap.max": "0", "cpu.max": "250000 100000", "pids.max": "512"}
	for f, v := range want {
		if b, _ := os.ReadFile(filepath.Join(dir, f)); string(b) != v {
			t.Errorf("%s = %q, want %q", f, b, v)
		}
	}
	if err := writeLimits(t.TempDir(), ctrl, leaseLimits{memory: 1}); err == nil {
		t.Error("writeLimits into a directory without control files succeeded")
	}
}

func TestStop(t *testing.T) {
	t.Parallel()
	r := New(testConfig())
	s := leaseSpec(t, 30, `trap 'echo got-term; exit 5' TERM; echo ready; while :; do sleep 0.05; done`)
	w := start(t, r, s)
	eventually(t, 5*time.Second, "ready", func() bool { return strings.Contains(readLog(t, s), "ready") })
	if err := w.Stop(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	res := wait(t, w)
	if !res.Stopped || res.TimedOut || res.ExitCode != 5 {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(readLog(t, s), "got-term") {
		t.Fatalf("log %q", readLog(t, s))
	}
}

func TestStopIgnoringTerm(t *testing.T) {
	t.Parallel()
	r := New(testConfig())
	s := leaseSpec(t, 31, `trap '' TERM; sleep 300 & echo $! > bg.pid; echo ready; sleep 300`)
	w := start(t, r, s)
	bg := workloadPID(t, w, filepath.Join(s.WorkDir, "bg.pid"))
	eventually(t, 5*time.Second, "ready", func() bool { return strings.Contains(readLog(t, s), "ready") })
	t0 := time.Now()
	if err := w.Stop(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el < r.grace() {
		t.Fatalf("SIGKILL came after %v, before the grace period", el)
	}
	res := wait(t, w)
	if !res.Stopped || res.ExitCode != 137 {
		t.Fatalf("result %+v", res)
	}
	eventually(t, 2*time.Second, "background child to die", func() bool { return dead(bg) })
}

func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	data := testConfig()
	data.MemoryRlimit = unix.RLIMIT_DATA
	for i, c := range []struct {
		name string
		cfg  Config
	}{{"default", testConfig()}, {"rlimit-data", data}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			testMemoryLimit(t, New(c.cfg), 40+uint64(i))
		})
	}
}

func testMemoryLimit(t *testing.T, r *Runtime, id uint64) {
	// tail buffers its whole input when it has no newline: 300 MB against a 64 MiB limit.
	s := leaseSpec(t, id, "head -c 300000000 /dev/zero | tail")
	s.MemoryBytes = 64 << 20
	s.Timeout = 30 * time.Second
	w := start(t, r, s)
	res := wait(t, w)
	t.Logf("memory mechanism %q (%s): result %+v; log %q", w.st.MemoryMech, w.st.Limits, res, readLog(t, s))
	if !res.OOMKilled || res.TimedOut || res.ExitCode == 0 {
		t.Fatalf("result %+v", res)
	}
	switch w.st.MemoryMech {
	case "cgroup":
		if !strings.Contains(res.Reason, "oom_kill") {
			t.Fatalf("reason %q", res.Reason)
		}
	case "rlimit":
		if !strings.Contains(readLog(t, s), "memory exhausted") || !strings.Contains(res.Reason, "heuristic") {
			t.Fatalf("reason %q, log %q", res.Reason, readLog(t, s))
		}
	default:
		t.Fatalf("memory mechanism %q", w.st.MemoryMech)
	}
}

func TestIsolationAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("per-lease uids need root")
	}
	t.Parallel()
	r := New(testConfig())

	// The provider's secrets: a 0600 root file, and a readable file in a 0700 root directory.
	prov := t.TempDir()
	key := filepath.Join(prov, "key")
	if err := os.WriteFile(key, []byte("PRIVATE-KEY"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(prov, 0o755); err != nil {
		t.Fatal(err)
	}
	cfgDir := filepath.Join(prov, "config")
	if err := os.Mkdir(cfgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(cfgDir, "config.toml")
	if err := os.WriteFile(cfg, []byte("PRIVATE-CONFIG"), 0o644); err != nil {
		t.Fatal(err)
	}

	a := leaseSpec(t, 50, "echo a-was-here")
	aFile := filepath.Join(a.WorkDir, "data")
	if err := os.WriteFile(aFile, []byte("A-DATA"), 0o644); err != nil {
		t.Fatal(err)
	}
	wa := start(t, r, a)
	wait(t, wa)

	// Errors to stdout: the order of the lines is then the order they were written in.
	b := leaseSpec(t, 51, strings.Join([]string{
		"id -u; id -g; id -G",
		"cat " + key + " 2>&1 && echo KEY-READ",
		"cat " + cfg + " 2>&1 && echo CFG-READ",
		"cat " + aFile + " 2>&1 && echo A-READ",
		"ls " + a.Dir + " 2>&1 && echo A-LISTED",
		"cat " + a.LogPath + " 2>&1 && echo ALOG-READ",
		"echo mine > mine && cat mine",
		"echo done",
	}, "\n"))
	wb := start(t, r, b)
	res := wait(t, wb)
	log := readLog(t, b)
	t.Logf("lease B (uid %d): %+v\n%s", wb.st.UID, res, log)
	for _, bad := range []string{"KEY-READ", "CFG-READ", "A-READ", "A-LISTED", "ALOG-READ", "PRIVATE", "A-DATA", "a-was-here"} {
		if strings.Contains(log, bad) {
			t.Errorf("lease B could read %s", bad)
		}
	}
	lines := strings.Split(log, "\n")
	uid := strconv.Itoa(wb.st.UID)
	if len(lines) < 3 || lines[0] != uid || lines[1] != uid || lines[2] != uid {
		t.Errorf("lease B runs as %q, want uid=gid=groups=%s", lines[:min(3, len(lines))], uid)
	}
	if !strings.Contains(log, "mine\n") || !strings.HasSuffix(log, "done\n") {
		t.Errorf("lease B could not use its own work dir")
	}
	if wa.st.UID == wb.st.UID || wa.st.UID == 0 {
		t.Errorf("uids %d and %d", wa.st.UID, wb.st.UID)
	}
	fi, err := os.Stat(a.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o710 {
		t.Errorf("lease dir mode %v", fi.Mode())
	}
}

func TestStartRefusesBusyUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("per-lease uids need root")
	}
	t.Parallel()
	r := New(testConfig())
	s := leaseSpec(t, 60, "sleep 30")
	w := start(t, r, s)
	// Another lease with the same uid (same id modulo the range) must not start while the first runs.
	s2 := leaseSpec(t, 60+uint64(r.uidRange()), "true")
	if _, err := r.Start(context.Background(), s2); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("Start with a busy uid: %v", err)
	}
	if err := w.Stop(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if res := wait(t, w); !res.Stopped {
		t.Fatalf("result %+v", res)
	}
}

// TestReattachAfterCrash starts workloads from a separate "daemon" process that then dies, and reattaches
// from this one, which is not their parent.
func TestReattachAfterCrash(t *testing.T) {
	t.Parallel()
	// The long one ticks until the test releases it (a file in its work directory), however slow the machine:
	// its log must still be growing once the daemon that started it is gone and another has reattached.
	long := leaseSpec(t, 70, `i=0; while [ ! -e release ] && [ $i -lt 1200 ]; do echo tick $i; i=$((i+1)); sleep 0.05; done; echo released; exit 7`)
	quick := leaseSpec(t, 71, "sleep 0.3; echo quick; exit 9")
	timed := leaseSpec(t, 72, "echo started; sleep 30")
	timed.Timeout = 800 * time.Millisecond
	job := helperJob{Config: testConfig(), Specs: []runtime.Spec{long, quick, timed}, Out: filepath.Join(t.TempDir(), "states")}
	jf := filepath.Join(t.TempDir(), "job")
	b, _ := json.Marshal(job)
	if err := os.WriteFile(jf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(exe, "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"="+jf)
	if out, err := helper.CombinedOutput(); err != nil {
		t.Fatalf("helper daemon: %v\n%s", err, out)
	}
	var states []json.RawMessage
	b, err = os.ReadFile(job.Out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &states); err != nil || len(states) != 3 {
		t.Fatalf("states %s: %v", b, err)
	}

	r := New(testConfig()) // the restarted daemon
	ctx := ctxT(t, 20*time.Second)

	// The long one still runs, and its log keeps growing although the daemon that started it is gone.
	wl, err := r.Reattach(ctx, long, states[0])
	if err != nil {
		t.Fatalf("Reattach: %v", err)
	}
	if wl.(*Workload).cmd != nil {
		t.Fatal("reattached workload claims to be our child")
	}
	n0 := len(readLog(t, long))
	eventually(t, 5*time.Second, "the log to grow", func() bool { return len(readLog(t, long)) > n0 })
	if err := os.WriteFile(filepath.Join(long.WorkDir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wt, err := r.Reattach(ctx, timed, states[2])
	if err != nil {
		t.Fatalf("Reattach: %v", err)
	}
	res := wait(t, wl)
	if res.ExitCode != 7 || res.TimedOut || res.Stopped {
		t.Fatalf("long: %+v", res)
	}
	if !strings.HasSuffix(readLog(t, long), "released\n") {
		t.Fatalf("long log %q", readLog(t, long))
	}

	// The quick one ended while no daemon watched: its status file tells how.
	var qs wstate
	if err := json.Unmarshal(states[1], &qs); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the quick workload to end", func() bool { return dead(qs.PID) })
	wq, err := r.Reattach(ctx, quick, states[1])
	if err != nil {
		t.Fatalf("Reattach quick: %v", err)
	}
	res = wait(t, wq)
	if res.ExitCode != 9 || res.EndedAt.Before(res.StartedAt) || res.EndedAt.IsZero() {
		t.Fatalf("quick: %+v", res)
	}

	// The timed one is held to its deadline by the new daemon.
	res = wait(t, wt)
	// StartedAt crossed a process boundary as wall-clock time only: allow for clock adjustments.
	if !res.TimedOut || res.EndedAt.Sub(res.StartedAt) < timed.Timeout-50*time.Millisecond {
		t.Fatalf("timed: %+v", res)
	}

	// Another restart: each result is read back.
	r2 := New(testConfig())
	for i, s := range []runtime.Spec{long, quick, timed} {
		w, err := r2.Reattach(ctx, s, states[i])
		if err != nil {
			t.Fatalf("Reattach %d after the end: %v", i, err)
		}
		if got, want := wait(t, w).ExitCode, []int{7, 9, 143}[i]; got != want {
			t.Errorf("workload %d: exit %d, want %d", i, got, want)
		}
	}
}

func TestReattachInProcess(t *testing.T) {
	t.Parallel()
	r := New(testConfig())
	s := leaseSpec(t, 80, "echo one; sleep 0.3; echo two; exit 4")
	w := start(t, r, s)
	state := w.State()
	r2 := New(testConfig())
	w2, err := r2.Reattach(ctxT(t, 5*time.Second), s, state)
	if err != nil {
		t.Fatal(err)
	}
	res2 := wait(t, w2)
	res := wait(t, w)
	if res.ExitCode != 4 || res2.ExitCode != 4 {
		t.Fatalf("results %+v %+v", res, res2)
	}
	w3, err := New(testConfig()).Reattach(ctxT(t, 5*time.Second), s, state)
	if err != nil {
		t.Fatal(err)
	}
	if res3 := wait(t, w3); res3.ExitCode != 4 {
		t.Fatalf("result after the end %+v", res3)
	}
}

func TestReattachGone(t *testing.T) {
	t.Parallel()
	r := New(testConfig())
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := c.Process.Pid
	self, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]wstate{
		"dead pid":   {V: stateVersion, PID: deadPID, PGID: deadPID, StartTicks: 1, BootID: bootID()},
		"reused pid": {V: stateVersion, PID: os.Getpid(), PGID: deadPID, StartTicks: self.start + 1, BootID: bootID()},
		"other boot": {V: stateVersion, PID: os.Getpid(), PGID: deadPID, StartTicks: self.start, BootID: "another-boot"},
	} {
		s := leaseSpec(t, 90, "true")
		b, _ := json.Marshal(st)
		if _, err := r.Reattach(context.Background(), s, b); !errors.Is(err, runtime.ErrGone) {
			t.Errorf("%s: Reattach = %v, want ErrGone", name, err)
		}
	}
	if _, err := r.Reattach(context.Background(), leaseSpec(t, 91, "true"), []byte("{not json")); err == nil || errors.Is(err, runtime.ErrGone) {
		t.Errorf("bad state: %v", err)
	}
}

func TestHelpers(t *testing.T) {
	if got := cpuMax(1500); got != "150000 100000" {
		t.Errorf("cpuMax(1500) = %q", got)
	}
	if got := cpuMax(1); got != "1000 100000" {
		t.Errorf("cpuMax(1) = %q", got)
	}
	if got := unescapeMount(`/a\040b`); got != "/a b" {
		t.Errorf("unescape %q", got)
	}
	st, err := readStat(os.Getpid())
	if err != nil || st.start == 0 || st.zombie() {
		t.Fatalf("readStat: %+v %v", st, err)
	}
	env := buildEnv(runtime.Spec{WorkDir: "/w", Env: []string{"A=1", "bad", "=x", "A=2"}})
	if !slices.Contains(env, "A=2") || slices.Contains(env, "bad") || !slices.Contains(env, "HOME=/w") {
		t.Errorf("env %v", env)
	}
}

func TestAllocFailureHeuristic(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	write := func(s string) {
		if err := os.WriteFile(log, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("old run: MemoryError\nnew run\nTraceback...\nMemoryError\n")
	if got := allocFailure(log, 0); got != "memoryerror" {
		t.Errorf("got %q", got)
	}
	if got := allocFailure(log, int64(len("old run: MemoryError\n"))+100); got != "" {
		t.Errorf("past the end: %q", got)
	}
	write("old run: MemoryError\nnew run fine\n")
	if got := allocFailure(log, int64(len("old run: MemoryError\n"))); got != "" {
		t.Errorf("an earlier run's message counted: %q", got)
	}
	write("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n")
	if got := allocFailure(log, 0); got != "" {
		t.Errorf("a GPU OOM counted as a host one: %q", got)
	}
}

func TestIDMapped(t *testing.T) {
	f := filepath.Join(t.TempDir(), "uid_map")
	if err := os.WriteFile(f, []byte("         0     100000      65536\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[uint64]bool{0: true, 65535: true, 65536: false, 2_000_000_000: false} {
		if got := idMapped(f, id); got != want {
			t.Errorf("idMapped(%d) = %v", id, got)
		}
	}
	if !idMapped("/proc/self/uid_map", uint64(os.Getuid())) {
		t.Error("own uid not mapped")
	}
}
