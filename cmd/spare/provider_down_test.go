package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sparenet/spare/internal/proctest"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// TestProviderDownFiveEpochs plays a provider's machine dying for good while it runs a lease, on real processes
// (node, auditor, provider) and short epochs: the auditor finds it down, the ledger closes the lease and refunds
// the tenant exactly what was not billed, slashes the stake once (the only epoch it held a lease) and jails the
// provider after jail_after_down_epochs; it stays jailed while down for five epochs. Restarted, the daemon stops
// the workload of the lease the ledger closed, tops its stake back up, sends Unjail once the cooldown has
// passed, is found up again and wins and completes a new lease, paid exactly.
func TestProviderDownFiveEpochs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node, auditor and provider processes")
	}
	m := newProcMarket(t, marketOpts{auditor: true, params: map[string]uint64{"epoch_blocks": 20, "jail_after_down_epochs": 3,
		"unjail_cooldown_sec": 5, "slash_downtime_ppm": 100_000}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m.wait(ctx, 90*time.Second, "the provider found up by the auditor", func() bool {
		p, err := m.c.Provider(ctx, m.provider.Address())
		return err == nil && p.EpochsUp >= 1 && p.Stake >= p.RequiredStake
	})

	const marker = "617" // the orphaned workload's `sleep 617`
	l := m.lease(ctx, "exec sleep "+marker, 600)
	before := m.providerView(ctx)
	tenantBefore, _ := m.c.Account(ctx, m.tenant.Address())
	m.prov.Kill() // the machine dies: SIGKILL, no restart announced; the workload runs on
	killEpoch, _ := m.epochNow(ctx)

	m.wait(ctx, 90*time.Second, "the lease to be closed", func() bool {
		l, _ = m.c.Lease(ctx, l.ID)
		return l.State != api.LeaseActive
	})
	if l.State != api.LeaseClosed || !strings.Contains(l.CloseReason, "provider down") {
		t.Fatalf("lease after the provider went down: %s %q", l.State, l.CloseReason)
	}
	if l.Paid+l.Refunded != l.Deposit {
		t.Fatalf("paid %d + refunded %d != deposit %d", l.Paid, l.Refunded, l.Deposit)
	}
	if want := l.Price * (l.EndedMs - l.StartedMs) / 3_600_000; l.Paid != want {
		t.Fatalf("paid %d for %d ms at %d/h, want %d", l.Paid, l.EndedMs-l.StartedMs, l.Price, want)
	}
	if a, _ := m.c.Account(ctx, m.tenant.Address()); a.Balance != tenantBefore.Balance+l.Refunded {
		t.Fatalf("tenant's balance moved by %d, refunded %d", int64(a.Balance-tenantBefore.Balance), l.Refunded)
	}
	var p api.ProviderView
	m.wait(ctx, 90*time.Second, "the provider to be jailed", func() bool {
		p, _ = m.c.Provider(ctx, m.provider.Address())
		return p.Status == api.ProviderJailed
	})
	slash := (before.Stake + before.Unbonding) * 100_000 / tx.PPM
	if p.Slashed != before.Slashed+slash || p.Stake != before.Stake-slash || p.Failed != before.Failed+1 || p.DownStreak < 3 {
		t.Fatalf("provider after the verdicts: slashed %d (want %d more), stake %d (was %d), failed %d (was %d), down streak %d",
			p.Slashed, slash, p.Stake, before.Stake, p.Failed, before.Failed, p.DownStreak)
	}
	m.wait(ctx, 120*time.Second, "five epochs down", func() bool {
		e, _ := m.epochNow(ctx)
		return e >= killEpoch+5
	})
	if p = m.providerView(ctx); p.Status != api.ProviderJailed || p.Slashed != before.Slashed+slash {
		t.Fatalf("after five epochs down: %s, slashed %d (want %d)", p.Status, p.Slashed, before.Slashed+slash)
	}
	if !running("sleep", marker) {
		t.Fatal("the orphaned workload is not running: the test no longer plays a machine whose daemon died")
	}
	upBefore := p.EpochsUp

	restarted := time.Now()
	m.startProvider()
	m.wait(ctx, 60*time.Second, "the closed lease's workload to be stopped", func() bool { return !running("sleep", marker) })
	unjailed := m.wait(ctx, 60*time.Second, "the provider to unjail itself", func() bool {
		p, _ = m.c.Provider(ctx, m.provider.Address())
		return p.Status != api.ProviderJailed
	})
	m.wait(ctx, 60*time.Second, "the stake topped back up", func() bool {
		p, _ = m.c.Provider(ctx, m.provider.Address())
		return p.Stake >= p.RequiredStake
	})
	l2 := m.lease(ctx, "echo back in service", 30)
	bidding := time.Since(restarted)
	m.wait(ctx, 60*time.Second, "the new lease to complete", func() bool {
		l2, _ = m.c.Lease(ctx, l2.ID)
		return l2.State == api.LeaseCompleted
	})
	if want := l2.Price * (l2.EndedMs - l2.StartedMs) / 3_600_000; l2.Paid != want || l2.Receipt == nil {
		t.Fatalf("new lease: paid %d, want %d; receipt %+v", l2.Paid, want, l2.Receipt)
	}
	m.wait(ctx, 60*time.Second, "the auditor to find the provider up again", func() bool {
		p, _ = m.c.Provider(ctx, m.provider.Address())
		return p.EpochsUp > upBefore
	})
	if p.Slashed != before.Slashed+slash {
		t.Fatalf("slashed %d after coming back, want %d", p.Slashed, before.Slashed+slash)
	}
	t.Logf("recovery after the restart: unjailed in %s, a new lease won in %s; lease refunded %d of %d uspr, slashed %d uspr once, down streak %d",
		unjailed.Round(10*time.Millisecond), bidding.Round(10*time.Millisecond), l.Refunded, l.Deposit, slash, p.DownStreak)
}

// TestProviderRestartAcrossEpochBoundary restarts a provider holding a running lease twice, each outage spanning
// the boundary between two epochs: once killed with SIGKILL (nothing announced), once stopped with SIGTERM (the
// daemon announces its restart). The auditor probes five times an epoch and reports down only on a majority of
// misses: no lease is lost, nothing is slashed, no down epoch is recorded, and the lease completes paid exactly.
// After the SIGKILL restart a new order is bid on, won and started (the provider back at work). About 80 s: in
// make faults only (SPARE_FAULTS=full); make test has the auditor's probe spread in audit's unit tests.
func TestProviderRestartAcrossEpochBoundary(t *testing.T) {
	if testing.Short() || os.Getenv("SPARE_FAULTS") != "full" {
		t.Skip("runs node, auditor and provider processes for about 80 s: make faults (SPARE_FAULTS=full)")
	}
	const epoch = 60 // 6 s at 100 ms blocks: an outage of 0.3·W + 3b = 1.8 s + 1.2 s misses 3 probes at best
	m := newProcMarket(t, marketOpts{auditor: true, params: map[string]uint64{"epoch_blocks": epoch}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m.wait(ctx, 90*time.Second, "the provider found up by the auditor", func() bool {
		p, err := m.c.Provider(ctx, m.provider.Address())
		return err == nil && p.EpochsUp >= 1 && p.Stake >= p.RequiredStake
	})
	l := m.lease(ctx, `i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo tick $i; sleep 0.1; done`, 120)
	before := m.providerView(ctx)

	back := map[syscall.Signal]time.Duration{}
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		// Stop the daemon about half a second of blocks before an epoch boundary, start it again a second after
		// it exited.
		e, h := m.epochNow(ctx)
		boundary := int64((e+1)*epoch) + 1
		if boundary-h < 10 {
			boundary += epoch
		}
		m.wait(ctx, 30*time.Second, "the blocks before the boundary", func() bool {
			_, h := m.epochNow(ctx)
			return h >= boundary-5
		})
		_ = m.prov.Cmd.Process.Signal(sig)
		select {
		case <-m.prov.Done:
		case <-time.After(15 * time.Second):
			t.Fatalf("the daemon did not stop on %s", sig)
		}
		time.Sleep(time.Second)
		restarted := time.Now()
		m.startProvider()
		m.wait(ctx, 30*time.Second, "the provider's API", func() bool {
			code, _ := m.call("GET", "/offer", nil)
			return code == 200
		})
		if sig == syscall.SIGKILL { // back to work: an order placed now is bid on, won and started
			l2 := m.lease(ctx, "echo back", 30)
			back[sig] = time.Since(restarted)
			m.wait(ctx, 60*time.Second, "the new lease to complete", func() bool {
				l2, _ = m.c.Lease(ctx, l2.ID)
				return l2.State == api.LeaseCompleted
			})
		}
		_, h = m.epochNow(ctx)
		if h <= boundary {
			t.Logf("the %s outage ended before the boundary (height %d, boundary %d): blocks were slow", sig, h, boundary)
		}
		// Two verdicts on the epochs around the outage: the one it began in and the next.
		m.wait(ctx, 90*time.Second, "the verdicts on the epochs around the outage", func() bool {
			e, _ := m.epochNow(ctx)
			return uint64(boundary-1)/epoch+2 <= e
		})
	}
	if b, _ := os.ReadFile(m.provLog); !bytes.Contains(b, []byte("restart announced")) {
		t.Fatalf("the daemon stopped with SIGTERM did not announce its restart:\n%s", proctest.Tail(m.provLog, 20))
	}
	p := m.providerView(ctx)
	if p.EpochsDown != before.EpochsDown || p.Slashed != before.Slashed || p.Status == api.ProviderJailed || p.Failed != before.Failed {
		t.Fatalf("provider after two restarts: down %d (was %d), slashed %d (was %d), %s, failed %d (was %d)",
			p.EpochsDown, before.EpochsDown, p.Slashed, before.Slashed, p.Status, p.Failed, before.Failed)
	}
	m.wait(ctx, 120*time.Second, "the lease to complete", func() bool {
		l, _ = m.c.Lease(ctx, l.ID)
		return l.State != api.LeaseActive
	})
	if l.State != api.LeaseCompleted || l.Receipt == nil || l.Receipt.ExitCode != 0 {
		t.Fatalf("lease after two restarts: %s %q, receipt %+v", l.State, l.CloseReason, l.Receipt)
	}
	if want := l.Price * (l.EndedMs - l.StartedMs) / 3_600_000; l.Paid != want {
		t.Fatalf("paid %d, want %d", l.Paid, want)
	}
	code, out := m.call("GET", fmt.Sprintf("/leases/%d/logs", l.ID), nil)
	if code != 200 || !bytes.Contains(out, []byte("tick 400\n")) {
		t.Fatalf("log after two restarts (%d): %s", code, proctest.Tail(m.provLog, 10))
	}
	t.Logf("two restarts across epoch boundaries: epochs up %d → %d, down %d, slashed %d; after the SIGKILL restart a new order was leased and started in %s",
		before.EpochsUp, p.EpochsUp, p.EpochsDown, p.Slashed, back[syscall.SIGKILL].Round(10*time.Millisecond))
}
