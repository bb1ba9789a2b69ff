package process

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sparenet/spare/runtime"
)

// The log copier: the workload's stdout and stderr are two pipes, read by a process of the daemon's user (a
// re-execution of the daemon's binary, like the sandbox init, recognized by this package's init function,
// started ahead of time and waiting on a socket for the pipes and files of the next lease: its Go start-up is
// off a lease's start), which appends what it reads to Spec.LogPath and, before those bytes, the index record
// that says when it read them and from which pipe (runtime.IndexPath; see runtime.LogWriter). The workload
// cannot reach either file: they belong to the daemon's user, mode 0600, in a directory the workload may only
// traverse. The copier is in a session of its own and, where the runtime has a cgroup v2 parent, in a cgroup of
// its own beside the lease's (lease-...-log: no limits), so it survives a daemon restart as the workload does;
// it exits when both pipes are closed by every process of the workload (each killed when the workload ends),
// after writing what it read. It holds a lock (flock on DIR/.process/logcopy.lock) for its whole life: the
// runtime's result waits up to logDrainWait for it, so the log is complete when the lease ends. It writes at
// most Spec.DiskBytes of log (when set; the index grows at most runtime.IndexSlack past the log); beyond that it
// keeps reading and drops what it reads, so the workload never blocks on a full pipe. It reads both pipes in one
// poll loop, a read of each ready one in turn, so neither stream waits behind the other. It takes nothing from
// the workload but the bytes it reads: its environment and arguments are the daemon's, its instructions come
// over the socket. Start lets the workload run once the copier reads (it answers on the socket), so that lines
// written at once to both streams are read in order as far as two pipes allow.

const (
	logCopyEnv  = "_SPARE_PROCESS_LOG_COPIER"
	logLockName = "logcopy.lock"
	// logDrainWait is how long a workload's result waits for its log copier to write the last of its output.
	logDrainWait = 2 * time.Second
	// logCopyBuf is the most one read takes from a pipe: one index record per read at most.
	logCopyBuf = 64 << 10
)

// copyFDCtl is the copier's control socket: it receives one message, 8 bytes (the limit, big-endian) with the
// stdout and stderr pipes' read ends, the log, the index and the lock (SCM_RIGHTS), answers one byte once it
// reads the pipes, and closes it.
const copyFDCtl = 3

// logReadyWait bounds how long Start waits for the copier to read before it lets the workload run.
const logReadyWait = time.Second

func init() {
	if _, ok := os.LookupEnv(logCopyEnv); ok {
		os.Exit(logCopyMain())
	}
}

