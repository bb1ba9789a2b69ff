package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/inventory"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/reqsig"
	"github.com/sparenet/spare/runtime"
	"github.com/sparenet/spare/runtime/docker"
	"github.com/sparenet/spare/runtime/process"
)

func newProviderCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "provider",
		Short: "Offer this machine's GPUs (or CPUs) on the market: init, start, status, doctor",
	}
	cmd.AddCommand(newProviderInitCmd(g), newProviderStartCmd(g), newProviderStatusCmd(g), newProviderDoctorCmd(g))
	cmd.AddCommand(newProviderImagesCmd(g))
	return cmd
}

func (g *globals) providerConfigPath() string { return filepath.Join(g.home, provider.ConfigFile) }
func (g *globals) providerDir() string        { return filepath.Join(g.home, "provider") }
func (g *globals) providerTLSDir() string     { return filepath.Join(g.home, "provider", "tls") }

type providerInitResult struct {
	Config          string               `json:"config"`
	Provider        tx.Address           `json:"provider"`
	CertFingerprint tx.Hash              `json:"cert_fingerprint"`
	Inventory       *inventory.Inventory `json:"inventory"`
	Hardware        tx.Hardware          `json:"hardware"`
	// Isolation is what `spare provider doctor` reports for this config.
	Isolation *provider.IsolationReport `json:"isolation,omitempty"`
	Next      string                    `json:"next"`
}

