package process

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The controllers a lease cgroup uses when the parent offers them.
var wantControllers = []string{"cpu", "memory", "pids"}

// cgroupParent is the cgroup v2 directory under which lease cgroups are made.
type cgroupParent struct {
	mount string          // the cgroup2 mount point
	path  string          // the parent directory (inside mount)
	ctrl  map[string]bool // controllers enabled for the parent's children (its cgroup.subtree_control)
}

// controllers lists the enabled controllers, for reports.
func (p *cgroupParent) controllers() string {
	var c []string
	for _, n := range wantControllers {
		if p.ctrl[n] {
			c = append(c, n)
		}
	}
	if len(c) == 0 {
		return "none"
	}
	return strings.Join(c, ",")
}

// cgroup2Mount returns the mount point of the cgroup v2 hierarchy, preferring /sys/fs/cgroup (unified hosts)
// then /sys/fs/cgroup/unified (hybrid hosts), else the first one in /proc/self/mountinfo.
func cgroup2Mount() (string, error) {
	var mounts []string
	err := cgroupMounts("cgroup2", func(mountPoint string, _ []string) { mounts = append(mounts, mountPoint) })
	if err != nil {
		return "", err
	}
	for _, pref := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		for _, m := range mounts {
			if m == pref {
				return m, nil
			}
		}
	}
	if len(mounts) > 0 {
		return mounts[0], nil
	}
	return "", errors.New("no cgroup2 mount")
}

// cgroupMounts calls found with the mount point and super options of every mount of the whole hierarchy (its
// root, "/") of file system type fstype ("cgroup2", or "cgroup" for v1) in /proc/self/mountinfo.
func cgroupMounts(fstype string, found func(mountPoint string, opts []string)) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// 41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
		// 35 25 0:30 / /sys/fs/cgroup/memory rw,relatime shared:14 - cgroup cgroup rw,memory
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 1 || qf[0] != fstype || pf[3] != "/" {
			continue
		}
		var opts []string
		if len(qf) >= 3 {
			opts = strings.Split(qf[2], ",")
		}
		found(unescapeMount(pf[4]), opts)
	}
	return sc.Err()
}

// unescapeMount undoes the octal escapes (\040 for a space...) of /proc/self/mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isCgroup2 reports whether path is a directory of a cgroup2 file system.
func isCgroup2(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// detectCgroup finds (and, where it is safe, prepares) the parent cgroup of lease cgroups. root is
// Config.CgroupRoot. It returns nil and the reason when cgroups cannot be used.
//
// Auto mode (root == "") uses MOUNT/spare, the way Docker's cgroupfs driver uses MOUNT/docker: it creates it
// when missing (which needs root or a delegated mount) and only ever touches the hierarchy's root cgroup to
// enable the cpu, memory and pids controllers for its children, which systemd hosts already do. It never
// moves the daemon, never enables controllers in any other existing cgroup, and never writes limits outside
// the directories it creates, so it cannot disturb the host's own cgroups. On a host where the daemon runs
// in a delegated subtree (systemd Delegate=yes, a container with its own cgroup namespace), point
// Config.CgroupRoot at an empty cgroup in it whose parent offers the controllers.
func detectCgroup(root string) (*cgroupParent, string) {
	if root == "none" {
		return nil, "cgroups disabled by configuration"
	}
	mount, err := cgroup2Mount()
	if err != nil {
		return nil, "no cgroup v2 hierarchy is mounted"
	}
	path := filepath.Join(mount, "spare")
	if root != "" {
		path = filepath.Clean(root)
		if !strings.HasPrefix(path, mount+"/") {
			return nil, fmt.Sprintf("configured cgroup root %s is not inside the cgroup v2 mount %s", path, mount)
		}
	}
	if !isCgroup2(mount) {
		return nil, mount + " is not a cgroup2 file system"
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Sprintf("cannot create %s: %v", path, err)
	}
	if err := unix.Access(path, unix.W_OK); err != nil {
		return nil, fmt.Sprintf("%s is not writable: %v", path, err)
	}
	avail := readControllers(filepath.Join(path, "cgroup.controllers"))
	if parent := filepath.Dir(path); parent == mount {
		// Enable what is missing in the hierarchy's root, the only cgroup that may hold processes and still
		// give controllers to its children. A controller bound to a cgroup v1 hierarchy (hybrid hosts) or a
		// namespaced root with processes in it refuses: that is fine, the lease cgroups then go without it.
		for _, c := range wantControllers {
			if !avail[c] {
				_ = writeFile(filepath.Join(parent, "cgroup.subtree_control"), "+"+c)
			}
		}
		avail = readControllers(filepath.Join(path, "cgroup.controllers"))
	}
	for _, c := range wantControllers {
		if avail[c] {
			_ = writeFile(filepath.Join(path, "cgroup.subtree_control"), "+"+c)
		}
	}
	p := &cgroupParent{mount: mount, path: path, ctrl: readControllers(filepath.Join(path, "cgroup.subtree_control"))}
	return p, ""
}

// readControllers reads a space-separated controller list file.
func readControllers(file string) map[string]bool {
	m := map[string]bool{}
	b, err := os.ReadFile(file)
	if err != nil {
		return m
	}
	for _, c := range strings.Fields(string(b)) {
		m[c] = true
	}
	return m
}

// writeFile writes a cgroup control file (which must exist: no O_CREATE).
func writeFile(file, v string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// leaseLimits is what goes into a lease cgroup.
type leaseLimits struct {
	memory   uint64 // memory.max, 0: none
	cpuMilli uint64 // cpu.max, 0: none
	pids     uint64 // pids.max, 0: none
}

// leaseCgroupName names a lease's cgroup by its id and its directory: lease ids restart with every chain, and
// several daemons (or dev networks, or tests) on one machine share the cgroup parent, but each lease has a
// directory of its own.
func leaseCgroupName(leaseID uint64, dir string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(dir)))
	return fmt.Sprintf("lease-%d-%x", leaseID, sum[:4])
}

