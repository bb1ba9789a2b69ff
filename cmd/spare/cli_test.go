package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/internal/proctest"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/tenant"
)

// TestEveryCommandAnswersJSON runs every runnable command of the tree, as a user would, with -o json in an empty
// home against a node that does not answer, and with no arguments: whatever each says — its result, or why it
// cannot — is one JSON document on stdout, never text. The commands that run a server or a network until stopped
// (node, dev, provider start, auditor, explorer) are left out. An unknown command's error is JSON too (it fails
// before the flags are parsed).
func TestEveryCommandAnswersJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary once per command")
	}
	bin := proctest.Build(t, ".")
	home := t.TempDir()
	longRunning := map[string]bool{"spare node": true, "spare dev": true, "spare provider start": true, "spare auditor": true, "spare explorer": true}
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		if c.Runnable() && !longRunning[c.CommandPath()] && len(path) > 0 {
			paths = append(paths, path)
		}
		for _, sub := range c.Commands() {
			walk(sub, append(slices.Clone(path), sub.Name()))
		}
	}
	walk(newRootCmd(), nil)
	paths = append(paths, []string{"no-such-command"})
	for _, p := range paths {
		args := append(slices.Clone(p), "-o", "json", "--home", home, "--node", "http://127.0.0.1:1")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdin = strings.NewReader("")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		_ = cmd.Run()
		cancel()
		var doc any
		dec := json.NewDecoder(bytes.NewReader(stdout.Bytes()))
		if err := dec.Decode(&doc); err != nil || dec.More() {
			t.Errorf("spare %s: stdout is not one JSON document (%v):\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
	}
	t.Logf("%d commands answered in JSON", len(paths))
}

// TestEveryCommandDocumented walks the command tree: every command has a short help line. (That every command
// answers -o json is TestEveryCommandAnswersJSON's, on the binary.)
func TestEveryCommandDocumented(t *testing.T) {
	root := newRootCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" || strings.HasPrefix(c.CommandPath(), "spare completion") {
			return
		}
		if strings.TrimSpace(c.Short) == "" {
			t.Errorf("%q has no short help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	globalsOf(root).out = &out
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.Execute()
	return out.String(), err
}

// TestBadInputNamesTheFix: flags and arguments from outside are validated with an error that names them.
func TestBadInputNamesTheFix(t *testing.T) {
	home := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--home", home, "-o", "yaml", "keys", "list"}, "--output"},
		{[]string{"--home", home, "--keyring-backend", "os", "keys", "list"}, "--keyring-backend"},
		{[]string{"--home", home, "--log-level", "loud", "keys", "list"}, "--log-level"},
		{[]string{"--home", home, "--gas", "lots", "keys", "list"}, "--gas"},
		{[]string{"--home", home, "--gas", "0", "keys", "list"}, "--gas"},
		{[]string{"--home", home, "--gas-adjustment", "0.5", "keys", "list"}, "--gas-adjustment"},
		{[]string{"--home", home, "--keyring-backend", "test", "send", "a", "b", "1.2.3"}, "amount"},
		{[]string{"--home", home, "query", "order", "abc"}, "order id"},
		{[]string{"--home", home, "query", "orders", "--limit", "5000"}, "--limit"},
		{[]string{"--home", home, "testnet", "--validators", "0", "--dir", home}, "--validators"},
		{[]string{"--home", home, "balance"}, "no Spare keys at " + filepath.Join(home, "keys") + ": run 'spare dev'"},
		{[]string{"--home", filepath.Join(home, "nonexistent"), "deploy", "job.yaml"}, "job.yaml"},
		{[]string{"--home", filepath.Join(home, "nonexistent"), "leases"}, "no Spare keys at " + filepath.Join(home, "nonexistent", "keys")},
		{[]string{"--home", home, "verify", "abc"}, "lease id"},
		{[]string{"--home", home, "explorer", "--listen", "nonsense"}, "no --node given"},
		{[]string{"--home", home, "--keyring-backend", "test", "init", "--fund", "-5"}, "--fund"},
		{[]string{"--home", home, "offers", "cpu>=1", "--job", "job.yaml"}, "not both"},
		{[]string{"--home", home, "offers", "cpu>=1", "--storage"}, "give no query"},
		{[]string{"--home", home, "offers", "--job", filepath.Join(home, "missing.yaml")}, "missing.yaml"},
	} {
		_, err := run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(home, "nonexistent")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a command pointed at a home that does not exist created it: %v", err)
	}
}

func TestKeysJSON(t *testing.T) {
	home := t.TempDir()
	if _, err := run(t, "--home", home, "--keyring-backend", "test", "keys", "add", "alice"); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "--home", home, "--keyring-backend", "test", "keys", "list", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var infos []struct {
		Name    string `json:"name"`
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &infos); err != nil || len(infos) != 1 || infos[0].Name != "alice" || !strings.HasPrefix(infos[0].Address, "spare1") {
		t.Fatalf("keys list -o json: %q %v", out, err)
	}
}

// TestProviderInitCPUOnly runs `spare provider init` on this machine (no GPU here: a CPU-only provider) and checks
// what it wrote.
func TestProviderInitCPUOnly(t *testing.T) {
	home := t.TempDir()
	out, err := run(t, "--home", home, "--keyring-backend", "test", "provider", "init", "--region", "eu-west",
		"--host-uri", "https://gpu1.example.net:8443", "--node-url", "http://127.0.0.1:1", "--nvidia-smi", "/nonexistent/nvidia-smi", "-o", "json")
	if err != nil {
		t.Fatalf("provider init: %v\n%s", err, out)
	}
	var res providerInitResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if res.Hardware.GPUCount() != 0 || res.Hardware.CPUMilli == 0 || res.Hardware.MemoryMiB == 0 || res.CertFingerprint.IsZero() {
		t.Fatalf("init result: %+v", res)
	}
	cfg, err := provider.LoadConfig(res.Config)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "eu-west" || cfg.HostURI != "https://gpu1.example.net:8443" || cfg.Node != "http://127.0.0.1:1" {
		t.Fatalf("config: %+v", cfg)
	}
	// A second init refuses to overwrite the operator's edits.
	if _, err := run(t, "--home", home, "--keyring-backend", "test", "provider", "init"); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second init: %v", err)
	}
}

