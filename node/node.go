// Package node runs a CometBFT validator in-process for the Spare ledger.
//
// It knows nothing about the ledger itself: the ABCI application is passed in
// by the caller. The package covers the three steps of a node's life:
//
//   - Init writes a single-validator home directory (config/config.toml,
//     validator and node keys, genesis.json); InitTestnet writes N such homes
//     wired to each other for a local multi-validator network.
//   - LoadConfig reads home/config/config.toml back, so hand edits to the file
//     (block time, ports, peers, ...) are honoured.
//   - Start runs CometBFT (v0.40) in this process with the given application
//     and returns a *Node to stop it.
//
// Block interval: in CometBFT v0.40 the time between blocks is still set by
// [consensus] timeout_commit (skip_timeout_commit = false): after a block is
// committed the node waits timeout_commit before starting the next height.
// Options.BlockTime is written there.
package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	dbm "github.com/cometbft/cometbft-db"
	"github.com/sparenet/spare/ledger/api"
	"github.com/spf13/viper"

	abci "github.com/cometbft/cometbft/abci/types"
	cfg "github.com/cometbft/cometbft/config"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	cmtnode "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	"github.com/cometbft/cometbft/types"
)

// Defaults applied to zero-valued Options / TestnetOptions fields.
const (
	DefaultMoniker   = "spare-node"
	DefaultBlockTime = 100 * time.Millisecond
	DefaultRPCListen = "tcp://127.0.0.1:26657"
	DefaultP2PListen = "tcp://127.0.0.1:26656"
	DefaultBasePort  = 26600

	// ValidatorPower is the voting power given to every genesis validator.
	ValidatorPower = 10
	// BlockMaxBytes is the genesis block size limit (4 MiB; CometBFT's own
	// default is ≈53 MiB, sized for post-quantum signatures).
	BlockMaxBytes = 4 << 20
	// BlockMaxGas is the genesis block gas limit: what the ledger's most expensive block at this limit costs to
	// execute on a 2-core machine is in BENCHMARKS.md ("worst block").
	BlockMaxGas = api.DefaultBlockMaxGas
)

// Options describe a single-validator home created by Init.
type Options struct {
	ChainID     string          // required
	Moniker     string          // default "spare-node"
	BlockTime   time.Duration   // target time between blocks ([consensus] timeout_commit); default 100ms; must be >0
	RPCListen   string          // default "tcp://127.0.0.1:26657"
	P2PListen   string          // default "tcp://127.0.0.1:26656"
	AppState    json.RawMessage // genesis app_state, passed verbatim
	GenesisTime time.Time       // default now (UTC)
}

// withDefaults validates o and returns a copy with defaults filled in.
func (o Options) withDefaults() (Options, error) {
	if err := validateChainID(o.ChainID); err != nil {
		return o, err
	}
	if o.Moniker == "" {
		o.Moniker = DefaultMoniker
	}
	if err := validateMoniker(o.Moniker); err != nil {
		return o, err
	}
	bt, err := blockTimeOrDefault(o.BlockTime)
	if err != nil {
		return o, err
	}
	o.BlockTime = bt
	if o.RPCListen == "" {
		o.RPCListen = DefaultRPCListen
	}
	if err := validateListen("RPCListen", o.RPCListen, true); err != nil {
		return o, err
	}
	if o.P2PListen == "" {
		o.P2PListen = DefaultP2PListen
	}
	if err := validateListen("P2PListen", o.P2PListen, false); err != nil {
		return o, err
	}
	if err := validateAppState(o.AppState); err != nil {
		return o, err
	}
	o.GenesisTime = genesisTimeOrNow(o.GenesisTime)
	return o, nil
}

