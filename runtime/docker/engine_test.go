package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/sparenet/spare/runtime"
)

// Tests against a Docker engine. They skip when none is reachable, except with CI=true, where that is a failure.
// They share one image built FROM scratch with the static test workload (testdata/workload), removed at the end.

const hostSecret = "SPARE_DOCKER_TEST_HOST_SECRET"

// testRepo is the test image's repository, the one entry of the tests' allowlist.
const testRepo = "spare-test-workload"

var (
	imageOnce sync.Once
	imageTag  string
	imageErr  error
)

func TestMain(m *testing.M) {
	// Something in the test process's environment that must not reach a container.
	os.Setenv(hostSecret, "leaked")
	code := m.Run()
	if imageTag != "" {
		if cli, err := client.New(client.FromEnv); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := cli.ImageRemove(ctx, imageTag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
			if err != nil && !cerrdefs.IsNotFound(err) {
				fmt.Fprintf(os.Stderr, "remove test image %s: %v\n", imageTag, err)
			}
			cancel()
			cli.Close()
		}
	}
	os.Exit(code)
}

// engine returns a client of a reachable engine, or skips (fails with CI=true).
func engine(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		cancel()
		if err != nil {
			cli.Close()
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but no Docker engine is reachable (DOCKER_HOST=%q): %v", os.Getenv("DOCKER_HOST"), err)
		}
		t.Skipf("no Docker engine reachable: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// testImage builds (once) the test image: the workload compiled statically, as /workload and /bin/sh.
func testImage(t testing.TB, cli *client.Client) string {
	t.Helper()
	imageOnce.Do(func() { imageTag, imageErr = buildImage(cli) })
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	return imageTag
}

func buildImage(cli *client.Client) (string, error) {
	tmp, err := os.MkdirTemp("", "spare-docker-test-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	gobin := filepath.Join(goruntime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		gobin = p
	}
	bin := filepath.Join(tmp, "workload")
	cmd := exec.Command(gobin, "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./testdata/workload")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goruntime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the test workload: %v\n%s", err, out)
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	dockerfile := "FROM scratch\nCOPY workload /workload\nCOPY workload /bin/sh\n" +
		"ENTRYPOINT [\"/workload\"]\nCMD [\"out\", \"from-image-cmd\", \"env\"]\n"
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"workload", 0o755, exe}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	sum := sha256.Sum256(ctxTar.Bytes())
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	// The random part keeps concurrent test runs from removing each other's image.
	tag := testRepo + ":" + hex.EncodeToString(sum[:6]) + "-" + hex.EncodeToString(rnd[:])
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := cli.ImageBuild(ctx, &ctxTar, client.ImageBuildOptions{
		Tags: []string{tag}, Dockerfile: "Dockerfile", Remove: true, ForceRemove: true,
		Labels: map[string]string{"spare.test": "true"},
	})
	if err != nil {
		return "", fmt.Errorf("image build: %w", err)
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	var out strings.Builder
	for {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			return "", fmt.Errorf("image build output: %w", err)
		}
		out.WriteString(msg.Stream)
		if msg.Error != "" {
			return "", fmt.Errorf("image build: %s\n%s", msg.Error, out.String())
		}
	}
	if _, err := cli.ImageInspect(ctx, tag); err != nil {
		return "", fmt.Errorf("image build: %s not there: %w\n%s", tag, err, out.String())
	}
	imageTag = tag // removed by TestMain, even if a test fails
	return tag, nil
}

// lease makes a Spec for a fresh lease (a random id, so that concurrent runs do not collide) with its own
// directories, and removes whatever the engine keeps of it when the test ends.
func lease(t *testing.T, cli *client.Client, command string) runtime.Spec {
	t.Helper()
	id := 1<<41 + mrand.Uint64N(1<<40)
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		f := client.Filters{}
		f.Add("label", LabelLease+"="+strconv.FormatUint(id, 10))
		if l, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f}); err == nil {
			for _, c := range l.Items {
				_, _ = cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
			}
		}
		_, _ = cli.NetworkRemove(ctx, LeaseName(id), client.NetworkRemoveOptions{})
	})
	return runtime.Spec{
		LeaseID: id,
		Dir:     dir,
		WorkDir: work,
		LogPath: filepath.Join(dir, "log.txt"),
		Command: command,
		Image:   testImage(t, cli),
	}
}

