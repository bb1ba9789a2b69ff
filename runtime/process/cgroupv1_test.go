package process

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestOOMControlV1(t *testing.T) {
	dir := t.TempDir()
	write := func(f, v string) {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
	if n, ok := oomControlV1([]string{dir}); n != 3 || !ok {
		t.Errorf("oom_kill %d %v", n, ok)
	}
	write("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n") // before Linux 4.13
	write("memory.failcnt", "17\n")
	if n, ok := oomControlV1([]string{dir}); n != 0 || ok {
		t.Errorf("old kernel: %d %v", n, ok)
	}
	if f := failcntV1([]string{dir}); f != 17 {
		t.Errorf("failcnt %d", f)
	}
	if n, ok := oomControlV1(nil); n != 0 || !ok {
		t.Errorf("no cgroup: %d %v", n, ok)
	}
}

// The lease's v1 cgroups get their limits, and go away.
func TestCreateLeaseV1(t *testing.T) {
	r := New(testConfig())
	r.init()
	if r.v1 == nil {
		t.Skipf("no cgroup v1 hierarchy: %s", r.v1Why)
	}
	dirs, err := r.v1.createLease("lease-test-v1", leaseLimits{memory: 96 << 20, cpuMilli: 1500, pids: 77})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		"memory": {"memory.limit_in_bytes": "100663296"},
		"pids":   {"pids.max": "77"},
		"cpu":    {"cpu.cfs_quota_us": "150000", "cpu.cfs_period_us": "100000"},
	}
	if r.v1.memsw {
		want["memory"]["memory.memsw.limit_in_bytes"] = "100663296"
	}
	if len(dirs) == 0 || (r.v1.has("memory") && v1Controller(dirs[0]) != "memory") {
		t.Fatalf("dirs %v: memory first", dirs)
	}
	for _, d := range dirs {
		for f, v := range want[v1Controller(d)] {
			if b, _ := os.ReadFile(filepath.Join(d, f)); strings.TrimSpace(string(b)) != v {
				t.Errorf("%s/%s = %q, want %s", d, f, b, v)
			}
		}
	}
	// A second lease of the same name while the first is empty replaces it; then removal.
	if _, err := r.v1.createLease("lease-test-v1", leaseLimits{pids: 5}); err != nil {
		t.Fatal(err)
	}
	if err := removeCgroupsV1(dirs, time.Second); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s left behind", d)
		}
	}
}

// GPUs by UUID map to their /dev/nvidiaN through the driver's information files; an unknown UUID gets none.
func TestGPUDevices(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	proc, dev := t.TempDir(), t.TempDir()
	for _, g := range []struct{ bus, uuid, minor string }{
		{"0000:17:00.0", "GPU-aaaa-1111", "0"}, {"0000:65:00.0", "GPU-bbbb-2222", "3"},
	} {
		d := filepath.Join(proc, "gpus", g.bus)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		info := "Model: \t\t NVIDIA H100\nIRQ:   \t\t 0\nGPU UUID: \t " + g.uuid + "\nDevice Minor: \t " + g.minor + "\n"
		if err := os.WriteFile(filepath.Join(d, "information"), []byte(info), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, minor := range map[string]uint32{"nvidia0": 0, "nvidia3": 3, "nvidiactl": 255} {
		if err := unix.Mknod(filepath.Join(dev, name), unix.S_IFCHR|0o666, int(unix.Mkdev(195, minor))); err != nil {
			t.Fatal(err)
		}
	}
	nodes, missing := gpuDevicesIn(proc, dev, []string{"GPU-BBBB-2222", "GPU-cccc-3333"})
	got := map[string]uint32{}
	for _, n := range nodes {
		got[n.Path] = n.Minor
		if n.Major != 195 || n.Mode != 0o666 {
			t.Errorf("node %+v", n)
		}
	}
	if len(got) != 2 || got["nvidia3"] != 3 || got["nvidiactl"] != 255 {
		t.Errorf("nodes %v: want nvidia3 and nvidiactl only", nodes)
	}
	if len(missing) != 1 || missing[0] != "GPU-cccc-3333" {
		t.Errorf("missing %v", missing)
	}
	if nodes, missing := gpuDevicesIn(t.TempDir(), dev, []string{"GPU-aaaa-1111"}); len(nodes) != 0 || len(missing) != 1 {
		t.Errorf("no driver: %v %v", nodes, missing)
	}
}
