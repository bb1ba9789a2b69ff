// Package bank is the ledger's token transfers between accounts (Send). Balances, holdings and the supply
// record themselves live in the kernel, since every module moves tokens.
package bank
