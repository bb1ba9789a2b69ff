package main

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/match"
	"github.com/sparenet/spare/offers"
)

type jobOffersResult struct {
	Job         string                `json:"job"`
	Offers      []offers.JobRow       `json:"offers"`
	Explanation offers.JobExplanation `json:"explanation"`
}

type offersResult struct {
	Query       string             `json:"query"`
	Offers      []offers.Row       `json:"offers"`
	Explanation offers.Explanation `json:"explanation"`
}

type storageOffersResult struct {
	StorageOffers []api.StorageOfferView `json:"storage_offers"`
}

func newOffersCmd(g *globals) *cobra.Command {
	var sortKey, jobFile string
	var storage bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "offers [QUERY | --job FILE]",
		Short: "Search live capacity: providers' free GPUs, CPUs and prices, filtered and sorted",
		Long: "Ask every provider on the ledger for its free capacity and prices now, keep those that satisfy every\n" +
			"term of the query, and sort them. Unknown fields, operators or units are errors: no filter is ever\n" +
			"dropped. When nothing matches, the command says which term excluded how many providers.\n\n" + offers.Help +
			"\nWith --job FILE instead of a query: the providers that could take that job now, each with the price it\n" +
			"would bid for it (its price table on the GPUs it would assign), ranked as 'spare deploy --choose' ranks\n" +
			"bids (price, round trip, reputation), and why each other provider could not: the ledger's own checks on\n" +
			"the provider's free capacity, then the job's maximum price. For a cluster or replicated job, the\n" +
			"resources and the price are per member.\n\n" +
			"With --storage: the disk providers offer to Spare Vault, as the ledger records it (docs/vault.md): each\n" +
			"provider's capacity, what its shards use, what is free and its price per GiB-month, cheapest first.\n",
		Example: "  spare offers 'gpu=H100 vram>=80 price<=2.5 region=eu-west' --sort price\n  spare offers 'cpu>=4' -o json\n  spare offers --job examples/train.yaml\n  spare offers --storage",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := ""
			if len(args) == 1 {
				q = args[0]
			}
			if storage {
				if q != "" || jobFile != "" {
					return fmt.Errorf("--storage lists storage offers: give no query and no --job with it")
				}
				return g.storageOffers(cmd)
			}
			if jobFile != "" {
				if q != "" {
					return fmt.Errorf("give a query or --job FILE, not both: a job file already says what it needs")
				}
				return g.jobOffers(cmd, jobFile, timeout)
			}
			query, err := offers.Parse(q)
			if err != nil {
				return err
			}
			cands, err := g.candidates(cmd, timeout)
			if err != nil {
				return err
			}
			rows, ex := offers.Eval(query, cands)
			if err := offers.Sort(rows, sortKey); err != nil {
				return err
			}
			if rows == nil {
				rows = []offers.Row{}
			}
			return g.print(offersResult{Query: query.String(), Offers: rows, Explanation: ex}, func(w io.Writer) {
				if len(rows) == 0 {
					fmt.Fprintf(w, "no offers match: %s\n", ex)
					return
				}
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "PROVIDER\tREGION\tGPUS\tMODEL\tVRAM\tPRICE\tCPU\tMEMORY\tREP\tRTT")
				for _, r := range rows {
					price := "?"
					if r.Price != nil {
						price = client.FormatAmount(*r.Price)
						if r.Indicative {
							price += "*"
						}
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%dGiB\t%s\t%.1f\t%dGiB\t%.2f\t%s\n", r.Provider, r.Region, r.GPUCount, r.Model,
						r.VRAMMiB>>10, price, float64(r.CPUMilli)/1000, r.MemoryMiB>>10, float64(r.ReputationPPM)/1e6, r.RTT.Round(time.Millisecond))
				}
				tw.Flush()
				unit := "per CPU core-hour"
				if query.PerGPU() {
					unit = "per GPU-hour"
				}
				fmt.Fprintf(w, "%d offer(s); %s; prices %s (* indicative: the provider prices by script)\n", len(rows), ex, unit)
			})
		},
	}
	cmd.Flags().StringVar(&sortKey, "sort", "price", "sort by price, gpus, vram, reputation, rtt or region (a query's offers)")
	cmd.Flags().StringVar(&jobFile, "job", "", "list the offers for this job file instead of a query, ranked as deploy --choose ranks bids")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for each provider's offer")
	cmd.Flags().BoolVar(&storage, "storage", false, "list the disk providers offer to Spare Vault instead, from the ledger")
	return cmd
}

