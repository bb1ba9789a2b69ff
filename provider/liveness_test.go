package provider_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/audit"
	"github.com/sparenet/spare/ledger/api"
)

// TestLivenessDownProviderSlashed: an auditor finds the daemon answering its challenges (uptime recorded); the
// daemon is killed while holding a running lease; the next verdict marks it down, closes the lease, refunds
// the tenant exactly what was not billed and slashes the stake. Down again, it is jailed; restarted, the
// daemon sends Unjail once the cooldown has passed and the auditor finds it up again.
func TestLivenessDownProviderSlashed(t *testing.T) {
	params := api.DefaultParams()
	params.EpochBlocks, params.SlashDowntimePPM, params.JailAfterDownEpochs, params.UnjailCooldownSec = 10, 100_000, 2, 1
	e := startEnvOpts(t, envOpts{params: &params, auditors: map[string]uint64{"aud": 1}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := audit.NewAuditor(e.c, e.net.Keys["aud"], testLogger())
	a.Timeout = 2 * time.Second
	a.Proofs = false // this test is about liveness: the fake H100s would fail their proof of GPU and be jailed
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	prov := e.net.Keys["prov"].Address()
	e.waitFor(30*time.Second, "an up verdict", func() bool {
		p, err := e.c.Provider(context.Background(), prov)
		return err == nil && p.EpochsUp >= 1
	})

	m, raw := job("sleep 600", 1)
	leaseID := e.leaseOf(e.order("tenant", m, raw, 10*spr))
	e.manifestOK("tenant", leaseID, raw)
	e.waitFor(10*time.Second, "the lease to start", func() bool {
		l, err := e.c.Lease(context.Background(), leaseID)
		return err == nil && l.State == api.LeaseActive
	})
	before, _ := e.c.Provider(context.Background(), prov)
	tenantBefore, _ := e.c.Account(context.Background(), e.net.Keys["tenant"].Address())
	e.stop() // the daemon dies; its API no longer answers

	l := e.waitLeaseEnded(leaseID)
	if l.State != api.LeaseClosed || !strings.Contains(l.CloseReason, "provider down") || l.Paid+l.Refunded != l.Deposit {
		t.Fatalf("lease after the provider went down: %+v", l.Lease)
	}
	after, _ := e.c.Provider(context.Background(), prov)
	if want := (before.Stake + before.Unbonding) / 10; after.EpochsDown < 1 || after.Slashed != want || after.Stake != before.Stake-want || after.Failed != before.Failed+1 {
		t.Fatalf("provider after the verdict: %+v (before %+v)", after.Provider, before.Provider)
	}
	tenantAfter, _ := e.c.Account(context.Background(), e.net.Keys["tenant"].Address())
	if tenantAfter.Balance != tenantBefore.Balance+l.Refunded {
		t.Fatalf("tenant refunded %d, want %d", tenantAfter.Balance-tenantBefore.Balance, l.Refunded)
	}
	if got := a.Attested(); len(got) < 2 || len(got[len(got)-1].Down) == 0 && len(got[len(got)-2].Down) == 0 {
		t.Fatalf("the auditor's record does not show the provider down: %+v", got)
	}

	e.waitFor(30*time.Second, "the provider to be jailed", func() bool {
		p, err := e.c.Provider(context.Background(), prov)
		return err == nil && p.Status == api.ProviderJailed
	})
	jailed, _ := e.c.Provider(context.Background(), prov)
	e.start()
	e.waitFor(30*time.Second, "the restarted daemon to unjail itself and be found up", func() bool {
		p, err := e.c.Provider(context.Background(), prov)
		return err == nil && p.Status == api.ProviderActive && p.EpochsUp > jailed.EpochsUp
	})
}

// TestAuditorNotInSet: a key outside the auditor set is refused before it probes anyone.
func TestAuditorNotInSet(t *testing.T) {
	e := startEnv(t)
	err := audit.NewAuditor(e.c, e.net.Keys["other"], testLogger()).Run(context.Background())
	if !errors.Is(err, audit.ErrNotAuditor) {
		t.Fatalf("Run with a key outside the set: %v", err)
	}
}
