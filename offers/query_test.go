package offers

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		q      string
		canon  string // Query.String()
		n      uint64 // the parsed number of the last term
		names  []string
		b      bool
		perGPU bool
	}{
		{q: "", canon: ""},
		{q: "   ", canon: ""},
		{q: "gpu=H100", canon: "gpu=H100", names: []string{"H100"}, perGPU: true},
		{q: "GPU=h100", canon: "gpu=h100", names: []string{"h100"}, perGPU: true},
		{q: "gpu!=T4,A10", canon: "gpu!=T4,A10", names: []string{"T4", "A10"}, perGPU: true},
		{q: "gpu=RTX4090_Laptop,L40S.x", canon: "gpu=RTX4090_Laptop,L40S.x", names: []string{"RTX4090_Laptop", "L40S.x"}, perGPU: true},
		{q: "gpus=4", canon: "gpus=4", n: 4, perGPU: true},
		{q: "gpus!=0", canon: "gpus!=0", n: 0, perGPU: true},
		{q: "gpus>0", canon: "gpus>0", n: 0, perGPU: true},
		{q: "gpus>=2", canon: "gpus>=2", n: 2, perGPU: true},
		{q: "gpus<8", canon: "gpus<8", n: 8},   // 0 GPUs pass: not about GPUs
		{q: "gpus<=8", canon: "gpus<=8", n: 8}, // likewise
		{q: "gpus=0", canon: "gpus=0", n: 0},   // CPU-only
		{q: "vram>=80", canon: "vram>=80", n: 80 * 1024, perGPU: true},
		{q: "vram>=80GiB", canon: "vram>=80GiB", n: 80 * 1024, perGPU: true},
		{q: "vram>=80gib", canon: "vram>=80gib", n: 80 * 1024, perGPU: true},
		{q: "vram<23.5", canon: "vram<23.5", n: 24064, perGPU: true},
		{q: "cpu>=8", canon: "cpu>=8", n: 8000},
		{q: "cpu>0.5", canon: "cpu>0.5", n: 500},
		{q: "memory>=64", canon: "memory>=64", n: 64 * 1024},
		{q: "memory<=0.25GiB", canon: "memory<=0.25GiB", n: 256},
		{q: "disk>=500GiB", canon: "disk>=500GiB", n: 500 * 1024},
		{q: "price<=2.5", canon: "price<=2.5", n: 2_500_000},
		{q: "price<2.5spr", canon: "price<2.5spr", n: 2_500_000},
		{q: "price<=2500000uspr", canon: "price<=2500000uspr", n: 2_500_000},
		{q: "price>=0.000001", canon: "price>=0.000001", n: 1},
		{q: "price!=0", canon: "price!=0", n: 0},
		{q: "gpu=H100 price=2", canon: "gpu=H100 price=2", n: 2_000_000, perGPU: true},
		{q: "region=eu-west,eu-north", canon: "region=eu-west,eu-north", names: []string{"eu-west", "eu-north"}},
		{q: "region!=us-east", canon: "region!=us-east", names: []string{"us-east"}},
		{q: "zone=a", canon: "zone=a", names: []string{"a"}},
		{q: "verified=true", canon: "verified=true", b: true},
		{q: "verified!=false", canon: "verified!=false", b: false},
		{q: "docker=TRUE", canon: "docker=TRUE", b: true},
		{q: "docker=false", canon: "docker=false"},
		{q: "reputation>=0.9", canon: "reputation>=0.9", n: 900_000},
		{q: "reputation=1", canon: "reputation=1", n: 1_000_000},
		{q: "reputation>0.0000005", canon: "reputation>0.0000005", n: 1}, // rounded to the nearest ppm
		{q: "  gpu=H100   gpus>=8\tprice<=2.5 ", canon: "gpu=H100 gpus>=8 price<=2.5", n: 2_500_000, perGPU: true},
		{q: "price<=3 price>=1", canon: "price<=3 price>=1", n: 1_000_000}, // a range: both terms kept
	} {
		t.Run(tc.q, func(t *testing.T) {
			q, err := Parse(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if q.String() != tc.canon {
				t.Fatalf("String() = %q, want %q", q.String(), tc.canon)
			}
			if q.PerGPU() != tc.perGPU {
				t.Fatalf("PerGPU() = %v, want %v", q.PerGPU(), tc.perGPU)
			}
			if len(q.Terms) == 0 {
				return
			}
			last := q.Terms[len(q.Terms)-1]
			if last.n != tc.n || !slices.Equal(last.names, tc.names) || last.b != tc.b {
				t.Fatalf("term %+v, want n=%d names=%v b=%v", last, tc.n, tc.names, tc.b)
			}
		})
	}
}

