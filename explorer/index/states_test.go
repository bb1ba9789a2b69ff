package index_test

import (
	"context"
	"testing"

	"github.com/sparenet/spare/explorer/index"
	"github.com/sparenet/spare/explorer/internal/markettest"
)

// TestIndexEveryState: a history with a lease in every state (markettest.EveryState) is indexed as the ledger
// has it: each lease's state, how it ended and who ended it; each provider's record as the ledger keeps it (a
// lease not started in time counts as failed); the explorer's own count of how leases ended, which also sees a
// lease its provider closed before starting (the ledger does not count that one); and the CPU price index, per
// CPU-core-hour, beside the GPU one.
func TestIndexEveryState(t *testing.T) {
	m := markettest.Start(t, markettest.EveryStateOptions())
	db, stop := markettest.StartIndexer(t, markettest.TempIndex(t), m.C)
	defer stop()
	h := m.EveryState()
	markettest.WaitIndexed(t, db, m.Last)
	ctx := context.Background()
	p1, p2, tenant := m.Addr("p1"), m.Addr("p2"), m.Addr("tenant")

	for _, tc := range []struct {
		lease, state, outcome, closedBy string
		exit                            int64 // -1: no exit code
		failed                          bool
	}{
		{"pending", "pending", "", "", -1, false},
		{"active", "active", "", "", -1, false},
		{"cpu_active", "active", "", "", -1, false},
		{"replica_0", "active", "", "", -1, false},
		{"completed_exit_0", "completed", "completed, exit 0", p1, 0, false},
		{"completed_exit_3", "completed", "completed, exit 3", p2, 3, true},
		{"closed_by_tenant", "closed", "closed by tenant: done early", tenant, -1, false},
		{"closed_by_provider", "closed", "closed by provider: host maintenance", p2, -1, true},
		{"closed_before_start", "closed", "closed by provider", p1, -1, true},
		{"not_started_in_time", "closed", "not started in time", "", -1, true},
	} {
		l, err := db.Lease(ctx, h.Leases[tc.lease])
		exit := int64(-1)
		if l.ExitCode != nil {
			exit = *l.ExitCode
		}
		if err != nil || l.State != tc.state || l.Outcome() != tc.outcome || l.ClosedBy != tc.closedBy || exit != tc.exit || l.Failed() != tc.failed {
			t.Errorf("lease %s: %s %q closed by %q exit %d failed %v (%v); want %s %q by %q exit %d failed %v", tc.lease,
				l.State, l.Outcome(), l.ClosedBy, exit, l.Failed(), err, tc.state, tc.outcome, tc.closedBy, tc.exit, tc.failed)
		}
	}
	for name, state := range map[string]string{"open": "open", "cancelled": "cancelled", "expired": "expired", "replicated": "leased", "pending": "leased"} {
		if o, err := db.Order(ctx, h.Orders[name]); err != nil || o.State != state {
			t.Errorf("order %s: %q (%v), want %s", name, o.State, err, state)
		}
	}

	for _, tc := range []struct {
		key string
		// The ledger's record: p2's lease not started in time and its close of a running lease count as
		// failed; p1's close of a lease before it started does not.
		completed, failed uint64
		outcomes          index.LeaseOutcomes
	}{
		{"p1", 1, 0, index.LeaseOutcomes{Completed: 1, ClosedBeforeStart: 1, ClosedByTenant: 1}},
		{"p2", 1, 2, index.LeaseOutcomes{ExitNonZero: 1, NotStartedInTime: 1, ClosedByProvider: 1}},
		{"p3", 1, 0, index.LeaseOutcomes{Completed: 1, Live: 1}},
	} {
		addr := m.Addr(tc.key)
		p, err := db.Provider(ctx, addr)
		lp, lerr := m.C.Provider(ctx, m.Net.Keys[tc.key].Address())
		if err != nil || lerr != nil || p.Completed != tc.completed || p.Failed != tc.failed || p.Failed != lp.Failed || p.Completed != lp.Completed {
			t.Errorf("provider %s: index %d completed, %d failed; ledger %d, %d (%v %v); want %d, %d", tc.key,
				p.Completed, p.Failed, lp.Completed, lp.Failed, err, lerr, tc.completed, tc.failed)
		}
		got, err := db.ProviderLeaseOutcomes(ctx, addr)
		// Leases still running differ by the draw of the replicated order's runs: compare the ended ones.
		got.Live, tc.outcomes.Live = 0, 0
		if err != nil || got != tc.outcomes {
			t.Errorf("provider %s lease outcomes %+v (%v), want %+v", tc.key, got, err, tc.outcomes)
		}
	}
	if o, _ := db.ProviderLeaseOutcomes(ctx, p2); o.FailedToStart() != 1 {
		t.Errorf("p2 failed to start %d leases, want 1", o.FailedToStart())
	}

	// Both CPU-only leases cost 0.25 SPR per core-hour: 0.5 SPR/h for 2 cores and 1 SPR/h for 4.
	cpu, err := db.CPUPriceIndex(ctx, 10)
	if err != nil || len(cpu) != 1 || cpu[0].Model != index.CPUSeries || cpu[0].Unit != index.UnitCPUCoreHour {
		t.Fatalf("CPU price index %+v (%v)", cpu, err)
	}
	var n int
	for _, pt := range cpu[0].Points {
		n += pt.Leases
		if pt.Median != markettest.SPR/4 {
			t.Errorf("CPU price index point %+v, want a median of 250000 uspr", pt)
		}
	}
	gpu, err := db.PriceIndex(ctx, 10)
	if err != nil || n != 2 || len(gpu) != 2 || gpu[0].Unit != index.UnitGPUHour {
		t.Errorf("%d CPU leases in the CPU index; GPU index %+v (%v)", n, gpu, err)
	}
}

