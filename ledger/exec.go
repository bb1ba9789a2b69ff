package ledger

import (
	"fmt"
	"runtime/debug"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
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
func (k *modules) execTx(c *ctx, t *tx.Tx, feeStays bool, blockLeft uint64) (gasUsed uint64, err error) {
	if err := t.Body.ValidateBasic(c.ChainID); err != nil {
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
	o := store.NewOverlay(c.KV)
	meter := &kernel.GasMeter{Limit: min(t.Body.GasLimit, blockLeft)}
	x := &ctx{KV: o, ChainID: c.ChainID, Height: c.Height, TimeMs: c.TimeMs, Params: c.Params, Proposer: c.Proposer, Quiet: c.Quiet, Simulate: c.Simulate, Seed: c.Seed, Hooks: c.Hooks}
	charged := false
	err = guard(func() error {
		// The fee is charged before metering starts, so a transaction that runs out of gas at once still pays.
		if err := k.chargeFee(x, signer, t); err != nil {
			return err
		}
		charged = true
		x.KV, x.Gas = kernel.GasKV{KV: o, Meter: meter}, meter
		meter.Consume(intrinsicGas(t))
		for i, m := range t.Body.Msgs {
			meter.Consume(kernel.GasPerMsg + kernel.PrepaidGas(m, x.Params))
			if err := k.dispatch(x, signer, t, m); err != nil {
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
			f := &ctx{KV: store.NewOverlay(c.KV), ChainID: c.ChainID, Params: c.Params, Proposer: c.Proposer, Quiet: c.Quiet, Hooks: c.Hooks}
			if ferr := k.chargeFee(f, signer, t); ferr != nil {
				panic("ledger: fee charged once cannot fail the second time: " + ferr.Error())
			}
			f.KV.(*store.Overlay).Write()
			c.Events = append(c.Events, f.Events...)
		}
		return meter.Used, err
	}
	o.Write()
	c.Events = append(c.Events, x.Events...)
	return meter.Used, nil
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
			if oog, ok := r.(kernel.OutOfGas); ok {
				err = tx.Errorf(tx.CodeOutOfGas, "out of gas: used %d of the limit %d; the messages were reverted and the fee is paid", oog.Used, oog.Limit)
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

func intrinsicGasOf(size int) uint64 { return kernel.GasTxByte*uint64(size) + kernel.GasSigVerify }

func (k *modules) chargeFee(c *ctx, signer tx.Address, t *tx.Tx) error {
	acc := c.Account(signer)
	if t.Body.Nonce != acc.Nonce && !c.Simulate { // a simulation measures gas: the nonce changes none
		return tx.Errorf(tx.CodeBadNonce, "nonce %d, account %s expects %d", t.Body.Nonce, signer, acc.Nonce)
	}
	if need := api.FeeFor(c.Params, t.Body.GasLimit, c.Params.MinGasPrice); t.Body.Fee < need && !c.Simulate {
		return tx.Errorf(tx.CodeFeeTooLow, "fee %s below %s: the minimum %s, or gas limit %d at the chain's gas price of %d uspr per million gas",
			api.FormatSPR(t.Body.Fee), api.FormatSPR(need), api.FormatSPR(c.Params.MinFee), t.Body.GasLimit, c.Params.MinGasPrice)
	}
	if acc.Balance < t.Body.Fee {
		return tx.Errorf(tx.CodeInsufficientFunds, "%s has %s, the fee is %s", signer, api.FormatSPR(acc.Balance), api.FormatSPR(t.Body.Fee))
	}
	acc.Balance -= t.Body.Fee
	acc.Nonce++
	c.SetAccount(acc)
	if t.Body.Fee == 0 {
		return nil
	}
	if c.Proposer.IsZero() {
		// CheckTx: nobody is paid yet; the fee simply leaves the balance.
		c.Move(kernel.InBalances, kernel.InPool, t.Body.Fee)
		return nil
	}
	prop := c.Account(c.Proposer) // balance to balance: the supply record does not change
	prop.Balance += t.Body.Fee    // cannot overflow: bounded by the supply
	c.SetAccount(prop)
	c.Emit(api.EventFeePaid, api.AttrFrom, signer, api.AttrTo, c.Proposer, api.AttrAmount, t.Body.Fee)
	return nil
}

func (k *modules) dispatch(c *ctx, signer tx.Address, t *tx.Tx, m tx.Msg) error {
	switch m := m.(type) {
	case *tx.Send:
		return k.Bank.Send(c, signer, m)
	case *tx.RegisterProvider:
		return k.Providers.RegisterProvider(c, signer, t.Body.PubKey, m)
	case *tx.UpdateProvider:
		return k.Providers.UpdateProvider(c, signer, m)
	case *tx.Bond:
		return k.Providers.Bond(c, signer, m)
	case *tx.Unbond:
		return k.Providers.Unbond(c, signer, m)
	case *tx.CreateOrder:
		return k.Market.CreateOrder(c, signer, m)
	case *tx.CreateReplicatedOrder:
		return k.Runs.CreateReplicatedOrder(c, signer, m)
	case *tx.CreateClusterOrder:
		return k.Clusters.CreateClusterOrder(c, signer, m)
	case *tx.PublishLatency:
		return k.Clusters.PublishLatency(c, signer, m)
	case *tx.CancelOrder:
		return k.Market.CancelOrder(c, signer, m)
	case *tx.PlaceBid:
		return k.Market.PlaceBid(c, signer, m)
	case *tx.WithdrawBid:
		return k.Market.WithdrawBid(c, signer, m)
	case *tx.AcceptBid:
		return k.Market.AcceptBid(c, signer, m)
	case *tx.LeaseStarted:
		return k.Leases.LeaseStarted(c, signer, m)
	case *tx.CloseLease:
		return k.Leases.CloseLease(c, signer, m)
	case *tx.CompleteLease:
		return k.Leases.CompleteLease(c, signer, m)
	case *tx.CommitResult:
		return k.Runs.CommitResult(c, signer, m)
	case *tx.RevealResult:
		return k.Runs.RevealResult(c, signer, m)
	case *tx.TopUp:
		return k.Leases.TopUp(c, signer, m)
	case *tx.ExtendLease:
		return k.Leases.ExtendLease(c, signer, m)
	case *tx.ManifestDelivered:
		return k.Leases.ManifestDelivered(c, signer, m)
	case *tx.Withdraw:
		return k.Leases.Withdraw(c, signer, m)
	case *tx.Attest:
		return k.Trust.Attest(c, signer, m)
	case *tx.Unjail:
		return k.Trust.Unjail(c, signer)
	case *tx.ClaimRewards:
		return k.Rewards.Claim(c, signer)
	case *tx.AnnounceRestart:
		return k.Trust.AnnounceRestart(c, signer)
	case *tx.AttestHardware:
		return k.Trust.AttestHardware(c, signer, m)
	case *tx.OfferStorage:
		return k.Storage.OfferStorage(c, signer, m)
	case *tx.StoreObject:
		return k.Storage.StoreObject(c, signer, m)
	case *tx.AttestStorage:
		return k.Storage.AttestStorage(c, signer, m)
	case *tx.AuditorBeacon:
		return k.Storage.AuditorBeacon(c, signer, m)
	case *tx.HoldShards:
		return k.Storage.HoldShards(c, signer, m)
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
func (k *modules) endBlock(c *ctx, left uint64) {
	sweeps := []func(*ctx){
		k.Market.CloseAuctions,         // bids placed in this block take part in auctions closing in it
		k.Market.ExpireOrders,          // then orders still unmatched at their expiry are refunded
		k.Leases.ExpireUnstartedLeases, // leases that never started are refunded
		k.Leases.EndDepletedLeases,     // active leases whose time or deposit ran out are closed
		k.Runs.CloseDueReveals,         // replicated orders' reveal phases that end in this block close, and are judged
		k.Providers.MatureUnbondings,   // stake whose unbonding period ended returns to its owner
		k.Storage.PlaceDue,             // Vault objects stored in the block before get their shards' providers
		k.Storage.EndDue,               // Vault term deals that ended pay their providers and release their room
		k.Retention.PruneRetired,       // orders finished params.retention_blocks ago leave the state, with all made for them
	}
	kv := c.KV
	for i, sweep := range sweeps {
		meter := &kernel.GasMeter{Limit: ^uint64(0)} // never stops a sweep midway: the sweep checks its share itself
		c.KV, c.Gas = kernel.GasKV{KV: kv, Meter: meter}, meter
		c.Budget = endBlockFloor/uint64(len(sweeps)) + left/uint64(len(sweeps)-i)
		sweep(c)
		left -= min(left, meter.Used)
	}
	c.KV, c.Gas, c.Budget = kv, nil, 0
	k.Trust.EpochWork(c) // audit sets at an epoch's start, verdicts (close, slash, jail) at its end: bounded by the stake
	// The Vault's seed at an epoch's start; its storage proofs' tally, pay and repairs from its end on, within
	// vaultTallyFloor and a sixth of what the rest of the block left (the tally goes on in the next block:
	// storage/tally.go).
	meter := &kernel.GasMeter{Limit: ^uint64(0)}
	c.KV, c.Gas, c.Budget = kernel.GasKV{KV: kv, Meter: meter}, meter, tx.SatAdd(vaultTallyFloor, left/6)
	if testTallyBudget != 0 {
		c.Budget = testTallyBudget
	}
	k.Storage.EpochWork(c)
	c.KV, c.Gas, c.Budget = kv, nil, 0
}

// vaultTallyFloor is the least gas the Vault's tally works with in a block (≈ 6 ms at the gas calibration): in a
// full block, about 3,000 votes a block (storage.GasTallyVote is priced on it). An empty block at the default
// limit gives it about 73M gas, within the liveness tally's time at 10,000 providers (BenchmarkVaultTally).
const vaultTallyFloor = 40_000_000

// testTallyBudget, when set (by tests only), is the tally's budget in every block instead.
var testTallyBudget uint64

// endBlockFloor is the least gas the end-of-block sweeps share in a block whose transactions used all its gas
// (≈ 5 ms at the gas calibration; BenchmarkWorstBlock measures a full block with a backlog behind it).
const endBlockFloor = 20_000_000
