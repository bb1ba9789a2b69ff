// Package faults is Spare's fault suite: scripted scenarios on real `spare` processes on loopback, each bounded in
// time, under a steady load of transfers that records every acknowledged transaction, followed by a checker that
// compares block hashes, app hashes, the supply invariant and every acknowledged transaction on every node.
//
// The scenarios are its tests (faults_test.go): `make test` runs the short profile (a validator of four killed
// with SIGKILL and restarted), `make faults` every scenario, writing the results table that RELIABILITY.md
// records. Faults of the network (netem_test.go: every link lossy and slowed, a validator partitioned away, a 2-2
// split) run each validator in a network namespace the test creates instead of on loopback, and skip with the
// reason where the kernel refuses namespaces. Faults on a single validator, on providers and on the ledger's
// storage live beside the commands they exercise (cmd/spare: crash_test.go, provider_kill_test.go,
// journal_test.go); RELIABILITY.md lists them all.
package faults
