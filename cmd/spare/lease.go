package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/tenant"
	"github.com/sparenet/spare/termsafe"
)

// tenantFor opens the tenant SDK for the key named by --from (default: the home's tenant key).
func (g *globals) tenantFor(from string) (*tenant.Tenant, error) {
	if from == "" {
		from = g.key
	}
	if from == "" {
		from = "tenant"
	}
	kr, err := g.keyring()
	if err != nil {
		return nil, err
	}
	signer, err := kr.Signer(from)
	if errors.Is(err, keyring.ErrNotFound) {
		return nil, fmt.Errorf("no key %q in %s: list the keys with 'spare keys list', pick one with --from NAME, or make it with 'spare keys add %s'", from, g.keysDir(), from)
	}
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", from, err)
	}
	c, err := g.client()
	if err != nil {
		return nil, err
	}
	t := tenant.New(c, signer, g.logger())
	g.gasOptions(t.Sender())
	return t, nil
}

func addFrom(cmd *cobra.Command, from *string) {
	cmd.Flags().StringVar(from, "from", "", "tenant key (default: the home's tenant key)")
}

func parseLeaseArg(s string) (uint64, error) { return parseID("lease", s) }

// lowDepositWarning says when a running lease will run dry within 10% of its duration.
func lowDepositWarning(l api.LeaseView) string {
	if l.State != api.LeaseActive || l.EndMs >= l.StartedMs+l.DurationSec*1000 {
		return ""
	}
	left := time.Duration(int64(l.EndMs)-time.Now().UnixMilli()) * time.Millisecond
	if left < time.Duration(l.DurationSec)*time.Second/10 {
		return fmt.Sprintf("warning: lease %d's deposit runs out in %s, before its duration ends: spare topup %d AMOUNT", l.ID, left.Round(time.Second), l.ID)
	}
	return ""
}

// leaseRow is a line of `spare leases`: the ledger's lease, its job's name (kept on this machine), and what a
// tenant asks of it — when it started, how long it has left, what it cost so far.
type leaseRow struct {
	api.LeaseView
	Name      string `json:"name,omitempty"`
	StartedAt string `json:"started_at,omitempty"` // RFC 3339
	Left      string `json:"time_left,omitempty"`  // until billing stops, if nothing changes
}

// orderRow is an open order in `spare leases --all`.
type orderRow struct {
	api.Order
	Name string `json:"name,omitempty"`
}

