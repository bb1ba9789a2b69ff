package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/devnet"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/tenant"
	"github.com/sparenet/spare/vault"
	"github.com/sparenet/spare/vault/remote"
)

func newStoreCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Spare Vault: store files and directories on storage providers, read them back by root",
		Long: "Spare Vault keeps objects — a file, or a directory as a deterministic archive — Reed-Solomon coded\n" +
			"into shards on storage providers the ledger draws (docs/vault.md). An object is named by its BLAKE3 root;\n" +
			"anyone who knows the root can read it, each shard verified as it streams. A put pays once: for a term\n" +
			"(--months) at each drawn provider's price, or permanently (an endowment priced by the chain's params).\n" +
			"Jobs read objects as inputs: '- vault: ROOT' under inputs: (JOBSPEC.md).",
		Example: "  spare store put data.bin\n  spare store get 4f1c…e2 data.bin\n  spare store status 4f1c…e2\n  spare store ls\n  spare store price 1GiB --permanent\n  spare store pool",
	}
	cmd.AddCommand(newStorePutCmd(g), newStoreGetCmd(g), newStoreStatusCmd(g), newStoreLsCmd(g), newStorePriceCmd(g), newStorePoolCmd(g))
	return cmd
}

// codingFlag reads --coding: "K+M" or "K+M/SIZE" ("" or "auto": the default for the chain).
func (g *globals) coding(cmd *cobra.Command, s string, c *client.Client) (vault.Coding, error) {
	if s == "" || s == "auto" {
		st, err := c.NodeStatus(cmd.Context())
		if err != nil {
			return vault.Coding{}, err
		}
		if st.NodeInfo.Network == devnet.ChainID {
			return vault.DevCoding, nil
		}
		return vault.DefaultCoding, nil
	}
	km, size, hasSize := strings.Cut(s, "/")
	ks, ms, ok := strings.Cut(km, "+")
	k, err1 := strconv.Atoi(ks)
	m, err2 := strconv.Atoi(ms)
	if !ok || err1 != nil || err2 != nil {
		return vault.Coding{}, fmt.Errorf("--coding %q: write K+M or K+M/SHARDSIZE, e.g. 10+20 or 2+2/4MiB", s)
	}
	cd := vault.Coding{K: k, M: m, ShardSize: vault.DefaultCoding.ShardSize}
	if hasSize {
		n, err := parseBytes(size)
		if err != nil {
			return vault.Coding{}, fmt.Errorf("--coding %q: shard size: %w", s, err)
		}
		cd.ShardSize = n
	}
	if err := cd.Validate(); err != nil {
		return vault.Coding{}, fmt.Errorf("--coding %q: %w", s, err)
	}
	return cd, nil
}

// parseBytes reads 1048576, 4MiB, 1GiB, 64KiB.
func parseBytes(s string) (uint64, error) {
	mult := uint64(1)
	for _, u := range []struct {
		suffix string
		m      uint64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = rest, u.m
			break
		}
	}
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q: a positive whole number of bytes, or with KiB, MiB, GiB or TiB", s)
	}
	if n > (1<<63)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// parseRoot reads a 64-hex BLAKE3 root.
func parseRoot(s string) (tx.Hash, error) {
	h, err := tx.ParseHash(s)
	if err != nil {
		return tx.Hash{}, fmt.Errorf("ROOT %q: an object's root is 64 hex digits, as 'spare store put' printed it (spare store ls lists yours)", s)
	}
	return h, nil
}

// bar writes a progress line to stderr when it is a terminal, else one line per phase.
type bar struct {
	g     *globals
	phase string
	tty   bool
}

