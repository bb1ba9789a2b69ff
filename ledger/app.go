// Package ledger is the Spare ledger's app: a deterministic ABCI++ application over the ledger's modules. It knows
// nothing of providers' machines, HTTP or tenants' jobs; it only checks and applies signed transactions, in block
// order, with block time.
//
// This package owns what is not a module's: the ABCI connections (app.go: CheckTx admission by gas,
// ProcessProposal, FinalizeBlock, Commit), the message router and the ordered end-of-block list (exec.go), the
// modules wired with their hooks (modules.go), queries (query.go) and the supply invariant (invariant.go). The
// modules are packages: bank, providers, market, settle (lease settlement), verify (replicated runs), cluster,
// trust (auditors, liveness, proof of GPU, slashing) and retention, over a shared kernel (ledger/kernel); what
// clients see is ledger/api, the state's layout ledger/schema. ARCHITECTURE.md draws a lease's path through them.
package ledger

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"

	abci "github.com/cometbft/cometbft/abci/types"
	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/store"
	"github.com/sparenet/spare/ledger/tx"
)

// AppVersion is reported to CometBFT in Info.
const AppVersion uint64 = 1

const codespace = "spare"

const (
	keyChainID  = "chain_id"
	keyLastTime = "last_time_ms"
	keyMaxGas   = "max_gas" // the consensus params' block gas limit, from genesis; absent: none
)

// Options tune an App.
type Options struct {
	// CheckInvariants recomputes every supply component from the state after each block and panics on any
	// difference. It costs O(state) per block: for tests.
	CheckInvariants bool
	Logger          *slog.Logger
	// MinGasPrice is this node's own floor on the gas price of transactions it lets into its mempool, in uspr per
	// million gas; the chain's params.min_gas_price applies when it is lower. It is not consensus: blocks are
	// judged by the chain's floor alone.
	MinGasPrice uint64
}

// App is the ABCI application. It is safe for concurrent use by CometBFT's separate connections: consensus
// (InitChain, FinalizeBlock, Commit), mempool (CheckTx) and query (Info, Query).
type App struct {
	abci.BaseApplication
	opts  Options
	log   *slog.Logger
	store *store.Store
	sigs  *sigCache
	mods  *modules // the ledger's modules, wired, with their hooks

	mu      sync.Mutex // consensus connection state
	working *store.Batch
	height  int64
	hash    []byte

	checkMu    sync.Mutex
	check      *store.Batch
	checkH     int64
	checkTime  uint64
	checkChain string
}

var _ abci.Application = (*App)(nil)

// New returns an App over st.
func New(st *store.Store, opts Options) *App {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &App{opts: opts, log: opts.Logger, store: st, sigs: newSigCache(200_000), mods: newModules()}
	a.resetCheck()
	return a
}

func (a *App) resetCheck() {
	b := a.store.Begin()
	a.checkMu.Lock()
	a.check = b
	a.checkH = a.store.Height() + 1
	a.checkTime = lastTime(b)
	a.checkChain = chainIDOf(b)
	a.checkMu.Unlock()
}

func lastTime(kv store.KV) uint64 {
	if b, ok := kv.Get(keyLastTime); ok {
		return schema.UnBE64(string(b))
	}
	return 0
}

func chainIDOf(kv store.KV) string {
	b, _ := kv.Get(keyChainID)
	return string(b)
}

// Info tells CometBFT where the app's state stands, so it replays only the blocks after it.
func (a *App) Info(context.Context, *abci.RequestInfo) (*abci.ResponseInfo, error) {
	return &abci.ResponseInfo{
		Data:             "spare",
		Version:          "1",
		AppVersion:       AppVersion,
		LastBlockHeight:  a.store.Height(),
		LastBlockAppHash: a.store.AppHash(),
	}, nil
}

