// Package docker runs a lease's workload as a container through the Docker Engine API (runtime.Runtime "docker").
//
// # The container
//
// One container per lease, named spare-lease-<id> and labelled spare.managed=true, spare.lease=<id> and
// spare.deadline=<RFC 3339 time or empty>, created from Spec.Image, which must already be in the engine's image
// store: the runtime never pulls unless Runtime.Pull is set, and fails with an error naming the image (matching
// ErrImageNotFound) otherwise.
//
//   - Command: a non-empty Spec.Command runs as Entrypoint ["/bin/sh", "-c"], Cmd [Spec.Command], replacing the
//     image's entrypoint and command; the image must then have /bin/sh. An empty Spec.Command runs the image's
//     own ENTRYPOINT and CMD.
//   - Files: Spec.WorkDir is bind-mounted read-write at /work, the working directory, so that outputs written
//     under /work land on the host. The workload runs as the user and group owning Spec.WorkDir (so that it can
//     write there without capabilities, and its files belong to the provider), or as the image's USER when
//     Runtime.ImageUser is set.
//   - Environment: exactly Spec.Env; the engine adds only the image's own ENV defaults and PATH, HOSTNAME and
//     HOME when they are not set. Nothing of the provider's environment is passed.
//   - Isolation: not privileged, every capability dropped (CapDrop ALL, none added), no-new-privileges, a
//     private IPC namespace, a PID limit (Runtime.PidsLimit), and a user-defined bridge network of its own,
//     spare-lease-<id>, created with the container and removed with it, so that leases cannot reach each other
//     (they can reach the outside and the host's addresses, unless Runtime.InternalNetwork is set). A
//     Spec.HostNetwork workload (a cluster member) gets the host's network namespace instead, as a process
//     does: no network of its own and nothing published; every other isolation above still holds. The root
//     file system is writable unless Runtime.ReadOnlyRootFS is set (then /tmp is a tmpfs).
//   - Resources: NanoCPUs = CPUMilli×10⁶, Memory = MemorySwap = MemoryBytes (no swap); zero means no limit.
//   - GPUs: a device request for exactly Spec.GPUs (driver "nvidia", their UUIDs, capability "gpu") when any
//     are assigned, none otherwise. This needs the NVIDIA container toolkit on the host.
//   - Logs: the engine's json-file driver (64 MiB × 4 files kept); the runtime copies them to Spec.LogPath.
//
// # Logs
//
// A goroutine follows the container's log stream (stdout and stderr demultiplexed, with the engine's timestamps)
// and appends each entry's text to Spec.LogPath as it comes, so the provider can follow that file. Where it is
// up to is kept in a small cursor file in Spec.Dir (docker-logs.cursor), rewritten after every append: an anchor
// time A, the number of bytes B of the log stream "since A" that are in LogPath, and LogPath's size O when that
// was recorded. After Reattach, the copier asks for the stream since A again and skips B + (size now − O) bytes
// of it: the bytes that reached LogPath after the cursor was written are skipped as well, so nothing is copied
// twice and nothing is missed, whenever the previous process died. The anchor moves forward as the workload logs
// (to the newest entry's time less 5 s, a margin for the engine's stdout and stderr copiers stamping entries a
// little out of order), so that a resume re-reads seconds of logs, not all of them. Without a cursor file the
// cursor in the persisted State is used (older, still exact), and without either the whole log is re-read
// and LogPath's size skipped. This is exact as long as only this runtime appends to LogPath, the engine still
// holds the entries since A (its log files rotate at 256 MiB) and the host clock did not step back by more than
// the margin. LogPath has stdout's and stderr's lines in the engine's order: each stream's in order, but as the
// engine reads them from two pipes, a line may come a little before one written earlier on the other stream.
//
// # Ending
//
// A second goroutine waits for the container to stop (and stops it at the deadline, Spec.Timeout after the
// start, kept in the state and in a label so that it is enforced after Reattach as well), waits for the log copier
// to drain, inspects the container for its exit code, OOM kill and times, saves that result in Spec.Dir
// (docker-result.json) and only then removes the container and its network. Stop sends SIGTERM, then SIGKILL after
// Runtime.StopTimeout; a stop or timeout request is recorded in Spec.Dir (docker-stop) before it is sent, so
// that Stopped and TimedOut survive a daemon restart too. Reattach returns the saved result when the workload
// ended while the daemon was away and was cleaned up; ErrGone when there is neither a container nor a result.
package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/sparenet/spare/runtime"
)

