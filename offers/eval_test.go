package offers

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

const (
	h100MiB        = 81559 // H100 80GB as nvidia-smi reports it
	a100S          = 40960 // A100 40GB
	a100L          = 81920 // A100 80GB
	l4MiB          = 23034
	spr     uint64 = api.USPR
)

func addr(i int) tx.Address { return tx.Address{byte(i)} }

// provider builds a bonded, active ledger record.
func provider(i int, region string, gpus ...tx.GPUGroup) api.ProviderView {
	return api.ProviderView{
		Provider: api.Provider{Owner: addr(i), Status: api.ProviderActive, Stake: 100,
			Info: tx.ProviderInfo{Region: region, Hardware: tx.Hardware{GPUs: gpus, CPUMilli: 64_000, MemoryMiB: 512 << 10, DiskMiB: 4 << 20}}},
		ReputationPPM: 500_000, RequiredStake: 100,
	}
}

func offer(p api.ProviderView, prices Prices, free ...tx.GPUGroup) *Offer {
	return &Offer{Provider: p.Owner, Free: tx.Hardware{GPUs: free, CPUMilli: 32_000, MemoryMiB: 256 << 10, DiskMiB: 1 << 20},
		Prices: prices, Docker: p.Info.Docker, Region: p.Info.Region, Zone: p.Info.Zone}
}

func gpu(model string, mib uint64, n uint32) tx.GPUGroup {
	return tx.GPUGroup{Model: model, VRAMMiB: mib, Count: n}
}

func table(cpu uint64, gpus ...any) Prices {
	p := Prices{GPUHour: map[string]uint64{}, CPUHour: cpu, MemoryGiBHour: 1000}
	for i := 0; i < len(gpus); i += 2 {
		p.GPUHour[gpus[i].(string)] = gpus[i+1].(uint64)
	}
	return p
}

