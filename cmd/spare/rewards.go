package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// rewardsReport is one address's rewards: its totals and its last epochs, each with why it earned what it did.
type rewardsReport struct {
	Name string `json:"name,omitempty"`
	api.RewardsView
	Epochs []epochReport `json:"epochs"`
}

// epochReport is one epoch of an address's rewards: availability (a provider found up, by weight), work (its
// completed leases' burns, capped), auditor (an auditor's share, paid to its balance).
type epochReport struct {
	Epoch        uint64 `json:"epoch"`
	Availability uint64 `json:"availability"`
	Weight       uint64 `json:"weight"`
	Why          string `json:"why"`
	Explain      string `json:"explain,omitempty"`
	Work         uint64 `json:"work"`
	Burned       uint64 `json:"burned"` // what its leases completed in the epoch burned: the work reward's base
	Cap          uint64 `json:"cap"`    // the most that work could earn (params.work_reward_cap_ppm of the burns)
	Auditor      uint64 `json:"auditor,omitempty"`
	Total        uint64 `json:"total"`
}

func newRewardsCmd(g *globals) *cobra.Command {
	var epochs int
	cmd := &cobra.Command{
		Use:   "rewards [NAME|ADDRESS]",
		Short: "Show the rewards a provider or auditor earned, epoch by epoch, and why (all local keys when none is given)",
		Long: `Show what a provider or auditor earned from the emission (docs/economics.md): owed (minted to it,
not yet claimed: 'spare rewards claim'), earned in all, and for each of the last --epochs tallied
epochs its availability reward (found up by the auditors, a recent passed proof of GPU, weighted by
verified throughput x uptime x stake coverage), its work reward (its completed leases' burns, at
most work_reward_cap_ppm of them: renting to yourself never pays) and, for an auditor, its share
for attesting with the majority. When it earned nothing the reason is given: not found up, no
recent proof of GPU, stake short, jailed. The epochs are read from the blocks that tallied them.`,
		Example: "  spare rewards provider\n  spare rewards spare1... --epochs 50 -o json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if epochs < 0 || epochs > client.MaxRewardEpochs {
				return fmt.Errorf("--epochs %d: use 0..%d", epochs, client.MaxRewardEpochs)
			}
			keys, err := g.keyTargets(args)
			if err != nil {
				return err
			}
			targets := make([]rewardsReport, len(keys))
			for i, k := range keys {
				targets[i].Name, targets[i].Address = k.Name, k.Address
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var hist []client.EpochRewards
			if epochs > 0 {
				if hist, err = c.RewardEpochs(ctx, epochs); err != nil {
					return err
				}
			}
			for i := range targets {
				t := &targets[i]
				name := t.Name
				if t.RewardsView, err = c.Rewards(ctx, t.Address); err != nil {
					return err
				}
				t.Name, t.Epochs = name, []epochReport{}
				for _, h := range hist {
					r := epochReport{Epoch: h.Epoch, Auditor: h.Auditors[t.Address]}
					if p := h.Providers[t.Address]; p != nil {
						r.Availability, r.Weight, r.Work, r.Burned, r.Cap = p.Availability, p.Weight, p.Work, p.Burned, p.Cap
						r.Why, r.Explain = p.Why.String(), p.Why.Explain()
						if p.Why == api.RewardNone && p.WorkWhy != api.RewardNone { // a work reward alone: not in the audit set
							r.Why, r.Explain = "not_audited", "not in the epoch's audit set: no availability reward"
						}
					} else if t.Provider {
						r.Why, r.Explain = "no_verdict", "in no verdict of the epoch: not in its audit set, or the auditors did not reach two thirds"
					} else if r.Auditor == 0 {
						continue
					} else {
						r.Why, r.Explain = "auditor", "attested the epoch: a share of the auditors' part by weight x the verdicts it agreed with"
					}
					r.Total = r.Availability + r.Work + r.Auditor
					t.Epochs = append(t.Epochs, r)
				}
			}
			var out any = targets
			if len(args) == 1 {
				out = targets[0]
			}
			return g.print(out, func(w io.Writer) {
				for _, t := range targets {
					printRewards(w, t)
				}
			})
		},
	}
	cmd.Flags().IntVar(&epochs, "epochs", 10, "how many of the last tallied epochs to list (0: totals only)")
	cmd.AddCommand(newRewardsClaimCmd(g))
	return cmd
}