func newLeasesCmd(g *globals) *cobra.Command {
	var from string
	var all bool
	cmd := &cobra.Command{
		Use:   "leases",
		Short: "List your leases: name, state, started, time left, cost so far, provider (running ones unless --all)",
		Long: `List your leases: the job's name (from its file's name:, kept on this machine), state, when it
started, how long it has left before billing stops, what it cost so far, its provider, and why it
ended. --all adds ended leases and your open orders (cancel one with spare cancel ORDER).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := g.tenantFor(from)
			if err != nil {
				return err
			}
			names := g.jobNames()
			now := time.Now()
			rows := []leaseRow{}
			for after := ""; ; {
				page, err := t.Client().Leases(cmd.Context(), api.ListRequest{Tenant: t.Address(), After: after, Limit: api.MaxPageLimit})
				if err != nil {
					return err
				}
				for _, l := range page.Items {
					live := l.State == api.LeasePending || l.State == api.LeaseActive
					if !all && !live {
						continue
					}
					r := leaseRow{LeaseView: l, Name: names[l.OrderID]}
					if l.StartedMs > 0 {
						r.StartedAt = time.UnixMilli(int64(l.StartedMs)).UTC().Format(time.RFC3339)
					}
					if l.State == api.LeaseActive && l.EndMs > 0 {
						r.Left = max(0, time.UnixMilli(int64(l.EndMs)).Sub(now)).Round(time.Second).String()
					}
					rows = append(rows, r)
				}
				if after = page.Next; after == "" {
					break
				}
			}
			orders := []orderRow{}
			if all {
				for after := ""; ; {
					page, err := t.Client().Orders(cmd.Context(), api.ListRequest{Tenant: t.Address(), Open: true, After: after, Limit: api.MaxPageLimit})
					if err != nil {
						return err
					}
					for _, o := range page.Items {
						orders = append(orders, orderRow{Order: o, Name: names[o.ID]})
					}
					if after = page.Next; after == "" {
						break
					}
				}
			}
			out := any(rows)
			if all {
				out = struct {
					Leases     []leaseRow `json:"leases"`
					OpenOrders []orderRow `json:"open_orders"`
				}{rows, orders}
			}
			return g.print(out, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "LEASE\tNAME\tSTATE\tSTARTED\tLEFT\tCOST\tPRICE/H\tPROVIDER\tENDED BECAUSE")
				for _, r := range rows {
					started, left := "-", "-"
					if r.StartedMs > 0 {
						started = time.UnixMilli(int64(r.StartedMs)).Local().Format("Jan 2 15:04:05")
					}
					if r.Left != "" {
						left = r.Left
					}
					why := r.CloseReason
					if r.State == api.LeaseCompleted && r.Receipt != nil {
						why = fmt.Sprintf("exit code %d", r.Receipt.ExitCode)
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, orDash(termsafe.String(r.Name)), r.State, started, left,
						client.FormatAmount(r.EarnedAt), client.FormatAmount(r.Price), r.Provider, orDash(termsafe.String(why)))
				}
				tw.Flush()
				if all {
					fmt.Fprintf(w, "\n%d open order(s)\n", len(orders))
					tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
					if len(orders) > 0 {
						fmt.Fprintln(tw, "ORDER\tNAME\tDEPOSIT\tMAX PRICE/H\tBIDS UNTIL BLOCK\tEXPIRES AT BLOCK")
					}
					for _, o := range orders {
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\n", o.ID, orDash(termsafe.String(o.Name)), client.FormatAmount(o.Escrowed()),
							client.FormatAmount(o.MaxPricePerHour), o.WindowEnd, o.ExpiresHeight)
					}
					tw.Flush()
				}
				for _, r := range rows {
					if warn := lowDepositWarning(r.LeaseView); warn != "" {
						fmt.Fprintln(os.Stderr, warn)
					}
				}
			})
		},
	}
	addFrom(cmd, &from)
	cmd.Flags().BoolVar(&all, "all", false, "include ended leases and your open orders")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newStatusCmd(g *globals) *cobra.Command {
	var from string
	var isOrder bool
	cmd := &cobra.Command{
		Use:   "status LEASE | status --order ORDER",
		Short: "Show a lease (or an order and its leases): state, cost so far, provider and its account of the workload",
		Long: `Show a lease: its state on the ledger, cost so far, provider, a service's endpoints, its receipt, and
the provider's own account of the workload (started, exited, stopped at its duration, killed for
memory, failed to start and why). Order ids and lease ids are separate counters: --order shows an
order instead, with its state and the leases it made.`,
		Example: "  spare status 3\n  spare status --order 5",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if isOrder {
				return g.orderStatus(cmd.Context(), from, args[0])
			}
			id, err := parseLeaseArg(args[0])
			if err != nil {
				return err
			}
			t, err := g.tenantFor(from)
			if err != nil {
				return err
			}
			l, err := t.Client().Lease(cmd.Context(), id)
			if errors.Is(err, client.ErrNotFound) {
				if o, oerr := t.Client().Order(cmd.Context(), id); oerr == nil && o.Tenant == t.Address() {
					return fmt.Errorf("%w; your order %d exists (order and lease ids are separate counters): spare status --order %d", err, id, id)
				}
			}
			if err != nil {
				return err
			}
			// The provider's account of the workload (how it ended, or why it never started).
			var account map[string]any
			if st, err := t.ProviderStatus(cmd.Context(), id); err == nil {
				account = st
			}
			// A running service's endpoints come from its provider.
			var eps map[string]string
			if l.State == api.LeaseActive || l.State == api.LeasePending {
				eps, _ = t.Endpoints(cmd.Context(), id)
			}
			// A run of a replicated order: where its result stands in commit-reveal.
			var run *replicaRun
			if o, err := t.Client().Order(cmd.Context(), l.OrderID); err == nil && (o.Replicas > 1 || o.RefereeFor != 0) {
				group := o.ID
				if o.RefereeFor != 0 {
					group = o.RefereeFor
				}
				if v, err := t.Client().Verification(cmd.Context(), group); err == nil {
					for _, r := range v.Runs {
						if r.LeaseID == id {
							run = &replicaRun{Order: group, Commit: r.Commit, Phase: v.Phase, RevealDeadline: v.RevealDeadline, Verdict: v.State}
						}
					}
				}
			}
			out := struct {
				api.LeaseView
				Endpoints map[string]string `json:"endpoints,omitempty"`
				Replica   *replicaRun       `json:"replica,omitempty"`
				Provider  map[string]any    `json:"provider_status,omitempty"`
			}{l, eps, run, account}
			return g.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "lease %d: %s, provider %s, %s/h\n", l.ID, l.State, l.Provider, client.FormatAmount(l.Price))
				for _, port := range slices.Sorted(maps.Keys(eps)) {
					fmt.Fprintf(w, "  port %s is served at %s (http://%s)\n", port, eps[port], eps[port])
				}
				fmt.Fprintf(w, "  deposit %s, earned so far %s, refunded %s\n", client.FormatAmount(l.Deposit), client.FormatAmount(l.EarnedAt), client.FormatAmount(l.Refunded))
				if l.CloseReason != "" {
					fmt.Fprintf(w, "  ended: %s\n", l.CloseReason)
				}
				if l.Receipt != nil {
					fmt.Fprintf(w, "  receipt: exit code %d, outputs root %s\n", l.Receipt.ExitCode, l.Receipt.OutputRoot)
					if !l.Receipt.VaultRoot.IsZero() {
						fmt.Fprintf(w, "  the outputs in the Vault: root %s (spare store get %s)\n", l.Receipt.VaultRoot, l.Receipt.VaultRoot)
					}
				}
				if why := providerAccount(account); why != "" {
					fmt.Fprintf(w, "  the provider says: %s\n", termsafe.String(why))
				}
				if run != nil {
					fmt.Fprintf(w, "  run of replicated order %d (%s): result %s", run.Order, run.Verdict, run.Commit)
					if run.Phase == "reveal" {
						fmt.Fprintf(w, ", reveal phase open until block %d", run.RevealDeadline)
					}
					fmt.Fprintln(w)
				}
				if warn := lowDepositWarning(l); warn != "" {
					fmt.Fprintln(w, warn)
				}
			})
		},
	}
	addFrom(cmd, &from)
	cmd.Flags().BoolVar(&isOrder, "order", false, "the id is an order's, not a lease's")
	return cmd
}

// providerAccount is what the provider's status says of the workload: its state and how it ended.
func providerAccount(st map[string]any) string {
	if st == nil {
		return ""
	}
	var parts []string
	if s, ok := st["state"].(string); ok && s != "" {
		parts = append(parts, s)
	}
	if r, ok := st["result"].(map[string]any); ok {
		if why, ok := r["reason"].(string); ok && why != "" {
			parts = append(parts, why)
		}
	}
	if why, ok := st["reason"].(string); ok && why != "" && !slices.Contains(parts, why) {
		parts = append(parts, why)
	}
	return strings.Join(parts, "; ")
}

// orderStatus shows one of the tenant's orders: its state, deposit, window and the leases it made.
func (g *globals) orderStatus(ctx context.Context, from, arg string) error {
	id, err := parseID("order", arg)
	if err != nil {
		return err
	}
	t, err := g.tenantFor(from)
	if err != nil {
		return err
	}
	o, err := t.Client().Order(ctx, id)
	if err != nil {
		return err
	}
	var leases []api.LeaseView
	if o.LeaseID != 0 {
		for i := range uint64(o.Leases()) { // an order's leases are made together, with consecutive ids
			if l, err := t.Client().Lease(ctx, o.LeaseID+i); err == nil {
				leases = append(leases, l)
			}
		}
	}
	out := struct {
		api.Order
		Name   string          `json:"name,omitempty"`
		Leases []api.LeaseView `json:"leases"`
	}{o, g.jobNames()[id], leases}
	if out.Leases == nil {
		out.Leases = []api.LeaseView{}
	}
	return g.print(out, func(w io.Writer) {
		name := ""
		if out.Name != "" {
			name = " (" + termsafe.String(out.Name) + ")"
		}
		fmt.Fprintf(w, "order %d%s: %s, deposit %s, max %s/h, bids until block %d, expires at block %d\n", o.ID, name, o.State,
			client.FormatAmount(o.Escrowed()), client.FormatAmount(o.MaxPricePerHour), o.WindowEnd, o.ExpiresHeight)
		for _, l := range leases {
			fmt.Fprintf(w, "  lease %d: %s, provider %s, cost so far %s", l.ID, l.State, l.Provider, client.FormatAmount(l.EarnedAt))
			if l.CloseReason != "" {
				fmt.Fprintf(w, ", %s", termsafe.String(l.CloseReason))
			}
			fmt.Fprintln(w)
		}
		if o.State == api.OrderOpen {
			fmt.Fprintf(w, "  open: cancel it with spare cancel %d\n", o.ID)
		}
	})
}

// replicaRun is where a run of a replicated order stands: its result's commit state (awaiting, committed,
// revealed, missed, none), its group's phase and verdict.
type replicaRun struct {
	Order          uint64          `json:"order"`
	Commit         api.RunCommit   `json:"commit"`
	Phase          string          `json:"phase,omitempty"`
	RevealDeadline int64           `json:"reveal_deadline,omitempty"`
	Verdict        api.VerifyState `json:"verdict"`
}

func newLogsCmd(g *globals) *cobra.Command {
	var from, since string
	var follow, member, timestamps bool
	var tail int
	cmd := &cobra.Command{
		Use:   "logs LEASE",
		Short: "Print a lease's workload output (-f follows until it ends, --tail N the last lines, --since 10m); a cluster member's shows every rank's",
		Long: `Print a lease's workload output; -f follows it until the workload ends, --tail N starts from its
last N lines, --since shows only the lines written since a time: a duration before now (10m, 1h30m)
or an RFC 3339 time (2026-12-07T04:00:00Z). -t/--timestamps starts each line with the time the
provider read it (RFC 3339, UTC). For a member of a cluster order, every member's output is merged,
each line prefixed with "[rank N] " (--member shows this lease's alone; with -o json, --since or -t,
--tail N is the last N lines of each member). On a terminal, escape sequences and control characters in the output are removed (a lone
carriage return becomes a line break); piped or redirected the bytes are exactly the provider's.

-o json writes one JSON object per line: time (when the provider's runtime read the line, at
millisecond precision; absent for a log that has no times), lease, rank (cluster members), stream
(stdout or stderr; "spare" for the provider's note that it stopped at its log limit), text (without
the newline), partial (true when the line did not end with a newline: cut at 16 KiB, by the other
stream's output, or at the end). The provider keeps the workload's stdout and stderr in one log, each
stream's lines in order; between the two streams, the order is the order it read them in.`,
		Example: "  spare logs 3 -f\n  spare logs 3 --tail 20\n  spare logs 3 --since 10m -t\n  spare logs 3 -o json | jq -r 'select(.stream == \"stderr\") | .text'",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseLeaseArg(args[0])
			if err != nil {
				return err
			}
			if tail < 0 {
				return fmt.Errorf("--tail %d: give a number of lines, 0 for all", tail)
			}
			if tail > provider.MaxLogTail {
				return fmt.Errorf("--tail %d: at most %d lines (0: all)", tail, provider.MaxLogTail)
			}
			var sinceT time.Time
			if since != "" {
				if sinceT, err = parseSince(since, time.Now()); err != nil {
					return err
				}
			}
			t, err := g.tenantFor(from)
			if err != nil {
				return err
			}
			cluster := uint64(0)
			if !member {
				if l, err := t.Client().Lease(cmd.Context(), id); err == nil {
					if _, err := t.Client().Cluster(cmd.Context(), l.OrderID); err == nil {
						cluster = l.OrderID
					}
				}
			}
			if g.output == "json" || !sinceT.IsZero() || timestamps {
				// Lines with the provider's times and streams.
				q := tenant.LogQuery{Follow: follow, Since: sinceT, Tail: tail}
				err := streamLogLines(cmd.Context(), g, t, id, cluster, q, timestamps)
				if !errors.Is(err, tenant.ErrNoLogLines) || g.output != "json" || !sinceT.IsZero() || timestamps {
					if errors.Is(err, tenant.ErrNoLogLines) {
						return fmt.Errorf("%w; --since and --timestamps need them (plain 'spare logs %d' works)", err, id)
					}
					return err
				}
				// An older provider: JSON lines of its text, timed as they arrive.
			}
			var out io.Writer
			flush := func() error { return nil }
			if g.output == "json" {
				jl := &jsonLines{w: g.out, lease: id}
				out, flush = jl, jl.flush
			} else {
				// On a terminal the provider's bytes lose their escape sequences; pipes get them unchanged.
				out, flush = g.forTerminal(g.out)
			}
			stream := func(follow bool, w io.Writer) error { return t.StreamLogs(cmd.Context(), id, follow, w) }
			if cluster != 0 {
				stream = func(follow bool, w io.Writer) error { return t.StreamClusterLogs(cmd.Context(), cluster, follow, w) }
			}
			if tail == 0 {
				return errors.Join(stream(follow, out), flush())
			}
			// The last lines of what is there now; following, the rest of the stream after those bytes.
			var sofar bytes.Buffer
			if err := stream(false, &sofar); err != nil {
				return err
			}
			if _, err := out.Write(lastLines(sofar.Bytes(), tail)); err != nil {
				return err
			}
			if follow {
				return errors.Join(stream(true, &skipWriter{w: out, skip: sofar.Len()}), flush())
			}
			return flush()
		},
	}
	cmd.Flags().BoolVar(&member, "member", false, "for a cluster member: this lease's output only, not every rank's")
	addFrom(cmd, &from)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep streaming until the workload ends")
	cmd.Flags().IntVar(&tail, "tail", 0, "start from the last N lines (0: all)")
	cmd.Flags().StringVar(&since, "since", "", "only lines written since: a duration before now (10m, 1h30m) or an RFC 3339 time")
	cmd.Flags().BoolVarP(&timestamps, "timestamps", "t", false, "start each line with the time the provider read it")
	return cmd
}

