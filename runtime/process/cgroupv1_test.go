package process

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
