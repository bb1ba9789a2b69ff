package match

import (
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"

	"github.com/sparenet/spare/ledger/tx"
)

func addr(i int) tx.Address { return tx.Address{byte(i), byte(i >> 8), 0xaa} }

// bruteCluster tries every n-subset: the cheapest one whose every pair is linked within the bound.
func bruteCluster(n int, maxRTT uint32, cands []Member, links []Link) (uint64, bool) {
	worst := map[[2]int]uint32{}
	for _, l := range links {
		if l.A == l.B {
			continue
		}
		k := [2]int{min(l.A, l.B), max(l.A, l.B)}
		if w, ok := worst[k]; !ok || l.RTTMicros > w {
			worst[k] = l.RTTMicros
		}
	}
	ok := func(a, b int) bool {
		w, found := worst[[2]int{min(a, b), max(a, b)}]
		return found && w <= maxRTT
	}
	best, found := ^uint64(0), false
	var rec func(start int, chosen []int, sum uint64)
	rec = func(start int, chosen []int, sum uint64) {
		if len(chosen) == n {
			if sum < best {
				best, found = sum, true
			}
			return
		}
		for i := start; i < len(cands); i++ {
			fits := true
			for _, c := range chosen {
				if !ok(c, i) {
					fits = false
					break
				}
			}
			if fits {
				rec(i+1, append(chosen, i), sum+cands[i].Price)
			}
		}
	}
	rec(0, nil, 0)
	return best, found
}

// TestClusterProperties: on small random instances the chosen set is n distinct candidates, every pair linked
// within the bound, and no cheaper such set exists (brute force); with no set, brute force finds none either.
func TestClusterProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		v := rapid.IntRange(1, 11).Draw(rt, "candidates")
		n := rapid.IntRange(1, 5).Draw(rt, "n")
		maxRTT := uint32(rapid.IntRange(0, 10_000).Draw(rt, "max_rtt"))
		cands := make([]Member, v)
		for i := range cands {
			cands[i] = Member{Address: addr(i), Price: uint64(rapid.IntRange(1, 20).Draw(rt, "price"))}
		}
		var links []Link
		for range rapid.IntRange(0, v*v).Draw(rt, "links") {
			links = append(links, Link{rapid.IntRange(0, v-1).Draw(rt, "a"), rapid.IntRange(0, v-1).Draw(rt, "b"),
				uint32(rapid.IntRange(0, 12_000).Draw(rt, "rtt"))})
		}
		got := Cluster(7, n, maxRTT, cands, links, 0)
		want, found := bruteCluster(n, maxRTT, cands, links)
		if !got.Exact {
			rt.Fatalf("budget ran out on %d candidates", v)
		}
		if !found {
			if got.Members != nil {
				rt.Fatalf("chose %v where no set fits", got.Members)
			}
			return
		}
		if len(got.Members) != n {
			rt.Fatalf("chose %v, want %d members (cheapest %d)", got.Members, n, want)
		}
		var sum uint64
		seen := map[int]bool{}
		for i, a := range got.Members {
			if seen[a] {
				rt.Fatalf("member %d twice", a)
			}
			seen[a] = true
			sum += cands[a].Price
			for _, b := range got.Members[i+1:] {
				if w, ok := pairWorst(links, a, b); !ok || w > maxRTT {
					rt.Fatalf("members %d and %d: rtt %d (linked %v) above %d", a, b, w, ok, maxRTT)
				}
			}
		}
		if sum != got.Price || sum != want {
			rt.Fatalf("price %d (reported %d), brute force finds %d", sum, got.Price, want)
		}
		// Replays pick the same set.
		again := Cluster(7, n, maxRTT, cands, links, 0)
		if len(again.Members) != len(got.Members) {
			rt.Fatalf("replay differs")
		}
		for i := range again.Members {
			if again.Members[i] != got.Members[i] {
				rt.Fatalf("replay differs: %v vs %v", again.Members, got.Members)
			}
		}
	})
}

func pairWorst(links []Link, a, b int) (uint32, bool) {
	var w uint32
	found := false
	for _, l := range links {
		if l.A == a && l.B == b || l.A == b && l.B == a {
			w, found = max(w, l.RTTMicros), true
		}
	}
	return w, found
}