// fixture is 13 providers, each there for a case:
//
//	1  eu-west/a  8 H100 free at 2.5, verified, docker, reputation 0.95, 20ms
//	2  eu-west/b  2 of 4 H100 free at 2.0, 50ms
//	3  us-east    8 H100 at 3.0, 100ms
//	4  us-east    4 A100 40GB and 2 A100 80GB at 1.2 (the table says "a100": case-insensitive)
//	5  eu-north   2 RTX4090 at 0.4
//	6  eu-west    CPU only: 64 cores free at 0.015 per core-hour
//	7  eu-west    8 H100 declared, offer not fetched
//	8  eu-west    jailed
//	9  eu-west    under-bonded
//	10 ap-south   4 L4, priced by a script (table has no L4 and no default)
//	11 ap-south   2 T4 not priced (no table entry, no default): nothing on offer
//	12 eu-west    1 H100 declared; the offer fetched names provider 1: ignored
//	13 us-west    2 H100 at 3.0 and 2 A100 80GB at 1.5
func fixture() []Candidate {
	var cs []Candidate
	add := func(p api.ProviderView, o *Offer, rtt time.Duration) {
		cs = append(cs, Candidate{Provider: p, Offer: o, RTT: rtt})
	}

	p1 := provider(1, "eu-west", gpu("H100", h100MiB, 8))
	p1.Info.Zone, p1.Verified, p1.Info.Docker, p1.ReputationPPM = "a", true, true, 950_000
	o1 := offer(p1, table(20_000, "H100", 25*spr/10), gpu("H100", h100MiB, 8))
	o1.Free.CPUMilli = 96_000
	add(p1, o1, 20*time.Millisecond)

	p2 := provider(2, "eu-west", gpu("H100", h100MiB, 4))
	p2.Info.Zone = "b"
	add(p2, offer(p2, table(20_000, "H100", 2*spr), gpu("H100", h100MiB, 2)), 50*time.Millisecond)

	p3 := provider(3, "us-east", gpu("H100", h100MiB, 8))
	add(p3, offer(p3, table(20_000, "H100", 3*spr), gpu("H100", h100MiB, 8)), 100*time.Millisecond)

	p4 := provider(4, "us-east", gpu("A100", a100S, 4), gpu("A100", a100L, 2))
	add(p4, offer(p4, table(20_000, "a100", 12*spr/10), gpu("A100", a100S, 4), gpu("A100", a100L, 2)), 90*time.Millisecond)

	p5 := provider(5, "eu-north", gpu("RTX4090", 24564, 2))
	add(p5, offer(p5, table(10_000, "RTX4090", 4*spr/10), gpu("RTX4090", 24564, 2)), 30*time.Millisecond)

	p6 := provider(6, "eu-west")
	o6 := offer(p6, table(15_000))
	o6.Free.CPUMilli = 64_000
	add(p6, o6, 10*time.Millisecond)

	p7 := provider(7, "eu-west", gpu("H100", h100MiB, 8))
	add(p7, nil, 0)

	p8 := provider(8, "eu-west", gpu("H100", h100MiB, 8))
	p8.Status = api.ProviderJailed
	add(p8, offer(p8, table(20_000, "H100", spr), gpu("H100", h100MiB, 8)), time.Millisecond)

	p9 := provider(9, "eu-west", gpu("H100", h100MiB, 8))
	p9.Stake = 99
	add(p9, offer(p9, table(20_000, "H100", spr), gpu("H100", h100MiB, 8)), time.Millisecond)

	p10 := provider(10, "ap-south", gpu("L4", l4MiB, 4))
	o10 := offer(p10, table(20_000, "H100", 2*spr), gpu("L4", l4MiB, 4))
	o10.Script = true
	add(p10, o10, 200*time.Millisecond)

	p11 := provider(11, "ap-south", gpu("T4", 15360, 2))
	add(p11, offer(p11, table(20_000, "H100", 2*spr), gpu("T4", 15360, 2)), 200*time.Millisecond)

	p12 := provider(12, "eu-west", gpu("H100", h100MiB, 1))
	add(p12, offer(p1, table(20_000, "H100", spr), gpu("H100", h100MiB, 1)), 5*time.Millisecond)

	p13 := provider(13, "us-west", gpu("H100", h100MiB, 2), gpu("A100", a100L, 2))
	add(p13, offer(p13, table(20_000, "H100", 3*spr, "A100", 15*spr/10), gpu("H100", h100MiB, 2), gpu("A100", a100L, 2)), 60*time.Millisecond)
	return cs
}

func ids(rows []Row) []int {
	out := []int{}
	for _, r := range rows {
		out = append(out, int(r.Provider[0]))
	}
	return out
}

func eval(t *testing.T, q string) ([]Row, Explanation) {
	t.Helper()
	pq, err := Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	return Eval(pq, fixture())
}