func validateChainID(id string) error {
	switch {
	case strings.TrimSpace(id) == "":
		return errors.New("node: ChainID is empty: pass --chain-id")
	case len(id) > types.MaxChainIDLen:
		return fmt.Errorf("node: ChainID %q is %d bytes, CometBFT allows at most %d: pass a shorter --chain-id",
			id, len(id), types.MaxChainIDLen)
	case strings.TrimSpace(id) != id:
		return fmt.Errorf("node: ChainID %q has leading or trailing spaces: remove them", id)
	}
	return nil
}

// validateMoniker rejects characters that would break the config.toml template
// (CometBFT writes the moniker between double quotes without escaping).
func validateMoniker(m string) error {
	for _, r := range m {
		if r == '"' || r == '\\' || unicode.IsControl(r) {
			return fmt.Errorf("node: Moniker %q contains %q: use letters, digits, '-', '_' or '.'", m, r)
		}
	}
	return nil
}

func blockTimeOrDefault(d time.Duration) (time.Duration, error) {
	switch {
	case d == 0:
		return DefaultBlockTime, nil
	case d < 0:
		return 0, fmt.Errorf("node: BlockTime is %s: it must be > 0 (e.g. 100ms, 1s), or 0 for the default %s",
			d, DefaultBlockTime)
	}
	return d, nil
}

func validateAppState(s json.RawMessage) error {
	if len(s) > 0 && !json.Valid(s) {
		return errors.New("node: AppState is not valid JSON: pass a JSON document (or nothing) as genesis app_state")
	}
	return nil
}

func genesisTimeOrNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now().UTC()
	}
	return t.UTC()
}

// validateListen checks a CometBFT listen address such as tcp://127.0.0.1:26657
// (unix:///path is allowed for RPC only).
func validateListen(field, addr string, allowUnix bool) error {
	proto, rest, ok := strings.Cut(addr, "://")
	example := "tcp://127.0.0.1:26657"
	if field == "P2PListen" {
		example = "tcp://127.0.0.1:26656"
	}
	if !ok {
		return fmt.Errorf("node: %s %q has no scheme: write it as %s", field, addr, example)
	}
	switch proto {
	case "tcp":
	case "unix":
		if allowUnix && rest != "" {
			return nil
		}
		fallthrough
	default:
		return fmt.Errorf("node: %s %q: scheme must be tcp, e.g. %s", field, addr, example)
	}
	_, port, err := net.SplitHostPort(rest)
	if err != nil {
		return fmt.Errorf("node: %s %q is not host:port: write it as %s", field, addr, example)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("node: %s %q has an invalid port: use 0-65535, e.g. %s", field, addr, example)
	}
	return nil
}

// newConfig returns CometBFT's default config adjusted for Spare.
func newConfig(home, moniker string, blockTime time.Duration, rpcListen, p2pListen string) *cfg.Config {
	c := cfg.DefaultConfig()
	c.SetRoot(home)
	c.Moniker = moniker

	// Block interval: the node waits timeout_commit after committing a block
	// before starting the next height. Do not skip it, or a single validator
	// produces blocks as fast as it can.
	c.Consensus.TimeoutCommit = blockTime
	c.Consensus.SkipTimeoutCommit = false
	// The per-peer routine that queries +2/3 majorities sleeps this long between steps; it is also how long a
	// stopping node must wait before closing its stores (see Node.Stop). CometBFT's default is 2 s.
	c.Consensus.PeerQueryMaj23SleepDuration = 250 * time.Millisecond
	c.Consensus.CreateEmptyBlocks = true
	c.Consensus.CreateEmptyBlocksInterval = 0

	c.RPC.ListenAddress = rpcListen
	c.P2P.ListenAddress = p2pListen
	// PEX is of no use to a single validator or a fixed local testnet, and
	// with it on, stopping logs an address-book error.
	c.P2P.PexReactor = false

	c.Mempool.Recheck = true
	c.TxIndex.Indexer = "kv" // clients look txs up by hash and search by events
	c.Storage.DiscardABCIResponses = false
	c.Instrumentation.Prometheus = false
	return c
}

