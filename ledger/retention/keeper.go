package retention

// Keeper is the retention module. It calls no other module; the app registers its hooks (ledger/modules.go).
type Keeper struct{}
