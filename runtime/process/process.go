// Package process is the provider's default runtime: it runs a lease's workload as a plain process group on the
// host, in the lease's directory, with as much isolation as the host allows without containers.
//
// # Process tree
//
// Start runs
//
//	/bin/sh -c WRAPPER spare-workload COMMAND
//
// in a new session (setsid: it is the session and process group leader, with no controlling terminal), its
// working directory Spec.WorkDir, its environment exactly Spec.Env (plus PATH, HOME=WorkDir,
// CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES when Spec.Env lacks them: the daemon's own environment never
// reaches the workload), stdin /dev/null, and stdout and stderr two pipes to the log copier (logcopy.go), a
// process of the daemon's user in a session of its own that appends what it reads to Spec.LogPath and records
// when and from which stream in the log's index (runtime.IndexPath), so the logs go on if the daemon dies.
// Nothing ties the workload to the daemon's lifetime (no parent-death signal, no pipes to the daemon): it
// survives a daemon crash or restart.
//
// The wrapper is a few lines of sh. It first waits on a pipe for the daemon's go-ahead (so that limits and
// the cgroup are in place before the tenant's command runs: see Limits), then runs /bin/sh -c COMMAND as a
// child and, when that ends, writes "exit N" into DIR/.process/status through a descriptor the daemon opened
// for it (the file lives in a root-owned directory the workload cannot otherwise reach). N is the command's
// exit code, 128+n when a signal n killed it, as sh reports it. The wrapper traps SIGTERM, SIGINT and SIGHUP
// with a no-op so that a Stop delivers SIGTERM to the command and still records how it ended.
//
// # Sandbox
//
// A root daemon runs each workload in a sandbox (sandbox.go; docs/sandbox.md lists what it enforces and how),
// where the host allows it (see Guarantees; Config.Sandbox = "off" turns it off). The daemon then starts
// not the wrapper but a re-execution of its own binary (/proc/self/exe) in new mount, PID and IPC namespaces,
// one ahead of time (the binary's start-up is then off a lease's start), which waits on a socket; this
// package's init function recognizes it (a private environment variable) and, before main runs, receives the
// workload's stdio and instructions over the socket, makes every mount private, makes the host's whole tree read-only,
// nosuid and nodev (mount_setattr with AT_RECURSIVE), mounts a new /proc (the lease's processes only, /proc/sys
// read-only), a minimal /dev (null, zero, full, random, urandom, tty, a private devpts, the lease's GPUs only),
// private tmpfs on /tmp and /var/tmp (Spec.DiskBytes each) and /dev/shm (Spec.MemoryBytes), covers each of
// Spec.HidePaths with an empty read-only tmpfs, puts back the work dir at its own path, writable (a clone of its
// mount taken first, so this works under a hidden path or /tmp too), binds each of Spec.ReadOnlyPaths onto
// itself read-only and each directory above one onto itself writable (runtime.ReadOnlyMounts, which Start checks
// on disk first; the init opens each with openat2, no link followed), so that the workload can neither change,
// remove, rename nor replace them (without the sandbox nothing enforces them: Start notes that in the
// workload's limits), sets the rlimits, drops to the lease's uid and gid with no supplementary groups, sets
// no_new_privs and a seccomp filter (seccomp.go) and execs the wrapper. The wrapper is then PID 1 of the lease's
// PID namespace: sh's wait reaps the orphans re-parented to it, its traps let the daemon's SIGTERM through (PID
// 1 gets only the signals it handles, and SIGKILL from the daemon), and when it exits the kernel kills every process left in the namespace, setsid or not. The init
// answers over the socket with an error, or closes it by exec'ing; Start waits for that, so a sandbox that
// cannot be built makes Start fail, never run the workload with less.
//
// # Users
//
// When the daemon runs as root, each lease runs as its own unprivileged uid and gid, Config.UIDBase +
// LeaseID mod Config.UIDRange (no /etc/passwd entry is needed), with no supplementary groups. Start refuses to
// start when a process of that uid still runs. Spec.Dir becomes root:GID mode 0710 (the lease may only
// traverse it; other leases, being other uids and gids, cannot even do that), Spec.WorkDir and everything in
// it becomes UID:GID (WorkDir mode 0700), Spec.LogPath and its index stay root's, mode 0600 (the log copier
// writes them; the workload cannot), and the runtime's own files stay in DIR/.process, root mode 0700. The
// provider's keys and configuration (root-owned 0600/0700) are out of reach, as is every other lease's
// directory. The directories above Spec.Dir must be searchable (o+x) for the
// lease's uid to reach its WorkDir.
//
// When the daemon does not run as root, there is no sandbox, and the workload runs as the daemon's own user: Spec.Dir is made 0700, but
// isolation then rests entirely on the OS user the provider chose: the workload can read whatever that user
// can (the provider's key included) and signal its processes. Run the daemon as root, or as a dedicated user
// with nothing else, for untrusted tenants.
//
// # Limits
//
// If a cgroup v2 hierarchy is writable (see Config.CgroupRoot), each workload gets its own cgroup,
// PARENT/lease-ID, and is born in it (clone3 with CLONE_INTO_CGROUP, Linux ≥ 5.7; on older kernels it is
// moved in before the go-ahead). Where the parent offers the controllers, the cgroup has memory.max =
// MemoryBytes, memory.swap.max = 0, memory.oom.group = 1 (an OOM kill takes the whole workload down), cpu.max =
// CPUMilli/1000 CPUs and pids.max = Config.MaxProcs. Even without controllers (a hybrid cgroup v1/v2 host,
// where memory, cpu and pids are bound to v1), the cgroup still tracks every process of the workload so that
// cgroup.kill ends all of them.
//
// The controllers the v2 parent lacks come from cgroup v1 where its hierarchies are mounted writable
// (cgroupv1.go): V1MOUNT/NAME/lease-ID in the memory, pids and cpu hierarchies, with memory.limit_in_bytes =
// MemoryBytes and memory.memsw.limit_in_bytes the same where swap accounting exists (else swap is not limited,
// and Limits and Guarantees say so), pids.max and cpu.cfs_quota_us/cpu.cfs_period_us. The daemon moves the
// wrapper in while it waits for the go-ahead; OOM kills are counted by memory.oom_control's oom_kill; v1 has
// no cgroup.kill and no memory.oom.group: the runtime kills process by process (and the PID namespace ends
// them all at once). Either way the memory limit is one limit for all of the lease's processes together, tmpfs
// pages written to its /tmp and /dev/shm included.
//
// Whatever a cgroup cannot do falls back to resource limits (rlimits), always in place before the tenant's
// command runs: Config.MemoryRlimit (RLIMIT_AS by default) = MemoryBytes, RLIMIT_NPROC = Config.MaxProcs (as
// root only: the count is per uid, and only a per-lease uid makes it mean anything), and always
// RLIMIT_CORE = 0, and RLIMIT_FSIZE = DiskBytes when set (no single file may outgrow the lease's disk; the log
// copier writes at most DiskBytes of log). In the sandbox the init sets them on itself. Otherwise the daemon sets them with prlimit(2) on the wrapper while it waits for the go-ahead. Root
// without CAP_SYS_RESOURCE (a default Docker container, for one) may not do that to another uid's process;
// the workload then starts as util-linux's prlimit(1), which lowers its own limits (always allowed) and execs
// the wrapper. With neither, Start fails rather than run a workload unlimited. CPUMilli has no rlimit
// equivalent and is not enforced without the cpu controller.
//
// Where the workload must outlive a daemon restart under systemd, it must not stay in the daemon's unit
// cgroup, which systemd kills on stop (KillMode=control-group): the default CgroupRoot, MOUNT/spare, is outside
// it; without cgroups, use KillMode=process. Likewise a daemon that is PID 1 of a container takes its
// workloads down with it when it dies, and must reap orphans: run it under an init (docker run --init).
//
// # Ends
//
// Spec.Timeout is enforced by the runtime from the deadline recorded at Start, after a reattach too. A
// timeout and Stop both send SIGTERM to every process of the workload, wait Config.StopGrace (5 s by default)
// for the command to end, then SIGKILL everything. Whenever the command ends, for whatever reason, whatever is
// left of the workload is SIGKILLed, so no orphan survives it: in the sandbox the kernel does it as the
// wrapper, PID 1 of the lease's namespace, exits; then the runtime signals its process group and session, its
// cgroups (cgroup.kill in v2, each process of cgroup.procs in v1) and, as root, every process of the lease's
// uid, which catches processes that left the session with setsid(2). Without root and without a cgroup, only
// the session can be found, and a process that called setsid(2) escapes.
//
// Result.OOMKilled is exact with the cgroup memory controller: memory.events of the lease cgroup (v2), or
// memory.oom_control of its v1 memory cgroup, counts an oom_kill. With the rlimit fallback it is a heuristic, and says so in Result.Reason: an allocation beyond
// RLIMIT_AS fails (malloc returns NULL, mmap fails with ENOMEM) rather than killing anything, and the program
// decides what to do; OOMKilled is then set when the command exited non-zero and the output it logged in this
// run ends with a typical allocation-failure message ("memory exhausted", "out of memory", "cannot allocate
// memory", "MemoryError", "bad_alloc"...), or when it died of a SIGKILL the runtime did not send (the host's
// OOM killer, most likely). A tenant can fake either, which only mislabels its own result.
//
// # Reattach
//
// State is JSON: pid, the process's start time in clock ticks from /proc/PID/stat and the boot id (a pid
// alone may have been reused), process group, cgroup, uid and gid, start time and timeout deadline, and the
// limit mechanism. Reattach takes a pidfd for the pid and only then checks the start time and boot id, so the
// pidfd certainly refers to the workload; it also checks the uid and the cgroup. A live workload is then
// watched through the pidfd (polling /proc without pidfd_open), its deadline still enforced. If it is gone, the
// result is rebuilt from DIR/.process: result.json (written when a daemon saw the end), else status (written by
// the wrapper; its time stamp is the end time), else the stop or timeout the daemon had started, else an OOM
// count in the cgroup. With none of those Reattach returns runtime.ErrGone.
//
// # GPUs
//
// In the sandbox, /dev holds /dev/nvidiaN only for the lease's GPUs (Spec.GPUs are UUIDs, mapped to minors
// through /proc/driver/nvidia/gpus/*/information), plus nvidiactl and nvidia-uvm*; a UUID that cannot be
// mapped gets no device, and Limits says so. Without the sandbox, GPU isolation is by environment only:
// CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES, which a hostile workload can ignore and open any
// /dev/nvidia* device it has permission for.
package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sparenet/spare/runtime"
)

