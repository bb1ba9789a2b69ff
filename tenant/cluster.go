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

// MemberResult is one rank of a cluster job.
type MemberResult struct {
	Rank        int        `json:"rank"`
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
// its receipt, into <outputs>/<lease>/.
func (t *Tenant) deployCluster(ctx context.Context, job Job, o Options, res *Result, emit func(string, string, ...any) time.Duration) (*Result, error) {
	if o.Choose {
		return nil, fmt.Errorf("choose: a cluster's members are picked by the ledger's auction, all at once; drop --choose")
	}
	nodes := job.Cluster.Nodes
	sent, err := t.sender.Send(ctx, &tx.CreateClusterOrder{CreateOrder: job.Order, Nodes: nodes, MaxRTTMicros: job.Cluster.MaxRTTMicros, OnFailure: tx.OnFailureClose})
	if err != nil {
		return nil, fmt.Errorf("create order: %w", err)
	}
	res.OrderID = createdOrder(sent)
	res.Timings.OrderCommitted = emit("order", "cluster order %d committed in block %d: %d members within %s round trip, %s escrowed",
		res.OrderID, sent.Height, nodes, time.Duration(job.Cluster.MaxRTTMicros)*time.Microsecond, client.FormatAmount(job.Order.Deposit*uint64(nodes)))

	cv, err := t.awaitCluster(ctx, res, job, o)
	if err != nil {
		return res, err
	}
	res.LeaseID, res.Provider = cv.Members[0].LeaseID, cv.Members[0].Provider
	res.Timings.Leased = emit("lease", "%d members leased: %s", len(cv.Members), memberList(cv.Members))

	port, err := t.sendClusterManifest(ctx, cv.Members[0].LeaseID, job.Manifest, 0)
	if err != nil {
		return res, fmt.Errorf("rank 0: %w", err)
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
		return res, err
	}
	res.Timings.ManifestSent = emit("manifest", "manifest sent to %d members; rendezvous at %s:%d", len(cv.Members), hostOr(cv.Members[0].HostURI), port)
	for _, m := range cv.Members {
		if err := t.waitLease(ctx, m.LeaseID, func(l ledger.LeaseView) bool { return l.State != ledger.LeasePending }); err != nil {
			return res, err
		}
	}
	res.Timings.Started = emit("started", "every member is running; billing started")
	if o.Detach {
		res.State = "active"
		return res, nil
	}
	logs := &firstLine{w: o.Logs, onFirst: func() { res.Timings.FirstOutput = emit("output", "first output") }}
	if err := t.StreamClusterLogs(ctx, res.OrderID, true, logs); err != nil {
		t.log.Warn("log stream ended early", "order", res.OrderID, "err", err)
	}
	for {
		cv, err = t.c.Cluster(ctx, res.OrderID)
		if err == nil && cv.State != ledger.ClusterRunning {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	res.State = cv.State.String()
	res.Timings.Ended = emit("ended", "cluster %s", cv.State)
	for _, m := range cv.Members {
		l, err := t.c.Lease(ctx, m.LeaseID)
		if err != nil {
			return res, err
		}
		mr := MemberResult{Rank: m.Rank, LeaseID: m.LeaseID, Provider: m.Provider, State: l.State.String(), Paid: l.Paid}
		if l.State != ledger.LeaseCompleted {
			mr.Reason = l.CloseReason
		}
		res.Cost += l.Paid
		res.Price += l.Price // the cluster's price per hour: every member's
		res.Refunded += l.Refunded
		if l.Receipt != nil {
			code := l.Receipt.ExitCode
			mr.ExitCode = &code
			dir, _, err := t.FetchOutputs(ctx, m.LeaseID, o.OutputsDir)
			if err != nil {
				return res, fmt.Errorf("rank %d: %w", m.Rank, err)
			}
			mr.OutputsPath = dir
			if m.Rank == 0 {
				res.ExitCode, res.Receipt, res.OutputsPath = &code, l.Receipt, dir
			}
		}
		res.Members = append(res.Members, mr)
	}
	if cv.State == ledger.ClusterFailed {
		res.Reason = fmt.Sprintf("member lease %d failed; the others were closed", cv.FailedLease)
	}
	emit("outputs", "outputs of %d members verified against their receipts under %s", len(res.Members), o.OutputsDir)
	return res, nil
}

// awaitCluster waits until the auction has leased every member. Without that by the timeout, it cancels the
// order and explains.
func (t *Tenant) awaitCluster(ctx context.Context, res *Result, job Job, o Options) (ledger.ClusterView, error) {
	var cv ledger.ClusterView
	leased := func() (bool, error) {
		var err error
		if cv, err = t.c.Cluster(ctx, res.OrderID); err != nil {
			return false, nil
		}
		if cv.State == ledger.ClusterCancelled {
			return false, fmt.Errorf("cluster order %d ended before it was leased", res.OrderID)
		}
		return cv.State == ledger.ClusterRunning && len(cv.Members) == int(job.Cluster.Nodes), nil
	}
	if done, err := poll(ctx, o.NoBidTimeout, leased); done || err != nil {
		return cv, err
	}
	if !t.cancelUnserved(ctx, res.OrderID) {
		if done, err := leased(); done || err != nil {
			return cv, err
		}
	}
	bids, _ := t.c.Bids(ctx, ledger.ListRequest{OrderID: res.OrderID, Limit: ledger.MaxPageLimit})
	need := fmt.Sprintf("%d providers whose published round trips are all within %s; %d bid",
		job.Cluster.Nodes, time.Duration(job.Cluster.MaxRTTMicros)*time.Microsecond, len(bids.Items))
	return ledger.ClusterView{}, t.noOffersError(ctx, res.OrderID, job.Order.Resources, job.Order.Constraints, o.NoBidTimeout, need)
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

// StreamClusterLogs copies every member's logs to w, each line prefixed with "[rank N] "; with follow it
// returns when every member's workload has ended.
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
		wg.Go(func() {
			pw := &prefixWriter{w: w, mu: &mu, prefix: fmt.Sprintf("[rank %d] ", m.Rank)}
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
