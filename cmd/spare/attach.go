package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/tenant"
)

// Spare's own exit statuses of `spare deploy` and `spare attach` (documented in deploy's help): the job's exit
// code when it ran, else one of these.
const (
	exitDiskLimit        = 120
	exitOutputsRefused   = 121
	exitClosedByProvider = 122
	exitClosedByAuditors = 123
	exitDurationReached  = 124
	exitNoOffers         = 125
	exitDepositExhausted = 126
	exitInconclusive     = 127
	exitInterrupted      = 130
	exitMemoryLimit      = 137 // as docker run: a kill for memory is SIGKILL's status
	exitClosedByTenant   = 143 // as docker stop: SIGTERM's status
)

// deployExitCode is deploy's exit status for its result and error: the job's own exit code when it ran and
// exited, else Spare's code for how it ended (see the constants above); 1 or 2 for other failures.
func deployExitCode(res *tenant.Result, err error) int {
	switch {
	case errors.Is(err, tenant.ErrNoOffers):
		return exitNoOffers
	case errors.Is(err, tenant.ErrOutputs):
		return exitOutputsRefused
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case err != nil:
		return exitCode(err)
	case res == nil:
		return 0
	}
	switch res.Outcome {
	case tenant.OutcomeExited:
		if res.ExitCode == nil {
			return 0
		}
		if c := *res.ExitCode; c >= 0 && c <= 255 {
			return int(c)
		}
		return 255 // outside what a process can return: still a failure
	case tenant.OutcomeDurationReached:
		return exitDurationReached
	case tenant.OutcomeMemoryLimit:
		return exitMemoryLimit
	case tenant.OutcomeDiskLimit:
		return exitDiskLimit
	case tenant.OutcomeDepositExhausted:
		return exitDepositExhausted
	case tenant.OutcomeClosedByProvider, tenant.OutcomeMemberFailed:
		return exitClosedByProvider
	case tenant.OutcomeClosedByAuditors:
		return exitClosedByAuditors
	case tenant.OutcomeClosedByTenant:
		return exitClosedByTenant
	case tenant.OutcomeOutputsRefused:
		return exitOutputsRefused
	case tenant.OutcomeNoOffers:
		return exitNoOffers
	case tenant.OutcomeInconclusive:
		return exitInconclusive
	}
	return 0 // running (detached, a service)
}

// deployInterrupted handles Ctrl-C during a deploy. Before any lease: the order is cancelled and its refund
// reported. After: the leases keep running; the commands to follow, fetch or close them are printed, and a second
// Ctrl-C within 2 s closes them (asking first on a terminal). The status is 130 either way.
func (g *globals) deployInterrupted(parent context.Context, t *tenant.Tenant, res *tenant.Result, interrupts <-chan os.Signal) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), 30*time.Second)
	defer cancel()
	if res == nil || res.OrderID == 0 {
		fmt.Fprintln(g.stderr, "interrupted before the order was placed: nothing to undo")
		return exitStatus{code: exitInterrupted}
	}
	leases := interruptedLeases(ctx, t, res)
	if len(leases) == 0 {
		refund, err := t.CancelOrder(ctx, res.OrderID)
		switch {
		case err == nil:
			fmt.Fprintf(g.stderr, "interrupted: order %d cancelled, %s refunded\n", res.OrderID, client.FormatAmount(refund))
			return exitStatus{code: exitInterrupted}
		case !client.IsCode(err, tx.CodeOrderNotOpen):
			return exitStatus{code: exitInterrupted, err: fmt.Errorf("interrupted: cancelling order %d failed: %w (try: spare cancel %d)", res.OrderID, err, res.OrderID)}
		}
		leases = interruptedLeases(ctx, t, res) // leased at the last moment
		if len(leases) == 0 {
			fmt.Fprintf(g.stderr, "interrupted: order %d is no longer open\n", res.OrderID)
			return exitStatus{code: exitInterrupted}
		}
	}
	ids := make([]string, len(leases))
	for i, l := range leases {
		ids[i] = strconv.FormatUint(l, 10)
	}
	first := ids[0]
	fmt.Fprintf(g.stderr, "interrupted: lease %s keeps running and billing until it ends.\n"+
		"  follow it:        spare attach %s\n  its logs:         spare logs %s -f\n  outputs once done: spare outputs %s\n  stop it now:      spare close %s\n"+
		"Press Ctrl-C again within 2 s to close it now.\n", strings.Join(ids, ", "), first, first, first, first)
	select {
	case <-interrupts:
	case <-time.After(2 * time.Second):
		return exitStatus{code: exitInterrupted}
	}
	if g.stdinTerminal() && g.isTerminal(g.stderr) {
		fmt.Fprintf(g.stderr, "Close lease %s now? You pay for what ran; the rest of the deposit comes back. [y/N] ", strings.Join(ids, ", "))
		line, _ := bufio.NewReader(g.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintf(g.stderr, "lease %s keeps running\n", strings.Join(ids, ", "))
			return exitStatus{code: exitInterrupted}
		}
	}
	for _, id := range leases {
		if _, err := t.Sender().Send(ctx, &tx.CloseLease{ID: id}); err != nil && !client.IsCode(err, tx.CodeBadLeaseState) {
			return exitStatus{code: exitInterrupted, err: fmt.Errorf("closing lease %d: %w (try: spare close %d)", id, err, id)}
		}
		if l, err := t.Client().Lease(ctx, id); err == nil {
			fmt.Fprintf(g.stderr, "lease %d closed: paid %s, refunded %s\n", id, client.FormatAmount(l.Paid), client.FormatAmount(l.Refunded))
		}
	}
	return exitStatus{code: exitInterrupted}
}

