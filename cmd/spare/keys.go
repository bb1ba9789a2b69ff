package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/client/keyring"
)

func newKeysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the ed25519 keys in --home/keys (passphrase-encrypted unless --keyring-backend test)",
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:     "add NAME",
			Short:   "Create a new key",
			Example: "  SPARE_PASSPHRASE=... spare keys add alice",
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				kr, err := g.keyring()
				if err != nil {
					return err
				}
				info, err := kr.Add(args[0])
				if err != nil {
					return err
				}
				return g.print(info, func(w io.Writer) { fmt.Fprintf(w, "%s %s\n", info.Name, info.Address) })
			},
		},
		&cobra.Command{
			Use:   "list",
			Short: "List keys and their addresses",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				kr, err := g.keyring()
				if err != nil {
					return err
				}
				infos, err := kr.List()
				if err != nil {
					return err
				}
				if infos == nil {
					infos = []keyring.Info{}
				}
				return g.print(infos, func(w io.Writer) {
					if len(infos) == 0 {
						fmt.Fprintf(w, "no keys in %s: create one with 'spare keys add NAME'\n", g.keysDir())
					}
					for _, i := range infos {
						fmt.Fprintf(w, "%-16s %s  (%s)\n", i.Name, i.Address, i.Backend)
					}
				})
			},
		},
		&cobra.Command{
			Use:   "show NAME|ADDRESS",
			Short: "Show one key",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				kr, err := g.keyring()
				if err != nil {
					return err
				}
				info, err := kr.Show(args[0])
				if err != nil {
					return err
				}
				return g.print(info, func(w io.Writer) { fmt.Fprintf(w, "%s %s\n", info.Name, info.Address) })
			},
		},
		&cobra.Command{
			Use:   "delete NAME",
			Short: "Delete a key (its funds stay on the ledger but can no longer be moved by this machine)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				kr, err := g.keyring()
				if err != nil {
					return err
				}
				if err := kr.Delete(args[0]); err != nil {
					return err
				}
				return g.print(map[string]string{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "deleted %s\n", args[0]) })
			},
		},
	)
	return cmd
}
