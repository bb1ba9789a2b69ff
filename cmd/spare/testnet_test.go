package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sparenet/spare/internal/proctest"
)

// TestTestnetCommandAsUserRunsIt runs what README tells a user: `spare testnet --validators 3`, then one
// `spare node --home DIR/nodeI` process per validator, then a transfer with the CLI against node 0, and checks the
// balance through node 2.
func TestTestnetCommandAsUserRunsIt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three node processes")
	}
	tmp := t.TempDir()
	bin := proctest.Build(t, ".")
	dir := filepath.Join(tmp, "net")
	out := crashRun(t, bin, "testnet", "--validators", "3", "--dir", dir, "--keyring-backend", "test", "--keys", "alice,bob", "--fund", "100", "-o", "json")
	var res testnetResult
	if err := json.Unmarshal(out, &res); err != nil || len(res.Homes) != 3 {
		t.Fatalf("testnet -o json: %v\n%s", err, out)
	}
	for i, home := range res.Homes {
		logf, err := os.Create(filepath.Join(tmp, "node"+string(rune('0'+i))+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "node", "--home", home, "--log-level", "warn")
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
			logf.Close()
		})
	}
	home0 := []string{"--home", res.Homes[0], "--keyring-backend", "test"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for { // the network needs a moment to form and commit its first block
		cmd := exec.CommandContext(ctx, bin, append(home0, "send", "alice", "bob", "2.5", "-o", "json")...)
		if out, err := cmd.Output(); err == nil {
			var sr sendResult
			if err := json.Unmarshal(out, &sr); err != nil || sr.Height < 1 {
				t.Fatalf("send -o json: %v\n%s", err, out)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatal("send never succeeded:\n" + proctest.Tail(filepath.Join(tmp, "node0.log"), 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Read through another validator: the transfer is replicated.
	for {
		out, err := exec.CommandContext(ctx, bin, "--home", res.Homes[0], "--keyring-backend", "test", "--node", res.RPC[2], "balance", "bob", "-o", "json").Output()
		if err == nil {
			var row balanceRow
			if err := json.Unmarshal(out, &row); err != nil {
				t.Fatal(err)
			}
			if row.Balance == 102_500_000 {
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("bob's balance never reached 102.5 SPR on node 2: %s %v", out, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
