package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/devnet"
	"github.com/sparenet/spare/internal/proctest"
	"github.com/sparenet/spare/provider"
)

// startDevnet runs `spare dev` in this process on a new home and returns its info once it is ready.
func startDevnet(t *testing.T, home string) devnet.Info {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan devnet.Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- devnet.Run(ctx, devnet.Options{Home: home, NoDocker: true, BlockTime: 100 * time.Millisecond, NvidiaSMI: "/nonexistent/nvidia-smi"},
			func(i devnet.Info) { ready <- i })
	}()
	select {
	case info := <-ready:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("spare dev stopped with: %v", err)
			}
		})
		return info
	case err := <-done:
		cancel()
		t.Fatalf("spare dev: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("spare dev did not become ready")
	}
	return devnet.Info{}
}

// TestProviderStatusOnDevHome: `spare provider status --home DEVHOME` reaches the dev network on whatever port it
// took, prints the provider's address in -o json, asks the node of --node when given, and still finds the
// network when provider.toml names another node (the dev home's client.json says where it runs).
func TestProviderStatusOnDevHome(t *testing.T) {
	home := filepath.Join(t.TempDir(), "dev")
	info := startDevnet(t, home)
	cfgPath := filepath.Join(home, provider.ConfigFile)
	cfg, err := provider.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Node != info.RPC {
		t.Fatalf("provider.toml node %q, the dev node is %s", cfg.Node, info.RPC)
	}
	status := func(extra ...string) (map[string]json.RawMessage, error) {
		out, err := run(t, append([]string{"--home", home, "provider", "status", "-o", "json"}, extra...)...)
		if err != nil {
			return nil, err
		}
		var v map[string]json.RawMessage
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("-o json: %v\n%s", err, out)
		}
		return v, nil
	}
	check := func(v map[string]json.RawMessage) {
		t.Helper()
		var addr string
		var prov struct {
			Owner  string `json:"owner"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(v["address"], &addr); err != nil || addr != info.Provider.String() {
			t.Fatalf("address %s, want %s", v["address"], info.Provider)
		}
		if err := json.Unmarshal(v["provider"], &prov); err != nil || prov.Owner != info.Provider.String() || prov.Status == "" {
			t.Fatalf("provider %s", v["provider"])
		}
	}
	v, err := status()
	if err != nil {
		t.Fatalf("provider status on the dev home: %v", err)
	}
	check(v)

	// A provider.toml naming another node (a home made before this was fixed, or hand-edited): the dev home's
	// client.json wins.
	cfg.Node = "http://127.0.0.1:26657"
	if err := cfg.Save(cfgPath); err != nil {
		t.Fatal(err)
	}
	if v, err = status(); err != nil {
		t.Fatalf("provider status with provider.toml naming another node: %v", err)
	}
	check(v)
	// --node is asked, over both.
	if v, err = status("--node", info.RPC); err != nil {
		t.Fatal(err)
	}
	check(v)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	if _, err := status("--node", "http://"+dead); err == nil || !strings.Contains(err.Error(), dead) {
		t.Fatalf("--node http://%s (nothing listens): %v", dead, err)
	}
}

// TestDevProcesses runs `spare dev` as processes: with the explorer's default port taken it serves on a free one
// and says so; a second `spare dev` on the same home says which pid runs it; an --explorer address in use is an
// error naming the flag.
func TestDevProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs spare dev processes")
	}
	tmp := t.TempDir()
	bin := proctest.Build(t, ".")
	home := filepath.Join(tmp, "dev")
	// 127.0.0.1:8080 in use, by this test or by someone else: either way spare dev must not fail on it.
	if ln, err := net.Listen("tcp", "127.0.0.1:8080"); err == nil {
		defer ln.Close()
	}
	logPath := filepath.Join(tmp, "dev.log")
	first := startProc(t, bin, logPath, "dev", "--home", home, "--no-docker", "--nvidia-smi", "/nonexistent/nvidia-smi", "--log-level", "warn")
	deadline := time.Now().Add(60 * time.Second)
	var log string
	// The whole box, its explorer line included: it is written a line at a time.
	for !strings.Contains(log, "spare dev is running") || !regexp.MustCompile(`\n  explorer +\S+.*\n`).MatchString(log) {
		select {
		case <-first.Done:
			t.Fatalf("spare dev exited:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("spare dev not ready:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
		b, _ := os.ReadFile(logPath)
		log = string(b)
	}
	if !strings.Contains(log, "(127.0.0.1:8080 is in use)") || strings.Contains(log, "explorer      http://127.0.0.1:8080\n") {
		t.Fatalf("explorer with 127.0.0.1:8080 in use:\n%s", log)
	}

	second := exec.Command(bin, "dev", "--home", home, "--no-docker", "--explorer", "")
	out, err := second.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(out), fmt.Sprintf("already running (pid %d)", first.Cmd.Process.Pid)) {
		t.Fatalf("second spare dev: %v\n%s", err, out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().String()
	third := exec.Command(bin, "dev", "--home", filepath.Join(tmp, "dev2"), "--no-docker", "--nvidia-smi", "/nonexistent/nvidia-smi", "--explorer", busy)
	out, err = third.CombinedOutput()
	if !errors.As(err, &ee) || !strings.Contains(string(out), "--explorer "+busy) || strings.Contains(string(out), "--listen") {
		t.Fatalf("spare dev --explorer %s (in use): %v\n%s", busy, err, out)
	}
	if _, err := os.Stat(filepath.Join(tmp, "dev2", "config", "genesis.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("spare dev made a network before finding its --explorer address in use: %v", err)
	}
}