// parseSince reads --since: a duration before now or an RFC 3339 time.
func parseSince(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %s: a duration before now is positive (10m: the last ten minutes)", v)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: give a duration before now (10m, 1h30m) or an RFC 3339 time (2026-12-07T04:00:00Z)", v)
}

// streamLogLines prints a lease's lines (or its cluster's, when cluster is its order) with their times and
// streams: -o json as JSON lines, else their text, each after its time with timestamps.
func streamLogLines(ctx context.Context, g *globals, t *tenant.Tenant, id, cluster uint64, q tenant.LogQuery, timestamps bool) error {
	p := &linePrinter{json: g.output == "json", timestamps: timestamps, lease: id}
	var flush func() error
	if p.json {
		p.w, flush = g.out, func() error { return nil }
	} else {
		p.w, flush = g.forTerminal(g.out) // the provider's text loses its escape sequences on a terminal
	}
	var err error
	if cluster != 0 {
		err = t.StreamClusterLogLines(ctx, cluster, q, func(l tenant.ClusterLogLine) error {
			return p.print(l.LogLine, l.LeaseID, &l.Rank, l.Restart)
		})
	} else {
		err = t.StreamLogLines(ctx, id, q, func(l tenant.LogLine) error { return p.print(l, id, nil, 0) })
	}
	return errors.Join(err, p.end(), flush())
}

