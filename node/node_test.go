package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	"github.com/cometbft/cometbft/types"
)

// kvApp is a tiny thread-safe key/value ABCI app: txs are "key=value".
type kvApp struct {
	abci.BaseApplication

	mu      sync.Mutex
	height  int64
	appHash []byte
	state   map[string]string
	pending map[string]string
}

func newKVApp() *kvApp {
	return &kvApp{state: map[string]string{}}
}

func (a *kvApp) Info(context.Context, *abci.RequestInfo) (*abci.ResponseInfo, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return &abci.ResponseInfo{LastBlockHeight: a.height, LastBlockAppHash: a.appHash}, nil
}

func (a *kvApp) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	if _, _, ok := bytes.Cut(req.Tx, []byte("=")); !ok {
		return &abci.ResponseCheckTx{Code: 1, Log: "want key=value"}, nil
	}
	return &abci.ResponseCheckTx{Code: abci.CodeTypeOK}, nil
}

func (a *kvApp) FinalizeBlock(_ context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := sha256.New()
	h.Write(a.appHash)
	_ = binary.Write(h, binary.BigEndian, req.Height)
	a.pending = map[string]string{}
	results := make([]*abci.ExecTxResult, len(req.Txs))
	for i, tx := range req.Txs {
		k, v, ok := bytes.Cut(tx, []byte("="))
		if !ok {
			results[i] = &abci.ExecTxResult{Code: 1}
			continue
		}
		a.pending[string(k)] = string(v)
		h.Write(tx)
		results[i] = &abci.ExecTxResult{
			Code: abci.CodeTypeOK,
			Events: []abci.Event{{Type: "kv", Attributes: []abci.EventAttribute{
				{Key: "key", Value: string(k), Index: true},
			}}},
		}
	}
	a.height = req.Height
	a.appHash = h.Sum(nil)
	return &abci.ResponseFinalizeBlock{TxResults: results, AppHash: a.appHash}, nil
}

func (a *kvApp) Commit(context.Context, *abci.RequestCommit) (*abci.ResponseCommit, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, v := range a.pending {
		a.state[k] = v
	}
	a.pending = nil
	return &abci.ResponseCommit{}, nil
}

func (a *kvApp) get(k string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.state[k]
	return v, ok
}

// testLogger shows CometBFT's warnings and errors with -v (stopping nodes
// logs a burst of benign errors), and discards them otherwise.
func testLogger() *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func startNode(t *testing.T, home string, app abci.Application) *Node {
	t.Helper()
	n, err := Start(home, app, testLogger())
	if err != nil {
		t.Fatalf("Start(%s): %v", home, err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return n
}

func rpcClient(t *testing.T, n *Node) *rpchttp.HTTP {
	t.Helper()
	c, err := rpchttp.New(n.RPCAddress(), "/websocket")
	if err != nil {
		t.Fatalf("rpc client for %s: %v", n.RPCAddress(), err)
	}
	return c
}

// waitFor polls cond every 50ms until it returns true or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, lastErr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func height(c *rpchttp.HTTP) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return 0, err
	}
	return st.SyncInfo.LatestBlockHeight, nil
}

func waitHeight(t *testing.T, c *rpchttp.HTTP, h int64, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("height >= %d", h), func() (bool, error) {
		got, err := height(c)
		return got >= h, err
	})
}

func singleOptions(t *testing.T) Options {
	t.Helper()
	base, err := FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		ChainID:   "spare-test",
		RPCListen: fmt.Sprintf("tcp://127.0.0.1:%d", base),
		P2PListen: fmt.Sprintf("tcp://127.0.0.1:%d", base+1),
		AppState:  json.RawMessage(`{"accounts":[]}`),
	}
}

