package storage

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault/layout"
)

// Object is stored object id, if it exists.
func (k *Keeper) Object(c *kernel.Ctx, id uint64) (*api.VaultObject, bool) {
	b, ok := c.KV.Get(schema.IDKey(schema.PVaultObject, id))
	if !ok {
		return nil, false
	}
	return kernel.MustDecode(schema.DecVaultObject(id, b)), true
}

func (k *Keeper) setObject(c *kernel.Ctx, o *api.VaultObject) {
	c.KV.Set(schema.IDKey(schema.PVaultObject, o.ID), schema.EncVaultObject(o))
}

// Manifest is object id's manifest.
func (k *Keeper) Manifest(c *kernel.Ctx, id uint64) *layout.Object {
	b, ok := c.KV.Get(schema.IDKey(schema.PVaultManifest, id))
	if !ok {
		panic("ledger: vault object without its manifest")
	}
	return kernel.MustDecode(layout.DecodeObject(b))
}

// ShardRoot is the root of shard ordinal ord of object o, read from its stored manifest without decoding the
// rest: the canonical encoding (vault/layout, checked when the object was stored) ends with every shard's root in
// order, 32 bytes each.
func (k *Keeper) ShardRoot(c *kernel.Ctx, o *api.VaultObject, ord int) tx.Hash {
	b, ok := c.KV.Get(schema.IDKey(schema.PVaultManifest, o.ID))
	at := len(b) - 32*(o.Shards()-ord)
	if !ok || ord < 0 || ord >= o.Shards() || at < 0 {
		panic(fmt.Sprintf("ledger: vault object %d has no root for shard %d in its manifest", o.ID, ord))
	}
	var r tx.Hash
	copy(r[:], b[at:at+32])
	return r
}

// deal is what a StoreObject costs at most and the highest price its shards are placed at.
func deal(c *kernel.Ctx, l layout.Layout, m *tx.StoreObject) (cost, maxPrice uint64, err error) {
	if m.Months == 0 {
		cost, err := c.Params.Endowment(l.StoredBytes())
		if err != nil {
			return 0, 0, tx.Errorf(tx.CodeInvalidMsg, "%v", err)
		}
		return cost, c.Params.PermanentPrice(), nil
	}
	per, ok := api.TermCost(l.ShardSize, m.MaxPricePerGiBMonth, m.Months)
	if !ok {
		return 0, 0, tx.Errorf(tx.CodeOverflow, "a shard's cost overflows 64 bits")
	}
	cost, err = kernel.MulChecked("cost", per, uint64(l.Shards()))
	return cost, m.MaxPricePerGiBMonth, err
}

// StoreObject stores an object: its manifest checked, the deal's most it can cost escrowed from the signer, its
// providers drawn at the end of the next block (see place). Refused, with nothing escrowed, when the manifest
// does not decode or fewer storage providers than a stripe's shards could take it now.
func (k *Keeper) StoreObject(c *kernel.Ctx, signer tx.Address, m *tx.StoreObject) error {
	obj, err := layout.DecodeObject(m.Manifest)
	if err != nil {
		return tx.Errorf(tx.CodeInvalidMsg, "manifest: %v", err)
	}
	cost, maxPrice, err := deal(c, obj.Layout, m)
	if err != nil {
		return err
	}
	if obj.Root.IsZero() {
		return tx.Errorf(tx.CodeInvalidMsg, "manifest: root is zero: give the BLAKE3 root of the object's bytes")
	}
	n := len(k.eligible(c, obj.ShardSize, maxPrice))
	if n < obj.K+obj.M {
		what := "a price of at most " + api.FormatSPR(maxPrice) + " a GiB-month"
		fix := "raise the maximum price (--max-price; spare offers --storage lists the offers)"
		if m.Months == 0 {
			what = "a price within the endowment's rate (" + api.FormatSPR(maxPrice) + " a GiB-month: params.storage_gib_year_cost ÷ 12)"
			fix = "store for a term instead (--months)"
		}
		return tx.Errorf(tx.CodeNotFound, "too few storage providers: %d active, staked ones offer %s and %d bytes free, and a stripe of %d+%d needs %d distinct ones; use a coding with fewer shards (--coding) or %s",
			n, what, obj.ShardSize, obj.K, obj.M, obj.K+obj.M, fix)
	}
	c.Gas.Consume(PlacementGas(obj.Stripes, obj.Layout.Shards(), n)) // the draw's work at the end of the next block
	if err := c.Debit(signer, cost, kernel.InEscrow); err != nil {
		return err
	}
	o := &api.VaultObject{ID: c.NextID("vault"), Owner: signer, Root: obj.Root, Size: obj.Size, K: obj.K, M: obj.M,
		ShardSize: obj.ShardSize, Stripes: obj.Stripes, Months: m.Months, MaxPricePerGiBMonth: maxPrice, Escrow: cost,
		Height: c.Height, PlaceAt: c.Height + 1, State: api.VaultPlacing}
	k.setObject(c, o)
	c.KV.Set(schema.IDKey(schema.PVaultManifest, o.ID), bytes.Clone(m.Manifest))
	c.KV.Set(schema.PVaultByRoot+string(o.Root[:])+schema.BE64(o.ID), nil)
	c.KV.Set(schema.OwnedKey(schema.PVaultByOwner, signer, o.ID), nil)
	c.KV.Set(schema.PVaultDraw+schema.BE64(uint64(o.PlaceAt))+schema.BE64(o.ID), nil)
	c.Emit(api.EventVaultStored, api.AttrObjectID, o.ID, api.AttrOwner, signer, api.AttrRoot, o.Root, api.AttrSize, o.Size,
		api.AttrShards, o.Shards(), api.AttrMonths, o.Months, api.AttrMaxPrice, maxPrice, api.AttrAmount, cost, api.AttrHeight, o.PlaceAt)
	return nil
}

