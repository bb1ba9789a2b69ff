package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/tx"
)

// fixtureOptions detects the proc fixture with a fake nvidia-smi printing out (exit code) and a fake Docker
// engine, with no cgroup limits.
func fixtureOptions(t *testing.T, out string, code int) Options {
	return Options{
		NvidiaSMI:        fakeNvidiaSMI(t, out, code),
		NvidiaSMITimeout: 5 * time.Second,
		DataDir:          t.TempDir(),
		ProcRoot:         procFixture,
		CgroupRoot:       t.TempDir(),
		DockerHost:       fakeDocker(t, dockerEngine("27.3.1")),
	}
}

func TestDetect(t *testing.T) {
	opts := fixtureOptions(t, string(fixture(t, "a100x8.txt")), 0)
	inv, err := Detect(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(inv.GPUs, a100x8()) {
		t.Errorf("GPUs %+v", inv.GPUs)
	}
	if inv.CPUCores != 32 || inv.MemoryMiB != 257671 {
		t.Errorf("cores %d, memory %d", inv.CPUCores, inv.MemoryMiB)
	}
	if inv.DiskMiB == 0 || inv.DiskFreeMiB == 0 || inv.DiskFreeMiB > inv.DiskMiB {
		t.Errorf("disk %d MiB, %d free", inv.DiskMiB, inv.DiskFreeMiB)
	}
	if !inv.Docker || inv.DockerVersion != "27.3.1" || inv.DockerHost != opts.DockerHost {
		t.Errorf("docker %v %q at %q", inv.Docker, inv.DockerVersion, inv.DockerHost)
	}
	if len(inv.Warnings) != 0 {
		t.Errorf("warnings %q", inv.Warnings)
	}
	h := inv.Hardware()
	want := tx.Hardware{GPUs: []tx.GPUGroup{{Model: "A100", VRAMMiB: 81920, Count: 8}}, CPUMilli: 32000,
		MemoryMiB: 257671, DiskMiB: inv.DiskFreeMiB}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("hardware %+v, want %+v", h, want)
	}
	if err := h.Validate(); err != nil {
		t.Error(err)
	}
	if _, err := json.Marshal(inv); err != nil {
		t.Error(err)
	}
}

func TestDetectDegraded(t *testing.T) {
	t.Run("no nvidia-smi, no docker, no data dir", func(t *testing.T) {
		inv, err := Detect(t.Context(), Options{NvidiaSMI: filepath.Join(t.TempDir(), "nvidia-smi"), ProcRoot: procFixture,
			CgroupRoot: t.TempDir(), DockerHost: "unix://" + filepath.Join(t.TempDir(), "none.sock")})
		if err != nil {
			t.Fatal(err)
		}
		if len(inv.GPUs) != 0 || inv.Docker || inv.DiskMiB != 0 || inv.CPUCores != 32 {
			t.Errorf("%+v", inv)
		}
		wantWarnings(t, inv.Warnings, "GPU: no NVIDIA GPUs offered: nvidia-smi not found", "disk: no data directory", "docker: not available")
		h := inv.Hardware()
		if h.GPUs != nil || h.CPUMilli != 32000 || h.Validate() != nil {
			t.Errorf("hardware %+v: %v", h, h.Validate())
		}
	})
	t.Run("driver not loaded", func(t *testing.T) {
		inv, err := Detect(t.Context(), fixtureOptions(t, string(fixture(t, "driver-not-loaded.txt")), 9))
		if !errors.Is(err, ErrNvidiaSMI) || !strings.Contains(err.Error(), "NVIDIA-SMI has failed") {
			t.Fatalf("error %v", err)
		}
		if inv == nil || len(inv.GPUs) != 0 || inv.CPUCores != 32 || !inv.Docker {
			t.Fatalf("%+v", inv)
		}
		wantWarnings(t, inv.Warnings, "GPU: no GPUs offered until this is fixed: nvidia-smi failed")
	})
	t.Run("no devices", func(t *testing.T) {
		inv, err := Detect(t.Context(), fixtureOptions(t, string(fixture(t, "no-devices.txt")), 6))
		if err != nil {
			t.Fatal(err)
		}
		wantWarnings(t, inv.Warnings, "GPU: nvidia-smi lists no GPUs")
	})
	t.Run("unusable GPUs left out", func(t *testing.T) {
		inv, err := Detect(t.Context(), fixtureOptions(t, string(fixture(t, "na-fields.txt")), 0))
		if err != nil {
			t.Fatal(err)
		}
		var idx []int
		for _, g := range inv.GPUs {
			idx = append(idx, g.Index)
		}
		if !reflect.DeepEqual(idx, []int{0, 2}) {
			t.Errorf("GPUs %v, want 0 and 2", idx)
		}
		wantWarnings(t, inv.Warnings, "GPU 1 (00000000:82:00.0): left out: nvidia-smi reports no UUID",
			`GPU 2 (GPU-9f0e1d2c-3b4a-4596-8877-665544332233): nvidia-smi reports no name; declared as model "Unknown"`,
			"GPU 3 (GPU-9f0e1d2c-3b4a-4596-8877-665544332244): left out: nvidia-smi reports no memory size")
		if err := inv.Hardware().Validate(); err != nil {
			t.Error(err)
		}
	})
	t.Run("bad data dir and meminfo", func(t *testing.T) {
		opts := fixtureOptions(t, "", 0)
		opts.DataDir = filepath.Join(t.TempDir(), "missing")
		opts.ProcRoot = procWith(t, map[string]string{"meminfo": "nothing\n"})
		inv, err := Detect(t.Context(), opts)
		if err == nil || !strings.Contains(err.Error(), "MemTotal") || !strings.Contains(err.Error(), "statfs") {
			t.Fatalf("error %v", err)
		}
		if inv == nil || inv.CPUCores != 32 {
			t.Fatalf("%+v", inv)
		}
	})
	t.Run("DOCKER_HOST with TLS", func(t *testing.T) {
		opts := fixtureOptions(t, "", 0)
		opts.DockerHost = ""
		t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
		t.Setenv("DOCKER_TLS_VERIFY", "1")
		inv, err := Detect(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if inv.Docker || inv.DockerHost != "tcp://127.0.0.1:1" {
			t.Errorf("%+v", inv)
		}
		wantWarnings(t, inv.Warnings, "GPU: nvidia-smi lists no GPUs", "docker: not probed")
	})
	t.Run("DOCKER_HOST", func(t *testing.T) {
		opts := fixtureOptions(t, "", 0)
		t.Setenv("DOCKER_HOST", opts.DockerHost)
		opts.DockerHost = ""
		inv, err := Detect(t.Context(), opts)
		if err != nil || !inv.Docker {
			t.Fatalf("%+v, %v", inv, err)
		}
	})
}

// wantWarnings checks that warnings are, in order, ones containing each of want.
func wantWarnings(t *testing.T, warnings []string, want ...string) {
	t.Helper()
	if len(warnings) != len(want) {
		t.Fatalf("warnings %q, want %d", warnings, len(want))
	}
	for i, w := range want {
		if !strings.Contains(warnings[i], w) {
			t.Errorf("warning %q does not contain %q", warnings[i], w)
		}
	}
}

// TestDetectThisMachine runs Detect for real. It must work with or without GPUs and Docker.
func TestDetectThisMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	inv, err := Detect(t.Context(), Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(inv, "", "  ")
	t.Logf("%s", b)
	h := inv.Hardware()
	t.Logf("hardware %+v", h)
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	// What the machine says of itself, read here independently: the CPUs the kernel lists (at most: a cgroup
	// quota lowers what is offered) and MemTotal (at most, likewise).
	cpuinfo, _ := os.ReadFile("/proc/cpuinfo")
	cpus := 0
	for _, line := range strings.Split(string(cpuinfo), "\n") {
		if strings.HasPrefix(line, "processor") {
			cpus++
		}
	}
	if h.CPUMilli == 0 || cpus > 0 && h.CPUMilli > uint64(cpus)*1000 {
		t.Errorf("%d milli-CPUs offered, the kernel lists %d CPUs", h.CPUMilli, cpus)
	}
	meminfo, _ := os.ReadFile("/proc/meminfo")
	var totalKB uint64
	for _, line := range strings.Split(string(meminfo), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			fmt.Sscan(rest, &totalKB)
		}
	}
	if h.MemoryMiB == 0 || totalKB > 0 && h.MemoryMiB > totalKB/1024 {
		t.Errorf("%d MiB of memory offered, MemTotal is %d kB", h.MemoryMiB, totalKB)
	}
	if h.DiskMiB == 0 {
		t.Error("no disk offered")
	}
}

