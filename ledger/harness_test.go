package ledger

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/storage"
	"github.com/sparenet/spare/ledger/store"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault/layout"
)

const testChain = "spare-test"

// chain drives an App directly through ABCI calls, one block at a time, with a controlled block time. The supply
// invariant is recomputed from the whole state after every block.
type chain struct {
	t        testing.TB
	app      *App
	height   int64
	now      time.Time
	proposer key
	keys     map[string]key
	nonces   map[tx.Address]uint64
	onBlock  func(txs [][]byte, res *abci.ResponseFinalizeBlock) // told of every block committed (the golden scenario records it)
	// noEventCheck skips checkEvents' parsing of every event (benchmarks: a client's cost, not the ledger's).
	noEventCheck bool
}

type key struct {
	priv ed25519.PrivateKey
	addr tx.Address
}

func newKey(seed string) key {
	s := sha256.Sum256([]byte(seed))
	priv := ed25519.NewKeyFromSeed(s[:])
	return key{priv: priv, addr: tx.AddressOf(priv.Public().(ed25519.PublicKey))}
}

func newChain(t testing.TB, params api.Params, funded map[string]uint64) *chain {
	t.Helper()
	return newChainWith(t, params, funded, nil)
}

// newChainWith also names the auditor set: key name -> weight.
func newChainWith(t testing.TB, params api.Params, funded map[string]uint64, auditors map[string]uint64) *chain {
	t.Helper()
	c := &chain{t: t, app: New(store.OpenMem(), Options{CheckInvariants: true}), now: time.Unix(1_700_000_000, 0),
		keys: map[string]key{}, nonces: map[tx.Address]uint64{}, proposer: newKey("proposer")}
	g := api.Genesis{Params: params}
	for name, bal := range funded {
		k := newKey(name)
		c.keys[name] = k
		g.Accounts = append(g.Accounts, api.GenesisAccount{Address: k.addr, Balance: bal})
	}
	for name, w := range auditors {
		g.Auditors = append(g.Auditors, api.GenesisAuditor{Address: newKey(name).addr, Weight: w})
	}
	state, _ := json.Marshal(g)
	if _, err := c.app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: testChain, AppStateBytes: state, InitialHeight: 1}); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *chain) addr(name string) tx.Address { return c.keys[name].addr }

// name is the key name of an address.
func (c *chain) name(a tx.Address) string {
	for n, k := range c.keys {
		if k.addr == a {
			return n
		}
	}
	c.t.Fatalf("no key for %s", a)
	return ""
}

// sign builds a signed tx from name with the next nonce.
func (c *chain) sign(name string, msgs ...tx.Msg) []byte {
	k := c.keys[name]
	n := c.nonces[k.addr]
	c.nonces[k.addr] = n + 1
	gas := c.txGas(msgs...)
	return tx.Sign(tx.Body{ChainID: testChain, Nonce: n, Fee: c.feeFor(msgs...), GasLimit: gas, Msgs: msgs}, k.priv)
}

// testGas is the gas limit of the harness's transactions, plus what their messages prepay (txGas): at the
// default gas price its fee is the min_fee, so balances move by min_fee per transaction as before gas existed,
// except for cluster orders, which prepay their placement searches.
const testGas = 2_000_000

func (c *chain) txGas(msgs ...tx.Msg) uint64 {
	gas := uint64(testGas)
	p := c.app.params()
	for _, m := range msgs {
		gas += kernel.PrepaidGas(m, p)
		if so, ok := m.(*tx.StoreObject); ok { // the draw it pays for, over as many offers as a test chain has
			if o, err := layout.DecodeObject(so.Manifest); err == nil {
				gas += storage.PlacementGas(o.Stripes, o.Layout.Shards(), maxTestOffers)
			}
		}
	}
	return gas
}

// maxTestOffers bounds the storage offers of a test chain, for the gas a StoreObject is given.
const maxTestOffers = 64

// feeFor is the fee the harness pays for a transaction of msgs.
func (c *chain) feeFor(msgs ...tx.Msg) uint64 {
	p := c.app.params()
	return api.FeeFor(p, c.txGas(msgs...), p.MinGasPrice)
}

func (a *App) params() *api.Params {
	v, _ := a.store.View()
	return kernel.LoadParams(v)
}

// check runs CheckTx and returns its code.
func (c *chain) check(raw []byte) (tx.Code, string) {
	res, err := c.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: raw})
	if err != nil {
		c.t.Fatal(err)
	}
	return tx.Code(res.Code), res.Log
}

