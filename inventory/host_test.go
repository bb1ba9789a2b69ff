package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const procFixture = "testdata/proc"

// writeTree creates files (path → content) under a new temporary directory and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// procWith copies the proc fixture with some files replaced.
func procWith(t *testing.T, files map[string]string) string {
	t.Helper()
	all := map[string]string{}
	for _, name := range []string{"cpuinfo", "meminfo", "self/status", "self/cgroup"} {
		b, err := os.ReadFile(filepath.Join(procFixture, name))
		if err != nil {
			t.Fatal(err)
		}
		all[name] = string(b)
	}
	for name, content := range files {
		all[name] = content
	}
	return writeTree(t, all)
}

func TestDetectCPUAndMemory(t *testing.T) {
	v2 := "0::/system.slice/spare-provider.service\n"
	v1 := "12:memory:/docker/abc\n5:cpu,cpuacct:/docker/abc\n0::/\n"
	for _, c := range []struct {
		name     string
		proc     map[string]string // replaced proc files
		cgroup   map[string]string // cgroup tree
		cores    int
		memMiB   uint64
		warnings []string // substrings, one per warning, in order
	}{
		{name: "whole machine", cores: 32, memMiB: 257671},
		{name: "v2 without limits",
			cgroup: map[string]string{"cgroup.controllers": "cpu memory", "system.slice/spare-provider.service/cpu.max": "max 100000\n",
				"system.slice/spare-provider.service/memory.max": "max\n"},
			cores: 32, memMiB: 257671},
		{name: "v2 limits on the service",
			cgroup: map[string]string{"cgroup.controllers": "cpu memory", "system.slice/spare-provider.service/cpu.max": "1250000 100000\n",
				"system.slice/spare-provider.service/memory.max": "68719476736\n"},
			cores: 12, memMiB: 65536,
			warnings: []string{"CPU: cgroup /system.slice/spare-provider.service limits this process to 12.500 CPUs of 32; declaring 12",
				"memory: cgroup /system.slice/spare-provider.service limits this process to 65536 MiB of 257671; declaring 65536"}},
		{name: "v2 tighter limit on the parent slice",
			cgroup: map[string]string{"cgroup.controllers": "cpu memory",
				"system.slice/cpu.max": "400000 100000\n", "system.slice/memory.max": "8589934592\n",
				"system.slice/spare-provider.service/cpu.max": "800000 100000\n"},
			cores: 4, memMiB: 8192,
			warnings: []string{"cgroup /system.slice limits this process to 4.000 CPUs", "cgroup /system.slice limits this process to 8192 MiB"}},
		{name: "v2 quota below one CPU",
			cgroup: map[string]string{"cgroup.controllers": "", "system.slice/spare-provider.service/cpu.max": "50000 100000\n"},
			cores:  1, memMiB: 257671, warnings: []string{"0.500 CPUs of 32; declaring 1"}},
		{name: "v2 in a container (namespaced root)",
			proc:   map[string]string{"self/cgroup": "0::/\n"},
			cgroup: map[string]string{"cgroup.controllers": "", "cpu.max": "200000 100000\n", "memory.max": "4294967296\n"},
			cores:  2, memMiB: 4096, warnings: []string{"cgroup / limits", "cgroup / limits"}},
		{name: "v2 hybrid layout",
			proc:   map[string]string{"self/cgroup": "1:name=systemd:/\n0::/svc\n"},
			cgroup: map[string]string{"unified/cgroup.controllers": "", "unified/svc/cpu.max": "300000 100000\n"},
			cores:  3, memMiB: 257671, warnings: []string{"cgroup /svc limits this process to 3.000 CPUs"}},
		{name: "v1 limits",
			proc: map[string]string{"self/cgroup": v1},
			cgroup: map[string]string{"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "600000\n", "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
				"memory/docker/abc/memory.limit_in_bytes": "17179869184\n"},
			cores: 6, memMiB: 16384, warnings: []string{"cgroup /docker/abc limits this process to 6.000 CPUs", "16384 MiB"}},
		{name: "v1 unlimited",
			proc: map[string]string{"self/cgroup": v1},
			cgroup: map[string]string{"cpu/docker/abc/cpu.cfs_quota_us": "-1\n", "cpu/docker/abc/cpu.cfs_period_us": "100000\n",
				"memory/memory.limit_in_bytes": "9223372036854771712\n"},
			cores: 32, memMiB: 257671},
		{name: "v1 path not visible in a container",
			proc: map[string]string{"self/cgroup": v1},
			cgroup: map[string]string{"cpu,cpuacct/cpu.cfs_quota_us": "150000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n",
				"memory/memory.limit_in_bytes": "1073741824\n"},
			cores: 1, memMiB: 1024, warnings: []string{"1.500 CPUs", "1024 MiB"}},
		{name: "affinity",
			proc:  map[string]string{"self/status": "Name:\tspare\nCpus_allowed_list:\t0-3,8-11,16\n"},
			cores: 9, memMiB: 257671, warnings: []string{"may run on 9 of the 32 CPUs"}},
		{name: "affinity then quota",
			proc:   map[string]string{"self/status": "Cpus_allowed_list:\t0-7\n"},
			cgroup: map[string]string{"cgroup.controllers": "", "system.slice/spare-provider.service/cpu.max": "200000 100000\n"},
			cores:  2, memMiB: 257671, warnings: []string{"8 of the 32", "2.000 CPUs of 8"}},
		{name: "garbage cgroup files are no limit",
			proc: map[string]string{"self/cgroup": "garbage\n" + v2},
			cgroup: map[string]string{"cgroup.controllers": "", "system.slice/spare-provider.service/cpu.max": "lots\n",
				"system.slice/spare-provider.service/memory.max": "-5\n"},
			cores: 32, memMiB: 257671},
		{name: "no cpuinfo",
			proc:   map[string]string{"cpuinfo": "vendor_id : x\n", "self/status": "Cpus_allowed_list:\t0-4095\n"},
			memMiB: 257671, warnings: []string{"cannot count processors"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			proc := procWith(t, c.proc)
			cg := writeTree(t, c.cgroup)
			lim := readCgroupLimits(proc, cg)
			cores, w1 := detectCPU(proc, lim)
			mem, w2, err := detectMemory(proc, lim)
			if err != nil {
				t.Fatal(err)
			}
			if c.cores != 0 && cores != c.cores || cores < 1 {
				t.Errorf("cores = %d, want %d", cores, c.cores)
			}
			if mem != c.memMiB {
				t.Errorf("memory = %d MiB, want %d", mem, c.memMiB)
			}
			warnings := append(w1, w2...)
			if len(warnings) != len(c.warnings) {
				t.Fatalf("warnings %q, want %d", warnings, len(c.warnings))
			}
			for i, w := range c.warnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %q does not contain %q", warnings[i], w)
				}
			}
		})
	}
}

