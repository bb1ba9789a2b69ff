package inventory

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "nvidia-smi", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// a100x8 is what testdata/nvidia-smi/a100x8.txt lists.
func a100x8() []GPU {
	bus := []string{"07", "0F", "47", "4E", "87", "90", "B7", "BD"}
	var gpus []GPU
	for i := range 8 {
		gpus = append(gpus, GPU{Index: i, UUID: fmt.Sprintf("GPU-0a1b2c3d-%[1]d%[1]d%[1]d%[1]d-4a4a-8b8b-%[1]d%[1]d%[1]d%[1]d%[1]d%[1]d%[1]d%[1]d%[1]d%[1]d%[1]d%[1]d", i),
			Name: "NVIDIA A100-SXM4-80GB", Model: "A100", MemoryMiB: 81920, Driver: "535.154.05",
			PCIBusID: "00000000:" + bus[i] + ":00.0"})
	}
	return gpus
}

func TestParseNvidiaSMIFixtures(t *testing.T) {
	mixed := func(i int, uuid, name, model string, mem uint64, bus string) GPU {
		return GPU{Index: i, UUID: uuid, Name: name, Model: model, MemoryMiB: mem, Driver: "550.107.02", PCIBusID: bus}
	}
	for _, c := range []struct {
		file string
		want []GPU
	}{
		{"h100x1.txt", []GPU{{Index: 0, UUID: "GPU-5e8f3a0c-2b6d-4f7e-9a31-0c4d8e2f6b17", Name: "NVIDIA H100 80GB HBM3",
			Model: "H100", MemoryMiB: 81559, Driver: "550.54.15", PCIBusID: "00000000:18:00.0"}}},
		{"a100x8.txt", a100x8()},
		{"mixed.txt", []GPU{
			mixed(0, "GPU-4090aaaa-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "NVIDIA GeForce RTX 4090", "RTX4090", 24564, "00000000:01:00.0"),
			mixed(1, "GPU-3090bbbb-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "NVIDIA GeForce RTX 3090", "RTX3090", 24576, "00000000:21:00.0"),
			mixed(2, "GPU-a6000ccc-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "NVIDIA RTX A6000", "RTXA6000", 49140, "00000000:41:00.0"),
			mixed(3, "GPU-4090dddd-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "NVIDIA GeForce RTX 4090", "RTX4090", 24564, "00000000:61:00.0"),
		}},
		{"crlf-whitespace.txt", []GPU{
			{Index: 0, UUID: "GPU-11111111-2222-4333-8444-555555555555", Name: "Tesla T4", Model: "T4", MemoryMiB: 15360,
				Driver: "535.104.05", PCIBusID: "00000000:00:1E.0"},
			{Index: 1, UUID: "GPU-11111111-2222-4333-8444-666666666666", Name: "Tesla T4", Model: "T4", MemoryMiB: 15360,
				Driver: "535.104.05", PCIBusID: "00000000:00:1F.0"},
		}},
		{"na-fields.txt", []GPU{
			{Index: 0, UUID: "GPU-9f0e1d2c-3b4a-4596-8877-665544332211", Name: "NVIDIA L4", Model: "L4", MemoryMiB: 23034},
			{Index: 1, Name: "NVIDIA L4", Model: "L4", MemoryMiB: 23034, Driver: "550.54.15", PCIBusID: "00000000:82:00.0"},
			{Index: 2, UUID: "GPU-9f0e1d2c-3b4a-4596-8877-665544332233", Model: UnknownModel, MemoryMiB: 23034,
				Driver: "550.54.15", PCIBusID: "00000000:83:00.0"},
			{Index: 3, UUID: "GPU-9f0e1d2c-3b4a-4596-8877-665544332244", Name: "NVIDIA L4", Model: "L4",
				Driver: "550.54.15", PCIBusID: "00000000:84:00.0"},
		}},
		{"no-devices.txt", nil},
	} {
		t.Run(c.file, func(t *testing.T) {
			got, err := ParseNvidiaSMI(fixture(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestParseNvidiaSMIEdgeCases(t *testing.T) {
	const h100 = "0, GPU-aaaa, NVIDIA H100 80GB HBM3, 81559, 550.54.15, 00000000:18:00.0"
	one := []GPU{{Index: 0, UUID: "GPU-aaaa", Name: "NVIDIA H100 80GB HBM3", Model: "H100", MemoryMiB: 81559,
		Driver: "550.54.15", PCIBusID: "00000000:18:00.0"}}
	for _, c := range []struct {
		name, out string
		want      []GPU
	}{
		{"empty", "", nil},
		{"blank lines only", "\n \r\n\t\n", nil},
		{"crlf", h100 + "\r\n", one},
		{"no trailing newline", h100, one},
		{"leading blank lines", "\n\n" + h100 + "\n\n", one},
		{"tight commas", "0,GPU-aaaa,NVIDIA H100 80GB HBM3,81559,550.54.15,00000000:18:00.0", one},
		{"unit left in", "0, GPU-aaaa, NVIDIA H100 80GB HBM3, 81559 MiB, 550.54.15, 00000000:18:00.0", one},
		{"header line", "index, uuid, name, memory.total [MiB], driver_version, pci.bus_id\n" + h100, one},
		{"comma in name", "0, GPU-aaaa, NVIDIA Foo, Bar 40GB, 40960, 1.0, 00000000:01:00.0",
			[]GPU{{Index: 0, UUID: "GPU-aaaa", Name: "NVIDIA Foo, Bar 40GB", Model: "FooBar", MemoryMiB: 40960,
				Driver: "1.0", PCIBusID: "00000000:01:00.0"}}},
		{"not supported and ERR!", "0, GPU-aaaa, NVIDIA H100 80GB HBM3, ERR!, [Not Supported], N/A",
			[]GPU{{Index: 0, UUID: "GPU-aaaa", Name: "NVIDIA H100 80GB HBM3", Model: "H100"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseNvidiaSMI([]byte(c.out))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestParseNvidiaSMIErrors(t *testing.T) {
	for _, c := range []struct {
		name, out string
		want      []string // substrings of the error
	}{
		{"driver not loaded", string(fixture(t, "driver-not-loaded.txt")),
			[]string{"NVIDIA-SMI has failed", "driver is not loaded"}},
		{"version mismatch", string(fixture(t, "version-mismatch.txt")), []string{"version mismatch", "reboot"}},
		{"fallen off the bus", string(fixture(t, "fallen-off-bus.txt")), []string{"Unable to determine the device handle", "bad state"}},
		{"short line", string(fixture(t, "malformed.txt")), []string{"line 2", "4 comma-separated fields, want 6"}},
		{"garbage", "hello\n", []string{"line 1", "not a GPU record", `"hello"`}},
		{"bad index", "x, GPU-a, N, 1, 1, 1", []string{"line 1", "bad index"}},
		{"negative index", "\n-1, GPU-a, N, 1, 1, 1", []string{"line 2", "bad index"}},
		{"bad memory", "0, GPU-a, N, 80GB, 1, 1", []string{"line 1", "bad memory.total"}},
		{"bad uuid", "0, GPU a;b, N, 1, 1, 1", []string{"line 1", "bad uuid"}},
		{"repeated index", "0, GPU-a, N, 1, 1, 1\n0, GPU-b, N, 1, 1, 1", []string{"line 2 repeats index 0 of line 1"}},
		{"repeated uuid", "0, GPU-a, N, 1, 1, 1\r\n1, GPU-a, N, 1, 1, 1", []string{"line 2 repeats uuid GPU-a of line 1"}},
		{"long line is cut", strings.Repeat("x", 1000), []string{"line 1", `..."`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseNvidiaSMI([]byte(c.out))
			if err == nil {
				t.Fatalf("no error; got %+v", got)
			}
			if !errors.Is(err, ErrNvidiaSMI) {
				t.Errorf("error %v does not wrap ErrNvidiaSMI", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if len(err.Error()) > 400 {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
		})
	}
}

func FuzzParseNvidiaSMI(f *testing.F) {
	for _, name := range []string{"h100x1.txt", "a100x8.txt", "mixed.txt", "na-fields.txt", "crlf-whitespace.txt",
		"driver-not-loaded.txt", "malformed.txt"} {
		f.Add(fixture(f, name))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		gpus, err := ParseNvidiaSMI(out)
		if err != nil {
			if gpus != nil || !errors.Is(err, ErrNvidiaSMI) {
				t.Fatalf("error %v with GPUs %v", err, gpus)
			}
			return
		}
		seen := map[int]bool{}
		for _, g := range gpus {
			if g.Index < 0 || seen[g.Index] || !validUUID(g.UUID) {
				t.Fatalf("bad GPU %+v", g)
			}
			seen[g.Index] = true
			checkLedgerName(t, g.Model)
		}
	})
}

// fakeNvidiaSMI writes a shell script standing in for nvidia-smi: it checks its arguments, prints out and exits
// with code.
func fakeNvidiaSMI(t *testing.T, out string, code int) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("needs /bin/sh")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "out.txt")
	if err := os.WriteFile(data, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`#!/bin/sh
if [ $# -ne 2 ] || [ "$1" != %q ] || [ "$2" != %q ]; then echo "unexpected arguments: $*" >&2; exit 99; fi
cat %q
exit %d
`, NvidiaSMIArgs[0], NvidiaSMIArgs[1], data, code)
	path := filepath.Join(dir, "nvidia-smi")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestQueryGPUs(t *testing.T) {
	t.Run("eight GPUs", func(t *testing.T) {
		gpus, err := QueryGPUs(t.Context(), fakeNvidiaSMI(t, string(fixture(t, "a100x8.txt")), 0), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gpus, a100x8()) {
			t.Fatalf("got %+v", gpus)
		}
	})
	t.Run("looked up in PATH", func(t *testing.T) {
		path := fakeNvidiaSMI(t, string(fixture(t, "h100x1.txt")), 0)
		t.Setenv("PATH", filepath.Dir(path)+string(os.PathListSeparator)+os.Getenv("PATH"))
		gpus, err := QueryGPUs(t.Context(), "", 0)
		if err != nil || len(gpus) != 1 || gpus[0].Model != "H100" {
			t.Fatalf("got %+v, %v", gpus, err)
		}
	})
	t.Run("driver not loaded", func(t *testing.T) {
		_, err := QueryGPUs(t.Context(), fakeNvidiaSMI(t, string(fixture(t, "driver-not-loaded.txt")), 9), 5*time.Second)
		if !errors.Is(err, ErrNvidiaSMI) || !strings.Contains(err.Error(), "exited with status 9: NVIDIA-SMI has failed") ||
			!strings.Contains(err.Error(), "driver is not loaded") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("failure text with status 0", func(t *testing.T) {
		_, err := QueryGPUs(t.Context(), fakeNvidiaSMI(t, string(fixture(t, "version-mismatch.txt")), 0), 5*time.Second)
		if !errors.Is(err, ErrNvidiaSMI) || !strings.Contains(err.Error(), "Driver/library version mismatch") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("non-zero exit without output", func(t *testing.T) {
		_, err := QueryGPUs(t.Context(), fakeNvidiaSMI(t, "", 3), 5*time.Second)
		if !errors.Is(err, ErrNvidiaSMI) || !strings.Contains(err.Error(), "exited with status 3: no output") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("non-zero exit with a GPU list", func(t *testing.T) {
		_, err := QueryGPUs(t.Context(), fakeNvidiaSMI(t, string(fixture(t, "h100x1.txt")), 1), 5*time.Second)
		if !errors.Is(err, ErrNvidiaSMI) || !strings.Contains(err.Error(), "exited with status 1") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("no devices", func(t *testing.T) {
		gpus, err := QueryGPUs(t.Context(), fakeNvidiaSMI(t, string(fixture(t, "no-devices.txt")), 6), 5*time.Second)
		if err != nil || gpus != nil {
			t.Fatalf("got %+v, %v", gpus, err)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		_, err := QueryGPUs(t.Context(), fakeNvidiaSMI(t, string(fixture(t, "malformed.txt")), 0), 5*time.Second)
		if !errors.Is(err, ErrNvidiaSMI) || !strings.Contains(err.Error(), "line 2") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		for _, path := range []string{filepath.Join(t.TempDir(), "nvidia-smi"), "spare-test-no-such-nvidia-smi"} {
			_, err := QueryGPUs(t.Context(), path, time.Second)
			if !errors.Is(err, ErrNoNvidiaSMI) || errors.Is(err, ErrNvidiaSMI) {
				t.Fatalf("%s: got %v", path, err)
			}
		}
	})
	t.Run("not executable", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nvidia-smi")
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := QueryGPUs(t.Context(), path, time.Second)
		if !errors.Is(err, ErrNvidiaSMI) {
			t.Fatalf("got %v", err)
		}
	})
}

// hangingNvidiaSMI writes an nvidia-smi that never answers.
func hangingNvidiaSMI(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("needs /bin/sh")
	}
	path := filepath.Join(t.TempDir(), "nvidia-smi")
	// the child sleep keeps stdout open after the shell is killed: WaitDelay must not wait for it
	if err := os.WriteFile(path, []byte("#!/bin/sh\nsleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestQueryGPUsTimeout(t *testing.T) {
	start := time.Now()
	_, err := QueryGPUs(t.Context(), hangingNvidiaSMI(t), 200*time.Millisecond)
	if !errors.Is(err, ErrNvidiaSMI) || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "did not answer within 200ms") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestQueryGPUsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := QueryGPUs(ctx, hangingNvidiaSMI(t), time.Minute)
	if !errors.Is(err, ErrNvidiaSMI) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}
