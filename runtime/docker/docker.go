// Package docker runs a lease's workload as a container through the Docker Engine API (runtime.Runtime "docker").
//
// # The container
//
// One container per lease, named spare-lease-<id> and labelled spare.managed=true, spare.lease=<id> and
// spare.deadline=<RFC 3339 time or empty>.
//
//   - Image: Spec.Image must be allowed by Runtime.Images (CheckAllowlist: "*", a repository, repository:tag or
//     repository@digest; empty allows nothing), or Start fails matching ErrImageNotAllowed, before anything
//     else. It must be in the engine's store under that name (not merely an image ID prefix the engine would
//     also resolve), or else be pulled, anonymously, with progress logged and within Runtime.PullTimeout,
//     from a registry listed in Runtime.Registries; with no registries listed the runtime never pulls, and
//     with the image's registry not listed it refuses before any network call (ErrRegistryNotAllowed). The
//     container is created from the image ID that was checked.
//   - Command: a non-empty Spec.Command runs as Entrypoint ["/bin/sh", "-c"], Cmd [Spec.Command], replacing the
//     image's entrypoint and command; the image must then have /bin/sh. An empty Spec.Command runs the image's
//     own ENTRYPOINT and CMD.
//   - User: when the daemon runs as root, each lease runs as its own uid and gid, LeaseUID: UIDBase + LeaseID
//     mod UIDRange (2,000,000,000 + id mod 1,000,000 by default, as runtime/process), numerically, so with no
//     supplementary groups and never the image's USER or root. Before the start, Spec.WorkDir and everything
//     in it is given to that uid:gid (Lchown, walking without following symbolic links) and made mode 0700.
//     A workload therefore cannot leave a root-owned file in the work dir, and with no capabilities it cannot
//     chown one to root or keep a setuid bit across a chown; a setuid file of its own uid gives nothing inside
//     (no-new-privileges). Docker's bind mounts take no nosuid or nodev option: the work dir on the host is
//     mounted as its file system is. A daemon that is not root runs the workload as its own uid (never 0),
//     and cannot give leases uids of their own (Guarantees says so).
//   - Files: Spec.WorkDir is bind-mounted read-write at /work (private propagation), the working directory,
//     so that outputs written under /work land on the host. Each of Spec.ReadOnlyPaths (the job's Vault
//     inputs) is bound again at /work/PATH, read-only, and each directory above one onto itself, writable
//     (runtime.ReadOnlyMounts, which Start checks on disk first: no element a symbolic link, so the engine binds
//     what the work dir holds): the workload can neither write, chmod, truncate nor create anything there
//     (EROFS), nor remove or rename such a path or a directory above it, or rename something over it (a mount
//     point: EBUSY), nor hard-link it into the writable work dir (EXDEV). The root file system is read-only unless
//     Runtime.WritableRootFS; /tmp and /var/tmp are private tmpfs of Spec.DiskBytes each (DefaultTmpBytes when
//     zero), /run one of at most 16 MiB, /dev/shm is sized half of Spec.MemoryBytes (DefaultShmBytes without a
//     memory limit), all nosuid and nodev, in RAM, counted against the memory limit and gone with the
//     container. Nothing of the host is mounted. With WritableRootFS the container's writable layer is not
//     bounded by this runtime (the provider daemon's disk watch covers only the work dir).
//   - Environment: exactly Spec.Env; the engine adds only the image's own ENV defaults and PATH, HOSTNAME and
//     HOME when they are not set. Nothing of the provider's environment is passed.
//   - Isolation: not privileged, every capability dropped (CapDrop ALL, none added), no-new-privileges, the
//     engine's default seccomp profile (no seccomp option is ever passed, so never "unconfined"), a PID
//     namespace of its own (the workload sees only its processes), a private IPC namespace, a PID limit
//     (Runtime.PidsLimit), and a user-defined bridge network of its own, spare-lease-<id>, created with the
//     container and removed with it, so that leases cannot reach each other (they can reach the outside and
//     the host's addresses, unless Runtime.InternalNetwork is set). A Spec.HostNetwork workload (a cluster
//     member) gets the host's network namespace instead, as a process does: no network of its own and
//     nothing published; every other isolation above still holds. This is Kubernetes' "restricted" pod
//     security profile: non-root, no privilege escalation, all capabilities dropped, the runtime's default
//     seccomp profile, no host namespaces (but the network of cluster members) and no host paths.
//   - Resources: NanoCPUs = CPUMilli×10⁶, Memory = MemorySwap = MemoryBytes (no swap); zero means no limit.
//   - GPUs: a device request for exactly Spec.GPUs (driver "nvidia", their UUIDs, capability "gpu") when any
//     are assigned, none otherwise. This needs the NVIDIA container toolkit on the host.
//   - Logs: the engine's json-file driver (64 MiB × 4 files kept); the runtime copies them to Spec.LogPath.
//
// Guarantees (runtime.Prober) reports which of these the host's engine actually enforces (from docker info:
// cgroup version, memory, swap and pids limits, seccomp, userns-remap, rootless).
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
// Each entry's stream and the engine's time for it go to the log's index (runtime.IndexPath), written with
// the log by runtime.LogWriter: the index records of a batch before its bytes. A resumed copier starts a new
// record (it does not know where the line in progress began), so a resume may split a line in two.
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
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
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
	LabelScope    = "spare.scope" // Runtime.Scope, when set
)

