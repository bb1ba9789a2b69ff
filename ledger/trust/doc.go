// Package trust is what auditors attest: auditors and epochs, liveness verdicts, proof-of-GPU verdicts,
// announced restarts, slashing and jailing.
//
// Liveness (DESIGN §5). Time is cut into epochs of params.EpochBlocks blocks; epoch e runs from height
// e·EpochBlocks+1 to (e+1)·EpochBlocks. At the first block of an epoch the ledger fixes its audit set: every
// registered provider that is not jailed and holds at least half its required stake, sorted by address. During epochs e and e+1 each auditor may post one
// Attest for e, a bitmap over that set (bit i = provider i answered its challenge). At the end of epoch e+1 the
// ledger tallies e: a provider is up when auditors holding at least two thirds of all auditor weight set its
// bit, down when auditors holding two thirds attested and left it clear, and unjudged otherwise (too few
// auditors spoke) — no single auditor can slash anyone. A down provider holding leases has them closed (tenants
// refunded what was not used) and loses params.SlashDowntimePPM of its bonded and unbonding stake to the
// network pool; JailAfterDownEpochs down epochs in a row jail it (no bids) until it sends Unjail after
// UnjailCooldownSec. A provider slashed below its required stake cannot bid but stays in the audit set (while it
// holds at least half of it), so its streak keeps counting. A provider about to restart may say so (AnnounceRestart, at most once per
// RestartEveryEpochs epochs): a down verdict for that epoch or the RestartGraceEpochs after it is excused
// (event provider.down_excused: no slash, no lease closed, the streak unchanged).
package trust
