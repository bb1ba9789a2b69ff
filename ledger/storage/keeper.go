package storage

import (
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/tx"
)

// Keeper is the storage module. It calls one other module, through Slasher, to slash a provider whose shards
// failed their proofs; the app wires it (ledger/modules.go).
type Keeper struct {
	Slasher Slasher
}

// Slasher is what the storage module needs of the trust module.
type Slasher interface {
	// SlashUpTo slashes ppm of a provider's stake, at most limit, and says how much it took.
	SlashUpTo(c *kernel.Ctx, a tx.Address, ppm, limit uint64, reason string) uint64
}
