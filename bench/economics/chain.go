package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/store"
	"github.com/sparenet/spare/ledger/tx"
)

// The simulated chain: the real ledger (ledger.New over an in-memory store) driven block by block through ABCI
// (InitChain, FinalizeBlock, Commit) with signed transactions, as CometBFT would drive it, with a simulated clock.
const (
	chainID = "spare-economics"
	blockDT = 6 * time.Second // block time: 5-block epochs are 30 s, as the default 300 blocks of 100 ms
	txGas   = 2_000_000       // every transaction's gas limit: at the default gas price its fee is the min_fee
)

// key is an account's signing key and the next nonce the simulation gives it.
type key struct {
	priv  ed25519.PrivateKey
	addr  tx.Address
	nonce uint64
}

func newKey(seed string) *key {
	s := sha256.Sum256([]byte("spare/bench/economics/" + seed))
	priv := ed25519.NewKeyFromSeed(s[:])
	return &key{priv: priv, addr: tx.AddressOf(priv.Public().(ed25519.PublicKey))}
}

// queued is a signed transaction waiting for the next block, and what to do with its result.
type queued struct {
	k    *key
	raw  []byte
	what string // the first message's type, for the failure counts
	done func(r *abci.ExecTxResult)
}

// chain is the ledger under simulation.
type chain struct {
	app      *ledger.App
	st       *store.Store
	params   api.Params
	height   int64
	now      time.Time
	proposer tx.Address
	fee      uint64
	next     []queued
	failures map[string]int // transactions that failed in a block, by message type and code
	txs      int
}

func newChain(g api.Genesis, appChecks bool) (*chain, error) {
	st := store.OpenMem()
	c := &chain{app: ledger.New(st, ledger.Options{CheckInvariants: appChecks}), st: st, params: g.Params,
		now: time.Unix(1_700_000_000, 0), proposer: newKey("proposer").addr, failures: map[string]int{}}
	state, err := json.Marshal(g)
	if err != nil {
		return nil, err
	}
	if _, err := c.app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chainID, AppStateBytes: state, InitialHeight: 1}); err != nil {
		return nil, err
	}
	c.fee = api.FeeFor(&c.params, txGas, c.params.MinGasPrice)
	return c, nil
}

// send signs msgs from k with its next nonce and queues them for the next block; done, when set, is told the
// result.
func (c *chain) send(k *key, done func(r *abci.ExecTxResult), msgs ...tx.Msg) {
	raw := tx.Sign(tx.Body{ChainID: chainID, Nonce: k.nonce, Fee: c.fee, GasLimit: txGas, Msgs: msgs}, k.priv)
	k.nonce++
	c.next = append(c.next, queued{k: k, raw: raw, what: fmt.Sprintf("%T", msgs[0]), done: done})
}

// nextTime is the time the next block will have.
func (c *chain) nextTime() time.Time { return c.now.Add(blockDT) }

// block commits a block holding the queued transactions and returns its results. Every transaction's result is
// handed to its callback; a failure is counted (the simulated actors send only what should succeed).
func (c *chain) block() (*abci.ResponseFinalizeBlock, error) {
	c.height++
	c.now = c.now.Add(blockDT)
	q := c.next
	c.next = nil
	txs := make([][]byte, len(q))
	for i, t := range q {
		txs[i] = t.raw
	}
	res, err := c.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{
		Height: c.height, Time: c.now, Txs: txs, ProposerAddress: c.proposer[:]})
	if err != nil {
		return nil, fmt.Errorf("height %d: %w", c.height, err)
	}
	if _, err := c.app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
		return nil, fmt.Errorf("height %d: commit: %w", c.height, err)
	}
	c.txs += len(q)
	for i, r := range res.TxResults {
		if r.Code != 0 {
			c.failures[q[i].what+" code "+strconv.Itoa(int(r.Code))]++
			// A transaction refused before its fee was charged leaves its nonce unused: read the account's again.
			if acc, err := c.account(q[i].k.addr); err == nil {
				q[i].k.nonce = acc.Nonce
			}
		}
		if q[i].done != nil {
			q[i].done(r)
		}
	}
	return res, nil
}

// query asks the ledger as a client would (ABCI Query) and decodes the answer into out.
func (c *chain) query(path string, req, out any) error {
	var data []byte
	if req != nil {
		var err error
		if data, err = json.Marshal(req); err != nil {
			return err
		}
	}
	res, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: path, Data: data})
	if err != nil {
		return err
	}
	if res.Code != 0 {
		return fmt.Errorf("query %s: code %d: %s", path, res.Code, res.Log)
	}
	return json.Unmarshal(res.Value, out)
}

func (c *chain) account(a tx.Address) (api.Account, error) {
	var acc api.Account
	err := c.query(api.QueryAccount, api.AddressRequest{Address: a}, &acc)
	return acc, err
}

// provider reads a provider's record; ok is false when a is not a provider.
func (c *chain) provider(a tx.Address) (api.ProviderView, bool, error) {
	var p api.ProviderView
	res, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: api.QueryProvider, Data: mustJSON(api.AddressRequest{Address: a})})
	if err != nil {
		return p, false, err
	}
	if res.Code == api.QueryCodeNotFound {
		return p, false, nil
	}
	if res.Code != 0 {
		return p, false, fmt.Errorf("query provider %s: code %d: %s", a, res.Code, res.Log)
	}
	return p, true, json.Unmarshal(res.Value, &p)
}

func (c *chain) supply() (api.Supply, error) {
	var s api.Supply
	err := c.query(api.QuerySupply, nil, &s)
	return s, err
}

func (c *chain) epoch(e uint64) (api.EpochView, error) {
	var v api.EpochView
	err := c.query(api.QueryEpoch, api.EpochRequest{Epoch: &e}, &v)
	return v, err
}

// checkInvariants recomputes every supply component from the committed state (ledger.CheckInvariants).
func (c *chain) checkInvariants() error {
	v, _ := c.st.View()
	if err := ledger.CheckInvariants(v); err != nil {
		return fmt.Errorf("height %d: %w", c.height, err)
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// attrs turns an event's attributes into a map.
func attrs(e abci.Event) map[string]string {
	m := make(map[string]string, len(e.Attributes))
	for _, a := range e.Attributes {
		m[a.Key] = a.Value
	}
	return m
}

func atou(s string) uint64 {
	v, _ := strconv.ParseUint(s, 10, 64)
	return v
}
