package tenant

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// A strategy is what differs between the kinds of deploy: one lease, replicated runs compared by the ledger, or a
// cluster. The pipeline (run) does the rest, the same for all: order, auction, manifests, start, logs, end,
// outputs, refunds; and it waits in one way, on the chain's blocks (watch.until).
type strategy interface {
	// check adjusts the options to the kind, or refuses those it cannot honour, before anything is sent.
	check(d *deployment) error
	// create is the message that opens the job's order; committed is the line that reports it in a block.
	create(d *deployment) tx.Msg
	committed(d *deployment, height int64) string
	// leased reports, after every block, whether the auction has leased what the generation needs; it fails when
	// the order ended without. need says what that is, for the explanation when nobody served it.
	leased(ctx context.Context, d *deployment) (bool, error)
	need(ctx context.Context, d *deployment) string
	// ship reports the leases and sends them the manifest.
	ship(ctx context.Context, d *deployment) error
	// leases are the generation's leases.
	leases() []uint64
	// startedLine is the line once every lease runs.
	startedLine() string
	// stream copies the generation's output into d.logs until its workload ends.
	stream(ctx context.Context, d *deployment) error
	// over reports, after every block, whether the generation is over on the ledger.
	over(ctx context.Context, d *deployment) (bool, error)
	// collect reads how the generation ended into the result and fetches its outputs, verified; again reports
	// that another generation follows (d.order is then its order).
	collect(ctx context.Context, d *deployment) (again bool, err error)
}

// deployment is one deploy in progress.
type deployment struct {
	t     *Tenant
	job   Job
	o     Options
	res   *Result
	emit  func(stage, format string, args ...any) time.Duration
	w     *watch
	order uint64    // the current generation's order
	gen   int       // the generation: 0, then each restart of a cluster
	logs  io.Writer // o.Logs, timing the first line
	// attached: spare attach to a lease that had started already (its start is not news).
	attached bool

	mu       sync.Mutex
	firstBid time.Duration
}

// deploy runs a job with its kind's strategy.
func (t *Tenant) deploy(ctx context.Context, job Job, o Options, s strategy) (*Result, error) {
	res := &Result{}
	var fees atomic.Uint64 // top-ups run beside the deploy
	ctx = withConns(context.WithValue(ctx, feesKey{}, &fees))
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	defer func() { res.Fees = fees.Load() }()
	d := t.newDeployment(job, o, res)
	if err := s.check(d); err != nil {
		return nil, err
	}
	if err := d.checkVaultOutputs(); err != nil {
		return nil, err
	}
	sent, err := t.send(ctx, s.create(d))
	if err != nil {
		return nil, fmt.Errorf("create order: %w", err)
	}
	if res.OrderID, err = createdOrder(sent); err != nil {
		// Placed, escrow and all, but which order it is does not read: nothing here can follow it or cancel it.
		return nil, fmt.Errorf("create order: the order was placed (transaction %s, block %d), but which order it is does not read: %w (spare leases --all lists your open orders; spare cancel ORDER cancels one)",
			sent.Hash, sent.Height, err)
	}
	d.order = res.OrderID
	if o.OnOrder != nil {
		o.OnOrder(res.OrderID)
	}
	d.w = t.watch(ctx, sent.Height, res.OrderID, 0, d.bid)
	res.Timings.OrderCommitted = d.emit("order", "%s", s.committed(d, sent.Height))
	defer func() {
		if ctx.Err() == nil { // what came back, read from the ledger's events
			res.Refunded = d.w.refunds(ctx, t.c)
		}
	}()
	for {
		if err := d.awaitLeased(ctx, s); err != nil {
			return res, err
		}
		// From here the chain is not on the way to the workload's first output (the manifest goes to the
		// provider, the start is only reported): follow it less often, leaving the node to the others.
		d.w.slow.Store(true)
		if err := s.ship(ctx, d); err != nil {
			return res, err
		}
		if d.o.Detach {
			if err := d.awaitStarted(ctx, s); err != nil {
				return res, err
			}
			res.State, res.Outcome = "active", OutcomeRunning
			return res, nil
		}
		again, err := d.follow(ctx, s)
		if err == nil && !again {
			err = d.storeOutputs(ctx) // outputs: {to: vault}, once they are verified
		}
		if err != nil || !again {
			return res, err
		}
		d.gen++
		d.w.slow.Store(false) // the next generation's auction
	}
}

func (t *Tenant) newDeployment(job Job, o Options, res *Result) *deployment {
	if o.OutputsDir == "" {
		o.OutputsDir = "outputs"
	}
	if o.NoBidTimeout <= 0 {
		o.NoBidTimeout = 15 * time.Second
	}
	d := &deployment{t: t, job: job, o: o, res: res, emit: emitter(o)}
	d.logs = &firstLine{w: o.Logs, onFirst: func() { res.Timings.FirstOutput = d.emit("output", "first output") }}
	return d
}

// bid reports a bid on one of the deploy's orders (from the watch).
func (d *deployment) bid(order uint64, b seenBid) {
	at := d.emit("bid", "bid from %s at %s/h", b.Provider, client.FormatAmount(b.Price))
	d.mu.Lock()
	if d.firstBid == 0 {
		d.firstBid = at
	}
	d.mu.Unlock()
}

