package tenant_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/tenant"
)

// TestFollowLogsResumeChecksOffset: a provider cuts the log stream after two lines, then answers the resumed
// stream. An honest one answers from the byte asked for (and says so): every line once. A hostile or broken one
// answers from the start again, or without saying where it starts: nothing of its answer is shown (the lines
// would appear twice) and the stream ends with an error that names the offsets and how to read the whole log.
func TestFollowLogsResumeChecksOffset(t *testing.T) {
	const first = "line 1\nline 2\n"
	for _, tc := range []struct {
		name    string
		resumed func(w http.ResponseWriter, offset string)
		want    string
		wantErr string
	}{
		{"honest", func(w http.ResponseWriter, offset string) {
			w.Header().Set("Spare-Log-Offset", offset)
			fmt.Fprint(w, "line 3\n")
		}, first + "line 3\n", ""},
		{"from the start again", func(w http.ResponseWriter, _ string) {
			w.Header().Set("Spare-Log-Offset", "0")
			fmt.Fprint(w, first+"line 3\n")
		}, first, `resumed at byte 14 from byte "0"`},
		{"says nothing", func(w http.ResponseWriter, _ string) {
			fmt.Fprint(w, first+"line 3\n")
		}, first, "resumed at byte 14 without saying from which byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			mux := http.NewServeMux()
			mux.HandleFunc("GET /leases/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					w.Header().Set("Spare-Log-Offset", "0")
					fmt.Fprint(w, first) // and the stream is cut
					return
				}
				if got := r.URL.Query().Get("offset"); got != "14" {
					t.Errorf("resumed at offset %q, want 14", got)
				}
				tc.resumed(w, r.URL.Query().Get("offset"))
			})
			mux.HandleFunc("GET /leases/{id}/status", func(w http.ResponseWriter, r *http.Request) {
				if calls.Load() >= 2 {
					fmt.Fprint(w, `{"state": "done"}`)
					return
				}
				fmt.Fprint(w, `{"state": "running"}`)
			})
			srv := httptest.NewTLSServer(mux)
			t.Cleanup(srv.Close)
			prov := fakeKey{ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))}.Address()
			tenantKey := fakeKey{ed25519.NewKeyFromSeed(make([]byte, 32))}
			f := newFakeChain(t)
			f.mu.Lock()
			f.providers[prov] = api.ProviderView{Provider: api.Provider{Owner: prov,
				Info: tx.ProviderInfo{HostURI: srv.URL, CertFingerprint: certs.Fingerprint(srv.Certificate().Raw)}}}
			f.leases[1] = api.LeaseView{Lease: api.Lease{ID: 1, OrderID: 1, Provider: prov, Tenant: tenantKey.Address(), State: api.LeaseActive}}
			f.mu.Unlock()
			tn := tenant.NewWith(f, f, tenantKey, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var out bytes.Buffer
			cuts := 0
			err := tn.FollowLogs(ctx, 1, &out, func(error, int64) { cuts++ })
			if out.String() != tc.want || cuts != 1 {
				t.Fatalf("shown %q after %d cuts, want %q after 1", out.String(), cuts, tc.want)
			}
			var oe *tenant.LogOffsetError
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr != "" && (!errors.As(err, &oe) || !bytes.Contains([]byte(err.Error()), []byte(tc.wantErr))):
				t.Fatalf("err %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}
