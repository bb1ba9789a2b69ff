package provider

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// Keeping the stake bonded (issue 14, finding 3). A slash leaves a provider below the stake its hardware needs,
// and the ledger then refuses every bid. The daemon bonds the difference back — at start-up, when a
// provider.slashed event names it, and every StakeCheckEvery — but what it bonds to restore slashed stake comes
// out of stake_topup_budget (provider.toml), counted over the life of its data directory (kept in the store, so
// a restart or a crash loop does not refill it). When the budget or the account's balance does not allow a top-up,
// it says why at error level, and StakeProblem (and `spare provider status`) says it too: the provider stays
// registered and audited, and a provider that stays down is jailed by the ledger.

// StakeCheckEvery is how often the daemon compares its bonded stake with what it needs.
const StakeCheckEvery = time.Minute

var keyToppedUp = []byte("stake_topped_up") // uspr bonded back after slashes, over the store's life

// ToppedUp is what the daemon has bonded to restore slashed stake so far (counted against stake_topup_budget).
func (s *Store) ToppedUp() (uint64, error) {
	var n uint64
	err := s.db.View(func(t *bolt.Tx) error {
		if v := t.Bucket(bucketMeta).Get(keyToppedUp); len(v) == 8 {
			n = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return n, err
}

// addToppedUp adds delta (negative: a top-up the ledger refused) to the recorded top-ups.
func (s *Store) addToppedUp(delta int64) error {
	return s.db.Update(func(t *bolt.Tx) error {
		b := t.Bucket(bucketMeta)
		var n uint64
		if v := b.Get(keyToppedUp); len(v) == 8 {
			n = binary.BigEndian.Uint64(v)
		}
		return b.Put(keyToppedUp, idBytes(uint64(int64(n)+delta)))
	})
}

// sendBond bonds amount, restore of it out of the top-up budget. The budget is charged before the transaction
// goes out — a crash between the two must not give the next start the same budget again — and refunded only
// when the ledger refused it (a result code); a transaction whose fate is unknown stays charged.
func (d *Daemon) sendBond(ctx context.Context, amount, restore uint64, more ...tx.Msg) error {
	if restore > 0 {
		if err := d.store.addToppedUp(int64(restore)); err != nil {
			return err
		}
	}
	_, err := d.sender.Send(ctx, append(more, &tx.Bond{Amount: amount})...)
	var code tx.Code
	if err != nil && restore > 0 && errors.As(err, &code) {
		if err := d.store.addToppedUp(-int64(restore)); err != nil {
			d.log.Error("recording the stake top-up", "err", err)
		}
	}
	return err
}

// stakeTarget is the stake the daemon keeps bonded: `stake`, or the chain's minimum for the declared hardware.
func (d *Daemon) stakeTarget(params *api.Params) uint64 {
	want := params.RequiredStake(d.cfg.Hardware.Ledger().GPUCount())
	if d.cfg.Stake != "auto" {
		want, _ = client.ParseAmount(d.cfg.Stake)
	}
	return want
}

// topUpBudget is stake_topup_budget in uspr ("auto": the stake target).
func (d *Daemon) topUpBudget(target uint64) uint64 {
	if d.cfg.StakeTopUpBudget == "" || d.cfg.StakeTopUpBudget == "auto" {
		return target
	}
	b, _ := client.ParseAmount(d.cfg.StakeTopUpBudget)
	return b
}

// errStakeRefused is a top-up the daemon will not or cannot make (budget, balance): said, not retried at once.
var errStakeRefused = errors.New("stake top-up refused")

// stakeToBond is what to bond to bring cur (the ledger's record; nil before registration) up to target, and the
// part of it that restores slashed stake (counted against the budget). An error wrapping errStakeRefused says
// why the budget or the balance does not allow it.
func (d *Daemon) stakeToBond(ctx context.Context, cur *api.ProviderView, target uint64) (bond, restore uint64, err error) {
	stake, slashed := uint64(0), uint64(0)
	if cur != nil {
		stake, slashed = cur.Stake, cur.Slashed
	}
	if stake >= target {
		return 0, 0, nil
	}
	bond = target - stake
	spent, err := d.store.ToppedUp()
	if err != nil {
		return 0, 0, err
	}
	if slashed > spent {
		restore = min(bond, slashed-spent)
	}
	if budget := d.topUpBudget(target); restore > 0 && spent+restore > budget {
		return 0, 0, fmt.Errorf("%w: bonded %s, needs %s after slashes of %s; stake_topup_budget %s, of which %s is spent: "+
			"%s more is needed (raise stake_topup_budget in provider.toml, or bond by hand with spare bond)", errStakeRefused,
			client.FormatAmount(stake), client.FormatAmount(target), client.FormatAmount(slashed), client.FormatAmount(budget),
			client.FormatAmount(spent), client.FormatAmount(spent+restore-budget))
	}
	acc, err := d.c.Account(ctx, d.Address())
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		return 0, 0, err
	}
	if acc.Balance < bond {
		return 0, 0, fmt.Errorf("%w: bonded %s, needs %s: the account %s holds %s, %s short of the top-up (send it SPR)",
			errStakeRefused, client.FormatAmount(stake), client.FormatAmount(target), d.Address(),
			client.FormatAmount(acc.Balance), client.FormatAmount(bond-acc.Balance))
	}
	return bond, restore, nil
}

// setStakeProblem records (and says, at error level, when it changes) why the stake is not what the provider
// needs; "" clears it.
func (d *Daemon) setStakeProblem(p string) {
	d.mu.Lock()
	old := d.stakeProblem
	d.stakeProblem = p
	d.mu.Unlock()
	switch {
	case p != "" && p != old:
		d.log.Error("the provider's stake is below what it needs to bid, and the daemon will not top it up", "provider", d.Address(), "why", p)
	case p == "" && old != "":
		d.log.Info("stake restored", "provider", d.Address())
	}
}

// StakeProblem is why the daemon last could not keep its stake bonded ("" when nothing is wrong).
func (d *Daemon) StakeProblem() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stakeProblem
}

// keepStaked bonds what the provider lacks of its stake target, within the top-up budget. One runs at a time; a
// call while one runs is dropped (the running one reads the ledger afresh).
func (d *Daemon) keepStaked(ctx context.Context) {
	if !d.staking.CompareAndSwap(false, true) {
		return
	}
	defer d.staking.Store(false)
	params, err := d.c.Params(ctx)
	if err != nil {
		d.log.Warn("stake check", "err", err)
		return
	}
	cur, err := d.c.Provider(ctx, d.Address())
	if err != nil {
		d.log.Warn("stake check", "err", err)
		return
	}
	target := d.stakeTarget(params)
	bond, restore, err := d.stakeToBond(ctx, &cur, target)
	switch {
	case errors.Is(err, errStakeRefused):
		d.setStakeProblem(err.Error())
		return
	case err != nil:
		d.log.Warn("stake check", "err", err)
		return
	case bond == 0:
		d.setStakeProblem("")
		return
	}
	if err := d.sendBond(ctx, bond, restore); err != nil {
		if ctx.Err() == nil {
			d.log.Error("stake top-up failed", "provider", d.Address(), "amount", client.FormatAmount(bond), "err", err)
		}
		return
	}
	d.setStakeProblem("")
	d.log.Warn("stake topped up after a slash", "provider", d.Address(), "bonded", client.FormatAmount(bond),
		"stake", client.FormatAmount(cur.Stake+bond), "from_budget", client.FormatAmount(restore))
}

// watchStake runs keepStaked every StakeCheckEvery until ctx ends (a slash event also triggers it at once).
func (d *Daemon) watchStake(ctx context.Context) {
	t := time.NewTicker(StakeCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.keepStaked(ctx)
		}
	}
}
