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
	"sync"
	"syscall"
	"time"

	"github.com/sparenet/spare/audit"
	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/explorer"
	"github.com/sparenet/spare/inventory"
	"github.com/sparenet/spare/ledger"
	"github.com/sparenet/spare/ledger/api"
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
var Funded = map[string]uint64{"tenant": 1_000_000 * api.USPR, "provider": 1_000_000 * api.USPR, "auditor": 1_000 * api.USPR}

// EpochBlocks is the dev network's liveness epoch: 50 blocks, 10 s at the default block time.
const EpochBlocks = 50

// ClientConfig is written to the home so that every client command finds the network and its keys.
type ClientConfig struct {
	Node           string `json:"node"`
	KeyringBackend string `json:"keyring_backend"`
	Key            string `json:"key"` // the default tenant key
	// Ready: every provider is registered, bonded and offering its storage. Until then client commands wait
	// (WaitReady), so that one run just after `spare dev` starts meets the whole network.
	Ready bool `json:"ready"`
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
	// Explorer is the address the explorer serves on ("" for none); its index is kept in the home. When its port
	// is in use, the explorer takes a free port of the same host instead (Info.ExplorerBusy says so), unless
	// ExplorerFixed.
	Explorer string
	// ExplorerFixed: the user asked for Explorer (spare dev --explorer), so a port in use is an error.
	ExplorerFixed bool
	// Providers is how many provider daemons run on this machine (default 1, at most MaxProviders), each with
	// its own key, stake, API port and lease directory; replicated jobs need at least two, a referee a third.
	// A resumed home keeps the number it was made with.
	Providers int
	// Provider, when set, adjusts provider i's configuration and runtimes before it starts (tests use it to
	// price providers apart or to inject faults, such as a runtime that corrupts outputs).
	Provider func(i int, cfg *provider.Config, rts map[string]runtime.Runtime)
	Logger   *slog.Logger
}

// MaxProviders bounds Options.Providers.
const MaxProviders = 8

// ProviderKey is the key (and, below the home, the directory) of dev provider i: "provider", "provider-2", ...
func ProviderKey(i int) string {
	if i == 0 {
		return "provider"
	}
	return fmt.Sprintf("provider-%d", i+1)
}

// providerConfigPath is where provider i's configuration lives in a home.
func providerConfigPath(home string, i int) string {
	if i == 0 {
		return filepath.Join(home, provider.ConfigFile)
	}
	return filepath.Join(home, ProviderKey(i), provider.ConfigFile)
}

