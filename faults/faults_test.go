package faults

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// full is `make faults`: every scenario. Without it, only the short profile runs (`make test`).
var full = os.Getenv("SPARE_FAULTS") == "full"

var (
	resultsMu sync.Mutex
	results   []outcome
)

func record(o outcome) {
	resultsMu.Lock()
	results = append(results, o)
	resultsMu.Unlock()
}

// TestMain writes the results table to $SPARE_FAULTS_REPORT when set (make faults: RELIABILITY.md quotes it).
func TestMain(m *testing.M) {
	code := m.Run()
	if path := os.Getenv("SPARE_FAULTS_REPORT"); path != "" && len(results) > 0 {
		var b strings.Builder
		b.WriteString("| scenario | what was checked | acknowledged txs | lost | final height | recovery | took |\n| --- | --- | --- | --- | --- | --- | --- |\n")
		for _, r := range results {
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %s | %s |\n", r.Scenario, r.Checked, r.Acked, r.Lost, r.Height, r.Recovery, r.Took.Round(time.Second))
		}
		_ = os.WriteFile(path, []byte(b.String()), 0o644)
	}
	os.Exit(code)
}

// checked is what n.check compares, for the results table: the block and app hash of every height on every
// validator, every acknowledged transaction at its height with code 0 on every validator, the supply invariant
// on each.
const checked = "hashes of every height, every acked tx, supply"

// under runs a scenario on four validators under load, then checks the network and records the outcome.
func under(t *testing.T, name string, scenario func(n *network) string) {
	underWith(t, name, nil, scenario)
}

// underWith is under with prepare passed to newNetworkWith (validators in network namespaces: netem_test.go).
func underWith(t *testing.T, name string, prepare func(*network), scenario func(n *network) string) {
	if testing.Short() {
		t.Skip("runs validator processes")
	}
	t0 := time.Now()
	n := newNetworkWith(t, 4, 8, 100*time.Millisecond, prepare)
	ld := n.startLoad()
	if _, err := n.waitHeight(0, n.height(0)+20, 60*time.Second); err != nil { // load flowing
		t.Fatal(err)
	}
	recovery := scenario(n)
	time.Sleep(time.Second) // load after the fault
	acked, failed := ld.end()
	if len(acked) == 0 {
		t.Fatal("no transaction was acknowledged")
	}
	height, lost := n.check(acked)
	t.Logf("%s: %d acknowledged, %d sends failed while validators were down, %d lost; final height %d; %s", name, len(acked), failed, lost, height, recovery)
	record(outcome{Scenario: name, Checked: checked, Acked: len(acked), Lost: lost, Height: height, Recovery: recovery, Took: time.Since(t0)})
}

// TestKillOneOfFour: a validator of four killed with SIGKILL while the others commit under load, then
// restarted: it replays and catches up, nothing acknowledged is lost, no fork. (The short profile: make test.)
func TestKillOneOfFour(t *testing.T) {
	under(t, "4 validators: kill -9 one, restart", func(n *network) string {
		n.kill(2)
		h := n.top()
		if _, err := n.waitHeight(0, h+10, 30*time.Second); err != nil { // three of four keep committing
			t.Fatalf("the chain stopped with one validator of four down: %v", err)
		}
		n.start(2)
		took, err := n.waitHeight(2, n.top(), 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("killed validator back at the head in %s", took.Round(10*time.Millisecond))
	})
}

// TestPauseTwoOfFour: two validators of four stopped with SIGSTOP: the others cannot commit (a halt, never a
// fork); resumed, the chain goes on.
func TestPauseTwoOfFour(t *testing.T) {
	if !full {
		t.Skip("make faults")
	}
	under(t, "4 validators: SIGSTOP two, resume", func(n *network) string {
		n.pause(2)
		n.pause(3)
		time.Sleep(2 * time.Second) // what was in flight commits or not
		h := max(n.height(0), n.height(1))
		time.Sleep(3 * time.Second)
		if now := max(n.height(0), n.height(1)); now > h+1 {
			t.Fatalf("half the voting power committed blocks %d..%d", h+1, now)
		}
		t0 := time.Now()
		n.resume(2)
		n.resume(3)
		if _, err := n.waitHeight(0, h+5, 60*time.Second); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("halted at height %d while paused; blocks again %s after resuming", h, time.Since(t0).Round(10*time.Millisecond))
	})
}

// TestRollingRestart: every validator killed and restarted in turn, each back at the head before the next.
func TestRollingRestart(t *testing.T) {
	if !full {
		t.Skip("make faults")
	}
	under(t, "4 validators: rolling restart", func(n *network) string {
		var worst time.Duration
		for i := range 4 {
			n.kill(i)
			time.Sleep(500 * time.Millisecond)
			n.start(i)
			took, err := n.waitHeight(i, n.top(), 60*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			worst = max(worst, took)
		}
		return fmt.Sprintf("slowest validator back at the head in %s", worst.Round(10*time.Millisecond))
	})
}

// TestWipeAndResync: a validator's chain data wiped (its signing state kept): it syncs every block from its
// peers and rebuilds the ledger's state by executing them.
func TestWipeAndResync(t *testing.T) {
	if !full {
		t.Skip("make faults")
	}
	under(t, "4 validators: one wiped, resynced", func(n *network) string {
		n.kill(3)
		n.wipe(3)
		n.start(3)
		took, err := n.waitHeight(3, n.top(), 120*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("wiped validator synced to the head (height %d) in %s", n.height(3), took.Round(10*time.Millisecond))
	})
}
