package storage

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// candidate is a storage offer shards may be drawn onto.
type candidate struct {
	offer  *api.StorageOffer
	region string
	stake  uint64
}

// eligible lists, by provider address, the offers a shard of shardSize may be placed on at a price of at most
// maxPrice: active providers bonded at least their required stake, with the room free.
func (k *Keeper) eligible(c *kernel.Ctx, shardSize, maxPrice uint64) []*candidate {
	var out []*candidate
	c.KV.Iterate(schema.PStorageOffer, schema.PrefixEnd(schema.PStorageOffer), func(key string, v []byte) bool {
		var a tx.Address
		copy(a[:], key[len(schema.PStorageOffer):])
		o := kernel.MustDecode(schema.DecStorageOffer(a, v))
		if o.PricePerGiBMonth > maxPrice || o.FreeBytes() < shardSize {
			return true
		}
		p, ok := c.Provider(a)
		if !ok || p.Status != api.ProviderActive || p.Stake == 0 || p.Stake < c.Params.RequiredStake(p.Info.Hardware.GPUCount()) {
			return true
		}
		out = append(out, &candidate{offer: o, region: p.Info.Region, stake: p.Stake})
		return true
	})
	return out
}

// PlaceDue draws the providers of the objects stored in the block before (end of block; see place).
func (k *Keeper) PlaceDue(c *kernel.Ctx) {
	c.SweepDue(schema.PVaultDraw, uint64(c.Height), func(id uint64) {
		o, ok := k.Object(c, id)
		if !ok {
			panic(fmt.Sprintf("ledger: vault object %d is due for its draw and not stored", id))
		}
		c.KV.Delete(schema.PVaultDraw + schema.BE64(uint64(o.PlaceAt)) + schema.BE64(id))
		k.place(c, o)
	})
}

// place draws every shard's provider: for each stripe K+M distinct offers, each pick with a chance proportional
// to its provider's bonded stake (Sybil accounts gain nothing by splitting a stake, and each must bond the
// minimum), among the offers with room at the deal's price. Regions are spread softly: a pick that lands in a
// region the stripe already uses is drawn once more (while another region has room), and the second draw
// stands. A region is only what a provider declares, so a strict rule ("unused regions first") would hand every
// shard after the first to whoever declares the most regions: with one redraw, declaring regions at most doubles
// a stake's chance (TestVaultSybilsGainByStakeNotAccounts). The randomness is SHA-256 over the block's hash —
// not known when the owner signed, a block earlier — the object's id, the shard's place and the draw's number.
// A term deal's escrow drops to what the drawn prices cost, the rest refunded. When the offers cannot take every
// shard (they changed since the object was stored), nothing is placed and the escrow is refunded whole.
func (k *Keeper) place(c *kernel.Ctx, o *api.VaultObject) {
	cands := k.eligible(c, o.ShardSize, o.MaxPricePerGiBMonth)
	n := o.K + o.M
	picks := make([]int, 0, o.Shards())
	cum := make([]uint64, len(cands)) // cum[j]: the stake of candidates 0..j with room
	for s := 0; s < o.Stripes; s++ {
		var total uint64
		for j, cd := range cands {
			if cd.offer.FreeBytes() >= o.ShardSize {
				total += cd.stake // stakes are bounded by the supply
			}
			cum[j] = total
		}
		used := make(map[int]bool, n)
		regions := map[string]bool{}
		for i := 0; i < n; i++ {
			j := pick(c, o, s, i, cands, cum, used, regions)
			if j < 0 {
				k.unplace(c, o, fmt.Sprintf("stripe %d: only %d storage providers had room for a shard at the price; the stripe needs %d", s, i, n))
				return
			}
			used[j], regions[cands[j].region] = true, true
			cands[j].offer.UsedBytes += o.ShardSize
			picks = append(picks, j)
		}
	}
	var cost uint64
	man := k.Manifest(c, o.ID)
	touched := map[int]bool{}
	for ord, j := range picks {
		cd := cands[j]
		touched[j] = true
		if o.Months > 0 {
			per, _ := api.TermCost(o.ShardSize, cd.offer.PricePerGiBMonth, o.Months) // ≤ the cost at the maximum, which fit
			cost += per
		}
		k.setShard(c, o.ID, ord, shard{provider: cd.offer.Provider, price: cd.offer.PricePerGiBMonth})
		root := man.ShardRoot(ord/n, ord%n)
		c.KV.Set(schema.VaultHeldKey(cd.offer.Provider, root, o.ID, ord), nil)
		c.Emit(api.EventVaultShardPlaced, api.AttrObjectID, o.ID, api.AttrStripe, ord/n, api.AttrIndex, ord%n,
			api.AttrRoot, root, api.AttrProvider, cd.offer.Provider, api.AttrPrice, cd.offer.PricePerGiBMonth)
	}
	for j := range cands {
		if touched[j] {
			k.setOffer(c, cands[j].offer)
		}
	}
	var refund uint64
	if o.Months > 0 {
		refund = o.Escrow - cost
		o.Escrow = cost
		c.Must(c.Credit(o.Owner, refund, kernel.InEscrow))
		o.EndMs = int64(c.TimeMs) + int64(o.Months)*api.MonthMs // months ≤ 1,200: no overflow
		c.KV.Set(schema.PVaultEnd+schema.BE64(uint64(o.EndMs))+schema.BE64(o.ID), nil)
	}
	o.State = api.VaultPlaced
	if c.Params.EpochBlocks > 0 { // audited: the pool pays the shards' providers every epoch, against proofs
		o.Pooled = true
		pool := k.Pool(c)
		pool.Balance += o.Escrow
		k.setPool(c, pool) // its shards are paid for once their providers declare them held (HoldShards)
	}
	k.setObject(c, o)
	c.Emit(api.EventVaultPlaced, api.AttrObjectID, o.ID, api.AttrOwner, o.Owner, api.AttrShards, o.Shards(),
		api.AttrCost, o.Escrow, api.AttrRefund, refund, api.AttrEndMs, o.EndMs)
}

