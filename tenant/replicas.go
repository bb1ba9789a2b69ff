package tenant

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
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

// replicated is the strategy of a job run on job.Replicas providers at once (CreateReplicatedOrder): the manifest
// goes to each run, and to a referee should the ledger order one; the first run's logs stream; the ledger's
// verdict is followed, and the outputs come from a run whose result won, verified against its receipt.
type replicated struct {
	v           api.VerificationView
	runs        []uint64        // the leases of the runs the auction made (a referee comes later)
	sentTo      map[uint64]bool // the runs that have the manifest
	commits     map[uint64]bool // the runs whose commitment was reported
	revealFrom  int64           // the deadline of the reveal phase last reported (a referee's round has its own)
	refereeSaid bool
}

func (s *replicated) check(d *deployment) error {
	if d.o.Choose {
		return fmt.Errorf("choose: a replicated job's providers are picked by the ledger's auction, all at once; drop --choose or verify.replicas")
	}
	s.sentTo, s.commits = map[uint64]bool{}, map[uint64]bool{}
	return nil
}

func (s *replicated) create(d *deployment) tx.Msg {
	return &tx.CreateReplicatedOrder{CreateOrder: d.job.Order, Replicas: d.job.Replicas}
}

func (s *replicated) committed(d *deployment, height int64) string {
	d.res.Replicas = d.job.Replicas
	return fmt.Sprintf("order %d committed in block %d: %d replicas, %s escrowed (a deposit per run and one for a referee)",
		d.order, height, d.job.Replicas, client.FormatAmount(d.job.Order.Deposit*uint64(d.job.Replicas+1)))
}

func (s *replicated) leased(ctx context.Context, d *deployment) (bool, error) {
	v, err := d.t.c.Verification(ctx, d.order)
	if err != nil {
		return false, nil
	}
	if v.State == api.VerifyCancelled {
		return false, fmt.Errorf("order %d ended before its runs were leased", d.order)
	}
	s.v = v
	return len(v.Runs) >= int(d.job.Replicas), nil
}

func (s *replicated) need(_ context.Context, d *deployment) string {
	return fmt.Sprintf("%d distinct providers", d.job.Replicas)
}

func (s *replicated) ship(ctx context.Context, d *deployment) error {
	res := d.res
	res.Timings.Leased = d.emit("lease", "%d leases: %s", len(s.v.Runs), runList(s.v.Runs))
	for _, r := range s.v.Runs {
		s.runs = append(s.runs, r.LeaseID)
	}
	res.LeaseID, res.Provider = s.v.Runs[0].LeaseID, s.v.Runs[0].Provider
	if l, err := d.t.c.Lease(ctx, res.LeaseID); err == nil {
		res.Price = l.Price
	}
	if err := d.t.shipRuns(ctx, s.v.Runs, d.job.Manifest, s.sentTo); err != nil {
		return err
	}
	res.Timings.ManifestSent = d.emit("manifest", "manifest sent to %d providers (%d bytes)", len(s.v.Runs), len(d.job.Manifest))
	return nil
}

func (s *replicated) leases() []uint64 { return s.runs }

func (s *replicated) startedLine() string { return "every run is running; billing started" }

func (s *replicated) stream(ctx context.Context, d *deployment) error {
	return d.streamLease(ctx, s.runs[0])
}

