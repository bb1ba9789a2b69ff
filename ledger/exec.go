package ledger

import (
	"fmt"
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
func execTx(c *ctx, t *tx.Tx, feeStays bool) (gasUsed uint64, err error) {
	if err := t.Body.ValidateBasic(c.chainID); err != nil {
		return 0, err
	}
	signer := t.Signer()
	o := store.NewOverlay(c.kv)
	meter := &gasMeter{limit: ^uint64(0)}
	x := &ctx{kv: gasKV{o, meter}, chainID: c.chainID, height: c.height, timeMs: c.timeMs, params: c.params, proposer: c.proposer, quiet: c.quiet, gas: meter}
	charged := false
	err = guard(func() error {
		meter.consume(gasTxByte*uint64(len(t.Raw)) + gasSigVerify)
		if err := x.chargeFee(signer, t); err != nil {
			return err
		}
		charged = true
		for i, m := range t.Body.Msgs {
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

func (c *ctx) chargeFee(signer tx.Address, t *tx.Tx) error {
	acc := c.account(signer)
	if t.Body.Nonce != acc.Nonce {
		return tx.Errorf(tx.CodeBadNonce, "nonce %d, account %s expects %d", t.Body.Nonce, signer, acc.Nonce)
	}
	if t.Body.Fee < c.params.MinFee {
		return tx.Errorf(tx.CodeFeeTooLow, "fee %d uspr below the minimum %d", t.Body.Fee, c.params.MinFee)
	}
	if acc.Balance < t.Body.Fee {
		return tx.Errorf(tx.CodeInsufficientFunds, "%s has %d uspr, fee is %d", signer, acc.Balance, t.Body.Fee)
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
	case *tx.TopUp:
		return c.topUp(signer, m)
	case *tx.Withdraw:
		return c.withdraw(signer, m)
	case *tx.Attest:
		return c.attest(signer, m)
	case *tx.Unjail:
		return c.unjail(signer)
	case *tx.AttestHardware:
		return c.attestHardware(signer, m)
	}
	return tx.Errorf(tx.CodeUnknownMsgType, "message type %s has no handler", m.Type())
}

// endBlock runs the ledger's own work for a block, after its transactions, in a fixed order.
func (c *ctx) endBlock() {
	c.closeAuctions()         // bids placed in this block take part in auctions closing in it
	c.expireOrders()          // then orders still unmatched at their expiry are refunded
	c.expireUnstartedLeases() // leases that never started are refunded
	c.endDepletedLeases()     // active leases whose time or deposit ran out are closed
	c.matureUnbondings()      // stake whose unbonding period ended returns to its owner
	c.epochWork()             // audit sets at an epoch's start, verdicts (close, slash, jail) at its end
}
