package tenant_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/devnet"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/tenant"
)

// TestClusterLongCloseReasonOnDev plays a tenant attacking the ledger through a cluster's close reasons. When a
// member ends, the ledger closes the cluster's other members with a reason it composes; once that reason quoted
// the failed member's in full, so a tenant closing one member with a reason of the full tx.MaxReasonLen bytes made
// it longer than the decoder reads back, which poisoned the state (every later read of the lease failed).
//
// On `spare dev --providers 3`, for a reason of MaxReasonLen ASCII bytes and one of MaxReasonLen bytes of 2-, 3-
// and 4-byte runes (fewer runes than bytes, so a bound counted in runes or cut mid-rune shows): a detached 2-node
// cluster job (on_failure close) runs a long command; a reason one byte over the limit is refused by the node
// itself (sent around the client's own check) and changes nothing; the tenant closes one member with the
// MaxReasonLen-byte reason. Then the chain keeps committing blocks; every query about the cluster answers (the
// cluster, its order, both members' leases, the tenant's leases, the providers, the objects query the explorer
// indexes with, the supply); the other member is closed by the ledger with a readable reason naming the closed
// member, valid UTF-8 and at most MaxReasonLen bytes, the same in the close's events and in the explorer. At the
// end a fresh single-run job still deploys and completes.
func TestClusterLongCloseReasonOnDev(t *testing.T) {
	tn, info := devCluster(t, func(o *devnet.Options) { o.Explorer = "127.0.0.1:0" })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := tn.Client()

	// 28 × (2 + 3 + 4 bytes) + one more 4-byte rune: exactly 256 bytes in 85 runes, and wherever the ledger cuts
	// the composed reason, it most likely falls inside a rune.
	multi := strings.Repeat("é€😀", 28) + "😀"
	for _, tc := range []struct {
		name, reason string
		rank         int // the member the tenant closes
	}{
		{"ascii", strings.Repeat("x", tx.MaxReasonLen), 1},
		{"multibyte", multi, 0},
	} {
		if len(tc.reason) != tx.MaxReasonLen || !utf8.ValidString(tc.reason) {
			t.Fatalf("%s: reason of %d bytes", tc.name, len(tc.reason))
		}
		t.Run(tc.name, func(t *testing.T) { poisonRound(ctx, t, tn, info, tc.reason, tc.rank) })
		if t.Failed() {
			return
		}
	}

	// The network still serves new work.
	res, err := tn.Deploy(ctx, cpuJob(t, "echo still serving", api.USPR, api.USPR), tenant.Options{OutputsDir: t.TempDir(), NoBidTimeout: time.Minute})
	if err != nil {
		t.Fatalf("deploy after the attack: %v", err)
	}
	if res.State != "completed" || res.ExitCode == nil || *res.ExitCode != 0 {
		t.Fatalf("deploy after the attack: %+v", res)
	}
	if sup, err := c.Supply(ctx); err != nil || !sup.Holds() {
		t.Fatalf("supply %+v %v", sup, err)
	}
}

