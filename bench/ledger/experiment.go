package main

import (
	"context"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger"
)

// noIndex is the "spare-noindex" experiment: the real ledger, with every event attribute of FinalizeBlock's
// results marked not to be indexed. Events are still returned (and stored with the block results), and
// transactions are still indexed by hash, so the difference to "spare" is the cost of CometBFT's kv indexer
// writing one key per indexed attribute (and the LevelDB compaction that follows).
type noIndex struct{ *ledger.App }

func (a noIndex) FinalizeBlock(ctx context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	res, err := a.App.FinalizeBlock(ctx, req)
	if err != nil {
		return res, err
	}
	for _, r := range res.TxResults {
		unindex(r.Events)
	}
	unindex(res.Events)
	return res, nil
}

func unindex(evs []abci.Event) {
	for i := range evs {
		for j := range evs[i].Attributes {
			evs[i].Attributes[j].Index = false
		}
	}
}