// InitChain loads the genesis app_state: params and funded accounts.
func (a *App) InitChain(_ context.Context, req *abci.RequestInitChain) (*abci.ResponseInitChain, error) {
	g, err := api.ParseGenesis(req.AppStateBytes)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.working = a.store.Begin()
	c := &ctx{KV: a.working, ChainID: req.ChainId, Params: &g.Params, Hooks: a.mods.hooks}
	c.KV.Set(keyChainID, []byte(req.ChainId))
	c.KV.Set(schema.KeyParams, schema.EncParams(&g.Params))
	if cp := req.ConsensusParams; cp != nil && cp.Block != nil && cp.Block.MaxGas > 0 {
		c.KV.Set(keyMaxGas, []byte(schema.BE64(uint64(cp.Block.MaxGas))))
	}
	sup := &api.Supply{}
	for _, acc := range g.Accounts {
		c.SetAccount(&api.Account{Address: acc.Address, Balance: acc.Balance})
		sup.Genesis += acc.Balance
	}
	sup.Balances = sup.Genesis
	c.SetSupply(sup)
	for _, au := range g.Auditors {
		a.mods.Trust.SetAuditor(c, au)
	}
	hash := a.working.AppHash(req.InitialHeight - 1)
	// Let the mempool see the genesis state before block 1 commits it.
	check := a.working.Fork()
	a.checkMu.Lock()
	a.check, a.checkH, a.checkTime, a.checkChain = check, req.InitialHeight, 0, req.ChainId
	a.checkMu.Unlock()
	a.log.Info("genesis loaded", "chain_id", req.ChainId, "accounts", len(g.Accounts), "supply", sup.Genesis)
	return &abci.ResponseInitChain{AppHash: hash}, nil
}

// CheckTx validates a transaction for the mempool against a scratch copy of the state that accumulates the
// mempool's transactions; committed state is never touched.
func (a *App) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	t, err := a.decodeVerified(req.Tx)
	var used uint64
	if err == nil {
		used, err = a.checkExec(t)
	}
	if err != nil {
		code := tx.CodeOf(err)
		return &abci.ResponseCheckTx{Code: uint32(code), Log: err.Error(), Codespace: codespace, GasUsed: gasInt(used)}, nil
	}
	// GasWanted is what CometBFT counts against the block's gas limit when it fills a block from the mempool: the
	// gas the transaction used here, the best estimate of what it will use in the block (its declared limit is
	// only a ceiling; FinalizeBlock meters the block by what its transactions actually use).
	return &abci.ResponseCheckTx{Code: abci.CodeTypeOK, GasWanted: gasInt(used), GasUsed: gasInt(used)}, nil
}

// checkExec runs t against the mempool's scratch state. The lock is released however it ends, and a panic
// (execTx recovers its own; this covers reading the params) rejects the transaction rather than leave every later
// CheckTx and Commit waiting.
func (a *App) checkExec(t *tx.Tx) (uint64, error) {
	a.checkMu.Lock()
	defer a.checkMu.Unlock()
	var used uint64
	err := guard(func() (err error) {
		c := &ctx{KV: a.check, ChainID: a.checkChain, Height: a.checkH, TimeMs: a.checkTime, Params: kernel.LoadParams(a.check), Quiet: true, Hooks: a.mods.hooks}
		if err := a.admit(c, t); err != nil {
			return err
		}
		used, err = a.mods.execTx(c, t, false, ^uint64(0))
		return err
	})
	a.logPanic(err, "check_tx", a.checkH, t)
	return used, err
}

// admit checks what the mempool asks of a transaction's gas before running it: a limit within the block's, that
// covers at least its own bytes and signature, and a fee at this node's gas price.
func (a *App) admit(c *ctx, t *tx.Tx) error {
	if max := maxGas(c.KV); max > 0 && t.Body.GasLimit > max {
		return tx.Errorf(tx.CodeOutOfGas, "gas limit %d above the block's %d: split the messages over several transactions", t.Body.GasLimit, max)
	}
	price := max(a.opts.MinGasPrice, c.Params.MinGasPrice)
	if need := api.FeeFor(c.Params, t.Body.GasLimit, price); t.Body.Fee < need {
		return tx.Errorf(tx.CodeFeeTooLow, "fee %s below %s: this node asks %d uspr per million gas for a gas limit of %d (and at least the min_fee %s)",
			api.FormatSPR(t.Body.Fee), api.FormatSPR(need), price, t.Body.GasLimit, api.FormatSPR(c.Params.MinFee))
	}
	return nil
}

func maxGas(kv store.KV) uint64 {
	if b, ok := kv.Get(keyMaxGas); ok {
		return schema.UnBE64(string(b))
	}
	return 0
}

func gasInt(g uint64) int64 { return int64(min(g, 1<<62)) }

