package proof

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
)

// SolverRequest is one line of the external solver protocol (see the package doc).
type SolverRequest struct {
	Seed string `json:"seed"` // 64 lowercase hex digits
	N    int    `json:"n"`
	K    int    `json:"k"`
}

// EncodeRequest is the request line for c, newline included.
func EncodeRequest(c Challenge) []byte {
	b, _ := json.Marshal(SolverRequest{Seed: c.Seed.String(), N: c.N, K: c.K})
	return append(b, '\n')
}

// ParseRequest reads one request line strictly: known fields only, a 32-byte hex seed, n and k in range, and
// nothing after the object but an optional newline.
func ParseRequest(line []byte) (Challenge, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var r SolverRequest
	if err := dec.Decode(&r); err != nil {
		return Challenge{}, fmt.Errorf("%w: solver request: %v", ErrMalformed, err)
	}
	if dec.InputOffset() != int64(len(line)) {
		return Challenge{}, fmt.Errorf("%w: solver request: trailing bytes", ErrMalformed)
	}
	var c Challenge
	if s, err := hex.DecodeString(r.Seed); err != nil || len(s) != len(c.Seed) {
		return Challenge{}, fmt.Errorf("%w: solver request: seed must be 64 hex digits", ErrMalformed)
	} else {
		copy(c.Seed[:], s)
	}
	c.N, c.K = r.N, r.K
	if err := c.Validate(); err != nil {
		return Challenge{}, err
	}
	return c, nil
}

// DecodeSolution turns a solver's response, exactly n·n bytes, into C_k.
func DecodeSolution(b []byte, n int) ([]int8, error) {
	if n < 1 || n > MaxN || len(b) != n*n {
		return nil, fmt.Errorf("%w: solver output of %d bytes for n = %d", ErrMalformed, len(b), n)
	}
	ck := make([]int8, len(b))
	for i, v := range b {
		ck[i] = int8(v)
	}
	return ck, nil
}

// ReadSolution reads exactly one response (n·n bytes) from a solver's output stream; a short stream is an
// error, and what follows belongs to the next response.
func ReadSolution(r io.Reader, n int) ([]int8, error) {
	if n < 1 || n > MaxN {
		return nil, fmt.Errorf("%w: n = %d", ErrParams, n)
	}
	b := make([]byte, n*n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("%w: solver output: %v", ErrMalformed, err)
	}
	return DecodeSolution(b, n)
}