func TestEval(t *testing.T) {
	for _, tc := range []struct {
		q       string
		matched []int
		explain string
	}{
		{"", []int{1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13}, "13 providers: 11 match, 1 jailed, 1 under-bonded"},
		{"gpu=H100 price<=2.5", []int{1, 2},
			"13 providers: 2 match, 5 lack gpu=H100, 2 fail price<=2.5, 1 jailed, 1 under-bonded, 2 unreachable"},
		// GPU terms narrow in query order: 13's H100s cost 3, its A100s 1.5; 3 has only H100s at 3.
		{"price<=2.5 gpu=H100", []int{1, 2},
			"13 providers: 2 match, 4 fail price<=2.5, 3 lack gpu=H100, 1 jailed, 1 under-bonded, 2 unreachable"},
		{"gpu=h100,A100 price<=1.5", []int{4, 13}, "13 providers: 2 match, 4 lack gpu=h100,A100, 3 fail price<=1.5, 1 jailed, 1 under-bonded, 2 unreachable"},
		{"gpu!=H100", []int{4, 5, 10, 13}, "13 providers: 4 match, 7 fail gpu!=H100, 1 jailed, 1 under-bonded"},
		// Only declared hardware is known of 7 and 12 (whose offer named another provider): they match without
		// price or capacity terms, declared GPUs standing in for free ones.
		{"gpu=H100 region=eu-west", []int{1, 2, 7, 12}, "13 providers: 4 match, 5 lack gpu=H100, 2 fail region=eu-west, 1 jailed, 1 under-bonded"},
		{"region=EU-WEST,eu-north zone!=b", []int{1, 5, 6, 7, 12}, "13 providers: 5 match, 5 fail region=EU-WEST,eu-north, 1 fails zone!=b, 1 jailed, 1 under-bonded"},
		{"zone=a", []int{1}, "13 providers: 1 matches, 10 fail zone=a, 1 jailed, 1 under-bonded"},
		// gpus counts the GPUs every GPU term selects, wherever it stands: 2 has 2 H100 free, 13 has 2.
		{"gpus>=4 gpu=H100", []int{1, 3}, "13 providers: 2 match, 7 lack gpus>=4, 1 jailed, 1 under-bonded, 2 unreachable"},
		{"gpu=H100 gpus>=4", []int{1, 3}, "13 providers: 2 match, 5 lack gpu=H100, 2 lack gpus>=4, 1 jailed, 1 under-bonded, 2 unreachable"},
		{"gpus=0", []int{6, 11}, "13 providers: 2 match, 7 fail gpus=0, 1 jailed, 1 under-bonded, 2 unreachable"},
		// vram with the tolerance: H100s (79.6 GiB) count as 80; only 4's 80GB A100s do.
		{"vram>=80 gpu=A100", []int{4, 13}, "13 providers: 2 match, 4 lack vram>=80, 5 lack gpu=A100, 1 jailed, 1 under-bonded"},
		{"vram=40", []int{4}, "13 providers: 1 matches, 10 fail vram=40, 1 jailed, 1 under-bonded"},
		{"vram>=24", []int{1, 2, 3, 4, 5, 7, 12, 13}, "13 providers: 8 match, 3 lack vram>=24, 1 jailed, 1 under-bonded"},
		// A script provider's unknown price fails price terms; its GPUs are on offer without them.
		{"gpu=L4", []int{10}, "13 providers: 1 matches, 10 lack gpu=L4, 1 jailed, 1 under-bonded"},
		{"gpu=L4 price<=100", nil, "13 providers: 10 lack gpu=L4, 1 fails price<=100, 1 jailed, 1 under-bonded"},
		// Unpriced GPUs are not on offer.
		{"gpu=T4", nil, "13 providers: 11 lack gpu=T4, 1 jailed, 1 under-bonded"},
		// No GPU term: price is per CPU core-hour.
		{"cpu>=64 price<=0.015", []int{6}, "13 providers: 1 matches, 7 lack cpu>=64, 1 fails price<=0.015, 1 jailed, 1 under-bonded, 2 unreachable"},
		{"price<=0.015", []int{5, 6}, "13 providers: 2 match, 7 fail price<=0.015, 1 jailed, 1 under-bonded, 2 unreachable"},
		{"memory>=256 disk>=1024 cpu<=32", []int{2, 3, 4, 5, 10, 11, 13}, "13 providers: 7 match, 2 fail cpu<=32, 1 jailed, 1 under-bonded, 2 unreachable"},
		{"memory>256", nil, "13 providers: 9 lack memory>256, 1 jailed, 1 under-bonded, 2 unreachable"},
		{"disk<1024", nil, "13 providers: 9 fail disk<1024, 1 jailed, 1 under-bonded, 2 unreachable"},
		{"verified=true", []int{1}, "13 providers: 1 matches, 10 fail verified=true, 1 jailed, 1 under-bonded"},
		{"verified!=true docker=false", []int{2, 3, 4, 5, 6, 7, 10, 11, 12, 13}, "13 providers: 10 match, 1 fails verified!=true, 1 jailed, 1 under-bonded"},
		{"docker=true", []int{1}, "13 providers: 1 matches, 10 fail docker=true, 1 jailed, 1 under-bonded"},
		{"reputation>=0.9", []int{1}, "13 providers: 1 matches, 10 fail reputation>=0.9, 1 jailed, 1 under-bonded"},
		{"reputation<0.9 region=us-east", []int{3, 4}, "13 providers: 2 match, 1 fails reputation<0.9, 8 fail region=us-east, 1 jailed, 1 under-bonded"},
	} {
		t.Run(tc.q, func(t *testing.T) {
			rows, ex := eval(t, tc.q)
			want := tc.matched
			if want == nil {
				want = []int{}
			}
			if got := ids(rows); !slices.Equal(got, want) {
				t.Errorf("matched %v, want %v", got, want)
			}
			if ex.String() != tc.explain {
				t.Errorf("explanation\n got %q\nwant %q", ex.String(), tc.explain)
			}
			if ex.Candidates != 13 || ex.Matched != len(rows) {
				t.Errorf("counts %+v", ex)
			}
			n := ex.Matched
			for _, r := range ex.Rejected {
				n += r.Count
				if len(r.Providers) != r.Count {
					t.Errorf("rejection %+v: %d providers", r, len(r.Providers))
				}
			}
			if n != 13 {
				t.Errorf("every candidate is counted once: %d", n)
			}
		})
	}
}

