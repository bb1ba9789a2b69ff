// Package schema is the layout of the ledger's state: the key of every stored object and index, and the
// canonical encoding of every stored object. Every object is encoded with the transaction wire codec, so state
// bytes (and therefore the app hash) are canonical; every field has one bound, enforced by its encoder (a value
// over it panics: the transaction that produced it fails alone) and by its decoder alike. Decoders still read
// every older encoding the chain has written (ledger/testdata/golden/older-state.txt pins them). Pure: no I/O.
package schema
