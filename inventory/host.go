package inventory

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// detectCPU counts the logical CPUs in <proc>/cpuinfo (runtime.NumCPU when it cannot be read), then lowers the
// count to the CPUs this process may run on (<proc>/self/status Cpus_allowed_list) and to its cgroup's CPU
// quota, at least 1. Each lowering is explained in a warning.
func detectCPU(procRoot string, lim cgroupLimits) (int, []string) {
	var warnings []string
	cores, err := countProcessors(filepath.Join(procRoot, "cpuinfo"))
	if err != nil || cores == 0 {
		cores = runtime.NumCPU()
		warnings = append(warnings, fmt.Sprintf("CPU: cannot count processors in %s (%v); using %d from the Go runtime",
			filepath.Join(procRoot, "cpuinfo"), errOrNone(err), cores))
	}
	if allowed, err := cpusAllowed(filepath.Join(procRoot, "self", "status")); err == nil && allowed > 0 && allowed < cores {
		warnings = append(warnings, fmt.Sprintf("CPU: this process may run on %d of the %d CPUs (CPU affinity); declaring %d",
			allowed, cores, allowed))
		cores = allowed
	}
	if lim.cpuMilli > 0 && lim.cpuMilli < uint64(cores)*1000 {
		n := max(1, int(lim.cpuMilli/1000))
		warnings = append(warnings, fmt.Sprintf("CPU: cgroup %s limits this process to %d.%03d CPUs of %d; declaring %d",
			lim.cpuWhere, lim.cpuMilli/1000, lim.cpuMilli%1000, cores, n))
		cores = n
	}
	return cores, warnings
}

func errOrNone(err error) error {
	if err == nil {
		return fmt.Errorf("no processor lines")
	}
	return err
}

// countProcessors counts the "processor : N" lines of a cpuinfo file.
func countProcessors(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if key, _, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(key) == "processor" {
			n++
		}
	}
	return n, sc.Err()
}

// cpusAllowed counts the CPUs in the Cpus_allowed_list line of a /proc/<pid>/status file ("0-3,8-11" is 8).
func cpusAllowed(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		list, ok := strings.CutPrefix(line, "Cpus_allowed_list:")
		if !ok {
			continue
		}
		n := 0
		for _, r := range strings.Split(strings.TrimSpace(list), ",") {
			lo, hi, isRange := strings.Cut(r, "-")
			a, err1 := strconv.Atoi(lo)
			b := a
			var err2 error
			if isRange {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil || b < a {
				return 0, fmt.Errorf("%s: bad Cpus_allowed_list %q", path, list)
			}
			n += b - a + 1
		}
		return n, nil
	}
	return 0, fmt.Errorf("%s: no Cpus_allowed_list", path)
}

// detectMemory reads MemTotal from <proc>/meminfo and lowers it to the cgroup's memory limit.
func detectMemory(procRoot string, lim cgroupLimits) (uint64, []string, error) {
	path := filepath.Join(procRoot, "meminfo")
	kb, err := memTotalKB(path)
	if err != nil {
		return 0, nil, fmt.Errorf("memory: %w", err)
	}
	mib := kb / 1024
	if lim.memBytes > 0 && lim.memBytes>>20 < mib {
		limit := lim.memBytes >> 20
		return limit, []string{fmt.Sprintf("memory: cgroup %s limits this process to %d MiB of %d; declaring %d",
			lim.memWhere, limit, mib, limit)}, nil
	}
	return mib, nil, nil
}

// memTotalKB is the MemTotal line of a meminfo file, in kB.
func memTotalKB(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 || len(f) > 2 || len(f) == 2 && f[1] != "kB" {
			return 0, fmt.Errorf("%s: bad MemTotal line %q", path, line)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil || kb == 0 {
			return 0, fmt.Errorf("%s: bad MemTotal line %q", path, line)
		}
		return kb, nil
	}
	return 0, fmt.Errorf("%s: no MemTotal line", path)
}

// cgroupLimits are the tightest CPU and memory limits on this process's cgroup and its ancestors. Zero is no
// limit. They bound what the process runtime can give leases, whose workloads inherit the daemon's cgroup.
type cgroupLimits struct {
	cpuMilli uint64 // quota / period, in thousandths of a CPU
	cpuWhere string
	memBytes uint64
	memWhere string
}

