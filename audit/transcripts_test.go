package audit_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/sparenet/spare/audit"
	"github.com/sparenet/spare/proof"
)

func testTranscripts(t testing.TB, devices int) audit.Transcripts {
	var ts audit.Transcripts
	for i := range devices {
		c := proof.Challenge{Seed: proof.Seed{byte(i + 1)}, N: 64, K: 2}
		root, op, err := proof.Prove(c, 4)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, proof.Transcript{Class: "cpu", Challenge: c, Deadline: time.Second, ChallengedAt: 1_000_000,
			CommittedAt: 1_000_000 + int64(50*time.Millisecond), Root: root, Opening: op})
	}
	return ts
}

// TestTranscripts: a file round-trips and verifies; a changed row, a late commitment, a truncated or padded
// file do not.
func TestTranscripts(t *testing.T) {
	ts := testTranscripts(t, 3)
	b := ts.Encode()
	got, err := audit.DecodeTranscripts(b)
	if err != nil || len(got) != 3 || got.Hash() != ts.Hash() || !bytes.Equal(got.Encode(), b) {
		t.Fatalf("round trip: %v", err)
	}
	if err := got.Verify(); err != nil {
		t.Fatalf("honest transcripts: %v", err)
	}
	late := testTranscripts(t, 1)
	late[0].CommittedAt += int64(2 * time.Second)
	if err := late.Verify(); !errors.Is(err, proof.ErrLate) {
		t.Fatalf("late: %v", err)
	}
	bad := testTranscripts(t, 1)
	bad[0].Opening.Rows[0].Row[0] ^= 1
	if err := bad.Verify(); err == nil {
		t.Fatal("a changed row verified")
	}
	for name, in := range map[string][]byte{"truncated": b[:len(b)-1], "trailing": append(append([]byte{}, b...), 0),
		"no header": b[4:], "empty": {}, "zero count": []byte("PGS1\x00\x00\x00\x00")} {
		if _, err := audit.DecodeTranscripts(in); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func FuzzDecodeTranscripts(f *testing.F) {
	f.Add(testTranscripts(f, 1).Encode())
	f.Add([]byte("PGS1\x00\x00\x00\x01\x00\x00\x00\x04PGT1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := audit.DecodeTranscripts(b)
		if err != nil {
			return
		}
		if !bytes.Equal(ts.Encode(), b) {
			t.Fatal("decoded transcripts re-encode differently")
		}
	})
}