// Labels set on the containers and networks of this runtime.
const (
	LabelManaged  = "spare.managed"
	LabelLease    = "spare.lease"
	LabelDeadline = "spare.deadline"
)

// Defaults of the Runtime's options.
const (
	DefaultStopTimeout = 10 * time.Second
	DefaultPidsLimit   = 4096
)

// Files the runtime keeps in Spec.Dir.
const (
	cursorFile = "docker-logs.cursor"
	resultFile = "docker-result.json"
	stopFile   = "docker-stop"
)

// ErrImageNotFound is matched (errors.Is) by Start's error when Spec.Image is not in the engine's image store.
var ErrImageNotFound = errors.New("image not found locally")

// errClosed is what Wait returns once the Runtime that started or reattached the workload is closed.
var errClosed = errors.New("docker: runtime closed; reattach to follow the workload again")

// Runtime runs workloads as Docker containers. The zero value is ready to use with the defaults; set the fields
// before the first call.
type Runtime struct {
	// Host is the engine's address (unix:///var/run/docker.sock, tcp://host:2376...). Empty: DOCKER_HOST, or
	// the default socket. DOCKER_API_VERSION, DOCKER_CERT_PATH and DOCKER_TLS_VERIFY are honoured.
	Host string
	// StopTimeout is the grace period between SIGTERM and SIGKILL when stopping (Stop and timeout). Zero:
	// DefaultStopTimeout. It is rounded up to whole seconds.
	StopTimeout time.Duration
	// PidsLimit caps the number of processes and threads in a container. Zero: DefaultPidsLimit; negative: no
	// limit.
	PidsLimit int64
	// ReadOnlyRootFS makes the container's root file system read-only (/work stays writable, /tmp is a
	// 64 MiB tmpfs). Off by default: many images write elsewhere.
	ReadOnlyRootFS bool
	// ImageUser runs the workload as the image's USER instead of the owner of Spec.WorkDir. The image's user
	// must then be able to write /work, without capabilities.
	ImageUser bool
	// Init runs the engine's init (docker-init) as PID 1 to forward signals and reap zombies.
	Init bool
	// InternalNetwork makes the lease's network internal: no access outside it.
	InternalNetwork bool
	// Pull pulls a missing image (anonymously) instead of failing.
	Pull bool

	once   sync.Once
	cli    *client.Client
	cliErr error

	mu        sync.Mutex
	closed    bool
	ctx       context.Context // ends at Close; the workloads' goroutines live under it
	cancel    context.CancelFunc
	workloads sync.WaitGroup
}

var _ runtime.Runtime = (*Runtime)(nil)

// Name is "docker".
func (r *Runtime) Name() string { return "docker" }

func (r *Runtime) client() (*client.Client, error) {
	r.once.Do(func() {
		opts := []client.Opt{client.FromEnv}
		if r.Host != "" {
			opts = append(opts, client.WithHost(r.Host))
		}
		r.cli, r.cliErr = client.New(opts...)
		if r.cliErr != nil {
			r.cliErr = fmt.Errorf("docker: client: %w", r.cliErr)
		}
		r.ctx, r.cancel = context.WithCancel(context.Background())
	})
	if r.cliErr != nil {
		return nil, r.cliErr
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errClosed
	}
	return r.cli, nil
}

// Available reports whether the engine answers (and speaks an API version this client supports). A provider
// without one makes no bids for image jobs.
func (r *Runtime) Available(ctx context.Context) error {
	cli, err := r.client()
	if err != nil {
		return err
	}
	p, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		return fmt.Errorf("docker: engine not reachable at %s: %w", cli.DaemonHost(), err)
	}
	if p.OSType != "" && p.OSType != "linux" {
		return fmt.Errorf("docker: engine at %s runs %s containers, not linux", cli.DaemonHost(), p.OSType)
	}
	return nil
}

// Close stops following the workloads started or reattached through r (their containers keep running; another
// Runtime can Reattach them) and closes the connection to the engine. It waits for the log copiers to stop.
func (r *Runtime) Close() error {
	r.once.Do(func() { r.cliErr = errClosed }) // never used: nothing to close
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	if r.cancel != nil {
		r.cancel()
	}
	r.workloads.Wait()
	if r.cli != nil {
		return r.cli.Close()
	}
	return nil
}

func (r *Runtime) stopTimeout() time.Duration {
	if r.StopTimeout <= 0 {
		return DefaultStopTimeout
	}
	return r.StopTimeout
}

func (r *Runtime) stopSeconds() int {
	return int((r.stopTimeout() + time.Second - 1) / time.Second)
}

