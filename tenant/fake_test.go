package tenant_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/tenant"
)

// fakeChain is a ledger in memory for the tenant's pipeline: it makes a block every few milliseconds out of the
// events queued for it, answers the queries a deploy makes, and lets a test script what the ledger does next
// (bids, an expiry) and what it answers to the tenant's transactions.
type fakeChain struct {
	mu       sync.Mutex
	height   int64
	blocks   []client.Block
	next     []client.Event
	produced chan struct{} // closed and replaced at each block
	nextID   uint64
	fee      uint64
	sent     []string // the messages sent, by type
	params   api.Params
	// on answers a message with the events it causes in its block, or an error code.
	on func(f *fakeChain, m tx.Msg) ([]client.Event, error)
	// orders, verifications, leases and providers as the fake's script keeps them.
	orders    map[uint64]api.Order
	verifs    map[uint64]api.VerificationView
	leases    map[uint64]api.LeaseView
	providers map[tx.Address]api.ProviderView
	// onBlock, when set, runs as each block is made (f.mu held): the ledger's own work (auctions, deadlines).
	onBlock func(f *fakeChain)
}

func newFakeChain(t *testing.T) *fakeChain {
	f := &fakeChain{produced: make(chan struct{}), fee: 1000, params: api.DefaultParams(),
		orders: map[uint64]api.Order{}, verifs: map[uint64]api.VerificationView{}, leases: map[uint64]api.LeaseView{},
		providers: map[tx.Address]api.ProviderView{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
			f.mu.Lock()
			f.height++
			if f.onBlock != nil {
				f.onBlock(f)
			}
			f.blocks = append(f.blocks, client.Block{Height: f.height, Events: f.next})
			f.next = nil
			close(f.produced)
			f.produced = make(chan struct{})
			f.mu.Unlock()
		}
	}()
	return f
}

// fakeTenant and fakeProvider are the accounts the fake's events name where a test has none of its own: the
// ledger's events name them, and the tenant reads its events strictly (api.Parse*).
var (
	fakeTenant   = fakeKey{ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32))}.Address()
	fakeProvider = fakeKey{ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))}.Address()
)

func ev(typ string, kv ...any) client.Event {
	e := client.Event{Type: typ, Attrs: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Attrs[kv[i].(string)] = fmt.Sprint(kv[i+1])
	}
	return e
}

// emit queues events for the next block.
func (f *fakeChain) emit(es ...client.Event) {
	f.mu.Lock()
	f.next = append(f.next, es...)
	f.mu.Unlock()
}

