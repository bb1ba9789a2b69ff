package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/ledger"
	"github.com/sparenet/spare/ledger/store"
	"github.com/sparenet/spare/node"
)

func newNodeCmd(g *globals) *cobra.Command {
	var minGasPrice uint64
	var rebuild bool
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a validator: CometBFT with the Spare ledger, in this process",
		Long: `Run a validator node from --home (made by 'spare init' or 'spare testnet').

The node honours the home's config/config.toml (ports, block time, peers). It stops cleanly on
Ctrl-C or SIGTERM; after any crash, restarting replays the missing blocks to the same state.

At start the ledger's state is checked against the digest committed with it. A damaged database
(a corrupt journal or table) is refused, never served: --rebuild-ledger then moves data/ledger
aside (to data/ledger.damaged-TIME) and rebuilds the state by replaying every block from genesis.`,
		Example: "  spare node --home ~/.spare\n  spare node --home ~/.spare --rebuild-ledger",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := g.logger()
			if rebuild {
				aside, err := moveLedgerAside(g.ledgerDir())
				if err != nil {
					return err
				}
				if aside != "" {
					log.Warn("ledger moved aside; rebuilding it from the chain's blocks", "from", g.ledgerDir(), "to", aside)
				}
			}
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
	cmd.Flags().BoolVar(&rebuild, "rebuild-ledger", false, "move the ledger's database aside and rebuild the state by replaying every block from genesis (after it was found damaged)")
	cmd.Flags().Uint64Var(&minGasPrice, "min-gas-price", 0, "the least gas price, in uspr per million gas, of transactions this node lets into its mempool (the chain's params.min_gas_price when higher)")
	return cmd
}

// moveLedgerAside renames the ledger's database directory to DIR.damaged-TIME (DIR.damaged-TIME-N when an
// earlier rebuild took that name in the same second) and returns that name ("" when there was none): the node then
// starts from an empty state and replays the chain's blocks. Nothing set aside before is overwritten.
func moveLedgerAside(dir string) (string, error) {
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return "", nil
	}
	base := dir + ".damaged-" + time.Now().UTC().Format("20060102T150405Z")
	aside := base
	for n := 2; ; n++ {
		if _, err := os.Lstat(aside); os.IsNotExist(err) {
			break
		}
		if n > 1000 {
			return "", fmt.Errorf("rebuild-ledger: move %s aside: %s and 999 more names taken: remove old copies", dir, base)
		}
		aside = fmt.Sprintf("%s-%d", base, n)
	}
	if err := os.Rename(dir, aside); err != nil {
		return "", fmt.Errorf("rebuild-ledger: move %s aside: %w", dir, err)
	}
	return aside, nil
}
