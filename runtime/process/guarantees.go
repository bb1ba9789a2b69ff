package process

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sparenet/spare/runtime"
)

// sandboxTimeout bounds the sandbox init's set-up, from the start of the child to its exec.
const sandboxTimeout = 10 * time.Second

var _ runtime.Prober = (*Runtime)(nil)

// sandbox reports whether workloads run in the namespace sandbox on this host, and why not. The answer comes
// from a real sandbox, started once (a probe that runs the whole set-up as a throw-away uid and checks it from
// the inside), so that the guarantees reported are those a workload gets.
func (r *Runtime) sandbox() (bool, string) {
	r.init()
	r.sbOnce.Do(func() {
		switch {
		case !r.root:
			r.sbWhy = "the daemon does not run as root: namespaces, mounts and a uid change need it"
		case r.cfg.Sandbox == "off":
			r.sbWhy = "disabled by configuration (Config.Sandbox = off)"
		default:
			uid := int(r.uidBase() + r.uidRange() - 1)
			if err := probeSandbox(uid); err != nil {
				r.sbWhy = err.Error()
			} else {
				r.sbOK = true
			}
		}
	})
	return r.sbOK, r.sbWhy
}

// probeSandbox starts a sandbox as uid with a throw-away work dir and lets it check itself.
func probeSandbox(uid int) error {
	dir, err := os.MkdirTemp("", "spare-sandbox-probe-")
	if err != nil {
		return fmt.Errorf("sandbox probe: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chown(dir, uid, uid); err != nil {
		return fmt.Errorf("sandbox probe: %w", err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("sandbox probe: %w", err)
	}
	defer null.Close()
	sbc, err := spawnSandbox()
	if err != nil {
		return err
	}
	defer sbc.close()
	reply, err := sbc.run(sandboxConfig{
		UID: uid, GID: uid, WorkDir: dir, DiskBytes: 1 << 20, MemoryBytes: 1 << 20,
		Rlimits: []rlimit{{unix.RLIMIT_CORE, "core", 0}}, Args: []string{shell}, Probe: true,
	}, [4]*os.File{null, null, null, null}, sandboxTimeout)
	if err != nil {
		_ = sbc.cmd.Process.Kill()
	}
	werr := sbc.cmd.Wait()
	switch {
	case err != nil:
		return err
	case reply != "ok":
		if reply == "" {
			reply = fmt.Sprintf("no answer (%v)", werr)
		}
		return fmt.Errorf("sandbox probe: %s", reply)
	case werr != nil:
		return fmt.Errorf("sandbox probe: %v", werr)
	}
	return nil
}

// probeCgroupV1 creates and removes a throw-away cgroup with a limit in the controller's v1 parent.
func (r *Runtime) probeCgroupV1(c, file, v string) error {
	dir := filepath.Join(r.v1.parent[c], fmt.Sprintf("probe-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	defer unix.Rmdir(dir)
	return writeFile(filepath.Join(dir, file), v)
}

// probeCgroupV2 does the same in the v2 parent.
func (r *Runtime) probeCgroupV2(file, v string) error {
	dir := filepath.Join(r.cg.path, fmt.Sprintf("probe-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	defer unix.Rmdir(dir)
	return writeFile(filepath.Join(dir, file), v)
}

// cgroupGuarantee reports one controller.
func (r *Runtime) cgroupGuarantee(name, c string, required bool) runtime.Guarantee {
	g := runtime.Guarantee{Name: name, Required: required}
	files := map[string][2]string{
		"memory": {"memory.max", "memory.limit_in_bytes"},
		"pids":   {"pids.max", "pids.max"},
		"cpu":    {"cpu.max", "cpu.cfs_quota_us"},
	}[c]
	vals := map[string][2]string{
		"memory": {"67108864", "67108864"},
		"pids":   {"64", "64"},
		"cpu":    {"50000 100000", "50000"},
	}[c]
	switch r.ctrlVia(c) {
	case "v2":
		if err := r.probeCgroupV2(files[0], vals[0]); err != nil {
			g.Missing = fmt.Sprintf("cgroup v2 %s under %s does not work: %v", files[0], r.cg.path, err)
			return g
		}
		g.OK, g.Mechanism = true, fmt.Sprintf("cgroup v2 %s (%s)", files[0], r.cg.path)
		if c == "memory" {
			g.Mechanism += ", memory.swap.max 0, memory.oom.group 1"
		}
		return g
	case "v1":
		if err := r.probeCgroupV1(c, files[1], vals[1]); err != nil {
			g.Missing = fmt.Sprintf("cgroup v1 %s under %s does not work: %v", files[1], r.v1.parent[c], err)
			return g
		}
		g.OK, g.Mechanism = true, fmt.Sprintf("cgroup v1 %s (%s)", files[1], r.v1.parent[c])
		if c == "memory" {
			if r.v1.memsw {
				g.Mechanism += ", memory.memsw.limit_in_bytes (no swap beyond it)"
			} else {
				g.Mechanism += "; swap is not limited (no swap accounting: boot with swapaccount=1)"
			}
		}
		if c == "cpu" {
			g.Mechanism += ", cpu.cfs_period_us"
		}
		return g
	}
	var why []string
	if r.cgWhy != "" {
		why = append(why, r.cgWhy)
	} else if r.cg != nil {
		why = append(why, "the cgroup v2 parent "+r.cg.path+" lacks the "+c+" controller")
	}
	if r.v1Why != "" {
		why = append(why, r.v1Why)
	}
	g.Missing = fmt.Sprintf("no cgroup %s controller (%s): mount cgroup v2 with it delegated, or cgroup v1's, writable by the daemon", c, strings.Join(why, "; "))
	return g
}

// Guarantees reports the isolation this runtime gives workloads on this host (runtime.Prober). The cgroup
// controllers are probed with a throw-away cgroup, the sandbox by starting one (once per Runtime).
func (r *Runtime) Guarantees(ctx context.Context) []runtime.Guarantee {
	r.init()
	var gs []runtime.Guarantee
	gs = append(gs, r.cgroupGuarantee(runtime.GuaranteeMemory, "memory", true))
	pids := r.cgroupGuarantee(runtime.GuaranteePids, "pids", true)
	if !pids.OK && r.root {
		pids = runtime.Guarantee{Name: runtime.GuaranteePids, Required: true, OK: true,
			Mechanism: fmt.Sprintf("RLIMIT_NPROC %d of the per-lease uid (%s)", r.maxProcs(), pids.Missing)}
	}
	gs = append(gs, pids)
	gs = append(gs, r.cgroupGuarantee(runtime.GuaranteeCPU, "cpu", false))
	user := runtime.Guarantee{Name: runtime.GuaranteeUser, Required: true}
	if r.root {
		user.OK, user.Mechanism = true, fmt.Sprintf("per-lease uid and gid %d + lease id mod %d, no supplementary groups", r.uidBase(), r.uidRange())
	} else {
		user.Missing = fmt.Sprintf("the daemon runs as uid %d, not root: workloads run as the daemon's own user and can read its files and signal its processes", os.Getuid())
	}
	gs = append(gs, user)
	ok, why := r.sandbox()
	if err := ctx.Err(); err != nil && !ok {
		why = err.Error()
	}
	sb := func(name, mech string) runtime.Guarantee {
		g := runtime.Guarantee{Name: name, Required: true, OK: ok}
		if ok {
			g.Mechanism = mech
		} else {
			g.Missing = "no sandbox: " + why
		}
		return g
	}
	gs = append(gs,
		sb(runtime.GuaranteePrivateTmp, "tmpfs on /tmp and /var/tmp (size Spec.DiskBytes) and /dev/shm (size Spec.MemoryBytes) in the lease's mount namespace, charged to its memory cgroup, gone with it; IPC namespace"),
		sb(runtime.GuaranteePIDNS, "PID namespace per lease with its own /proc; the wrapper is its PID 1, and when it exits the kernel kills every process left"),
		sb(runtime.GuaranteeNoNewPrivs, "prctl(PR_SET_NO_NEW_PRIVS) before exec, and every mount nosuid"),
		sb(runtime.GuaranteeSeccomp, fmt.Sprintf("seccomp BPF filter (%d rules): namespaces, mount APIs, keyrings, bpf, perf, userfaultfd, io_uring, modules, kexec, clock and system administration calls refused; clone3 ENOSYS; foreign architectures killed", len(deniedCommon)+len(deniedArch)+3)),
		sb(runtime.GuaranteeFilesystem, "mount namespace: the host's tree read-only, nosuid, nodev (mount_setattr AT_RECURSIVE), only the work dir and private tmpfs writable; Spec.ReadOnlyPaths (Vault inputs) bound read-only onto themselves (open_tree, mount_setattr, move_mount; no link followed), the directories above them pinned as mount points; Spec.HidePaths under empty read-only tmpfs; minimal /dev with only the lease's GPUs"+gpuNote()),
	)
	return gs
}

// gpuNote says how GPU device nodes are chosen on this host.
func gpuNote() string {
	if files, _ := filepath.Glob("/proc/driver/nvidia/gpus/*/information"); len(files) > 0 {
		return " (by UUID from /proc/driver/nvidia/gpus)"
	}
	return " (no NVIDIA driver here: no GPU device is exposed)"
}

// gpuDevices returns the device nodes of the lease's GPUs (by UUID, mapped to /dev/nvidiaN through
// /proc/driver/nvidia/gpus/*/information) plus the driver's shared nodes, and the UUIDs it could not map.
func gpuDevices(uuids []string) ([]devNode, []string) {
	return gpuDevicesIn("/proc/driver/nvidia", "/dev", uuids)
}

// gpuDevicesIn is gpuDevices with the driver's /proc directory and /dev elsewhere (for tests).
func gpuDevicesIn(procDir, devDir string, uuids []string) ([]devNode, []string) {
	if len(uuids) == 0 {
		return nil, nil
	}
	minors := map[string]uint64{}
	files, _ := filepath.Glob(filepath.Join(procDir, "gpus", "*", "information"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var uuid, minor string
		for line := range strings.SplitSeq(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "GPU UUID":
				uuid = strings.ToLower(strings.TrimSpace(v))
			case "Device Minor":
				minor = strings.TrimSpace(v)
			}
		}
		if n, err := strconv.ParseUint(minor, 10, 32); err == nil && uuid != "" {
			minors[uuid] = n
		}
	}
	var nodes []devNode
	add := func(name string) bool {
		fi, err := os.Stat(filepath.Join(devDir, name))
		if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			return false
		}
		rdev := uint64(fi.Sys().(*syscall.Stat_t).Rdev)
		nodes = append(nodes, devNode{Path: name, Major: unix.Major(rdev), Minor: unix.Minor(rdev), Mode: 0o666})
		return true
	}
	var missing []string
	for _, u := range uuids {
		m, ok := minors[strings.ToLower(strings.TrimSpace(u))]
		if !ok || !add(fmt.Sprintf("nvidia%d", m)) {
			missing = append(missing, u)
		}
	}
	if len(nodes) > 0 {
		for _, n := range []string{"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"} {
			add(n)
		}
	}
	return nodes, missing
}
