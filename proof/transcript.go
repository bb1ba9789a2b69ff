package proof

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"
)

// Transcript is the record of one challenge, enough for anyone to re-check it later: the seed (public once
// revealed), the parameters, the committed root, the opening, and the times the auditor's clock read. The
// package reads no clock; the caller fills the times in.
type Transcript struct {
	Class        string // claimed device class (Class.ID)
	Challenge    Challenge
	Deadline     time.Duration // commit deadline, from the claimed class
	ChallengedAt int64         // Unix ns when the seed was sent
	CommittedAt  int64         // Unix ns when the root arrived
	Root         Hash
	Opening      Opening
}

const (
	transcriptMagic = "PGT1"
	maxClassLen     = 64
)

// Elapsed is the time from challenge to commitment.
func (t *Transcript) Elapsed() time.Duration { return time.Duration(t.CommittedAt - t.ChallengedAt) }

// Throughput is the int8 work the prover showed, in operations per second of Elapsed (0 when not positive).
func (t *Transcript) Throughput() float64 {
	if t.Elapsed() <= 0 {
		return 0
	}
	return t.Challenge.Ops() / t.Elapsed().Seconds()
}

// Verify re-checks the whole transcript: limits, the deadline, and the opening against seed and root. It
// costs 2·s·k·n² operations and about 5n² bytes, which the transcript itself sets: check n and k against
// the policy before verifying one from an untrusted source.
func (t *Transcript) Verify() error {
	if len(t.Class) > maxClassLen {
		return fmt.Errorf("%w: class name of %d bytes", ErrParams, len(t.Class))
	}
	if t.Deadline <= 0 || t.Elapsed() < 0 {
		return fmt.Errorf("%w: deadline %v, elapsed %v", ErrParams, t.Deadline, t.Elapsed())
	}
	if t.Elapsed() > t.Deadline {
		return fmt.Errorf("%w: %v after the challenge, deadline %v", ErrLate, t.Elapsed(), t.Deadline)
	}
	return VerifyOpening(t.Challenge, t.Root, len(t.Opening.Rows), t.Opening)
}

// Encode is the canonical binary form: "PGT1", u8 len(class), class, seed (32), u32be n, u32be k,
// i64be deadline ns, i64be challenged-at, i64be committed-at, root (32), then the opening's Encode to the
// end. Class must be at most 64 bytes, as Verify requires.
func (t *Transcript) Encode() []byte {
	b := append([]byte(transcriptMagic), byte(len(t.Class)))
	b = append(b, t.Class...)
	b = append(b, t.Challenge.Seed[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(t.Challenge.N))
	b = binary.BigEndian.AppendUint32(b, uint32(t.Challenge.K))
	b = binary.BigEndian.AppendUint64(b, uint64(t.Deadline))
	b = binary.BigEndian.AppendUint64(b, uint64(t.ChallengedAt))
	b = binary.BigEndian.AppendUint64(b, uint64(t.CommittedAt))
	b = append(b, t.Root[:]...)
	return append(b, t.Opening.Encode()...)
}

// Hash identifies the transcript, e.g. in a ledger attestation: SHA-256 of Encode.
func (t *Transcript) Hash() Hash { return sha256.Sum256(t.Encode()) }

// DecodeTranscript parses Encode's form strictly.
func DecodeTranscript(b []byte) (*Transcript, error) {
	if len(b) < 5 || string(b[:4]) != transcriptMagic {
		return nil, fmt.Errorf("%w: transcript header", ErrMalformed)
	}
	cl := int(b[4])
	const fixed = 32 + 4 + 4 + 8 + 8 + 8 + 32
	if cl > maxClassLen || len(b) < 5+cl+fixed {
		return nil, fmt.Errorf("%w: transcript of %d bytes", ErrMalformed, len(b))
	}
	t := &Transcript{Class: string(b[5 : 5+cl])}
	p := b[5+cl:]
	copy(t.Challenge.Seed[:], p)
	n, k := binary.BigEndian.Uint32(p[32:]), binary.BigEndian.Uint32(p[36:])
	t.Challenge.N, t.Challenge.K = int(n), int(k)
	if err := t.Challenge.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	t.Deadline = time.Duration(binary.BigEndian.Uint64(p[40:]))
	t.ChallengedAt = int64(binary.BigEndian.Uint64(p[48:]))
	t.CommittedAt = int64(binary.BigEndian.Uint64(p[56:]))
	copy(t.Root[:], p[64:])
	o, err := DecodeOpening(p[fixed:])
	if err != nil {
		return nil, err
	}
	if o.N != t.Challenge.N {
		return nil, fmt.Errorf("%w: opening for n = %d in a transcript for n = %d", ErrMalformed, o.N, n)
	}
	t.Opening = o
	return t, nil
}
