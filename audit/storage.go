package audit

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/termsafe"
	"github.com/sparenet/spare/vault"
)

// Storage proofs (docs/vault.md, "Storage proofs: the auditor's side"). Epoch e's seed is fixed at its first
// block, and with it the group of every shard that e challenges (vault_challenges: those their providers
// declared held before e started). From then until the end of epoch e+1 the auditor fetches each shard's proof
// from its provider — GET {host}/vault/shards/{root}/proof?group=N, over TLS pinned to the certificate the
// provider registered — and checks it against the shard's root alone (vault.VerifyProof; the group is
// recomputed from the seed). A shard whose proof failed is checked once more a third of the window later (a
// provider restarting, a dropped connection), and named failed only when it failed both times: in one
// AttestStorage, or several when more than tx.MaxFailedShards failed (full lists, each after the one before).
//
// Bounded. A provider is hostile: each fetch has StorageTimeout in all (connection, headers, body), its answer
// is read up to the exact size of the proof asked for and no further, redirects are not followed (a provider
// must prove from its own disk, on its own pinned host), and anything but HTTP 200 with the exact proof fails.
// StorageConcurrency fetches run at once, at most storagePerProvider of them on one provider and their
// connections to at most StorageConcurrency providers, so a provider that stalls holds a few slots for a
// timeout; after storageStrikes fetches in a row that it did not answer at all, the rest of its shards fail in
// that pass without being asked. The epoch's checks end three quarters into the window, leaving the last
// quarter for the AttestStorage to land; a shard not checked by then (an auditor too slow for the shards on
// the ledger: it warns) is not named.
//
// The beacon. Early in every epoch the auditor sends AuditorBeacon: the commitment to a fresh random secret
// and the secret it committed in the epoch before. The secret is written to StateDir before its commitment is
// sent, so a restarted auditor still reveals it; when its landing was not seen (a crash, a lost answer), the
// ledger's refusal of a wrong reveal tells which secret, if any, is due (the candidates are tried in turn, zero
// last).

// Defaults of the storage proofs (Auditor fields of the same names).
const (
	DefaultStorageTimeout     = 10 * time.Second
	DefaultStorageConcurrency = 16
)

const (
	// storagePerProvider bounds one provider's fetches in flight: a provider that stalls holds at most this many
	// of the StorageConcurrency slots.
	storagePerProvider = 4
	// storageStrikes: a provider that failed this many fetches in a row without answering (no connection, no TLS
	// with its pinned certificate, nothing in time) is not asked for the rest of its shards in the pass.
	storageStrikes = 3
	// storageRetry is how long after a failed query (the chain has no storage proofs, the node is away) the
	// round is tried again.
	storageRetry = 5 * time.Second
	// beaconKeep bounds the beacon secrets kept (the newest): only the last few epochs' can be due.
	beaconKeep = 8
	// maxProofErrBody bounds what of a provider's refusal is read and logged.
	maxProofErrBody = 256
)

// StorageResult is what the auditor found of an epoch's storage proofs.
type StorageResult struct {
	Epoch     uint64 `json:"epoch"`
	Shards    int    `json:"shards"` // challenged
	Providers int    `json:"providers"`
	// Failed is the first tx.MaxFailedShards, in (object, ordinal) order, of the FailedTotal shards that failed
	// (all named, in Txs AttestStorage: one a full list).
	Failed      []tx.ShardRef `json:"failed,omitempty"`
	FailedTotal int           `json:"failed_total"`
	Unchecked   int           `json:"unchecked,omitempty"` // not checked within the window (not named)
	Took        time.Duration `json:"took"`
	Txs         int           `json:"txs"`               // AttestStorage that landed
	TxHash      string        `json:"tx_hash,omitempty"` // the last one's
	Err         string        `json:"err,omitempty"`     // an AttestStorage was not accepted
}

// BeaconResult is one beacon the ledger took.
type BeaconResult struct {
	Epoch  uint64  `json:"epoch"` // the epoch it landed in
	Commit tx.Hash `json:"commit"`
	Reveal tx.Hash `json:"reveal"` // zero: none was due
	Height int64   `json:"height"`
	TxHash string  `json:"tx_hash"`
}

