package tx

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// sampleMsgs has one message of every type with non-trivial fields.
func sampleMsgs() []Msg {
	var a Address
	a[0] = 7
	h := Hash(sha256.Sum256([]byte("x")))
	hw := Hardware{GPUs: []GPUGroup{{Model: "H100", VRAMMiB: 81920, Count: 8}}, CPUMilli: 64000, MemoryMiB: 1 << 19, DiskMiB: 1 << 22}
	info := ProviderInfo{HostURI: "https://gpu.example:8443", CertFingerprint: h, Region: "eu-west", Zone: "a", Hardware: hw}
	extending := info
	extending.MaxLeaseSec = 86400
	return []Msg{
		&Send{To: a, Amount: 5},
		&RegisterProvider{ProviderInfo: info},
		&UpdateProvider{ProviderInfo: extending},
		&Bond{Amount: 1 << 40},
		&Unbond{Amount: 3},
		&CreateOrder{Resources: Resources{GPUCount: 2, GPUModels: []string{"H100", "A100"}, GPUMinVRAMMiB: 40960, CPUMilli: 4000, MemoryMiB: 16384, DiskMiB: 51200},
			Constraints:     Constraints{Regions: []string{"eu-west"}, Deny: []Address{a}, Verified: true, MinReputationPPM: 900000},
			MaxPricePerHour: 2_500_000, ManifestHash: h, Deposit: 5_000_000, DurationSec: 7200, BidWindow: 2, TTL: 100},
		&CancelOrder{ID: 1},
		&PlaceBid{OrderID: 1, Price: 2_000_000},
		&WithdrawBid{ID: 2},
		&AcceptBid{ID: 2},
		&LeaseStarted{ID: 3},
		&CloseLease{ID: 3, Reason: "done"},
		&CompleteLease{Receipt: Receipt{ChainID: "c", LeaseID: 3, ManifestHash: h, StartMs: 1, EndMs: 2, ExitCode: -1, GPUSeconds: 9, OutputRoot: h, Signature: make([]byte, 64)}},
		&CompleteLease{Receipt: Receipt{ChainID: "c", LeaseID: 3, ManifestHash: h, StartMs: 1, EndMs: 2, OutputRoot: h, VaultRoot: Hash{7}, Signature: make([]byte, 64)}},
		&TopUp{LeaseID: 3, Amount: 9},
		&Withdraw{ID: 3},
		&Attest{Epoch: 4, Up: []byte{0xa5, 0x01}},
		&Unjail{},
		&ClaimRewards{},
		&AttestHardware{Epoch: 4, Provider: a, Passed: true, Class: "h100-pcie", OpsPerSec: 1 << 50, Transcript: h},
		&CreateReplicatedOrder{CreateOrder: CreateOrder{Resources: Resources{GPUCount: 1, CPUMilli: 1000}, MaxPricePerHour: 9,
			ManifestHash: h, Deposit: 10, DurationSec: 60}, Replicas: 3},
		&PublishLatency{Samples: []LatencySample{{Peer: Address{1}, RTTMicros: 180}, {Peer: a, RTTMicros: 4200}}},
		&CreateClusterOrder{CreateOrder: CreateOrder{Resources: Resources{GPUCount: 8, CPUMilli: 1000}, MaxPricePerHour: 9,
			ManifestHash: h, Deposit: 10, DurationSec: 60}, Nodes: 4, MaxRTTMicros: 5000, OnFailure: OnFailureClose},
		&CreateClusterOrder{CreateOrder: CreateOrder{Resources: Resources{GPUCount: 1, CPUMilli: 1000}, MaxPricePerHour: 9,
			ManifestHash: h, Deposit: 10, DurationSec: 60}, Nodes: 2, MaxRTTMicros: 5000, OnFailure: OnFailureRestart, MaxRestarts: 2},
		&CommitResult{LeaseID: 3, Commitment: ResultCommitment(h, -1, a, [32]byte{9})},
		&RevealResult{Receipt: Receipt{ChainID: "c", LeaseID: 3, ManifestHash: h, StartMs: 1, EndMs: 2, ExitCode: -1, GPUSeconds: 9, OutputRoot: h, Signature: make([]byte, 64)},
			Salt: [32]byte{9, 8, 7}},
		&RevealResult{Receipt: Receipt{ChainID: "c", LeaseID: 3, ManifestHash: h, EndMs: 2, OutputRoot: h, VaultRoot: h, Signature: make([]byte, 64)}, Salt: [32]byte{1}},
		&ExtendLease{LeaseID: 3, AddSec: 3600},
		&ManifestDelivered{LeaseID: 4, Ack: [SignatureLen]byte{1, 2, 3}},
		&AnnounceRestart{},
		&OfferStorage{CapacityBytes: 100 << 30, PricePerGiBMonth: 2_000},
		&StoreObject{Manifest: []byte{1, 2, 3}, Months: 12, MaxPricePerGiBMonth: 5_000},
		&StoreObject{Manifest: []byte{1}},
		&AttestStorage{Epoch: 3, Failed: []ShardRef{{Object: 1, Ordinal: 0}, {Object: 1, Ordinal: 7}, {Object: 4, Ordinal: 2}}},
		&AttestStorage{},
		&HoldShards{Shards: []ShardRef{{Object: 2, Ordinal: 1}, {Object: 3, Ordinal: 0}}},
		&HoldShards{},
		&AuditorBeacon{Commit: Hash{1}, Reveal: Hash{2}},
	}
}

