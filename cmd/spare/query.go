package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// listFlags are the pagination and filter flags of list queries.
type listFlags struct {
	after    string
	limit    int
	tenant   string
	provider string
	order    uint64
	open     bool
}

func (f *listFlags) request(g *globals) (api.ListRequest, error) {
	r := api.ListRequest{After: f.after, Limit: f.limit, OrderID: f.order, Open: f.open}
	if f.limit < 0 || f.limit > api.MaxPageLimit {
		return r, fmt.Errorf("--limit %d: between 1 and %d", f.limit, api.MaxPageLimit)
	}
	var err error
	if f.tenant != "" {
		if r.Tenant, err = g.resolveAddress(f.tenant); err != nil {
			return r, fmt.Errorf("--tenant: %w", err)
		}
	}
	if f.provider != "" {
		if r.Provider, err = g.resolveAddress(f.provider); err != nil {
			return r, fmt.Errorf("--provider: %w", err)
		}
	}
	return r, nil
}

func parseID(what, s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("%s id %q: want a positive number", what, s)
	}
	return id, nil
}

func newQueryCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "query",
		Aliases: []string{"q"},
		Short:   "Read the ledger: accounts, providers, orders, bids, leases, receipts, verifications, clusters, round trips, params, supply, emission, Vault epochs and providers",
	}
	byID := func(name, what string, get func(c *client.Client, cmd *cobra.Command, id uint64) (any, error)) *cobra.Command {
		return &cobra.Command{
			Use:   name + " ID",
			Short: "Show one " + what,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				id, err := parseID(what, args[0])
				if err != nil {
					return err
				}
				c, err := g.client()
				if err != nil {
					return err
				}
				v, err := get(c, cmd, id)
				if err != nil {
					return err
				}
				return g.printObject(v)
			},
		}
	}
	byAddress := func(name, short string, get func(c *client.Client, cmd *cobra.Command, a tx.Address) (any, error)) *cobra.Command {
		return &cobra.Command{
			Use:   name + " NAME|ADDRESS",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				a, err := g.resolveAddress(args[0])
				if err != nil {
					return err
				}
				c, err := g.client()
				if err != nil {
					return err
				}
				v, err := get(c, cmd, a)
				if err != nil {
					return err
				}
				return g.printObject(v)
			},
		}
	}
	cmd.AddCommand(
		newEmissionCmd(g),
		byID("order", "order", func(c *client.Client, cmd *cobra.Command, id uint64) (any, error) { return c.Order(cmd.Context(), id) }),
		byID("bid", "bid", func(c *client.Client, cmd *cobra.Command, id uint64) (any, error) { return c.Bid(cmd.Context(), id) }),
		byID("lease", "lease", func(c *client.Client, cmd *cobra.Command, id uint64) (any, error) { return c.Lease(cmd.Context(), id) }),
		byID("receipt", "lease's receipt", func(c *client.Client, cmd *cobra.Command, id uint64) (any, error) {
			return c.Receipt(cmd.Context(), id)
		}),
		byID("verification", "replicated order's comparison of its runs", func(c *client.Client, cmd *cobra.Command, id uint64) (any, error) {
			return c.Verification(cmd.Context(), id)
		}),
		byID("cluster", "cluster order's members by rank", func(c *client.Client, cmd *cobra.Command, id uint64) (any, error) {
			return c.Cluster(cmd.Context(), id)
		}),
		byAddress("latency", "Show a provider's published round trips to its peers", func(c *client.Client, cmd *cobra.Command, a tx.Address) (any, error) {
			return c.Latency(cmd.Context(), a)
		}),
		byAddress("account", "Show an account (balance, nonce)", func(c *client.Client, cmd *cobra.Command, a tx.Address) (any, error) {
			return c.Account(cmd.Context(), a)
		}),
		byAddress("provider", "Show a provider (hardware, stake, status, reputation)", func(c *client.Client, cmd *cobra.Command, a tx.Address) (any, error) {
			return c.Provider(cmd.Context(), a)
		}),
		byAddress("vault-provider", "Show a provider's Spare Vault accounting (shards held, pay rates, earned, failed proofs)", func(c *client.Client, cmd *cobra.Command, a tx.Address) (any, error) {
			var v api.VaultProvider
			return v, c.Query(cmd.Context(), api.QueryVaultProvider, api.AddressRequest{Address: a}, &v)
		}),
		&cobra.Command{
			Use:   "vault-epoch [EPOCH]",
			Short: "Show an epoch's Spare Vault record: its challenge seed, and once tallied its storage proofs' result (the current epoch without EPOCH)",
			Args:  cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var r api.EpochRequest
				if len(args) == 1 {
					e, err := strconv.ParseUint(args[0], 10, 64)
					if err != nil {
						return fmt.Errorf("epoch %q: give a number (spare query vault-epoch 12)", args[0])
					}
					r.Epoch = &e
				}
				c, err := g.client()
				if err != nil {
					return err
				}
				var v api.VaultEpoch
				if err := c.Query(cmd.Context(), api.QueryVaultEpoch, r, &v); err != nil {
					return err
				}
				return g.printObject(v)
			},
		},
		&cobra.Command{
			Use:   "params",
			Short: "Show the chain's parameters",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := g.client()
				if err != nil {
					return err
				}
				p, err := c.Params(cmd.Context())
				if err != nil {
					return err
				}
				return g.printObject(p)
			},
		},
		newSupplyCmd(g),
		newListCmd(g, "orders", "List orders (--tenant, --open)", func(c *client.Client, cmd *cobra.Command, r api.ListRequest) (any, string, error) {
			l, err := c.Orders(cmd.Context(), r)
			return l, l.Next, err
		}),
		newListCmd(g, "bids", "List bids (--order or --provider)", func(c *client.Client, cmd *cobra.Command, r api.ListRequest) (any, string, error) {
			l, err := c.Bids(cmd.Context(), r)
			return l, l.Next, err
		}),
		newListCmd(g, "leases", "List leases (--tenant or --provider)", func(c *client.Client, cmd *cobra.Command, r api.ListRequest) (any, string, error) {
			l, err := c.Leases(cmd.Context(), r)
			return l, l.Next, err
		}),
		newListCmd(g, "providers", "List providers", func(c *client.Client, cmd *cobra.Command, r api.ListRequest) (any, string, error) {
			l, err := c.Providers(cmd.Context(), r)
			return l, l.Next, err
		}),
	)
	return cmd
}

