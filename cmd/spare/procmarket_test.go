package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/internal/proctest"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/node"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/reqsig"
)

// procMarket is a chain with one validator, optionally its auditor, and one provider with the process runtime,
// each a `spare` process on loopback: the fault tests' market (provider restarts and outages, workloads past
// their limits). The keys "tenant" and "provider" are funded with 100,000 SPR.
type procMarket struct {
	t                   *testing.T
	bin, api, home, tmp string
	leases              string // the provider's leases_dir
	kb                  []string
	provLog             string
	prov                *proctest.Proc
	c                   *client.Client
	tenant              *keyring.Signer
	provider            *keyring.Signer
	epoch               uint64 // params.epoch_blocks
}

// marketUIDBase places each market's per-lease users apart from every other provider's on this machine: the
// default base's (2,000,000,000), spare dev's (1,000,000,000 and up), other test processes' and this process's
// earlier markets' (whose orphaned workloads may linger), in ranges of 1,000,000 from 100,000,000.
func marketUIDBase() uint32 {
	n := markets.Add(1)
	return 100_000_000 + uint32((os.Getpid()*31+int(n))%900)*1_000_000
}

var markets atomic.Int32

// marketOpts shape a procMarket.
type marketOpts struct {
	params  map[string]uint64        // genesis params set (short epochs, a short jail)
	auditor bool                     // run `spare auditor` (liveness only: no proof of GPU)
	config  func(c *provider.Config) // changes to provider.toml before the daemon's first start
}

