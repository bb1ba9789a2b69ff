// Package providers is the ledger's registry of compute providers: registration and updates of what they
// declare, stake (Bond, Unbond, unbonding that matures after params.unbonding_period_sec and stays slashable
// until then), whether a provider may serve (active and bonded at least its required stake), and its record of
// failed leases.
package providers
