package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/tenant"
)

// tenantFor opens the tenant SDK for the key named by --from (default: the home's tenant key).
func (g *globals) tenantFor(from string) (*tenant.Tenant, error) {
	if from == "" {
		from = g.key
	}
	if from == "" {
		from = "tenant"
	}
	kr, err := g.keyring()
	if err != nil {
		return nil, err
	}
	signer, err := kr.Signer(from)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w (pass --from NAME)", from, err)
	}
	c, err := g.client()
	if err != nil {
		return nil, err
	}
	t := tenant.New(c, signer, g.logger())
	g.gasOptions(t.Sender())
	return t, nil
}

func addFrom(cmd *cobra.Command, from *string) {
	cmd.Flags().StringVar(from, "from", "", "tenant key (default: the home's tenant key)")
}

func parseLeaseArg(s string) (uint64, error) { return parseID("lease", s) }

// lowDepositWarning says when a running lease will run dry within 10% of its duration.
func lowDepositWarning(l ledger.LeaseView) string {
	if l.State != ledger.LeaseActive || l.EndMs >= l.StartedMs+l.DurationSec*1000 {
		return ""
	}
	left := time.Duration(int64(l.EndMs)-time.Now().UnixMilli()) * time.Millisecond
	if left < time.Duration(l.DurationSec)*time.Second/10 {
		return fmt.Sprintf("warning: lease %d's deposit runs out in %s, before its duration ends: spare topup %d AMOUNT", l.ID, left.Round(time.Second), l.ID)
	}
	return ""
}

func newLeasesCmd(g *globals) *cobra.Command {
	var from string
	var all bool
	cmd := &cobra.Command{
		Use:   "leases",
		Short: "List your leases (running ones unless --all)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := g.tenantFor(from)
			if err != nil {
				return err
			}
			var rows []ledger.LeaseView
			for after := ""; ; {
				page, err := t.Client().Leases(cmd.Context(), ledger.ListRequest{Tenant: t.Address(), After: after, Limit: ledger.MaxPageLimit})
				if err != nil {
					return err
				}
				for _, l := range page.Items {
					if all || l.State == ledger.LeasePending || l.State == ledger.LeaseActive {
						rows = append(rows, l)
					}
				}
				if after = page.Next; after == "" {
					break
				}
			}
			if rows == nil {
				rows = []ledger.LeaseView{}
			}
			return g.print(rows, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "LEASE\tSTATE\tPROVIDER\tPRICE/H\tPAID\tDEPOSIT")
				for _, l := range rows {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", l.ID, l.State, l.Provider, client.FormatAmount(l.Price),
						client.FormatAmount(l.EarnedAt), client.FormatAmount(l.Deposit))
				}
				tw.Flush()
				for _, l := range rows {
					if warn := lowDepositWarning(l); warn != "" {
						fmt.Fprintln(os.Stderr, warn)
					}
				}
			})
		},
	}
	addFrom(cmd, &from)
	cmd.Flags().BoolVar(&all, "all", false, "include ended leases")
	return cmd
}

func newStatusCmd(g *globals) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "status LEASE",
		Short: "Show a lease: ledger state, cost so far, provider, a service's endpoints, receipt",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseLeaseArg(args[0])
			if err != nil {
				return err
			}
			t, err := g.tenantFor(from)
			if err != nil {
				return err
			}
			l, err := t.Client().Lease(cmd.Context(), id)
			if err != nil {
				return err
			}
			// A running service's endpoints come from its provider.
			var eps map[string]string
			if l.State == ledger.LeaseActive || l.State == ledger.LeasePending {
				eps, _ = t.Endpoints(cmd.Context(), id)
			}
			// A run of a replicated order: where its result stands in commit-reveal.
			var run *replicaRun
			if o, err := t.Client().Order(cmd.Context(), l.OrderID); err == nil && (o.Replicas > 1 || o.RefereeFor != 0) {
				group := o.ID
				if o.RefereeFor != 0 {
					group = o.RefereeFor
				}
				if v, err := t.Client().Verification(cmd.Context(), group); err == nil {
					for _, r := range v.Runs {
						if r.LeaseID == id {
							run = &replicaRun{Order: group, Commit: r.Commit, Phase: v.Phase, RevealDeadline: v.RevealDeadline, Verdict: v.State}
						}
					}
				}
			}
			out := struct {
				ledger.LeaseView
				Endpoints map[string]string `json:"endpoints,omitempty"`
				Replica   *replicaRun       `json:"replica,omitempty"`
			}{l, eps, run}
			return g.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "lease %d: %s, provider %s, %s/h\n", l.ID, l.State, l.Provider, client.FormatAmount(l.Price))
				for _, port := range slices.Sorted(maps.Keys(eps)) {
					fmt.Fprintf(w, "  port %s is served at %s (http://%s)\n", port, eps[port], eps[port])
				}
				fmt.Fprintf(w, "  deposit %s, earned so far %s, refunded %s\n", client.FormatAmount(l.Deposit), client.FormatAmount(l.EarnedAt), client.FormatAmount(l.Refunded))
				if l.CloseReason != "" {
					fmt.Fprintf(w, "  ended: %s\n", l.CloseReason)
				}
				if l.Receipt != nil {
					fmt.Fprintf(w, "  receipt: exit code %d, outputs root %s\n", l.Receipt.ExitCode, l.Receipt.OutputRoot)
				}
				if run != nil {
					fmt.Fprintf(w, "  run of replicated order %d (%s): result %s", run.Order, run.Verdict, run.Commit)
					if run.Phase == "reveal" {
						fmt.Fprintf(w, ", reveal phase open until block %d", run.RevealDeadline)
					}
					fmt.Fprintln(w)
				}
				if warn := lowDepositWarning(l); warn != "" {
					fmt.Fprintln(w, warn)
				}
			})
		},
	}
	addFrom(cmd, &from)
	return cmd
}

