// Package vault is Spare Vault's data path, pure and deterministic (no network, no ledger): content addresses,
// erasure coding and proofs of storage.
//
// An object (a file's bytes) is addressed by its BLAKE3 root. It is cut into stripes of K data shards of one
// shard size; each stripe is Reed-Solomon coded into K data and M parity shards (klauspost/reedsolomon), so that
// any K shards of a stripe rebuild it — the whole stripe (DecodeStripe, DecodeRange) or one lost shard of it
// (RebuildShard, what a provider drawn to repair it runs). Every shard has its own BLAKE3 root and a Bao outboard tree over chunk
// groups of GroupSize bytes (lukechampine.com/blake3/bao): a shard is verified as it streams, group by group, so a
// bad byte fails at the group that holds it rather than after the whole transfer, and any one group is proven
// held by a short proof (Prove, VerifyProof) that the auditors check against the shard's root on the ledger.
//
// Object is an object's manifest: its root, size, coding and every shard's root, with a canonical encoding
// (bounded on both sides) that the ledger stores.
package vault
