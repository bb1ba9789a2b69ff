package ledger

import (
	"github.com/sparenet/spare/ledger/store"
)

// Gas. Every transaction is metered as it runs: each read, write, deleted key and iteration step on the state,
// the bytes it reads and writes, the signatures it verifies and its own size. Bytes a transaction adds to the
// state cost far more than compute, since every node keeps them for as long as they live: a new key costs
// gasNewKey plus gasNewByte per byte, against gasWriteFlat plus gasWritePerByte to overwrite one. Every kind of work is
// priced at 4 gas or more per nanosecond it takes a validator on a 2-core machine, so that a block at
// DefaultBlockMaxGas runs in at most half of a 100 ms block time (BenchmarkWorstBlock, BENCHMARKS.md); new state
// is priced far above that, for what it costs every node afterwards rather than now. Not yet so priced: a step of
// a cluster's placement search (≈ 400 ns for 50 gas; see issue 12's notes).
const (
	gasTxByte       = 10      // per byte of the raw transaction (gossip, decoding, storage in blocks)
	gasSigVerify    = 100_000 // an ed25519 verification (the transaction's, a receipt's), decoding included
	gasPerMsg       = 5_000   // dispatching a message, encoding what it stores, building its events
	gasReadFlat     = 1_000
	gasReadPerByte  = 3
	gasWriteFlat    = 10_000
	gasWritePerByte = 30
	gasNewKey       = 12_000 // a key that did not exist
	gasNewByte      = 100    // per byte of a new key and its value: 33 times a rewritten byte
	gasDeleteFlat   = 8_000
	gasIterFlat     = 1_000 // starting an iteration
	gasIterNextFlat = 300   // each entry visited
	gasIterPerByte  = 3
	gasSearchStep   = 50    // one step of a cluster's placement search
	gasEventFlat    = 4_000 // an event (built and kept in the block's results even if the state is untouched)
	gasEventAttr    = 1_000 // each of its attributes
)

// DefaultBlockMaxGas is the block gas limit `spare init`, `spare testnet` and `spare dev` write into genesis
// (consensus params block.max_gas). BenchmarkWorstBlock measures the dearest block an attacker can build at it.
const DefaultBlockMaxGas = 200_000_000

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