// over follows the comparison: it reports commitments and reveals, ships the job to a referee if the ledger
// orders one, until the verdict.
func (s *replicated) over(ctx context.Context, d *deployment) (bool, error) {
	v, err := d.t.c.Verification(ctx, d.order)
	if err != nil {
		return false, nil
	}
	s.v = v
	for _, r := range v.Runs {
		if r.Commit != api.CommitAwaiting && r.Commit != api.CommitNone && !s.commits[r.LeaseID] {
			s.commits[r.LeaseID] = true
			d.emit("commit", "lease %d (provider %s) committed its result (a salted hash: nothing of it is public yet)", r.LeaseID, r.Provider)
		}
	}
	if v.RevealDeadline != 0 && v.RevealDeadline != s.revealFrom { // a phase opened (it may have closed since)
		s.revealFrom = v.RevealDeadline
		d.emit("reveal", "every run committed or ended: the results are revealed, by block %d at the latest", v.RevealDeadline)
	}
	if v.State == api.VerifyReferee && !s.refereeSaid {
		s.refereeSaid = true
		d.emit("referee", "results differ: the ledger ordered a referee run (order %d), paid from the reserve", v.RefereeOrder)
	}
	if err := d.t.shipRuns(ctx, v.Runs, d.job.Manifest, s.sentTo); err != nil {
		d.t.log.Warn("referee manifest", "err", err)
	}
	return v.State == api.VerifyAgreed || v.State == api.VerifyInconclusive || v.State == api.VerifyCancelled, nil
}

// collect reports the verdict and every run, and fetches the outputs of a run whose result won.
func (s *replicated) collect(ctx context.Context, d *deployment) (bool, error) {
	v, res := s.v, d.res
	res.Timings.Ended = d.emit("ended", "verdict %s", v.State)
	res.Verdict = v.State.String()
	res.State = v.State.String()
	var from *api.RunView
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
	switch v.State {
	case api.VerifyAgreed:
		d.emit("verdict", "%s: %s agree on output root %s (exit %d)", v.State, agreeing(v.Runs), v.Root, v.ExitCode)
	case api.VerifyInconclusive:
		d.emit("verdict", "%s: no majority among the results; every run with a result was paid, nobody slashed", v.State)
		res.Reason = "no majority among the runs' results"
		res.Outcome = OutcomeInconclusive
	}
	for _, r := range v.Runs {
		switch {
		case r.Outvoted:
			d.emit("verdict", "lease %d (provider %s) was outvoted: output root %s; unpaid and slashed", r.LeaseID, r.Provider, r.OutputRoot)
		case r.Commit == api.CommitMissed:
			d.emit("verdict", "lease %d (provider %s) committed a result but did not reveal it in time: no vote, unpaid", r.LeaseID, r.Provider)
		case r.Commit == api.CommitNone && r.State == api.LeaseClosed:
			d.emit("verdict", "lease %d (provider %s) ended without committing a result: no vote", r.LeaseID, r.Provider)
		}
	}
	if from == nil {
		return false, fmt.Errorf("replicated order %d: no run produced a result (%s)", res.OrderID, runList(v.Runs))
	}
	res.LeaseID, res.Provider = from.LeaseID, from.Provider
	code := from.ExitCode
	res.ExitCode = &code
	if l, err := d.t.c.Lease(ctx, from.LeaseID); err == nil {
		res.Receipt = l.Receipt
	}
	if res.Outcome == "" {
		res.Outcome = OutcomeExited
	}
	dir, files, err := d.t.FetchOutputs(ctx, from.LeaseID, d.o.OutputsDir)
	if err != nil {
		if errors.Is(err, ErrOutputs) {
			res.Outcome = OutcomeOutputsRefused
		}
		return false, err
	}
	res.OutputsPath, res.Outputs = dir, files
	d.emit("outputs", "%d output file(s) in %s, from lease %d, verified against its receipt", len(files), dir, from.LeaseID)
	return false, nil
}

// shipRuns sends the manifest, concurrently, to every run not sent yet.
func (t *Tenant) shipRuns(ctx context.Context, runs []api.RunView, manifest []byte, sent map[uint64]bool) error {
	var wg sync.WaitGroup
	errs := make([]error, len(runs))
	for i, r := range runs {
		if sent[r.LeaseID] || r.State != api.LeasePending {
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
		if errs[i] == nil && r.State == api.LeasePending {
			sent[r.LeaseID] = true
		}
	}
	return errors.Join(errs...)
}

func runList(runs []api.RunView) string {
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

func agreeing(runs []api.RunView) string {
	n := 0
	for _, r := range runs {
		if r.Result && !r.Outvoted {
			n++
		}
	}
	return fmt.Sprintf("%d runs", n)
}
