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

// end closes a term deal at its end: the room its shards took in the offers is released and the object leaves
// the state with its shards — its providers may delete them. A pooled object's providers were paid every epoch
// for the shards that passed their proofs; what its escrow held beyond that stays in the pool, which pays
// repairs and permanent storage. An object of a chain without auditing pays each shard's provider the term at
// the price it was placed at (the escrow is their sum, exactly), as placed, there being no proofs.
func (k *Keeper) end(c *kernel.Ctx, o *api.VaultObject) {
	man := k.Manifest(c, o.ID)
	n := o.K + o.M
	paid := map[tx.Address]uint64{}
	shards := map[tx.Address]uint64{}
	held := make([]shard, 0, o.Shards())
	var total uint64
	for ord := range o.Shards() {
		s, ok := k.shard(c, o.ID, ord)
		if !ok {
			panic(fmt.Sprintf("ledger: vault object %d shard %d is placed and has no record", o.ID, ord))
		}
		c.KV.Delete(schema.VaultShardKey(o.ID, ord))
		c.KV.Delete(schema.ShardOrdKey(schema.PVaultStreak, o.ID, uint32(ord)))
		c.KV.Delete(schema.ShardOrdKey(schema.PVaultRepair, o.ID, uint32(ord)))
		if s.provider.IsZero() { // lost, and not repaired yet
			continue
		}
		if s.heldHeight > 0 {
			held = append(held, s)
		}
		c.KV.Delete(schema.VaultHeldKey(s.provider, man.ShardRoot(ord/n, ord%n), o.ID, ord))
		shards[s.provider]++
		if !o.Pooled {
			per, _ := api.TermCost(o.ShardSize, s.price, o.Months) // fit when the escrow was computed
			paid[s.provider] += per
			total += per
		}
	}
	if !o.Pooled && total != o.Escrow {
		panic(fmt.Sprintf("ledger: vault object %d holds %d in escrow, its shards' term costs %d", o.ID, o.Escrow, total))
	}
	if o.Pooled {
		k.holdAll(c, o, held, -1)
	}
	provs := make([]tx.Address, 0, len(shards))
	for p := range shards {
		provs = append(provs, p)
	}
	slices.SortFunc(provs, func(a, b tx.Address) int { return cmp.Compare(string(a[:]), string(b[:])) })
	for _, p := range provs {
		if off, ok := k.Offer(c, p); ok {
			off.UsedBytes -= min(off.UsedBytes, shards[p]*o.ShardSize)
			k.setOffer(c, off)
		}
		if o.Pooled {
			continue
		}
		c.Must(c.Credit(p, paid[p], kernel.InEscrow))
		c.Emit(api.EventVaultPaid, api.AttrObjectID, o.ID, api.AttrProvider, p, api.AttrShards, shards[p], api.AttrAmount, paid[p])
	}
	c.KV.Delete(schema.IDKey(schema.PVaultObject, o.ID))
	c.KV.Delete(schema.IDKey(schema.PVaultManifest, o.ID))
	c.KV.Delete(schema.PVaultByRoot + string(o.Root[:]) + schema.BE64(o.ID))
	c.KV.Delete(schema.OwnedKey(schema.PVaultByOwner, o.Owner, o.ID))
	c.Emit(api.EventVaultEnded, api.AttrObjectID, o.ID, api.AttrOwner, o.Owner, api.AttrRoot, o.Root, api.AttrPaid, total)
}
