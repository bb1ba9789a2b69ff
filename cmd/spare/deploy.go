package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/jobspec"
	"github.com/sparenet/spare/tenant"
	"github.com/sparenet/spare/termsafe"
)

// progress prints a deploy's (or an attach's) progress events to w. On a terminal the details lose escape
// sequences: they quote the provider and the ledger (reasons, endpoints, errors).
func (g *globals) progress(w io.Writer) func(tenant.Event) {
	if g.isTerminal(w) {
		return func(e tenant.Event) {
			fmt.Fprintf(w, "\033[2m[%6.2fs]\033[0m %-8s %s\n", e.At.Seconds(), e.Stage, termsafe.String(e.Detail))
		}
	}
	return func(e tenant.Event) { fmt.Fprintf(w, "[%6.2fs] %-8s %s\n", e.At.Seconds(), e.Stage, e.Detail) }
}

// loadJob parses and compiles a job file: its manifest (files read relative to the file) and its order.
func loadJob(path string) (*jobspec.Job, tenant.Job, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, tenant.Job{}, err
	}
	j, err := jobspec.Parse(path, data)
	if err != nil {
		return nil, tenant.Job{}, err
	}
	_, raw, err := j.Manifest(filepath.Dir(path))
	if err != nil {
		return nil, tenant.Job{}, err
	}
	return j, tenant.JobFrom(j, raw), nil
}

// exitOutputsNotStored is deploy's status when the job succeeded and its outputs, verified, could not be stored
// in the Vault as it asked (outputs: {to: vault}).
const exitOutputsNotStored = 119

