package client

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// DefaultGasAdjustment is the margin on a simulated gas estimate: state can change between the simulation and the
// block (another bid on the same order, say), and a transaction that runs out of gas still pays its fee.
const DefaultGasAdjustment = 1.3

// simulationGas is the gas limit a transaction is simulated with when the chain sets no block gas limit.
const simulationGas = 1 << 40

// maxGapWaits bounds how many times (one poll interval each) a submission waits for an earlier transaction of
// the same sender to close a nonce gap before reusing the nonce.
const maxGapWaits = 100

// inflightWindow is how many recent transactions a Sender keeps to resend if they were dropped.
const inflightWindow = 1024

// DefaultTxTimeout bounds Send when the context has no deadline.
const DefaultTxTimeout = 2 * time.Minute

// Signer is a key that signs transactions (the keyring's Signer satisfies it).
type Signer interface {
	Address() tx.Address
	PubKey() ed25519.PublicKey
	Sign(msg []byte) []byte
}

// Result is a transaction included in a block.
type Result struct {
	Hash      string       `json:"hash"`
	Height    int64        `json:"height"`
	Code      tx.Code      `json:"code"`
	Log       string       `json:"log,omitempty"`
	Fee       uint64       `json:"fee"`        // uspr paid, whatever the outcome
	GasWanted int64        `json:"gas_wanted"` // the transaction's gas limit
	GasUsed   int64        `json:"gas_used"`
	Events    []abci.Event `json:"events,omitempty"`
}

// Attr returns the first value of attribute key on an event of type typ.
func (r *Result) Attr(typ, key string) (string, bool) {
	for _, e := range r.Events {
		if e.Type != typ {
			continue
		}
		for _, a := range e.Attributes {
			if a.Key == key {
				return a.Value, true
			}
		}
	}
	return "", false
}

// Event returns the first event of type typ, its attributes by key, as a follower sees it (ok false: there is
// none). Read it through the ledger's typed parsers (api.Parse*), which refuse a missing or malformed attribute.
func (r *Result) Event(typ string) (Event, bool) {
	for _, e := range r.Events {
		if e.Type == typ {
			return r.event(e), true
		}
	}
	return Event{}, false
}

// LedgerEvents are the transaction's events, each with its attributes by key, as a follower sees them.
func (r *Result) LedgerEvents() []Event {
	out := make([]Event, len(r.Events))
	for i, e := range r.Events {
		out[i] = r.event(e)
	}
	return out
}

func (r *Result) event(e abci.Event) Event {
	ev := Event{Type: e.Type, Attrs: make(map[string]string, len(e.Attributes)), TxHash: r.Hash, Code: uint32(r.Code)}
	for _, a := range e.Attributes {
		ev.Attrs[a.Key] = a.Value
	}
	return ev
}

// Sender signs and submits transactions for one key, tracking its nonce. It is safe for concurrent use: nonces
// are handed out in order and each call waits for its own transaction's inclusion.
type Sender struct {
	c      *Client
	signer Signer
	// Rebroadcast is how many new blocks to wait for a missing transaction before sending it again.
	Rebroadcast int64
	// Fee overrides the fee the gas asks for when larger.
	Fee uint64
	// Gas is each transaction's gas limit; 0 estimates it by simulating the transaction first (the Cosmos CLI's
	// --gas auto) and multiplying what it used by GasAdjustment.
	Gas           uint64
	GasAdjustment float64
	// GasPrice is the price offered, in uspr per million gas; 0 offers the chain's floor (params.min_gas_price).
	GasPrice uint64
	// Confirm, when set, is asked before each transaction is signed, with its fee and gas limit (estimated, with
	// --gas auto): an error stops it there, and Send returns that error; nothing is signed or sent.
	Confirm func(fee, gas uint64, msgs []tx.Msg) error

	mu       sync.Mutex
	nonce    uint64
	known    bool
	chainID  string
	inflight map[uint64][]byte // submitted, not known to be included: nonce -> tx
}

// NewSender returns a Sender for signer.
func (c *Client) NewSender(signer Signer) *Sender {
	return &Sender{c: c, signer: signer, Rebroadcast: 3, GasAdjustment: DefaultGasAdjustment, inflight: map[uint64][]byte{}}
}

// Address is the sender's account.
func (s *Sender) Address() tx.Address { return s.signer.Address() }

// Client is the client the sender submits through.
func (s *Sender) Client() *Client { return s.c }

