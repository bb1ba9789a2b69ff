package proof

import (
	"errors"
	"math"
	"math/bits"
	"strings"
	"testing"
	"time"
)

func TestClassTable(t *testing.T) {
	seen := map[string]bool{}
	for i, c := range Classes {
		if seen[c.ID] || c.ID == "" || c.TOPS <= 0 || c.MemGiB <= 0 || c.Source == "" {
			t.Errorf("class %d (%q) is incomplete or repeated", i, c.ID)
		}
		seen[c.ID] = true
		if i > 0 && c.TOPS < Classes[i-1].TOPS {
			t.Errorf("%s is listed after the faster %s", c.ID, Classes[i-1].ID)
		}
		if c.ID != "cpu" && !strings.HasPrefix(c.Source, "spec:") {
			t.Errorf("%s: GPU figures are spec-sheet figures until measured; Source %q", c.ID, c.Source)
		}
		if got, ok := ClassByID(c.ID); !ok || got.ID != c.ID {
			t.Errorf("ClassByID(%q) failed", c.ID)
		}
	}
}

// TestParamsSeparate checks, for every claimable class, that the claimed class finishes well inside the
// deadline while no class slower than a peer can, and that s bounds the false-pass chance.
func TestParamsSeparate(t *testing.T) {
	pol := DefaultPolicy()
	for _, claimed := range Classes {
		p, err := pol.Params(claimed, Classes)
		if claimed.ID == "cpu" {
			if !errors.Is(err, ErrParams) {
				t.Errorf("cpu: %v, want ErrParams (nothing below it)", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", claimed.ID, err)
		}
		c := p.Challenge(Seed{})
		if err := c.Validate(); err != nil || bits.OnesCount(uint(p.N)) != 1 || 6*float64(p.N*p.N) > claimed.MemGiB*(1<<30)/2 {
			t.Errorf("%s: n = %d, k = %d: %v", claimed.ID, p.N, p.K, err)
		}
		below, _ := ClassByID(p.Below)
		work := c.Ops()
		tc := time.Duration(work / (claimed.TOPS * 1e12) * 1e9)
		slack := pol.SlackBase + time.Duration(p.N*p.N)*pol.SlackPerByte
		r := claimed.TOPS / below.TOPS
		t.Logf("%-9s n=%5d k=%5d s=%2d  compute %6.3fs  deadline %6.3fs  %s %6.3fs (f=%.2f)  verify %.2g ops",
			claimed.ID, p.N, p.K, p.Rows, tc.Seconds(), p.Deadline.Seconds(), p.Below, p.BelowTime.Seconds(), p.Fraction, p.VerifyOps)

		if tc < pol.Target-time.Millisecond || tc+slack >= p.Deadline {
			t.Errorf("%s: computes %v of %v deadline (slack %v)", claimed.ID, tc, p.Deadline, slack)
		}
		// Deadline less slack is min(Comfort, √r) times the claimed compute time: a third when r ≥ 9.
		if g := (p.Deadline - slack).Seconds() / tc.Seconds(); math.Abs(g-min(pol.Comfort, math.Sqrt(r))) > 1e-3 {
			t.Errorf("%s: deadline is %.3f× compute, want %.3f×", claimed.ID, g, min(pol.Comfort, math.Sqrt(r)))
		}
		for _, other := range Classes {
			t2 := time.Duration(work / (other.TOPS * 1e12) * 1e9)
			switch {
			case other.TOPS*pol.PeerRatio <= claimed.TOPS && t2 <= p.Deadline:
				t.Errorf("%s: %s finishes in %v, within the %v deadline", claimed.ID, other.ID, t2, p.Deadline)
			case other.TOPS*pol.PeerRatio <= claimed.TOPS && other.TOPS > below.TOPS:
				t.Errorf("%s: %s is faster than %s, the class below", claimed.ID, other.ID, below.ID)
			}
		}
		f := p.Deadline.Seconds() / (work / (below.TOPS * 1e12))
		if math.Abs(f-p.Fraction) > 1e-6 || f > pol.MaxFraction+1e-6 {
			t.Errorf("%s: fraction %v, reported %v", claimed.ID, f, p.Fraction)
		}
		if s, _ := RowsFor(pol.FalsePass, f); s != p.Rows || math.Pow(f, float64(p.Rows)) > pol.FalsePass {
			t.Errorf("%s: s = %d for f = %v", claimed.ID, p.Rows, f)
		}
		if want := 2 * float64(p.Rows*p.K) * float64(p.N*p.N); p.VerifyOps != want {
			t.Errorf("%s: verify ops %v, want %v", claimed.ID, p.VerifyOps, want)
		}
	}
}

func TestParamsRejectsPeersAndTinyDevices(t *testing.T) {
	pol := DefaultPolicy()
	peers := []Class{{ID: "a", TOPS: 100, MemGiB: 24}, {ID: "b", TOPS: 150, MemGiB: 24}}
	if _, err := pol.Params(peers[1], peers); !errors.Is(err, ErrParams) {
		t.Errorf("peers: %v", err)
	}
	tiny := []Class{{ID: "a", TOPS: 100, MemGiB: 24}, {ID: "b", TOPS: 1000, MemGiB: 0.001}}
	if _, err := pol.Params(tiny[1], tiny); !errors.Is(err, ErrParams) {
		t.Errorf("no memory: %v", err)
	}
	// The gap just above PeerRatio still separates, with more work.
	near := []Class{{ID: "a", TOPS: 100, MemGiB: 24}, {ID: "b", TOPS: 100 * pol.PeerRatio, MemGiB: 24}}
	if p, err := pol.Params(near[1], near); err != nil || p.BelowTime <= p.Deadline {
		t.Errorf("ratio %v: %+v, %v", pol.PeerRatio, p, err)
	}
}

func TestCPUParamsAndModels(t *testing.T) {
	for _, cores := range []float64{1, 2, 16, 64} {
		p := CPUParams(cores)
		if p.Class != "cpu" || p.N != 512 || p.K < 1 || p.Deadline < 3*p.Expected || p.Rows != 16 {
			t.Fatalf("CPUParams(%v) = %+v", cores, p)
		}
		if err := p.Challenge(Seed{1}).Validate(); err != nil {
			t.Fatalf("CPUParams(%v): %v", cores, err)
		}
	}
	if c, ok := ClassForModel("H100"); !ok || c.ID != "h100-pcie" {
		t.Fatalf("H100 -> %+v %v", c, ok)
	}
	if _, ok := ClassForModel("Z9000"); ok {
		t.Fatal("unknown model mapped")
	}
}
