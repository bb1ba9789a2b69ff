package provider

import (
	"context"
	"log/slog"
	"time"

	"github.com/sparenet/spare/ledger/tx"
)

// TestRepairer is the daemon's repairer (repair.go) for repair_test.go, on any shard store and ledger, its pass
// every every and its source providers given up on after stall.
type TestRepairer struct{ r *repairer }

func NewTestRepairer(me tx.Address, s *Shards, l RepairLedger, log *slog.Logger, every, stall time.Duration) *TestRepairer {
	r := newRepairer(me, s, l, log)
	r.every, r.stall, r.base = every, stall, time.Minute
	return &TestRepairer{r}
}

// Pass is one pass: the shards it rebuilt and those it failed to.
func (t *TestRepairer) Pass(ctx context.Context) (repaired, failed int) { return t.r.pass(ctx) }

// Run passes at once, when kicked and every every, until ctx ends.
func (t *TestRepairer) Run(ctx context.Context) { t.r.run(ctx) }

// Kick asks for a pass now.
func (t *TestRepairer) Kick() { t.r.kick() }
