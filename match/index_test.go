package match

import (
	"math/rand/v2"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/sparenet/spare/ledger/tx"
)

var testModels = []string{"H100", "A100", "RTX4090"}

// drawOffer draws a provider and its price table. Addresses come from a small set, so equal addresses (and with
// them equal tie-break keys) occur; prices from a small range, so equal prices do.
func drawOffer(rt *rapid.T) Offer {
	p := Provider{
		Address:       addr(rapid.IntRange(0, 15).Draw(rt, "addr")),
		Region:        rapid.SampledFrom([]string{"eu", "us", "EU", "ap"}).Draw(rt, "region"),
		Docker:        rapid.Bool().Draw(rt, "docker"),
		Verified:      rapid.Bool().Draw(rt, "verified"),
		ReputationPPM: uint64(rapid.IntRange(0, tx.PPM).Draw(rt, "rep")),
		Jailed:        rapid.IntRange(0, 4).Draw(rt, "jailed") == 0,
		UnderBonded:   rapid.IntRange(0, 6).Draw(rt, "underbonded") == 0,
		Hardware: tx.Hardware{CPUMilli: uint64(rapid.IntRange(0, 16_000).Draw(rt, "cpu")),
			MemoryMiB: uint64(rapid.IntRange(0, 1<<16).Draw(rt, "mem")), DiskMiB: uint64(rapid.IntRange(0, 1<<20).Draw(rt, "disk"))},
	}
	for range rapid.IntRange(0, 3).Draw(rt, "groups") {
		p.Hardware.GPUs = append(p.Hardware.GPUs, tx.GPUGroup{Model: rapid.SampledFrom(testModels).Draw(rt, "model"),
			VRAMMiB: uint64(rapid.SampledFrom([]int{24576, 40960, 81920}).Draw(rt, "vram")), Count: uint32(rapid.IntRange(1, 8).Draw(rt, "count"))})
	}
	f := Offer{Provider: p}
	if rapid.IntRange(0, 2).Draw(rt, "sells cpu") > 0 {
		f.CPUHour = uint64(rapid.IntRange(0, 6).Draw(rt, "cpu price"))
	}
	for _, m := range testModels {
		switch rapid.IntRange(0, 5).Draw(rt, "price kind") {
		case 0, 1: // not priced
		case 2:
			if f.GPUHour == nil {
				f.GPUHour = map[string]uint64{}
			}
			f.GPUHour[m] = 0 // priced 0: not sold
		case 3:
			if f.GPUHour == nil {
				f.GPUHour = map[string]uint64{}
			}
			f.GPUHour[m] = ^uint64(0) / uint64(rapid.IntRange(1, 4).Draw(rt, "huge")) // overflows for large counts
		default:
			if f.GPUHour == nil {
				f.GPUHour = map[string]uint64{}
			}
			f.GPUHour[m] = uint64(rapid.IntRange(1, 8).Draw(rt, "gpu price"))
		}
	}
	return f
}

func drawOrder(rt *rapid.T) Order {
	o := Order{ID: uint64(rapid.IntRange(0, 3).Draw(rt, "order id")),
		Resources: tx.Resources{CPUMilli: uint64(rapid.IntRange(0, 8000).Draw(rt, "ocpu")),
			MemoryMiB: uint64(rapid.IntRange(0, 1<<15).Draw(rt, "omem"))},
		Constraints: tx.Constraints{Verified: rapid.Bool().Draw(rt, "overified"), Docker: rapid.Bool().Draw(rt, "odocker"),
			MinReputationPPM: uint32(rapid.SampledFrom([]int{0, 0, 500_000, 900_000}).Draw(rt, "orep"))}}
	if rapid.IntRange(0, 2).Draw(rt, "gpu order") > 0 {
		o.Resources.GPUCount = uint32(rapid.IntRange(1, 8).Draw(rt, "gpus"))
		o.Resources.GPUMinVRAMMiB = uint64(rapid.SampledFrom([]int{0, 0, 24576, 30000, 40960, 50000, 81920, 90000}).Draw(rt, "ovram"))
		for range rapid.IntRange(0, 2).Draw(rt, "models") {
			o.Resources.GPUModels = append(o.Resources.GPUModels, rapid.SampledFrom([]string{"H100", "A100", "RTX4090", "h100", "L4"}).Draw(rt, "omodel"))
		}
	}
	for range rapid.IntRange(0, 2).Draw(rt, "regions") {
		o.Constraints.Regions = append(o.Constraints.Regions, rapid.SampledFrom([]string{"eu", "us", "ap", "sa"}).Draw(rt, "oregion"))
	}
	if rapid.IntRange(0, 3).Draw(rt, "deny") == 0 {
		o.Constraints.Deny = []tx.Address{addr(rapid.IntRange(0, 15).Draw(rt, "denied"))}
	}
	if rapid.Bool().Draw(rt, "max price") {
		o.MaxPricePerHour = uint64(rapid.IntRange(1, 40).Draw(rt, "max"))
	}
	return o
}