// TestSampleMsgsCoverEveryType keeps the round-trip test and the fuzz seeds complete as message types are added.
func TestSampleMsgsCoverEveryType(t *testing.T) {
	seen := map[MsgType]bool{}
	for _, m := range sampleMsgs() {
		seen[m.Type()] = true
	}
	for typ := range msgNames {
		if !seen[typ] {
			t.Errorf("sampleMsgs has no %s", typ)
		}
	}
}

func testKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("fuzz"))
	return ed25519.NewKeyFromSeed(seed[:])
}

func TestRoundTripEveryMessage(t *testing.T) {
	for _, m := range sampleMsgs() {
		raw := Sign(Body{ChainID: "spare-test", Nonce: 9, Fee: 1000, Memo: "m", Msgs: []Msg{m}}, testKey())
		got, err := Decode(raw)
		if err != nil {
			t.Fatalf("%s: %v", m.Type(), err)
		}
		if !got.VerifySignature() {
			t.Fatalf("%s: signature", m.Type())
		}
		if again := Assemble(EncodeBody(got.Body), got.Signature); !bytes.Equal(again, raw) {
			t.Fatalf("%s: re-encoding differs", m.Type())
		}
		if err := got.Body.ValidateBasic("spare-test"); err != nil {
			t.Fatalf("%s: %v", m.Type(), err)
		}
	}
}

func TestDecodeRejectsNonCanonical(t *testing.T) {
	raw := Sign(Body{ChainID: "c", Nonce: 1, Fee: 1, Msgs: []Msg{&Bond{Amount: 1}}}, testKey())
	for name, mut := range map[string]func([]byte) []byte{
		"trailing byte": func(b []byte) []byte { return append(b, 0) },
		"truncated":     func(b []byte) []byte { return b[:len(b)-1] },
		"empty":         func(b []byte) []byte { return nil },
		"padded varint": func(b []byte) []byte {
			c := append([]byte{}, b[:1]...)
			c = append(c, b[1]|0x80, 0)
			return append(c, b[2:]...)
		},
		"bad version": func(b []byte) []byte { c := append([]byte{}, b...); c[0] = 1; return c }, // before gas limits
		"oversize":    func(b []byte) []byte { return make([]byte, MaxTxBytes+1) },
	} {
		if _, err := Decode(mut(append([]byte{}, raw...))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzDecodeTx: decoding never panics, and whatever decodes re-encodes to exactly the same bytes (one encoding per
// value), so the signature over the body bytes as sent is the signature over the canonical body.
func FuzzDecodeTx(f *testing.F) {
	for _, m := range sampleMsgs() {
		f.Add(Sign(Body{ChainID: "spare-test", Nonce: 1, Fee: 1000, Msgs: []Msg{m}}, testKey()))
	}
	f.Add([]byte{Version, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := Decode(raw)
		if err != nil {
			if CodeOf(err) == CodeOK || CodeOf(err) == CodeInternal {
				t.Fatalf("decode error without a rejection code: %v", err)
			}
			return
		}
		if again := Assemble(EncodeBody(got.Body), got.Signature); !bytes.Equal(again, raw) {
			t.Fatalf("non-canonical encoding accepted:\n in  %x\n out %x", raw, again)
		}
		_ = got.Body.ValidateBasic("spare-test")
	})
}

// TestWriteFuzzCorpus regenerates the checked-in seed corpus (SPARE_WRITE_CORPUS=1 go test -run WriteFuzzCorpus).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("SPARE_WRITE_CORPUS") == "" {
		t.Skip("set SPARE_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeTx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, m := range sampleMsgs() {
		raw := Sign(Body{ChainID: "spare-test", Nonce: 1, Fee: 1000, Msgs: []Msg{m}}, testKey())
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", raw)
		if err := os.WriteFile(filepath.Join(dir, m.Type().String()), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSmallOrderSignerRejected: a small-order public key with the signature (R = identity, S = 0) verifies under
// crypto/ed25519 for many messages; such a transaction must never decode.
func TestSmallOrderSignerRejected(t *testing.T) {
	identity := make([]byte, 32)
	identity[0] = 1 // y = 1: the neutral point
	sig := make([]byte, 64)
	copy(sig, identity) // R = identity, S = 0
	body := EncodeBody(Body{ChainID: "c", PubKey: identity, Nonce: 0, Fee: 1, Msgs: []Msg{&Send{To: Address{1}, Amount: 1}}})
	if !ed25519.Verify(identity, body, sig) {
		t.Skip("this Go's ed25519 rejects the forgery itself")
	}
	if _, err := Decode(Assemble(body, sig)); CodeOf(err) != CodeBadSignature {
		t.Fatalf("forged tx from a small-order key: %v", err)
	}
}
