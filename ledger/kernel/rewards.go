package kernel

import (
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// LeasedGPUs is the number of GPUs held by active leases (kept only with rewards on: the network's paid
// utilisation, which tapers the availability rewards).
func (c *Ctx) LeasedGPUs() uint64 {
	if b, ok := c.KV.Get(schema.KeyLeasedGPUs); ok {
		return schema.UnBE64(string(b))
	}
	return 0
}

// LeaseGPUs adds a lease of order o that starts (up) or stops running (!up) to the GPUs held by active leases.
func (c *Ctx) LeaseGPUs(o *api.Order, up bool) {
	n := uint64(o.Resources.GPUCount)
	if !c.Params.RewardsOn() || n == 0 {
		return
	}
	cur := c.LeasedGPUs()
	switch {
	case up:
		cur += n
	case cur >= n:
		cur -= n
	default:
		panic("ledger: leased GPUs below zero")
	}
	if cur == 0 {
		c.KV.Delete(schema.KeyLeasedGPUs)
		return
	}
	c.KV.Set(schema.KeyLeasedGPUs, []byte(schema.BE64(cur)))
}

// Accrue mints amount to a provider's unclaimed rewards (the supply's rewards holding) and counts it earned. The
// caller stores p.
func (c *Ctx) Accrue(p *api.Provider, amount uint64) {
	if amount == 0 {
		return
	}
	c.Mint(InRewards, amount)
	Owe(p, amount)
}

// Owe counts amount in a provider's unclaimed and earned rewards without minting it: the caller mints the sum of
// a pass's amounts once (the liveness tally credits thousands of providers; one supply write, not thousands).
func Owe(p *api.Provider, amount uint64) {
	p.RewardsOwed = tx.SatAdd(p.RewardsOwed, amount) // cannot saturate: bounded by the supply
	p.RewardsEarned = tx.SatAdd(p.RewardsEarned, amount)
}

// EpochOf is the auditor epoch of block h (0 with auditing off).
func (c *Ctx) EpochOf(h int64) uint64 {
	if c.Params.EpochBlocks == 0 || h < 1 {
		return 0
	}
	return uint64(h-1) / c.Params.EpochBlocks
}

// RecordWork counts what a completed, paid lease of provider a burned toward a's work in this block's epoch: the
// epoch's tally pays work rewards against it (package rewards). Nothing with rewards off or nothing burned.
func (c *Ctx) RecordWork(a tx.Address, burned uint64) {
	if !c.Params.RewardsOn() || burned == 0 {
		return
	}
	key := schema.WorkBurnKey(c.EpochOf(c.Height), a)
	var cur uint64
	if b, ok := c.KV.Get(key); ok {
		cur = schema.UnBE64(string(b))
	}
	c.KV.Set(key, []byte(schema.BE64(tx.SatAdd(cur, burned))))
}
