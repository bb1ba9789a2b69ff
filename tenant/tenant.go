// Package tenant is the tenant's side of Spare as a Go SDK: deploy a job (order, auction, manifest, logs,
// outputs verified against the signed receipt), explain why nobody bids, and manage leases. The `spare deploy`
// family of commands is a thin layer over it.
package tenant

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/match"
	"github.com/sparenet/spare/offers"
	"github.com/sparenet/spare/reqsig"
	"github.com/sparenet/spare/termsafe"
)

// Key is the tenant's account key: it signs transactions and requests to providers.
type Key interface {
	client.Signer
	PrivateKey() ed25519.PrivateKey
}

// Tenant acts for one key against one node.
type Tenant struct {
	c      Ledger
	node   *client.Client // c, when it is a node's client
	key    Key
	sender TxSender
	log    *slog.Logger
}

// New returns a Tenant.
func New(c *client.Client, key Key, log *slog.Logger) *Tenant {
	t := NewWith(c, c.NewSender(key), key, log)
	t.node = c
	return t
}

// NewWith returns a Tenant reading the ledger through l and sending through s: a test's fakes, say.
func NewWith(l Ledger, s TxSender, key Key, log *slog.Logger) *Tenant {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Tenant{c: l, key: key, sender: s, log: log}
}

// Address is the tenant's account.
func (t *Tenant) Address() tx.Address { return t.key.Address() }

// Client is the node client (nil for a Tenant made with NewWith on something else).
func (t *Tenant) Client() *client.Client { return t.node }

// Sender submits the tenant's transactions (nil for a Tenant made with NewWith on something else).
func (t *Tenant) Sender() *client.Sender { s, _ := t.sender.(*client.Sender); return s }

// providerHTTP returns an HTTP client that pins the provider's certificate (from the ledger) and signs every
// request with the tenant's key, and the provider's base URL.
func (t *Tenant) providerHTTP(ctx context.Context, provider tx.Address) (*http.Client, string, error) {
	conns, _ := ctx.Value(connsKey{}).(*deployConns)
	if conns != nil {
		conns.mu.Lock()
		c, ok := conns.clients[provider]
		conns.mu.Unlock()
		if ok {
			return c.hc, c.base, nil
		}
	}
	p, err := t.c.Provider(ctx, provider)
	if err != nil {
		return nil, "", err
	}
	hc := certs.PinnedHTTPClient(p.Info.CertFingerprint, 0)
	hc.Transport = &reqsig.Transport{Base: hc.Transport, Key: t.key.PrivateKey()}
	base := strings.TrimSuffix(p.Info.HostURI, "/")
	if conns != nil {
		conns.mu.Lock()
		conns.clients[provider] = conn{hc, base}
		conns.mu.Unlock()
	}
	return hc, base, nil
}

// deployConns are one deploy's connections to its providers and what it learnt of its leases: the manifest, the
// log stream and the outputs of a lease share one pinned connection, and need not ask the node again who serves
// it. They live as long as the deploy (its context), so no connection outlives it.
type deployConns struct {
	mu      sync.Mutex
	clients map[tx.Address]conn
	leases  map[uint64]tx.Address
	// acks are the providers' signed acknowledgements of the manifests they accepted, by lease: the proof of
	// delivery a deploy posts (ManifestDelivered) should a lease not start before its deadline.
	acks map[uint64][tx.SignatureLen]byte
}

type conn struct {
	hc   *http.Client
	base string
}

type connsKey struct{}

// withConns gives a deploy's context its own connections (see deployConns).
func withConns(ctx context.Context) context.Context {
	return context.WithValue(ctx, connsKey{}, &deployConns{clients: map[tx.Address]conn{}, leases: map[uint64]tx.Address{},
		acks: map[uint64][tx.SignatureLen]byte{}})
}

// knowLease records who serves a lease, for the deploy's later calls.
func knowLease(ctx context.Context, leaseID uint64, provider tx.Address) {
	if conns, _ := ctx.Value(connsKey{}).(*deployConns); conns != nil {
		conns.mu.Lock()
		conns.leases[leaseID] = provider
		conns.mu.Unlock()
	}
}

// leaseProvider is who serves a lease: known to the deploy, else asked of the node.
func (t *Tenant) leaseProvider(ctx context.Context, leaseID uint64) (tx.Address, error) {
	if conns, _ := ctx.Value(connsKey{}).(*deployConns); conns != nil {
		conns.mu.Lock()
		p, ok := conns.leases[leaseID]
		conns.mu.Unlock()
		if ok {
			return p, nil
		}
	}
	l, err := t.c.Lease(ctx, leaseID)
	if err != nil {
		return tx.Address{}, err
	}
	knowLease(ctx, leaseID, l.Provider)
	return l.Provider, nil
}

// APIError is an error answer of a provider's tenant API.
type APIError struct {
	Status int
	Code   string
	Msg    string
}