// storageState is the auditor's storage-proof and beacon bookkeeping (guarded by Auditor.mu).
type storageState struct {
	planned  map[uint64]bool // epochs whose round is running or over
	retryAt  time.Time       // no new round before (after a failed query)
	warned   bool            // the chain's lack of storage proofs was said once
	results  []StorageResult
	beaconOn map[uint64]bool // epochs whose beacon landed or was given up
	beaconGo bool            // a beacon is being sent
	recs     []beaconRecord  // the secrets, as in StateDir
	loaded   bool
	beacons  []BeaconResult

	// The ledger, replaced by tests: sending a message, asking whether it would be accepted, paging challenges.
	send       func(context.Context, tx.Msg) (*client.Result, error)
	check      func(context.Context, tx.Msg) error
	challenges func(ctx context.Context, epoch uint64, each func([]api.VaultChallenge) error) error
}

// Storage returns the storage-proof rounds this auditor finished, the latest keepResults.
func (a *Auditor) Storage() []StorageResult {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.store.results)
}

// Beacons returns the beacons this auditor landed, the latest keepResults.
func (a *Auditor) Beacons() []BeaconResult {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.store.beacons)
}

func (a *Auditor) sendMsg(ctx context.Context, m tx.Msg) (*client.Result, error) {
	if a.store.send != nil {
		return a.store.send(ctx, m)
	}
	return a.sender.Send(ctx, m)
}

func (a *Auditor) checkMsg(ctx context.Context, m tx.Msg) error {
	if a.store.check != nil {
		return a.store.check(ctx, m)
	}
	return a.sender.Check(ctx, m)
}

func (a *Auditor) eachChallenge(ctx context.Context, epoch uint64, each func([]api.VaultChallenge) error) error {
	if a.store.challenges != nil {
		return a.store.challenges(ctx, epoch, each)
	}
	return a.c.EachVaultChallenge(ctx, api.VaultChallengesRequest{Epoch: epoch}, each)
}

// epochOf is the epoch of height h (epoch e runs from height e·epochBlocks+1 to (e+1)·epochBlocks).
func epochOf(h int64, epochBlocks uint64) uint64 {
	if h < 1 || epochBlocks == 0 {
		return 0
	}
	return uint64(h-1) / epochBlocks
}

// storageRound starts, at height h of epoch cur, the beacon of cur and the storage round of every epoch that
// can still be attested (cur−1 and cur) and has none running; it waits for neither.
func (a *Auditor) storageRound(ctx context.Context, cur, h, epochBlocks uint64) {
	if epochBlocks == 0 {
		return
	}
	a.startBeacon(ctx, cur, epochBlocks)
	a.mu.Lock()
	wait := a.clk.Now().Before(a.store.retryAt)
	blockMs := a.blockMs
	for e := range a.store.planned {
		if e+keepResults < cur {
			delete(a.store.planned, e)
		}
	}
	a.mu.Unlock()
	if wait || blockMs == 0 {
		return // the block interval is not known yet: the next poll knows it
	}
	epochs := []uint64{cur}
	if cur > 0 {
		epochs = []uint64{cur - 1, cur}
	}
	epochMs := time.Duration(epochBlocks*blockMs) * time.Millisecond
	for _, e := range epochs {
		a.mu.Lock()
		busy := a.store.planned[e]
		a.mu.Unlock()
		if busy {
			continue
		}
		// The window: until the last block of e+1, when the ledger tallies e.
		end := (e + 2) * epochBlocks
		w := time.Duration(end-min(h, end)) * time.Duration(blockMs) * time.Millisecond
		ve, start, err := a.storageStart(ctx, e)
		if err != nil {
			unsupported := errors.Is(err, errNoStorageProofs)
			a.mu.Lock()
			a.store.retryAt = a.clk.Now().Add(storageRetry)
			warned := a.store.warned && unsupported
			a.store.warned = a.store.warned || unsupported
			a.mu.Unlock()
			if !warned && ctx.Err() == nil {
				a.log.Warn("storage proofs", "epoch", e, "err", err)
			}
			return
		}
		if !start {
			continue
		}
		a.mu.Lock()
		if a.store.planned == nil {
			a.store.planned = map[uint64]bool{}
		}
		a.store.planned[e] = true
		a.mu.Unlock()
		if w < epochMs/4 {
			// Started too late to check the shards (a restart at the end of e+1): abstain rather than attest
			// shards unchecked.
			a.log.Info("storage proofs: too late to check the epoch's shards, not attesting it", "epoch", e, "left", w)
			continue
		}
		go a.storageEpoch(ctx, ve, w)
	}
}

