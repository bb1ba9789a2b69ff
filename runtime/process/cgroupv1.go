package process

import (
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

// cgroupV1 is the set of cgroup v1 hierarchies the runtime uses for the controllers the cgroup v2 parent
// lacks (hybrid hosts, and legacy hosts with only v1). Each lease gets MOUNT/NAME/lease-... in each of them.
type cgroupV1 struct {
	parent map[string]string // controller (memory, pids, cpu) → parent directory MOUNT/NAME
	memsw  bool              // memory.memsw.limit_in_bytes exists (swap accounting): swap is limited too
}

// v1Mounts returns the mount point of each cgroup v1 hierarchy that carries one of wantControllers.
func v1Mounts() map[string]string {
	out := map[string]string{}
	err := cgroupMounts("cgroup", func(mountPoint string, opts []string) {
		for _, o := range opts {
			for _, c := range wantControllers {
				if _, dup := out[c]; o == c && !dup {
					out[c] = mountPoint
				}
			}
		}
	})
	if err != nil {
		return nil
	}
	return out
}

// detectCgroupV1 prepares MOUNT/name in the v1 hierarchy of each controller of want, where one is mounted and
// writable. It returns nil when there is none.
func detectCgroupV1(name string, want []string) (*cgroupV1, string) {
	if len(want) == 0 {
		return nil, ""
	}
	mounts := v1Mounts()
	g := &cgroupV1{parent: map[string]string{}}
	var why []string
	for _, c := range want {
		m, ok := mounts[c]
		if !ok {
			why = append(why, "no cgroup v1 "+c+" hierarchy")
			continue
		}
		var st unix.Statfs_t
		if unix.Statfs(m, &st) != nil || st.Type != unix.CGROUP_SUPER_MAGIC {
			why = append(why, m+" is not a cgroup v1 file system")
			continue
		}
		p := filepath.Join(m, name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			why = append(why, fmt.Sprintf("cannot create %s: %v", p, err))
			continue
		}
		if err := unix.Access(p, unix.W_OK); err != nil {
			why = append(why, fmt.Sprintf("%s is not writable: %v", p, err))
			continue
		}
		if c == "memory" {
			// Hierarchical accounting, so that the lease cgroups count everything below them (always on since
			// Linux 5.x; older kernels need it set before children exist).
			_ = writeFile(filepath.Join(p, "memory.use_hierarchy"), "1")
			_, err := os.Stat(filepath.Join(p, "memory.memsw.limit_in_bytes"))
			g.memsw = err == nil
		}
		g.parent[c] = p
	}
	if len(g.parent) == 0 {
		return nil, strings.Join(why, "; ")
	}
	return g, strings.Join(why, "; ")
}

func (g *cgroupV1) has(c string) bool { return g != nil && g.parent[c] != "" }

// controllers lists the v1 controllers in use, for reports.
func (g *cgroupV1) controllers() string {
	var c []string
	for _, n := range wantControllers {
		if g.has(n) {
			c = append(c, n)
		}
	}
	return strings.Join(c, ",")
}

// createLease makes the lease's cgroup in each hierarchy with its limits and returns their paths (memory
// first when there is one, for OOM accounting). On error nothing is left behind.
func (g *cgroupV1) createLease(name string, l leaseLimits) ([]string, error) {
	var dirs []string
	fail := func(err error) ([]string, error) {
		removeCgroupsV1(dirs, 0)
		return nil, err
	}
	for _, c := range wantControllers {
		if c != "memory" {
			continue
		}
		if g.has(c) {
			dirs = append(dirs, filepath.Join(g.parent[c], name))
		}
	}
	for _, c := range wantControllers {
		if c != "memory" && g.has(c) {
			dirs = append(dirs, filepath.Join(g.parent[c], name))
		}
	}
	made := dirs[:0:0]
	for _, dir := range dirs {
		if err := os.Mkdir(dir, 0o755); errors.Is(err, fs.ErrExist) {
			if len(v1PIDs(dir)) > 0 {
				removeCgroupsV1(made, 0)
				return nil, fmt.Errorf("process: cgroup %s still holds processes of an earlier workload", dir)
			}
			if err := rmdirV1(dir); err != nil {
				removeCgroupsV1(made, 0)
				return nil, fmt.Errorf("process: cgroup: %w", err)
			}
			if err := os.Mkdir(dir, 0o755); err != nil {
				removeCgroupsV1(made, 0)
				return nil, fmt.Errorf("process: cgroup: %w", err)
			}
		} else if err != nil {
			removeCgroupsV1(made, 0)
			return nil, fmt.Errorf("process: cgroup: %w", err)
		}
		made = append(made, dir)
	}
	set := func(dir, file, v string) error {
		if err := writeFile(filepath.Join(dir, file), v); err != nil {
			return fmt.Errorf("process: cgroup %s = %s: %w", filepath.Join(dir, file), v, err)
		}
		return nil
	}
	for _, dir := range dirs {
		var err error
		switch v1Controller(dir) {
		case "memory":
			if l.memory > 0 {
				v := strconv.FormatUint(l.memory, 10)
				err = set(dir, "memory.limit_in_bytes", v)
				if err == nil && g.memsw {
					// memory+swap = memory: the lease may not swap (as memory.swap.max = 0 in v2).
					err = set(dir, "memory.memsw.limit_in_bytes", v)
				}
				_ = writeFile(filepath.Join(dir, "memory.swappiness"), "0")
			}
		case "pids":
			if l.pids > 0 {
				err = set(dir, "pids.max", strconv.FormatUint(l.pids, 10))
			}
		case "cpu":
			if l.cpuMilli > 0 {
				q, p, _ := strings.Cut(cpuMax(l.cpuMilli), " ")
				err = errors.Join(set(dir, "cpu.cfs_period_us", p), set(dir, "cpu.cfs_quota_us", q))
			}
		}
		if err != nil {
			return fail(err)
		}
	}
	return dirs, nil
}

// v1Controller names the controller of a lease cgroup directory from the files it has.
func v1Controller(dir string) string {
	for _, c := range []struct{ file, name string }{{"memory.limit_in_bytes", "memory"}, {"pids.max", "pids"}, {"cpu.cfs_quota_us", "cpu"}} {
		if _, err := os.Stat(filepath.Join(dir, c.file)); err == nil {
			return c.name
		}
	}
	return ""
}

// addV1 moves the process pid (all its threads) into each cgroup.
func addV1(dirs []string, pid int) error {
	for _, d := range dirs {
		if err := writeFile(filepath.Join(d, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("process: move into cgroup %s: %w", d, err)
		}
	}
	return nil
}

// isCgroup1 reports whether path is a directory of a cgroup v1 file system.
func isCgroup1(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.CGROUP_SUPER_MAGIC
}

// v1PIDs lists the processes in a v1 cgroup and its descendants.
func v1PIDs(dir string) []int {
	if !isCgroup1(dir) {
		return nil
	}
	return cgroupPIDs(dir)
}

// signalCgroupsV1 sends sig to every process of the cgroups (no cgroup.kill in v1: one by one, scanning
// again until none is left for SIGKILL; a process that received SIGKILL cannot fork any more).
func signalCgroupsV1(dirs []string, sig unix.Signal) {
	for _, dir := range dirs {
		for pass := 0; pass < 200; pass++ {
			pids := v1PIDs(dir)
			for _, pid := range pids {
				_ = unix.Kill(pid, sig)
			}
			if sig != unix.SIGKILL || len(pids) == 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// oomKillsV1 returns the oom_kill count of memory.oom_control (Linux ≥ 4.13) of the lease's memory cgroup.
func oomKillsV1(dirs []string) uint64 {
	n, _ := oomControlV1(dirs)
	return n
}

// oomControlV1 returns the oom_kill count, and false where the kernel does not count OOM kills (before 4.13):
// memory.failcnt (the times the limit was hit) is then all there is.
func oomControlV1(dirs []string) (uint64, bool) {
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "memory.oom_control"))
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
				n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				return n, true
			}
		}
		return 0, false
	}
	return 0, true
}

// failcntV1 returns memory.failcnt of the lease's memory cgroup (0 without one).
func failcntV1(dirs []string) uint64 {
	for _, dir := range dirs {
		if b, err := os.ReadFile(filepath.Join(dir, "memory.failcnt")); err == nil {
			n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
			return n
		}
	}
	return 0
}

// rmdirV1 removes a v1 cgroup and its sub-cgroups, children first.
func rmdirV1(dir string) error {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var err error
	for i := len(dirs) - 1; i >= 0; i-- {
		if rerr := unix.Rmdir(dirs[i]); rerr != nil && !errors.Is(rerr, unix.ENOENT) {
			err = rerr
		}
	}
	return err
}

// removeCgroupsV1 removes the lease's v1 cgroups, waiting up to wait for killed processes to leave them.
func removeCgroupsV1(dirs []string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	var errs error
	for _, dir := range dirs {
		if !isCgroup1(dir) {
			continue
		}
		for {
			err := rmdirV1(dir)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				errs = errors.Join(errs, fmt.Errorf("process: remove cgroup %s: %w", dir, err))
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return errs
}
