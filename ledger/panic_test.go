package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// overlongLease is the encoding of a lease whose close reason is over the decoder's bound, as the ledger stored
// before encoders enforced it: the encoder now refuses to write it, so the bytes are patched by hand.
func overlongLease(t testing.TB, id uint64, tenant tx.Address) []byte {
	t.Helper()
	ok := strings.Repeat("x", tx.MaxReasonLen)
	b := schema.EncLease(&api.Lease{ID: id, OrderID: 1, Tenant: tenant, State: api.LeaseActive, StartedMs: 1, Price: 1, Deposit: 1, CloseReason: ok})
	long := strings.Repeat("x", tx.MaxReasonLen+30)
	w := tx.NewWriter(8)
	w.String(ok)
	okEnc := w.Bytes()
	w = tx.NewWriter(8)
	w.String(long)
	if !bytes.Contains(b, okEnc) {
		t.Fatal("lease encoding does not hold its reason")
	}
	return bytes.Replace(b, okEnc, w.Bytes(), 1)
}

// plant writes raw bytes into the state the next block starts from, as a bug (or a damaged disk) would have.
func (c *chain) plant(key string, val []byte) {
	c.app.mu.Lock()
	defer c.app.mu.Unlock()
	if c.app.working == nil {
		c.app.working = c.app.store.Begin()
	}
	c.app.working.Set(key, val)
}

// TestEncodersRefuseWhatDecodersRefuse: every state encoder checks the bounds its decoder reads with. A value
// over a bound is never stored: the encoder panics naming the object and the field (the transaction that tried
// fails alone, see TestTransactionPanicFailsAlone).
func TestEncodersRefuseWhatDecodersRefuse(t *testing.T) {
	long := func(n int) string { return strings.Repeat("y", n+1) }
	addrs := func(n int) []tx.Address { return make([]tx.Address, n) }
	cases := []struct {
		name, want string
		enc        func()
	}{
		{"lease close reason", "lease: encode: close_reason", func() { schema.EncLease(&api.Lease{CloseReason: long(tx.MaxReasonLen)}) }},
		{"provider pubkey", "provider: encode: pubkey", func() { schema.EncProvider(&api.Provider{PubKey: make([]byte, 31)}) }},
		{"provider class", "provider: encode: verified_class", func() {
			schema.EncProvider(&api.Provider{PubKey: make([]byte, 32), VerifiedClass: long(tx.MaxNameLen)})
		}},
		{"provider host", "provider: encode: host_uri", func() {
			schema.EncProvider(&api.Provider{PubKey: make([]byte, 32), Info: tx.ProviderInfo{HostURI: long(tx.MaxURILen)}})
		}},
		{"provider gpus", "provider: encode: hardware.gpus", func() {
			schema.EncProvider(&api.Provider{PubKey: make([]byte, 32), Info: tx.ProviderInfo{Hardware: tx.Hardware{GPUs: make([]tx.GPUGroup, tx.MaxListLen+1)}}})
		}},
		{"order regions", "order: encode: constraints.regions", func() {
			schema.EncOrder(&api.Order{Constraints: tx.Constraints{Regions: make([]string, tx.MaxListLen+1)}})
		}},
		{"order model name", "order: encode: gpu_model", func() { schema.EncOrder(&api.Order{Resources: tx.Resources{GPUModels: []string{long(tx.MaxNameLen)}}}) }},
		{"verification leases", "verification: encode: leases", func() { schema.EncVerification(&api.Verification{Leases: make([]uint64, tx.MaxReplicas+2)}) }},
		{"cluster leases", "cluster: encode: leases", func() { schema.EncCluster(&api.Cluster{Leases: make([]uint64, tx.MaxClusterNodes+1)}) }},
		{"cluster excluded", "cluster: encode: excluded", func() { schema.EncCluster(&api.Cluster{Excluded: addrs(tx.MaxClusterRestarts + 1)}) }},
		{"storage offer capacity", "storage offer: encode: capacity_bytes", func() { schema.EncStorageOffer(&api.StorageOffer{CapacityBytes: tx.MaxStorageCapacity + 1}) }},
		{"storage offer price", "storage offer: encode: price_per_gib_month", func() { schema.EncStorageOffer(&api.StorageOffer{PricePerGiBMonth: tx.MaxStoragePrice + 1}) }},
		{"latency samples", "latency: encode: samples", func() { schema.EncLatency(&api.Latency{Samples: make([]tx.LatencySample, tx.MaxLatencyPeers+1)}) }},
		{"receipt signature", "receipt: encode: receipt.signature", func() { schema.EncReceipt(&tx.Receipt{Signature: make([]byte, tx.SignatureLen+1)}) }},
		{"receipt chain", "receipt: encode: receipt.chain_id", func() { schema.EncReceipt(&tx.Receipt{ChainID: long(tx.MaxChainIDLen)}) }},
		{"hardware verdict", "hardware verdict: encode: class", func() { schema.EncHWVerdict(schema.HWVerdict{Class: long(tx.MaxNameLen)}) }},
		{"audit set", "audit set: encode: providers", func() { schema.EncAuditSet(schema.AuditSet{Providers: addrs(schema.MaxAuditSet + 1)}) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(r.(string), "ledger: storing "+tc.want) {
					t.Fatalf("panic %v, want one naming %q", r, tc.want)
				}
			}()
			tc.enc()
		})
	}
}