// maxDraws bounds the draws of one pick that land on a provider the stripe already uses (or in a used region,
// once); past it the pick takes the first provider with room after the last draw, in address order.
const maxDraws = 32

// pick draws shard index i of stripe s among the candidates with room (cum: their stakes' running sums at the
// stripe's start) that the stripe does not use yet, weighted by stake; -1 when none has room.
func pick(c *kernel.Ctx, o *api.VaultObject, s, i int, cands []*candidate, cum []uint64, used map[int]bool, regions map[string]bool) int {
	ok := func(j int) bool { return !used[j] && cands[j].offer.FreeBytes() >= o.ShardSize }
	total := uint64(0)
	if len(cum) > 0 {
		total = cum[len(cum)-1]
	}
	if total == 0 {
		return -1
	}
	var seed [8 + 8 + 4 + 4]byte
	binary.BigEndian.PutUint64(seed[:], o.ID)
	binary.BigEndian.PutUint64(seed[8:], uint64(s))
	binary.BigEndian.PutUint32(seed[16:], uint32(i))
	regionRedrawn, other := false, 0 // other: 1 when a region the stripe does not use has room, -1 when none (0: unknown)
	last := 0
	for draw := 0; draw < maxDraws; draw++ {
		binary.BigEndian.PutUint32(seed[20:], uint32(draw))
		h := sha256.Sum256(append(append([]byte("spare/vault-place\x00"), c.Seed[:]...), seed[:]...))
		r := binary.BigEndian.Uint64(h[:8]) % total
		j, _ := slices.BinarySearchFunc(cum, r, func(sum, r uint64) int { return cmp.Compare(sum, r+1) }) // first j with cum[j] > r
		last = j
		if !ok(j) {
			continue
		}
		if regions[cands[j].region] && !regionRedrawn {
			if other == 0 {
				other = -1
				if otherRegion(o, cands, used, regions) {
					other = 1
				}
			}
			if other == 1 {
				regionRedrawn = true
				continue
			}
		}
		return j
	}
	for d := range cands {
		if j := (last + 1 + d) % len(cands); ok(j) {
			return j
		}
	}
	return -1
}

// otherRegion reports whether a candidate with room in a region the stripe does not use yet exists.
func otherRegion(o *api.VaultObject, cands []*candidate, used map[int]bool, regions map[string]bool) bool {
	for j, cd := range cands {
		if !used[j] && !regions[cd.region] && cd.offer.FreeBytes() >= o.ShardSize {
			return true
		}
	}
	return false
}

// PlacementGas is what StoreObject charges for its draw at the end of the next block: a pass over the offers a
// stripe, and a shard's two new keys and its event.
func PlacementGas(stripes, shards, offers int) uint64 {
	return uint64(stripes)*uint64(offers)*gasPerOffer + uint64(shards)*gasPerShard
}

const (
	gasPerOffer = 300    // an offer weighed at a stripe's start, about an iterated entry
	gasPerShard = 60_000 // two new keys (~25k each with their bytes) and an event
)

// unplace refunds an object that could not be placed and removes it.
func (k *Keeper) unplace(c *kernel.Ctx, o *api.VaultObject, reason string) {
	c.Must(c.Credit(o.Owner, o.Escrow, kernel.InEscrow))
	c.KV.Delete(schema.IDKey(schema.PVaultObject, o.ID))
	c.KV.Delete(schema.IDKey(schema.PVaultManifest, o.ID))
	c.KV.Delete(schema.PVaultByRoot + string(o.Root[:]) + schema.BE64(o.ID))
	c.KV.Delete(schema.OwnedKey(schema.PVaultByOwner, o.Owner, o.ID))
	c.Emit(api.EventVaultUnplaced, api.AttrObjectID, o.ID, api.AttrOwner, o.Owner, api.AttrRefund, o.Escrow, api.AttrReason, reason)
}
