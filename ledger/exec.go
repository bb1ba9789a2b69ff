package ledger

import (
	"fmt"
	"math/bits"
	"runtime/debug"

	"github.com/sparenet/spare/ledger/store"
	"github.com/sparenet/spare/ledger/tx"
)

// execTx runs a decoded, signature-checked transaction against kv in one overlay: fee and nonce first, then every
// message; all or nothing. When a message fails and feeStays is set (FinalizeBlock: the transaction is in a block
// and must pay), the overlay is dropped and only the fee and nonce are applied again; in CheckTx the transaction
// is simply rejected.
//
// A panic while the transaction runs (a broken invariant, or a value over a stored field's bound) fails the
// transaction alone, with CodeInternal: its overlay is dropped, so the state is exactly what it was before it,
// and every validator reaches the same verdict by running the same code. The block goes on; the error carries
// the stack for the operator's log (see Panicked). A transaction cannot halt the chain this way.
//
// blockLeft is the gas the block has left (FinalizeBlock: its gas limit less what the transactions before used):
// a transaction runs with the smaller of its own limit and that, and one that finds less left than its own bytes
// and signature cost is not run at all and pays nothing. Actual work, not declared limits, is what fills a block.
func execTx(c *ctx, t *tx.Tx, feeStays bool, blockLeft uint64) (gasUsed uint64, err error) {
	if err := t.Body.ValidateBasic(c.chainID); err != nil {
		return 0, err
	}
	need := intrinsicGas(t)
	if t.Body.GasLimit < need { // refused as a fee too low is: nothing is charged
		return 0, tx.Errorf(tx.CodeOutOfGas, "gas limit %d below the %d its bytes and signature cost before any message runs", t.Body.GasLimit, need)
	}
	if blockLeft < need {
		return 0, tx.Errorf(tx.CodeOutOfGas, "the block's gas is used up (%d left): send it again for a later block", blockLeft)
	}
	signer := t.Signer()
	o := store.NewOverlay(c.kv)
	meter := &gasMeter{limit: min(t.Body.GasLimit, blockLeft)}
	x := &ctx{kv: o, chainID: c.chainID, height: c.height, timeMs: c.timeMs, params: c.params, proposer: c.proposer, quiet: c.quiet, simulate: c.simulate, seed: c.seed}
	charged := false
	err = guard(func() error {
		// The fee is charged before metering starts, so a transaction that runs out of gas at once still pays.
		if err := x.chargeFee(signer, t); err != nil {
			return err
		}
		charged = true
		x.kv, x.gas = gasKV{o, meter}, meter
		meter.consume(intrinsicGas(t))
		for i, m := range t.Body.Msgs {
			meter.consume(gasPerMsg + prepaidGas(m, x.params))
			if err := x.dispatch(signer, t, m); err != nil {
				if e, ok := err.(*tx.Error); ok {
					return tx.Errorf(e.Code, "msgs[%d] %s: %s", i, m.Type(), e.Msg)
				}
				return err
			}
		}
		return nil
	})
	if err != nil {
		if charged && feeStays {
			f := &ctx{kv: store.NewOverlay(c.kv), chainID: c.chainID, params: c.params, proposer: c.proposer, quiet: c.quiet}
			if ferr := f.chargeFee(signer, t); ferr != nil {
				panic("ledger: fee charged once cannot fail the second time: " + ferr.Error())
			}
			f.kv.(*store.Overlay).Write()
			c.events = append(c.events, f.events...)
		}
		return meter.used, err
	}
	o.Write()
	c.events = append(c.events, x.events...)
	return meter.used, nil
}

// Panicked is the error of a transaction whose execution panicked: CodeInternal, the panic's value, and the
// stack (for the log only: it is not part of the transaction's result).
type Panicked struct {
	Err   *tx.Error
	Stack []byte
}

func (p *Panicked) Error() string { return p.Err.Error() }
func (p *Panicked) Unwrap() error { return p.Err }

