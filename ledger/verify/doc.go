// Package verify is redundant execution: replicated orders, their runs' commit-reveal and the comparison of
// their results, referee runs, and who is paid, unpaid or slashed.
//
// Redundant execution. A replicated order (CreateReplicatedOrder) leases Replicas distinct providers at once for
// the same deterministic job. Each run's earnings stay in escrow when it completes (Lease.Held); once every run
// has ended the ledger compares the results (output root and exit code of each receipt):
//
//   - a result that a strict majority of the runs with a result share, at least two of them, wins: its runs
//     are paid, every run with another result is unpaid (its earnings go back to the tenant), loses
//     params.SlashMismatchPPM of its stake and counts as a failed lease;
//   - without such a majority, if one more agreeing result would make one, the ledger orders one referee run
//     from another provider, paid from the reserve the tenant escrowed with the order, and judges again when
//     it has ended;
//   - still none (or no referee could run): inconclusive. Every run with a result is paid and nobody is
//     slashed, since nobody can be shown wrong.
//
// A run that ends without a receipt (closed, expired, its provider down) is settled by the ordinary rules and
// takes no part in the vote.
//
// Commit, then reveal. A run's result is not public when the run ends: its provider sends CommitResult, a hash
// of the result with its address and a secret salt (tx.ResultCommitment), which ends the run's billing like
// CompleteLease does and holds its earnings. Once no run of the group can still commit (each has committed or
// ended otherwise: a run still active when its billing ends, at the end of its duration or deposit, is closed
// unpaid and counts as failed), the reveal phase opens for params.RevealBlocks blocks: each committed run sends
// RevealResult, its signed receipt and the salt, which must hash to its commitment. A lazy run cannot copy
// another's result: every result is committed before any is revealed, and a commitment opens only with its own
// provider's address and salt. A run that committed and did not reveal in time has no vote, is unpaid and counts
// as failed. The comparison above is made once every committed run has revealed or the reveal phase closed. A
// referee run commits and reveals the same way, in a round of its own.
package verify