func (b *bar) show(phase string, done, total uint64) {
	if b.g.output == "json" && !b.tty {
		return
	}
	if !b.tty {
		if phase != b.phase {
			b.phase = phase
			fmt.Fprintf(b.g.stderr, "%s…\n", phase)
		}
		return
	}
	if phase != b.phase && b.phase != "" {
		fmt.Fprintln(b.g.stderr)
	}
	b.phase = phase
	if total == 0 {
		fmt.Fprintf(b.g.stderr, "\r%-10s", phase)
		return
	}
	const width = 30
	fill := int(done * width / total)
	fmt.Fprintf(b.g.stderr, "\r%-10s [%s%s] %s / %s", phase, strings.Repeat("#", fill), strings.Repeat(".", width-fill), sizeText(done), sizeText(total))
}

func (b *bar) end() {
	if b.tty && b.phase != "" {
		fmt.Fprintln(b.g.stderr)
	}
}

func sizeText(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func newStorePutCmd(g *globals) *cobra.Command {
	var from, codingS, maxPrice string
	var months uint64
	var permanent bool
	cmd := &cobra.Command{
		Use:   "put PATH",
		Short: "Store a file or a directory; prints its root, its cost and where its shards went",
		Long: "Code PATH (a directory: its deterministic archive) into shards, store its manifest on the ledger with\n" +
			"the deal's escrow, wait for the ledger to draw each shard's provider (at the end of the next block: one\n" +
			"shard of a stripe per provider, regions spread, weighted by stake), and upload every shard to its\n" +
			"provider, which keeps it only if it hashes to its root. A term deal (--months, 12 by default) escrows\n" +
			"the most it could cost at --max-price and gets the difference back once the draw sets each shard's price;\n" +
			"--permanent pays the chain's endowment instead. Running the same put again resumes an interrupted one.\n" +
			"--coding: K+M[/SHARDSIZE] (default: 10+20/64MiB, on spare dev 2+2/4MiB).",
		Example: "  spare store put data.bin\n  spare store put ./dataset --permanent\n  spare store put model.pt --months 3 --max-price 0.002 -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if permanent && cmd.Flags().Changed("months") {
				return fmt.Errorf("--permanent and --months: a deal is for a term or permanent, not both")
			}
			if permanent && maxPrice != "" {
				return fmt.Errorf("--max-price applies to a term deal: a permanent deal pays the chain's endowment rate (spare store price SIZE --permanent)")
			}
			if !permanent && (months == 0 || months > tx.MaxStorageMonths) {
				return fmt.Errorf("--months %d: 1 to %d (or --permanent)", months, tx.MaxStorageMonths)
			}
			t, err := g.tenantFor(from)
			if err != nil {
				return err
			}
			cd, err := g.coding(cmd, codingS, t.Client())
			if err != nil {
				return err
			}
			opt := tenant.PutOptions{Coding: cd, Months: months}
			if permanent {
				opt.Months = 0
			}
			if maxPrice != "" {
				if opt.MaxPrice, err = client.ParseAmount(maxPrice); err != nil {
					return fmt.Errorf("--max-price: %w", err)
				}
			}
			b := &bar{g: g, tty: g.isTerminal(g.stderr)}
			opt.Progress = func(p tenant.PutProgress) { b.show(p.Phase, p.Done, p.Total) }
			res, err := t.StorePut(cmd.Context(), args[0], opt)
			b.end()
			if err != nil {
				if strings.Contains(err.Error(), "too few storage providers") && g.devHome && codingS == "" {
					return fmt.Errorf("%w; spare dev's coding needs %d: start it over with more, 'spare dev --reset --providers %d'", err, cd.K+cd.M, cd.K+cd.M)
				}
				return err
			}
			return g.print(res, func(w io.Writer) {
				deal := fmt.Sprintf("%d months", res.Months)
				if res.Months == 0 {
					deal = "permanently"
				}
				fmt.Fprintf(w, "stored %s (%s) as object %d, %s, coded %d+%d in %d shards of %s\n", filepath.Base(args[0]), sizeText(res.Size), res.ObjectID, deal,
					res.Coding.K, res.Coding.M, len(res.Shards), sizeText(vaultShardSize(res)))
				fmt.Fprintf(w, "root %s\n", res.Root)
				fmt.Fprintf(w, "cost %s held for the providers (refunded %s of the maximum), fee %s\n", client.FormatAmount(res.Escrow), client.FormatAmount(res.Refund), client.FormatAmount(res.Fee))
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "STRIPE\tSHARD\tPROVIDER\tREGION\tPRICE/GIB-MONTH")
				for _, s := range res.Shards {
					fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\n", s.Stripe, s.Index, s.Provider, s.Region, client.FormatAmount(s.PricePerGiBMonth))
				}
				tw.Flush()
				fmt.Fprintf(w, "read it back: spare store get %s DEST\n", res.Root)
			})
		},
	}
	addFrom(cmd, &from)
	cmd.Flags().StringVar(&codingS, "coding", "", "K+M[/SHARDSIZE]: data and parity shards a stripe (default 10+20/64MiB; 2+2/4MiB on spare dev)")
	cmd.Flags().Uint64Var(&months, "months", 12, "a term deal of this many months")
	cmd.Flags().BoolVar(&permanent, "permanent", false, "store permanently: pay the chain's endowment once")
	cmd.Flags().StringVar(&maxPrice, "max-price", "", "the most a shard's provider is paid, SPR per GiB-month (default: the least that K+M of today's offers take)")
	return cmd
}