// unlimitedMemory: cgroup v1 reports "no limit" as a huge number (a page-rounded 2^63-1).
const unlimitedMemory = 1 << 62

// readCgroupLimits finds this process's cgroups in <proc>/self/cgroup and reads their limits under cgroupRoot
// (normally /sys/fs/cgroup): cpu.max and memory.max for cgroup v2, cpu.cfs_quota_us / cpu.cfs_period_us and
// memory.limit_in_bytes for v1. It walks from the process's cgroup up to the root, so that a limit set on a
// parent (a systemd slice) counts, and so that inside a container, whose cgroup files are mounted at the root,
// the container's own limits are found. Anything unreadable is no limit.
func readCgroupLimits(procRoot, cgroupRoot string) cgroupLimits {
	var lim cgroupLimits
	b, err := os.ReadFile(filepath.Join(procRoot, "self", "cgroup"))
	if err != nil {
		return lim
	}
	setCPU := func(milli uint64, where string) {
		if milli > 0 && (lim.cpuMilli == 0 || milli < lim.cpuMilli) {
			lim.cpuMilli, lim.cpuWhere = milli, where
		}
	}
	setMem := func(n uint64, where string) {
		if n > 0 && n < unlimitedMemory && (lim.memBytes == 0 || n < lim.memBytes) {
			lim.memBytes, lim.memWhere = n, where
		}
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			continue
		}
		controllers, path := parts[1], parts[2]
		if parts[0] == "0" && controllers == "" { // cgroup v2
			base := cgroupRoot
			if _, err := os.Stat(filepath.Join(base, "cgroup.controllers")); err != nil {
				base = filepath.Join(cgroupRoot, "unified") // hybrid layout
			}
			for _, dir := range cgroupDirs(base, path) {
				where := cgroupName(base, dir)
				if f := readFields(filepath.Join(dir, "cpu.max")); len(f) == 2 && f[0] != "max" {
					setCPU(quotaMilli(f[0], f[1]), where)
				}
				if f := readFields(filepath.Join(dir, "memory.max")); len(f) == 1 && f[0] != "max" {
					v, _ := strconv.ParseUint(f[0], 10, 64)
					setMem(v, where)
				}
			}
			continue
		}
		for _, c := range strings.Split(controllers, ",") {
			if c != "cpu" && c != "memory" {
				continue
			}
			base := filepath.Join(cgroupRoot, controllers) // co-mounted: "cpu,cpuacct"
			if _, err := os.Stat(base); err != nil {
				base = filepath.Join(cgroupRoot, c)
			}
			for _, dir := range cgroupDirs(base, path) {
				where := cgroupName(base, dir)
				if c == "cpu" {
					q, p := readFields(filepath.Join(dir, "cpu.cfs_quota_us")), readFields(filepath.Join(dir, "cpu.cfs_period_us"))
					if len(q) == 1 && len(p) == 1 && q[0] != "-1" {
						setCPU(quotaMilli(q[0], p[0]), where)
					}
				} else if f := readFields(filepath.Join(dir, "memory.limit_in_bytes")); len(f) == 1 {
					v, _ := strconv.ParseUint(f[0], 10, 64)
					setMem(v, where)
				}
			}
		}
	}
	return lim
}

// cgroupDirs lists base+path and each of its parents up to base.
func cgroupDirs(base, path string) []string {
	var dirs []string
	for p := filepath.Clean("/" + path); ; p = filepath.Dir(p) {
		dirs = append(dirs, filepath.Join(base, p))
		if p == "/" {
			return dirs
		}
	}
}

// cgroupName names a cgroup directory for a warning: its path below the mount.
func cgroupName(base, dir string) string {
	rel, err := filepath.Rel(base, dir)
	if err != nil || rel == "." {
		return "/"
	}
	return "/" + rel
}

// quotaMilli is quota/period in thousandths of a CPU, 0 when either is not a positive number.
func quotaMilli(quota, period string) uint64 {
	q, err1 := strconv.ParseUint(quota, 10, 64)
	p, err2 := strconv.ParseUint(period, 10, 64)
	if err1 != nil || err2 != nil || q == 0 || p == 0 || q > 1<<40 {
		return 0
	}
	return max(1, q*1000/p)
}

// readFields is the whitespace-separated fields of a small file, nil when it cannot be read.
func readFields(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}
