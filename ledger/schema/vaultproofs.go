package schema

import (
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault/layout"
)

// The Vault's storage proofs, pool and repairs (package storage, proofs.go).
const (
	PVaultEpoch    = "vz/" // epoch -> VaultEpoch: its seed, start and tally
	PVaultCommit   = "vk/" // epoch | auditor -> a beacon commitment landed in that epoch
	PVaultBeacon   = "vx/" // epoch -> the XOR of the reveals that make its seed | their count
	PVaultAttested = "va/" // epoch | auditor -> empty, or the last shard it named (object id | ordinal) when it may name more
	PVaultFailVote = "vf/" // epoch | object id | ordinal | auditor: it named the shard failed
	PVaultStreak   = "vl/" // object id | ordinal -> last failed epoch | epochs failed in a row
	PVaultRepair   = "vq/" // object id | ordinal -> VaultRepairRec: open repairs
	PVaultProvider = "vp/" // provider -> VaultProvider: its shards, rates and earnings
	KeyVaultPool   = "vaultpool"
	// KeyVaultRepairCursor is the open repair (object id | ordinal) the last tally stopped at.
	KeyVaultRepairCursor = "vaultrepaircursor"

	// A tally that did not finish in its block (it has a share of each block's gas, like the end-of-block
	// sweeps) keeps what it found so far, until it finishes: written only then, so a tally done in one block
	// leaves nothing.
	KeyVaultTally   = "vaulttally" // VaultTallyRec: the epoch being tallied, its phase, cursor and counts
	PVaultUnpaid    = "vu/"        // provider -> VaultUnpaid: its shards of the epoch that did not pass
	PVaultLostQ     = "vj/"        // object id | ordinal: a shard the tally found lost, to take from its provider
	PVaultNotPassed = "vn/"        // object id | ordinal: a shard under repair that did not pass the epoch
	PVaultTallyDue  = "vt/"        // epoch: a tally due while another ran, in order
	PVaultRepairQ   = "vi/"        // place in the list -> object id | ordinal: the open repairs the tally has yet to visit
)

// Phases of a tally (VaultTallyRec.Phase).
const (
	TallyVotes   = 1 // the auditors' votes, shard by shard
	TallyStreaks = 2 // failure streaks the epoch did not extend, removed (a decided epoch only)
	TallyLose    = 3 // after pay and slashes: the lost shards taken from their providers
	TallyRepairs = 4 // the open repairs listed for the tally (at most maxRepairsPerTally), visited in order
	TallyPay     = 5 // between the streaks and the losses: each provider's pay and slash, by address (cursor: the last one)
)

// tallyCursorLen is the length of a phase's cursor when it has one: a provider's address in the pay pass, an
// object id and an ordinal in the others.
func tallyCursorLen(phase uint8) int {
	if phase == TallyPay {
		return tx.AddressLen
	}
	return 12
}

// VaultTallyRec is a tally in progress: its epoch and phase, the last shard (object id | ordinal) the phase
// finished with (empty: none yet), the auditor weight that attested and in all, whether the epoch is decided,
// and what it found and paid so far.
type VaultTallyRec struct {
	Epoch        uint64
	Phase        uint8
	Cursor       []byte
	Spoke, Total uint64
	Decided      bool
	Failed, Lost uint64
	Paid         uint64
	EpochMissing bool // the epoch's record is gone (older than the records kept): its votes are only removed
}

func EncVaultTally(t *VaultTallyRec) []byte {
	w := tx.NewWriter(80)
	w.Bounded("epoch", t.Epoch, 1<<62)
	w.Bounded("phase", uint64(t.Phase), TallyPay)
	if t.Phase == 0 {
		w.Fail("phase", "0 is no phase")
	}
	w.BlobMax("cursor", t.Cursor, tx.AddressLen)
	if n := len(t.Cursor); n != 0 && n != tallyCursorLen(t.Phase) {
		w.Fail("cursor", "%d bytes in phase %d: an address (the pay pass), an object id and an ordinal (the others), or none", n, t.Phase)
	}
	w.Bounded("spoke", t.Spoke, 1<<63)
	w.Bounded("total", t.Total, 1<<63)
	w.Bool(t.Decided)
	w.Bounded("failed", t.Failed, 1<<40)
	w.Bounded("lost", t.Lost, 1<<40)
	w.Bounded("paid", t.Paid, 1<<63)
	w.Bool(t.EpochMissing)
	return sealed(w, "vault tally")
}

