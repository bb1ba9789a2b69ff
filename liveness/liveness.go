// Package liveness is the wire format of the liveness challenge between auditors and providers: an auditor
// POSTs a fresh nonce to a provider's /challenge; the provider signs it with the key it registered on the ledger.
package liveness

import (
	"crypto/ed25519"

	"github.com/sparenet/spare/ledger/tx"
)

// Request is the body of POST /challenge.
type Request struct {
	Nonce string `json:"nonce"` // 16 to 64 bytes, hex
}

// Response is the provider's answer.
type Response struct {
	Provider  tx.Address `json:"provider"`
	PubKey    []byte     `json:"pubkey"`
	Signature []byte     `json:"signature"`
}

// MinNonce and MaxNonce bound a challenge's nonce, in bytes.
const (
	MinNonce = 16
	MaxNonce = 64
)

// SignBytes are the bytes a provider signs for nonce.
func SignBytes(nonce []byte) []byte { return append([]byte("spare-challenge-v1\n"), nonce...) }

// Verify checks a provider's answer to nonce against its registered key.
func Verify(pub ed25519.PublicKey, nonce, sig []byte) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, SignBytes(nonce), sig)
}

// Proof of GPU over HTTP: an auditor POSTs a ProofRequest to a provider's /proof, signed (package reqsig) with
// its auditor key; the provider answers every challenge — one per declared device, all at once, so one card
// cannot pose as several — with its commitment and the sampled rows opened (package proof).

// ProofChallenge is one device's challenge.
type ProofChallenge struct {
	Seed string `json:"seed"` // 32 bytes, hex
	N    int    `json:"n"`
	K    int    `json:"k"`
}

// ProofRequest asks for every challenge's root and Rows opened rows.
type ProofRequest struct {
	Challenges []ProofChallenge `json:"challenges"`
	Rows       int              `json:"rows"`
}

// ProofAnswer is one challenge's commitment and opening (proof.Opening's encoding).
type ProofAnswer struct {
	Root    string `json:"root"` // hex
	Opening []byte `json:"opening"`
}

// ProofResponse answers a ProofRequest, in order.
type ProofResponse struct {
	Answers []ProofAnswer `json:"answers"`
}

// MaxProofChallenges bounds the challenges of one request (devices of one provider).
const MaxProofChallenges = 64
