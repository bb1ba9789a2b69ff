package api

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/sparenet/spare/ledger/tx"
)

// Storage proofs (docs/vault.md). Every epoch each placed shard is challenged at one 16 KiB group chosen from
// the epoch's seed; the auditors fetch the proof from the shard's provider (GET /vault/shards/{root}/proof?group=N)
// and check it against the shard's root, then send AttestStorage naming the shards that failed. At the epoch's
// tally (with the liveness tally, at the end of the epoch after it), a shard named by auditors holding two thirds
// of the auditor weight failed; one that auditors holding two thirds attested without naming passed. Providers
// are paid each epoch from the Vault pool for the shards that did not fail; a failed shard slashes its provider
// and a shard that fails VaultLostAfterFailures epochs in a row is lost and drawn onto another provider, which
// rebuilds it from the stripe's other shards (a repair) and is paid VaultRepairMonths of the shard's price once
// its first proof passes.

// VaultGroupSize is the bytes one challenge proves (vault/layout.GroupSize).
const VaultGroupSize = 16 << 10

// VaultLostAfterFailures is how many epochs in a row a shard may fail before it is lost and repaired elsewhere.
const VaultLostAfterFailures = 2

// VaultRepairEpochs is the least number of epochs the provider a repair was drawn onto has to rebuild the shard
// and declare it held (HoldShards) before it is drawn elsewhere; VaultRepairDeadline adds time for the bytes.
const VaultRepairEpochs = 3

// VaultRepairBytesPerEpoch is what a repairer is assumed to read in an epoch on top of VaultRepairEpochs: 256 MiB
// (8.5 MiB/s at the default 30-second epochs).
const VaultRepairBytesPerEpoch = 256 << 20

// VaultRepairAttempts bounds the providers a repair is drawn onto: a shard none of them rebuilt and declared in
// time (its stripe's shards were never one Reed-Solomon codeword, or none could read them) stays lost.
const VaultRepairAttempts = 4

// VaultRepairDeadline is the epochs a repairer has to rebuild a shard of an object coded k+m in shardSize-byte
// shards: VaultRepairEpochs, and an epoch for every VaultRepairBytesPerEpoch of the k shards it reads.
func VaultRepairDeadline(k int, shardSize uint64) uint64 {
	return VaultRepairEpochs + uint64(k)*shardSize/VaultRepairBytesPerEpoch
}

// VaultRepairMonths is what a repair pays once the rebuilt shard's first proof passes: this many months of the
// shard at its new provider's price, from the Vault pool.
const VaultRepairMonths = 1

// ChallengeGroup is the group of a shard that epoch's seed challenges: SHA-256 over the seed, the shard's root,
// its object and ordinal, modulo the shard's groups.
func ChallengeGroup(seed, root tx.Hash, object uint64, ordinal uint32, shardSize uint64) uint64 {
	groups := shardSize / VaultGroupSize
	if groups == 0 {
		return 0
	}
	var b [len("spare/vault-challenge\x00") + 32 + 32 + 8 + 4]byte
	n := copy(b[:], "spare/vault-challenge\x00")
	n += copy(b[n:], seed[:])
	n += copy(b[n:], root[:])
	binary.BigEndian.PutUint64(b[n:], object)
	binary.BigEndian.PutUint32(b[n+8:], ordinal)
	h := sha256.Sum256(b[:])
	return binary.BigEndian.Uint64(h[:8]) % groups
}

// VaultEpoch is the Vault's record of an auditing epoch: the seed its challenges are drawn from (fixed at its
// first block from the auditors' beacon reveals landed in the epoch before), when it started, and — once
// tallied — what its proofs decided.
type VaultEpoch struct {
	Epoch       uint64  `json:"epoch"`
	Seed        tx.Hash `json:"seed"`
	Reveals     int     `json:"reveals"` // auditor secrets mixed into the seed
	StartHeight int64   `json:"start_height"`
	StartMs     uint64  `json:"start_ms"`
	// Challenged shards are those of objects placed before StartHeight (and repaired shards placed on their new
	// provider before it).
	Tallied bool `json:"tallied"`
	// Filled at the tally.
	Decided bool   `json:"decided,omitempty"` // auditors holding two thirds of the weight attested
	Failed  int    `json:"failed,omitempty"`  // shards failed by two thirds
	Lost    int    `json:"lost,omitempty"`    // shards lost (failed VaultLostAfterFailures epochs in a row)
	Paid    uint64 `json:"paid,omitempty"`    // uspr paid from the pool to providers for the epoch (repairs included)
}

// VaultChallenge is one shard challenged in an epoch, with where to ask for its proof.
type VaultChallenge struct {
	Object      uint64     `json:"object"`
	Ordinal     uint32     `json:"ordinal"`
	Root        tx.Hash    `json:"root"`
	ShardSize   uint64     `json:"shard_size"`
	Group       uint64     `json:"group"`
	Provider    tx.Address `json:"provider"`
	HostURI     string     `json:"host_uri,omitempty"`
	Fingerprint tx.Hash    `json:"fingerprint,omitzero"`
}