func TestSingleNodeCommitsTx(t *testing.T) {
	home := t.TempDir()
	opts := singleOptions(t)
	if err := Init(home, opts); err != nil {
		t.Fatalf("Init: %v", err)
	}
	gen, err := types.GenesisDocFromFile(filepath.Join(home, "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	if gen.ChainID != "spare-test" || len(gen.Validators) != 1 || gen.Validators[0].Power != ValidatorPower {
		t.Fatalf("genesis: chain %q, validators %+v", gen.ChainID, gen.Validators)
	}
	if gen.ConsensusParams.Block.MaxBytes != 4<<20 || gen.ConsensusParams.Block.MaxGas != BlockMaxGas {
		t.Fatalf("block params %+v", gen.ConsensusParams.Block)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, gen.AppState); err != nil || compact.String() != `{"accounts":[]}` {
		t.Fatalf("app_state %s", gen.AppState)
	}

	app := newKVApp()
	n := startNode(t, home, app)
	if want := strings.Replace(opts.RPCListen, "tcp://", "http://", 1); n.RPCAddress() != want {
		t.Fatalf("RPCAddress %q, want %q", n.RPCAddress(), want)
	}
	if n.Home() != home || n.Comet() == nil {
		t.Fatalf("Home %q Comet %v", n.Home(), n.Comet())
	}
	c := rpcClient(t, n)
	start := time.Now()
	waitHeight(t, c, 3, 20*time.Second)
	t.Logf("height 3 after %s", time.Since(start))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx := types.Tx("hello=world")
	res, err := c.BroadcastTxSync(ctx, tx)
	if err != nil || res.Code != abci.CodeTypeOK {
		t.Fatalf("broadcast: %v %+v", err, res)
	}
	waitFor(t, 10*time.Second, "tx committed", func() (bool, error) {
		r, err := c.Tx(ctx, tx.Hash(), false)
		if err != nil {
			return false, err
		}
		return r.TxResult.Code == abci.CodeTypeOK && r.Height > 0, nil
	})
	if v, ok := app.get("hello"); !ok || v != "world" {
		t.Fatalf("app state hello=%q,%v", v, ok)
	}
	found, err := c.TxSearch(ctx, "kv.key='hello'", false, nil, nil, "")
	if err != nil || found.TotalCount != 1 {
		t.Fatalf("tx search: %v %+v", err, found)
	}

	// Block interval follows BlockTime (100ms default): well under a second.
	h0, err := height(c)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	waitHeight(t, c, h0+5, 10*time.Second)
	if per := time.Since(t0) / 5; per > 500*time.Millisecond || per < 50*time.Millisecond {
		t.Errorf("block interval %s, want about 100ms", per)
	}

	if err := n.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := n.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestLoadConfigHonoursEdits(t *testing.T) {
	home := t.TempDir()
	if err := Init(home, Options{ChainID: "edit-test", BlockTime: 250 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	conf, err := LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	if conf.Consensus.TimeoutCommit != 250*time.Millisecond || conf.Consensus.SkipTimeoutCommit {
		t.Fatalf("timeout_commit %s skip %v", conf.Consensus.TimeoutCommit, conf.Consensus.SkipTimeoutCommit)
	}
	if conf.RPC.ListenAddress != DefaultRPCListen || conf.Moniker != DefaultMoniker || conf.TxIndex.Indexer != "kv" ||
		conf.P2P.PexReactor || !conf.Mempool.Recheck || conf.Storage.DiscardABCIResponses || conf.Instrumentation.Prometheus {
		t.Fatalf("unexpected config: rpc %q moniker %q indexer %q pex %v",
			conf.RPC.ListenAddress, conf.Moniker, conf.TxIndex.Indexer, conf.P2P.PexReactor)
	}
	if conf.RootDir != home || conf.GenesisFile() != filepath.Join(home, "config", "genesis.json") {
		t.Fatalf("root %q genesis %q", conf.RootDir, conf.GenesisFile())
	}

	path := filepath.Join(home, "config", "config.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for old, repl := range map[string]string{
		`timeout_commit = "250ms"`:        `timeout_commit = "2s"`,
		`moniker = "spare-node"`:          `moniker = "edited"`,
		`laddr = "tcp://127.0.0.1:26657"`: `laddr = "tcp://127.0.0.1:27000"`,
		`persistent_peers = ""`:           `persistent_peers = "abc@127.0.0.1:1"`,
	} {
		if !strings.Contains(s, old) {
			t.Fatalf("config.toml lacks %q", old)
		}
		s = strings.Replace(s, old, repl, 1)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	conf, err = LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	if conf.Consensus.TimeoutCommit != 2*time.Second || conf.Moniker != "edited" ||
		conf.RPC.ListenAddress != "tcp://127.0.0.1:27000" || conf.P2P.PersistentPeers != "abc@127.0.0.1:1" {
		t.Fatalf("edits not honoured: timeout_commit %s moniker %q rpc %q peers %q",
			conf.Consensus.TimeoutCommit, conf.Moniker, conf.RPC.ListenAddress, conf.P2P.PersistentPeers)
	}

	// An invalid edit is reported.
	bad := strings.Replace(s, `timeout_commit = "2s"`, `timeout_commit = "-1s"`, 1)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(home); err == nil || !strings.Contains(err.Error(), "timeout_commit") {
		t.Fatalf("negative timeout_commit: err %v", err)
	}
	if _, err := LoadConfig(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("missing config: err %v", err)
	}
}

func TestInitRefusesExistingHome(t *testing.T) {
	home := t.TempDir()
	if err := Init(home, Options{ChainID: "c1"}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(home, "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	err = Init(home, Options{ChainID: "c2"})
	if err == nil || !strings.Contains(err.Error(), "already") {
		t.Fatalf("second Init: err %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(home, "config", "genesis.json"))
	if !bytes.Equal(before, after) {
		t.Fatal("second Init changed genesis.json")
	}

	dir := t.TempDir()
	if _, err := InitTestnet(dir, TestnetOptions{Validators: 2, ChainID: "x"}); err != nil {
		t.Fatalf("InitTestnet: %v", err)
	}
	if _, err := InitTestnet(dir, TestnetOptions{Validators: 2, ChainID: "x"}); err == nil ||
		!strings.Contains(err.Error(), "already") {
		t.Fatalf("second InitTestnet: err %v", err)
	}
}

func TestOptionsValidation(t *testing.T) {
	cases := []struct {
		opts Options
		want string
	}{
		{Options{}, "ChainID is empty"},
		{Options{ChainID: strings.Repeat("x", 51)}, "ChainID"},
		{Options{ChainID: "c", BlockTime: -time.Second}, "BlockTime"},
		{Options{ChainID: "c", RPCListen: "127.0.0.1:1"}, "RPCListen"},
		{Options{ChainID: "c", P2PListen: "tcp://nope"}, "P2PListen"},
		{Options{ChainID: "c", P2PListen: "unix:///tmp/x"}, "P2PListen"},
		{Options{ChainID: "c", Moniker: `a"b`}, "Moniker"},
		{Options{ChainID: "c", AppState: json.RawMessage(`{`)}, "AppState"},
	}
	for _, tc := range cases {
		err := Init(t.TempDir(), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Init(%+v): err %v, want mention of %q", tc.opts, err, tc.want)
		}
	}
	if _, err := InitTestnet(t.TempDir(), TestnetOptions{ChainID: "c"}); err == nil {
		t.Error("InitTestnet with 0 validators succeeded")
	}
	if _, err := Start(t.TempDir(), newKVApp(), nil); err == nil {
		t.Error("Start on an empty home succeeded")
	}
}

func TestTestnetFourValidators(t *testing.T) {
	const n = 4
	base, err := FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	homes, err := InitTestnet(t.TempDir(), TestnetOptions{
		Validators: n,
		ChainID:    "spare-testnet",
		BasePort:   base,
		AppState:   json.RawMessage(`{}`),
	})
	if err != nil {
		t.Fatalf("InitTestnet: %v", err)
	}
	if len(homes) != n {
		t.Fatalf("%d homes", len(homes))
	}
	var genesis []byte
	for i, home := range homes {
		conf, err := LoadConfig(home)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(splitList(conf.P2P.PersistentPeers)); got != n-1 {
			t.Fatalf("node%d has %d persistent peers", i, got)
		}
		if conf.P2P.PexReactor || conf.P2P.AddrBookStrict || !conf.P2P.AllowDuplicateIP {
			t.Fatalf("node%d p2p config %+v", i, conf.P2P)
		}
		if want := fmt.Sprintf("tcp://127.0.0.1:%d", base+2*i); conf.RPC.ListenAddress != want {
			t.Fatalf("node%d rpc %q want %q", i, conf.RPC.ListenAddress, want)
		}
		g, err := os.ReadFile(conf.GenesisFile())
		if err != nil {
			t.Fatal(err)
		}
		if genesis == nil {
			genesis = g
		} else if !bytes.Equal(genesis, g) {
			t.Fatalf("node%d genesis differs", i)
		}
	}

	nodes := make([]*Node, n)
	clients := make([]*rpchttp.HTTP, n)
	for i, home := range homes {
		nodes[i] = startNode(t, home, newKVApp())
		clients[i] = rpcClient(t, nodes[i])
	}
	start := time.Now()
	for _, c := range clients {
		waitHeight(t, c, 3, 30*time.Second)
	}
	t.Logf("all at height 3 after %s", time.Since(start))

	// Same app hash on every node at height 3 (carried in block 4's header,
	// so wait for 4 first).
	for _, c := range clients {
		waitHeight(t, c, 4, 15*time.Second)
	}
	var hash []byte
	h := int64(4)
	for i, c := range clients {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b, err := c.Block(ctx, &h)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Block.AppHash) == 0 {
			t.Fatalf("node%d: empty app hash", i)
		}
		if hash == nil {
			hash = b.Block.AppHash
		} else if !bytes.Equal(hash, b.Block.AppHash) {
			t.Fatalf("node%d app hash %X, node0 %X", i, b.Block.AppHash, hash)
		}
	}

	// Stop one validator: the other three (30 of 40 power) keep committing.
	if err := nodes[n-1].Stop(); err != nil {
		t.Fatalf("stopping node%d: %v", n-1, err)
	}
	h0, err := height(clients[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clients[:n-1] {
		// Every 4th height the stopped node is the proposer, which costs a
		// timeout_propose (3s) before the next round.
		waitHeight(t, c, h0+5, 25*time.Second)
	}
}

func TestStartFailureReleasesHome(t *testing.T) {
	home := t.TempDir()
	// Port 0 is replaced by a free port at Start.
	if err := Init(home, Options{ChainID: "retry", RPCListen: "tcp://127.0.0.1:0", P2PListen: "tcp://127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	// Make the RPC listener fail: point it at a port that is in use.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	path := filepath.Join(home, "config", "config.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(b), `laddr = "tcp://127.0.0.1:0"`, `laddr = "tcp://`+busy.Addr().String()+`"`, 1)
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(home, newKVApp(), nil); err == nil {
		t.Fatal("Start with a busy RPC port succeeded")
	}

	// The failed start must have released the databases: start again.
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, home, newKVApp())
	if strings.HasSuffix(n.RPCAddress(), ":0") || !strings.HasPrefix(n.RPCAddress(), "http://127.0.0.1:") {
		t.Fatalf("RPCAddress %q", n.RPCAddress())
	}
	waitHeight(t, rpcClient(t, n), 2, 20*time.Second)
}

func TestCometLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	l := NewCometLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: LevelCometDebug})))
	l = l.With("module", "consensus")
	l.Debug("dbg", "hash", []byte{0xab, 0xcd})
	l.Info("inf", "err", fmt.Errorf("boom"), "odd")
	l.Warn("wrn")
	l.Error("bad", "height", int64(7))
	out := buf.String()
	for _, want := range []string{
		`level=DEBUG-4 msg=dbg module=consensus hash=ABCD`,
		`level=DEBUG msg=inf module=consensus err=boom odd=(MISSING)`,
		`level=WARN msg=wrn module=consensus`,
		`level=ERROR msg=bad module=consensus height=7`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log output lacks %q:\n%s", want, out)
		}
	}

	// With the default level (info) CometBFT's info is not shown.
	buf.Reset()
	stopping := new(atomic.Bool)
	l, err := newCometLogger(slog.New(slog.NewTextHandler(&buf, nil)), "info", stopping)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("chatty")
	l.Error("shown")
	if strings.Contains(buf.String(), "chatty") || !strings.Contains(buf.String(), "shown") {
		t.Errorf("unexpected output:\n%s", buf.String())
	}
	// While stopping, CometBFT's errors (closed listeners and peers) are not shown as errors.
	buf.Reset()
	stopping.Store(true)
	l.Error("accept tcp: use of closed network connection")
	if strings.Contains(buf.String(), "closed network") {
		t.Errorf("shutdown error shown at error level:\n%s", buf.String())
	}
}
