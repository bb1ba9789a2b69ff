package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/internal/localnet"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault/layout"
)

// TestStoreStatusProofs runs `spare store status` and `spare store pool` against a chain where a shard failed
// its storage proofs (an in-process network, epochs of 20 blocks, one auditor; four storage providers, no
// daemons: the test sends their transactions). An object of 2+2 shards is placed and declared held; the auditor
// fails shard 0 two epochs in a row, so the tally loses it, and no provider can take it (the one that lost it
// is never drawn again, the others hold the stripe's other shards). Status says it is lost, counts it as
// missing, and shows what the deal put into the pool and the last tallied epoch (which failed and lost it);
// then a fifth provider offers room, the next tally draws the repair onto it, and status says the shard is being
// repaired there, from that block, not healthy yet. The pool's figures are the ledger's. -o json carries all of
// it.
func TestStoreStatusProofs(t *testing.T) {
	const eb = 20
	const spr = api.USPR
	params := api.DefaultParams()
	params.EpochBlocks = eb
	funded := map[string]uint64{"owner": 1_000 * spr, "aud": 100 * spr}
	provs := []string{"p1", "p2", "p3", "p4", "p5"}
	for _, p := range provs {
		funded[p] = 10_000 * spr
	}
	n, err := localnet.Start(t.TempDir(), localnet.Options{CheckInvariants: true, Params: &params, Funded: funded, Auditors: map[string]uint64{"aud": 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	c, err := n.Client(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	send := func(key string, msgs ...tx.Msg) *client.Result {
		t.Helper()
		res, err := c.NewSender(n.Keys[key]).Send(ctx, msgs...)
		if err != nil {
			t.Fatalf("%s %T: %v", key, msgs[0], err)
		}
		return res
	}
	height := func() int64 {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Height
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for %s", what)
			}
		}
	}
	offer := func(i int) {
		key := provs[i]
		info := tx.ProviderInfo{HostURI: "https://127.0.0.1:1", CertFingerprint: sha256.Sum256([]byte(key)), Region: fmt.Sprintf("r%d", i),
			Hardware: tx.Hardware{CPUMilli: 32000, MemoryMiB: 256 << 10, DiskMiB: 1 << 20}}
		send(key, &tx.RegisterProvider{ProviderInfo: info}, &tx.Bond{Amount: params.RequiredStake(0)})
		send(key, &tx.OfferStorage{CapacityBytes: 1 << 30, PricePerGiBMonth: 40*spr + uint64(i)*spr})
	}
	for i := range 4 {
		offer(i)
	}
	l, err := layout.LayoutOf(512<<20, layout.Coding{K: 2, M: 2, ShardSize: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	man := &layout.Object{Root: sha256.Sum256([]byte("status object")), Layout: l, Shards: [][]tx.Hash{make([]tx.Hash, 4)}}
	for i := range man.Shards[0] {
		man.Shards[0][i] = sha256.Sum256(fmt.Appendf(nil, "status shard %d", i))
	}
	mb, err := man.Encode()
	if err != nil {
		t.Fatal(err)
	}
	res := send("owner", &tx.StoreObject{Manifest: mb, Months: 1, MaxPricePerGiBMonth: 50 * spr})
	v, _ := res.Attr(api.EventVaultStored, api.AttrObjectID)
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	var obj api.VaultObject
	waitFor("the object placed", func() bool {
		obj, err = c.VaultObject(ctx, id)
		return err == nil && obj.State == api.VaultPlaced
	})
	shards, err := c.AllVaultShards(ctx, id)
	if err != nil || len(shards) != 4 {
		t.Fatalf("shards %+v (%v)", shards, err)
	}
	keyOf := map[tx.Address]string{}
	for _, p := range provs {
		keyOf[n.Keys[p].Address()] = p
	}
	var declared int64
	for _, s := range shards {
		declared = max(declared, send(keyOf[s.Provider], &tx.HoldShards{Shards: []tx.ShardRef{{Object: id, Ordinal: uint32(s.Ordinal)}}}).Height)
	}
	first := uint64(declared-1)/eb + 1 // the first epoch to challenge every shard
	for e := first; e < first+2; e++ {
		waitFor(fmt.Sprintf("epoch %d", e), func() bool { return height() >= int64(e)*eb+1 })
		send("aud", &tx.AttestStorage{Epoch: e, Failed: []tx.ShardRef{{Object: id, Ordinal: 0}}})
	}
	shard0 := func() api.VaultShard {
		l, err := c.VaultShards(ctx, api.VaultShardsRequest{ID: id, Limit: 1})
		if err != nil || len(l.Items) != 1 {
			t.Fatalf("shard 0: %+v (%v)", l, err)
		}
		return l.Items[0]
	}
	waitFor("shard 0 lost", func() bool { return shard0().Lost })

	home := t.TempDir()
	status := func(extra ...string) (string, storeStatusResult) {
		t.Helper()
		args := append([]string{"--home", home, "--node", n.Nodes[0].RPCAddress(), "store", "status", strconv.FormatUint(id, 10), "--timeout", "2s"}, extra...)
		out, err := run(t, args...)
		if err != nil {
			t.Fatalf("spare %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		var r storeStatusResult
		if len(extra) > 0 {
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("spare store status -o json: %v\n%s", err, out)
			}
		}
		return out, r
	}
	_, r := status("-o", "json")
	s := r.Shards[0]
	if !s.Lost || !s.Provider.IsZero() || s.Repairing || r.Lost != 1 || r.Repairing != 0 || r.Pooled != obj.Escrow || r.Pooled == 0 || r.Healthy != 0 ||
		!strings.Contains(r.Text, "1 lost (counted as missing") {
		t.Errorf("status with shard 0 lost: %+v, shard 0 %+v", r, s)
	}
	for _, s := range r.Shards[1:] {
		if s.Lost || s.Repairing || s.Failures != 0 || s.HeldHeight == 0 || s.Provider.IsZero() || s.Held {
			t.Errorf("shard %d: %+v", s.Index, s)
		}
	}
	// The last tallied epoch is the one that lost it, or (if the tally after it came since) the next, undecided.
	if e := r.LastTallied; e == nil || e.Epoch < first+1 || !e.Tallied || (e.Epoch == first+1 && (!e.Decided || e.Failed != 1 || e.Lost != 1)) {
		t.Errorf("last tallied epoch %+v, want epoch %d (1 failed, 1 lost) or after", e, first+1)
	}
	text, _ := status()
	for _, want := range []string{"lost: no provider until a repair draws one", "put into the Vault pool at its draw", "1 lost (counted as missing",
		"storage proofs, last tallied epoch", "PROOFS"} {
		if !strings.Contains(text, want) {
			t.Errorf("spare store status lacks %q:\n%s", want, text)
		}
	}

	// A provider with room: the next tally draws the repair onto it.
	offer(4)
	waitFor("shard 0 drawn onto p5", func() bool { return !shard0().Provider.IsZero() })
	_, r = status("-o", "json")
	s = r.Shards[0]
	if s.Lost || !s.Repairing || s.Provider != n.Keys["p5"].Address() || s.RepairHeight == 0 || s.HeldHeight != 0 || r.Repairing != 1 || r.Lost != 0 ||
		!strings.Contains(r.Text, "1 being repaired (not counted healthy") {
		t.Errorf("status with shard 0 being repaired: %+v, shard 0 %+v", r, s)
	}
	text, _ = status()
	if want := fmt.Sprintf("repairing: drawn onto its provider at block %d, to be rebuilt", s.RepairHeight); !strings.Contains(text, want) {
		t.Errorf("spare store status lacks %q:\n%s", want, text)
	}

	// The pool, as the ledger has it.
	var pool api.VaultPool
	if err := c.Query(ctx, api.QueryVaultPool, nil, &pool); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "--home", home, "--node", n.Nodes[0].RPCAddress(), "store", "pool", "-o", "json")
	var p storePoolResult
	if err != nil || json.Unmarshal([]byte(out), &p) != nil || p.Balance != pool.Balance || p.PaidTotal != pool.PaidTotal || p.TermBytes != pool.TermBytes ||
		!p.Audited || p.EpochBlocks != eb || p.LastTallied == nil || p.Balance == 0 {
		t.Errorf("spare store pool -o json: %v %s; ledger %+v", err, out, pool)
	}
	out, err = run(t, "--home", home, "--node", n.Nodes[0].RPCAddress(), "store", "pool")
	if err != nil || !strings.Contains(out, "the Vault pool holds "+client.FormatAmount(pool.Balance)) || !strings.Contains(out, "paid since genesis") {
		t.Errorf("spare store pool: %v\n%s", err, out)
	}
}