func TestEvalRows(t *testing.T) {
	rows, _ := eval(t, "gpu=H100,A100 price<=2.5")
	byID := map[int]Row{}
	for _, r := range rows {
		byID[int(r.Provider[0])] = r
	}
	r1 := byID[1]
	if !r1.Reachable || r1.GPUCount != 8 || r1.Model != "H100" || *r1.GPUHour != 2_500_000 || *r1.Price != 2_500_000 ||
		*r1.CPUHour != 20_000 || r1.VRAMMiB != h100MiB || r1.RTT != 20*time.Millisecond || !r1.Verified ||
		r1.ReputationPPM != 950_000 || r1.Region != "eu-west" || r1.Zone != "a" || !r1.Docker || r1.CPUMilli != 96_000 || r1.Indicative {
		t.Errorf("row 1: %+v", r1)
	}
	// 13: only its A100s are under 2.5; the row shows them and their price.
	r13 := byID[13]
	if r13.GPUCount != 2 || len(r13.GPUs) != 1 || r13.GPUs[0].Model != "A100" || r13.Model != "A100" || *r13.Price != 1_500_000 {
		t.Errorf("row 13: %+v", r13)
	}
	// 4: both A100 groups, price from the "a100" entry.
	r4 := byID[4]
	if r4.GPUCount != 6 || len(r4.GPUs) != 2 || r4.VRAMMiB != a100L || *r4.GPUHour != 1_200_000 {
		t.Errorf("row 4: %+v", r4)
	}

	// Without GPU terms every GPU on offer is shown, the cheapest model priced, and Price is per core-hour.
	rows, _ = eval(t, "region=us-west,eu-west")
	for _, r := range rows {
		switch r.Provider[0] {
		case 13:
			if r.GPUCount != 4 || r.Model != "A100" || *r.GPUHour != 1_500_000 || *r.Price != 20_000 {
				t.Errorf("row 13: %+v", r)
			}
		case 6:
			if r.GPUCount != 0 || r.GPUs == nil || r.GPUHour != nil || *r.Price != 15_000 || r.CPUMilli != 64_000 {
				t.Errorf("row 6: %+v", r)
			}
		case 7, 12:
			if r.Reachable || r.Price != nil || r.GPUHour != nil || r.CPUHour != nil || r.GPUCount == 0 || r.CPUMilli != 64_000 || r.RTT != 0 && r.Provider[0] == 7 {
				t.Errorf("unreachable row: %+v", r)
			}
		}
	}

	// A script provider's row is indicative; its L4 has no table price.
	rows, _ = eval(t, "gpu=L4")
	if len(rows) != 1 || !rows[0].Indicative || rows[0].GPUHour != nil || rows[0].Price != nil || *rows[0].CPUHour != 20_000 {
		t.Errorf("script row: %+v", rows)
	}

	// Rows and explanations are JSON for `spare offers -o json`.
	rows, ex := eval(t, "gpu=H100 price<=2.5")
	b, err := json.Marshal(struct {
		Rows []Row
		Ex   Explanation
	}{rows, ex})
	if err != nil || !strings.Contains(string(b), `"gpu_hour":2500000`) || !strings.Contains(string(b), `"term":"gpu=H100","count":5`) {
		t.Errorf("json %s %v", b, err)
	}
}

