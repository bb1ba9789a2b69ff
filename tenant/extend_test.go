package tenant

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/internal/logtest"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// extendLedger answers the three reads ExtendPlan makes (the rest of Ledger is not called).
type extendLedger struct {
	Ledger
	lease api.LeaseView
	order api.Order
	prov  api.ProviderView
}

func (f *extendLedger) Lease(context.Context, uint64) (api.LeaseView, error) { return f.lease, nil }
func (f *extendLedger) Order(context.Context, uint64) (api.Order, error)     { return f.order, nil }
func (f *extendLedger) Provider(context.Context, tx.Address) (api.ProviderView, error) {
	return f.prov, nil
}

// extendSender answers an ExtendLease with the ledger's lease.extended event, deposit (its attribute, or
// another's when set) as given.
type extendSender struct {
	sent    []tx.Msg
	deposit string
	attrs   map[string]string // replace the event's attributes: "" drops one
}

func (s *extendSender) Send(_ context.Context, msgs ...tx.Msg) (*client.Result, error) {
	s.sent = append(s.sent, msgs...)
	m := msgs[0].(*tx.ExtendLease)
	attrs := map[string]string{"lease_id": strconv.FormatUint(m.LeaseID, 10), "tenant": testAddr(1).String(), "provider": tx.Address{7}.String(),
		"add_sec": strconv.FormatUint(m.AddSec, 10), "duration_sec": "5400", "added": "1000000", "deposit": "3000000", "end_ms": "5400000"}
	if s.deposit != "" {
		attrs["deposit"] = s.deposit
	}
	for k, v := range s.attrs {
		attrs[k] = v
		if v == "" {
			delete(attrs, k)
		}
	}
	e := abci.Event{Type: "lease.extended"}
	for k, v := range attrs {
		e.Attributes = append(e.Attributes, abci.EventAttribute{Key: k, Value: v})
	}
	return &client.Result{Fee: 7, Height: 9, Events: []abci.Event{e}}, nil
}

type extendKey struct{ priv ed25519.PrivateKey }

func (k extendKey) Address() tx.Address            { return tx.AddressOf(k.PubKey()) }
func (k extendKey) PubKey() ed25519.PublicKey      { return k.priv.Public().(ed25519.PublicKey) }
func (k extendKey) Sign(b []byte) []byte           { return ed25519.Sign(k.priv, b) }
func (k extendKey) PrivateKey() ed25519.PrivateKey { return k.priv }

