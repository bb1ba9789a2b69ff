package node

import (
	"fmt"
	"log/slog"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"
	cfg "github.com/cometbft/cometbft/config"
	sm "github.com/cometbft/cometbft/state"
	blockidxkv "github.com/cometbft/cometbft/state/indexer/block/kv"
	"github.com/cometbft/cometbft/state/txindex"
	txkv "github.com/cometbft/cometbft/state/txindex/kv"
	"github.com/cometbft/cometbft/store"
	"github.com/cometbft/cometbft/types"
)

// repairWindow is how many of the latest blocks are checked for missing index entries at start.
const repairWindow = 64

// repairIndex re-indexes the latest blocks whose transactions are missing from the kv tx index. CometBFT saves a
// block's state before its indexer writes the block's events, so a crash in between (kill -9, power loss) leaves
// committed transactions that cannot be found by hash, and nothing replays them on restart. Clients confirm
// inclusion by hash, so the node repairs the gap before it starts.
func repairIndex(conf *cfg.Config, logger *slog.Logger) error {
	if conf.TxIndex.Indexer != "kv" {
		return nil
	}
	backend := dbm.BackendType(conf.DBBackend)
	bsDB, err := dbm.NewDB("blockstore", backend, conf.DBDir())
	if err != nil {
		return fmt.Errorf("node: index repair: %w", err)
	}
	defer bsDB.Close()
	stDB, err := dbm.NewDB("state", backend, conf.DBDir())
	if err != nil {
		return fmt.Errorf("node: index repair: %w", err)
	}
	defer stDB.Close()
	idxDB, err := dbm.NewDB("tx_index", backend, conf.DBDir())
	if err != nil {
		return fmt.Errorf("node: index repair: %w", err)
	}
	defer idxDB.Close()

	blocks := store.NewBlockStore(bsDB)
	states := sm.NewStore(stDB, sm.StoreOptions{DiscardABCIResponses: conf.Storage.DiscardABCIResponses})
	txIdx := txkv.NewTxIndex(idxDB)
	blockIdx := blockidxkv.New(dbm.NewPrefixDB(idxDB, []byte("block_events")))
	top := blocks.Height()
	for h := max(blocks.Base(), top-repairWindow+1, 1); h <= top; h++ {
		block := blocks.LoadBlock(h)
		if block == nil {
			continue
		}
		missing := false
		for _, t := range block.Txs {
			if r, err := txIdx.Get(t.Hash()); err != nil || r == nil {
				missing = true
				break
			}
		}
		if has, err := blockIdx.Has(h); err == nil && has && !missing {
			continue
		}
		resp, err := states.LoadFinalizeBlockResponse(h)
		if err != nil {
			continue // results not saved (the block itself will be replayed and indexed)
		}
		if len(resp.TxResults) == len(block.Txs) && len(block.Txs) > 0 {
			batch := txindex.NewBatch(int64(len(block.Txs)))
			for i, r := range resp.TxResults {
				if err := batch.Add(&abci.TxResult{Height: h, Index: uint32(i), Tx: block.Txs[i], Result: *r}); err != nil {
					return fmt.Errorf("node: index repair at height %d: %w", h, err)
				}
			}
			if err := txIdx.AddBatch(batch); err != nil {
				return fmt.Errorf("node: index repair at height %d: %w", h, err)
			}
		}
		if err := blockIdx.Index(eventsOf(h, resp)); err != nil {
			return fmt.Errorf("node: index repair at height %d: %w", h, err)
		}
		logger.Info("re-indexed a block the crash left unindexed", "height", h, "txs", len(block.Txs))
	}
	return nil
}

func eventsOf(h int64, resp *abci.ResponseFinalizeBlock) types.EventDataNewBlockEvents {
	return types.EventDataNewBlockEvents{Height: h, Events: resp.Events, NumTxs: int64(len(resp.TxResults))}
}