// TestTransactionPanicFailsAlone: a transaction whose execution panics (here it reads a lease planted over its
// bound) fails alone with CodeInternal and pays its fee; the other transactions of its block apply, the block
// commits, and queries of the bad object answer with an error while every other query works.
func TestTransactionPanicFailsAlone(t *testing.T) {
	c := newChain(t, testParams(), map[string]uint64{"tenant": 10 * api.USPR, "bob": api.USPR})
	c.app.opts.CheckInvariants = false // it would read the planted lease too
	c.plant(schema.IDKey(schema.PLease, 77), overlongLease(t, 77, c.addr("tenant")))
	res := c.block(time.Second,
		c.sign("tenant", &tx.CloseLease{ID: 77}),
		c.sign("bob", &tx.Send{To: c.addr("tenant"), Amount: 5}))
	if got := tx.Code(res.TxResults[0].Code); got != tx.CodeInternal || !strings.Contains(res.TxResults[0].Log, "state is as before it") {
		t.Fatalf("the panicking transaction: code %v %q", got, res.TxResults[0].Log)
	}
	if res.TxResults[1].Code != 0 {
		t.Fatalf("the other transaction: %d %s", res.TxResults[1].Code, res.TxResults[1].Log)
	}
	if got, want := c.balance("tenant"), 10*api.USPR-c.app.params().MinFee+5; got != want {
		t.Fatalf("tenant balance %d, want %d (fee paid, the send received)", got, want)
	}
	data, _ := json.Marshal(api.IDRequest{ID: 77})
	q, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: api.QueryLease, Data: data})
	if err != nil || q.Code != api.QueryCodeInternal || !strings.Contains(q.Log, "could not read") {
		t.Fatalf("query of the bad lease: %v %+v", err, q)
	}
	c.do("bob", &tx.Send{To: c.addr("tenant"), Amount: 1}) // the chain goes on
	if s := c.supply(); !s.Holds() {
		t.Fatalf("supply: %+v", s)
	}
}

// TestEndBlockPanicStopsTheValidator: a panic in the ledger's own end-of-block work (here a lease planted over its
// bound, due to end) is not any transaction's: FinalizeBlock returns an error naming the height and the stage, so
// CometBFT stops the validator instead of committing, and nothing of the block is kept.
func TestEndBlockPanicStopsTheValidator(t *testing.T) {
	c := newChain(t, testParams(), map[string]uint64{"tenant": 10 * api.USPR})
	c.block(time.Second)
	c.plant(schema.IDKey(schema.PLease, 5), overlongLease(t, 5, c.addr("tenant")))
	c.plant(schema.PairKey(schema.PLeaseDepletion, 2, 5), nil)
	_, err := c.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{
		Height: c.height + 1, Time: c.now.Add(time.Second), ProposerAddress: c.proposer.addr[:]})
	if err == nil || !strings.Contains(err.Error(), "height 2: the end-of-block work panicked") {
		t.Fatalf("FinalizeBlock: %v", err)
	}
	if c.app.working != nil {
		t.Fatal("the failed block's changes are kept")
	}
}
