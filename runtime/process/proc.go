package process

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// procStat is what this package needs from /proc/PID/stat.
type procStat struct {
	state   byte   // R, S, D, Z, X...
	pgrp    int    // process group
	session int    // session id
	start   uint64 // start time in clock ticks since boot (field 22): with the pid, the identity of a process
}

// zombie reports whether the process has exited and only waits to be reaped.
func (s procStat) zombie() bool { return s.state == 'Z' || s.state == 'X' || s.state == 'x' }

// readStat parses /proc/PID/stat. The command name (field 2) may hold spaces and parentheses, so the fields
// are counted from the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("process: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("process: malformed /proc/%d/stat", pid)
	}
	var s procStat
	s.state = f[0][0]
	if s.pgrp, err = strconv.Atoi(f[5-3]); err != nil {
		return procStat{}, fmt.Errorf("process: /proc/%d/stat pgrp: %w", pid, err)
	}
	if s.session, err = strconv.Atoi(f[6-3]); err != nil {
		return procStat{}, fmt.Errorf("process: /proc/%d/stat session: %w", pid, err)
	}
	if s.start, err = strconv.ParseUint(f[22-3], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("process: /proc/%d/stat starttime: %w", pid, err)
	}
	return s, nil
}

// procUIDs returns the real and effective uid of a process, from /proc/PID/status (not from the owner of
// /proc/PID, which is root for a process that made itself non-dumpable).
func procUIDs(pid int) (real, effective int, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1, -1, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "Uid:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			break
		}
		r, err1 := strconv.Atoi(f[0])
		e, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			break
		}
		return r, e, nil
	}
	return -1, -1, fmt.Errorf("process: no Uid line in /proc/%d/status", pid)
}

// procCgroup returns the process's cgroup v2 path ("0::" line of /proc/PID/cgroup), relative to the
// hierarchy's root.
func procCgroup(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("process: pid %d has no cgroup v2 line", pid)
}

// listPIDs returns the pids under /proc.
func listPIDs() []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		if pid, err := strconv.Atoi(n); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// bootID identifies this boot of the kernel: pids and start ticks mean nothing across a reboot.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// signalable reports whether pid may be signalled by the helpers below: never init, never the daemon.
func signalable(pid int) bool { return pid > 1 && pid != os.Getpid() }

// uidProcs returns the live (non-zombie) processes whose real or effective uid is uid.
func uidProcs(uid int) []int {
	var out []int
	for _, pid := range listPIDs() {
		if !signalable(pid) {
			continue
		}
		r, e, err := procUIDs(pid)
		if err != nil || (r != uid && e != uid) {
			continue
		}
		if st, err := readStat(pid); err != nil || st.zombie() {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// signalUID sends sig to every process of uid. With repeat, it scans again until a scan finds none alive (or
// a bound is reached), which catches processes forked while a scan ran: a process that received SIGKILL
// cannot fork any more, so the scans converge. uid must be a lease's own uid, never 0 nor the daemon's.
func signalUID(uid int, sig unix.Signal, repeat bool) {
	if uid <= 0 || uid == os.Getuid() || uid == os.Geteuid() {
		return
	}
	for pass := 0; pass < 200; pass++ {
		pids := uidProcs(uid)
		for _, pid := range pids {
			_ = unix.Kill(pid, sig)
		}
		if !repeat || len(pids) == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sessionProcs returns the live processes of session sid that started at or after the workload (so a
// recycled session id of an older process is never matched).
func sessionProcs(sid int, minStart uint64) []int {
	var out []int
	if sid <= 1 {
		return nil
	}
	for _, pid := range listPIDs() {
		if !signalable(pid) {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.zombie() || st.session != sid || st.start < minStart {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// alive reports whether the process pid with start time start still runs (a zombie does not).
func alive(pid int, start uint64) bool {
	st, err := readStat(pid)
	if err != nil {
		return false
	}
	return st.start == start && !st.zombie()
}
