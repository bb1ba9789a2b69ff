package provider_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/audit"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/provider"
)

// TestProofOfGPU: with an auditor running, an honest CPU-only provider declaring its CPU is verified as a CPU;
// a provider whose config claims eight H100s on a machine without them is caught (no answer within the
// class's deadline), slashed and jailed within a few epochs.
func TestProofOfGPU(t *testing.T) {
	params := api.DefaultParams()
	params.EpochBlocks, params.SlashProofPPM, params.UnjailCooldownSec = 10, 50_000, 3600
	for _, tc := range []struct {
		name   string
		mutate func(*provider.Config)
		check  func(p api.ProviderView, stake uint64) bool
	}{
		{"honest CPU", func(c *provider.Config) { c.Hardware.GPUs = nil }, func(p api.ProviderView, _ uint64) bool {
			return p.Verified && p.VerifiedClass == "cpu" && p.VerifiedOps > 0 && p.Status == api.ProviderActive
		}},
		{"fake H100", nil, func(p api.ProviderView, stake uint64) bool {
			return !p.Verified && p.Status == api.ProviderJailed && p.Slashed == stake/20
		}},
		// A provider that tries anyway, with a solver far slower than an H100 (here one that never finishes):
		// caught by the deadline.
		{"fake H100 with a solver", func(c *provider.Config) { c.ProofSolver = []string{"/bin/sh", "-c", "exec sleep 60"} },
			func(p api.ProviderView, stake uint64) bool {
				return !p.Verified && p.Status == api.ProviderJailed && p.Slashed == stake/20
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEnvOpts(t, envOpts{mutate: tc.mutate, params: &params, auditors: map[string]uint64{"aud": 1}})
			prov := e.net.Keys["prov"].Address()
			before, _ := e.c.Provider(context.Background(), prov)
			ctx, cancel := context.WithCancel(context.Background())
			a := audit.NewAuditor(e.c, e.net.Keys["aud"], testLogger())
			a.TranscriptDir = t.TempDir()
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			defer func() { cancel(); <-done }()
			var last api.ProviderView
			e.waitFor(60*time.Second, "the proof-of-GPU verdict", func() bool {
				var err error
				last, err = e.c.Provider(context.Background(), prov)
				return err == nil && tc.check(last, before.Stake+before.Unbonding)
			})
			hw := a.Hardware()
			if len(hw) == 0 || hw[0].Provider != prov {
				t.Fatalf("auditor results %+v", hw)
			}
			if tc.name == "fake H100" && (hw[0].Passed || hw[0].Class != "h100-pcie" || hw[0].Devices != 8 || !strings.Contains(hw[0].Reason, "no GPU solver")) {
				t.Fatalf("fake H100 result %+v", hw[0])
			}
			if tc.name == "fake H100 with a solver" && (hw[0].Passed || !strings.Contains(hw[0].Reason, "deadline") || hw[0].Took < hw[0].Deadline) {
				t.Fatalf("slow solver result %+v", hw[0])
			}
			if tc.name == "honest CPU" && (!hw[0].Passed || hw[0].Took > hw[0].Deadline) {
				t.Fatalf("honest CPU result %+v", hw[0])
			}
			if tc.name == "honest CPU" {
				// The transcript file is what the ledger's verdict names, and anyone can re-check it.
				b, err := os.ReadFile(hw[0].File)
				if err != nil {
					t.Fatal(err)
				}
				ts, err := audit.DecodeTranscripts(b)
				if err != nil || ts.Hash() != hw[0].Transcript || ts.Verify() != nil || len(ts) != 1 || ts[0].Class != "cpu" {
					t.Fatalf("transcript %s: %v", hw[0].File, err)
				}
			}
		})
	}
}
