// Package runtime is the small interface between the provider daemon and the things that run a lease's
// workload: runtime/process (a process group in a per-lease directory) and runtime/docker (a container through
// the Docker Engine API). A runtime starts a workload from a Spec, lets the daemon wait for it or stop it, and
// can find it again after the daemon restarts, from the opaque state the daemon persisted.
package runtime

import (
	"context"
	"errors"
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
	// so that logs survive a daemon restart and can be followed by readers.
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
	// Timeout is the wall-clock limit: the lease's duration.
	Timeout time.Duration
	// Ports are the service ports the job declared and the host ports they are reachable at. A container's
	// port is published on its host port; a process (host network) is told its host ports in Env and binds
	// them itself.
	Ports []PortMap
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
	Reason    string    `json:"reason,omitempty"`     // human-readable summary of the above
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

// ErrGone is returned by Reattach when the workload cannot be found.
var ErrGone = errors.New("runtime: workload gone")