// logPanic logs, with its stack, a transaction that panicked.
func (a *App) logPanic(err error, where string, height int64, t *tx.Tx) {
	var p *Panicked
	if errors.As(err, &p) {
		h := t.Hash()
		a.log.Error("transaction panicked: reverted", "where", where, "height", height, "tx", fmt.Sprintf("%X", h[:]),
			"signer", t.Signer(), "err", p.Err.Msg, "stack", string(p.Stack))
	}
}

// decodeVerified decodes raw and checks its signature, using the cache of signatures already verified.
func (a *App) decodeVerified(raw []byte) (*tx.Tx, error) {
	t, err := tx.Decode(raw)
	if err != nil {
		return nil, err
	}
	key := sha256.Sum256(raw)
	if a.sigs.has(key) {
		return t, nil
	}
	if !cmted25519.PubKey(t.Body.PubKey).VerifySignature(t.BodyBytes, t.Signature) {
		return nil, tx.Errorf(tx.CodeBadSignature, "signature does not verify for signer %s", t.Signer())
	}
	a.sigs.add(key)
	return t, nil
}

// FinalizeBlock executes a decided block: its transactions in order, then the ledger's own end-of-block work.
// A transaction that panics fails alone (execTx). A panic anywhere else — the end-of-block work, the supply
// invariant — returns an error naming the height and the stage: CometBFT then stops this validator rather than
// commit a state it could not compute, and the block's changes are dropped.
func (a *App) FinalizeBlock(_ context.Context, req *abci.RequestFinalizeBlock) (resp *abci.ResponseFinalizeBlock, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	stage := "starting the block"
	var decoded []decodedTx
	txAt := -1 // the transaction running, named only if it panics (no formatting per transaction)
	defer func() {
		if r := recover(); r != nil {
			if txAt >= 0 {
				stage = fmt.Sprintf("transaction %d (%X)", txAt, decoded[txAt].key[:])
			}
			a.log.Error("block execution panicked: stopping", "height", req.Height, "stage", stage, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			a.working = nil
			resp, err = nil, stageError(req.Height, stage, r)
		}
	}()
	if a.working == nil {
		a.working = a.store.Begin()
	}
	c := &ctx{
		KV:      a.working,
		ChainID: chainIDOf(a.working),
		Height:  req.Height,
		TimeMs:  uint64(req.Time.UnixMilli()),
		Params:  kernel.LoadParams(a.working),
		Hooks:   a.mods.hooks,
	}
	copy(c.Proposer[:], req.ProposerAddress)
	copy(c.Seed[:], req.Hash)
	if prev := lastTime(a.working); c.TimeMs < prev {
		c.TimeMs = prev // BFT time is monotonic; guard anyway so settlement never runs backwards
	}
	decoded = a.verifyBlock(req.Txs)
	defer func() {
		for _, d := range decoded {
			a.sigs.take(d.key) // included: never checked again
		}
	}()
	results := make([]*abci.ExecTxResult, len(req.Txs))
	blockLeft := maxGas(a.working)
	if blockLeft == 0 {
		blockLeft = ^uint64(0)
	}
	for i := range req.Txs {
		t, err := decoded[i].tx, decoded[i].err
		c.Events = nil
		var used uint64
		if err == nil {
			txAt = i
			used, err = a.mods.execTx(c, t, true, blockLeft)
			blockLeft -= used
			a.logPanic(err, "finalize_block", req.Height, t)
		}
		res := &abci.ExecTxResult{Code: uint32(tx.CodeOf(err)), Events: c.Events, GasUsed: gasInt(used)}
		if t != nil {
			res.GasWanted = gasInt(t.Body.GasLimit)
		}
		if err != nil {
			res.Log = err.Error()
			res.Codespace = codespace
		}
		results[i] = res
	}
	c.Events = nil
	txAt = -1
	stage = "the end-of-block work"
	a.mods.endBlock(c, blockLeft)
	stage = "the invariant check"
	c.KV.Set(keyLastTime, []byte(schema.BE64(c.TimeMs)))
	if a.opts.CheckInvariants {
		if err := CheckInvariants(a.working); err != nil {
			panic(fmt.Sprintf("ledger: height %d: %v", req.Height, err))
		}
	} else if s := c.Supply(); !s.Holds() {
		panic(fmt.Sprintf("ledger: height %d: supply invariant broken: %+v", req.Height, *s))
	}
	a.height = req.Height
	a.hash = a.working.AppHash(req.Height)
	return &abci.ResponseFinalizeBlock{TxResults: results, Events: c.Events, AppHash: a.hash}, nil
}

type decodedTx struct {
	tx  *tx.Tx
	err error
	key [32]byte // SHA-256 of the raw transaction: its name in the signature cache
}

// ProcessProposal rejects a proposed block holding a transaction that cannot be decoded or whose signature fails
// (no honest mempool would have let it through, and every validator reaches the same verdict), or whose
// transactions' bytes and signatures alone cost more than the block's gas: that is checked first, from their
// sizes, so that a proposer cannot make every validator verify megabytes of signatures. Signatures verified here
// are cached for FinalizeBlock, which bounds the rest of the block's work by its gas.
func (a *App) ProcessProposal(_ context.Context, req *abci.RequestProcessProposal) (*abci.ResponseProcessProposal, error) {
	view, _ := a.store.View()
	if limit := maxGas(view); limit > 0 {
		var total uint64
		for i, raw := range req.Txs {
			if total += intrinsicGasOf(len(raw)); total > limit {
				a.log.Warn("rejecting proposal: its transactions' bytes and signatures alone are over the block gas limit",
					"height", req.Height, "tx_index", i, "limit", limit)
				return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_REJECT}, nil
			}
		}
	}
	for i, d := range a.verifyBlock(req.Txs) {
		if d.err != nil {
			a.log.Warn("rejecting proposal", "height", req.Height, "tx_index", i, "err", d.err)
			return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_REJECT}, nil
		}
	}
	return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_ACCEPT}, nil
}

