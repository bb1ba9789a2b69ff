package tenant

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/jobspec"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/match"
	"github.com/sparenet/spare/offers"
)

// Job is what Deploy sends: the encoded manifest and the order that carries its hash.
type Job struct {
	Manifest []byte
	Order    tx.CreateOrder
	// Replicas above 1 runs the job on that many providers at once and pays only the runs whose results agree
	// (verify.replicas in a job file); Order.Deposit is then per run.
	Replicas uint32
	// Cluster, when set, leases that many providers at once as one job (cluster: in a job file); Order's
	// resources and deposit are then per member.
	Cluster *Cluster
	// VaultOutputs, when set, stores the job's verified outputs in Spare Vault once it succeeds (outputs:
	// {to: vault} in a job file; vaultoutputs.go).
	VaultOutputs *VaultOutputs
}

// Cluster is a cluster job's shape.
type Cluster struct {
	Nodes        uint32
	MaxRTTMicros uint32
	// Restarts above 0 (on_failure: restart in a job file) leases the cluster again, on other providers than
	// the failed member's, when a member fails: at most that many times. 0 closes it (on_failure: close).
	Restarts uint8
}

// Event is one step of a deploy, for a progress display.
type Event struct {
	Stage  string        `json:"stage"` // order, bid, lease, manifest, started, output, ended, outputs
	Detail string        `json:"detail"`
	At     time.Duration `json:"at"` // since the deploy began
}

// Options tune Deploy.
type Options struct {
	// Detach returns once the workload runs, without waiting for its end.
	Detach bool
	// OnOrder, when set, is told the order's id as soon as it is committed (the CLI remembers the job's name).
	OnOrder func(orderID uint64)
	// OutputsDir receives the outputs under <lease id>/. Default "outputs".
	OutputsDir string
	// Logs receives the workload's output as it is produced (nil: discarded).
	Logs io.Writer
	// Progress is called at each stage (nil: nothing).
	Progress func(Event)
	// NoBidTimeout is how long to wait for a lease before explaining why nobody bid and cancelling the order.
	NoBidTimeout time.Duration
	// AutoTopUp adds to the deposit when the lease would run dry before its duration ends.
	AutoTopUp bool
	// Choose makes the tenant pick the winner itself, one block before the auction window (the order's
	// BidWindow, at least 2 blocks) closes: the bid with the best Score (price, the provider's reputation and
	// the round-trip time from here to its host). Without it the ledger closes the auction: lowest price wins.
	Choose bool
	// Manifest, for Attach: the lease's manifest, sent to its provider when the lease has not started and the
	// provider is still waiting for it (a deploy killed between the lease and the manifest). Its SHA-256 must be
	// the order's manifest hash.
	Manifest []byte
}

// Timings are the stages of a deploy, measured from its start.
type Timings struct {
	OrderCommitted time.Duration `json:"order_committed"`
	FirstBid       time.Duration `json:"first_bid,omitempty"`
	Leased         time.Duration `json:"leased"`
	ManifestSent   time.Duration `json:"manifest_sent"`
	Started        time.Duration `json:"started"`
	FirstOutput    time.Duration `json:"first_output,omitempty"`
	Ended          time.Duration `json:"ended,omitempty"`
}

