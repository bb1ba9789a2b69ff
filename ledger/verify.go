package ledger

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/sparenet/spare/ledger/tx"
)

// Redundant execution. A replicated order (CreateReplicatedOrder) leases Replicas distinct providers at once for
// the same deterministic job. Each run's earnings stay in escrow when it completes (Lease.Held); once every run
// has ended the ledger compares the results (output root and exit code of each receipt):
//
//   - a result that a strict majority of the runs with a result share, at least two of them, wins: its runs
//     are paid, every run with another result is unpaid (its earnings go back to the tenant), loses
//     params.SlashMismatchPPM of its stake and counts as a failed lease;
//   - without such a majority, if one more agreeing result would make one, the ledger orders one referee run
//     from another provider, paid from the reserve the tenant escrowed with the order, and judges again when
//     it has ended;
//   - still none (or no referee could run): inconclusive. Every run with a result is paid and nobody is
//     slashed, since nobody can be shown wrong.
//
// A run that ends without a receipt (closed, expired, its provider down) is settled by the ordinary rules and
// takes no part in the vote.

// VerifyState is where a replicated order's comparison is.
type VerifyState uint8

const (
	VerifyLeasing      VerifyState = 1 // the order is open: its runs are not leased yet
	VerifyRunning      VerifyState = 2 // leased: waiting for every run to end
	VerifyReferee      VerifyState = 3 // no majority: a referee run is ordered
	VerifyAgreed       VerifyState = 4 // decided by a majority
	VerifyInconclusive VerifyState = 5 // no majority even after the referee: every result paid, nobody slashed
	VerifyCancelled    VerifyState = 6 // the order was cancelled or expired before it was leased
)

func (s VerifyState) String() string {
	return [...]string{"unknown", "leasing", "running", "referee", "agreed", "inconclusive", "cancelled"}[min(int(s), 6)]
}

