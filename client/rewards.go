package client

import (
	"context"
	"fmt"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// Emission reads the emission schedule, what was minted and burned (docs/economics.md).
func (c *Client) Emission(ctx context.Context) (api.EmissionView, error) {
	var v api.EmissionView
	return v, c.Query(ctx, api.QueryEmission, nil, &v)
}

// Rewards reads what an address is owed and has earned, and the last epoch's verdict.
func (c *Client) Rewards(ctx context.Context, a tx.Address) (api.RewardsView, error) {
	var v api.RewardsView
	return v, c.Query(ctx, api.QueryRewards, api.AddressRequest{Address: a}, &v)
}

// MaxRewardEpochs bounds how many epochs one RewardEpochs call reads (a block each).
const MaxRewardEpochs = 1000

// EpochRewards is one tallied epoch's rewards, as the block that tallied it recorded them.
type EpochRewards struct {
	Epoch     uint64                          `json:"epoch"`
	Height    int64                           `json:"height"` // the block that tallied it
	Pots      api.RewardPots                  `json:"pots"`
	Providers map[tx.Address]*api.EpochReward `json:"providers"`
	Auditors  map[tx.Address]uint64           `json:"auditors"`
}

// TallyHeight is the block that tallies epoch e on a chain of epochBlocks-block epochs: the last of epoch e+1.
func TallyHeight(e, epochBlocks uint64) int64 { return int64((e + 2) * epochBlocks) }

// RewardEpochs reads the last n tallied epochs' rewards (newest first) from the blocks that tallied them: the
// ledger keeps only each provider's totals and last verdict; the history is in the blocks' events. An epoch whose
// block the node no longer has ends the list (err nil: what was found).
func (c *Client) RewardEpochs(ctx context.Context, n int) ([]EpochRewards, error) {
	if n < 1 || n > MaxRewardEpochs {
		return nil, fmt.Errorf("epochs %d: read 1..%d at a time", n, MaxRewardEpochs)
	}
	em, err := c.Emission(ctx)
	if err != nil {
		return nil, err
	}
	if !em.On {
		return nil, nil
	}
	var out []EpochRewards
	for e := em.NextEpoch; e > 0 && len(out) < n; e-- {
		er, err := c.EpochRewardsAt(ctx, e-1, em.EpochBlocks)
		if err != nil {
			if len(out) > 0 {
				return out, nil // pruned by the node: what it still has
			}
			return nil, err
		}
		out = append(out, er)
	}
	return out, nil
}

// EpochRewardsAt reads epoch e's rewards from the block that tallied it.
func (c *Client) EpochRewardsAt(ctx context.Context, e, epochBlocks uint64) (EpochRewards, error) {
	h := TallyHeight(e, epochBlocks)
	er := EpochRewards{Epoch: e, Height: h, Providers: map[tx.Address]*api.EpochReward{}, Auditors: map[tx.Address]uint64{}}
	var res rawResults
	if err := c.rawGet(ctx, "block_results", heightParam(h), &res); err != nil {
		return er, fmt.Errorf("epoch %d's tally (block %d): %w", e, h, err)
	}
	of := func(a tx.Address) *api.EpochReward {
		r := er.Providers[a]
		if r == nil {
			r = &api.EpochReward{Epoch: e, Provider: a}
			er.Providers[a] = r
		}
		return r
	}
	for _, raw := range res.FinalizeBlockEvents {
		ev := raw.event("", 0)
		switch ev.Type {
		case api.EventProviderRewarded:
			got, err := api.ParseProviderRewarded(ev.Attrs)
			if err != nil || got.Epoch != e {
				continue // another epoch's (an epoch with no audit set is skipped) or unreadable
			}
			r := of(got.Provider)
			r.Availability, r.Weight, r.Why = got.Availability, got.Weight, got.Why
		case api.EventWorkRewarded:
			got, err := api.ParseWorkRewarded(ev.Attrs)
			if err != nil || got.Epoch != e {
				continue
			}
			r := of(got.Provider)
			r.Work, r.Burned, r.Cap, r.WorkWhy = got.Work, got.Burned, got.Cap, got.WorkWhy
		case api.EventAuditorRewarded:
			a, err := tx.ParseAddress(ev.Attrs[api.AttrAuditor])
			if err != nil || ev.Attrs[api.AttrEpoch] != fmt.Sprint(e) {
				continue
			}
			var amount uint64
			if _, err := fmt.Sscan(ev.Attrs[api.AttrAmount], &amount); err == nil {
				er.Auditors[a] += amount
			}
		case api.EventEpochRewarded:
			if p, err := api.ParseEpochRewarded(ev.Attrs); err == nil && p.Epoch == e {
				er.Pots = p
			}
		}
	}
	return er, nil
}
