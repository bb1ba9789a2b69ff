package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/liveness"
)

// Auditor challenges every provider of each epoch's audit set and attests who answered (DESIGN §5): one Attest
// per epoch, a bitmap over the set. A challenge is answered when, within Timeout, the provider's /challenge
// endpoint (reached at the host URI it registered, with TLS pinned to the certificate fingerprint it registered)
// returns the auditor's fresh nonce signed with the provider's registered key. Anything else — no answer, a
// wrong key, a wrong certificate — is a failed attempt. Each provider is challenged Probes times per epoch at
// random times, each probe retried before it counts as missed, and its bit is clear only when it missed most of
// its probes (probe.go); the Attest goes out once the epoch's probes are done, during the next epoch.
type Auditor struct {
	c      *client.Client
	sender *client.Sender
	key    Key
	addr   tx.Address
	log    *slog.Logger

	Timeout     time.Duration // per challenge (default 5 s)
	Concurrency int           // challenges in flight (default 32)
	Poll        time.Duration // how often the epoch is looked at (default 500 ms)

	// Liveness probing (probe.go): Probes challenges per provider per epoch at random times (default 5), each
	// retried Retries times (default 2) after RetryBackoff and then twice that (default 1 s, at most a third of a
	// probe's slot); a provider is reported down only when it missed a strict majority of its probes.
	Probes       int
	Retries      int
	RetryBackoff time.Duration
	// Seed, when not zero, makes the probe times reproducible (tests); zero draws them from crypto/rand.
	Seed uint64

	// Proofs turns the proof-of-GPU challenges on (the default); off, the auditor only checks liveness.
	Proofs bool
	// TranscriptDir keeps each proof-of-GPU challenge's transcripts, for anyone to re-check (empty: not kept;
	// their hash still goes on the ledger).
	TranscriptDir string
	// ReproveEvery: a verified provider's devices are challenged again, unannounced, with chance 1/ReproveEvery
	// each epoch (default 20); unverified ones every epoch until they pass.
	ReproveEvery int

	// StorageProofs challenges every placed Vault shard each epoch and attests which failed, and sends this
	// auditor's part of the challenge seed (storage.go; the default). StorageTimeout bounds one proof's fetch
	// (default 10 s), StorageConcurrency the fetches at once (default 16). StateDir keeps the beacon's secrets
	// across restarts (empty: in memory only, so a restarted auditor reveals nothing for an epoch).
	StorageProofs      bool
	StorageTimeout     time.Duration
	StorageConcurrency int
	StateDir           string

	mu       sync.Mutex
	attested map[uint64]Attestation
	planned  map[uint64]bool   // epochs whose probes are running or done
	pending  map[uint64][]bool // epochs probed, their Attest not yet accepted: who was up, over the epoch's set
	rng      *rand.Rand
	clk      clock
	blocks   struct{ height, timeMs uint64 } // a reference block, for the block interval
	blockMs  uint64                          // measured time between blocks (0: not yet known)
	proved   map[uint64]map[tx.Address]bool  // providers already challenged, in the current epoch
	hardware []HardwareResult
	// sessions resumes the TLS sessions of earlier challenges (a provider's five an epoch, and the epochs after):
	// a resumed handshake skips the certificate's signature and its check; the pin is checked all the same.
	sessions tls.ClientSessionCache
	store    storageState
}

// challengeSessions is how many providers' TLS sessions an auditor keeps (a few hundred bytes each).
const challengeSessions = 20_000

// Key is an auditor's key: it signs transactions and (as reqsig needs) its proof-of-GPU requests.
type Key interface {
	client.Signer
	PrivateKey() ed25519.PrivateKey
}

// Attestation is what the auditor found in one epoch.
type Attestation struct {
	Epoch     uint64       `json:"epoch"`
	Providers int          `json:"providers"`
	Up        int          `json:"up"`
	Down      []tx.Address `json:"down,omitempty"`
	TxHash    string       `json:"tx_hash"`
}

