package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/tx"
)

type balanceRow struct {
	Name    string     `json:"name,omitempty"`
	Address tx.Address `json:"address"`
	Balance uint64     `json:"balance"`
	Nonce   uint64     `json:"nonce"`
}

// keyTarget is an address a command reports on, with its local key's name when it was named by one.
type keyTarget struct {
	Name    string
	Address tx.Address
}

// keyTargets resolves a NAME|ADDRESS argument, or lists every local key when there is none.
func (g *globals) keyTargets(args []string) ([]keyTarget, error) {
	if len(args) == 1 {
		a, err := g.resolveAddress(args[0])
		if err != nil {
			return nil, err
		}
		t := keyTarget{Address: a}
		if args[0] != a.String() {
			t.Name = args[0]
		}
		return []keyTarget{t}, nil
	}
	kr, err := g.keyring()
	if err != nil {
		return nil, err
	}
	infos, err := kr.List()
	if err != nil {
		return nil, err
	}
	out := make([]keyTarget, len(infos))
	for i, info := range infos {
		out[i] = keyTarget{Name: info.Name, Address: info.Address}
	}
	return out, nil
}

func newBalanceCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "balance [NAME|ADDRESS]",
		Short: "Show the balance of a key or address (all local keys when none is given)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := g.keyTargets(args)
			if err != nil {
				return err
			}
			targets := make([]balanceRow, len(keys))
			for i, k := range keys {
				targets[i] = balanceRow{Name: k.Name, Address: k.Address}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			for i := range targets {
				acc, err := c.Account(cmd.Context(), targets[i].Address)
				if err != nil {
					return err
				}
				targets[i].Balance, targets[i].Nonce = acc.Balance, acc.Nonce
			}
			var out any = targets
			if len(args) == 1 {
				out = targets[0]
			}
			return g.print(out, func(w io.Writer) {
				for _, t := range targets {
					fmt.Fprintf(w, "%-12s %s  %s\n", t.Name, t.Address, client.FormatAmount(t.Balance))
				}
			})
		},
	}
}

type sendResult struct {
	From     tx.Address `json:"from"`
	To       tx.Address `json:"to"`
	Amount   uint64     `json:"amount"`
	Fee      uint64     `json:"fee"`
	GasLimit int64      `json:"gas_limit"`
	GasUsed  int64      `json:"gas_used"`
	Hash     string     `json:"tx_hash"`
	Height   int64      `json:"height"`
}

func newSendCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "send FROM TO AMOUNT",
		Short: "Send tokens; waits until the transfer is in a block",
		Long: `Send AMOUNT from the local key FROM to TO (a key name or a spare1... address).
AMOUNT is in SPR (2.5 or 2.5spr) or micro-units (2500000uspr). The minimum fee is added and
paid to the block's proposer.`,
		Example: "  spare send tenant provider 12.5",
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			amount, err := client.ParseAmount(args[2])
			if err != nil {
				return err
			}
			to, err := g.resolveAddress(args[1])
			if err != nil {
				return fmt.Errorf("TO: %w", err)
			}
			kr, err := g.keyring()
			if err != nil {
				return err
			}
			signer, err := kr.Signer(args[0])
			if err != nil {
				return fmt.Errorf("FROM: %w", err)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			s := c.NewSender(signer)
			g.gasOptions(s)
			res, err := s.Send(cmd.Context(), &tx.Send{To: to, Amount: amount})
			if err != nil {
				return err
			}
			out := sendResult{From: signer.Address(), To: to, Amount: amount, Fee: res.Fee, GasLimit: res.GasWanted, GasUsed: res.GasUsed,
				Hash: res.Hash, Height: res.Height}
			return g.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "sent %s from %s to %s (fee %s for %d gas, %d used) in block %d, tx %s\n", client.FormatAmount(amount),
					out.From, out.To, client.FormatAmount(out.Fee), out.GasLimit, out.GasUsed, out.Height, out.Hash)
			})
		},
	}
}
