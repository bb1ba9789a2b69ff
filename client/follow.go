package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Event is one ledger event, from a transaction or from the block's own work (auctions, depletions...).
type Event struct {
	Type   string            `json:"type"`
	Attrs  map[string]string `json:"attrs"`
	TxHash string            `json:"tx_hash,omitempty"` // empty for block events
	Code   uint32            `json:"code,omitempty"`    // the transaction's result code
}

// Block is a committed block's transactions, their results and events, in order.
type Block struct {
	Height    int64      `json:"height"`
	Time      time.Time  `json:"time"`
	Hash      string     `json:"hash"`     // upper-case hex, as CometBFT prints it
	Proposer  string     `json:"proposer"` // the proposing validator's address, upper-case hex
	Txs       [][]byte   `json:"-"`
	TxResults []TxResult `json:"tx_results"` // one per transaction, same order
	Events    []Event    `json:"events"`
}

// TxResult is how the ledger answered one transaction of a block.
type TxResult struct {
	Hash string `json:"hash"` // upper-case hex SHA-256 of the transaction bytes
	Code uint32 `json:"code"`
	Log  string `json:"log,omitempty"`
}

// Follow calls fn for every block from height from (1 if from < 1) on, in order, without gaps, until ctx ends or
// fn returns an error. A block is delivered once the application has committed it, so queries made by fn see it. When the node is unreachable it retries with backoff and resumes where it stopped, so a
// follower that was disconnected catches up on everything it missed.
func (c *Client) Follow(ctx context.Context, from int64, fn func(Block) error) error {
	return c.FollowPaced(ctx, from, nil, fn)
}

// FollowPaced is Follow asking the node for new blocks every pace() (nil, or a result of 0: the client's poll
// interval): a follower that can wait (a long job's end) asks less often than one racing a block (a lease's start).
func (c *Client) FollowPaced(ctx context.Context, from int64, pace func() time.Duration, fn func(Block) error) error {
	if from < 1 {
		from = 1
	}
	next := from
	backoff := c.poll
	for {
		st, err := c.rpc.Status(ctx)
		if err == nil {
			latest := st.SyncInfo.LatestBlockHeight
			// A block is stored (and its results readable) before the application commits it: deliver blocks
			// only up to the app's committed height, so a handler that queries the state sees that block in it.
			if info, ierr := c.rpc.ABCIInfo(ctx); ierr == nil {
				latest = min(latest, info.Response.LastBlockHeight)
			} else {
				err = ierr
			}
			for next <= latest && err == nil {
				var b Block
				if b, err = c.FetchBlock(ctx, next); err == nil {
					if ferr := fn(b); ferr != nil {
						return ferr
					}
					next++
				}
			}
		}
		wait := c.poll
		if pace != nil {
			if p := pace(); p > 0 {
				wait = p
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.dropConns()
			c.log.Warn("node unreachable, retrying", "node", c.url, "next_height", next, "err", err)
			backoff = min(backoff*2, 5*time.Second)
			wait = backoff
		} else {
			backoff = c.poll
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// FetchBlock reads one block and its results.
func (c *Client) FetchBlock(ctx context.Context, height int64) (Block, error) {
	var blk rawBlock
	if err := c.rawGet(ctx, "block", heightParam(height), &blk); err != nil {
		return Block{}, err
	}
	var res rawResults
	if err := c.rawGet(ctx, "block_results", heightParam(height), &res); err != nil {
		return Block{}, err
	}
	if blk.Block.Header.Height != strconv.FormatInt(height, 10) || res.Height != blk.Block.Header.Height {
		return Block{}, fmt.Errorf("block %d: the node answered heights %q and %q", height, blk.Block.Header.Height, res.Height)
	}
	b := Block{Height: height, Time: blk.Block.Header.Time, Hash: blk.BlockID.Hash, Proposer: blk.Block.Header.ProposerAddress}
	for i, raw := range blk.Block.Data.Txs {
		b.Txs = append(b.Txs, raw)
		sum := sha256.Sum256(raw)
		h := strings.ToUpper(hex.EncodeToString(sum[:]))
		tr := TxResult{Hash: h}
		if i < len(res.TxsResults) {
			r := res.TxsResults[i]
			tr.Code, tr.Log = r.Code, r.Log
			for _, e := range r.Events {
				b.Events = append(b.Events, e.event(h, r.Code))
			}
		}
		b.TxResults = append(b.TxResults, tr)
	}
	for _, e := range res.FinalizeBlockEvents {
		b.Events = append(b.Events, e.event("", 0))
	}
	return b, nil
}
