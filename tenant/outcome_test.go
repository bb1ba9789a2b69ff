package tenant_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/tenant"
)

// TestDeployOutcomes: deploy says how a job ended, as the tenant acts on it — a non-zero exit is the job's
// code, not success; a job still running at the end of its duration is "duration reached", not "exit code 143";
// attach follows a detached lease to the same result with verified outputs; an order cancelled by the tenant
// refunds its escrow.
func TestDeployOutcomes(t *testing.T) {
	tn, _ := startDev(t)
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		run      string
		duration uint64
		outcome  tenant.Outcome
		code     int64
		reason   string
	}{
		{"exit 3", "echo bye; exit 3", 60, tenant.OutcomeExited, 3, ""},
		{"exit 0", "mkdir -p out; echo 1 > out/one", 60, tenant.OutcomeExited, 0, ""},
		{"runs past its duration", "echo start; sleep 30", 2, tenant.OutcomeDurationReached, -1, "duration reached"},
	} {
		t.Run(c.name, func(t *testing.T) {
			job := cpuJob(t, c.run, api.USPR, api.USPR)
			if c.duration != 60 {
				m, _ := manifestOf(job)
				m.DurationSec = c.duration
				job = rejob(t, job, m)
			}
			var logs bytes.Buffer
			res, err := tn.Deploy(ctx, job, tenant.Options{Logs: &logs, OutputsDir: t.TempDir()})
			if err != nil {
				t.Fatalf("%v\n%s", err, logs.String())
			}
			if res.Outcome != c.outcome || c.code >= 0 && (res.ExitCode == nil || *res.ExitCode != c.code) || !strings.Contains(res.Reason, c.reason) {
				t.Fatalf("outcome %q, exit code %v, reason %q; want %q, %d, %q", res.Outcome, res.ExitCode, res.Reason, c.outcome, c.code, c.reason)
			}
		})
	}

	t.Run("no bid, price too low", func(t *testing.T) {
		job := cpuJob(t, "true", 1, api.USPR) // 1 uspr/h: below the dev provider's quote
		res, err := tn.Deploy(ctx, job, tenant.Options{NoBidTimeout: 2 * time.Second})
		if !errors.Is(err, tenant.ErrNoOffers) || !strings.Contains(err.Error(), "their offers now: 1 provider: 0 could take it now, 1 quote above your maximum price") {
			t.Fatalf("err = %v", err)
		}
		if res == nil || res.Outcome != tenant.OutcomeNoOffers {
			t.Fatalf("result %+v", res)
		}
	})

	t.Run("attach", func(t *testing.T) {
		job := cpuJob(t, "sleep 1; echo attached; mkdir -p out; echo 7 > out/seven; exit 5", api.USPR, api.USPR)
		res, err := tn.Deploy(ctx, job, tenant.Options{Detach: true, OutputsDir: t.TempDir()})
		if err != nil || res.Outcome != tenant.OutcomeRunning {
			t.Fatalf("detached deploy: %+v %v", res, err)
		}
		var logs bytes.Buffer
		got, err := tn.Attach(ctx, res.LeaseID, tenant.Options{Logs: &logs, OutputsDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if got.Outcome != tenant.OutcomeExited || got.ExitCode == nil || *got.ExitCode != 5 || len(got.Outputs) != 1 || !strings.Contains(logs.String(), "attached") {
			t.Fatalf("attach: %+v, logs %q", got, logs.String())
		}
		if _, err := tn.Attach(ctx, res.LeaseID+1000, tenant.Options{}); err == nil {
			t.Fatal("attach to a lease that does not exist")
		}
	})

	t.Run("cancel", func(t *testing.T) {
		job := cpuJob(t, "true", api.USPR, 3*api.USPR)
		job.Order.BidWindow = 100 // nobody is leased before we cancel
		job.Order.MaxPricePerHour = 1
		sent, err := tn.Sender().Send(ctx, &job.Order)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := sent.Attr("order.created", "order_id")
		order, _ := strconv.ParseUint(id, 10, 64)
		before, _ := tn.Client().Account(ctx, tn.Address())
		refund, err := tn.CancelOrder(ctx, order)
		if err != nil || refund != 3*api.USPR {
			t.Fatalf("cancel: refund %d, %v", refund, err)
		}
		after, _ := tn.Client().Account(ctx, tn.Address())
		params, _ := tn.Client().Params(ctx)
		if after.Balance != before.Balance+refund-params.MinFee {
			t.Fatalf("balance %d -> %d after a refund of %d", before.Balance, after.Balance, refund)
		}
		if _, err := tn.CancelOrder(ctx, order); err == nil {
			t.Fatal("cancelled twice")
		}
	})
}