func (f *fakeChain) Send(ctx context.Context, msgs ...tx.Msg) (*client.Result, error) {
	var es []client.Event
	for _, m := range msgs {
		f.mu.Lock()
		f.sent = append(f.sent, fmt.Sprintf("%T", m))
		f.mu.Unlock()
		got, err := f.on(f, m)
		if err != nil {
			return nil, err
		}
		es = append(es, got...)
	}
	f.mu.Lock()
	f.next = append(f.next, es...)
	wait, h := f.produced, f.height+1
	f.mu.Unlock()
	select {
	case <-wait:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r := &client.Result{Height: h, Fee: f.fee}
	for _, e := range es {
		ae := abci.Event{Type: e.Type}
		for k, v := range e.Attrs {
			ae.Attributes = append(ae.Attributes, abci.EventAttribute{Key: k, Value: v})
		}
		r.Events = append(r.Events, ae)
	}
	return r, nil
}

func (f *fakeChain) FollowPaced(ctx context.Context, from int64, pace func() time.Duration, fn func(client.Block) error) error {
	next := max(from, 1)
	for {
		f.mu.Lock()
		var todo []client.Block
		if next <= f.height {
			todo = f.blocks[next-1 : f.height]
		}
		wait := f.produced
		f.mu.Unlock()
		for _, b := range todo {
			if err := fn(b); err != nil {
				return err
			}
			next++
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *fakeChain) Status(context.Context) (api.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return api.Status{Height: f.height}, nil
}
func (f *fakeChain) Params(context.Context) (*api.Params, error) { p := f.params; return &p, nil }
func (f *fakeChain) Order(_ context.Context, id uint64) (api.Order, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.orders[id]
	if !ok {
		return o, errors.New("order not found")
	}
	return o, nil
}
func (f *fakeChain) Bids(context.Context, api.ListRequest) (api.List[api.Bid], error) {
	return api.List[api.Bid]{}, nil
}
func (f *fakeChain) Lease(_ context.Context, id uint64) (api.LeaseView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.leases[id]
	if !ok {
		return l, fmt.Errorf("lease %d not found", id)
	}
	return l, nil
}
func (f *fakeChain) Provider(_ context.Context, a tx.Address) (api.ProviderView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.providers[a]
	if !ok {
		return p, fmt.Errorf("provider %s not found", a)
	}
	return p, nil
}
func (f *fakeChain) Providers(context.Context, api.ListRequest) (api.List[api.ProviderView], error) {
	return api.List[api.ProviderView]{}, nil
}
func (f *fakeChain) Verification(_ context.Context, id uint64) (api.VerificationView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.verifs[id]
	if !ok {
		return v, errors.New("not found")
	}
	return v, nil
}
func (f *fakeChain) Cluster(context.Context, uint64) (api.ClusterView, error) {
	return api.ClusterView{}, errors.New("not found")
}

func (f *fakeChain) sentTypes() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.sent, " ")
}

// fakeKey signs nothing that is checked: the fake chain takes every message.
type fakeKey struct{ priv ed25519.PrivateKey }

func (k fakeKey) Address() tx.Address            { return tx.AddressOf(k.PubKey()) }
func (k fakeKey) PubKey() ed25519.PublicKey      { return k.priv.Public().(ed25519.PublicKey) }
func (k fakeKey) Sign(m []byte) []byte           { return ed25519.Sign(k.priv, m) }
func (k fakeKey) PrivateKey() ed25519.PrivateKey { return k.priv }

// marketScript answers orders and cancellations as the ledger would for an order nobody leases: the order is
// opened (escrowing its deposit per lease, and a referee's reserve for a replicated one) and a cancellation
// refunds all of it, by the events the ledger emits.
func marketScript(f *fakeChain, m tx.Msg) ([]client.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch m := m.(type) {
	case *tx.CreateOrder:
		f.nextID++
		f.orders[f.nextID] = api.Order{ID: f.nextID, Deposit: m.Deposit, State: api.OrderOpen, Resources: m.Resources, WindowEnd: f.height + 3}
		return []client.Event{ev("order.created", "order_id", f.nextID, "tenant", fakeTenant, "deposit", m.Deposit)}, nil
	case *tx.CreateReplicatedOrder:
		f.nextID++
		f.orders[f.nextID] = api.Order{ID: f.nextID, Deposit: m.Deposit, Replicas: m.Replicas, State: api.OrderOpen}
		f.verifs[f.nextID] = api.VerificationView{Verification: api.Verification{OrderID: f.nextID, Replicas: m.Replicas, Reserve: m.Deposit, State: api.VerifyLeasing}}
		return []client.Event{ev("order.created", "order_id", f.nextID, "tenant", fakeTenant), ev("verify.opened", "order_id", f.nextID, "reserve", m.Deposit)}, nil
	case *tx.CancelOrder:
		o := f.orders[m.ID]
		if o.State != api.OrderOpen {
			return nil, errors.New("order not open")
		}
		o.State = api.OrderCancelled
		f.orders[m.ID] = o
		es := []client.Event{ev("order.cancelled", "order_id", m.ID, "tenant", fakeTenant, "refund", o.Escrowed())}
		if v, ok := f.verifs[m.ID]; ok {
			es = append(es, ev("verify.decided", "order_id", m.ID, "state", "cancelled", "reserve_refund", v.Reserve))
			v.Reserve, v.State = 0, api.VerifyCancelled
			f.verifs[m.ID] = v
		}
		return es, nil
	}
	return nil, fmt.Errorf("unexpected %T", m)
}

// The pipeline on a fake ledger: nobody leases, so the deploy cancels its order by the timeout, says why, and
// reports as refunded what the ledger's events gave back: every deposit and, for a replicated job, the referee's
// reserve (which the client no longer works out for itself). Bids placed meanwhile (for someone else's order,
// and for this one) are reported only when they are this deploy's.
func TestPipelineOnFakeLedger(t *testing.T) {
	order := tx.CreateOrder{Resources: tx.Resources{CPUMilli: 1000, MemoryMiB: 64}, MaxPricePerHour: 1_000_000, Deposit: 3_000_000, DurationSec: 60}
	for _, tc := range []struct {
		name     string
		job      tenant.Job
		refunded uint64
	}{
		{"single", tenant.Job{Order: order}, 3_000_000},
		{"replicated", tenant.Job{Order: order, Replicas: 3}, 3*3_000_000 /* runs */ + 3_000_000 /* reserve */},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeChain(t)
			f.on = marketScript
			tn := tenant.NewWith(f, f, fakeKey{ed25519.NewKeyFromSeed(make([]byte, 32))}, nil)
			var mu sync.Mutex
			var stages []string
			res, err := tn.Deploy(context.Background(), tc.job, tenant.Options{NoBidTimeout: 300 * time.Millisecond,
				OnOrder: func(id uint64) {
					f.emit(ev("bid.placed", "order_id", id+100, "bid_id", 7, "provider", fakeTenant, "price", 5), // not ours
						ev("bid.placed", "order_id", id, "bid_id", 8, "provider", fakeProvider, "price", 2_000_000))
				},
				Progress: func(e tenant.Event) { mu.Lock(); stages = append(stages, e.Stage+": "+e.Detail); mu.Unlock() }})
			if !errors.Is(err, tenant.ErrNoOffers) || !strings.Contains(err.Error(), "no providers are registered") || !strings.Contains(err.Error(), "deposit refunded") {
				t.Fatalf("err %v", err)
			}
			if res.Outcome != tenant.OutcomeNoOffers || res.Refunded != tc.refunded || res.Fees != 2*f.fee {
				t.Fatalf("outcome %q, refunded %d (want %d), fees %d", res.Outcome, res.Refunded, tc.refunded, res.Fees)
			}
			if sent := f.sentTypes(); strings.Count(sent, "*tx.CancelOrder") != 1 {
				t.Fatalf("sent %s", sent)
			}
			mu.Lock()
			defer mu.Unlock()
			bids := 0
			for _, s := range stages {
				if strings.HasPrefix(s, "bid: ") {
					bids++
					if !strings.Contains(s, fakeProvider.String()+" at 2 SPR/h") {
						t.Fatalf("bid line %q", s)
					}
				}
			}
			if bids != 1 {
				t.Fatalf("bids reported %d: %q", bids, stages)
			}
		})
	}
}

