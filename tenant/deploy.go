package tenant

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/jobspec"
	"github.com/sparenet/spare/ledger"
	"github.com/sparenet/spare/ledger/tx"
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
	// Fees are the transaction fees this deploy paid: its order, and any acceptance, cancellation or top-up.
	Fees uint64 `json:"fees"`
	// Outcome is how the job ended (exited, duration_reached, no_offers...): spare deploy's exit status follows it.
	Outcome Outcome `json:"outcome,omitempty"`
}

// Deploy runs a job: CreateOrder with the deposit, wait for the auction's lease, send the manifest to the
// winning provider, stream the logs, and on completion download the outputs and verify them against the
// provider's signed receipt.
func (t *Tenant) Deploy(ctx context.Context, job Job, o Options) (*Result, error) {
	emit := emitter(o)
	if o.OutputsDir == "" {
		o.OutputsDir = "outputs"
	}
	if o.NoBidTimeout <= 0 {
		o.NoBidTimeout = 15 * time.Second
	}
	res := &Result{}
	var fees atomic.Uint64 // top-ups run beside the deploy
	ctx = withConns(context.WithValue(ctx, feesKey{}, &fees))
	defer func() { res.Fees = fees.Load() }()
	if job.Replicas > 1 {
		return t.deployReplicated(ctx, job, o, res, emit)
	}
	if job.Cluster != nil {
		return t.deployCluster(ctx, job, o, res, emit)
	}
	service := isService(job)
	if service && !o.Choose {
		o.Choose = true // a service is placed by score, its round trip from here included
		emit("route", "a service: choosing among the bids by price, reputation and round-trip time from here")
	}
	if o.Choose && job.Order.BidWindow < 2 {
		job.Order.BidWindow = 3
	}
	sent, err := t.send(ctx, &job.Order)
	if err != nil {
		return nil, fmt.Errorf("create order: %w", err)
	}
	res.OrderID = createdOrder(sent)
	if o.OnOrder != nil {
		o.OnOrder(res.OrderID)
	}
	res.Timings.OrderCommitted = emit("order", "order %d committed in block %d, deposit %s", res.OrderID, sent.Height, client.FormatAmount(job.Order.Deposit))

	lease, err := t.awaitLease(ctx, res, sent.Height, o, emit)
	if errors.Is(err, ErrNoOffers) {
		res.Outcome = OutcomeNoOffers
	}
	if err != nil {
		return res, err
	}
	res.LeaseID, res.Provider, res.Price = lease.ID, lease.Provider, lease.Price
	knowLease(ctx, lease.ID, lease.Provider)
	res.Timings.Leased = emit("lease", "lease %d with provider %s at %s/h", lease.ID, lease.Provider, client.FormatAmount(lease.Price))

	if err := t.SendManifest(ctx, lease.ID, job.Manifest); err != nil {
		return res, err
	}
	res.Timings.ManifestSent = emit("manifest", "manifest sent (%d bytes)", len(job.Manifest))
	if !service && !o.Detach {
		// The provider starts the workload once it has the manifest, a block before LeaseStarted commits (billing
		// starts there): its output streams from now on. (Opening the stream while the manifest went out was
		// measured slower: the provider then served both at once.)
		return t.follow(ctx, res, lease, o, emit, true, nil)
	}
	if err := t.waitLease(ctx, lease.ID, func(l ledger.LeaseView) bool { return l.State != ledger.LeasePending }); err != nil {
		return res, err
	}
	res.Timings.Started = emit("started", "workload running; billing started")
	if service {
		eps, err := t.awaitEndpoints(ctx, lease.ID, 60*time.Second)
		res.Endpoints, res.State, res.Outcome = eps, "active", OutcomeRunning
		if err != nil {
			return res, err
		}
		for _, port := range slices.Sorted(maps.Keys(eps)) {
			emit("endpoint", "port %s is served at %s", port, eps[port])
		}
		return res, nil
	}
	res.State, res.Outcome = "active", OutcomeRunning // detached
	return res, nil
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

// follow streams a lease's output until the workload ends, waits for the lease's end on the ledger, asks the
// provider how the workload ended, and downloads and verifies the outputs: the second half of a deploy, and all
// of `spare attach`. awaitStart: the lease may still be pending (its start is reported when it commits).
func (t *Tenant) follow(ctx context.Context, res *Result, lease ledger.LeaseView, o Options, emit func(string, string, ...any) time.Duration, awaitStart bool, streamed <-chan error) (*Result, error) {
	if o.AutoTopUp {
		defer t.autoTopUpAll(ctx, []uint64{lease.ID}, emit)()
	}
	if streamed == nil {
		ready := make(chan struct{})
		close(ready)
		streamed = t.streamEarly(ctx, res, lease.ID, o, emit, ready)
	}
	if awaitStart {
		var started ledger.LeaseView
		if err := t.waitLease(ctx, lease.ID, func(l ledger.LeaseView) bool { started = l; return l.State != ledger.LeasePending }); err != nil {
			<-streamed
			return res, err
		}
		if started.StartedMs != 0 { // it started (it may have ended already: a short job)
			res.Timings.Started = emit("started", "workload running; billing started")
		}
	}
	if err := <-streamed; err != nil && ctx.Err() == nil {
		t.log.Warn("log stream ended early", "lease", lease.ID, "err", err)
	}
	var end ledger.LeaseView
	err := t.waitLease(ctx, lease.ID, func(l ledger.LeaseView) bool {
		end = l
		return l.State == ledger.LeaseCompleted || l.State == ledger.LeaseClosed
	})
	if err != nil {
		return res, err
	}
	res.Timings.Ended = emit("ended", "lease %s: %s", end.State, end.CloseReason)
	res.State, res.Reason, res.Cost, res.Refunded, res.Receipt = end.State.String(), end.CloseReason, end.Paid, end.Refunded, end.Receipt
	outcome, why := leaseOutcome(end, t.workloadResult(ctx, end))
	res.Outcome = outcome
	if why != "" {
		res.Reason = why
		if outcome != OutcomeExited && outcome != OutcomeClosedByTenant {
			emit("ended", "%s", why)
		}
	}
	if end.Receipt != nil {
		code := end.Receipt.ExitCode
		res.ExitCode = &code
		dir, files, leftOut, err := t.fetchOutputs(ctx, lease.ID, o.OutputsDir)
		if err != nil {
			if errors.Is(err, ErrOutputs) {
				res.Outcome = OutcomeOutputsRefused
			}
			return res, err
		}
		res.OutputsPath, res.Outputs, res.OutputsLeftOut = dir, files, leftOut
		emit("outputs", "%d output file(s) in %s, verified against the receipt", len(files), dir)
		if len(leftOut) > 0 {
			emit("outputs", "the provider left %d output(s) out of its receipt: %s", len(leftOut), strings.Join(leftOut, "; "))
		}
	}
	return res, nil
}

// streamEarly follows a lease's output into o.Logs. Opened before the provider has the manifest, the first
// request may be refused (the provider does not know the lease's workload yet): it is made again once ready is
// closed, skipping whatever the first one already wrote.
func (t *Tenant) streamEarly(ctx context.Context, res *Result, leaseID uint64, o Options, emit func(string, string, ...any) time.Duration, ready <-chan struct{}) <-chan error {
	logs := &countingWriter{w: &firstLine{w: o.Logs, onFirst: func() { res.Timings.FirstOutput = emit("output", "first output") }}}
	done := make(chan error, 1)
	go func() {
		err := t.StreamLogs(ctx, leaseID, true, logs)
		for attempt := 0; err != nil && ctx.Err() == nil && attempt < 3; attempt++ {
			select {
			case <-ready:
			case <-ctx.Done():
				done <- ctx.Err()
				return
			}
			shown := logs.n
			err = t.StreamLogs(ctx, leaseID, true, &skipping{w: logs, skip: shown})
		}
		done <- err
	}()
	return done
}

// countingWriter counts what passed through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// skipping drops the first skip bytes written to it (already shown), then passes the rest.
type skipping struct {
	w    io.Writer
	skip int64
}

func (s *skipping) Write(p []byte) (int, error) {
	n := len(p)
	if s.skip >= int64(len(p)) {
		s.skip -= int64(len(p))
		return n, nil
	}
	p, s.skip = p[s.skip:], 0
	_, err := s.w.Write(p)
	return n, err
}

// Attach follows a lease of this tenant's as deploy would have after placing it: its output until the workload
// ends, then its outputs, downloaded and verified against the receipt (into o.OutputsDir). A lease that already
// ended gives its output so far, its result and its outputs at once.
func (t *Tenant) Attach(ctx context.Context, leaseID uint64, o Options) (*Result, error) {
	emit := emitter(o)
	if o.OutputsDir == "" {
		o.OutputsDir = "outputs"
	}
	l, err := t.c.Lease(ctx, leaseID)
	if err != nil {
		return nil, err
	}
	if l.Tenant != t.Address() {
		return nil, fmt.Errorf("lease %d is %s's, not yours (%s): attach with its tenant's key (--from)", leaseID, l.Tenant, t.Address())
	}
	res := &Result{OrderID: l.OrderID, LeaseID: l.ID, Provider: l.Provider, Price: l.Price}
	var fees atomic.Uint64
	ctx = context.WithValue(ctx, feesKey{}, &fees)
	defer func() { res.Fees = fees.Load() }()
	emit("attach", "lease %d with %s, %s", l.ID, l.Provider, l.State)
	return t.follow(ctx, res, l, o, emit, l.State == ledger.LeasePending, nil)
}

// CancelOrder cancels an open order of this tenant's and returns what came back to the balance.
func (t *Tenant) CancelOrder(ctx context.Context, orderID uint64) (uint64, error) {
	o, err := t.c.Order(ctx, orderID)
	if err != nil {
		return 0, err
	}
	if _, err := t.send(ctx, &tx.CancelOrder{ID: orderID}); err != nil {
		return 0, err
	}
	return o.Escrowed(), nil
}

// awaitLease follows the chain from the order's block until a lease is created for it. Without one by the
// timeout, it explains why and cancels the order (the deposit is refunded).
func (t *Tenant) awaitLease(ctx context.Context, res *Result, from int64, o Options, emit func(string, string, ...any) time.Duration) (ledger.LeaseView, error) {
	wctx, cancel := context.WithTimeout(ctx, o.NoBidTimeout)
	defer cancel()
	var leaseID uint64
	want := strconv.FormatUint(res.OrderID, 10)
	errFound := errors.New("found")
	var windowEnd int64
	if o.Choose {
		if ord, err := t.c.Order(ctx, res.OrderID); err == nil {
			windowEnd = ord.WindowEnd
		}
	}
	var bids []scoredBid
	accepted := false
	err := t.c.Follow(wctx, from, func(b client.Block) error {
		if o.Choose && !accepted && len(bids) > 0 && b.Height >= windowEnd-1 {
			accepted = true
			best := bids[0]
			for _, c := range bids[1:] {
				if c.Score < best.Score {
					best = c
				}
			}
			emit("choose", "accepting bid %d of %s: score %d (price %s/h, rtt %s, reputation %.2f)", best.BidID, best.Provider,
				best.Score, client.FormatAmount(best.Price), best.RTT.Round(time.Millisecond), float64(best.ReputationPPM)/1e6)
			go func() {
				if _, err := t.send(ctx, &tx.AcceptBid{ID: best.BidID}); err != nil {
					t.log.Info("accept bid", "bid", best.BidID, "err", err) // the ledger may have closed the auction first
				}
			}()
		}
		for _, e := range b.Events {
			if e.Attrs["order_id"] != want || e.Code != 0 {
				continue
			}
			switch e.Type {
			case "bid.placed":
				at := emit("bid", "bid from %s at %s/h", e.Attrs["provider"], client.FormatAmount(parseU(e.Attrs["price"])))
				if res.Timings.FirstBid == 0 {
					res.Timings.FirstBid = at
				}
				if o.Choose {
					bids = append(bids, t.score(ctx, parseU(e.Attrs["bid_id"]), e.Attrs["provider"], parseU(e.Attrs["price"])))
				}
			case "lease.created":
				leaseID = parseU(e.Attrs["lease_id"])
				return errFound
			case "order.expired", "order.cancelled":
				return fmt.Errorf("order %d %s", res.OrderID, strings.TrimPrefix(e.Type, "order."))
			}
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return t.c.Lease(ctx, leaseID)
	}
	if ctx.Err() != nil {
		return ledger.LeaseView{}, ctx.Err()
	}
	// Nobody bid (in time): take the deposit back and say why.
	order, _ := t.c.Order(ctx, res.OrderID)
	if !t.cancelUnserved(ctx, res.OrderID) {
		if order, err := t.c.Order(ctx, res.OrderID); err == nil && order.LeaseID != 0 {
			return t.c.Lease(ctx, order.LeaseID) // leased at the last moment
		}
	}
	return ledger.LeaseView{}, t.noOffersError(ctx, res.OrderID, order.Resources, order.Constraints, o.NoBidTimeout, "")
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

func parseU(s string) uint64 { v, _ := strconv.ParseUint(s, 10, 64); return v }

// createdOrder is the id of the order a CreateOrder (or its replicated or cluster form) created.
func createdOrder(sent *client.Result) uint64 {
	id, _ := sent.Attr("order.created", "order_id")
	return parseU(id)
}

// waitLease polls a lease until done says so.
func (t *Tenant) waitLease(ctx context.Context, id uint64, done func(ledger.LeaseView) bool) error {
	for {
		l, err := t.c.Lease(ctx, id)
		if err == nil && done(l) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
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
			if into == nil {
				return nil
			}
			return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(into)
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

// poll calls check every 100 ms until it reports done or fails, ctx ends, or timeout passes (done false).
func poll(ctx context.Context, timeout time.Duration, check func() (bool, error)) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		if done, err := check(); done || err != nil {
			return done, err
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

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

// autoTopUp watches a running lease and tops its deposit up whenever it would run out before the duration.
// autoTopUpAll keeps each lease's deposit topped up (autoTopUp) until the returned stop is called.
func (t *Tenant) autoTopUpAll(ctx context.Context, leases []uint64, emit func(string, string, ...any) time.Duration) (stop func()) {
	tctx, stop := context.WithCancel(ctx)
	for _, id := range leases {
		go t.autoTopUp(tctx, id, func() { emit("topup", "lease %d topped up to keep it running to its duration", id) })
	}
	return stop
}

func (t *Tenant) autoTopUp(ctx context.Context, leaseID uint64, done func()) {
	for {
		l, err := t.c.Lease(ctx, leaseID)
		if err == nil && l.State != ledger.LeaseActive && l.State != ledger.LeasePending {
			return
		}
		if err == nil && l.State == ledger.LeaseActive && t.topUpIfLow(ctx, l) {
			done()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// topUpIfLow adds enough for a tenth of the duration when the deposit runs out before the duration ends and
// less than a tenth of the duration's worth remains. It reports whether it topped up.
func (t *Tenant) topUpIfLow(ctx context.Context, l ledger.LeaseView) bool {
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
	return job
}
