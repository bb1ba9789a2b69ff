package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// pairWealth is what a provider and its sock puppet hold together at one height: balances, the provider's stake
// (bonded and unbonding) and the rewards it is owed.
type pairWealth struct {
	height int64
	total  uint64
	earned uint64 // the provider's rewards earned in all
}

func readPairWealth(t *testing.T, ctx context.Context, c *client.Client, prov, sock tx.Address) pairWealth {
	t.Helper()
	for range 50 { // every read at one height: a block between them would mix two states
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pa, err1 := c.Account(ctx, prov)
		sa, err2 := c.Account(ctx, sock)
		p, err3 := c.Provider(ctx, prov)
		st2, err4 := c.Status(ctx)
		for _, err := range []error{err1, err2, err3, err4} {
			if err != nil {
				t.Fatal(err)
			}
		}
		if st2.Height == st.Height {
			return pairWealth{height: st.Height, total: pa.Balance + sa.Balance + p.Stake + p.Unbonding + p.RewardsOwed, earned: p.RewardsEarned}
		}
	}
	t.Fatal("no two reads at one height in 50 tries")
	return pairWealth{}
}

// TestWashTradeOnDev plays the wash trade on spare dev: the dev provider funds a sock-puppet tenant, which rents
// that provider (the only one) for several epochs with jobs that run across them. Whatever the rewards paid
// meanwhile, the trade itself loses: the pair's balances, stake and owed rewards rise by less than the
// availability rewards the provider earned over the same blocks (which it earns without the trade too — the
// trade's leased cores only lower them) — that is, the work rewards its burns earned, each at most half the
// burn, never make up for the take, the burn and the fees. On dev the epoch's work share (about 7 SPR) dwarfs the
// trade's burns: a pro-rata work reward without the cap would pay the trade many times over and fail this test.
func TestWashTradeOnDev(t *testing.T) {
	home := filepath.Join(t.TempDir(), "dev")
	info := startDevnet(t, home)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := client.New(info.RPC, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "--home", home, "--keyring-backend", "test", "keys", "add", "sock", "-o", "json"); err != nil {
		t.Fatalf("keys add: %v\n%s", err, out)
	}
	var sock struct {
		Address tx.Address `json:"address"`
	}
	out, err := run(t, "--home", home, "--keyring-backend", "test", "keys", "show", "sock", "-o", "json")
	if err := json.Unmarshal([]byte(out), &sock); err != nil {
		t.Fatalf("keys show: %v\n%s", err, out)
	}
	em, err := c.Emission(ctx)
	if err != nil || !em.On {
		t.Fatalf("spare dev runs without rewards: %+v %v", em, err)
	}

	// Wait for the provider to earn availability rewards at all (its proof of GPU passed, found up).
	for {
		if p, err := c.Provider(ctx, info.Provider); err == nil && p.RewardsEarned > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the dev provider earned no rewards")
		case <-time.After(500 * time.Millisecond):
		}
	}
	start := readPairWealth(t, ctx, c, info.Provider, sock.Address)
	if out, err := run(t, "--home", home, "--yes", "send", "provider", sock.Address.String(), "2", "-o", "json"); err != nil {
		t.Fatalf("send: %v\n%s", err, out)
	}
	job := filepath.Join(t.TempDir(), "wash.yaml")
	// 12 s of a core: across two dev epochs (5 s each at 100 ms blocks).
	if err := os.WriteFile(job, []byte("name: wash\nrun: sleep 12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var leases []uint64
	for range 2 {
		out, err := run(t, "--home", home, "deploy", job, "--from", "sock", "--outputs", filepath.Join(t.TempDir(), "outputs"), "-o", "json")
		if err != nil {
			t.Fatalf("deploy: %v\n%s", err, out)
		}
		var res struct {
			LeaseID uint64 `json:"lease_id"`
		}
		if err := json.Unmarshal([]byte(lastJSONObject(out)), &res); err != nil || res.LeaseID == 0 {
			t.Fatalf("deploy -o json: %v\n%s", err, out)
		}
		leases = append(leases, res.LeaseID)
	}
	var burned, paid uint64
	for _, id := range leases {
		l, err := c.Lease(ctx, id)
		if err != nil || l.State != api.LeaseCompleted || l.Provider != info.Provider || l.Tenant != sock.Address || l.Burned == 0 {
			t.Fatalf("wash lease %d: %+v %v", id, l, err)
		}
		burned += l.Burned
		paid += l.Paid
	}
	// The burns count in the epoch their lease completed in; wait until that epoch is tallied.
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	doneEpoch := uint64(st.Height-1) / em.EpochBlocks
	for {
		v, err := c.Emission(ctx)
		if err == nil && v.NextEpoch > doneEpoch+1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the completions' epoch was never tallied")
		case <-time.After(300 * time.Millisecond):
		}
	}
	end := readPairWealth(t, ctx, c, info.Provider, sock.Address)

	// What the provider earned over the blocks (start, end], from the blocks that tallied each epoch.
	var availability, work, workBurned uint64
	for e := uint64(0); client.TallyHeight(e, em.EpochBlocks) <= end.height; e++ {
		h := client.TallyHeight(e, em.EpochBlocks)
		if h <= start.height {
			continue
		}
		er, err := c.EpochRewardsAt(ctx, e, em.EpochBlocks)
		if err != nil {
			t.Fatal(err)
		}
		if r := er.Providers[info.Provider]; r != nil {
			availability += r.Availability
			work += r.Work
			workBurned += r.Burned
			if r.Work > r.Cap || r.Cap > r.Burned {
				t.Fatalf("epoch %d: work %d, cap %d, burned %d", e, r.Work, r.Cap, r.Burned)
			}
		}
	}
	if end.earned-start.earned != availability+work {
		t.Fatalf("earned %d over the window, the tallies' events say %d availability + %d work", end.earned-start.earned, availability, work)
	}
	if workBurned < burned || work == 0 {
		t.Fatalf("the wash leases burned %d; the tallies counted %d of burns and paid %d of work", burned, workBurned, work)
	}
	trade := int64(end.total) - int64(start.total) - int64(availability)
	t.Logf("wash trade: paid %d uspr, burned %d, work rewards %d (cap %d%%); the pair's wealth moved %+d besides %d of availability rewards",
		paid, burned, work, em.WorkRewardCapPPM/10_000, trade, availability)
	if trade >= 0 {
		t.Fatalf("the wash trade paid: the pair gained %d uspr beyond the provider's availability rewards (work %d for burns of %d)", trade, work, burned)
	}
}

// lastJSONObject returns the last top-level JSON object in out (a command may print progress lines before it).
func lastJSONObject(out string) string {
	depth, start, last := 0, -1, ""
	for i, r := range out {
		switch r {
		case '{':
			if depth == 0 {
				start = i
			}
			depth++
		case '}':
			depth--
			if depth == 0 && start >= 0 {
				last = out[start : i+1]
			}
		}
	}
	return last
}
