package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/audit"
)

func newVerifyCmd(g *globals) *cobra.Command {
	var outputs string
	cmd := &cobra.Command{
		Use:   "verify LEASE",
		Short: "Check a lease's signed receipt against the ledger (and its outputs against the receipt's root)",
		Long: `Check, trusting neither the provider nor the tenant, that a completed lease's receipt is what the ledger
says: signed with the provider's key registered on the ledger, for this chain, this lease and the order's
manifest, with sane times and GPU-seconds. With --outputs DIR (the lease's directory, as 'spare outputs'
writes it: outputs/LEASE), the files' Merkle root must equal the receipt's output root. Exits non-zero when
any check fails.`,
		Example: "  spare verify 7\n  spare verify 7 --outputs outputs/7 -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseLeaseArg(args[0])
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			rep, err := audit.VerifyLease(ctx, c, id, outputs)
			if err != nil {
				return err
			}
			if err := g.print(rep, func(w io.Writer) {
				for _, ch := range rep.Checks {
					mark := "ok  "
					if !ch.OK {
						mark = "FAIL"
					}
					fmt.Fprintf(w, "%s %-22s %s\n", mark, ch.Name, ch.Detail)
				}
				if rep.OK {
					fmt.Fprintf(w, "lease %d: the receipt checks out\n", id)
				}
			}); err != nil {
				return err
			}
			if !rep.OK {
				return reportedError{"verification failed: see the checks marked FAIL"}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&outputs, "outputs", "", "directory of the lease's downloaded outputs to check against the receipt's root")
	return cmd
}