// storageOffers prints every storage offer on the ledger, cheapest first, then the most free.
func (g *globals) storageOffers(cmd *cobra.Command) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	all := []api.StorageOfferView{}
	for req := (api.ListRequest{Limit: api.MaxPageLimit}); ; {
		page, err := c.StorageOffers(cmd.Context(), req)
		if err != nil {
			return err
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			break
		}
		req.After = page.Next
	}
	slices.SortStableFunc(all, func(a, b api.StorageOfferView) int {
		if a.PricePerGiBMonth != b.PricePerGiBMonth {
			return cmp.Compare(a.PricePerGiBMonth, b.PricePerGiBMonth)
		}
		return cmp.Compare(b.FreeBytes(), a.FreeBytes())
	})
	return g.print(storageOffersResult{StorageOffers: all}, func(w io.Writer) {
		if len(all) == 0 {
			fmt.Fprintln(w, "no provider offers storage: a provider offers it with a [storage] section in provider.toml")
			return
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PROVIDER\tREGION\tSTATUS\tCAPACITY\tUSED\tFREE\tPRICE/GIB-MONTH")
		var free uint64
		for _, o := range all {
			free += o.FreeBytes()
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.Provider, o.Region, o.Status, gib(o.CapacityBytes), gib(o.UsedBytes),
				gib(o.FreeBytes()), client.FormatAmount(o.PricePerGiBMonth))
		}
		tw.Flush()
		fmt.Fprintf(w, "%d storage offer(s), %s free in all\n", len(all), gib(free))
	})
}

// gib writes bytes in GiB, with a decimal under 10 GiB.
func gib(b uint64) string {
	if b < 10<<30 && b%(1<<30) != 0 {
		return fmt.Sprintf("%.1fGiB", float64(b)/(1<<30))
	}
	return fmt.Sprintf("%dGiB", b>>30)
}

// jobOffers prints the providers that could take the job in path now (offers.EvalJob).
func (g *globals) jobOffers(cmd *cobra.Command, path string, timeout time.Duration) error {
	j, job, err := loadJob(path)
	if err != nil {
		return err
	}
	cands, err := g.candidates(cmd, timeout)
	if err != nil {
		return err
	}
	// No order exists yet: ties are broken on the manifest's hash, so the same job ranks the same way.
	h := job.Order.ManifestHash
	o := match.Order{ID: binary.BigEndian.Uint64(h[:8]), Resources: job.Order.Resources, Constraints: job.Order.Constraints,
		MaxPricePerHour: job.Order.MaxPricePerHour}
	rows, ex := offers.EvalJob(o, cands)
	if rows == nil {
		rows = []offers.JobRow{}
	}
	return g.print(jobOffersResult{Job: path, Offers: rows, Explanation: ex}, func(w io.Writer) {
		if len(rows) == 0 {
			fmt.Fprintf(w, "no provider could take %s now: %s\n", path, ex)
			return
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PROVIDER\tREGION\tGPUS\tPRICE/H\tSCORE\tREP\tRTT")
		for _, r := range rows {
			gpus := "-"
			if len(r.GPUModels) > 0 {
				gpus = fmt.Sprintf("%d× %s", len(r.GPUModels), strings.Join(slices.Compact(slices.Clone(r.GPUModels)), "+"))
			}
			price, score := "?", "?"
			if r.Price != nil {
				price, score = client.FormatAmount(*r.Price), client.FormatAmount(r.Score)
			}
			if r.Indicative {
				price += "*"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\t%s\n", r.Provider, r.Region, gpus, price, score,
				float64(r.ReputationPPM)/1e6, time.Duration(r.RTT).Round(time.Millisecond))
		}
		tw.Flush()
		per := ""
		if n := max(j.Nodes(), j.Replicas()); n > 1 {
			per = fmt.Sprintf(" per member (the job needs %d providers)", n)
		}
		fmt.Fprintf(w, "%s; prices per hour%s (* indicative: the provider prices by script); score: price adjusted for round trip and reputation, lower is better\n", ex, per)
	})
}

// candidates is every registered provider with its live offer.
func (g *globals) candidates(cmd *cobra.Command, timeout time.Duration) ([]offers.Candidate, error) {
	t, err := g.tenantFor("")
	if err != nil {
		return nil, err
	}
	return t.Candidates(cmd.Context(), timeout)
}