// poisonRound runs one cluster and closes member rank with reason (see TestClusterLongCloseReasonOnDev).
func poisonRound(ctx context.Context, t *testing.T, tn *tenant.Tenant, info devnet.Info, reason string, rank int) {
	c := tn.Client()
	job := cpuJob(t, `echo rank $RANK up; sleep 600`, 10*api.USPR, api.USPR)
	m, _ := manifestOf(job)
	m.DurationSec = 300 // far longer than the test: nothing but the tenant's close may end a member
	job = rejob(t, job, m)
	job.Cluster = &tenant.Cluster{Nodes: 2, MaxRTTMicros: 5000}
	res, err := tn.Deploy(ctx, job, tenant.Options{Detach: true, OutputsDir: t.TempDir(), NoBidTimeout: time.Minute})
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	order := res.OrderID

	// Both members run.
	var cv api.ClusterView
	poisonPoll(t, 60*time.Second, "both members running", func() error {
		if cv, err = c.Cluster(ctx, order); err != nil {
			return err
		}
		if cv.State != api.ClusterRunning || len(cv.Members) != 2 {
			return fmt.Errorf("cluster %+v", cv)
		}
		for _, m := range cv.Members {
			if l, err := c.Lease(ctx, m.LeaseID); err != nil || l.State != api.LeaseActive {
				return fmt.Errorf("rank %d lease %d: %s %v", m.Rank, m.LeaseID, l.State, err)
			}
		}
		return nil
	})
	closed, other := cv.Members[rank].LeaseID, cv.Members[1-rank].LeaseID

	// One byte over the limit, sent around the client's own check: the node refuses it and nothing changes.
	if code, log := poisonBroadcast(ctx, t, c, info, &tx.CloseLease{ID: closed, Reason: reason + "x"}); code == 0 {
		t.Fatalf("the node accepted a close reason of %d bytes", len(reason)+1)
	} else {
		t.Logf("%d-byte reason refused: code %d: %s", len(reason)+1, code, log)
	}
	for _, id := range []uint64{closed, other} {
		if l, err := c.Lease(ctx, id); err != nil || l.State != api.LeaseActive {
			t.Fatalf("lease %d after the refused close: %s %v", id, l.State, err)
		}
	}

	// The attack: close one member with a reason of exactly MaxReasonLen bytes.
	sent, err := tn.Sender().Send(ctx, &tx.CloseLease{ID: closed, Reason: reason})
	if err != nil {
		t.Fatalf("close lease %d: %v", closed, err)
	}

	// The chain goes on.
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("status after the close: %v", err)
	}
	poisonPoll(t, 60*time.Second, "ten more blocks", func() error {
		now, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if now.Height < max(st.Height, sent.Height)+10 {
			return fmt.Errorf("height %d, was %d at the close", now.Height, st.Height)
		}
		return nil
	})

	// Every query about the cluster answers, and tells the same story.
	cv, err = c.Cluster(ctx, order)
	if err != nil {
		t.Fatalf("cluster %d: %v", order, err)
	}
	if cv.State != api.ClusterFailed || cv.FailedLease != closed || len(cv.Members) != 2 {
		t.Fatalf("cluster after the close: %+v", cv)
	}
	for _, m := range cv.Members {
		if m.State != api.LeaseClosed {
			t.Fatalf("cluster member after the close: %+v", m)
		}
	}
	if o, err := c.Order(ctx, order); err != nil || o.ID != order {
		t.Fatalf("order %d: %+v %v", order, o, err)
	}
	byTenant, err := c.Orders(ctx, api.ListRequest{Tenant: tn.Address(), Limit: api.MaxPageLimit})
	if err != nil {
		t.Fatalf("the tenant's orders: %v", err)
	}
	if !slices.ContainsFunc(byTenant.Items, func(o api.Order) bool { return o.ID == order }) {
		t.Fatalf("the tenant's orders lack %d", order)
	}
	lc, err := c.Lease(ctx, closed)
	if err != nil {
		t.Fatalf("closed lease %d: %v", closed, err)
	}
	lo, err := c.Lease(ctx, other)
	if err != nil {
		t.Fatalf("other lease %d: %v", other, err)
	}
	if lc.State != api.LeaseClosed || lc.ClosedBy != tn.Address() || lc.CloseReason != reason {
		t.Fatalf("closed lease %d: %s by %s, reason %q", closed, lc.State, lc.ClosedBy, lc.CloseReason)
	}
	if lo.State != api.LeaseClosed || lo.CloseReason == "" {
		t.Fatalf("other lease %d: %s, reason %q", other, lo.State, lo.CloseReason)
	}
	for _, l := range []api.LeaseView{lc, lo} {
		if !utf8.ValidString(l.CloseReason) || len(l.CloseReason) > tx.MaxReasonLen {
			t.Fatalf("lease %d: a reason of %d bytes, valid UTF-8 %v: %q", l.ID, len(l.CloseReason), utf8.ValidString(l.CloseReason), l.CloseReason)
		}
		if l.Paid+l.Refunded+l.Held != l.Deposit {
			t.Fatalf("lease %d: paid %d + refunded %d + held %d of %d", l.ID, l.Paid, l.Refunded, l.Held, l.Deposit)
		}
	}
	// Readable: printable text that names the member that ended (whatever else it says: the ledger may quote the
	// tenant's reason, cut to fit, or only say who closed the member).
	if !regexp.MustCompile(`\blease `+strconv.FormatUint(closed, 10)+`\b`).MatchString(lo.CloseReason) ||
		strings.IndexFunc(lo.CloseReason, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		t.Fatalf("other lease %d: reason %q does not name lease %d in printable text", other, lo.CloseReason, closed)
	}
	// Where it quotes the tenant's reason, the quote is the reason's start, cut (if at all) on a rune boundary.
	if i := strings.Index(lo.CloseReason, reason[:8]); i >= 0 {
		if q := strings.TrimSuffix(lo.CloseReason[i:], "…"); !strings.HasPrefix(reason, q) {
			t.Fatalf("other lease %d: reason %q misquotes the tenant's %q", other, lo.CloseReason, reason)
		}
	}
	t.Logf("other member's reason (%d bytes): %q", len(lo.CloseReason), lo.CloseReason)

	leases, err := c.Leases(ctx, api.ListRequest{Tenant: tn.Address(), Limit: api.MaxPageLimit})
	if err != nil {
		t.Fatalf("the tenant's leases: %v", err)
	}
	found := 0
	for _, l := range leases.Items {
		if l.ID == closed && l.CloseReason == lc.CloseReason || l.ID == other && l.CloseReason == lo.CloseReason {
			found++
		}
	}
	if found != 2 {
		t.Fatalf("the tenant's leases list %d of the two members as they are", found)
	}
	provs, err := c.Providers(ctx, api.ListRequest{Limit: api.MaxPageLimit})
	if err != nil || len(provs.Items) < len(info.Providers) {
		t.Fatalf("providers: %d %v", len(provs.Items), err)
	}
	for _, p := range info.Providers {
		if _, err := c.Provider(ctx, p.Address); err != nil {
			t.Fatalf("provider %s: %v", p.Address, err)
		}
		if _, err := c.Leases(ctx, api.ListRequest{Provider: p.Address, Limit: api.MaxPageLimit}); err != nil {
			t.Fatalf("provider %s's leases: %v", p.Address, err)
		}
	}
	objs, err := c.Objects(ctx, api.ObjectsRequest{Orders: []uint64{order}, Leases: []uint64{closed, other},
		Providers: []tx.Address{lc.Provider, lo.Provider}})
	if err != nil || len(objs.Orders) != 1 || len(objs.Leases) != 2 || len(objs.Providers) != 2 {
		t.Fatalf("objects: %d orders, %d leases, %d providers, %v", len(objs.Orders), len(objs.Leases), len(objs.Providers), err)
	}
	if _, err := c.Account(ctx, tn.Address()); err != nil {
		t.Fatalf("the tenant's account: %v", err)
	}

	// The close's events carry the reasons as stored.
	evReason := map[string]string{}
	for _, e := range sent.Events {
		if e.Type != "lease.closed" {
			continue
		}
		var id, r string
		for _, a := range e.Attributes {
			switch a.Key {
			case "lease_id":
				id = a.Value
			case "reason":
				r = a.Value
			}
		}
		evReason[id] = r
	}
	if evReason[strconv.FormatUint(closed, 10)] != lc.CloseReason || evReason[strconv.FormatUint(other, 10)] != lo.CloseReason {
		t.Fatalf("the close's lease.closed events: %q", evReason)
	}

	// The explorer indexes it all and shows the other member's reason.
	poisonPoll(t, 60*time.Second, "the explorer's lease page", func() error {
		var page struct {
			State       string `json:"state"`
			CloseReason string `json:"close_reason"`
		}
		if err := poisonGetJSON(ctx, info.Explorer+"/api/leases/"+strconv.FormatUint(other, 10), &page); err != nil {
			return err
		}
		if page.State != "closed" || page.CloseReason != lo.CloseReason {
			return fmt.Errorf("state %q, reason %q", page.State, page.CloseReason)
		}
		return nil
	})
	if err := poisonGetJSON(ctx, info.Explorer+"/api/orders/"+strconv.FormatUint(order, 10), &json.RawMessage{}); err != nil {
		t.Fatalf("the explorer's order page: %v", err)
	}
}