// Defaults of Config.
const (
	DefaultUIDBase   = 2_000_000_000
	DefaultUIDRange  = 1_000_000
	DefaultStopGrace = 5 * time.Second
	DefaultMaxProcs  = 4096
)

const (
	shell       = "/bin/sh"
	defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

	runDirName = ".process"    // the runtime's own directory inside Spec.Dir
	statusName = "status"      // written by the wrapper: "exit N\n"
	markerName = "stop.json"   // the stop or timeout the daemon started
	resultName = "result.json" // the final Result
	stateName  = "state.json"  // a copy of State(), for operators

	stateVersion = 1
)

// wrapper is the sh script between the session leader and the tenant's command. fd 3 is the status file and
// fd 4 the go-ahead pipe; $1 is the command. Exit 125: the daemon never gave the go-ahead (it died in Start).
const wrapper = `trap : HUP INT TERM
IFS= read -r g <&4 || exit 125
[ "$g" = go ] || exit 125
exec 4<&-
/bin/sh -c "$1" 3>&-
c=$?
printf 'exit %d\n' "$c" >&3
exit "$c"
`

// Config tunes a Runtime. The zero value means all defaults.
type Config struct {
	// UIDBase and UIDRange place the per-lease uids and gids (root only): UIDBase + LeaseID mod UIDRange. The
	// range must not overlap real users or subordinate id ranges, and be larger than the spread of lease ids
	// that can be live at once. Defaults: 2,000,000,000 and 1,000,000.
	UIDBase  uint32
	UIDRange uint32
	// StopGrace is how long Stop and a timeout wait after SIGTERM before SIGKILL. Default 5 s.
	StopGrace time.Duration
	// CgroupRoot is the cgroup v2 directory under which lease cgroups are made; it is created if missing. Empty:
	// MOUNT/spare where MOUNT is the cgroup2 mount (see detectCgroup). "none": no cgroups, rlimits only. The
	// controllers it lacks are taken from cgroup v1 hierarchies where mounted, under V1MOUNT/NAME where NAME is
	// its last element (spare by default).
	CgroupRoot string
	// Sandbox is "" (auto: a root daemon runs each workload in the namespace sandbox where this host supports
	// it, see Guarantees) or "off" (never: plain processes, for comparison and for hosts without namespaces).
	Sandbox string
	// MaxProcs is pids.max, or RLIMIT_NPROC without the pids controller (root only). Default 4096.
	MaxProcs uint64
	// MemoryRlimit is the resource limiting memory without the cgroup memory controller: unix.RLIMIT_AS
	// (default, address space) or unix.RLIMIT_DATA (data, heap and private writable mappings, Linux ≥ 4.7).
	// RLIMIT_AS counts reservations, which breaks programs that reserve large address ranges up front, CUDA
	// notably; RLIMIT_DATA bounds less but breaks fewer programs.
	MemoryRlimit int
}

