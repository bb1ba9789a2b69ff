package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/explorer"
)

func newExplorerCmd(g *globals) *cobra.Command {
	var listen, db string
	cmd := &cobra.Command{
		Use:   "explorer",
		Short: "Index the chain into SQLite and serve the network explorer (HTML pages and a JSON API)",
		Long: `Follow a node from block 1, keep what the explorer shows in a SQLite file (--db), and serve it:
an overview (height, block time, tx/s, providers and GPUs online, utilisation, stake, payments, a price
index by GPU model), providers, orders, leases, blocks, transactions and accounts, with live updates
(Server-Sent Events) and JSON for every page under /api. A restarted explorer resumes after the last
block it indexed; while the node is unreachable it retries. 'spare dev' starts one by itself.`,
		Example: "  spare explorer --node http://127.0.0.1:26657 --listen 127.0.0.1:8080\n  curl -s localhost:8080/api/overview",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if db == "" {
				db = filepath.Join(g.home, "explorer", "index.db")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			e, err := explorer.Start(ctx, explorer.Options{Client: c, DB: db, Listen: listen, Logger: g.logger().With("node", c.URL())})
			if err != nil {
				return err
			}
			out := struct {
				URL  string `json:"url"`
				DB   string `json:"db"`
				Node string `json:"node"`
			}{e.URL, db, c.URL()}
			if err := g.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "explorer serving %s (index %s, node %s); Ctrl-C stops it\n", e.URL, db, c.URL())
			}); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return e.Close()
			case err := <-e.Done():
				e.Close()
				if err == nil || errors.Is(err, context.Canceled) {
					return nil
				}
				return err
			}
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve the explorer on")
	cmd.Flags().StringVar(&db, "db", "", "SQLite file of the index (default <home>/explorer/index.db)")
	return cmd
}
