package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sparenet/spare/provider"
)

// TestProviderDoctor: doctor reports every guarantee of the process runtime with its mechanism or what is
// missing; as root on a host with cgroups and namespaces (CI's) it offers the process runtime. A provider.toml
// that accepts a risk it does not need changes nothing; an unknown risk name is an error naming the key.
func TestProviderDoctor(t *testing.T) {
	home := t.TempDir()
	out, err := run(t, "--home", home, "provider", "doctor", "-o", "json")
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	var res doctorResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	ri, ok := res.Isolation.Runtime("process")
	if !ok || len(ri.Guarantees) < 9 {
		t.Fatalf("process runtime report: %+v", res.Isolation)
	}
	for _, g := range ri.Guarantees {
		if g.OK == (g.Mechanism == "") || !g.OK && g.Missing == "" {
			t.Errorf("guarantee %+v: a mechanism when it holds, what is missing when not", g)
		}
	}
	if os.Geteuid() == 0 && !ri.Offered {
		if os.Getenv("CI") == "true" {
			t.Fatalf("as root on CI the process runtime must be offered: missing %v", ri.Missing)
		}
		t.Logf("this host cannot isolate process jobs: %v", ri.Missing)
	}
	if os.Geteuid() != 0 && ri.Offered {
		t.Fatalf("not root, yet offered: %+v", ri)
	}
	text, err := run(t, "--home", home, "provider", "doctor")
	if err != nil || !strings.Contains(text, "process runtime:") || !strings.Contains(text, "seccomp") {
		t.Fatalf("doctor text: %v\n%s", err, text)
	}

	cfg := provider.DefaultConfig()
	cfg.Hardware.CPUCores, cfg.Hardware.MemoryMiB, cfg.Hardware.DiskMiB = 1, 1024, 1024
	cfg.Isolation.AcceptRisks = []string{"process:memroy"}
	if err := cfg.Save(filepath.Join(home, provider.ConfigFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "--home", home, "provider", "doctor"); err == nil || !strings.Contains(err.Error(), "isolation.accept_risks[0]") {
		t.Fatalf("a bad accept_risks: %v", err)
	}
}
