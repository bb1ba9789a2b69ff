package api

import (
	"fmt"

	"github.com/sparenet/spare/ledger/tx"
)

// GiB is the unit storage prices are quoted per.
const GiB = 1 << 30

// VaultState is where a stored object stands.
type VaultState string

const (
	// VaultPlacing: stored, its providers to be drawn at the end of block PlaceAt.
	VaultPlacing VaultState = "placing"
	// VaultPlaced: every shard has a provider; the owner uploads each shard to it.
	VaultPlaced VaultState = "placed"
)

// VaultObject is an object stored in Spare Vault (tx.StoreObject): its content address and layout, its deal
// and where it stands. Its shards, with their roots and providers, are listed by QueryVaultShards.
type VaultObject struct {
	ID        uint64     `json:"id"`
	Owner     tx.Address `json:"owner"`
	Root      tx.Hash    `json:"root"`
	Size      uint64     `json:"size"`
	K         int        `json:"k"`
	M         int        `json:"m"`
	ShardSize uint64     `json:"shard_size"`
	Stripes   int        `json:"stripes"`
	// Months is a term deal's length; 0 is a permanent deal (an endowment).
	Months              uint64 `json:"months"`
	MaxPricePerGiBMonth uint64 `json:"max_price_per_gib_month"`
	// Escrow is what the deal holds for the shards' providers: at store, the most the deal can cost; once
	// placed, what it costs at the drawn providers' prices (the difference refunded).
	Escrow  uint64     `json:"escrow"`
	Height  int64      `json:"height"`   // stored in
	PlaceAt int64      `json:"place_at"` // the block whose end draws its providers
	State   VaultState `json:"state"`
	// EndMs is when a term deal ends (block time, ms; set once placed: the draw's block time plus Months of
	// MonthMs): its shards' providers are paid their escrow, the offers' room is released and the object leaves
	// the state. 0 for a permanent deal.
	EndMs int64 `json:"end_ms,omitempty"`
	// Pooled: once placed, its escrow went into the Vault pool, which pays its shards' providers every epoch for
	// the shards that did not fail their proofs (api/vaultproofs.go). A chain without auditing
	// (params.epoch_blocks 0) keeps the escrow in the object and pays a term deal at its end, as placed.
	Pooled bool `json:"pooled,omitempty"`
}

// MonthMs is a storage month: 30 days.
const MonthMs = 30 * 24 * 3600 * 1000

// Shards is the object's shard count, parity included.
func (o *VaultObject) Shards() int { return o.Stripes * (o.K + o.M) }

// StoredBytes is what its providers hold in all.
func (o *VaultObject) StoredBytes() uint64 { return uint64(o.Shards()) * o.ShardSize }

// VaultShard is one shard of a stored object: its place in the object (stripe, index: K data shards then M
// parity), its root, and — once placed — its provider, the price it is paid at, and how to reach it.
type VaultShard struct {
	ObjectID         uint64     `json:"object_id"`
	Stripe           int        `json:"stripe"`
	Index            int        `json:"index"`
	Ordinal          int        `json:"ordinal"` // Stripe × (K+M) + Index: how transactions name it (tx.ShardRef)
	Root             tx.Hash    `json:"root"`
	Provider         tx.Address `json:"provider,omitzero"`
	PricePerGiBMonth uint64     `json:"price_per_gib_month"`
	HostURI          string     `json:"host_uri,omitempty"`
	Fingerprint      tx.Hash    `json:"fingerprint,omitzero"`
	Region           string     `json:"region,omitempty"`
	// Proofs (api/vaultproofs.go). Lost: its provider lost it and no other provider had room to take it yet
	// (Provider is zero). RepairHeight: the height it was drawn onto Provider to be rebuilt there (0 for a shard
	// placed with its object); Repairing while that repair's first proof has not passed. Failures: the epochs in a
	// row it failed, up to LastFailed (0 and 0 when it failed none lately).
	// HeldHeight: the height its provider declared it held (HoldShards); 0 until then — it is challenged and paid
	// only from the epoch after.
	HeldHeight   int64  `json:"held_height,omitempty"`
	Lost         bool   `json:"lost,omitempty"`
	RepairHeight int64  `json:"repair_height,omitempty"`
	Repairing    bool   `json:"repairing,omitempty"`
	Failures     uint64 `json:"failures,omitempty"`
	LastFailed   uint64 `json:"last_failed_epoch,omitempty"`
}

