package provider

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/liveness"
	"github.com/sparenet/spare/proof"
	"github.com/sparenet/spare/reqsig"
)

// maxCPUProofN is the largest challenge the built-in CPU solver takes on (CPU challenges use n = 512).
const maxCPUProofN = 1024

// postProof answers an auditor's proof-of-GPU challenges (one per declared device) with each commitment and its
// opened rows. Only auditors of the ledger's set may ask: a challenge costs the provider real compute.
func (d *Daemon) postProof(w http.ResponseWriter, r *http.Request, signer tx.Address, body []byte) {
	if !d.isAuditor(r.Context(), signer) {
		reqsig.WriteError(w, http.StatusForbidden, reqsig.CodeForbidden, "only the ledger's auditors may send proof-of-GPU challenges")
		return
	}
	var req liveness.ProofRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		reqsig.WriteError(w, http.StatusBadRequest, "bad_request", "want {\"challenges\": [{\"seed\", \"n\", \"k\"}], \"rows\"}: "+err.Error())
		return
	}
	if len(req.Challenges) == 0 || len(req.Challenges) > liveness.MaxProofChallenges {
		reqsig.WriteError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("challenges: 1 to %d", liveness.MaxProofChallenges))
		return
	}
	chs := make([]proof.Challenge, len(req.Challenges))
	for i, c := range req.Challenges {
		seed, err := hex.DecodeString(c.Seed)
		if err != nil || len(seed) != len(proof.Seed{}) {
			reqsig.WriteError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("challenges[%d].seed: 32 bytes in hex", i))
			return
		}
		chs[i] = proof.Challenge{N: c.N, K: c.K}
		copy(chs[i].Seed[:], seed)
		if err := chs[i].Validate(); err != nil {
			reqsig.WriteError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("challenges[%d]: %v", i, err))
			return
		}
	}
	if len(d.cfg.ProofSolver) == 0 {
		for i, c := range chs {
			if c.N > maxCPUProofN {
				// Sized for a GPU: the built-in CPU solver cannot meet its deadline, so say so at once rather
				// than burn the machine's cores until the auditor gives up.
				reqsig.WriteError(w, http.StatusServiceUnavailable, "proof_failed",
					fmt.Sprintf("challenges[%d] (n=%d) is sized for a GPU and this provider has no GPU solver (proof_solver in provider.toml)", i, c.N))
				return
			}
		}
	}
	start := time.Now()
	answers, err := d.solveAll(r.Context(), chs, req.Rows)
	if err != nil {
		d.log.Warn("proof-of-GPU challenge not answered", "auditor", signer, "err", err, "after", time.Since(start))
		reqsig.WriteError(w, http.StatusServiceUnavailable, "proof_failed", err.Error())
		return
	}
	d.log.Info("answered a proof-of-GPU challenge", "auditor", signer, "devices", len(chs), "took", time.Since(start).Round(time.Millisecond))
	writeJSON(w, liveness.ProofResponse{Answers: answers})
}

// solveAll answers the challenges: with the configured solver, one process per challenge at once, each seeing
// only its GPU (the i-th declared); without one, the built-in CPU solver, one challenge after another (each uses
// every core). It stops when ctx ends (the auditor's deadline passed).
func (d *Daemon) solveAll(ctx context.Context, chs []proof.Challenge, rows int) ([]liveness.ProofAnswer, error) {
	out := make([]liveness.ProofAnswer, len(chs))
	solve := func(i int) error {
		var ck []int8
		var err error
		if len(d.cfg.ProofSolver) == 0 {
			ck, err = proof.SolveContext(ctx, chs[i])
		} else {
			ck, err = d.externalSolve(ctx, chs[i], i)
		}
		if err != nil {
			return fmt.Errorf("challenge %d: %w", i, err)
		}
		root, op, err := proof.CommitAndOpen(chs[i], ck, rows)
		if err != nil {
			return fmt.Errorf("challenge %d: %w", i, err)
		}
		out[i] = liveness.ProofAnswer{Root: hex.EncodeToString(root[:]), Opening: op.Encode()}
		return nil
	}
	if len(d.cfg.ProofSolver) == 0 {
		for i := range chs {
			if err := solve(i); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	errs := make([]error, len(chs))
	var wg sync.WaitGroup
	for i := range chs {
		wg.Go(func() { errs[i] = solve(i) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// externalSolve runs the configured solver for one challenge with GPU i alone visible.
func (d *Daemon) externalSolve(ctx context.Context, c proof.Challenge, i int) ([]int8, error) {
	cmd := exec.CommandContext(ctx, d.cfg.ProofSolver[0], d.cfg.ProofSolver[1:]...)
	cmd.Env = os.Environ()
	if gpus := d.cfg.Hardware.GPUs; i < len(gpus) {
		cmd.Env = append(cmd.Env, gpuEnv(gpus[i:i+1])...)
	}
	cmd.Stdin = bytes.NewReader(proof.EncodeRequest(c))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outp, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("solver %s: %v: %s", d.cfg.ProofSolver[0], err, bytes.TrimSpace(stderr.Bytes()))
	}
	return proof.DecodeSolution(outp, c.N)
}

// isAuditor reports whether a is in the ledger's auditor set (read at most once a minute).
func (d *Daemon) isAuditor(ctx context.Context, a tx.Address) bool {
	d.audMu.Lock()
	defer d.audMu.Unlock()
	if time.Since(d.audAt) > time.Minute || d.auditors == nil {
		auds, err := d.c.Auditors(ctx)
		if err != nil {
			return false
		}
		d.auditors = d.auditors[:0]
		for _, x := range auds {
			d.auditors = append(d.auditors, x.Address)
		}
		d.audAt = time.Now()
	}
	return slices.Contains(d.auditors, a)
}
