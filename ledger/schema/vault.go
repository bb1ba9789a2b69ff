package schema

import (
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault/layout"
)

// Spare Vault's keys (see package storage).
const (
	PVaultObject   = "vo/" // object id -> VaultObject
	PVaultManifest = "vm/" // object id -> its manifest (vault/layout's encoding)
	PVaultByRoot   = "vb/" // root | object id: the objects with a content address
	PVaultByOwner  = "vw/" // owner | object id
	PVaultDraw     = "vd/" // height | object id: objects whose providers are drawn at the end of that block
	PVaultShard    = "vs/" // object id | shard ordinal (4 bytes) -> provider | price
	PVaultHeld     = "vh/" // provider | shard root | object id | shard ordinal: what a provider must hold
	PVaultEnd      = "ve/" // end ms | object id: term deals by when they end
)

// BE32 is a shard ordinal's 4 big-endian bytes.
func BE32(v uint32) string {
	return string([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// UnBE32 reads BE32.
func UnBE32(s string) uint32 {
	return uint32(s[0])<<24 | uint32(s[1])<<16 | uint32(s[2])<<8 | uint32(s[3])
}

// VaultShardKey is shard ordinal ord of object id.
func VaultShardKey(id uint64, ord int) string { return PVaultShard + BE64(id) + BE32(uint32(ord)) }

// VaultHeldKey indexes a placed shard under its provider and root.
func VaultHeldKey(p tx.Address, root tx.Hash, id uint64, ord int) string {
	return PVaultHeld + string(p[:]) + string(root[:]) + BE64(id) + BE32(uint32(ord))
}

// EncVaultObject stores an object's record (its id is the key); every field bounded as StoreObject and the
// manifest bound it.
func EncVaultObject(o *api.VaultObject) []byte {
	w := tx.NewWriter(96)
	w.Address(o.Owner)
	w.Fixed("root", o.Root[:], 32)
	w.Bounded("size", o.Size, layout.MaxObjectSize)
	w.Bounded("k", uint64(o.K), layout.MaxShards)
	w.Bounded("m", uint64(o.M), layout.MaxShards)
	w.Bounded("shard_size", o.ShardSize, layout.MaxShardSize)
	w.Bounded("stripes", uint64(o.Stripes), layout.MaxObjectShards)
	w.Bounded("months", o.Months, tx.MaxStorageMonths)
	w.Bounded("max_price_per_gib_month", o.MaxPricePerGiBMonth, tx.MaxStoragePrice)
	w.Uvarint(o.Escrow)
	w.Bounded("height", uint64(o.Height), 1<<62)
	w.Bounded("place_at", uint64(o.PlaceAt), 1<<62)
	state := uint64(0) // placing
	if o.State == api.VaultPlaced {
		state = 1 // placed, its escrow held by the object (paid at the term's end: a chain without auditing)
		if o.Pooled {
			state = 2 // placed, its escrow moved into the Vault pool (paid every epoch against proofs)
		}
	}
	w.Uvarint(state)
	w.Bounded("end_ms", uint64(o.EndMs), 1<<62)
	return sealed(w, "vault object")
}

func DecVaultObject(id uint64, b []byte) (*api.VaultObject, error) {
	r := tx.NewReader(b)
	o := &api.VaultObject{ID: id, Owner: r.Address("owner"), Root: r.Hash("root"), Size: r.Bounded("size", layout.MaxObjectSize),
		K: int(r.Bounded("k", layout.MaxShards)), M: int(r.Bounded("m", layout.MaxShards)),
		ShardSize: r.Bounded("shard_size", layout.MaxShardSize), Stripes: int(r.Bounded("stripes", layout.MaxObjectShards)),
		Months: r.Bounded("months", tx.MaxStorageMonths), MaxPricePerGiBMonth: r.Bounded("max_price_per_gib_month", tx.MaxStoragePrice),
		Escrow: r.Uvarint("escrow"), Height: int64(r.Bounded("height", 1<<62)), PlaceAt: int64(r.Bounded("place_at", 1<<62))}
	switch r.Bounded("state", 2) {
	case 0:
		o.State = api.VaultPlacing
	case 1:
		o.State = api.VaultPlaced
	case 2:
		o.State, o.Pooled = api.VaultPlaced, true
	}
	o.EndMs = int64(r.Bounded("end_ms", 1<<62))
	return o, r.Done("vault object")
}
