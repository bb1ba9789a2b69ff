package ledger

import (
	"fmt"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/store"
)

// CheckInvariants recomputes every component of the supply from the objects in kv and compares it with the
// supply record: balances from accounts, escrow from open orders and unfinished leases, stake and unbonding
// from providers, the pool from every lease's take plus fees collected outside a block. O(state).
func CheckInvariants(kv store.KV) error {
	c := &ctx{KV: kv}
	s := c.Supply()
	if !s.Holds() {
		return fmt.Errorf("supply record does not add up: %+v", *s)
	}
	var got api.Supply
	kv.Iterate(schema.PAccount, schema.PrefixEnd(schema.PAccount), func(k string, v []byte) bool {
		got.Balances += kernel.MustDecode(schema.DecAccount([20]byte{}, v)).Balance
		return true
	})
	var slashed uint64
	kv.Iterate(schema.PProvider, schema.PrefixEnd(schema.PProvider), func(k string, v []byte) bool {
		p := kernel.MustDecode(schema.DecProvider(v))
		got.Staked += p.Stake
		got.Unbonding += p.Unbonding
		got.Rewards += p.RewardsOwed
		slashed += p.Slashed
		return true
	})
	params := kernel.LoadParams(kv)
	var minted uint64
	if b, ok := kv.Get(schema.KeyEmission); ok {
		minted = kernel.MustDecode(schema.DecEmission(b)).Minted
	}
	var unbondEntries uint64
	kv.Iterate(schema.PUnbond, schema.PrefixEnd(schema.PUnbond), func(k string, v []byte) bool {
		unbondEntries += schema.UnBE64(string(v))
		return true
	})
	kv.Iterate(schema.POrder, schema.PrefixEnd(schema.POrder), func(k string, v []byte) bool {
		o := kernel.MustDecode(schema.DecOrder(v))
		if o.State == api.OrderOpen {
			got.Escrow += o.Escrowed()
		}
		return true
	})
	var rewarded uint64
	kv.Iterate(schema.PVerify, schema.PrefixEnd(schema.PVerify), func(k string, v []byte) bool {
		vf := kernel.MustDecode(schema.DecVerification(v))
		got.Escrow += vf.Reserve
		rewarded += vf.Rewarded
		return true
	})
	kv.Iterate(schema.PCluster, schema.PrefixEnd(schema.PCluster), func(k string, v []byte) bool {
		got.Escrow += kernel.MustDecode(schema.DecCluster(v)).Reserve
		return true
	})
	kv.Iterate(schema.PVaultObject, schema.PrefixEnd(schema.PVaultObject), func(k string, v []byte) bool {
		if o := kernel.MustDecode(schema.DecVaultObject(schema.UnBE64(k[len(schema.PVaultObject):]), v)); !o.Pooled {
			got.Escrow += o.Escrow // placing, or held by the object (a chain without auditing)
		}
		return true
	})
	if b, ok := kv.Get(schema.KeyVaultPool); ok { // pooled objects' escrow, less what it paid
		got.Escrow += kernel.MustDecode(schema.DecVaultPool(b)).Balance
	}
	var take uint64
	var unbalanced *api.Lease
	kv.Iterate(schema.PLease, schema.PrefixEnd(schema.PLease), func(k string, v []byte) bool {
		l := kernel.MustDecode(schema.DecLease(v))
		if l.State == api.LeasePending || l.State == api.LeaseActive {
			got.Escrow += l.Deposit - l.Paid
		} else if l.Paid+l.Refunded+l.Held != l.Deposit && unbalanced == nil {
			unbalanced = l
		}
		got.Escrow += l.Held
		take += l.Take
		return true
	})
	pr := kernel.LoadPruned(kv)
	switch {
	case unbalanced != nil:
		return fmt.Errorf("lease %d ended with paid %d + refunded %d + held %d != deposit %d", unbalanced.ID, unbalanced.Paid, unbalanced.Refunded, unbalanced.Held, unbalanced.Deposit)
	case got.Balances != s.Balances:
		return fmt.Errorf("balances: accounts hold %d, supply says %d", got.Balances, s.Balances)
	case got.Staked != s.Staked:
		return fmt.Errorf("staked: providers hold %d, supply says %d", got.Staked, s.Staked)
	case got.Unbonding != s.Unbonding || unbondEntries != s.Unbonding:
		return fmt.Errorf("unbonding: providers %d, entries %d, supply %d", got.Unbonding, unbondEntries, s.Unbonding)
	case got.Rewards != s.Rewards:
		return fmt.Errorf("rewards: providers are owed %d, supply says %d", got.Rewards, s.Rewards)
	case minted != s.Minted:
		return fmt.Errorf("minted: the emission record says %d, supply says %d", minted, s.Minted)
	case params.RewardsOn() && minted > params.EmissionCap:
		return fmt.Errorf("minted %d above params.emission_cap %d", minted, params.EmissionCap)
	case got.Escrow != s.Escrow:
		return fmt.Errorf("escrow: orders and leases hold %d, supply says %d", got.Escrow, s.Escrow)
	case take+pr.Take+slashed-rewarded-pr.Rewarded != s.Pool:
		return fmt.Errorf("pool: leases' take %d + pruned leases' take %d + providers' slashed stake %d - rewards to honest runs %d - pruned rewards %d = %d, supply says %d",
			take, pr.Take, slashed, rewarded, pr.Rewarded, take+pr.Take+slashed-rewarded-pr.Rewarded, s.Pool)
	}
	return nil
}
