package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/audit"
	"github.com/sparenet/spare/ledger/tx"
)

func newProofCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "proof",
		Short: "Proof-of-GPU transcripts: re-check what an auditor's verdict rests on",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "verify FILE...",
		Short: "Re-check proof-of-GPU transcript files (deadlines and opened rows) and print their hashes",
		Long: `Re-check transcript files that auditors keep ('spare auditor --transcripts'). For each device, the
commitment came before the class's deadline, and every opened row is right: recomputed from the revealed
seed, and proven against the committed root. The file's SHA-256 is printed: compare it with the transcript
hash in the auditor's AttestHardware on the ledger (the explorer's hardware.attested events). Exits non-zero
when a file fails.`,
		Example: "  spare proof verify ~/.spare/auditor/transcripts/spare1...-1795250000000.pgs",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			type device struct {
				Class       string  `json:"class"`
				N           int     `json:"n"`
				K           int     `json:"k"`
				ElapsedMs   float64 `json:"elapsed_ms"`
				DeadlineMs  float64 `json:"deadline_ms"`
				OpsPerSec   float64 `json:"ops_per_sec"`
				RowsChecked int     `json:"rows_checked"`
			}
			type result struct {
				File    string   `json:"file"`
				Hash    tx.Hash  `json:"hash"`
				OK      bool     `json:"ok"`
				Error   string   `json:"error,omitempty"`
				Devices []device `json:"devices,omitempty"`
			}
			var out []result
			failed := false
			for _, f := range args {
				r := result{File: f}
				b, err := os.ReadFile(f)
				var ts audit.Transcripts
				if err == nil {
					ts, err = audit.DecodeTranscripts(b)
				}
				if err == nil {
					r.Hash = ts.Hash()
					for _, t := range ts {
						r.Devices = append(r.Devices, device{Class: t.Class, N: t.Challenge.N, K: t.Challenge.K,
							ElapsedMs: float64(t.Elapsed().Microseconds()) / 1000, DeadlineMs: float64(t.Deadline.Microseconds()) / 1000,
							OpsPerSec: t.Throughput(), RowsChecked: len(t.Opening.Rows)})
					}
					err = ts.Verify()
				}
				if err != nil {
					r.Error, failed = err.Error(), true
				} else {
					r.OK = true
				}
				out = append(out, r)
			}
			if err := g.print(out, func(w io.Writer) {
				for _, r := range out {
					state := "ok"
					if !r.OK {
						state = "FAIL: " + r.Error
					}
					fmt.Fprintf(w, "%s  %s  %s\n", r.File, r.Hash, state)
					for i, d := range r.Devices {
						fmt.Fprintf(w, "  device %d: %s n=%d k=%d, committed after %.1f ms (deadline %.1f ms), %.3g int8 ops/s, %d rows checked\n",
							i, d.Class, d.N, d.K, d.ElapsedMs, d.DeadlineMs, d.OpsPerSec, d.RowsChecked)
					}
				}
			}); err != nil {
				return err
			}
			if failed {
				return reportedError{"a transcript failed: see above"}
			}
			return nil
		},
	})
	return cmd
}
