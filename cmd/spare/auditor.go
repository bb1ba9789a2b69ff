package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/audit"
)

func newAuditorCmd(g *globals) *cobra.Command {
	var key string
	var timeout time.Duration
	var proofs, storage bool
	var storageTimeout time.Duration
	var transcripts, listen string
	cmd := &cobra.Command{
		Use:   "auditor",
		Short: "Run an auditor: challenge every provider each epoch and attest who answered",
		Long: `Run an auditor with a key from the ledger's auditor set (fixed at genesis: 'spare init' and 'spare dev'
make one). Each epoch it challenges every provider of the epoch's audit set at the host it registered,
with TLS pinned to the certificate it registered, and checks that the answer is signed with the key it
registered. It then sends one Attest: a bitmap of who answered. The ledger calls a provider down only when
auditors holding two thirds of the auditor weight agree. Down while holding leases closes them and
slashes stake; a streak of down epochs jails the provider (docs/ledger.md).

With --proofs (the default) it also sends proof-of-GPU challenges, unannounced: every declared device at
once, sized so that the claimed class finishes in time and the next class down cannot. It challenges
unverified providers every epoch and verified ones now and then. Passing verifies the provider; failing
(a missed deadline, a wrong row) slashes and jails it.

With --storage (the default) it also checks the Vault's storage providers every epoch: each shard
a provider declared held is challenged at one 16 KiB group drawn from the epoch's seed, its provider
must answer with the proof of that group (checked against the shard's root alone), and the auditor
attests (AttestStorage) naming the shards that failed. A shard named by auditors holding two thirds of the
weight is not paid that epoch and slashes its provider; two epochs in a row, it is rebuilt elsewhere.
Each epoch it also sends its beacon: the commitment to a fresh secret, and the secret committed the
epoch before, which the ledger mixes into the next epoch's seed. The secrets are kept in
<home>/auditor, so a restarted auditor still reveals its last one (docs/vault.md).

With --listen it accepts TCP connections there (and closes them at once): providers measure their round
trip to the host the auditor set names for it at genesis, and publish it with their peers'.`,
		Example: "  spare auditor --key auditor",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			kr, err := g.keyring()
			if err != nil {
				return err
			}
			signer, err := kr.Signer(key)
			if err != nil {
				return fmt.Errorf("--key %q: %w", key, err)
			}
			if timeout <= 0 {
				return fmt.Errorf("--timeout %s: give a positive duration, e.g. 5s", timeout)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			a := audit.NewAuditor(c, signer, g.logger().With("module", "auditor"))
			if storageTimeout <= 0 {
				return fmt.Errorf("--storage-timeout %s: give a positive duration, e.g. 10s", storageTimeout)
			}
			a.Timeout, a.Proofs = timeout, proofs
			a.StorageProofs, a.StorageTimeout = storage, storageTimeout
			// The beacon's secrets, kept private as the keys are.
			a.StateDir = filepath.Join(g.home, "auditor")
			if storage {
				if err := os.MkdirAll(a.StateDir, 0o700); err != nil {
					return err
				}
			}
			if transcripts == "" {
				transcripts = filepath.Join(g.home, "auditor", "transcripts")
			}
			a.TranscriptDir = transcripts
			if err := g.print(map[string]any{"auditor": signer.Address(), "node": c.URL()}, func(w io.Writer) {
				fmt.Fprintf(w, "auditor %s attesting on %s; Ctrl-C stops it\n", signer.Address(), c.URL())
			}); err != nil {
				return err
			}
			if listen != "" {
				ln, err := net.Listen("tcp", listen)
				if err != nil {
					return fmt.Errorf("--listen %s: %w", listen, err)
				}
				go func() {
					if err := audit.ServeRTT(ctx, ln); err != nil {
						g.logger().Warn("round-trip listener stopped", "err", err)
					}
				}()
			}
			if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "auditor", "auditor key (name or address) in the keyring")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long a provider has to answer a liveness challenge")
	cmd.Flags().BoolVar(&proofs, "proofs", true, "also challenge providers' declared devices with proof of GPU")
	cmd.Flags().BoolVar(&storage, "storage", true, "also check the Vault's storage proofs every epoch and send this auditor's beacon")
	cmd.Flags().DurationVar(&storageTimeout, "storage-timeout", audit.DefaultStorageTimeout, "how long a storage provider has to answer one proof")
	cmd.Flags().StringVar(&listen, "listen", "", "accept TCP connections here so providers can measure their round trip to this auditor (its genesis host)")
	cmd.Flags().StringVar(&transcripts, "transcripts", "", "directory to keep proof-of-GPU transcripts in (default <home>/auditor/transcripts); 'spare proof verify FILE' re-checks one")
	return cmd
}