// guard runs f, turning a panic into a *Panicked error.
func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if oog, ok := r.(outOfGas); ok {
				err = tx.Errorf(tx.CodeOutOfGas, "out of gas: used %d of the limit %d; the messages were reverted and the fee is paid", oog.used, oog.limit)
				return
			}
			err = &Panicked{Err: tx.Errorf(tx.CodeInternal, "reverted: executing it hit a broken ledger invariant (%v); the state is as before it", r), Stack: debug.Stack()}
		}
	}()
	return f()
}

// stageError names where a block's execution stopped.
func stageError(height int64, stage string, r any) error {
	return fmt.Errorf("ledger: height %d: %s panicked: %v: this validator stops rather than commit a state it could not compute; the stack is in its log", height, stage, r)
}

// intrinsicGas is what a transaction costs before any message runs: its bytes and its signature.
func intrinsicGas(t *tx.Tx) uint64 { return intrinsicGasOf(len(t.Raw)) }

func intrinsicGasOf(size int) uint64 { return gasTxByte*uint64(size) + gasSigVerify }

// FeeFor is the least fee a transaction with this gas limit may pay at a gas price in uspr per million gas (the
// chain's params.min_gas_price, or a node's own): the gas at that price, rounded up, and at least params.min_fee.
func FeeFor(p *Params, gasLimit, pricePerMgas uint64) uint64 {
	hi, lo := bits.Mul64(gasLimit, pricePerMgas)
	if hi >= 1_000_000 {
		return ^uint64(0)
	}
	q, r := bits.Div64(hi, lo, 1_000_000)
	if r != 0 {
		q++
	}
	return max(q, p.MinFee)
}

func (c *ctx) chargeFee(signer tx.Address, t *tx.Tx) error {
	acc := c.account(signer)
	if t.Body.Nonce != acc.Nonce && !c.simulate { // a simulation measures gas: the nonce changes none
		return tx.Errorf(tx.CodeBadNonce, "nonce %d, account %s expects %d", t.Body.Nonce, signer, acc.Nonce)
	}
	if need := FeeFor(c.params, t.Body.GasLimit, c.params.MinGasPrice); t.Body.Fee < need && !c.simulate {
		return tx.Errorf(tx.CodeFeeTooLow, "fee %s below %s: the minimum %s, or gas limit %d at the chain's gas price of %d uspr per million gas",
			FormatSPR(t.Body.Fee), FormatSPR(need), FormatSPR(c.params.MinFee), t.Body.GasLimit, c.params.MinGasPrice)
	}
	if acc.Balance < t.Body.Fee {
		return tx.Errorf(tx.CodeInsufficientFunds, "%s has %s, the fee is %s", signer, FormatSPR(acc.Balance), FormatSPR(t.Body.Fee))
	}
	acc.Balance -= t.Body.Fee
	acc.Nonce++
	c.setAccount(acc)
	if t.Body.Fee == 0 {
		return nil
	}
	if c.proposer.IsZero() {
		// CheckTx: nobody is paid yet; the fee simply leaves the balance.
		c.move(inBalances, inPool, t.Body.Fee)
		return nil
	}
	prop := c.account(c.proposer) // balance to balance: the supply record does not change
	prop.Balance += t.Body.Fee    // cannot overflow: bounded by the supply
	c.setAccount(prop)
	c.emit("fee.paid", "from", signer, "to", c.proposer, "amount", t.Body.Fee)
	return nil
}

