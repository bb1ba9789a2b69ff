package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/explorer/index"
)

// IndexResult is the explorer's indexer catching up from genesis on the chain the run produced, against the
// rate at which the node produced it during the measured window.
type IndexResult struct {
	Height         int64   `json:"height"`
	Txs            int64   `json:"txs"`
	Seconds        float64 `json:"seconds"`
	BlocksPerSec   float64 `json:"blocks_per_s"`
	TxPerSec       float64 `json:"tx_per_s"`
	ChainBlocksSec float64 `json:"chain_blocks_per_s"` // produced in the window
	ChainTxPerSec  float64 `json:"chain_tx_per_s"`
	RatioTx        float64 `json:"ratio_tx"` // indexed tx/s over produced tx/s: ≥ 1 keeps up
	RatioBlocks    float64 `json:"ratio_blocks"`
}

// measureIndex indexes the node's whole chain into a new SQLite file under home and times it.
func measureIndex(ctx context.Context, rpcURL, home string, windowBlocks, windowTxs int, window float64) (*IndexResult, error) {
	c, err := client.New(rpcURL, client.Options{})
	if err != nil {
		return nil, err
	}
	st, err := c.NodeStatus(ctx)
	if err != nil {
		return nil, err
	}
	target := st.SyncInfo.LatestBlockHeight
	db, err := index.Open(filepath.Join(home, "explorer.db"))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ix := index.New(db, c, nil)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	if p := os.Getenv("SPARE_INDEX_PROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	go func() { done <- ix.Run(ctx) }()
	for {
		h, err := db.Height(ctx)
		if err != nil {
			return nil, err
		}
		if h >= target {
			break
		}
		select {
		case err := <-done:
			return nil, fmt.Errorf("indexer stopped at height %d: %v", h, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	secs := time.Since(start).Seconds()
	cancel()
	<-done
	ov, err := db.Overview(context.Background())
	if err != nil {
		return nil, err
	}
	r := &IndexResult{Height: target, Txs: ov.Txs, Seconds: secs, BlocksPerSec: float64(target) / secs,
		TxPerSec: float64(ov.Txs) / secs, ChainBlocksSec: float64(windowBlocks) / window, ChainTxPerSec: float64(windowTxs) / window}
	if r.ChainTxPerSec > 0 {
		r.RatioTx = r.TxPerSec / r.ChainTxPerSec
	}
	if r.ChainBlocksSec > 0 {
		r.RatioBlocks = r.BlocksPerSec / r.ChainBlocksSec
	}
	return r, nil
}