// TestDeployExitCode: deploy's exit status follows the job's exit code when it ran, else Spare's documented codes.
func TestDeployExitCode(t *testing.T) {
	code := func(c int64) *int64 { return &c }
	for _, c := range []struct {
		res  *tenant.Result
		err  error
		want int
	}{
		{&tenant.Result{Outcome: tenant.OutcomeExited, ExitCode: code(0)}, nil, 0},
		{&tenant.Result{Outcome: tenant.OutcomeExited, ExitCode: code(3)}, nil, 3},
		{&tenant.Result{Outcome: tenant.OutcomeExited, ExitCode: code(255)}, nil, 255},
		{&tenant.Result{Outcome: tenant.OutcomeExited, ExitCode: code(-1)}, nil, 255},
		{&tenant.Result{Outcome: tenant.OutcomeExited, ExitCode: code(1 << 40)}, nil, 255},
		{&tenant.Result{Outcome: tenant.OutcomeDurationReached, ExitCode: code(143)}, nil, 124},
		{&tenant.Result{Outcome: tenant.OutcomeMemoryLimit, ExitCode: code(137)}, nil, 137},
		{&tenant.Result{Outcome: tenant.OutcomeClosedByProvider}, nil, 122},
		{&tenant.Result{Outcome: tenant.OutcomeMemberFailed}, nil, 122},
		{&tenant.Result{Outcome: tenant.OutcomeClosedByAuditors}, nil, 123},
		{&tenant.Result{Outcome: tenant.OutcomeDepositExhausted}, nil, 126},
		{&tenant.Result{Outcome: tenant.OutcomeInconclusive}, nil, 127},
		{&tenant.Result{Outcome: tenant.OutcomeClosedByTenant}, nil, 143},
		{&tenant.Result{Outcome: tenant.OutcomeRunning}, nil, 0},
		{nil, fmt.Errorf("deploy: %w", tenant.ErrNoOffers), 125},
		{nil, fmt.Errorf("fetch: %w", tenant.ErrOutputs), 121},
		{nil, context.Canceled, 130},
		{nil, errors.New("node unreachable"), 1},
		{nil, tx.Errorf(tx.CodeInsufficientFunds, "poor"), 2},
	} {
		if got := deployExitCode(c.res, c.err); got != c.want {
			t.Errorf("%+v %v: exit %d, want %d", c.res, c.err, got, c.want)
		}
	}
}

// TestNodeDownSaysWhatToDo: a command against a node that is not running names the node's address and what to
// do, not the request's URL.
func TestNodeDownSaysWhatToDo(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	_, err = run(t, "--home", t.TempDir(), "--node", "http://"+addr, "query", "order", "1")
	err = explain(err)
	if err == nil || !strings.Contains(err.Error(), "cannot reach the node at http://"+addr+" (connection refused): is 'spare dev'") || strings.Contains(err.Error(), "abci_query") {
		t.Fatalf("err = %v", err)
	}
}

// TestErrorsSaidOnce: a ledger rejection loses the transaction's internal message prefix and keeps its code.
func TestErrorsSaidOnce(t *testing.T) {
	err := explain(fmt.Errorf("close lease 4: %w", tx.Errorf(tx.CodeBadLeaseState, "msgs[0] close_lease: lease 4 is closed, not active")))
	if err.Error() != "close lease 4: bad_lease_state (code 20): lease 4 is closed, not active" && !strings.Contains(err.Error(), "close lease 4:") || strings.Contains(err.Error(), "msgs[0]") {
		t.Fatalf("err = %q", err)
	}
	if exitCode(err) != 2 {
		t.Fatalf("exit %d: the ledger's rejection is still 2", exitCode(err))
	}
}
