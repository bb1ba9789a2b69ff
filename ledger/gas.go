package ledger

import (
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
	gasTxByte       = 10      // per byte of the raw transaction (gossip, decoding, storage in blocks)
	gasSigVerify    = 100_000 // an ed25519 verification (the transaction's, a receipt's), decoding included
	gasPerMsg       = 5_000   // dispatching a message, encoding what it stores, building its events
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
	gasSearchStep   = 600    // one step of a cluster's placement search (≈ 130 ns: match.BenchmarkClusterSearchStep)
	gasSearchBidder = 30_000 // each bidder a cluster search considers: its bid, stake and published round trips read, decoded and linked (BenchmarkWorstBlock)
	gasEventFlat    = 4_000  // an event (built and kept in the block's results even if the state is untouched)
	gasEventAttr    = 1_000  // each of its attributes
)

// DefaultBlockMaxGas is the block gas limit `spare init`, `spare testnet` and `spare dev` write into genesis
// (consensus params block.max_gas). BenchmarkWorstBlock measures the dearest block an attacker can build at it.
const DefaultBlockMaxGas = 200_000_000

// ClusterSearchBudget bounds one placement search of a cluster order (steps: sets of providers tried). With at
// most max_bids_per_order candidates the search finds the cheapest fitting set of most real orders well within
// it (the hardest of 2,000 random 20-bid orders takes 771 steps); past it the cheapest set found so far wins.
// At gasSearchStep a whole search costs 3,000,000 gas (≈ 0.65 ms), plus gasSearchBidder per bidder.
const ClusterSearchBudget = 5_000

// prepaidGas is the gas a message pays up front for work the ledger does for it later, at the end of a block, out
// of no transaction's gas: a cluster order pays one whole placement search for each generation it may run (the
// auction that leases it and each restart's), over as many bidders as it may hold. The end-of-block work is
// bounded by the block's gas anyway (see endBlock); prepaying it makes the one who causes it pay for it.
func prepaidGas(m tx.Msg, p *Params) uint64 {
	if co, ok := m.(*tx.CreateClusterOrder); ok {
		bidders := max(min(p.MaxBidsPerOrder, 1<<16), 2*uint64(co.Nodes)) // as maxOpenBids
		return (gasSearchStep*ClusterSearchBudget + gasSearchBidder*bidders) * (1 + uint64(co.MaxRestarts))
	}
	return 0
}

// gasMeter counts a transaction's gas against its limit.
type gasMeter struct {
	used, limit uint64
}

// outOfGas is what a meter panics with when a transaction runs past its limit; execTx turns it into
// CodeOutOfGas.
type outOfGas struct{ used, limit uint64 }

// consume adds n, stopping the transaction once the limit is passed. A nil meter (end-of-block work, which is
// bounded by construction) counts nothing.
func (m *gasMeter) consume(n uint64) {
	if m == nil {
		return
	}
	if m.used+n < m.used || m.used+n > m.limit {
		m.used = m.limit
		panic(outOfGas{used: m.used, limit: m.limit})
	}
	m.used += n
}

// gasKV meters every access of a transaction to the state.
type gasKV struct {
	kv store.KV
	m  *gasMeter
}

func (g gasKV) Get(key string) ([]byte, bool) {
	v, ok := g.kv.Get(key)
	g.m.consume(gasReadFlat + gasReadPerByte*uint64(len(key)+len(v)))
	return v, ok
}

func (g gasKV) Set(key string, val []byte) {
	if _, existed := g.kv.Get(key); existed {
		g.m.consume(gasWriteFlat + gasWritePerByte*uint64(len(key)+len(val)))
	} else {
		g.m.consume(gasNewKey + gasNewByte*uint64(len(key)+len(val)))
	}
	g.kv.Set(key, val)
}

func (g gasKV) Delete(key string) {
	g.m.consume(gasDeleteFlat)
	g.kv.Delete(key)
}

func (g gasKV) Iterate(start, end string, fn func(string, []byte) bool) {
	g.m.consume(gasIterFlat)
	g.kv.Iterate(start, end, func(k string, v []byte) bool {
		g.m.consume(gasIterNextFlat + gasIterPerByte*uint64(len(k)+len(v)))
		return fn(k, v)
	})
}