// TestIndexMatchesNaive: on random small instances Index.Match returns exactly NaiveMatch's answer, and every
// provider in it passes every stage, is priced at PriceFor and within the price bound, in rank order.
func TestIndexMatchesNaive(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		offers := make([]Offer, rapid.IntRange(0, 14).Draw(rt, "providers"))
		for i := range offers {
			offers[i] = drawOffer(rt)
		}
		x := NewIndex(offers)
		for range 8 {
			o := drawOrder(rt)
			k := rapid.IntRange(0, 6).Draw(rt, "k")
			got, want := x.Match(&o, k), NaiveMatch(offers, &o, k)
			if !slices.Equal(got, want) {
				rt.Fatalf("order %+v k=%d:\nindex %v\nnaive %v", o, k, got, want)
			}
			checkRanked(rt, offers, &o, k, got)
		}
	})
}

// checkRanked states the contract independently of both implementations.
func checkRanked(rt *rapid.T, offers []Offer, o *Order, k int, got []Ranked) {
	all := 0 // feasible and priced within the bound
	for i := range offers {
		p, ok := offers[i].PriceFor(o)
		if Feasible(o, &offers[i].Provider) == ReasonOK && ok && (o.MaxPricePerHour == 0 || p <= o.MaxPricePerHour) {
			all++
		}
	}
	if want := all; k > 0 && k < all && len(got) != k || (k <= 0 || k >= all) && len(got) != want {
		rt.Fatalf("%d results for k=%d, %d qualify", len(got), k, all)
	}
	seen := map[int]bool{}
	for i, r := range got {
		f := &offers[r.Index]
		if seen[r.Index] {
			rt.Fatalf("offer %d twice", r.Index)
		}
		seen[r.Index] = true
		if reason := Feasible(o, &f.Provider); reason != ReasonOK {
			rt.Fatalf("offer %d fails %q", r.Index, reason)
		}
		p, ok := f.PriceFor(o)
		if !ok || p != r.Price || r.Address != f.Provider.Address {
			rt.Fatalf("offer %d: price %d (%v), ranked at %d", r.Index, p, ok, r.Price)
		}
		if o.MaxPricePerHour > 0 && p > o.MaxPricePerHour {
			rt.Fatalf("offer %d: price %d above %d", r.Index, p, o.MaxPricePerHour)
		}
		if i > 0 {
			q := got[i-1]
			if q.Price > r.Price || q.Price == r.Price && TieBreak(o.ID, q.Address) > TieBreak(o.ID, r.Address) {
				rt.Fatalf("out of order: %v before %v", q, r)
			}
		}
	}
	// Nothing left out is cheaper than the last one chosen.
	if len(got) > 0 {
		last := got[len(got)-1]
		for i := range offers {
			p, ok := offers[i].PriceFor(o)
			if seen[i] || !ok || Feasible(o, &offers[i].Provider) != ReasonOK || o.MaxPricePerHour > 0 && p > o.MaxPricePerHour {
				continue
			}
			if p < last.Price {
				rt.Fatalf("offer %d at %d left out, %d chosen", i, p, last.Price)
			}
		}
	}
}

