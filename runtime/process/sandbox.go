package process

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sparenet/spare/runtime"
)

// The sandbox: a root daemon starts each workload as a re-execution of its own binary (/proc/self/exe) in new
// mount, PID and IPC namespaces. Go cannot run code between fork and exec, so the set-up runs in that child,
// in the init function below, before any main: every binary that imports this package (the spare binary,
// test binaries) can play the sandbox's init. It builds the workload's view of the file system, drops to the
// lease's uid, sets no_new_privs and the seccomp filter, and execs the sh wrapper, which becomes PID 1 of the
// lease's PID namespace. When it exits, the kernel kills every process left in the namespace.
//
// The child learns what to do from the daemon over a socket (fd 5), not from its environment or arguments
// (the tenant's environment is arbitrary, and would configure the Go runtime of a root process). It answers
// on the same socket with an error, or closes it by exec'ing (the socket is close-on-exec): EOF without a
// word means the wrapper runs.

// sandboxEnv marks the child as a sandbox init. Only its presence matters; the init never returns.
const sandboxEnv = "_SPARE_PROCESS_SANDBOX_INIT"

// sandboxFD is the control socket's descriptor in the child (after stdio, the status file and the gate).
const sandboxFD = 5

// sandboxCloneFlags are the namespaces of a sandboxed workload.
const sandboxCloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC

// devNode is a device node the sandbox's /dev gets.
type devNode struct {
	Path  string `json:"path"` // under /dev
	Major uint32 `json:"major"`
	Minor uint32 `json:"minor"`
	Mode  uint32 `json:"mode"` // permission bits
}

// sandboxConfig is what the daemon sends the sandbox init.
type sandboxConfig struct {
	UID, GID    int
	WorkDir     string
	HidePaths   []string
	DiskBytes   uint64 // size of /tmp and /var/tmp (0: tmpfs default, half the RAM; charged to the memory cgroup)
	MemoryBytes uint64 // size of /dev/shm (0: tmpfs default)
	Devices     []devNode
	Rlimits     []rlimit
	Args        []string // the program to exec (Args[0] is its path)
	Env         []string
	Probe       bool // check the sandbox from the inside, answer "ok" and exit instead of exec'ing
	// Binds are the mounts of Spec.ReadOnlyPaths beneath WorkDir (runtime.ReadOnlyMounts), made by bindReadOnly.
	Binds []runtime.BindMount
}

func init() {
	if _, ok := os.LookupEnv(sandboxEnv); ok {
		sandboxMain()
	}
}

// sandboxMain is the sandbox init; it never returns.
func sandboxMain() {
	goruntime.LockOSThread() // no_new_privs and seccomp are per thread: the exec must come from this one
	ctl := os.NewFile(sandboxFD, "sandbox")
	fail := func(err error) {
		fmt.Fprintf(ctl, "sandbox: %v", err)
		os.Exit(126)
	}
	if ctl == nil {
		os.Exit(126)
	}
	unix.CloseOnExec(sandboxFD)
	if err := receiveStdio(); err != nil {
		fail(err)
	}
	var c sandboxConfig
	if err := json.NewDecoder(io.LimitReader(ctl, 64<<20)).Decode(&c); err != nil {
		fail(fmt.Errorf("config: %w", err))
	}
	if len(c.Args) == 0 {
		fail(errors.New("config: no program"))
	}
	if err := sandboxSetup(&c); err != nil {
		fail(err)
	}
	if c.Probe {
		if err := probeInside(&c); err != nil {
			fail(err)
		}
		fmt.Fprint(ctl, "ok")
		os.Exit(0)
	}
	err := syscall.Exec(c.Args[0], c.Args, c.Env)
	fail(fmt.Errorf("exec %s: %w", c.Args[0], err))
}