// Result is a deploy's outcome.
type Result struct {
	OrderID     uint64      `json:"order_id"`
	LeaseID     uint64      `json:"lease_id"`
	Provider    tx.Address  `json:"provider"`
	Price       uint64      `json:"price_per_hour"`
	Cost        uint64      `json:"cost"` // paid to the provider (take included)
	Refunded    uint64      `json:"refunded"`
	ExitCode    *int64      `json:"exit_code,omitempty"`
	State       string      `json:"state"`
	Reason      string      `json:"reason,omitempty"`
	Receipt     *tx.Receipt `json:"receipt,omitempty"`
	OutputsPath string      `json:"outputs_path,omitempty"`
	Outputs     []string    `json:"outputs,omitempty"`
	// OutputsLeftOut are the provider's notes on outputs its receipt does not cover (a link, a file over the
	// lease's disk...), sanitized.
	OutputsLeftOut []string `json:"outputs_left_out,omitempty"`
	Timings        Timings  `json:"timings"`
	// A replicated job: how many replicas, the ledger's verdict (agreed, inconclusive) and every run, the
	// referee's included. LeaseID, Provider, Receipt and the outputs are then those of a winning run.
	Replicas uint32      `json:"replicas,omitempty"`
	Verdict  string      `json:"verdict,omitempty"`
	Runs     []RunResult `json:"runs,omitempty"`
	// A cluster job: its state (done, failed, cancelled) and every member by rank, of every generation when
	// it restarted (Restarts times; the last generation's order is LastOrder).
	Members   []MemberResult `json:"members,omitempty"`
	Restarts  int            `json:"restarts,omitempty"`
	LastOrder uint64         `json:"last_order,omitempty"`
	// A service (a job with ports): where each declared port is served (port -> host:port). Deploy returns
	// once they answer; the lease runs until its duration or spare close.
	Endpoints map[string]string `json:"endpoints,omitempty"`
	// OutputsVault is what became of the outputs a job asked to store in the Vault (Job.VaultOutputs).
	OutputsVault *VaultOutputsResult `json:"outputs_vault,omitempty"`
	// Fees are the transaction fees this deploy paid: its order, and any acceptance, cancellation or top-up.
	Fees uint64 `json:"fees"`
	// Outcome is how the job ended (exited, duration_reached, no_offers...): spare deploy's exit status follows it.
	Outcome Outcome `json:"outcome,omitempty"`
}

// Deploy runs a job: it creates the order with the deposit, waits for the auction's leases, sends the manifest
// to the winning providers, streams the logs, and on completion downloads the outputs and verifies them against
// the providers' signed receipts. A single lease, replicated runs and a cluster go through the same pipeline
// (pipeline.go), each with its strategy.
func (t *Tenant) Deploy(ctx context.Context, job Job, o Options) (*Result, error) {
	switch {
	case job.Replicas > 1:
		return t.deploy(ctx, job, o, &replicated{})
	case job.Cluster != nil:
		return t.deploy(ctx, job, o, &cluster{})
	}
	return t.deploy(ctx, job, o, &single{})
}

// emitter reports a deploy's progress to o.Progress, timed from now; it may be called from several goroutines
// (the log stream's first line, the ledger's events).
func emitter(o Options) func(stage, format string, args ...any) time.Duration {
	t0 := time.Now()
	var mu sync.Mutex
	return func(stage, format string, args ...any) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		at := since(t0)
		if o.Progress != nil {
			o.Progress(Event{Stage: stage, Detail: fmt.Sprintf(format, args...), At: at})
		}
		return at
	}
}

// single is the strategy of a job on one lease.
type single struct {
	lease     api.LeaseView
	end       api.LeaseView
	windowEnd int64       // Choose: the auction's last block
	scored    []scoredBid // Choose: the bids seen, scored
	accepted  bool
}

func (s *single) check(d *deployment) error {
	if d.service() && !d.o.Choose {
		d.o.Choose = true // a service is placed by score, its round trip from here included
		d.emit("route", "a service: choosing among the bids by price, reputation and round-trip time from here")
	}
	if d.o.Choose && d.job.Order.BidWindow < 2 {
		d.job.Order.BidWindow = 3
	}
	return nil
}

func (s *single) create(d *deployment) tx.Msg { return &d.job.Order }

func (s *single) committed(d *deployment, height int64) string {
	return fmt.Sprintf("order %d committed in block %d, deposit %s", d.order, height, client.FormatAmount(d.job.Order.Deposit))
}

func (s *single) leased(ctx context.Context, d *deployment) (bool, error) {
	id, ended := d.w.lease(d.order)
	switch {
	case id != 0:
		l, err := d.t.c.Lease(ctx, id)
		s.lease = l
		return err == nil, nil
	case ended != "":
		return false, fmt.Errorf("order %d %s", d.order, ended)
	case d.o.Choose:
		s.choose(ctx, d)
	}
	return false, nil
}

