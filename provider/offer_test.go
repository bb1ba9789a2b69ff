package provider

import (
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/offers"
	"github.com/sparenet/spare/runtime"
)

type offerSigner struct{ priv ed25519.PrivateKey }

func newOfferSigner() offerSigner               { return offerSigner{ed25519.NewKeyFromSeed(make([]byte, 32))} }
func (s offerSigner) Address() tx.Address       { return tx.AddressOf(s.PubKey()) }
func (s offerSigner) PubKey() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }
func (s offerSigner) Sign(msg []byte) []byte    { return ed25519.Sign(s.priv, msg) }

// offerDocker stands for the docker runtime: GET /offer only looks at whether one is configured.
type offerDocker struct{ runtime.Runtime }

// getOfferJSON calls the handler and decodes its answer strictly.
func getOfferJSON(t *testing.T, d *Daemon) offers.Offer {
	t.Helper()
	rec := httptest.NewRecorder()
	d.getOffer(rec, httptest.NewRequest(http.MethodGet, "/offer", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /offer: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	var o offers.Offer
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		t.Fatal(err)
	}
	return o
}

func offerDaemon(prices Prices, docker bool) *Daemon {
	hw := HardwareConfig{CPUCores: 16, MemoryMiB: 64 << 10, DiskMiB: 500 << 10}
	for i, m := range []string{"H100", "H100", "A100", "H100"} {
		hw.GPUs = append(hw.GPUs, GPUConfig{Index: i, UUID: "GPU-" + string(rune('0'+i)), Model: m, MemoryMiB: 81559})
	}
	d := &Daemon{cfg: &Config{Region: "eu-west", Zone: "b", Prices: prices, Limits: Limits{MaxLeases: 2}},
		signer: newOfferSigner(), capacity: NewCapacity(hw), runtimes: map[string]runtime.Runtime{}}
	if docker {
		d.runtimes["docker"] = offerDocker{}
	}
	return d
}

func TestOffer(t *testing.T) {
	d := offerDaemon(Prices{GPUHour: map[string]string{"H100": "2.5", "a100": "1.25spr"}, DefaultGPUHour: "0",
		CPUHour: "0.02", MemoryGiBHour: "500uspr"}, true)
	o := getOfferJSON(t, d)
	want := offers.Offer{Provider: d.Address(), Region: "eu-west", Zone: "b", Docker: true,
		Free: tx.Hardware{GPUs: []tx.GPUGroup{{Model: "A100", VRAMMiB: 81559, Count: 1}, {Model: "H100", VRAMMiB: 81559, Count: 3}},
			CPUMilli: 16_000, MemoryMiB: 64 << 10, DiskMiB: 500 << 10},
		// A default of "0" is published as 1 uspr: 0 means no default.
		Prices: offers.Prices{GPUHour: map[string]uint64{"H100": 2_500_000, "a100": 1_250_000}, DefaultGPUHour: 1,
			CPUHour: 20_000, MemoryGiBHour: 500}}
	if b, w := mustJSON(t, o), mustJSON(t, want); b != w {
		t.Fatalf("offer\n got %s\nwant %s", b, w)
	}
	// The table prices the A100 under its configured spelling.
	if v, ok := o.Prices.GPU("A100"); !ok || v != 1_250_000 {
		t.Fatalf("A100 price %d %v", v, ok)
	}

	// Free is what open bids and leases leave: a bid holds two H100s and 4 cores, a lease the A100.
	if _, _, err := d.capacity.Reserve(1, tx.Resources{GPUCount: 2, GPUModels: []string{"H100"}, CPUMilli: 4000, MemoryMiB: 1024}); err != nil {
		t.Fatal(err)
	}
	d.capacity.Restore(leaseKey(9), Reservation{GPUs: []string{"GPU-2"}, CPUMilli: 2000})
	o = getOfferJSON(t, d)
	if o.Free.GPUCount() != 1 || o.Free.GPUs[0].Model != "H100" || o.Free.CPUMilli != 10_000 || o.Free.MemoryMiB != 63<<10 {
		t.Fatalf("free after reservations: %+v", o.Free)
	}

	// At max_leases the daemon bids on nothing: nothing is free.
	d.capacity.Restore(leaseKey(10), Reservation{CPUMilli: 1000})
	o = getOfferJSON(t, d)
	if o.Free.GPUCount() != 0 || o.Free.CPUMilli != 0 || o.Free.MemoryMiB != 0 || o.Free.DiskMiB != 0 {
		t.Fatalf("free at max_leases: %+v", o.Free)
	}
}

func TestOfferScriptAndNoDefault(t *testing.T) {
	d := offerDaemon(Prices{GPUHour: map[string]string{}, CPUHour: "0.01", MemoryGiBHour: "0", Script: "/bin/price"}, false)
	o := getOfferJSON(t, d)
	if !o.Script || o.Docker || o.Prices.DefaultGPUHour != 0 || len(o.Prices.GPUHour) != 0 || o.Prices.CPUHour != 10_000 {
		t.Fatalf("offer %+v", o)
	}
	if _, ok := o.Prices.GPU("H100"); ok {
		t.Fatal("H100 priced without an entry or a default")
	}
	// The JSON names the fields `spare offers` reads.
	rec := httptest.NewRecorder()
	d.getOffer(rec, httptest.NewRequest(http.MethodGet, "/offer", nil))
	for _, k := range []string{`"provider":"spare1`, `"free":{`, `"prices":{"gpu_hour":{}`, `"default_gpu_hour":0`, `"script":true`, `"region":"eu-west"`} {
		if !strings.Contains(rec.Body.String(), k) {
			t.Errorf("body %s lacks %s", rec.Body, k)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
