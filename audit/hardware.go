package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/liveness"
	"github.com/sparenet/spare/proof"
	"github.com/sparenet/spare/reqsig"
)

// HardwareResult is the outcome of one proof-of-GPU challenge of a provider.
type HardwareResult struct {
	Epoch     uint64        `json:"epoch"`
	Provider  tx.Address    `json:"provider"`
	Class     string        `json:"class"`
	Devices   int           `json:"devices"`
	Passed    bool          `json:"passed"`
	Deadline  time.Duration `json:"deadline"`
	Took      time.Duration `json:"took"`
	OpsPerSec uint64        `json:"ops_per_sec"`
	Reason    string        `json:"reason,omitempty"`
	// Transcript is the hash of the devices' transcripts (zero when nothing was answered) and File where the
	// auditor wrote them (empty without a TranscriptDir).
	Transcript tx.Hash `json:"transcript"`
	File       string  `json:"file,omitempty"`
}

// errNoVerdict marks a challenge that says nothing about the hardware (the provider unreachable: liveness
// judges that; a model with no class).
var errNoVerdict = errors.New("no verdict")

// keepResults bounds the results an auditor remembers (Hardware, Attested); older ones are on the ledger.
const keepResults = 256

// Hardware returns the proof-of-GPU results this auditor reached, the latest keepResults.
func (a *Auditor) Hardware() []HardwareResult {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]HardwareResult(nil), a.hardware...)
}

// proveEpoch challenges, once in epoch v, the audit set's unverified providers and (by chance) verified ones.
func (a *Auditor) proveEpoch(ctx context.Context, v api.EpochView) {
	var todo []api.ProviderView
	a.mu.Lock()
	for e := range a.proved {
		if e < v.Epoch {
			delete(a.proved, e) // only the current epoch's challenges are remembered
		}
	}
	if a.proved[v.Epoch] == nil {
		a.proved[v.Epoch] = map[tx.Address]bool{}
	}
	proved := a.proved[v.Epoch]
	a.mu.Unlock()
	params, err := a.c.Params(ctx)
	if err != nil {
		a.log.Warn("proof of GPU: reading the params", "err", err)
		return
	}
	for _, addr := range v.Providers {
		a.mu.Lock()
		done := proved[addr]
		proved[addr] = true
		a.mu.Unlock()
		if done {
			continue
		}
		p, err := a.c.Provider(ctx, addr)
		if err != nil || p.Status != api.ProviderActive {
			continue
		}
		if p.Verified && a.ReproveEvery > 1 && !proofGoingStale(params, p.Provider, v.Epoch) {
			if n, err := rand.Int(rand.Reader, big.NewInt(int64(a.ReproveEvery))); err != nil || n.Int64() != 0 {
				continue
			}
		}
		todo = append(todo, p)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, p := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r, err := a.ProveHardware(ctx, p)
			r.Epoch = v.Epoch
			if errors.Is(err, errNoVerdict) {
				a.log.Info("no proof-of-GPU verdict", "provider", p.Owner, "reason", r.Reason)
				return
			}
			a.mu.Lock()
			a.hardware = append(a.hardware, r)
			if len(a.hardware) > keepResults {
				a.hardware = slices.Delete(a.hardware, 0, len(a.hardware)-keepResults)
			}
			a.mu.Unlock()
			// The verdict goes into the epoch current now (a challenge can outlast a short epoch).
			if cur, err := a.c.Epoch(ctx, nil); err == nil {
				r.Epoch = cur.Epoch
			}
			_, err = a.sender.Send(ctx, &tx.AttestHardware{Epoch: r.Epoch, Provider: p.Owner, Passed: r.Passed, Class: r.Class,
				OpsPerSec: r.OpsPerSec, Transcript: r.Transcript})
			if err != nil && !errors.Is(err, tx.CodeDuplicateAttest) {
				a.log.Warn("AttestHardware", "provider", p.Owner, "err", err)
				return
			}
			a.log.Info("proof of GPU", "provider", p.Owner, "class", r.Class, "devices", r.Devices, "passed", r.Passed,
				"took", r.Took.Round(time.Millisecond), "deadline", r.Deadline.Round(time.Millisecond), "reason", r.Reason)
		}()
	}
	wg.Wait()
}

// proofGoingStale says whether a verified provider's last passed proof of GPU is older, at epoch e's start, than
// half of params.reward_proof_epochs: every auditor then challenges it in that epoch (the rule is the chain's,
// so they all do), so that two thirds of the weight can renew it before its availability rewards stop. The
// random re-proofs alone (each auditor on its own, 1 in ReproveEvery) rarely bring two thirds of the weight to
// one provider in one epoch.
func proofGoingStale(params *api.Params, p api.Provider, e uint64) bool {
	if !params.RewardsOn() || !p.Verified || params.EpochBlocks == 0 {
		return false
	}
	start := e*params.EpochBlocks + 1
	window := params.RewardProofEpochs * params.EpochBlocks
	return p.VerifiedHeight >= 0 && start > uint64(p.VerifiedHeight) && start-uint64(p.VerifiedHeight) > window/2
}