// NewAuditor returns an auditor signing with signer, which must be in the ledger's auditor set.
func NewAuditor(c *client.Client, key Key, log *slog.Logger) *Auditor {
	if log == nil {
		log = slog.Default()
	}
	return &Auditor{c: c, sender: c.NewSender(key), key: key, addr: tx.AddressOf(key.PubKey()), log: log,
		Timeout: 5 * time.Second, Concurrency: 32, Poll: 500 * time.Millisecond, Proofs: true, ReproveEvery: 20,
		Probes: DefaultProbes, Retries: DefaultRetries, RetryBackoff: DefaultRetryBackoff,
		StorageProofs: true, StorageTimeout: DefaultStorageTimeout, StorageConcurrency: DefaultStorageConcurrency,
		attested: map[uint64]Attestation{}, proved: map[uint64]map[tx.Address]bool{}, planned: map[uint64]bool{},
		pending: map[uint64][]bool{}, clk: realClock{}, sessions: tls.NewLRUClientSessionCache(challengeSessions)}
}

// ErrNotAuditor is returned by Run when the key is not in the auditor set.
var ErrNotAuditor = errors.New("audit: this key is not in the ledger's auditor set")

// Run attests every epoch until ctx ends. It also attests the epoch before the current one when that one is
// still open and it has not (an auditor started late, or restarted).
func (a *Auditor) Run(ctx context.Context) error {
	// The set is in the state from the first committed block on; before it, the answer is empty.
	for {
		st, err := a.c.Status(ctx)
		if err == nil && st.Height >= 1 {
			auds, err := a.c.Auditors(ctx)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(auds, func(x api.Auditor) bool { return x.Address == a.addr }) {
				return fmt.Errorf("%w: %s (auditors are fixed at genesis)", ErrNotAuditor, a.addr)
			}
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(a.Poll):
		}
	}
	for {
		if err := a.round(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("audit round", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(a.Poll):
		}
	}
}

// Attested returns what the auditor sent, by epoch (the latest keepResults epochs).
func (a *Auditor) Attested() []Attestation {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Attestation, 0, len(a.attested))
	for _, at := range a.attested {
		out = append(out, at)
	}
	slices.SortFunc(out, func(x, y Attestation) int { return int(x.Epoch) - int(y.Epoch) })
	return out
}

func (a *Auditor) round(ctx context.Context) error {
	cur, err := a.c.Epoch(ctx, nil)
	if err != nil {
		return err
	}
	st, err := a.c.Status(ctx)
	if err != nil {
		return err
	}
	params, err := a.c.Params(ctx)
	if err != nil {
		return err
	}
	a.observe(st)
	if a.StorageProofs { // first: the beacon goes out early in the epoch, and nothing below delays it
		a.storageRound(ctx, cur.Epoch, uint64(max(st.Height, 0)), params.EpochBlocks)
	}
	epochs := []uint64{cur.Epoch}
	if cur.Epoch > 0 {
		epochs = []uint64{cur.Epoch - 1, cur.Epoch}
	}
	for _, e := range epochs {
		a.mu.Lock()
		_, done := a.attested[e]
		up, probed := a.pending[e]
		planned := a.planned[e]
		a.mu.Unlock()
		if done || planned && !probed {
			continue
		}
		v := cur
		if e != cur.Epoch {
			if v, err = a.c.Epoch(ctx, &e); err != nil {
				return err
			}
		}
		if v.Tallied || slices.ContainsFunc(v.Attested, func(x api.Auditor) bool { return x.Address == a.addr }) {
			a.mu.Lock()
			a.attested[e] = Attestation{Epoch: e, Providers: len(v.Providers)}
			delete(a.pending, e)
			a.mu.Unlock()
			continue
		}
		if probed {
			if err := a.attest(ctx, v, up); err != nil {
				return fmt.Errorf("epoch %d: %w", e, err)
			}
			continue
		}
		// Plan the epoch's probes over what is left of it (the current epoch), or over half of what is left of
		// the current one (the one before, which an auditor started late has not probed: its Attest is due by
		// the current epoch's end).
		w, ok := a.window(uint64(st.Height), params.EpochBlocks, e, cur.Epoch)
		if !ok {
			continue // the block interval is not known yet: the next poll knows it
		}
		a.mu.Lock()
		a.planned[e] = true
		a.mu.Unlock()
		go a.probeEpoch(ctx, v, w)
	}
	a.mu.Lock()
	for e := range a.planned {
		if e+keepResults < cur.Epoch {
			delete(a.planned, e)
		}
	}
	a.mu.Unlock()
	if a.Proofs {
		a.proveEpoch(ctx, cur)
	}
	return nil
}

