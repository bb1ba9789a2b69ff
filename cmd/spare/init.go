package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cometbft/cometbft/privval"
	"github.com/spf13/cobra"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/node"
)

// genesisFlags are shared by init and testnet.
type genesisFlags struct {
	chainID   string
	keys      []string
	auditors  []string
	fund      string
	blockTime time.Duration
}

func (f *genesisFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.chainID, "chain-id", "spare-local", "network name, part of every signature")
	cmd.Flags().StringSliceVar(&f.keys, "keys", []string{"tenant", "provider"}, "keys to create and fund in genesis")
	cmd.Flags().StringSliceVar(&f.auditors, "auditors", []string{"auditor"}, "keys that form the auditor set (weight 1 each; created and funded like --keys); run 'spare auditor --key NAME' for each")
	cmd.Flags().StringVar(&f.fund, "fund", "1000000", "genesis balance of each key, in SPR (or 123uspr)")
	cmd.Flags().DurationVar(&f.blockTime, "block-time", 100*time.Millisecond, "target time between blocks")
}

type fundedKey struct {
	Name    string     `json:"name"`
	Address tx.Address `json:"address"`
	Balance uint64     `json:"balance"`
}

// fundKeys creates (or reuses) the keys in kr and returns the genesis app_state funding them.
func (f *genesisFlags) fundKeys(kr *keyring.Keyring) ([]fundedKey, json.RawMessage, error) {
	amount, err := client.ParseAmount(f.fund)
	if err != nil {
		return nil, nil, fmt.Errorf("--fund: %w", err)
	}
	if len(f.keys) == 0 {
		return nil, nil, fmt.Errorf("--keys is empty: fund at least one key, e.g. --keys tenant,provider")
	}
	g := api.Genesis{Params: api.DefaultParams()}
	var out []fundedKey
	funded := map[string]tx.Address{}
	for _, name := range append(slices.Clone(f.keys), f.auditors...) {
		if _, ok := funded[name]; ok {
			continue
		}
		info, err := kr.Show(name)
		if err != nil {
			if info, err = kr.Add(name); err != nil {
				return nil, nil, fmt.Errorf("key %q: %w", name, err)
			}
		}
		funded[name] = info.Address
		g.Accounts = append(g.Accounts, api.GenesisAccount{Address: info.Address, Balance: amount})
		out = append(out, fundedKey{Name: name, Address: info.Address, Balance: amount})
	}
	for _, name := range f.auditors {
		if !slices.ContainsFunc(g.Auditors, func(a api.GenesisAuditor) bool { return a.Address == funded[name] }) {
			g.Auditors = append(g.Auditors, api.GenesisAuditor{Address: funded[name], Weight: 1})
		}
	}
	state, err := json.Marshal(g)
	return out, state, err
}

type initResult struct {
	ChainID     string      `json:"chain_id"`
	Home        string      `json:"home"`
	RPC         string      `json:"rpc"`
	Keys        []fundedKey `json:"keys"`
	FeeAccount  tx.Address  `json:"fee_account"` // the validator's address: block fees are paid to it
	NextCommand string      `json:"next"`
}

func newInitCmd(g *globals) *cobra.Command {
	var gf genesisFlags
	var rpc, p2p string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a single-validator home: config, validator key, funded keys and genesis",
		Example: `  spare init --home ~/.spare --chain-id spare-local
  spare init --home /tmp/s --keyring-backend test --keys alice,bob --fund 5000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := os.Stat(filepath.Join(g.home, "config", "genesis.json")); err == nil {
				return fmt.Errorf("%s already has a genesis: pick another --home or remove it", g.home)
			}
			kr, err := g.keyring()
			if err != nil {
				return err
			}
			keys, state, err := gf.fundKeys(kr)
			if err != nil {
				return err
			}
			if err := node.Init(g.home, node.Options{ChainID: gf.chainID, BlockTime: gf.blockTime, RPCListen: rpc, P2PListen: p2p, AppState: state}); err != nil {
				return err
			}
			res := initResult{ChainID: gf.chainID, Home: g.home, RPC: strings.Replace(rpc, "tcp://", "http://", 1), Keys: keys,
				FeeAccount:  validatorAddress(g.home),
				NextCommand: fmt.Sprintf("spare node --home %s", g.home)}
			return g.print(res, func(w io.Writer) {
				fmt.Fprintf(w, "Initialised %s for chain %q (blocks every %s)\n", g.home, gf.chainID, gf.blockTime)
				for _, k := range keys {
					fmt.Fprintf(w, "  key %-10s %s  %s\n", k.Name, k.Address, client.FormatAmount(k.Balance))
				}
				fmt.Fprintf(w, "  block fees go to the validator's account %s\n", res.FeeAccount)
				fmt.Fprintf(w, "Next: %s\n", res.NextCommand)
			})
		},
	}
	gf.register(cmd)
	cmd.Flags().StringVar(&rpc, "rpc", node.DefaultRPCListen, "RPC listen address")
	cmd.Flags().StringVar(&p2p, "p2p", node.DefaultP2PListen, "P2P listen address")
	return cmd
}

// validatorAddress is the account address of the home's validator key (CometBFT's address of an ed25519 key is
// the same 20 bytes of SHA-256 as a Spare account's).
func validatorAddress(home string) tx.Address {
	conf, err := node.LoadConfig(home)
	if err != nil {
		return tx.Address{}
	}
	pv := privval.LoadFilePV(conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile())
	var a tx.Address
	copy(a[:], pv.Key.Address)
	return a
}