// errNoStorageProofs marks a chain whose ledger predates storage proofs.
var errNoStorageProofs = errors.New("the ledger has no storage proofs")

// storageStart says whether epoch e's round should start now: its seed fixed, not tallied, and not attested
// by this auditor (before a restart, say); false and nil when not yet or never.
func (a *Auditor) storageStart(ctx context.Context, e uint64) (api.VaultEpoch, bool, error) {
	ve, err := a.c.VaultEpoch(ctx, &e)
	switch {
	case errors.Is(err, client.ErrNotFound):
		return ve, false, nil // its seed is not fixed yet
	case err != nil && strings.Contains(err.Error(), "unknown query"):
		return ve, false, fmt.Errorf("%w: %v", errNoStorageProofs, err)
	case err != nil:
		return ve, false, err
	case ve.Tallied:
		a.markPlanned(e)
		return ve, false, nil
	}
	err = a.checkMsg(ctx, &tx.AttestStorage{Epoch: e})
	var te *tx.Error
	switch {
	case err == nil:
		return ve, true, nil
	case errors.As(err, &te) && (te.Code == tx.CodeDuplicateAttest || te.Code == tx.CodeBadEpoch):
		a.markPlanned(e) // attested already, or no longer open
		return ve, false, nil
	case errors.As(err, &te) && (te.Code == tx.CodeUnknownMsgType || te.Code == tx.CodeDecode):
		return ve, false, fmt.Errorf("%w: %v", errNoStorageProofs, err)
	default:
		return ve, false, fmt.Errorf("AttestStorage for epoch %d would be refused: %w", e, err)
	}
}

func (a *Auditor) markPlanned(e uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.store.planned == nil {
		a.store.planned = map[uint64]bool{}
	}
	a.store.planned[e] = true
}

// shardCheck is one challenged shard and, after a pass, its verdict.
type shardCheck struct {
	ref   tx.ShardRef
	root  tx.Hash
	size  uint64
	group uint64
	done  bool  // a verdict was reached
	err   error // the verdict: nil passed
}

// providerShards is one provider's challenged shards.
type providerShards struct {
	addr   tx.Address
	host   string
	fp     tx.Hash
	shards []shardCheck
}

// gather pages through epoch ve's challenges, grouped by provider in the order they first appear.
func (a *Auditor) gather(ctx context.Context, ve api.VaultEpoch) ([]*providerShards, int, error) {
	byAddr := map[tx.Address]*providerShards{}
	var order []*providerShards
	n, mismatched := 0, 0
	err := a.eachChallenge(ctx, ve.Epoch, func(page []api.VaultChallenge) error {
		for _, ch := range page {
			// The group is recomputed from the seed, so the checks do not rest on the node's arithmetic.
			g := api.ChallengeGroup(ve.Seed, ch.Root, ch.Object, ch.Ordinal, ch.ShardSize)
			if g != ch.Group {
				mismatched++
			}
			p := byAddr[ch.Provider]
			if p == nil {
				p = &providerShards{addr: ch.Provider, host: ch.HostURI, fp: ch.Fingerprint}
				byAddr[ch.Provider] = p
				order = append(order, p)
			}
			p.shards = append(p.shards, shardCheck{ref: tx.ShardRef{Object: ch.Object, Ordinal: ch.Ordinal},
				root: ch.Root, size: ch.ShardSize, group: g})
			n++
		}
		return nil
	})
	if mismatched > 0 {
		a.log.Warn("storage proofs: the node's challenge groups differ from the seed's", "epoch", ve.Epoch, "shards", mismatched)
	}
	return order, n, err
}