func (r *Runtime) pidsLimit() int64 {
	switch {
	case r.PidsLimit == 0:
		return DefaultPidsLimit
	case r.PidsLimit < 0:
		return -1
	}
	return r.PidsLimit
}

// LeaseName is the name of a lease's container and network: spare-lease-<id>.
func LeaseName(leaseID uint64) string { return "spare-lease-" + strconv.FormatUint(leaseID, 10) }

func labels(leaseID uint64) map[string]string {
	return map[string]string{LabelManaged: "true", LabelLease: strconv.FormatUint(leaseID, 10)}
}

// containerConfig is the container configuration for s: command, environment, working directory, labels.
// user is the --user value ("" for the image's).
func containerConfig(s runtime.Spec, user string, deadline time.Time, stopSeconds int) *container.Config {
	l := labels(s.LeaseID)
	l[LabelDeadline] = ""
	if !deadline.IsZero() {
		l[LabelDeadline] = deadline.UTC().Format(time.RFC3339Nano)
	}
	env := make([]string, len(s.Env))
	copy(env, s.Env)
	cfg := &container.Config{
		Image:       s.Image,
		Env:         env,
		WorkingDir:  "/work",
		Labels:      l,
		User:        user,
		StopTimeout: &stopSeconds,
	}
	for _, pm := range s.Ports {
		if s.HostNetwork {
			break // bound on the host by the workload itself
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		if port, err := network.ParsePort(strconv.Itoa(int(pm.Port)) + "/tcp"); err == nil {
			cfg.ExposedPorts[port] = struct{}{}
		}
	}
	if s.Command != "" {
		cfg.Entrypoint = []string{"/bin/sh", "-c"}
		cfg.Cmd = []string{s.Command}
	}
	return cfg
}

// hostConfig is the host configuration for s: mounts, isolation, limits, GPUs and network. workDir is
// s.WorkDir made absolute.
func (r *Runtime) hostConfig(s runtime.Spec, workDir string) *container.HostConfig {
	pids := r.pidsLimit()
	hc := &container.HostConfig{
		Mounts: []mount.Mount{{
			Type:   mount.TypeBind,
			Source: workDir,
			Target: "/work",
		}},
		NetworkMode:    container.NetworkMode(LeaseName(s.LeaseID)),
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyDisabled},
		Privileged:     false,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges:true"},
		IpcMode:        container.IPCModePrivate,
		ReadonlyRootfs: r.ReadOnlyRootFS,
		LogConfig: container.LogConfig{
			Type:   "json-file",
			Config: map[string]string{"max-size": "64m", "max-file": "4"},
		},
		Resources: container.Resources{
			NanoCPUs:  int64(s.CPUMilli) * 1_000_000,
			PidsLimit: &pids,
		},
	}
	if s.HostNetwork {
		hc.NetworkMode = network.NetworkHost
	}
	for _, pm := range s.Ports { // published on every host address: the service is the lease's purpose
		port, err := network.ParsePort(strconv.Itoa(int(pm.Port)) + "/tcp")
		if err != nil || s.HostNetwork {
			continue
		}
		if hc.PortBindings == nil {
			hc.PortBindings = network.PortMap{}
		}
		hc.PortBindings[port] = []network.PortBinding{{HostPort: strconv.Itoa(pm.Host)}}
	}
	if s.MemoryBytes > 0 {
		hc.Memory = int64(s.MemoryBytes)
		hc.MemorySwap = int64(s.MemoryBytes)
	}
	if r.ReadOnlyRootFS {
		hc.Tmpfs = map[string]string{"/tmp": "rw,nosuid,nodev,size=64m"}
	}
	if r.Init {
		t := true
		hc.Init = &t
	}
	if len(s.GPUs) > 0 {
		hc.DeviceRequests = []container.DeviceRequest{{
			Driver:       "nvidia",
			DeviceIDs:    append([]string(nil), s.GPUs...),
			Capabilities: [][]string{{"gpu"}},
		}}
	}
	return hc
}

func checkSpec(s runtime.Spec) error {
	switch {
	case s.Image == "":
		return errors.New("docker: Spec.Image is empty")
	case s.Dir == "":
		return errors.New("docker: Spec.Dir is empty")
	case s.WorkDir == "":
		return errors.New("docker: Spec.WorkDir is empty")
	case s.LogPath == "":
		return errors.New("docker: Spec.LogPath is empty")
	}
	return nil
}