// MarshalText renders the state name in JSON.
func (s VerifyState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name.
func (s *VerifyState) UnmarshalText(b []byte) (err error) {
	*s, err = parseEnum("verification state", b, map[string]VerifyState{"leasing": VerifyLeasing, "running": VerifyRunning,
		"referee": VerifyReferee, "agreed": VerifyAgreed, "inconclusive": VerifyInconclusive, "cancelled": VerifyCancelled})
	return err
}

// Verification is the comparison of a replicated order's runs.
type Verification struct {
	OrderID      uint64      `json:"order_id"`
	Replicas     uint32      `json:"replicas"`
	Leases       []uint64    `json:"leases"`                  // the replicas' leases, then the referee's
	RefereeOrder uint64      `json:"referee_order,omitempty"` // the order for a referee run, once needed
	Reserve      uint64      `json:"reserve"`                 // escrow kept for a referee run
	State        VerifyState `json:"state"`
	Root         tx.Hash     `json:"output_root,omitzero"` // the majority's result, once agreed
	ExitCode     int64       `json:"exit_code"`
	DecidedMs    uint64      `json:"decided_ms,omitempty"`
}

func encVerification(v *Verification) []byte {
	w := tx.NewWriter(96)
	w.Uvarint(v.OrderID)
	w.Uvarint(uint64(v.Replicas))
	w.List("leases", len(v.Leases), tx.MaxReplicas+1)
	for _, id := range v.Leases {
		w.Uvarint(id)
	}
	w.Uvarint(v.RefereeOrder)
	w.Uvarint(v.Reserve)
	w.Byte(byte(v.State))
	w.Raw(v.Root[:])
	w.Varint(v.ExitCode)
	w.Uvarint(v.DecidedMs)
	return sealed(w, "verification")
}

func decVerification(b []byte) (*Verification, error) {
	r := tx.NewReader(b)
	v := &Verification{OrderID: r.Uvarint("order_id"), Replicas: r.U32("replicas")}
	n := r.Count("leases", tx.MaxReplicas+1)
	for i := 0; i < n && r.Err() == nil; i++ {
		v.Leases = append(v.Leases, r.Uvarint("lease"))
	}
	v.RefereeOrder = r.Uvarint("referee_order")
	v.Reserve = r.Uvarint("reserve")
	v.State = VerifyState(r.Byte("state"))
	v.Root = r.Hash("root")
	v.ExitCode = r.Varint("exit_code")
	v.DecidedMs = r.Uvarint("decided_ms")
	return v, r.Done("verification")
}

func (c *ctx) verification(orderID uint64) (*Verification, bool) {
	b, ok := c.kv.Get(idKey(pVerify, orderID))
	if !ok {
		return nil, false
	}
	return mustDecode(decVerification(b)), true
}

func (c *ctx) setVerification(v *Verification) {
	c.kv.Set(idKey(pVerify, v.OrderID), encVerification(v))
}

// groupOf is the verification an order's runs belong to: its own if replicated, its parent's if a referee run.
func (c *ctx) groupOf(o *Order) (*Verification, bool) {
	switch {
	case o.Replicas > 1:
		return c.verification(o.ID)
	case o.RefereeFor != 0:
		return c.verification(o.RefereeFor)
	}
	return nil, false
}

// leaseGroup is the verification a lease's run belongs to, if any.
func (c *ctx) leaseGroup(l *Lease) (*Verification, bool) {
	o, err := c.order(l.OrderID)
	if err != nil {
		return nil, false
	}
	return c.groupOf(o)
}

// runsBy reports whether provider a already serves a run of the group (a referee must be someone else).
func (c *ctx) runsBy(v *Verification, a tx.Address) bool {
	for _, id := range v.Leases {
		if l, err := c.lease(id); err == nil && l.Provider == a {
			return true
		}
	}
	return false
}

// createReplicatedOrder escrows Deposit for each run plus one more as the referee reserve.
func (c *ctx) createReplicatedOrder(tenant tx.Address, m *tx.CreateReplicatedOrder) error {
	reserve := m.Deposit
	total, err := mulChecked("deposit", m.Deposit, uint64(m.Replicas)+1)
	if err != nil {
		return err
	}
	o, err := c.openOrder(tenant, &m.CreateOrder, total, m.Replicas)
	if err != nil {
		return err
	}
	c.setVerification(&Verification{OrderID: o.ID, Replicas: m.Replicas, Reserve: reserve, State: VerifyLeasing})
	c.emit("verify.opened", "order_id", o.ID, "tenant", tenant, "replicas", uint64(m.Replicas), "reserve", reserve)
	return nil
}

// orderEnded marks a cluster order that ended unleased, refunds a group's reserve when its replicated order ends
// unleased, and judges a group whose referee order ended unleased.
func (c *ctx) orderEnded(o *Order) error {
	if err := c.clusterOrderEnded(o); err != nil {
		return err
	}
	v, ok := c.groupOf(o)
	if !ok {
		return nil
	}
	if o.RefereeFor != 0 {
		c.judge(v)
		return nil
	}
	if err := c.credit(o.Tenant, v.Reserve, inEscrow); err != nil {
		return err
	}
	v.Reserve, v.State = 0, VerifyCancelled
	c.setVerification(v)
	c.emit("verify.decided", "order_id", v.OrderID, "state", v.State)
	return nil
}

type result struct {
	root tx.Hash
	exit int64
}

type vote struct {
	r result
	n int
}

// judge compares a group's results once none of its runs is still to end, and settles them (see above).
func (c *ctx) judge(v *Verification) {
	if v.State != VerifyRunning && v.State != VerifyReferee {
		return
	}
	if v.RefereeOrder != 0 {
		if o, err := c.order(v.RefereeOrder); err == nil && o.State == OrderOpen {
			return
		}
	}
	leases := make([]*Lease, len(v.Leases))
	results := make([]*result, len(v.Leases))
	var tally []vote
	with := 0
	for i, id := range v.Leases {
		l, err := c.lease(id)
		if err != nil {
			panic("ledger: verification names a missing lease")
		}
		if l.State == LeasePending || l.State == LeaseActive {
			return
		}
		leases[i] = l
		b, ok := c.kv.Get(idKey(pReceipt, id))
		if !ok || l.State != LeaseCompleted {
			continue
		}
		rc := mustDecode(decReceipt(b))
		r := result{rc.OutputRoot, rc.ExitCode}
		results[i] = &r
		with++
		j := slices.IndexFunc(tally, func(t vote) bool { return t.r == r })
		if j < 0 {
			tally = append(tally, vote{r, 0})
			j = len(tally) - 1
		}
		tally[j].n++
	}
	// Sorted by count, most first; ties keep the order the results came in (deterministic).
	slices.SortStableFunc(tally, func(a, b vote) int { return cmp.Compare(b.n, a.n) })
	majority := len(tally) > 0 && tally[0].n >= 2 && 2*tally[0].n > with
	// A referee can only help when one more vote for the leading result would make it a majority: not with no
	// result at all, nor with several results tied too widely (say 1-1-1 of three replicas).
	refereeCanDecide := len(tally) > 0 && tally[0].n+1 >= 2 && 2*(tally[0].n+1) > with+1
	if !majority && refereeCanDecide && v.RefereeOrder == 0 && v.Reserve > 0 {
		c.orderReferee(v, leases[0])
		return
	}
	agreeing, outvoted := 0, 0
	for i, l := range leases {
		switch {
		case results[i] == nil:
		case !majority || *results[i] == tally[0].r:
			if err := c.release(l); err != nil {
				panic("ledger: " + err.Error())
			}
			agreeing++
		default:
			if err := c.unpay(l); err != nil {
				panic("ledger: " + err.Error())
			}
			outvoted++
		}
	}
	if err := c.credit(leases[0].Tenant, v.Reserve, inEscrow); err != nil {
		panic("ledger: " + err.Error())
	}
	refund := v.Reserve
	v.Reserve, v.DecidedMs, v.State = 0, c.timeMs, VerifyInconclusive
	if majority {
		v.State, v.Root, v.ExitCode = VerifyAgreed, tally[0].r.root, tally[0].r.exit
	}
	c.setVerification(v)
	c.emit("verify.decided", "order_id", v.OrderID, "state", v.State, "output_root", v.Root,
		"agreeing", uint64(agreeing), "outvoted", uint64(outvoted), "reserve_refund", refund)
}

// release pays a run its held earnings.
func (c *ctx) release(l *Lease) error {
	if l.Held == 0 {
		return nil
	}
	l.Held = 0
	if err := c.settle(l, l.EndedMs); err != nil {
		return err
	}
	c.setLease(l)
	return nil
}

// unpay gives an outvoted run's held earnings back to the tenant, slashes its provider and counts the lease as
// failed rather than completed.
func (c *ctx) unpay(l *Lease) error {
	refund := l.Held
	if err := c.credit(l.Tenant, refund, inEscrow); err != nil {
		return err
	}
	l.Held = 0
	l.Refunded += refund
	c.setLease(l)
	if p, ok := c.provider(l.Provider); ok {
		p.Completed -= min(p.Completed, 1)
		p.Failed++
		c.setProvider(p)
	}
	c.emit("lease.outvoted", "lease_id", l.ID, "provider", l.Provider, "tenant", l.Tenant, "refund", refund)
	c.slash(l.Provider, c.params.SlashMismatchPPM, "outvoted on replicated order "+strconv.FormatUint(l.OrderID, 10))
	return nil
}

// orderReferee opens a single-run order for the same job, funded by the group's reserve; the providers of the
// group's runs may not bid on it.
func (c *ctx) orderReferee(v *Verification, like *Lease) {
	parent, err := c.order(v.OrderID)
	if err != nil {
		panic("ledger: verification without its order")
	}
	o := c.openFollowUp(parent, v.Reserve, func(o *Order) { o.RefereeFor = v.OrderID }, "referee_for", v.OrderID)
	v.Reserve, v.RefereeOrder, v.State = 0, o.ID, VerifyReferee // the reserve's escrow now backs this open order
	c.setVerification(v)
	c.emit("verify.referee", "order_id", v.OrderID, "referee_order", o.ID, "tenant", o.Tenant, "lease_id", like.ID)
}

// VerificationView is a replicated order's comparison with each run's result.
type VerificationView struct {
	Verification
	Runs []RunView `json:"runs"`
}

// RunView is one run of a replicated order.
type RunView struct {
	LeaseID    uint64     `json:"lease_id"`
	Provider   tx.Address `json:"provider"`
	Referee    bool       `json:"referee,omitempty"`
	State      LeaseState `json:"state"`
	Result     bool       `json:"result"` // ended with a receipt
	OutputRoot tx.Hash    `json:"output_root,omitzero"`
	ExitCode   int64      `json:"exit_code"`
	Held       uint64     `json:"held"`
	Paid       uint64     `json:"paid"`
	Outvoted   bool       `json:"outvoted,omitempty"`
}

func (c *ctx) verificationView(v *Verification) VerificationView {
	out := VerificationView{Verification: *v, Runs: []RunView{}}
	for i, id := range v.Leases {
		l, err := c.lease(id)
		if err != nil {
			continue
		}
		r := RunView{LeaseID: id, Provider: l.Provider, Referee: i >= int(v.Replicas), State: l.State, Held: l.Held, Paid: l.Paid}
		if b, ok := c.kv.Get(idKey(pReceipt, id)); ok && l.State == LeaseCompleted {
			rc := mustDecode(decReceipt(b))
			r.Result, r.OutputRoot, r.ExitCode = true, rc.OutputRoot, rc.ExitCode
			r.Outvoted = v.State == VerifyAgreed && (rc.OutputRoot != v.Root || rc.ExitCode != v.ExitCode)
		}
		out.Runs = append(out.Runs, r)
	}
	return out
}