func TestParseOperators(t *testing.T) {
	for _, op := range Ops {
		q, err := Parse("gpus" + string(op) + "2")
		if err != nil || q.Terms[0].Op != op || q.Terms[0].Field != FieldGPUs {
			t.Fatalf("%s: %+v %v", op, q, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	const fields = "fields: gpu gpus vram cpu memory disk price region zone verified reputation docker"
	const ops = "operators: = != < <= > >="
	for _, tc := range []struct {
		q    string
		want []string // substrings of the error
		not  string   // must not appear
	}{
		// Unknown fields, with a suggestion when one is near.
		{"prce<=2", []string{`term "prce<=2"`, `unknown field "prce"`, "did you mean price?", fields}, ""},
		{"gpuz=H100", []string{`unknown field "gpuz"`, "did you mean gpu"}, ""},
		{"regions=eu", []string{"did you mean region?"}, ""},
		{"reput>=0.5", []string{"did you mean reputation?"}, ""},
		{"model=H100", []string{"did you mean gpu?"}, ""},
		{"ram>=64", []string{"did you mean memory?"}, ""},
		{"cores>=8", []string{"did you mean cpu?"}, ""},
		{"count>=2", []string{"did you mean gpus?"}, ""},
		{"Verifed=true", []string{`unknown field "Verifed"`, "did you mean verified?"}, ""},
		{"foo=1", []string{`unknown field "foo"`, fields}, "did you mean"},
		// Unknown operators.
		{"gpu==H100", []string{`term "gpu==H100"`, `unknown operator "=="`, "did you mean =?", ops}, ""},
		{"gpus=>2", []string{`unknown operator "=>"`, "did you mean >=?"}, ""},
		{"price=<2", []string{`unknown operator "=<"`, "did you mean <=?"}, ""},
		{"region<>eu", []string{`unknown operator "<>"`, "did you mean !=?"}, ""},
		{"gpu~H100", []string{`unknown operator "~"`, ops}, "did you mean"},
		{"gpus>>2", []string{`unknown operator ">>"`}, ""},
		// Operators a field does not take.
		{"region>=eu", []string{`term "region>=eu"`, "region takes only = or !="}, ""},
		{"zone<b", []string{"zone takes only = or !="}, ""},
		{"gpu<H100", []string{"gpu takes only = or !="}, ""},
		{"verified>true", []string{"verified takes only = or !="}, ""},
		{"docker<=false", []string{"docker takes only = or !="}, ""},
		// Values of the wrong type.
		{"docker=yes", []string{`term "docker=yes"`, "docker wants true or false"}, ""},
		{"verified=1", []string{"verified wants true or false"}, ""},
		{"gpus>=two", []string{`term "gpus>=two"`, "gpus wants a whole number"}, ""},
		{"gpus>=1.5", []string{"gpus wants a whole number"}, ""},
		{"gpus>=-1", []string{"gpus wants a whole number"}, ""},
		{"cpu>=8cores", []string{"cpu wants a number of free CPU cores"}, ""},
		{"cpu>=1e3", []string{"cpu wants"}, ""},
		{"cpu>=.5", []string{"cpu wants"}, ""},
		{"cpu>=5.", []string{"cpu wants"}, ""},
		{"price<=cheap", []string{`term "price<=cheap"`, "price wants SPR per GPU-hour"}, ""},
		{"price<=-1", []string{"price wants"}, ""},
		{"price<=1.0000001", []string{"price wants"}, ""},
		{"price<=1.5uspr", []string{"price wants"}, ""},
		{"price<=2usd", []string{"price wants"}, ""},
		{"reputation>=1.5", []string{"reputation wants a fraction from 0 to 1"}, ""},
		{"reputation>=95", []string{"reputation wants a fraction from 0 to 1"}, ""},
		{"reputation>=95%", []string{"reputation wants"}, ""},
		// Units: sizes are GiB, bare or with the suffix GiB; nothing else.
		{"vram>=80GB", []string{`term "vram>=80GB"`, "sizes are in GiB: write 80 or 80GiB"}, ""},
		{"vram>=80G", []string{"sizes are in GiB: write 80 or 80GiB"}, ""},
		{"vram>=81920MiB", []string{"sizes are in GiB: write 81920 or 81920GiB"}, ""},
		{"memory>=64gb", []string{"sizes are in GiB: write 64 or 64GiB"}, ""},
		{"disk>=1TiB", []string{"sizes are in GiB: write 1 or 1GiB"}, ""},
		{"disk>=1.5TB", []string{"sizes are in GiB: write 1.5 or 1.5GiB"}, ""},
		{"vram>=GiB", []string{"vram wants GPU memory in GiB"}, ""},
		{"vram>=-1", []string{"vram wants GPU memory in GiB"}, ""},
		{"memory>=lots", []string{"memory wants free memory in GiB"}, ""},
		// Names.
		{"gpu=H100,,A100", []string{"empty name in the list", "gpu wants a GPU model"}, ""},
		{"gpu=H100,", []string{"empty name in the list"}, ""},
		{"region=eu/west", []string{`"eu/west" is not a name`}, ""},
		{"zone=" + strings.Repeat("a", 65), []string{"is not a name"}, ""},
		// Shape.
		{"gpu=", []string{`term "gpu="`, "no value after =", "gpu wants a GPU model"}, ""},
		{"=H100", []string{`term "=H100"`, "no field before the operator", fields}, ""},
		{">=2", []string{"no field before the operator"}, ""},
		{"H100", []string{`term "H100"`, "no operator", ops}, ""},
		{"gpu = H100", []string{`term "gpu = H100": write each term without spaces: gpu=H100`}, "\n"},
		{"gpu =H100", []string{`term "gpu =H100": write each term without spaces: gpu=H100`}, "\n"},
		{"gpu= H100", []string{`term "gpu= H100": write each term without spaces: gpu=H100`}, "\n"},
		{"price <= 2 region=eu gpus >=x", []string{`term "price <= 2": write each term without spaces: price<=2`, `term "gpus >=x"`}, "region"},
		{"gpu", []string{`term "gpu": no operator: gpu wants a GPU model`}, ""},
	} {
		t.Run(tc.q, func(t *testing.T) {
			q, err := Parse(tc.q)
			if err == nil {
				t.Fatalf("parsed as %q, want an error", q)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tc.not != "" && strings.Contains(err.Error(), tc.not) {
				t.Errorf("error %q mentions %q", err, tc.not)
			}
			if len(q.Terms) != 0 {
				t.Errorf("a failed parse returned terms %v", q.Terms)
			}
		})
	}
}

// Every bad term is reported, each named; good terms around them do not hide them.
func TestParseReportsEveryBadTerm(t *testing.T) {
	_, err := Parse("gpu=H100 prce<=2 gpus>=x region=eu")
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if !strings.Contains(msg, `term "prce<=2"`) || !strings.Contains(msg, `term "gpus>=x"`) || strings.Count(msg, "\n") != 1 {
		t.Fatalf("error %q: want both bad terms, one per line", msg)
	}
	if strings.Contains(msg, "gpu=H100") || strings.Contains(msg, "region=eu") {
		t.Fatalf("error %q blames a good term", msg)
	}
}

func TestParseNeedsOffer(t *testing.T) {
	for q, want := range map[string]bool{
		"":                            false,
		"gpu=H100 vram>=80 region=eu": false,
		"verified=true reputation>=0.5 zone=a docker=true": false,
		"gpu=H100 gpus>=1": true,
		"price<=2":         true,
		"cpu>=1":           true,
		"memory>=1":        true,
		"disk>=1":          true,
	} {
		p, err := Parse(q)
		if err != nil {
			t.Fatal(err)
		}
		if p.NeedsOffer() != want {
			t.Errorf("%q: NeedsOffer() = %v, want %v", q, !want, want)
		}
	}
}

func TestEvalVRAMTolerance(t *testing.T) {
	const (
		h100 = 81559 // H100 80GB as nvidia-smi reports it (79.6 GiB)
		a100 = 40960 // A100 40GB, exactly 40 GiB
		rtx  = 24564 // RTX 4090 "24GB"
		l4   = 23034 // L4 "24GB": 22.5 GiB, below 95% of 24
		gib  = 1024
	)
	for _, tc := range []struct {
		op   Op
		mib  uint64
		size uint64 // GiB
		want bool
	}{
		{OpGe, h100, 80, true}, {OpEq, h100, 80, true}, {OpLe, h100, 80, true},
		{OpGt, h100, 80, false}, {OpLt, h100, 80, false}, {OpNe, h100, 80, false},
		{OpGt, h100, 79, true}, {OpGe, h100, 85, false}, {OpLt, h100, 85, true},
		{OpEq, h100, 40, false}, {OpNe, h100, 40, true}, {OpGt, h100, 40, true},
		{OpEq, a100, 40, true}, {OpGe, a100, 80, false}, {OpLt, a100, 80, true},
		{OpGe, rtx, 24, true}, {OpEq, rtx, 24, true},
		{OpGe, l4, 24, false}, {OpGe, l4, 22, true}, {OpEq, l4, 23, true},
		// The band's edges: 95% of 80 GiB is 77824 MiB.
		{OpGe, 77824, 80, true}, {OpGe, 77823, 80, false}, {OpLt, 77823, 80, true}, {OpEq, 81920, 80, true}, {OpEq, 81921, 80, false},
	} {
		if got := vramHolds(tc.op, tc.mib, tc.size*gib); got != tc.want {
			t.Errorf("%d MiB vram%s%d: %v, want %v", tc.mib, tc.op, tc.size, got, tc.want)
		}
	}
}

func TestParseSuggest(t *testing.T) {
	for word, want := range map[string]string{"prise": "price", "zon": "zone", "gpus": "gpus", "memroy": "memory",
		"diskk": "disk", "regoin": "region", "dockr": "docker", "xyzzy": "", "ab": ""} {
		if got := suggestField(word); got != want {
			t.Errorf("suggestField(%q) = %q, want %q", word, got, want)
		}
	}
}