// storageEpoch runs epoch ve's storage proofs over the window w from now and sends its AttestStorage.
func (a *Auditor) storageEpoch(ctx context.Context, ve api.VaultEpoch, w time.Duration) {
	start := a.clk.Now()
	res := StorageResult{Epoch: ve.Epoch}
	checkCtx, cancel := context.WithTimeout(ctx, w*3/4)
	defer cancel()
	provs, n, err := a.gather(checkCtx, ve)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("storage proofs: reading the epoch's challenges", "epoch", ve.Epoch, "err", err)
		}
		a.mu.Lock()
		delete(a.store.planned, ve.Epoch) // a later poll tries again
		a.store.retryAt = a.clk.Now().Add(storageRetry)
		a.mu.Unlock()
		return
	}
	res.Shards, res.Providers = n, len(provs)
	if n > 0 {
		a.checkShards(checkCtx, provs)
		// The shards that failed, checked once more a third of the window in.
		if a.clk.Sleep(checkCtx, start.Add(w/3).Sub(a.clk.Now())) == nil {
			a.checkShards(checkCtx, provs)
		}
		if ctx.Err() != nil {
			return // the auditor is stopping
		}
		var failed []tx.ShardRef
		for _, p := range provs {
			bad, first := 0, error(nil)
			for _, s := range p.shards {
				switch {
				case !s.done:
					res.Unchecked++
				case s.err != nil:
					failed = append(failed, s.ref)
					bad++
					first = cmp.Or(first, s.err)
				}
			}
			if bad > 0 {
				a.log.Info("storage proofs failed", "epoch", ve.Epoch, "provider", p.addr, "failed", bad, "shards", len(p.shards),
					"err", termsafe.String(first.Error()))
			}
		}
		all := failedList(failed)
		res.FailedTotal = len(all)
		res.Failed = slices.Clone(all[:min(len(all), tx.MaxFailedShards)])
		if res.Unchecked > 0 {
			a.log.Warn("storage proofs: shards not checked within the window pass with this auditor: raise the concurrency",
				"epoch", ve.Epoch, "unchecked", res.Unchecked, "shards", n)
		}
		// Sent until it lands or the window ends (the ledger tallies e at the end of e+1).
		sendCtx, cancel := context.WithTimeout(ctx, max(w-a.clk.Now().Sub(start), time.Second))
		defer cancel()
		res.Txs, res.TxHash, err = a.attestStorage(sendCtx, ve.Epoch, all)
		if err != nil {
			res.Err = err.Error()
			if ctx.Err() == nil {
				a.log.Warn("AttestStorage", "epoch", ve.Epoch, "sent", res.Txs, "err", err)
			}
		} else {
			a.log.Info("attested storage", "epoch", ve.Epoch, "shards", n, "providers", len(provs), "failed", res.FailedTotal,
				"unchecked", res.Unchecked, "txs", res.Txs)
		}
	}
	res.Took = a.clk.Now().Sub(start)
	a.mu.Lock()
	a.store.results = append(a.store.results, res)
	if len(a.store.results) > keepResults {
		a.store.results = slices.Delete(a.store.results, 0, len(a.store.results)-keepResults)
	}
	a.mu.Unlock()
}

