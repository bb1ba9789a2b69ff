package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/proof"
)

// Transcripts is the record of one proof-of-GPU challenge of a provider: a transcript per device (package
// proof). The auditor writes it to a file and puts its SHA-256 in its AttestHardware, so anyone given the file
// can check it is the one the verdict rests on and re-check every device (`spare proof verify FILE`).
type Transcripts []proof.Transcript

const transcriptsMagic = "PGS1"

// MaxTranscripts bounds a file (devices of one provider).
const MaxTranscripts = 64

// Encode is "PGS1", u32be count, then per transcript u32be length and proof.Transcript's encoding.
func (ts Transcripts) Encode() []byte {
	b := append([]byte(transcriptsMagic), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[4:], uint32(len(ts)))
	for i := range ts {
		enc := ts[i].Encode()
		b = binary.BigEndian.AppendUint32(b, uint32(len(enc)))
		b = append(b, enc...)
	}
	return b
}

// Hash is the SHA-256 of the encoding: what AttestHardware records.
func (ts Transcripts) Hash() tx.Hash { return sha256.Sum256(ts.Encode()) }

// DecodeTranscripts reads an encoding strictly: exact lengths, no trailing bytes.
func DecodeTranscripts(b []byte) (Transcripts, error) {
	if len(b) < 8 || string(b[:4]) != transcriptsMagic {
		return nil, errors.New("transcripts: not a proof-of-GPU transcript file (want the PGS1 header)")
	}
	n := binary.BigEndian.Uint32(b[4:8])
	if n == 0 || n > MaxTranscripts {
		return nil, fmt.Errorf("transcripts: %d transcripts, want 1 to %d", n, MaxTranscripts)
	}
	b = b[8:]
	ts := make(Transcripts, 0, n)
	for i := range n {
		if len(b) < 4 {
			return nil, fmt.Errorf("transcripts: truncated before transcript %d", i)
		}
		l := binary.BigEndian.Uint32(b)
		if uint64(l) > uint64(len(b)-4) {
			return nil, fmt.Errorf("transcripts: transcript %d claims %d bytes, %d left", i, l, len(b)-4)
		}
		t, err := proof.DecodeTranscript(b[4 : 4+l])
		if err != nil {
			return nil, fmt.Errorf("transcripts: transcript %d: %w", i, err)
		}
		ts = append(ts, *t)
		b = b[4+l:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("transcripts: %d trailing bytes", len(b))
	}
	return ts, nil
}

// Verify re-checks every transcript (deadline and opened rows). Sizes are first checked against proof's limits:
// an untrusted file cannot ask for unbounded work beyond them.
func (ts Transcripts) Verify() error {
	for i := range ts {
		if err := ts[i].Challenge.Validate(); err != nil {
			return fmt.Errorf("device %d: %w", i, err)
		}
		if err := ts[i].Verify(); err != nil {
			return fmt.Errorf("device %d: %w", i, err)
		}
	}
	return nil
}