func TestHardwareGrouping(t *testing.T) {
	gpu := func(i int, model string, mem uint64) GPU {
		return GPU{Index: i, UUID: "GPU-" + string(rune('a'+i)), Model: model, MemoryMiB: mem}
	}
	for _, c := range []struct {
		name string
		gpus []GPU
		want []tx.GPUGroup
	}{
		{"none", nil, nil},
		{"one H100", []GPU{gpu(0, "H100", 81559)}, []tx.GPUGroup{{Model: "H100", VRAMMiB: 81559, Count: 1}}},
		{"mixed, sorted by model", []GPU{gpu(0, "RTX4090", 24564), gpu(1, "RTX3090", 24576), gpu(2, "RTXA6000", 49140),
			gpu(3, "RTX4090", 24564)},
			[]tx.GPUGroup{{Model: "RTX3090", VRAMMiB: 24576, Count: 1}, {Model: "RTX4090", VRAMMiB: 24564, Count: 2},
				{Model: "RTXA6000", VRAMMiB: 49140, Count: 1}}},
		{"same model, two sizes", []GPU{gpu(0, "A100", 81920), gpu(1, "A100", 40960), gpu(2, "A100", 81920),
			gpu(3, "A100-PCIe", 40960)},
			[]tx.GPUGroup{{Model: "A100", VRAMMiB: 40960, Count: 1}, {Model: "A100", VRAMMiB: 81920, Count: 2},
				{Model: "A100-PCIe", VRAMMiB: 40960, Count: 1}}},
		{"no memory size left out", []GPU{gpu(0, "L4", 0), gpu(1, "L4", 23034)},
			[]tx.GPUGroup{{Model: "L4", VRAMMiB: 23034, Count: 1}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			inv := &Inventory{GPUs: c.gpus, CPUCores: 16, MemoryMiB: 65536, DiskMiB: 1 << 20, DiskFreeMiB: 1000}
			h := inv.Hardware()
			want := tx.Hardware{GPUs: c.want, CPUMilli: 16000, MemoryMiB: 65536, DiskMiB: 1000}
			if !reflect.DeepEqual(h, want) {
				t.Fatalf("got  %+v\nwant %+v", h, want)
			}
			if err := h.Validate(); err != nil {
				t.Fatal(err)
			}
			// the order of detection does not matter
			rev := &Inventory{CPUCores: 16, MemoryMiB: 65536, DiskFreeMiB: 1000}
			for i := len(c.gpus) - 1; i >= 0; i-- {
				rev.GPUs = append(rev.GPUs, c.gpus[i])
			}
			if got := rev.Hardware(); !reflect.DeepEqual(got, want) {
				t.Fatalf("reversed: got %+v", got)
			}
		})
	}
}