// Init creates a single-validator home: config/config.toml (written from the
// options, so users can edit it), priv validator key and state, node key, and
// genesis.json naming this validator (power 10) with consensus params block
// MaxBytes 4 MiB, MaxGas BlockMaxGas and CometBFT's default evidence params.
// It fails if home already has a genesis file.
func Init(home string, opts Options) error {
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	home, err = absHome(home)
	if err != nil {
		return err
	}
	conf := newConfig(home, o.Moniker, o.BlockTime, o.RPCListen, o.P2PListen)
	if err := refuseExistingGenesis(conf); err != nil {
		return err
	}
	pv, _, err := writeHome(conf)
	if err != nil {
		return err
	}
	gen := newGenesis(o.ChainID, o.GenesisTime, o.AppState, []types.GenesisValidator{{
		PubKey: pv.Key.PubKey,
		Power:  ValidatorPower,
		Name:   o.Moniker,
	}})
	return saveGenesis(gen, conf.GenesisFile())
}

func absHome(home string) (string, error) {
	if strings.TrimSpace(home) == "" {
		return "", errors.New("node: home directory is empty: pass --home")
	}
	abs, err := filepath.Abs(home)
	if err != nil {
		return "", fmt.Errorf("node: home %q: %w", home, err)
	}
	return abs, nil
}

func refuseExistingGenesis(conf *cfg.Config) error {
	if _, err := os.Stat(conf.GenesisFile()); err == nil {
		return fmt.Errorf("node: %s already exists: home %s is already initialised; use another --home or remove it first",
			conf.GenesisFile(), conf.RootDir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("node: checking %s: %w", conf.GenesisFile(), err)
	}
	return nil
}

// writeHome creates the directories, config.toml, validator key/state and node
// key of a home (everything except genesis.json). Existing keys are reused.
func writeHome(conf *cfg.Config) (*privval.FilePV, *p2p.NodeKey, error) {
	for _, dir := range []string{
		filepath.Join(conf.RootDir, cfg.DefaultConfigDir),
		filepath.Join(conf.RootDir, cfg.DefaultDataDir),
		filepath.Dir(conf.PrivValidatorKeyFile()),
		filepath.Dir(conf.PrivValidatorStateFile()),
		filepath.Dir(conf.NodeKeyFile()),
	} {
		if err := os.MkdirAll(dir, cfg.DefaultDirPerm); err != nil {
			return nil, nil, fmt.Errorf("node: creating %s: %w", dir, err)
		}
	}
	if err := writeConfig(conf); err != nil {
		return nil, nil, err
	}
	pv, err := loadOrGenPV(conf)
	if err != nil {
		return nil, nil, err
	}
	nodeKey, err := p2p.LoadOrGenNodeKey(conf.NodeKeyFile())
	if err != nil {
		return nil, nil, fmt.Errorf("node: node key %s: %w", conf.NodeKeyFile(), err)
	}
	return pv, nodeKey, nil
}

// writeConfig renders conf to home/config/config.toml and reads it back to be
// sure the file loads as written.
func writeConfig(conf *cfg.Config) error {
	path := configFile(conf.RootDir)
	// cfg.WriteConfigFile exits the process on a write error: make sure the
	// file is writable first.
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		return fmt.Errorf("node: writing %s: %w", path, err)
	}
	cfg.WriteConfigFile(path, conf)
	if _, err := LoadConfig(conf.RootDir); err != nil {
		return fmt.Errorf("node: the config just written does not load back: %w", err)
	}
	return nil
}

func configFile(home string) string {
	return filepath.Join(home, cfg.DefaultConfigDir, cfg.DefaultConfigFileName)
}