func newRuntime(t *testing.T) *Runtime {
	r := &Runtime{StopTimeout: 2 * time.Second, Images: []string{testRepo}}
	t.Cleanup(func() { r.Close() })
	return r
}

func readLog(t *testing.T, s runtime.Spec) string {
	t.Helper()
	b, err := os.ReadFile(s.LogPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// waitLog waits until LogPath contains want.
func waitLog(t *testing.T, s runtime.Spec, want string, timeout time.Duration) {
	t.Helper()
	for end := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		if strings.Contains(readLog(t, s), want) {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("LogPath has no %q after %s:\n%s", want, timeout, readLog(t, s))
		}
	}
}

func wait(t *testing.T, w runtime.Workload, timeout time.Duration) runtime.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := w.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return res
}

// assertGone checks that the lease's container and network were removed.
func assertGone(t *testing.T, cli *client.Client, s runtime.Spec) {
	t.Helper()
	ctx := context.Background()
	if _, err := cli.ContainerInspect(ctx, LeaseName(s.LeaseID), client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("container %s still there (err %v)", LeaseName(s.LeaseID), err)
	}
	if _, err := cli.NetworkInspect(ctx, LeaseName(s.LeaseID), client.NetworkInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("network %s still there (err %v)", LeaseName(s.LeaseID), err)
	}
}

func TestAvailable(t *testing.T) {
	bad := &Runtime{Host: "unix:///nonexistent/spare-docker.sock"}
	defer bad.Close()
	if err := bad.Available(context.Background()); err == nil {
		t.Fatal("Available with no engine: no error")
	}
	engine(t)
	r := newRuntime(t)
	if err := r.Available(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.Name() != "docker" {
		t.Fatal(r.Name())
	}
}

// TestRun: logs (stdout and stderr) in LogPath, the output file on the host owned by the lease's uid (as root;
// the daemon's uid otherwise), the exit code, cleanup, and a result that survives the Runtime.
func TestRun(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	s := lease(t, cli, "lines 3 err to-stderr id write /work/out/result.txt hello exit 3")
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 { // as root: the lease's own uid, never root
		var err error
		if uid, err = LeaseUID(0, 0, s.LeaseID); err != nil {
			t.Fatal(err)
		}
		gid = uid
	}
	r := newRuntime(t)
	w, err := r.Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	res := wait(t, w, 30*time.Second)
	if res.ExitCode != 3 || res.OOMKilled || res.TimedOut || res.Stopped {
		t.Fatalf("result %+v\n%s", res, readLog(t, s))
	}
	if res.StartedAt.IsZero() || res.EndedAt.Before(res.StartedAt) || !strings.Contains(res.Reason, "3") {
		t.Fatalf("result %+v", res)
	}
	log := readLog(t, s)
	// stdout's lines in order; stderr's may come anywhere in between (the engine reads them from two pipes).
	stdout := strings.ReplaceAll(log, "to-stderr\n", "")
	if want := fmt.Sprintf("line 1\nline 2\nline 3\nUID %d GID %d\n", uid, gid); stdout != want {
		t.Errorf("stdout in the log:\n%s\nwant:\n%s", stdout, want)
	}
	if strings.Count(log, "to-stderr\n") != 1 {
		t.Errorf("stderr not in the log once:\n%s", log)
	}
	// The index gives each line its stream, and the engine's times, in order.
	index, err := os.ReadFile(runtime.IndexPath(s.LogPath))
	if err != nil {
		t.Fatal(err)
	}
	var prev time.Time
	for _, l := range runtime.SplitLog([]byte(log), index) {
		want := runtime.Stdout
		if string(l.Text) == "to-stderr" {
			want = runtime.Stderr
		}
		if l.Stream != want || l.Time.Before(prev) || l.Time.Before(res.StartedAt.Add(-time.Second)) || l.Time.After(res.EndedAt.Add(time.Second)) {
			t.Errorf("line %q: %v at %v (run %v..%v)", l.Text, l.Stream, l.Time, res.StartedAt, res.EndedAt)
		}
		prev = l.Time
	}
	out := filepath.Join(s.WorkDir, "out", "result.txt")
	b, err := os.ReadFile(out)
	if err != nil || string(b) != "hello\n" {
		t.Fatalf("output file: %q %v", b, err)
	}
	if fi, err := os.Stat(out); err != nil || int(fi.Sys().(*syscall.Stat_t).Uid) != uid {
		t.Fatalf("output file owner: %v %v", fi.Sys(), err)
	}
	assertGone(t, cli, s)
	// Wait again, Stop after the end: the same result, no error.
	if res2 := wait(t, w, time.Second); res2 != res {
		t.Fatalf("second Wait %+v != %+v", res2, res)
	}
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A daemon restarting after the end finds the saved result, not ErrGone.
	w2, err := newRuntime(t).Reattach(context.Background(), s, w.State())
	if err != nil {
		t.Fatal(err)
	}
	if res2 := wait(t, w2, time.Second); !res2.EndedAt.Equal(res.EndedAt) || res2.ExitCode != 3 {
		t.Fatalf("reattached result %+v != %+v", res2, res)
	}
}

// TestHostNetwork: a cluster member's container (HostNetwork) listens on MASTER_PORT in the host's network
// namespace, where a peer on the host reaches it; no lease network is created.
func TestHostNetwork(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	s := lease(t, cli, "rendezvous")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	s.HostNetwork = true
	s.Env = []string{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + port}
	w, err := newRuntime(t).Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.NetworkInspect(context.Background(), LeaseName(s.LeaseID), client.NetworkInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("a host-network workload got a lease network (err %v)", err)
	}
	var c net.Conn
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err = net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("nothing listens on the host's port %s: %v\n%s", port, err, readLog(t, s))
		}
	}
	fmt.Fprintf(c, "hello from rank 1\n")
	c.Close()
	if res := wait(t, w, 30*time.Second); res.ExitCode != 0 {
		t.Fatalf("result %+v\n%s", res, readLog(t, s))
	}
	if log := readLog(t, s); !strings.Contains(log, "rank 0 got: hello from rank 1") {
		t.Fatalf("log:\n%s", log)
	}
	assertGone(t, cli, s)
}

