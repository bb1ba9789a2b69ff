package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	"github.com/cometbft/cometbft/types"
)

// op is one transaction a generator wants submitted, with what to do once its fate is known. done makes sure
// only the first of commit / rejection is acted on (a broadcast that times out may still have been accepted).
type op struct {
	kind     string
	onCommit func(code uint32)             // in a block (follower goroutine); may be nil
	onReject func(code uint32, retry bool) // not accepted; retry: nothing happened (mempool full)
	key      any                           // generator's signer, passed back to acked / resync
	done     atomic.Bool
}

func (o *op) commit(code uint32) {
	if o.done.CompareAndSwap(false, true) && o.onCommit != nil {
		o.onCommit(code)
	}
}

func (o *op) reject(code uint32, retry bool) {
	if o.done.CompareAndSwap(false, true) && o.onReject != nil {
		o.onReject(code, retry)
	}
}

// generator produces one worker's transactions. All methods but the op callbacks run on the worker goroutine.
type generator interface {
	// next returns the next signed transaction, or ok=false when there is nothing to send right now.
	next() (raw []byte, o *op, ok bool)
	// acked: the node accepted the transaction into its mempool (consume the nonce).
	acked(o *op)
	// resync: the node disagrees about the signer's nonce (bad nonce, or a broadcast whose outcome is unknown).
	resync(o *op)
	// badNonce reports whether a CheckTx code means the nonce was wrong.
	badNonce(code uint32) bool
}

// pendingTx is a submitted transaction not yet seen in a block.
type pendingTx struct {
	submit time.Time
	op     *op
	acked  atomic.Bool
	seen   atomic.Bool
}

// block is what the follower learns about one committed block.
type block struct {
	height  int64
	at      time.Time // when the follower got it: the commit time as a client sees it
	txs     [][]byte
	results []*abci.ExecTxResult
	events  []abci.Event // FinalizeBlock's own events (auctions, expiries...)
}

// engine drives the workers, matches committed transactions to submissions and keeps the statistics.
type engine struct {
	codeName func(uint32) string
	onBlock  func(*block) // app hook, after the block's transactions were matched; may be nil

	winStart, winEnd atomic.Int64 // unix nanos; 0 = not yet

	mu        sync.Mutex
	pending   map[[32]byte]*pendingTx
	height    int64 // last block processed
	firstSeen chan struct{}
	firstOnce sync.Once
	// window statistics (by block commit time for throughput, by submit time for latency)
	blocks      int
	committed   int
	txBytes     int
	codes       map[uint32]int
	kinds       map[string]int // own transactions committed in the window, by kind
	unknown     int            // committed transactions that match no submission
	latencies   []time.Duration
	droppedKind map[string]int

	acked       atomic.Int64
	mempoolFull atomic.Int64
	rpcErrors   atomic.Int64
	rejMu       sync.Mutex
	rejected    map[string]int
	lastRPCErr  atomic.Value
}

func newEngine(codeName func(uint32) string) *engine {
	return &engine{
		codeName: codeName, pending: map[[32]byte]*pendingTx{}, firstSeen: make(chan struct{}),
		codes: map[uint32]int{}, kinds: map[string]int{}, rejected: map[string]int{}, droppedKind: map[string]int{},
	}
}

func (e *engine) inWindow(t time.Time) bool {
	s, end := e.winStart.Load(), e.winEnd.Load()
	n := t.UnixNano()
	return s != 0 && n >= s && (end == 0 || n < end)
}

func (e *engine) put(h [32]byte, p *pendingTx) {
	e.mu.Lock()
	e.pending[h] = p
	e.mu.Unlock()
}

func (e *engine) del(h [32]byte, p *pendingTx) {
	e.mu.Lock()
	if e.pending[h] == p {
		delete(e.pending, h)
	}
	e.mu.Unlock()
}

// process matches a committed block against the submissions.
func (e *engine) process(b *block) {
	inWin := e.inWindow(b.at)
	type hit struct {
		p    *pendingTx
		code uint32
	}
	hits := make([]hit, 0, len(b.txs))
	e.mu.Lock()
	if b.height <= e.height {
		e.mu.Unlock()
		return
	}
	e.height = b.height
	if inWin {
		e.blocks++
	}
	for i, raw := range b.txs {
		var code uint32
		if i < len(b.results) && b.results[i] != nil {
			code = b.results[i].Code
		}
		h := sha256.Sum256(raw)
		p := e.pending[h]
		if p != nil {
			delete(e.pending, h)
			p.seen.Store(true)
			hits = append(hits, hit{p, code})
			if e.inWindow(p.submit) {
				e.latencies = append(e.latencies, b.at.Sub(p.submit))
			}
		}
		if inWin {
			e.committed++
			e.txBytes += len(raw)
			e.codes[code]++
			if p != nil {
				e.kinds[p.op.kind]++
			} else {
				e.unknown++
			}
		}
	}
	e.mu.Unlock()
	for _, h := range hits {
		h.p.op.commit(h.code)
	}
	if e.onBlock != nil {
		e.onBlock(b)
	}
	e.firstOnce.Do(func() { close(e.firstSeen) })
}

// pendingAcked counts acknowledged transactions not yet seen in a block.
func (e *engine) pendingAcked() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, p := range e.pending {
		if p.acked.Load() {
			n++
		}
	}
	return n
}

