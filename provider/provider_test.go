package provider_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/internal/localnet"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/merkle"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/reqsig"
	"github.com/sparenet/spare/runtime"
	"github.com/sparenet/spare/runtime/docker"
	"github.com/sparenet/spare/runtime/process"
)

const spr = api.USPR

// env is a network with a running provider daemon and a tenant.
type env struct {
	t       testing.TB
	net     *localnet.Net
	c       *client.Client
	d       *provider.Daemon
	hostURI string
	fp      tx.Hash
	leases  string // the leases directory
	stop    func() // stops the daemon and its API server
	start   func() // starts a daemon again on the same data (a restart)
}

func eightH100() provider.HardwareConfig {
	h := provider.HardwareConfig{CPUCores: 2, MemoryMiB: 4096, DiskMiB: 10_000}
	for i := 0; i < 8; i++ {
		h.GPUs = append(h.GPUs, provider.GPUConfig{Index: i, UUID: fmt.Sprintf("GPU-%d", i), Model: "H100", MemoryMiB: 81559})
	}
	return h
}

func startEnv(t testing.TB) *env { return startEnvWith(t, nil) }

// startEnvWith lets a test change the provider's config before the daemon starts.
func startEnvWith(t testing.TB, mutate func(*provider.Config)) *env {
	t.Helper()
	return startEnvOpts(t, envOpts{mutate: mutate})
}

// envOpts change the network (params, auditors) or the provider's config before the daemon starts.
type envOpts struct {
	mutate   func(*provider.Config)
	params   *api.Params
	auditors map[string]uint64 // funded with 1000 SPR each
	now      func() time.Time  // the daemon's clock (default time.Now)
	logger   *slog.Logger      // the daemon's log (default testLogger)
	// beforeStart runs on the chain before the daemon's first start (e.start and e.d are not set yet).
	beforeStart func(e *env)
}

