package index

import (
	"context"

	"github.com/sparenet/spare/client"
)

// ApplyBlocks writes blocks through the indexer's own path, as if its node had served them: for the tests that
// feed what a hostile or broken node could.
func (ix *Indexer) ApplyBlocks(ctx context.Context, blocks ...client.Block) error {
	_, err := ix.applyBatch(ctx, blocks)
	return err
}
