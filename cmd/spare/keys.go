package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/client/keyring"
)

func newKeysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the ed25519 keys in --home/keys (passphrase-encrypted unless --keyring-backend test)",
		Long: `Manage the ed25519 account keys in --home/keys. Keys are encrypted with a passphrase of at least 12
characters (SPARE_PASSPHRASE, or a prompt on the terminal). --keyring-backend test stores them
unencrypted, for throwaway test networks only: every command that uses such keys outside a home made
by 'spare dev' says so on stderr. 'spare keys add' never falls back to the dev network's home
(~/.spare/dev): to add a key there on purpose, name it with --home.`,
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
				if errors.Is(err, keyring.ErrPassphraseTooShort) {
					return fmt.Errorf("%w: set SPARE_PASSPHRASE, or type it at the prompt, with at least %d characters", err, keyring.MinPassphraseLen)
				}
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