func newListCmd(g *globals, name, short string, list func(*client.Client, *cobra.Command, api.ListRequest) (any, string, error)) *cobra.Command {
	var f listFlags
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := f.request(g)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			v, next, err := list(c, cmd, r)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.print(v, nil)
			}
			if err := g.printObject(v); err != nil {
				return err
			}
			if next != "" {
				fmt.Fprintf(g.out, "more: --after %s\n", next)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&f.after, "after", "", "continue after this cursor (the \"next\" of the previous page)")
	cmd.Flags().IntVar(&f.limit, "limit", 0, fmt.Sprintf("page size (default %d, at most %d)", api.DefaultPageLimit, api.MaxPageLimit))
	switch name {
	case "orders":
		cmd.Flags().StringVar(&f.tenant, "tenant", "", "only this tenant's orders (key name or address)")
		cmd.Flags().BoolVar(&f.open, "open", false, "only open orders")
	case "bids":
		cmd.Flags().Uint64Var(&f.order, "order", 0, "only bids on this order")
		cmd.Flags().StringVar(&f.provider, "provider", "", "only this provider's bids")
	case "leases":
		cmd.Flags().StringVar(&f.tenant, "tenant", "", "only this tenant's leases")
		cmd.Flags().StringVar(&f.provider, "provider", "", "only this provider's leases")
	}
	return cmd
}

// supplyReport is every component of the supply invariant and whether it holds.
type supplyReport struct {
	api.Supply
	Height int64  `json:"height"`
	Held   uint64 `json:"held"`   // balances + escrow + staked + unbonding + pool
	Issued uint64 `json:"issued"` // genesis + minted - burned
	Holds  bool   `json:"holds"`
}

func newSupplyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "supply",
		Short: "Show every component of the token supply and check that none appeared or vanished",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			s, err := c.Supply(cmd.Context())
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			r := supplyReport{Supply: s, Height: st.Height, Held: s.Balances + s.Escrow + s.Staked + s.Unbonding + s.Pool + s.Rewards,
				Issued: s.Genesis + s.Minted - s.Burned, Holds: s.Holds()}
			return g.print(r, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				for _, row := range []struct {
					k string
					v uint64
				}{{"balances", s.Balances}, {"escrow", s.Escrow}, {"staked", s.Staked}, {"unbonding", s.Unbonding},
					{"pool", s.Pool}, {"rewards", s.Rewards}, {"= held", r.Held}, {"genesis", s.Genesis}, {"minted", s.Minted}, {"burned", s.Burned}, {"= issued", r.Issued}} {
					fmt.Fprintf(tw, "%s\t%d uspr\t%s\n", row.k, row.v, client.FormatAmount(row.v))
				}
				tw.Flush()
				fmt.Fprintf(w, "height %d: invariant holds: %v\n", st.Height, r.Holds)
			})
		},
	}
}

// printObject prints v as indented JSON in both modes: ledger objects are nested records, and JSON is the
// clearest text form of them.
func (g *globals) printObject(v any) error {
	saved := g.output
	g.output = "json"
	defer func() { g.output = saved }()
	return g.print(v, nil)
}
