package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/internal/proctest"
	"github.com/sparenet/spare/node"
)

// TestJournalFlipRefusedThenRebuilt plays an operator's bad day on real processes: `spare node` runs, transfers
// commit, the node is killed with SIGKILL and one byte of the ledger's LevelDB journal is flipped. LevelDB alone
// would skip the damaged block and apply the later ones, serving a state that lost committed transfers with the
// same height and app hash; the node instead refuses to start and says how to rebuild. `spare node
// --rebuild-ledger` then moves the database aside and replays the chain's blocks: every committed transfer is
// back and the supply invariant holds. Then the rebuilt database loses its MANIFEST: refused and rebuilt the same
// way.
func TestJournalFlipRefusedThenRebuilt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes")
	}
	tmp := t.TempDir()
	bin := proctest.Build(t, ".")
	home := filepath.Join(tmp, "home")
	base, err := node.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	kb := []string{"--home", home, "--keyring-backend", "test"}
	crashRun(t, bin, append(kb, "init", "--keys", "tenant,provider", "--fund", "1000", "--block-time", "20ms",
		"--rpc", fmt.Sprintf("tcp://127.0.0.1:%d", base), "--p2p", fmt.Sprintf("tcp://127.0.0.1:%d", base+1))...)
	spare := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(kb, args...)...).CombinedOutput()
		return string(out), err
	}
	ready := func(p *proctest.Proc) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			if _, err := spare("balance", "tenant", "-o", "json"); err == nil {
				return
			}
			select {
			case <-p.Done:
				t.Fatalf("the node stopped:\n%s", proctest.Tail(p.Log, 20))
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("the node did not answer:\n%s", proctest.Tail(p.Log, 20))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	n := startProc(t, bin, filepath.Join(tmp, "node.log"), append([]string{"node"}, kb...)...)
	ready(n)
	ledgerDir := filepath.Join(home, "data", "ledger")
	journal := func() (string, int64) {
		logs, _ := filepath.Glob(filepath.Join(ledgerDir, "*.log"))
		var biggest string
		var size int64
		for _, l := range logs {
			if fi, err := os.Stat(l); err == nil && fi.Size() > size {
				biggest, size = l, fi.Size()
			}
		}
		return biggest, size
	}
	log, size := journal()
	if log == "" {
		t.Fatal("no LevelDB journal under data/ledger")
	}
	off := size + 24 // inside the first batch written from here on
	for i := 1; i <= 6; i++ {
		if out, err := spare("send", "tenant", "provider", fmt.Sprintf("0.00000%d", i), "--yes"); err != nil {
			t.Fatalf("send %d: %v\n%s", i, err, out)
		}
	}
	before, err := spare("balance", "tenant", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	// Later blocks must land in the journal past the next 32 KiB block, so that LevelDB applies them.
	deadline := time.Now().Add(90 * time.Second)
	for {
		if l, s := journal(); l == log && s > off+70_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the journal did not grow")
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.Kill()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0xFF
	if err := os.WriteFile(log, b, 0o600); err != nil {
		t.Fatal(err)
	}

	refused := startProc(t, bin, filepath.Join(tmp, "node2.log"), append([]string{"node"}, kb...)...)
	select {
	case <-refused.Done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the node started on a damaged database:\n%s", proctest.Tail(refused.Log, 10))
	}
	if msg := proctest.Tail(refused.Log, 5); !strings.Contains(msg, "damaged") || !strings.Contains(msg, "--rebuild-ledger") {
		t.Fatalf("the refusal does not say what happened and what to do:\n%s", msg)
	}
	if code := refused.Cmd.ProcessState.ExitCode(); code == 0 {
		t.Fatal("the node refused with exit status 0")
	}

	rebuilt := startProc(t, bin, filepath.Join(tmp, "node3.log"), append([]string{"node", "--rebuild-ledger"}, kb...)...)
	ready(rebuilt)
	if after, err := spare("balance", "tenant", "-o", "json"); err != nil || after != before {
		t.Fatalf("after the rebuild: %s (%v), before the damage: %s", after, err, before)
	}
	if out, err := spare("query", "supply", "-o", "json"); err != nil || !strings.Contains(strings.ReplaceAll(out, " ", ""), `"holds":true`) {
		t.Fatalf("supply: %s %v", out, err)
	}
	if aside, _ := filepath.Glob(ledgerDir + ".damaged-*"); len(aside) != 1 {
		t.Fatalf("the damaged database was not kept aside: %v", aside)
	}

	// A second bad day: the rebuilt database loses its MANIFEST (a partial restore, an operator's rm). Refused
	// again, rebuilt again, the same balances.
	rebuilt.Kill()
	ms, _ := filepath.Glob(filepath.Join(ledgerDir, "MANIFEST-*"))
	if len(ms) == 0 {
		t.Fatal("no MANIFEST under data/ledger")
	}
	for _, m := range ms {
		os.Remove(m)
	}
	refused = startProc(t, bin, filepath.Join(tmp, "node4.log"), append([]string{"node"}, kb...)...)
	select {
	case <-refused.Done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the node started without its MANIFEST:\n%s", proctest.Tail(refused.Log, 10))
	}
	if msg := proctest.Tail(refused.Log, 5); !strings.Contains(msg, "damaged") || !strings.Contains(msg, "--rebuild-ledger") {
		t.Fatalf("the refusal does not say what happened and what to do:\n%s", msg)
	}
	rebuilt = startProc(t, bin, filepath.Join(tmp, "node5.log"), append([]string{"node", "--rebuild-ledger"}, kb...)...)
	ready(rebuilt)
	if after, err := spare("balance", "tenant", "-o", "json"); err != nil || after != before {
		t.Fatalf("after the second rebuild: %s (%v), before the damage: %s", after, err, before)
	}
}