// TestEnv: the image's entrypoint and cmd when Command is empty; exactly Spec.Env, nothing of the host's.
func TestEnv(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	s := lease(t, cli, "")
	s.Env = []string{"SPARE_A=1", "SPARE_B=two words", "NVIDIA_VISIBLE_DEVICES=void"}
	w, err := newRuntime(t).Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if res := wait(t, w, 30*time.Second); res.ExitCode != 0 {
		t.Fatalf("result %+v\n%s", res, readLog(t, s))
	}
	log := readLog(t, s)
	if !strings.HasPrefix(log, "from-image-cmd\n") {
		t.Fatalf("the image's CMD did not run:\n%s", log)
	}
	env := map[string]string{}
	for line := range strings.Lines(log) {
		if kv, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "ENV "); ok {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	for _, kv := range s.Env {
		k, v, _ := strings.Cut(kv, "=")
		if env[k] != v {
			t.Errorf("%s = %q in the container, want %q", k, env[k], v)
		}
		delete(env, k)
	}
	for k := range env {
		// What the engine adds by itself.
		if k != "PATH" && k != "HOSTNAME" && k != "HOME" {
			t.Errorf("unexpected variable %s=%s in the container", k, env[k])
		}
	}
	if strings.Contains(log, hostSecret) {
		t.Error("the host's environment leaked into the container")
	}
}

func TestOOMKilled(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	s := lease(t, cli, "alloc 512 out survived")
	s.MemoryBytes = 32 << 20
	w, err := newRuntime(t).Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	res := wait(t, w, 60*time.Second)
	if !res.OOMKilled || res.ExitCode != 137 || res.Stopped || res.TimedOut {
		t.Fatalf("result %+v\n%s", res, readLog(t, s))
	}
	if strings.Contains(readLog(t, s), "survived") {
		t.Fatal("allocated past the limit")
	}
}

// TestLimitsAndStop: the container's configuration as the engine has it, the lease's network, then Stop.
func TestLimitsAndStop(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	s := lease(t, cli, "trap ticks 600 100ms")
	s.CPUMilli = 500
	s.MemoryBytes = 96 << 20
	s.Env = []string{"X=1"}
	r := newRuntime(t)
	r.PidsLimit = 64
	w, err := r.Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, s, "tick 2\n", 20*time.Second)

	ctx := context.Background()
	var st state
	if err := json.Unmarshal(w.State(), &st); err != nil {
		t.Fatal(err)
	}
	ci, err := cli.ContainerInspect(ctx, st.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := ci.Container
	hc := c.HostConfig
	if c.Name != "/"+LeaseName(s.LeaseID) || st.Name != LeaseName(s.LeaseID) {
		t.Errorf("names %q %q", c.Name, st.Name)
	}
	if hc.Privileged || !slices.Contains(hc.CapDrop, "ALL") || len(hc.CapAdd) != 0 || !slices.Contains(hc.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("privileges: Privileged=%v CapDrop=%v CapAdd=%v SecurityOpt=%v", hc.Privileged, hc.CapDrop, hc.CapAdd, hc.SecurityOpt)
	}
	if hc.NanoCPUs != 500_000_000 || hc.Memory != 96<<20 || hc.MemorySwap != 96<<20 || hc.PidsLimit == nil || *hc.PidsLimit != 64 {
		t.Errorf("resources: NanoCPUs=%d Memory=%d MemorySwap=%d PidsLimit=%v", hc.NanoCPUs, hc.Memory, hc.MemorySwap, hc.PidsLimit)
	}
	if !hc.ReadonlyRootfs || len(hc.DeviceRequests) != 0 {
		t.Errorf("ReadonlyRootfs=%v DeviceRequests=%v", hc.ReadonlyRootfs, hc.DeviceRequests)
	}
	if string(hc.NetworkMode) != LeaseName(s.LeaseID) {
		t.Errorf("NetworkMode %q", hc.NetworkMode)
	}
	if c.Config.Labels[LabelLease] != strconv.FormatUint(s.LeaseID, 10) || c.Config.Labels[LabelManaged] != "true" {
		t.Errorf("labels %v", c.Config.Labels)
	}
	if c.Config.WorkingDir != "/work" || !slices.Equal(c.Config.Entrypoint, []string{"/bin/sh", "-c"}) || !slices.Equal(c.Config.Cmd, []string{s.Command}) {
		t.Errorf("config: WorkingDir=%q Entrypoint=%v Cmd=%v", c.Config.WorkingDir, c.Config.Entrypoint, c.Config.Cmd)
	}
	var work bool
	for _, m := range c.Mounts {
		if m.Type == mount.TypeBind && m.Destination == "/work" && m.RW && m.Source == s.WorkDir {
			work = true
		}
	}
	if !work {
		t.Errorf("no read-write bind of %s at /work: %+v", s.WorkDir, c.Mounts)
	}
	if _, ok := c.NetworkSettings.Networks[LeaseName(s.LeaseID)]; !ok || len(c.NetworkSettings.Networks) != 1 {
		t.Errorf("networks %v", c.NetworkSettings.Networks)
	}
	n, err := cli.NetworkInspect(ctx, LeaseName(s.LeaseID), client.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Network.Driver != "bridge" || n.Network.Labels[LabelLease] != strconv.FormatUint(s.LeaseID, 10) || n.Network.ID != st.NetworkID {
		t.Errorf("network %+v", n.Network)
	}

	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	res := wait(t, w, 30*time.Second)
	if !res.Stopped || res.TimedOut || res.OOMKilled || res.ExitCode != 143 {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(readLog(t, s), "got SIGTERM\n") {
		t.Fatalf("the workload did not get SIGTERM:\n%s", readLog(t, s))
	}
	assertGone(t, cli, s)
	if err := w.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	s := lease(t, cli, "out started sleep 60s")
	s.Timeout = 1500 * time.Millisecond
	r := newRuntime(t)
	r.StopTimeout = time.Second
	start := time.Now()
	w, err := r.Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	res := wait(t, w, 30*time.Second)
	if !res.TimedOut || res.Stopped || !strings.HasPrefix(res.Reason, "duration reached (1.5s)") {
		t.Fatalf("result %+v", res)
	}
	if d := time.Since(start); d < s.Timeout || d > 15*time.Second {
		t.Fatalf("ended after %s with a %s timeout", d, s.Timeout)
	}
	assertGone(t, cli, s)
}

// TestReattach: a new Runtime (a restarted daemon) takes over a running workload with the cursor file; then,
// after the workload ended with no daemon following it, another takes over with the cursor file lost and only
// an older State. The log ends up complete, without duplicates, and the result is right.
func TestReattach(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	const n = 80
	s := lease(t, cli, fmt.Sprintf("ticks %d 50ms", n))
	ctx := context.Background()
	r1 := newRuntime(t)
	w1, err := r1.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	startState := w1.State() // what the daemon persisted after Start
	waitLog(t, s, "tick 8\n", 20*time.Second)
	midState := w1.State()
	waitLog(t, s, "tick 15\n", 20*time.Second)
	if err := r1.Close(); err != nil { // the daemon dies; the container goes on
		t.Fatal(err)
	}
	if _, err := w1.Wait(ctx); err == nil {
		t.Fatal("Wait after Close: no error")
	}
	time.Sleep(300 * time.Millisecond)

	r2 := newRuntime(t)
	_, err = r2.Reattach(ctx, s, startState)
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, s, "tick 40\n", 20*time.Second)
	r2.Close()
	// The workload ends while no daemon follows it.
	for {
		c, err := cli.ContainerInspect(ctx, LeaseName(s.LeaseID), client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !c.Container.State.Running {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(readLog(t, s), fmt.Sprintf("tick %d\n", n)) {
		t.Fatal("logs copied after Close")
	}

	// Lose the cursor file: the older state's cursor must do.
	if err := os.Remove(filepath.Join(s.Dir, cursorFile)); err != nil {
		t.Fatal(err)
	}
	w3, err := newRuntime(t).Reattach(ctx, s, midState)
	if err != nil {
		t.Fatal(err)
	}
	res := wait(t, w3, 30*time.Second)
	if res.ExitCode != 0 || res.Stopped || res.TimedOut {
		t.Fatalf("result %+v", res)
	}
	// Every tick once; in order on each stream (the engine reads stdout and stderr from two pipes, so under load
	// an odd tick, on stdout, may come before the even one printed before it on stderr).
	got := readLog(t, s)
	last := [2]int{0, -1} // the last even and odd ticks seen
	seen := 0
	for line := range strings.Lines(got) {
		var k int
		if _, err := fmt.Sscanf(line, "tick %d\n", &k); err != nil || k != last[k%2]+2 {
			t.Fatalf("log after two reattaches: %q out of place:\n%s\nwant tick 1 to tick %d once each", line, got, n)
		}
		last[k%2] = k
		seen++
	}
	if seen != n {
		t.Fatalf("log after two reattaches has %d ticks, want %d:\n%s", seen, n, got)
	}
	assertGone(t, cli, s)
}

func TestReattachDeadline(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	s := lease(t, cli, "out started sleep 60s")
	s.Timeout = 2 * time.Second
	ctx := context.Background()
	r1 := newRuntime(t)
	if _, err := r1.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	waitLog(t, s, "started\n", 20*time.Second)
	r1.Close()
	// No state at all: found by its label, the deadline read from the container's label.
	w2, err := newRuntime(t).Reattach(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := wait(t, w2, 30*time.Second)
	if !res.TimedOut {
		t.Fatalf("result %+v", res)
	}
	if got := readLog(t, s); got != "started\n" {
		t.Fatalf("log %q", got)
	}
	assertGone(t, cli, s)
}

func TestReattachGone(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	s := lease(t, cli, "")
	st := `{"container_id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","name":"` + LeaseName(s.LeaseID) + `"}`
	if _, err := newRuntime(t).Reattach(context.Background(), s, []byte(st)); !errors.Is(err, runtime.ErrGone) {
		t.Fatalf("Reattach of nothing: %v, want ErrGone", err)
	}
	// A container created but never started (the daemon died inside Start) is gone too, and removed.
	ctx := context.Background()
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   LeaseName(s.LeaseID),
		Config: containerConfig(s, s.Image, "", time.Time{}, 1),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newRuntime(t).Reattach(ctx, s, nil); !errors.Is(err, runtime.ErrGone) {
		t.Fatalf("Reattach of a container never started: %v, want ErrGone", err)
	}
	if _, err := cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("container never started not removed: %v", err)
	}
}

func TestMissingImage(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	s := lease(t, cli, "out hi")
	s.Image = testRepo + ":no-such-tag-" + strconv.FormatUint(s.LeaseID, 10)
	_, err := newRuntime(t).Start(context.Background(), s)
	if !errors.Is(err, ErrImageNotFound) || !strings.Contains(err.Error(), s.Image) {
		t.Fatalf("Start with a missing image: %v", err)
	}
	assertGone(t, cli, s)
}

// TestStartFailureCleansUp: an engine refusing the container leaves no network behind.
func TestStartFailureCleansUp(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	s := lease(t, cli, "out hi")
	s.CPUMilli = 1_000_000 // a thousand CPUs
	_, err := newRuntime(t).Start(context.Background(), s)
	if err == nil {
		t.Fatal("Start with 1000 CPUs: no error")
	}
	assertGone(t, cli, s)
}
