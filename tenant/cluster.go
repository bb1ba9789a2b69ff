package tenant

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger"
	"github.com/sparenet/spare/ledger/tx"
)

// MemberResult is one rank of a cluster job (of one generation, when the cluster restarted).
type MemberResult struct {
	Rank        int        `json:"rank"`
	Generation  int        `json:"generation,omitempty"` // 0, or which restart of the cluster
	OrderID     uint64     `json:"order_id"`
	LeaseID     uint64     `json:"lease_id"`
	Provider    tx.Address `json:"provider"`
	State       string     `json:"state"`
	Reason      string     `json:"reason,omitempty"`
	ExitCode    *int64     `json:"exit_code,omitempty"`
	Paid        uint64     `json:"paid"`
	OutputsPath string     `json:"outputs_path,omitempty"`
}

// deployCluster runs a job on a cluster (CreateClusterOrder): it waits for the auction to lease every member,
// sends the manifest to rank 0 (which answers the rendezvous port) and then to the others with that port,
// streams every member's logs with a "[rank N] " prefix, and downloads each member's outputs, verified against
// its receipt, into <outputs>/<lease>/. When a member fails and the job restarts on failure, the ledger opens
// the cluster's next generation: deploy follows it, and does all of that again for the new members.
func (t *Tenant) deployCluster(ctx context.Context, job Job, o Options, res *Result, emit func(string, string, ...any) time.Duration) (*Result, error) {
	if o.Choose {
		return nil, fmt.Errorf("choose: a cluster's members are picked by the ledger's auction, all at once; drop --choose")
	}
	cl := job.Cluster
	if o.Detach && cl.Restarts > 0 {
		return nil, fmt.Errorf("detach: a cluster that restarts on failure needs spare deploy to stay attached, to send the job to each new generation's members; drop --detach, or use on_failure: close")
	}
	m := &tx.CreateClusterOrder{CreateOrder: job.Order, Nodes: cl.Nodes, MaxRTTMicros: cl.MaxRTTMicros, OnFailure: tx.OnFailureClose}
	if cl.Restarts > 0 {
		m.OnFailure, m.MaxRestarts = tx.OnFailureRestart, cl.Restarts
	}
	sent, err := t.send(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("create order: %w", err)
	}
	res.OrderID = createdOrder(sent)
	if o.OnOrder != nil {
		o.OnOrder(res.OrderID)
	}
	restarts := ""
	if cl.Restarts > 0 {
		restarts = fmt.Sprintf(" (%s for the cluster, as much again for each of up to %d restarts)", client.FormatAmount(job.Order.Deposit*uint64(cl.Nodes)), cl.Restarts)
	}
	res.Timings.OrderCommitted = emit("order", "cluster order %d committed in block %d: %d members within %s round trip, %s escrowed%s",
		res.OrderID, sent.Height, cl.Nodes, time.Duration(cl.MaxRTTMicros)*time.Microsecond,
		client.FormatAmount(job.Order.Deposit*uint64(cl.Nodes)*(1+uint64(cl.Restarts))), restarts)
	logs := &firstLine{w: o.Logs, onFirst: func() { res.Timings.FirstOutput = emit("output", "first output") }}
	for order := res.OrderID; ; {
		cv, err := t.runGeneration(ctx, order, job, o, res, logs, emit)
		if err != nil || o.Detach {
			return res, err
		}
		if err := t.collectMembers(ctx, cv, o, res); err != nil {
			return res, err
		}
		res.LastOrder = order
		if cv.State != ledger.ClusterRestarted {
			res.State = cv.State.String()
			res.Outcome, res.ExitCode = clusterOutcome(cv, res)
			res.Timings.Ended = emit("ended", "cluster %s", cv.State)
			if cv.State == ledger.ClusterFailed {
				res.Reason = fmt.Sprintf("member lease %d failed; the others were closed", cv.FailedLease)
				if res.Restarts > 0 {
					res.Reason += fmt.Sprintf(" (after %d restarts)", res.Restarts)
				}
			}
			break
		}
		res.Restarts++
		next, _ := t.c.Cluster(ctx, cv.NextOrder)
		emit("restart", "member lease %d failed (%s); the cluster restarts as order %d (restart %d of %d), without provider %s",
			cv.FailedLease, memberReason(res, cv.FailedLease), cv.NextOrder, res.Restarts, res.Restarts+int(next.RestartsLeft), failedProvider(cv))
		order = cv.NextOrder
	}
	// Everything escrowed and not paid came back: each member's unused deposit, and the unspent restart reserve.
	res.Refunded = job.Order.Deposit*uint64(cl.Nodes)*(1+uint64(cl.Restarts)) - res.Cost
	emit("outputs", "outputs of %d members verified against their receipts under %s", len(res.Members), o.OutputsDir)
	return res, nil
}