// receiveStdio waits for the daemon's first message: one byte with the workload's stdout, stderr, status file
// and go-ahead pipe (SCM_RIGHTS), which become fds 1 to 4 (3 and 4 hold /dev/null until then, so that nothing
// of the Go runtime's took them); stdin is /dev/null.
func receiveStdio() error {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := unix.Recvmsg(sandboxFD, buf, oob, unix.MSG_CMSG_CLOEXEC)
	for err == unix.EINTR {
		n, oobn, _, _, err = unix.Recvmsg(sandboxFD, buf, oob, unix.MSG_CMSG_CLOEXEC)
	}
	if err != nil {
		return fmt.Errorf("receive stdio: %w", err)
	}
	if n == 0 {
		os.Exit(0) // the daemon went away, or no longer needs this init
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return fmt.Errorf("receive stdio: %d control messages (%v)", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 4 {
		return fmt.Errorf("receive stdio: %d descriptors (%v)", len(fds), err)
	}
	null, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/null: %w", err)
	}
	for i, fd := range append([]int{null}, fds...) {
		if err := unix.Dup3(fd, i, 0); err != nil {
			return fmt.Errorf("dup3 %d: %w", i, err)
		}
		unix.Close(fd)
	}
	return nil
}

// sandboxSetup builds the workload's view and drops privileges; on return the calling thread runs as the
// lease's uid with no_new_privs and the seccomp filter.
func sandboxSetup(c *sandboxConfig) error {
	oldMask := unix.Umask(0)
	work := filepath.Clean(c.WorkDir)
	if !filepath.IsAbs(work) || work == "/" {
		return fmt.Errorf("bad work dir %q", c.WorkDir)
	}
	// Nothing done here propagates back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	// A writable copy of the work dir's mount, detached until everything above it is in place.
	wfd, err := unix.OpenTree(unix.AT_FDCWD, work, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", work, err)
	}
	defer unix.Close(wfd)
	if err := unix.MountSetattr(wfd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}); err != nil {
		return fmt.Errorf("mount_setattr %s: %w", work, err)
	}
	// The host's file system: read-only, no setuid, no devices, all the way down.
	ro := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(unix.AT_FDCWD, "/", unix.AT_RECURSIVE, ro); err != nil {
		return fmt.Errorf("read-only /: %w", err)
	}
	// Its own processes only.
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	// As Docker: the kernel's knobs in /proc read-only (an unprivileged uid cannot write most of them anyway).
	for _, p := range []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"} {
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", p, err)
		}
		if err := unix.MountSetattr(unix.AT_FDCWD, p, unix.AT_RECURSIVE, ro); err != nil {
			return fmt.Errorf("read-only %s: %w", p, err)
		}
	}
	if err := setupDev(c); err != nil {
		return err
	}
	for _, d := range []string{"/tmp", "/var/tmp"} {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			continue
		}
		if err := mountTmpfs(d, 0o1777, c.DiskBytes, unix.MS_NOSUID|unix.MS_NODEV); err != nil {
			return err
		}
	}
	var hidden []string
	for _, p := range c.HidePaths {
		p = filepath.Clean(p)
		if !filepath.IsAbs(p) || p == "/" {
			return fmt.Errorf("cannot hide %q: not an absolute path below /", p)
		}
		fi, err := os.Stat(p)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			continue // absent from this view (under /tmp, say): nothing to hide
		}
		if err != nil {
			return fmt.Errorf("cannot hide %s: %w", p, err)
		}
		if fi.IsDir() {
			if err := mountTmpfs(p, 0o755, 1<<20, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC); err != nil {
				return fmt.Errorf("hide %s: %w", p, err)
			}
			hidden = append(hidden, p)
		} else if err := unix.Mount("/dev/null", p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("hide %s: %w", p, err)
		} else if err := unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("hide %s: %w", p, err)
		}
	}
	// The work dir at its own path, writable, even where a tmpfs or a hidden path now covers it.
	if err := os.MkdirAll(work, 0o755); err != nil {
		return fmt.Errorf("work dir mount point: %w", err)
	}
	if err := unix.MoveMount(wfd, "", unix.AT_FDCWD, work, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount %s: %w", work, err)
	}
	if err := bindReadOnly(work, c.Binds); err != nil {
		return err
	}
	for _, p := range hidden {
		if err := unix.Mount("", p, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=1m,mode=0755"); err != nil {
			return fmt.Errorf("hide %s read-only: %w", p, err)
		}
	}
	if err := unix.Chdir(work); err != nil {
		return fmt.Errorf("chdir %s: %w", work, err)
	}
	for _, l := range c.Rlimits {
		if err := unix.Prlimit(0, l.Res, &unix.Rlimit{Cur: l.V, Max: l.V}, nil); err != nil {
			return fmt.Errorf("rlimit %s: %w", l.Name, err)
		}
	}
	// The credentials of this thread only (the raw calls, not syscall.Setuid, which stops every thread of the
	// process to change them all: milliseconds): the Go runtime's other threads stay root until the exec, which
	// ends them, and run nothing of the tenant's in the meantime. Only this thread goes on, locked.
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(c.GID), uintptr(c.GID), uintptr(c.GID)); e != 0 {
		return fmt.Errorf("setresgid %d: %w", c.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(c.UID), uintptr(c.UID), uintptr(c.UID)); e != 0 {
		return fmt.Errorf("setresuid %d: %w", c.UID, e)
	}
	// Getresuid and Getresgid return C ints: ids at or above 2³¹ (uid_base may place them there) come back
	// negative, so compare as uid_t.
	ru, eu, su := unix.Getresuid()
	rg, eg, sg := unix.Getresgid()
	u, gi := uint32(c.UID), uint32(c.GID)
	if uint32(ru) != u || uint32(eu) != u || uint32(su) != u || uint32(rg) != gi || uint32(eg) != gi || uint32(sg) != gi {
		return errors.New("privileges were not dropped")
	}
	if n, err := unix.Getgroups(); err != nil || len(n) != 0 {
		return fmt.Errorf("supplementary groups remain: %v %v", n, err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	if err := installSeccomp(); err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	unix.Umask(oldMask)
	return nil
}

// bindReadOnly makes the mounts of the read-only paths beneath the work dir, now in place at work: each path
// bound onto itself, recursively (open_tree with OPEN_TREE_CLONE and AT_RECURSIVE of the path, moved back onto
// it), nosuid and nodev, and read-only unless it is a directory above a read-only path. Each is opened with
// openat2 beneath the work dir, no symbolic link followed in any element (the last one included: a link is
// refused as neither a file nor a directory), and the clone is taken from, and moved onto, that descriptor,
// so what is bound is what the work dir holds at the path. binds come in runtime.ReadOnlyMounts' order, a
// directory before what it holds, so that a read-only path is never cloned writable under a directory's mount.
func bindReadOnly(work string, binds []runtime.BindMount) error {
	if len(binds) == 0 {
		return nil
	}
	wd, err := unix.Open(work, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", work, err)
	}
	defer unix.Close(wd)
	for _, b := range binds {
		if err := runtime.CheckReadOnlyPath(b.Path); err != nil {
			return err
		}
		if err := bindOnItself(wd, b); err != nil {
			return fmt.Errorf("read-only path %q: %w", b.Path, err)
		}
	}
	return nil
}

func bindOnItself(wd int, b runtime.BindMount) error {
	fd, err := unix.Openat2(wd, b.Path, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return fmt.Errorf("openat2 (no link followed): %w", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("fstat: %w", err)
	}
	switch t := st.Mode & unix.S_IFMT; {
	case t == unix.S_IFDIR:
	case t == unix.S_IFREG && b.ReadOnly:
	case b.ReadOnly:
		return fmt.Errorf("neither a regular file nor a directory (mode %#o)", st.Mode)
	default:
		return fmt.Errorf("not a directory (mode %#o)", st.Mode)
	}
	tree, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("open_tree: %w", err)
	}
	defer unix.Close(tree)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if b.ReadOnly {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		return fmt.Errorf("mount_setattr: %w", err)
	}
	if err := unix.MoveMount(tree, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// mountTmpfs mounts a fresh tmpfs on dir (size 0: the kernel's default).
func mountTmpfs(dir string, mode uint32, size uint64, flags uintptr) error {
	opt := fmt.Sprintf("mode=%04o", mode)
	if size > 0 {
		opt += ",size=" + strconv.FormatUint(size, 10)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", flags, opt); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return nil
}

// setupDev mounts a minimal /dev: the usual character devices, a private devpts, a private /dev/shm, and the
// lease's GPU devices.
func setupDev(c *sandboxConfig) error {
	if err := unix.Mount("tmpfs", "/dev", "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=65536,nr_inodes=1024"); err != nil {
		return fmt.Errorf("mount /dev: %w", err)
	}
	nodes := append([]devNode{
		{"null", 1, 3, 0o666}, {"zero", 1, 5, 0o666}, {"full", 1, 7, 0o666},
		{"random", 1, 8, 0o666}, {"urandom", 1, 9, 0o666}, {"tty", 5, 0, 0o666},
	}, c.Devices...)
	for _, n := range nodes {
		p := filepath.Join("/dev", filepath.Base(n.Path))
		if err := unix.Mknod(p, unix.S_IFCHR|n.Mode&0o777, int(unix.Mkdev(n.Major, n.Minor))); err != nil {
			return fmt.Errorf("mknod %s: %w", p, err)
		}
	}
	for _, d := range []string{"/dev/pts", "/dev/shm"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", d, err)
		}
	}
	if err := unix.Mount("devpts", "/dev/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return fmt.Errorf("mount /dev/pts: %w", err)
	}
	if err := mountTmpfs("/dev/shm", 0o1777, c.MemoryBytes, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC); err != nil {
		return err
	}
	for name, target := range map[string]string{
		"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
		"stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, "/dev/"+name); err != nil {
			return fmt.Errorf("symlink /dev/%s: %w", name, err)
		}
	}
	if err := unix.Mount("", "/dev", "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=65536,nr_inodes=1024"); err != nil {
		return fmt.Errorf("/dev read-only: %w", err)
	}
	return nil
}

// probeInside checks, as the workload would run, that the sandbox holds: the guarantees a probe reports OK
// are the ones seen here.
func probeInside(c *sandboxConfig) error {
	var errs []error
	check := func(what string, ok bool) {
		if !ok {
			errs = append(errs, errors.New(what))
		}
	}
	st, _ := os.ReadFile("/proc/self/status")
	check("no_new_privs not set", strings.Contains(string(st), "NoNewPrivs:\t1"))
	check("seccomp not in filter mode", strings.Contains(string(st), "Seccomp:\t2"))
	// The filter answers before the kernel looks at the arguments: EPERM and ENOSYS where the kernel itself
	// would say EINVAL (clone of a new user namespace with CLONE_THREAD, unshare in a multi-threaded process,
	// clone3 with no arguments).
	_, _, e := unix.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWUSER, 0, 0)
	check(fmt.Sprintf("unshare(CLONE_NEWUSER) = %v, want EPERM", e), e == unix.EPERM)
	_, _, e = unix.RawSyscall6(unix.SYS_CLONE, unix.CLONE_NEWUSER|unix.CLONE_THREAD, 0, 0, 0, 0, 0)
	check(fmt.Sprintf("clone(CLONE_NEWUSER) = %v, want EPERM", e), e == unix.EPERM)
	_, _, e = unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)
	check(fmt.Sprintf("clone3 = %v, want ENOSYS", e), e == unix.ENOSYS)
	_, _, e = unix.RawSyscall(unix.SYS_KEYCTL, 0, 0, 0)
	check(fmt.Sprintf("keyctl = %v, want EPERM", e), e == unix.EPERM)
	check("mount is allowed", unix.Mount("tmpfs", "/tmp", "tmpfs", 0, "") == unix.EPERM)
	// The view.
	for _, p := range []string{"/", "/etc", "/usr", "/proc/sys"} {
		var fs unix.Statfs_t
		check(p+" is not read-only", unix.Statfs(p, &fs) == nil && fs.Flags&unix.ST_RDONLY != 0)
	}
	check("/tmp is not writable", unix.Access("/tmp", unix.W_OK) == nil)
	check("the work dir is not writable", unix.Access(c.WorkDir, unix.W_OK) == nil)
	if ents, err := os.ReadDir("/proc"); err == nil {
		n := 0
		for _, e := range ents {
			if _, err := strconv.Atoi(e.Name()); err == nil {
				n++
			}
		}
		check(fmt.Sprintf("/proc shows %d processes, want 1", n), n == 1)
	} else {
		check("/proc unreadable", false)
	}
	check("not PID 1 of its namespace", os.Getpid() == 1)
	check("uid not dropped", os.Getuid() == c.UID && os.Geteuid() == c.UID)
	return errors.Join(errs...)
}

// sandboxChild is the daemon's end of a sandbox init: started, waiting for its instructions.
type sandboxChild struct {
	cmd    *exec.Cmd
	parent *os.File // the daemon's end of the control socket
}

// spawnSandbox starts a sandbox init in its new namespaces; it waits for run.
func spawnSandbox() (*sandboxChild, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("process: sandbox socket: %w", err)
	}
	parent, child := os.NewFile(uintptr(fds[0]), "sandbox"), os.NewFile(uintptr(fds[1]), "sandbox-child")
	defer child.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		parent.Close()
		return nil, fmt.Errorf("process: %w", err)
	}
	defer null.Close()
	cmd := &exec.Cmd{
		Path: "/proc/self/exe", Args: []string{"spare-sandbox"}, Env: []string{sandboxEnv + "=1"},
		ExtraFiles: []*os.File{null, null, child}, // fd 3, 4 (placeholders), 5
		// As root, in its new namespaces: the init drops privileges itself.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true, Cloneflags: sandboxCloneFlags},
	}
	if err := cmd.Start(); err != nil {
		parent.Close()
		return nil, fmt.Errorf("process: start the sandbox (mount, pid and ipc namespaces): %w", err)
	}
	return &sandboxChild{cmd: cmd, parent: parent}, nil
}

