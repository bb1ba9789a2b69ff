package process

import (
	"encoding/binary"
	"fmt"
	"os"
	goruntime "runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The bind filter: process workloads share the host's network namespace, so nothing else stops one lease from
// binding a port of the provider's service or cluster range that was handed to another lease, before that one
// binds it. A small BPF program attached to the lease's cgroup v2 (BPF_CGROUP_INET4_BIND and INET6_BIND) refuses
// (EPERM) every bind of the lease's processes to a port inside Spec.BindRanges that is not in Spec.BindAllowed;
// ports outside the ranges (and port 0) are left alone. The program is attached before the go-ahead and stays
// with the cgroup until it is removed. It needs a cgroup v2 directory (a hybrid host's unified hierarchy does,
// controllers or not) and a kernel with cgroup BPF.

const (
	bpfProgLoad   = 5
	bpfProgAttach = 8

	bpfProgTypeCgroupSockAddr = 18
	bpfCgroupInet4Bind        = 8
	bpfCgroupInet6Bind        = 9

	sockAddrUserPort = 24 // offsetof(struct bpf_sock_addr, user_port): network byte order
)

// bpfInsn is one eBPF instruction.
type bpfInsn struct {
	code uint8
	regs uint8 // dst | src<<4
	off  int16
	imm  int32
}

func (i bpfInsn) bytes() []byte {
	b := make([]byte, 8)
	b[0], b[1] = i.code, i.regs
	binary.LittleEndian.PutUint16(b[2:], uint16(i.off))
	binary.LittleEndian.PutUint32(b[4:], uint32(i.imm))
	return b
}

// bindFilterProgram assembles the filter: allow the allowed ports, refuse the rest of the ranges, allow all else.
func bindFilterProgram(ranges [][2]int, allowed []int) []bpfInsn {
	const (
		movReg  = 0xbf // BPF_ALU64|BPF_MOV|BPF_X
		movImm  = 0xb7 // BPF_ALU64|BPF_MOV|BPF_K
		ldxW    = 0x61 // BPF_LDX|BPF_MEM|BPF_W
		toBE    = 0xdc // BPF_ALU|BPF_END|BPF_TO_BE
		jeqImm  = 0x15
		jgtImm  = 0x25
		jltImm  = 0xa5
		ja      = 0x05
		exitIns = 0x95
	)
	p := []bpfInsn{
		{code: movReg, regs: 6 | 1<<4},                      // r6 = ctx
		{code: ldxW, regs: 2 | 6<<4, off: sockAddrUserPort}, // r2 = ctx->user_port (network order)
		{code: toBE, regs: 2, imm: 16},                      // r2 = the port in host order
	}
	// Jumps are relative to the next instruction; allow and deny are the last four instructions, placed once
	// the body's length is known.
	type fix struct {
		at    int
		allow bool
	}
	var fixes []fix
	for _, a := range allowed {
		fixes = append(fixes, fix{len(p), true})
		p = append(p, bpfInsn{code: jeqImm, regs: 2, imm: int32(a)})
	}
	for _, r := range ranges {
		p = append(p,
			bpfInsn{code: jltImm, regs: 2, off: 2, imm: int32(r[0])}, // below the range: next range
			bpfInsn{code: jgtImm, regs: 2, off: 1, imm: int32(r[1])}, // above it: next range
		)
		fixes = append(fixes, fix{len(p), false})
		p = append(p, bpfInsn{code: ja})
	}
	allow := len(p)
	p = append(p, bpfInsn{code: movImm, imm: 1}, bpfInsn{code: exitIns})
	deny := len(p)
	p = append(p, bpfInsn{code: movImm, imm: 0}, bpfInsn{code: exitIns})
	for _, f := range fixes {
		target := deny
		if f.allow {
			target = allow
		}
		p[f.at].off = int16(target - f.at - 1)
	}
	return p
}

// bindPrograms keeps the loaded filters by their ports: most leases (no service ports) share one pair, and
// loading and verifying a program costs more than attaching it. A program stays loaded while it is cached.
type bindPrograms struct {
	mu    sync.Mutex
	progs map[string][2]int // "ranges|allowed" -> program fds for INET4_BIND, INET6_BIND
}

// attachBindFilter attaches the filter for ranges and allowed to the cgroup v2 directory cgDir, for IPv4 and
// IPv6 binds.
func (b *bindPrograms) attach(cgDir string, ranges [][2]int, allowed []int) error {
	key := fmt.Sprint(ranges, "|", allowed)
	b.mu.Lock()
	fds, ok := b.progs[key]
	if !ok {
		var err error
		if fds, err = loadBindFilter(ranges, allowed); err != nil {
			b.mu.Unlock()
			return err
		}
		if b.progs == nil {
			b.progs = map[string][2]int{}
		}
		if len(b.progs) >= 256 { // leases with their own service ports: do not keep them all
			for k, v := range b.progs {
				unix.Close(v[0])
				unix.Close(v[1])
				delete(b.progs, k)
			}
		}
		b.progs[key] = fds
	}
	b.mu.Unlock()
	cg, err := os.Open(cgDir)
	if err != nil {
		return err
	}
	defer cg.Close()
	for i, at := range []uint32{bpfCgroupInet4Bind, bpfCgroupInet6Bind} {
		attach := struct{ target, prog, attachType, flags, replace uint32 }{
			target: uint32(cg.Fd()), prog: uint32(fds[i]), attachType: at}
		_, _, errno := unix.Syscall(unix.SYS_BPF, bpfProgAttach, uintptr(unsafe.Pointer(&attach)), unsafe.Sizeof(attach))
		if errno != 0 {
			return fmt.Errorf("attach the bind filter to %s: %w", cgDir, errno)
		}
	}
	return nil
}

// attachBindFilter loads the filter and attaches it to cgDir (uncached).
func attachBindFilter(cgDir string, ranges [][2]int, allowed []int) error {
	var b bindPrograms
	defer func() {
		for _, v := range b.progs {
			unix.Close(v[0])
			unix.Close(v[1])
		}
	}()
	return b.attach(cgDir, ranges, allowed)
}

// loadBindFilter loads the filter twice, for the two attach types (a CGROUP_SOCK_ADDR program names its own).
func loadBindFilter(ranges [][2]int, allowed []int) (fds [2]int, err error) {
	prog := bindFilterProgram(ranges, allowed)
	code := make([]byte, 0, 8*len(prog))
	for _, i := range prog {
		code = append(code, i.bytes()...)
	}
	license := []byte("GPL\x00")
	for n, at := range []uint32{bpfCgroupInet4Bind, bpfCgroupInet6Bind} {
		fd, err := bpfLoad(code, len(prog), license, at, nil)
		if err != nil {
			logBuf := make([]byte, 4096) // again, for the verifier's reason
			_, err = bpfLoad(code, len(prog), license, at, logBuf)
			if n == 1 {
				unix.Close(fds[0])
			}
			return fds, fmt.Errorf("load the bind filter: %w (%s)", err, cstring(logBuf))
		}
		fds[n] = fd
	}
	goruntime.KeepAlive(code)
	goruntime.KeepAlive(license)
	return fds, nil
}

func bpfLoad(code []byte, n int, license []byte, attachType uint32, logBuf []byte) (int, error) {
	load := struct {
		progType, insnCnt  uint32
		insns, license     uint64
		logLevel, logSize  uint32
		logBuf             uint64
		kernVersion, flags uint32
		name               [16]byte
		ifindex, expected  uint32
	}{progType: bpfProgTypeCgroupSockAddr, insnCnt: uint32(n),
		insns: uint64(uintptr(unsafe.Pointer(&code[0]))), license: uint64(uintptr(unsafe.Pointer(&license[0]))),
		expected: attachType}
	if len(logBuf) > 0 {
		load.logLevel, load.logSize, load.logBuf = 1, uint32(len(logBuf)), uint64(uintptr(unsafe.Pointer(&logBuf[0])))
	}
	copy(load.name[:], "spare_bind")
	fd, _, errno := unix.Syscall(unix.SYS_BPF, bpfProgLoad, uintptr(unsafe.Pointer(&load)), unsafe.Sizeof(load))
	goruntime.KeepAlive(code)
	goruntime.KeepAlive(license)
	goruntime.KeepAlive(logBuf)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
