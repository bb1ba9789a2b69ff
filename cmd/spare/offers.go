package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/offers"
)

type offersResult struct {
	Query       string             `json:"query"`
	Offers      []offers.Row       `json:"offers"`
	Explanation offers.Explanation `json:"explanation"`
}

func newOffersCmd(g *globals) *cobra.Command {
	var sortKey string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "offers [QUERY]",
		Short: "Search live capacity: providers' free GPUs, CPUs and prices, filtered and sorted",
		Long: "Ask every provider on the ledger for its free capacity and prices now, keep those that satisfy every\n" +
			"term of the query, and sort them. Unknown fields, operators or units are errors: no filter is ever\n" +
			"dropped. When nothing matches, the command says which term excluded how many providers.\n\n" + offers.Help,
		Example: "  spare offers 'gpu=H100 vram>=80 price<=2.5 region=eu-west' --sort price\n  spare offers 'cpu>=4' -o json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := ""
			if len(args) == 1 {
				q = args[0]
			}
			query, err := offers.Parse(q)
			if err != nil {
				return err
			}
			t, err := g.tenantFor("")
			if err != nil {
				return err
			}
			cands, err := t.Candidates(cmd.Context(), timeout)
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
	cmd.Flags().StringVar(&sortKey, "sort", "price", "sort by price, gpus, vram, reputation, rtt or region")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for each provider's offer")
	return cmd
}
