package api

import "github.com/sparenet/spare/ledger/tx"

// StorageOffer is a provider's offer of disk to Spare Vault (tx.OfferStorage): how much it offers in all, how
// much placed shards hold of it, and its price.
type StorageOffer struct {
	Provider         tx.Address `json:"provider"`
	CapacityBytes    uint64     `json:"capacity_bytes"`
	UsedBytes        uint64     `json:"used_bytes"` // held by the shards placed on it (may exceed a lowered capacity)
	PricePerGiBMonth uint64     `json:"price_per_gib_month"`
	Height           int64      `json:"height"` // when it was last set
}

// FreeBytes is what the offer has left for new shards.
func (o *StorageOffer) FreeBytes() uint64 {
	if o.UsedBytes >= o.CapacityBytes {
		return 0
	}
	return o.CapacityBytes - o.UsedBytes
}

// StorageOfferView is an offer with what the ledger knows of its provider: where it is and whether it stands.
type StorageOfferView struct {
	StorageOffer
	Region string         `json:"region"`
	Status ProviderStatus `json:"status"`
	Stake  uint64         `json:"stake"`
}

// Storage queries: one provider's offer (AddressRequest), every offer (ListRequest, by provider address).
const (
	QueryStorageOffer  = "storage_offer"
	QueryStorageOffers = "storage_offers"
)
