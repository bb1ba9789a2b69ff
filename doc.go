// Package spare is the root of the Spare module: a decentralized marketplace for spare GPU compute. The binary
// is cmd/spare; ARCHITECTURE.md maps the packages to roles.
package spare