// attestStorage sends the epoch's AttestStorage — several when more than tx.MaxFailedShards failed: each names
// a full list but the last, each after the one before, as the ledger takes them — each until it lands, the
// ledger refuses it, or ctx ends; a duplicate (sent before, its answer lost) counts as landed. It returns how
// many landed and the last one's hash.
func (a *Auditor) attestStorage(ctx context.Context, epoch uint64, failed []tx.ShardRef) (int, string, error) {
	sent, hash := 0, ""
	for _, chunk := range failedChunks(failed) {
		for {
			r, err := a.sendMsg(ctx, &tx.AttestStorage{Epoch: epoch, Failed: chunk})
			var te *tx.Error
			if err == nil || errors.As(err, &te) && te.Code == tx.CodeDuplicateAttest {
				sent++
				if r != nil {
					hash = r.Hash
				}
				break
			}
			if errors.As(err, &te) {
				return sent, hash, err
			}
			if a.clk.Sleep(ctx, a.Poll) != nil {
				return sent, hash, err
			}
		}
	}
	return sent, hash, nil
}

// failedList is the shards that failed in (object, ordinal) order, each once: what the AttestStorage name.
func failedList(refs []tx.ShardRef) []tx.ShardRef {
	out := slices.Clone(refs)
	slices.SortFunc(out, func(x, y tx.ShardRef) int {
		if c := cmp.Compare(x.Object, y.Object); c != 0 {
			return c
		}
		return cmp.Compare(x.Ordinal, y.Ordinal)
	})
	return slices.Clip(slices.Compact(out))
}

// failedChunks cuts an ordered list of failed shards into the Failed of successive AttestStorage: full lists of
// tx.MaxFailedShards and a last shorter one (empty when none failed, or a multiple of the maximum did).
func failedChunks(sorted []tx.ShardRef) [][]tx.ShardRef {
	var out [][]tx.ShardRef
	for len(sorted) >= tx.MaxFailedShards {
		out = append(out, sorted[:tx.MaxFailedShards:tx.MaxFailedShards])
		sorted = sorted[tx.MaxFailedShards:]
	}
	if len(sorted) > 0 || len(out) == 0 {
		out = append(out, sorted)
	}
	return out
}

// provRun is a provider's part of one pass.
type provRun struct {
	*providerShards
	todo     []int // indexes of its shards still to fetch
	inflight int
	strikes  int // fetches in a row it did not answer
	hc       *http.Client
}

// scheduler hands out a pass's fetches: round robin over at most maxActive providers at once, at most
// storagePerProvider of one provider's in flight (one while it has left a fetch unanswered).
type scheduler struct {
	mu        sync.Mutex
	cond      *sync.Cond
	waiting   []*provRun
	active    []*provRun
	rr        int
	maxActive int
	stopped   bool
	client    func(fp tx.Hash) *http.Client
}

// take returns the next fetch, or false when none is left or the pass was stopped.
func (s *scheduler) take() (*provRun, int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.stopped {
			return nil, 0, false
		}
		for len(s.active) < s.maxActive && len(s.waiting) > 0 {
			s.active = append(s.active, s.waiting[0])
			s.waiting = s.waiting[1:]
		}
		if len(s.active) == 0 {
			return nil, 0, false
		}
		for k := range len(s.active) {
			j := (s.rr + k) % len(s.active)
			p := s.active[j]
			limit := storagePerProvider
			if p.strikes > 0 {
				limit = 1 // a provider that left a fetch unanswered gets one at a time until it answers
			}
			if len(p.todo) > 0 && p.inflight < limit {
				i := p.todo[0]
				p.todo = p.todo[1:]
				p.inflight++
				if p.hc == nil {
					p.hc = s.client(p.fp)
				}
				s.rr = j + 1
				return p, i, true
			}
		}
		s.cond.Wait()
	}
}

// finish records fetch i of p: err is its verdict; answered says whether the provider answered at all. A
// fetch cut by the pass's end is no verdict (the shard keeps the one it had).
func (s *scheduler) finish(p *provRun, i int, err error, answered, cut bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.cond.Broadcast()
	p.inflight--
	if !cut {
		p.shards[i].done, p.shards[i].err = true, err
		if answered {
			p.strikes = 0
		} else if p.strikes++; p.strikes >= storageStrikes && len(p.todo) > 0 {
			// Not answering: the rest of its shards fail in this pass without being asked.
			dead := fmt.Errorf("not asked after %d fetches in a row went unanswered: %w", storageStrikes, err)
			for _, j := range p.todo {
				p.shards[j].done, p.shards[j].err = true, dead
			}
			p.todo = nil
		}
	}
	if len(p.todo) == 0 && p.inflight == 0 {
		if p.hc != nil {
			p.hc.CloseIdleConnections()
		}
		if j := slices.Index(s.active, p); j >= 0 {
			s.active = slices.Delete(s.active, j, j+1)
			if s.rr > j {
				s.rr--
			}
		}
	}
}