// linePrinter prints log lines: JSON lines {time, lease, rank, stream, text, partial}, or text: each line's
// text (a partial line without a newline, as in the log), with timestamps after its time, and a cluster
// member's after "[rank N] ".
type linePrinter struct {
	w          io.Writer
	json       bool
	timestamps bool
	lease      uint64
	open       bool // text: the last line printed had no newline
}

func (p *linePrinter) print(l tenant.LogLine, lease uint64, rank *int, restart uint32) error {
	if p.json {
		rec := struct {
			Time    string `json:"time,omitempty"`
			Lease   uint64 `json:"lease"`
			Rank    *int   `json:"rank,omitempty"`
			Stream  string `json:"stream,omitempty"`
			Text    string `json:"text"`
			Partial bool   `json:"partial,omitempty"`
		}{Lease: lease, Rank: rank, Stream: l.Stream, Text: l.Text, Partial: l.Partial}
		if !l.Time.IsZero() {
			rec.Time = l.Time.UTC().Format(time.RFC3339Nano)
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		_, err = p.w.Write(append(b, '\n'))
		return err
	}
	var b strings.Builder
	prefixed := p.timestamps || rank != nil
	if p.open && prefixed {
		b.WriteByte('\n') // a prefixed line starts a line of its own
	}
	if p.timestamps {
		ts := "-" // no time recorded
		if !l.Time.IsZero() {
			ts = l.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00")
		}
		b.WriteString(ts + " ")
	}
	if rank != nil {
		if restart > 0 {
			fmt.Fprintf(&b, "[rank %d, restart %d] ", *rank, restart)
		} else {
			fmt.Fprintf(&b, "[rank %d] ", *rank)
		}
	}
	b.WriteString(l.Text)
	p.open = l.Partial && !prefixed
	if !p.open {
		b.WriteByte('\n')
	}
	_, err := io.WriteString(p.w, b.String())
	return err
}

// end ends a last partial line.
func (p *linePrinter) end() error {
	if !p.open {
		return nil
	}
	p.open = false
	_, err := io.WriteString(p.w, "\n")
	return err
}

// lastLines is the last n lines of b (a final line without its newline counts).
func lastLines(b []byte, n int) []byte {
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if b[i] == '\n' {
			if n--; n == 0 {
				return b[i+1:]
			}
		}
	}
	return b
}

