package provider_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/provider"
)

// lockedBuffer collects a daemon's log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// slashEnv starts a network with one auditor (no auditor daemon: the test attests by hand) where a down epoch
// while holding a lease slashes 10% of the stake and nothing jails.
func slashEnv(t *testing.T, mutate func(*provider.Config), log *lockedBuffer) *env {
	params := api.DefaultParams()
	params.EpochBlocks, params.SlashDowntimePPM, params.JailAfterDownEpochs = 10, 100_000, 0
	o := envOpts{params: &params, auditors: map[string]uint64{"aud": 1}, mutate: mutate}
	if log != nil {
		o.logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return startEnvOpts(t, o)
}

// slashOnce runs a lease on the provider and has the auditor find it down while it holds it: the ledger closes the
// lease and slashes the stake. It returns the provider as the slash left it.
func (e *env) slashOnce() api.ProviderView {
	e.t.Helper()
	ctx := context.Background()
	prov := e.net.Keys["prov"].Address()
	m, raw := job("sleep 600", 1)
	leaseID := e.leaseOf(e.order("tenant", m, raw, 10*spr))
	e.manifestOK("tenant", leaseID, raw)
	e.waitFor(10*time.Second, "the lease to start", func() bool {
		l, err := e.c.Lease(ctx, leaseID)
		return err == nil && l.State == api.LeaseActive
	})
	before, _ := e.c.Provider(ctx, prov)
	for {
		v, err := e.c.Epoch(ctx, nil)
		if err != nil {
			e.t.Fatal(err)
		}
		if !containsAddr(v.Providers, prov) {
			time.Sleep(50 * time.Millisecond) // registered after this epoch's set was fixed
			continue
		}
		_, err = e.c.NewSender(e.net.Keys["aud"]).Send(ctx, &tx.Attest{Epoch: v.Epoch, Up: make([]byte, (len(v.Providers)+7)/8)})
		if client.IsCode(err, tx.CodeBadEpoch) {
			continue // a slow block: the epoch closed meanwhile; attest the current one
		}
		if err != nil {
			e.t.Fatal(err)
		}
		break
	}
	var slashed api.ProviderView
	e.waitFor(30*time.Second, "the down verdict's slash", func() bool {
		p, err := e.c.Provider(ctx, prov)
		slashed = p
		return err == nil && p.Slashed > before.Slashed
	})
	if l, _ := e.c.Lease(ctx, leaseID); l.State != api.LeaseClosed {
		e.t.Fatalf("lease after the down verdict: %+v", l.Lease)
	}
	return slashed
}

func containsAddr(set []tx.Address, a tx.Address) bool {
	for _, x := range set {
		if x == a {
			return true
		}
	}
	return false
}

// TestSlashedDaemonTopsUpAndBidsAgain (issue 14, finding 3): after a slash leaves the provider below the stake its
// hardware needs, the daemon bonds the difference back (out of stake_topup_budget, which it records) and wins
// leases again. Before, it topped up only at start-up and every bid failed for insufficient stake.
func TestSlashedDaemonTopsUpAndBidsAgain(t *testing.T) {
	e := slashEnv(t, func(c *provider.Config) { c.StakeTopUpBudget = "200" }, nil)
	ctx := context.Background()
	prov := e.net.Keys["prov"].Address()
	p := e.slashOnce()
	lost := p.Slashed
	e.waitFor(30*time.Second, "the daemon to top its stake up", func() bool {
		p, err := e.c.Provider(ctx, prov)
		return err == nil && p.Stake >= p.RequiredStake
	})
	if spent, err := e.d.Store().ToppedUp(); err != nil || spent != lost {
		t.Fatalf("recorded top-ups %d (%v), want the %d slashed", spent, err, lost)
	}
	if prob := e.d.StakeProblem(); prob != "" {
		t.Fatalf("stake problem after the top-up: %s", prob)
	}
	m, raw := job("true", 1)
	leaseID := e.leaseOf(e.order("tenant", m, raw, 10*spr))
	if l, err := e.c.Lease(ctx, leaseID); err != nil || l.Provider != prov {
		t.Fatalf("lease after the top-up: %+v, %v", l.Lease, err)
	}
	st, err := provider.StatusFromLedger(ctx, e.c, prov, eightH100())
	if err != nil || len(st.Warnings) != 0 {
		t.Fatalf("status warnings after the top-up: %v (%v)", st.Warnings, err)
	}
}

// TestTopUpBudgetExhausted: when the slash exceeds what is left of stake_topup_budget, the daemon bonds nothing,
// logs why at error level naming the field, and `spare provider status` says the provider cannot bid.
func TestTopUpBudgetExhausted(t *testing.T) {
	log := &lockedBuffer{}
	e := slashEnv(t, func(c *provider.Config) { c.StakeTopUpBudget = "10 SPR" }, log) // the slash is 50 SPR
	ctx := context.Background()
	prov := e.net.Keys["prov"].Address()
	p := e.slashOnce()
	e.waitFor(30*time.Second, "the daemon to say why it does not top up", func() bool {
		return strings.Contains(e.d.StakeProblem(), "stake_topup_budget")
	})
	var line string
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, "level=ERROR") && strings.Contains(l, "stake_topup_budget") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no error-level log line about the budget:\n%s", log.String())
	}
	time.Sleep(500 * time.Millisecond) // a few blocks: nothing may be bonded meanwhile
	if now, _ := e.c.Provider(ctx, prov); now.Stake != p.Stake || now.Stake >= now.RequiredStake {
		t.Fatalf("stake %d after a refused top-up (was %d, needs %d)", now.Stake, p.Stake, now.RequiredStake)
	}
	if spent, _ := e.d.Store().ToppedUp(); spent != 0 {
		t.Fatalf("recorded top-ups %d with nothing bonded", spent)
	}
	st, err := provider.StatusFromLedger(ctx, e.c, prov, eightH100())
	if err != nil || len(st.Warnings) == 0 || !strings.Contains(st.Warnings[0], "cannot bid") {
		t.Fatalf("status warnings: %v (%v)", st.Warnings, err)
	}
}

// TestAnnounceRestart: the daemon's graceful shutdown announces the restart on the ledger; a second within the
// ledger's window is refused (the daemon says so), so announcements cannot keep a provider unaudited.
func TestAnnounceRestart(t *testing.T) {
	e := slashEnv(t, nil, nil)
	ctx := context.Background()
	if err := e.d.AnnounceRestart(ctx); err != nil {
		t.Fatalf("first announcement: %v", err)
	}
	if err := e.d.AnnounceRestart(ctx); !client.IsCode(err, tx.CodeRateLimited) {
		t.Fatalf("second announcement within %d epochs: %v", api.RestartEveryEpochs, err)
	}
}

// TestStakeTopUpBudgetConfig: stake_topup_budget is an amount of SPR, "auto" or "0", and an error names it.
func TestStakeTopUpBudgetConfig(t *testing.T) {
	for v, ok := range map[string]bool{"auto": true, "0": true, "50 SPR": true, "2.5": true, "1000uspr": true,
		"lots": false, "-5": false, "5 EUR": false} {
		c := provider.DefaultConfig()
		c.Hardware = eightH100()
		c.StakeTopUpBudget = v
		err := c.Validate()
		if (err == nil) != ok || err != nil && !strings.Contains(err.Error(), "stake_topup_budget") {
			t.Errorf("stake_topup_budget %q: %v", v, err)
		}
	}
	if c := provider.DefaultConfig(); c.StakeTopUpBudget != "auto" {
		t.Errorf("default stake_topup_budget %q", c.StakeTopUpBudget)
	}
}
