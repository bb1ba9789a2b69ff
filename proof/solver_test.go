package proof

import (
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const (
	systemPython = "/usr/bin/python3" // Debian's python3-torch is for the system interpreter
	torchHint    = "install PyTorch for it: apt-get update && apt-get install -y python3-torch"
)

// requireTorch skips when the system Python has no torch, except under CI=true, where that is a failure.
func requireTorch(t *testing.T) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), systemPython, "-c", "import torch").CombinedOutput()
	if err == nil {
		return
	}
	msg := systemPython + " cannot import torch (" + strings.TrimSpace(string(out)) + "); " + torchHint
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestTorchSolverMatchesGo runs the reference solver on several requests in one process and checks that its
// C_k, and so the root, equals the Go prover's bit for bit.
func TestTorchSolverMatchesGo(t *testing.T) {
	requireTorch(t)
	cases := []Challenge{
		{Seed: testSeed(0), N: 4, K: 3},    // the known answers in gen_test.go
		{Seed: testSeed(1), N: 1, K: 1},    // smallest
		{Seed: testSeed(2), N: 37, K: 2},   // odd, not a multiple of 8
		{Seed: testSeed(3), N: 64, K: 5},   // multiple of 8 (the int8 tensor-core path on CUDA)
		{Seed: testSeed(4), N: 1100, K: 1}, // more than one generator chunk in B
	}
	var in bytes.Buffer
	for _, c := range cases {
		in.Write(EncodeRequest(c))
	}
	cmd := exec.CommandContext(t.Context(), systemPython, "solver/torch_solver.py")
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("solver: %v: %s", err, stderr.String())
	}
	stream := bytes.NewReader(out)
	for _, c := range cases {
		got, err := ReadSolution(stream, c.N)
		if err != nil {
			t.Fatalf("n=%d k=%d: %v", c.N, c.K, err)
		}
		want, _ := Solve(c)
		if !slices.Equal(got, want) {
			t.Fatalf("n=%d k=%d: solver's C_k differs from the Go prover's", c.N, c.K)
		}
		r1, op, _ := CommitAndOpen(c, got, min(c.N, 4))
		r2, _, _ := CommitAndOpen(c, want, min(c.N, 4))
		if r1 != r2 || VerifyOpening(c, r1, min(c.N, 4), op) != nil {
			t.Fatalf("n=%d k=%d: roots differ or the solver's opening fails", c.N, c.K)
		}
	}
	if stream.Len() != 0 {
		t.Fatalf("%d bytes after the last response", stream.Len())
	}
}

func TestTorchSolverRejectsBadRequests(t *testing.T) {
	requireTorch(t)
	ok := string(EncodeRequest(Challenge{N: 4, K: 1}))
	for _, tc := range []struct{ req, env string }{
		{`{"seed":"00","n":4,"k":1}`, ""},
		{`{"seed":"` + strings.Repeat("0", 64) + `","n":0,"k":1}`, ""},
		{`not json`, ""},
		{ok, "SPARE_SOLVER_DEVICE=gpu"},
	} {
		cmd := exec.CommandContext(t.Context(), systemPython, "solver/torch_solver.py")
		cmd.Stdin = strings.NewReader(tc.req + "\n")
		if tc.env != "" {
			cmd.Env = append(os.Environ(), tc.env)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err == nil || len(out) != 0 || !strings.Contains(stderr.String(), "torch_solver:") {
			t.Errorf("%s %s: err %v, %d bytes out, stderr %q", tc.env, tc.req, err, len(out), stderr.String())
		}
	}
}
