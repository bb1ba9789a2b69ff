package provider

import "github.com/sparenet/spare/client"

// For vaultinputs_test.go, which runs a real daemon (package provider_test).
var (
	FetchInputsIn = fetchInputsIn
	VaultObjectOf = vaultObjectOf
)

// LedgerVault is the daemon's VaultSource on client c.
func LedgerVault(c *client.Client) VaultSource { return ledgerVault{c} }

// VaultInputPaths are the work directory's paths of m's Vault inputs, which the runtime makes read-only.
var VaultInputPaths = vaultInputPaths
