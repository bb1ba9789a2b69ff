package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/devnet"
)

func newDevCmd(g *globals) *cobra.Command {
	var reset, noDocker bool
	var nvsmi, explorerAddr string
	var providers int
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a whole Spare network in this process: validator, provider on this machine, auditor, explorer, funded keys",
		Long: `Run a validator (≈200 ms blocks), a provider daemon on this machine (its GPUs if any, else CPU; the
docker runtime when a Docker engine answers), an auditor that checks the provider's liveness every
epoch, and the network explorer, in one process, with funded keys "tenant" and "provider"
(--providers N runs N provider daemons, keys "provider", "provider-2"...). State is
kept in ~/.spare/dev (or --home); a second 'spare dev' resumes the same chain, --reset starts over. Every client command (deploy, leases, balance...) finds this network and the
tenant key with no flags. Ctrl-C stops everything cleanly.`,
		Example: "  spare dev\n  spare deploy examples/hello.yaml   # in another terminal",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home := g.home
			if !cmd.Flags().Changed("home") && !g.homeFromEnv {
				home = devHome()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return devnet.Run(ctx, devnet.Options{Home: home, Reset: reset, NvidiaSMI: nvsmi, NoDocker: noDocker, Explorer: explorerAddr,
				ExplorerFixed: cmd.Flags().Changed("explorer"), Providers: providers, Logger: g.logger()}, func(info devnet.Info) {
				sort.Strings(info.Runtimes)
				_ = g.print(info, func(w io.Writer) {
					state := "new chain"
					if info.Resumed {
						state = "resumed"
					}
					fmt.Fprintf(w, "spare dev is running (%s, %s)\n", info.ChainID, state)
					fmt.Fprintf(w, "  home          %s\n", info.Home)
					fmt.Fprintf(w, "  rpc           %s\n", info.RPC)
					fmt.Fprintf(w, "  provider      %s at %s (%d GPU, runtimes: %s)\n", info.Provider, info.ProviderAPI, info.GPUs, strings.Join(info.Runtimes, ", "))
					for _, p := range info.Providers[min(1, len(info.Providers)):] {
						fmt.Fprintf(w, "  provider      %s at %s (same machine)\n", p.Address, p.API)
					}
					fmt.Fprintf(w, "  tenant key    %s (funded)\n", info.Tenant)
					if !info.Auditor.IsZero() {
						fmt.Fprintf(w, "  auditor       %s (challenges the providers every %d blocks)\n", info.Auditor, devnet.EpochBlocks)
					}
					if info.ExplorerBusy != "" {
						fmt.Fprintf(w, "  explorer      %s (%s is in use)\n", info.Explorer, info.ExplorerBusy)
					} else if info.Explorer != "" {
						fmt.Fprintf(w, "  explorer      %s\n", info.Explorer)
					}
					fmt.Fprintf(w, "Try, in another terminal:\n  spare deploy examples/hello.yaml\nCtrl-C stops the network; 'spare dev' resumes it.\n")
				})
			})
		},
	}
	cmd.Flags().BoolVar(&reset, "reset", false, "delete the dev network's state and start a new chain")
	cmd.Flags().BoolVar(&noDocker, "no-docker", false, "do not offer the docker runtime")
	cmd.Flags().IntVar(&providers, "providers", 0, fmt.Sprintf("provider daemons to run on this machine, 1 to %d (replicated jobs need 2, a referee 3); default 1, or what the resumed network was made with", devnet.MaxProviders))
	cmd.Flags().StringVar(&nvsmi, "nvidia-smi", "nvidia-smi", "nvidia-smi program to detect GPUs with")
	cmd.Flags().StringVar(&explorerAddr, "explorer", "127.0.0.1:8080", `address of the network explorer ("" for none); when the default is in use, a free port`)
	return cmd
}

// devHome is where `spare dev` keeps its network: $SPARE_HOME/dev or ~/.spare/dev.
func devHome() string { return filepath.Join(baseHome(), "dev") }
