package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/devnet"
)

// runWithStderr runs the CLI and returns its stdout and its warnings.
func runWithStderr(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	g := globalsOf(root)
	g.out, g.stderr = &out, &errOut
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

// devBase makes $SPARE_HOME a base home where only `spare dev` has run: base/dev holds the client.json it writes
// and its unencrypted "tenant" key. It returns the base and the dev home.
func devBase(t *testing.T) (string, string) {
	t.Helper()
	base := t.TempDir()
	dev := filepath.Join(base, "dev")
	os.MkdirAll(dev, 0o700)
	cc := `{"node": "http://127.0.0.1:1", "keyring_backend": "test", "key": "tenant"}`
	if err := os.WriteFile(filepath.Join(dev, devnet.ClientConfigFile), []byte(cc), 0o600); err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.Open(filepath.Join(dev, "keys"), keyring.Options{Backend: keyring.BackendTest})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Add("tenant"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SPARE_HOME", base)
	t.Setenv("SPARE_PASSPHRASE", "")
	return base, dev
}

// TestDefaultDevHomeGetsNoRealKeys: after `spare dev` has run, the commands that create keys (or run a real
// provider) without --home refuse the dev home instead of storing keys there unencrypted.
func TestDefaultDevHomeGetsNoRealKeys(t *testing.T) {
	_, dev := devBase(t)
	for _, args := range [][]string{
		{"keys", "add", "alice"},
		{"provider", "init", "--region", "eu-west", "--host-uri", "https://gpu1.example.net:8443", "--node-url", "http://127.0.0.1:1", "--nvidia-smi", "/nonexistent/nvidia-smi"},
		{"provider", "start"},
		{"init", "--chain-id", "real"},
	} {
		_, _, err := runWithStderr(t, args...)
		if err == nil || !strings.Contains(err.Error(), "--home") || !strings.Contains(err.Error(), "unencrypted") {
			t.Errorf("%v on the default dev home: %v, want a refusal naming --home", args, err)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dev, "keys"))
	if len(ents) != 1 {
		t.Errorf("the dev home's keys changed: %d files", len(ents))
	}
	for _, f := range []string{"provider.toml", "config"} {
		if _, err := os.Stat(filepath.Join(dev, f)); err == nil {
			t.Errorf("%s was written into the dev home", f)
		}
	}
	// The dev network's own commands still find it, its test key with no passphrase, and say nothing.
	out, warn, err := runWithStderr(t, "keys", "show", "tenant")
	if err != nil || !strings.HasPrefix(out, "tenant spare1") || warn != "" {
		t.Fatalf("keys show on the default dev home: %q %q %v", out, warn, err)
	}
}

// TestExplicitDevHome: named with --home, the dev home takes a new (test) key without a passphrase, with a
// warning; using its keys for the dev network is silent.
func TestExplicitDevHome(t *testing.T) {
	_, dev := devBase(t)
	out, warn, err := runWithStderr(t, "--home", dev, "keys", "add", "bob")
	if err != nil || !strings.HasPrefix(out, "bob spare1") {
		t.Fatalf("keys add --home DEV: %q %v", out, err)
	}
	if !strings.Contains(warn, "WARNING") || !strings.Contains(warn, "UNENCRYPTED") || !strings.Contains(warn, "'spare dev' home") {
		t.Fatalf("no warning for a new unencrypted key: %q", warn)
	}
	if _, warn, err := runWithStderr(t, "--home", dev, "keys", "show", "bob"); err != nil || warn != "" {
		t.Fatalf("keys show --home DEV: %q %v", warn, err)
	}
}

// TestTestBackendOutsideDevWarns: --keyring-backend test on a home spare dev did not make works, and says loudly
// that the keys are unencrypted, every time.
func TestTestBackendOutsideDevWarns(t *testing.T) {
	home := t.TempDir()
	for _, args := range [][]string{{"keys", "add", "alice"}, {"keys", "list", "-o", "json"}} {
		out, warn, err := runWithStderr(t, append([]string{"--home", home, "--keyring-backend", "test"}, args...)...)
		if err != nil || out == "" {
			t.Fatalf("%v: %q %v", args, out, err)
		}
		if !strings.Contains(warn, "WARNING") || !strings.Contains(warn, "UNENCRYPTED") || !strings.Contains(warn, "outside a 'spare dev' home") ||
			!strings.Contains(warn, filepath.Join(home, "keys")) {
			t.Errorf("%v: warning %q", args, warn)
		}
		if strings.Contains(out, "WARNING") {
			t.Errorf("%v: the warning went to stdout", args)
		}
	}
}

// TestPassphraseMinimum: a new encrypted key needs a passphrase of at least 12 characters.
func TestPassphraseMinimum(t *testing.T) {
	home := t.TempDir()
	t.Setenv("SPARE_HOME", home)
	t.Setenv("SPARE_PASSPHRASE", "eleven char")
	_, _, err := runWithStderr(t, "--home", home, "keys", "add", "alice")
	if err == nil || !strings.Contains(err.Error(), "at least 12 characters") || !strings.Contains(err.Error(), "SPARE_PASSPHRASE") {
		t.Fatalf("an 11-character passphrase: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(home, "keys")); len(ents) != 0 {
		t.Fatalf("a key was stored: %d files", len(ents))
	}
	t.Setenv("SPARE_PASSPHRASE", "twelve chars")
	out, warn, err := runWithStderr(t, "--home", home, "keys", "add", "alice")
	if err != nil || !strings.HasPrefix(out, "alice spare1") || warn != "" {
		t.Fatalf("a 12-character passphrase: %q %q %v", out, warn, err)
	}
}
