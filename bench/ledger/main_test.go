package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
)

// TestSmoke runs both apps for about 2 s each, so the benchmark cannot rot unnoticed.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two CometBFT nodes under load (~15 s)")
	}
	var log bytes.Buffer
	rep, err := run(Config{Apps: []string{"baseline", "spare"}, Duration: 2 * time.Second, Warmup: 500 * time.Millisecond,
		Workers: 4, Providers: 2, BlockTime: 100 * time.Millisecond, MaxInflight: 4000, Log: &log})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want 2", len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.Committed <= 0 || r.TxPerSec <= 0 || r.Blocks <= 0 || r.Acked <= 0 {
			t.Errorf("%s: nothing committed: %+v", r.App, r)
		}
		if r.Latencies == 0 || r.P50Ms <= 0 || r.P99Ms < r.P50Ms {
			t.Errorf("%s: latency p50 %.1f p99 %.1f from %d samples", r.App, r.P50Ms, r.P99Ms, r.Latencies)
		}
		if r.SuccessRate < 0.9 {
			t.Errorf("%s: success rate %.3f (failed %v)", r.App, r.SuccessRate, r.Failed)
		}
	}
	spare := rep.Results[1]
	for _, kind := range []string{"send", "order", "bid", "start"} {
		if spare.Mix[kind] == 0 {
			t.Errorf("spare committed no %s transactions: mix %v", kind, spare.Mix)
		}
	}
	if rep.Ratio == nil {
		t.Fatal("no ratio with both apps run")
	}
	if want := spare.TxPerSec / rep.Results[0].TxPerSec; math.Abs(*rep.Ratio-want) > 1e-9 || *rep.Ratio <= 0 {
		t.Errorf("ratio %v, want %v", *rep.Ratio, want)
	}
	var out bytes.Buffer
	printTable(&out, rep)
	if !strings.Contains(out.String(), "spare / baseline:") {
		t.Errorf("table lacks the ratio:\n%s", out.String())
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("report does not marshal: %v", err)
	}
	t.Logf("\n%s", out.String())
}

func TestRatio(t *testing.T) {
	rs := []AppResult{{App: "baseline", TxPerSec: 4000}, {App: "spare", TxPerSec: 5000}}
	if r := ratio(rs); r == nil || *r != 1.25 {
		t.Fatalf("ratio %v, want 1.25", r)
	}
	if r := ratio(rs[:1]); r != nil {
		t.Fatalf("ratio with one app: %v", *r)
	}
	if r := ratio([]AppResult{{App: "baseline"}, {App: "spare", TxPerSec: 1}}); r != nil {
		t.Fatalf("ratio over a zero baseline: %v", *r)
	}
}

func TestParseMix(t *testing.T) {
	m, err := parseMix(defaultMix)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, w := range m {
		sum += w
	}
	if math.Abs(sum-1) > 1e-9 || math.Abs(m["send"]-0.40) > 1e-9 {
		t.Fatalf("mix %v", m)
	}
	for _, bad := range []string{"", "send", "send=x", "foo=1", "order=1"} {
		if _, err := parseMix(bad); err == nil {
			t.Errorf("parseMix(%q) accepted", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if p := percentileMs(d, 0.5); p != 50 {
		t.Errorf("p50 %v", p)
	}
	if p := percentileMs(d, 0.99); p != 99 {
		t.Errorf("p99 %v", p)
	}
	if p := percentileMs(nil, 0.5); p != 0 {
		t.Errorf("empty p50 %v", p)
	}
}

func TestNoIndexClearsIndexFlags(t *testing.T) {
	evs := []abci.Event{{Type: "transfer", Attributes: []abci.EventAttribute{{Key: "from", Value: "a", Index: true},
		{Key: "to", Value: "b", Index: true}}}}
	unindex(evs)
	for _, a := range evs[0].Attributes {
		if a.Index || a.Value == "" {
			t.Fatalf("attribute %+v", a)
		}
	}
}
