package ledger

import (
	"bytes"
	"testing"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// stateCodec is one kind of object the ledger stores, with its decoder and encoder.
type stateCodec struct {
	name string
	seed []byte
	// round decodes b and re-encodes what the decoder accepted; ok is false when it refused b.
	round func(b []byte) (out []byte, ok bool)
	// older, when set, says which prefix lengths of the seed are older layouts (TestOlderStateEncodings); unset,
	// every prefix the decoder accepts is one.
	older func(n int) bool
}

// codec makes a stateCodec from a decoder and its encoder.
func codec[T any](name string, seed []byte, dec func([]byte) (T, error), enc func(T) []byte) stateCodec {
	return stateCodec{name: name, seed: seed, round: func(b []byte) ([]byte, bool) {
		v, err := dec(b)
		if err != nil {
			return nil, false
		}
		return enc(v), true
	}}
}

// stateCodecs is every object kind the ledger stores under its own encoding (the state's key layout:
// objects.go), each with a seed value that uses its optional fields.
func stateCodecs() []stateCodec {
	a := tx.Address{7}
	p := api.DefaultParams()
	return []stateCodec{
		codec("account", schema.EncAccount(&api.Account{Address: a, Balance: 9, Nonce: 3}), func(b []byte) (*api.Account, error) { return schema.DecAccount(a, b) }, schema.EncAccount),
		codec("provider", schema.EncProvider(&api.Provider{Owner: a, PubKey: make([]byte, 32), Info: tx.ProviderInfo{HostURI: "https://p.example:8443", Region: "eu",
			Hardware: tx.Hardware{GPUs: []tx.GPUGroup{{Model: "H100", VRAMMiB: 81920, Count: 2}}, CPUMilli: 4000, MemoryMiB: 8192, DiskMiB: 1000}, MaxLeaseSec: 60},
			Status: api.ProviderJailed, Stake: 5, Unbonding: 1, Completed: 2, Failed: 1, Verified: true, EpochsUp: 4, EpochsDown: 1, DownStreak: 1,
			JailedUntilMs: 7, Slashed: 3, VerifiedClass: "h100", VerifiedOps: 9, VerifiedHeight: 2, EarnedValue: 8, FailedValue: 6}), schema.DecProvider, schema.EncProvider),
		codec("provider with rewards", schema.EncProvider(&api.Provider{Owner: a, PubKey: make([]byte, 32), Status: api.ProviderActive, Stake: 5,
			RewardsOwed: 7, RewardsEarned: 9, RewardEpoch: 3, RewardWhy: api.RewardStakeShort}), schema.DecProvider, schema.EncProvider),
		codec("order", schema.EncOrder(&api.Order{ID: 3, Tenant: a, Deposit: 9, Replicas: 2, RefereeFor: 1, Nodes: 4, State: api.OrderOpen}), schema.DecOrder, schema.EncOrder),
		codec("bid", schema.EncBid(&api.Bid{ID: 5, OrderID: 3, Provider: a, Price: 9, State: api.BidOpen, CreatedHeight: 4}), schema.DecBid, schema.EncBid),
		codec("lease", schema.EncLease(&api.Lease{ID: 4, OrderID: 3, Tenant: a, Provider: a, Deposit: 9, Held: 5, State: api.LeaseCompleted, CloseReason: "x", ManifestDelivered: true}), schema.DecLease, schema.EncLease),
		codec("supply", schema.EncSupply(&api.Supply{Genesis: 100, Minted: 1, Burned: 2, Balances: 50, Escrow: 20, Staked: 10, Unbonding: 5, Pool: 14}), schema.DecSupply, schema.EncSupply),
		codec("supply with rewards", schema.EncSupply(&api.Supply{Genesis: 100, Minted: 9, Burned: 2, Balances: 50, Escrow: 20, Staked: 10, Unbonding: 5, Pool: 14, Rewards: 8}), schema.DecSupply, schema.EncSupply),
		codec("lease with burned", schema.EncLease(&api.Lease{ID: 4, OrderID: 3, Tenant: a, Provider: a, Deposit: 9, Paid: 8, Burned: 1, State: api.LeaseCompleted}), schema.DecLease, schema.EncLease),
		codec("emission", schema.EncEmission(&api.Emission{Epoch: 4, RateNano: 16_484_000_000, Minted: 77, Last: api.RewardPots{Epoch: 3, Emission: 16,
			Auditors: 1, Availability: 8, Work: 7, UtilisationPPM: 250_000, WeightTotal: 1 << 40, Burns: 12, PaidAuditors: 1, PaidAvailability: 6, PaidWork: 5}}),
			schema.DecEmission, schema.EncEmission),
		codec("receipt", schema.EncReceipt(&tx.Receipt{ChainID: "c", LeaseID: 4, StartMs: 1, EndMs: 2, ExitCode: -1, GPUSeconds: 3, Signature: make([]byte, 64)}), schema.DecReceipt, schema.EncReceipt),
		codec("receipt with a Vault root", schema.EncReceipt(&tx.Receipt{ChainID: "c", LeaseID: 4, EndMs: 2, VaultRoot: tx.Hash{3}, Signature: make([]byte, 64)}), schema.DecReceipt, schema.EncReceipt),
		codec("params", schema.EncParams(&p), schema.DecParams, schema.EncParams),
		codec("pruned", schema.EncPruned(&api.Pruned{Orders: 3, Take: 2, Rewarded: 1}), schema.DecPruned, schema.EncPruned),
		codec("audit set", schema.EncAuditSet(schema.AuditSet{StartMs: 9, Providers: []tx.Address{{1}, {2}}}), schema.DecAuditSet, schema.EncAuditSet),
		codec("audit set with weights", schema.EncAuditSet(schema.AuditSet{StartMs: 9, Providers: []tx.Address{{1}, {2}}, Weights: []uint64{0, 1 << 40},
			Whys: []api.RewardWhy{api.RewardNoProof, api.RewardEarned}, GPUs: 9}), schema.DecAuditSet, schema.EncAuditSet),
		codec("hardware verdict", schema.EncHWVerdict(schema.HWVerdict{Passed: true, Class: "h100", Ops: 9}), schema.DecHWVerdict, schema.EncHWVerdict),
		codec("verification", schema.EncVerification(&api.Verification{OrderID: 3, Replicas: 2, Leases: []uint64{4, 5, 6}, RefereeOrder: 7, State: api.VerifyAgreed, ExitCode: -1}),
			schema.DecVerification, schema.EncVerification),
		codec("commitment", schema.EncCommitment(&api.Commitment{LeaseID: 4, OrderID: 3, Commitment: tx.Hash{1}, Height: 9, State: 1}), schema.DecCommitment, schema.EncCommitment),
		codec("cluster", schema.EncCluster(&api.Cluster{OrderID: 9, Nodes: 2, MaxRTTMicros: 5000, OnFailure: 2, Leases: []uint64{4, 5}, State: api.ClusterLeasing,
			Generation: 1, RestartsLeft: 1, Reserve: 7, PrevOrder: 3, Excluded: []tx.Address{{1}}}), schema.DecCluster, schema.EncCluster),
		func() stateCodec {
			c := codec("auditor", schema.EncAuditor(&api.Auditor{Address: a, Weight: 3, Host: "a.example:26660"}),
				func(b []byte) (*api.Auditor, error) { return schema.DecAuditor(a, b) }, schema.EncAuditor)
			c.older = func(n int) bool { return n == 8 } // the weight alone; a longer prefix is a shorter host
			return c
		}(),
		func() stateCodec {
			return codec("storage offer", schema.EncStorageOffer(&api.StorageOffer{Provider: a, CapacityBytes: 1 << 40, UsedBytes: 3 << 30, PricePerGiBMonth: 2_000, Height: 7}),
				func(b []byte) (*api.StorageOffer, error) { return schema.DecStorageOffer(a, b) }, schema.EncStorageOffer)
		}(),
		codec("latency", schema.EncLatency(&api.Latency{Height: 9, Samples: []tx.LatencySample{{Peer: a, RTTMicros: 300}}}),
			func(b []byte) (*api.Latency, error) { return schema.DecLatency(a, b) }, schema.EncLatency),
		codec("vault object", schema.EncVaultObject(&api.VaultObject{ID: 4, Owner: a, Root: tx.Hash{1, 2}, Size: 9 << 20, K: 2, M: 2, ShardSize: 4 << 20,
			Stripes: 2, Months: 12, MaxPricePerGiBMonth: 2_000, Escrow: 77, Height: 5, PlaceAt: 6, State: api.VaultPlaced}),
			func(b []byte) (*api.VaultObject, error) { return schema.DecVaultObject(4, b) }, schema.EncVaultObject),
		func() stateCodec {
			c := codec("vault shard", schema.EncVaultShard(schema.VaultShardRec{Provider: a, Price: 2_000, RepairHeight: 9, HeldHeight: 12}),
				func(b []byte) (*schema.VaultShardRec, error) { r, err := schema.DecVaultShard(b); return &r, err },
				func(v *schema.VaultShardRec) []byte { return schema.EncVaultShard(*v) })
			c.older = func(n int) bool {
				return n == len(schema.EncVaultShard(schema.VaultShardRec{Provider: a, Price: 2_000}))
			} // before proofs
			return c
		}(),
		codec("vault epoch", schema.EncVaultEpoch(&api.VaultEpoch{Epoch: 3, Seed: tx.Hash{9}, Reveals: 2, StartHeight: 901, StartMs: 123_456,
			Tallied: true, Decided: true, Failed: 4, Lost: 1, Paid: 5_000}),
			func(b []byte) (*api.VaultEpoch, error) { return schema.DecVaultEpoch(3, b) }, schema.EncVaultEpoch),
		codec("vault pool", schema.EncVaultPool(&api.VaultPool{Balance: 1 << 40, PermBytes: 3 << 30, TermBytes: 5 << 20, PaidTotal: 77}),
			schema.DecVaultPool, schema.EncVaultPool),
		codec("vault provider", schema.EncVaultProvider(&api.VaultProvider{Provider: a, Shards: 12, Bytes: 48 << 20, TermRate: 1 << 30, PermRate: 7,
			Earned: 900, Failed: 2, LastPaid: 5, Owed: 12345}),
			func(b []byte) (*api.VaultProvider, error) { return schema.DecVaultProvider(a, b) }, schema.EncVaultProvider),
		codec("vault repair", schema.EncVaultRepair(schema.VaultRepairRec{Since: 7, Attempts: 2, Not: a}),
			func(b []byte) (*schema.VaultRepairRec, error) { r, err := schema.DecVaultRepair(b); return &r, err },
			func(v *schema.VaultRepairRec) []byte { return schema.EncVaultRepair(*v) }),
		codec("vault streak", schema.EncVaultStreak(11, 2), func(b []byte) (*vaultStreak, error) {
			last, n, err := schema.DecVaultStreak(b)
			return &vaultStreak{last, n}, err
		}, func(v *vaultStreak) []byte { return schema.EncVaultStreak(v.last, v.count) }),
		codec("vault beacon", schema.EncVaultBeacon(tx.Hash{4, 5}, 3), func(b []byte) (*vaultBeacon, error) {
			acc, n, err := schema.DecVaultBeacon(b)
			return &vaultBeacon{acc, n}, err
		}, func(v *vaultBeacon) []byte { return schema.EncVaultBeacon(v.acc, v.n) }),
		codec("vault tally", schema.EncVaultTally(&schema.VaultTallyRec{Epoch: 7, Phase: schema.TallyStreaks, Cursor: []byte("objectidord#"),
			Spoke: 2, Total: 3, Decided: true, Failed: 40, Lost: 3, Paid: 9_000}), schema.DecVaultTally, schema.EncVaultTally),
		codec("vault tally in its pay pass", schema.EncVaultTally(&schema.VaultTallyRec{Epoch: 7, Phase: schema.TallyPay, Cursor: a[:], Spoke: 2, Total: 3,
			Decided: true, Failed: 4, Paid: 1_000}), schema.DecVaultTally, schema.EncVaultTally),
		codec("vault tally at its start", schema.EncVaultTally(&schema.VaultTallyRec{Epoch: 7, Phase: schema.TallyVotes, EpochMissing: true}),
			schema.DecVaultTally, schema.EncVaultTally),
		codec("vault unpaid", schema.EncVaultUnpaid(schema.VaultUnpaid{Rate: 1 << 33, Shards: 12, Failed: 4}),
			func(b []byte) (*schema.VaultUnpaid, error) { u, err := schema.DecVaultUnpaid(b); return &u, err },
			func(v *schema.VaultUnpaid) []byte { return schema.EncVaultUnpaid(*v) }),
	}
}

// vaultStreak is a shard's failure streak; vaultBeacon an epoch's beacon accumulator.
type vaultStreak struct{ last, count uint64 }

type vaultBeacon struct {
	acc tx.Hash
	n   int
}

// FuzzDecodeState feeds arbitrary bytes to the decoder of every object kind the ledger stores (stateCodecs).
// They must never panic, and whatever they accept must re-encode to bytes that decode to the same object (a
// second round trip is stable).
func FuzzDecodeState(f *testing.F) {
	codecs := stateCodecs()
	for i, c := range codecs {
		f.Add(uint8(i), c.seed)
	}
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		c := codecs[int(kind)%len(codecs)]
		once, ok := c.round(b)
		if !ok {
			return
		}
		again, ok := c.round(once)
		if !ok {
			t.Fatalf("%s: its own encoding %x is refused", c.name, once)
		}
		if !bytes.Equal(once, again) {
			t.Fatalf("%s: re-encoding is not stable:\n%x\n%x", c.name, once, again)
		}
	})
}

// TestStateCodecSeedsRoundTrip: every seed decodes, and re-encodes to itself.
func TestStateCodecSeedsRoundTrip(t *testing.T) {
	for _, c := range stateCodecs() {
		out, ok := c.round(c.seed)
		if !ok || !bytes.Equal(out, c.seed) {
			t.Errorf("%s: seed %x round-trips to %x (%v)", c.name, c.seed, out, ok)
		}
	}
}