// userFor is the user the workload runs as: the owner of the work directory, or the image's.
func (r *Runtime) userFor(workDir string) (string, error) {
	if r.ImageUser {
		return "", nil
	}
	fi, err := os.Stat(workDir)
	if err != nil {
		return "", fmt.Errorf("docker: work dir: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", nil
	}
	return fmt.Sprintf("%d:%d", st.Uid, st.Gid), nil
}

// ensureImage checks that the image is in the engine's store, pulling it when r.Pull is set.
func (r *Runtime) ensureImage(ctx context.Context, cli *client.Client, image string) error {
	_, err := cli.ImageInspect(ctx, image)
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker: inspect image %q: %w", image, err)
	}
	if !r.Pull {
		return fmt.Errorf("docker: image %q: %w (this runtime does not pull; load or build it on the provider first)", image, ErrImageNotFound)
	}
	resp, err := cli.ImagePull(ctx, image, client.ImagePullOptions{})
	if err != nil {
		return fmt.Errorf("docker: pull %q: %w", image, err)
	}
	defer resp.Close()
	if err := resp.Wait(ctx); err != nil {
		return fmt.Errorf("docker: pull %q: %w", image, err)
	}
	return nil
}

// ensureNetwork creates the lease's network, or reuses one of ours left by an interrupted Start.
func (r *Runtime) ensureNetwork(ctx context.Context, cli *client.Client, leaseID uint64) (string, error) {
	name := LeaseName(leaseID)
	if n, err := cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{}); err == nil {
		if n.Network.Name == name && n.Network.Labels[LabelLease] == strconv.FormatUint(leaseID, 10) {
			return n.Network.ID, nil
		}
		return "", fmt.Errorf("docker: a network named %s exists and is not this lease's", name)
	} else if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("docker: inspect network %s: %w", name, err)
	}
	res, err := cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver:   "bridge",
		Internal: r.InternalNetwork,
		Labels:   labels(leaseID),
	})
	if err != nil {
		return "", fmt.Errorf("docker: create network %s: %w", name, err)
	}
	return res.ID, nil
}

// removeStale removes a container of this lease left by an interrupted Start (the daemon had no state for it).
func removeStale(ctx context.Context, cli *client.Client, leaseID uint64) error {
	name := LeaseName(leaseID)
	c, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("docker: inspect container %s: %w", name, err)
	}
	if c.Container.Config == nil || c.Container.Config.Labels[LabelLease] != strconv.FormatUint(leaseID, 10) {
		return fmt.Errorf("docker: a container named %s exists and is not this lease's", name)
	}
	_, err = cli.ContainerRemove(ctx, c.Container.ID, client.ContainerRemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker: remove stale container %s: %w", name, err)
	}
	return nil
}

// Start creates the lease's network and container and starts it.
func (r *Runtime) Start(ctx context.Context, s runtime.Spec) (runtime.Workload, error) {
	if err := checkSpec(s); err != nil {
		return nil, err
	}
	cli, err := r.client()
	if err != nil {
		return nil, err
	}
	workDir, err := filepath.Abs(s.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("docker: work dir: %w", err)
	}
	user, err := r.userFor(workDir)
	if err != nil {
		return nil, err
	}
	if err := r.ensureImage(ctx, cli, s.Image); err != nil {
		return nil, err
	}
	// A fresh start: what an earlier attempt may have left in Dir is not this run's.
	for _, f := range []string{resultFile, stopFile, cursorFile} {
		if err := os.Remove(filepath.Join(s.Dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("docker: %w", err)
		}
	}
	if err := removeStale(ctx, cli, s.LeaseID); err != nil {
		return nil, err
	}
	st := state{Name: LeaseName(s.LeaseID)}
	if !s.HostNetwork {
		netID, err := r.ensureNetwork(ctx, cli, s.LeaseID)
		if err != nil {
			return nil, err
		}
		st.NetworkID, st.NetworkName = netID, LeaseName(s.LeaseID)
	}
	undo := func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if st.ContainerID != "" {
			_, _ = cli.ContainerRemove(cctx, st.ContainerID, client.ContainerRemoveOptions{Force: true})
		}
		_ = removeNetwork(cctx, cli, st.NetworkID, st.NetworkName)
	}
	if s.Timeout > 0 {
		st.Deadline = time.Now().Add(s.Timeout).UTC()
	}
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       st.Name,
		Config:     containerConfig(s, user, st.Deadline, r.stopSeconds()),
		HostConfig: r.hostConfig(s, workDir),
	})
	if err != nil {
		undo()
		return nil, fmt.Errorf("docker: create container for image %q: %w", s.Image, err)
	}
	st.ContainerID = created.ID
	// The log cursor starts at LogPath's current end: whatever is already there is not the container's.
	var off int64
	if fi, err := os.Stat(s.LogPath); err == nil {
		off = fi.Size()
	}
	st.Log = cursor{Offset: off}
	if err := writeCursor(filepath.Join(s.Dir, cursorFile), st.Log); err != nil {
		undo()
		return nil, err
	}
	if _, err := cli.ContainerStart(ctx, st.ContainerID, client.ContainerStartOptions{}); err != nil {
		undo()
		return nil, fmt.Errorf("docker: start container from image %q: %w", s.Image, err)
	}
	w, err := r.newWorkload(cli, s, st, "")
	if err != nil {
		// Started but not followed: better gone than left running unwatched.
		undo()
		return nil, err
	}
	return w, nil
}

