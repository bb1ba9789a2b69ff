// Package tx defines what a Spare transaction is on the wire: the signed envelope (chain id, signer key, nonce,
// fee, messages), every message type, the canonical binary codec they share (wire.go), addresses and hashes, and
// the stable numeric result codes of every rejection (codes.go). It has no state and no I/O, so clients,
// providers and the ledger all build and read transactions with the same code.
package tx