// skipWriter drops the first skip bytes written to it (what was already shown), then passes the rest.
type skipWriter struct {
	w    io.Writer
	skip int
}

func (s *skipWriter) Write(p []byte) (int, error) {
	n := len(p)
	if s.skip >= len(p) {
		s.skip -= len(p)
		return n, nil
	}
	p, s.skip = p[s.skip:], 0
	_, err := s.w.Write(p)
	return n, err
}

// jsonLines turns a log stream into JSON lines: {"time", "lease", "rank", "text"}; a merged cluster log's
// "[rank N] " prefix becomes the rank. Text is kept as the provider sent it (JSON escapes what needs escaping).
type jsonLines struct {
	w     io.Writer
	lease uint64
	buf   []byte
}

var rankPrefix = regexp.MustCompile(`^\[rank (\d+)(?:, restart \d+)?\] `)

func (j *jsonLines) Write(p []byte) (int, error) {
	j.buf = append(j.buf, p...)
	for {
		i := bytes.IndexByte(j.buf, '\n')
		if i < 0 {
			if len(j.buf) > 64<<10 { // a line that never ends is cut, not held forever
				if err := j.line(j.buf); err != nil {
					return 0, err
				}
				j.buf = j.buf[:0]
			}
			return len(p), nil
		}
		if err := j.line(j.buf[:i]); err != nil {
			return 0, err
		}
		j.buf = j.buf[i+1:]
	}
}

