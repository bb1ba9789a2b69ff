package tx

import "crypto/sha256"

// Spare Vault's messages: storage offers, objects, and the storage proofs (docs/vault.md).

// MaxStorageCapacity bounds what one provider offers to store (1 PiB).
const MaxStorageCapacity = 1 << 50

// MaxStoragePrice bounds a storage price: 1,000 SPR per GiB-month.
const MaxStoragePrice = 1_000_000_000

// OfferStorage is a registered provider offering disk to Spare Vault: capacity bytes in all, at a price in uspr
// per GiB-month. It replaces the provider's previous offer; capacity 0 withdraws it (nothing new is placed on
// the provider; what it holds stays its duty).
type OfferStorage struct {
	CapacityBytes    uint64 `json:"capacity_bytes"`
	PricePerGiBMonth uint64 `json:"price_per_gib_month"`
}

func (*OfferStorage) Type() MsgType { return TypeOfferStorage }
func (m *OfferStorage) ValidateBasic() error {
	if m.CapacityBytes > MaxStorageCapacity {
		return Errorf(CodeInvalidMsg, "capacity_bytes %d above %d (1 PiB)", m.CapacityBytes, uint64(MaxStorageCapacity))
	}
	if m.CapacityBytes > 0 && m.PricePerGiBMonth == 0 {
		return Errorf(CodeInvalidMsg, "price_per_gib_month must be positive for an offer of capacity (0 capacity withdraws the offer)")
	}
	if m.PricePerGiBMonth > MaxStoragePrice {
		return Errorf(CodeInvalidMsg, "price_per_gib_month %d above %d uspr", m.PricePerGiBMonth, uint64(MaxStoragePrice))
	}
	return nil
}
func (m *OfferStorage) encode(w *Writer) { w.Uvarint(m.CapacityBytes); w.Uvarint(m.PricePerGiBMonth) }
func (m *OfferStorage) decode(r *Reader) {
	m.CapacityBytes = r.Uvarint("capacity_bytes")
	m.PricePerGiBMonth = r.Uvarint("price_per_gib_month")
}

// MaxStorageMonths bounds a term deal (100 years); a longer one is a permanent deal.
const MaxStorageMonths = 1200

// MaxManifestInTx is the most manifest bytes a StoreObject carries: what fits a transaction with its envelope (a
// root per shard: about 1,000 shards, 33 stripes of 10+20; ~21 GiB at 64 MiB shards).
const MaxManifestInTx = MaxTxBytes - 1024

// StoreObject stores an object in Spare Vault: its manifest (vault/layout's encoding: root, coding, size and every
// shard's root), and the deal. Months > 0 is a term deal paid at each shard's provider's price, at most
// MaxPricePerGiBMonth uspr per GiB-month of the shard's bytes (parity included); Months 0 is a permanent deal,
// paying an endowment priced from params (MaxPricePerGiBMonth must then be 0). The ledger draws the shards'
// providers at the end of the next block; the owner then uploads each shard to its provider.
type StoreObject struct {
	Manifest            []byte `json:"manifest"`
	Months              uint64 `json:"months"`
	MaxPricePerGiBMonth uint64 `json:"max_price_per_gib_month"`
}

func (*StoreObject) Type() MsgType { return TypeStoreObject }
func (m *StoreObject) ValidateBasic() error {
	switch {
	case len(m.Manifest) == 0:
		return Errorf(CodeInvalidMsg, "manifest is empty: give the object's manifest (spare store put makes it)")
	case len(m.Manifest) > MaxManifestInTx:
		return Errorf(CodeInvalidMsg, "manifest of %d bytes: at most %d in a transaction; store the object with a larger shard_size, or as several objects", len(m.Manifest), MaxManifestInTx)
	case m.Months > MaxStorageMonths:
		return Errorf(CodeInvalidMsg, "months %d: at most %d (100 years); use 0 for a permanent deal", m.Months, MaxStorageMonths)
	case m.Months > 0 && m.MaxPricePerGiBMonth == 0:
		return Errorf(CodeInvalidMsg, "max_price_per_gib_month is 0: a term deal needs the most it pays per GiB-month (see spare offers --storage)")
	case m.Months == 0 && m.MaxPricePerGiBMonth != 0:
		return Errorf(CodeInvalidMsg, "max_price_per_gib_month %d on a permanent deal (months 0): a permanent deal pays the params' endowment rate; give 0", m.MaxPricePerGiBMonth)
	case m.MaxPricePerGiBMonth > MaxStoragePrice:
		return Errorf(CodeInvalidMsg, "max_price_per_gib_month %d above %d uspr", m.MaxPricePerGiBMonth, uint64(MaxStoragePrice))
	}
	return nil
}
func (m *StoreObject) encode(w *Writer) {
	w.BlobMax("manifest", m.Manifest, MaxManifestInTx)
	w.Uvarint(m.Months)
	w.Uvarint(m.MaxPricePerGiBMonth)
}
func (m *StoreObject) decode(r *Reader) {
	m.Manifest = r.Blob("manifest", MaxManifestInTx)
	m.Months = r.Uvarint("months")
	m.MaxPricePerGiBMonth = r.Uvarint("max_price_per_gib_month")
}