// VaultPool is the Vault's pool: term escrows and permanent endowments once placed, from which every epoch
// pays the providers of the shards that did not fail, and repairs.
type VaultPool struct {
	Balance uint64 `json:"balance"`
	// PermBytes and TermBytes are the bytes of placed shards the pool pays for.
	PermBytes uint64 `json:"perm_bytes"`
	TermBytes uint64 `json:"term_bytes"`
	// PaidTotal is what the pool has paid since genesis (epochs and repairs).
	PaidTotal uint64 `json:"paid_total"`
}

// VaultProvider is what a storage provider holds and earns in the Vault's accounting.
type VaultProvider struct {
	Provider tx.Address `json:"provider"`
	Shards   uint64     `json:"shards"`
	Bytes    uint64     `json:"bytes"`
	// Rate is Σ shard bytes × price ÷ 2^20 over its shards: it is paid Rate × epoch ms ÷ (MonthMs × 2^10) uspr an
	// epoch (permanent shards capped at the params' permanent price).
	TermRate uint64 `json:"term_rate"`
	PermRate uint64 `json:"perm_rate"`
	Earned   uint64 `json:"earned"`    // paid by the pool since its first shard
	Failed   uint64 `json:"failed"`    // shard-epochs failed
	LastPaid uint64 `json:"last_paid"` // epoch
	// Owed is what the epochs' pay left below a whole uspr, in units of 1 ÷ (MonthMs × 2^10) uspr: carried to
	// the next epoch's pay, so that a small holding paid a fraction of a uspr an epoch is still paid in full.
	Owed uint64 `json:"owed"`
}

// VaultPayUnit is what a rate × ms is divided by to make uspr.
const VaultPayUnit = uint64(MonthMs) << 10

// ShardRate is a shard's contribution to its provider's rate.
func ShardRate(shardSize, price uint64) uint64 { return tx.MulDiv(shardSize, price, 1<<20) }

// Vault proof queries.
const (
	// QueryVaultEpoch is an epoch's Vault record (EpochRequest).
	QueryVaultEpoch = "vault_epoch"
	// QueryVaultChallenges pages the shards an epoch challenges (VaultChallengesRequest), with their groups.
	QueryVaultChallenges = "vault_challenges"
	// QueryVaultPool is the pool (no request).
	QueryVaultPool = "vault_pool"
	// QueryVaultProvider is a provider's Vault accounting (AddressRequest).
	QueryVaultProvider = "vault_provider"
)

// VaultChallengesRequest pages an epoch's challenges by shard, after (AfterObject, AfterOrdinal) exclusive
// when HasAfter; Provider, when set, keeps only that provider's shards.
type VaultChallengesRequest struct {
	Epoch        uint64     `json:"epoch"`
	HasAfter     bool       `json:"has_after,omitempty"`
	AfterObject  uint64     `json:"after_object,omitempty"`
	AfterOrdinal uint32     `json:"after_ordinal,omitempty"`
	Provider     tx.Address `json:"provider,omitzero"`
	Limit        int        `json:"limit,omitempty"`
}

// VaultShardEvent is an event about one shard: EventVaultProofFailed (Failures: the epochs in a row it failed),
// EventVaultShardLost (its provider lost it: it is repaired elsewhere), EventVaultRepair (drawn onto Provider to be
// rebuilt there, at Price) and EventVaultRepaired (the rebuilt shard's first proof passed: Amount paid).
type VaultShardEvent struct {
	Type     string
	ObjectID uint64
	Stripe   uint64
	Index    uint64
	Root     tx.Hash
	Provider tx.Address
	Epoch    uint64
	Failures uint64 // EventVaultProofFailed
	Price    uint64 // EventVaultRepair
	Amount   uint64 // EventVaultRepaired
}

// ParseVaultShardEvent reads one of the shard events above.
func ParseVaultShardEvent(typ string, m map[string]string) (VaultShardEvent, error) {
	r := &attrs{typ: typ, m: m}
	e := VaultShardEvent{Type: typ, ObjectID: r.id(AttrObjectID), Stripe: r.uint(AttrStripe), Index: r.uint(AttrIndex),
		Root: r.hash(AttrRoot), Provider: r.addr(AttrProvider), Epoch: r.uint(AttrEpoch)}
	switch typ {
	case EventVaultProofFailed:
		e.Failures = r.uint(AttrFailures)
	case EventVaultRepair:
		e.Price = r.uint(AttrPrice)
	case EventVaultRepaired:
		e.Amount = r.uint(AttrAmount)
	case EventVaultShardLost:
	default:
		return e, fmt.Errorf("ledger event %s is not a Vault shard event", typ)
	}
	return e, r.err
}

