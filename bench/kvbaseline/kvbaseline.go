// Package kvbaseline is the reference ABCI application the ledger benchmark (bench/ledger) compares Spare
// against: the least an application can do while still authenticating its transactions.
//
// A transaction is
//
//	pubkey (32 bytes) | ed25519 signature (64 bytes) | payload "key=value"
//
// where the signature covers the payload. The app verifies the signature (crypto/ed25519 from the standard
// library) when a transaction first enters the mempool (CheckTx of type New) and again, one by one, in
// FinalizeBlock, stores key=value in a map and does nothing else: no accounts, nonces, fees, events or
// persistence. The app hash is SHA-256(height || number of stored transactions).
//
// Recheck (CheckTx of type Recheck, run by CometBFT after every block for the transactions left in the mempool)
// answers OK without verifying again: a stateless transaction cannot become invalid, so a third verification
// would only make the baseline slower than it needs to be. The baseline thus pays exactly two signature
// verifications per transaction, the naive cost Spare's signature cache is meant to beat.
//
// App is safe for concurrent use, as node.Start (per-connection local client creator) requires.
package kvbaseline

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"sync"

	abci "github.com/cometbft/cometbft/abci/types"
)

// Result codes.
const (
	CodeOK           uint32 = 0
	CodeMalformed    uint32 = 1 // shorter than pubkey+signature, or payload not key=value
	CodeBadSignature uint32 = 2
)

// HeaderLen is the length of the pubkey and signature in front of the payload.
const HeaderLen = ed25519.PublicKeySize + ed25519.SignatureSize

// NewTx signs payload with priv and frames it as pubkey | signature | payload.
func NewTx(priv ed25519.PrivateKey, payload []byte) []byte {
	out := make([]byte, 0, HeaderLen+len(payload))
	out = append(out, priv.Public().(ed25519.PublicKey)...)
	out = append(out, ed25519.Sign(priv, payload)...)
	return append(out, payload...)
}

// Parse splits a transaction into its parts without verifying the signature. ok is false when it is too short
// or the payload is not key=value.
func Parse(raw []byte) (pub ed25519.PublicKey, sig, payload []byte, ok bool) {
	if len(raw) < HeaderLen {
		return nil, nil, nil, false
	}
	pub = ed25519.PublicKey(raw[:ed25519.PublicKeySize])
	sig = raw[ed25519.PublicKeySize:HeaderLen]
	payload = raw[HeaderLen:]
	if !bytes.Contains(payload, []byte("=")) {
		return nil, nil, nil, false
	}
	return pub, sig, payload, true
}

// verify parses raw and checks its signature, returning a result code.
func verify(raw []byte) (payload []byte, code uint32) {
	pub, sig, payload, ok := Parse(raw)
	if !ok {
		return nil, CodeMalformed
	}
	if !ed25519.Verify(pub, payload, sig) {
		return nil, CodeBadSignature
	}
	return payload, CodeOK
}

// App is the baseline key/value application.
type App struct {
	abci.BaseApplication

	mu      sync.Mutex
	kv      map[string][]byte
	count   uint64 // transactions stored so far
	height  int64
	appHash []byte
}

var _ abci.Application = (*App)(nil)

// New returns an empty App.
func New() *App { return &App{kv: map[string][]byte{}} }

// Len is the number of distinct keys stored.
func (a *App) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.kv)
}

// Info reports the last block.
func (a *App) Info(context.Context, *abci.RequestInfo) (*abci.ResponseInfo, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return &abci.ResponseInfo{Data: "kvbaseline", LastBlockHeight: a.height, LastBlockAppHash: a.appHash}, nil
}

// CheckTx verifies the signature of a new transaction; rechecks pass without work (see the package doc).
func (a *App) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	if req.Type == abci.CheckTxType_Recheck {
		return &abci.ResponseCheckTx{Code: CodeOK}, nil
	}
	_, code := verify(req.Tx)
	return &abci.ResponseCheckTx{Code: code}, nil
}

// FinalizeBlock verifies every transaction's signature again and stores the valid ones.
func (a *App) FinalizeBlock(_ context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	results := make([]*abci.ExecTxResult, len(req.Txs))
	payloads := make([][]byte, len(req.Txs))
	for i, raw := range req.Txs { // verify outside the lock: CheckTx may run meanwhile
		var code uint32
		payloads[i], code = verify(raw)
		results[i] = &abci.ExecTxResult{Code: code}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range payloads {
		if p == nil {
			continue
		}
		k, v, _ := bytes.Cut(p, []byte("="))
		a.kv[string(k)] = append([]byte(nil), v...)
		a.count++
	}
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(req.Height))
	binary.BigEndian.PutUint64(buf[8:], a.count)
	sum := sha256.Sum256(buf[:])
	a.height = req.Height
	a.appHash = sum[:]
	return &abci.ResponseFinalizeBlock{TxResults: results, AppHash: a.appHash}, nil
}

// Commit has nothing to persist.
func (a *App) Commit(context.Context, *abci.RequestCommit) (*abci.ResponseCommit, error) {
	return &abci.ResponseCommit{}, nil
}
