package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/node"
)

type testnetResult struct {
	ChainID string      `json:"chain_id"`
	Homes   []string    `json:"homes"`
	Keys    []fundedKey `json:"keys"`
	RPC     []string    `json:"rpc"`
}

func newTestnetCmd(g *globals) *cobra.Command {
	var gf genesisFlags
	var n, basePort int
	var dir string
	cmd := &cobra.Command{
		Use:   "testnet",
		Short: "Create a local N-validator network on loopback ports",
		Long: `Create DIR/node0 .. DIR/node{N-1}, each a validator home sharing one genesis, wired to each
other on 127.0.0.1. Start each with 'spare node --home DIR/nodeI'. The funded keys are in
DIR/node0/keys, so client commands work with --home DIR/node0.`,
		Example: "  spare testnet --validators 4 --dir /tmp/spare-net --keyring-backend test",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 || n > 64 {
				return fmt.Errorf("--validators %d: between 1 and 64", n)
			}
			if dir == "" {
				return fmt.Errorf("--dir is required: where to write the validator homes")
			}
			if basePort == 0 {
				p, err := node.FreePorts(n)
				if err != nil {
					return err
				}
				basePort = p
			}
			kr, err := keyring.Open(filepath.Join(dir, "node0", "keys"), keyring.Options{Backend: keyring.Backend(g.keyringBackend), Passphrase: passphrase()})
			if err != nil {
				return err
			}
			keys, state, err := gf.fundKeys(kr)
			if err != nil {
				return err
			}
			homes, err := node.InitTestnet(dir, node.TestnetOptions{Validators: n, ChainID: gf.chainID, BasePort: basePort, BlockTime: gf.blockTime, AppState: state})
			if err != nil {
				return err
			}
			res := testnetResult{ChainID: gf.chainID, Homes: homes, Keys: keys}
			for i := range homes {
				res.RPC = append(res.RPC, fmt.Sprintf("http://127.0.0.1:%d", basePort+2*i))
			}
			return g.print(res, func(w io.Writer) {
				fmt.Fprintf(w, "Testnet %q with %d validators in %s\n", gf.chainID, n, dir)
				for i, h := range homes {
					fmt.Fprintf(w, "  spare node --home %s   # rpc %s\n", h, res.RPC[i])
				}
				for _, k := range keys {
					fmt.Fprintf(w, "  key %-10s %s (in %s)\n", k.Name, k.Address, filepath.Join(dir, "node0", "keys"))
				}
			})
		},
	}
	gf.register(cmd)
	cmd.Flags().IntVar(&n, "validators", 4, "number of validators")
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the validator homes")
	cmd.Flags().IntVar(&basePort, "base-port", 0, "first port: node i uses RPC base+2i and P2P base+2i+1 (default: find free ports)")
	return cmd
}
