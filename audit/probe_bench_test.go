package audit_test

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sparenet/spare/audit"
	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/internal/localnet"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/liveness"
)

// BenchmarkProbe is one liveness challenge as the auditor makes it (issue 14 made them five per provider per
// epoch): the provider's record read from a node (an in-process validator over HTTP RPC), a pinned TLS
// connection to the provider (a full handshake, or one resuming an earlier session), a nonce signed by the
// provider and checked. Sub-benchmarks: as before (the record read and a full handshake each probe), with
// resumption, and with the record read once for the epoch's probes (what probeEpoch does). The provider is a TLS server on
// loopback in the same process. Besides ns/op it reports the process's CPU per challenge (auditor, provider and
// node together: an upper bound of the auditor's share) and what an epoch of 5 challenges per provider costs at
// 10,000 providers on the default 30 s epoch, as a share of one core.
func BenchmarkProbe(b *testing.B) {
	const spr = api.USPR
	n, err := localnet.Start(b.TempDir(), localnet.Options{Funded: map[string]uint64{"prov": 10_000 * spr, "aud": spr}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(n.Stop)
	c, err := n.Client(0)
	if err != nil {
		b.Fatal(err)
	}
	key := n.Keys["prov"]
	var resumed atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && r.TLS.DidResume {
			resumed.Add(1)
		}
		var req liveness.Request
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		nonce, err := hex.DecodeString(func() string { _ = json.Unmarshal(body, &req); return req.Nonce }())
		if err != nil {
			http.Error(w, "bad nonce", http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(liveness.Response{Provider: key.Address(), PubKey: key.PubKey(), Signature: key.Sign(liveness.SignBytes(nonce))})
	}))
	// The provider's certificate as `spare provider init` makes it (certs.Generate: ECDSA P-256), not httptest's
	// RSA one, whose signature would be most of the handshake.
	certPEM, keyPEM, err := certs.Generate([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		b.Fatal(err)
	}
	fp, _ := certs.FingerprintPEM(certPEM)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	b.Cleanup(srv.Close)
	ctx := context.Background()
	params, err := c.Params(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.NewSender(key).Send(ctx, &tx.RegisterProvider{ProviderInfo: tx.ProviderInfo{HostURI: srv.URL,
		CertFingerprint: fp, Region: "eu",
		Hardware: tx.Hardware{CPUMilli: 4000, MemoryMiB: 8192, DiskMiB: 10000}}}, &tx.Bond{Amount: params.RequiredStake(0)}); err != nil {
		b.Fatal(err)
	}
	a := audit.NewAuditor(c, n.Keys["aud"], slog.New(slog.DiscardHandler))
	a.Timeout = 5 * time.Second
	if err := a.Probe(ctx, key.Address()); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		probe func() error
	}{
		{"record read each probe, full handshakes (before)", func() func() error {
			full := audit.NewAuditor(c, n.Keys["aud"], slog.New(slog.DiscardHandler))
			full.NoResumption()
			return func() error { return full.Probe(ctx, key.Address()) }
		}()},
		{"record read each probe", func() error { return a.Probe(ctx, key.Address()) }},
		{"record read once an epoch", func() func() error {
			var view atomic.Pointer[api.ProviderView]
			return func() error { return a.ProbeCached(ctx, key.Address(), &view, a.Timeout) }
		}()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var before, after syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			for b.Loop() {
				if err := bc.probe(); err != nil {
					b.Fatal(err)
				}
			}
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) / time.Duration(b.N)
			b.ReportMetric(float64(cpu)/float64(time.Millisecond), "cpu-ms/op")
			// 10,000 providers × 5 challenges in a 30 s epoch, at this CPU per challenge: cores kept busy.
			b.ReportMetric(float64(cpu)*10_000*audit.DefaultProbes/float64(30*time.Second), "cores@10k")
			b.ReportMetric(float64(resumed.Swap(0))/float64(b.N), "resumed/op")
		})
	}
}