// Runtime is the process runtime. Use New; the zero value works too, with Config's defaults.
type Runtime struct {
	cfg  Config
	bind bindPrograms // loaded bind filters (bindfilter.go)

	once  sync.Once
	root  bool          // the daemon runs as root: per-lease uids
	cg    *cgroupParent // nil: no cgroups
	cgWhy string        // why cg is nil
	v1    *cgroupV1     // cgroup v1 hierarchies for the controllers cg lacks; nil: none
	v1Why string        // what v1 lacks

	sbOnce    sync.Once
	sbOK      bool   // workloads run in the namespace sandbox
	sbWhy     string // why not
	poolMu    sync.Mutex
	pool      *sandboxChild // a sandbox init started ahead, waiting for its instructions
	copiers   *copierChild  // a log copier started ahead, waiting for its instructions
	prlimit   string        // the prlimit(1) binary that sets rlimits, when prlimit(2) from the daemon cannot
	noRlimits string        // why no rlimit can be set, when neither works
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns a Runtime with the configuration c.
func New(c Config) *Runtime { return &Runtime{cfg: c} }

// Name is "process".
func (r *Runtime) Name() string { return "process" }

func (r *Runtime) init() {
	r.once.Do(func() {
		r.root = os.Geteuid() == 0
		r.cg, r.cgWhy = detectCgroup(r.cfg.CgroupRoot)
		if r.cfg.CgroupRoot != "none" {
			// Hybrid and legacy hosts: the controllers the v2 parent lacks come from cgroup v1 hierarchies.
			var missing []string
			for _, c := range wantControllers {
				if r.cg == nil || !r.cg.ctrl[c] {
					missing = append(missing, c)
				}
			}
			name := "spare"
			if r.cfg.CgroupRoot != "" {
				name = filepath.Base(filepath.Clean(r.cfg.CgroupRoot))
			}
			r.v1, r.v1Why = detectCgroupV1(name, missing)
		}
		// prlimit(2) on a process of another uid needs CAP_SYS_RESOURCE, which root lacks in a default Docker
		// container, for one. Then the workload sets its own limits (lowering is always allowed) with
		// util-linux's prlimit(1) before it execs the wrapper.
		if r.root && !hasCap(unix.CAP_SYS_RESOURCE) {
			for _, p := range []string{"/usr/bin/prlimit", "/bin/prlimit", "/usr/local/bin/prlimit"} {
				if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
					r.prlimit = p
					break
				}
			}
			if r.prlimit == "" {
				r.noRlimits = "no CAP_SYS_RESOURCE and no prlimit(1) binary"
			}
		}
	})
}