func DecVaultTally(b []byte) (*VaultTallyRec, error) {
	r := tx.NewReader(b)
	t := &VaultTallyRec{Epoch: r.Bounded("epoch", 1<<62), Phase: uint8(r.Bounded("phase", TallyPay))}
	if t.Phase == 0 && r.Err() == nil {
		r.Fail("phase", "0 is no phase")
	}
	t.Cursor = r.Blob("cursor", tx.AddressLen)
	if n := len(t.Cursor); n != 0 && n != tallyCursorLen(t.Phase) && r.Err() == nil {
		r.Fail("cursor", "%d bytes in phase %d: an address (the pay pass), an object id and an ordinal (the others), or none", n, t.Phase)
	}
	if len(t.Cursor) == 0 {
		t.Cursor = nil
	}
	t.Spoke, t.Total, t.Decided = r.Bounded("spoke", 1<<63), r.Bounded("total", 1<<63), r.Bool("decided")
	t.Failed, t.Lost, t.Paid = r.Bounded("failed", 1<<40), r.Bounded("lost", 1<<40), r.Bounded("paid", 1<<63)
	t.EpochMissing = r.Bool("epoch_missing")
	return t, r.Done("vault tally")
}

// VaultUnpaid is what a tally in progress found of a provider's shards that did not pass: their rate, how many,
// and how many failed.
type VaultUnpaid struct{ Rate, Shards, Failed uint64 }

func EncVaultUnpaid(u VaultUnpaid) []byte {
	w := tx.NewWriter(24)
	w.Bounded("rate", u.Rate, 1<<62)
	w.Bounded("shards", u.Shards, MaxVaultShardCount)
	w.Bounded("failed", u.Failed, MaxVaultShardCount)
	if u.Failed > u.Shards {
		w.Fail("failed", "%d failed of %d shards", u.Failed, u.Shards)
	}
	return sealed(w, "vault unpaid")
}

func DecVaultUnpaid(b []byte) (VaultUnpaid, error) {
	r := tx.NewReader(b)
	u := VaultUnpaid{Rate: r.Bounded("rate", 1<<62), Shards: r.Bounded("shards", MaxVaultShardCount), Failed: r.Bounded("failed", MaxVaultShardCount)}
	if u.Failed > u.Shards && r.Err() == nil {
		r.Fail("failed", "%d failed of %d shards", u.Failed, u.Shards)
	}
	return u, r.Done("vault unpaid")
}

// MaxVaultShardCount bounds a provider's shard count (its capacity in the smallest shards).
const MaxVaultShardCount = tx.MaxStorageCapacity / layout.GroupSize

// ShardOrdKey is an object id | ordinal.
func ShardOrdKey(prefix string, id uint64, ord uint32) string { return prefix + BE64(id) + BE32(ord) }

// VaultShardRec is a placed shard's record: its provider (zero when lost), the price it is paid at, the height
// a repair drew it onto that provider (0: placed with its object), and the height its provider declared it
// held (HoldShards; 0: not yet) — challenged and paid only from the epoch after that.
type VaultShardRec struct {
	Provider     tx.Address
	Price        uint64
	RepairHeight int64
	HeldHeight   int64
}

// EncVaultShard stores a shard's record; the two heights are written only when one is set (the record's form
// before proofs, which a chain's older state holds, is the provider and price alone).
func EncVaultShard(s VaultShardRec) []byte {
	w := tx.NewWriter(40)
	w.Address(s.Provider)
	w.Bounded("price_per_gib_month", s.Price, tx.MaxStoragePrice)
	if s.RepairHeight > 0 || s.HeldHeight > 0 {
		w.Bounded("repair_height", uint64(s.RepairHeight), 1<<62)
		w.Bounded("held_height", uint64(s.HeldHeight), 1<<62)
	}
	return sealed(w, "vault shard")
}

func DecVaultShard(b []byte) (VaultShardRec, error) {
	r := tx.NewReader(b)
	s := VaultShardRec{Provider: r.Address("provider"), Price: r.Bounded("price_per_gib_month", tx.MaxStoragePrice)}
	if r.Err() == nil && r.Remaining() > 0 {
		s.RepairHeight, s.HeldHeight = int64(r.Bounded("repair_height", 1<<62)), int64(r.Bounded("held_height", 1<<62))
		if s.RepairHeight == 0 && s.HeldHeight == 0 && r.Err() == nil {
			r.Fail("held_height", "both heights 0 are written by leaving them out")
		}
	}
	return s, r.Done("vault shard")
}

func EncVaultEpoch(e *api.VaultEpoch) []byte {
	w := tx.NewWriter(96)
	w.Raw(e.Seed[:])
	w.Bounded("reveals", uint64(e.Reveals), 1<<32)
	w.Bounded("start_height", uint64(e.StartHeight), 1<<62)
	w.Bounded("start_ms", e.StartMs, 1<<62)
	w.Bool(e.Tallied)
	w.Bool(e.Decided)
	w.Bounded("failed", uint64(e.Failed), 1<<40)
	w.Bounded("lost", uint64(e.Lost), 1<<40)
	w.Bounded("paid", e.Paid, 1<<63)
	return sealed(w, "vault epoch")
}

