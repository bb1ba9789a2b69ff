package provider

import (
	"context"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// AnnounceRestart tells the ledger the daemon is about to restart (its graceful shutdown: `spare provider start`
// on SIGTERM or Ctrl-C). A down verdict for the current epoch or the next is then excused: no lease closed, no
// slash (docs/ledger.md, "Liveness, slashing and jailing"). The ledger allows it once per
// api.RestartEveryEpochs epochs; a refusal is said and changes nothing else. It waits for the transaction's
// block, as long as ctx allows.
func (d *Daemon) AnnounceRestart(ctx context.Context) error {
	_, err := d.sender.Send(ctx, &tx.AnnounceRestart{})
	switch {
	case err == nil:
		d.log.Info("restart announced to the auditors' ledger: a down verdict for this epoch or the next is excused", "provider", d.Address())
	case client.IsCode(err, tx.CodeRateLimited):
		d.log.Warn("restart not announced: the ledger allows one announcement per epochs window; down epochs during this restart count",
			"epochs", api.RestartEveryEpochs, "err", err)
	case client.IsCode(err, tx.CodeBadEpoch), client.IsCode(err, tx.CodeProviderJailed), client.IsCode(err, tx.CodeNotProvider):
		return nil // no auditing, not audited, or not registered: nothing to excuse
	default:
		d.log.Warn("restart not announced", "err", err)
	}
	return err
}