func TestPriceFor(t *testing.T) {
	f := Offer{
		Provider: Provider{Hardware: tx.Hardware{GPUs: []tx.GPUGroup{{Model: "H100", VRAMMiB: 81920, Count: 2},
			{Model: "A100", VRAMMiB: 40960, Count: 8}}}},
		GPUHour: map[string]uint64{"H100": 10, "A100": 6, "RTX4090": 1},
		CPUHour: 3,
	}
	for _, tc := range []struct {
		name string
		res  tx.Resources
		want uint64
		ok   bool
	}{
		{"cheapest allowed model", tx.Resources{GPUCount: 2}, 12, true},
		{"only H100 allowed", tx.Resources{GPUCount: 2, GPUModels: []string{"h100"}}, 20, true},
		{"too few H100, A100 cheaper anyway", tx.Resources{GPUCount: 4}, 24, true},
		{"too few H100, A100 not allowed", tx.Resources{GPUCount: 4, GPUModels: []string{"H100"}}, 0, false},
		{"A100 lacks the memory", tx.Resources{GPUCount: 2, GPUMinVRAMMiB: 50000}, 20, true},
		{"priced but not owned", tx.Resources{GPUCount: 1, GPUModels: []string{"RTX4090"}}, 0, false},
		{"models are not combined", tx.Resources{GPUCount: 10}, 0, false},
		{"cpu rounded up", tx.Resources{CPUMilli: 2500}, 9, true},
		{"cpu at least one core", tx.Resources{}, 3, true},
	} {
		got, ok := f.PriceFor(&Order{Resources: tc.res})
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: PriceFor = %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := (&Offer{}).PriceFor(&Order{}); ok {
		t.Error("CPUHour 0 priced a CPU-only order")
	}
	if _, ok := (&Offer{CPUHour: 1 << 62}).PriceFor(&Order{Resources: tx.Resources{CPUMilli: 8000}}); ok {
		t.Error("an overflowing price was priced")
	}
}

// TestMatchTable: a small market whose answer is known.
func TestMatchTable(t *testing.T) {
	gpu := func(i int, region string, model string, n uint32, price uint64) Offer {
		return Offer{Provider: Provider{Address: addr(i), Region: region, Verified: true, Docker: true, ReputationPPM: tx.PPM,
			Hardware: tx.Hardware{GPUs: []tx.GPUGroup{{Model: model, VRAMMiB: 81920, Count: n}}, CPUMilli: 32000, MemoryMiB: 1 << 18, DiskMiB: 1 << 20}},
			GPUHour: map[string]uint64{model: price}}
	}
	offers := []Offer{
		gpu(0, "eu", "H100", 8, 30), // 0
		gpu(1, "eu", "H100", 8, 20), // 1
		gpu(2, "us", "H100", 8, 10), // 2: cheapest, in us
		gpu(3, "eu", "H100", 2, 5),  // 3: too few GPUs for 4
		gpu(4, "eu", "A100", 8, 8),  // 4
		gpu(5, "eu", "H100", 8, 20), // 5: same price as 1
		gpu(6, "eu", "H100", 8, 1),  // 6: jailed
		{Provider: Provider{Address: addr(7), Region: "eu", Hardware: tx.Hardware{CPUMilli: 4000, MemoryMiB: 8192}}, CPUHour: 2},  // 7
		{Provider: Provider{Address: addr(8), Region: "us", Hardware: tx.Hardware{CPUMilli: 64000, MemoryMiB: 8192}}, CPUHour: 1}, // 8
	}
	offers[6].Provider.Jailed = true
	offers[4].CPUHour = 3 // a GPU machine that also sells CPU
	x := NewIndex(offers)
	first, second := 1, 5
	if TieBreak(9, addr(5)) < TieBreak(9, addr(1)) {
		first, second = 5, 1
	}
	for _, tc := range []struct {
		name string
		o    Order
		k    int
		want []int // offer indexes
	}{
		{"H100 x4 anywhere", Order{ID: 9, Resources: tx.Resources{GPUCount: 4, GPUModels: []string{"H100"}}}, 3, []int{2, first, second}},
		{"H100 x4 in eu: ties by TieBreak", Order{ID: 9, Resources: tx.Resources{GPUCount: 4, GPUModels: []string{"H100"}},
			Constraints: tx.Constraints{Regions: []string{"EU"}}}, 2, []int{first, second}},
		{"any model x4 in eu", Order{ID: 9, Resources: tx.Resources{GPUCount: 4}, Constraints: tx.Constraints{Regions: []string{"eu"}}}, 2, []int{4, first}},
		{"price bound", Order{ID: 9, Resources: tx.Resources{GPUCount: 4}, MaxPricePerHour: 50}, 0, []int{4, 2}},
		{"CPU-only, 3.5 cores", Order{ID: 9, Resources: tx.Resources{CPUMilli: 3500}}, 0, []int{8, 7, 4}},
		{"CPU-only, 5 cores: only 7 too small", Order{ID: 9, Resources: tx.Resources{CPUMilli: 5000}}, 5, []int{8, 4}},
		{"none fits", Order{ID: 9, Resources: tx.Resources{GPUCount: 16}}, 5, nil},
	} {
		got, naive := x.Match(&tc.o, tc.k), NaiveMatch(offers, &tc.o, tc.k)
		var idx []int
		for _, r := range got {
			idx = append(idx, r.Index)
		}
		if !slices.Equal(idx, tc.want) || !slices.Equal(got, naive) {
			t.Errorf("%s: index %v (%v), naive %v; want %v", tc.name, idx, got, naive, tc.want)
		}
	}
}

// benchMarket is a generated market of n providers and some orders, for the benchmarks (bench/match has the
// full simulation).
func benchMarket(n, orders int) ([]Offer, []Order) {
	r := rand.New(rand.NewPCG(1, 2))
	regions := []string{"us-east", "us-west", "eu-west", "eu-central", "ap-south", "ap-northeast"}
	base := map[string]uint64{"H100": 2_500_000, "A100": 1_400_000, "RTX4090": 400_000}
	vram := map[string]uint64{"H100": 81920, "A100": 40960, "RTX4090": 24576}
	offers := make([]Offer, n)
	for i := range offers {
		var a tx.Address
		for j := range a {
			a[j] = byte(r.Uint32())
		}
		p := Provider{Address: a, Region: regions[r.IntN(len(regions))], Docker: r.IntN(5) > 0, Verified: r.IntN(3) > 0,
			ReputationPPM: uint64(500_000 + r.IntN(500_001)), Jailed: r.IntN(40) == 0,
			Hardware: tx.Hardware{CPUMilli: uint64(8000 * (1 + r.IntN(16))), MemoryMiB: uint64(32768 * (1 + r.IntN(16))), DiskMiB: 1 << 21}}
		f := Offer{Provider: p}
		if r.IntN(6) > 0 {
			f.GPUHour = map[string]uint64{}
			for range 1 + r.IntN(2) {
				m := testModels[r.IntN(len(testModels))]
				p.Hardware.GPUs = append(p.Hardware.GPUs, tx.GPUGroup{Model: m, VRAMMiB: vram[m], Count: uint32(1 << r.IntN(4))})
				f.GPUHour[m] = base[m] * uint64(60+r.IntN(120)) / 100
			}
			f.Provider = p
		}
		if f.GPUHour == nil || r.IntN(2) == 0 {
			f.CPUHour = uint64(15_000 + r.IntN(20_000))
		}
		offers[i] = f
	}
	os := make([]Order, orders)
	for i := range os {
		o := Order{ID: uint64(i), Resources: tx.Resources{CPUMilli: uint64(1000 * (1 + r.IntN(8))), MemoryMiB: uint64(4096 * (1 + r.IntN(16)))},
			Constraints: tx.Constraints{Verified: r.IntN(3) == 0, Docker: r.IntN(2) == 0}}
		if r.IntN(10) < 7 {
			m := testModels[r.IntN(len(testModels))]
			o.Resources.GPUCount = uint32(1 + r.IntN(8))
			o.Resources.GPUModels = []string{m}
			if r.IntN(2) == 0 {
				o.MaxPricePerHour = base[m] * uint64(o.Resources.GPUCount) * uint64(50+r.IntN(150)) / 100
			}
		}
		if r.IntN(2) == 0 {
			o.Constraints.Regions = []string{regions[r.IntN(len(regions))]}
		}
		os[i] = o
	}
	return offers, os
}

func BenchmarkMatch(b *testing.B) {
	offers, orders := benchMarket(10_000, 1000)
	x := NewIndex(offers)
	i := 0
	for b.Loop() {
		x.Match(&orders[i%len(orders)], 5)
		i++
	}
}

func BenchmarkNaiveMatch(b *testing.B) {
	offers, orders := benchMarket(10_000, 1000)
	i := 0
	for b.Loop() {
		NaiveMatch(offers, &orders[i%len(orders)], 5)
		i++
	}
}

func BenchmarkNewIndex(b *testing.B) {
	offers, _ := benchMarket(10_000, 0)
	for b.Loop() {
		NewIndex(offers)
	}
}
