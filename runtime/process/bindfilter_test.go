package process

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestBindFilter: a process in a cgroup with the bind filter cannot bind a port of the filtered ranges that it was
// not given (EPERM), over IPv4 or IPv6, and can bind the ports it was given and any port outside the ranges.
func TestBindFilter(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a cgroup and load a BPF program")
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("needs python3 to bind sockets from the filtered process")
	}
	mount, err := cgroup2Mount()
	if err != nil {
		t.Skipf("no cgroup v2 hierarchy: %v", err)
	}
	dir := filepath.Join(mount, fmt.Sprintf("spare-bindtest-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	if err := attachBindFilter(dir, [][2]int{{31900, 31949}, {29590, 29599}}, []int{31905, 29591}); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("no cgroup BPF here: %v", err)
	}
	bind := func(family string, port int) string {
		t.Helper()
		script := fmt.Sprintf(`import socket
s = socket.socket(socket.%s)
try:
    s.bind(("%s", %d)); print("ok")
except OSError as e:
    print("errno", e.errno)`, family, map[string]string{"AF_INET": "127.0.0.1", "AF_INET6": "::1"}[family], port)
		cg, err := os.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer cg.Close()
		cmd := exec.Command(py, "-c", script)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, tc := range []struct {
		family string
		port   int
		want   string
	}{
		{"AF_INET", 31905, "ok"},      // given
		{"AF_INET", 29591, "ok"},      // given (a rendezvous port)
		{"AF_INET", 31906, "errno 1"}, // in the range, not given: EPERM
		{"AF_INET", 31900, "errno 1"},
		{"AF_INET", 31949, "errno 1"},
		{"AF_INET", 29599, "errno 1"},
		{"AF_INET", 31950, "ok"}, // outside the ranges
		{"AF_INET", 0, "ok"},     // an ephemeral port
		{"AF_INET6", 31907, "errno 1"},
		{"AF_INET6", 31905, "ok"},
	} {
		if tc.family == "AF_INET6" && !ipv6Loopback() {
			continue
		}
		got := bind(tc.family, tc.port)
		if tc.want == "ok" && got == "errno 98" {
			// EADDRINUSE: the filter let the bind through and the kernel found the port taken by another process
			// on this shared host (the filter's EPERM comes before that check).
			got = "ok"
		}
		if got != tc.want {
			t.Errorf("%s bind %d: %s, want %s", tc.family, tc.port, got, tc.want)
		}
	}
}

func ipv6Loopback() bool {
	b, err := os.ReadFile("/proc/net/if_inet6")
	return err == nil && strings.Contains(string(b), "00000000000000000000000000000001")
}
