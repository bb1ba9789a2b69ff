package provider_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/provider"
)

// TestExtendedLeaseRunsToItsNewEnd: the daemon publishes its max_lease_duration on the ledger; a lease the tenant
// extends keeps running past the duration it was ordered with and is stopped at its new end, reported as its
// duration reached (timed out), as is a lease on the same provider that was not extended, at its own end.
func TestExtendedLeaseRunsToItsNewEnd(t *testing.T) {
	e := startEnvWith(t, func(c *provider.Config) { c.MaxLeaseDuration = provider.Duration{Duration: time.Hour} })
	ctx := context.Background()
	p, err := e.c.Provider(ctx, e.net.Keys["prov"].Address())
	if err != nil || p.Info.MaxLeaseSec != 3600 {
		t.Fatalf("provider on the ledger: %v %+v", err, p.Info)
	}
	run := func(tag string) (uint64, []byte) {
		m := &manifest.Manifest{Version: manifest.Version, Run: `while true; do echo ` + tag + `; sleep 0.2; done`,
			Resources: tx.Resources{GPUCount: 1, GPUModels: []string{"H100"}, CPUMilli: 500, MemoryMiB: 256}, DurationSec: 3}
		raw, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return e.leaseOf(e.order("tenant", m, raw, 10*spr)), raw
	}
	extended, raw1 := run("extended")
	plain, raw2 := run("plain")
	e.manifestOK("tenant", extended, raw1)
	e.manifestOK("tenant", plain, raw2)
	if _, err := e.c.NewSender(e.net.Keys["tenant"]).Send(ctx, &tx.ExtendLease{LeaseID: extended, AddSec: 3}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id       uint64
		min, max time.Duration
		duration uint64
	}{{extended, 5500 * time.Millisecond, 15 * time.Second, 6}, {plain, 2500 * time.Millisecond, 5500 * time.Millisecond, 3}} {
		l := e.waitLeaseEnded(c.id)
		if l.State != api.LeaseCompleted || l.Receipt == nil || l.DurationSec != c.duration {
			t.Fatalf("lease %d: %+v", c.id, l)
		}
		ran := time.Duration(l.Receipt.EndMs-l.Receipt.StartMs) * time.Millisecond
		if ran < c.min || ran > c.max {
			t.Fatalf("lease %d (duration %ds) ran %v, want %v..%v", c.id, c.duration, ran, c.min, c.max)
		}
		code, st, _ := e.do(e.tenantClient("tenant", nil), "GET", fmt.Sprintf("/leases/%d/status", c.id), nil)
		var status provider.Status
		if code != 200 || json.Unmarshal(st, &status) != nil || status.Result == nil || !status.Result.TimedOut ||
			status.Result.Stopped || !strings.Contains(status.Result.Reason, "duration reached") {
			t.Fatalf("lease %d status %d: %s", c.id, code, st)
		}
	}
}

// TestExtendedLeaseAcrossRestart: a daemon restarted while an extended lease runs reattaches to it and still stops
// it at its new end, not at the duration it was ordered with nor at the provider's maximum.
func TestExtendedLeaseAcrossRestart(t *testing.T) {
	e := startEnvWith(t, func(c *provider.Config) { c.MaxLeaseDuration = provider.Duration{Duration: time.Hour} })
	ctx := context.Background()
	m := &manifest.Manifest{Version: manifest.Version, Run: `while true; do echo tick; sleep 0.2; done`,
		Resources: tx.Resources{GPUCount: 1, GPUModels: []string{"H100"}, CPUMilli: 500, MemoryMiB: 256}, DurationSec: 2}
	raw, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	id := e.leaseOf(e.order("tenant", m, raw, 10*spr))
	e.manifestOK("tenant", id, raw)
	if _, err := e.c.NewSender(e.net.Keys["tenant"]).Send(ctx, &tx.ExtendLease{LeaseID: id, AddSec: 4}); err != nil {
		t.Fatal(err)
	}
	e.stop() // the daemon may not have seen lease.extended: the restarted one reads the ledger at the end
	time.Sleep(2500 * time.Millisecond)
	e.start()
	l := e.waitLeaseEnded(id)
	ran := time.Duration(l.Receipt.EndMs-l.Receipt.StartMs) * time.Millisecond
	if l.State != api.LeaseCompleted || l.DurationSec != 6 || ran < 5500*time.Millisecond || ran > 20*time.Second {
		t.Fatalf("lease after a restart: ran %v: %+v", ran, l)
	}
}

// TestMaxLeaseDurationConfig: max_lease_duration is whole seconds from 0 to a year, and an error names it.
func TestMaxLeaseDurationConfig(t *testing.T) {
	for d, ok := range map[time.Duration]bool{0: true, 24 * time.Hour: true, 8760 * time.Hour: true, 8761 * time.Hour: false,
		-time.Second: false, 1500 * time.Millisecond: false} {
		c := provider.DefaultConfig()
		c.Hardware = eightH100()
		c.MaxLeaseDuration = provider.Duration{Duration: d}
		err := c.Validate()
		if (err == nil) != ok || err != nil && !strings.Contains(err.Error(), "max_lease_duration") {
			t.Errorf("max_lease_duration %v: %v", d, err)
		}
		if ok && c.MaxLeaseSec() != uint64(d/time.Second) {
			t.Errorf("max_lease_duration %v: %d s", d, c.MaxLeaseSec())
		}
	}
}