// Mechanism describes how this runtime isolates and limits workloads on this host, for the daemon's logs.
func (r *Runtime) Mechanism() string {
	r.init()
	var b strings.Builder
	if r.root {
		fmt.Fprintf(&b, "per-lease uid %d+id%%%d; ", r.uidBase(), r.uidRange())
		if ok, why := r.sandbox(); ok {
			b.WriteString("sandbox: mount, pid and ipc namespaces, read-only host, private /tmp /var/tmp /dev/shm /dev, no_new_privs, seccomp; ")
		} else {
			fmt.Fprintf(&b, "NO sandbox (%s); ", why)
		}
	} else {
		fmt.Fprintf(&b, "daemon's own uid %d (not root: no per-lease isolation, no sandbox); ", os.Getuid())
	}
	switch {
	case r.cg != nil:
		fmt.Fprintf(&b, "cgroup v2 under %s (controllers: %s)", r.cg.path, r.cg.controllers())
	default:
		fmt.Fprintf(&b, "no cgroup v2 (%s)", r.cgWhy)
	}
	if r.v1 != nil {
		fmt.Fprintf(&b, "; cgroup v1 %s under %s", r.v1.controllers(), r.v1.parent[strings.Split(r.v1.controllers(), ",")[0]])
	}
	var rl []string
	if r.ctrlVia("memory") == "" {
		rl = append(rl, "memory")
	}
	if r.ctrlVia("pids") == "" && r.root {
		rl = append(rl, "nproc")
	}
	rl = append(rl, "core")
	fmt.Fprintf(&b, "; rlimits: %s%s", strings.Join(rl, ", "), r.rlimitVia())
	if r.ctrlVia("cpu") == "" {
		b.WriteString("; CPU not limited")
	}
	return b.String()
}

// ctrlVia says which cgroup version gives controller c to lease cgroups: "v2", "v1" or "" (none).
func (r *Runtime) ctrlVia(c string) string {
	switch {
	case r.cg != nil && r.cg.ctrl[c]:
		return "v2"
	case r.v1.has(c):
		return "v1"
	}
	return ""
}

func (r *Runtime) rlimitVia() string {
	if ok, _ := r.sandbox(); ok {
		return " (set by the sandbox init)"
	}
	switch {
	case r.noRlimits != "":
		return " UNAVAILABLE (" + r.noRlimits + ")"
	case r.prlimit != "":
		return " (set by " + r.prlimit + " in the workload)"
	default:
		return " (set by prlimit(2) before the go-ahead)"
	}
}

// hasCap reports whether the daemon has capability c in its effective set.
func hasCap(c int) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<uint(c)) != 0
		}
	}
	return false
}

func (r *Runtime) uidBase() uint32 {
	if r.cfg.UIDBase == 0 {
		return DefaultUIDBase
	}
	return r.cfg.UIDBase
}

func (r *Runtime) uidRange() uint32 {
	if r.cfg.UIDRange == 0 {
		return DefaultUIDRange
	}
	return r.cfg.UIDRange
}

func (r *Runtime) grace() time.Duration {
	if r.cfg.StopGrace <= 0 {
		return DefaultStopGrace
	}
	return r.cfg.StopGrace
}

func (r *Runtime) maxProcs() uint64 {
	if r.cfg.MaxProcs == 0 {
		return DefaultMaxProcs
	}
	return r.cfg.MaxProcs
}

func (r *Runtime) memRlimit() int {
	if r.cfg.MemoryRlimit == unix.RLIMIT_DATA {
		return unix.RLIMIT_DATA
	}
	return unix.RLIMIT_AS // the default, and what any other value means
}

// ident is who a workload runs as.
type ident struct {
	uid, gid int
	isolated bool // a per-lease uid: the runtime may kill every process of it
}

func (r *Runtime) identity(leaseID uint64) (ident, error) {
	if !r.root {
		return ident{uid: os.Getuid(), gid: os.Getgid()}, nil
	}
	base, rng := uint64(r.uidBase()), uint64(r.uidRange())
	if base+rng > 1<<32-2 { // (uid_t)-1 is "no change"
		return ident{}, fmt.Errorf("process: uid range %d+%d overflows", base, rng)
	}
	uid := int(base + leaseID%rng)
	if uid == 0 || uid == os.Getuid() {
		return ident{}, fmt.Errorf("process: lease uid %d is the daemon's", uid)
	}
	for _, f := range []string{"/proc/self/uid_map", "/proc/self/gid_map"} {
		if !idMapped(f, uint64(uid)) {
			return ident{}, fmt.Errorf("process: lease uid/gid %d is not mapped in the daemon's user namespace (%s): choose Config.UIDBase and UIDRange inside it", uid, f)
		}
	}
	return ident{uid: uid, gid: uid, isolated: true}, nil
}

