package bank

// Keeper is the bank module. It calls no other module; the app registers its hooks (ledger/modules.go).
type Keeper struct{}