// awaitLeased waits for the generation's leases. Without them by the timeout it cancels the order (its escrow
// comes back) and explains why nobody served it.
func (d *deployment) awaitLeased(ctx context.Context, s strategy) error {
	done, err := d.w.until(ctx, d.o.NoBidTimeout, func() (bool, error) { return s.leased(ctx, d) })
	if err == nil && !done {
		if !d.t.cancelUnserved(ctx, d.order) { // leased at the last moment
			done, err = d.w.until(ctx, 10*time.Second, func() (bool, error) { return s.leased(ctx, d) })
		}
		if err == nil && !done {
			d.res.Outcome = OutcomeNoOffers
			return d.t.noOffersError(ctx, d.order, d.job.Order.Resources, d.job.Order.Constraints, d.o.NoBidTimeout, s.need(ctx, d))
		}
	}
	if err != nil {
		return err
	}
	d.mu.Lock()
	if d.gen == 0 {
		d.res.Timings.FirstBid = d.firstBid
	}
	d.mu.Unlock()
	return nil
}

// awaitStarted waits until no lease of the generation is pending, and reports the start if they all started.
func (d *deployment) awaitStarted(ctx context.Context, s strategy) error {
	started := true
	proved := map[uint64]bool{}
	_, err := d.w.until(ctx, 0, func() (bool, error) {
		started = true
		for _, id := range s.leases() {
			l, err := d.t.c.Lease(ctx, id)
			if err == nil && l.State == api.LeasePending && !proved[id] && d.w.seen() >= l.StartDeadline-proveBlocks {
				proved[id] = true
				d.proveDelivery(ctx, l)
			}
			if err != nil || l.State == api.LeasePending {
				return false, nil
			}
			started = started && l.StartedMs != 0 // it may have ended already: a short job
		}
		return true, nil
	})
	if err == nil && started && !d.attached {
		at := d.emit("started", "%s", s.startedLine())
		if d.gen == 0 {
			d.res.Timings.Started = at
		}
	}
	return err
}

// follow is the second half of a generation: its output streams from the moment the manifests went out (the
// workloads start then, a block before billing does), the start is reported when it commits, and once the output
// ends the pipeline waits for the generation's end on the ledger and collects it. A service returns once its
// endpoints answer instead.
func (d *deployment) follow(ctx context.Context, s strategy) (again bool, err error) {
	if d.service() {
		if err := d.awaitStarted(ctx, s); err != nil {
			return false, err
		}
		eps, err := d.t.awaitEndpoints(ctx, s.leases()[0], 60*time.Second)
		d.res.Endpoints, d.res.State, d.res.Outcome = eps, "active", OutcomeRunning
		if err != nil {
			return false, err
		}
		for _, port := range slices.Sorted(maps.Keys(eps)) {
			d.emit("endpoint", "port %s is served at %s", port, eps[port])
		}
		return false, nil
	}
	streamed := make(chan error, 1)
	go func() { streamed <- s.stream(ctx, d) }()
	if err := d.awaitStarted(ctx, s); err != nil {
		<-streamed
		return false, err
	}
	if d.o.AutoTopUp {
		defer d.autoTopUp(ctx, s.leases())()
	}
	if err := <-streamed; err != nil && ctx.Err() == nil {
		d.t.log.Warn("log stream ended early", "order", d.order, "err", err)
	}
	d.w.slow.Store(false) // the output ended: the lease's end on the ledger is what the tenant waits for now
	if _, err := d.w.until(ctx, 0, func() (bool, error) { return s.over(ctx, d) }); err != nil {
		return false, err
	}
	return s.collect(ctx, d)
}

// service reports a single lease's service (a job with ports): it runs until closed.
func (d *deployment) service() bool {
	return d.job.Replicas <= 1 && d.job.Cluster == nil && isService(d.job)
}

// errOrderEnded is a generation's order that ended (expired, cancelled) before the auction leased it.
func errOrderEnded(order uint64, how string) error {
	return fmt.Errorf("order %d %s before it was leased", order, how)
}

// proveBlocks is how many blocks before a pending lease's start deadline the deploy posts the provider's
// acknowledgement of its manifest: a lease that expires with it on the ledger is the provider's failure, one
// without it nobody's (the ledger cannot tell who failed to deliver). It costs a fee, so only a lease that is
// that late to start gets it.
const proveBlocks = 5

// proveDelivery posts the provider's acknowledgement of a lease's manifest (ManifestDelivered), when the deploy
// has one.
func (d *deployment) proveDelivery(ctx context.Context, l api.LeaseView) {
	ack, ok := ackOf(ctx, l.ID)
	if !ok {
		return
	}
	d.emit("started", "lease %d has not started %d blocks before its deadline (block %d): posting provider %s's acknowledgement of the manifest, so that the ledger counts it as the provider's failure if it never does",
		l.ID, proveBlocks, l.StartDeadline, l.Provider)
	go func() {
		if _, err := d.t.send(ctx, &tx.ManifestDelivered{LeaseID: l.ID, Ack: ack}); err != nil {
			d.t.log.Warn("proof of the manifest's delivery not accepted", "lease", l.ID, "err", err)
		}
	}()
}