// Error shows the provider's words without control characters or escape sequences (package termsafe): they end
// up on the tenant's terminal.
func (e *APIError) Error() string {
	return termsafe.String(fmt.Sprintf("provider: %s (HTTP %d, %s)", e.Msg, e.Status, e.Code))
}

// call makes one signed request to the provider of a lease.
func (t *Tenant) call(ctx context.Context, provider tx.Address, method, path string, body io.Reader) (*http.Response, error) {
	hc, base, err := t.providerHTTP(ctx, provider)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", termsafe.String(base), err) // a host_uri stored before the ledger checked it may hold anything
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var eb reqsig.ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(b))
		}
		return nil, &APIError{Status: resp.StatusCode, Code: eb.Code, Msg: eb.Error}
	}
	return resp, nil
}

// Explanation says why no provider serves an order: how many providers each constraint excluded, and which
// (package match's explanation, with the text users read).
type Explanation struct {
	match.Explanation
}

// String renders e.g. "14 providers: 9 lack the GPU model, 3 are outside your regions, 2 are jailed (spare1…,
// spare1…)": a reason that excluded at most three providers names them.
func (e Explanation) String() string {
	if e.Providers == 0 {
		return "no providers are registered on this network"
	}
	out := e.Parts(nil)
	if e.Feasible > 0 {
		out = append(out, fmt.Sprintf("%d could serve it but did not bid (busy, or their price is above your maximum)", e.Feasible))
	}
	noun := "providers"
	if e.Providers == 1 {
		noun = "provider"
	}
	return fmt.Sprintf("%d %s: %s", e.Providers, noun, strings.Join(out, ", "))
}

// Explain checks every registered provider against the order with package match's stages, the ledger's own.
func (t *Tenant) Explain(ctx context.Context, r tx.Resources, c tx.Constraints) (Explanation, error) {
	params, err := t.c.Params(ctx)
	if err != nil {
		return Explanation{}, err
	}
	var ps []match.Provider
	for after := ""; ; {
		page, err := t.c.Providers(ctx, api.ListRequest{After: after, Limit: api.MaxPageLimit})
		if err != nil {
			return Explanation{}, err
		}
		for _, p := range page.Items {
			ps = append(ps, api.MatchProvider(&p.Provider, params))
		}
		if after = page.Next; after == "" {
			break
		}
	}
	return Explanation{match.Explain(match.Stages, &match.Order{Resources: r, Constraints: c}, ps)}, nil
}

// ErrNoOffers is returned by Deploy when nobody bid; the error's text carries the explanation.
var ErrNoOffers = errors.New("no provider bid on the order")

func since(t0 time.Time) time.Duration { return time.Since(t0).Round(time.Millisecond) }

// Candidates lists every registered provider with its live offer (GET /offer over its pinned certificate) and
// the round-trip time to it; a provider that does not answer within timeout has no offer.
func (t *Tenant) Candidates(ctx context.Context, timeout time.Duration) ([]offers.Candidate, error) {
	var provs []api.ProviderView
	for after := ""; ; {
		page, err := t.c.Providers(ctx, api.ListRequest{After: after, Limit: api.MaxPageLimit})
		if err != nil {
			return nil, err
		}
		provs = append(provs, page.Items...)
		if after = page.Next; after == "" {
			break
		}
	}
	cands := make([]offers.Candidate, len(provs))
	var wg sync.WaitGroup
	for i, p := range provs {
		cands[i].Provider = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if rtt, err := RTT(cctx, p.Info.HostURI); err == nil {
				cands[i].RTT = rtt
			}
			hc := certs.PinnedHTTPClient(p.Info.CertFingerprint, timeout)
			req, _ := http.NewRequestWithContext(cctx, "GET", strings.TrimSuffix(p.Info.HostURI, "/")+"/offer", nil)
			resp, err := hc.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			var o offers.Offer
			if resp.StatusCode == 200 && json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&o) == nil {
				cands[i].Offer = &o
			}
		}()
	}
	wg.Wait()
	return cands, nil
}

// knowAck records a provider's acknowledgement of a lease's manifest (hex, as its status gives it), for the
// deploy's later proof of delivery. A malformed one is dropped: the ledger would refuse it.
func knowAck(ctx context.Context, leaseID uint64, ackHex string) {
	conns, _ := ctx.Value(connsKey{}).(*deployConns)
	b, err := hex.DecodeString(ackHex)
	if conns == nil || err != nil || len(b) != tx.SignatureLen {
		return
	}
	conns.mu.Lock()
	conns.acks[leaseID] = [tx.SignatureLen]byte(b)
	conns.mu.Unlock()
}

// ackOf is the provider's acknowledgement of a lease's manifest, if the deploy has one.
func ackOf(ctx context.Context, leaseID uint64) ([tx.SignatureLen]byte, bool) {
	conns, _ := ctx.Value(connsKey{}).(*deployConns)
	if conns == nil {
		return [tx.SignatureLen]byte{}, false
	}
	conns.mu.Lock()
	defer conns.mu.Unlock()
	a, ok := conns.acks[leaseID]
	return a, ok
}