// block commits a block of txs after advancing the clock by dt, and returns the tx results.
func (c *chain) block(dt time.Duration, txs ...[]byte) *abci.ResponseFinalizeBlock {
	c.t.Helper()
	c.height++
	c.now = c.now.Add(dt)
	res, err := c.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{
		Height: c.height, Time: c.now, Txs: txs, ProposerAddress: c.proposer.addr[:]})
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
		c.t.Fatal(err)
	}
	if !c.noEventCheck {
		checkEvents(c.t, res)
	}
	if c.onBlock != nil {
		c.onBlock(txs, res)
	}
	return res
}

// do commits one block with one tx (1 s later) and requires it to succeed.
func (c *chain) do(name string, msgs ...tx.Msg) *abci.ExecTxResult {
	c.t.Helper()
	res := c.block(time.Second, c.sign(name, msgs...))
	r := res.TxResults[0]
	if r.Code != 0 {
		c.t.Fatalf("%s %T: code %d: %s", name, msgs[0], r.Code, r.Log)
	}
	return r
}

// fail requires CheckTx to refuse one tx with code want. Nothing is committed: the refused tx never reaches a
// block, and its nonce is given back for the next one.
func (c *chain) fail(want tx.Code, name string, msgs ...tx.Msg) {
	c.t.Helper()
	raw := c.sign(name, msgs...)
	if got, log := c.check(raw); got != want {
		c.t.Fatalf("CheckTx %T: code %v (%s), want %v", msgs[0], got, log, want)
	}
	c.nonces[c.addr(name)]-- // rejected by CheckTx: the nonce was not used
}

func (c *chain) query(path string, req, out any) {
	c.t.Helper()
	data, _ := json.Marshal(req)
	res, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: path, Data: data})
	if err != nil || res.Code != 0 {
		c.t.Fatalf("query %s: %v %s", path, err, res.Log)
	}
	if err := json.Unmarshal(res.Value, out); err != nil {
		c.t.Fatal(err)
	}
}

func (c *chain) balance(name string) uint64 {
	var a api.Account
	c.query(api.QueryAccount, api.AddressRequest{Address: c.addr(name)}, &a)
	return a.Balance
}

func (c *chain) lease(id uint64) api.LeaseView {
	var l api.LeaseView
	c.query(api.QueryLease, api.IDRequest{ID: id}, &l)
	return l
}

func (c *chain) order(id uint64) api.Order {
	var o api.Order
	c.query(api.QueryOrder, api.IDRequest{ID: id}, &o)
	return o
}

func (c *chain) supply() api.Supply {
	var s api.Supply
	c.query(api.QuerySupply, nil, &s)
	return s
}

func testHardware() tx.Hardware {
	return tx.Hardware{GPUs: []tx.GPUGroup{{Model: "H100", VRAMMiB: 81920, Count: 8}}, CPUMilli: 64000, MemoryMiB: 512 << 10, DiskMiB: 4 << 20}
}

func providerInfo(name string) tx.ProviderInfo {
	return tx.ProviderInfo{HostURI: "https://" + name + ".example.net:8443", CertFingerprint: sha256.Sum256([]byte(name)),
		Region: "eu-west", Zone: "a", Hardware: testHardware()}
}

// registerBonded registers name as a provider with exactly the required stake.
func (c *chain) registerBonded(name string) {
	c.do(name, &tx.RegisterProvider{ProviderInfo: providerInfo(name)})
	p := c.app.params()
	c.do(name, &tx.Bond{Amount: p.RequiredStake(8)})
}

func gpuOrder(maxPrice, deposit, durSec uint64) *tx.CreateOrder {
	return &tx.CreateOrder{Resources: tx.Resources{GPUCount: 1, GPUModels: []string{"H100"}, CPUMilli: 4000, MemoryMiB: 16 << 10},
		MaxPricePerHour: maxPrice, ManifestHash: sha256.Sum256([]byte("manifest")), Deposit: deposit, DurationSec: durSec}
}

// testParams are the default rules without rewards (no burn, no emission), so that the exact payments of the
// market's tests are the market's alone; the rewards' tests (rewards_test.go) and the adversary's first and
// third profiles turn them on.
func testParams() api.Params {
	p := noRewards(api.DefaultParams())
	p.UnbondingPeriodSec = 60
	return p
}

// noRewards is p without rewards: nothing burned, nothing minted.
func noRewards(p api.Params) api.Params {
	p.BurnPPM, p.EmissionFirstEpoch, p.EmissionTimeConstantEpochs, p.EmissionCap = 0, 0, 0, 0
	p.AuditorSharePPM, p.AvailabilitySharePPM, p.WorkRewardCapPPM, p.RewardProofEpochs = 0, 0, 0, 0
	return p
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