// idMapped reports whether id is inside one of the ranges of a uid_map or gid_map file (true when the file
// cannot be read: the kernel will then have the last word).
func idMapped(file string, id uint64) bool {
	b, err := os.ReadFile(file)
	if err != nil {
		return true
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		first, err1 := strconv.ParseUint(f[0], 10, 64)
		n, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 == nil && err2 == nil && id >= first && id-first < n {
			return true
		}
	}
	return false
}

// wstate is the persisted State of a workload.
type wstate struct {
	V          int       `json:"v"`
	PID        int       `json:"pid"`
	StartTicks uint64    `json:"start_ticks"` // /proc/PID/stat starttime: the pid's identity
	BootID     string    `json:"boot_id,omitempty"`
	PGID       int       `json:"pgid"`                 // = session id = PID
	Cgroup     string    `json:"cgroup,omitempty"`     // file system path of the lease cgroup
	CgroupV1   []string  `json:"cgroup_v1,omitempty"`  // its cgroup v1 directories (memory first)
	Sandboxed  bool      `json:"sandboxed,omitempty"`  // namespace sandbox: the wrapper is PID 1 of its namespace
	CgroupRel  string    `json:"cgroup_rel,omitempty"` // as /proc/PID/cgroup shows it
	UID        int       `json:"uid"`
	GID        int       `json:"gid"`
	Isolated   bool      `json:"isolated"` // per-lease uid
	StartedAt  time.Time `json:"started_at"`
	Deadline   time.Time `json:"deadline,omitzero"`     // zero: no timeout
	Limits     string    `json:"limits"`                // human-readable mechanism
	MemoryMech string    `json:"memory_mech,omitempty"` // "cgroup", "rlimit" or empty (no memory limit)
	Memory     uint64    `json:"memory_bytes,omitempty"`
	LogPath    string    `json:"log_path"`
	LogOffset  int64     `json:"log_offset"`           // log size at start: this run's output follows
	LogCgroup  string    `json:"log_cgroup,omitempty"` // the log copier's cgroup v2 directory
	RunDir     string    `json:"run_dir"`
}

type rlimit struct {
	Res  int    `json:"res"`
	Name string `json:"name"`
	V    uint64 `json:"v"`
}

