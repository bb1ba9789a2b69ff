package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/ledger"
	"github.com/sparenet/spare/ledger/store"
	"github.com/sparenet/spare/node"
)

func newNodeCmd(g *globals) *cobra.Command {
	var minGasPrice uint64
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a validator: CometBFT with the Spare ledger, in this process",
		Long: `Run a validator node from --home (made by 'spare init' or 'spare testnet').

The node honours the home's config/config.toml (ports, block time, peers). It stops cleanly on
Ctrl-C or SIGTERM; after any crash, restarting replays the missing blocks to the same state.`,
		Example: "  spare node --home ~/.spare",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := g.logger()
			st, err := store.Open(g.ledgerDir())
			if err != nil {
				return err
			}
			defer st.Close()
			app := ledger.New(st, ledger.Options{Logger: log.With("module", "ledger"), MinGasPrice: minGasPrice})
			n, err := node.Start(g.home, app, log.With("module", "comet"))
			if err != nil {
				return err
			}
			log.Info("node running", "home", g.home, "rpc", n.RPCAddress(), "ledger_height", st.Height())
			if g.output == "json" {
				fmt.Fprintf(g.out, "{\"rpc\": %q, \"home\": %q}\n", n.RPCAddress(), g.home)
			}
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
			s := <-sig
			log.Info("stopping", "signal", s.String())
			return n.Stop()
		},
	}
	cmd.Flags().Uint64Var(&minGasPrice, "min-gas-price", 0, "the least gas price, in uspr per million gas, of transactions this node lets into its mempool (the chain's params.min_gas_price when higher)")
	return cmd
}
