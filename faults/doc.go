// Package faults is Spare's fault suite: scripted scenarios on real `spare` processes on loopback, each bounded in
// time, under a steady load of transfers that records every acknowledged transaction, followed by a checker that
// compares block hashes, app hashes, the supply invariant and every acknowledged transaction on every node.
//
// The scenarios are its tests (faults_test.go): `make test` runs the short profile (a validator of four killed
// with SIGKILL and restarted), `make faults` every scenario, writing the results table that RELIABILITY.md
// records. Faults on a single validator, on providers and on the ledger's storage live beside the commands they
// exercise (cmd/spare: crash_test.go, provider_kill_test.go, journal_test.go); RELIABILITY.md lists them all.
package faults
