package storage

// Keeper is the storage module. It calls no other module; the app registers its hooks (ledger/modules.go).
type Keeper struct{}