// observe measures the time between blocks from the chain's own block times.
func (a *Auditor) observe(st api.Status) {
	h := uint64(max(st.Height, 0))
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.blocks.height == 0 || h < a.blocks.height:
		a.blocks.height, a.blocks.timeMs = h, st.TimeMs
	case h > a.blocks.height && st.TimeMs >= a.blocks.timeMs:
		a.blockMs = max((st.TimeMs-a.blocks.timeMs)/(h-a.blocks.height), 1)
		if h-a.blocks.height >= 1000 { // keep measuring the recent pace
			a.blocks.height, a.blocks.timeMs = h, st.TimeMs
		}
	}
}

// window is how long the probes of epoch e may take from now, at height h of epoch cur; false until the block
// interval is known.
func (a *Auditor) window(h, epochBlocks, e, cur uint64) (time.Duration, bool) {
	a.mu.Lock()
	blockMs := a.blockMs
	a.mu.Unlock()
	if blockMs == 0 || epochBlocks == 0 {
		return 0, false
	}
	end := (cur + 1) * epochBlocks // the last height of the current epoch
	left := time.Duration(end-min(h, end)) * time.Duration(blockMs) * time.Millisecond
	if e != cur {
		left /= 2
	}
	return left, true
}

// probeEpoch runs the epoch's probes over the window w from now and leaves who was up for round to attest.
func (a *Auditor) probeEpoch(ctx context.Context, v api.EpochView, w time.Duration) {
	k := max(a.Probes, 1)
	backoff := retryBackoff(a.RetryBackoff, k, w)
	start := a.clk.Now()
	up := make([]bool, len(v.Providers))
	sem := make(chan struct{}, max(a.Concurrency, 1))
	var wg sync.WaitGroup
	deadline := probeDeadline(start, w)
	for i, p := range v.Providers {
		a.mu.Lock()
		if a.rng == nil {
			seed := a.Seed
			for seed == 0 {
				var b [8]byte
				_, _ = crand.Read(b[:])
				seed = binary.LittleEndian.Uint64(b[:])
			}
			a.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		}
		offsets := probeOffsets(a.rng, k, w)
		a.mu.Unlock()
		wg.Add(1)
		go func() { // one provider: its probes at their times, each in its own goroutine
			defer wg.Done()
			var answered atomic.Int64
			var last atomic.Value
			var view atomic.Pointer[api.ProviderView] // its record, read once for the epoch's probes
			var probes sync.WaitGroup
			for _, off := range offsets {
				if a.clk.Sleep(ctx, start.Add(off).Sub(a.clk.Now())) != nil {
					break
				}
				probes.Add(1)
				go func() {
					defer probes.Done()
					if probeOnce(ctx, a.clk, deadline, a.Retries, backoff, a.Timeout, func(ctx context.Context, limit time.Duration) error {
						sem <- struct{}{}
						defer func() { <-sem }()
						err := a.probeCached(ctx, p, &view, limit)
						if err != nil {
							last.Store(err.Error())
						}
						return err
					}) {
						answered.Add(1)
					}
				}()
			}
			probes.Wait()
			if ctx.Err() != nil {
				return // the auditor is stopping
			}
			n := int(answered.Load())
			up[i] = upByProbes(n, k)
			if n < k {
				a.log.Info("provider missed liveness probes", "provider", p, "epoch", v.Epoch, "answered", n,
					"probes", k, "up", up[i], "err", last.Load())
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	a.mu.Lock()
	a.pending[v.Epoch] = up
	a.mu.Unlock()
}

// attest sends the epoch's bitmap (up: who was up, over the epoch's audit set).
func (a *Auditor) attest(ctx context.Context, v api.EpochView, up []bool) error {
	bitmap := make([]byte, (len(v.Providers)+7)/8)
	at := Attestation{Epoch: v.Epoch, Providers: len(v.Providers)}
	for i, ok := range up {
		if ok {
			bitmap[i/8] |= 1 << (i % 8)
			at.Up++
		} else {
			at.Down = append(at.Down, v.Providers[i])
		}
	}
	res, err := a.sender.Send(ctx, &tx.Attest{Epoch: v.Epoch, Up: bitmap})
	if err != nil && !client.IsCode(err, tx.CodeDuplicateAttest) {
		if client.IsCode(err, tx.CodeBadEpoch) { // too late: the epoch closed while it was probed
			a.mu.Lock()
			a.attested[v.Epoch] = at
			delete(a.pending, v.Epoch)
			a.mu.Unlock()
		}
		return err
	}
	if res != nil {
		at.TxHash = res.Hash
	}
	a.mu.Lock()
	a.attested[v.Epoch] = at
	delete(a.pending, v.Epoch)
	for e := range a.attested {
		if e+keepResults < v.Epoch {
			delete(a.attested, e)
		}
	}
	a.mu.Unlock()
	a.log.Info("attested", "epoch", v.Epoch, "providers", at.Providers, "up", at.Up, "down", len(at.Down))
	return nil
}

// ProbeAll challenges every provider, Concurrency at a time, and reports who answered correctly.
func (a *Auditor) ProbeAll(ctx context.Context, providers []tx.Address) []bool {
	up := make([]bool, len(providers))
	sem := make(chan struct{}, max(a.Concurrency, 1))
	var wg sync.WaitGroup
	for i, p := range providers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := a.Probe(ctx, p)
			up[i] = err == nil
			if err != nil {
				a.log.Info("provider did not answer its challenge", "provider", p, "err", err)
			}
		}()
	}
	wg.Wait()
	return up
}

// Probe challenges one provider: nil when it answered with a valid signature by its registered key within
// Timeout.
func (a *Auditor) Probe(ctx context.Context, addr tx.Address) error {
	return a.probe(ctx, addr, a.Timeout)
}

// probe is one challenge that must be answered within timeout.
func (a *Auditor) probe(ctx context.Context, addr tx.Address, timeout time.Duration) error {
	p, err := a.c.Provider(ctx, addr)
	if err != nil {
		return err
	}
	return a.challenge(ctx, &p, timeout)
}

// probeCached is probe with the provider's record read once for all its probes of an epoch (the audit set is
// fixed for the epoch), and read again after a failed attempt: a provider that moved to another host or
// certificate is challenged where it now is.
func (a *Auditor) probeCached(ctx context.Context, addr tx.Address, view *atomic.Pointer[api.ProviderView], timeout time.Duration) error {
	p := view.Load()
	if p == nil {
		v, err := a.c.Provider(ctx, addr)
		if err != nil {
			return err
		}
		p = &v
		view.Store(p)
	}
	err := a.challenge(ctx, p, timeout)
	if err != nil {
		view.Store(nil)
	}
	return err
}

// challenge sends provider p a fresh nonce and checks its answer within timeout.
func (a *Auditor) challenge(ctx context.Context, p *api.ProviderView, timeout time.Duration) error {
	nonce := make([]byte, 32)
	if _, err := crand.Read(nonce); err != nil {
		return err
	}
	body, _ := json.Marshal(liveness.Request{Nonce: hex.EncodeToString(nonce)})
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Info.HostURI+"/challenge", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	hc := certs.PinnedHTTPClient(p.Info.CertFingerprint, timeout)
	if t, ok := hc.Transport.(*http.Transport); ok && a.sessions != nil {
		t.TLSClientConfig.ClientSessionCache = a.sessions
	}
	defer hc.CloseIdleConnections()
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("challenge: HTTP %d", res.StatusCode)
	}
	var ans liveness.Response
	if err := json.NewDecoder(io.LimitReader(res.Body, 4096)).Decode(&ans); err != nil {
		return fmt.Errorf("challenge answer: %w", err)
	}
	if !liveness.Verify(p.PubKey, nonce, ans.Signature) {
		return errors.New("challenge answer not signed by the provider's registered key")
	}
	return nil
}
