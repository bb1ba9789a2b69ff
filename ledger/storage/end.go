package storage

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// EndDue ends the term deals whose term has passed (end of block, by block time; see end).
func (k *Keeper) EndDue(c *kernel.Ctx) {
	c.SweepDue(schema.PVaultEnd, uint64(c.TimeMs), func(id uint64) {
		o, ok := k.Object(c, id)
		if !ok {
			panic(fmt.Sprintf("ledger: vault object %d is due to end and not stored", id))
		}
		c.KV.Delete(schema.PVaultEnd + schema.BE64(uint64(o.EndMs)) + schema.BE64(id))
		k.end(c, o)
	})
}

// end closes a term deal at its end: each shard's provider is paid the term at the price it was placed at (what
// the escrow holds, exactly: the escrow is their sum), the room its shards took in the offers is released, and
// the object leaves the state with its shards — its providers may delete them. Until proofs of storage exist
// (docs/vault.md), the pay is for the shard as placed, not as proven held: the stake-weighted draw is what
// keeps it away from accounts an uploader controls.
func (k *Keeper) end(c *kernel.Ctx, o *api.VaultObject) {
	man := k.Manifest(c, o.ID)
	n := o.K + o.M
	paid := map[tx.Address]uint64{}
	shards := map[tx.Address]uint64{}
	var total uint64
	for ord := range o.Shards() {
		b, ok := c.KV.Get(schema.VaultShardKey(o.ID, ord))
		if !ok {
			panic(fmt.Sprintf("ledger: vault object %d shard %d is placed and has no provider", o.ID, ord))
		}
		p, price, err := schema.DecVaultShard(b)
		c.Must(err)
		per, _ := api.TermCost(o.ShardSize, price, o.Months) // fit when the escrow was computed
		paid[p] += per
		shards[p]++
		total += per
		c.KV.Delete(schema.VaultShardKey(o.ID, ord))
		c.KV.Delete(schema.VaultHeldKey(p, man.ShardRoot(ord/n, ord%n), o.ID, ord))
	}
	if total != o.Escrow {
		panic(fmt.Sprintf("ledger: vault object %d holds %d in escrow, its shards' term costs %d", o.ID, o.Escrow, total))
	}
	provs := make([]tx.Address, 0, len(paid))
	for p := range paid {
		provs = append(provs, p)
	}
	slices.SortFunc(provs, func(a, b tx.Address) int { return cmp.Compare(string(a[:]), string(b[:])) })
	for _, p := range provs {
		c.Must(c.Credit(p, paid[p], kernel.InEscrow))
		if off, ok := k.Offer(c, p); ok {
			off.UsedBytes -= min(off.UsedBytes, shards[p]*o.ShardSize)
			k.setOffer(c, off)
		}
		c.Emit(api.EventVaultPaid, api.AttrObjectID, o.ID, api.AttrProvider, p, api.AttrShards, shards[p], api.AttrAmount, paid[p])
	}
	c.KV.Delete(schema.IDKey(schema.PVaultObject, o.ID))
	c.KV.Delete(schema.IDKey(schema.PVaultManifest, o.ID))
	c.KV.Delete(schema.PVaultByRoot + string(o.Root[:]) + schema.BE64(o.ID))
	c.KV.Delete(schema.OwnedKey(schema.PVaultByOwner, o.Owner, o.ID))
	c.Emit(api.EventVaultEnded, api.AttrObjectID, o.ID, api.AttrOwner, o.Owner, api.AttrRoot, o.Root, api.AttrPaid, total)
}
