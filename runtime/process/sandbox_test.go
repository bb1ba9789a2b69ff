package process

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sparenet/spare/runtime"
)

// The tests below play a hostile tenant: each runs a real workload that tries to get out of its limits or
// its view, and checks that it cannot. They need root (per-lease uids, namespaces, cgroups).

// sandboxRuntime returns a Runtime whose workloads run in the sandbox, or skips the test when not root.
func sandboxRuntime(t *testing.T) *Runtime {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root (TestGuaranteesNotRoot covers the report without it)")
	}
	r := New(testConfig())
	if ok, why := r.sandbox(); !ok {
		t.Fatalf("sandbox unavailable as root: %s", why)
	}
	return r
}

// runLease runs command as a lease to its end and returns the result and the log.
func runLease(t *testing.T, r *Runtime, s runtime.Spec) (runtime.Result, string) {
	t.Helper()
	if s.Timeout == 0 {
		s.Timeout = 30 * time.Second
	}
	w := start(t, r, s)
	if !w.st.Sandboxed {
		t.Errorf("workload not sandboxed: %s", w.st.Limits)
	}
	res := wait(t, w)
	return res, readLog(t, s)
}

// logValues parses the KEY=VALUE lines of a log.
func logValues(log string) map[string]string {
	m := map[string]string{}
	for line := range strings.SplitSeq(log, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestGuaranteesReport(t *testing.T) {
	r := New(testConfig())
	gs := r.Guarantees(context.Background())
	for _, g := range gs {
		t.Logf("%-14s ok=%-5v required=%-5v %s%s", g.Name, g.OK, g.Required, g.Mechanism, g.Missing)
		if g.OK == (g.Mechanism == "") || g.OK == (g.Missing != "") {
			t.Errorf("%s: ok %v with mechanism %q, missing %q", g.Name, g.OK, g.Mechanism, g.Missing)
		}
		if g.Required != (g.Name != runtime.GuaranteeCPU) {
			t.Errorf("%s: required %v", g.Name, g.Required)
		}
	}
	want := []string{runtime.GuaranteeMemory, runtime.GuaranteePids, runtime.GuaranteeCPU, runtime.GuaranteeUser,
		runtime.GuaranteePrivateTmp, runtime.GuaranteePIDNS, runtime.GuaranteeNoNewPrivs, runtime.GuaranteeSeccomp,
		runtime.GuaranteeFilesystem}
	if len(gs) != len(want) {
		t.Fatalf("%d guarantees, want %d", len(gs), len(want))
	}
	ok, _ := r.sandbox()
	for i, g := range gs {
		if g.Name != want[i] {
			t.Errorf("guarantee %d is %s, want %s", i, g.Name, want[i])
		}
		if i >= 4 && g.OK != ok {
			t.Errorf("%s ok %v, sandbox %v", g.Name, g.OK, ok)
		}
	}
	if os.Geteuid() == 0 && !gs[3].OK {
		t.Error("root without per-lease uids")
	}
	t.Log(r.Mechanism())
}

// TestGuaranteesNotRoot runs the report in this test binary as an unprivileged user: everything that rests
// on root must be reported missing, and a workload must still start (as today, unsandboxed).
func TestGuaranteesNotRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		reportNotRoot(t, New(Config{}))
		return
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(filepath.Dir(dir), 0o711)
	exe := filepath.Join(dir, "process.test")
	copyFile(t, os.Args[0], exe, 0o755)
	out := filepath.Join(dir, "out")
	if err := os.WriteFile(out, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o666); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(tmp, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestGuaranteesNotRoot$", "-test.count=1", "-test.v")
	cmd.Env = []string{"SPARE_NOTROOT_OUT=" + out, "PATH=" + os.Getenv("PATH"), "TMPDIR=" + tmp}
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	b, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "PASS") {
		t.Fatalf("as uid 65534: %v\n%s", err, b)
	}
	var gs []runtime.Guarantee
	rb, _ := os.ReadFile(out)
	if err := json.Unmarshal(rb, &gs); err != nil || len(gs) != 9 {
		t.Fatalf("report %s: %v", rb, err)
	}
	for _, g := range gs {
		t.Logf("not root: %-14s ok=%-5v %s%s", g.Name, g.OK, g.Mechanism, g.Missing)
	}
}

func reportNotRoot(t *testing.T, r *Runtime) {
	gs := r.Guarantees(context.Background())
	for _, g := range gs {
		switch g.Name {
		case runtime.GuaranteeUser, runtime.GuaranteePrivateTmp, runtime.GuaranteePIDNS, runtime.GuaranteeNoNewPrivs,
			runtime.GuaranteeSeccomp, runtime.GuaranteeFilesystem, runtime.GuaranteeMemory, runtime.GuaranteePids:
			if g.OK || g.Missing == "" {
				t.Errorf("not root, cgroups off: %s reported %+v", g.Name, g)
			}
		}
	}
	if f := os.Getenv("SPARE_NOTROOT_OUT"); f != "" {
		b, _ := json.Marshal(gs)
		if err := os.WriteFile(f, b, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	// The workload still runs, as the daemon's user, unsandboxed.
	base := t.TempDir()
	s := runtime.Spec{LeaseID: 1, Dir: base, WorkDir: filepath.Join(base, "work"), LogPath: filepath.Join(base, "log"), Command: "echo hi"}
	if err := os.Mkdir(s.WorkDir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := start(t, r, s)
	if res := wait(t, w); res.ExitCode != 0 || w.st.Sandboxed || !strings.Contains(w.st.Limits, "rlimit") {
		t.Errorf("result %+v, state %+v", res, w.st)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(to, mode); err != nil {
		t.Fatal(err)
	}
}

// hostDir makes a directory outside /tmp (which the sandbox replaces), removed at the end of the test.
func hostDir(t *testing.T, mode os.FileMode) string {
	t.Helper()
	dir, err := os.MkdirTemp("/run", "spare-test-")
	if err != nil {
		dir, err = os.MkdirTemp("/var/lib", "spare-test-")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Eight processes of 64 MiB each on a 128 MiB lease: the limit is the lease's, not each process's.
func TestAttackAggregateMemory(t *testing.T) {
	t.Parallel()
	r := sandboxRuntime(t)
	// tail holds its whole input when it has no newline, then writes it out: wc prints 67108864 for each
	// process that got its 64 MiB.
	// Each reader waits for the release, given once every head has finished (its tail holds its 64 MiB, or
	// was killed): the survivors then hold their 64 MiB at the same time.
	s := leaseSpec(t, 101, `for i in 1 2 3 4 5 6 7 8; do
  ( (head -c 67108864 /dev/zero; : > h.$i) | tail | (until [ -e release ]; do sleep 0.05; done; wc -c) ) &
done
until [ "$(ls h.* 2>/dev/null | wc -l)" -eq 8 ]; do sleep 0.05; done
: > release; wait; echo done`)
	s.MemoryBytes = 128 << 20
	res, log := runLease(t, r, s)
	full := strings.Count(log, "67108864")
	t.Logf("result %+v; %d of 8 got 64 MiB; log %q", res, full, log)
	if !res.OOMKilled {
		t.Errorf("not OOM-killed: %+v", res)
	}
	if full >= 2 {
		t.Errorf("%d processes held 64 MiB each at once on a 128 MiB lease", full)
	}
}

// 300 MB into /dev/shm on a 64 MiB lease fails, and nothing of it outlives the lease.
func TestAttackShm(t *testing.T) {
	t.Parallel()
	r := sandboxRuntime(t)
	s := leaseSpec(t, 102, `head -c 300000000 /dev/zero > /dev/shm/hog-$$; echo rc=$?; echo size=$(wc -c < /dev/shm/hog-$$); echo hog > /dev/shm/left-behind; sleep 0.2`)
	s.MemoryBytes = 64 << 20
	res, log := runLease(t, r, s)
	v := logValues(log)
	t.Logf("result %+v; log %q", res, log)
	if n, err := strconv.Atoi(v["size"]); v["rc"] == "0" || (err == nil && n > 64<<20) {
		t.Errorf("wrote %s bytes to /dev/shm (rc %s) on a 64 MiB lease", v["size"], v["rc"])
	}
	uid, _ := r.identity(s.LeaseID)
	for _, d := range []string{"/dev/shm", "/tmp", "/var/tmp"} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && int(fi.Sys().(*syscall.Stat_t).Uid) == uid.uid {
				t.Errorf("%s/%s of the lease outlives it", d, e.Name())
			}
		}
	}
}

// The workload sees its own processes only: not the daemon's, not another lease's, not the host's.
func TestAttackProcView(t *testing.T) {
	t.Parallel()
	r := sandboxRuntime(t)
	other := start(t, r, leaseSpec(t, 103, "echo other-lease-marker; sleep 30"))
	t.Cleanup(func() { _ = other.Stop(context.Background()) })
	s := leaseSpec(t, 104, `echo n=$(ls /proc | grep -c '^[0-9]'); echo ps=$(ps -e -o pid= | wc -l)
cat /proc/[0-9]*/cmdline | tr '\0' ' '; echo
cat /proc/1/environ | tr '\0' '\n'
echo self=$$`)
	res, log := runLease(t, r, s)
	v := logValues(log)
	t.Logf("result %+v; log %q", res, log)
	if n, _ := strconv.Atoi(v["n"]); n < 1 || n > 5 {
		t.Errorf("/proc shows %s processes", v["n"])
	}
	if n, _ := strconv.Atoi(v["ps"]); n < 1 || n > 5 {
		t.Errorf("ps shows %s processes", v["ps"])
	}
	for _, bad := range []string{"other-lease-marker", "process.test", "SECRET=hunter2", "sleep 30"} {
		if strings.Contains(log, bad) {
			t.Errorf("the workload saw %q", bad)
		}
	}
	if v["self"] == "" || v["self"] == strconv.Itoa(os.Getpid()) {
		t.Errorf("self %q", v["self"])
	}
}

// /tmp, /var/tmp and /dev/shm are empty at start and private: a later lease does not see what an earlier
// one left, nor does the host.
func TestAttackPrivateTmp(t *testing.T) {
	t.Parallel()
	r := sandboxRuntime(t)
	const list = `for d in /tmp /var/tmp /dev/shm; do echo "$d=$(find $d -path "$PWD" -prune -o -type f -print | wc -l)"; done`
	a := leaseSpec(t, 105, list+`; echo secret > /tmp/spare-left-a; echo secret > /var/tmp/spare-left-a; echo secret > /dev/shm/spare-left-a; echo wrote=$?`)
	res, log := runLease(t, r, a)
	v := logValues(log)
	if v["wrote"] != "0" || v["/tmp"] != "0" || v["/var/tmp"] != "0" || v["/dev/shm"] != "0" {
		t.Fatalf("lease a: %+v %q", res, log)
	}
	for _, f := range []string{"/tmp/spare-left-a", "/var/tmp/spare-left-a", "/dev/shm/spare-left-a"} {
		if _, err := os.Stat(f); err == nil {
			os.Remove(f)
			t.Errorf("%s reached the host", f)
		}
	}
	b := leaseSpec(t, 106, list+`; cat /tmp/spare-left-a /var/tmp/spare-left-a /dev/shm/spare-left-a 2>/dev/null; echo seen=$?`)
	res, log = runLease(t, r, b)
	v = logValues(log)
	if v["seen"] == "0" || strings.Contains(log, "secret") || v["/tmp"] != "0" {
		t.Errorf("lease b saw lease a's files: %+v %q", res, log)
	}
}

// A setuid-root program gives nothing: no_new_privs, and every mount is nosuid.
func TestAttackSetuid(t *testing.T) {
	t.Parallel()
	r := sandboxRuntime(t)
	dir := hostDir(t, 0o755)
	idBin, err := exec.LookPath("id")
	if err != nil {
		t.Skip("no id(1)")
	}
	suid := filepath.Join(dir, "id")
	copyFile(t, idBin, suid, 0o755)
	if err := os.Chmod(suid, 0o4755); err != nil {
		t.Fatal(err)
	}
	s := leaseSpec(t, 107, fmt.Sprintf("echo euid=$(%s -u); grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status | tr -d ' \\t' | tr : =", suid))
	res, log := runLease(t, r, s)
	v := logValues(log)
	id, _ := r.identity(s.LeaseID)
	if v["euid"] != strconv.Itoa(id.uid) || v["NoNewPrivs"] != "1" || v["Seccomp"] != "2" {
		t.Errorf("result %+v; log %q; want euid %d, NoNewPrivs 1, Seccomp 2", res, log, id.uid)
	}
}

// No user namespace, no mount, no other namespace: seccomp refuses them.
func TestAttackNamespacesAndMounts(t *testing.T) {
	t.Parallel()
	r := sandboxRuntime(t)
	// The refusals go to stdout (2>&1) with the results: the log keeps each stream's order, not the order across
	// the two streams (a stderr line may land inside the echo's).
	s := leaseSpec(t, 108, `unshare -Ur true 2>&1; echo userns=$?
unshare -Urm sh -c 'mount -t tmpfs none /mnt' 2>&1; echo usermount=$?
mount -t tmpfs none /mnt 2>/dev/null; echo mount=$?
unshare -n true 2>/dev/null; echo netns=$?
umount /proc 2>/dev/null; echo umount=$?`)
	res, log := runLease(t, r, s)
	v := logValues(log)
	t.Logf("result %+v; log %q", res, log)
	for _, k := range []string{"userns", "usermount", "mount", "netns", "umount"} {
		if v[k] == "" || v[k] == "0" {
			t.Errorf("%s succeeded (%q)", k, v[k])
		}
	}
	if !strings.Contains(log, "Operation not permitted") {
		t.Errorf("no EPERM in %q", log)
	}
}

// A process that leaves the session and daemonizes is in the lease's PID namespace, and dies with it.
func TestAttackDaemonize(t *testing.T) {
	t.Parallel()
	r := sandboxRuntime(t)
	s := leaseSpec(t, 109, `setsid sh -c 'trap "" HUP TERM; sleep 300 </dev/null >/dev/null 2>&1 & echo $! > daemon.pid' ; sleep 0.5; echo bye`)
	w := start(t, r, s)
	pid := workloadPID(t, w, filepath.Join(s.WorkDir, "daemon.pid"))
	mine, _ := os.Readlink("/proc/self/ns/pid")
	theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil || theirs == mine {
		t.Errorf("daemonized process %d in pid namespace %q (%v), the daemon's is %q", pid, theirs, err, mine)
	}
	res := wait(t, w)
	if res.ExitCode != 0 {
		t.Errorf("result %+v", res)
	}
	eventually(t, 2*time.Second, "the daemonized process to die", func() bool { return dead(pid) })
}

// The host's files are read-only, even where permissions allow writing; HidePaths are empty; only the work
// dir and the private tmpfs are writable; a file cannot outgrow DiskBytes.
func TestAttackFilesystem(t *testing.T) {
	t.Parallel()
	r := sandboxRuntime(t)
	open := hostDir(t, 0o777) // world-writable on the host
	hide := hostDir(t, 0o755)
	if err := os.WriteFile(filepath.Join(hide, "provider.key"), []byte("private-key-material"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := leaseSpec(t, 110, fmt.Sprintf(`touch %[1]s/x 2>/dev/null; echo open=$?
touch /etc/x 2>/dev/null; echo etc=$?
touch /x 2>/dev/null; echo root=$?
echo hidden=$(ls -A %[2]s | wc -l); cat %[2]s/provider.key 2>/dev/null; touch %[2]s/x 2>/dev/null; echo hidewrite=$?
echo ok > work-file; echo work=$?
echo ok > /tmp/t; echo tmp=$?
head -c 2000000 /dev/zero > big 2>/dev/null; echo fsize=$?
ls /dev | tr '\n' ' '; echo
echo devnull=$(echo x > /dev/null; echo $?)`, open, hide))
	s.HidePaths = []string{hide, filepath.Join(hide, "absent")}
	s.DiskBytes = 1 << 20
	res, log := runLease(t, r, s)
	v := logValues(log)
	t.Logf("result %+v; log %q", res, log)
	for k, want := range map[string]string{"work": "0", "tmp": "0", "hidden": "0", "devnull": "0"} {
		if v[k] != want {
			t.Errorf("%s = %q, want %s", k, v[k], want)
		}
	}
	for _, k := range []string{"open", "etc", "root", "hidewrite", "fsize"} {
		if v[k] == "" || v[k] == "0" {
			t.Errorf("%s succeeded (%q)", k, v[k])
		}
	}
	if strings.Contains(log, "private-key-material") {
		t.Error("the workload read a hidden file")
	}
	if ents, _ := os.ReadDir(open); len(ents) != 0 {
		t.Errorf("the workload wrote %v on the host", ents)
	}
	if fi, err := os.Stat(filepath.Join(s.WorkDir, "big")); err == nil && fi.Size() > int64(s.DiskBytes) {
		t.Errorf("a %d-byte file on a %d-byte lease", fi.Size(), s.DiskBytes)
	}
	for _, d := range []string{"sda", "kmsg", "loop0", "mem", "port"} {
		if strings.Contains(" "+log+" ", " "+d+" ") {
			t.Errorf("/dev/%s is visible", d)
		}
	}
}

// A sandbox that cannot be built makes Start fail cleanly, leaving nothing behind.
func TestSandboxSetupFailure(t *testing.T) {
	t.Parallel()
	r := sandboxRuntime(t)
	s := leaseSpec(t, 111, "echo should-not-run")
	// A hidden path that cannot be resolved (a symbolic link loop): the init cannot tell what to cover, and
	// must refuse rather than leave it visible.
	hide := filepath.Join(hostDir(t, 0o755), "loop")
	if err := os.Symlink(hide, hide); err != nil {
		t.Fatal(err)
	}
	s.HidePaths = []string{hide}
	_, err := r.Start(ctxT(t, 10*time.Second), s)
	if err == nil {
		t.Fatal("Start succeeded")
	}
	t.Logf("Start: %v", err)
	if strings.Contains(readLog(t, s), "should-not-run") {
		t.Error("the command ran")
	}
	name := leaseCgroupName(s.LeaseID, s.Dir)
	for _, c := range wantControllers {
		if r.v1.has(c) {
			if _, err := os.Stat(filepath.Join(r.v1.parent[c], name)); err == nil {
				t.Errorf("cgroup %s/%s left behind", r.v1.parent[c], name)
			}
		}
	}
	if p := uidProcs(func() int { id, _ := r.identity(s.LeaseID); return id.uid }()); len(p) > 0 {
		t.Errorf("processes %v left behind", p)
	}
}

// The filter itself: the arch check comes first, every denied call has its rule, clone is checked.
func TestSeccompProgram(t *testing.T) {
	p, err := seccompProgram()
	if err != nil {
		t.Skip(err)
	}
	if p[0].K != offArch || p[1].K != auditArch || p[2].K != unix.SECCOMP_RET_KILL_PROCESS {
		t.Fatalf("program starts %+v", p[:3])
	}
	if len(p) > 4096 {
		t.Fatalf("%d instructions", len(p))
	}
	want := map[uint32]bool{}
	for _, nr := range append(append([]uintptr{}, deniedCommon...), deniedArch...) {
		want[uint32(nr)] = true
	}
	for _, ins := range p {
		if ins.Code == unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K {
			delete(want, ins.K)
		}
	}
	if len(want) > 0 {
		t.Errorf("no rule for %v", want)
	}
}

// A sandboxed workload whose daemon died is found again from its state (v1 cgroups included): its OOM kill
// after the restart is reported, and its cgroups are removed at the end.
func TestReattachSandboxedOOM(t *testing.T) {
	t.Parallel()
	r := sandboxRuntime(t)
	s := leaseSpec(t, 112, "echo started; sleep 1; head -c 300000000 /dev/zero | tail")
	s.MemoryBytes = 64 << 20
	job := helperJob{Config: testConfig(), Specs: []runtime.Spec{s}, Out: filepath.Join(t.TempDir(), "states")}
	jf := filepath.Join(t.TempDir(), "job")
	b, _ := json.Marshal(job)
	if err := os.WriteFile(jf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"="+jf)
	if out, err := helper.CombinedOutput(); err != nil {
		t.Fatalf("helper daemon: %v\n%s", err, out)
	}
	var states []json.RawMessage
	if b, err := os.ReadFile(job.Out); err != nil || json.Unmarshal(b, &states) != nil || len(states) != 1 {
		t.Fatalf("states %s: %v", b, err)
	}
	var st wstate
	if err := json.Unmarshal(states[0], &st); err != nil {
		t.Fatal(err)
	}
	if !st.Sandboxed || (r.v1.has("memory") && len(st.CgroupV1) == 0) {
		t.Fatalf("state %s", states[0])
	}
	w, err := r.Reattach(ctxT(t, 5*time.Second), s, states[0])
	if err != nil {
		t.Fatal(err)
	}
	res := wait(t, w)
	if !res.OOMKilled {
		t.Errorf("result %+v; log %q", res, readLog(t, s))
	}
	for _, d := range st.CgroupV1 {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left behind", d)
		}
	}
}

// State written before the v1 and sandbox fields existed still decodes and finishes.
func TestReattachOldState(t *testing.T) {
	t.Parallel()
	r := New(testConfig())
	s := leaseSpec(t, 113, "true")
	run := filepath.Join(s.Dir, runDirName)
	if err := os.MkdirAll(run, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, statusName), []byte("exit 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	old := fmt.Sprintf(`{"v":1,"pid":%d,"start_ticks":1,"boot_id":%q,"pgid":%[1]d,"uid":0,"gid":0,"isolated":false,`+
		`"started_at":"2026-01-01T00:00:00Z","limits":"rlimit as,core","memory_mech":"rlimit","log_path":%q,"log_offset":0,"run_dir":%q}`,
		c.Process.Pid, bootID(), s.LogPath, run)
	w, err := r.Reattach(context.Background(), s, []byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if res := wait(t, w); res.ExitCode != 4 {
		t.Errorf("result %+v", res)
	}
}

// The wrapper, PID 1 of the namespace, reaps the orphans re-parented to it while the command runs.
func TestSandboxReapsOrphans(t *testing.T) {
	t.Parallel()
	r := sandboxRuntime(t)
	s := leaseSpec(t, 114, `for i in 1 2 3 4 5; do sh -c 'true & exit 0'; sh -c 'sleep 0.1 & exit 0'; done; sleep 1
echo zombies=$(ps -e -o stat= | grep -c '^Z')`)
	res, log := runLease(t, r, s)
	if v := logValues(log); v["zombies"] != "0" || res.ExitCode != 0 {
		t.Errorf("result %+v; log %q", res, log)
	}
}