func vaultShardSize(r *tenant.PutResult) uint64 {
	l, err := vault.LayoutOf(r.Size, r.Coding)
	if err != nil {
		return 0
	}
	return l.ShardSize
}

func newStoreGetCmd(g *globals) *cobra.Command {
	var rng string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "get ROOT [DEST]",
		Short: "Read an object back from its storage providers, verified as it streams",
		Long: "Fetch object ROOT from the providers holding its shards (any K of a stripe), each shard verified against\n" +
			"its root as it streams; a provider that fails, stalls or serves bytes that do not verify is given up on,\n" +
			"reported, and the stripe rebuilt from the others. The whole object goes to DEST.partial first and is\n" +
			"checked against ROOT before it is renamed to DEST; an interrupted get resumes from what DEST.partial\n" +
			"holds. DEST defaults to the root's hex; '-' writes to stdout. --range START-END (bytes, END exclusive;\n" +
			"START- to the end) writes just those bytes.",
		Example: "  spare store get 4f1c…e2 data.bin\n  spare store get 4f1c…e2 - --range 0-1048576 | head",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := parseRoot(args[0])
			if err != nil {
				return err
			}
			dest := root.String()
			if len(args) == 2 {
				dest = args[1]
			}
			opt := tenant.GetOptions{Timeout: timeout}
			if rng != "" {
				a, b, ok := strings.Cut(rng, "-")
				start, err1 := strconv.ParseUint(a, 10, 64)
				var end uint64
				var err2 error
				if b != "" {
					end, err2 = strconv.ParseUint(b, 10, 64)
				}
				if !ok || err1 != nil || err2 != nil || (b != "" && end <= start) {
					return fmt.Errorf("--range %q: START-END in bytes, END exclusive and above START (or START- for the rest)", rng)
				}
				opt.Offset = start
				if b != "" {
					opt.Length = end - start
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			b := &bar{g: g, tty: g.isTerminal(g.stderr)}
			if dest != "-" {
				opt.Progress = func(done, total uint64) { b.show("fetching", done, total) }
			}
			opt.Failed = func(f vault.ShardFailure, h remote.ShardHost) {
				fmt.Fprintf(g.stderr, "\nprovider %s: stripe %d shard %d given up on: %v\n", h.Provider, f.Stripe, f.Index, f.Err)
			}
			res, err := tenant.StoreGet(cmd.Context(), c, root, dest, opt)
			b.end()
			if err != nil {
				return err
			}
			if dest == "-" {
				return nil
			}
			return g.print(res, func(w io.Writer) {
				resumed := ""
				if res.Resumed > 0 {
					resumed = fmt.Sprintf(" (resumed: %s were already there)", sizeText(res.Resumed))
				}
				fmt.Fprintf(w, "wrote %s of object %d to %s, verified%s\n", sizeText(res.Length), res.ObjectID, dest, resumed)
				for _, f := range res.Failed {
					fmt.Fprintf(w, "routed around: %s\n", f)
				}
			})
		},
	}
	cmd.Flags().StringVar(&rng, "range", "", "START-END: only these bytes of the object (END exclusive)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up on a provider that sends nothing for this long")
	return cmd
}