// TestLeaseOutcome: how a lease's row says it ended, and whether that was a failure, for the closes a history on
// a local chain does not easily reach.
func TestLeaseOutcome(t *testing.T) {
	exit := func(n int64) *int64 { return &n }
	const prov, tenant = "spare1provider", "spare1tenant"
	for _, tc := range []struct {
		name    string
		l       index.Lease
		outcome string
		failed  bool
	}{
		{"running", index.Lease{State: "active", StartedMs: 5}, "", false},
		{"duration over", index.Lease{State: "closed", StartedMs: 5, CloseReason: "duration ended"}, "duration ended", false},
		{"provider down", index.Lease{State: "closed", StartedMs: 5, CloseReason: "provider down in epoch 3 (auditors)"}, "provider down in epoch 3 (auditors)", false},
		{"cluster partner failed before start", index.Lease{State: "closed", CloseReason: "cluster member 2 failed"}, "cluster member 2 failed", true},
		{"replica committed", index.Lease{State: "completed", StartedMs: 5, CloseReason: "result committed", ClosedBy: prov}, "result committed", false},
		{"replica revealed, exit 1", index.Lease{State: "completed", StartedMs: 5, CloseReason: "result committed", ExitCode: exit(1)}, "completed, exit 1", true},
		{"tenant, no reason", index.Lease{State: "closed", StartedMs: 5, ClosedBy: tenant}, "closed by tenant", false},
		{"tenant's reason naming itself", index.Lease{State: "closed", StartedMs: 5, ClosedBy: tenant, CloseReason: "closed by tenant"}, "closed by tenant", false},
		{"a lease to oneself", index.Lease{State: "closed", StartedMs: 5, ClosedBy: prov, Tenant: prov, CloseReason: "x"}, "closed by provider: x", false},
	} {
		if tc.l.Provider == "" {
			tc.l.Provider = prov
		}
		if tc.l.Tenant == "" {
			tc.l.Tenant = tenant
		}
		if got := tc.l.Outcome(); got != tc.outcome || tc.l.Failed() != tc.failed {
			t.Errorf("%s: %q failed %v, want %q failed %v", tc.name, got, tc.l.Failed(), tc.outcome, tc.failed)
		}
	}
}
