package ledger

import (
	"math/big"
	"testing"

	"pgregory.net/rapid"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/settle"
	"github.com/sparenet/spare/ledger/tx"
)

// exactEarned is floor(price × elapsed / 1h) capped at the deposit, in big integers: the reference for the
// 128-bit arithmetic in EarnedAt.
func exactEarned(price, deposit, elapsedMs uint64) uint64 {
	v := new(big.Int).Mul(new(big.Int).SetUint64(price), new(big.Int).SetUint64(elapsedMs))
	v.Quo(v, big.NewInt(api.MsPerHour))
	if v.Cmp(new(big.Int).SetUint64(deposit)) > 0 {
		return deposit
	}
	return v.Uint64()
}

func TestEarnedAtTable(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		price, deposit, durSec, t uint64
		want                      uint64
	}{
		{"half an hour", 2_000_000, 10_000_000, 7200, 1_800_000, 1_000_000},
		{"before start", 2_000_000, 10_000_000, 7200, 0, 0},
		{"one ms rounds down", 1_000_000, 10_000_000, 7200, 1, 0},
		{"capped by duration", 2_000_000, 10_000_000, 3600, 10_000_000, 2_000_000},
		{"capped by deposit", 2_000_000, 1_000_000, 7200, 10_000_000, 1_000_000},
		{"huge price no overflow", 1 << 62, 1 << 63, 3600, 3_600_000, 1 << 62},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &api.Lease{State: api.LeaseActive, Price: tc.price, Deposit: tc.deposit, DurationSec: tc.durSec, StartedMs: 1_000}
			if got := l.EarnedAt(1_000 + tc.t); got != tc.want {
				t.Fatalf("EarnedAt = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestSettlementProperties: however often a lease is settled, the provider's payouts plus take add up to
// exactly floor(price × billed time / 1h) (no rounding accumulates), never more than the deposit, and billing
// stops at EndMs.
func TestSettlementProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		price := rapid.Uint64Range(1, 1<<50).Draw(rt, "price")
		deposit := rapid.Uint64Range(1, 1<<55).Draw(rt, "deposit")
		dur := rapid.Uint64Range(1, tx.MaxDurationSec).Draw(rt, "duration")
		rate := rapid.Uint64Range(0, tx.PPM).Draw(rt, "take_ppm")
		l := &api.Lease{State: api.LeaseActive, Price: price, Deposit: deposit, DurationSec: dur, StartedMs: 1_700_000_000_000}
		end := l.EndMs()
		if end < l.StartedMs || end-l.StartedMs > dur*1000 {
			rt.Fatalf("end %d outside the duration", end)
		}
		if got := l.EarnedAt(end); got > deposit {
			rt.Fatalf("earned %d above deposit %d", got, deposit)
		}
		now := l.StartedMs
		var paidOut, takeSum uint64
		steps := rapid.IntRange(1, 20).Draw(rt, "settlements")
		for i := 0; i < steps; i++ {
			now += rapid.Uint64Range(0, 2*dur*1000/uint64(steps)+1).Draw(rt, "dt")
			earned := l.EarnedAt(now)
			if earned < l.Paid {
				rt.Fatalf("earned went backwards: %d < %d", earned, l.Paid)
			}
			takeTotal := settle.TakeOf(earned, rate)
			paidOut += (earned - l.Paid) - (takeTotal - l.Take)
			takeSum += takeTotal - l.Take
			l.Paid, l.Take = earned, takeTotal
		}
		billed := min(now, end) - l.StartedMs
		want := exactEarned(price, deposit, billed)
		if l.Paid != want {
			rt.Fatalf("paid %d after %d settlements, want %d", l.Paid, steps, want)
		}
		if paidOut+takeSum != want || takeSum != settle.TakeOf(want, rate) {
			rt.Fatalf("payouts %d + take %d != %d", paidOut, takeSum, want)
		}
	})
}

func TestFeasibleReasons(t *testing.T) {
	p := &api.Provider{Info: tx.ProviderInfo{Region: "eu-west", Hardware: testHardware()}}
	for _, tc := range []struct {
		name string
		r    tx.Resources
		c    tx.Constraints
		want api.Reason
	}{
		{"fits", tx.Resources{GPUCount: 8, GPUModels: []string{"h100"}, GPUMinVRAMMiB: 80 << 10, CPUMilli: 1000}, tx.Constraints{}, api.ReasonOK},
		{"wrong model", tx.Resources{GPUCount: 1, GPUModels: []string{"A100"}}, tx.Constraints{}, api.ReasonGPUModel},
		{"too little vram", tx.Resources{GPUCount: 1, GPUMinVRAMMiB: 90 << 10}, tx.Constraints{}, api.ReasonGPUVRAM},
		{"too many gpus", tx.Resources{GPUCount: 9}, tx.Constraints{}, api.ReasonGPUCount},
		{"cpu", tx.Resources{CPUMilli: 65000}, tx.Constraints{}, api.ReasonCPU},
		{"memory", tx.Resources{CPUMilli: 1, MemoryMiB: 1 << 30}, tx.Constraints{}, api.ReasonMemory},
		{"disk", tx.Resources{CPUMilli: 1, DiskMiB: 1 << 40}, tx.Constraints{}, api.ReasonDisk},
		{"region", tx.Resources{CPUMilli: 1}, tx.Constraints{Regions: []string{"us-east"}}, api.ReasonRegion},
		{"denied", tx.Resources{CPUMilli: 1}, tx.Constraints{Deny: []tx.Address{p.Owner}}, api.ReasonDenied},
		{"unverified", tx.Resources{CPUMilli: 1}, tx.Constraints{Verified: true}, api.ReasonUnverified},
		{"reputation", tx.Resources{CPUMilli: 1}, tx.Constraints{MinReputationPPM: 600_000}, api.ReasonReputation},
		{"docker needed", tx.Resources{CPUMilli: 1}, tx.Constraints{Docker: true}, api.ReasonRuntime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := api.Feasible(p, tc.r, tc.c); got != tc.want {
				t.Fatalf("Feasible = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseGenesisRejects(t *testing.T) {
	for name, js := range map[string]string{
		"not json":      `{`,
		"bad take rate": `{"params":{"take_rate_ppm":2000000,"bid_window_blocks":1,"max_bid_window_blocks":1,"order_ttl_blocks":2,"max_order_ttl_blocks":2,"start_timeout_blocks":1}}`,
		"zero window":   `{"params":{"bid_window_blocks":0}}`,
		"bad address":   `{"params":` + mustJSON(api.DefaultParams()) + `,"accounts":[{"address":"spare1xyz","balance":1}]}`,
	} {
		if _, err := api.ParseGenesis([]byte(js)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := api.ParseGenesis([]byte(`{"params":` + mustJSON(api.DefaultParams()) + `}`)); err != nil {
		t.Fatalf("default params rejected: %v", err)
	}
}