// Start launches the workload; see the package documentation.
func (r *Runtime) Start(ctx context.Context, s runtime.Spec) (runtime.Workload, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.init()
	if strings.TrimSpace(s.Command) == "" {
		return nil, errors.New("process: empty command")
	}
	if s.Dir == "" || s.WorkDir == "" || s.LogPath == "" {
		return nil, errors.New("process: Dir, WorkDir and LogPath are required")
	}
	id, err := r.identity(s.LeaseID)
	if err != nil {
		return nil, err
	}
	if id.isolated {
		if p := uidProcs(id.uid); len(p) > 0 {
			return nil, fmt.Errorf("process: uid %d of lease %d is still in use by pid %d", id.uid, s.LeaseID, p[0])
		}
	}
	// Checked on disk with or without the sandbox, which alone can enforce them: no element a link.
	binds, err := runtime.ReadOnlyMounts(s.WorkDir, s.ReadOnlyPaths)
	if err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	runDir, err := prepareDirs(s, id)
	if err != nil {
		return nil, err
	}
	logOffset := int64(0)
	if fi, err := os.Lstat(s.LogPath); err == nil {
		logOffset = fi.Size()
	}
	// stdout and stderr are pipes to the log copier (logcopy.go), which writes the log and its index.
	lc, err := r.startLogCopier(s, runDir)
	defer func() { go r.refillCopier() }() // the next lease's copier, once this one's start is done
	if err != nil {
		return nil, err
	}
	defer lc.closeWrite() // the workload holds its own write ends; the copier ends when they are all closed
	started := false
	defer func() {
		if !started && lc.cgroup != "" {
			go waitLogCopier(runDir, lc.cgroup, lc.done, time.Minute) // its cgroup, once it has read EOF
		}
	}()
	statusf, err := os.OpenFile(filepath.Join(runDir, statusName), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	defer statusf.Close()
	gateR, gateW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	defer gateR.Close()
	defer gateW.Close()

	// Limits: the cgroup's where it can, rlimits for the rest.
	var limits []string
	memMech := ""
	rls := []rlimit{{unix.RLIMIT_CORE, "core", 0}}
	var cgDir, cgRel string
	var v1Dirs []string
	sandboxed, sandboxWhy := false, ""
	if r.root && r.cfg.Sandbox != "off" {
		sandboxed, sandboxWhy = r.sandbox()
	}
	if r.cg != nil {
		l := leaseLimits{cpuMilli: s.CPUMilli, pids: r.maxProcs()}
		if s.MemoryBytes > 0 && r.cg.ctrl["memory"] {
			l.memory, memMech = s.MemoryBytes, "cgroup"
		}
		if cgDir, err = r.cg.createLease(leaseCgroupName(s.LeaseID, s.Dir), l); err != nil {
			return nil, err
		}
		cgRel = strings.TrimPrefix(cgDir, r.cg.mount)
		limits = append(limits, "cgroup "+cgDir+" ("+r.cg.controllers()+")")
		if len(s.BindRanges) > 0 {
			// Ports of the provider's ranges that are not the lease's: refused from the first instruction on.
			if err := r.bind.attach(cgDir, s.BindRanges, s.BindAllowed); err != nil {
				limits = append(limits, "no bind filter ("+err.Error()+")")
			} else {
				limits = append(limits, "bind filter")
			}
		}
	}
	if r.v1 != nil {
		l := leaseLimits{cpuMilli: s.CPUMilli, pids: r.maxProcs()}
		if s.MemoryBytes > 0 && memMech == "" && r.v1.has("memory") {
			l.memory, memMech = s.MemoryBytes, "cgroup"
		}
		if v1Dirs, err = r.v1.createLease(leaseCgroupName(s.LeaseID, s.Dir), l); err != nil {
			_ = removeCgroup(cgDir, 0)
			return nil, err
		}
		sw := ""
		if l.memory > 0 && !r.v1.memsw {
			sw = ", swap not limited: no swap accounting"
		}
		limits = append(limits, "cgroup v1 "+strings.Join(v1Dirs, " ")+sw)
	}
	cleanupCgroups := func() {
		_ = removeCgroup(cgDir, 0)
		_ = removeCgroupsV1(v1Dirs, 0)
	}
	if s.MemoryBytes > 0 && memMech == "" {
		name := "as"
		if r.memRlimit() == unix.RLIMIT_DATA {
			name = "data"
		}
		rls = append(rls, rlimit{r.memRlimit(), name, s.MemoryBytes})
		memMech = "rlimit"
	}
	if id.isolated && r.ctrlVia("pids") == "" {
		rls = append(rls, rlimit{unix.RLIMIT_NPROC, "nproc", r.maxProcs()})
	}
	if s.DiskBytes > 0 {
		rls = append(rls, rlimit{unix.RLIMIT_FSIZE, "fsize", s.DiskBytes})
	}
	if r.noRlimits != "" && !sandboxed {
		cleanupCgroups()
		return nil, fmt.Errorf("process: cannot set resource limits: %s", r.noRlimits)
	}
	var rn []string
	for _, l := range rls {
		rn = append(rn, l.Name)
	}
	if sandboxed {
		limits = append(limits, "rlimit "+strings.Join(rn, ",")+" (set by the sandbox init)", "sandbox")
		if len(binds) > 0 {
			limits = append(limits, fmt.Sprintf("read-only paths (%d mounts)", len(binds)))
		}
	} else {
		if len(s.ReadOnlyPaths) > 0 {
			limits = append(limits, "read-only paths NOT enforced (no sandbox)")
		}
		limits = append(limits, "rlimit "+strings.Join(rn, ",")+r.rlimitVia())
		if r.root && r.cfg.Sandbox != "off" {
			limits = append(limits, "no sandbox: "+sandboxWhy)
		}
	}

	var cgfd *os.File
	if cgDir != "" {
		if cgfd, err = os.Open(cgDir); err != nil {
			cleanupCgroups()
			return nil, fmt.Errorf("process: %w", err)
		}
		defer cgfd.Close()
	}
	newCmd := func(intoCgroup bool) *exec.Cmd {
		attr := &syscall.SysProcAttr{Setsid: true}
		if id.isolated {
			attr.Credential = &syscall.Credential{Uid: uint32(id.uid), Gid: uint32(id.gid), Groups: []uint32{}}
		}
		if intoCgroup {
			attr.UseCgroupFD, attr.CgroupFD = true, int(cgfd.Fd())
		}
		path, args := shell, []string{shell, "-c", wrapper, "spare-workload", s.Command}
		if r.prlimit != "" {
			pa := []string{r.prlimit}
			for _, l := range rls {
				pa = append(pa, fmt.Sprintf("--%s=%d:%d", l.Name, l.V, l.V))
			}
			path, args = r.prlimit, append(append(pa, "--"), args...)
		}
		return &exec.Cmd{
			Path:        path,
			Args:        args,
			Env:         buildEnv(s),
			Dir:         s.WorkDir,
			Stdout:      lc.stdout,
			Stderr:      lc.stderr,
			ExtraFiles:  []*os.File{statusf, gateR}, // fd 3, fd 4
			SysProcAttr: attr,
		}
	}
	var sbc *sandboxChild
	var cmd *exec.Cmd
	movedIn := false
	if sandboxed {
		// A sandbox init started ahead of time (its Go start-up, and the daemon binary's package
		// initialization, is then off the start's path), or a new one. It is moved into the cgroups once it
		// has exec'd the wrapper, which then waits for the go-ahead.
		sbc, err = r.takeSandbox()
		if err == nil {
			defer sbc.close()
			cmd = sbc.cmd
		}
	} else {
		cmd = newCmd(cgfd != nil)
		err = cmd.Start()
		movedIn = cgfd != nil
	}
	if err != nil && cgfd != nil && !sandboxed {
		// No clone3/CLONE_INTO_CGROUP (Linux < 5.7, a seccomp filter): start it outside and move it in before
		// the go-ahead.
		cmd, movedIn = newCmd(false), false
		err = cmd.Start()
	}
	if err != nil {
		cleanupCgroups()
		if id.isolated && errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("process: start as uid %d: %w (the directories above %s must be searchable by others, o+x)", id.uid, err, s.Dir)
		}
		return nil, fmt.Errorf("process: start: %w", err)
	}
	pid := cmd.Process.Pid
	fail := func(err error) (runtime.Workload, error) {
		_ = unix.Kill(-pid, unix.SIGKILL)
		_ = gateW.Close()
		_ = cmd.Wait()
		signalCgroup(cgDir, unix.SIGKILL)
		signalCgroupsV1(v1Dirs, unix.SIGKILL)
		_ = removeCgroup(cgDir, 2*time.Second)
		_ = removeCgroupsV1(v1Dirs, 2*time.Second)
		return nil, err
	}
	if sbc != nil {
		gpus, unmapped := gpuDevices(s.GPUs)
		if len(unmapped) > 0 {
			limits = append(limits, "GPUs without a device node (not exposed): "+strings.Join(unmapped, ","))
		}
		reply, err := sbc.run(sandboxConfig{
			UID: id.uid, GID: id.gid, WorkDir: s.WorkDir, HidePaths: s.HidePaths, Binds: binds,
			DiskBytes: s.DiskBytes, MemoryBytes: s.MemoryBytes, Devices: gpus, Rlimits: rls,
			Args: []string{shell, "-c", wrapper, "spare-workload", s.Command}, Env: buildEnv(s),
		}, [4]*os.File{lc.stdout, lc.stderr, statusf, gateR}, sandboxTimeout)
		if err == nil && reply != "" {
			err = fmt.Errorf("process: %s", reply)
		}
		if err != nil {
			return fail(err)
		}
	}
	// Into the v1 cgroups before the go-ahead: the wrapper waits for it, and what it runs inherits them.
	if err := addV1(v1Dirs, pid); err != nil {
		return fail(err)
	}
	if cgDir != "" && !movedIn {
		if err := writeFile(filepath.Join(cgDir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fail(fmt.Errorf("process: move into cgroup: %w", err))
		}
	}
	for _, l := range rls {
		if r.prlimit != "" || sbc != nil {
			break // the workload set them itself before it ran the wrapper
		}
		if err := unix.Prlimit(pid, l.Res, &unix.Rlimit{Cur: l.V, Max: l.V}, nil); err != nil {
			return fail(fmt.Errorf("process: prlimit %s: %w", l.Name, err))
		}
	}
	ps, err := readStat(pid)
	if err != nil {
		return fail(err)
	}
	startedAt := time.Now()
	if _, err := gateW.Write([]byte("go\n")); err != nil {
		return fail(fmt.Errorf("process: go-ahead: %w", err))
	}
	_ = gateW.Close()

	st := wstate{
		V: stateVersion, PID: pid, StartTicks: ps.start, BootID: bootID(), PGID: pid,
		Cgroup: cgDir, CgroupRel: cgRel, CgroupV1: v1Dirs, Sandboxed: sbc != nil, UID: id.uid, GID: id.gid, Isolated: id.isolated,
		StartedAt: startedAt, Limits: strings.Join(limits, "; "), MemoryMech: memMech, Memory: s.MemoryBytes,
		LogPath: s.LogPath, LogOffset: logOffset, RunDir: runDir, LogCgroup: lc.cgroup,
	}
	if s.Timeout > 0 {
		st.Deadline = startedAt.Add(s.Timeout)
	}
	w := newWorkload(r, st)
	w.cmd = cmd
	w.logDone = lc.done
	if b, err := json.Marshal(st); err == nil {
		_ = writeReplace(filepath.Join(runDir, stateName), b, false) // the daemon keeps the real one (State)
	}
	exited := make(chan exitInfo, 1)
	go func() {
		// Learn of the exit without reaping: until finish reaps the wrapper, its pid (the process group and
		// session id) cannot be reused, so signalling the group stays safe.
		for {
			var info unix.Siginfo
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				break
			}
		}
		exited <- exitInfo{parent: true, at: time.Now()}
	}()
	go w.monitor(exited, marker{})
	started = true
	return w, nil
}