func (j *jsonLines) line(b []byte) error {
	rec := struct {
		Time  string `json:"time"`
		Lease uint64 `json:"lease"`
		Rank  *int   `json:"rank,omitempty"`
		Text  string `json:"text"`
	}{Time: time.Now().UTC().Format(time.RFC3339Nano), Lease: j.lease, Text: string(b)}
	if m := rankPrefix.FindSubmatch(b); m != nil {
		r, _ := strconv.Atoi(string(m[1]))
		rec.Rank, rec.Text = &r, string(b[len(m[0]):])
	}
	out, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = j.w.Write(append(out, '\n'))
	return err
}

func (j *jsonLines) flush() error {
	if len(j.buf) == 0 {
		return nil
	}
	err := j.line(j.buf)
	j.buf = j.buf[:0]
	return err
}

// sendAndShowLease sends msg from the tenant key and prints the lease as it stands afterwards.
func (g *globals) sendAndShowLease(ctx context.Context, from string, id uint64, msg tx.Msg, text func(io.Writer, api.LeaseView)) error {
	t, err := g.tenantFor(from)
	if err != nil {
		return err
	}
	if _, err := t.Sender().Send(ctx, msg); err != nil {
		return err
	}
	l, err := t.Client().Lease(ctx, id)
	if err != nil {
		return err
	}
	return g.print(l, func(w io.Writer) { text(w, l) })
}

func newCloseCmd(g *globals) *cobra.Command {
	var from, reason string
	cmd := &cobra.Command{
		Use:   "close LEASE",
		Short: "End a lease now: pay for what ran, get the unspent deposit back",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseLeaseArg(args[0])
			if err != nil {
				return err
			}
			return g.sendAndShowLease(cmd.Context(), from, id, &tx.CloseLease{ID: id, Reason: reason}, func(w io.Writer, l api.LeaseView) {
				fmt.Fprintf(w, "lease %d closed: paid %s, refunded %s\n", id, client.FormatAmount(l.Paid), client.FormatAmount(l.Refunded))
			})
		},
	}
	addFrom(cmd, &from)
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded on the ledger)")
	return cmd
}

