package main

import (
	"os"
	"testing"
	"time"
)

// TestDeployBenchRuns keeps the benchmark program working: two deploys on a fresh dev network.
func TestDeployBenchRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev network")
	}
	if err := os.Chdir("../.."); err != nil {
		t.Fatal(err)
	}
	if err := run(2, 100*time.Millisecond, "examples/hello.yaml", true); err != nil {
		t.Fatal(err)
	}
}