// ProveHardware challenges every device a provider declares, all at once, with fresh seeds sized for the class
// each claims (package proof), and checks the answers: in time, and every opened row right. A provider that
// cannot be reached gives no verdict (liveness judges that).
func (a *Auditor) ProveHardware(ctx context.Context, p api.ProviderView) (r HardwareResult, _ error) {
	r = HardwareResult{Provider: p.Owner}
	var params []proof.Params
	if gpus := p.Info.Hardware.GPUs; len(gpus) == 0 {
		params = append(params, proof.CPUParams(float64(p.Info.Hardware.CPUMilli)/1000))
	} else {
		for _, g := range gpus {
			c, ok := proof.ClassForModel(g.Model)
			if !ok {
				r.Reason = fmt.Sprintf("GPU model %q has no proof-of-GPU class yet", g.Model)
				return r, errNoVerdict
			}
			pp, err := proof.DefaultPolicy().Params(c, proof.Classes)
			if err != nil {
				r.Reason = err.Error()
				return r, errNoVerdict
			}
			for range g.Count {
				params = append(params, pp)
			}
		}
	}
	r.Class, r.Devices = params[0].Class, len(params)
	req := liveness.ProofRequest{Rows: params[0].Rows}
	chs := make([]proof.Challenge, len(params))
	var ops float64
	for i, pp := range params {
		var seed proof.Seed
		if _, err := rand.Read(seed[:]); err != nil {
			return r, err
		}
		chs[i] = pp.Challenge(seed)
		req.Challenges = append(req.Challenges, liveness.ProofChallenge{Seed: hex.EncodeToString(seed[:]), N: pp.N, K: pp.K})
		r.Deadline = max(r.Deadline, pp.Deadline)
		req.Rows = max(req.Rows, pp.Rows)
		ops += chs[i].Ops()
	}
	body, _ := json.Marshal(req)
	hc := certs.PinnedHTTPClient(p.Info.CertFingerprint, r.Deadline+5*time.Second) // the context below sets the deadline
	hc.Transport = &reqsig.Transport{Base: hc.Transport, Key: a.key.PrivateKey()}
	defer hc.CloseIdleConnections()
	start := time.Now() // the deadline runs from here
	cctx, cancel := context.WithTimeout(ctx, r.Deadline)
	defer cancel()
	hreq, err := http.NewRequestWithContext(cctx, http.MethodPost, p.Info.HostURI+"/proof", bytes.NewReader(body))
	if err != nil {
		return r, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(hreq)
	var ans liveness.ProofResponse
	if err == nil {
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
			err = fmt.Errorf("HTTP %d: %s", res.StatusCode, bytes.TrimSpace(msg))
		} else {
			err = json.NewDecoder(io.LimitReader(res.Body, 64<<20)).Decode(&ans)
		}
	}
	r.Took = time.Since(start)
	switch {
	case err != nil && (cctx.Err() != nil || isTimeout(err)) && ctx.Err() == nil:
		r.Reason = fmt.Sprintf("no answer within the %s deadline of %d× %s", r.Deadline.Round(time.Millisecond), r.Devices, r.Class)
		return r, nil
	case err != nil && isUnreachable(err):
		r.Reason = "unreachable: " + err.Error()
		return r, errNoVerdict
	case err != nil:
		r.Reason = err.Error()
		return r, nil
	case len(ans.Answers) != len(chs):
		r.Reason = fmt.Sprintf("%d answers to %d challenges", len(ans.Answers), len(chs))
		return r, nil
	}
	committed := start.Add(r.Took)
	var ts Transcripts
	defer func() { a.keep(&r, ts) }()
	for i, an := range ans.Answers {
		var root proof.Hash
		if b, err := hex.DecodeString(an.Root); err != nil || len(b) != len(root) {
			r.Reason = fmt.Sprintf("device %d: root is not 32 bytes of hex", i)
			return r, nil
		} else {
			copy(root[:], b)
		}
		op, err := proof.DecodeOpening(an.Opening)
		if err != nil {
			r.Reason = fmt.Sprintf("device %d: %v", i, err)
			return r, nil
		}
		ts = append(ts, proof.Transcript{Class: params[i].Class, Challenge: chs[i], Deadline: params[i].Deadline,
			ChallengedAt: start.UnixNano(), CommittedAt: committed.UnixNano(), Root: root, Opening: op})
		if err := proof.VerifyOpening(chs[i], root, req.Rows, op); err != nil {
			r.Reason = fmt.Sprintf("device %d: %v", i, err)
			return r, nil
		}
	}
	r.Passed, r.OpsPerSec = true, uint64(ops/max(r.Took.Seconds(), 1e-6))
	return r, nil
}

// keep records the transcripts of a challenge: their hash in the result and, with a TranscriptDir, a file.
func (a *Auditor) keep(r *HardwareResult, ts Transcripts) {
	if len(ts) == 0 {
		return
	}
	r.Transcript = ts.Hash()
	if a.TranscriptDir == "" {
		return
	}
	if err := os.MkdirAll(a.TranscriptDir, 0o755); err != nil {
		a.log.Warn("transcripts", "err", err)
		return
	}
	name := filepath.Join(a.TranscriptDir, fmt.Sprintf("%s-%d.pgs", r.Provider, time.Now().UnixMilli()))
	if err := os.WriteFile(name, ts.Encode(), 0o644); err != nil {
		a.log.Warn("transcripts", "err", err)
		return
	}
	r.File = name
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// isUnreachable tells a provider that is not there (refused, no route, no such host) from one that answered
// too late or wrong.
func isUnreachable(err error) bool {
	var dns *net.DNSError
	return !isTimeout(err) && (errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.As(err, &dns))
}