// checkShards runs one pass over the shards with no verdict yet or a failed one, until done or ctx ends.
func (a *Auditor) checkShards(ctx context.Context, provs []*providerShards) {
	s := &scheduler{maxActive: max(a.StorageConcurrency, 1), client: a.proofClient}
	s.cond = sync.NewCond(&s.mu)
	total := 0
	for _, p := range provs {
		r := &provRun{providerShards: p}
		for i, sh := range p.shards {
			if !sh.done || sh.err != nil {
				r.todo = append(r.todo, i)
			}
		}
		if len(r.todo) > 0 {
			s.waiting = append(s.waiting, r)
			total += len(r.todo)
		}
	}
	if total == 0 {
		return
	}
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.stopped = true
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	var wg sync.WaitGroup
	for range min(max(a.StorageConcurrency, 1), total) {
		wg.Go(func() {
			for {
				p, i, ok := s.take()
				if !ok {
					return
				}
				err, answered := a.proveShard(ctx, p.hc, p.host, &p.shards[i])
				s.finish(p, i, err, answered, err != nil && ctx.Err() != nil)
			}
		})
	}
	wg.Wait()
	s.mu.Lock()
	for _, p := range append(s.active, s.waiting...) { // stopped early
		if p.hc != nil {
			p.hc.CloseIdleConnections()
		}
	}
	s.mu.Unlock()
}

// proofClient is the HTTP client of one provider's proofs: TLS pinned to fp, resuming the auditor's sessions,
// no redirects, bounded headers.
func (a *Auditor) proofClient(fp tx.Hash) *http.Client {
	hc := certs.PinnedHTTPClient(fp, 0) // each fetch's context bounds it
	if t, ok := hc.Transport.(*http.Transport); ok {
		t.TLSHandshakeTimeout, t.ResponseHeaderTimeout = a.storageTimeout(), a.storageTimeout()
		t.MaxResponseHeaderBytes = 16 << 10
		t.MaxConnsPerHost = storagePerProvider
		if a.sessions != nil {
			t.TLSClientConfig.ClientSessionCache = a.sessions
		}
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return hc
}

func (a *Auditor) storageTimeout() time.Duration {
	if a.StorageTimeout <= 0 {
		return DefaultStorageTimeout
	}
	return a.StorageTimeout
}

// proveShard fetches the proof of shard s from the provider at host and checks it: nil when it proves the
// challenged group of the shard. answered is false when the provider did not answer at all (no connection, no
// TLS with its pinned certificate, no answer or not all of it within the timeout).
func (a *Auditor) proveShard(ctx context.Context, hc *http.Client, host string, s *shardCheck) (err error, answered bool) {
	if s.size == 0 || s.size%vault.GroupSize != 0 || s.size > vault.MaxShardSize || s.group >= s.size/vault.GroupSize {
		return fmt.Errorf("group %d of a %d-byte shard cannot be challenged", s.group, s.size), true
	}
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("host %q is not an https address", termsafe.String(host)), true
	}
	u = u.JoinPath("vault", "shards", hex.EncodeToString(s.root[:]), "proof")
	u.RawQuery = url.Values{"group": {strconv.FormatUint(s.group, 10)}}.Encode()
	want := vault.SliceSize(s.size, s.group*vault.GroupSize, vault.GroupSize)
	ctx, cancel := context.WithTimeout(ctx, a.storageTimeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err, true
	}
	res, err := hc.Do(req)
	if err != nil {
		return err, false
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, maxProofErrBody))
		msg := strings.TrimSpace(string(b))
		if !utf8.ValidString(msg) {
			msg = fmt.Sprintf("(%d bytes, not text)", len(b))
		}
		return fmt.Errorf("HTTP %d: %s", res.StatusCode, termsafe.String(msg)), true
	}
	if res.ContentLength > int64(want) {
		return fmt.Errorf("answer of %d bytes: a proof of group %d of a %d-byte shard has %d", res.ContentLength, s.group, s.size, want), true
	}
	buf := make([]byte, want+1) // at most vault.MaxProofBytes+1
	n, err := io.ReadFull(io.LimitReader(res.Body, int64(want)+1), buf)
	switch {
	case n > int(want):
		return fmt.Errorf("answer longer than the %d bytes of a proof of group %d", want, s.group), true
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF):
		return fmt.Errorf("reading the proof after %d bytes: %w", n, err), false // cut off, or trickling past the timeout
	}
	if _, err := vault.VerifyProof(s.root, s.size, s.group, buf[:n]); err != nil {
		return err, true
	}
	return nil, true
}

