package faults

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/internal/proctest"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/node"
)

// network is a local testnet of validator processes.
type network struct {
	t       *testing.T
	bin     string
	dir     string
	base    int      // first port: validator i's RPC on base+2i, its P2P on base+2i+1
	netns   []string // validator i runs in network namespace netns[i] (netem_test.go); nil: all on loopback
	homes   []string
	rpc     []string
	procs   []*proctest.Proc
	signers []client.Signer
}

// newNetwork makes and starts n validators with keys funded keys, blocks every blockTime.
func newNetwork(t *testing.T, n, keys int, blockTime time.Duration) *network {
	t.Helper()
	return newNetworkWith(t, n, keys, blockTime, nil)
}

// newNetworkWith is newNetwork with prepare, when not nil, run on the network after its homes are written and
// before any validator starts (to move them into network namespaces: netem_test.go).
func newNetworkWith(t *testing.T, n, keys int, blockTime time.Duration, prepare func(*network)) *network {
	t.Helper()
	bin := proctest.Build(t, "../cmd/spare")
	dir := t.TempDir()
	base, err := node.FreePorts(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("load%d", i)
	}
	out, err := exec.Command(bin, "testnet", "--validators", fmt.Sprint(n), "--dir", dir, "--keyring-backend", "test",
		"--keys", strings.Join(names, ","), "--fund", "1000000", "--block-time", blockTime.String(),
		"--base-port", fmt.Sprint(base), "-o", "json").Output()
	if err != nil {
		t.Fatalf("spare testnet: %v\n%s", err, out)
	}
	var tn struct {
		Homes []string `json:"homes"`
		RPC   []string `json:"rpc"`
	}
	if err := json.Unmarshal(out, &tn); err != nil || len(tn.Homes) != n {
		t.Fatalf("spare testnet -o json: %v\n%s", err, out)
	}
	net := &network{t: t, bin: bin, dir: dir, base: base, homes: tn.Homes, rpc: tn.RPC, procs: make([]*proctest.Proc, n)}
	kr, err := keyring.Open(filepath.Join(tn.Homes[0], "keys"), keyring.Options{Backend: keyring.BackendTest})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		s, err := kr.Signer(name)
		if err != nil {
			t.Fatal(err)
		}
		net.signers = append(net.signers, s)
	}
	if prepare != nil {
		prepare(net)
	}
	t.Cleanup(func() {
		for i := range net.procs {
			net.kill(i)
		}
	})
	for i := range n {
		net.start(i)
	}
	for i := range n {
		if _, err := net.waitHeight(i, 2, 60*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return net
}

// start runs validator i (again).
func (n *network) start(i int) {
	n.t.Helper()
	cmd := exec.Command(n.bin, "node", "--home", n.homes[i], "--log-level", "warn")
	if n.netns != nil { // ip netns exec execs the node in the namespace: the process is the node itself
		cmd = exec.Command("ip", append([]string{"netns", "exec", n.netns[i]}, cmd.Args...)...)
	}
	n.procs[i] = proctest.Start(n.t, filepath.Join(n.dir, fmt.Sprintf("node%d.log", i)), cmd)
}

// kill sends SIGKILL to validator i and waits for it to end (a stopped one is continued first, so it can die).
func (n *network) kill(i int) {
	if p := n.procs[i]; p != nil {
		p.Kill()
		n.procs[i] = nil
	}
}

// pause stops validator i with SIGSTOP; resume continues it.
func (n *network) pause(i int)  { n.procs[i].Pause() }
func (n *network) resume(i int) { n.procs[i].Resume() }

// wipe removes validator i's chain data (blocks, state, ledger), keeping its signing state so that it cannot
// sign twice at a height: it resyncs from its peers when started again.
func (n *network) wipe(i int) {
	n.t.Helper()
	data := filepath.Join(n.homes[i], "data")
	entries, err := os.ReadDir(data)
	if err != nil {
		n.t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "priv_validator_state.json" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(data, e.Name())); err != nil {
			n.t.Fatal(err)
		}
	}
}

func (n *network) client(i int) *client.Client {
	c, err := client.New(n.rpc[i], client.Options{RequestTimeout: 3 * time.Second})
	if err != nil {
		n.t.Fatal(err)
	}
	return c
}

// height is validator i's latest block (-1 when it does not answer).
func (n *network) height(i int) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := n.client(i).NodeStatus(ctx)
	if err != nil {
		return -1
	}
	return st.SyncInfo.LatestBlockHeight
}

// top is the highest height any validator reports.
func (n *network) top() int64 {
	var h int64 = -1
	for i := range n.procs {
		if n.procs[i] != nil && !n.procs[i].Paused() {
			h = max(h, n.height(i))
		}
	}
	return h
}

