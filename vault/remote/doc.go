// Package remote reads Spare Vault objects over the network: each shard from the provider holding it, over its
// pinned TLS, verified against the shard's root as it streams; any K shards of a stripe rebuild it, and a
// provider that fails, stalls or lies is given up on and reported. The tenant's CLI and the provider (fetching
// a job's vault inputs, rebuilding a shard it was drawn to repair) read through it.
package remote
