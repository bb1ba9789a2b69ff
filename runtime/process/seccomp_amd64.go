package process

import "golang.org/x/sys/unix"

const (
	auditArch  = unix.AUDIT_ARCH_X86_64
	x32Bit     = 0x40000000 // __X32_SYSCALL_BIT
	offArg0Low = offArg0
)

// deniedArch are the x86-64-only calls refused (vm86 exists only for 32-bit x86, which the arch check kills).
var deniedArch = []uintptr{
	unix.SYS_IOPL, unix.SYS_IOPERM, unix.SYS_NFSSERVCTL, unix.SYS_USELIB, unix.SYS_USTAT, unix.SYS_SYSFS,
	unix.SYS__SYSCTL, unix.SYS_CREATE_MODULE, unix.SYS_GET_KERNEL_SYMS, unix.SYS_QUERY_MODULE,
	unix.SYS_VSERVER, unix.SYS_AFS_SYSCALL, unix.SYS_TUXCALL, unix.SYS_SECURITY, unix.SYS_GETPMSG,
	unix.SYS_PUTPMSG, unix.SYS_MODIFY_LDT, unix.SYS_KEXEC_FILE_LOAD,
}
