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
	"github.com/sparenet/spare/ledger/api"
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

// cluster is the strategy of a job on a cluster (CreateClusterOrder): once the auction has leased every member,
// the manifest goes to rank 0 (which answers the rendezvous port) and then to the others with that port; every
// member's logs stream with a "[rank N] " prefix; each member's outputs are downloaded, verified against its
// receipt, into <outputs>/<lease>/. When a member fails and the job restarts on failure, the ledger opens the
// cluster's next generation: the pipeline follows it, and does all of that again for the new members.
type cluster struct {
	cv api.ClusterView
	// startFailed: a member failed while the generation was being started, which ended it (no error of the
	// deploy's: a restart goes on).
	startFailed bool
}

func (s *cluster) check(d *deployment) error {
	if d.o.Choose {
		return fmt.Errorf("choose: a cluster's members are picked by the ledger's auction, all at once; drop --choose")
	}
	if d.o.Detach && d.job.Cluster.Restarts > 0 {
		return fmt.Errorf("detach: a cluster that restarts on failure needs spare deploy to stay attached, to send the job to each new generation's members; drop --detach, or use on_failure: close")
	}
	return nil
}

func (s *cluster) create(d *deployment) tx.Msg {
	cl := d.job.Cluster
	m := &tx.CreateClusterOrder{CreateOrder: d.job.Order, Nodes: cl.Nodes, MaxRTTMicros: cl.MaxRTTMicros, OnFailure: tx.OnFailureClose}
	if cl.Restarts > 0 {
		m.OnFailure, m.MaxRestarts = tx.OnFailureRestart, cl.Restarts
	}
	return m
}

func (s *cluster) committed(d *deployment, height int64) string {
	cl, dep := d.job.Cluster, d.job.Order.Deposit
	restarts := ""
	if cl.Restarts > 0 {
		restarts = fmt.Sprintf(" (%s for the cluster, as much again for each of up to %d restarts)", client.FormatAmount(dep*uint64(cl.Nodes)), cl.Restarts)
	}
	return fmt.Sprintf("cluster order %d committed in block %d: %d members within %s round trip, %s escrowed%s",
		d.order, height, cl.Nodes, time.Duration(cl.MaxRTTMicros)*time.Microsecond,
		client.FormatAmount(dep*uint64(cl.Nodes)*(1+uint64(cl.Restarts))), restarts)
}

func (s *cluster) leased(ctx context.Context, d *deployment) (bool, error) {
	cv, err := d.t.c.Cluster(ctx, d.order)
	if err != nil {
		return false, nil
	}
	if cv.State == api.ClusterCancelled {
		return false, fmt.Errorf("cluster order %d ended before it was leased", d.order)
	}
	s.cv = cv
	return cv.State == api.ClusterRunning && len(cv.Members) == int(d.job.Cluster.Nodes), nil
}

func (s *cluster) need(ctx context.Context, d *deployment) string {
	bids, _ := d.t.c.Bids(ctx, api.ListRequest{OrderID: d.order, Limit: api.MaxPageLimit})
	need := fmt.Sprintf("%d providers whose published round trips are all within %s; %d bid",
		d.job.Cluster.Nodes, time.Duration(d.job.Cluster.MaxRTTMicros)*time.Microsecond, len(bids.Items))
	if len(s.cv.Excluded) > 0 {
		need += fmt.Sprintf(" (%d excluded: their members failed earlier runs)", len(s.cv.Excluded))
	}
	return need
}

func (s *cluster) ship(ctx context.Context, d *deployment) error {
	cv := s.cv
	s.startFailed = false
	if d.gen == 0 {
		d.res.LeaseID, d.res.Provider = cv.Members[0].LeaseID, cv.Members[0].Provider
		d.res.Timings.Leased = d.emit("lease", "%d members leased: %s", len(cv.Members), memberList(cv.Members))
	} else {
		d.emit("lease", "restart %d: %d members leased: %s", cv.Generation, len(cv.Members), memberList(cv.Members))
	}
	err := s.sendManifests(ctx, d)
	if err == nil {
		return nil
	}
	if now, qerr := d.t.c.Cluster(ctx, d.order); qerr != nil || now.State == api.ClusterRunning || now.State == api.ClusterLeasing {
		return err
	}
	s.startFailed = true // a member failed while the others were being started: the generation is over
	return nil
}