func DecVaultEpoch(epoch uint64, b []byte) (*api.VaultEpoch, error) {
	r := tx.NewReader(b)
	e := &api.VaultEpoch{Epoch: epoch, Seed: r.Hash("seed"), Reveals: int(r.Bounded("reveals", 1<<32)),
		StartHeight: int64(r.Bounded("start_height", 1<<62)), StartMs: r.Bounded("start_ms", 1<<62),
		Tallied: r.Bool("tallied"), Decided: r.Bool("decided"), Failed: int(r.Bounded("failed", 1<<40)),
		Lost: int(r.Bounded("lost", 1<<40)), Paid: r.Bounded("paid", 1<<63)}
	return e, r.Done("vault epoch")
}

func EncVaultPool(p *api.VaultPool) []byte {
	w := tx.NewWriter(40)
	w.Bounded("balance", p.Balance, 1<<63)
	w.Bounded("perm_bytes", p.PermBytes, 1<<62)
	w.Bounded("term_bytes", p.TermBytes, 1<<62)
	w.Bounded("paid_total", p.PaidTotal, 1<<63)
	return sealed(w, "vault pool")
}

func DecVaultPool(b []byte) (*api.VaultPool, error) {
	r := tx.NewReader(b)
	p := &api.VaultPool{Balance: r.Bounded("balance", 1<<63), PermBytes: r.Bounded("perm_bytes", 1<<62),
		TermBytes: r.Bounded("term_bytes", 1<<62), PaidTotal: r.Bounded("paid_total", 1<<63)}
	return p, r.Done("vault pool")
}

func EncVaultProvider(p *api.VaultProvider) []byte {
	w := tx.NewWriter(64)
	w.Bounded("shards", p.Shards, MaxVaultShardCount)
	w.Bounded("bytes", p.Bytes, tx.MaxStorageCapacity)
	w.Bounded("term_rate", p.TermRate, 1<<62)
	w.Bounded("perm_rate", p.PermRate, 1<<62)
	w.Bounded("earned", p.Earned, 1<<63)
	w.Bounded("failed", p.Failed, 1<<62)
	w.Bounded("last_paid", p.LastPaid, 1<<62)
	w.Bounded("owed", p.Owed, api.VaultPayUnit-1)
	return sealed(w, "vault provider")
}

func DecVaultProvider(a tx.Address, b []byte) (*api.VaultProvider, error) {
	r := tx.NewReader(b)
	p := &api.VaultProvider{Provider: a, Shards: r.Bounded("shards", MaxVaultShardCount), Bytes: r.Bounded("bytes", tx.MaxStorageCapacity),
		TermRate: r.Bounded("term_rate", 1<<62), PermRate: r.Bounded("perm_rate", 1<<62), Earned: r.Bounded("earned", 1<<63),
		Failed: r.Bounded("failed", 1<<62), LastPaid: r.Bounded("last_paid", 1<<62), Owed: r.Bounded("owed", api.VaultPayUnit-1)}
	return p, r.Done("vault provider")
}

// EncVaultStreak is a shard's failure streak: the last epoch it failed and how many in a row.
func EncVaultStreak(last, count uint64) []byte {
	w := tx.NewWriter(12)
	w.Bounded("last_failed", last, 1<<62)
	w.Bounded("failures", count, 1<<32)
	return sealed(w, "vault streak")
}

func DecVaultStreak(b []byte) (last, count uint64, err error) {
	r := tx.NewReader(b)
	last, count = r.Bounded("last_failed", 1<<62), r.Bounded("failures", 1<<32)
	return last, count, r.Done("vault streak")
}

// EncVaultBeacon is an epoch's beacon accumulator: the XOR of its reveals' hashes and their count.
func EncVaultBeacon(acc tx.Hash, n int) []byte {
	w := tx.NewWriter(40)
	w.Raw(acc[:])
	w.Bounded("reveals", uint64(n), 1<<32)
	return sealed(w, "vault beacon")
}

func DecVaultBeacon(b []byte) (tx.Hash, int, error) {
	r := tx.NewReader(b)
	acc, n := r.Hash("acc"), int(r.Bounded("reveals", 1<<32))
	return acc, n, r.Done("vault beacon")
}

// VaultRepairRec is an open repair: the epoch the shard was lost or last drawn, the providers drawn for it so
// far, and the provider not to draw it onto (the one that lost it, or the last that did not rebuild it).
type VaultRepairRec struct {
	Since    uint64
	Attempts uint64
	Not      tx.Address
}

func EncVaultRepair(r VaultRepairRec) []byte {
	w := tx.NewWriter(40)
	w.Bounded("since", r.Since, 1<<62)
	w.Bounded("attempts", r.Attempts, api.VaultRepairAttempts)
	w.Address(r.Not)
	return sealed(w, "vault repair")
}

func DecVaultRepair(b []byte) (VaultRepairRec, error) {
	r := tx.NewReader(b)
	v := VaultRepairRec{Since: r.Bounded("since", 1<<62), Attempts: r.Bounded("attempts", api.VaultRepairAttempts), Not: r.Address("not")}
	return v, r.Done("vault repair")
}