// alive reports whether the init still waits (it exits when the daemon's end closes, or on a signal).
func (s *sandboxChild) alive() bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, s.cmd.Process.Pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	if err != nil {
		return false
	}
	// si_pid (after si_signo, si_errno, si_code) is 0 when no child changed state.
	return (*struct{ signo, errno, code, pid int32 })(unsafe.Pointer(&info)).pid == 0
}

// discard ends an unused init: it reads EOF and exits.
func (s *sandboxChild) discard() {
	s.parent.Close()
	go s.cmd.Wait()
}

func (s *sandboxChild) close() { s.parent.Close() }

// takeSandbox returns a started sandbox init, the one started ahead when it is still there, and starts the
// next one in the background.
func (r *Runtime) takeSandbox() (*sandboxChild, error) {
	r.poolMu.Lock()
	s := r.pool
	r.pool = nil
	r.poolMu.Unlock()
	go r.refillSandbox()
	if s != nil && s.alive() {
		return s, nil
	}
	if s != nil {
		s.discard()
	}
	return spawnSandbox()
}

func (r *Runtime) refillSandbox() {
	s, err := spawnSandbox()
	if err != nil {
		return
	}
	r.poolMu.Lock()
	if r.pool == nil {
		r.pool, s = s, nil
	}
	r.poolMu.Unlock()
	if s != nil {
		s.discard()
	}
}

// run sends the workload's stdio and the configuration to the init and waits until it exec'd (""), failed
// (its error), or timeout passed.
func (s *sandboxChild) run(c sandboxConfig, stdio [4]*os.File, timeout time.Duration) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	fds := make([]int, len(stdio))
	for i, f := range stdio {
		fds[i] = int(f.Fd())
	}
	// The socket stays blocking: a timer ends the wait instead, by killing the init.
	t := time.AfterFunc(timeout, func() { _ = s.cmd.Process.Kill() })
	defer t.Stop()
	if err := unix.Sendmsg(int(s.parent.Fd()), []byte{1}, unix.UnixRights(fds...), nil, 0); err != nil {
		return "", fmt.Errorf("process: sandbox: send stdio: %w", err)
	}
	if _, err := s.parent.Write(b); err != nil {
		return "", fmt.Errorf("process: sandbox: send configuration: %w", err)
	}
	reply, err := io.ReadAll(io.LimitReader(s.parent, 1<<16))
	if err != nil {
		return "", fmt.Errorf("process: sandbox: %w", err)
	}
	if len(reply) == 0 && !t.Stop() {
		return "", fmt.Errorf("process: sandbox: no answer in %v", timeout)
	}
	return string(reply), nil
}
