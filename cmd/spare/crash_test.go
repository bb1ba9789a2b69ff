//go:build unix

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/internal/proctest"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/node"
)

// TestKill9DuringLoadRecovers runs `spare node` as a subprocess under a load of Send transactions from four keys,
// kills it with SIGKILL at a random moment several times and restarts it on the same home. After every restart
// the chain must go on past the height it had reached, every transaction seen included before the kill must
// still be found by hash at the same height, every block header seen before the kill must be unchanged (app hash
// and block hash), the app's own last app hash (abci_info) must be the one the next header carries, and the supply
// invariant must hold. At the end, every block is read back: no transaction is in two blocks, each sender's
// included nonces are exactly 0..n-1 with n its account nonce, and every balance is exactly what the included
// transactions make it (no transaction applied twice or lost), summing to the genesis supply.
func TestKill9DuringLoadRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 crash test: builds the binary and runs a node for ~30s")
	}
	const (
		cycles      = 6
		fundSPR     = 1_000_000
		uspr        = 1_000_000
		minLoad     = 1000 * time.Millisecond
		maxLoad     = 2000 * time.Millisecond
		sendPause   = 4 * time.Millisecond
		waitTimeout = 3 * time.Second
		// A short block time keeps the node executing and committing blocks most of the time, rather than
		// waiting out timeout_commit, so kills land mid-block (between FinalizeBlock and Commit, between the
		// app's commit and CometBFT's state save, ...) as often as between blocks.
		blockTime = 2 * time.Millisecond
	)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	dir := t.TempDir()
	bin := proctest.Build(t, ".")
	home := filepath.Join(dir, "home")
	base, err := node.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	rpcURL := fmt.Sprintf("http://127.0.0.1:%d", base)
	senderNames := []string{"k0", "k1", "k2", "k3"}
	out := crashRun(t, bin, "init", "--home", home, "--keyring-backend", "test", "--chain-id", "crash-test",
		"--rpc", fmt.Sprintf("tcp://127.0.0.1:%d", base), "--p2p", fmt.Sprintf("tcp://127.0.0.1:%d", base+1),
		"--keys", strings.Join(append(slices.Clone(senderNames), "tenant", "provider"), ","),
		"--fund", fmt.Sprint(fundSPR), "--block-time", blockTime.String(), "-o", "json")
	var initOut struct {
		Keys []struct {
			Name    string     `json:"name"`
			Address tx.Address `json:"address"`
			Balance uint64     `json:"balance"`
		} `json:"keys"`
		FeeAccount tx.Address `json:"fee_account"`
	}
	if err := json.Unmarshal(out, &initOut); err != nil {
		t.Fatalf("spare init -o json: %v\n%s", err, out)
	}
	if initOut.FeeAccount.IsZero() || len(initOut.Keys) != len(senderNames)+3 { // and the auditor key
		t.Fatalf("spare init: unexpected output:\n%s", out)
	}
	var genesisSupply uint64
	genesisBalance := map[tx.Address]uint64{}
	addrOf := map[string]tx.Address{}
	for _, k := range initOut.Keys {
		genesisSupply += k.Balance
		genesisBalance[k.Address] = k.Balance
		addrOf[k.Name] = k.Address
	}
	if genesisSupply != uint64(len(initOut.Keys))*fundSPR*uspr {
		t.Fatalf("genesis supply %d, want %d", genesisSupply, uint64(len(initOut.Keys))*fundSPR*uspr)
	}

	nd := &crashNode{t: t, bin: bin, home: home, logPath: filepath.Join(dir, "node.log")}
	t.Cleanup(nd.stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("errors and warnings in %s:\n%s", nd.logPath, crashGrep(nd.logPath, 40, "level=ERROR", "level=WARN", "panic", "===== crash test"))
			t.Logf("tail of %s:\n%s", nd.logPath, proctest.Tail(nd.logPath, 80))
		}
	})

	mkClient := func() *client.Client {
		c, err := client.New(rpcURL, client.Options{Poll: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := mkClient()
	nd.start()
	nd.waitRPC(ctx, c)

	kr, err := keyring.Open(filepath.Join(home, "keys"), keyring.Options{Backend: keyring.BackendTest})
	if err != nil {
		t.Fatal(err)
	}
	recipients := []tx.Address{addrOf["tenant"], addrOf["provider"]}
	load := &crashLoad{included: map[[32]byte]int64{}}
	var senders []*crashSender
	for i, name := range senderNames {
		sg, err := kr.Signer(name)
		if err != nil {
			t.Fatal(err)
		}
		sc, wc := mkClient(), mkClient() // one for submitting, one for waiting: few connections each
		senders = append(senders, &crashSender{idx: i, name: name, sender: sc.NewSender(sg), waiter: wc,
			to: recipients[i%len(recipients)]})
	}

	// The recorder notes the header of every height as the chain grows, across restarts.
	rec := &crashHeaders{byHeight: map[int64]crashHeader{}}
	recCtx, stopRec := context.WithCancel(ctx)
	recDone := make(chan struct{})
	go func() { defer close(recDone); rec.run(recCtx, mkClient()) }()
	defer func() { stopRec(); <-recDone }()

	var lastAppHeight int64
	for cycle := 1; cycle <= cycles; cycle++ {
		loadCtx, stopLoad := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, s := range senders {
			wg.Add(1)
			go func() { defer wg.Done(); s.run(loadCtx, load, sendPause, waitTimeout) }()
		}
		loadFor := minLoad + rand.N(maxLoad-minLoad)
		time.Sleep(loadFor)

		// Snapshot what was observed, then kill at once.
		preHeight := rec.max()
		if st, err := c.RPC().Status(ctx); err == nil {
			preHeight = max(preHeight, st.SyncInfo.LatestBlockHeight)
		}
		seen := load.snapshotIncluded()
		headers := rec.snapshot()
		ackedBefore := load.ackedCount()
		nd.kill()
		stopLoad()
		wg.Wait()
		t.Logf("cycle %d: killed at %s, height %d, after %s of load (%d txs acked so far, %d seen included, %d headers recorded)",
			cycle, time.Since(start).Round(time.Millisecond), preHeight, loadFor.Round(time.Millisecond), ackedBefore, len(seen), len(headers))
		if preHeight <= lastAppHeight {
			t.Fatalf("cycle %d: chain did not advance under load: height %d, was %d", cycle, preHeight, lastAppHeight)
		}

		restarted := time.Now()
		nd.start()
		nd.waitRPC(ctx, c)
		killHeight := preHeight
		hs, hsOK := nd.handshake()
		if hsOK {
			killHeight = max(killHeight, hs.storeHeight)
		} else {
			t.Logf("cycle %d: no ABCI handshake lines in the node log: recovery path unknown", cycle)
		}
		// (1) the chain goes on past the height reached before the kill.
		h := crashWaitHeight(t, ctx, c, killHeight+1, 30*time.Second)
		t.Logf("cycle %d: restarted, height %d > %d after %s; recovery:\n%s", cycle, h, killHeight,
			time.Since(restarted).Round(time.Millisecond), nd.recoveryLog())
		if hsOK {
			// The app hash the app had on disk after the kill is the one the header after its height carries.
			crashWaitHeight(t, ctx, c, hs.infoHeight+1, 10*time.Second)
			next := hs.infoHeight + 1
			res, err := c.RPC().Header(ctx, &next)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(res.Header.AppHash, hs.infoHash) {
				t.Fatalf("cycle %d: after the kill the app reported height %d app hash %X, but header %d carries %X",
					cycle, hs.infoHeight, hs.infoHash, next, res.Header.AppHash)
			}
		}
		// (2) every transaction seen included is still there, at the same height, successful.
		crashCheckIncluded(t, ctx, c, seen)
		// (3) blocks seen before the kill are unchanged.
		crashCheckHeaders(t, ctx, c, headers)
		if errs := rec.errors(); len(errs) > 0 {
			t.Fatalf("cycle %d: header recorder: %s", cycle, strings.Join(errs, "; "))
		}
		// The app's own last app hash is what the next header carries.
		lastAppHeight = crashCheckABCIInfo(t, ctx, c, rec)
		// The supply invariant holds and no token appeared or vanished.
		crashCheckSupply(t, bin, home, genesisSupply)
		if t.Failed() {
			t.FailNow()
		}
	}

	// Final accounting: let the mempool drain, then read every block back.
	crashWaitMempoolEmpty(t, ctx, c)
	st, err := c.RPC().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	final := st.SyncInfo.LatestBlockHeight
	crashFinalAccounting(t, ctx, c, final, load, senders, initOut.FeeAccount, genesisBalance, genesisSupply)
	crashCheckSupply(t, bin, home, genesisSupply)
	t.Logf("done in %s: %d kill/restart cycles, final height %d", time.Since(start).Round(time.Millisecond), cycles, final)
}

// crashRun runs the binary to completion and returns its stdout.
func crashRun(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("spare %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr.String())
	}
	return out
}

// crashGrep returns the last n lines of the file at path that contain any of pats.
func crashGrep(path string, n int, pats ...string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, line := range strings.Split(string(b), "\n") {
		if slices.ContainsFunc(pats, func(p string) bool { return strings.Contains(line, p) }) {
			if len(line) > 400 {
				line = line[:400] + "..."
			}
			lines = append(lines, line)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// crashNode is the `spare node` subprocess, in its own process group.
type crashNode struct {
	t       *testing.T
	bin     string
	home    string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	runs int
}

func (n *crashNode) start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		n.t.Fatal("node already running")
	}
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	defer f.Close() // the child has its own copy
	n.runs++
	fmt.Fprintf(f, "\n===== crash test: start #%d of spare node at %s =====\n", n.runs, time.Now().Format(time.RFC3339Nano))
	// debug: CometBFT's info messages (handshake, replay) are slog's debug.
	cmd := exec.Command(n.bin, "node", "--home", n.home, "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("start spare node: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	n.cmd, n.done = cmd, done
}

// kill sends SIGKILL to the node's process group and waits for the node to be gone.
func (n *crashNode) kill() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		n.t.Errorf("spare node (pid %d) still running 10s after SIGKILL", n.cmd.Process.Pid)
	}
	if f, err := os.OpenFile(n.logPath, os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		fmt.Fprintf(f, "\n===== crash test: SIGKILL of spare node at %s =====\n", time.Now().Format(time.RFC3339Nano))
		f.Close()
	}
	n.cmd, n.done = nil, nil
}

// recoveryLog returns the lines of the current run's log that tell how the node recovered: the ABCI handshake,
// blocks replayed, consensus WAL catch-up.
func (n *crashNode) recoveryLog() string {
	n.mu.Lock()
	marker := fmt.Sprintf("===== crash test: start #%d ", n.runs)
	n.mu.Unlock()
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return err.Error()
	}
	_, run, _ := strings.Cut(string(b), marker)
	out := []string{"\t" + marker + strings.SplitN(run, "\n", 2)[0]}
	for _, line := range strings.Split(run, "\n") {
		for _, m := range []string{"Handshake", "Replay", "replay", "Applying block", "WAL", "corrupt", "ledger_height", "re-indexed", "panic", "level=ERROR"} {
			if strings.Contains(line, m) {
				if len(line) > 240 {
					line = line[:240] + "..."
				}
				out = append(out, "\t"+line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// crashHandshake is what CometBFT logged of its ABCI handshake at the start of a run: the app's last height and
// app hash as Info reported them (the app's state on disk after the kill), and the heights of the app, the block
// store and CometBFT's state before any replay.
type crashHandshake struct {
	infoHeight                          int64
	infoHash                            []byte
	appHeight, storeHeight, stateHeight int64
}

// handshake parses the current run's handshake lines; ok is false when they are not in the log.
func (n *crashNode) handshake() (hs crashHandshake, ok bool) {
	field := func(line, key string) string {
		_, v, _ := strings.Cut(line, " "+key+"=")
		v, _, _ = strings.Cut(v, " ")
		return v
	}
	num := func(line, key string) int64 {
		v, err := strconv.ParseInt(field(line, key), 10, 64)
		if err != nil {
			ok = false
		}
		return v
	}
	var info, replay bool
	for _, line := range strings.Split(n.recoveryLog(), "\n") {
		switch {
		case strings.Contains(line, "ABCI Handshake App Info") && !info:
			info, ok = true, true
			hs.infoHeight = num(line, "height")
			var err error
			if hs.infoHash, err = hex.DecodeString(field(line, "hash")); err != nil {
				return hs, false
			}
		case strings.Contains(line, "ABCI Replay Blocks") && !replay:
			replay = true
			hs.appHeight, hs.storeHeight, hs.stateHeight = num(line, "appHeight"), num(line, "storeHeight"), num(line, "stateHeight")
		}
	}
	return hs, ok && info && replay
}

// stop is the cleanup: it kills whatever still runs.
func (n *crashNode) stop() { n.kill() }

func (n *crashNode) exited() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return true
	}
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// waitRPC waits until the node's RPC answers.
func (n *crashNode) waitRPC(ctx context.Context, c *client.Client) {
	n.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := c.RPC().Status(sctx)
		cancel()
		if err == nil {
			return
		}
		if n.exited() {
			n.t.Fatalf("spare node exited before its RPC answered (last error: %v)", err)
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("spare node RPC not answering after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// crashLoad is what the load saw: every acknowledged transaction and which were seen included.
type crashLoad struct {
	mu        sync.Mutex
	acked     []crashTx
	ackedHash map[[32]byte]bool
	included  map[[32]byte]int64 // hash -> height seen by WaitTx
	errs      map[string]int     // submit errors by kind
	waitFails int
}

type crashTx struct {
	sender int
	hash   [32]byte
	raw    []byte
}

func (l *crashLoad) addAcked(sender int, raw []byte) [32]byte {
	h := sha256.Sum256(raw)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ackedHash == nil {
		l.ackedHash = map[[32]byte]bool{}
	}
	if !l.ackedHash[h] { // the same bytes can be acknowledged twice (resubmitted after a lost answer)
		l.ackedHash[h] = true
		l.acked = append(l.acked, crashTx{sender: sender, hash: h, raw: raw})
	}
	return h
}

func (l *crashLoad) addIncluded(h [32]byte, height int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.included[h] = height
}

func (l *crashLoad) addErr(err error) {
	kind := err.Error()
	switch {
	case strings.Contains(kind, "connection refused"), strings.Contains(kind, "connection reset"), strings.Contains(kind, "EOF"):
		kind = "node down"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		kind = "context ended"
	default:
		if len(kind) > 120 {
			kind = kind[:120]
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.errs == nil {
		l.errs = map[string]int{}
	}
	l.errs[kind]++
}

func (l *crashLoad) addWaitFail() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waitFails++
}

func (l *crashLoad) snapshotIncluded() map[[32]byte]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[[32]byte]int64, len(l.included))
	for k, v := range l.included {
		m[k] = v
	}
	return m
}

func (l *crashLoad) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// crashSender is one key's load: Submit in a loop, WaitTx on the acknowledged transactions in the background.
type crashSender struct {
	idx    int
	name   string
	sender *client.Sender
	waiter *client.Client
	to     tx.Address
}

func (s *crashSender) run(ctx context.Context, load *crashLoad, pause, waitTimeout time.Duration) {
	// Transactions of one sender are included in nonce order, so two waiters working through them in order
	// keep up with few RPC connections.
	pending := make(chan []byte, 4096)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for raw := range pending {
				wctx, cancel := context.WithTimeout(ctx, waitTimeout)
				res, err := s.waiter.WaitTx(wctx, raw, 0)
				cancel()
				switch {
				case res != nil && res.Height > 0:
					// Included; a non-zero code is recorded too and reported by the checks.
					load.addIncluded(sha256.Sum256(raw), res.Height)
				case err != nil && ctx.Err() == nil:
					load.addWaitFail()
				}
			}
		}()
	}
	defer func() { close(pending); wg.Wait() }()
	for ctx.Err() == nil {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		raw, err := s.sender.Submit(sctx, &tx.Send{To: s.to, Amount: 1 + rand.Uint64N(1000)})
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				load.addErr(err)
				crashSleep(ctx, 20*time.Millisecond)
			}
			continue
		}
		load.addAcked(s.idx, raw)
		select {
		case pending <- raw:
		default: // too far behind: this one is not watched
		}
		crashSleep(ctx, pause/2+rand.N(pause))
	}
}

func crashSleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// crashHeaders records, per height, the app hash and block hash of the header.
type crashHeaders struct {
	mu       sync.Mutex
	byHeight map[int64]crashHeader
	top      int64
	errs     []string
}

type crashHeader struct {
	appHash   []byte
	blockHash []byte
}

func (r *crashHeaders) run(ctx context.Context, c *client.Client) {
	for ctx.Err() == nil {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := c.RPC().Status(sctx)
		cancel()
		if err == nil {
			for h := r.max() + 1; h <= st.SyncInfo.LatestBlockHeight && ctx.Err() == nil; h++ {
				sctx, cancel := context.WithTimeout(ctx, time.Second)
				res, err := c.RPC().Header(sctx, &h)
				cancel()
				if err != nil {
					break
				}
				r.put(h, crashHeader{appHash: res.Header.AppHash, blockHash: res.Header.Hash()})
			}
		}
		crashSleep(ctx, 30*time.Millisecond)
	}
}

func (r *crashHeaders) put(h int64, hd crashHeader) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.byHeight[h]; ok {
		if !bytes.Equal(old.appHash, hd.appHash) || !bytes.Equal(old.blockHash, hd.blockHash) {
			r.errs = append(r.errs, fmt.Sprintf("height %d: header changed: app hash %X -> %X, block hash %X -> %X",
				h, old.appHash, hd.appHash, old.blockHash, hd.blockHash))
		}
		return
	}
	r.byHeight[h] = hd
	r.top = max(r.top, h)
}

func (r *crashHeaders) get(h int64) (crashHeader, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	hd, ok := r.byHeight[h]
	return hd, ok
}

func (r *crashHeaders) max() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.top
}

func (r *crashHeaders) snapshot() map[int64]crashHeader {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[int64]crashHeader, len(r.byHeight))
	for k, v := range r.byHeight {
		m[k] = v
	}
	return m
}