func TestEvalSort(t *testing.T) {
	rows, _ := eval(t, "gpu!=T4")
	for _, tc := range []struct {
		key  string
		want []int
	}{
		// 7 and 12 are unreachable: no price, no RTT.
		{"price", []int{5, 4, 13, 2, 1, 3, 7, 10, 12}}, // 10's L4 has no known price
		{"gpus", []int{1, 3, 7, 4, 10, 13, 2, 5, 12}},
		{"vram", []int{4, 13, 1, 2, 3, 7, 12, 5, 10}},
		{"reputation", []int{1, 2, 3, 4, 5, 7, 10, 12, 13}},
		{"rtt", []int{12, 1, 5, 2, 13, 4, 3, 10, 7}},    // 12's offer was fetched (and ignored): its RTT is known,
		{"REGION", []int{10, 5, 7, 12, 1, 2, 3, 4, 13}}, // then by zone, none first,
	} {
		t.Run(tc.key, func(t *testing.T) {
			rs := slices.Clone(rows)
			slices.Reverse(rs) // the result must not depend on the input order
			if err := Sort(rs, tc.key); err != nil {
				t.Fatal(err)
			}
			if got := ids(rs); !slices.Equal(got, tc.want) {
				t.Errorf("sorted %v, want %v", got, tc.want)
			}
		})
	}
	for key, want := range map[string]string{"prcie": "did you mean price?", "cost": "keys: price gpus vram reputation rtt region", "": "keys:"} {
		if err := Sort(rows, key); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Sort(%q): %v, want it to mention %q", key, err, want)
		}
	}
}

func TestEvalExplanationString(t *testing.T) {
	for _, tc := range []struct {
		ex   Explanation
		want string
	}{
		{Explanation{}, "no providers"},
		{Explanation{Candidates: 1, Matched: 1}, "1 provider: all match"},
		{Explanation{Candidates: 3, Matched: 3}, "3 providers: all match"},
		{Explanation{Candidates: 1, Rejected: []Rejection{{Reason: ReasonUnreachable, Count: 1}}}, "1 provider: 1 unreachable"},
		{Explanation{Candidates: 14, Rejected: []Rejection{
			{Term: "gpu=H100", Count: 9, field: FieldGPU, op: OpEq},
			{Term: "price<=2.5", Count: 3, field: FieldPrice, op: OpLe},
			{Reason: ReasonUnreachable, Count: 2},
		}}, "14 providers: 9 lack gpu=H100, 3 fail price<=2.5, 2 unreachable"},
		{Explanation{Candidates: 3, Matched: 1, Rejected: []Rejection{
			{Term: "cpu>=8", Count: 1, field: FieldCPU, op: OpGe},
			{Term: "cpu<=64", Count: 1, field: FieldCPU, op: OpLe},
		}}, "3 providers: 1 matches, 1 lacks cpu>=8, 1 fails cpu<=64"},
	} {
		if got := tc.ex.String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestOfferPricesGPU(t *testing.T) {
	p := Prices{GPUHour: map[string]uint64{"h100": 1, "H100": 2, "a100": 3}, DefaultGPUHour: 0}
	for model, want := range map[string]uint64{"H100": 2, "h100": 1, "A100": 3, "a100": 3} {
		if v, ok := p.GPU(model); !ok || v != want {
			t.Errorf("%s: %d %v, want %d", model, v, ok, want)
		}
	}
	if _, ok := p.GPU("T4"); ok {
		t.Error("T4 priced without a default")
	}
	p.DefaultGPUHour = 7
	if v, ok := p.GPU("T4"); !ok || v != 7 {
		t.Errorf("T4 with default: %d %v", v, ok)
	}
}