// MaxFailedShards bounds the shards one AttestStorage names as failed; an auditor with more to name sends
// further AttestStorage for the epoch, each after a full one and starting after the last shard it named.
const MaxFailedShards = 1000

// ShardRef names a placed shard: its object and its ordinal in it (stripe·(K+M) + index).
type ShardRef struct {
	Object  uint64 `json:"object"`
	Ordinal uint32 `json:"ordinal"`
}

// Less orders shard references by object, then ordinal.
func (a ShardRef) Less(b ShardRef) bool {
	return a.Object < b.Object || a.Object == b.Object && a.Ordinal < b.Ordinal
}

// Compare is Less as a three-way comparison (slices.SortFunc).
func (a ShardRef) Compare(b ShardRef) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}

// AttestStorage is an auditor's verdict on an epoch's storage proofs: it challenged every shard the epoch
// challenges (docs/vault.md) and Failed lists, in increasing order, those whose provider did not answer with a
// valid proof of the challenged group. A shard it does not name passed with this auditor. A list of
// MaxFailedShards may be continued by another AttestStorage for the epoch, naming shards after its last.
type AttestStorage struct {
	Epoch  uint64     `json:"epoch"`
	Failed []ShardRef `json:"failed"`
}

func (*AttestStorage) Type() MsgType          { return TypeAttestStorage }
func (m *AttestStorage) ValidateBasic() error { return validShardRefs("failed", m.Failed) }
func (m *AttestStorage) encode(w *Writer)     { w.Uvarint(m.Epoch); encShardRefs(w, "failed", m.Failed) }
func (m *AttestStorage) decode(r *Reader) {
	m.Epoch = r.Uvarint("epoch")
	m.Failed = decShardRefs(r, "failed")
}

// validShardRefs checks a list of shards: at most MaxFailedShards, each once, in order.
func validShardRefs(field string, refs []ShardRef) error {
	if len(refs) > MaxFailedShards {
		return Errorf(CodeInvalidMsg, "%s names %d shards: at most %d", field, len(refs), MaxFailedShards)
	}
	for i := 1; i < len(refs); i++ {
		if !refs[i-1].Less(refs[i]) {
			return Errorf(CodeInvalidMsg, "%s[%d] (object %d, ordinal %d) is not after %s[%d]: list each shard once, ordered by object then ordinal",
				field, i, refs[i].Object, refs[i].Ordinal, field, i-1)
		}
	}
	return nil
}

func encShardRefs(w *Writer, field string, refs []ShardRef) {
	w.List(field, len(refs), MaxFailedShards)
	for _, f := range refs {
		w.Uvarint(f.Object)
		w.Bounded(field+".ordinal", uint64(f.Ordinal), 1<<32-1)
	}
}

func decShardRefs(r *Reader, field string) []ShardRef {
	n := r.Count(field, MaxFailedShards)
	refs := make([]ShardRef, 0, n)
	for range n {
		obj, ord := r.Uvarint(field+".object"), r.Uvarint(field+".ordinal")
		if ord > 1<<32-1 {
			r.Fail(field+".ordinal", "%d does not fit 32 bits", ord)
			return refs
		}
		refs = append(refs, ShardRef{obj, uint32(ord)})
	}
	return refs
}

// HoldShards is a storage provider declaring that it holds shards placed on it (received from their owner, or
// rebuilt by a repair): from the epoch after, each is challenged every epoch and paid for when it passes. A
// shard is never challenged before its provider declares it (an owner who never uploads cannot have an honest
// provider slashed), and never paid. At most MaxFailedShards, each once, in order.
type HoldShards struct {
	Shards []ShardRef `json:"shards"`
}

func (*HoldShards) Type() MsgType          { return TypeHoldShards }
func (m *HoldShards) ValidateBasic() error { return validShardRefs("shards", m.Shards) }
func (m *HoldShards) encode(w *Writer)     { encShardRefs(w, "shards", m.Shards) }
func (m *HoldShards) decode(r *Reader)     { m.Shards = decShardRefs(r, "shards") }

// AuditorBeacon is an auditor's part of the Vault's challenge seed (docs/vault.md): Commit is the SHA-256 of a
// secret (BeaconCommit) it will reveal in the next epoch; Reveal is the secret it committed to in the epoch
// before (zero when it committed none). One a epoch an auditor; the reveals that land in epoch e make the seed
// of epoch e+1.
type AuditorBeacon struct {
	Commit Hash `json:"commit"`
	Reveal Hash `json:"reveal"`
}

// BeaconCommit is the commitment to a beacon secret.
func BeaconCommit(secret Hash) Hash {
	return sha256.Sum256(append([]byte("spare/vault-beacon\x00"), secret[:]...))
}

func (*AuditorBeacon) Type() MsgType        { return TypeAuditorBeacon }
func (*AuditorBeacon) ValidateBasic() error { return nil }
func (m *AuditorBeacon) encode(w *Writer)   { w.Raw(m.Commit[:]); w.Raw(m.Reveal[:]) }
func (m *AuditorBeacon) decode(r *Reader)   { m.Commit, m.Reveal = r.Hash("commit"), r.Hash("reveal") }