func (c *ctx) dispatch(signer tx.Address, t *tx.Tx, m tx.Msg) error {
	switch m := m.(type) {
	case *tx.Send:
		return c.send(signer, m)
	case *tx.RegisterProvider:
		return c.registerProvider(signer, t.Body.PubKey, m)
	case *tx.UpdateProvider:
		return c.updateProvider(signer, m)
	case *tx.Bond:
		return c.bond(signer, m)
	case *tx.Unbond:
		return c.unbond(signer, m)
	case *tx.CreateOrder:
		return c.createOrder(signer, m)
	case *tx.CreateReplicatedOrder:
		return c.createReplicatedOrder(signer, m)
	case *tx.CreateClusterOrder:
		return c.createClusterOrder(signer, m)
	case *tx.PublishLatency:
		return c.publishLatency(signer, m)
	case *tx.CancelOrder:
		return c.cancelOrder(signer, m)
	case *tx.PlaceBid:
		return c.placeBid(signer, m)
	case *tx.WithdrawBid:
		return c.withdrawBid(signer, m)
	case *tx.AcceptBid:
		return c.acceptBid(signer, m)
	case *tx.LeaseStarted:
		return c.leaseStarted(signer, m)
	case *tx.CloseLease:
		return c.closeLease(signer, m)
	case *tx.CompleteLease:
		return c.completeLease(signer, m)
	case *tx.CommitResult:
		return c.commitResult(signer, m)
	case *tx.RevealResult:
		return c.revealResult(signer, m)
	case *tx.TopUp:
		return c.topUp(signer, m)
	case *tx.ExtendLease:
		return c.extendLease(signer, m)
	case *tx.ManifestDelivered:
		return c.manifestDelivered(signer, m)
	case *tx.Withdraw:
		return c.withdraw(signer, m)
	case *tx.Attest:
		return c.attest(signer, m)
	case *tx.Unjail:
		return c.unjail(signer)
	case *tx.AnnounceRestart:
		return c.announceRestart(signer)
	case *tx.AttestHardware:
		return c.attestHardware(signer, m)
	}
	return tx.Errorf(tx.CodeUnknownMsgType, "message type %s has no handler", m.Type())
}

// endBlock runs the ledger's own work for a block, after its transactions, in a fixed order. The work is metered
// in gas like a transaction's and bounded: left is what the block's transactions left of its gas limit, and
// each sweep takes an equal share of it plus endBlockFloor's, so that due work always advances even in a full
// block. A sweep that reaches its share stops; what it leaves stays in its index, keyed by when it fell due,
// and goes first in the next block. Everything done late is done as of when it was due (a lease is paid to its
// end, not to the block that closes it), and what a due entry guards is checked by height in the transactions
// too (no bid on an expired order, no start after the deadline, no reveal after the phase), so a backlog
// changes when the ledger's work is recorded, never what it decides.
func (c *ctx) endBlock(left uint64) {
	sweeps := []func(){
		c.closeAuctions,         // bids placed in this block take part in auctions closing in it
		c.expireOrders,          // then orders still unmatched at their expiry are refunded
		c.expireUnstartedLeases, // leases that never started are refunded
		c.endDepletedLeases,     // active leases whose time or deposit ran out are closed
		c.closeDueReveals,       // replicated orders' reveal phases that end in this block close, and are judged
		c.matureUnbondings,      // stake whose unbonding period ended returns to its owner
		c.pruneRetired,          // orders finished params.retention_blocks ago leave the state, with all made for them
	}
	kv := c.kv
	for i, sweep := range sweeps {
		meter := &gasMeter{limit: ^uint64(0)} // never stops a sweep midway: the sweep checks its share itself
		c.kv, c.gas = gasKV{kv, meter}, meter
		c.budget = endBlockFloor/uint64(len(sweeps)) + left/uint64(len(sweeps)-i)
		sweep()
		left -= min(left, meter.used)
	}
	c.kv, c.gas, c.budget = kv, nil, 0
	c.epochWork() // audit sets at an epoch's start, verdicts (close, slash, jail) at its end: bounded by the stake
}

// endBlockFloor is the least gas the end-of-block sweeps share in a block whose transactions used all its gas
// (≈ 5 ms at the gas calibration; BenchmarkWorstBlock measures a full block with a backlog behind it).
const endBlockFloor = 20_000_000

// endSweepBatch bounds the due entries a sweep reads from its index in one block.
const endSweepBatch = 1024

// due reports whether an end-of-block sweep may take on its n-th due entry: it has read fewer than endSweepBatch
// and its work so far is under its share of the block's gas. What it leaves waits for the next block.
func (c *ctx) due(n int) bool { return n < endSweepBatch && (c.gas == nil || c.gas.used < c.budget) }
