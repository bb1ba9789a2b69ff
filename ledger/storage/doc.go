// Package storage is Spare Vault on the ledger (docs/vault.md). Built so far: storage offers — a registered
// provider's disk offered to the Vault, at its price per GiB-month (OfferStorage), listed for anyone to see.
// Placement of shards, deals paid once (a term or an endowment), proofs every epoch and repair build on them.
package storage
