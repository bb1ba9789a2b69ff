package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/provider"
)

// doctorResult is `spare provider doctor -o json`.
type doctorResult struct {
	Config    string                   `json:"config"` // the provider.toml read, or "" for the defaults
	Root      bool                     `json:"root"`   // the daemon would run as root (per-lease users need it)
	Isolation provider.IsolationReport `json:"isolation"`
	Notes     []string                 `json:"notes,omitempty"`
}

func newProviderDoctorCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check which tenant isolation this host supports, and what the daemon will refuse to offer",
		Long: `Probe this host for what a provider needs to run strangers' jobs safely — cgroups (v2, or v1's
memory, pids and cpu controllers) for aggregate limits, mount, PID and IPC namespaces, seccomp, no_new_privs,
per-lease users (the daemon runs as root), Docker's security options — and report, for each runtime
provider.toml enables, every guarantee with the kernel feature it rests on or what is missing.

A runtime missing a required guarantee is not offered (the daemon refuses to start when it is the process
runtime) unless provider.toml accepts that risk: [isolation] accept_risks = ["process:memory"]. The same
checks run at 'provider init' and 'provider start'. See docs/security.md.`,
		Example: "  spare provider doctor --home ~/.spare\n  spare provider doctor -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := runDoctor(cmd.Context(), g)
			if err != nil {
				return err
			}
			return g.print(res, func(w io.Writer) { printIsolation(w, res.Isolation, res.Notes) })
		},
	}
}

func runDoctor(ctx context.Context, g *globals) (*doctorResult, error) {
	res := &doctorResult{Root: os.Geteuid() == 0}
	cfg := provider.DefaultConfig()
	if c, err := provider.LoadConfig(g.providerConfigPath()); err == nil {
		cfg, res.Config = *c, g.providerConfigPath()
	} else if !os.IsNotExist(unwrapAll(err)) {
		return nil, err
	} else {
		res.Notes = append(res.Notes, "no provider.toml in this home: checked the defaults (process runtime; docker when an engine answers)")
		cfg.Docker = true
	}
	rts, err := availableRuntimes(ctx, &cfg, slog.New(slog.DiscardHandler))
	if err != nil && cfg.Docker && res.Config == "" {
		cfg.Docker = false // no engine here: report the process runtime alone
		res.Notes = append(res.Notes, "no Docker engine answers: the docker runtime is not checked")
		rts, err = availableRuntimes(ctx, &cfg, slog.New(slog.DiscardHandler))
	}
	if err != nil {
		return nil, err
	}
	res.Isolation = provider.CheckIsolation(ctx, cfg.Isolation, rts)
	if !res.Root {
		res.Notes = append(res.Notes, "not root: workloads would run as this user, with no namespaces; run the daemon as root for per-lease users")
	}
	return res, nil
}

// unwrapAll is the innermost error (LoadConfig wraps the os error).
func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

// printIsolation writes the report as a table per runtime.
func printIsolation(w io.Writer, rep provider.IsolationReport, notes []string) {
	for _, ri := range rep.Runtimes {
		verdict := "offered"
		switch {
		case !ri.Offered:
			verdict = "NOT OFFERED: missing " + strings.Join(ri.Missing, ", ")
		case len(ri.Accepted) > 0:
			verdict = "offered with accepted risks: " + strings.Join(ri.Accepted, ", ")
		}
		fmt.Fprintf(w, "%s runtime: %s\n", ri.Runtime, verdict)
		for _, gu := range ri.Guarantees {
			mark, text := "ok  ", gu.Mechanism
			if !gu.OK {
				mark, text = "MISSING", gu.Missing
				if !gu.Required {
					mark = "absent "
				}
			}
			req := ""
			if gu.Required {
				req = " (required)"
			}
			fmt.Fprintf(w, "  %-7s %-14s %s%s\n", mark, gu.Name, text, req)
		}
		if !ri.Offered {
			fmt.Fprintf(w, "  fix the host, or accept the risk in provider.toml: [isolation] accept_risks = [%s]\n", quoted(ri.Runtime, ri.Missing))
		}
	}
	for _, n := range notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func quoted(rt string, names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", rt+":"+n)
	}
	return strings.Join(q, ", ")
}