// Reattach finds the workload of s from its persisted state (or, failing that, by its lease label) and follows
// it again: logs from where they were left, deadline, result.
func (r *Runtime) Reattach(ctx context.Context, s runtime.Spec, stateBytes []byte) (runtime.Workload, error) {
	if err := checkSpec(s); err != nil {
		return nil, err
	}
	cli, err := r.client()
	if err != nil {
		return nil, err
	}
	var st state
	if len(stateBytes) > 0 {
		if err := json.Unmarshal(stateBytes, &st); err != nil {
			return nil, fmt.Errorf("docker: state: %w", err)
		}
	}
	if st.Name == "" {
		st.Name = LeaseName(s.LeaseID)
		st.NetworkName = LeaseName(s.LeaseID)
	}
	// Ended while we were away, and already cleaned up: the saved result.
	if res, ok, err := readResult(filepath.Join(s.Dir, resultFile)); err != nil {
		return nil, err
	} else if ok {
		w := r.finishedWorkload(cli, s, st, res)
		_ = w.cleanup(ctx) // in case the daemon died between saving the result and cleaning up; Stop retries
		return w, nil
	}
	c, err := findContainer(ctx, cli, st.ContainerID, s.LeaseID)
	if err != nil {
		return nil, err
	}
	if c == nil {
		// Best effort: do not leak the network of a workload that is gone.
		_ = removeNetwork(ctx, cli, st.NetworkID, st.NetworkName)
		return nil, runtime.ErrGone
	}
	if c.State != nil && c.State.Status == container.StateCreated {
		// Created but never started: the daemon died inside Start. Nothing ran, nothing to report.
		_, _ = cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
		_ = removeNetwork(ctx, cli, st.NetworkID, st.NetworkName)
		return nil, runtime.ErrGone
	}
	st.ContainerID = c.ID
	if c.Config != nil && st.Deadline.IsZero() {
		if d := c.Config.Labels[LabelDeadline]; d != "" {
			if t, err := time.Parse(time.RFC3339Nano, d); err == nil {
				st.Deadline = t
			}
		}
	}
	if cur, ok := readCursor(filepath.Join(s.Dir, cursorFile)); ok {
		st.Log = cur
	}
	reason := ""
	if b, err := os.ReadFile(filepath.Join(s.Dir, stopFile)); err == nil {
		reason = string(b)
	}
	return r.newWorkload(cli, s, st, reason)
}

// findContainer inspects the container by id, or else looks for the lease's by label. nil when there is none.
func findContainer(ctx context.Context, cli *client.Client, id string, leaseID uint64) (*container.InspectResponse, error) {
	if id != "" {
		c, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err == nil {
			return &c.Container, nil
		}
		if !cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("docker: inspect container %s: %w", id, err)
		}
	}
	f := client.Filters{}
	f.Add("label", LabelManaged+"=true", LabelLease+"="+strconv.FormatUint(leaseID, 10))
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("docker: list containers: %w", err)
	}
	var newest *container.Summary
	for i := range list.Items {
		if newest == nil || list.Items[i].Created > newest.Created {
			newest = &list.Items[i]
		}
	}
	if newest == nil {
		return nil, nil
	}
	c, err := cli.ContainerInspect(ctx, newest.ID, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("docker: inspect container %s: %w", newest.ID, err)
	}
	return &c.Container, nil
}

func removeNetwork(ctx context.Context, cli *client.Client, id, name string) error {
	ref := id
	if ref == "" {
		ref = name
	}
	if ref == "" {
		return nil
	}
	_, err := cli.NetworkRemove(ctx, ref, client.NetworkRemoveOptions{})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker: remove network %s: %w", ref, err)
	}
	return nil
}