// replicaRun is where a run of a replicated order stands: its result's commit state (awaiting, committed,
// revealed, missed, none), its group's phase and verdict.
type replicaRun struct {
	Order          uint64             `json:"order"`
	Commit         ledger.RunCommit   `json:"commit"`
	Phase          string             `json:"phase,omitempty"`
	RevealDeadline int64              `json:"reveal_deadline,omitempty"`
	Verdict        ledger.VerifyState `json:"verdict"`
}

func newLogsCmd(g *globals) *cobra.Command {
	var from string
	var follow, member bool
	cmd := &cobra.Command{
		Use:   "logs LEASE",
		Short: "Print a lease's workload output (-f follows until it ends); a cluster member's shows every rank's",
		Long: `Print a lease's workload output; -f follows it until the workload ends. For a member of a cluster
order, every member's output is merged, each line prefixed with "[rank N] " (--member shows this
lease's alone). On a terminal, escape sequences and control characters in the output are removed
(a lone carriage return becomes a line break); piped, redirected or with -o json the bytes are
exactly the provider's.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseLeaseArg(args[0])
			if err != nil {
				return err
			}
			t, err := g.tenantFor(from)
			if err != nil {
				return err
			}
			// On a terminal the provider's bytes lose their escape sequences; -o json and pipes get them unchanged.
			out, flush := g.out, func() error { return nil }
			if g.output != "json" {
				out, flush = g.forTerminal(g.out)
			}
			if !member {
				if l, err := t.Client().Lease(cmd.Context(), id); err == nil {
					if _, err := t.Client().Cluster(cmd.Context(), l.OrderID); err == nil {
						return errors.Join(t.StreamClusterLogs(cmd.Context(), l.OrderID, follow, out), flush())
					}
				}
			}
			return errors.Join(t.StreamLogs(cmd.Context(), id, follow, out), flush())
		},
	}
	cmd.Flags().BoolVar(&member, "member", false, "for a cluster member: this lease's output only, not every rank's")
	addFrom(cmd, &from)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep streaming until the workload ends")
	return cmd
}

// sendAndShowLease sends msg from the tenant key and prints the lease as it stands afterwards.
func (g *globals) sendAndShowLease(ctx context.Context, from string, id uint64, msg tx.Msg, text func(io.Writer, ledger.LeaseView)) error {
	t, err := g.tenantFor(from)
	if err != nil {
		return err
	}
	if _, err := t.Sender().Send(ctx, msg); err != nil {
		return err
	}
	l, err := t.Client().Lease(ctx, id)
	if err != nil {
		return err
	}
	return g.print(l, func(w io.Writer) { text(w, l) })
}

func newCloseCmd(g *globals) *cobra.Command {
	var from, reason string
	cmd := &cobra.Command{
		Use:   "close LEASE",
		Short: "End a lease now: pay for what ran, get the unspent deposit back",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseLeaseArg(args[0])
			if err != nil {
				return err
			}
			return g.sendAndShowLease(cmd.Context(), from, id, &tx.CloseLease{ID: id, Reason: reason}, func(w io.Writer, l ledger.LeaseView) {
				fmt.Fprintf(w, "lease %d closed: paid %s, refunded %s\n", id, client.FormatAmount(l.Paid), client.FormatAmount(l.Refunded))
			})
		},
	}
	addFrom(cmd, &from)
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded on the ledger)")
	return cmd
}

func newTopUpCmd(g *globals) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "topup LEASE AMOUNT",
		Short: "Add to a lease's deposit so it runs longer",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseLeaseArg(args[0])
			if err != nil {
				return err
			}
			amount, err := client.ParseAmount(args[1])
			if err != nil {
				return err
			}
			return g.sendAndShowLease(cmd.Context(), from, id, &tx.TopUp{LeaseID: id, Amount: amount}, func(w io.Writer, l ledger.LeaseView) {
				fmt.Fprintf(w, "lease %d: deposit now %s\n", id, client.FormatAmount(l.Deposit))
			})
		},
	}
	addFrom(cmd, &from)
	return cmd
}

type outputsResult struct {
	LeaseID uint64   `json:"lease_id"`
	Path    string   `json:"path"`
	Files   []string `json:"files"`
	Root    tx.Hash  `json:"root"`
}

func newOutputsCmd(g *globals) *cobra.Command {
	var from, dir string
	cmd := &cobra.Command{
		Use:   "outputs LEASE",
		Short: "Download a finished lease's outputs and verify them against its signed receipt",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseLeaseArg(args[0])
			if err != nil {
				return err
			}
			t, err := g.tenantFor(from)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Minute)
			defer cancel()
			path, files, err := t.FetchOutputs(ctx, id, dir)
			if err != nil {
				return err
			}
			l, _ := t.Client().Lease(ctx, id)
			res := outputsResult{LeaseID: id, Path: path, Files: files}
			if l.Receipt != nil {
				res.Root = l.Receipt.OutputRoot
			}
			return g.print(res, func(w io.Writer) {
				fmt.Fprintf(w, "%d file(s) in %s, verified against the receipt (root %s)\n", len(files), path, res.Root)
			})
		},
	}
	addFrom(cmd, &from)
	cmd.Flags().StringVar(&dir, "dir", "outputs", "directory to download into (files go to DIR/LEASE/)")
	return cmd
}
