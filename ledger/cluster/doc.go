// Package cluster is the ledger's multi-node jobs: published round trips, cluster orders, their placement
// under a round-trip bound, the failure policy and restarts.
//
// A cluster order (CreateClusterOrder) asks for Nodes members on distinct providers whose every pair
// has a published round trip within MaxRTTMicros. Providers bid per member as on any order; the auction
// leases, all at once or not at all, the cheapest set of bidders that fits the bound (match.Cluster, bounded
// search). Until such a set exists the order stays open and each new bid after the window tries again. One
// escrow holds Deposit per member; each member's lease is paid its own price. Ranks follow the set's order,
// cheapest first: rank 0 hosts the rendezvous (MASTER_ADDR).
//
// Round trips come from the providers themselves: each publishes its latest measurements to up to
// tx.MaxLatencyPeers other providers (PublishLatency), at most once every LatencyIntervalBlocks. A pair counts
// only when both of its providers measured it, at the worse of the two measurements: one provider alone cannot
// claim to be near another. Any other pair is too far.
//
// Failure: a member's lease that ends without completing — closed by either side, not started in time, or
// closed by the auditors' down verdict — or completes with a non-zero exit code (a crashed rank leaves the
// others waiting in their collectives) closes every other running member at once, each billed to now by the
// ordinary rules, so refunds are exact. With OnFailureClose the cluster then ends, failed.
//
// Restart (OnFailureRestart): as a distributed job restarts every rank from its last checkpoint when one rank
// dies (torchrun's elastic restarts do the same), the whole cluster is leased again. The tenant escrowed
// Deposit × Nodes once more for each of MaxRestarts; after the others are closed, that reserve funds a new
// cluster order for the same job — the next generation: a new order id, the same resources, price bound and
// round-trip bound — and the failed member's provider, and every earlier generation's failed one, may not bid
// on it (CodeExcluded). The old cluster records its successor (next_order), the new one its predecessor. A
// failure the tenant caused (the tenant closed a member; a provider closed a member that never started, for no
// manifest came or it was refused) or a member running out of its duration or deposit is not restarted: a new
// run would end the same way. When no restart is left, or the new order ends unleased,
// the cluster ends failed or cancelled as with OnFailureClose, and the unspent reserve goes back to the tenant.
// Members learn their generation as SPARE_RESTART_COUNT.
package cluster
