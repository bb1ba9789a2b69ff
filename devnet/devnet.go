// Package devnet is `spare dev`: one process runs a validator with ≈200 ms blocks, a provider daemon on this
// machine (its real GPUs if any, else CPU; the docker runtime when an engine answers) and funded keys, so the
// whole market can be tried and tested on one machine. Its state lives in one home directory; a second run
// resumes the same chain.
package devnet

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/sparenet/spare/audit"
	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/explorer"
	"github.com/sparenet/spare/inventory"
	"github.com/sparenet/spare/ledger"
	"github.com/sparenet/spare/ledger/store"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/node"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/reqsig"
	"github.com/sparenet/spare/runtime"
	"github.com/sparenet/spare/runtime/docker"
	"github.com/sparenet/spare/runtime/process"
)

// ChainID is the dev network's name.
const ChainID = "spare-dev"

// Funded keys and their genesis balances.
var Funded = map[string]uint64{"tenant": 1_000_000 * ledger.USPR, "provider": 1_000_000 * ledger.USPR, "auditor": 1_000 * ledger.USPR}

// EpochBlocks is the dev network's liveness epoch: 50 blocks, 10 s at the default block time.
const EpochBlocks = 50

// ClientConfig is written to the home so that every client command finds the network and its keys.
type ClientConfig struct {
	Node           string `json:"node"`
	KeyringBackend string `json:"keyring_backend"`
	Key            string `json:"key"` // the default tenant key
}

// ClientConfigFile is the client config's name in a home.
const ClientConfigFile = "client.json"

// LoadClientConfig reads home/client.json, if any.
func LoadClientConfig(home string) (*ClientConfig, error) {
	b, err := os.ReadFile(filepath.Join(home, ClientConfigFile))
	if err != nil {
		return nil, err
	}
	var c ClientConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(home, ClientConfigFile), err)
	}
	return &c, nil
}

// Options configure a dev network.
type Options struct {
	Home      string
	Reset     bool          // delete the home first
	BlockTime time.Duration // default 200 ms
	NvidiaSMI string        // default "nvidia-smi"
	NoDocker  bool          // do not offer the docker runtime even when an engine answers
	// Explorer is the address the explorer serves on ("" for none); its index is kept in the home.
	Explorer string
	Logger   *slog.Logger
}

// Info is what a running dev network tells its user.
type Info struct {
	Home            string     `json:"home"`
	ChainID         string     `json:"chain_id"`
	RPC             string     `json:"rpc"`
	ProviderAPI     string     `json:"provider_api"`
	Provider        tx.Address `json:"provider"`
	Tenant          tx.Address `json:"tenant"`
	GPUs            int        `json:"gpus"`
	Runtimes        []string   `json:"runtimes"`
	Resumed         bool       `json:"resumed"`
	CertFingerprint tx.Hash    `json:"cert_fingerprint"`
	Explorer        string     `json:"explorer,omitempty"` // the explorer's URL
	Auditor         tx.Address `json:"auditor,omitzero"`   // the in-process auditor's key
}