func printRewards(w io.Writer, t rewardsReport) {
	label := t.Address.String()
	if t.Name != "" {
		label = t.Name + " " + label
	}
	if !t.Provider {
		var auditor uint64
		for _, e := range t.Epochs {
			auditor += e.Auditor
		}
		if auditor == 0 {
			fmt.Fprintf(w, "%s: not a provider, no auditor rewards in the epochs listed\n", label)
			return
		}
		fmt.Fprintf(w, "%s: auditor, %s in the epochs listed (paid to its balance)\n", label, client.FormatAmount(auditor))
	} else {
		fmt.Fprintf(w, "%s: owed %s, earned %s in all", label, client.FormatAmount(t.Owed), client.FormatAmount(t.Earned))
		if t.PendingWork > 0 {
			fmt.Fprintf(w, ", burns of %s awaiting their epoch's tally", client.FormatAmount(t.PendingWork))
		}
		fmt.Fprintf(w, "\n  last epoch %d: %s (%s)\n  now: weight %d, %s\n", t.LastEpoch, t.Why, t.Explain, t.WeightNow, t.WhyNow.Explain())
	}
	for _, e := range t.Epochs {
		fmt.Fprintf(w, "  epoch %-8d availability %-14s work %-14s", e.Epoch, client.FormatAmount(e.Availability), client.FormatAmount(e.Work))
		if e.Burned > 0 {
			fmt.Fprintf(w, " (burned %s, cap %s)", client.FormatAmount(e.Burned), client.FormatAmount(e.Cap))
		}
		if e.Auditor > 0 {
			fmt.Fprintf(w, " auditor %s", client.FormatAmount(e.Auditor))
		}
		if e.Why != "" && e.Why != api.RewardEarned.String() {
			fmt.Fprintf(w, "  %s: %s", e.Why, e.Explain)
		}
		fmt.Fprintln(w)
	}
}

type claimResult struct {
	Provider tx.Address `json:"provider"`
	Claimed  uint64     `json:"claimed"`
	Balance  uint64     `json:"balance"`
	Hash     string     `json:"tx_hash"`
	Height   int64      `json:"height"`
}

func newRewardsClaimCmd(g *globals) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "claim",
		Short: "Move the rewards a provider is owed to its balance",
		Long: `Move the rewards the provider key --from is owed (minted to it at each epoch's tally) to its
balance, where it can spend them on compute like any other tokens. Waits until the claim is in a block.`,
		Example: "  spare rewards claim --from provider",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			kr, err := g.keyring()
			if err != nil {
				return err
			}
			signer, err := kr.Signer(from)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			before, err := c.Rewards(ctx, signer.Address())
			if err != nil {
				return err
			}
			if !before.Provider {
				return fmt.Errorf("%s is not a provider: only providers claim (an auditor's rewards are paid to its balance)", signer.Address())
			}
			if before.Owed == 0 {
				return fmt.Errorf("provider %s is owed nothing (earned %s in all): rewards accrue at each epoch's tally", signer.Address(), client.FormatAmount(before.Earned))
			}
			s := c.NewSender(signer)
			g.gasOptions(s)
			res, err := s.Send(ctx, &tx.ClaimRewards{})
			if err != nil {
				return err
			}
			out := claimResult{Provider: signer.Address(), Hash: res.Hash, Height: res.Height}
			if v, ok := res.Attr(api.EventRewardsClaimed, api.AttrAmount); ok {
				_, _ = fmt.Sscan(v, &out.Claimed)
			}
			acc, err := c.Account(ctx, signer.Address())
			if err != nil {
				return err
			}
			out.Balance = acc.Balance
			return g.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "claimed %s: balance %s (block %d)\n", client.FormatAmount(out.Claimed), client.FormatAmount(out.Balance), out.Height)
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "provider", "the provider's key")
	return cmd
}

// emissionText prints the emission view.
func emissionText(w io.Writer, v api.EmissionView) {
	if !v.On {
		fmt.Fprintf(w, "no rewards on this chain (params.emission_first_epoch is 0); burned %s\n", client.FormatAmount(v.Burned))
		return
	}
	fmt.Fprintf(w, "emission: %s in epoch 0, each epoch 1/%d less (half-life %.0f epochs), cap %s\n", client.FormatAmount(v.FirstEpoch),
		v.TimeConstantEpochs, float64(v.TimeConstantEpochs)*0.6931471805599453, client.FormatAmount(v.Cap))
	fmt.Fprintf(w, "split: auditors %s, availability up to %s (less the paid utilisation), work the rest, capped at %s of the burns; burn %s of every payment\n",
		ppmText(v.AuditorSharePPM), ppmText(v.AvailabilitySharePPM), ppmText(v.WorkRewardCapPPM), ppmText(v.BurnPPM))
	fmt.Fprintf(w, "next epoch %d: %s\nminted %s, burned %s, cap left %s, unclaimed %s\n", v.NextEpoch, client.FormatAmount(v.NextEmission),
		client.FormatAmount(v.Minted), client.FormatAmount(v.Burned), client.FormatAmount(v.CapLeft), client.FormatAmount(v.Unclaimed))
	if l := v.LastPots; l != nil {
		fmt.Fprintf(w, "last epoch %d: emission %s, minted %s (auditors %s, availability %s, work %s against burns of %s), utilisation %s\n",
			l.Epoch, client.FormatAmount(l.Emission), client.FormatAmount(l.Minted()), client.FormatAmount(l.PaidAuditors),
			client.FormatAmount(l.PaidAvailability), client.FormatAmount(l.PaidWork), client.FormatAmount(l.Burns), ppmText(l.UtilisationPPM))
	}
}

func ppmText(ppm uint64) string {
	s := fmt.Sprintf("%.4f", float64(ppm)/1e4)
	for len(s) > 1 && (s[len(s)-1] == '0') {
		s = s[:len(s)-1]
	}
	if s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s + "%"
}

func newEmissionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "emission",
		Short: "Show the emission schedule, what was minted and burned, and the last epoch's split",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			v, err := c.Emission(cmd.Context())
			if err != nil {
				return err
			}
			return g.print(v, func(w io.Writer) { emissionText(w, v) })
		},
	}
}