func newProcMarket(t *testing.T, o marketOpts) *procMarket {
	t.Helper()
	tmp := t.TempDir()
	bin := proctest.Build(t, ".")
	home := filepath.Join(tmp, "home")
	base, err := node.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	kb := []string{"--home", home, "--keyring-backend", "test"}
	crashRun(t, bin, append(kb, "init", "--keys", "tenant,provider", "--fund", "100000",
		"--rpc", fmt.Sprintf("tcp://127.0.0.1:%d", base), "--p2p", fmt.Sprintf("tcp://127.0.0.1:%d", base+1))...)
	genesis := filepath.Join(home, "config", "genesis.json")
	var g map[string]any
	b, err := os.ReadFile(genesis)
	if err != nil || json.Unmarshal(b, &g) != nil {
		t.Fatalf("genesis: %v", err)
	}
	ps := g["app_state"].(map[string]any)["params"].(map[string]any)
	for k, v := range o.params {
		if _, ok := ps[k]; !ok {
			t.Fatalf("genesis has no params.%s", k)
		}
		ps[k] = v
	}
	b, _ = json.MarshalIndent(g, "", "  ")
	if err := os.WriteFile(genesis, b, 0o600); err != nil {
		t.Fatal(err)
	}
	startProc(t, bin, filepath.Join(tmp, "node.log"), append([]string{"node", "--log-level", "warn"}, kb...)...)
	if o.auditor {
		startProc(t, bin, filepath.Join(tmp, "auditor.log"), append([]string{"auditor", "--key", "auditor", "--proofs=false",
			"--timeout", "2s", "--log-level", "debug"}, kb...)...)
	}
	leases, err := os.MkdirTemp("/tmp", "spare-market-leases-") // not under t.TempDir (0700): the leases' uids must reach it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(leases) })
	_ = os.Chmod(leases, 0o711)
	api := fmt.Sprintf("127.0.0.1:%d", base+2)
	crashRun(t, bin, append(kb, "provider", "init", "--region", "eu-west", "--host-uri", "https://"+api, "--listen", api,
		"--key", "provider", "--no-docker", "--nvidia-smi", "/nonexistent", "--leases-dir", leases)...)
	path := filepath.Join(home, provider.ConfigFile)
	cfg, err := provider.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.UIDBase = marketUIDBase()
	if o.config != nil {
		o.config(cfg)
	}
	if err := cfg.Save(path); err != nil {
		t.Fatal(err)
	}
	m := &procMarket{t: t, bin: bin, api: api, home: home, tmp: tmp, leases: leases, kb: kb,
		provLog: filepath.Join(tmp, "provider.log"), epoch: o.params["epoch_blocks"]}
	m.startProvider()
	m.c, err = client.New(fmt.Sprintf("http://127.0.0.1:%d", base), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.Open(filepath.Join(home, "keys"), keyring.Options{Backend: keyring.BackendTest})
	if err != nil {
		t.Fatal(err)
	}
	m.tenant, _ = kr.Signer("tenant")
	m.provider, _ = kr.Signer("provider")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m.wait(ctx, 90*time.Second, "the provider registered and bonded", func() bool {
		p, err := m.c.Provider(ctx, m.provider.Address())
		return err == nil && p.Stake >= p.RequiredStake
	})
	return m
}

func (m *procMarket) startProvider() {
	m.prov = startProc(m.t, m.bin, m.provLog, append(m.kb, "provider", "start", "--log-level", "debug")...)
}

// wait polls ok every 100 ms until it holds, or fails the test after limit with the provider's log.
func (m *procMarket) wait(ctx context.Context, limit time.Duration, what string, ok func() bool) time.Duration {
	m.t.Helper()
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	waitUntil(m.t, ctx, what, m.provLog, ok)
	return time.Since(t0)
}

func (m *procMarket) providerView(ctx context.Context) api.ProviderView {
	p, err := m.c.Provider(ctx, m.provider.Address())
	if err != nil {
		m.t.Fatal(err)
	}
	return p
}

// epochNow is the epoch of the last block, and that block's height.
func (m *procMarket) epochNow(ctx context.Context) (uint64, int64) {
	st, err := m.c.Status(ctx)
	if err != nil {
		return 0, 0
	}
	return uint64(st.Height-1) / m.epoch, st.Height
}

// lease posts an order for run (a job of duration seconds), waits for its lease, sends the manifest to the
// provider and waits for the lease to start.
func (m *procMarket) lease(ctx context.Context, run string, duration uint64) api.LeaseView {
	m.t.Helper()
	mf := &manifest.Manifest{Version: 1, Run: run, Resources: tx.Resources{CPUMilli: 500, MemoryMiB: 128}, DurationSec: duration}
	raw, _ := mf.Encode()
	res, err := m.c.NewSender(m.tenant).Send(ctx, &tx.CreateOrder{Resources: mf.Resources, MaxPricePerHour: 100 * api.USPR,
		ManifestHash: manifest.Hash(raw), Deposit: 10 * api.USPR, DurationSec: mf.DurationSec})
	if err != nil {
		m.t.Fatal(err)
	}
	idStr, _ := res.Attr("order.created", "order_id")
	orderID, _ := strconv.ParseUint(idStr, 10, 64)
	var leaseID uint64
	m.wait(ctx, 60*time.Second, "the order to be leased", func() bool {
		o, err := m.c.Order(ctx, orderID)
		leaseID = o.LeaseID
		return err == nil && o.State == api.OrderLeased
	})
	m.wait(ctx, 30*time.Second, "the manifest to be accepted", func() bool {
		code, _ := m.call("PUT", fmt.Sprintf("/leases/%d/manifest", leaseID), raw)
		return code == 200
	})
	var l api.LeaseView
	m.wait(ctx, 60*time.Second, "the lease to start", func() bool {
		l, err = m.c.Lease(ctx, leaseID)
		return err == nil && l.StartedMs != 0 // a short job may have ended already
	})
	if l.Provider != m.provider.Address() {
		m.t.Fatalf("lease %d went to %s", leaseID, l.Provider)
	}
	return l
}

// call is a signed request of the tenant to the provider's API.
func (m *procMarket) call(method, path string, body []byte) (int, []byte) {
	p, err := m.c.Provider(context.Background(), m.provider.Address())
	if err != nil {
		return 0, []byte(err.Error())
	}
	hc := certs.PinnedHTTPClient(p.Info.CertFingerprint, 10*time.Second)
	hc.Transport = &reqsig.Transport{Base: hc.Transport, Key: m.tenant.PrivateKey()}
	req, _ := http.NewRequest(method, "https://"+m.api+path, bytes.NewReader(body))
	resp, err := hc.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// running says whether a process whose command line is exactly args runs on this machine (a workload the
// provider should have stopped).
func running(args ...string) bool {
	want := strings.Join(args, "\x00") + "\x00"
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, d := range dirs {
		if b, err := os.ReadFile(d); err == nil && string(b) == want {
			return true
		}
	}
	return false
}
