// Package layout is how Spare Vault cuts an object: codings (K data and M parity shards a stripe, the shard
// size), the layout they give an object of a size, and the object's manifest (its root and every shard's root)
// with its canonical encoding, bounded on both sides. Pure and deterministic, importing only the wire codec:
// the ledger validates the manifests it stores with it, and package vault codes, verifies and proves by it.
package layout