// loadOrGenPV loads the validator key if present, else generates and saves one.
// privval's own helpers panic or exit the process on I/O errors; this returns
// errors instead.
func loadOrGenPV(conf *cfg.Config) (pv *privval.FilePV, err error) {
	keyFile, stateFile := conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile()
	if _, statErr := os.Stat(keyFile); statErr == nil {
		_, stateErr := os.Stat(stateFile)
		if err := checkPVFiles(keyFile, stateFile, stateErr == nil); err != nil {
			return nil, err
		}
		if stateErr == nil {
			return privval.LoadFilePV(keyFile, stateFile), nil
		}
		pv = privval.LoadFilePVEmptyState(keyFile, stateFile)
	} else {
		pv = privval.GenFilePV(keyFile, stateFile)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("node: saving validator key %s: %v", keyFile, r)
		}
	}()
	pv.Save()
	return pv, nil
}

// checkPVFiles verifies that the validator key (and, if needState, state) file
// can be read and parsed, because privval.LoadFilePV exits the process when
// they cannot.
func checkPVFiles(keyFile, stateFile string, needState bool) error {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("node: validator key: %w (run init to create the home)", err)
	}
	var key privval.FilePVKey
	if err := cmtjson.Unmarshal(b, &key); err != nil {
		return fmt.Errorf("node: validator key %s is corrupt: %w", keyFile, err)
	}
	if key.PrivKey == nil {
		return fmt.Errorf("node: validator key %s has no priv_key", keyFile)
	}
	if !needState {
		return nil
	}
	b, err = os.ReadFile(stateFile)
	if err != nil {
		return fmt.Errorf("node: validator state: %w (it records the last signed height to prevent double signing; "+
			"restore it, or for a brand-new chain write {\"height\":\"0\",\"round\":0,\"step\":0})", err)
	}
	var st privval.FilePVLastSignState
	if err := cmtjson.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("node: validator state %s is corrupt: %w", stateFile, err)
	}
	return nil
}

func newGenesis(chainID string, t time.Time, appState json.RawMessage, vals []types.GenesisValidator) *types.GenesisDoc {
	params := types.DefaultConsensusParams()
	params.Block.MaxBytes = BlockMaxBytes
	params.Block.MaxGas = BlockMaxGas
	params.Evidence = types.DefaultEvidenceParams()
	var state json.RawMessage
	if len(appState) > 0 {
		state = append(json.RawMessage(nil), appState...)
	}
	return &types.GenesisDoc{
		GenesisTime:     t,
		ChainID:         chainID,
		InitialHeight:   1,
		ConsensusParams: params,
		Validators:      vals,
		AppState:        state,
	}
}

func saveGenesis(gen *types.GenesisDoc, path string) error {
	if err := gen.ValidateAndComplete(); err != nil {
		return fmt.Errorf("node: invalid genesis: %w", err)
	}
	if err := gen.SaveAs(path); err != nil {
		return fmt.Errorf("node: writing %s: %w", path, err)
	}
	return nil
}

// LoadConfig reads home/config/config.toml into a CometBFT config rooted at
// home, so edits to the file are honoured, and validates it. Keys missing from
// the file keep CometBFT's defaults.
func LoadConfig(home string) (*cfg.Config, error) {
	home, err := absHome(home)
	if err != nil {
		return nil, err
	}
	path := configFile(home)
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("node: %s not found: initialise the home first (Init / init command)", path)
		}
		return nil, fmt.Errorf("node: %w", err)
	}
	v := viper.New()
	v.SetConfigFile(path)
	v.SetConfigType("toml")
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("node: reading %s: %w", path, err)
	}
	conf := cfg.DefaultConfig()
	if err := v.Unmarshal(conf); err != nil {
		return nil, fmt.Errorf("node: parsing %s: %w", path, err)
	}
	conf.SetRoot(home)
	if err := conf.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("node: invalid %s: %w", path, err)
	}
	return conf, nil
}

// Node is a CometBFT node running in this process.
type Node struct {
	comet   *cmtnode.Node
	dbs     *dbTracker
	home    string
	rpcAddr string

	stopOnce sync.Once
	stopErr  error
	stopping *atomic.Bool // demotes CometBFT's shutdown noise (closed listeners, peers) from error level
	// drain is how long per-peer consensus routines may still read the stores after Stop returns.
	drain time.Duration
}

