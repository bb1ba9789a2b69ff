package kernel

import (
	"fmt"
	"slices"
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
	// The values are written into one buffer and cut from one string: an event costs two allocations for its
	// values, not one each (the liveness tally emits one per provider).
	n := len(kv) / 2
	var ends [16]int
	cut := ends[:0]
	if n > len(ends) {
		cut = make([]int, 0, n)
	}
	buf := make([]byte, 0, 24*n)
	for i := 0; i+1 < len(kv); i += 2 {
		switch v := kv[i+1].(type) {
		case string:
			buf = append(buf, v...)
		case uint64:
			buf = strconv.AppendUint(buf, v, 10)
		case int64:
			buf = strconv.AppendInt(buf, v, 10)
		case uint32:
			buf = strconv.AppendUint(buf, uint64(v), 10)
		case int:
			buf = strconv.AppendInt(buf, int64(v), 10)
		case tx.Address:
			buf = v.AppendBech32(buf)
		case fmt.Stringer:
			buf = append(buf, v.String()...)
		default:
			panic(fmt.Sprintf("ledger: event %s attribute %s has unformattable type %T", typ, kv[i], v))
		}
		cut = append(cut, len(buf))
	}
	vals := string(buf)
	ev := abci.Event{Type: typ, Attributes: make([]abci.EventAttribute, n)}
	from := 0
	for j := range n {
		key := kv[2*j].(string)
		ev.Attributes[j] = abci.EventAttribute{Key: key, Value: vals[from:cut[j]], Index: indexedAttrs[key]}
		from = cut[j]
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

// EventRows builds many events of one type and one set of attribute keys — the liveness tally's, one per provider
// judged — with a handful of allocations in all: their values go into one buffer, their attributes into one
// array, and Flush appends them to the block's events in the order they were added. Each row is charged the gas
// of an Emit of it.
type EventRows struct {
	typ  string
	keys []string
	buf  []byte
	cuts []int
}

// Rows starts a batch of about n events of type typ with the given attribute keys.
func (c *Ctx) Rows(n int, typ string, keys ...string) *EventRows {
	return &EventRows{typ: typ, keys: keys, buf: make([]byte, 0, n*16*len(keys)), cuts: make([]int, 0, n*len(keys))}
}

// Row starts an event: its values follow, one per key, with Addr, Uint and Str.
func (r *EventRows) Row(c *Ctx) *EventRows {
	c.Gas.Consume(gasEventFlat + gasEventAttr*uint64(len(r.keys)))
	return r
}

func (r *EventRows) cut() *EventRows { r.cuts = append(r.cuts, len(r.buf)); return r }

// Addr appends an address value.
func (r *EventRows) Addr(a tx.Address) *EventRows { r.buf = a.AppendBech32(r.buf); return r.cut() }

// Uint appends a decimal value.
func (r *EventRows) Uint(v uint64) *EventRows {
	r.buf = strconv.AppendUint(r.buf, v, 10)
	return r.cut()
}

// Str appends a string value.
func (r *EventRows) Str(s string) *EventRows { r.buf = append(r.buf, s...); return r.cut() }

// Flush appends the rows' events to the block's (none in CheckTx's quiet runs).
func (r *EventRows) Flush(c *Ctx) {
	n := len(r.keys)
	if c.Quiet || n == 0 || len(r.cuts)%n != 0 {
		if !c.Quiet && n > 0 && len(r.cuts)%n != 0 {
			panic(fmt.Sprintf("ledger: event rows of %s: %d values for %d keys", r.typ, len(r.cuts), n))
		}
		return
	}
	vals := string(r.buf)
	attrs := make([]abci.EventAttribute, len(r.cuts))
	from := 0
	for i, end := range r.cuts {
		key := r.keys[i%n]
		attrs[i] = abci.EventAttribute{Key: key, Value: vals[from:end], Index: indexedAttrs[key]}
		from = end
	}
	c.Events = slices.Grow(c.Events, len(attrs)/n)
	for i := 0; i < len(attrs); i += n {
		c.Events = append(c.Events, abci.Event{Type: r.typ, Attributes: attrs[i : i+n : i+n]})
	}
	r.buf, r.cuts = nil, nil
}