// createLease makes the lease's cgroup with its limits and returns its path. A leftover cgroup of the same
// name that still holds processes is an error (another workload of the lease runs); an empty one is replaced.
func (p *cgroupParent) createLease(name string, l leaseLimits) (string, error) {
	dir := filepath.Join(p.path, name)
	if err := os.Mkdir(dir, 0o755); errors.Is(err, fs.ErrExist) {
		if populated(dir) {
			return "", fmt.Errorf("process: cgroup %s still holds processes of an earlier workload", dir)
		}
		if err := removeCgroup(dir, 0); err != nil {
			return "", err
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", fmt.Errorf("process: cgroup: %w", err)
		}
	} else if err != nil {
		return "", fmt.Errorf("process: cgroup: %w", err)
	}
	if err := writeLimits(dir, p.ctrl, l); err != nil {
		_ = removeCgroup(dir, 0)
		return "", err
	}
	return dir, nil
}

// writeLimits writes the limits into the cgroup dir, for the controllers in ctrl.
func writeLimits(dir string, ctrl map[string]bool, l leaseLimits) error {
	set := func(file, v string) error {
		if err := writeFile(filepath.Join(dir, file), v); err != nil {
			return fmt.Errorf("process: cgroup %s = %s: %w", file, v, err)
		}
		return nil
	}
	var err error
	if ctrl["memory"] {
		// One OOM kill takes the whole workload down, as in a container: a half-killed job is worse.
		err = errors.Join(err, set("memory.oom.group", "1"))
		if l.memory > 0 {
			err = errors.Join(err, set("memory.max", strconv.FormatUint(l.memory, 10)))
			if _, serr := os.Stat(filepath.Join(dir, "memory.swap.max")); serr == nil {
				err = errors.Join(err, set("memory.swap.max", "0"))
			}
		}
	}
	if ctrl["cpu"] && l.cpuMilli > 0 {
		err = errors.Join(err, set("cpu.max", cpuMax(l.cpuMilli)))
	}
	if ctrl["pids"] && l.pids > 0 {
		err = errors.Join(err, set("pids.max", strconv.FormatUint(l.pids, 10)))
	}
	return err
}

// cpuMax is the cpu.max value for a limit in thousandths of a CPU, over a 100 ms period.
func cpuMax(milli uint64) string {
	const period = 100000 // µs
	quota := milli * period / 1000
	if quota < 1000 {
		quota = 1000 // the kernel's minimum
	}
	return fmt.Sprintf("%d %d", quota, period)
}

// cgroupPIDs lists the processes in the cgroup and its descendants.
func cgroupPIDs(dir string) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && signalable(pid) {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// populated reports whether the cgroup (or a descendant) holds a process.
func populated(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "populated "); ok {
				return strings.TrimSpace(v) != "0"
			}
		}
	}
	return len(cgroupPIDs(dir)) > 0
}

// signalCgroup sends sig to every process of the cgroup. SIGKILL goes through cgroup.kill (Linux ≥ 5.14),
// which the kernel applies atomically, forks in flight included; otherwise the processes are signalled one by
// one, scanning again until none is left for SIGKILL.
func signalCgroup(dir string, sig unix.Signal) {
	if dir == "" || !isCgroup2(dir) {
		return
	}
	if sig == unix.SIGKILL {
		if writeFile(filepath.Join(dir, "cgroup.kill"), "1") == nil {
			return
		}
	}
	for pass := 0; pass < 200; pass++ {
		pids := cgroupPIDs(dir)
		for _, pid := range pids {
			_ = unix.Kill(pid, sig)
		}
		if sig != unix.SIGKILL || len(pids) == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// oomKills returns the oom_kill count of the cgroup's memory.events (descendants included), or 0.
func oomKills(dir string) uint64 {
	if dir == "" {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(dir, "memory.events"))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// removeCgroup removes the cgroup (and the sub-cgroups a workload could not have made, being unprivileged,
// but an operator might have), waiting up to wait for its killed processes to leave it.
func removeCgroup(dir string, wait time.Duration) error {
	if dir == "" || !isCgroup2(dir) {
		return nil
	}
	deadline := time.Now().Add(wait)
	for {
		var dirs []string
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		var err error
		for i := len(dirs) - 1; i >= 0; i-- { // children first
			if rerr := unix.Rmdir(dirs[i]); rerr != nil && !errors.Is(rerr, unix.ENOENT) {
				err = rerr
			}
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process: remove cgroup %s: %w", dir, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
