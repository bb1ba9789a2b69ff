package inventory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/sparenet/spare/ledger/tx"
)

// Options say where Detect looks. The zero value detects the machine it runs on, without disk.
type Options struct {
	// NvidiaSMI is the nvidia-smi program: a path, or a name looked up in PATH. Default "nvidia-smi".
	NvidiaSMI string
	// NvidiaSMITimeout bounds the nvidia-smi run. Default DefaultNvidiaSMITimeout.
	NvidiaSMITimeout time.Duration
	// DataDir is the directory lease data is kept in; its filesystem is the disk offered. "" skips the disk.
	DataDir string
	// ProcRoot is where proc is mounted. Default "/proc".
	ProcRoot string
	// CgroupRoot is where the cgroup filesystem is mounted. Default "/sys/fs/cgroup".
	CgroupRoot string
	// DockerHost is the Docker engine to probe. Default: $DOCKER_HOST, else DefaultDockerHost.
	DockerHost string
	// DockerTimeout bounds the Docker probe. Default DefaultDockerTimeout.
	DockerTimeout time.Duration
}

// Inventory is what Detect found on the machine.
type Inventory struct {
	// GPUs are the usable NVIDIA GPUs, in nvidia-smi's order. A GPU whose UUID or memory size nvidia-smi could not
	// report is left out, with a warning: it can be neither isolated nor declared.
	GPUs []GPU `json:"gpus"`
	// CPUCores is the number of logical CPUs this process may use: online CPUs, lowered to its CPU affinity
	// and cgroup CPU quota.
	CPUCores int `json:"cpu_cores"`
	// MemoryMiB is MemTotal, lowered to the cgroup memory limit.
	MemoryMiB uint64 `json:"memory_mib"`
	// DiskMiB and DiskFreeMiB are the size of the data directory's filesystem and the space still available
	// on it to an unprivileged process; 0 when no data directory was given.
	DiskMiB     uint64 `json:"disk_mib"`
	DiskFreeMiB uint64 `json:"disk_free_mib"`
	// Docker says whether a Docker engine answered at DockerHost; DockerVersion is its version.
	Docker        bool   `json:"docker"`
	DockerHost    string `json:"docker_host"`
	DockerVersion string `json:"docker_version,omitempty"`
	// Warnings explain what was not found or was lowered, for the operator: no nvidia-smi, no Docker, a cgroup
	// limit...
	Warnings []string `json:"warnings,omitempty"`
}

// Detect inspects the machine. It always returns an Inventory, holding everything it could find. The error is
// non-nil when something a provider must declare could not be found: the GPUs, when nvidia-smi exists but
// fails (errors.Is(err, ErrNvidiaSMI); the Inventory then lists no GPUs, which is not the same as having
// none), the memory, or the data directory's disk. A missing nvidia-smi (no NVIDIA driver: no GPUs) or an
// unreachable Docker engine is a warning, not an error.
func Detect(ctx context.Context, opts Options) (*Inventory, error) {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.CgroupRoot == "" {
		opts.CgroupRoot = "/sys/fs/cgroup"
	}
	inv := &Inventory{}
	var errs []error

	gpus, err := QueryGPUs(ctx, opts.NvidiaSMI, opts.NvidiaSMITimeout)
	switch {
	case errors.Is(err, ErrNoNvidiaSMI):
		inv.warn("GPU: no NVIDIA GPUs offered: %v", err)
	case err != nil:
		inv.warn("GPU: no GPUs offered until this is fixed: %v", err)
		errs = append(errs, fmt.Errorf("GPU: %w", err))
	case len(gpus) == 0:
		inv.warn("GPU: nvidia-smi lists no GPUs")
	}
	for _, g := range gpus {
		switch {
		case g.UUID == "":
			inv.warn("GPU %d (%s): left out: nvidia-smi reports no UUID, so it cannot be isolated", g.Index, g.PCIBusID)
		case g.MemoryMiB == 0:
			inv.warn("GPU %d (%s): left out: nvidia-smi reports no memory size (a unified-memory part?)", g.Index, g.UUID)
		default:
			if g.Name == "" {
				inv.warn("GPU %d (%s): nvidia-smi reports no name; declared as model %q", g.Index, g.UUID, g.Model)
			}
			inv.GPUs = append(inv.GPUs, g)
		}
	}

	lim := readCgroupLimits(opts.ProcRoot, opts.CgroupRoot)
	var warnings []string
	inv.CPUCores, warnings = detectCPU(opts.ProcRoot, lim)
	inv.Warnings = append(inv.Warnings, warnings...)
	inv.MemoryMiB, warnings, err = detectMemory(opts.ProcRoot, lim)
	inv.Warnings = append(inv.Warnings, warnings...)
	if err != nil {
		errs = append(errs, err)
	}

	if opts.DataDir == "" {
		inv.warn("disk: no data directory given; no disk offered")
	} else if inv.DiskMiB, inv.DiskFreeMiB, err = diskSpace(opts.DataDir); err != nil {
		errs = append(errs, err)
	}

	inv.probeDocker(ctx, opts)
	return inv, errors.Join(errs...)
}

// probeDocker fills in the Docker fields.
func (inv *Inventory) probeDocker(ctx context.Context, opts Options) {
	inv.DockerHost = opts.DockerHost
	if inv.DockerHost == "" {
		inv.DockerHost = os.Getenv("DOCKER_HOST")
		if inv.DockerHost != "" && os.Getenv("DOCKER_TLS_VERIFY") != "" {
			inv.warn("docker: not probed: %s: %v (TLS)", inv.DockerHost, ErrDockerHostUnsupported)
			return
		}
	}
	if inv.DockerHost == "" {
		inv.DockerHost = DefaultDockerHost
	}
	v, err := PingDocker(ctx, inv.DockerHost, opts.DockerTimeout)
	if err != nil {
		inv.warn("docker: not available: %v", err)
		return
	}
	inv.Docker, inv.DockerVersion = true, v
}

func (inv *Inventory) warn(format string, args ...any) {
	inv.Warnings = append(inv.Warnings, fmt.Sprintf(format, args...))
}

// Hardware is the capacity the inventory lets a provider declare: identical GPUs (same Model and MemoryMiB)
// grouped, the groups sorted by model then memory; CPUMilli = CPUCores × 1000; MemoryMiB as detected; DiskMiB
// the data directory's free space (what leases can still be given, not the filesystem's size). GPUs without a
// memory size are left out, as Detect does.
func (inv *Inventory) Hardware() tx.Hardware {
	h := tx.Hardware{
		CPUMilli:  uint64(max(inv.CPUCores, 0)) * 1000,
		MemoryMiB: inv.MemoryMiB,
		DiskMiB:   inv.DiskFreeMiB,
	}
	for _, g := range inv.GPUs {
		if g.MemoryMiB == 0 {
			continue
		}
		i := slices.IndexFunc(h.GPUs, func(x tx.GPUGroup) bool { return x.Model == g.Model && x.VRAMMiB == g.MemoryMiB })
		if i < 0 {
			h.GPUs = append(h.GPUs, tx.GPUGroup{Model: g.Model, VRAMMiB: g.MemoryMiB})
			i = len(h.GPUs) - 1
		}
		h.GPUs[i].Count++
	}
	slices.SortFunc(h.GPUs, func(a, b tx.GPUGroup) int {
		return cmp.Or(cmp.Compare(a.Model, b.Model), cmp.Compare(a.VRAMMiB, b.VRAMMiB))
	})
	return h
}