// Defaults of the Runtime's options.
const (
	DefaultStopTimeout = 10 * time.Second
	DefaultPidsLimit   = 4096
	DefaultUIDBase     = 2_000_000_000
	DefaultUIDRange    = 1_000_000
	// DefaultTmpBytes sizes each of /tmp and /var/tmp when Spec.DiskBytes is zero.
	DefaultTmpBytes = 256 << 20
	// DefaultShmBytes sizes /dev/shm when Spec.MemoryBytes is zero (otherwise it is half of it).
	DefaultShmBytes = 64 << 20
	// runBytes caps /run.
	runBytes = 16 << 20
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
	// WritableRootFS leaves the container's root file system writable. Off by default: the root is read-only
	// (/work, /tmp, /var/tmp, /run and /dev/shm stay writable), so that a workload cannot grow the container's
	// writable layer, which no limit bounds, and cannot alter its image's files. Some images need it.
	WritableRootFS bool
	// Init runs the engine's init (docker-init) as PID 1 to forward signals and reap zombies.
	Init bool
	// InternalNetwork makes the lease's network internal: no access outside it.
	InternalNetwork bool
	// Scope keeps the containers and networks of several daemons on one engine apart (lease ids restart with
	// every chain: two dev networks, or tests running at once, both have a lease 1): they are named
	// spare-SCOPE-lease-ID and labelled spare.scope=SCOPE, and this runtime finds only its own. Empty:
	// spare-lease-ID, unlabelled.
	Scope string
	// UIDBase and UIDRange place the per-lease uid and gid a container runs as when the daemon runs as root:
	// UIDBase + LeaseID mod UIDRange (never 0). Zero: DefaultUIDBase and DefaultUIDRange, as runtime/process.
	// The range must not overlap real users, and be larger than the spread of lease ids live at once.
	UIDBase  uint32
	UIDRange uint32
	// Images is the allowlist of images this runtime may run (entries as CheckAllowlist describes; "*" allows
	// every image). Empty: none. The provider sets it from docker_images in provider.toml.
	Images []string
	// Registries are the registries a missing image may be pulled from (anonymously), e.g. "docker.io",
	// "ghcr.io". Empty: the runtime never pulls, and an image must be loaded or built on the provider first.
	Registries []string
	// PullTimeout bounds one pull. Zero: DefaultPullTimeout.
	PullTimeout time.Duration
	// Logger receives pull progress. Nil: slog.Default().
	Logger *slog.Logger

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

// leaseName is the name of a lease's container and network in this runtime's scope.
func (r *Runtime) leaseName(leaseID uint64) string {
	if r.Scope == "" {
		return LeaseName(leaseID)
	}
	return "spare-" + r.Scope + "-lease-" + strconv.FormatUint(leaseID, 10)
}

// scopedLabels are labels(leaseID) and the scope's label.
func (r *Runtime) scopedLabels(leaseID uint64) map[string]string {
	l := labels(leaseID)
	if r.Scope != "" {
		l[LabelScope] = r.Scope
	}
	return l
}

// containerConfig is the container configuration for s: image (imageID, the one Start checked), command,
// environment, working directory, labels. user is the --user value, "UID:GID".
func containerConfig(s runtime.Spec, imageID, user string, deadline time.Time, stopSeconds int) *container.Config {
	l := labels(s.LeaseID)
	l[LabelDeadline] = ""
	if !deadline.IsZero() {
		l[LabelDeadline] = deadline.UTC().Format(time.RFC3339Nano)
	}
	env := make([]string, len(s.Env))
	copy(env, s.Env)
	cfg := &container.Config{
		Image:       imageID,
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
	tmp := tmpBytes(s)
	hc := &container.HostConfig{
		Mounts: []mount.Mount{{
			Type:   mount.TypeBind,
			Source: workDir,
			Target: "/work",
			// Not propagated either way: nothing the host mounts later under the work dir shows up inside.
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate},
		}},
		NetworkMode:   container.NetworkMode(r.leaseName(s.LeaseID)),
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		Privileged:    false,
		CapDrop:       []string{"ALL"},
		// No seccomp option: the engine's default profile applies (never "seccomp=unconfined"); Guarantees
		// reports whether the engine has seccomp.
		SecurityOpt: []string{"no-new-privileges:true"},
		IpcMode:     container.IPCModePrivate,
		PidMode:     "", // a PID namespace of its own (the engine's default, kept explicitly)
		UTSMode:     "",
		UsernsMode:  "",
		// The root is read-only unless WritableRootFS; the places programs expect to write are private tmpfs:
		// sized, in RAM (they count against the memory limit), gone with the container.
		ReadonlyRootfs: !r.WritableRootFS,
		Tmpfs: map[string]string{
			"/tmp":     tmpfsOpts(tmp),
			"/var/tmp": tmpfsOpts(tmp),
			"/run":     tmpfsOpts(min(tmp, runBytes)),
		},
		ShmSize: shmBytes(s),
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
		hc.MemorySwap = int64(s.MemoryBytes) // memory + swap = memory: no swap
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

// bindMounts are the mounts that make Spec.ReadOnlyPaths read-only (runtime.ReadOnlyMounts, checked on disk
// beneath workDir): each bound at /work/PATH from workDir/PATH, read-only for a read-only path, writable for a
// directory above one (so that it cannot be renamed away with the path in it), with /work's propagation. They
// follow /work's mount; the engine mounts a directory before what it holds.
func bindMounts(workDir string, binds []runtime.BindMount) []mount.Mount {
	var out []mount.Mount
	for _, b := range binds {
		out = append(out, mount.Mount{
			Type:        mount.TypeBind,
			Source:      filepath.Join(workDir, filepath.FromSlash(b.Path)),
			Target:      "/work/" + b.Path,
			ReadOnly:    b.ReadOnly,
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate},
		})
	}
	return out
}

// tmpBytes sizes each of /tmp and /var/tmp: the lease's disk, or DefaultTmpBytes.
func tmpBytes(s runtime.Spec) uint64 {
	if s.DiskBytes > 0 {
		return s.DiskBytes
	}
	return DefaultTmpBytes
}

// shmBytes sizes /dev/shm: half the lease's memory (it is memory, and counts against the limit), or
// DefaultShmBytes without a memory limit.
func shmBytes(s runtime.Spec) int64 {
	if s.MemoryBytes > 0 {
		return int64(max(s.MemoryBytes/2, 1<<20))
	}
	return DefaultShmBytes
}

func tmpfsOpts(size uint64) string {
	return "rw,exec,nosuid,nodev,mode=1777,size=" + strconv.FormatUint(max(size, 1<<20), 10)
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

// LeaseUID is the uid (and gid) of a lease's container when the daemon runs as root: base + leaseID mod rng
// (DefaultUIDBase and DefaultUIDRange for zeros).
func LeaseUID(base, rng uint32, leaseID uint64) (int, error) {
	if base == 0 {
		base = DefaultUIDBase
	}
	if rng == 0 {
		rng = DefaultUIDRange
	}
	if uint64(base)+uint64(rng) > 1<<32-2 { // (uid_t)-1 means "no change" to chown
		return 0, fmt.Errorf("docker: uid range %d+%d overflows: lower UIDBase or UIDRange", base, rng)
	}
	return int(uint64(base) + leaseID%uint64(rng)), nil
}

// identity is the uid and gid the workload of s runs as: the lease's own (see LeaseUID) when the daemon runs as
// root, which then owns Spec.WorkDir and everything in it; otherwise the daemon's, never 0.
func (r *Runtime) identity(s runtime.Spec) (uid, gid int, err error) {
	if os.Geteuid() != 0 {
		uid, gid = os.Geteuid(), os.Getegid()
	} else if uid, err = LeaseUID(r.UIDBase, r.UIDRange, s.LeaseID); err != nil {
		return 0, 0, err
	} else {
		gid = uid
	}
	if uid == 0 || gid == 0 {
		return 0, 0, fmt.Errorf("docker: lease %d would run as uid %d gid %d: root is never used (check UIDBase)", s.LeaseID, uid, gid)
	}
	return uid, gid, nil
}

// chownWorkDir gives workDir and everything under it to uid:gid, never following a symbolic link (each is
// changed itself), and makes workDir 0700. workDir itself must be a directory, not a link to one.
func chownWorkDir(workDir string, uid, gid int) error {
	fi, err := os.Lstat(workDir)
	if err != nil {
		return fmt.Errorf("docker: work dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("docker: work dir %s is not a directory (%s)", workDir, fi.Mode().Type())
	}
	err = filepath.WalkDir(workDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("docker: give the work dir to the lease's uid %d: %w", uid, err)
	}
	if err := os.Chmod(workDir, 0o700); err != nil {
		return fmt.Errorf("docker: work dir: %w", err)
	}
	return nil
}

// ensureNetwork creates the lease's network, or reuses one of ours left by an interrupted Start.
func (r *Runtime) ensureNetwork(ctx context.Context, cli *client.Client, leaseID uint64) (string, error) {
	name := r.leaseName(leaseID)
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
		Labels:   r.scopedLabels(leaseID),
	})
	if err != nil {
		return "", fmt.Errorf("docker: create network %s: %w", name, err)
	}
	return res.ID, nil
}

// removeStale removes a container of this lease left by an interrupted Start (the daemon had no state for it).
func (r *Runtime) removeStale(ctx context.Context, cli *client.Client, leaseID uint64) error {
	name := r.leaseName(leaseID)
	c, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("docker: inspect container %s: %w", name, err)
	}
	if c.Container.Config == nil || c.Container.Config.Labels[LabelLease] != strconv.FormatUint(leaseID, 10) ||
		c.Container.Config.Labels[LabelScope] != r.Scope {
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
	uid, gid, err := r.identity(s)
	if err != nil {
		return nil, err
	}
	// The engine binds what a host path resolves to: every read-only path is checked to be what the work dir
	// holds, no element of it a link.
	binds, err := runtime.ReadOnlyMounts(workDir, s.ReadOnlyPaths)
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	imageID, err := r.resolveImage(ctx, cli, s.Image)
	if err != nil {
		return nil, err
	}
	// A fresh start: what an earlier attempt may have left in Dir is not this run's.
	for _, f := range []string{resultFile, stopFile, cursorFile} {
		if err := os.Remove(filepath.Join(s.Dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("docker: %w", err)
		}
	}
	if err := r.removeStale(ctx, cli, s.LeaseID); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		if err := chownWorkDir(workDir, uid, gid); err != nil {
			return nil, err
		}
	}
	st := state{Name: r.leaseName(s.LeaseID)}
	if !s.HostNetwork {
		netID, err := r.ensureNetwork(ctx, cli, s.LeaseID)
		if err != nil {
			return nil, err
		}
		st.NetworkID, st.NetworkName = netID, r.leaseName(s.LeaseID)
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
	cfg := containerConfig(s, imageID, fmt.Sprintf("%d:%d", uid, gid), st.Deadline, r.stopSeconds())
	if r.Scope != "" {
		cfg.Labels[LabelScope] = r.Scope
	}
	hc := r.hostConfig(s, workDir)
	hc.Mounts = append(hc.Mounts, bindMounts(workDir, binds)...)
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       st.Name,
		Config:     cfg,
		HostConfig: hc,
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
		st.Name = r.leaseName(s.LeaseID)
		st.NetworkName = r.leaseName(s.LeaseID)
	}
	// Ended while we were away, and already cleaned up: the saved result.
	if res, ok, err := readResult(filepath.Join(s.Dir, resultFile)); err != nil {
		return nil, err
	} else if ok {
		w := r.finishedWorkload(cli, s, st, res)
		_ = w.cleanup(ctx) // in case the daemon died between saving the result and cleaning up; Stop retries
		return w, nil
	}
	c, err := findContainer(ctx, cli, st.ContainerID, s.LeaseID, r.Scope)
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
func findContainer(ctx context.Context, cli *client.Client, id string, leaseID uint64, scope string) (*container.InspectResponse, error) {
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
		if list.Items[i].Labels[LabelScope] != scope {
			continue // another daemon's lease of the same number
		}
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