// Run starts the dev network and blocks until ctx ends, then stops everything cleanly. ready is called once
// the network accepts transactions and the provider is registered.
func Run(ctx context.Context, o Options, ready func(Info)) error {
	if o.BlockTime == 0 {
		o.BlockTime = 200 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Reset {
		if err := os.RemoveAll(o.Home); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(o.Home, 0o700); err != nil {
		return err
	}
	kr, err := keyring.Open(filepath.Join(o.Home, "keys"), keyring.Options{Backend: keyring.BackendTest})
	if err != nil {
		return err
	}
	info := Info{Home: o.Home, ChainID: ChainID}
	if _, err := os.Stat(filepath.Join(o.Home, "config", "genesis.json")); err == nil {
		info.Resumed = true
	} else if err := initHome(o, kr); err != nil {
		return err
	}

	st, err := store.Open(filepath.Join(o.Home, "data", "ledger"))
	if err != nil {
		return err
	}
	defer st.Close()
	app := ledger.New(st, ledger.Options{Logger: o.Logger.With("module", "ledger")})
	n, err := node.Start(o.Home, app, o.Logger.With("module", "comet"))
	if err != nil {
		return err
	}
	defer n.Stop()
	info.RPC = n.RPCAddress()
	if err := writeClientConfig(o.Home, info.RPC); err != nil {
		return err
	}
	c, err := client.New(info.RPC, client.Options{Logger: o.Logger})
	if err != nil {
		return err
	}

	cfg, err := provider.LoadConfig(filepath.Join(o.Home, provider.ConfigFile))
	if err != nil {
		return err
	}
	cfg.Node = info.RPC
	signer, err := kr.Signer(cfg.Key)
	if err != nil {
		return err
	}
	tenantInfo, _ := kr.Show("tenant")
	info.Provider, info.Tenant = signer.Address(), tenantInfo.Address
	tlsDir := filepath.Join(o.Home, "provider", "tls")
	cert, fp, err := certs.LoadKeyPair(filepath.Join(tlsDir, "cert.pem"), filepath.Join(tlsDir, "key.pem"))
	if err != nil {
		return err
	}
	info.CertFingerprint = fp
	rts := map[string]runtime.Runtime{"process": process.New(process.Config{UIDBase: cfg.UIDBase})}
	if cfg.Docker {
		d := &docker.Runtime{}
		if err := d.Available(ctx); err == nil {
			rts["docker"] = d
		} else {
			o.Logger.Warn("docker runtime off: the engine does not answer", "err", err)
			cfg.Docker = false
		}
	}
	for name := range rts {
		info.Runtimes = append(info.Runtimes, name)
	}
	info.GPUs = len(cfg.Hardware.GPUs)
	d, err := provider.New(provider.Options{Config: cfg, DataDir: filepath.Join(o.Home, "provider"), Signer: signer, Client: c,
		Runtimes: rts, CertFingerprint: fp, Logger: o.Logger.With("module", "provider")})
	if err != nil {
		return err
	}
	defer d.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("provider API %s: %w", cfg.Listen, err)
	}
	info.ProviderAPI = cfg.HostURI
	srv := &http.Server{Handler: d.Handler(&reqsig.Verifier{}), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Logger.Error("provider API", "err", err)
		}
	}()
	defer srv.Close()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	// The network's auditor (the dev validator's): challenges the provider every epoch and attests.
	if as, err := kr.Signer("auditor"); err == nil {
		a := audit.NewAuditor(c, as, o.Logger.With("module", "auditor"))
		a.TranscriptDir = filepath.Join(o.Home, "auditor", "transcripts")
		info.Auditor = as.Address()
		go func() {
			if err := a.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				o.Logger.Warn("auditor stopped", "err", err)
			}
		}()
	}
	if o.Explorer != "" {
		e, err := explorer.Start(runCtx, explorer.Options{Client: c, DB: filepath.Join(o.Home, "explorer", "index.db"),
			Listen: o.Explorer, Logger: o.Logger})
		if err != nil {
			stop()
			<-done
			return err
		}
		defer e.Close()
		info.Explorer = e.URL
	}
	// Ready once the provider is registered and bonded.
	for {
		p, err := c.Provider(ctx, signer.Address())
		if err == nil && p.Stake >= p.RequiredStake {
			break
		}
		select {
		case <-ctx.Done():
			stop()
			<-done
			return nil
		case err := <-done:
			return fmt.Errorf("provider stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if ready != nil {
		ready(info)
	}
	select {
	case <-ctx.Done():
	case err := <-done:
		if err != nil {
			return fmt.Errorf("provider stopped: %w", err)
		}
	}
	stop()
	<-done
	return nil
}

// initHome creates keys, genesis, node config and the provider's config and certificate.
func initHome(o Options, kr *keyring.Keyring) error {
	g := ledger.Genesis{Params: ledger.DefaultParams()}
	g.Params.EpochBlocks = EpochBlocks
	for _, name := range []string{"auditor", "provider", "tenant"} {
		k, err := kr.Show(name)
		if err != nil {
			if k, err = kr.Add(name); err != nil {
				return err
			}
		}
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: k.Address, Balance: Funded[name]})
		if name == "auditor" {
			g.Auditors = append(g.Auditors, ledger.GenesisAuditor{Address: k.Address, Weight: 1})
		}
	}
	state, err := json.Marshal(g)
	if err != nil {
		return err
	}
	base, err := node.FreePorts(2)
	if err != nil {
		return err
	}
	if err := node.Init(o.Home, node.Options{ChainID: ChainID, Moniker: "spare-dev", BlockTime: o.BlockTime, AppState: state,
		RPCListen: fmt.Sprintf("tcp://127.0.0.1:%d", base), P2PListen: fmt.Sprintf("tcp://127.0.0.1:%d", base+1)}); err != nil {
		return err
	}
	provDir := filepath.Join(o.Home, "provider")
	if err := os.MkdirAll(provDir, 0o700); err != nil {
		return err
	}
	inv, err := inventory.Detect(context.Background(), inventory.Options{NvidiaSMI: o.NvidiaSMI, DataDir: provDir})
	if inv == nil {
		return err
	}
	// A failing nvidia-smi leaves the GPUs out: the dev network still runs, CPU-only, and says so.
	for _, w := range inv.Warnings {
		o.Logger.Info("hardware", "note", w)
	}
	if err != nil {
		o.Logger.Warn("hardware detection incomplete", "err", err)
	}
	cfg := provider.ConfigFromInventory(inv)
	cfg.Docker = cfg.Docker && !o.NoDocker
	cfg.Region = "local"
	cfg.Listen = fmt.Sprintf("127.0.0.1:%d", base+2)
	cfg.HostURI = "https://" + cfg.Listen
	if os.Geteuid() == 0 {
		cfg.LeasesDir = "/var/lib/spare/dev-leases"
	}
	cfg.Limits.WithdrawEvery = provider.Duration{Duration: time.Minute}
	// Every dev chain numbers its leases from 1: give each home its own range of lease users, so a workload
	// left running by an earlier dev network never holds a new lease's user.
	h := fnv.New32a()
	h.Write([]byte(o.Home))
	cfg.UIDBase = 3_000_000_000 + (h.Sum32()%1000)*1_000_000
	if cfg.Hardware.DiskMiB == 0 {
		cfg.Hardware.DiskMiB = 1024
	}
	if _, _, err := certs.LoadOrGenerate(filepath.Join(provDir, "tls"), []string{"127.0.0.1", "localhost"}, 10*365*24*time.Hour); err != nil {
		return err
	}
	return cfg.Save(filepath.Join(o.Home, provider.ConfigFile))
}

func writeClientConfig(home, rpc string) error {
	b, _ := json.MarshalIndent(ClientConfig{Node: rpc, KeyringBackend: string(keyring.BackendTest), Key: "tenant"}, "", "  ")
	return os.WriteFile(filepath.Join(home, ClientConfigFile), b, 0o600)
}