// TestFeasibleStagesProperty: a provider Feasible accepts satisfies every stage, and the reason given for a
// rejection is a stage it fails with every stage before it passed.
func TestFeasibleStagesProperty(t *testing.T) {
	models := []string{"H100", "A100", "RTX4090"}
	rapid.Check(t, func(rt *rapid.T) {
		p := Provider{Address: addr(rapid.IntRange(0, 3).Draw(rt, "addr")), Region: rapid.SampledFrom([]string{"eu", "us"}).Draw(rt, "region"),
			Docker: rapid.Bool().Draw(rt, "docker"), Verified: rapid.Bool().Draw(rt, "verified"),
			ReputationPPM: uint64(rapid.IntRange(0, tx.PPM).Draw(rt, "rep")), Jailed: rapid.Bool().Draw(rt, "jailed"),
			Hardware: tx.Hardware{CPUMilli: uint64(rapid.IntRange(0, 8000).Draw(rt, "cpu")), MemoryMiB: uint64(rapid.IntRange(0, 1<<16).Draw(rt, "mem")),
				DiskMiB: uint64(rapid.IntRange(0, 1<<20).Draw(rt, "disk"))}}
		for range rapid.IntRange(0, 2).Draw(rt, "groups") {
			p.Hardware.GPUs = append(p.Hardware.GPUs, tx.GPUGroup{Model: rapid.SampledFrom(models).Draw(rt, "model"),
				VRAMMiB: uint64(rapid.IntRange(1, 81920).Draw(rt, "vram")), Count: uint32(rapid.IntRange(1, 8).Draw(rt, "count"))})
		}
		o := Order{ID: 1, Resources: tx.Resources{GPUCount: uint32(rapid.IntRange(0, 4).Draw(rt, "gpus")),
			CPUMilli: uint64(rapid.IntRange(0, 8000).Draw(rt, "ocpu")), MemoryMiB: uint64(rapid.IntRange(0, 1<<16).Draw(rt, "omem"))},
			Constraints: tx.Constraints{Verified: rapid.Bool().Draw(rt, "overified"), Docker: rapid.Bool().Draw(rt, "odocker"),
				MinReputationPPM: uint32(rapid.IntRange(0, tx.PPM).Draw(rt, "orep"))}}
		if o.Resources.GPUCount > 0 && rapid.Bool().Draw(rt, "model constraint") {
			o.Resources.GPUModels = []string{rapid.SampledFrom(models).Draw(rt, "omodel")}
		}
		if rapid.Bool().Draw(rt, "region constraint") {
			o.Constraints.Regions = []string{"EU"}
		}
		r := Feasible(&o, &p)
		// Independent statement of each rule.
		var gpuOK uint64
		for _, g := range p.Hardware.GPUs {
			if (len(o.Resources.GPUModels) == 0 || o.Resources.GPUModels[0] == g.Model) && g.VRAMMiB >= o.Resources.GPUMinVRAMMiB {
				gpuOK += uint64(g.Count)
			}
		}
		ok := !p.Jailed && gpuOK >= uint64(o.Resources.GPUCount) && p.Hardware.CPUMilli >= o.Resources.CPUMilli &&
			p.Hardware.MemoryMiB >= o.Resources.MemoryMiB && p.Hardware.DiskMiB >= o.Resources.DiskMiB &&
			(len(o.Constraints.Regions) == 0 || p.Region == "eu") && (!o.Constraints.Verified || p.Verified) &&
			p.ReputationPPM >= uint64(o.Constraints.MinReputationPPM) && (!o.Constraints.Docker || p.Docker)
		if ok != (r == ReasonOK) {
			rt.Fatalf("Feasible = %q, rules say ok=%v", r, ok)
		}
		if r != ReasonOK {
			for _, s := range stages {
				if s.Reason == r {
					if !s.Fails(&o, &p) {
						rt.Fatalf("reason %q but its stage passes", r)
					}
					break
				}
				if s.Fails(&o, &p) {
					rt.Fatalf("reason %q but the earlier stage %q fails", r, s.Reason)
				}
			}
		}
	})
}

func TestScore(t *testing.T) {
	for _, tc := range []struct {
		price, rtt, rep, want uint64
	}{
		{1_000_000, 0, 1_000_000, 1_000_000},
		{1_000_000, 100_000, 1_000_000, 1_100_000},   // 100 ms: +10%
		{1_000_000, 5_000_000, 1_000_000, 2_000_000}, // capped at 1 s: +100%
		{1_000_000, 0, 100_000, 2_000_000},           // reputation floored at 0.5
		{^uint64(0), 0, 1_000_000, ^uint64(0)},       // saturates
	} {
		if got := Score(tc.price, tc.rtt, tc.rep); got != tc.want {
			t.Errorf("Score(%d, %d µs, %d) = %d, want %d", tc.price, tc.rtt, tc.rep, got, tc.want)
		}
	}
}

// BenchmarkClusterSearchStep measures what one step of a cluster search costs, on the searches the ledger runs:
// 20 candidates (max_bids_per_order); of 2,000 random graphs (fixed seed), the one whose search takes the most
// steps (771: none fits). The ledger prices a step at 600 gas (ledger/kernel/gas.go: at least 4 gas per ns).
func BenchmarkClusterSearchStep(b *testing.B) {
	const n = 20
	rng := rand.New(rand.NewPCG(1, 2))
	var cands []Member
	var links []Link
	want, most := 0, 0
	for range 2000 {
		c := make([]Member, n)
		for i := range c {
			c[i] = Member{Address: addr(i), Price: uint64(1000 + rng.IntN(50))}
		}
		p, w := 0.5+0.5*rng.Float64(), 3+rng.IntN(14)
		var l []Link
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				if rng.Float64() < p {
					l = append(l, Link{A: i, B: j, RTTMicros: 500}, Link{A: j, B: i, RTTMicros: 400})
				}
			}
		}
		if s := Cluster(7, w, 1_000, c, l, 0).Steps; s > most {
			cands, links, want, most = c, l, w, s
		}
	}
	steps := 0
	for b.Loop() {
		steps += Cluster(7, want, 1_000, cands, links, 5_000).Steps
	}
	b.ReportMetric(float64(most), "steps/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(steps), "ns/step")
}
