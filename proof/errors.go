package proof

import "errors"

// Errors a verifier reports, wrapped with detail; test with errors.Is. The first three are a dishonest or
// broken prover's; the last two are about the inputs.
var (
	ErrRow       = errors.New("proof: opened row differs from the recomputed row")
	ErrMerkle    = errors.New("proof: Merkle proof does not reach the root")
	ErrIndices   = errors.New("proof: opened indices are not the ones drawn from seed and root")
	ErrLate      = errors.New("proof: committed after the deadline")
	ErrParams    = errors.New("proof: parameters out of range")
	ErrMalformed = errors.New("proof: malformed encoding")
)
