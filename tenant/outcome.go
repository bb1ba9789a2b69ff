package tenant

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/runtime"
)

// Outcome is how a job ended, as a tenant acts on it: `spare deploy` turns it into its exit status.
type Outcome string

const (
	OutcomeExited           Outcome = "exited"             // the workload ran and exited: see the exit code
	OutcomeDurationReached  Outcome = "duration_reached"   // stopped at the end of its duration
	OutcomeMemoryLimit      Outcome = "memory_limit"       // killed for using more memory than it asked for
	OutcomeDiskLimit        Outcome = "disk_limit"         // stopped for using more disk than it asked for
	OutcomeDepositExhausted Outcome = "deposit_exhausted"  // its deposit ran out before its duration (no top-up)
	OutcomeClosedByProvider Outcome = "closed_by_provider" // the provider closed it, or never started it
	OutcomeClosedByAuditors Outcome = "closed_by_auditors" // the auditors found the provider down: closed, provider slashed
	OutcomeClosedByTenant   Outcome = "closed_by_tenant"   // you closed it (spare close)
	OutcomeMemberFailed     Outcome = "member_failed"      // a cluster's member failed and the others were closed
	OutcomeOutputsRefused   Outcome = "outputs_refused"    // the outputs did not match the provider's signed receipt
	OutcomeNoOffers         Outcome = "no_offers"          // nobody bid in time: the order was cancelled, the deposit refunded
	OutcomeInconclusive     Outcome = "inconclusive"       // the replicas disagreed and no majority formed
	OutcomeRunning          Outcome = "running"            // returned while it runs (--detach, a service)
	OutcomeInterrupted      Outcome = "interrupted"        // stopped by Ctrl-C
)

// leaseOutcome classifies an ended lease from the ledger's record and, when the provider answers, its own
// account of the workload (the runtime's result): a receipt says the workload exited, and the provider says
// whether that exit was its duration's end or its memory limit.
func leaseOutcome(l api.LeaseView, r *runtime.Result) (Outcome, string) {
	if l.State == api.LeaseCompleted {
		switch {
		case r != nil && r.TimedOut:
			return OutcomeDurationReached, fmt.Sprintf("duration reached: the provider stopped the workload at the end of its %s", tx.DurationText(l.DurationSec))
		case r != nil && r.OOMKilled:
			return OutcomeMemoryLimit, "memory limit: the workload used more memory than the job asked for and was killed (raise resources.memory)"
		case r != nil && r.DiskLimit:
			return OutcomeDiskLimit, "disk limit: the workload wrote more than the job's disk (its files and log) and was stopped (raise resources.disk, or write less)"
		}
		return OutcomeExited, ""
	}
	var zero tx.Address
	switch {
	case l.ClosedBy == l.Tenant:
		return OutcomeClosedByTenant, l.CloseReason
	case l.ClosedBy == l.Provider:
		return OutcomeClosedByProvider, "closed by the provider: " + l.CloseReason
	case l.ClosedBy != zero:
		return OutcomeClosedByProvider, l.CloseReason
	case l.CloseReason == "duration reached":
		return OutcomeDurationReached, fmt.Sprintf("duration reached: the lease's %s ended before the provider reported an exit", tx.DurationText(l.DurationSec))
	case l.CloseReason == "deposit exhausted":
		return OutcomeDepositExhausted, "deposit exhausted before the job's duration (spare topup LEASE AMOUNT, or deploy with --auto-topup)"
	case l.CloseReason == "not started in time":
		return OutcomeClosedByProvider, "the provider did not start the workload in time: the deposit was refunded in full"
	case l.CloseReason == "no manifest delivered in time":
		return OutcomeClosedByProvider, "the lease expired before it started, with no proof on the ledger that its provider got the manifest (nobody's failure): the deposit was refunded in full"
	case strings.Contains(l.CloseReason, "(auditors)") || strings.Contains(l.CloseReason, "auditor"):
		return OutcomeClosedByAuditors, l.CloseReason
	case strings.HasPrefix(l.CloseReason, "cluster member lease"):
		return OutcomeMemberFailed, l.CloseReason
	}
	return OutcomeClosedByProvider, l.CloseReason
}

// workloadResult asks the provider how the workload ended (its runtime's result); nil when it does not say.
func (t *Tenant) workloadResult(ctx context.Context, l api.LeaseView) *runtime.Result {
	resp, err := t.call(ctx, l.Provider, "GET", fmt.Sprintf("/leases/%d/status", l.ID), nil)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st struct {
		Result *runtime.Result `json:"result"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, maxStatusBytes)).Decode(&st) != nil {
		return nil
	}
	return st.Result
}