// poisonBroadcast signs msg with the tenant's key and broadcasts it as is, without the client's checks, and
// returns the node's answer to it.
func poisonBroadcast(ctx context.Context, t *testing.T, c *client.Client, info devnet.Info, msg tx.Msg) (uint32, string) {
	t.Helper()
	kr, err := keyring.Open(filepath.Join(info.Home, "keys"), keyring.Options{Backend: keyring.BackendTest})
	if err != nil {
		t.Fatal(err)
	}
	key, err := kr.Signer("tenant")
	if err != nil {
		t.Fatal(err)
	}
	acc, err := c.PendingAccount(ctx, key.Address())
	if err != nil {
		t.Fatal(err)
	}
	params, err := c.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw := tx.Sign(tx.Body{ChainID: info.ChainID, Nonce: acc.Nonce, Fee: api.FeeFor(params, 2_000_000, params.MinGasPrice), GasLimit: 2_000_000, Msgs: []tx.Msg{msg}}, key.PrivateKey())
	r, err := c.RPC().BroadcastTxSync(ctx, raw)
	if err != nil {
		t.Fatalf("broadcast: %v", err)
	}
	return r.Code, r.Log
}

// poisonPoll calls f until it returns nil, failing the test with f's last error after within.
func poisonPoll(t *testing.T, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func poisonGetJSON(ctx context.Context, url string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return errors.Join(fmt.Errorf("%s: %s", url, body), err)
	}
	return nil
}
