package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/client"
)

func newExtendCmd(g *globals) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "extend LEASE DURATION",
		Short: "Let a lease run longer than its duration, when its provider allows it",
		Long: `Lengthen a pending or running lease by DURATION (Go style: 30m, 2h, 1h30m) at its price. One
transaction extends it and adds to its deposit what the new duration needs (nothing, when the deposit
already covers it), so the lease then runs to its new end; the command says when that is and what
was added. A provider sets how long its leases may run in all (max_lease_duration in its
provider.toml, recorded on the ledger); past that, or with a provider that takes no extensions, the
command says so, with the provider's maximum and the total asked, and sends nothing. A lease whose
deposit runs out before its duration needs 'spare topup', not this.`,
		Example: "  spare extend 3 30m\n  spare extend 3 2h --yes -o json",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseLeaseArg(args[0])
			if err != nil {
				return err
			}
			add, err := parseExtendDuration(args[1])
			if err != nil {
				return err
			}
			t, err := g.tenantFor(from)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			plan, err := t.ExtendPlan(ctx, id, add)
			if err != nil {
				return err
			}
			if t.Sender().Confirm != nil { // a person will be asked: say what the transaction does first
				fmt.Fprintf(g.stderr, "extend lease %d by %s to %s in all (the provider allows %s): adds %s to its deposit\n",
					id, secs(plan.AddSec), secs(plan.DurationSec), secs(plan.MaxSec), client.FormatAmount(plan.Added))
			}
			e, err := t.Extend(ctx, id, add)
			if err != nil {
				return err
			}
			return g.print(e, func(w io.Writer) {
				fmt.Fprintf(w, "lease %d extended by %s: its duration is now %s", id, secs(e.AddSec), secs(e.DurationSec))
				if e.EndMs != 0 {
					fmt.Fprintf(w, ", and it runs until %s", time.UnixMilli(int64(e.EndMs)).Local().Format(time.DateTime))
					if e.WasEndMs != 0 {
						fmt.Fprintf(w, " (was %s)", time.UnixMilli(int64(e.WasEndMs)).Local().Format(time.DateTime))
					}
				} else {
					fmt.Fprintf(w, " from its start (%s)", e.State)
				}
				fmt.Fprintf(w, "\n%s added to its deposit (now %s); fee %s\n", client.FormatAmount(e.Added), client.FormatAmount(e.Deposit), client.FormatAmount(e.Fee))
			})
		},
	}
	addFrom(cmd, &from)
	return cmd
}

// parseExtendDuration reads DURATION: Go style, whole seconds, at least 1s; days and bare numbers get the
// spelling that works.
func parseExtendDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		if n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(s), "d"), 10, 32); err == nil && strings.HasSuffix(strings.TrimSpace(s), "d") {
			return 0, fmt.Errorf("DURATION %q: Go durations have no days: did you mean %dh?", s, n*24)
		}
		if _, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64); err == nil {
			return 0, fmt.Errorf("DURATION %q has no unit: did you mean %ss? (Go style: 90s, 30m, 2h)", s, strings.TrimSpace(s))
		}
		return 0, fmt.Errorf("DURATION %q: write it Go style, e.g. 30m, 2h or 1h30m", s)
	}
	switch {
	case d < time.Second:
		return 0, fmt.Errorf("DURATION %s: at least 1s", d)
	case d%time.Second != 0:
		return 0, fmt.Errorf("DURATION %s is not a whole number of seconds: round it, e.g. %s", d, d.Round(time.Second))
	}
	return d, nil
}

// secs writes whole seconds as a Go duration without its zero parts ("2h", "1h30m").
func secs(sec uint64) string {
	s := (time.Duration(sec) * time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
