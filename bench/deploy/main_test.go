package main

import (
	"os"
	"testing"
	"time"
)

// TestDeployBenchMeasures runs the benchmark's measurement on a small sample: every stage of every deploy was
// timed (the dev network's provider answered), the stages come in the order a deploy goes through them, and each
// stage's p50 ≤ p99 ≤ max.
func TestDeployBenchMeasures(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev network")
	}
	if err := os.Chdir("../.."); err != nil {
		t.Fatal(err)
	}
	stats, err := measure(3, 100*time.Millisecond, "examples/hello.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != len(stageOrder) {
		t.Fatalf("%d stages, want %d", len(stats), len(stageOrder))
	}
	prev := 0.0
	for i, s := range stats {
		if s.Stage != stageOrder[i] || s.P50 <= 0 || s.P50 > s.P99 || s.P99 > s.Max {
			t.Errorf("stage %d: %+v", i, s)
		}
		if s.Stage != "first bid" && s.Stage != "first output" && s.P50 < prev { // the optional stages may come in either order around their neighbours
			t.Errorf("%s at p50 %.1f ms, before the stage ahead of it (%.1f ms)", s.Stage, s.P50, prev)
		}
		if s.Stage != "first bid" && s.Stage != "first output" {
			prev = s.P50
		}
	}
	t.Logf("%+v", stats)
}
