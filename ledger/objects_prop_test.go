package ledger

import (
	"math"
	"reflect"
	"testing"

	"pgregory.net/rapid"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// TestStateObjectsRoundTripAtTheirBounds: every state object, with every field drawn up to its bound — and at the
// bound half of the time — encodes and decodes to itself: nothing an encoder accepts is refused by its decoder.
// (TestEncodersRefuseWhatDecodersRefuse covers one step past each bound.)
func TestStateObjectsRoundTripAtTheirBounds(t *testing.T) {
	u64 := rapid.OneOf(rapid.Uint64(), rapid.Just(uint64(math.MaxUint64)), rapid.Just(uint64(0)))
	u32 := rapid.OneOf(rapid.Uint32(), rapid.Just(uint32(math.MaxUint32)))
	i64 := rapid.OneOf(rapid.Int64Range(0, math.MaxInt64), rapid.Just(int64(math.MaxInt64)))
	str := func(t *rapid.T, label string, max int) string {
		n := rapid.OneOf(rapid.Just(max), rapid.IntRange(0, max)).Draw(t, label+".len")
		// Any bytes: the codec bounds bytes, not runes; multi-byte text is a case of it.
		return string(rapid.SliceOfN(rapid.Byte(), n, n).Draw(t, label))
	}
	count := func(t *rapid.T, label string, max int) int {
		return rapid.OneOf(rapid.Just(max), rapid.IntRange(0, max)).Draw(t, label)
	}
	addr := func(t *rapid.T, label string) (a tx.Address) {
		copy(a[:], rapid.SliceOfN(rapid.Byte(), tx.AddressLen, tx.AddressLen).Draw(t, label))
		return a
	}
	hash := func(t *rapid.T, label string) (h tx.Hash) {
		copy(h[:], rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, label))
		return h
	}
	strs := func(t *rapid.T, label string, n, max int) []string {
		var out []string
		for i := 0; i < n; i++ {
			out = append(out, str(t, label, max))
		}
		return out
	}
	resources := func(t *rapid.T) tx.Resources {
		return tx.Resources{GPUCount: u32.Draw(t, "gpus"), GPUModels: strs(t, "model", count(t, "models", tx.MaxListLen), tx.MaxNameLen),
			GPUMinVRAMMiB: u64.Draw(t, "vram"), CPUMilli: u64.Draw(t, "cpu"), MemoryMiB: u64.Draw(t, "mem"), DiskMiB: u64.Draw(t, "disk")}
	}
	constraints := func(t *rapid.T) tx.Constraints {
		c := tx.Constraints{Regions: strs(t, "region", count(t, "regions", tx.MaxListLen), tx.MaxNameLen),
			Verified: rapid.Bool().Draw(t, "verified"), MinReputationPPM: u32.Draw(t, "rep"), Docker: rapid.Bool().Draw(t, "docker")}
		for i := count(t, "deny", tx.MaxListLen); i > 0; i-- {
			c.Deny = append(c.Deny, addr(t, "deny"))
		}
		return c
	}
	receipt := func(t *rapid.T) tx.Receipt {
		rc := tx.Receipt{ChainID: str(t, "chain", tx.MaxChainIDLen), LeaseID: u64.Draw(t, "lease"), ManifestHash: hash(t, "manifest"),
			StartMs: u64.Draw(t, "start"), EndMs: u64.Draw(t, "end"), ExitCode: rapid.Int64().Draw(t, "exit"), GPUSeconds: u64.Draw(t, "gpus"),
			OutputRoot: hash(t, "root"), Signature: rapid.SliceOfN(rapid.Byte(), tx.SignatureLen, tx.SignatureLen).Draw(t, "sig")}
		if rapid.Bool().Draw(t, "outputs_vault") {
			rc.VaultRoot = hash(t, "vault_root") // may draw zero: then none, as a receipt without one
		}
		return rc
	}
	kinds := map[string]func(t *rapid.T) (any, func() (any, error)){
		"account": func(t *rapid.T) (any, func() (any, error)) {
			a := &api.Account{Address: addr(t, "addr"), Balance: u64.Draw(t, "bal"), Nonce: u64.Draw(t, "nonce")}
			return a, func() (any, error) { return schema.DecAccount(a.Address, schema.EncAccount(a)) }
		},
		"provider": func(t *rapid.T) (any, func() (any, error)) {
			p := &api.Provider{Owner: addr(t, "owner"), PubKey: rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, "pub"),
				Info: tx.ProviderInfo{HostURI: str(t, "host", tx.MaxURILen), CertFingerprint: hash(t, "cert"), Region: str(t, "region", tx.MaxNameLen),
					Zone: str(t, "zone", tx.MaxNameLen), Docker: rapid.Bool().Draw(t, "docker")},
				Status: api.ProviderStatus(rapid.Byte().Draw(t, "status")), Stake: u64.Draw(t, "stake"), Unbonding: u64.Draw(t, "unb"),
				RegisteredHeight: i64.Draw(t, "reg"), Completed: u64.Draw(t, "done"), Failed: u64.Draw(t, "failed"), Verified: rapid.Bool().Draw(t, "v"),
				EpochsUp: u64.Draw(t, "up"), EpochsDown: u64.Draw(t, "down"), DownStreak: u64.Draw(t, "streak"), JailedUntilMs: u64.Draw(t, "jail"),
				Slashed: u64.Draw(t, "slashed"), VerifiedClass: str(t, "class", tx.MaxNameLen), VerifiedOps: u64.Draw(t, "ops"), VerifiedHeight: i64.Draw(t, "vh"),
				EarnedValue: u64.Draw(t, "earned"), FailedValue: u64.Draw(t, "failedv")}
			p.Info.Hardware = tx.Hardware{CPUMilli: u64.Draw(t, "cpu"), MemoryMiB: u64.Draw(t, "mem"), DiskMiB: u64.Draw(t, "disk")}
			for i := count(t, "groups", tx.MaxListLen); i > 0; i-- {
				p.Info.Hardware.GPUs = append(p.Info.Hardware.GPUs, tx.GPUGroup{Model: str(t, "model", tx.MaxNameLen), VRAMMiB: u64.Draw(t, "vram"), Count: u32.Draw(t, "n")})
			}
			return p, func() (any, error) { return schema.DecProvider(schema.EncProvider(p)) }
		},
		"order": func(t *rapid.T) (any, func() (any, error)) {
			o := &api.Order{ID: u64.Draw(t, "id"), Tenant: addr(t, "tenant"), Resources: resources(t), Constraints: constraints(t),
				MaxPricePerHour: u64.Draw(t, "max"), ManifestHash: hash(t, "m"), Deposit: u64.Draw(t, "dep"), DurationSec: u64.Draw(t, "dur"),
				State: api.OrderState(rapid.Byte().Draw(t, "state")), CreatedHeight: i64.Draw(t, "c"), WindowEnd: i64.Draw(t, "w"), ExpiresHeight: i64.Draw(t, "x"),
				LeaseID: u64.Draw(t, "lease"), Replicas: u32.Draw(t, "rep"), RefereeFor: u64.Draw(t, "ref"), Nodes: u32.Draw(t, "nodes")}
			return o, func() (any, error) { return schema.DecOrder(schema.EncOrder(o)) }
		},
		"bid": func(t *rapid.T) (any, func() (any, error)) {
			b := &api.Bid{ID: u64.Draw(t, "id"), OrderID: u64.Draw(t, "o"), Provider: addr(t, "p"), Price: u64.Draw(t, "price"),
				State: api.BidState(rapid.Byte().Draw(t, "s")), CreatedHeight: i64.Draw(t, "h")}
			return b, func() (any, error) { return schema.DecBid(schema.EncBid(b)) }
		},
		"lease": func(t *rapid.T) (any, func() (any, error)) {
			l := &api.Lease{ID: u64.Draw(t, "id"), OrderID: u64.Draw(t, "o"), BidID: u64.Draw(t, "b"), Tenant: addr(t, "t"), Provider: addr(t, "p"),
				Price: u64.Draw(t, "price"), DurationSec: u64.Draw(t, "dur"), State: api.LeaseState(rapid.Byte().Draw(t, "s")), CreatedHeight: i64.Draw(t, "c"),
				StartDeadline: i64.Draw(t, "dl"), StartedMs: u64.Draw(t, "st"), EndedMs: u64.Draw(t, "en"), Deposit: u64.Draw(t, "dep"),
				Paid: u64.Draw(t, "paid"), Take: u64.Draw(t, "take"), Refunded: u64.Draw(t, "ref"), CloseReason: str(t, "reason", tx.MaxReasonLen),
				ClosedBy: addr(t, "by"), Held: u64.Draw(t, "held")}
			return l, func() (any, error) { return schema.DecLease(schema.EncLease(l)) }
		},
		"supply": func(t *rapid.T) (any, func() (any, error)) {
			s := &api.Supply{Genesis: u64.Draw(t, "g"), Minted: u64.Draw(t, "m"), Burned: u64.Draw(t, "b"), Balances: u64.Draw(t, "bal"), Escrow: u64.Draw(t, "e"), Staked: u64.Draw(t, "s"), Unbonding: u64.Draw(t, "u"), Pool: u64.Draw(t, "p")}
			return s, func() (any, error) { return schema.DecSupply(schema.EncSupply(s)) }
		},
		"receipt": func(t *rapid.T) (any, func() (any, error)) {
			rc := receipt(t)
			return &rc, func() (any, error) { return schema.DecReceipt(schema.EncReceipt(&rc)) }
		},
		"verification": func(t *rapid.T) (any, func() (any, error)) {
			v := &api.Verification{OrderID: u64.Draw(t, "o"), Replicas: u32.Draw(t, "r"), RefereeOrder: u64.Draw(t, "ref"), Reserve: u64.Draw(t, "res"),
				State: api.VerifyState(rapid.Byte().Draw(t, "s")), Root: hash(t, "root"), ExitCode: rapid.Int64().Draw(t, "exit"), DecidedMs: u64.Draw(t, "d"),
				RevealOpen: rapid.Bool().Draw(t, "open"), RevealDeadline: i64.Draw(t, "deadline")}
			for i := count(t, "leases", tx.MaxReplicas+1); i > 0; i-- {
				v.Leases = append(v.Leases, u64.Draw(t, "lease"))
			}
			return v, func() (any, error) { return schema.DecVerification(schema.EncVerification(v)) }
		},
		"commitment": func(t *rapid.T) (any, func() (any, error)) {
			m := &api.Commitment{LeaseID: u64.Draw(t, "l"), OrderID: u64.Draw(t, "o"), Commitment: hash(t, "c"), Height: i64.Draw(t, "h"),
				State: api.RunCommit(rapid.Byte().Draw(t, "s"))}
			return m, func() (any, error) { return schema.DecCommitment(schema.EncCommitment(m)) }
		},
		"cluster": func(t *rapid.T) (any, func() (any, error)) {
			cl := &api.Cluster{OrderID: u64.Draw(t, "o"), Nodes: u32.Draw(t, "n"), MaxRTTMicros: u32.Draw(t, "rtt"), OnFailure: rapid.Byte().Draw(t, "f"),
				State: api.ClusterState(rapid.Byte().Draw(t, "s")), FailedLease: u64.Draw(t, "fl"), SearchSteps: u64.Draw(t, "ss"),
				Generation: u32.Draw(t, "g"), RestartsLeft: u32.Draw(t, "rl"), Reserve: u64.Draw(t, "res"), PrevOrder: u64.Draw(t, "prev"), NextOrder: u64.Draw(t, "next")}
			for i := count(t, "leases", tx.MaxClusterNodes); i > 0; i-- {
				cl.Leases = append(cl.Leases, u64.Draw(t, "lease"))
			}
			for i := count(t, "excluded", tx.MaxClusterRestarts); i > 0; i-- {
				cl.Excluded = append(cl.Excluded, addr(t, "ex"))
			}
			return cl, func() (any, error) { return schema.DecCluster(schema.EncCluster(cl)) }
		},
		"storage offer": func(t *rapid.T) (any, func() (any, error)) {
			o := &api.StorageOffer{Provider: addr(t, "p"), CapacityBytes: rapid.Uint64Range(0, tx.MaxStorageCapacity).Draw(t, "capacity"),
				UsedBytes: rapid.Uint64Range(0, tx.MaxStorageCapacity).Draw(t, "used"), PricePerGiBMonth: rapid.Uint64Range(0, tx.MaxStoragePrice).Draw(t, "price"),
				Height: i64.Draw(t, "h")}
			return o, func() (any, error) { return schema.DecStorageOffer(o.Provider, schema.EncStorageOffer(o)) }
		},
		"latency": func(t *rapid.T) (any, func() (any, error)) {
			l := &api.Latency{Provider: addr(t, "p"), Height: i64.Draw(t, "h")}
			for i := count(t, "samples", tx.MaxLatencyPeers); i > 0; i-- {
				l.Samples = append(l.Samples, tx.LatencySample{Peer: addr(t, "peer"), RTTMicros: u32.Draw(t, "rtt")})
			}
			return l, func() (any, error) { return schema.DecLatency(l.Provider, schema.EncLatency(l)) }
		},
		"params": func(t *rapid.T) (any, func() (any, error)) {
			p := &api.Params{}
			v := reflect.ValueOf(p).Elem()
			for i := 0; i < v.NumField(); i++ {
				v.Field(i).SetUint(u64.Draw(t, v.Type().Field(i).Name))
			}
			return p, func() (any, error) { return schema.DecParams(schema.EncParams(p)) }
		},
		"hardware verdict": func(t *rapid.T) (any, func() (any, error)) {
			h := schema.HWVerdict{Passed: rapid.Bool().Draw(t, "p"), Class: str(t, "class", tx.MaxNameLen), Ops: u64.Draw(t, "ops")}
			return h, func() (any, error) { return schema.DecHWVerdict(schema.EncHWVerdict(h)) }
		},
		"audit set": func(t *rapid.T) (any, func() (any, error)) {
			s := schema.AuditSet{StartMs: u64.Draw(t, "start"), Providers: []tx.Address{}}
			for i := rapid.IntRange(0, 64).Draw(t, "n"); i > 0; i-- { // maxAuditSet itself: see below
				s.Providers = append(s.Providers, addr(t, "p"))
			}
			return s, func() (any, error) { return schema.DecAuditSet(schema.EncAuditSet(s)) }
		},
	}
	for name, gen := range kinds {
		t.Run(name, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				want, roundTrip := gen(t)
				got, err := roundTrip()
				if err != nil {
					t.Fatalf("decoding what was encoded: %v", err)
				}
				if !reflect.DeepEqual(normalize(got), normalize(want)) {
					t.Fatalf("round trip changed it:\n got %+v\nwant %+v", got, want)
				}
			})
		})
	}
	// The largest audit set, once (drawing half a million addresses through rapid is slow).
	full := schema.AuditSet{StartMs: 1, Providers: make([]tx.Address, schema.MaxAuditSet)}
	full.Providers[schema.MaxAuditSet-1] = tx.Address{9}
	if got := kernel.MustDecode(schema.DecAuditSet(schema.EncAuditSet(full))); !reflect.DeepEqual(got, full) {
		t.Fatal("the largest audit set does not round-trip")
	}
}

// normalize makes empty and nil slices compare equal (a decoder builds no slice for an empty list).
func normalize(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	cp := reflect.New(rv.Type()).Elem()
	cp.Set(rv)
	var walk func(reflect.Value)
	walk = func(x reflect.Value) {
		switch x.Kind() {
		case reflect.Struct:
			for i := 0; i < x.NumField(); i++ {
				if x.Field(i).CanSet() {
					walk(x.Field(i))
				}
			}
		case reflect.Slice:
			if x.Len() == 0 && x.CanSet() {
				x.Set(reflect.Zero(x.Type()))
			}
			for i := 0; i < x.Len(); i++ {
				walk(x.Index(i))
			}
		}
	}
	walk(cp)
	return cp.Interface()
}