// interruptedLeases are the leases a deploy had made when it was interrupted, from its result or, when the
// interruption came between the lease and the result, from the order.
func interruptedLeases(ctx context.Context, t *tenant.Tenant, res *tenant.Result) []uint64 {
	var out []uint64
	seen := map[uint64]bool{}
	add := func(id uint64) {
		if id != 0 && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	add(res.LeaseID)
	for _, r := range res.Runs {
		add(r.LeaseID)
	}
	for _, m := range res.Members {
		add(m.LeaseID)
	}
	if len(out) == 0 {
		if o, err := t.Client().Order(ctx, res.OrderID); err == nil && o.LeaseID != 0 {
			for i := range uint64(o.Leases()) { // an order's leases are made together, with consecutive ids
				add(o.LeaseID + i)
			}
		}
	}
	var live []uint64
	for _, id := range out {
		if l, err := t.Client().Lease(ctx, id); err == nil && (l.State == api.LeasePending || l.State == api.LeaseActive) {
			live = append(live, id)
		}
	}
	return live
}

func newAttachCmd(g *globals) *cobra.Command {
	var from, outDir, jobFile string
	cmd := &cobra.Command{
		Use:   "attach LEASE",
		Short: "Follow a running lease as deploy would: its logs, then its verified outputs and its result",
		Long: `Follow one of your leases as spare deploy would have after placing it: stream its output until
the workload ends, then download its outputs to ./outputs/<lease>/ and verify them against the
provider's signed receipt. A lease that already ended gives its output, result and outputs at once.
A lease whose provider is still waiting for its manifest (a deploy killed right after the lease) gets it
again: the one spare deploy kept on this machine, or the job file's given with --job (its hash must be
the order's). The exit status is deploy's (spare deploy --help): the job's exit code when it ran.`,
		Example: "  spare attach 7\n  spare attach 7 -o json\n  spare attach 7 --job job.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || id == 0 {
				return fmt.Errorf("lease %q: give a lease id, a positive number (spare leases lists yours)", args[0])
			}
			t, err := g.tenantFor(from)
			if err != nil {
				return err
			}
			logs := io.Writer(g.out)
			if g.output == "json" {
				logs = os.Stderr
			}
			logs, flushLogs := g.forTerminal(logs)
			defer flushLogs()
			var raw []byte
			if l, err := t.Client().Lease(cmd.Context(), id); err == nil && l.State == api.LeasePending {
				if o, err := t.Client().Order(cmd.Context(), l.OrderID); err == nil {
					if raw, err = g.attachManifest(jobFile, o.ManifestHash); err != nil {
						return err
					}
				}
			}
			res, err := t.Attach(cmd.Context(), id, tenant.Options{OutputsDir: outDir, Logs: logs, Progress: g.progress(g.stderr), Manifest: raw})
			if err != nil {
				return exitStatus{code: deployExitCode(res, err), err: err}
			}
			if err := g.print(res, func(w io.Writer) {
				code := "none"
				if res.ExitCode != nil {
					code = fmt.Sprint(*res.ExitCode)
				}
				fmt.Fprintf(w, "lease %d %s (exit code %s): cost %s, refunded %s\n", res.LeaseID, res.State, code, client.FormatAmount(res.Cost), client.FormatAmount(res.Refunded))
				if res.Reason != "" && res.Outcome != tenant.OutcomeExited {
					fmt.Fprintf(w, "  %s\n", res.Reason)
				}
				if res.OutputsPath != "" {
					fmt.Fprintf(w, "outputs: %d file(s) in %s (verified)\n", len(res.Outputs), res.OutputsPath)
				}
			}); err != nil {
				return err
			}
			if code := deployExitCode(res, nil); code != 0 {
				return exitStatus{code: code}
			}
			return nil
		},
	}
	addFrom(cmd, &from)
	cmd.Flags().StringVar(&outDir, "outputs", "outputs", "directory for the outputs (files go to DIR/LEASE/)")
	cmd.Flags().StringVar(&jobFile, "job", "", "the job file the lease was deployed from: its manifest is sent again if the provider still waits for it")
	return cmd
}

func newCancelCmd(g *globals) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "cancel ORDER",
		Short: "Cancel an open order of yours: its deposit comes back",
		Long: `Cancel one of your orders that no provider has taken yet; everything it holds in escrow comes
back to your balance. An order already leased is not open any more: close its lease instead
(spare close LEASE).`,
		Example: "  spare cancel 12",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || id == 0 {
				return fmt.Errorf("order %q: give an order id, a positive number (spare leases --all lists your open orders)", args[0])
			}
			t, err := g.tenantFor(from)
			if err != nil {
				return err
			}
			refund, err := t.CancelOrder(cmd.Context(), id)
			if client.IsCode(err, tx.CodeOrderNotOpen) {
				if o, oerr := t.Client().Order(cmd.Context(), id); oerr == nil && o.LeaseID != 0 {
					return fmt.Errorf("order %d is %s: it was leased (lease %d); to stop it: spare close %d", id, o.State, o.LeaseID, o.LeaseID)
				}
			}
			if err != nil {
				return err
			}
			out := struct {
				OrderID  uint64 `json:"order_id"`
				Refunded uint64 `json:"refunded"`
			}{id, refund}
			return g.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "order %d cancelled: %s refunded\n", id, client.FormatAmount(refund))
			})
		},
	}
	addFrom(cmd, &from)
	return cmd
}