// choose scores the bids as they come and, one block before the auction's window closes, accepts the best.
func (s *single) choose(ctx context.Context, d *deployment) {
	if s.windowEnd == 0 {
		if ord, err := d.t.c.Order(ctx, d.order); err == nil {
			s.windowEnd = ord.WindowEnd
		}
	}
	for _, b := range d.w.bidsOf(d.order)[len(s.scored):] {
		s.scored = append(s.scored, d.t.score(ctx, b.ID, b.Provider, b.Price))
	}
	if s.accepted || len(s.scored) == 0 || s.windowEnd == 0 || d.w.seen() < s.windowEnd-1 {
		return
	}
	s.accepted = true
	best := s.scored[0]
	for _, c := range s.scored[1:] {
		if c.Score < best.Score {
			best = c
		}
	}
	d.emit("choose", "accepting bid %d of %s: score %d (price %s/h, rtt %s, reputation %.2f)", best.BidID, best.Provider,
		best.Score, client.FormatAmount(best.Price), best.RTT.Round(time.Millisecond), float64(best.ReputationPPM)/1e6)
	go func() {
		if _, err := d.t.send(ctx, &tx.AcceptBid{ID: best.BidID}); err != nil {
			d.t.log.Info("accept bid", "bid", best.BidID, "err", err) // the ledger may have closed the auction first
		}
	}()
}

func (s *single) need(context.Context, *deployment) string { return "" }

func (s *single) ship(ctx context.Context, d *deployment) error {
	l, res := s.lease, d.res
	res.LeaseID, res.Provider, res.Price = l.ID, l.Provider, l.Price
	knowLease(ctx, l.ID, l.Provider)
	res.Timings.Leased = d.emit("lease", "lease %d with provider %s at %s/h", l.ID, l.Provider, client.FormatAmount(l.Price))
	if err := d.t.SendManifest(ctx, l.ID, d.job.Manifest); err != nil {
		return err
	}
	res.Timings.ManifestSent = d.emit("manifest", "manifest sent (%d bytes)", len(d.job.Manifest))
	return nil
}

func (s *single) leases() []uint64 { return []uint64{s.lease.ID} }

func (s *single) startedLine() string { return "workload running; billing started" }

func (s *single) stream(ctx context.Context, d *deployment) error {
	return d.streamLease(ctx, s.lease.ID)
}

func (s *single) over(ctx context.Context, d *deployment) (bool, error) {
	l, err := d.t.c.Lease(ctx, s.lease.ID)
	s.end = l
	return err == nil && (l.State == api.LeaseCompleted || l.State == api.LeaseClosed), nil
}

// collect asks the provider how the workload ended and downloads and verifies the outputs.
func (s *single) collect(ctx context.Context, d *deployment) (bool, error) {
	end, res := s.end, d.res
	res.Timings.Ended = d.emit("ended", "lease %s: %s", end.State, end.CloseReason)
	res.State, res.Reason, res.Cost, res.Refunded, res.Receipt = end.State.String(), end.CloseReason, end.Paid, end.Refunded, end.Receipt
	outcome, why := leaseOutcome(end, d.t.workloadResult(ctx, end))
	res.Outcome = outcome
	if why != "" {
		res.Reason = why
		if outcome != OutcomeExited && outcome != OutcomeClosedByTenant {
			d.emit("ended", "%s", why)
		}
	}
	if end.Receipt == nil {
		return false, nil
	}
	code := end.Receipt.ExitCode
	res.ExitCode = &code
	dir, files, leftOut, err := d.t.fetchOutputs(ctx, end.ID, d.o.OutputsDir)
	if err != nil {
		if errors.Is(err, ErrOutputs) {
			res.Outcome = OutcomeOutputsRefused
		}
		return false, err
	}
	res.OutputsPath, res.Outputs, res.OutputsLeftOut = dir, files, leftOut
	d.emit("outputs", "%d output file(s) in %s, verified against the receipt", len(files), dir)
	if len(leftOut) > 0 {
		d.emit("outputs", "the provider left %d output(s) out of its receipt: %s", len(leftOut), strings.Join(leftOut, "; "))
	}
	return false, nil
}

// streamLease follows a lease's output into w until its workload ends (FollowLogs: a stream the provider cuts
// is resumed from the last byte received), and says so on the deploy's progress when it is cut.
func (d *deployment) streamLease(ctx context.Context, leaseID uint64) error {
	cuts := 0
	return d.t.FollowLogs(ctx, leaseID, d.logs, func(err error, received int64) {
		if cuts++; cuts == 1 || cuts%10 == 0 {
			d.emit("output", "the log stream of lease %d was cut after %d bytes (%v): resuming where it stopped", leaseID, received, err)
		}
	})
}