// Beacon.

// beaconRecord is a secret the auditor committed to (StateDir/beacon-ADDRESS.json).
type beaconRecord struct {
	Secret tx.Hash `json:"secret"`
	Sent   uint64  `json:"sent_epoch"`              // the epoch it was sent in
	Landed int64   `json:"landed_height,omitempty"` // 0: not seen in a block
}

func (a *Auditor) beaconFile() string {
	if a.StateDir == "" {
		return ""
	}
	return filepath.Join(a.StateDir, "beacon-"+a.addr.String()+".json")
}

// beaconRecords are the kept secrets, read from StateDir the first time (caller holds a.mu).
func (a *Auditor) beaconRecords() ([]beaconRecord, error) {
	if a.store.loaded {
		return slices.Clone(a.store.recs), nil
	}
	if f := a.beaconFile(); f != "" {
		b, err := os.ReadFile(f)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, err
		default:
			if err := json.Unmarshal(b, &a.store.recs); err != nil {
				return nil, fmt.Errorf("beacon secrets %s: %w (remove the file: the next beacon reveals nothing)", f, err)
			}
		}
	}
	a.store.loaded = true
	return slices.Clone(a.store.recs), nil
}

// saveBeacons keeps recs, on disk (synced) when there is a StateDir (caller holds a.mu).
func (a *Auditor) saveBeacons(recs []beaconRecord) error {
	if len(recs) > beaconKeep {
		recs = recs[len(recs)-beaconKeep:]
	}
	if f := a.beaconFile(); f != "" {
		b, _ := json.MarshalIndent(recs, "", "  ")
		if err := writeFileSync(f, b); err != nil {
			return err
		}
	}
	a.store.recs = slices.Clone(recs)
	return nil
}

// writeFileSync replaces name with b, synced before it is renamed into place.
func writeFileSync(name string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(name), ".beacon-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(name)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// startBeacon sends the beacon of epoch cur, once, unless one is being sent.
func (a *Auditor) startBeacon(ctx context.Context, cur, epochBlocks uint64) {
	a.mu.Lock()
	if a.store.beaconGo || a.store.beaconOn[cur] {
		a.mu.Unlock()
		return
	}
	a.store.beaconGo = true
	a.mu.Unlock()
	go func() {
		err := a.beacon(ctx, cur, epochBlocks)
		a.mu.Lock()
		a.store.beaconGo = false
		a.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			a.log.Warn("beacon", "epoch", cur, "err", err)
		}
	}()
}