func TestDetectMemoryErrors(t *testing.T) {
	for name, meminfo := range map[string]string{
		"no MemTotal":  "MemFree: 1 kB\n",
		"bad number":   "MemTotal: lots kB\n",
		"zero":         "MemTotal: 0 kB\n",
		"unknown unit": "MemTotal: 1 MB\n",
	} {
		t.Run(name, func(t *testing.T) {
			proc := procWith(t, map[string]string{"meminfo": meminfo})
			if mem, _, err := detectMemory(proc, cgroupLimits{}); err == nil {
				t.Fatalf("no error, memory %d", mem)
			}
		})
	}
	if _, _, err := detectMemory(t.TempDir(), cgroupLimits{}); err == nil || !strings.Contains(err.Error(), "meminfo") {
		t.Fatalf("missing meminfo: %v", err)
	}
}

func TestCPUsAllowed(t *testing.T) {
	for list, want := range map[string]int{"0": 1, "0-31": 32, "0-3,8-11": 8, "0,2,4": 3, " 0-1 ": 2} {
		p := writeTree(t, map[string]string{"status": "Cpus_allowed_list:\t" + list + "\n"})
		if got, err := cpusAllowed(filepath.Join(p, "status")); err != nil || got != want {
			t.Errorf("%q: got %d, %v, want %d", list, got, err, want)
		}
	}
	for _, list := range []string{"", "a", "3-1", "1-", "0,,1"} {
		p := writeTree(t, map[string]string{"status": "Cpus_allowed_list:\t" + list + "\n"})
		if got, err := cpusAllowed(filepath.Join(p, "status")); err == nil {
			t.Errorf("%q: got %d, no error", list, got)
		}
	}
}

func TestCgroupDirs(t *testing.T) {
	got := cgroupDirs("/cg", "/a/b")
	want := []string{"/cg/a/b", "/cg/a", "/cg"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := cgroupDirs("/cg", "/../../etc"); !reflect.DeepEqual(got, []string{"/cg/etc", "/cg"}) {
		t.Fatalf("escaping path: got %q", got)
	}
}
