package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/liveness"
)

// Auditor challenges every provider of each epoch's audit set and attests who answered (DESIGN §5): one Attest
// per epoch, a bitmap over the set. A provider answers when, within Timeout, its /challenge endpoint (reached
// at the host URI it registered, with TLS pinned to the certificate fingerprint it registered) returns the
// auditor's fresh nonce signed with the provider's registered key. Anything else — no answer, a wrong key, a
// wrong certificate — counts as down.
type Auditor struct {
	c      *client.Client
	sender *client.Sender
	key    Key
	addr   tx.Address
	log    *slog.Logger

	Timeout     time.Duration // per challenge (default 5 s)
	Concurrency int           // challenges in flight (default 32)
	Poll        time.Duration // how often the epoch is looked at (default 500 ms)

	// Proofs turns the proof-of-GPU challenges on (the default); off, the auditor only checks liveness.
	Proofs bool
	// TranscriptDir keeps each proof-of-GPU challenge's transcripts, for anyone to re-check (empty: not kept;
	// their hash still goes on the ledger).
	TranscriptDir string
	// ReproveEvery: a verified provider's devices are challenged again, unannounced, with chance 1/ReproveEvery
	// each epoch (default 20); unverified ones every epoch until they pass.
	ReproveEvery int

	mu       sync.Mutex
	attested map[uint64]Attestation
	proved   map[uint64]map[tx.Address]bool // providers already challenged, in the current epoch
	hardware []HardwareResult
}

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
		attested: map[uint64]Attestation{}, proved: map[uint64]map[tx.Address]bool{}}
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
			if !slices.ContainsFunc(auds, func(x ledger.Auditor) bool { return x.Address == a.addr }) {
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
	epochs := []uint64{cur.Epoch}
	if cur.Epoch > 0 {
		epochs = []uint64{cur.Epoch - 1, cur.Epoch}
	}
	for _, e := range epochs {
		a.mu.Lock()
		_, done := a.attested[e]
		a.mu.Unlock()
		if done {
			continue
		}
		v := cur
		if e != cur.Epoch {
			if v, err = a.c.Epoch(ctx, &e); err != nil {
				return err
			}
		}
		if v.Tallied || slices.ContainsFunc(v.Attested, func(x ledger.Auditor) bool { return x.Address == a.addr }) {
			a.mu.Lock()
			a.attested[e] = Attestation{Epoch: e, Providers: len(v.Providers)}
			a.mu.Unlock()
			continue
		}
		if err := a.attest(ctx, v); err != nil {
			return fmt.Errorf("epoch %d: %w", e, err)
		}
	}
	if a.Proofs {
		a.proveEpoch(ctx, cur)
	}
	return nil
}

// attest challenges the epoch's providers and sends the bitmap.
func (a *Auditor) attest(ctx context.Context, v ledger.EpochView) error {
	up := a.ProbeAll(ctx, v.Providers)
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
		return err
	}
	if res != nil {
		at.TxHash = res.Hash
	}
	a.mu.Lock()
	a.attested[v.Epoch] = at
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

// Probe challenges one provider: nil when it answered with a valid signature by its registered key.
func (a *Auditor) Probe(ctx context.Context, addr tx.Address) error {
	p, err := a.c.Provider(ctx, addr)
	if err != nil {
		return err
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	body, _ := json.Marshal(liveness.Request{Nonce: hex.EncodeToString(nonce)})
	ctx, cancel := context.WithTimeout(ctx, a.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Info.HostURI+"/challenge", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	hc := certs.PinnedHTTPClient(p.Info.CertFingerprint, a.Timeout)
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
