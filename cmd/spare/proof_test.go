package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/audit"
	"github.com/sparenet/spare/proof"
)

// TestProofVerify: `spare proof verify` passes an honest transcript file and fails a tampered one.
func TestProofVerify(t *testing.T) {
	c := proof.Challenge{Seed: proof.Seed{7}, N: 64, K: 3}
	root, op, err := proof.Prove(c, 4)
	if err != nil {
		t.Fatal(err)
	}
	ts := audit.Transcripts{{Class: "cpu", Challenge: c, Deadline: time.Second, ChallengedAt: 1, CommittedAt: 1 + int64(time.Millisecond), Root: root, Opening: op}}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.pgs")
	if err := os.WriteFile(good, ts.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "proof", "verify", good)
	if err != nil || !strings.Contains(out, ts.Hash().String()) || !strings.Contains(out, " ok") || !strings.Contains(out, "n=64 k=3") {
		t.Fatalf("honest file: %v\n%s", err, out)
	}
	ts[0].Opening.Rows[1].Row[3] ^= 1
	bad := filepath.Join(dir, "bad.pgs")
	if err := os.WriteFile(bad, ts.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "proof", "verify", good, bad, "-o", "json")
	if err == nil || !strings.Contains(out, `"ok": false`) || !strings.Contains(out, `"ok": true`) {
		t.Fatalf("tampered file: %v\n%s", err, out)
	}
}