// Attach follows a lease of this tenant's as deploy would have after placing it: its output until the workload
// ends, then its outputs, downloaded and verified against the receipt (into o.OutputsDir). A lease that already
// ended gives its output so far, its result and its outputs at once.
func (t *Tenant) Attach(ctx context.Context, leaseID uint64, o Options) (*Result, error) {
	l, err := t.c.Lease(ctx, leaseID)
	if err != nil {
		return nil, err
	}
	if l.Tenant != t.Address() {
		return nil, fmt.Errorf("lease %d is %s's, not yours (%s): attach with its tenant's key (--from)", leaseID, l.Tenant, t.Address())
	}
	st, err := t.c.Status(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{OrderID: l.OrderID, LeaseID: l.ID, Provider: l.Provider, Price: l.Price}
	var fees atomic.Uint64
	ctx = withConns(context.WithValue(ctx, feesKey{}, &fees))
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	defer func() { res.Fees = fees.Load() }()
	d := t.newDeployment(Job{}, o, res)
	d.order, d.attached = l.OrderID, l.State != api.LeasePending
	d.w = t.watch(ctx, st.Height, l.OrderID, l.ID, nil)
	d.emit("attach", "lease %d with %s, %s", l.ID, l.Provider, l.State)
	if l.State == api.LeasePending {
		if err := t.resendManifest(ctx, d, l, o.Manifest); err != nil {
			return res, err
		}
	}
	_, err = d.follow(ctx, &single{lease: l})
	return res, err
}

// resendManifest sends a pending lease's manifest to its provider when the provider is still waiting for it,
// after checking that it is the order's. Without a manifest it says how to give one.
func (t *Tenant) resendManifest(ctx context.Context, d *deployment, l api.LeaseView, raw []byte) error {
	st, err := t.ProviderStatus(ctx, l.ID)
	if err != nil {
		d.emit("manifest", "lease %d has not started and its provider does not answer (%v): waiting for its start on the ledger (block %d at the latest)", l.ID, err, l.StartDeadline)
		return nil
	}
	if st["state"] != "awaiting_manifest" {
		return nil // delivered: the provider is starting it
	}
	if raw == nil {
		d.emit("manifest", "provider %s is still waiting for lease %d's manifest: give the job file it was deployed from (spare attach %d --job FILE) before block %d, or the lease closes unstarted",
			l.Provider, l.ID, l.ID, l.StartDeadline)
		return nil
	}
	o, err := t.c.Order(ctx, l.OrderID)
	if err != nil {
		return err
	}
	if got := manifest.Hash(raw); got != o.ManifestHash {
		return fmt.Errorf("the manifest given (SHA-256 %s) is not lease %d's (order %d was placed for %s): give the job file the lease was deployed from, unchanged",
			got, l.ID, l.OrderID, o.ManifestHash)
	}
	knowLease(ctx, l.ID, l.Provider)
	if err := t.SendManifest(ctx, l.ID, raw); err != nil {
		return err
	}
	d.res.Timings.ManifestSent = d.emit("manifest", "manifest sent again (%d bytes): provider %s was still waiting for it", len(raw), l.Provider)
	return nil
}

// CancelOrder cancels an open order of this tenant's and returns what came back to the balance, as the ledger's
// events for the cancellation say (every deposit, and a replicated job's reserve or a cluster's). A refund event
// that does not read is said (a warning) and not counted: the order is cancelled all the same, and an error here
// would say it was not.
func (t *Tenant) CancelOrder(ctx context.Context, orderID uint64) (uint64, error) {
	sent, err := t.send(ctx, &tx.CancelOrder{ID: orderID})
	if err != nil {
		return 0, err
	}
	var refund uint64
	for _, e := range sent.LedgerEvents() {
		rf, ok, err := api.ParseRefund(e.Type, e.Attrs)
		switch {
		case err != nil:
			t.log.Warn("order cancelled; a refund event does not read and is not counted in what came back", "order", orderID, "tx", sent.Hash, "err", err)
		case ok && rf.LeaseID == 0 && rf.OrderID == orderID:
			refund += rf.Amount
		}
	}
	return refund, nil
}

// feesKey carries a deploy's fee counter in its context, so that every transaction it sends counts.
type feesKey struct{}

// send sends msgs and counts the fee paid (paid whatever the outcome, once the transaction is in a block) into
// the deploy's counter, if ctx carries one.
func (t *Tenant) send(ctx context.Context, msgs ...tx.Msg) (*client.Result, error) {
	r, err := t.sender.Send(ctx, msgs...)
	if f, ok := ctx.Value(feesKey{}).(*atomic.Uint64); ok && r != nil {
		f.Add(r.Fee)
	}
	return r, err
}

// createdOrder is the id of the order a CreateOrder (or its replicated or cluster form) created, as its
// order.created event says: an event that is missing or does not read is an error, never order 0.
func createdOrder(sent *client.Result) (uint64, error) {
	e, ok := sent.Event(api.EventOrderCreated)
	if !ok {
		return 0, fmt.Errorf("the transaction has no %s event", api.EventOrderCreated)
	}
	ev, err := api.ParseOrderCreated(e.Attrs)
	return ev.OrderID, err
}

// SendManifest puts the manifest to the lease's provider, waiting briefly for the provider to learn of the lease.
func (t *Tenant) SendManifest(ctx context.Context, leaseID uint64, manifest []byte) error {
	return t.putManifest(ctx, leaseID, "", manifest, nil)
}

// putManifest puts the manifest (with query, e.g. "master_port=N") to the lease's provider, retrying while the
// provider has not yet learnt of the lease (404, up to 15 s), and decodes its answer into into (nil: ignored).
func (t *Tenant) putManifest(ctx context.Context, leaseID uint64, query string, manifest []byte, into any) error {
	provider, err := t.leaseProvider(ctx, leaseID)
	if err != nil {
		return err
	}
	path := fmt.Sprintf("/leases/%d/manifest", leaseID)
	if query != "" {
		path += "?" + query
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := t.call(ctx, provider, "PUT", path, bytes.NewReader(manifest))
		if err == nil {
			defer resp.Body.Close()
			b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				return fmt.Errorf("send manifest: reading the provider's answer: %w", err)
			}
			var st struct {
				ManifestAck string `json:"manifest_ack"`
			}
			if json.Unmarshal(b, &st) == nil {
				knowAck(ctx, leaseID, st.ManifestAck)
			}
			if into == nil {
				return nil
			}
			return json.Unmarshal(b, into)
		}
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != 404 || time.Now().After(deadline) {
			return fmt.Errorf("send manifest: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(manifestRetry):
		}
	}
}

// manifestRetry is how soon a manifest is sent again to a provider that has not yet seen its lease's block: the
// tenant often learns of the lease first, and the workload's start waits on this.
const manifestRetry = 10 * time.Millisecond

// cancelUnserved cancels an order that nobody (or no fitting set of providers) took in time, so its escrow
// comes back. It reports false when the order was leased meanwhile (it is no longer open).
func (t *Tenant) cancelUnserved(ctx context.Context, orderID uint64) bool {
	_, err := t.send(ctx, &tx.CancelOrder{ID: orderID})
	if client.IsCode(err, tx.CodeOrderNotOpen) {
		return false
	}
	if err != nil {
		t.log.Warn("cancel order", "order", orderID, "err", err)
	}
	return true
}

// noOffersError is ErrNoOffers for a cancelled order: what was needed (need, may be empty) and the
// per-constraint explanation of the providers that could not serve it.
func (t *Tenant) noOffersError(ctx context.Context, orderID uint64, r tx.Resources, c tx.Constraints, within time.Duration, need string) error {
	why := need
	if ex, err := t.Explain(ctx, r, c); err == nil {
		why = strings.TrimPrefix(why+"; "+ex.String(), "; ")
		if ex.Feasible > 0 {
			// Some could serve it by the ledger's record and did not bid: their offers say why (a quote above the
			// maximum, capacity taken, no answer), as spare offers --job would.
			if o, err := t.c.Order(ctx, orderID); err == nil {
				cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				cands, err := t.Candidates(cctx, 2*time.Second)
				cancel()
				if err == nil {
					_, jex := offers.EvalJob(match.Order{ID: o.ID, Resources: r, Constraints: c, MaxPricePerHour: o.MaxPricePerHour}, cands)
					why += "; their offers now: " + jex.String()
				}
			}
		}
	}
	if why == "" {
		return fmt.Errorf("%w within %s (order %d cancelled, deposit refunded)", ErrNoOffers, within, orderID)
	}
	return fmt.Errorf("%w within %s: %s (order %d cancelled, deposit refunded)", ErrNoOffers, within, why, orderID)
}

// FetchOutputs downloads a completed lease's outputs into dir/<lease>/, and verifies them first. The receipt's
// signature must verify with the provider's key on the ledger; the provider's list of output files (its lease
// status: paths, sizes, SHA-256) must hash to the receipt's root and fit the disk the order paid for; the tar must
// hold exactly those files, as regular files, each once, of the listed size and hash. The files go to a
// temporary directory inside dir and move to dir/<lease>/ only once all of that holds; otherwise nothing in dir
// changes and the error (wrapping ErrOutputs) says what the provider did wrong. It returns the directory and the
// files' paths.
func (t *Tenant) FetchOutputs(ctx context.Context, leaseID uint64, dir string) (string, []string, error) {
	path, files, _, err := t.fetchOutputs(ctx, leaseID, dir)
	return path, files, err
}

// fetchOutputs is FetchOutputs, and the provider's notes on the outputs it left out of its receipt.
func (t *Tenant) fetchOutputs(ctx context.Context, leaseID uint64, dir string) (path string, files, leftOut []string, err error) {
	l, err := t.c.Lease(ctx, leaseID)
	if err != nil {
		return "", nil, nil, err
	}
	if l.Receipt == nil {
		return "", nil, nil, fmt.Errorf("lease %d has no receipt (it is %s): nothing to verify outputs against", leaseID, l.State)
	}
	p, err := t.c.Provider(ctx, l.Provider)
	if err != nil {
		return "", nil, nil, err
	}
	if !ed25519.Verify(p.PubKey, l.Receipt.SignBytes(), l.Receipt.Signature) {
		return "", nil, nil, fmt.Errorf("lease %d: the receipt's signature does not verify with provider %s's key", leaseID, l.Provider)
	}
	var maxBytes int64
	if o, err := t.c.Order(ctx, l.OrderID); err != nil {
		return "", nil, nil, err
	} else if o.Resources.DiskMiB > 0 && o.Resources.DiskMiB < 1<<40 {
		maxBytes = int64(o.Resources.DiskMiB) << 20
	}
	st, err := t.call(ctx, l.Provider, "GET", fmt.Sprintf("/leases/%d/status", leaseID), nil)
	if err != nil {
		return "", nil, nil, err
	}
	status, err := decodeStatus(leaseID, st.Body)
	st.Body.Close()
	if err != nil {
		return "", nil, nil, err
	}
	list := status.OutputFiles
	leftOut = status.OutputsLeftOut
	declared, total, err := checkDeclared(leaseID, list, l.Receipt.OutputRoot, maxBytes)
	if err != nil {
		return "", nil, nil, err
	}
	resp, err := t.call(ctx, l.Provider, "GET", fmt.Sprintf("/leases/%d/outputs", leaseID), nil)
	if err != nil {
		return "", nil, nil, err
	}
	defer resp.Body.Close()
	path, files, err = receiveOutputs(leaseID, resp.Body, declared, total, l.Receipt.OutputRoot, dir)
	return path, files, leftOut, err
}

// autoTopUp keeps each lease's deposit topped up (topUpIfLow), checked at every block, until the returned stop
// is called or the lease ends.
func (d *deployment) autoTopUp(ctx context.Context, leases []uint64) (stop func()) {
	tctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, id := range leases {
		wg.Go(func() {
			_, _ = d.w.until(tctx, 0, func() (bool, error) {
				l, err := d.t.c.Lease(tctx, id)
				if err != nil {
					return false, nil
				}
				if l.State != api.LeaseActive && l.State != api.LeasePending {
					return true, nil
				}
				if l.State == api.LeaseActive && d.t.topUpIfLow(tctx, l) {
					d.emit("topup", "lease %d topped up to keep it running to its duration", id)
				}
				return false, nil
			})
		})
	}
	// Stopping waits for the watchers: none reports progress (or sends a top-up) after the deploy returned.
	return func() { cancel(); wg.Wait() }
}

// topUpIfLow adds enough for a tenth of the duration when the deposit runs out before the duration ends and
// less than a tenth of the duration's worth remains. It reports whether it topped up.
func (t *Tenant) topUpIfLow(ctx context.Context, l api.LeaseView) bool {
	durEnd := l.StartedMs + l.DurationSec*1000
	now := uint64(time.Now().UnixMilli())
	if l.EndMs >= durEnd || l.EndMs > now+l.DurationSec*100 { // runs to its duration, or more than 10% left
		return false
	}
	amount := max(l.Price*l.DurationSec/36_000, 1) // a tenth of the duration at the lease's price
	if _, err := t.send(ctx, &tx.TopUp{LeaseID: l.ID, Amount: amount}); err != nil {
		t.log.Warn("auto top-up failed", "lease", l.ID, "err", err)
		return false
	}
	return true
}

// firstLine forwards writes and calls onFirst when the first newline passes.
type firstLine struct {
	w       io.Writer
	onFirst func()
	once    sync.Once
}

func (f *firstLine) Write(p []byte) (int, error) {
	if bytes.IndexByte(p, '\n') >= 0 {
		f.once.Do(f.onFirst)
	}
	if f.w == nil {
		return len(p), nil
	}
	return f.w.Write(p)
}

// RTT measures the TCP connect time to a provider's host: a cheap proxy for network distance.
func RTT(ctx context.Context, hostURI string) (time.Duration, error) {
	u, err := url.Parse(hostURI)
	if err != nil {
		return 0, err
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	t0 := time.Now()
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return 0, err
	}
	c.Close()
	return time.Since(t0), nil
}

// ProviderStatus asks the lease's provider how it sees the lease (state, result, receipt, outputs).
func (t *Tenant) ProviderStatus(ctx context.Context, leaseID uint64) (map[string]any, error) {
	l, err := t.c.Lease(ctx, leaseID)
	if err != nil {
		return nil, err
	}
	resp, err := t.call(ctx, l.Provider, "GET", fmt.Sprintf("/leases/%d/status", leaseID), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st map[string]any
	return st, json.NewDecoder(io.LimitReader(resp.Body, maxStatusBytes)).Decode(&st) // bounded: the provider may be hostile
}

// scoredBid is a bid with what the tenant knows of its provider.
type scoredBid struct {
	BidID         uint64
	Provider      string
	Price         uint64
	RTT           time.Duration
	ReputationPPM uint64
	Score         uint64 // lower is better
}

// Score ranks a bid for the tenant (match.Score): the price, raised by 1% per 10 ms of round-trip time (capped at
// 1 s) and divided by the provider's reputation (at least 0.5). Lower is better.
func Score(price uint64, rtt time.Duration, reputationPPM uint64) uint64 {
	return match.Score(price, uint64(rtt/time.Microsecond), reputationPPM)
}

func (t *Tenant) score(ctx context.Context, bidID uint64, provider string, price uint64) scoredBid {
	sb := scoredBid{BidID: bidID, Provider: provider, Price: price, ReputationPPM: 500_000}
	if addr, err := tx.ParseAddress(provider); err == nil {
		if p, err := t.c.Provider(ctx, addr); err == nil {
			sb.ReputationPPM = p.ReputationPPM
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			if rtt, err := RTT(rctx, p.Info.HostURI); err == nil {
				sb.RTT = rtt
			} else {
				sb.RTT = time.Second // unreachable: the worst
			}
			cancel()
		}
	}
	sb.Score = Score(price, sb.RTT, sb.ReputationPPM)
	return sb
}

// JobFrom is the Job for a parsed job file and its encoded manifest (from j.Manifest).
func JobFrom(j *jobspec.Job, manifest []byte) Job {
	job := Job{Manifest: manifest, Order: j.Order(manifest), Replicas: j.Replicas()}
	if j.Cluster != nil {
		job.Cluster = &Cluster{Nodes: j.Nodes(), MaxRTTMicros: uint32(j.Cluster.MaxRTT / time.Microsecond), Restarts: uint8(j.Cluster.MaxRestarts)}
	}
	if j.VaultOutputs != nil {
		job.VaultOutputs = &VaultOutputs{Months: j.VaultOutputs.Months}
	}
	return job
}