func newTopUpCmd(g *globals) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "topup LEASE AMOUNT",
		Short: "Add to a lease's deposit so it runs longer (up to its duration)",
		Long: `Add to the deposit of a lease whose deposit would run out before its duration: it then runs
longer, up to its duration, and the command says until when. A lease that already runs to its
duration cannot run longer by a top-up (the extra would only come back unused): the command says so
and sends nothing; 'spare extend LEASE DURATION' lengthens it, when its provider allows. A pending
lease's billing has not started; a top-up still raises its deposit.`,
		Example: "  spare topup 3 0.5",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseLeaseArg(args[0])
			if err != nil {
				return err
			}
			amount, err := client.ParseAmount(args[1])
			if err != nil {
				return err
			}
			t, err := g.tenantFor(from)
			if err != nil {
				return err
			}
			before, err := t.Client().Lease(cmd.Context(), id)
			if err != nil {
				return err
			}
			durEnd := before.StartedMs + before.DurationSec*1000
			if before.State == api.LeaseActive && before.EndMs >= durEnd {
				return fmt.Errorf("lease %d already runs to the end of its duration (%s, at %s): a top-up cannot make it run longer and would come back unused. To run longer, extend its duration: spare extend %d DURATION (e.g. 1h; its provider sets how long a lease may run in all)",
					id, time.Duration(before.DurationSec)*time.Second, time.UnixMilli(int64(durEnd)).Local().Format(time.DateTime), id)
			}
			return g.sendAndShowLease(cmd.Context(), from, id, &tx.TopUp{LeaseID: id, Amount: amount}, func(w io.Writer, l api.LeaseView) {
				fmt.Fprintf(w, "lease %d: deposit now %s", id, client.FormatAmount(l.Deposit))
				switch {
				case l.State != api.LeaseActive:
					fmt.Fprintf(w, " (%s)\n", l.State)
				case l.EndMs >= durEnd:
					fmt.Fprintf(w, "; it now runs to the end of its duration, %s (was %s); the part of the deposit it does not use comes back\n",
						time.UnixMilli(int64(l.EndMs)).Local().Format(time.DateTime), time.UnixMilli(int64(before.EndMs)).Local().Format(time.DateTime))
				default:
					fmt.Fprintf(w, "; it now runs until %s (was %s), %s before its duration ends\n",
						time.UnixMilli(int64(l.EndMs)).Local().Format(time.DateTime), time.UnixMilli(int64(before.EndMs)).Local().Format(time.DateTime),
						time.Duration(durEnd-l.EndMs)*time.Millisecond)
				}
			})
		},
	}
	addFrom(cmd, &from)
	return cmd
}

type outputsResult struct {
	LeaseID uint64   `json:"lease_id"`
	Path    string   `json:"path"`
	Files   []string `json:"files"`
	Root    tx.Hash  `json:"root"`
}

func newOutputsCmd(g *globals) *cobra.Command {
	var from, dir string
	cmd := &cobra.Command{
		Use:   "outputs LEASE",
		Short: "Download a finished lease's outputs and verify them against its signed receipt",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseLeaseArg(args[0])
			if err != nil {
				return err
			}
			t, err := g.tenantFor(from)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Minute)
			defer cancel()
			path, files, err := t.FetchOutputs(ctx, id, dir)
			if err != nil {
				return err
			}
			l, _ := t.Client().Lease(ctx, id)
			res := outputsResult{LeaseID: id, Path: path, Files: files}
			if l.Receipt != nil {
				res.Root = l.Receipt.OutputRoot
			}
			return g.print(res, func(w io.Writer) {
				fmt.Fprintf(w, "%d file(s) in %s, verified against the receipt (root %s)\n", len(files), path, res.Root)
			})
		},
	}
	addFrom(cmd, &from)
	cmd.Flags().StringVar(&dir, "dir", "outputs", "directory to download into (files go to DIR/LEASE/)")
	return cmd
}