type storeStatusResult struct {
	Object api.VaultObject     `json:"object"`
	Shards []tenant.ShardState `json:"shards"`
	tenant.ObjectHealth
	// Pooled is what the deal put into the Vault pool at its draw (an audited chain's object; 0 otherwise): the
	// pool pays its shards' providers every epoch for the shards whose proofs pass.
	Pooled uint64 `json:"pooled"`
	// LastTallied is the network's last tallied epoch of storage proofs (absent on a chain without auditing).
	LastTallied *api.VaultEpoch `json:"last_tallied_epoch,omitempty"`
}

// lastTalliedEpoch is the chain's last epoch whose storage proofs were tallied (at the end of the epoch after
// it), or nil: a chain without auditing, or none tallied yet. Two or three queries.
func lastTalliedEpoch(ctx context.Context, c *client.Client) *api.VaultEpoch {
	var cur api.VaultEpoch
	if err := c.Query(ctx, api.QueryVaultEpoch, api.EpochRequest{}, &cur); err != nil {
		return nil
	}
	for back := uint64(1); back <= 2 && back <= cur.Epoch; back++ {
		e := cur.Epoch - back
		var rec api.VaultEpoch
		if err := c.Query(ctx, api.QueryVaultEpoch, api.EpochRequest{Epoch: &e}, &rec); err == nil && rec.Tallied {
			return &rec
		}
	}
	return nil
}

// epochText says what a tallied epoch decided.
func epochText(e *api.VaultEpoch) string {
	if !e.Decided {
		return fmt.Sprintf("epoch %d: not decided (auditors holding two thirds of the weight did not attest): nothing paid, slashed or lost", e.Epoch)
	}
	return fmt.Sprintf("epoch %d: decided, %d shard(s) failed, %d lost, %s paid from the pool", e.Epoch, e.Failed, e.Lost, client.FormatAmount(e.Paid))
}

// proofsText says how a shard's storage proofs stand (pooled: its object is on an audited chain).
func proofsText(s tenant.ShardState, pooled bool) string {
	switch {
	case s.Lost:
		return "lost: no provider until a repair draws one"
	case s.Repairing && s.HeldHeight == 0:
		return fmt.Sprintf("repairing: drawn onto its provider at block %d, to be rebuilt", s.RepairHeight)
	case s.Repairing:
		return fmt.Sprintf("repairing: rebuilt (declared at block %d), first proof pending", s.HeldHeight)
	case !pooled:
		return "-"
	case s.HeldHeight == 0:
		return "not declared held yet"
	case s.Failures > 0:
		return fmt.Sprintf("failing: %d epoch(s) in a row, the last %d", s.Failures, s.LastFailed)
	case s.RepairHeight > 0:
		return fmt.Sprintf("ok (repaired at block %d)", s.RepairHeight)
	}
	return "ok"
}

func newStoreStatusCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "status ROOT|ID",
		Short: "An object's deal and shards: each shard's provider, whether it holds it, and how its storage proofs stand",
		Long: "Show object ROOT (or object number ID): its size, coding and deal, and each shard's provider, region and\n" +
			"price, asking every provider whether it holds its shard now, and how the shard's storage proofs stand: lost\n" +
			"(failed 2 epochs in a row, taken from its provider), repairing (drawn onto another provider, with the block,\n" +
			"until its first proof there passes), failing (epochs in a row, the last), or not yet declared held by its\n" +
			"provider (not challenged or paid until it is). Health is the fewest healthy shards in any stripe against the\n" +
			"K it needs: a lost shard counts as missing, a repairing one is not healthy yet. On a chain that audits\n" +
			"storage it also shows what the deal put into the Vault pool and the last tallied epoch's result.",
		Example: "  spare store status 4f1c…e2\n  spare store status 3 -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var objs []api.VaultObject
			if id, err := strconv.ParseUint(args[0], 10, 64); err == nil && len(args[0]) < 20 {
				o, err := c.VaultObject(cmd.Context(), id)
				if err != nil {
					return fmt.Errorf("object %d: %w", id, err)
				}
				objs = append(objs, o)
			} else {
				root, err := parseRoot(args[0])
				if err != nil {
					return err
				}
				l, err := c.VaultObjects(cmd.Context(), api.VaultObjectsRequest{Root: root, Limit: api.MaxPageLimit})
				if err != nil {
					return err
				}
				if len(l.Items) == 0 {
					return fmt.Errorf("no object with root %s is stored: check the root (spare store ls lists yours)", root)
				}
				objs = l.Items
			}
			last := lastTalliedEpoch(cmd.Context(), c)
			var out []storeStatusResult
			for _, o := range objs {
				st, err := tenant.StoreStatus(cmd.Context(), c, o, timeout)
				if err != nil {
					return err
				}
				r := storeStatusResult{Object: o, Shards: st, ObjectHealth: tenant.Health(o, st), LastTallied: last}
				if o.Pooled {
					r.Pooled = o.Escrow
				}
				out = append(out, r)
			}
			var v any = out
			if len(out) == 1 {
				v = out[0]
			}
			return g.print(v, func(w io.Writer) {
				for _, r := range out {
					o := r.Object
					deal := fmt.Sprintf("%d months", o.Months)
					if o.Months == 0 {
						deal = "permanent"
					}
					money := "escrow " + client.FormatAmount(o.Escrow)
					if o.Pooled {
						money = client.FormatAmount(r.Pooled) + " put into the Vault pool at its draw (the pool pays its providers every epoch for the shards whose proofs pass)"
					}
					fmt.Fprintf(w, "object %d  root %s\n  owner %s, %s, coded %d+%d in %d stripes of %s shards, stored at block %d, %s\n  deal %s, %s\n  health: %s (%d of %d shards held)\n",
						o.ID, o.Root, o.Owner, sizeText(o.Size), o.K, o.M, o.Stripes, sizeText(o.ShardSize), o.Height, o.State, deal, money, r.Text, r.Held, o.Shards())
					if r.LastTallied != nil {
						fmt.Fprintf(w, "  storage proofs, last tallied %s\n", epochText(r.LastTallied))
					}
					tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
					fmt.Fprintln(tw, "  STRIPE\tSHARD\tPROVIDER\tREGION\tPROOFS\tROOT\tHELD")
					for _, s := range r.Shards {
						held := "yes"
						if !s.Held {
							held = "no"
							if s.Error != "" {
								held = "no: " + s.Error
							}
						}
						prov := "-"
						if !s.Provider.IsZero() {
							prov = s.Provider.String()
						}
						fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\t%s\t%s\t%s\n", s.Stripe, s.Index, prov, s.Region, proofsText(s, o.Pooled), s.Root.String()[:16]+"…", held)
					}
					tw.Flush()
				}
			})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for each provider's answer")
	return cmd
}

// storePoolResult is the Vault pool and what it last decided.
type storePoolResult struct {
	api.VaultPool
	// Audited: the chain audits storage (params.epoch_blocks > 0): objects pay into the pool at their draw.
	Audited     bool            `json:"audited"`
	EpochBlocks uint64          `json:"epoch_blocks"`
	LastTallied *api.VaultEpoch `json:"last_tallied_epoch,omitempty"`
}

func newStorePoolCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pool",
		Short: "The Vault pool: its balance, the bytes it pays for, what it has paid, the last epoch's result",
		Long: "On a chain that audits storage, every object's escrow (a term deal's cost, a permanent deal's\n" +
			"endowment) moves into one Vault pool at its draw, and the pool pays every storage provider each epoch\n" +
			"for its shards whose proofs did not fail, and repairs (docs/vault.md). Show its balance, the bytes of\n" +
			"term and permanent shards it pays for, what it has paid since genesis, and the last tallied epoch.",
		Example: "  spare store pool\n  spare store pool -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.Params(cmd.Context())
			if err != nil {
				return err
			}
			var r storePoolResult
			if err := c.Query(cmd.Context(), api.QueryVaultPool, nil, &r.VaultPool); err != nil {
				return err
			}
			r.EpochBlocks, r.Audited = p.EpochBlocks, p.EpochBlocks > 0
			if r.Audited {
				r.LastTallied = lastTalliedEpoch(cmd.Context(), c)
			}
			return g.print(r, func(w io.Writer) {
				if !r.Audited {
					fmt.Fprintln(w, "this chain does not audit storage (params.epoch_blocks is 0): objects keep their escrow and a term deal pays its providers at its end; the pool holds nothing")
					return
				}
				fmt.Fprintf(w, "the Vault pool holds %s\n", client.FormatAmount(r.Balance))
				fmt.Fprintf(w, "  it pays for %s of shards declared held (%s of term deals, %s of permanent ones), every epoch of %d blocks, against their proofs\n",
					sizeText(r.TermBytes+r.PermBytes), sizeText(r.TermBytes), sizeText(r.PermBytes), r.EpochBlocks)
				fmt.Fprintf(w, "  paid since genesis: %s\n", client.FormatAmount(r.PaidTotal))
				if r.LastTallied != nil {
					fmt.Fprintf(w, "  last tallied %s\n", epochText(r.LastTallied))
				} else {
					fmt.Fprintln(w, "  no epoch tallied yet (an epoch is tallied at the end of the next one)")
				}
			})
		},
	}
}