// runGeneration leases, starts and follows one generation of a cluster (its order), until it is no longer
// running. With Detach it returns once every member runs.
func (t *Tenant) runGeneration(ctx context.Context, order uint64, job Job, o Options, res *Result, logs io.Writer, emit func(string, string, ...any) time.Duration) (ledger.ClusterView, error) {
	first := order == res.OrderID
	cv, err := t.awaitCluster(ctx, order, job, o)
	if err != nil {
		return cv, err
	}
	if first {
		res.LeaseID, res.Provider = cv.Members[0].LeaseID, cv.Members[0].Provider
		res.Timings.Leased = emit("lease", "%d members leased: %s", len(cv.Members), memberList(cv.Members))
	} else {
		emit("lease", "restart %d: %d members leased: %s", cv.Generation, len(cv.Members), memberList(cv.Members))
	}
	started := func() error {
		port, err := t.sendClusterManifest(ctx, cv.Members[0].LeaseID, job.Manifest, 0)
		if err != nil {
			return fmt.Errorf("rank 0: %w", err)
		}
		var wg sync.WaitGroup
		errs := make([]error, len(cv.Members))
		for i, m := range cv.Members[1:] {
			wg.Go(func() {
				if _, err := t.sendClusterManifest(ctx, m.LeaseID, job.Manifest, port); err != nil {
					errs[i+1] = fmt.Errorf("rank %d: %w", m.Rank, err)
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		at := emit("manifest", "manifest sent to %d members; rendezvous at %s:%d", len(cv.Members), hostOr(cv.Members[0].HostURI), port)
		if first {
			res.Timings.ManifestSent = at
		}
		for _, m := range cv.Members {
			if err := t.waitLease(ctx, m.LeaseID, func(l ledger.LeaseView) bool { return l.State != ledger.LeasePending }); err != nil {
				return err
			}
		}
		return nil
	}
	if err := started(); err != nil {
		// A member that failed while the others were being started ends the generation too: that is no
		// error of this deploy, and a restart goes on.
		if now, qerr := t.c.Cluster(ctx, order); qerr != nil || now.State == ledger.ClusterRunning || now.State == ledger.ClusterLeasing {
			return cv, err
		}
	} else {
		at := emit("started", "every member is running; billing started")
		if first {
			res.Timings.Started = at
		}
		if o.Detach {
			res.State, res.Outcome = "active", OutcomeRunning
			return cv, nil
		}
		if o.AutoTopUp {
			defer t.autoTopUpAll(ctx, memberLeases(cv), emit)()
		}
		if err := t.StreamClusterLogs(ctx, order, true, logs); err != nil {
			t.log.Warn("log stream ended early", "order", order, "err", err)
		}
	}
	for {
		cv, err = t.c.Cluster(ctx, order)
		if err == nil && cv.State != ledger.ClusterRunning {
			return cv, nil
		}
		select {
		case <-ctx.Done():
			return cv, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// collectMembers adds a generation's members to the result, with their pay, and downloads and verifies the
// outputs of each one that ended with a receipt.
func (t *Tenant) collectMembers(ctx context.Context, cv ledger.ClusterView, o Options, res *Result) error {
	res.Price = 0 // the cluster's price per hour: every member's, of the last generation
	for _, m := range cv.Members {
		l, err := t.c.Lease(ctx, m.LeaseID)
		if err != nil {
			return err
		}
		mr := MemberResult{Rank: m.Rank, Generation: int(cv.Generation), OrderID: cv.OrderID, LeaseID: m.LeaseID, Provider: m.Provider, State: l.State.String(), Paid: l.Paid}
		if l.State != ledger.LeaseCompleted {
			mr.Reason = l.CloseReason
		}
		res.Cost += l.Paid
		res.Price += l.Price
		if l.Receipt != nil {
			code := l.Receipt.ExitCode
			mr.ExitCode = &code
			dir, _, err := t.FetchOutputs(ctx, m.LeaseID, o.OutputsDir)
			if err != nil {
				return fmt.Errorf("rank %d: %w", m.Rank, err)
			}
			mr.OutputsPath = dir
			if m.Rank == 0 {
				res.ExitCode, res.Receipt, res.OutputsPath = &code, l.Receipt, dir
			}
		}
		if m.Rank == 0 {
			res.LeaseID, res.Provider = m.LeaseID, m.Provider
		}
		res.Members = append(res.Members, mr)
	}
	return nil
}

func memberLeases(cv ledger.ClusterView) []uint64 {
	ids := make([]uint64, len(cv.Members))
	for i, m := range cv.Members {
		ids[i] = m.LeaseID
	}
	return ids
}

func memberReason(res *Result, leaseID uint64) string {
	for _, m := range res.Members {
		if m.LeaseID == leaseID {
			if m.ExitCode != nil && *m.ExitCode != 0 {
				return fmt.Sprintf("exit code %d", *m.ExitCode)
			}
			return m.Reason
		}
	}
	return "unknown"
}

func failedProvider(cv ledger.ClusterView) tx.Address {
	for _, m := range cv.Members {
		if m.LeaseID == cv.FailedLease {
			return m.Provider
		}
	}
	return tx.Address{}
}

// awaitCluster waits until the auction has leased every member of a cluster order. Without that by the
// timeout, it cancels the order and explains.
func (t *Tenant) awaitCluster(ctx context.Context, order uint64, job Job, o Options) (ledger.ClusterView, error) {
	var cv ledger.ClusterView
	leased := func() (bool, error) {
		var err error
		if cv, err = t.c.Cluster(ctx, order); err != nil {
			return false, nil
		}
		if cv.State == ledger.ClusterCancelled {
			return false, fmt.Errorf("cluster order %d ended before it was leased", order)
		}
		return cv.State == ledger.ClusterRunning && len(cv.Members) == int(job.Cluster.Nodes), nil
	}
	if done, err := poll(ctx, o.NoBidTimeout, leased); done || err != nil {
		return cv, err
	}
	if !t.cancelUnserved(ctx, order) {
		if done, err := leased(); done || err != nil {
			return cv, err
		}
	}
	bids, _ := t.c.Bids(ctx, ledger.ListRequest{OrderID: order, Limit: ledger.MaxPageLimit})
	need := fmt.Sprintf("%d providers whose published round trips are all within %s; %d bid",
		job.Cluster.Nodes, time.Duration(job.Cluster.MaxRTTMicros)*time.Microsecond, len(bids.Items))
	if len(cv.Excluded) > 0 {
		need += fmt.Sprintf(" (%d excluded: their members failed earlier runs)", len(cv.Excluded))
	}
	return ledger.ClusterView{}, t.noOffersError(ctx, order, job.Order.Resources, job.Order.Constraints, o.NoBidTimeout, need)
}

// sendClusterManifest puts the manifest to a member (with rank 0's port for the others) and returns the
// rendezvous port the provider reports.
func (t *Tenant) sendClusterManifest(ctx context.Context, leaseID uint64, manifest []byte, masterPort int) (int, error) {
	query := ""
	if masterPort != 0 {
		query = "master_port=" + strconv.Itoa(masterPort)
	}
	var st struct {
		MasterPort int `json:"master_port"`
	}
	if err := t.putManifest(ctx, leaseID, query, manifest, &st); err != nil {
		return 0, err
	}
	if masterPort == 0 && st.MasterPort == 0 {
		return 0, fmt.Errorf("lease %d: the provider gave no rendezvous port", leaseID)
	}
	return max(st.MasterPort, masterPort), nil
}

// StreamClusterLogs copies every member's logs to w, each line prefixed with "[rank N] " (in a restarted
// generation "[rank N, restart G] "); with follow it returns when every member's workload has ended.
func (t *Tenant) StreamClusterLogs(ctx context.Context, orderID uint64, follow bool, w io.Writer) error {
	cv, err := t.c.Cluster(ctx, orderID)
	if err != nil {
		return err
	}
	if w == nil {
		w = io.Discard
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(cv.Members))
	for i, m := range cv.Members {
		prefix := fmt.Sprintf("[rank %d] ", m.Rank)
		if cv.Generation > 0 {
			prefix = fmt.Sprintf("[rank %d, restart %d] ", m.Rank, cv.Generation)
		}
		wg.Go(func() {
			pw := &prefixWriter{w: w, mu: &mu, prefix: prefix}
			errs[i] = t.StreamLogs(ctx, m.LeaseID, follow, pw)
			pw.flush()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// prefixWriter writes whole lines, each with its prefix, under a shared lock so members' lines never mix.
type prefixWriter struct {
	w      io.Writer
	mu     *sync.Mutex
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		p.mu.Lock()
		_, err := io.WriteString(p.w, p.prefix+string(p.buf[:i+1]))
		p.mu.Unlock()
		p.buf = p.buf[i+1:]
		if err != nil {
			return len(b), err
		}
	}
}

func (p *prefixWriter) flush() {
	if len(p.buf) > 0 {
		p.mu.Lock()
		_, _ = io.WriteString(p.w, p.prefix+string(p.buf)+"\n")
		p.mu.Unlock()
		p.buf = nil
	}
}

func memberList(ms []ledger.ClusterMember) string {
	s := ""
	for i, m := range ms {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("rank %d lease %d with %s", m.Rank, m.LeaseID, m.Provider)
	}
	return s
}

func hostOr(uri string) string {
	if u, err := url.Parse(uri); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return uri
}

// clusterOutcome is how a cluster ended, for deploy's exit status: done, every member exited (the first non-zero
// exit code is the cluster's, else 0); failed, the failed member's own outcome (its exit code if it exited).
func clusterOutcome(cv ledger.ClusterView, res *Result) (Outcome, *int64) {
	if cv.State == ledger.ClusterDone {
		var code int64
		for _, m := range res.Members {
			if m.ExitCode != nil && *m.ExitCode != 0 && code == 0 {
				code = *m.ExitCode
			}
		}
		return OutcomeExited, &code
	}
	for _, m := range res.Members {
		if m.LeaseID == cv.FailedLease && m.ExitCode != nil {
			code := *m.ExitCode
			return OutcomeExited, &code
		}
	}
	return OutcomeMemberFailed, nil
}