// logCopyMain is the copier process.
func logCopyMain() int {
	ctl := os.NewFile(copyFDCtl, "ctl")
	if ctl == nil {
		return 2
	}
	unix.CloseOnExec(copyFDCtl)
	buf := make([]byte, 8)
	oob := make([]byte, unix.CmsgSpace(5*4))
	n, oobn, _, _, err := unix.Recvmsg(copyFDCtl, buf, oob, unix.MSG_CMSG_CLOEXEC)
	for err == unix.EINTR {
		n, oobn, _, _, err = unix.Recvmsg(copyFDCtl, buf, oob, unix.MSG_CMSG_CLOEXEC)
	}
	if err != nil || n == 0 {
		return 0 // the daemon went away, or no longer needs this copier
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 || n != 8 {
		return 2
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 5 {
		return 2
	}
	limit := int64(binary.BigEndian.Uint64(buf))
	lock := os.NewFile(uintptr(fds[4]), "lock") // held until this process exits
	defer lock.Close()
	w, err := runtime.NewLogWriterFiles(os.NewFile(uintptr(fds[2]), "log"), os.NewFile(uintptr(fds[3]), "log.index"), max(limit, 0))
	if err != nil {
		w = nil // still drain the pipes: the workload must not block on them
	}
	// One loop over both pipes, a read of each that is ready in turn: neither stream waits behind the other.
	pfds := []unix.PollFd{{Fd: int32(fds[0]), Events: unix.POLLIN}, {Fd: int32(fds[1]), Events: unix.POLLIN}}
	streams := []runtime.Stream{runtime.Stdout, runtime.Stderr}
	buf = make([]byte, logCopyBuf)
	_, _ = ctl.Write([]byte{1}) // it reads
	ctl.Close()
	for len(pfds) > 0 {
		if _, err := unix.Poll(pfds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return 2
		}
		for i := 0; i < len(pfds); i++ {
			if pfds[i].Revents == 0 {
				continue
			}
			n, err := unix.Read(int(pfds[i].Fd), buf)
			if n > 0 && w != nil {
				if w.Write(streams[i], time.Now(), buf[:n]) != nil {
					w = nil // a full disk: keep draining
				}
			}
			if n == 0 || (err != nil && err != unix.EINTR && err != unix.EAGAIN) {
				unix.Close(int(pfds[i].Fd))
				pfds = slices.Delete(pfds, i, i+1)
				streams = slices.Delete(streams, i, i+1)
				i--
			}
		}
	}
	return 0
}

// copierChild is a copier process that waits for its instructions.
type copierChild struct {
	cmd  *exec.Cmd
	ctl  *os.File // the daemon's end of the control socket
	done chan struct{}
}

// spawnCopier starts a copier process, in a session of its own, in the daemon's cgroup.
func spawnCopier() (*copierChild, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("process: log copier socket: %w", err)
	}
	parent, child := os.NewFile(uintptr(fds[0]), "log-copier"), os.NewFile(uintptr(fds[1]), "log-copier-child")
	defer child.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		parent.Close()
		return nil, fmt.Errorf("process: %w", err)
	}
	defer null.Close()
	cmd := &exec.Cmd{
		Path: "/proc/self/exe", Args: []string{"spare-log-copier"}, Env: []string{logCopyEnv + "=1"},
		Stdin: null, Stdout: null, Stderr: null,
		ExtraFiles:  []*os.File{child}, // fd 3
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		parent.Close()
		return nil, fmt.Errorf("process: start the log copier: %w", err)
	}
	c := &copierChild{cmd: cmd, ctl: parent, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *copierChild) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// takeCopier returns a started copier, the one started ahead when it is still there (Start starts the next one
// in the background once it is done: not while it starts a workload).
func (r *Runtime) takeCopier() (*copierChild, error) {
	r.poolMu.Lock()
	c := r.copiers
	r.copiers = nil
	r.poolMu.Unlock()
	if c != nil && c.alive() {
		return c, nil
	}
	if c != nil {
		c.ctl.Close()
	}
	return spawnCopier()
}

func (r *Runtime) refillCopier() {
	c, err := spawnCopier()
	if err != nil {
		return
	}
	r.poolMu.Lock()
	if r.copiers == nil {
		r.copiers, c = c, nil
	}
	r.poolMu.Unlock()
	if c != nil {
		c.ctl.Close() // it reads EOF and exits
	}
}

// logCopier is a started copier: the write ends of the pipes the workload gets, and how to wait for the end.
type logCopier struct {
	stdout, stderr *os.File
	cgroup         string // its cgroup v2 directory, "" if none
	done           chan struct{}
}

// closeWrite closes this process's write ends (once the workload has its own).
func (c *logCopier) closeWrite() {
	c.stdout.Close()
	c.stderr.Close()
}

// startLogCopier opens the log and its index (the daemon's, mode 0600, no link followed), gives them and two
// new pipes to a copier and waits until it reads them (up to logReadyWait); the caller gives the pipes' write
// ends to the workload, then calls closeWrite.
func (r *Runtime) startLogCopier(s runtime.Spec, runDir string) (*logCopier, error) {
	if err := os.MkdirAll(filepath.Dir(s.LogPath), 0o700); err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	open := func(path string, flag int) (*os.File, error) {
		f, err := os.OpenFile(path, flag|os.O_CREATE|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("process: log: %w", err)
		}
		files = append(files, f)
		fi, err := f.Stat()
		if err == nil && !fi.Mode().IsRegular() {
			err = fmt.Errorf("%s is not a regular file", path)
		}
		if err == nil {
			err = unix.SetNonblock(int(f.Fd()), false)
		}
		if err == nil {
			// An earlier run (before the copier existed) may have left it the lease's; now it is the daemon's.
			err = f.Chown(os.Geteuid(), os.Getegid())
			if err == nil {
				err = f.Chmod(0o600)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("process: log: %w", err)
		}
		return f, nil
	}
	logf, err := open(s.LogPath, os.O_RDWR|os.O_APPEND)
	if err != nil {
		return nil, err
	}
	idxf, err := open(runtime.IndexPath(s.LogPath), os.O_RDWR|os.O_APPEND)
	if err != nil {
		return nil, err
	}
	lockf, err := open(filepath.Join(runDir, logLockName), os.O_RDWR)
	if err != nil {
		return nil, err
	}
	// The lock is the copier's from now on: it stays held while any descriptor of this open file is, and the
	// copier keeps its own until it exits. An earlier run's copier still writing its last bytes gets a moment.
	err = unix.Flock(int(lockf.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	for deadline := time.Now().Add(logDrainWait); err != nil && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		err = unix.Flock(int(lockf.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}
	if err != nil {
		return nil, fmt.Errorf("process: the log copier of an earlier run of lease %d still runs (%s): %w", s.LeaseID, lockf.Name(), err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	files = append(files, outR)
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		return nil, fmt.Errorf("process: %w", err)
	}
	files = append(files, errR)
	lc := &logCopier{stdout: outW, stderr: errW}
	cc, err := r.takeCopier()
	if err != nil {
		lc.closeWrite()
		return nil, err
	}
	defer cc.ctl.Close()
	lc.done = cc.done
	if r.cg != nil {
		// A cgroup of its own, outside the daemon's (which a service manager may kill with the daemon).
		if dir, err := r.cg.createLease(leaseCgroupName(s.LeaseID, s.Dir)+"-log", leaseLimits{}); err == nil {
			if writeFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(cc.cmd.Process.Pid)) == nil {
				lc.cgroup = dir
			} else {
				_ = removeCgroup(dir, 0)
			}
		}
	}
	var lim [8]byte
	binary.BigEndian.PutUint64(lim[:], s.DiskBytes)
	rights := unix.UnixRights(int(outR.Fd()), int(errR.Fd()), int(logf.Fd()), int(idxf.Fd()), int(lockf.Fd()))
	if err := unix.Sendmsg(int(cc.ctl.Fd()), lim[:], rights, nil, 0); err != nil {
		_ = cc.cmd.Process.Kill()
		lc.closeWrite()
		_ = removeCgroup(lc.cgroup, time.Second)
		return nil, fmt.Errorf("process: log copier: %w", err)
	}
	// Its answer: it reads the pipes.
	pfd := []unix.PollFd{{Fd: int32(cc.ctl.Fd()), Events: unix.POLLIN}}
	for deadline := time.Now().Add(logReadyWait); ; {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		if _, err := unix.Poll(pfd, int(left/time.Millisecond)+1); err != unix.EINTR {
			break
		}
	}
	return lc, nil
}

// waitLogCopier waits up to d for the copier of the workload whose runtime directory is runDir to end (its
// lock free), and removes its cgroup. It reports whether it ended.
func waitLogCopier(runDir, cgroup string, done <-chan struct{}, d time.Duration) bool {
	deadline := time.Now().Add(d)
	ended := false
	if done != nil {
		select {
		case <-done:
			ended = true
		case <-time.After(d):
		}
	} else {
		f, err := os.OpenFile(filepath.Join(runDir, logLockName), os.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			ended = true // no copier ever ran (a workload started before it existed)
		} else {
			for {
				if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
					ended = true
					break
				}
				if time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			f.Close()
		}
	}
	if ended && cgroup != "" {
		_ = removeCgroup(cgroup, time.Until(deadline))
	}
	return ended
}