// TestExtendPlan: Extend checks what the ledger will (tenant, state, group, the provider's maximum) before it
// sends anything, says the deposit the new duration needs, and reports what the ledger recorded.
func TestExtendPlan(t *testing.T) {
	seed := sha256.Sum256([]byte("tenant"))
	key := extendKey{ed25519.NewKeyFromSeed(seed[:])}
	prov := tx.Address{7}
	fresh := func() *extendLedger {
		f := &extendLedger{order: api.Order{ID: 1}}
		f.lease.ID, f.lease.OrderID, f.lease.Tenant, f.lease.Provider = 4, 1, key.Address(), prov
		f.lease.State, f.lease.Price, f.lease.DurationSec, f.lease.Deposit = api.LeaseActive, 2*api.USPR, 3600, 2*api.USPR
		f.lease.StartedMs = uint64(time.Now().UnixMilli())
		f.lease.EndMs = f.lease.StartedMs + 3600_000
		f.prov.Info.MaxLeaseSec = 4 * 3600
		return f
	}
	ctx := context.Background()
	f, s := fresh(), &extendSender{}
	tn := NewWith(f, s, key, nil)
	e, err := tn.Extend(ctx, 4, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := s.sent[0].(*tx.ExtendLease); len(s.sent) != 1 || !ok || m.LeaseID != 4 || m.AddSec != 1800 {
		t.Fatalf("sent %v", s.sent)
	}
	if e.Added != api.USPR || e.Deposit != 3*api.USPR || e.DurationSec != 5400 || e.EndMs != 5400000 || e.Fee != 7 || e.WasEndMs != f.lease.EndMs {
		t.Fatalf("extension: %+v", e)
	}
	// What the ledger recorded stands over the plan: someone topped the lease up meanwhile.
	if e, err := NewWith(fresh(), &extendSender{deposit: "3500000"}, key, nil).Extend(ctx, 4, 30*time.Minute); err != nil || e.Deposit != 3_500_000 {
		t.Fatalf("topped up meanwhile: %v %+v", err, e)
	}
	// An event that does not read is said, and the plan's figures stand: the lease is extended all the same (no
	// error, which would invite extending it again), and nothing reads as 0.
	for _, bad := range []map[string]string{{"deposit": "3.5"}, {"end_ms": ""}, {"lease_id": "0"}, {"provider": "p"}} {
		logged := &logtest.Warnings{}
		f := fresh()
		plan, err := NewWith(f, &extendSender{}, key, nil).ExtendPlan(ctx, 4, 30*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		e, err := NewWith(f, &extendSender{attrs: bad}, key, slog.New(logged)).Extend(ctx, 4, 30*time.Minute)
		if err != nil || e.Deposit != plan.Deposit || e.Added != plan.Added || e.EndMs != plan.EndMs || e.DurationSec != plan.DurationSec || e.Fee != 7 {
			t.Fatalf("event %v: %v %+v (plan %+v)", bad, err, e, plan)
		}
		if w := logged.Lines(); len(w) != 1 || !strings.Contains(w[0], "lease extended, but its event does not read") || !strings.Contains(w[0], "ledger event lease.extended") {
			t.Fatalf("event %v: logged %q", bad, w)
		}
	}
	// An odd price rounds the deposit up, as the ledger does.
	f.lease.Price, f.lease.Deposit = 7, 1
	if e, err := tn.ExtendPlan(ctx, 4, 7*time.Second); err != nil || e.Added != 7 { // ceil(7 × 3607 / 3600) − 1
		t.Fatalf("odd price: %v %+v", err, e)
	}
	for name, c := range map[string]struct {
		change func(*extendLedger)
		add    time.Duration
		want   string
	}{
		"over the max":   {func(*extendLedger) {}, 4 * time.Hour, "accepts leases up to 4h; lease 4 would run 5h (1h + 4h): extend it by at most 3h"},
		"at the max":     {func(f *extendLedger) { f.lease.DurationSec = 4 * 3600 }, time.Second, "it cannot be extended any more"},
		"no extensions":  {func(f *extendLedger) { f.prov.Info.MaxLeaseSec = 0 }, time.Minute, "accepts no lease extensions"},
		"someone else's": {func(f *extendLedger) { f.lease.Tenant = prov }, time.Minute, "not yours"},
		"closed":         {func(f *extendLedger) { f.lease.State, f.lease.CloseReason = api.LeaseClosed, "duration reached" }, time.Minute, "is closed (duration reached)"},
		"ended":          {func(f *extendLedger) { f.lease.EndMs = 1 }, time.Minute, "cannot be extended"},
		"cluster":        {func(f *extendLedger) { f.order.Nodes = 2 }, time.Minute, "member of cluster order 1"},
		"replicated":     {func(f *extendLedger) { f.order.Replicas = 2 }, time.Minute, "run of a replicated order"},
		"sub-second":     {func(*extendLedger) {}, 1500 * time.Millisecond, "whole seconds"},
		"too long":       {func(*extendLedger) {}, 9000 * time.Hour, "whole seconds from 1s to 8760h"},
	} {
		f, s := fresh(), &extendSender{}
		c.change(f)
		_, err := NewWith(f, s, key, nil).Extend(ctx, 4, c.add)
		if err == nil || !strings.Contains(err.Error(), c.want) || len(s.sent) != 0 {
			t.Errorf("%s: %v (sent %d), want %q", name, err, len(s.sent), c.want)
		}
		if strings.Contains(name, "max") || name == "no extensions" {
			if !errors.Is(err, ErrExtendRefused) || tx.CodeOf(err) != tx.CodeExtendRefused {
				t.Errorf("%s: %v is not an extension refusal (code %v)", name, err, tx.CodeOf(err))
			}
		}
	}
}
