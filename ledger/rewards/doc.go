// Package rewards is the ledger's economy beyond the market (docs/economics.md): the emission schedule and its
// record, the split of an epoch's emission among auditors, available capacity and paid work, the work rewards
// capped below the burns behind them (renting to yourself never pays), and ClaimRewards.
//
// The availability rewards are credited by the liveness tally (package trust) in its pass over the audit set,
// with the weights fixed when the set was made; this package computes the epoch's pots before that pass
// (Pots) and pays the rest after it (Finish): work, from the per-epoch index of completions' burns written by
// package settle and verify (kernel.RecordWork), and the auditors, from their agreement with the verdicts.
package rewards
