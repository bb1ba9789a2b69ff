// Package api is the ledger as its clients see it: the objects it stores (with their JSON forms), params and
// genesis, the paths, requests and views of its queries, the events it emits (typed, with named constants, and
// parsed strictly: a malformed attribute is an error, never a zero), and the one feasibility check that the
// ledger, providers and tenants share. Providers, tenants, the explorer and the SDK import this package and
// ledger/tx only, never the ledger's modules.
//
// Queries. The ABCI query path names the object ("order", "leases", ...); Data is a JSON request; the answer is
// JSON. Lists page with a cursor: pass the returned "next" as "after" to continue. Queries read the last
// committed state.
package api