func newProviderInitCmd(g *globals) *cobra.Command {
	var region, zone, hostURI, listen, nvsmi, key, nodeURL, leasesDir string
	var force, noDocker bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Detect the hardware, write provider.toml, a provider key and a TLS certificate",
		Long: `Detect NVIDIA GPUs (nvidia-smi), CPU cores, memory, disk and Docker, then write
HOME/provider.toml (edit it to change prices, limits or what is offered), a provider key in
HOME/keys and a self-signed TLS certificate whose fingerprint tenants pin.`,
		Example: "  spare provider init --home ~/.spare --region eu-west --host-uri https://gpu1.example.net:8443",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := os.Stat(g.providerConfigPath()); err == nil && !force {
				return fmt.Errorf("%s exists: edit it, or pass --force to detect again and overwrite it", g.providerConfigPath())
			}
			if err := os.MkdirAll(g.providerDir(), 0o700); err != nil {
				return err
			}
			inv, err := inventory.Detect(cmd.Context(), inventory.Options{NvidiaSMI: nvsmi, DataDir: g.providerDir()})
			if err != nil && inv == nil {
				return err
			}
			if err != nil {
				return fmt.Errorf("hardware detection: %w", err)
			}
			cfg := provider.ConfigFromInventory(inv)
			cfg.Region, cfg.Zone, cfg.HostURI, cfg.Listen, cfg.Key = region, zone, hostURI, listen, key
			if nodeURL != "" {
				cfg.Node = nodeURL
			} else if url, err := g.nodeURLFromHome(); err == nil {
				cfg.Node = url
			}
			cfg.Docker = cfg.Docker && !noDocker
			cfg.LeasesDir = leasesDir
			if err := cfg.Validate(); err != nil {
				return err
			}
			kr, err := g.keyring()
			if err != nil {
				return err
			}
			info, err := kr.Show(key)
			if err != nil {
				if info, err = kr.Add(key); err != nil {
					return fmt.Errorf("provider key %q: %w", key, err)
				}
			}
			u, _ := url.Parse(hostURI)
			_, fp, err := certs.LoadOrGenerate(g.providerTLSDir(), []string{u.Hostname(), "localhost", "127.0.0.1"}, 5*365*24*time.Hour)
			if err != nil {
				return err
			}
			if err := cfg.Save(g.providerConfigPath()); err != nil {
				return err
			}
			res := providerInitResult{Config: g.providerConfigPath(), Provider: info.Address, CertFingerprint: fp, Inventory: inv,
				Hardware: cfg.Hardware.Ledger(), Next: fmt.Sprintf("spare provider start --home %s", g.home)}
			if rts, err := availableRuntimes(cmd.Context(), &cfg, slog.New(slog.DiscardHandler)); err == nil {
				rep := provider.CheckIsolation(cmd.Context(), cfg.Isolation, rts)
				res.Isolation = &rep
			}
			return g.print(res, func(w io.Writer) {
				fmt.Fprintf(w, "Found: %d GPU(s), %d CPU cores, %d MiB memory, %d MiB free disk, docker: %v\n",
					len(inv.GPUs), inv.CPUCores, inv.MemoryMiB, inv.DiskFreeMiB, inv.Docker)
				for _, gp := range inv.GPUs {
					fmt.Fprintf(w, "  GPU %d  %-10s %6d MiB  %s  (%s)\n", gp.Index, gp.Model, gp.MemoryMiB, gp.UUID, gp.Name)
				}
				for _, warn := range inv.Warnings {
					fmt.Fprintf(w, "  note: %s\n", warn)
				}
				fmt.Fprintf(w, "Provider key %s: %s\n", key, info.Address)
				fmt.Fprintf(w, "TLS certificate fingerprint (goes on the ledger): %s\n", fp)
				fmt.Fprintf(w, "Wrote %s (docker runtime offered: %v, region %s, host %s): edit prices and limits there.\n", res.Config, cfg.Docker, region, hostURI)
				if res.Isolation != nil {
					printIsolation(w, *res.Isolation, nil)
				}
				fmt.Fprintf(w, "Next: fund %s with enough SPR for the stake and fees, then: %s\n", info.Address, res.Next)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&region, "region", "local", "region tenants filter on, e.g. eu-west")
	f.StringVar(&zone, "zone", "", "zone within the region")
	f.StringVar(&hostURI, "host-uri", "https://127.0.0.1:8443", "public https address tenants reach this provider at")
	f.StringVar(&listen, "listen", "127.0.0.1:8443", "local address the tenant API listens on")
	f.BoolVar(&noDocker, "no-docker", false, "do not offer the docker runtime even when an engine answers")
	f.StringVar(&nvsmi, "nvidia-smi", "nvidia-smi", "nvidia-smi program to query GPUs with")
	f.StringVar(&key, "key", "provider", "name of the provider's key in the keyring (created if missing)")
	f.StringVar(&nodeURL, "node-url", "", "validator RPC the daemon uses (default: the home's node)")
	f.BoolVar(&force, "force", false, "overwrite an existing provider.toml")
	f.StringVar(&leasesDir, "leases-dir", "", "directory for the leases' directories (default: see docs/provider.md)")
	return cmd
}

func (g *globals) nodeURLFromHome() (string, error) {
	c, err := g.client()
	if err != nil {
		return "", err
	}
	return c.URL(), nil
}

func newProviderStartCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "start",
		Short: "Run the provider daemon: register, bid, run leases, get paid",
		Long: `Register (or update) this provider on the ledger and bond its stake, then follow the chain:
bid on orders the free capacity can serve, receive manifests over the HTTPS tenant API, run the
workloads and complete each lease with a signed receipt. Stops cleanly on Ctrl-C or SIGTERM, announcing
the restart to the ledger (a down verdict for this epoch or the next is then excused, once per 100
epochs); running workloads keep running and a restarted daemon reattaches to them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := provider.LoadConfig(g.providerConfigPath())
			if err != nil {
				return err
			}
			log := g.logger().With("module", "provider")
			kr, err := g.keyring()
			if err != nil {
				return err
			}
			signer, err := kr.Signer(cfg.Key)
			if err != nil {
				return fmt.Errorf("provider key %q: %w", cfg.Key, err)
			}
			c, err := client.New(cfg.Node, client.Options{Logger: log})
			if err != nil {
				return err
			}
			tlsCert, fp, err := certs.LoadKeyPair(filepath.Join(g.providerTLSDir(), "cert.pem"), filepath.Join(g.providerTLSDir(), "key.pem"))
			if err != nil {
				return fmt.Errorf("TLS certificate: %w (run 'spare provider init')", err)
			}
			runtimes, err := availableRuntimes(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			d, err := provider.New(provider.Options{Config: cfg, DataDir: g.providerDir(), Signer: signer, Client: c,
				Runtimes: runtimes, CertFingerprint: fp, Logger: log, Hide: []string{g.home}})
			if err != nil {
				return err
			}
			defer d.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			u, _ := url.Parse(cfg.HostURI)
			v := &reqsig.Verifier{Hosts: []string{u.Hostname()}}
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return fmt.Errorf("tenant API: %w", err)
			}
			srv := provider.NewServer(d.Handler(v), provider.ServerErrorLog(g.logger()), provider.ServerLimits{})
			srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12}
			go func() {
				if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
					log.Error("tenant API stopped", "err", err)
					stop()
				}
			}()
			log.Info("tenant API listening", "addr", ln.Addr().String(), "host_uri", cfg.HostURI, "cert", fp)
			runErr := d.Run(ctx)
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if ctx.Err() != nil && cmd.Context().Err() == nil { // a signal: a graceful stop, likely a restart
				announce, cancelAnnounce := context.WithTimeout(shutdown, 3*time.Second)
				_ = d.AnnounceRestart(announce) // said in the log; a refusal changes nothing else
				cancelAnnounce()
			}
			_ = srv.Shutdown(shutdown)
			return runErr
		},
	}
}

func newProviderStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show inventory, free vs reserved capacity, open bids, running leases and earnings",
		Long: `Show this provider as the ledger records it: what it offers, what its open bids and running
leases reserve, what is free, and what it has earned. Works whether or not the daemon runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := provider.LoadConfig(g.providerConfigPath())
			if err != nil {
				return err
			}
			addr, err := g.resolveAddress(cfg.Key)
			if err != nil {
				return err
			}
			// --node, or the node a 'spare dev' home's client.json names (the root command put it in
			// g.nodeURL), else provider.toml's.
			nodeURL := cfg.Node
			if g.nodeURL != "" {
				nodeURL = g.nodeURL
			}
			c, err := client.New(nodeURL, client.Options{})
			if err != nil {
				return fmt.Errorf("node %q: %w", nodeURL, err)
			}
			st, err := provider.StatusFromLedger(cmd.Context(), c, addr, cfg.Hardware)
			if err != nil {
				return err
			}
			if rts, err := availableRuntimes(cmd.Context(), cfg, slog.New(slog.DiscardHandler)); err == nil {
				rep := provider.CheckIsolation(cmd.Context(), cfg.Isolation, rts)
				st.Isolation = &rep
			}
			return g.print(st, func(w io.Writer) {
				fmt.Fprintf(w, "provider %s (%s), stake %s, reputation %.3f\n", addr, st.Provider.Status,
					client.FormatAmount(st.Provider.Stake), float64(st.Provider.ReputationPPM)/1e6)
				fmt.Fprintf(w, "offered:  %d GPU, %d mCPU, %d MiB memory, %d MiB disk\n",
					st.Offered.GPUCount(), st.Offered.CPUMilli, st.Offered.MemoryMiB, st.Offered.DiskMiB)
				fmt.Fprintf(w, "reserved: %d GPU, %d mCPU, %d MiB memory, %d MiB disk (open bids and running leases)\n",
					st.Reserved.GPUCount, st.Reserved.CPUMilli, st.Reserved.MemoryMiB, st.Reserved.DiskMiB)
				fmt.Fprintf(w, "open bids: %d; running leases: %d; earned %s (+%s unsettled)\n", len(st.OpenBids), len(st.Leases),
					client.FormatAmount(st.Earned), client.FormatAmount(st.Unsettled))
				for _, l := range st.Leases {
					fmt.Fprintf(w, "  lease %d  %s  %s/h  tenant %s\n", l.ID, l.State, client.FormatAmount(l.Price), l.Tenant)
				}
				for _, warn := range st.Warnings {
					fmt.Fprintf(w, "warning: %s\n", warn)
				}
				if st.Isolation != nil {
					printIsolation(w, *st.Isolation, nil)
				}
			})
		},
	}
}

// availableRuntimes are the runtimes this provider offers: the process runtime always, docker when configured
// (and then its engine must answer).
func availableRuntimes(ctx context.Context, cfg *provider.Config, log *slog.Logger) (map[string]runtime.Runtime, error) {
	p := process.New(process.Config{UIDBase: cfg.UIDBase})
	log.Info("process runtime", "limits", p.Mechanism())
	rts := map[string]runtime.Runtime{"process": p}
	if cfg.Docker {
		d := &docker.Runtime{UIDBase: cfg.UIDBase, Images: cfg.DockerImages, Registries: cfg.DockerRegistries, Logger: log, Scope: cfg.DockerScope()}
		if err := d.Available(ctx); err != nil {
			return nil, fmt.Errorf("docker = true in provider.toml, but: %w (start the engine, or set docker = false)", err)
		}
		rts["docker"] = d
	}
	return rts, nil
}
