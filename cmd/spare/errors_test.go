package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFailuresSayWhatToDo feeds the everyday failures to the CLI, as a user meets them on a dev network and
// around it, and checks each message: it names the cause once, says what to do, shows amounts in SPR, and
// carries none of the ledger's internal prefixes or the node's request URLs.
func TestFailuresSayWhatToDo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev network")
	}
	dir := t.TempDir()
	home := filepath.Join(dir, "dev")
	startDevnet(t, home)
	gpuJob := filepath.Join(dir, "gpu.yaml")
	if err := os.WriteFile(gpuJob, []byte("run: nvidia-smi\nresources:\n  gpu: {count: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hello := filepath.Join(dir, "hello.yaml")
	if err := os.WriteFile(hello, []byte("run: echo hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty-home")
	os.MkdirAll(empty, 0o700)
	missing := filepath.Join(dir, "no-such-home")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string // each in the message
		not  []string // none in the message
		code int
		then func(t *testing.T)
	}{
		{name: "no home at all", env: map[string]string{"SPARE_HOME": empty}, args: []string{"deploy", hello},
			want: []string{"no Spare keys at " + empty, "run 'spare dev'", "--home DIR", "SPARE_HOME"}, not: []string{"keyring:", "key not found"}, code: 1,
			then: func(t *testing.T) {
				if _, err := os.Stat(filepath.Join(empty, "keys")); err == nil {
					t.Fatal("a failed deploy created a keyring in the empty home")
				}
			}},
		{name: "a home that does not exist", args: []string{"--home", missing, "deploy", hello},
			want: []string{"no Spare keys at " + missing, "run 'spare dev'"}, not: []string{"keyring:"}, code: 1,
			then: func(t *testing.T) {
				if _, err := os.Stat(missing); err == nil {
					t.Fatal("a failed deploy created the home it named")
				}
			}},
		{name: "node down", args: []string{"--home", home, "--node", "http://127.0.0.1:1", "balance"},
			want: []string{"cannot reach the node at http://127.0.0.1:1", "spare dev"}, not: []string{"abci_query", "?path="}, code: 1},
		{name: "no offers", args: []string{"--home", home, "deploy", gpuJob, "--wait", "1s", "--yes"},
			want: []string{"no provider bid", "lack a GPU", "order 1 cancelled, deposit refunded"}, not: []string{"uspr"}, code: 125},
		{name: "an order's id given as a lease's", args: []string{"--home", home, "status", "1"},
			want: []string{"lease 1 not found", "your order 1 exists", "spare status --order 1"}, code: 1},
		{name: "unknown order", args: []string{"--home", home, "query", "order", "999"},
			want: []string{"order 999 not found"}, code: 1},
		{name: "closing a lease that does not exist", args: []string{"--home", home, "close", "999", "--yes"},
			want: []string{"lease 999 not found"}, not: []string{"msgs[0]", "close_lease:"}, code: 2},
		{name: "more than the balance", args: []string{"--home", home, "send", "tenant", "provider", "1000000000", "--yes"},
			want: []string{"SPR"}, not: []string{"uspr", "msgs[0]"}, code: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := run(t, tc.args...)
			if err == nil {
				t.Fatal("succeeded")
			}
			msg := explain(err).Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(msg, n) {
					t.Errorf("message %q has %q", msg, n)
				}
			}
			if strings.Count(msg, "not found") > 1 {
				t.Errorf("message %q says not found more than once", msg)
			}
			if got := exitCode(explain(err)); got != tc.code {
				t.Errorf("exit status %d, want %d (message %q)", got, tc.code, msg)
			}
			if tc.then != nil {
				tc.then(t)
			}
		})
	}
}