func newDeployCmd(g *globals) *cobra.Command {
	var from, outDir string
	var detach, autoTopUp, choose bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "deploy FILE",
		Short: "Run a job: order, auction, manifest to the winner, logs, verified outputs, receipt",
		Long: `Validate the job file, deposit max price × duration in escrow and place the order; the ledger
leases the best bid; the manifest goes to the winning provider over its pinned, signed API; logs
stream here; on completion the outputs are downloaded to ./outputs/<lease>/ and checked against
the provider's signed receipt. You pay only for what ran; the rest of the deposit comes back.
When nobody bids, the command says why, per constraint, and cancels the order. A job with ports is a
service: it is placed by price, reputation and round-trip time from here, and the command returns once
its endpoints answer, printing them. verify.replicas and cluster jobs run on several providers at once.

Ctrl-C before a lease cancels the order and reports the refund. After, the lease keeps running: the
command prints how to follow it (spare attach), fetch its outputs or close it, and exits; a second
Ctrl-C within 2 s closes the lease (asking first on a terminal).

A job whose outputs go to the Vault (outputs: {paths: [...], to: vault}) has them stored there once it
exits 0 and they are verified, as 'spare store put outputs/<lease>/' would; the command prints the object's
root. The archive's files are exactly those the receipt's output root covers (JOBSPEC.md).

Exit status, as docker run: the job's own exit code when it ran (a cluster: its first non-zero member
exit code; replicas: the agreed run's; killed for memory: 137), else one of Spare's:
  119  the job succeeded but its outputs could not be stored in the Vault (they are in outputs/<lease>/)
  120  the job wrote more than its disk (resources.disk) and was stopped
  121  the outputs did not match the provider's signed receipt (none were kept)
  122  the provider closed the lease or never started the workload
  123  the auditors found the provider down: lease closed, provider slashed
  124  the job's duration ended before it exited (as timeout(1))
  125  nobody bid in time: the order was cancelled and the deposit refunded
  126  the deposit ran out before the job's duration (--auto-topup, or spare topup)
  127  the replicas' results disagreed with no majority
  130  interrupted by Ctrl-C
  143  you closed the lease (spare close)
  1    any other failure (job file, node, keys); 2: the ledger refused a transaction
-o json's "outcome" names which (exited, duration_reached, no_offers, ...).`,
		Example: "  spare deploy examples/hello.yaml\n  spare deploy job.yaml --detach -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, job, err := loadJob(args[0])
			if err != nil {
				return err
			}
			t, err := g.tenantFor(from)
			if err != nil {
				return err
			}
			if job.VaultOutputs != nil { // the coding spare store put would use on this chain
				if job.VaultOutputs.Coding, err = g.coding(cmd, "", t.Client()); err != nil {
					return err
				}
			}
			progress := os.Stderr
			logs := io.Writer(g.out)
			if g.output == "json" {
				logs = os.Stderr // stdout carries the one JSON result
			}
			// The workload's output is the provider's bytes: on a terminal, without escape sequences.
			logs, flushLogs := g.forTerminal(logs)
			defer flushLogs()
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			interrupts := make(chan os.Signal, 2)
			signal.Notify(interrupts, os.Interrupt)
			defer signal.Stop(interrupts)
			var interrupted atomic.Bool
			go func() {
				select {
				case <-interrupts:
					if g.prompting.Load() { // at the fee prompt: nothing was sent, and the read would not end
						fmt.Fprintln(g.stderr, "\ninterrupted at the fee prompt: nothing was sent")
						os.Exit(exitInterrupted)
					}
					interrupted.Store(true)
					cancel()
				case <-ctx.Done():
				}
			}()
			g.rememberManifest(job.Manifest) // for spare attach, should this deploy die before the provider has it
			res, err := t.Deploy(ctx, job, tenant.Options{OnOrder: func(id uint64) { g.rememberJobName(id, spec.Name) }, Detach: detach, OutputsDir: outDir, Logs: logs, AutoTopUp: autoTopUp, Choose: choose,
				NoBidTimeout: wait, Progress: g.progress(progress)})
			if interrupted.Load() {
				if res != nil && res.OutputsVault != nil && !res.OutputsVault.Stored && res.OutputsVault.NotStored != "" {
					fmt.Fprintf(g.stderr, "outputs not stored in the Vault: %s\n", res.OutputsVault.NotStored)
				}
				return g.deployInterrupted(cmd.Context(), t, res, interrupts)
			}
			notStored := errors.Is(err, tenant.ErrVaultOutputs) && res != nil
			if err != nil && !notStored {
				return exitStatus{code: deployExitCode(res, err), err: err}
			}
			if err := g.print(res, func(w io.Writer) {
				if len(res.Endpoints) > 0 {
					fmt.Fprintf(w, "lease %d serves on %s until its duration or 'spare close %d':\n", res.LeaseID, res.Provider, res.LeaseID)
					for _, port := range slices.Sorted(maps.Keys(res.Endpoints)) {
						fmt.Fprintf(w, "  port %s → %s (http://%s)\n", port, res.Endpoints[port], res.Endpoints[port])
					}
					return
				}
				if detach {
					fmt.Fprintf(w, "lease %d is running on %s: spare logs %d -f\n", res.LeaseID, res.Provider, res.LeaseID)
					return
				}
				code := "none"
				if res.ExitCode != nil {
					code = fmt.Sprint(*res.ExitCode)
				}
				fmt.Fprintf(w, "lease %d %s (exit code %s): cost %s at %s/h, refunded %s, transaction fees %s\n", res.LeaseID, res.State, code,
					client.FormatAmount(res.Cost), client.FormatAmount(res.Price), client.FormatAmount(res.Refunded), client.FormatAmount(res.Fees))
				if res.Reason != "" && res.Outcome != tenant.OutcomeExited {
					fmt.Fprintf(w, "  %s\n", res.Reason)
				}
				if res.Receipt != nil {
					vr := ""
					if !res.Receipt.VaultRoot.IsZero() {
						vr = fmt.Sprintf(", outputs' Vault root %s", res.Receipt.VaultRoot)
					}
					fmt.Fprintf(w, "receipt: lease %d, manifest %s, %d GPU-seconds, outputs root %s%s, signed by %s\n",
						res.Receipt.LeaseID, res.Receipt.ManifestHash, res.Receipt.GPUSeconds, res.Receipt.OutputRoot, vr, res.Provider)
				}
				if res.Verdict != "" {
					fmt.Fprintf(w, "verdict: %s over %d runs (%d replicas)\n", res.Verdict, len(res.Runs), res.Replicas)
					for _, r := range res.Runs {
						what := "no result (" + r.Commit + ")"
						switch {
						case r.OutputRoot != nil:
							what = fmt.Sprintf("revealed root %s exit %d", *r.OutputRoot, *r.ExitCode)
						case r.Commit == "missed":
							what = "committed, not revealed in time: no vote"
						case r.Commit == "none":
							what = "no result committed: no vote"
						}
						role := ""
						if r.Referee {
							role = " (referee)"
						}
						if r.Outvoted {
							role += " OUTVOTED: unpaid, slashed"
						}
						fmt.Fprintf(w, "  lease %d %s %s: %s, paid %s%s\n", r.LeaseID, r.Provider, r.State, what, client.FormatAmount(r.Paid), role)
					}
				}
				if len(res.Members) > 0 {
					restarts := ""
					if res.Restarts > 0 {
						restarts = fmt.Sprintf(" after %d restart(s); last order %d", res.Restarts, res.LastOrder)
					}
					fmt.Fprintf(w, "cluster %s%s: %d members\n", res.State, restarts, len(res.Members))
					for _, m := range res.Members {
						code := "none"
						if m.ExitCode != nil {
							code = fmt.Sprint(*m.ExitCode)
						}
						gen := ""
						if res.Restarts > 0 {
							gen = fmt.Sprintf(" (restart %d)", m.Generation)
							if m.Generation == 0 {
								gen = " (first run)"
							}
						}
						outputs := "no outputs"
						if m.OutputsPath != "" {
							outputs = "outputs " + m.OutputsPath
						}
						if m.Reason != "" {
							outputs += ": " + m.Reason
						}
						fmt.Fprintf(w, "  rank %d%s lease %d %s %s (exit code %s), paid %s, %s\n", m.Rank, gen, m.LeaseID, m.Provider,
							m.State, code, client.FormatAmount(m.Paid), outputs)
					}
					return
				}
				if res.OutputsPath != "" {
					fmt.Fprintf(w, "outputs: %d file(s) in %s (verified)\n", len(res.Outputs), res.OutputsPath)
				}
				if v := res.OutputsVault; v != nil {
					switch {
					case v.Stored:
						deal := fmt.Sprintf("%d months", v.Months)
						if v.Permanent {
							deal = "permanently"
						}
						vouched := "the provider's receipt carries this root"
						if !v.Vouched {
							vouched = "the provider's receipt carries no Vault root: the files are verified, the root is not signed"
						}
						fmt.Fprintf(w, "outputs stored in the Vault: root %s (object %d, %s), %s, %s held for the storage providers; read them back: spare store get %s\n",
							v.Root, v.ObjectID, vouched, deal, client.FormatAmount(v.Escrow), v.Root)
					case notStored:
						fmt.Fprintf(w, "outputs NOT stored in the Vault: %s\n", v.NotStored)
					default:
						fmt.Fprintf(w, "outputs not stored in the Vault: %s\n", v.NotStored)
					}
				}
			}); err != nil {
				return err
			}
			if notStored { // the result says why, and what to run
				return exitStatus{code: exitOutputsNotStored}
			}
			if code := deployExitCode(res, nil); code != 0 {
				return exitStatus{code: code}
			}
			return nil
		},
	}
	addFrom(cmd, &from)
	cmd.Flags().BoolVar(&detach, "detach", false, "return once the workload runs (then: spare logs LEASE -f)")
	cmd.Flags().StringVar(&outDir, "outputs", "outputs", "directory for the outputs (files go to DIR/LEASE/)")
	cmd.Flags().BoolVar(&autoTopUp, "auto-topup", false, "add to the deposit when it would run out before the job's duration")
	cmd.Flags().DurationVar(&wait, "wait", 15*time.Second, "how long to wait for a bid before explaining and cancelling")
	cmd.Flags().BoolVar(&choose, "choose", false, "pick the winner yourself by price, reputation and round-trip time (a 3-block auction) instead of the ledger's lowest price")
	return cmd
}

func newJobspecCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobspec",
		Short: "The job file format: print its JSON Schema, or check a file",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of job files (for editors)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := g.out.Write(jobspec.Schema())
			return err
		},
	}, &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a job file and show what it would order, without deploying",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, job, err := loadJob(args[0])
			if err != nil {
				return err
			}
			o := job.Order
			out := map[string]any{"file": args[0], "ok": true, "manifest_bytes": len(job.Manifest), "order": o, "replicas": job.Replicas}
			if job.VaultOutputs != nil {
				out["outputs_to_vault"] = map[string]any{"months": job.VaultOutputs.Months, "permanent": job.VaultOutputs.Months == 0}
			}
			return g.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "%s is valid: %d GPU, %d mCPU, %d MiB memory for %s; max %s/h, deposit %s; manifest %d bytes (%s)\n",
					args[0], o.Resources.GPUCount, o.Resources.CPUMilli, o.Resources.MemoryMiB, time.Duration(o.DurationSec)*time.Second,
					client.FormatAmount(o.MaxPricePerHour), client.FormatAmount(o.Deposit), len(job.Manifest), o.ManifestHash)
				if job.Replicas > 1 {
					fmt.Fprintf(w, "runs on %d providers at once, paid only where the results agree; escrow %s (a deposit per run and one for a referee)\n",
						job.Replicas, client.FormatAmount(o.Deposit*uint64(job.Replicas+1)))
				}
				if v := job.VaultOutputs; v != nil {
					deal := fmt.Sprintf("for %d months", v.Months)
					if v.Months == 0 {
						deal = "permanently"
					}
					fmt.Fprintf(w, "its outputs, once it exits 0 and they are verified, are stored in Spare Vault %s (priced by spare store price)\n", deal)
				}
			})
		},
	})
	return cmd
}
