package devnet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/tenant"
)

// TestSecondRunSaysAlreadyRunning: a second spare dev on a running home fails at once, naming the pid that holds
// it (the lock file's), and its --reset deletes nothing of the running network.
func TestSecondRunSaysAlreadyRunning(t *testing.T) {
	home := filepath.Join(t.TempDir(), "dev")
	o := Options{Home: home, NoDocker: true, BlockTime: 100 * time.Millisecond}
	info, stop := runUntilReady(t, o)
	defer stop()
	if b, err := os.ReadFile(filepath.Join(home, LockFile)); err != nil || strings.TrimSpace(string(b)) != fmt.Sprint(os.Getpid()) {
		t.Fatalf("lock file: %q %v", b, err)
	}
	for _, reset := range []bool{false, true} {
		o.Reset = reset
		start := time.Now()
		err := Run(context.Background(), o, func(Info) { t.Error("a second spare dev became ready") })
		var are *AlreadyRunningError
		if !errors.As(err, &are) || are.PID != os.Getpid() || !strings.Contains(err.Error(), fmt.Sprintf("already running (pid %d)", os.Getpid())) {
			t.Fatalf("second spare dev (reset %v): %v", reset, err)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("the second spare dev took %s to refuse", time.Since(start))
		}
	}
	// The running network is intact: its state, and its node answering.
	if _, err := os.Stat(filepath.Join(home, "config", "genesis.json")); err != nil {
		t.Fatalf("the refused --reset touched the home: %v", err)
	}
	c, _ := client.New(info.RPC, client.Options{})
	if _, err := c.NodeStatus(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestExplorerPortInUse: with the explorer's address taken, spare dev serves the explorer on a free port and
// says which address was busy; when the address was asked for (--explorer), it fails naming the flag.
func TestExplorerPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().String()
	home := filepath.Join(t.TempDir(), "dev")
	o := Options{Home: home, NoDocker: true, BlockTime: 100 * time.Millisecond, Explorer: busy}
	info, stop := runUntilReady(t, o)
	if info.ExplorerBusy != busy || info.Explorer == "" || info.Explorer == "http://"+busy {
		t.Fatalf("explorer %q, busy %q (asked for %s, in use)", info.Explorer, info.ExplorerBusy, busy)
	}
	resp, err := http.Get(info.Explorer + "/api/overview")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("explorer on its free port: %s", resp.Status)
	}
	stop()

	o.ExplorerFixed = true
	err = Run(context.Background(), o, func(Info) { t.Error("ready with its explorer's address in use") })
	if err == nil || !strings.Contains(err.Error(), "--explorer "+busy) || strings.Contains(err.Error(), "--listen") {
		t.Fatalf("explicit --explorer in use: %v", err)
	}
}

// TestLeasesInHomeAndReset runs a job that leaves files behind (as its own user when spare dev runs as root,
// with a directory it made read-only): its lease directory is in the home, nothing of it lands in
// /var/lib/spare, and --reset removes it.
func TestLeasesInHomeAndReset(t *testing.T) {
	home := filepath.Join(t.TempDir(), "dev")
	o := Options{Home: home, NoDocker: true, BlockTime: 100 * time.Millisecond}
	info, stop := runUntilReady(t, o)
	cfg, err := provider.LoadConfig(filepath.Join(home, provider.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home, "leases", "provider"); cfg.LeasesDir != want || cfg.Node != info.RPC {
		t.Fatalf("provider.toml: leases_dir %q (want %q), node %q (want %q)", cfg.LeasesDir, want, cfg.Node, info.RPC)
	}
	kr, err := keyring.Open(filepath.Join(home, "keys"), keyring.Options{Backend: keyring.BackendTest})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := kr.Signer("tenant")
	c, _ := client.New(info.RPC, client.Options{})
	m := &manifest.Manifest{Version: 1, Run: "mkdir -p out ro/sub; echo 42 > out/answer; echo x > ro/sub/f; id -u > out/uid; chmod 555 ro/sub; chmod 500 ro",
		Outputs: []string{"out/"}, Resources: tx.Resources{CPUMilli: 500, MemoryMiB: 128}, DurationSec: 60}
	raw, _ := m.Encode()
	res, err := tenant.New(c, key, nil).Deploy(context.Background(), tenant.Job{Manifest: raw, Order: tx.CreateOrder{Resources: m.Resources,
		MaxPricePerHour: api.USPR, ManifestHash: manifest.Hash(raw), Deposit: api.USPR, DurationSec: m.DurationSec}},
		tenant.Options{OutputsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode == nil || *res.ExitCode != 0 {
		t.Fatalf("job: %+v", res)
	}
	// One directory per provider key below leases_dir (provider.New).
	work := filepath.Join(home, "leases", "provider", info.Provider.String(), fmt.Sprint(res.LeaseID), "work")
	fi, err := os.Stat(filepath.Join(work, "ro", "sub", "f"))
	if err != nil {
		t.Fatalf("the lease's files are not in the home: %v", err)
	}
	if os.Geteuid() == 0 {
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid == 0 {
			t.Fatal("as root, the job ran as root: the test does not cover files of other users")
		}
		if _, err := os.Stat(filepath.Join(legacyLeasesDir, hashDir(home))); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("lease data outside the home: %v", err)
		}
	}
	stop()

	o.Reset = true
	_, stop = runUntilReady(t, o)
	defer stop()
	if _, err := os.Stat(work); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("--reset left the lease's files: %v", err)
	}
}

// TestResetRemovesLeasesOutsideHome: a home made before leases moved into it (leases_dir in
// /var/lib/spare/dev-leases) has them removed by --reset too; only the directory its own providers name.
func TestResetRemovesLeasesOutsideHome(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to write /var/lib/spare")
	}
	home := filepath.Join(t.TempDir(), "dev")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(legacyLeasesDir, 0o711); err != nil {
		t.Fatal(err)
	}
	outside, err := os.MkdirTemp(legacyLeasesDir, "test-") // this home's directory there
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(outside)
	neighbour := filepath.Join(outside, "provider-2") // another home's: not named by this home's config
	mine := filepath.Join(outside, "provider")
	for _, d := range []string{filepath.Join(mine, "1", "work", "ro"), neighbour} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.WriteFile(filepath.Join(mine, "1", "work", "ro", "f"), []byte("x"), 0o400)
	_ = os.Chown(filepath.Join(mine, "1", "work", "ro", "f"), 1_000_000_001, 1_000_000_001)
	_ = os.Chmod(filepath.Join(mine, "1", "work", "ro"), 0o500)
	cfg := provider.DefaultConfig()
	cfg.LeasesDir = mine
	if err := cfg.Save(filepath.Join(home, provider.ConfigFile)); err != nil {
		t.Fatal(err)
	}
	if err := resetHome(home, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mine); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the home's leases outside it: %v", err)
	}
	if _, err := os.Stat(neighbour); err != nil {
		t.Fatalf("another home's leases were removed: %v", err)
	}
	if ents, _ := os.ReadDir(home); len(ents) != 0 {
		t.Fatalf("home after reset: %v", ents)
	}
}

