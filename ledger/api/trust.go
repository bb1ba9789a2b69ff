package api

import (
	"github.com/sparenet/spare/ledger/tx"
)

// Restart announcements. The grace covers the rest of the announcing epoch and the whole next one: a daemon
// restart (seconds to a minute) ends within it. Once per RestartEveryEpochs bounds what a provider that abuses it
// gains: two unjudged epochs in a hundred (2%); every other epoch is audited as usual, and a provider that stays
// down past the grace is found down, slashed and jailed as any other.
const (
	RestartGraceEpochs = 1
	RestartEveryEpochs = 100
)

// Auditor is a member of the auditor set.
type Auditor struct {
	Address tx.Address `json:"address"`
	Weight  uint64     `json:"weight"`
	Host    string     `json:"host,omitempty"` // where providers measure their round trip to it
}

// EpochView is an epoch's audit set and what was attested for it.
type EpochView struct {
	Epoch     uint64       `json:"epoch"`
	Current   uint64       `json:"current"` // the epoch the last block is in
	Providers []tx.Address `json:"providers"`
	Attested  []Auditor    `json:"attested"` // auditors who attested this epoch
	Tallied   bool         `json:"tallied"`  // the verdicts are in (the set and attestations are then dropped)
}