// buildEnv is exactly Spec.Env, plus defaults for what it lacks.
func buildEnv(s runtime.Spec) []string {
	env := make([]string, 0, len(s.Env)+4)
	have := map[string]bool{}
	for _, kv := range s.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsRune(kv, 0) {
			continue
		}
		env = append(env, kv)
		have[k] = true
	}
	if !have["PATH"] {
		env = append(env, "PATH="+defaultPath)
	}
	if !have["HOME"] {
		env = append(env, "HOME="+s.WorkDir)
	}
	// Without these a CUDA program sees every GPU of the host.
	if !have["CUDA_VISIBLE_DEVICES"] {
		env = append(env, "CUDA_VISIBLE_DEVICES="+strings.Join(s.GPUs, ","))
	}
	if !have["NVIDIA_VISIBLE_DEVICES"] {
		v := strings.Join(s.GPUs, ",")
		if v == "" {
			v = "void"
		}
		env = append(env, "NVIDIA_VISIBLE_DEVICES="+v)
	}
	return env
}

// prepareDirs sets the owners and modes of the lease's directories and makes the runtime's own directory.
func prepareDirs(s runtime.Spec, id ident) (string, error) {
	dir, work := filepath.Clean(s.Dir), filepath.Clean(s.WorkDir)
	for _, d := range []string{dir, work} {
		fi, err := os.Lstat(d)
		if err != nil {
			return "", fmt.Errorf("process: %w", err)
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("process: %s is not a directory", d)
		}
	}
	if id.isolated && work == dir {
		return "", errors.New("process: WorkDir must be a subdirectory of Dir")
	}
	runDir := filepath.Join(dir, runDirName)
	if err := os.Mkdir(runDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("process: %w", err)
	}
	if fi, err := os.Lstat(runDir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("process: %s is not a directory", runDir)
	}
	if err := os.Chmod(runDir, 0o700); err != nil {
		return "", fmt.Errorf("process: %w", err)
	}
	for _, n := range []string{statusName, markerName, resultName, stateName} {
		if err := os.Remove(filepath.Join(runDir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("process: %w", err)
		}
	}
	if !id.isolated {
		if err := os.Chmod(dir, 0o700); err != nil {
			return "", fmt.Errorf("process: %w", err)
		}
		return runDir, nil
	}
	if err := os.Lchown(runDir, os.Geteuid(), os.Getegid()); err != nil {
		return "", fmt.Errorf("process: %w", err)
	}
	if err := os.Lchown(dir, os.Geteuid(), id.gid); err != nil {
		return "", fmt.Errorf("process: %w", err)
	}
	if err := os.Chmod(dir, 0o710); err != nil {
		return "", fmt.Errorf("process: %w", err)
	}
	err := filepath.WalkDir(work, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, id.uid, id.gid)
	})
	if err != nil {
		return "", fmt.Errorf("process: chown work dir: %w", err)
	}
	if err := os.Chmod(work, 0o700); err != nil {
		return "", fmt.Errorf("process: %w", err)
	}
	return runDir, nil
}

