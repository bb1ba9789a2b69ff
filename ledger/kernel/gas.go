package kernel

import (
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/store"
	"github.com/sparenet/spare/ledger/tx"
)

// Gas. Every transaction is metered as it runs: each read, write, deleted key and iteration step on the state,
// the bytes it reads and writes, the signatures it verifies and its own size. Bytes a transaction adds to the
// state cost far more than compute, since every node keeps them for as long as they live: a new key costs
// gasNewKey plus gasNewByte per byte, against gasWriteFlat plus gasWritePerByte to overwrite one. Every kind of work is
// priced at 4 gas or more per nanosecond it takes a validator on a 2-core machine, so that a block at
// DefaultBlockMaxGas runs in at most half of a 100 ms block time (BenchmarkWorstBlock, BENCHMARKS.md); new state
// is priced far above that, for what it costs every node afterwards rather than now. Work the ledger does later
// for a message, at the end of a block, is paid up front by prepaidGas.
const (
	GasTxByte       = 10      // per byte of the raw transaction (gossip, decoding, storage in blocks)
	GasSigVerify    = 100_000 // an ed25519 verification (the transaction's, a receipt's), decoding included
	GasPerMsg       = 5_000   // dispatching a message, encoding what it stores, building its events
	gasReadFlat     = 1_000
	gasReadPerByte  = 3
	gasWriteFlat    = 10_000
	gasWritePerByte = 30
	gasNewKey       = 12_000 // a key that did not exist
	gasNewByte      = 100    // per byte of a new key and its value: over 3 times a rewritten byte
	gasDeleteFlat   = 8_000
	gasIterFlat     = 1_000 // starting an iteration
	gasIterNextFlat = 300   // each entry visited
	gasIterPerByte  = 3
	GasSearchStep   = 600    // one step of a cluster's placement search (≈ 130 ns: match.BenchmarkClusterSearchStep)
	GasSearchBidder = 30_000 // each bidder a cluster search considers: its bid, stake and published round trips read, decoded and linked (BenchmarkWorstBlock)
	gasEventFlat    = 4_000  // an event (built and kept in the block's results even if the state is untouched)
	gasEventAttr    = 1_000  // each of its attributes
)

// PrepaidGas is the gas a message pays up front for work the ledger does for it later, at the end of a block, out
// of no transaction's gas: a cluster order pays one whole placement search for each generation it may run (the
// auction that leases it and each restart's), over as many bidders as it may hold. The end-of-block work is
// bounded by the block's gas anyway (see the app's endBlock); prepaying it makes the one who causes it pay for it.
func PrepaidGas(m tx.Msg, p *api.Params) uint64 {
	if co, ok := m.(*tx.CreateClusterOrder); ok {
		bidders := max(min(p.MaxBidsPerOrder, 1<<16), 2*uint64(co.Nodes)) // as maxOpenBids
		return (GasSearchStep*api.ClusterSearchBudget + GasSearchBidder*bidders) * (1 + uint64(co.MaxRestarts))
	}
	return 0
}

// GasMeter counts a transaction's gas against its limit.
type GasMeter struct {
	Used, Limit uint64
}

// OutOfGas is what a meter panics with when a transaction runs past its limit; execTx turns it into
// CodeOutOfGas.
type OutOfGas struct{ Used, Limit uint64 }

// Consume adds n, stopping the transaction once the limit is passed. A nil meter (end-of-block work, which is
// bounded by construction) counts nothing.
func (m *GasMeter) Consume(n uint64) {
	if m == nil {
		return
	}
	if m.Used+n < m.Used || m.Used+n > m.Limit {
		m.Used = m.Limit
		panic(OutOfGas{Used: m.Used, Limit: m.Limit})
	}
	m.Used += n
}

// GasKV meters every access of a transaction to the state.
type GasKV struct {
	KV    store.KV
	Meter *GasMeter
}

func (g GasKV) Get(key string) ([]byte, bool) {
	v, ok := g.KV.Get(key)
	g.Meter.Consume(gasReadFlat + gasReadPerByte*uint64(len(key)+len(v)))
	return v, ok
}

func (g GasKV) Set(key string, val []byte) {
	if _, existed := g.KV.Get(key); existed {
		g.Meter.Consume(gasWriteFlat + gasWritePerByte*uint64(len(key)+len(val)))
	} else {
		g.Meter.Consume(gasNewKey + gasNewByte*uint64(len(key)+len(val)))
	}
	g.KV.Set(key, val)
}

func (g GasKV) Delete(key string) {
	g.Meter.Consume(gasDeleteFlat)
	g.KV.Delete(key)
}

func (g GasKV) Iterate(start, end string, fn func(string, []byte) bool) {
	g.Meter.Consume(gasIterFlat)
	g.KV.Iterate(start, end, func(k string, v []byte) bool {
		g.Meter.Consume(gasIterNextFlat + gasIterPerByte*uint64(len(k)+len(v)))
		return fn(k, v)
	})
}
