package process

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The seccomp filter of sandboxed workloads, close to Docker's default profile for an unprivileged container:
// an allow-list by default, with the system calls below refused. What Docker allows only with a capability the
// workload never has (CAP_SYS_ADMIN, CAP_SYS_MODULE, CAP_SYS_TIME...) is refused outright here, since the
// workload runs as an unprivileged uid anyway; the filter's point is the calls an unprivileged process CAN make
// that widen the kernel's attack surface or the workload's view: namespaces (unshare, setns, clone with
// CLONE_NEW*: user namespaces especially), the mount APIs, keyrings, bpf, perf, userfaultfd, io_uring.
//
// ptrace and process_vm_readv/writev are allowed, as Docker does on Linux ≥ 4.8 (seccomp is then applied
// after a tracer changes a system call, so ptrace cannot bypass the filter): the workload's pid namespace and
// per-lease uid leave it only its own processes to trace, and debuggers and profilers (gdb, py-spy) need it.
//
// A system call of another architecture (a 32-bit int 0x80 on x86-64) kills the process: its numbers mean
// other calls, and this filter only knows the native ones. x32 calls (x86-64 numbers with bit 30 set) fail
// with ENOSYS.

// nsCloneFlags are the clone(2) flags that make namespaces.
const nsCloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// deniedCommon are refused with EPERM on every architecture.
var deniedCommon = []uintptr{
	unix.SYS_UNSHARE, unix.SYS_SETNS,
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_CHROOT,
	unix.SYS_FSOPEN, unix.SYS_FSCONFIG, unix.SYS_FSMOUNT, unix.SYS_MOVE_MOUNT, unix.SYS_OPEN_TREE, unix.SYS_FSPICK,
	unix.SYS_MOUNT_SETATTR,
	unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY,
	unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN, unix.SYS_USERFAULTFD, unix.SYS_FANOTIFY_INIT,
	unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER,
	unix.SYS_KEXEC_LOAD,
	unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE,
	unix.SYS_ACCT, unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_REBOOT,
	unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME, unix.SYS_CLOCK_ADJTIME, unix.SYS_ADJTIMEX,
	unix.SYS_QUOTACTL, unix.SYS_QUOTACTL_FD, unix.SYS_LOOKUP_DCOOKIE,
	unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_NAME_TO_HANDLE_AT,
	unix.SYS_SYSLOG, unix.SYS_VHANGUP, unix.SYS_SETHOSTNAME, unix.SYS_SETDOMAINNAME,
}

// allowedPersonality are the personality(2) values Docker allows: PER_LINUX, PER_LINUX|UNAME26,
// PER_LINUX32, PER_LINUX32|UNAME26 and 0xffffffff (a query).
var allowedPersonality = []uint32{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

const (
	retAllow = unix.SECCOMP_RET_ALLOW
	retEPERM = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retNOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	retKill  = unix.SECCOMP_RET_KILL_PROCESS

	// offsets in struct seccomp_data
	offNr   = 0
	offArch = 4
	offArg0 = 16 // low 32 bits on little-endian machines
)

func bpfStmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
func bpfJump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

// seccompProgram builds the filter for this architecture, or an error where it has none.
func seccompProgram() ([]unix.SockFilter, error) {
	if auditArch == 0 || offArg0Low == 0 {
		return nil, errors.New("no seccomp filter for this architecture")
	}
	const (
		ldW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
	)
	p := []unix.SockFilter{
		bpfStmt(ldW, offArch),
		bpfJump(jeq, auditArch, 1, 0),
		bpfStmt(ret, retKill),
		bpfStmt(ldW, offNr),
	}
	if x32Bit != 0 {
		p = append(p, bpfJump(jset, x32Bit, 0, 1), bpfStmt(ret, retNOSYS))
	}
	deny := func(nr uintptr, action uint32) {
		p = append(p, bpfJump(jeq, uint32(nr), 0, 1), bpfStmt(ret, action))
	}
	for _, nr := range deniedCommon {
		deny(nr, retEPERM)
	}
	for _, nr := range deniedArch {
		deny(nr, retEPERM)
	}
	// clone3 passes its flags in memory, out of a filter's reach: ENOSYS makes libc fall back to clone.
	deny(unix.SYS_CLONE3, retNOSYS)
	// clone: refuse namespace flags (the first argument on every architecture).
	p = append(p,
		bpfJump(jeq, uint32(unix.SYS_CLONE), 0, 4),
		bpfStmt(ldW, offArg0Low),
		bpfJump(jset, nsCloneFlags, 0, 1),
		bpfStmt(ret, retEPERM),
		bpfStmt(ret, retAllow),
	)
	// personality: only the safe values.
	n := len(allowedPersonality)
	p = append(p, bpfJump(jeq, uint32(unix.SYS_PERSONALITY), 0, uint8(n+3)), bpfStmt(ldW, offArg0Low))
	for i, v := range allowedPersonality {
		p = append(p, bpfJump(jeq, v, uint8(n-i), 0))
	}
	p = append(p, bpfStmt(ret, retEPERM), bpfStmt(ret, retAllow))
	p = append(p, bpfStmt(ret, retAllow))
	return p, nil
}

// installSeccomp installs the filter on the calling thread (which must have no_new_privs set, and then exec:
// the filter is inherited by the new program).
func installSeccomp() error {
	prog, err := seccompProgram()
	if err != nil {
		return err
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return errno
	}
	return nil
}