// beacon lands this auditor's AuditorBeacon in epoch cur: a fresh secret's commitment, and the secret whose
// commitment landed in cur−1 (zero when none did). The new secret is on disk before its commitment is sent.
// When a beacon's landing was not seen, the candidates are tried in turn, newest first, then zero: the ledger
// refuses every reveal but the one due.
func (a *Auditor) beacon(ctx context.Context, cur, epochBlocks uint64) error {
	a.mu.Lock()
	recs, err := a.beaconRecords()
	if err != nil {
		a.mu.Unlock()
		return err
	}
	var cands []tx.Hash
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		switch {
		case r.Landed > 0 && epochOf(r.Landed, epochBlocks) == cur:
			a.markBeacon(cur)
			a.mu.Unlock()
			return nil // landed already (before a restart)
		case r.Landed > 0 && epochOf(r.Landed, epochBlocks)+1 == cur:
			cands = append([]tx.Hash{r.Secret}, cands...) // the one due: first
		case r.Landed == 0 && r.Sent+2 >= cur && r.Sent <= cur:
			cands = append(cands, r.Secret) // may have landed in cur−1
		}
	}
	cands = append(cands, tx.Hash{})
	var secret tx.Hash
	if _, err := crand.Read(secret[:]); err != nil {
		a.mu.Unlock()
		return err
	}
	// Keep the secrets of the last few epochs; then the new one, on disk before its commitment goes out.
	recs = slices.DeleteFunc(recs, func(r beaconRecord) bool { return r.Sent+3 < cur || r.Sent > cur })
	recs = append(recs, beaconRecord{Secret: secret, Sent: cur})
	if err := a.saveBeacons(recs); err != nil {
		a.mu.Unlock()
		return fmt.Errorf("keeping the beacon secret: %w", err)
	}
	a.mu.Unlock()

	commit := tx.BeaconCommit(secret)
	var last error
	for _, reveal := range cands {
		res, err := a.sendMsg(ctx, &tx.AuditorBeacon{Commit: commit, Reveal: reveal})
		var te *tx.Error
		if err != nil && !errors.As(err, &te) {
			return err // whether it landed is not known: the record stays, a later beacon finds out
		}
		if err != nil {
			if te.Code == tx.CodeUnknownMsgType || te.Code == tx.CodeDecode || te.Code == tx.CodeNotAuditor {
				a.dropBeacon(secret, cur)
				return fmt.Errorf("%w: %v", errNoStorageProofs, err)
			}
			last = err
			continue // not this reveal
		}
		landed := epochOf(res.Height, epochBlocks)
		a.mu.Lock()
		recs, _ := a.beaconRecords()
		for i := range recs {
			if recs[i].Secret == secret {
				recs[i].Landed = res.Height
			}
		}
		err = a.saveBeacons(recs)
		a.markBeacon(landed)
		a.markBeacon(cur)
		a.store.beacons = append(a.store.beacons, BeaconResult{Epoch: landed, Commit: commit, Reveal: reveal, Height: res.Height,
			TxHash: res.Hash})
		if len(a.store.beacons) > keepResults {
			a.store.beacons = slices.Delete(a.store.beacons, 0, len(a.store.beacons)-keepResults)
		}
		a.mu.Unlock()
		a.log.Info("beacon", "epoch", landed, "revealed", !reveal.IsZero())
		if err != nil {
			return fmt.Errorf("beacon landed, its secret not kept: %w", err)
		}
		return nil
	}
	// Every reveal refused: a beacon of ours is in this epoch already (its answer lost), or the ledger refuses
	// beacons for another reason; the new secret never landed.
	a.dropBeacon(secret, cur)
	return fmt.Errorf("beacon refused with every reveal (%d tried): %w", len(cands), last)
}

// markBeacon notes that epoch e needs no more beacon (caller holds a.mu).
func (a *Auditor) markBeacon(e uint64) {
	if a.store.beaconOn == nil {
		a.store.beaconOn = map[uint64]bool{}
	}
	a.store.beaconOn[e] = true
	for x := range a.store.beaconOn {
		if x+keepResults < e {
			delete(a.store.beaconOn, x)
		}
	}
}

// dropBeacon forgets a secret the ledger refused, and gives up epoch cur's beacon.
func (a *Auditor) dropBeacon(secret tx.Hash, cur uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.markBeacon(cur)
	recs, err := a.beaconRecords()
	if err != nil {
		return
	}
	if err := a.saveBeacons(slices.DeleteFunc(recs, func(r beaconRecord) bool { return r.Secret == secret })); err != nil {
		a.log.Warn("beacon secrets", "err", err)
	}
}
