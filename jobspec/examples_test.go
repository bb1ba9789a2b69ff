package jobspec

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/manifest"
)

const examplesDir = "../examples"

func exampleFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples in %s: %v", examplesDir, err)
	}
	return files
}

// Every example parses and compiles, from its real directory, to a valid manifest and order; CPU-only examples
// fit a 2-core development machine (at most 1 core and 512MiB; a cluster's members 1 core and 2GiB each).
func TestExamples(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(examplesDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, path := range exampleFiles(t) {
		name := filepath.Base(path)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			j, err := Parse(path, src)
			if err != nil {
				t.Fatal(err)
			}
			m, raw, err := j.Manifest(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := manifest.Decode(raw); err != nil {
				t.Fatalf("the provider would refuse the manifest: %v", err)
			}
			o := j.Order(raw)
			if err := o.ValidateBasic(); err != nil {
				t.Fatalf("the ledger would refuse the order: %v", err)
			}
			memLimit := uint64(512) // a cluster's members run on dev providers, not here: PyTorch needs more
			if j.Cluster != nil {
				memLimit = 2048
			}
			if !j.IsGPU() && (j.Resources.CPUMilli > 1000 || j.Resources.MemoryMiB > memLimit) {
				t.Errorf("CPU-only example asks for %d millicores and %d MiB: keep it within 1 core and %d MiB", j.Resources.CPUMilli, j.Resources.MemoryMiB, memLimit)
			}
			if !strings.Contains(string(readme), name) {
				t.Errorf("examples/README.md does not explain %s", name)
			}
			// A cluster example needs its rendezvous (RANK, MASTER_ADDR...): tenant's tests run it on a dev
			// network of several providers instead.
			// A service runs until stopped: tenant's tests deploy it and fetch from its endpoint.
			if !j.IsGPU() && j.Cluster == nil && len(j.Ports) == 0 {
				runLocally(t, m)
			}
		})
	}
	for _, want := range []string{"hello.yaml", "train.yaml", "gpu.yaml"} {
		if !seen[want] {
			t.Errorf("examples/%s is missing", want)
		}
	}
}

func TestExampleDetails(t *testing.T) {
	load := func(name string) (*Job, *manifest.Manifest) {
		path := filepath.Join(examplesDir, name)
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		j, err := Parse(path, src)
		if err != nil {
			t.Fatal(err)
		}
		m, _, err := j.Manifest(examplesDir)
		if err != nil {
			t.Fatal(err)
		}
		return j, m
	}
	j, _ := load("hello.yaml")
	if j.Run != "echo hello from a spare machine" || j.IsGPU() || j.Name != "hello" {
		t.Errorf("hello.yaml: %+v", j)
	}
	j, _ = load("gpu.yaml")
	if j.Resources.GPU.Count != 1 || !strings.Contains(j.Run, "nvidia-smi") {
		t.Errorf("gpu.yaml: %+v", j)
	}
	j, m := load("train.yaml")
	paths := map[string]uint32{}
	for _, f := range m.Files {
		paths[f.Path] = f.Mode
	}
	if paths["train.sh"] != 0o755 || paths["data/points.csv"] != 0o644 || len(paths) != 2 {
		t.Errorf("train.yaml ships %v", paths)
	}
	if len(j.Outputs) != 1 || j.Outputs[0] != "out/" {
		t.Errorf("train.yaml outputs %v", j.Outputs)
	}
}

// runLocally unpacks the manifest into a temporary work directory and runs its command the way the process
// runtime does (sh -c, the env added), when sh is available. It checks the exit status and that every output
// exists afterwards.
func runLocally(t *testing.T, m *manifest.Manifest) {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Log("no sh: not running the example")
		return
	}
	work := t.TempDir()
	for _, f := range m.Files {
		p := filepath.Join(work, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, os.FileMode(f.Mode)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", m.Run)
	cmd.Dir = work
	cmd.Env = os.Environ()
	for k, v := range m.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not found") {
			t.Logf("a tool the example needs is missing here: %s", out)
			return
		}
		t.Fatalf("%s: %v\n%s", m.Run, err, out)
	}
	t.Logf("%s:\n%s", m.Run, out)
	for _, o := range m.Outputs {
		if _, err := os.Stat(filepath.Join(work, filepath.FromSlash(o))); err != nil {
			t.Errorf("output %s missing after the run: %v", o, err)
		}
	}
}