// Shards lists object o's shards from ordinal from, at most limit, with their providers once placed.
func (k *Keeper) Shards(c *kernel.Ctx, o *api.VaultObject, from, limit int) api.List[api.VaultShard] {
	out := api.List[api.VaultShard]{Items: []api.VaultShard{}}
	man := k.Manifest(c, o.ID)
	n := o.K + o.M
	for ord := max(from, 0); ord < o.Shards(); ord++ {
		if len(out.Items) == limit {
			out.Next = strconv.Itoa(ord)
			break
		}
		s := k.shardView(c, o, ord, man.ShardRoot(ord/n, ord%n))
		out.Items = append(out.Items, s)
	}
	return out
}

// shardView is shard ordinal ord of object o, whose root is root, as the queries show it.
func (k *Keeper) shardView(c *kernel.Ctx, o *api.VaultObject, ord int, root tx.Hash) api.VaultShard {
	n := o.K + o.M
	s := api.VaultShard{ObjectID: o.ID, Stripe: ord / n, Index: ord % n, Ordinal: ord, Root: root}
	rec, ok := k.shard(c, o.ID, ord)
	if !ok {
		return s
	}
	s.Provider, s.PricePerGiBMonth, s.RepairHeight, s.HeldHeight = rec.provider, rec.price, rec.repairHeight, rec.heldHeight
	if p, ok := c.Provider(s.Provider); ok {
		s.HostURI, s.Fingerprint, s.Region = p.Info.HostURI, p.Info.CertFingerprint, p.Info.Region
	}
	_, repair := c.KV.Get(schema.ShardOrdKey(schema.PVaultRepair, o.ID, uint32(ord)))
	s.Lost, s.Repairing = rec.provider.IsZero(), repair && !rec.provider.IsZero()
	if b, ok := c.KV.Get(schema.ShardOrdKey(schema.PVaultStreak, o.ID, uint32(ord))); ok {
		var err error
		s.LastFailed, s.Failures, err = schema.DecVaultStreak(b)
		c.Must(err)
	}
	return s
}

// Objects lists objects by id after after: an owner's, or those with a root.
func (k *Keeper) Objects(c *kernel.Ctx, r api.VaultObjectsRequest, limit int) api.List[api.VaultObject] {
	prefix := schema.PVaultByRoot + string(r.Root[:])
	if !r.Owner.IsZero() {
		prefix = schema.PVaultByOwner + string(r.Owner[:])
	}
	out := api.List[api.VaultObject]{Items: []api.VaultObject{}}
	c.KV.Iterate(prefix+schema.BE64(r.After+1), schema.PrefixEnd(prefix), func(key string, _ []byte) bool {
		if r.After == ^uint64(0) {
			return false
		}
		if len(out.Items) == limit {
			out.Next = strconv.FormatUint(out.Items[len(out.Items)-1].ID, 10)
			return false
		}
		if o, ok := k.Object(c, schema.UnBE64(key[len(prefix):])); ok {
			out.Items = append(out.Items, *o)
		}
		return true
	})
	return out
}

// Held lists the shards with root placed on provider p (at most limit).
func (k *Keeper) Held(c *kernel.Ctx, p tx.Address, root tx.Hash, limit int) []api.VaultShard {
	prefix := schema.PVaultHeld + string(p[:]) + string(root[:])
	out := []api.VaultShard{}
	c.KV.Iterate(prefix, schema.PrefixEnd(prefix), func(key string, _ []byte) bool {
		if len(out) == limit {
			return false
		}
		id, ord := schema.UnBE64(key[len(prefix):]), int(schema.UnBE32(key[len(prefix)+8:]))
		o, ok := k.Object(c, id)
		if !ok || ord >= o.Shards() {
			return true
		}
		out = append(out, k.shardView(c, o, ord, root))
		return true
	})
	return out
}