// VaultEpochPaidEvent is EventVaultEpochPaid: what a provider was paid for an epoch's shards that did not fail.
type VaultEpochPaidEvent struct {
	Provider tx.Address
	Epoch    uint64
	Amount   uint64
	Shards   uint64 // shards it held at the tally
	Failed   uint64 // of them, failed (not paid)
}

// ParseVaultEpochPaid reads an EventVaultEpochPaid's attributes.
func ParseVaultEpochPaid(m map[string]string) (VaultEpochPaidEvent, error) {
	r := &attrs{typ: EventVaultEpochPaid, m: m}
	e := VaultEpochPaidEvent{Provider: r.addr(AttrProvider), Epoch: r.uint(AttrEpoch), Amount: r.uint(AttrAmount),
		Shards: r.uint(AttrShards), Failed: r.uint(AttrFailed)}
	return e, r.err
}

// VaultTalliedEvent is EventVaultTallied: an epoch's storage proofs decided (Decided: auditors holding two thirds
// of the weight attested), what failed and was lost, what the pool paid and holds after.
type VaultTalliedEvent struct {
	Epoch   uint64
	Decided bool
	Bytes   uint64 // bytes of shards held by providers after the tally
	Failed  uint64
	Lost    uint64
	Paid    uint64
	Pool    uint64
}

// ParseVaultTallied reads an EventVaultTallied's attributes.
func ParseVaultTallied(m map[string]string) (VaultTalliedEvent, error) {
	r := &attrs{typ: EventVaultTallied, m: m}
	e := VaultTalliedEvent{Epoch: r.uint(AttrEpoch), Bytes: r.uint(AttrStoredBytes), Failed: r.uint(AttrFailed),
		Lost: r.uint(AttrLost), Paid: r.uint(AttrPaid), Pool: r.uint(AttrPool)}
	switch m[AttrDecided] {
	case "true":
		e.Decided = true
	case "false":
	default:
		r.fail(AttrDecided, "true or false")
	}
	return e, r.err
}

// VaultEpochEvent is EventVaultEpoch: an epoch's seed fixed at its first block, from Reveals auditor secrets.
type VaultEpochEvent struct {
	Epoch   uint64
	Seed    tx.Hash
	Reveals uint64
	Height  uint64
}

// ParseVaultEpoch reads an EventVaultEpoch's attributes.
func ParseVaultEpoch(m map[string]string) (VaultEpochEvent, error) {
	r := &attrs{typ: EventVaultEpoch, m: m}
	e := VaultEpochEvent{Epoch: r.uint(AttrEpoch), Seed: r.hash(AttrSeed), Reveals: r.uint(AttrReveals), Height: r.uint(AttrHeight)}
	return e, r.err
}

// VaultAttestedEvent is EventVaultAttested: an auditor's attestation of an epoch's storage proofs, naming Failed
// challenged shards (one transaction's share of it).
type VaultAttestedEvent struct {
	Epoch   uint64
	Auditor tx.Address
	Failed  uint64
}

// ParseVaultAttested reads an EventVaultAttested's attributes.
func ParseVaultAttested(m map[string]string) (VaultAttestedEvent, error) {
	r := &attrs{typ: EventVaultAttested, m: m}
	e := VaultAttestedEvent{Epoch: r.uint(AttrEpoch), Auditor: r.addr(AttrAuditor), Failed: r.uint(AttrFailed)}
	return e, r.err
}

// VaultHeldEvent is EventVaultHeld: a provider declared Shards shards held (those the transaction named that were
// placed on it and not declared before).
type VaultHeldEvent struct {
	Provider tx.Address
	Shards   uint64
}

// ParseVaultHeld reads an EventVaultHeld's attributes.
func ParseVaultHeld(m map[string]string) (VaultHeldEvent, error) {
	r := &attrs{typ: EventVaultHeld, m: m}
	e := VaultHeldEvent{Provider: r.addr(AttrProvider), Shards: r.uint(AttrShards)}
	return e, r.err
}

// VaultBeaconEvent is EventVaultBeacon: an auditor's beacon in Epoch, and whether it revealed a secret.
type VaultBeaconEvent struct {
	Auditor  tx.Address
	Epoch    uint64
	Revealed bool
}

// ParseVaultBeacon reads an EventVaultBeacon's attributes.
func ParseVaultBeacon(m map[string]string) (VaultBeaconEvent, error) {
	r := &attrs{typ: EventVaultBeacon, m: m}
	e := VaultBeaconEvent{Auditor: r.addr(AttrAuditor), Epoch: r.uint(AttrEpoch)}
	switch m[AttrRevealed] {
	case "true":
		e.Revealed = true
	case "false":
	default:
		r.fail(AttrRevealed, "true or false")
	}
	return e, r.err
}