// sendManifests sends the manifest to rank 0, then with its rendezvous port to the others at once.
func (s *cluster) sendManifests(ctx context.Context, d *deployment) error {
	cv := s.cv
	port, err := d.t.sendClusterManifest(ctx, cv.Members[0].LeaseID, d.job.Manifest, 0)
	if err != nil {
		return fmt.Errorf("rank 0: %w", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(cv.Members))
	for i, m := range cv.Members[1:] {
		wg.Go(func() {
			if _, err := d.t.sendClusterManifest(ctx, m.LeaseID, d.job.Manifest, port); err != nil {
				errs[i+1] = fmt.Errorf("rank %d: %w", m.Rank, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	at := d.emit("manifest", "manifest sent to %d members; rendezvous at %s:%d", len(cv.Members), hostOr(cv.Members[0].HostURI), port)
	if d.gen == 0 {
		d.res.Timings.ManifestSent = at
	}
	return nil
}

func (s *cluster) leases() []uint64 { return memberLeases(s.cv) }

func (s *cluster) startedLine() string { return "every member is running; billing started" }

func (s *cluster) stream(ctx context.Context, d *deployment) error {
	if s.startFailed {
		return nil
	}
	return d.t.StreamClusterLogs(ctx, d.order, true, d.logs)
}

func (s *cluster) over(ctx context.Context, d *deployment) (bool, error) {
	cv, err := d.t.c.Cluster(ctx, d.order)
	if err != nil {
		return false, nil
	}
	s.cv = cv
	return cv.State != api.ClusterRunning, nil
}

// collect adds the generation's members to the result and verifies their outputs; a cluster that restarted goes
// on with its next order.
func (s *cluster) collect(ctx context.Context, d *deployment) (bool, error) {
	cv, res := s.cv, d.res
	if err := d.t.collectMembers(ctx, cv, d.o, res); err != nil {
		return false, err
	}
	res.LastOrder = d.order
	if cv.State == api.ClusterRestarted {
		res.Restarts++
		next, _ := d.t.c.Cluster(ctx, cv.NextOrder)
		d.emit("restart", "member lease %d failed (%s); the cluster restarts as order %d (restart %d of %d), without provider %s",
			cv.FailedLease, memberReason(res, cv.FailedLease), cv.NextOrder, res.Restarts, res.Restarts+int(next.RestartsLeft), failedProvider(cv))
		d.order = cv.NextOrder
		return true, nil
	}
	res.State = cv.State.String()
	res.Outcome, res.ExitCode = clusterOutcome(cv, res)
	res.Timings.Ended = d.emit("ended", "cluster %s", cv.State)
	if cv.State == api.ClusterFailed {
		res.Reason = fmt.Sprintf("member lease %d failed; the others were closed", cv.FailedLease)
		if res.Restarts > 0 {
			res.Reason += fmt.Sprintf(" (after %d restarts)", res.Restarts)
		}
	}
	d.emit("outputs", "outputs of %d members verified against their receipts under %s", len(res.Members), d.o.OutputsDir)
	return false, nil
}

// collectMembers adds a generation's members to the result, with their pay, and downloads and verifies the
// outputs of each one that ended with a receipt.
func (t *Tenant) collectMembers(ctx context.Context, cv api.ClusterView, o Options, res *Result) error {
	res.Price = 0 // the cluster's price per hour: every member's, of the last generation
	for _, m := range cv.Members {
		l, err := t.c.Lease(ctx, m.LeaseID)
		if err != nil {
			return err
		}
		mr := MemberResult{Rank: m.Rank, Generation: int(cv.Generation), OrderID: cv.OrderID, LeaseID: m.LeaseID, Provider: m.Provider, State: l.State.String(), Paid: l.Paid}
		if l.State != api.LeaseCompleted {
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

func memberLeases(cv api.ClusterView) []uint64 {
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

func failedProvider(cv api.ClusterView) tx.Address {
	for _, m := range cv.Members {
		if m.LeaseID == cv.FailedLease {
			return m.Provider
		}
	}
	return tx.Address{}
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

func memberList(ms []api.ClusterMember) string {
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
func clusterOutcome(cv api.ClusterView, res *Result) (Outcome, *int64) {
	if cv.State == api.ClusterDone {
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
