package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sparenet/spare/tenant"
)

// TestExtendCommand runs `spare extend` on `spare dev`, whose providers accept leases of up to 24h: a running
// lease is extended in one transaction that adds the deposit its new duration needs, the output says its new
// end and what was added, and an extension past the provider's maximum is refused with both durations named.
// `spare topup` on a lease that runs to its duration points at `spare extend`.
func TestExtendCommand(t *testing.T) {
	home := filepath.Join(t.TempDir(), "dev")
	startDevnet(t, home)
	job := filepath.Join(t.TempDir(), "job.yaml")
	if err := os.WriteFile(job, []byte("run: sleep 600\nduration: 10m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "--home", home, "--yes", "deploy", job, "--detach", "-o", "json")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	var dep struct {
		LeaseID uint64 `json:"lease_id"`
	}
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&dep); err != nil || dep.LeaseID == 0 {
		t.Fatalf("deploy -o json: %v\n%s", err, out)
	}
	id := strconv.FormatUint(dep.LeaseID, 10)
	t.Cleanup(func() { _, _ = run(t, "--home", home, "--yes", "close", id) })

	if _, err := run(t, "--home", home, "--yes", "topup", id, "1"); err == nil || !strings.Contains(err.Error(), "spare extend "+id+" DURATION") {
		t.Fatalf("topup on a lease that runs to its duration: %v", err)
	}

	out, err = run(t, "--home", home, "--yes", "extend", id, "30m", "-o", "json")
	if err != nil {
		t.Fatalf("extend: %v\n%s", err, out)
	}
	var e tenant.Extension
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatalf("extend -o json: %v\n%s", err, out)
	}
	if e.LeaseID != dep.LeaseID || e.AddSec != 1800 || e.DurationSec != 2400 || e.MaxSec != 24*3600 || e.State != "active" ||
		e.EndMs == 0 || e.EndMs != e.WasEndMs+1800*1000 || e.Fee == 0 {
		t.Fatalf("extension: %+v", e)
	}
	out, err = run(t, "--home", home, "--yes", "extend", id, "1m")
	if err != nil || !strings.Contains(out, "lease "+id+" extended by 1m: its duration is now 41m, and it runs until ") || !strings.Contains(out, "added to its deposit (now ") {
		t.Fatalf("extend (text): %v\n%s", err, out)
	}

	// At a terminal the command says what the transaction does before asking; declined, nothing is sent.
	root := newRootCmd()
	g := globalsOf(root)
	var stdout, stderr bytes.Buffer
	g.out, g.stderr, g.isTerminal, g.stdin = &stdout, &stderr, func(io.Writer) bool { return true }, ttyReader{strings.NewReader("n\n")}
	root.SetArgs([]string{"--home", home, "extend", id, "1m"})
	root.SetOut(&stdout)
	root.SetErr(&stdout)
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "declined") ||
		!strings.Contains(stderr.String(), "extend lease "+id+" by 1m to 42m in all (the provider allows 24h): adds ") ||
		!strings.Contains(stderr.String(), "extend_lease: fee ") {
		t.Fatalf("extend at a terminal, declined: %v\n%s", err, stderr.String())
	}

	_, err = run(t, "--home", home, "--yes", "extend", id, "24h")
	if err == nil || !strings.Contains(err.Error(), "accepts leases up to 24h; lease "+id+" would run 24h41m (41m + 24h): extend it by at most 23h19m") ||
		!errors.Is(err, tenant.ErrExtendRefused) || exitCode(err) != 2 {
		t.Fatalf("extend past the provider's maximum: %v (exit %d)", err, exitCode(err))
	}
	for arg, want := range map[string]string{"2d": "did you mean 48h", "90": "did you mean 90s", "1.5s": "whole number of seconds", "soon": "Go style"} {
		if _, err := run(t, "--home", home, "--yes", "extend", id, arg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("extend %s: %v, want %q", arg, err, want)
		}
	}
}
