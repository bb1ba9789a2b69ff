package storage

import (
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// Offer is provider a's storage offer, if it has one.
func (k *Keeper) Offer(c *kernel.Ctx, a tx.Address) (*api.StorageOffer, bool) {
	b, ok := c.KV.Get(schema.AddrKey(schema.PStorageOffer, a))
	if !ok {
		return nil, false
	}
	return kernel.MustDecode(schema.DecStorageOffer(a, b)), true
}

func (k *Keeper) setOffer(c *kernel.Ctx, o *api.StorageOffer) {
	key := schema.AddrKey(schema.PStorageOffer, o.Provider)
	if o.CapacityBytes == 0 && o.UsedBytes == 0 { // withdrawn, holding nothing: no record left behind
		c.KV.Delete(key)
		return
	}
	c.KV.Set(key, schema.EncStorageOffer(o))
}

// OfferStorage sets a registered provider's storage offer: its capacity and price replace the previous ones; the
// bytes its placed shards hold stay counted. Capacity 0 withdraws the offer: nothing new is placed on it.
func (k *Keeper) OfferStorage(c *kernel.Ctx, signer tx.Address, m *tx.OfferStorage) error {
	if _, err := c.MustProvider(signer); err != nil {
		return err
	}
	o, had := k.Offer(c, signer)
	if !had {
		if m.CapacityBytes == 0 {
			return tx.Errorf(tx.CodeNotFound, "provider %s has no storage offer to withdraw", signer)
		}
		o = &api.StorageOffer{Provider: signer}
	}
	o.CapacityBytes, o.PricePerGiBMonth, o.Height = m.CapacityBytes, m.PricePerGiBMonth, c.Height
	k.setOffer(c, o)
	c.Emit(api.EventStorageOffered, api.AttrProvider, signer, api.AttrCapacity, o.CapacityBytes,
		api.AttrPrice, o.PricePerGiBMonth, api.AttrUsed, o.UsedBytes)
	return nil
}

// OfferView is an offer with its provider's region, standing and stake.
func (k *Keeper) OfferView(c *kernel.Ctx, o *api.StorageOffer) api.StorageOfferView {
	v := api.StorageOfferView{StorageOffer: *o}
	if p, ok := c.Provider(o.Provider); ok {
		v.Region, v.Status, v.Stake = p.Info.Region, p.Status, p.Stake
	}
	return v
}

// Offers lists offers by provider address from after (exclusive), at most limit of them, and the address to
// continue from ("" when the list ended).
func (k *Keeper) Offers(c *kernel.Ctx, after *tx.Address, limit int) api.List[api.StorageOfferView] {
	start := schema.PStorageOffer
	if after != nil {
		start = schema.AddrKey(schema.PStorageOffer, *after) + "\x00"
	}
	out := api.List[api.StorageOfferView]{Items: []api.StorageOfferView{}}
	c.KV.Iterate(start, schema.PrefixEnd(schema.PStorageOffer), func(key string, v []byte) bool {
		if len(out.Items) == limit {
			out.Next = out.Items[len(out.Items)-1].Provider.String()
			return false
		}
		var a tx.Address
		copy(a[:], key[len(schema.PStorageOffer):])
		out.Items = append(out.Items, k.OfferView(c, kernel.MustDecode(schema.DecStorageOffer(a, v))))
		return true
	})
	return out
}
