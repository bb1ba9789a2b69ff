package kernel

import (
	"fmt"
	"strconv"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/store"
	"github.com/sparenet/spare/ledger/tx"
)

// Ctx is what a module's handler sees: the state it may change, the block it runs in, the events it emits, the
// hooks it runs. State goes through its methods (objects.go, holdings.go) so that every balance movement also
// updates the supply record and emits an event, and every object stored in a final state tells retention.
type Ctx struct {
	KV       store.KV
	ChainID  string
	Height   int64
	TimeMs   uint64 // block time (BFT time), never the wall clock
	Params   *api.Params
	Proposer tx.Address // receives fees; zero in CheckTx
	Events   []abci.Event
	Quiet    bool      // CheckTx: events would be thrown away, so none are built
	Gas      *GasMeter // the running transaction's or end-of-block sweep's; nil in CheckTx's checks before metering
	Simulate bool      // a simulation: the fee need not cover the gas limit (the client does not know it yet)
	Seed     [32]byte  // the block's hash (FinalizeBlock only): the seed of the ledger's draws (see market's draw)
	Budget   uint64    // the running end-of-block sweep's share of the block's gas (see the app's endBlock)
	Hooks    *Hooks    // the app's reactions across modules; nil only where nothing is written (queries): a hook run without them panics
}

// indexedAttrs are the event attributes CometBFT's tx indexer keeps, so transactions can be searched by the
// objects they touch. Amounts and other values are not indexed: every indexed attribute costs a write to the
// index database per transaction.
var indexedAttrs = map[string]bool{api.AttrOrderID: true, api.AttrBidID: true, api.AttrLeaseID: true, api.AttrProvider: true, api.AttrTenant: true}

// Emit records an event from key/value pairs. Values are formatted here, and only when events are kept:
// strings as they are, integers in decimal, anything else (addresses, states) by its String method.
func (c *Ctx) Emit(typ string, kv ...any) {
	c.Gas.Consume(gasEventFlat + gasEventAttr*uint64(len(kv)/2)) // charged in CheckTx too: gas is the same everywhere
	if c.Quiet {
		return
	}
	ev := abci.Event{Type: typ, Attributes: make([]abci.EventAttribute, 0, len(kv)/2)}
	for i := 0; i+1 < len(kv); i += 2 {
		key := kv[i].(string)
		var val string
		switch v := kv[i+1].(type) {
		case string:
			val = v
		case uint64:
			val = strconv.FormatUint(v, 10)
		case int64:
			val = strconv.FormatInt(v, 10)
		case uint32:
			val = strconv.FormatUint(uint64(v), 10)
		case int:
			val = strconv.Itoa(v)
		case fmt.Stringer:
			val = v.String()
		default:
			panic(fmt.Sprintf("ledger: event %s attribute %s has unformattable type %T", typ, key, v))
		}
		ev.Attributes = append(ev.Attributes, abci.EventAttribute{Key: key, Value: val, Index: indexedAttrs[key]})
	}
	c.Events = append(c.Events, ev)
}

// MustDecode turns a decoding failure of stored state into a panic: stored bytes were written by this code, so
// failing to read them is a broken invariant, not bad input.
func MustDecode[T any](v T, err error) T {
	if err != nil {
		panic("ledger: corrupt state: " + err.Error())
	}
	return v
}

// Must panics on an error that a consistent state cannot produce, as the ledger does for every broken invariant:
// a validator stops rather than commit a state that differs from the others'.
func (c *Ctx) Must(err error) {
	if err != nil {
		panic("ledger: " + err.Error())
	}
}

// Sequences.

func (c *Ctx) NextID(name string) uint64 {
	var n uint64
	if b, ok := c.KV.Get(schema.KeySeq + name); ok {
		n = schema.UnBE64(string(b))
	}
	n++
	c.KV.Set(schema.KeySeq+name, []byte(schema.BE64(n)))
	return n
}

// Params and supply.

func LoadParams(kv store.KV) *api.Params {
	b, ok := kv.Get(schema.KeyParams)
	if !ok {
		p := api.DefaultParams()
		return &p
	}
	return MustDecode(schema.DecParams(b))
}

// endSweepBatch bounds the due entries a sweep reads from its index in one block.
const endSweepBatch = 1024

// Due reports whether an end-of-block sweep may take on its n-th due entry: it has read fewer than endSweepBatch
// and its work so far is under its share of the block's gas. What it leaves waits for the next block.
func (c *Ctx) Due(n int) bool { return n < endSweepBatch && (c.Gas == nil || c.Gas.Used < c.Budget) }

// FirstKey returns the first key with the prefix, if any.
func (c *Ctx) FirstKey(prefix string) (string, bool) {
	var first string
	found := false
	c.KV.Iterate(prefix, schema.PrefixEnd(prefix), func(k string, _ []byte) bool {
		first, found = k, true
		return false
	})
	return first, found
}

// gone is the error for an object not in the state: pruned if its id was ever given out (ids are sequential and
// only retention deletes objects), else not found. page is where the explorer shows its history.
func (c *Ctx) gone(kind, seq string, id uint64, page string) error {
	if c.Params != nil && c.Params.RetentionBlocks > 0 && id != 0 {
		if b, ok := c.KV.Get(schema.KeySeq + seq); ok && id <= schema.UnBE64(string(b)) {
			return tx.Errorf(tx.CodeNotFound, "%s %d was pruned from the ledger's state: it finished at block %d or before (params.retention_blocks %d); its history is in the explorer: GET %s",
				kind, id, max(0, c.Height-int64(c.Params.RetentionBlocks)), c.Params.RetentionBlocks, page)
		}
	}
	return tx.Errorf(tx.CodeNotFound, "%s %d not found", kind, id)
}

// SweepDue is the deadline sweep the end-of-block work runs over an index of deadlines (keys: prefix, the
// deadline as 8 big-endian bytes, the id as 8 more): it visits the ids whose deadline is at most upTo, earliest
// first, within the running sweep's share of the block's gas (see Due). What it leaves stays in the index, and
// goes first in the next block; each visit removes its entry from the index or moves the object on (so that it
// is not found due again).
func (c *Ctx) SweepDue(prefix string, upTo uint64, visit func(id uint64)) {
	var due []uint64
	c.KV.Iterate(prefix, prefix+schema.BE64(upTo+1), func(k string, _ []byte) bool {
		due = append(due, schema.UnBE64(k[len(prefix)+8:]))
		return c.Due(len(due))
	})
	for n, id := range due {
		if !c.Due(n) {
			return
		}
		visit(id)
	}
}
