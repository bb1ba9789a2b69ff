package provider

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

func script(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "price.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPricing(t *testing.T) {
	order := &api.Order{ID: 7, Resources: tx.Resources{GPUCount: 2, CPUMilli: 2000, MemoryMiB: 2048}, MaxPricePerHour: 10_000_000}
	gpus := []GPUConfig{{UUID: "GPU-0", Model: "H100"}, {UUID: "GPU-1", Model: "H100"}}
	for _, tc := range []struct {
		name   string
		prices Prices
		want   uint64
		ok     bool
		errHas string
	}{
		{"table", Prices{GPUHour: map[string]string{"h100": "2"}, CPUHour: "0.5", MemoryGiBHour: "0.1"}, 2*2_000_000 + 1_000_000 + 200_000, true, ""},
		{"unknown model, no default", Prices{GPUHour: map[string]string{"A100": "1"}, CPUHour: "0", MemoryGiBHour: "0"}, 0, false, ""},
		{"default for unknown model", Prices{DefaultGPUHour: "1.5", CPUHour: "0", MemoryGiBHour: "0"}, 3_000_000, true, ""},
		// The script sees the order on stdin: price it by its GPU count.
		{"script", Prices{Script: script(t, `grep -q '"gpu_count":2' && echo 3.25`), ScriptTimeout: Duration{5 * time.Second}}, 3_250_000, true, ""},
		{"script declines", Prices{Script: script(t, `echo none`), ScriptTimeout: Duration{5 * time.Second}}, 0, false, ""},
		{"script garbage", Prices{Script: script(t, `echo lots`), ScriptTimeout: Duration{5 * time.Second}}, 0, false, "want a positive price"},
		{"script fails", Prices{Script: script(t, `echo boom >&2; exit 2`), ScriptTimeout: Duration{5 * time.Second}}, 0, false, "boom"},
		{"script too slow", Prices{Script: script(t, `exec sleep 5`), ScriptTimeout: Duration{200 * time.Millisecond}}, 0, false, "no answer within"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Daemon{cfg: &Config{Prices: tc.prices}}
			got, ok, err := d.price(context.Background(), order, gpus)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err %v, want it to mention %q", err, tc.errHas)
				}
				return
			}
			if err != nil || ok != tc.ok || got != tc.want {
				t.Fatalf("price = %d, %v, %v; want %d, %v", got, ok, err, tc.want, tc.ok)
			}
		})
	}
}

func TestCapacityReservations(t *testing.T) {
	hw := HardwareConfig{CPUCores: 4, MemoryMiB: 8192, DiskMiB: 1000}
	for i, m := range []string{"H100", "H100", "A100", "H100"} {
		hw.GPUs = append(hw.GPUs, GPUConfig{Index: i, UUID: "GPU-" + string(rune('0'+i)), Model: m, MemoryMiB: 81559})
	}
	c := NewCapacity(hw)
	r, gpus, err := c.Reserve(1, tx.Resources{GPUCount: 2, GPUModels: []string{"H100"}, CPUMilli: 1000, MemoryMiB: 1024})
	if err != nil || len(gpus) != 2 || gpus[0].UUID != "GPU-0" || gpus[1].UUID != "GPU-1" {
		t.Fatalf("reserve: %v %v %v", r, gpus, err)
	}
	// The only H100 left is GPU-3: a second order for two H100s cannot be served, for one it can.
	if _, _, err := c.Reserve(2, tx.Resources{GPUCount: 2, GPUModels: []string{"H100"}}); err == nil {
		t.Fatal("reserved a GPU twice")
	}
	if _, g, err := c.Reserve(3, tx.Resources{GPUCount: 1, GPUModels: []string{"H100"}, CPUMilli: 3000}); err != nil || g[0].UUID != "GPU-3" {
		t.Fatalf("third: %v %v", g, err)
	}
	if _, _, err := c.Reserve(4, tx.Resources{CPUMilli: 1}); err == nil {
		t.Fatal("CPU over-committed")
	}
	c.ReleaseOrder(3) // lost
	if _, ok := c.Promote(1, 10); !ok {
		t.Fatal("promote")
	}
	if free := c.Free(); free.GPUCount() != 2 || free.CPUMilli != 3000 {
		t.Fatalf("free %+v", free)
	}
	c.ReleaseLease(10)
	if free := c.Free(); free.GPUCount() != 4 || free.CPUMilli != 4000 || free.MemoryMiB != 8192 {
		t.Fatalf("free after release %+v", free)
	}
}
