package process

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sparenet/spare/runtime"
)

const (
	reasonStop    = "stop"
	reasonTimeout = "timeout"
)

// Workload is a workload of the process runtime.
type Workload struct {
	rt     *Runtime
	st     wstate
	cmd    *exec.Cmd // set when this daemon process is the parent
	pidfd  int       // set by Reattach, -1 otherwise
	stopCh chan struct{}
	done   chan struct{} // closed once res is final
	res    runtime.Result
	// logDone is closed when the log copier exits, when this daemon process started it (else its lock says).
	logDone <-chan struct{}
}

var _ runtime.Workload = (*Workload)(nil)

func newWorkload(r *Runtime, st wstate) *Workload {
	return &Workload{rt: r, st: st, pidfd: -1, stopCh: make(chan struct{}, 1), done: make(chan struct{})}
}

// exitInfo says that the wrapper ended.
type exitInfo struct {
	parent bool      // this daemon process is its parent and has not reaped it yet
	at     time.Time // when the end was seen; zero when it ended before this daemon looked
	killed bool      // this daemon sent SIGKILL at the end of a grace period
}

// UID is the user every process of the workload runs as, when it is the lease's own (runtime.Owner).
func (w *Workload) UID() (int, bool) { return w.st.UID, w.st.Isolated }

// State returns the JSON the daemon persists for Reattach.
func (w *Workload) State() []byte {
	b, _ := json.Marshal(w.st)
	return b
}

// Wait blocks until the workload ends, or ctx ends.
func (w *Workload) Wait(ctx context.Context) (runtime.Result, error) {
	select {
	case <-w.done:
		return w.res, nil
	case <-ctx.Done():
		return runtime.Result{}, ctx.Err()
	}
}

