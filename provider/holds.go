package provider

import (
	"context"
	"slices"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// shardDeclareEvery is how often the daemon declares to the ledger the Vault shards it holds and has not
// declared yet (HoldShards): a shard is challenged and paid only from the epoch after its declaration. One
// vault_placed_on query a pass while there is nothing new.
const shardDeclareEvery = 5 * time.Second

// declareHeld sends HoldShards for the shards placed here that the store holds (an owner's upload landed, a
// repair rebuilt one) and the ledger does not know to be held, up to a transaction's worth at a time. A shard
// the store does not hold is never declared: declaring it would fail its proofs and slash this provider.
func (d *Daemon) declareHeld(ctx context.Context) {
	var refs []tx.ShardRef
	err := client.EachVaultPlacedOn(ctx, d.c, api.VaultPlacedOnRequest{Provider: d.Address(), Unheld: true}, func(s api.VaultShard) (bool, error) {
		if s.HeldHeight > 0 || s.Lost || s.Ordinal < 0 || int64(s.Ordinal) > 1<<32-1 {
			return true, nil
		}
		if _, ok := d.shards.Has(s.Root); ok {
			refs = append(refs, tx.ShardRef{Object: s.ObjectID, Ordinal: uint32(s.Ordinal)})
		}
		return len(refs) < tx.MaxFailedShards, nil
	})
	if err != nil {
		d.log.Warn("vault: could not list the shards placed here to declare them held; trying again", "err", err)
	}
	if len(refs) == 0 {
		return
	}
	slices.SortFunc(refs, func(a, b tx.ShardRef) int {
		if a.Less(b) {
			return -1
		}
		if b.Less(a) {
			return 1
		}
		return 0
	})
	refs = slices.Compact(refs)
	if _, err := d.sender.Send(ctx, &tx.HoldShards{Shards: refs}); err != nil {
		d.log.Warn("vault: declaring shards held failed; trying again", "shards", len(refs), "err", err)
		return
	}
	d.log.Info("vault: shards declared held: challenged and paid from the next epoch", "shards", len(refs))
}
