package provider_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/provider"
)

func TestStorageConfigOffer(t *testing.T) {
	abs := t.TempDir()
	for _, tc := range []struct {
		name string
		s    provider.StorageConfig
		want string // error text; "" = accepted
	}{
		{"none", provider.StorageConfig{}, ""},
		{"offered", provider.StorageConfig{CapacityGiB: 100, Path: abs, PricePerGiBMonth: "0.002"}, ""},
		{"relative path", provider.StorageConfig{CapacityGiB: 100, Path: "vault", PricePerGiBMonth: "0.002"}, "an absolute directory"},
		{"no price", provider.StorageConfig{CapacityGiB: 100, Path: abs}, "storage.price_per_gib_month"},
		{"price 0", provider.StorageConfig{CapacityGiB: 100, Path: abs, PricePerGiBMonth: "0"}, "from 0.000001"},
		{"price past the bound", provider.StorageConfig{CapacityGiB: 100, Path: abs, PricePerGiBMonth: "1001"}, "from 0.000001 to 1000"},
		{"over 1 PiB", provider.StorageConfig{CapacityGiB: 1<<20 + 1, Path: abs, PricePerGiBMonth: "1"}, "at most 1048576"},
	} {
		m, err := tc.s.Offer()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			} else if m.ValidateBasic() != nil || m.CapacityBytes != tc.s.CapacityGiB<<30 {
				t.Errorf("%s: %+v does not state the config", tc.name, m)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

// TestStorageOfferFollowsConfig: the daemon offers its configured disk on the ledger at start, in its
// registration's transaction, changes it when the config changes, and withdraws it when the config offers none;
// a config offering more than the disk has free does not start.
func TestStorageOfferFollowsConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	storage := provider.StorageConfig{CapacityGiB: 1, Path: dir, PricePerGiBMonth: "0.002"}
	var base *provider.Config
	e := startEnvWith(t, func(c *provider.Config) { c.Storage, base = storage, c })
	ctx := context.Background()
	me := e.net.Keys["prov"].Address()
	o, err := e.c.StorageOffer(ctx, me)
	if err != nil || o.CapacityBytes != 1<<30 || o.PricePerGiBMonth != 2_000 || o.Region != "eu-west" {
		t.Fatalf("offer %+v, %v", o, err)
	}
	restart := func(s provider.StorageConfig) error {
		e.stop()
		cfg := *base
		cfg.Storage = s
		d, err := provider.New(provider.Options{Config: &cfg, DataDir: t.TempDir(), Signer: e.net.Keys["prov"], Client: e.c, Runtimes: runtimesFor(&cfg), CertFingerprint: e.fp, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return d.Register(ctx)
	}
	storage.PricePerGiBMonth = "0.003"
	if err := restart(storage); err != nil {
		t.Fatal(err)
	}
	if o, err = e.c.StorageOffer(ctx, me); err != nil || o.PricePerGiBMonth != 3_000 {
		t.Fatalf("after a price change: %+v, %v", o, err)
	}
	huge := storage
	huge.CapacityGiB = 1 << 20 // 1 PiB: no test disk has it free
	if err := restart(huge); err == nil || !strings.Contains(err.Error(), "GiB free") {
		t.Fatalf("offering more than the disk has: %v", err)
	}
	if err := restart(provider.StorageConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.StorageOffer(ctx, me); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("after the config withdrew it: %v", err)
	}
}
