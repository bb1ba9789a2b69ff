package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/provider"
)

// TestOffersStorage: a provider whose provider.toml has a [storage] section offers that disk on the ledger when
// its daemon starts, and `spare offers --storage` lists it, in JSON and as a table.
func TestOffersStorage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node and a provider")
	}
	var vault string
	m := newProcMarket(t, marketOpts{config: func(c *provider.Config) {
		vault = filepath.Join(filepath.Dir(c.LeasesDir), filepath.Base(c.LeasesDir)+"-vault")
		c.Storage = provider.StorageConfig{CapacityGiB: 1, Path: vault, PricePerGiBMonth: "0.002"}
	}})
	t.Cleanup(func() { os.RemoveAll(vault) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m.wait(ctx, 60*time.Second, "the storage offer", func() bool {
		_, err := m.c.StorageOffer(ctx, m.provider.Address())
		return err == nil
	})
	out := crashRun(t, m.bin, append(m.kb, "offers", "--storage", "-o", "json")...)
	var res storageOffersResult
	if err := json.Unmarshal(out, &res); err != nil || len(res.StorageOffers) != 1 {
		t.Fatalf("offers --storage -o json: %v\n%s", err, out)
	}
	o := res.StorageOffers[0]
	if o.Provider != m.provider.Address() || o.CapacityBytes != 1<<30 || o.PricePerGiBMonth != 2_000 || o.Region != "eu-west" || o.Status.String() != "active" {
		t.Fatalf("offer %+v", o)
	}
	text := string(crashRun(t, m.bin, append(m.kb, "offers", "--storage")...))
	for _, want := range []string{"PRICE/GIB-MONTH", m.provider.Address().String(), "1GiB", "0.002", "1 storage offer(s), 1GiB free in all"} {
		if !strings.Contains(text, want) {
			t.Errorf("offers --storage does not say %q:\n%s", want, text)
		}
	}
}