func (e *engine) reject(code uint32) {
	e.rejMu.Lock()
	e.rejected[e.codeName(code)]++
	e.rejMu.Unlock()
}

func isMempoolFull(err error) bool {
	s := err.Error()
	return strings.Contains(s, "mempool is full") || strings.Contains(s, "still rechecking")
}

// worker submits gen's transactions with broadcast_tx_sync until stop closes. maxInflight (>0) caps the
// acknowledged transactions not yet seen in a block; ones unseen for 10 s stop counting (presumed dropped).
func (e *engine) worker(ctx context.Context, gen generator, rpc *rpchttp.HTTP, maxInflight int, stop <-chan struct{}) {
	var queue []*pendingTx
	backoff := time.Duration(0)
	for {
		select {
		case <-stop:
			return
		default:
		}
		if maxInflight > 0 {
			now := time.Now()
			k := 0
			for k < len(queue) && (queue[k].seen.Load() || now.Sub(queue[k].submit) > 10*time.Second) {
				k++
			}
			queue = queue[k:]
			if len(queue) >= maxInflight {
				n := 0 // the front may wait on a slow tx while later ones were seen
				for _, p := range queue {
					if !p.seen.Load() {
						n++
					}
				}
				if n >= maxInflight {
					time.Sleep(2 * time.Millisecond)
					continue
				}
			}
		}
		raw, o, ok := gen.next()
		if !ok {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		h := sha256.Sum256(raw)
		p := &pendingTx{submit: time.Now(), op: o}
		e.put(h, p) // before broadcasting: the block may be seen before the answer
		res, err := rpc.BroadcastTxSync(ctx, raw)
		switch {
		case err != nil && isMempoolFull(err):
			e.del(h, p)
			e.mempoolFull.Add(1)
			o.reject(0, true)
			backoff = min(max(2*backoff, 5*time.Millisecond), 200*time.Millisecond)
			sleepOrStop(backoff, stop)
		case err != nil:
			e.del(h, p)
			if ctx.Err() != nil {
				return
			}
			e.rpcErrors.Add(1)
			e.lastRPCErr.Store(err.Error())
			o.reject(0, false)
			gen.resync(o)
			sleepOrStop(50*time.Millisecond, stop)
		case res.Code != 0:
			e.del(h, p)
			e.reject(res.Code)
			o.reject(res.Code, false)
			if gen.badNonce(res.Code) {
				gen.resync(o)
			}
		default:
			backoff = 0
			p.acked.Store(true)
			e.acked.Add(1)
			gen.acked(o)
			if maxInflight > 0 {
				queue = append(queue, p)
			}
		}
	}
}

func sleepOrStop(d time.Duration, stop <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-stop:
	}
}

// followBus feeds e from the node's in-process event bus (NewBlock carries the block and FinalizeBlock's
// results; it is published right after the block is committed).
func followBus(ctx context.Context, bus *types.EventBus, e *engine) (<-chan error, error) {
	sub, err := bus.Subscribe(ctx, "bench-ledger", types.EventQueryNewBlock, 10_000)
	if err != nil {
		return nil, fmt.Errorf("subscribing to new blocks: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		defer func() { _ = bus.UnsubscribeAll(context.Background(), "bench-ledger") }()
		for {
			select {
			case <-ctx.Done():
				done <- nil
				return
			case <-sub.Canceled():
				done <- fmt.Errorf("block subscription cancelled: %v", sub.Err())
				return
			case msg := <-sub.Out():
				ev, ok := msg.Data().(types.EventDataNewBlock)
				if !ok {
					continue
				}
				b := &block{height: ev.Block.Height, at: time.Now(), results: ev.ResultFinalizeBlock.TxResults,
					events: ev.ResultFinalizeBlock.Events}
				b.txs = make([][]byte, len(ev.Block.Txs))
				for i, t := range ev.Block.Txs {
					b.txs[i] = t
				}
				e.process(b)
			}
		}
	}()
	return done, nil
}

// followRPC feeds e by polling the node over HTTP: Status, then Block and BlockResults for each new height.
func followRPC(ctx context.Context, rpc *rpchttp.HTTP, e *engine) (<-chan error, error) {
	done := make(chan error, 1)
	go func() {
		next := int64(1)
		for {
			st, err := rpc.Status(ctx)
			if err == nil {
				for h := next; h <= st.SyncInfo.LatestBlockHeight && err == nil; h++ {
					hh := h
					rb, err1 := rpc.Block(ctx, &hh)
					if err1 != nil {
						err = err1
						break
					}
					rr, err2 := rpc.BlockResults(ctx, &hh)
					if err2 != nil {
						err = err2
						break
					}
					b := &block{height: hh, at: time.Now(), results: rr.TxsResults, events: rr.FinalizeBlockEvents}
					for _, t := range rb.Block.Txs {
						b.txs = append(b.txs, t)
					}
					e.process(b)
					next = hh + 1
				}
			}
			if ctx.Err() != nil {
				done <- nil
				return
			}
			if err != nil && !errors.Is(err, context.Canceled) {
				e.rpcErrors.Add(1)
			}
			select {
			case <-ctx.Done():
				done <- nil
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return done, nil
}

// percentile of sorted durations, in milliseconds (nearest rank).
func percentileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i].Microseconds()) / 1000
}

func sortedCopy(d []time.Duration) []time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s
}