// Vault queries.
const (
	// QueryVaultObject is one object (IDRequest).
	QueryVaultObject = "vault_object"
	// QueryVaultObjects lists objects by id (VaultObjectsRequest): an owner's, or those with a root.
	QueryVaultObjects = "vault_objects"
	// QueryVaultShards lists an object's shards in order, stripe by stripe (VaultShardsRequest).
	QueryVaultShards = "vault_shards"
	// QueryVaultHeld lists the shards with a root placed on a provider (VaultHeldRequest): what it must accept
	// and keep.
	QueryVaultHeld = "vault_held"
	// QueryVaultPlacedOn pages the shards placed on a provider (VaultPlacedOnRequest), by root: what it must hold,
	// and rebuild when RepairHeight is set and it does not hold it yet.
	QueryVaultPlacedOn = "vault_placed_on"
)

// VaultPlacedOnRequest pages a provider's placed shards: after the shard (AfterRoot, AfterObject, AfterOrdinal)
// when HasAfter, at most Limit.
type VaultPlacedOnRequest struct {
	Provider     tx.Address `json:"provider"`
	HasAfter     bool       `json:"has_after,omitempty"`
	AfterRoot    tx.Hash    `json:"after_root,omitzero"`
	AfterObject  uint64     `json:"after_object,omitempty"`
	AfterOrdinal uint32     `json:"after_ordinal,omitempty"`
	// Unheld keeps only the shards its provider has not declared held yet (HoldShards).
	Unheld bool `json:"unheld,omitempty"`
	Limit  int  `json:"limit,omitempty"`
}

// VaultObjectsRequest names an owner or a root (exactly one), and a page: ids after After, at most Limit.
type VaultObjectsRequest struct {
	Owner tx.Address `json:"owner,omitzero"`
	Root  tx.Hash    `json:"root,omitzero"`
	After uint64     `json:"after,omitempty"`
	Limit int        `json:"limit,omitempty"`
}

// VaultShardsRequest pages an object's shards: From is the first shard's ordinal (stripe·(K+M)+index).
type VaultShardsRequest struct {
	ID    uint64 `json:"id"`
	From  int    `json:"from,omitempty"`
	Limit int    `json:"limit,omitempty"`
}

// VaultHeldRequest names a provider and a shard root.
type VaultHeldRequest struct {
	Provider tx.Address `json:"provider"`
	Root     tx.Hash    `json:"root"`
}

// TermCost is what a term deal pays for one shard of shardBytes for months at price uspr per GiB-month, rounded
// up; ok is false when it does not fit 64 bits.
func TermCost(shardBytes, price, months uint64) (uint64, bool) {
	return tx.MulDivUp(shardBytes, price*months, GiB) // price ≤ 1e9 and months ≤ 1200: the product fits
}

// Endowment is what a permanent deal for storedBytes escrows: a GiB-year's cost (params.storage_gib_year_cost)
// for every year to come, each year's cost lower by params.storage_decline_ppm, summed — cost ÷ decline a GiB.
func (p Params) Endowment(storedBytes uint64) (uint64, error) {
	if p.StorageGiBYearCost == 0 || p.StorageDeclinePPM == 0 {
		return 0, fmt.Errorf("this chain prices no permanent storage (params.storage_gib_year_cost and storage_decline_ppm are 0): store for a term (months > 0)")
	}
	perGiB, ok := tx.MulDivUp(p.StorageGiBYearCost, tx.PPM, p.StorageDeclinePPM)
	if !ok {
		return 0, fmt.Errorf("endowment of a GiB overflows")
	}
	e, ok := tx.MulDivUp(storedBytes, perGiB, GiB)
	if !ok {
		return 0, fmt.Errorf("endowment of %d bytes overflows", storedBytes)
	}
	return e, nil
}

// PermanentPrice is the highest price per GiB-month a permanent deal's shards are placed at: the endowment's
// yearly rate, a twelfth a month.
func (p Params) PermanentPrice() uint64 { return p.StorageGiBYearCost / 12 }
