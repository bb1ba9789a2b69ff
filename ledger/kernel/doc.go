// Package kernel is what every ledger module shares: the execution context (Ctx: the state, metered in gas, the
// block's height, time and seed, params, events), token holdings and the supply record they keep in step
// (Move, Debit, Credit), id sequences, typed access to the stored objects that several modules read, the
// deadline sweep that the end-of-block work runs over its indexes, invariant panics (Must, MustDecode), the gas
// schedule and meter, and the hooks through which modules react to each other (Hooks).
//
// A module never imports another module: it declares the few methods it needs of the others (its keeper's
// interfaces) and registers hooks; the app package wires them.
package kernel
