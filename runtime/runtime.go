// Package runtime is the small interface between the provider daemon and the things that run a lease's
// workload: runtime/process (a process group in a per-lease directory) and runtime/docker (a container through
// the Docker Engine API). A runtime starts a workload from a Spec, lets the daemon wait for it or stop it, and
// can find it again after the daemon restarts, from the opaque state the daemon persisted.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Spec is everything a runtime needs to run one lease's workload.
type Spec struct {
	LeaseID uint64
	// Dir is the lease's private directory, created by the daemon. The runtime may keep its own files in it
	// (pid files, cgroup names...). WorkDir and LogPath are inside it.
	Dir string
	// WorkDir holds the manifest's files; it is the workload's working directory (mounted at /work in a
	// container) and where its outputs are collected from after it exits.
	WorkDir string
	// LogPath receives the workload's combined stdout and stderr, appended as it is produced. It is a plain file
	// so that logs survive a daemon restart and can be followed by readers. The runtime writes it, not the
	// workload, with its index beside it: IndexPath(LogPath), when and from which stream each part was read
	// (logindex.go).
	LogPath string
	// Command is run by /bin/sh -c. It may be empty for a container image with an entrypoint.
	Command string
	// Image is the container image (docker runtime only).
	Image string
	// Env is the workload's environment as KEY=VALUE, GPU isolation variables included.
	Env []string
	// GPUs are the UUIDs of the GPUs assigned to this lease: the only ones the workload may see.
	GPUs []string
	// Limits. Zero means no limit for that resource.
	CPUMilli    uint64
	MemoryBytes uint64
	// DiskBytes is the lease's disk: it sizes the private /tmp (and bounds any one file the workload writes).
	// The provider daemon watches the total under WorkDir and ends a lease that exceeds it.
	DiskBytes uint64
	// HidePaths are host paths the workload must not see at all even where file permissions would let it (the
	// provider's home: keys, config, state). A runtime with a mount namespace covers them with an empty
	// read-only directory.
	HidePaths []string
	// ReadOnlyPaths are files and directories of WorkDir (relative to it, clean, slash-separated: see
	// CheckReadOnlyPath) that the workload sees read-only and cannot remove, rename or replace, nor anything in
	// them: the job's Vault inputs, fetched and checked by the daemon before the start. They must exist, and no
	// element of them be a symbolic link. A runtime with a mount namespace binds each onto itself read-only
	// (readonly.go); one without cannot enforce them, and says so.
	ReadOnlyPaths []string
	// Timeout is the wall-clock limit: the lease's duration.
	Timeout time.Duration
	// Ports are the service ports the job declared and the host ports they are reachable at. A container's
	// port is published on its host port; a process (host network) is told its host ports in Env and binds
	// them itself.
	Ports []PortMap
	// BindRanges are host port ranges (the provider's service and cluster ports) in which a workload on the
	// host's network may bind only BindAllowed (its own service ports, its rendezvous port). The process
	// runtime enforces them with a cgroup BPF bind filter where the host has cgroup v2; a container with a
	// network of its own binds in its own namespace.
	BindRanges  [][2]int
	BindAllowed []int
	// HostNetwork puts a container in the host's network namespace, as a process is (cluster members:
	// torch.distributed's collectives connect to every member's host on ports they pick themselves). Its ports
	// are then not published: it binds its host ports itself. The process runtime always runs this way.
	HostNetwork bool
}

// PortMap is a declared service port and the host port that serves it.
type PortMap struct {
	Port uint16 `json:"port"`
	Host int    `json:"host"`
}

// Result is how a workload ended.
type Result struct {
	ExitCode  int       `json:"exit_code"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	OOMKilled bool      `json:"oom_killed,omitempty"` // killed for exceeding its memory limit
	TimedOut  bool      `json:"timed_out,omitempty"`  // killed at its wall-clock limit
	Stopped   bool      `json:"stopped,omitempty"`    // stopped on request (tenant, provider, lease closed)
	DiskLimit bool      `json:"disk_limit,omitempty"` // stopped by its provider for using more disk than the lease has
	Reason    string    `json:"reason,omitempty"`     // human-readable summary of the above
}

// DurationText writes a duration as people set it: "1h", "90m", "30s", "1.5s" (the end reason of a workload
// stopped at its lease's duration reads "duration reached (1h)").
func DurationText(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.Round(time.Millisecond).String()
}

// Runtime starts workloads.
type Runtime interface {
	// Name is "process" or "docker".
	Name() string
	// Start launches the workload described by s and returns once it runs (or failed to start).
	Start(ctx context.Context, s Spec) (Workload, error)
	// Reattach finds a workload that an earlier daemon process started, from the state it persisted. It returns
	// ErrGone when the workload no longer exists (it ended while the daemon was down and left no result).
	Reattach(ctx context.Context, s Spec, state []byte) (Workload, error)
}

// Workload is one running (or finished) workload.
type Workload interface {
	// State is opaque bytes the daemon persists so that Reattach can find the workload again.
	State() []byte
	// Wait blocks until the workload ends and returns how it ended. It may be called more than once.
	Wait(ctx context.Context) (Result, error)
	// Stop asks the workload to end (SIGTERM, then SIGKILL after a grace period); Wait then reports Stopped.
	Stop(ctx context.Context) error
}

// Owner is implemented by workloads that run in the host's network namespace as a user of their own: uid is
// the owner of every socket the workload opens, so the daemon can tell which lease listens on a port.
type Owner interface {
	UID() (uid int, own bool)
}

// ErrGone is returned by Reattach when the workload cannot be found.
var ErrGone = errors.New("runtime: workload gone")

// Isolation guarantees a runtime may or may not be able to give on a host. The provider daemon refuses to offer
// a runtime that lacks a required one (Required) unless the operator accepted that risk in provider.toml, and
// `spare provider doctor` reports them all.
const (
	GuaranteeMemory     = "memory"        // one memory limit for all of a lease's processes together (a cgroup)
	GuaranteePids       = "pids"          // one process-count limit for the lease (a cgroup, or a per-lease uid's RLIMIT_NPROC)
	GuaranteeCPU        = "cpu"           // the lease's CPU share is enforced (a cgroup cpu controller)
	GuaranteeUser       = "user"          // the workload runs as a uid of its own, never the daemon's or another lease's
	GuaranteePrivateTmp = "private_tmp"   // private /tmp, /var/tmp and /dev/shm, sized, gone when the lease ends
	GuaranteePIDNS      = "pid_namespace" // the workload sees only its own processes; all die with it
	GuaranteeNoNewPrivs = "no_new_privs"  // setuid programs and file capabilities give nothing
	GuaranteeSeccomp    = "seccomp"       // a system-call filter close to Docker's default profile
	GuaranteeFilesystem = "filesystem"    // the host's files are read-only and the provider's own are hidden
)

// Guarantee is one isolation property on this host: whether it holds, by what mechanism, or what is missing.
type Guarantee struct {
	Name      string `json:"name"`
	OK        bool   `json:"ok"`
	Mechanism string `json:"mechanism,omitempty"` // how it is enforced, when OK ("cgroup v1 memory.limit_in_bytes")
	Missing   string `json:"missing,omitempty"`   // when not OK: what the host lacks and how to provide it
	Required  bool   `json:"required"`            // without it the daemon does not offer this runtime (unless accepted)
}

// Prober is implemented by runtimes that can report which guarantees they give on this host.
type Prober interface {
	Guarantees(ctx context.Context) []Guarantee
}