func startEnvOpts(t testing.TB, o envOpts) *env {
	t.Helper()
	mutate := o.mutate
	funded := map[string]uint64{"tenant": 1000 * spr, "other": 1000 * spr, "prov": 10_000 * spr}
	for name := range o.auditors {
		funded[name] = 1000 * spr
	}
	n, err := localnet.Start(t.TempDir(), localnet.Options{CheckInvariants: true, Funded: funded, Params: o.params, Auditors: o.auditors})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	c, err := n.Client(0)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, net: n, c: c}
	certPEM, keyPEM, err := certs.Generate([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	e.fp, _ = certs.FingerprintPEM(certPEM)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.hostURI = "https://" + ln.Addr().String()
	cfg := provider.DefaultConfig()
	cfg.Node, cfg.Region, cfg.HostURI, cfg.Listen = c.URL(), "eu-west", e.hostURI, ln.Addr().String()
	cfg.Prices.GPUHour = map[string]string{"H100": "2"}
	cfg.Prices.DefaultGPUHour = ""
	cfg.Limits.WithdrawEvery = provider.Duration{Duration: time.Second}
	cfg.Hardware = eightH100()
	cfg.LeasesDir = leasesDir(t)
	e.leases = cfg.LeasesDir
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	addr := ln.Addr().String()
	logger := o.logger
	if logger == nil {
		logger = testLogger()
	}
	e.start = func() {
		d, err := provider.New(provider.Options{Config: &cfg, DataDir: dataDir, Signer: n.Keys["prov"], Client: c,
			Runtimes: runtimesFor(&cfg), CertFingerprint: e.fp, Logger: logger, Now: o.now})
		if err != nil {
			t.Fatal(err)
		}
		e.d = d
		if ln == nil {
			if ln, err = net.Listen("tcp", addr); err != nil {
				t.Fatal(err)
			}
		}
		srv := &http.Server{Handler: d.Handler(&reqsig.Verifier{}), TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
		go srv.ServeTLS(ln, "", "")
		ln = nil
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		e.stop = func() {
			cancel()
			<-done
			srv.Close()
			d.Close()
			e.stop = func() {}
		}
	}
	if o.beforeStart != nil {
		o.beforeStart(e)
	}
	e.start()
	t.Cleanup(func() { e.stop() })
	e.waitFor(30*time.Second, "provider registered and bonded", func() bool {
		p, err := c.Provider(context.Background(), n.Keys["prov"].Address())
		return err == nil && p.Stake >= p.RequiredStake
	})
	return e
}

func (e *env) waitFor(timeout time.Duration, what string, ok func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tenantClient signs with the named key and pins the provider's certificate.
func (e *env) tenantClient(name string, now func() time.Time) *http.Client {
	hc := certs.PinnedHTTPClient(e.fp, 30*time.Second)
	hc.Transport = &reqsig.Transport{Base: hc.Transport, Key: e.net.Keys[name].Priv, Now: now}
	return hc
}

func job(run string, gpus uint32) (*manifest.Manifest, []byte) {
	m := &manifest.Manifest{Version: manifest.Version, Run: run, Outputs: []string{"out/"},
		Resources: tx.Resources{GPUCount: gpus, GPUModels: []string{"H100"}, CPUMilli: 500, MemoryMiB: 256}, DurationSec: 60}
	b, err := m.Encode()
	if err != nil {
		panic(err)
	}
	return m, b
}

func (e *env) order(tenant string, m *manifest.Manifest, raw []byte, maxPrice uint64) uint64 {
	e.t.Helper()
	res, err := e.c.NewSender(e.net.Keys[tenant]).Send(context.Background(), &tx.CreateOrder{Resources: m.Resources,
		MaxPricePerHour: maxPrice, ManifestHash: manifest.Hash(raw), Deposit: 10 * spr, DurationSec: m.DurationSec})
	if err != nil {
		e.t.Fatal(err)
	}
	id, _ := res.Attr("order.created", "order_id")
	n, _ := strconv.ParseUint(id, 10, 64)
	return n
}

func (e *env) leaseOf(orderID uint64) uint64 {
	e.t.Helper()
	var lease uint64
	e.waitFor(30*time.Second, "the order to be leased", func() bool {
		o, err := e.c.Order(context.Background(), orderID)
		lease = o.LeaseID
		return err == nil && o.State == api.OrderLeased
	})
	return lease
}

func (e *env) do(hc *http.Client, method, path string, body []byte) (int, []byte, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.hostURI+path, bytes.NewReader(body))
	resp, err := hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// TestProviderServesALease: the daemon bids only on what it can serve at its price, wins, receives the manifest,
// runs a process workload with exactly the assigned GPUs visible, completes with a receipt whose root matches the
// outputs, and is paid exactly.
func TestProviderServesALease(t *testing.T) {
	d := newDecisions()
	e := startEnvOpts(t, envOpts{logger: d.logger()})
	ctx := context.Background()
	prov := e.net.Keys["prov"].Address()

	m, raw := job(`echo "gpus=$CUDA_VISIBLE_DEVICES nvidia=$NVIDIA_VISIBLE_DEVICES"; mkdir -p out/sub; echo hello > out/a.txt; echo world > out/sub/b.txt`, 2)
	good := e.order("tenant", m, raw, 10*spr)
	wrongModel := &manifest.Manifest{Version: 1, Run: "true", Resources: tx.Resources{GPUCount: 1, GPUModels: []string{"A100"}, CPUMilli: 500}, DurationSec: 60}
	wrongRaw, _ := wrongModel.Encode()
	badModel := e.order("tenant", wrongModel, wrongRaw, 10*spr)
	tooBig, tooBigRaw := job("true", 9)
	tooMany := e.order("tenant", tooBig, tooBigRaw, 100*spr)
	cheap, cheapRaw := job("true", 2)
	tooCheap := e.order("tenant", cheap, cheapRaw, 3*spr) // our price is 2 SPR per GPU-hour + CPU + memory
	img := &manifest.Manifest{Version: 1, Image: "trainer:1", Resources: tx.Resources{GPUCount: 1, CPUMilli: 500}, DurationSec: 60}
	imgRaw, _ := img.Encode()
	res, err := e.c.NewSender(e.net.Keys["tenant"]).Send(ctx, &tx.CreateOrder{Resources: img.Resources, MaxPricePerHour: 10 * spr,
		ManifestHash: manifest.Hash(imgRaw), Deposit: spr, DurationSec: 60, Constraints: tx.Constraints{Docker: true}})
	if err != nil {
		t.Fatal(err)
	}
	idStr, _ := res.Attr("order.created", "order_id")
	needsDocker, _ := strconv.ParseUint(idStr, 10, 64) // this provider offers no docker runtime

	leaseID := e.leaseOf(good)
	l, _ := e.c.Lease(ctx, leaseID)
	if l.Provider != prov {
		t.Fatalf("lease went to %s", l.Provider)
	}
	wantPrice := 2*2*spr + 500*20_000/1000 + 256*5_000/1024 // GPUs + CPU (0.02 SPR/core-h) + memory (0.005 SPR/GiB-h)
	if l.Price != uint64(wantPrice) {
		t.Fatalf("bid price %d, want %d", l.Price, wantPrice)
	}
	e.waitDecided(d, "not bidding", badModel, tooMany, tooCheap, needsDocker) // then no bid of its can come
	for _, id := range []uint64{badModel, tooMany, tooCheap, needsDocker} {
		bids, err := e.c.Bids(ctx, api.ListRequest{OrderID: id})
		if err != nil || len(bids.Items) != 0 {
			t.Fatalf("order %d: provider bid %v (%v)", id, bids.Items, err)
		}
	}

	tenant := e.tenantClient("tenant", nil)
	// A manifest that does not match the order's hash is refused.
	if code, body, _ := e.do(tenant, "PUT", fmt.Sprintf("/leases/%d/manifest", leaseID), wrongRaw); code != http.StatusBadRequest {
		t.Fatalf("wrong manifest: %d %s", code, body)
	}
	if code, body, _ := e.do(tenant, "PUT", fmt.Sprintf("/leases/%d/manifest", leaseID), raw); code != http.StatusOK {
		t.Fatalf("manifest: %d %s", code, body)
	}
	e.waitFor(30*time.Second, "the lease to complete on the ledger", func() bool {
		l, err := e.c.Lease(ctx, leaseID)
		return err == nil && l.State == api.LeaseCompleted
	})
	l, _ = e.c.Lease(ctx, leaseID)
	if want := l.Price * (l.EndedMs - l.StartedMs) / 3_600_000; l.Paid != want || l.Refunded != l.Deposit-want {
		t.Fatalf("paid %d refunded %d, want %d for %d ms", l.Paid, l.Refunded, want, l.EndedMs-l.StartedMs)
	}
	if l.Receipt == nil || l.Receipt.ExitCode != 0 || l.Receipt.ManifestHash != manifest.Hash(raw) || !l.Receipt.VaultRoot.IsZero() { // no outputs_vault: no Vault root
		t.Fatalf("receipt %+v", l.Receipt)
	}
	pub := e.net.Keys["prov"].PubKey()
	if !ed25519.Verify(pub, l.Receipt.SignBytes(), l.Receipt.Signature) {
		t.Fatal("receipt signature does not verify with the provider's key")
	}

	// Logs: exactly the two assigned GPUs were visible.
	code, logs, _ := e.do(tenant, "GET", fmt.Sprintf("/leases/%d/logs", leaseID), nil)
	if code != 200 || !strings.Contains(string(logs), "gpus=GPU-0,GPU-1 nvidia=GPU-0,GPU-1") {
		t.Fatalf("logs %d: %q", code, logs)
	}
	// Outputs: the tar's files hash to the receipt's root.
	code, tarball, hdr := e.do(tenant, "GET", fmt.Sprintf("/leases/%d/outputs", leaseID), nil)
	if code != 200 || hdr.Get("X-Spare-Output-Root") != l.Receipt.OutputRoot.String() {
		t.Fatalf("outputs %d, root header %q", code, hdr.Get("X-Spare-Output-Root"))
	}
	var files []merkle.File
	tr := tar.NewReader(bytes.NewReader(tarball))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files = append(files, merkle.File{Path: h.Name, SHA256: sha256.Sum256(b), Size: int64(len(b))})
	}
	root, _ := merkle.Root(files)
	if len(files) != 2 || root != l.Receipt.OutputRoot {
		t.Fatalf("outputs %v: root %s, receipt %s", files, root, l.Receipt.OutputRoot)
	}

	// Paid exactly: balance = genesis - stake - fees + what its leases paid it.
	acc, _ := e.c.Account(ctx, prov)
	pv, _ := e.c.Provider(ctx, prov)
	params, _ := e.c.Params(ctx)
	want := 10_000*spr - pv.Stake - acc.Nonce*params.MinFee + (l.Paid - l.Take - l.Burned)
	if acc.Balance != want {
		t.Fatalf("provider balance %d, want %d", acc.Balance, want)
	}
	// Resources are released once the daemon has seen its CompleteLease included.
	e.waitFor(10*time.Second, "the lease's GPUs to be free again", func() bool { return e.d.Capacity().Free().GPUCount() == 8 })
	// `spare provider status` from the ledger: nothing reserved, the earnings of the lease.
	rep, err := provider.StatusFromLedger(ctx, e.c, prov, eightH100())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Earned != l.Paid-l.Take-l.Burned || len(rep.Leases) != 0 || len(rep.OpenBids) != 0 || rep.Reserved.GPUCount != 0 || rep.Offered.GPUCount() != 8 {
		t.Fatalf("status report: %+v", rep)
	}
}

// TestTenantAPIAuth: unsigned, foreign, replayed and stale requests are refused; the liveness challenge is signed.
func TestTenantAPIAuth(t *testing.T) {
	e := startEnv(t)
	m, raw := job("sleep 30", 1)
	leaseID := e.leaseOf(e.order("tenant", m, raw, 10*spr))
	path := fmt.Sprintf("/leases/%d/status", leaseID)
	e.waitFor(10*time.Second, "the daemon to take the lease", func() bool {
		code, _, _ := e.do(e.tenantClient("tenant", nil), "GET", path, nil)
		return code == 200
	})

	unsigned := certs.PinnedHTTPClient(e.fp, 10*time.Second)
	if code, body, _ := e.do(unsigned, "GET", path, nil); code != 401 || !strings.Contains(string(body), `"code":"unsigned"`) {
		t.Fatalf("unsigned: %d %s", code, body)
	}
	if code, body, _ := e.do(e.tenantClient("other", nil), "GET", path, nil); code != 403 {
		t.Fatalf("another tenant: %d %s", code, body)
	}
	if code, body, _ := e.do(e.tenantClient("other", nil), "PUT", fmt.Sprintf("/leases/%d/manifest", leaseID), raw); code != 403 {
		t.Fatalf("another tenant's manifest: %d %s", code, body)
	}
	stale := e.tenantClient("tenant", func() time.Time { return time.Now().Add(-10 * time.Minute) })
	if code, body, _ := e.do(stale, "GET", path, nil); code != 401 || !strings.Contains(string(body), "expired") {
		t.Fatalf("stale: %d %s", code, body)
	}
	// Replay: the same signed request twice.
	req, _ := http.NewRequest("GET", e.hostURI+path, nil)
	if err := reqsig.Sign(req, nil, e.net.Keys["tenant"].Priv, time.Now()); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{200, 401} {
		resp, err := unsigned.Do(req.Clone(context.Background()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("replay attempt %d: %d, want %d", i, resp.StatusCode, want)
		}
	}
	// Wrong certificate pin: refused by the client before anything is sent.
	wrong := certs.PinnedHTTPClient(tx.Hash{1}, 5*time.Second)
	if _, err := wrong.Get(e.hostURI + path); err == nil {
		t.Fatal("a wrong pin connected")
	}
	// Liveness challenge.
	nonce := make([]byte, 16)
	nonce[0] = 7
	body, _ := json.Marshal(provider.ChallengeRequest{Nonce: hex.EncodeToString(nonce)})
	code, out, _ := e.do(unsigned, "POST", "/challenge", body)
	var cr provider.ChallengeResponse
	if code != 200 || json.Unmarshal(out, &cr) != nil || !provider.VerifyChallenge(e.net.Keys["prov"].PubKey(), nonce, cr.Signature) {
		t.Fatalf("challenge: %d %s", code, out)
	}
}

// testLogger shows the daemon's errors (and everything with SPARE_TEST_LOG=1), so a failure says why.
func testLogger() *slog.Logger {
	level := slog.LevelError
	if os.Getenv("SPARE_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// leasesDir is a directory the workloads' users can reach (t.TempDir's parents are private to root).
func leasesDir(t testing.TB) string {
	dir, err := os.MkdirTemp("/tmp", "spare-leases-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (e *env) manifestOK(tenant string, leaseID uint64, raw []byte) {
	e.t.Helper()
	path := fmt.Sprintf("/leases/%d/manifest", leaseID)
	e.waitFor(10*time.Second, "the daemon to accept the manifest", func() bool {
		code, body, _ := e.do(e.tenantClient(tenant, nil), "PUT", path, raw)
		if code != 200 && code != 404 {
			e.t.Fatalf("manifest: %d %s", code, body)
		}
		return code == 200
	})
}

func (e *env) waitLeaseEnded(leaseID uint64) api.LeaseView {
	e.t.Helper()
	var l api.LeaseView
	e.waitFor(60*time.Second, "the lease to end on the ledger", func() bool {
		var err error
		l, err = e.c.Lease(context.Background(), leaseID)
		return err == nil && (l.State == api.LeaseCompleted || l.State == api.LeaseClosed)
	})
	return l
}

// TestDaemonRestartReattaches stops the daemon while a workload runs and starts a new one on the same state: the
// workload is still tracked, its log goes on, and the lease completes and is paid.
func TestDaemonRestartReattaches(t *testing.T) {
	e := startEnv(t)
	m, raw := job(`i=0; while [ $i -lt 25 ]; do i=$((i+1)); echo tick $i; sleep 0.1; done; mkdir -p out; echo done > out/r.txt`, 1)
	leaseID := e.leaseOf(e.order("tenant", m, raw, 10*spr))
	e.manifestOK("tenant", leaseID, raw)
	logPath := fmt.Sprintf("/leases/%d/logs", leaseID)
	e.waitFor(10*time.Second, "the workload's first lines", func() bool {
		_, logs, _ := e.do(e.tenantClient("tenant", nil), "GET", logPath, nil)
		return strings.Contains(string(logs), "tick 3\n")
	})
	e.stop() // the daemon goes away; the workload does not
	time.Sleep(300 * time.Millisecond)
	e.start()
	l := e.waitLeaseEnded(leaseID)
	if l.State != api.LeaseCompleted || l.Receipt == nil || l.Receipt.ExitCode != 0 {
		t.Fatalf("lease after restart: %+v", l)
	}
	if want := l.Price * (l.EndedMs - l.StartedMs) / 3_600_000; l.Paid != want {
		t.Fatalf("paid %d, want %d", l.Paid, want)
	}
	_, logs, _ := e.do(e.tenantClient("tenant", nil), "GET", logPath, nil)
	for i := 1; i <= 25; i++ {
		if !strings.Contains(string(logs), fmt.Sprintf("tick %d\n", i)) {
			t.Fatalf("log lost line %d across the restart:\n%s", i, logs)
		}
	}
}

// TestMemoryLimitKillsAndProviderBidsAgain: a workload allocating past its memory limit is stopped and reported
// in the receipt; the daemon keeps running and bids on the next order. The workload also cannot read a file
// private to the daemon (as root, workloads run as their own users).
func TestMemoryLimitKillsAndProviderBidsAgain(t *testing.T) {
	e := startEnv(t)
	secret := e.t.TempDir() + "/provider-key"
	if err := os.WriteFile(secret, []byte("not for tenants"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := `cat ` + secret + `; echo "cat=$?"; tail /dev/zero; echo "tail=$?"; exit 3`
	m := &manifest.Manifest{Version: 1, Run: run, Resources: tx.Resources{CPUMilli: 500, MemoryMiB: 64}, DurationSec: 60}
	raw, _ := m.Encode()
	leaseID := e.leaseOf(e.order("tenant", m, raw, 10*spr))
	e.manifestOK("tenant", leaseID, raw)
	l := e.waitLeaseEnded(leaseID)
	if l.State != api.LeaseCompleted || l.Receipt == nil || l.Receipt.ExitCode != 3 {
		t.Fatalf("lease: %+v", l)
	}
	code, st, _ := e.do(e.tenantClient("tenant", nil), "GET", fmt.Sprintf("/leases/%d/status", leaseID), nil)
	var status provider.Status
	if code != 200 || json.Unmarshal(st, &status) != nil || status.Result == nil || !status.Result.OOMKilled {
		t.Fatalf("status %d: %s", code, st)
	}
	_, logs, _ := e.do(e.tenantClient("tenant", nil), "GET", fmt.Sprintf("/leases/%d/logs", leaseID), nil)
	if os.Geteuid() == 0 && (strings.Contains(string(logs), "not for tenants") || !strings.Contains(string(logs), "cat=1")) {
		t.Fatalf("the workload read the daemon's private file:\n%s", logs)
	}
	// The daemon is still serving: it wins the next order too.
	m2, raw2 := job("echo again", 1)
	if next := e.leaseOf(e.order("tenant", m2, raw2, 10*spr)); next == 0 {
		t.Fatal("no lease for the next order")
	}
}

// testProcessConfig gives this test process its own range of lease uids, so that tests of other packages running
// at the same time (with lease ids starting at 1 too) never share a uid with ours.
var testProcessConfig = process.Config{UIDBase: 1_500_000_000 + uint32(os.Getpid()%1000)*100_000, UIDRange: 100_000} // below 2³¹ for Docker

// TestNoManifestClosesLease: a won lease whose manifest never comes is closed by the provider, the tenant is
// refunded in full, and the provider's record shows no failure (it never started).
func TestNoManifestClosesLease(t *testing.T) {
	e := startEnvWith(t, func(c *provider.Config) { c.Limits.ManifestTimeout = provider.Duration{Duration: time.Second} })
	m, raw := job("true", 1)
	leaseID := e.leaseOf(e.order("tenant", m, raw, 10*spr))
	l := e.waitLeaseEnded(leaseID)
	if l.State != api.LeaseClosed || l.Refunded != l.Deposit || l.Paid != 0 || !strings.Contains(l.CloseReason, "no manifest") {
		t.Fatalf("lease %+v", l)
	}
	pv, _ := e.c.Provider(context.Background(), e.net.Keys["prov"].Address())
	if pv.Failed != 0 {
		t.Fatalf("provider failures %d", pv.Failed)
	}
	e.waitFor(10*time.Second, "the lease's GPU to be free again", func() bool { return e.d.Capacity().Free().GPUCount() == 8 })
}

func runtimesFor(cfg *provider.Config) map[string]runtime.Runtime {
	rts := map[string]runtime.Runtime{"process": process.New(testProcessConfig)}
	if cfg.Docker {
		rts["docker"] = &docker.Runtime{Images: cfg.DockerImages, UIDBase: testProcessConfig.UIDBase, UIDRange: testProcessConfig.UIDRange,
			Scope: fmt.Sprint("t", testProcessConfig.UIDBase)} // apart from other test processes' lease 1
	}
	return rts
}

// TestInputsFetchedAndChecked: an input is downloaded into the job's directory and checked against its SHA-256;
// a manifest whose input does not match is refused.
func TestInputsFetchedAndChecked(t *testing.T) {
	data := []byte("labels,1,2,3\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	defer srv.Close()
	e := startEnvWith(t, func(c *provider.Config) { c.Inputs.AllowPrivate = true }) // the input server is on 127.0.0.1
	for _, tc := range []struct {
		name string
		sum  tx.Hash
		ok   bool
	}{{"matching", sha256.Sum256(data), true}, {"swapped", sha256.Sum256([]byte("other")), false}} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := job("cat data/labels.csv", 1)
			m.Inputs = []manifest.Input{{URL: srv.URL + "/labels.csv", SHA256: tc.sum, Path: "data/labels.csv"}}
			raw, _ := m.Encode()
			leaseID := e.leaseOf(e.order("tenant", m, raw, 10*spr))
			e.waitFor(10*time.Second, "the daemon to take the lease", func() bool {
				code, _, _ := e.do(e.tenantClient("tenant", nil), "GET", fmt.Sprintf("/leases/%d/status", leaseID), nil)
				return code == 200
			})
			code, body, _ := e.do(e.tenantClient("tenant", nil), "PUT", fmt.Sprintf("/leases/%d/manifest", leaseID), raw)
			if !tc.ok {
				if code != 400 || !strings.Contains(string(body), "sha256") {
					t.Fatalf("mismatching input: %d %s", code, body)
				}
				return
			}
			if code != 200 {
				t.Fatalf("manifest: %d %s", code, body)
			}
			e.waitLeaseEnded(leaseID)
			_, logs, _ := e.do(e.tenantClient("tenant", nil), "GET", fmt.Sprintf("/leases/%d/logs", leaseID), nil)
			if string(logs) != string(data) {
				t.Fatalf("workload read %q", logs)
			}
		})
	}
}

// TestInstantExitCompletes: a job that exits before its LeaseStarted is in a block still completes with a
// receipt (the provider starts the lease first), rather than being taken for ended and left to run out its
// duration on the ledger. The LeaseStarted that follows each start is held back to make that order certain;
// several leases run at once so that their transactions interleave.
func TestInstantExitCompletes(t *testing.T) {
	defer provider.SetLeaseStartedDelay(3 * time.Second)()
	e := startEnv(t)
	const n = 4
	ids := make([]uint64, n)
	raws := make([][]byte, n)
	for i := range ids {
		m, raw := job(fmt.Sprintf("exit %d", i), 1)
		ids[i], raws[i] = e.order("tenant", m, raw, 10*spr), raw
	}
	for i := range ids {
		ids[i] = e.leaseOf(ids[i])
	}
	for i, id := range ids {
		e.manifestOK("tenant", id, raws[i])
	}
	for i, id := range ids {
		l := e.waitLeaseEnded(id)
		if l.State != api.LeaseCompleted || l.Receipt == nil || l.Receipt.ExitCode != int64(i) {
			t.Fatalf("lease %d: %+v", id, l)
		}
	}
}

// TestBusyProviderBidsOnceFree: an order that arrives while the provider is at max_leases gets no bid then; once
// the running lease ends and its capacity is released, the provider considers the order again, bids, and (the
// auction window long past) wins it at once.
func TestBusyProviderBidsOnceFree(t *testing.T) {
	d := newDecisions()
	e := startEnvOpts(t, envOpts{logger: d.logger(), mutate: func(c *provider.Config) { c.Limits.MaxLeases = 1 }})
	m1, raw1 := job("sleep 2", 1)
	first := e.leaseOf(e.order("tenant", m1, raw1, 10*spr))
	e.manifestOK("tenant", first, raw1)
	m2, raw2 := job("echo second", 1)
	second := e.order("tenant", m2, raw2, 10*spr)
	e.waitDecided(d, "not bidding for now: at max_leases", second)
	if bids, err := e.c.Bids(context.Background(), api.ListRequest{OrderID: second}); err != nil || len(bids.Items) != 0 {
		t.Fatalf("bids while busy: %+v %v", bids.Items, err)
	}
	if l := e.waitLeaseEnded(first); l.State != api.LeaseCompleted {
		t.Fatalf("first lease: %+v", l)
	}
	if e.leaseOf(second) == 0 {
		t.Fatal("the second order was not leased once the provider was free")
	}
}