// Send signs msgs into one transaction, submits it and waits until it is in a block. A transaction the node
// acknowledged but dropped is sent again; the nonce makes a second inclusion impossible. A rejection or a failed
// execution is returned as a *tx.Error carrying the ledger's code.
func (s *Sender) Send(ctx context.Context, msgs ...tx.Msg) (*Result, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTxTimeout)
		defer cancel()
	}
	raw, err := s.submit(ctx, msgs, 1)
	if err != nil {
		return nil, err
	}
	res, err := s.c.WaitTx(ctx, raw, s.Rebroadcast)
	if s.Gas == 0 && res != nil && IsCode(err, tx.CodeOutOfGas) {
		// The state moved between the simulation and the block — a bid that now closes a cluster's auction and
		// runs its search, say: the messages were reverted and the fee paid. Send them once more, simulated again
		// with twice the margin; the result counts both fees.
		paid := res.Fee
		if raw, err = s.submit(ctx, msgs, 2); err != nil {
			return nil, err
		}
		res, err = s.c.WaitTx(ctx, raw, s.Rebroadcast)
		if res != nil {
			res.Fee += paid
		}
	}
	return res, err
}

// Submit signs and submits without waiting; the returned bytes can be passed to Client.WaitTx.
func (s *Sender) Submit(ctx context.Context, msgs ...tx.Msg) ([]byte, error) {
	return s.submit(ctx, msgs, 1)
}

// submit signs and broadcasts msgs; margin multiplies the gas adjustment of an estimated gas limit.
func (s *Sender) submit(ctx context.Context, msgs []tx.Msg, margin float64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.chainID == "" {
		st, err := s.c.NodeStatus(ctx)
		if err != nil {
			return nil, err
		}
		s.chainID = st.NodeInfo.Network
	}
	params, err := s.c.Params(ctx)
	if err != nil {
		return nil, err
	}
	price := max(s.GasPrice, params.MinGasPrice)
	if !s.known {
		acc, err := s.c.PendingAccount(ctx, s.signer.Address())
		if err != nil {
			return nil, err
		}
		s.nonce, s.known = acc.Nonce, true
	}
	for attempt := 0; ; attempt++ {
		b := tx.Body{ChainID: s.chainID, PubKey: s.signer.PubKey(), Nonce: s.nonce, Msgs: msgs}
		if err := b.ValidateBasic(s.chainID); err != nil {
			return nil, err // what the node would answer, said before signing
		}
		gas, err := s.gasFor(ctx, b, params, price, margin)
		if err != nil {
			return nil, err
		}
		b.GasLimit, b.Fee = gas, max(s.Fee, api.FeeFor(params, gas, price))
		if s.Confirm != nil && attempt == 0 {
			if err := s.Confirm(b.Fee, b.GasLimit, msgs); err != nil {
				return nil, err
			}
		}
		body, err := tx.EncodeBodyChecked(b)
		if err != nil {
			return nil, tx.Errorf(tx.CodeInvalidMsg, "%v", err)
		}
		raw := tx.Assemble(body, s.signer.Sign(body))
		res, err := s.c.rpc.BroadcastTxSync(ctx, raw)
		if err != nil {
			return nil, fmt.Errorf("broadcast to %s: %w", s.c.url, err)
		}
		if res.Code == 0 {
			s.inflight[s.nonce] = raw
			delete(s.inflight, s.nonce-inflightWindow) // long since included or lost; bounds the map
			s.nonce++
			return raw, nil
		}
		if tx.Code(res.Code) != tx.CodeBadNonce {
			return nil, rejection(res.Code, res.Codespace, res.Log)
		}
		if err := s.resync(ctx, attempt >= maxGapWaits); err != nil {
			return nil, err
		}
	}
}

// gasFor is the gas limit for body: the Sender's Gas, or a simulation's figure with the adjustment — and never
// less than the gas the min_fee already pays for at this price, since declaring it costs nothing more and covers
// a state that changed between the simulation and the block (a bid that closes an auction, say). A simulation
// that fails is the answer: the node would refuse the transaction the same way.
func (s *Sender) gasFor(ctx context.Context, b tx.Body, params *api.Params, price uint64, margin float64) (uint64, error) {
	if s.Gas > 0 {
		return s.Gas, nil
	}
	b.GasLimit = simulationGas
	if max, err := s.c.MaxGas(ctx); err != nil {
		return 0, err
	} else if max > 0 {
		b.GasLimit = max
	}
	body, err := tx.EncodeBodyChecked(b)
	if err != nil {
		return 0, tx.Errorf(tx.CodeInvalidMsg, "%v", err)
	}
	sim, err := s.c.Simulate(ctx, tx.Assemble(body, s.signer.Sign(body)))
	if err != nil {
		return 0, err
	}
	if sim.Code != 0 {
		return 0, rejection(sim.Code, "spare", sim.Log)
	}
	adj := s.GasAdjustment
	if adj < 1 {
		adj = DefaultGasAdjustment
	}
	gas := uint64(float64(sim.GasUsed)*adj*margin) + 1
	if price > 0 {
		gas = max(gas, params.MinFee/price*1_000_000+(params.MinFee%price)*1_000_000/price)
	}
	return min(gas, b.GasLimit), nil
}

