package tenant

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger"
	"github.com/sparenet/spare/ledger/tx"
)

// RunResult is one run of a replicated job.
type RunResult struct {
	LeaseID  uint64     `json:"lease_id"`
	Provider tx.Address `json:"provider"`
	Referee  bool       `json:"referee,omitempty"`
	State    string     `json:"state"`
	// Commit is where the run stands in commit-reveal: revealed (its result counts), missed (committed, not
	// revealed in time), none (ended without committing), committed or awaiting while the comparison runs.
	Commit     string   `json:"commit"`
	OutputRoot *tx.Hash `json:"output_root,omitempty"`
	ExitCode   *int64   `json:"exit_code,omitempty"`
	Paid       uint64   `json:"paid"`
	Outvoted   bool     `json:"outvoted,omitempty"`
}

// deployReplicated runs a job on job.Replicas providers at once (CreateReplicatedOrder), sends the manifest to
// each and to a referee should the ledger order one, streams the first run's logs, waits for the ledger's
// verdict and downloads the outputs from a run whose result won, verified against its receipt.
func (t *Tenant) deployReplicated(ctx context.Context, job Job, o Options, res *Result, emit func(string, string, ...any) time.Duration) (*Result, error) {
	if o.Choose {
		return nil, fmt.Errorf("choose: a replicated job's providers are picked by the ledger's auction, all at once; drop --choose or verify.replicas")
	}
	sent, err := t.send(ctx, &tx.CreateReplicatedOrder{CreateOrder: job.Order, Replicas: job.Replicas})
	if err != nil {
		return nil, fmt.Errorf("create order: %w", err)
	}
	res.OrderID = createdOrder(sent)
	if o.OnOrder != nil {
		o.OnOrder(res.OrderID)
	}
	res.Replicas = job.Replicas
	res.Timings.OrderCommitted = emit("order", "order %d committed in block %d: %d replicas, %s escrowed (a deposit per run and one for a referee)",
		res.OrderID, sent.Height, job.Replicas, client.FormatAmount(job.Order.Deposit*uint64(job.Replicas+1)))

	v, err := t.awaitRuns(ctx, res, job, o)
	if err != nil {
		return res, err
	}
	res.Timings.Leased = emit("lease", "%d leases: %s", len(v.Runs), runList(v.Runs))
	res.LeaseID, res.Provider = v.Runs[0].LeaseID, v.Runs[0].Provider
	if l, err := t.c.Lease(ctx, res.LeaseID); err == nil {
		res.Price = l.Price
	}
	sentTo := map[uint64]bool{}
	if err := t.shipRuns(ctx, v.Runs, job.Manifest, sentTo); err != nil {
		return res, err
	}
	res.Timings.ManifestSent = emit("manifest", "manifest sent to %d providers (%d bytes)", len(v.Runs), len(job.Manifest))
	for _, r := range v.Runs {
		if err := t.waitLease(ctx, r.LeaseID, func(l ledger.LeaseView) bool { return l.State != ledger.LeasePending }); err != nil {
			return res, err
		}
	}
	res.Timings.Started = emit("started", "every run is running; billing started")
	if o.Detach {
		res.State, res.Outcome = "active", OutcomeRunning
		return res, nil
	}
	if o.AutoTopUp {
		ids := make([]uint64, len(v.Runs))
		for i, r := range v.Runs {
			ids[i] = r.LeaseID
		}
		defer t.autoTopUpAll(ctx, ids, emit)()
	}
	logs := &firstLine{w: o.Logs, onFirst: func() { res.Timings.FirstOutput = emit("output", "first output (lease %d)", res.LeaseID) }}
	if err := t.StreamLogs(ctx, res.LeaseID, true, logs); err != nil {
		t.log.Warn("log stream ended early", "lease", res.LeaseID, "err", err)
	}

	// Follow the comparison: ship the job to a referee if the ledger orders one, until the verdict.
	refereeSaid := false
	committed := map[uint64]bool{}
	revealFrom := int64(0) // the deadline of the reveal phase last told (a referee's round has its own)
	for {
		v, err = t.c.Verification(ctx, res.OrderID)
		if err == nil {
			for _, r := range v.Runs {
				if r.Commit != ledger.CommitAwaiting && r.Commit != ledger.CommitNone && !committed[r.LeaseID] {
					committed[r.LeaseID] = true
					emit("commit", "lease %d (provider %s) committed its result (a salted hash: nothing of it is public yet)", r.LeaseID, r.Provider)
				}
			}
			if v.RevealDeadline != 0 && v.RevealDeadline != revealFrom { // a phase opened (it may have closed since)
				revealFrom = v.RevealDeadline
				emit("reveal", "every run committed or ended: the results are revealed, by block %d at the latest", v.RevealDeadline)
			}
			if v.State == ledger.VerifyReferee && !refereeSaid {
				refereeSaid = true
				emit("referee", "results differ: the ledger ordered a referee run (order %d), paid from the reserve", v.RefereeOrder)
			}
			if err := t.shipRuns(ctx, v.Runs, job.Manifest, sentTo); err != nil {
				t.log.Warn("referee manifest", "err", err)
			}
			if v.State == ledger.VerifyAgreed || v.State == ledger.VerifyInconclusive || v.State == ledger.VerifyCancelled {
				break
			}
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	res.Timings.Ended = emit("ended", "verdict %s", v.State)
	res.Verdict = v.State.String()
	res.State = v.State.String()
	var from *ledger.RunView
	for _, r := range v.Runs {
		rr := RunResult{LeaseID: r.LeaseID, Provider: r.Provider, Referee: r.Referee, State: r.State.String(), Commit: r.Commit.String(), Paid: r.Paid, Outvoted: r.Outvoted}
		if r.Result {
			root, code := r.OutputRoot, r.ExitCode
			rr.OutputRoot, rr.ExitCode = &root, &code
			if from == nil && !r.Outvoted {
				from = &r
			}
		}
		res.Runs = append(res.Runs, rr)
		res.Cost += r.Paid
	}
	// Back to the tenant: what each run did not earn or lost by being outvoted, and the reserve unless a referee
	// run used it.
	hasReferee := false
	for _, r := range v.Runs {
		hasReferee = hasReferee || r.Referee
		if l, err := t.c.Lease(ctx, r.LeaseID); err == nil {
			res.Refunded += l.Refunded
		}
	}
	if !hasReferee {
		res.Refunded += job.Order.Deposit
	}
	switch v.State {
	case ledger.VerifyAgreed:
		emit("verdict", "%s: %s agree on output root %s (exit %d)", v.State, agreeing(v.Runs), v.Root, v.ExitCode)
	case ledger.VerifyInconclusive:
		emit("verdict", "%s: no majority among the results; every run with a result was paid, nobody slashed", v.State)
		res.Reason = "no majority among the runs' results"
		res.Outcome = OutcomeInconclusive
	}
	for _, r := range v.Runs {
		switch {
		case r.Outvoted:
			emit("verdict", "lease %d (provider %s) was outvoted: output root %s; unpaid and slashed", r.LeaseID, r.Provider, r.OutputRoot)
		case r.Commit == ledger.CommitMissed:
			emit("verdict", "lease %d (provider %s) committed a result but did not reveal it in time: no vote, unpaid", r.LeaseID, r.Provider)
		case r.Commit == ledger.CommitNone && r.State == ledger.LeaseClosed:
			emit("verdict", "lease %d (provider %s) ended without committing a result: no vote", r.LeaseID, r.Provider)
		}
	}
	if from == nil {
		return res, fmt.Errorf("replicated order %d: no run produced a result (%s)", res.OrderID, runList(v.Runs))
	}
	res.LeaseID, res.Provider = from.LeaseID, from.Provider
	code := from.ExitCode
	res.ExitCode = &code
	if l, err := t.c.Lease(ctx, from.LeaseID); err == nil {
		res.Receipt = l.Receipt
	}
	if res.Outcome == "" {
		res.Outcome = OutcomeExited
	}
	dir, files, err := t.FetchOutputs(ctx, from.LeaseID, o.OutputsDir)
	if err != nil {
		if errors.Is(err, ErrOutputs) {
			res.Outcome = OutcomeOutputsRefused
		}
		return res, err
	}
	res.OutputsPath, res.Outputs = dir, files
	emit("outputs", "%d output file(s) in %s, from lease %d, verified against its receipt", len(files), dir, from.LeaseID)
	return res, nil
}

// awaitRuns waits until the auction has leased every replica. Without that by the timeout, it cancels the
// order (every deposit and the reserve are refunded) and explains.
func (t *Tenant) awaitRuns(ctx context.Context, res *Result, job Job, o Options) (ledger.VerificationView, error) {
	var v ledger.VerificationView
	leased := func() (bool, error) {
		var err error
		if v, err = t.c.Verification(ctx, res.OrderID); err != nil {
			return false, nil
		}
		if v.State == ledger.VerifyCancelled {
			return false, fmt.Errorf("order %d ended before its runs were leased", res.OrderID)
		}
		return len(v.Runs) >= int(job.Replicas), nil
	}
	if done, err := poll(ctx, o.NoBidTimeout, leased); done || err != nil {
		return v, err
	}
	if !t.cancelUnserved(ctx, res.OrderID) {
		if done, err := leased(); done || err != nil {
			return v, err
		}
	}
	need := fmt.Sprintf("%d distinct providers", job.Replicas)
	return ledger.VerificationView{}, t.noOffersError(ctx, res.OrderID, job.Order.Resources, job.Order.Constraints, o.NoBidTimeout, need)
}

// shipRuns sends the manifest, concurrently, to every run not sent yet.
func (t *Tenant) shipRuns(ctx context.Context, runs []ledger.RunView, manifest []byte, sent map[uint64]bool) error {
	var wg sync.WaitGroup
	errs := make([]error, len(runs))
	for i, r := range runs {
		if sent[r.LeaseID] || r.State != ledger.LeasePending {
			continue
		}
		wg.Go(func() {
			if err := t.SendManifest(ctx, r.LeaseID, manifest); err != nil {
				errs[i] = fmt.Errorf("lease %d: %w", r.LeaseID, err)
			}
		})
	}
	wg.Wait()
	for i, r := range runs {
		if errs[i] == nil && r.State == ledger.LeasePending {
			sent[r.LeaseID] = true
		}
	}
	return errors.Join(errs...)
}

func runList(runs []ledger.RunView) string {
	s := ""
	for i, r := range runs {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d with %s", r.LeaseID, r.Provider)
		if r.Referee {
			s += " (referee)"
		}
	}
	return s
}

func agreeing(runs []ledger.RunView) string {
	n := 0
	for _, r := range runs {
		if r.Result && !r.Outvoted {
			n++
		}
	}
	return fmt.Sprintf("%d runs", n)
}