// An order the ledger ends (it expired) ends the wait at once with the ledger's word, and what it refunded;
// Ctrl-C during the auction returns at once with the order's id (the CLI cancels it).
func TestPipelineOrderEndsOrInterrupted(t *testing.T) {
	order := tx.CreateOrder{Resources: tx.Resources{CPUMilli: 1000}, MaxPricePerHour: 1, Deposit: 5, DurationSec: 60}
	f := newFakeChain(t)
	f.on = marketScript
	tn := tenant.NewWith(f, f, fakeKey{ed25519.NewKeyFromSeed(make([]byte, 32))}, nil)
	t0 := time.Now()
	res, err := tn.Deploy(context.Background(), tenant.Job{Order: order}, tenant.Options{NoBidTimeout: time.Minute,
		OnOrder: func(id uint64) { f.emit(ev("order.expired", "order_id", id, "tenant", fakeTenant, "refund", 5)) }})
	if err == nil || err.Error() != "order 1 expired" || res.Refunded != 5 || time.Since(t0) > 30*time.Second {
		t.Fatalf("err %v, refunded %d after %s", err, res.Refunded, time.Since(t0))
	}

	ctx, cancel := context.WithCancel(context.Background())
	res, err = tn.Deploy(ctx, tenant.Job{Order: order}, tenant.Options{NoBidTimeout: time.Minute, OnOrder: func(uint64) { cancel() }})
	if !errors.Is(err, context.Canceled) || res.OrderID != 2 {
		t.Fatalf("err %v, order %d", err, res.OrderID)
	}
	if strings.Contains(f.sentTypes(), "CancelOrder") {
		t.Fatalf("the SDK cancelled on its own: %s", f.sentTypes())
	}
	// spare cancel (and deploy's Ctrl-C) report what the ledger's events say came back.
	if refund, err := tn.CancelOrder(context.Background(), res.OrderID); err != nil || refund != 5 {
		t.Fatalf("cancel: refund %d, %v", refund, err)
	}
	if _, err := tn.CancelOrder(context.Background(), res.OrderID); err == nil {
		t.Fatal("a second cancel succeeded")
	}
}