// ProviderInfo is one dev provider.
type ProviderInfo struct {
	Address tx.Address `json:"address"`
	API     string     `json:"api"`
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
	// ExplorerBusy is the address Options.Explorer asked for when another program listened there and the
	// explorer took a free port instead.
	ExplorerBusy string     `json:"explorer_busy,omitempty"`
	Auditor      tx.Address `json:"auditor,omitzero"` // the in-process auditor's key
	// Providers lists every provider daemon (the first is Provider above).
	Providers []ProviderInfo `json:"providers"`
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
	home, err := filepath.Abs(o.Home)
	if err != nil {
		return err
	}
	o.Home = home
	if err := os.MkdirAll(o.Home, 0o700); err != nil {
		return err
	}
	// One spare dev per home: a second one says which process has it (the node's stores would refuse it anyway,
	// with a less helpful error).
	unlock, err := lockHome(o.Home)
	if err != nil {
		return err
	}
	defer unlock()
	if o.ExplorerFixed && o.Explorer != "" {
		// Before anything is made or started: the address asked for must be free (checked again when the
		// explorer starts).
		ln, err := net.Listen("tcp", o.Explorer)
		if err != nil {
			return explorerListenError(o.Explorer, err)
		}
		ln.Close()
	}
	if o.Reset {
		if err := resetHome(o.Home, o.Logger); err != nil {
			return err
		}
	}
	kr, err := keyring.Open(filepath.Join(o.Home, "keys"), keyring.Options{Backend: keyring.BackendTest})
	if err != nil {
		return err
	}
	if o.Providers < 0 || o.Providers > MaxProviders {
		return fmt.Errorf("providers %d: run 1 to %d providers", o.Providers, MaxProviders)
	}
	info := Info{Home: o.Home, ChainID: ChainID}
	if _, err := os.Stat(filepath.Join(o.Home, "config", "genesis.json")); err == nil {
		info.Resumed = true
		made := 0
		for made < MaxProviders {
			if _, err := os.Stat(providerConfigPath(o.Home, made)); err != nil {
				break
			}
			made++
		}
		if o.Providers != 0 && o.Providers != made {
			return fmt.Errorf("providers %d: the dev network in %s was made with %d (their keys are funded at genesis): run it with %d, or start over with --reset", o.Providers, o.Home, made, made)
		}
		o.Providers = made
	} else {
		o.Providers = max(o.Providers, 1)
		if err := initHome(o, kr); err != nil {
			return err
		}
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
	if err := writeClientConfig(o.Home, info.RPC, false); err != nil {
		return err
	}
	c, err := client.New(info.RPC, client.Options{Logger: o.Logger})
	if err != nil {
		return err
	}

	tenantInfo, _ := kr.Show("tenant")
	info.Tenant = tenantInfo.Address
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, o.Providers)
	var daemons []*devProvider
	var bg sync.WaitGroup // the auditor and its round-trip listener: waited for, so nothing writes to the home after Run
	defer func() {
		stop()
		bg.Wait()
		for _, d := range daemons {
			d.close()
		}
	}()
	// The auditor's round-trip port, before the providers start measuring.
	if as, err := kr.Signer("auditor"); err == nil {
		ln, err := listenAuditorRTT(o.Home, as.Address())
		switch {
		case err != nil:
			o.Logger.Warn("auditor round-trip port", "err", err)
		case ln != nil:
			bg.Go(func() { _ = audit.ServeRTT(runCtx, ln) })
		}
	}
	for i := range o.Providers {
		d, err := startProvider(runCtx, o, kr, c, i, done)
		if err != nil {
			return err
		}
		daemons = append(daemons, d)
		info.Providers = append(info.Providers, ProviderInfo{Address: d.addr, API: d.api})
		if i == 0 {
			info.Provider, info.ProviderAPI, info.CertFingerprint, info.Runtimes, info.GPUs = d.addr, d.api, d.fp, d.runtimes, d.gpus
		}
	}
	// The network's auditor (the dev validator's): challenges the provider every epoch and attests.
	if as, err := kr.Signer("auditor"); err == nil {
		// Its directory private, as everything in the home (which, as root, others may traverse: leasesRoot).
		if err := os.MkdirAll(filepath.Join(o.Home, "auditor"), 0o700); err != nil {
			return err
		}
		_ = os.Chmod(filepath.Join(o.Home, "auditor"), 0o700)
		a := audit.NewAuditor(c, as, o.Logger.With("module", "auditor"))
		a.TranscriptDir = filepath.Join(o.Home, "auditor", "transcripts")
		a.StateDir = filepath.Join(o.Home, "auditor") // the storage-proof beacon's secrets, kept across restarts
		info.Auditor = as.Address()
		bg.Go(func() {
			if err := a.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				o.Logger.Warn("auditor stopped", "err", err)
			}
		})
	}
	if o.Explorer != "" {
		eo := explorer.Options{Client: c, DB: filepath.Join(o.Home, "explorer", "index.db"), Listen: o.Explorer, Logger: o.Logger}
		e, err := explorer.Start(runCtx, eo)
		if errors.Is(err, syscall.EADDRINUSE) {
			if o.ExplorerFixed {
				return explorerListenError(o.Explorer, err)
			}
			// The default address is taken (another spare dev, another web server): any free port will do.
			if host, _, herr := net.SplitHostPort(o.Explorer); herr == nil {
				eo.Listen = net.JoinHostPort(host, "0")
				e, err = explorer.Start(runCtx, eo)
				info.ExplorerBusy = o.Explorer
				o.Logger.Info("the explorer's address is in use: it listens on a free port instead", "busy", o.Explorer)
			}
		}
		if err != nil {
			return err
		}
		defer e.Close()
		info.Explorer = e.URL
	}
	// Ready once every provider is registered and bonded, and its storage offered.
	for _, d := range daemons {
		for {
			p, err := c.Provider(ctx, d.addr)
			if err == nil && p.Stake >= p.RequiredStake {
				if !d.storage {
					break
				}
				if _, err := c.StorageOffer(ctx, d.addr); err == nil {
					break
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case err := <-done:
				return fmt.Errorf("provider stopped: %v", err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	if err := writeClientConfig(o.Home, info.RPC, true); err != nil {
		return err
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
	return nil
}

// explorerListenError is the answer when the explorer address the user asked for cannot be listened on.
func explorerListenError(addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("--explorer %s: another program listens there: pass --explorer with a free address (port 0 picks one), or --explorer \"\" for no explorer", addr)
	}
	return fmt.Errorf("--explorer %s: %w", addr, err)
}

// devProvider is one running provider daemon of the dev network.
type devProvider struct {
	addr     tx.Address
	api      string
	fp       tx.Hash
	runtimes []string
	gpus     int
	storage  bool   // offers disk to Spare Vault
	close    func() // after the run context is cancelled: waits for the daemon, closes its API and store
}

// startProvider starts dev provider i: its daemon (reporting its end on done) and its API server.
func startProvider(ctx context.Context, o Options, kr *keyring.Keyring, c *client.Client, i int, done chan<- error) (*devProvider, error) {
	cfg, err := provider.LoadConfig(providerConfigPath(o.Home, i))
	if err != nil {
		return nil, err
	}
	if cfg.Node != c.URL() {
		// Homes made before provider.toml named the dev node's port: name it, so that `spare provider status`
		// and other readers of the file reach this network.
		cfg.Node = c.URL()
		if err := cfg.Save(providerConfigPath(o.Home, i)); err != nil {
			return nil, err
		}
	}
	if cfg.LeasesDir != "" {
		if err := openLeasesRoot(o.Home, filepath.Dir(filepath.Clean(cfg.LeasesDir))); err != nil {
			return nil, fmt.Errorf("lease directories: %w", err)
		}
	}
	signer, err := kr.Signer(cfg.Key)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(o.Home, ProviderKey(i))
	if i == 0 {
		dir = filepath.Join(o.Home, "provider")
	}
	cert, fp, err := certs.LoadKeyPair(filepath.Join(dir, "tls", "cert.pem"), filepath.Join(dir, "tls", "key.pem"))
	if err != nil {
		return nil, err
	}
	rts := map[string]runtime.Runtime{"process": process.New(process.Config{UIDBase: cfg.UIDBase})}
	if cfg.Docker {
		d := &docker.Runtime{UIDBase: cfg.UIDBase, Images: cfg.DockerImages, Registries: cfg.DockerRegistries, Logger: o.Logger, Scope: cfg.DockerScope()}
		if err := d.Available(ctx); err == nil {
			rts["docker"] = d
		} else {
			o.Logger.Warn("docker runtime off: the engine does not answer", "err", err)
			cfg.Docker = false
		}
	}
	if o.Provider != nil {
		o.Provider(i, cfg, rts)
	}
	// spare dev runs the developer's own jobs on the developer's own machine: where this host cannot give a
	// guarantee a real provider needs, the dev provider accepts that risk, loudly, instead of refusing to run.
	for _, ri := range provider.CheckIsolation(ctx, cfg.Isolation, rts).Runtimes {
		for _, m := range ri.Missing {
			cfg.Isolation.AcceptRisks = append(cfg.Isolation.AcceptRisks, ri.Runtime+":"+m)
		}
		if len(ri.Missing) > 0 {
			o.Logger.Warn("this host cannot isolate jobs as a provider for strangers must: spare dev accepts the risk (a real provider refuses; see spare provider doctor)",
				"runtime", ri.Runtime, "missing", ri.Missing)
		}
	}
	dp := &devProvider{addr: signer.Address(), api: cfg.HostURI, fp: fp, gpus: len(cfg.Hardware.GPUs), storage: cfg.Storage.CapacityGiB > 0}
	for name := range rts {
		dp.runtimes = append(dp.runtimes, name)
	}
	log := o.Logger.With("module", "provider")
	if i > 0 {
		log = log.With("daemon", ProviderKey(i))
	}
	d, err := provider.New(provider.Options{Config: cfg, DataDir: dir, Signer: signer, Client: c,
		Runtimes: rts, CertFingerprint: fp, Logger: log, Hide: []string{o.Home}})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("provider API %s: %w", cfg.Listen, err)
	}
	srv := provider.NewServer(d.Handler(&reqsig.Verifier{}), provider.ServerErrorLog(log), provider.ServerLimits{})
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Logger.Error("provider API", "err", err)
		}
	}()
	ended := make(chan struct{})
	go func() {
		err := d.Run(ctx)
		close(ended)
		done <- err
	}()
	dp.close = func() {
		<-ended
		srv.Close()
		d.Close()
	}
	return dp, nil
}

// initHome creates keys, genesis, node config and the provider's config and certificate.
func initHome(o Options, kr *keyring.Keyring) error {
	g := api.Genesis{Params: api.DefaultParams()}
	g.Params.EpochBlocks = EpochBlocks
	base, err := node.FreePorts(3 + o.Providers) // RPC, P2P, the providers' APIs, the auditor's round-trip port
	if err != nil {
		return err
	}
	leases, err := leasesRoot(o.Home, o.Logger)
	if err != nil {
		return fmt.Errorf("lease directories: %w", err)
	}
	names := []string{"auditor", "tenant"}
	for i := range o.Providers {
		names = append(names, ProviderKey(i))
	}
	for _, name := range names {
		k, err := kr.Show(name)
		if err != nil {
			if k, err = kr.Add(name); err != nil {
				return err
			}
		}
		balance, ok := Funded[name]
		if !ok {
			balance = Funded["provider"]
		}
		g.Accounts = append(g.Accounts, api.GenesisAccount{Address: k.Address, Balance: balance})
		if name == "auditor" {
			g.Auditors = append(g.Auditors, api.GenesisAuditor{Address: k.Address, Weight: 1,
				Host: fmt.Sprintf("127.0.0.1:%d", base+2+o.Providers)})
		}
	}
	state, err := json.Marshal(g)
	if err != nil {
		return err
	}
	if err := node.Init(o.Home, node.Options{ChainID: ChainID, Moniker: "spare-dev", BlockTime: o.BlockTime, AppState: state,
		RPCListen: fmt.Sprintf("tcp://127.0.0.1:%d", base), P2PListen: fmt.Sprintf("tcp://127.0.0.1:%d", base+1)}); err != nil {
		return err
	}
	for i := range o.Providers {
		if err := initProvider(o, i, base+2+i, fmt.Sprintf("http://127.0.0.1:%d", base), filepath.Join(leases, ProviderKey(i))); err != nil {
			return err
		}
	}
	return nil
}

// initProvider writes dev provider i's configuration (its hardware detected on this machine, its API on port,
// the dev node's RPC address, its leases' directories in leasesDir) and TLS certificate.
func initProvider(o Options, i, port int, rpc, leasesDir string) error {
	provDir := filepath.Join(o.Home, "provider")
	if i > 0 {
		provDir = filepath.Join(o.Home, ProviderKey(i))
	}
	if err := os.MkdirAll(provDir, 0o700); err != nil {
		return err
	}
	inv, err := inventory.Detect(context.Background(), inventory.Options{NvidiaSMI: o.NvidiaSMI, DataDir: provDir})
	if inv == nil {
		return err
	}
	// A failing nvidia-smi leaves the GPUs out: the dev network still runs, CPU-only, and says so.
	for _, w := range inv.Warnings {
		if i == 0 {
			o.Logger.Info("hardware", "note", w)
		}
	}
	if err != nil {
		o.Logger.Warn("hardware detection incomplete", "err", err)
	}
	cfg := provider.ConfigFromInventory(inv)
	cfg.Key = ProviderKey(i)
	cfg.Node = rpc
	cfg.Docker = cfg.Docker && !o.NoDocker
	cfg.Region = "local"
	cfg.Listen = fmt.Sprintf("127.0.0.1:%d", port)
	cfg.HostURI = "https://" + cfg.Listen
	// In the home (HOME/leases/KEY), which --reset removes; see leasesRoot for a home the jobs' users cannot
	// reach when spare dev runs as root.
	cfg.LeasesDir = leasesDir
	cfg.Limits.WithdrawEvery = provider.Duration{Duration: time.Minute}
	cfg.MaxLeaseDuration = provider.Duration{Duration: 24 * time.Hour} // `spare extend` works on the dev network
	// Each dev provider offers 1 GiB of its home's disk to Spare Vault (docs/vault.md), when the disk has room
	// to spare for it: `spare offers --storage` lists them.
	if _, free, err := inventory.DiskSpace(provDir); err == nil && free >= 4<<10 {
		cfg.Storage = provider.StorageConfig{CapacityGiB: 1, Path: filepath.Join(provDir, "vault"), PricePerGiBMonth: "0.001"}
	}
	// Dev jobs fetch their inputs from servers on this machine: allow loopback and private addresses, which a
	// real provider refuses (inputs.go).
	cfg.Inputs.AllowPrivate = true
	// The providers share this machine: each gives rendezvous ports from its own range.
	cfg.ClusterPorts = fmt.Sprintf("%d-%d", 29500+100*i, 29599+100*i)
	cfg.ServicePorts = fmt.Sprintf("%d-%d", 31000+100*i, 31099+100*i)
	// Every dev chain numbers its leases from 1: give each home its own range of lease users, so a workload
	// left running by an earlier dev network never holds a new lease's user. Providers of one chain never
	// serve the same lease id.
	h := fnv.New32a()
	h.Write([]byte(o.Home))
	cfg.UIDBase = 1_000_000_000 + (h.Sum32()%1000)*1_000_000 // below 2³¹: Docker refuses larger uids
	if cfg.Hardware.DiskMiB == 0 {
		cfg.Hardware.DiskMiB = 1024
	}
	// spare dev runs the developer's own jobs: any image on this machine may run (a real provider lists the
	// images strangers may run in docker_images).
	cfg.DockerImages = []string{"*"}
	if _, _, err := certs.LoadOrGenerate(filepath.Join(provDir, "tls"), []string{"127.0.0.1", "localhost"}, 10*365*24*time.Hour); err != nil {
		return err
	}
	return cfg.Save(providerConfigPath(o.Home, i))
}

// writeClientConfig writes client.json through a temporary file, so that a client never reads half of it.
func writeClientConfig(home, rpc string, ready bool) error {
	b, _ := json.MarshalIndent(ClientConfig{Node: rpc, KeyringBackend: string(keyring.BackendTest), Key: "tenant", Ready: ready}, "", "  ")
	tmp := filepath.Join(home, ClientConfigFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(home, ClientConfigFile))
}

// listenAuditorRTT opens the auditor's round-trip port named in the home's genesis (a home made before
// auditors had hosts has none: nil). It is opened before the providers start, so their first measurement finds
// it.
func listenAuditorRTT(home string, me tx.Address) (net.Listener, error) {
	b, err := os.ReadFile(filepath.Join(home, "config", "genesis.json"))
	if err != nil {
		return nil, err
	}
	var doc struct {
		AppState api.Genesis `json:"app_state"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	for _, a := range doc.AppState.Auditors {
		if a.Address == me && a.Host != "" {
			return net.Listen("tcp", a.Host)
		}
	}
	return nil, nil
}