// Reattach finds a workload started by an earlier daemon process; see the package documentation.
func (r *Runtime) Reattach(ctx context.Context, s runtime.Spec, state []byte) (runtime.Workload, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.init()
	var st wstate
	if err := json.Unmarshal(state, &st); err != nil {
		return nil, fmt.Errorf("process: bad state: %w", err)
	}
	if st.V != stateVersion || st.PID <= 1 || st.PGID <= 1 {
		return nil, fmt.Errorf("process: bad state (version %d, pid %d)", st.V, st.PID)
	}
	if s.Dir != "" {
		st.RunDir = filepath.Join(filepath.Clean(s.Dir), runDirName)
	}
	w := newWorkload(r, st)
	if res, ok := readResult(st.RunDir); ok {
		w.res = res
		close(w.done)
		return w, nil
	}
	m := readMarker(st.RunDir)
	pidfd, found, err := find(st)
	if err != nil {
		return nil, err
	}
	if found {
		exited := make(chan exitInfo, 1)
		go func() {
			if pidfd >= 0 {
				for {
					fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
					n, err := unix.Poll(fds, 1000)
					if err == unix.EINTR || (err == nil && n == 0) {
						continue
					}
					break // readable: it exited; or poll failed: check /proc below
				}
			}
			for alive(st.PID, st.StartTicks) {
				time.Sleep(100 * time.Millisecond)
			}
			exited <- exitInfo{at: time.Now()}
		}()
		w.pidfd = pidfd
		go w.monitor(exited, m)
		return w, nil
	}
	if _, _, ok := readStatus(st.RunDir); ok || m.Reason != "" || oomKills(st.Cgroup)+oomKillsV1(st.CgroupV1) > 0 {
		w.finish(exitInfo{}, m.Reason)
		return w, nil
	}
	w.killAll(unix.SIGKILL, false, false)
	_ = removeCgroup(st.Cgroup, 2*time.Second)
	_ = removeCgroupsV1(st.CgroupV1, 2*time.Second)
	return nil, runtime.ErrGone
}

// find looks for the workload's process: its pid with its start time, in this boot. It returns a pidfd for
// it (-1 where pidfd_open is missing) or found false. A process that matches but has another uid or cgroup
// than recorded is an error: someone moved it.
func find(st wstate) (pidfd int, found bool, err error) {
	if st.BootID != "" && st.BootID != bootID() {
		return -1, false, nil
	}
	pidfd, err = unix.PidfdOpen(st.PID, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return -1, false, nil
		}
		pidfd = -1
	}
	closeFD := func() {
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
	}
	ps, err := readStat(st.PID)
	if err != nil || ps.start != st.StartTicks || ps.zombie() {
		closeFD()
		return -1, false, nil
	}
	if real, _, err := procUIDs(st.PID); err == nil && real != st.UID {
		closeFD()
		return -1, false, fmt.Errorf("process: pid %d runs as uid %d, not %d", st.PID, real, st.UID)
	}
	if st.CgroupRel != "" {
		if cg, err := procCgroup(st.PID); err == nil && cg != st.CgroupRel {
			closeFD()
			return -1, false, fmt.Errorf("process: pid %d is in cgroup %s, not %s", st.PID, cg, st.CgroupRel)
		}
	}
	return pidfd, true, nil
}