// A provider that accepts the manifest, acknowledges it, and never starts the workload (its LeaseStarted never
// comes): a few blocks before the start deadline the deploy posts the provider's acknowledgement on the ledger
// (ManifestDelivered), so that the expiry counts as the provider's failure, and reports the lease closed by the
// provider with everything refunded. The provider is a TLS server pinned by its fingerprint, as a real one.
func TestPipelineProvesManifestDelivery(t *testing.T) {
	ack := bytes.Repeat([]byte{7}, tx.SignatureLen)
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /leases/{id}/manifest", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"state": "running", "manifest_ack": %q}`, hex.EncodeToString(ack))
	})
	mux.HandleFunc("GET /leases/{id}/logs", func(w http.ResponseWriter, r *http.Request) {}) // nothing printed yet
	mux.HandleFunc("GET /leases/{id}/status", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"state": "running"}`) })
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	prov := fakeKey{ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))}.Address()

	tenantKey := fakeKey{ed25519.NewKeyFromSeed(make([]byte, 32))}
	f := newFakeChain(t)
	f.providers[prov] = api.ProviderView{Provider: api.Provider{Owner: prov,
		Info: tx.ProviderInfo{HostURI: srv.URL, CertFingerprint: certs.Fingerprint(srv.Certificate().Raw)}}}
	const deposit = 4_000_000
	var delivered []tx.ManifestDelivered
	f.on = func(f *fakeChain, m tx.Msg) ([]client.Event, error) {
		switch m := m.(type) {
		case *tx.ManifestDelivered:
			f.mu.Lock()
			delivered = append(delivered, *m)
			f.mu.Unlock()
			return []client.Event{ev("lease.manifest_delivered", "lease_id", m.LeaseID)}, nil
		case *tx.CreateOrder:
			f.mu.Lock()
			defer f.mu.Unlock()
			f.nextID++
			f.orders[f.nextID] = api.Order{ID: f.nextID, Deposit: m.Deposit, State: api.OrderOpen}
			// Leased in the next block, to start by 12 blocks later.
			f.leases[1] = api.LeaseView{Lease: api.Lease{ID: 1, OrderID: f.nextID, Provider: prov, Tenant: tenantKey.Address(), State: api.LeasePending,
				Deposit: m.Deposit, Price: 1000, DurationSec: 60, StartDeadline: f.height + 12}}
			return []client.Event{ev("order.created", "order_id", f.nextID, "tenant", tenantKey.Address()),
				ev("lease.created", "order_id", f.nextID, "lease_id", 1, "bid_id", 1, "tenant", tenantKey.Address(), "provider", prov,
					"price", 1000, "start_deadline", f.height+12)}, nil
		}
		return nil, fmt.Errorf("unexpected %T", m)
	}
	f.onBlock = func(f *fakeChain) { // the start deadline: the ledger's verdict depends on the proof
		l, ok := f.leases[1]
		if !ok || l.State != api.LeasePending || f.height < l.StartDeadline {
			return
		}
		l.State, l.CloseReason, l.Refunded = api.LeaseClosed, "no manifest delivered in time", l.Deposit
		if len(delivered) > 0 {
			l.CloseReason = "not started in time"
		}
		f.leases[1] = l
		f.next = append(f.next, ev("lease.closed", "lease_id", 1, "provider", prov, "tenant", l.Tenant, "state", l.State, "reason", l.CloseReason,
			"paid", 0, "refund", l.Deposit, "held", 0))
	}
	tn := tenant.NewWith(f, f, tenantKey, nil)
	var mu sync.Mutex
	var lines []string
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := tn.Deploy(ctx, tenant.Job{Manifest: []byte("the job"), Order: tx.CreateOrder{Deposit: deposit}}, tenant.Options{
		OutputsDir: t.TempDir(), Progress: func(e tenant.Event) { mu.Lock(); lines = append(lines, e.Detail); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	if len(delivered) != 1 || delivered[0].LeaseID != 1 || !bytes.Equal(delivered[0].Ack[:], ack) {
		t.Fatalf("proofs of delivery sent: %+v", delivered)
	}
	if res.Outcome != tenant.OutcomeClosedByProvider || !strings.Contains(res.Reason, "did not start the workload in time") || res.Refunded != deposit {
		t.Fatalf("outcome %q, reason %q, refunded %d", res.Outcome, res.Reason, res.Refunded)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(strings.Join(lines, "\n"), "posting provider "+prov.String()+"'s acknowledgement of the manifest") {
		t.Fatalf("progress:\n%s", strings.Join(lines, "\n"))
	}
}

// An order.created event whose order id does not read fails the deploy with what to do, instead of following
// order 0; a cancellation's refund event that does not read is said and not counted, and the cancellation stands.
func TestPipelineUnreadableEvents(t *testing.T) {
	order := tx.CreateOrder{Resources: tx.Resources{CPUMilli: 1000}, MaxPricePerHour: 1, Deposit: 5, DurationSec: 60}
	f := newFakeChain(t)
	garble := ""
	f.on = func(f *fakeChain, m tx.Msg) ([]client.Event, error) {
		es, err := marketScript(f, m)
		for _, e := range es {
			if _, ok := e.Attrs[garble]; ok {
				e.Attrs[garble] = "5x"
			}
		}
		return es, err
	}
	var logged bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logged}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	tn := tenant.NewWith(f, f, fakeKey{ed25519.NewKeyFromSeed(make([]byte, 32))}, log)

	garble = "order_id"
	res, err := tn.Deploy(context.Background(), tenant.Job{Order: order}, tenant.Options{NoBidTimeout: time.Minute})
	if res != nil || err == nil || !strings.Contains(err.Error(), "the order was placed") || !strings.Contains(err.Error(), `order_id = "5x"`) {
		t.Fatalf("res %+v, err %v", res, err)
	}

	garble = "refund"
	f.mu.Lock()
	f.orders[2] = api.Order{ID: 2, Deposit: 5, State: api.OrderOpen}
	f.mu.Unlock()
	refund, err := tn.CancelOrder(context.Background(), 2)
	logMu.Lock()
	defer logMu.Unlock()
	if err != nil || refund != 0 || !strings.Contains(logged.String(), "a refund event does not read") || !strings.Contains(logged.String(), `refund = \"5x\"`) {
		t.Fatalf("cancel: refund %d, %v; logged %s", refund, err, logged.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