// Start loads the config from home and runs a node in-process with app,
// connected through proxy.NewConnSyncLocalClientCreator: each ABCI connection
// (consensus, mempool, query, snapshot) has its own mutex, so app must be
// safe for concurrent use. CometBFT's logs go to logger (nil discards them):
// its debug level maps to slog.LevelDebug-4, info to slog.LevelDebug, warn to
// slog.LevelWarn and error to slog.LevelError; the log_level in config.toml
// still filters before that.
//
// A tcp listen address with port 0 is replaced by a free port before start,
// so RPCAddress reports a dialable address.
func Start(home string, app abci.Application, logger *slog.Logger) (*Node, error) {
	if app == nil {
		return nil, errors.New("node: Start: app is nil")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	conf, err := LoadConfig(home)
	if err != nil {
		return nil, err
	}
	if conf.RPC.ListenAddress, err = resolveZeroPorts(conf.RPC.ListenAddress); err != nil {
		return nil, fmt.Errorf("node: rpc laddr: %w", err)
	}
	if conf.P2P.ListenAddress, err = resolveZeroPorts(conf.P2P.ListenAddress); err != nil {
		return nil, fmt.Errorf("node: p2p laddr: %w", err)
	}
	if peers := splitList(conf.P2P.PersistentPeers); len(peers) > 0 {
		if _, errs := p2p.NewNetAddressStrings(peers); len(errs) > 0 {
			return nil, fmt.Errorf("node: invalid persistent_peers in %s: %v (want id@host:port,...)",
				configFile(conf.RootDir), errs[0])
		}
	}
	if _, err := os.Stat(conf.GenesisFile()); err != nil {
		return nil, fmt.Errorf("node: genesis: %w (initialise the home first)", err)
	}
	if err := checkPVFiles(conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile(), true); err != nil {
		return nil, err
	}
	if err := repairIndex(conf, logger); err != nil {
		return nil, err
	}
	pv := privval.LoadFilePV(conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile())
	nodeKey, err := p2p.LoadNodeKey(conf.NodeKeyFile())
	if err != nil {
		return nil, fmt.Errorf("node: node key: %w", err)
	}
	stopping := new(atomic.Bool)
	cmtLogger, err := newCometLogger(logger, conf.LogLevel, stopping)
	if err != nil {
		return nil, fmt.Errorf("node: log_level in %s: %w", configFile(conf.RootDir), err)
	}

	dbs := &dbTracker{}
	cn, err := cmtnode.NewNode(
		conf,
		pv,
		nodeKey,
		proxy.NewConnSyncLocalClientCreator(app),
		cmtnode.DefaultGenesisDocProviderFunc(conf),
		dbs.provider,
		cmtnode.DefaultMetricsProvider(conf.Instrumentation),
		cmtLogger,
	)
	if err != nil {
		dbs.closeAll()
		return nil, fmt.Errorf("node: creating CometBFT node: %w", err)
	}
	if err := cn.Start(); err != nil {
		cleanupFailedStart(cn)
		dbs.closeAll()
		return nil, fmt.Errorf("node: starting CometBFT node: %w", err)
	}
	return &Node{
		comet:    cn,
		dbs:      dbs,
		home:     conf.RootDir,
		rpcAddr:  rpcURL(conf.RPC.ListenAddress),
		stopping: stopping,
		drain:    3*conf.Consensus.PeerQueryMaj23SleepDuration + 2*conf.Consensus.PeerGossipSleepDuration,
	}, nil
}

// cleanupFailedStart stops what NewNode started (event bus, indexer, ABCI
// connections) after a failed Start.
func cleanupFailedStart(cn *cmtnode.Node) {
	func() {
		// OnStop may trip over parts that OnStart already cleaned up.
		defer func() { _ = recover() }()
		cn.OnStop()
	}()
	_ = cn.ProxyApp().Stop()
}

// dbTracker opens databases like cfg.DefaultDBProvider and remembers them:
// CometBFT's node never closes its tx/block indexer database (and nothing on
// a failed start), which keeps the goleveldb lock and makes a second Start
// of the same home in this process fail.
type dbTracker struct {
	mu  sync.Mutex
	dbs []*guardedDB
}

func (t *dbTracker) provider(ctx *cfg.DBContext) (dbm.DB, error) {
	db, err := cfg.DefaultDBProvider(ctx)
	if err != nil {
		return nil, err
	}
	g := &guardedDB{DB: db}
	t.mu.Lock()
	t.dbs = append(t.dbs, g)
	t.mu.Unlock()
	return g, nil
}

// closeAll closes every database opened, for real.
func (t *dbTracker) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, db := range t.dbs {
		_ = db.DB.Close()
	}
	t.dbs = nil
}