// verifyBlock decodes a block's transactions and verifies, in one batch, the signatures not already verified
// (falling back to one by one only when the batch fails). Verified signatures are added to the cache.
func (a *App) verifyBlock(txs [][]byte) []decodedTx {
	out := make([]decodedTx, len(txs))
	var pending []int
	for i, raw := range txs {
		t, err := tx.Decode(raw)
		out[i] = decodedTx{tx: t, err: err, key: sha256.Sum256(raw)}
		if err != nil || a.sigs.has(out[i].key) {
			continue
		}
		pending = append(pending, i)
	}
	if len(pending) == 0 {
		return out
	}
	ok := make([]bool, len(pending))
	if len(pending) > 1 {
		bv := cmted25519.NewBatchVerifier()
		for _, i := range pending {
			t := out[i].tx
			if err := bv.Add(cmted25519.PubKey(t.Body.PubKey), t.BodyBytes, t.Signature); err != nil {
				break
			}
		}
		if all, _ := bv.Verify(); all {
			for j := range ok {
				ok[j] = true
			}
		}
	}
	for j, i := range pending {
		t := out[i].tx
		if !ok[j] && !cmted25519.PubKey(t.Body.PubKey).VerifySignature(t.BodyBytes, t.Signature) {
			out[i] = decodedTx{err: tx.Errorf(tx.CodeBadSignature, "signature does not verify for signer %s", t.Signer()), key: out[i].key}
			continue
		}
		a.sigs.add(out[i].key)
	}
	return out
}

// Commit persists the block's state atomically and resets the mempool's scratch state.
func (a *App) Commit(context.Context, *abci.RequestCommit) (*abci.ResponseCommit, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.working == nil {
		return &abci.ResponseCommit{}, nil
	}
	if err := a.store.Commit(a.working, a.height, a.hash); err != nil {
		return nil, err
	}
	a.working = nil
	a.resetCheck()
	return &abci.ResponseCommit{}, nil
}

// sigCache remembers transactions whose signature verified, so a signature is checked once across CheckTx,
// recheck and FinalizeBlock. Entries are dropped when their transaction is included in a block.
type sigCache struct {
	mu  sync.Mutex
	max int
	m   map[[32]byte]struct{}
}

func newSigCache(max int) *sigCache { return &sigCache{max: max, m: make(map[[32]byte]struct{})} }

func (s *sigCache) has(k [32]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[k]
	return ok
}

func (s *sigCache) add(k [32]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.max {
		clear(s.m) // a full cache only costs re-verification
	}
	s.m[k] = struct{}{}
}

// take reports whether k was cached and forgets it.
func (s *sigCache) take(k [32]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[k]
	delete(s.m, k)
	return ok
}
