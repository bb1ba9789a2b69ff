package main

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sparenet/spare/ledger/api"
)

// markdown is the summary of the figures for docs/economics.md: the scenarios' tables, the charts (linked from the
// summary's directory), the sweep and the params refused. Every statement in it is computed from the report.
func (rep *Report) markdown(summaryPath, chartDir string) string {
	var b strings.Builder
	pf := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	img := func(name, alt string) {
		if chartDir != "" {
			pf("![%s](%s)\n\n", alt, relLink(summaryPath, filepath.Join(chartDir, name)))
		}
	}
	p := rep.Params
	var plain []*Scenario
	var pump *Scenario
	for i := range rep.Scenarios {
		if rep.Scenarios[i].Pump {
			pump = &rep.Scenarios[i]
		} else {
			plain = append(plain, &rep.Scenarios[i])
		}
	}
	epochs := rep.Scenarios[0].Wash.Epochs
	pf("## The economic simulation\n\n")
	pf("`bench/economics` runs the real ledger — `ledger.New` over an in-memory store, driven through `InitChain`, `FinalizeBlock` and `Commit` ")
	pf("with signed transactions, as CometBFT drives it — for %d auditor epochs per scenario. ", epochs)
	pf("These figures come from `%s` (%.0f s on %s, %s, %s).\n\n", rep.Command, rep.Seconds, rep.Machine, rep.Go, strings.SplitN(rep.Date, "T", 2)[0])

	pf("### Setup\n\n")
	pf("Epochs are %d blocks of %.0f s: 30 s, as on a real chain. Three auditors attest every epoch. Every simulated provider stays online. ", p.EpochBlocks, rep.BlockSec)
	pf("The auditors challenge the hardware of every provider that has no proof of GPU from the last %d epochs. ", p.RewardProofEpochs/2)
	pf("Every provider declares 8 H100s and bonds the %s they require. The kinds of provider:\n\n", api.FormatSPR(p.RequiredStake(gpusPerProvider)))
	pf("- **honest** (8): when they have free GPUs, bid 75–100%% of the tenant's maximum (%s a GPU-hour) on the tenants' orders. They start the leases they win and complete them with signed receipts.\n", api.FormatSPR(gpuHourPrice))
	pf("- **idle** (3): up and verified, but never bid.\n")
	pf("- **fake_hardware** (2): fail proof of GPU, so they are slashed %s of their stake and jailed. After the %d s cooldown they unjail, bond back what was slashed and try again. They stop when they can no longer afford the bond.\n", ppm(p.SlashProofPPM), p.UnjailCooldownSec)
	pf("- **wash_alone** (2): each funds a sock-puppet tenant that rents it: 8 GPUs at %s a GPU-hour for 10 minutes, one lease after another.\n", api.FormatSPR(gpuHourPrice*9/10))
	pf("- **wash_ring** (3): the same, except that each provider's sock puppet rents the next provider of the ring.\n\n")
	pf("Tenants order 1, 2 or 4 GPUs for 2 to 8 minutes. Orders arrive at random (Poisson) at a rate that keeps 10%% (low demand) or 85%% (high demand) of the honest providers' GPUs leased. ")
	pf("Every provider claims its rewards every %d epochs. ", claimEvery)
	pf("Each scenario runs twice with the same seed: once with the wash trades, and once without them. In the run without, the **counterfactual**, the same providers idle, and their sock puppets are funded the same way. ")
	pf("*Net income* is balance + stake + unbonding + rewards owed, less what the account held at genesis. A wash group's sock puppets are counted with it, and open leases are valued at what each side would hold if they ended now. ")
	pf("The ledger knows nothing of hardware or power costs, so neither does the simulation.\n\n")
	pf("The params are `api.DefaultParams()`'s: take rate %s, burn %s, auditors %s, availability up to %s, and a work reward of at most %s of the burns behind it. ",
		ppm(p.TakeRatePPM), ppm(p.BurnPPM), ppm(p.AuditorSharePPM), ppm(p.AvailabilitySharePPM), ppm(p.WorkRewardCapPPM))
	pf("The emission schedule is scaled to the run: `emission_first_epoch` is %s, about %.2f SPR a GPU-hour over the 144 simulated GPUs. The defaults give that much per GPU-hour to a network of about %.0f GPUs. ",
		api.FormatSPR(p.EmissionFirstEpoch), spr(int64(p.EmissionFirstEpoch))*120/144, float64(api.DefaultParams().EmissionFirstEpoch)/float64(p.EmissionFirstEpoch)*144)
	pf("`emission_time_constant_epochs` is %d (a half-life of %.0f epochs), and `emission_cap` is %s, the schedule's sum.",
		p.EmissionTimeConstantEpochs, float64(p.EmissionTimeConstantEpochs)*0.6931, api.FormatSPR(p.EmissionCap))
	if hi := plain[len(plain)-1].Counterfactual; len(hi.epochs) > 100 {
		first, last := windowMeans(hi.epochs[:len(hi.epochs)/20]), windowMeans(hi.epochs[len(hi.epochs)*19/20:])
		pf(" Over the run, the emission falls from %.3f SPR an epoch, %.0f times the burns of high demand (%.4f), to %.4f, %.2f times them (%.4f).",
			first[0], first[0]/first[1], first[1], last[0], last[0]/last[1], last[1])
	}
	pf("\n\n")

	pf("### Net income per kind\n\n")
	for _, sc := range plain {
		r, cf := sc.Wash, sc.Counterfactual
		pf("**%s demand** (%.0f%% of the honest GPUs leased). The mean sampled utilisation is %.1f%% with the wash trades and %.1f%% without them; the run has %d blocks and %d transactions.\n\n",
			titleCase(sc.Name), 100*sc.DemandShare, 100*r.MeanUtil, 100*cf.MeanUtil, r.Blocks, r.Txs)
		roleTable(&b, sc, "not trading")
		img(chartNet(sc.Name), "net income per kind, "+sc.Name+" demand")
		img(chartWash(sc.Name), "wash traders against not trading, "+sc.Name+" demand")
	}
	pf("Amounts are SPR per provider, over the whole run. *Difference* compares each kind with the same providers in the counterfactual.\n\n")
	for _, sc := range plain {
		h, i, f := sc.Wash.role("honest"), sc.Wash.role("idle"), sc.Wash.role("fake_hardware")
		pf("- %s demand: honest providers ended %+.2f SPR and idle ones %+.2f. Fake hardware ended %+.2f, with %.2f of availability reward and %.2f SPR slashed. ",
			titleCase(sc.Name), h.NetSPR, i.NetSPR, f.NetSPR, f.AvailSPR, f.SlashedSPR)
		for _, c := range sc.Compare {
			if roleByName(c.Role).washing() {
				w := sc.Wash.role(c.Role)
				pf("%s ended %+.3f SPR against not trading, after paying %.2f into wash leases. ", c.Role, c.DiffSPR, w.WashPaidSPR)
			}
		}
		if a, r := sc.compare("wash_alone"), sc.compare("wash_ring"); math.Abs(a.NetSPR-r.NetSPR) < 1e-6 {
			pf("A ring member ends exactly where a lone trader does: each ring lease is a lone trader's lease with the roles passed along. ")
		}
		ih := sc.Counterfactual.role("idle")
		pf("The wash leases lifted the sampled utilisation, so they cost every other provider availability reward: the idle ones got %.2f SPR against %.2f without them. The honest and idle providers lost about the same, so their lines in the difference chart nearly coincide.\n", i.AvailSPR, ih.AvailSPR)
	}
	pf("\n")

	pf("### Supply: emission, burns and net issuance\n\n")
	pf("| run | scheduled | minted | to auditors | to availability | to work | burned | net issuance | of genesis | work share of minted |\n")
	pf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, sc := range rep.Scenarios {
		for _, x := range []*Result{sc.Wash, sc.Counterfactual} {
			name := sc.label()
			if x == sc.Counterfactual {
				name += ", no " + sc.trade()
			}
			pf("| %s | %.2f | %.2f | %.2f | %.2f | %.3f | %.2f | %+.2f | %+.3f%% | %.1f%% |\n", name, spr(int64(x.Scheduled)), spr(int64(x.Minted)),
				spr(int64(x.PaidAuditors)), spr(int64(x.PaidAvail)), spr(int64(x.PaidWork)), spr(int64(x.Burned)),
				spr(int64(x.Minted)-int64(x.Burned)), 100*(float64(x.Minted)-float64(x.Burned))/float64(x.Genesis), 100*share(x.PaidWork, x.Minted))
		}
	}
	pf("\nAmounts are in SPR. *Scheduled* is the sum of the epochs' emissions. Part of it is never minted: what the availability taper removes, what the work cap leaves, the parts of auditors not with the majority, and the work pot of an epoch in which no lease completed. ")
	pf("The genesis supply is %s%s. Net issuance is minted less burned, the supply's change since genesis. ", api.FormatSPR(plain[0].Wash.Genesis), genesisNote(rep))
	if len(plain) > 1 {
		lo, hi := plain[0].Counterfactual, plain[len(plain)-1].Counterfactual
		pf("Without wash trades, the work share of what was minted is %.1f%% at low demand and %.1f%% at high demand. ", 100*share(lo.PaidWork, lo.Minted), 100*share(hi.PaidWork, hi.Minted))
		last := func(r *Result) Sample { return r.Samples[len(r.Samples)-1] }
		pf("In the last window of the run, it is %.1f%% and %.1f%%", 100*last(lo).WorkShare, 100*last(hi).WorkShare)
		if last(hi).WorkShare > share(hi.PaidWork, hi.Minted) {
			pf(": as the emission decays, the capped claims of the burns take a growing share of it")
		}
		pf(". ")
		peak := hi.Samples[0]
		for _, smp := range hi.Samples {
			if smp.InflationPc > peak.InflationPc {
				peak = smp
			}
		}
		if peak.Epoch < last(hi).Epoch {
			pf("At high demand the burns overtake the emission. Net issuance peaks at %+.3f%% of genesis at epoch %d, then falls as the supply shrinks, and ends at %+.3f%%.", peak.InflationPc, peak.Epoch, last(hi).InflationPc)
		}
		pf("\n\n")
	}
	img(chartInflation, "net issuance over time")
	img(chartWorkShare, "work share of the minted emission over time")
	img(chartEmission, "emission and burns per epoch")

	if pump != nil {
		pf("### A worker pumping the utilisation\n\n")
		pf("The availability pot is tapered by the network's paid utilisation `u`, sampled at the tally: the GPUs held by active leases, whatever they pay. What the taper takes away is not minted: the work pot is the emission less the auditors' and the whole availability share, whatever the utilisation. (A first version gave the taper to the work pot, and this scenario's sweep found a pumping worker profiting in 12 of 216 param points.) ")
		pf("An order may offer as little as 1 uspr an hour for the whole lease. A sock-puppet tenant can therefore hold GPUs \"leased\" for nothing but fees. ")
		pf("The pump scenario is high demand with 8 honest providers, 3 idle ones and a **work_pump**: an honest worker whose sock puppet also keeps %d 8-GPU leases of it open at 1 uspr an hour, renewed every 4 hours. Its counterfactual is the same worker without the pump.\n\n", 6)
		roleTable(&b, pump, "no pump")
		w, c := pump.Wash, pump.Counterfactual
		pf("The pump held the mean sampled utilisation at %.1f%% (%.1f%% without it) and cost the worker %.3f SPR in fees, against %.3f without it. ",
			100*w.MeanUtil, 100*c.MeanUtil, w.role("work_pump").FeesSPR, c.role("work_pump").FeesSPR)
		pf("The availability minted fell from %.2f to %.2f SPR, and the work minted went from %.2f to %.2f SPR. ",
			spr(int64(c.PaidAvail)), spr(int64(w.PaidAvail)), spr(int64(c.PaidWork)), spr(int64(w.PaidWork)))
		d := pump.compare("work_pump")
		if d.DiffSPR > 0 {
			pf("**The pumping worker ended %+.3f SPR better off than without the pump.** ", d.DiffSPR)
		} else {
			pf("The pumping worker ended %+.3f SPR against not pumping. ", d.DiffSPR)
		}
		pf("The other honest providers ended %+.3f SPR each against no pump, and the idle ones %+.3f. ", pump.compare("honest").DiffSPR, pump.compare("idle").DiffSPR)
		from, wq := quarterDiff(pump, "work_pump")
		_, hq := quarterDiff(pump, "honest")
		_, iq := quarterDiff(pump, "idle")
		pf("From epoch %d to the end, when the emission is small next to the burns, the pumping worker made %+.4f SPR against not pumping, the other honest providers %+.4f and the idle ones %+.4f. ", from, wq, hq, iq)
		if d.DiffSPR <= 0 {
			pf("The pump costs the pumper fees and gains it nothing, but it takes the availability rewards of every provider: griefing, which the ledger does not yet bound (docs/economics.md, \"Still to build\"). ")
		}
		pf("The sweep below plays it at every param point.\n\n")
		img(chartNet(pump.Name), "net income with and without the pump")
		img(chartWash(pump.Name), "the pumping worker against not pumping")
	}

	if len(rep.Sweep) > 0 {
		pf("### The wash-trading sweep\n\n")
		valid, failed, checks := 0, 0, 0
		for _, sp := range rep.Sweep {
			if sp.Refused != "" {
				continue
			}
			valid++
			failed += sp.Failures
			checks += sp.Invariants
		}
		pf("The sweep covers %d param points, and `Params.Validate` accepts %d of them. The grid:\n\n", len(rep.Sweep), valid)
		pf("- take rate: 0 or 2%%;\n")
		pf("- burn: 0.1%%, 5%%, or 100%% less the take;\n")
		pf("- `work_reward_cap_ppm`: 1, 500,000 or 999,999;\n")
		pf("- availability share: 0, 50%% or 95%%;\n")
		pf("- first-epoch emission: 0.3, 3, 300 or 30,000 times an epoch's expected burns, not decaying.\n\n")
		pf("Each point runs %d epochs at high demand, with 3 honest providers, a worker that may pump, 2 idle providers, a lone wash trader, a ring of 3 and a pump. ", rep.SweepEpochs)
		pf("It runs once with nobody wash-trading, and once per strategy with only that strategy trading. The strategies:\n\n")
		pf("- **wash_alone**: 8-GPU self-leases of 2 minutes at %s a GPU-hour, one after another;\n", api.FormatSPR(gpuHourPrice))
		pf("- **wash_ring**: the same around a ring of 3;\n")
		pf("- **wash_pump**: 8 self-leases of 8 GPUs held open at 1 uspr an hour, which lift the sampled utilisation to about 100%%;\n")
		pf("- **work_pump**: an honest worker that pumps the same way.\n\n")
		pf("| strategy | points | better off than not trading | best difference (SPR per provider) | worst | mean | best difference per SPR paid into wash leases | best at |\n")
		pf("|---|---:|---:|---:|---:|---:|---:|---|\n")
		for _, bst := range rep.Best {
			pf("| %s | %d | %d | %+.4f | %+.1f | %+.1f | %+.4f | %s |\n", bst.Strategy, bst.Points, bst.Positive, bst.MaxDiff, bst.MinDiff, bst.MeanDiff, bst.MaxProfit, bst.MaxAt)
		}
		pf("\nThe sweep made %d invariant checks, and all of them held. No transaction failed (%d failures).\n\n", checks, failed)
		img(chartSweep, "best outcome of each wash strategy over the sweep")
		type win struct {
			sp   *SweepPoint
			st   string
			diff float64
			cf   float64
		}
		var wins []win
		for _, sp := range rep.Sweep {
			for st, o := range sp.Outcomes {
				if o.DiffSPR > 0 {
					wins = append(wins, win{sp, st, o.DiffSPR, o.CfSPR})
				}
			}
		}
		sort.Slice(wins, func(i, j int) bool { return wins[i].diff > wins[j].diff })
		if len(wins) == 0 {
			pf("No strategy was better off than not trading at any point of the sweep.\n\n")
		} else {
			pf("**Where renting yourself paid.** The bound in *Why renting to yourself never pays* counts only the wash lease's own work reward, and that bound held: `wash_alone` and `wash_ring` never came out ahead. ")
			pf("The pump's leases pay next to nothing and burn nothing. What they do is raise `u`, which moves `availability_share_ppm × Δu` of the emission from the availability pot to the work pot. Every provider shares the availability pot by weight; only workers share the work pot, by burns. ")
			pf("When the work pot binds (W·b/B < k·b, so the emission is small next to the burns: 0.3 times them in the sweep), the moved emission is paid out to the workers. ")
			pf("A worker whose share of the epoch's burns exceeds its share of the availability weight then gains more than it loses, for the fees of a few transactions. In the sweep chains, `work_pump` holds about a quarter of the burns and an eleventh of the weight. ")
			pf("Where the emission is far above the burns, the work pot does not bind. There the pump only destroys availability rewards, the pumper's included (`wash_pump`): nobody profits, but any account can take every provider's availability reward away for fees.\n\n")
			pf("Some strategies ended better off than not trading:\n\n| strategy | params | difference (SPR) | not trading (SPR) |\n|---|---|---:|---:|\n")
			for _, w := range wins {
				pf("| %s | %s | %+.4f | %.4f |\n", w.st, w.sp.label(), w.diff, w.cf)
			}
			pf("\n")
		}
	}

	pf("### Params the ledger refuses\n\n")
	pf("| change from the simulated params | InitChain | Params.Validate says |\n|---|---|---|\n")
	for _, r := range rep.Refused {
		pf("| %s | %s | %s |\n", r.Change, r.InitChain, strings.ReplaceAll(r.Error, "|", "\\|"))
	}
	pf("\n")
	return b.String()
}

