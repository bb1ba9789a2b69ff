package ledger

// testMods are the ledger's modules, wired as an App wires them, for tests that call a module directly on a
// context of their own (benchmarks that build state fast, invariant checks that read it).
var testMods = newModules()