// Stop sends SIGTERM to the workload, SIGKILL after the grace period, and returns once it ended (or ctx ends:
// the stop goes on regardless). Stopping an ended workload does nothing.
func (w *Workload) Stop(ctx context.Context) error {
	select {
	case <-w.done:
		return nil
	default:
	}
	select {
	case w.stopCh <- struct{}{}:
	default:
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// monitor runs for the life of the workload: it enforces the deadline, carries out Stop, and finishes when
// the wrapper exits. m is a stop or timeout an earlier daemon process had begun.
func (w *Workload) monitor(exited <-chan exitInfo, m marker) {
	grace := w.rt.grace()
	pgidSafe := w.cmd != nil
	var deadline, kill <-chan time.Time
	if !w.st.Deadline.IsZero() {
		t := time.NewTimer(time.Until(w.st.Deadline))
		defer t.Stop()
		deadline = t.C
	}
	reason := m.Reason
	if reason != "" {
		// An earlier daemon process began this stop (it may have died before the SIGTERM went out): carry on.
		w.killAll(unix.SIGTERM, pgidSafe, true)
		kill = time.After(time.Until(m.At.Add(grace)))
	}
	begin := func(why string) {
		if reason != "" {
			return // the first reason wins
		}
		reason = why
		if b, err := json.Marshal(marker{Reason: why, At: time.Now()}); err == nil {
			_ = writeAtomic(filepath.Join(w.st.RunDir, markerName), b)
		}
		w.killAll(unix.SIGTERM, pgidSafe, true)
		kill = time.After(grace)
	}
	sentKill := false
	for {
		select {
		case ei := <-exited:
			ei.killed = sentKill
			w.finish(ei, reason)
			return
		case <-deadline:
			deadline = nil
			begin(reasonTimeout)
		case <-w.stopCh:
			begin(reasonStop)
		case <-kill:
			sentKill = true
			w.killAll(unix.SIGKILL, pgidSafe, true)
			kill = time.After(grace) // a process in uninterruptible sleep: try again
		}
	}
}

// killAll signals every process of the workload: its process group (only with group, while the unreaped
// wrapper pins the group id), its session (only with session: found in /proc, started no earlier than the
// workload; safe while the wrapper lives or has just ended, since a session id is not reused while a process
// of the session lives, but not after the daemon was down for a while: the id may belong to a newer session
// by then), its cgroup, and with a per-lease uid every process of that uid.
func (w *Workload) killAll(sig unix.Signal, group, session bool) {
	if group && w.st.PGID > 1 {
		_ = unix.Kill(-w.st.PGID, sig)
	}
	if session {
		for _, pid := range sessionProcs(w.st.PGID, w.st.StartTicks) {
			_ = unix.Kill(pid, sig)
		}
	}
	signalCgroup(w.st.Cgroup, sig)
	signalCgroupsV1(w.st.CgroupV1, sig)
	if w.st.Isolated {
		signalUID(w.st.UID, sig, sig == unix.SIGKILL)
	}
}

// finish runs once the wrapper exited: it kills what is left of the workload, works out the Result, records
// it in result.json, removes the cgroup and releases Wait.
func (w *Workload) finish(ei exitInfo, reason string) {
	w.killAll(unix.SIGKILL, ei.parent, !ei.at.IsZero())
	var ws syscall.WaitStatus
	haveWS := false
	if ei.parent && w.cmd != nil {
		_ = w.cmd.Wait() // reaps; its error is only the exit status
		if ps := w.cmd.ProcessState; ps != nil {
			ws, haveWS = ps.Sys().(syscall.WaitStatus)
		}
	}
	if w.pidfd >= 0 {
		unix.Close(w.pidfd)
		w.pidfd = -1
	}
	// Every process of the workload is gone, so are the pipes' write ends: the copier writes what is left.
	waitLogCopier(w.st.RunDir, w.st.LogCgroup, w.logDone, logDrainWait)

	res := runtime.Result{StartedAt: w.st.StartedAt, EndedAt: ei.at, ExitCode: -1}
	code, statusAt, statusOK := readStatus(w.st.RunDir)
	var why []string
	switch {
	case statusOK:
		res.ExitCode = code
		if code > 128 && code < 128+65 {
			why = append(why, fmt.Sprintf("exited with code %d (killed by %s?)", code, signalText(syscall.Signal(code-128))))
		} else {
			why = append(why, fmt.Sprintf("exited with code %d", code))
		}
	case haveWS && ws.Exited():
		res.ExitCode = ws.ExitStatus()
		why = append(why, fmt.Sprintf("exited with code %d", res.ExitCode))
	case haveWS && ws.Signaled():
		res.ExitCode = 128 + int(ws.Signal())
		why = append(why, "killed by "+signalText(ws.Signal()))
	case ei.killed:
		res.ExitCode = 128 + int(unix.SIGKILL)
		why = append(why, "killed by SIGKILL after the grace period")
	case ei.at.IsZero():
		why = append(why, "exit status unknown: the workload ended while the daemon was down")
	default:
		why = append(why, "exit status unknown: the wrapper was killed, and this daemon is not its parent")
	}
	if res.EndedAt.IsZero() {
		res.EndedAt = statusAt
		if res.EndedAt.IsZero() {
			if m := readMarker(w.st.RunDir); m.Reason != "" {
				res.EndedAt = m.At
			} else {
				res.EndedAt = time.Now()
			}
		}
	}
	if res.EndedAt.Before(res.StartedAt) {
		// A workload that ends within milliseconds can seem to end before it started: the start time is taken
		// after the go-ahead, the end time from a file's modification time (coarser clock).
		res.EndedAt = res.StartedAt
	}

	switch reason {
	case reasonTimeout:
		res.TimedOut = true
		// The wall-clock limit is the lease's duration (runtime.Spec.Timeout): say so in words, not as a signal.
		why = append([]string{fmt.Sprintf("duration reached (%s)", runtime.DurationText(w.st.Deadline.Sub(w.st.StartedAt).Round(time.Second)))}, why...)
	case reasonStop:
		res.Stopped = true
		why = append([]string{"stopped on request"}, why...)
	}
	if n := oomKills(w.st.Cgroup); n > 0 {
		res.OOMKilled = true
		if res.ExitCode == -1 {
			res.ExitCode = 128 + int(unix.SIGKILL) // memory.oom.group: the OOM killer took the wrapper too
		}
		why = append(why, fmt.Sprintf("OOM-killed: memory limit %d bytes (cgroup memory.events oom_kill %d)", w.st.Memory, n))
	} else if n, counted := oomControlV1(w.st.CgroupV1); n > 0 {
		res.OOMKilled = true
		if res.ExitCode == -1 {
			res.ExitCode = 128 + int(unix.SIGKILL)
		}
		why = append(why, fmt.Sprintf("OOM-killed: memory limit %d bytes (cgroup v1 memory.oom_control oom_kill %d)", w.st.Memory, n))
	} else if f := failcntV1(w.st.CgroupV1); !counted && f > 0 && reason == "" && res.ExitCode == 128+int(unix.SIGKILL) {
		res.OOMKilled = true
		why = append(why, fmt.Sprintf("probably out of memory (heuristic: SIGKILL the runtime did not send, and the cgroup v1 memory limit of %d bytes was hit %d times; this kernel does not count OOM kills)", w.st.Memory, f))
	} else if w.st.MemoryMech == "rlimit" && reason == "" && res.ExitCode != 0 && res.ExitCode != -1 {
		switch {
		case res.ExitCode == 128+int(unix.SIGKILL):
			res.OOMKilled = true
			why = append(why, "probably out of memory (heuristic: SIGKILL the runtime did not send, likely the kernel OOM killer)")
		default:
			if m := allocFailure(w.st.LogPath, w.st.LogOffset); m != "" {
				res.OOMKilled = true
				why = append(why, fmt.Sprintf("probably out of memory (heuristic: memory rlimit of %d bytes, log says %q)", w.st.Memory, m))
			}
		}
	}
	res.Reason = strings.Join(why, "; ")

	if b, err := json.Marshal(res); err == nil {
		_ = writeAtomic(filepath.Join(w.st.RunDir, resultName), b)
	}
	_ = removeCgroup(w.st.Cgroup, 2*time.Second)
	_ = removeCgroupsV1(w.st.CgroupV1, 2*time.Second)
	w.res = res
	close(w.done)
}

// signalText names a signal as people know it: "SIGTERM", else "signal 40". (syscall.Signal's own String is the
// C library's description, "killed" for SIGKILL, which made reasons read "killed by killed".)
func signalText(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return fmt.Sprintf("signal %d", int(sig))
}

// allocMessages are what programs commonly print when a host memory allocation fails (lower case).
var allocMessages = []string{
	"memory exhausted",       // GNU coreutils
	"out of memory",          // Go runtime, glibc, many
	"cannot allocate memory", // strerror(ENOMEM)
	"memoryerror",            // Python
	"bad_alloc",              // C++
	"out of space",           // dash
	"failed to allocate",     // assorted
	"allocation failed",      // Node.js
	"memory allocation of",   // Rust: "memory allocation of N bytes failed"
	"unable to allocate",     // NumPy
	"cannot reserve arena",   // Go runtime under RLIMIT_AS
}

// allocFailure returns the allocation-failure message found in the last 8 KiB the workload logged after
// offset, or "". Lines about GPU memory ("CUDA out of memory") do not count: that is not this limit.
func allocFailure(logPath string, offset int64) string {
	f, err := os.OpenFile(logPath, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	from := max(fi.Size()-8192, offset, 0)
	if from >= fi.Size() {
		return ""
	}
	b := make([]byte, fi.Size()-from)
	n, _ := f.ReadAt(b, from)
	for line := range bytes.SplitSeq(bytes.ToLower(b[:n]), []byte("\n")) {
		if bytes.Contains(line, []byte("cuda")) || bytes.Contains(line, []byte("gpu")) || bytes.Contains(line, []byte("device")) {
			continue
		}
		for _, m := range allocMessages {
			if bytes.Contains(line, []byte(m)) {
				return m
			}
		}
	}
	return ""
}