// resync handles a nonce the node refused. If the node expects a later nonce, another process used the key: jump
// to it. If it expects an earlier one, a transaction of ours was acknowledged and then dropped: send the missing
// ones again (their own waiters will see them included) and wait for the gap to close, never handing the same
// nonce to a second transaction.
func (s *Sender) resync(ctx context.Context, giveUp bool) error {
	acc, err := s.c.PendingAccount(ctx, s.signer.Address())
	if err != nil {
		return err
	}
	for n := range s.inflight {
		if n < acc.Nonce {
			delete(s.inflight, n) // included (or superseded): no longer ours to resend
		}
	}
	if acc.Nonce >= s.nonce {
		s.nonce = acc.Nonce
		return nil
	}
	if _, ok := s.inflight[acc.Nonce]; !ok || giveUp {
		// Not ours (e.g. from before a restart), or waited too long for the gap to close: the missing
		// transactions are not coming. Their waiters time out; the nonce serves the next transaction.
		s.reuseFrom(acc.Nonce)
		return nil
	}
	for n := acc.Nonce; n < s.nonce; n++ {
		raw, ok := s.inflight[n]
		if !ok {
			continue
		}
		r, err := s.c.rpc.BroadcastTxSync(ctx, raw) // an error ("already in cache", "mempool full") means wait
		if err == nil && r.Code != 0 && tx.Code(r.Code) != tx.CodeBadNonce {
			// That transaction can never be included any more (e.g. it was dropped at recheck after the state
			// changed): its nonce is free again. Later in-flight transactions depended on it and are dead too.
			s.reuseFrom(acc.Nonce)
			return nil
		}
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("waiting for nonce %d to be used: %w", acc.Nonce, ctx.Err())
	case <-time.After(s.c.poll):
		return nil
	}
}

// reuseFrom forgets the in-flight transactions from nonce n on and hands n out next.
func (s *Sender) reuseFrom(n uint64) {
	for m := range s.inflight {
		if m >= n {
			delete(s.inflight, m)
		}
	}
	s.nonce = n
}

func rejection(code uint32, codespace, log string) error {
	if codespace != "" && codespace != "spare" {
		return fmt.Errorf("rejected by node (%s code %d): %s", codespace, code, log)
	}
	msg := log
	if i := strings.Index(log, "): "); i >= 0 {
		msg = log[i+3:] // the log already starts with the code name
	}
	return &tx.Error{Code: tx.Code(code), Msg: msg}
}

// WaitTx waits until raw is in a block and returns its result. When rebroadcast > 0 and the transaction has not
// appeared after that many new blocks, it is sent again (CometBFT can acknowledge a transaction and still drop
// it when its mempool is full).
func (c *Client) WaitTx(ctx context.Context, raw []byte, rebroadcast int64) (*Result, error) {
	sum := sha256.Sum256(raw)
	hash := strings.ToUpper(hex.EncodeToString(sum[:]))
	var lastSent int64 = -1
	tick := time.NewTicker(c.poll)
	defer tick.Stop()
	for {
		res, err := c.rpc.Tx(ctx, sum[:], false)
		if err == nil {
			r := &Result{Hash: hash, Height: res.Height, Code: tx.Code(res.TxResult.Code), Log: res.TxResult.Log, Events: res.TxResult.Events,
				GasWanted: res.TxResult.GasWanted, GasUsed: res.TxResult.GasUsed}
			if t, err := tx.Decode(raw); err == nil {
				r.Fee = t.Body.Fee
			}
			if r.Code != 0 {
				return r, rejection(res.TxResult.Code, res.TxResult.Codespace, res.TxResult.Log)
			}
			return r, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("tx %s not included: %w", hash, ctx.Err())
		}
		if !isTxNotFound(err) {
			c.dropConns()
		}
		if rebroadcast > 0 {
			if st, err := c.rpc.Status(ctx); err == nil {
				h := st.SyncInfo.LatestBlockHeight
				switch {
				case lastSent < 0:
					lastSent = h
				case h-lastSent >= rebroadcast:
					lastSent = h
					c.log.Warn("transaction missing after blocks, sending again", "hash", hash, "blocks", rebroadcast)
					if r, err := c.rpc.BroadcastTxSync(ctx, raw); err == nil && r.Code != 0 && tx.Code(r.Code) != tx.CodeBadNonce {
						return nil, rejection(r.Code, r.Codespace, r.Log)
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("tx %s not included: %w", hash, ctx.Err())
		case <-tick.C:
		}
	}
}

// IsCode reports whether err carries the ledger code c.
func IsCode(err error, c tx.Code) bool { return errors.Is(err, c) }

// isTxNotFound tells the normal "not yet in a block" answer from a failure to reach the node.
func isTxNotFound(err error) bool { return strings.Contains(err.Error(), "not found") }