func newStoreLsCmd(g *globals) *cobra.Command {
	var from, owner string
	cmd := &cobra.Command{
		Use:     "ls",
		Short:   "List the objects a key (default: yours) stored",
		Example: "  spare store ls\n  spare store ls --owner spare1… -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var who tx.Address
			var err error
			switch {
			case owner != "":
				if who, err = g.resolveAddress(owner); err != nil {
					return fmt.Errorf("--owner: %w", err)
				}
			default:
				t, err := g.tenantFor(from)
				if err != nil {
					return err
				}
				who = t.Address()
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			all := []api.VaultObject{}
			for after := uint64(0); ; {
				l, err := c.VaultObjects(cmd.Context(), api.VaultObjectsRequest{Owner: who, After: after, Limit: api.MaxPageLimit})
				if err != nil {
					return err
				}
				all = append(all, l.Items...)
				if l.Next == "" || len(l.Items) == 0 {
					break
				}
				after = l.Items[len(l.Items)-1].ID
			}
			return g.print(all, func(w io.Writer) {
				if len(all) == 0 {
					fmt.Fprintf(w, "%s has stored nothing: spare store put PATH stores a file or a directory\n", who)
					return
				}
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tROOT\tSIZE\tCODING\tDEAL\tESCROW\tSTATE")
				for _, o := range all {
					deal := fmt.Sprintf("%d months", o.Months)
					if o.Months == 0 {
						deal = "permanent"
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%d+%d\t%s\t%s\t%s\n", o.ID, o.Root, sizeText(o.Size), o.K, o.M, deal, client.FormatAmount(o.Escrow), o.State)
				}
				tw.Flush()
			})
		},
	}
	addFrom(cmd, &from)
	cmd.Flags().StringVar(&owner, "owner", "", "list another account's objects (a key name or a spare1… address)")
	return cmd
}

type storePriceResult struct {
	Size        uint64       `json:"size"`
	Coding      vault.Coding `json:"coding"`
	Shards      int          `json:"shards"`
	StoredBytes uint64       `json:"stored_bytes"`
	Permanent   bool         `json:"permanent"`
	Months      uint64       `json:"months,omitempty"`
	// MaxPrice is the price per GiB-month shards are placed at most (a term: the least K+M offers take; permanent:
	// the endowment's rate).
	MaxPrice uint64 `json:"max_price_per_gib_month"`
	// Escrow is what a put escrows: a term's most at MaxPrice (the draw's prices may refund some), or the endowment.
	Escrow uint64 `json:"escrow"`
}

func newStorePriceCmd(g *globals) *cobra.Command {
	var codingS string
	var months uint64
	var permanent bool
	cmd := &cobra.Command{
		Use:   "price SIZE",
		Short: "What storing SIZE bytes costs: a term at today's offers, or permanently",
		Long: "Price an object of SIZE (bytes, or with KiB, MiB, GiB, TiB) as 'spare store put' would store it: its\n" +
			"shards (parity included), and for a term the escrow at the least price K+M of today's offers take, for\n" +
			"--permanent the chain's endowment: params.storage_gib_year_cost a stored GiB-year, for every year to come,\n" +
			"each year params.storage_decline_ppm cheaper than the last — cost ÷ decline a GiB.",
		Example: "  spare store price 1GiB\n  spare store price 1GiB --permanent -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			size, err := parseBytes(args[0])
			if err != nil {
				return fmt.Errorf("SIZE: %w", err)
			}
			if !permanent && (months == 0 || months > tx.MaxStorageMonths) {
				return fmt.Errorf("--months %d: 1 to %d (or --permanent)", months, tx.MaxStorageMonths)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			cd, err := g.coding(cmd, codingS, c)
			if err != nil {
				return err
			}
			l, err := vault.LayoutOf(size, cd)
			if err != nil {
				return err
			}
			r := storePriceResult{Size: size, Coding: cd, Shards: l.Shards(), StoredBytes: l.StoredBytes(), Permanent: permanent}
			if permanent {
				p, err := c.Params(cmd.Context())
				if err != nil {
					return err
				}
				if r.Escrow, err = p.Endowment(l.StoredBytes()); err != nil {
					return err
				}
				r.MaxPrice = p.PermanentPrice()
			} else {
				r.Months = months
				if r.MaxPrice, err = tenant.DefaultMaxPrice(cmd.Context(), c, l.ShardSize, cd.K+cd.M); err != nil {
					return err
				}
				per, ok := api.TermCost(l.ShardSize, r.MaxPrice, months)
				if !ok || per > ^uint64(0)/uint64(l.Shards()) {
					return fmt.Errorf("the cost of %s for %d months overflows", args[0], months)
				}
				r.Escrow = per * uint64(l.Shards())
			}
			return g.print(r, func(w io.Writer) {
				fmt.Fprintf(w, "%s coded %d+%d: %d shards, %s stored\n", sizeText(size), cd.K, cd.M, r.Shards, sizeText(r.StoredBytes))
				if permanent {
					fmt.Fprintf(w, "permanently: %s once (the endowment; shards placed at up to %s a GiB-month)\n", client.FormatAmount(r.Escrow), client.FormatAmount(r.MaxPrice))
					return
				}
				fmt.Fprintf(w, "%d months: at most %s (every shard at %s a GiB-month, the least %d of today's offers take; the draw's prices may cost less)\n",
					months, client.FormatAmount(r.Escrow), client.FormatAmount(r.MaxPrice), cd.K+cd.M)
			})
		},
	}
	cmd.Flags().StringVar(&codingS, "coding", "", "K+M[/SHARDSIZE] (default 10+20/64MiB; 2+2/4MiB on spare dev)")
	cmd.Flags().Uint64Var(&months, "months", 12, "a term of this many months")
	cmd.Flags().BoolVar(&permanent, "permanent", false, "price a permanent deal (the endowment) instead")
	return cmd
}
