package devnet

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/inventory"
)

func runUntilReady(t *testing.T, o Options) (Info, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Info, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o, func(i Info) { ready <- i }) }()
	select {
	case info := <-ready:
		return info, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("stop: %v", err)
			}
		}
	case err := <-done:
		t.Fatalf("spare dev: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("not ready")
	}
	cancel()
	return Info{}, nil
}

// TestResumeAndReset: stopping and starting again resumes the same chain (same keys, height goes on); --reset
// starts a new one.
func TestResumeAndReset(t *testing.T) {
	home := filepath.Join(t.TempDir(), "dev")
	o := Options{Home: home, NoDocker: true, BlockTime: 100 * time.Millisecond}
	first, stop := runUntilReady(t, o)
	c, _ := client.New(first.RPC, client.Options{})
	st, err := c.NodeStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h1 := st.SyncInfo.LatestBlockHeight
	// A dev provider offers 1 GiB of its home's disk to Spare Vault, with its registration.
	if _, free, err := inventory.DiskSpace(home); err == nil && free >= 4<<10 {
		o, err := c.StorageOffer(context.Background(), first.Provider)
		if err != nil || o.CapacityBytes != 1<<30 || o.PricePerGiBMonth != 1_000 {
			t.Fatalf("the dev provider's storage offer: %+v, %v", o, err)
		}
	}
	stop()
	if first.Resumed {
		t.Fatal("a new home reported resumed")
	}
	cc, err := LoadClientConfig(home)
	if err != nil || cc.KeyringBackend != "test" || cc.Key != "tenant" || cc.Node != first.RPC {
		t.Fatalf("client config %+v %v", cc, err)
	}

	second, stop := runUntilReady(t, o)
	c, _ = client.New(second.RPC, client.Options{})
	st, err = c.NodeStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !second.Resumed || second.Tenant != first.Tenant || second.Provider != first.Provider || st.SyncInfo.LatestBlockHeight < h1 {
		t.Fatalf("resume: %+v at height %d (was %d)", second, st.SyncInfo.LatestBlockHeight, h1)
	}
	stop()

	o.Reset = true
	third, stop := runUntilReady(t, o)
	defer stop()
	if third.Resumed || third.Tenant == first.Tenant {
		t.Fatalf("reset kept the old chain: %+v", third)
	}
}
