package offers

import (
	"strings"
	"testing"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/match"
)

// TestQuote: a GPU's price each, CPU per core-hour and memory per GiB-hour, at least 1 uspr; an unpriced model
// or an overflow is no quote.
func TestQuote(t *testing.T) {
	r := tx.Resources{GPUCount: 2, CPUMilli: 2000, MemoryMiB: 2048}
	for _, tc := range []struct {
		name   string
		prices Prices
		models []string
		r      tx.Resources
		want   uint64
		ok     bool
	}{
		{"table", Prices{GPUHour: map[string]uint64{"h100": 2 * spr}, CPUHour: spr / 2, MemoryGiBHour: spr / 10}, []string{"H100", "H100"}, r, 5_200_000, true},
		{"unknown model, no default", Prices{GPUHour: map[string]uint64{"A100": spr}}, []string{"H100", "H100"}, r, 0, false},
		{"default for unknown model", Prices{DefaultGPUHour: 15 * spr / 10}, []string{"H100", "H100"}, r, 3 * spr, true},
		{"CPU only, fractional core", Prices{CPUHour: 20_000, MemoryGiBHour: 1000}, nil, tx.Resources{CPUMilli: 500, MemoryMiB: 512}, 10_500, true},
		{"nothing priced: 1 uspr", Prices{}, nil, tx.Resources{CPUMilli: 500}, 1, true},
		{"GPU overflow", Prices{GPUHour: map[string]uint64{"H100": ^uint64(0)/2 + 1}}, []string{"H100", "H100"}, r, 0, false},
		{"CPU overflow", Prices{CPUHour: ^uint64(0)}, nil, tx.Resources{CPUMilli: ^uint64(0)}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.prices.Quote(tc.models, tc.r)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("Quote = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestPickGPUs: the first groups that the order allows, with enough memory, until its count.
func TestPickGPUs(t *testing.T) {
	free := []tx.GPUGroup{gpu("A100", a100S, 4), gpu("H100", h100MiB, 1), gpu("A100", a100L, 2)}
	for _, tc := range []struct {
		r    tx.Resources
		want string
		ok   bool
	}{
		{tx.Resources{GPUCount: 2}, "A100,A100", true},
		{tx.Resources{GPUCount: 2, GPUMinVRAMMiB: 80_000}, "H100,A100", true},
		{tx.Resources{GPUCount: 2, GPUModels: []string{"a100"}, GPUMinVRAMMiB: 80_000}, "A100,A100", true},
		{tx.Resources{GPUCount: 6}, "A100,A100,A100,A100,H100,A100", true},
		{tx.Resources{GPUCount: 2, GPUModels: []string{"H100"}}, "H100", false},
		{tx.Resources{}, "", true},
	} {
		got, ok := PickGPUs(free, tc.r)
		if strings.Join(got, ",") != tc.want || ok != tc.ok {
			t.Errorf("%+v: %v %v, want %s %v", tc.r, got, ok, tc.want, tc.ok)
		}
	}
}

// TestEvalJob runs a 2 × H100 (80 GB) job in eu-west against the fixture: match's stages on free capacity
// exclude each other provider under its first failing stage, the quote is the bidder's formula, the maximum
// price excludes a dearer quote, and the rows rank by match.Score.
func TestEvalJob(t *testing.T) {
	cands := fixture()
	p14 := provider(14, "eu-west", gpu("H100", h100MiB, 2)) // H100s free, but its table prices only A100
	cands = append(cands, Candidate{Provider: p14, Offer: offer(p14, table(20_000, "A100", spr), gpu("H100", h100MiB, 2))})
	p15 := provider(15, "eu-west", gpu("H100", h100MiB, 2)) // the same table, but a script prices its bids
	o15 := offer(p15, table(20_000, "A100", spr), gpu("H100", h100MiB, 2))
	o15.Script = true
	cands = append(cands, Candidate{Provider: p15, Offer: o15})
	o := match.Order{ID: 7, Resources: tx.Resources{GPUCount: 2, GPUModels: []string{"H100"}, GPUMinVRAMMiB: 80_000, CPUMilli: 4000, MemoryMiB: 16 << 10},
		Constraints: tx.Constraints{Regions: []string{"eu-west"}}, MaxPricePerHour: 5 * spr}
	rows, ex := EvalJob(o, cands)
	if len(rows) != 2 || rows[0].Provider != addr(2) || rows[1].Provider != addr(15) {
		t.Fatalf("rows %+v", rows)
	}
	// Provider 2: 2 × 2 SPR + 4 cores × 0.02 + 16 GiB × 0.001.
	if r := rows[0]; r.Price == nil || *r.Price != 4_096_000 || strings.Join(r.GPUModels, ",") != "H100,H100" ||
		r.Score != match.Score(4_096_000, 50_000, 500_000) {
		t.Fatalf("provider 2: %+v", r)
	}
	if r := rows[1]; r.Price != nil || !r.Indicative || r.Score != ^uint64(0) {
		t.Fatalf("provider 15 (script): %+v", r)
	}
	want := map[match.Reason][]int{
		ReasonPrice:             {1}, // 2 × 2.5 + 0.096 > 5
		match.ReasonRegion:      {3, 13},
		match.ReasonGPUModel:    {4, 5, 6, 10, 11},
		ReasonNoOffer:           {7, 12},
		match.ReasonJailed:      {8},
		match.ReasonUnderBonded: {9},
		ReasonNotPriced:         {14},
	}
	if ex.Providers != 15 || ex.Feasible != 2 || len(ex.Excluded) != len(want) {
		t.Fatalf("explanation %+v", ex)
	}
	for r, ids := range want {
		if ex.Excluded[r] != len(ids) {
			t.Errorf("%s: %d excluded, want %d", r, ex.Excluded[r], len(ids))
		}
		for i, id := range ids {
			if i >= len(ex.Who[r]) || ex.Who[r][i] != addr(id) {
				t.Errorf("%s excluded %v, want providers %v", r, ex.Who[r], ids)
				break
			}
		}
	}
	s := ex.String()
	for _, part := range []string{"15 providers: 2 could take it now", "5 lack a GPU of the model asked for", "1 quote above your maximum price (" + addr(1).String() + ")",
		"2 did not answer with an offer", "1 do not price the GPUs they would assign", "1 are jailed"} {
		if !strings.Contains(s, part) {
			t.Errorf("explanation %q lacks %q", s, part)
		}
	}
	// Without a maximum price provider 1 comes first: dearer, but its reputation (0.95) and round trip (20 ms)
	// give it the better score.
	o.MaxPricePerHour = 0
	rows, _ = EvalJob(o, cands)
	if len(rows) != 3 || rows[0].Provider != addr(1) || rows[1].Provider != addr(2) || rows[0].Score >= rows[1].Score {
		t.Fatalf("rows without a maximum: %+v", rows)
	}
}
