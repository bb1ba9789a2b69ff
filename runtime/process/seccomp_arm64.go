package process

import "golang.org/x/sys/unix"

const (
	auditArch  = unix.AUDIT_ARCH_AARCH64
	x32Bit     = 0
	offArg0Low = offArg0
)

// deniedArch are the arm64-only calls refused (arm64 never had the legacy x86 ones).
var deniedArch = []uintptr{unix.SYS_NFSSERVCTL, unix.SYS_KEXEC_FILE_LOAD}