// TestLeasesRootAsRoot: as root, a directory above the home that others cannot traverse is opened for
// traversal when it is root's and nobody's home directory (a temporary directory), so the leases stay in the
// home; a directory of another user's is left alone and the leases go to /var/lib/spare/dev-leases/HASH.
func TestLeasesRootAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs jobs as other users")
	}
	log := slog.New(slog.DiscardHandler)
	tmp := t.TempDir()
	closed := filepath.Join(tmp, "closed")
	home := filepath.Join(closed, "dev")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(closed, 0o700)
	root, err := leasesRoot(home, log)
	if err != nil || root != filepath.Join(home, "leases") {
		t.Fatalf("leases root %q %v", root, err)
	}
	for _, p := range []string{closed, home, root} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o001 == 0 || fi.Mode().Perm()&0o004 != 0 {
			t.Fatalf("%s: %v %v (want traversable, not readable, by others)", p, fi.Mode(), err)
		}
	}

	theirs := filepath.Join(tmp, "theirs")
	home = filepath.Join(theirs, "dev")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(theirs, 0o700)
	if err := os.Chown(theirs, 1_000_000_002, 1_000_000_002); err != nil {
		t.Fatal(err)
	}
	root, err = leasesRoot(home, log)
	if err != nil || root != filepath.Join(legacyLeasesDir, hashDir(home)) {
		t.Fatalf("leases root under another user's directory: %q %v", root, err)
	}
	if fi, _ := os.Stat(theirs); fi.Mode().Perm() != 0o700 {
		t.Fatalf("another user's directory was changed: %v", fi.Mode())
	}
}

// TestRemoveTree removes a tree with directories a workload made read-only or unreadable.
func TestRemoveTree(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tree")
	for _, d := range []string{"a/b/c", "x/y"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(dir, d, "f"), []byte("x"), 0o400)
	}
	_ = os.Symlink("/etc/passwd", filepath.Join(dir, "a", "link"))
	_ = os.Chmod(filepath.Join(dir, "a", "b", "c"), 0o500)
	_ = os.Chmod(filepath.Join(dir, "a", "b"), 0o500)
	_ = os.Chmod(filepath.Join(dir, "x"), 0)
	if err := removeTree(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("left: %v", err)
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Fatalf("followed a link: %v", err)
	}
}

// TestClientsWaitForDevReady: a client command run while `spare dev` starts waits for the network to be ready
// (its providers registered and offering storage) instead of meeting half of it; a home whose dev is not running
// is read at once, ready or not.
func TestClientsWaitForDevReady(t *testing.T) {
	home := t.TempDir()
	if err := writeClientConfig(home, "http://127.0.0.1:1", false); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if cc, err := WaitReady(home, time.Minute, nil); err != nil || cc.Ready || time.Since(start) > 5*time.Second {
		t.Fatalf("no dev running: %+v %v after %s", cc, err, time.Since(start))
	}
	unlock, err := lockHome(home)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = writeClientConfig(home, "http://127.0.0.1:1", true)
	}()
	said := 0
	cc, err := WaitReady(home, time.Minute, func() { said++ })
	if err != nil || !cc.Ready || said != 1 {
		t.Fatalf("waiting for ready: %+v %v, said %d times", cc, err, said)
	}
	if err := writeClientConfig(home, "http://127.0.0.1:1", false); err != nil {
		t.Fatal(err)
	}
	if cc, err := WaitReady(home, 200*time.Millisecond, nil); err != nil || cc.Ready {
		t.Fatalf("past the wait: %+v %v", cc, err)
	}
}