// windowMeans is the mean emission and burns (SPR) of a run of epochs.
func windowMeans(eps []EpochPoint) [2]float64 {
	var e, b float64
	for _, ep := range eps {
		e += float64(ep.Emission)
		b += float64(ep.Burns)
	}
	n := float64(max(len(eps), 1)) * api.USPR
	return [2]float64{e / n, b / n}
}

// quarterDiff is the epoch three quarters into a scenario and what a role made against the counterfactual from
// then to the end.
func quarterDiff(sc *Scenario, role string) (int, float64) {
	w, c := sc.Wash.Samples, sc.Counterfactual.Samples
	if len(w) < 4 || len(c) != len(w) {
		return 0, 0
	}
	q, n := 3*len(w)/4, len(w)-1
	return w[q].Epoch, (w[n].Net[role] - c[n].Net[role]) - (w[q].Net[role] - c[q].Net[role])
}

// roleTable writes a scenario's table of each kind's net and its parts.
func roleTable(b *strings.Builder, sc *Scenario, without string) {
	fmt.Fprintf(b, "| kind | providers | net | %s | difference | lease income | availability | work | fees | slashed | paid into wash leases |\n", without)
	fmt.Fprintf(b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, rr := range sc.Wash.Roles {
		c := sc.Compare[i]
		diff := fmt.Sprintf("%+.3f", c.DiffSPR)
		if roleByName(rr.Role).washing() {
			diff = "**" + diff + "**"
		}
		fmt.Fprintf(b, "| %s | %d | %.3f | %.3f | %s | %.3f | %.3f | %.4f | %.3f | %.2f | %.2f |\n", rr.Role, rr.Providers, rr.NetSPR, c.CfSPR, diff,
			rr.LeaseSPR, rr.AvailSPR, rr.WorkSPR, rr.FeesSPR, rr.SlashedSPR, rr.WashPaidSPR)
	}
	b.WriteString("\n")
}

// compare is a role's comparison in a scenario.
func (sc *Scenario) compare(role string) Compare {
	for _, c := range sc.Compare {
		if c.Role == role {
			return c
		}
	}
	return Compare{Role: role}
}

// genesisNote says when the pump scenario's genesis differs (it has fewer accounts).
func genesisNote(rep *Report) string {
	for _, sc := range rep.Scenarios {
		if sc.Pump && sc.Wash.Genesis != rep.Scenarios[0].Wash.Genesis {
			return fmt.Sprintf(" (%s in the pump scenario)", api.FormatSPR(sc.Wash.Genesis))
		}
	}
	return ""
}

func ppm(v uint64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", float64(v)/1e4), "0"), ".") + "%"
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
