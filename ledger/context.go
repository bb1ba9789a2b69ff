package ledger

import (
	"fmt"
	"math/bits"
	"strconv"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/store"
	"github.com/sparenet/spare/ledger/tx"
)

// ctx is what a message handler sees: the state it may change, the block it runs in, the events it emits. All
// state access goes through the typed helpers below so that every balance movement also updates the supply
// record and emits an event.
type ctx struct {
	kv       store.KV
	chainID  string
	height   int64
	timeMs   uint64 // block time (BFT time), never the wall clock
	params   *Params
	proposer tx.Address // receives fees; zero in CheckTx
	events   []abci.Event
	quiet    bool      // CheckTx: events would be thrown away, so none are built
	gas      *gasMeter // the running transaction's or end-of-block sweep's; nil in CheckTx's checks before metering
	simulate bool      // a simulation: the fee need not cover the gas limit (the client does not know it yet)
	seed     [32]byte  // the block's hash (FinalizeBlock only): the seed of the ledger's draws (see draw)
	budget   uint64    // the running end-of-block sweep's share of the block's gas (see endBlock)
}

// indexedAttrs are the event attributes CometBFT's tx indexer keeps, so transactions can be searched by the
// objects they touch. Amounts and other values are not indexed: every indexed attribute costs a write to the
// index database per transaction.
var indexedAttrs = map[string]bool{"order_id": true, "bid_id": true, "lease_id": true, "provider": true, "tenant": true}

// emit records an event from key/value pairs. Values are formatted here, and only when events are kept:
// strings as they are, integers in decimal, anything else (addresses, states) by its String method.
func (c *ctx) emit(typ string, kv ...any) {
	c.gas.consume(gasEventFlat + gasEventAttr*uint64(len(kv)/2)) // charged in CheckTx too: gas is the same everywhere
	if c.quiet {
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
	c.events = append(c.events, ev)
}

// mustDecode turns a decoding failure of stored state into a panic: stored bytes were written by this code, so
// failing to read them is a broken invariant, not bad input.
func mustDecode[T any](v T, err error) T {
	if err != nil {
		panic("ledger: corrupt state: " + err.Error())
	}
	return v
}

// Sequences.

func (c *ctx) nextID(name string) uint64 {
	var n uint64
	if b, ok := c.kv.Get(keySeq + name); ok {
		n = unbe64(string(b))
	}
	n++
	c.kv.Set(keySeq+name, []byte(be64(n)))
	return n
}

// Params and supply.

func loadParams(kv store.KV) *Params {
	b, ok := kv.Get(keyParams)
	if !ok {
		p := DefaultParams()
		return &p
	}
	return mustDecode(decParams(b))
}

func (c *ctx) supply() *Supply {
	b, ok := c.kv.Get(keySupply)
	if !ok {
		return &Supply{}
	}
	return mustDecode(decSupply(b))
}

func (c *ctx) setSupply(s *Supply) { c.kv.Set(keySupply, encSupply(s)) }

// Accounts.

func (c *ctx) account(a tx.Address) *Account {
	b, ok := c.kv.Get(addrKey(pAccount, a))
	if !ok {
		return &Account{Address: a}
	}
	return mustDecode(decAccount(a, b))
}

func (c *ctx) setAccount(a *Account) { c.kv.Set(addrKey(pAccount, a.Address), encAccount(a)) }

// Balance movements. Each keeps Supply in step: tokens move between balances and one of the holding places
// (escrow, stake, unbonding, pool), or between two balances.

type holding int

const (
	inBalances holding = iota
	inEscrow
	inStaked
	inUnbonding
	inPool
)

func (s *Supply) field(h holding) *uint64 {
	switch h {
	case inEscrow:
		return &s.Escrow
	case inStaked:
		return &s.Staked
	case inUnbonding:
		return &s.Unbonding
	case inPool:
		return &s.Pool
	}
	return &s.Balances
}

// move shifts amount between two holdings in the supply record (not touching any account).
func (c *ctx) move(from, to holding, amount uint64) {
	if amount == 0 || from == to {
		return
	}
	s := c.supply()
	f, t := s.field(from), s.field(to)
	if *f < amount {
		panic("ledger: supply underflow")
	}
	*f -= amount
	*t += amount
	c.setSupply(s)
}

// debit takes amount from a's balance into holding h.
func (c *ctx) debit(a tx.Address, amount uint64, to holding) error {
	acc := c.account(a)
	if acc.Balance < amount {
		return tx.Errorf(tx.CodeInsufficientFunds, "%s has %s, needs %s", a, FormatSPR(acc.Balance), FormatSPR(amount))
	}
	acc.Balance -= amount
	c.setAccount(acc)
	c.move(inBalances, to, amount)
	return nil
}

// credit gives amount to a's balance from holding h.
func (c *ctx) credit(a tx.Address, amount uint64, from holding) error {
	if amount == 0 {
		return nil
	}
	acc := c.account(a)
	if acc.Balance+amount < acc.Balance {
		return tx.Errorf(tx.CodeOverflow, "balance of %s would overflow", a)
	}
	acc.Balance += amount
	c.setAccount(acc)
	c.move(from, inBalances, amount)
	return nil
}

func addChecked(field string, a, b uint64) (uint64, error) {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return 0, tx.Errorf(tx.CodeOverflow, "%s: %d + %d overflows 64 bits", field, a, b)
	}
	return s, nil
}

func mulChecked(field string, a, b uint64) (uint64, error) {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return 0, tx.Errorf(tx.CodeOverflow, "%s: %d x %d overflows 64 bits", field, a, b)
	}
	return lo, nil
}

// satAdd is a+b, saturating at MaxUint64.
func satAdd(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return ^uint64(0)
	}
	return s
}

// mulDiv returns floor(a*b/d) exactly (128-bit intermediate), saturating at MaxUint64.
func mulDiv(a, b, d uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= d {
		return ^uint64(0)
	}
	q, _ := bits.Div64(hi, lo, d)
	return q
}