// guardedDB is a CometBFT database whose Close waits for closeAll. CometBFT's Stop closes its block and state
// stores at once, while per-peer consensus routines it does not wait for may still be asleep between steps; one
// that wakes and reads panics on a closed LevelDB ("leveldb: closed"). Stop lets them drain before closeAll
// closes the databases for real. (Reads after that fail as before, which also tells clients still talking to
// this stopped node's RPC server, over kept-alive connections, to reconnect.)
type guardedDB struct {
	dbm.DB
}

func (g *guardedDB) Close() error { return nil } // closeAll closes

// Stop stops the node and waits for it to finish. It is safe to call more
// than once; later calls return the first call's result.
func (n *Node) Stop() error {
	n.stopOnce.Do(func() {
		n.stopping.Store(true)
		hadPeers := n.comet.Switch().Peers().Size() > 0
		if err := n.comet.Stop(); err != nil {
			n.stopErr = fmt.Errorf("node: stopping CometBFT node: %w", err)
			return
		}
		n.comet.Wait()
		// NewNode starts the ABCI connections but the node's OnStop leaves
		// them, and it never closes the indexer database; its Close of the
		// other stores is deferred to closeAll (guardedDB).
		_ = n.comet.ProxyApp().Stop()
		// CometBFT's per-peer consensus routines are not waited for by Stop: one can be asleep between steps
		// and then read the block store, and its stores panic on a closed database. Give them their sleeps.
		if hadPeers {
			time.Sleep(n.drain)
		}
		n.dbs.closeAll()
	})
	return n.stopErr
}

// RPCAddress is the HTTP address of the node's RPC server, e.g.
// "http://127.0.0.1:26657" (a wildcard listen host is reported as
// 127.0.0.1). It is empty if the RPC server is disabled.
func (n *Node) RPCAddress() string { return n.rpcAddr }

// Comet returns the underlying CometBFT node.
func (n *Node) Comet() *cmtnode.Node { return n.comet }

// Home is the node's home directory (absolute).
func (n *Node) Home() string { return n.home }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// resolveZeroPorts replaces port 0 in tcp:// addresses of a comma-separated
// list by a currently free port.
func resolveZeroPorts(list string) (string, error) {
	addrs := splitList(list)
	for i, a := range addrs {
		proto, rest, ok := strings.Cut(a, "://")
		if !ok || proto != "tcp" {
			continue
		}
		host, port, err := net.SplitHostPort(rest)
		if err != nil || port != "0" {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", err
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		addrs[i] = "tcp://" + net.JoinHostPort(host, strconv.Itoa(p))
	}
	return strings.Join(addrs, ","), nil
}

// rpcURL turns the first RPC listen address into a client URL.
func rpcURL(list string) string {
	addrs := splitList(list)
	if len(addrs) == 0 {
		return ""
	}
	a := addrs[0]
	for _, cand := range addrs {
		if strings.HasPrefix(cand, "tcp://") {
			a = cand
			break
		}
	}
	u, err := url.Parse(a)
	if err != nil || u.Scheme != "tcp" {
		return a // unix:// addresses are understood by the RPC client as is
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "http://" + u.Host
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
