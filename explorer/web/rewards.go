package web

import (
	"context"
	"html/template"
	"net/http"
	"slices"
	"strconv"

	"github.com/sparenet/spare/explorer/index"
	"github.com/sparenet/spare/explorer/svg"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// The rewards pages (docs/economics.md): the network's emission against its burn, each epoch's split and the top
// earners (/rewards), every tallied epoch (/rewards/epochs) and every address paid (/rewards/earners). A
// provider's page shows its rewards by epoch and why.

// RewardsNote says how the ledger mints and burns, for the pages that show it.
const RewardsNote = "Every lease payment burns params.burn_ppm of it. Each auditor epoch mints at most its emission, which " +
	"decays smoothly under a cap, split by the epoch's tally at the end of the next epoch: a share to the auditors who " +
	"attested it with the majority; a share, tapered as more of the network's GPUs are leased, to the providers found up " +
	"whose hardware passed proof of GPU recently, by verified throughput × uptime × stake coverage; the rest to work, " +
	"each provider's share of the burns of its leases completed in the epoch, capped below those burns, so that renting " +
	"to yourself never pays. What a provider found down, an auditor not with the majority or the cap leaves is not " +
	"minted. Providers accrue their rewards until they claim them; one failing proof of GPU forfeits what it was owed " +
	"(burned). Auditors are paid to their balance."

// NoRewardsNote is what the pages say before any epoch's rewards are indexed.
const NoRewardsNote = "No epoch's rewards are indexed yet: this chain mints none (params.emission_first_epoch is 0, or " +
	"auditing is off), or no epoch has been tallied since. Lease payments' burns are counted all the same."

func rewardsNote(on bool) string {
	if on {
		return RewardsNote
	}
	return NoRewardsNote
}

// RewardsView is the network's rewards.
type RewardsView struct {
	index.RewardsOverview
	EpochList  index.List[index.RewardEpoch]  `json:"epoch_list"`  // the newest epochs
	TopEarners index.List[index.RewardTotals] `json:"top_earners"` // who earned most
	History    []index.RewardPoint            `json:"history"`     // the cumulative figures over time
	Note       string                         `json:"note"`        // RewardsNote, or NoRewardsNote
	// SupplyChart draws the emission offered, minted and burned since genesis; SplitChart each recent epoch's
	// rewards by pot against the burns behind its work rewards.
	SupplyChart template.HTML `json:"-"`
	SplitChart  template.HTML `json:"-"`
}

// splitEpochs is how many of the newest epochs the split chart draws.
const splitEpochs = 100

func (s *Server) loadRewards(r *http.Request) (any, error) {
	if err := known(r); err != nil {
		return nil, err
	}
	return s.memo(r.Context(), "rewards", func() (any, error) {
		ctx := r.Context()
		var v RewardsView
		var err error
		if v.RewardsOverview, err = s.db.RewardsOverview(ctx); err != nil {
			return nil, err
		}
		v.Note = rewardsNote(v.On)
		recent, err := s.db.RewardEpochs(ctx, index.Page{Limit: splitEpochs})
		if err != nil {
			return nil, err
		}
		v.EpochList = recent
		v.EpochList.Items, v.EpochList.Limit = slices.Clone(recent.Items[:min(10, len(recent.Items))]), 10
		if v.TopEarners, err = s.db.TopEarners(ctx, index.Page{Limit: 20}); err != nil {
			return nil, err
		}
		if v.History, err = s.db.RewardHistory(ctx, 60); err != nil {
			return nil, err
		}
		v.SupplyChart = supplyChart(v.History)
		v.SplitChart = splitChart(recent.Items)
		return v, nil
	})
}

// supplyChart draws what the schedule offered, what was minted of it and what was burned (lease payments' burns
// and forfeits), since genesis.
func supplyChart(hist []index.RewardPoint) template.HTML {
	em := svg.Series{Name: "emission offered", Href: "/rewards/epochs"}
	minted := svg.Series{Name: "minted", Href: "/rewards/epochs"}
	burned := svg.Series{Name: "burned", Href: "/events?type=lease.paid"}
	for _, p := range hist {
		em.Points = append(em.Points, svg.Point{X: p.TimeMs, Y: sprFloat(p.Emission)})
		minted.Points = append(minted.Points, svg.Point{X: p.TimeMs, Y: sprFloat(p.Minted)})
		burned.Points = append(burned.Points, svg.Point{X: p.TimeMs, Y: sprFloat(p.Burned)})
	}
	return svg.LineChart([]svg.Series{em, minted, burned}, svg.Options{Title: "Minted against burned, since genesis", YLabel: "SPR", TimeX: true})
}

// splitChart draws each epoch's rewards by pot, with the burns behind its work rewards (the work's burns), oldest
// first (epochs come newest first).
func splitChart(epochs []index.RewardEpoch) template.HTML {
	aud := svg.Series{Name: "to auditors", Href: "/events?type=auditor.rewarded"}
	av := svg.Series{Name: "availability", Href: "/events?type=provider.rewarded"}
	work := svg.Series{Name: "work", Href: "/events?type=provider.work_rewarded"}
	burns := svg.Series{Name: "work's burns", Href: "/events?type=lease.paid"}
	for _, e := range slices.Backward(epochs) {
		aud.Points = append(aud.Points, svg.Point{X: e.TimeMs, Y: sprFloat(e.Auditors)})
		av.Points = append(av.Points, svg.Point{X: e.TimeMs, Y: sprFloat(e.Availability)})
		work.Points = append(work.Points, svg.Point{X: e.TimeMs, Y: sprFloat(e.Work)})
		burns.Points = append(burns.Points, svg.Point{X: e.TimeMs, Y: sprFloat(e.Burns)})
	}
	return svg.LineChart([]svg.Series{aud, av, work, burns},
		svg.Options{Title: "Each epoch's rewards by pot (the newest " + strconv.Itoa(splitEpochs) + " epochs, by their tally)", YLabel: "SPR", TimeX: true})
}

// RewardEpochsView lists the tallied epochs.
type RewardEpochsView struct {
	index.List[index.RewardEpoch]
	Note  string `json:"note"`
	Pager Pager  `json:"-"`
}

func (s *Server) loadRewardEpochs(r *http.Request) (any, error) {
	if err := known(r); err != nil {
		return nil, err
	}
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	l, err := s.db.RewardEpochs(r.Context(), p)
	if err != nil {
		return nil, err
	}
	return RewardEpochsView{List: l, Note: rewardsNote(l.Total > 0), Pager: pagerOf(r, l)}, nil
}

// RewardEarnersView lists the addresses paid rewards, who earned most first.
type RewardEarnersView struct {
	index.List[index.RewardTotals]
	Pager Pager `json:"-"`
}

func (s *Server) loadRewardEarners(r *http.Request) (any, error) {
	if err := known(r); err != nil {
		return nil, err
	}
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	l, err := s.db.TopEarners(r.Context(), p)
	if err != nil {
		return nil, err
	}
	return RewardEarnersView{List: l, Pager: pagerOf(r, l)}, nil
}

// providerRewards adds a provider's rewards to its page: its totals, its rewards by epoch (the 30 newest) with a
// chart of them, and what the node says it is owed now.
func (s *Server) providerRewards(ctx context.Context, v *ProviderView) error {
	var err error
	if v.Rewards, err = s.db.Rewards(ctx, v.Address); err != nil {
		return err
	}
	if v.RewardEpochs, err = s.db.ProviderRewards(ctx, v.Address, index.Page{Limit: 30}); err != nil {
		return err
	}
	s.fromNode(ctx, v.Address, func(ctx context.Context, pa tx.Address) {
		if rv, err := s.c.Rewards(ctx, pa); err == nil && rv.Provider {
			v.RewardsLive = &rv
		}
	})
	if v.RewardEpochs.Total > 0 {
		var bars []svg.Bar
		for _, e := range slices.Backward(v.RewardEpochs.Items) {
			bars = append(bars, svg.Bar{Label: "epoch " + strconv.FormatUint(e.Epoch, 10), Value: sprFloat(e.Total())})
		}
		v.RewardsChart = svg.BarChart(bars, svg.Options{Title: "Rewards by epoch: availability and work (the last 30)", YLabel: "SPR"})
	}
	return nil
}

// whyClass styles a reward reason: earned, cut, or nothing earned.
func whyClass(why string) string {
	switch why {
	case api.RewardEarned.String():
		return "earned"
	case api.RewardStakeShort.String():
		return "cut"
	case "":
		return "none"
	}
	return "unearned"
}
