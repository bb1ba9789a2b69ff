package rewards

// Keeper is the rewards module. It calls no other module: the liveness tally calls it (trust.Rewards).
type Keeper struct{}