// waitHeight waits until validator i reaches height h and returns how long that took.
func (n *network) waitHeight(i int, h int64, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	for {
		if got := n.height(i); got >= h {
			return time.Since(t0), nil
		}
		if p := n.procs[i]; p != nil {
			select {
			case <-p.Done:
				return 0, fmt.Errorf("validator %d stopped:\n%s", i, proctest.Tail(p.Log, 15))
			default:
			}
		}
		if time.Since(t0) > timeout {
			return 0, fmt.Errorf("validator %d at height %d, not %d, after %s", i, n.height(i), h, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// load sends transfers between the funded keys from one worker per key, each through a validator it switches
// away from when that one does not answer; it records every transaction the network acknowledged as committed.
type load struct {
	mu     sync.Mutex
	acked  map[string]int64 // tx hash -> height of its block, as acknowledged
	failed int              // sends that failed (a validator down: expected)
	stop   context.CancelFunc
	done   sync.WaitGroup
}

func (n *network) startLoad() *load {
	ctx, cancel := context.WithCancel(context.Background())
	ld := &load{acked: map[string]int64{}, stop: cancel}
	for w, s := range n.signers {
		to := n.signers[(w+1)%len(n.signers)].Address()
		ld.done.Go(func() {
			target := w % len(n.rpc)
			sender := n.client(target).NewSender(s)
			for ctx.Err() == nil {
				sctx, scancel := context.WithTimeout(ctx, 15*time.Second)
				res, err := sender.Send(sctx, &tx.Send{To: to, Amount: 1})
				scancel()
				if err == nil && res.Code == 0 {
					ld.mu.Lock()
					ld.acked[res.Hash] = res.Height
					ld.mu.Unlock()
					continue
				}
				if ctx.Err() != nil {
					return
				}
				ld.mu.Lock()
				ld.failed++
				ld.mu.Unlock()
				target = (target + 1) % len(n.rpc) // try another validator, with a fresh view of the nonce
				sender = n.client(target).NewSender(s)
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	return ld
}

// end stops the load and returns what it saw.
func (ld *load) end() (acked map[string]int64, failed int) {
	ld.stop()
	ld.done.Wait()
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.acked, ld.failed
}

// outcome is one scenario's line in the results table.
type outcome struct {
	Scenario string
	Checked  string
	Acked    int
	Lost     int
	Height   int64
	Recovery string
	Took     time.Duration
}

// check waits until every validator runs at one height, then compares every height's block and app hash across
// them, finds every acknowledged transaction at its acknowledged height with code 0 on every validator, and checks
// the supply invariant on each. It returns how many acknowledged transactions were lost.
func (n *network) check(acked map[string]int64) (height int64, lost int) {
	n.t.Helper()
	target := n.top() + 2
	for i := range n.procs {
		if _, err := n.waitHeight(i, target, 90*time.Second); err != nil {
			n.t.Fatal(err)
		}
	}
	ctx := context.Background()
	type hdr struct{ block, app string }
	var first []hdr
	for i := range n.procs {
		c := n.client(i)
		hs := make([]hdr, target)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		for h := int64(1); h <= target; h++ {
			wg.Go(func() {
				b, err := c.RPC().Block(ctx, &h)
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("validator %d block %d: %w", i, h, err))
					mu.Unlock()
					return
				}
				hs[h-1] = hdr{b.BlockID.Hash.String(), b.Block.Header.AppHash.String()}
			})
			if h%16 == 0 {
				wg.Wait()
			}
		}
		wg.Wait()
		if len(errs) > 0 {
			n.t.Fatal(errs[0])
		}
		if first == nil {
			first = hs
			continue
		}
		for h := range hs {
			if hs[h] != first[h] {
				n.t.Fatalf("fork: at height %d validator 0 has block %s app hash %s, validator %d block %s app hash %s",
					h+1, first[h].block, first[h].app, i, hs[h].block, hs[h].app)
			}
		}
		sup, err := c.Supply(ctx)
		if err != nil || !sup.Holds() {
			n.t.Fatalf("validator %d: supply %+v %v", i, sup, err)
		}
	}
	hashes := make([]string, 0, len(acked))
	for h := range acked {
		hashes = append(hashes, h)
	}
	slices.Sort(hashes)
	var bad []string
	for i := range n.procs {
		c := n.client(i)
		for _, h := range hashes {
			raw, err := hexBytes(h)
			if err != nil {
				n.t.Fatal(err)
			}
			res, err := c.RPC().Tx(ctx, raw, false)
			switch {
			case err != nil:
				bad = append(bad, fmt.Sprintf("validator %d: tx %s acknowledged at height %d: %v", i, h, acked[h], err))
			case res.Height != acked[h] || res.TxResult.Code != 0:
				bad = append(bad, fmt.Sprintf("validator %d: tx %s acknowledged at height %d: at %d, code %d", i, h, acked[h], res.Height, res.TxResult.Code))
			}
		}
	}
	if len(bad) > 0 {
		n.t.Errorf("%d acknowledged transactions lost or changed:\n%s", len(bad), strings.Join(bad[:min(20, len(bad))], "\n"))
	}
	return target, len(bad) / len(n.procs)
}

func hexBytes(s string) ([]byte, error) { return hex.DecodeString(s) }