func (r *crashHeaders) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.errs)
}

// crashWaitHeight waits until the chain's latest height is at least h and returns it.
func crashWaitHeight(t *testing.T, ctx context.Context, c *client.Client, h int64, timeout time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last int64
	for {
		st, err := c.RPC().Status(ctx)
		if err == nil {
			last = st.SyncInfo.LatestBlockHeight
			if last >= h {
				return last
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("height still %d after %s, want >= %d (last error: %v)", last, timeout, h, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// crashParallel runs f(i) for i in [0, n) on a few goroutines.
func crashParallel(n int, f func(i int)) {
	const workers = 8
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// crashCheckIncluded checks that every transaction seen included is found by hash at the same height.
func crashCheckIncluded(t *testing.T, ctx context.Context, c *client.Client, seen map[[32]byte]int64) {
	t.Helper()
	type item struct {
		hash   [32]byte
		height int64
	}
	items := make([]item, 0, len(seen))
	for h, height := range seen {
		items = append(items, item{h, height})
	}
	var mu sync.Mutex
	var bad []string
	crashParallel(len(items), func(i int) {
		it := items[i]
		res, err := c.RPC().Tx(ctx, it.hash[:], false)
		var msg string
		switch {
		case err != nil:
			msg = fmt.Sprintf("tx %X seen at height %d: now %v", it.hash, it.height, err)
		case res.Height != it.height:
			msg = fmt.Sprintf("tx %X seen at height %d: now at height %d", it.hash, it.height, res.Height)
		case res.TxResult.Code != 0:
			msg = fmt.Sprintf("tx %X at height %d: code %d: %s", it.hash, it.height, res.TxResult.Code, res.TxResult.Log)
		}
		if msg != "" {
			mu.Lock()
			bad = append(bad, msg)
			mu.Unlock()
		}
	})
	if len(bad) > 0 {
		slices.Sort(bad)
		t.Fatalf("%d of %d transactions seen included before the kill are wrong after restart:\n%s",
			len(bad), len(items), strings.Join(bad[:min(len(bad), 20)], "\n"))
	}
}

// crashCheckHeaders checks that the headers recorded before the kill are unchanged.
func crashCheckHeaders(t *testing.T, ctx context.Context, c *client.Client, headers map[int64]crashHeader) {
	t.Helper()
	heights := make([]int64, 0, len(headers))
	for h := range headers {
		heights = append(heights, h)
	}
	slices.Sort(heights)
	var mu sync.Mutex
	var bad []string
	crashParallel(len(heights), func(i int) {
		h := heights[i]
		res, err := c.RPC().Header(ctx, &h)
		var msg string
		switch {
		case err != nil:
			msg = fmt.Sprintf("height %d: %v", h, err)
		case !bytes.Equal(res.Header.AppHash, headers[h].appHash):
			msg = fmt.Sprintf("height %d: app hash %X before the kill, %X after", h, headers[h].appHash, res.Header.AppHash)
		case !bytes.Equal(res.Header.Hash(), headers[h].blockHash):
			msg = fmt.Sprintf("height %d: block hash %X before the kill, %X after", h, headers[h].blockHash, res.Header.Hash())
		}
		if msg != "" {
			mu.Lock()
			bad = append(bad, msg)
			mu.Unlock()
		}
	})
	if len(bad) > 0 {
		t.Fatalf("%d of %d headers recorded before the kill differ after restart:\n%s", len(bad), len(heights),
			strings.Join(bad[:min(len(bad), 20)], "\n"))
	}
}

// crashCheckABCIInfo compares the app's last committed app hash with the header of the next block, which must
// carry it, and with the recorded header. It returns the app's height.
func crashCheckABCIInfo(t *testing.T, ctx context.Context, c *client.Client, rec *crashHeaders) int64 {
	t.Helper()
	info, err := c.RPC().ABCIInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := info.Response.LastBlockHeight
	appHash := info.Response.LastBlockAppHash
	if h <= 0 || len(appHash) == 0 {
		t.Fatalf("abci_info: height %d app hash %X", h, appHash)
	}
	crashWaitHeight(t, ctx, c, h+1, 10*time.Second)
	next := h + 1
	res, err := c.RPC().Header(ctx, &next)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.Header.AppHash, appHash) {
		t.Errorf("abci_info says app hash %X after height %d; header %d carries %X", appHash, h, next, res.Header.AppHash)
	}
	if hd, ok := rec.get(next); ok && !bytes.Equal(hd.appHash, appHash) {
		t.Errorf("abci_info app hash %X after height %d; header %d was recorded with %X", appHash, h, next, hd.appHash)
	}
	// The ledger's own status query agrees it is at least there.
	if st, err := c.Status(ctx); err != nil {
		t.Errorf("ledger status: %v", err)
	} else if st.Height < h {
		t.Errorf("ledger status height %d below abci_info height %d", st.Height, h)
	}
	return h
}

type crashSupply struct {
	Genesis   uint64 `json:"genesis"`
	Minted    uint64 `json:"minted"`
	Burned    uint64 `json:"burned"`
	Balances  uint64 `json:"balances"`
	Escrow    uint64 `json:"escrow"`
	Staked    uint64 `json:"staked"`
	Unbonding uint64 `json:"unbonding"`
	Pool      uint64 `json:"pool"`
	Height    int64  `json:"height"`
	Holds     *bool  `json:"holds"`
}

// crashCheckSupply runs `spare query supply -o json` on the home and checks the invariant: all of the genesis
// supply is in balances (fees go to the validator's account).
func crashCheckSupply(t *testing.T, bin, home string, genesis uint64) {
	t.Helper()
	out := crashRun(t, bin, "query", "supply", "-o", "json", "--home", home)
	var s crashSupply
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("spare query supply -o json: %v\n%s", err, out)
	}
	if s.Holds == nil || !*s.Holds {
		t.Errorf("supply invariant does not hold at height %d:\n%s", s.Height, out)
	}
	if s.Genesis != genesis || s.Balances != genesis || s.Minted != 0 || s.Burned != 0 || s.Escrow != 0 ||
		s.Staked != 0 || s.Unbonding != 0 || s.Pool != 0 {
		t.Errorf("supply at height %d: want genesis = balances = %d and nothing else:\n%s", s.Height, genesis, out)
	}
}

// crashWaitMempoolEmpty waits until no transaction is pending and one more block is committed.
func crashWaitMempoolEmpty(t *testing.T, ctx context.Context, c *client.Client) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := c.RPC().NumUnconfirmedTxs(ctx)
		if err == nil && res.Total == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mempool not empty after 15s: %v %v", res, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := c.RPC().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	crashWaitHeight(t, ctx, c, st.SyncInfo.LatestBlockHeight+2, 10*time.Second)
}

type crashBlockTx struct {
	hash   [32]byte
	height int64
	code   uint32
	signer tx.Address
	nonce  uint64
	fee    uint64
	sends  []*tx.Send
}

// crashFinalAccounting reads every block back and checks nonces and balances against the included transactions.
func crashFinalAccounting(t *testing.T, ctx context.Context, c *client.Client, final int64, load *crashLoad,
	senders []*crashSender, validator tx.Address, genesisBalance map[tx.Address]uint64, genesisSupply uint64) {
	t.Helper()
	// Every block's transactions and results.
	perHeight := make([][]crashBlockTx, final+1)
	headerAppHash := make([][]byte, final+1) // header h carries the app hash after h-1
	resultAppHash := make([][]byte, final+1) // FinalizeBlock's app hash after h
	var mu sync.Mutex
	var bad []string
	fail := func(format string, args ...any) {
		mu.Lock()
		bad = append(bad, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	crashParallel(int(final), func(i int) {
		h := int64(i + 1)
		b, err := c.RPC().Block(ctx, &h)
		if err != nil {
			fail("block %d: %v", h, err)
			return
		}
		r, err := c.RPC().BlockResults(ctx, &h)
		if err != nil {
			fail("block results %d: %v", h, err)
			return
		}
		mu.Lock()
		headerAppHash[h], resultAppHash[h] = b.Block.AppHash, r.AppHash
		mu.Unlock()
		if len(r.TxsResults) != len(b.Block.Txs) {
			fail("height %d: %d txs, %d results", h, len(b.Block.Txs), len(r.TxsResults))
			return
		}
		var txs []crashBlockTx
		for j, raw := range b.Block.Txs {
			d, err := tx.Decode(raw)
			if err != nil {
				fail("height %d tx %d: %v", h, j, err)
				continue
			}
			bt := crashBlockTx{hash: sha256.Sum256(raw), height: h, code: r.TxsResults[j].Code, signer: d.Signer(),
				nonce: d.Body.Nonce, fee: d.Body.Fee}
			for _, m := range d.Body.Msgs {
				if s, ok := m.(*tx.Send); ok {
					bt.sends = append(bt.sends, s)
				} else {
					fail("height %d tx %d: unexpected message %s", h, j, m.Type())
				}
			}
			txs = append(txs, bt)
		}
		perHeight[h] = txs
	})
	for h := int64(1); h < final; h++ {
		if !bytes.Equal(resultAppHash[h], headerAppHash[h+1]) {
			fail("height %d: block results say app hash %X, header %d carries %X", h, resultAppHash[h], h+1, headerAppHash[h+1])
		}
	}
	if len(bad) > 0 {
		t.Fatalf("reading blocks back:\n%s", strings.Join(bad[:min(len(bad), 20)], "\n"))
	}
	inBlocks := map[[32]byte]crashBlockTx{}
	bySigner := map[tx.Address][]crashBlockTx{}
	expected := map[tx.Address]int64{}
	for a, b := range genesisBalance {
		expected[a] = int64(b)
	}
	var total int
	for h := int64(1); h <= final; h++ {
		for _, bt := range perHeight[h] {
			total++
			if prev, dup := inBlocks[bt.hash]; dup {
				t.Errorf("tx %X is in block %d and again in block %d", bt.hash, prev.height, bt.height)
				continue
			}
			inBlocks[bt.hash] = bt
			if bt.code != 0 {
				t.Errorf("tx %X (signer %s nonce %d) in block %d failed with code %d", bt.hash, bt.signer, bt.nonce, bt.height, bt.code)
				continue
			}
			bySigner[bt.signer] = append(bySigner[bt.signer], bt)
			expected[bt.signer] -= int64(bt.fee)
			expected[validator] += int64(bt.fee)
			for _, s := range bt.sends {
				expected[bt.signer] -= int64(s.Amount)
				expected[s.To] += int64(s.Amount)
			}
		}
	}

	// Every acknowledged transaction: found by hash exactly when it is in a block, at that height.
	load.mu.Lock()
	acked := slices.Clone(load.acked)
	errs := load.errs
	waitFails := load.waitFails
	seenIncluded := len(load.included)
	load.mu.Unlock()
	found := make([]int64, len(acked)) // height, 0 when not found
	crashParallel(len(acked), func(i int) {
		res, err := c.RPC().Tx(ctx, acked[i].hash[:], false)
		if err == nil {
			found[i] = res.Height
		} else if !strings.Contains(err.Error(), "not found") {
			fail("tx %X: %v", acked[i].hash, err)
		}
	})
	ackedIncluded := make([]int, len(senders))
	ackedDropped := make([]int, len(senders))
	ackedSet := map[[32]byte]bool{}
	for i, a := range acked {
		ackedSet[a.hash] = true
		bt, inBlock := inBlocks[a.hash]
		switch {
		case found[i] > 0 && !inBlock:
			fail("acked tx %X found by hash at height %d but in no block", a.hash, found[i])
		// CometBFT's indexer writes a block's txs after the block's state is saved; a kill in between used to
		// leave committed txs unfindable by hash forever. node.Start now re-indexes such blocks (node/reindex.go),
		// so every included tx must be found.
		case found[i] == 0 && inBlock:
			fail("acked tx %X is in block %d but not found by hash", a.hash, bt.height)
		case found[i] > 0 && found[i] != bt.height:
			fail("acked tx %X found by hash at height %d but is in block %d", a.hash, found[i], bt.height)
		}
		switch {
		case found[i] > 0:
			ackedIncluded[a.sender]++
		case !inBlock:
			ackedDropped[a.sender]++ // lost with the mempool at a kill
		}
	}
	// Transactions in blocks whose acknowledgement was lost in a kill.
	unacked := map[tx.Address]int{}
	for h, bt := range inBlocks {
		if !ackedSet[h] {
			unacked[bt.signer]++
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		t.Fatalf("%d problems looking acknowledged transactions up by hash:\n%s", len(bad), strings.Join(bad[:min(len(bad), 20)], "\n"))
	}

	// Per sender: account nonce = number of distinct included transactions, whose nonces are exactly 0..n-1.
	var droppedTotal, includedTotal int
	for _, s := range senders {
		addr := s.sender.Address()
		acc, err := c.Account(ctx, addr)
		if err != nil {
			t.Fatalf("account %s: %v", s.name, err)
		}
		txs := bySigner[addr]
		nonces := make([]uint64, len(txs))
		for i, bt := range txs {
			nonces[i] = bt.nonce
		}
		slices.Sort(nonces)
		for i, n := range nonces {
			if n != uint64(i) {
				t.Errorf("%s: included nonces are not 0..%d: position %d has nonce %d", s.name, len(nonces)-1, i, n)
				break
			}
		}
		if acc.Nonce != uint64(len(txs)) {
			t.Errorf("%s: account nonce %d, but %d of its txs are in blocks", s.name, acc.Nonce, len(txs))
		}
		if n := ackedIncluded[s.idx] + unacked[addr]; n != len(txs) {
			t.Errorf("%s: %d acked txs found by hash + %d unacked in blocks = %d, but %d in blocks",
				s.name, ackedIncluded[s.idx], unacked[addr], n, len(txs))
		}
		t.Logf("%s: nonce %d = %d included txs (%d acked and found by hash, %d whose ack was lost); %d acked txs dropped by kills",
			s.name, acc.Nonce, len(txs), ackedIncluded[s.idx], unacked[addr], ackedDropped[s.idx])
		droppedTotal += ackedDropped[s.idx]
		includedTotal += len(txs)
	}
	for a, n := range unacked {
		if !slices.ContainsFunc(senders, func(s *crashSender) bool { return s.sender.Address() == a }) {
			t.Errorf("%d txs in blocks from unexpected signer %s", n, a)
		}
	}

	// Every balance is what the included transactions make it, and they sum to the genesis supply.
	var sum uint64
	for a, want := range expected {
		acc, err := c.Account(ctx, a)
		if err != nil && !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("account %s: %v", a, err)
		}
		if int64(acc.Balance) != want {
			t.Errorf("account %s: balance %d, the included transactions make it %d", a, acc.Balance, want)
		}
		sum += acc.Balance
	}
	if sum != genesisSupply {
		t.Errorf("balances sum to %d, genesis supply is %d", sum, genesisSupply)
	}
	t.Logf("final height %d: %d txs in blocks, %d acked, %d acked but dropped by kills (mempool lost), %d seen included by WaitTx, %d waits timed out; submit errors: %v",
		final, total, len(acked), droppedTotal, seenIncluded, waitFails, errs)
	if includedTotal != total {
		t.Errorf("%d txs in blocks, %d counted per sender", total, includedTotal)
	}
}
