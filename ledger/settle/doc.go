// Package settle is lease settlement: escrow, lazy settlement, the lease lifecycle (start, completion with a
// signed receipt, close, top-up, withdrawal, extension) and the sweeps that close leases at their deadlines.
//
// Escrow and lazy settlement. A lease's deposit sits in escrow. Nothing is paid per block: what the provider has
// earned is computed when the lease is touched, always from the start,
//
//	earned(t) = floor(price × (min(t, end) − started) / 1h)
//
// so rounding never accumulates. end = started + min(duration, the time the deposit lasts); active leases are
// indexed by when they close, and each block visits only the leases that close in it.
//
// Completion grace. A provider stops a workload at the end of its duration and only then can hash its outputs and
// sign the receipt, so its CompleteLease always lands after the end. A lease that runs to its duration (not out of
// its deposit) therefore stays active for params.completion_grace_sec after its end: billing has stopped (earned
// is bounded by end, whenever the lease is settled), the provider may still complete it (the receipt is recorded,
// the tenant pays exactly price × duration) or commit a replicated run's result, and the tenant can no longer
// close it (that would only drop the receipt it paid for). Once the grace has passed, the sweep closes it as
// before, paid to its end. The grace is bounded (MaxCompletionGraceSec), so escrow is never held longer.
//
// Extending a lease. A provider says on the ledger how long it lets its leases run in all (ProviderInfo's
// MaxLeaseSec, 0: no extensions); the lease's tenant may lengthen a pending or active lease up to that, and pays
// into escrow, in the same message, what the new duration needs beyond the deposit, so that the lease runs to its
// new end rather than running out of deposit before it. The end moves in the index of billing ends with it.
package settle
