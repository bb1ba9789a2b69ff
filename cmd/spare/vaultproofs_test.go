package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/devnet"
	"github.com/sparenet/spare/internal/proctest"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/tenant"
)

// TestStorageProofsOnDev plays the Vault's storage proofs on `spare dev` (six storage providers — the dev coding
// puts a stripe's 2+2 shards on four, two are there to repair onto — its auditor in-process, 10 s epochs): an
// object stored and its shards declared held by their providers; the first epoch that starts after that is
// attested by the auditor, tallied and decided with no shard failed, and every provider holding a shard is paid
// for it (its earnings and the fraction of a uspr it is owed grow: the dev network's prices are a fraction of a
// uspr an epoch); the seeds mix the auditor's beacon reveals. Then a shard is deleted on its provider: the first
// epoch after that names it, and only it, failed; its provider is slashed; after two failed epochs the ledger
// draws a repair onto a provider holding no shard of the stripe, whose daemon rebuilds it from the others and
// declares it; its first proof passes and the pool pays the repair. The object's health is full again and
// `spare store get` returns its bytes.
func TestStorageProofsOnDev(t *testing.T) {
	if testing.Short() {
		t.Skip("runs spare dev")
	}
	bin := proctest.Build(t, ".")
	tmp := t.TempDir()
	home := filepath.Join(tmp, "dev")
	logPath := filepath.Join(tmp, "dev.log")
	startProc(t, bin, logPath, "dev", "--home", home, "--providers", "6", "--no-docker", "--nvidia-smi", "/nonexistent/nvidia-smi",
		"--explorer", "", "--log-level", "info")
	h := []string{"--home", home}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\n%s", append(args, crashGrep(logPath, 60, "auditor", "storage", "beacon", "vault"))...)
	}
	deadline := time.Now().Add(120 * time.Second)
	for {
		out, _, err := storeRun(bin, append([]string{"offers", "--storage", "-o", "json"}, h...)...)
		var res storageOffersResult
		if err == nil && json.Unmarshal([]byte(out), &res) == nil && len(res.StorageOffers) == 6 {
			break
		}
		if time.Now().After(deadline) {
			fail("six storage offers not on the ledger in time: %v %s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cfg, err := devnet.LoadClientConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg.Node, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	params, err := c.Params(ctx)
	if err != nil || params.EpochBlocks == 0 {
		t.Fatalf("params: %v (epoch_blocks %d)", err, params.EpochBlocks)
	}
	epochOf := func(h int64) uint64 { return uint64(h-1) / params.EpochBlocks }

	// An object of 1 MiB: the dev coding (2+2) puts one 512 KiB shard on each provider.
	data := make([]byte, 1<<20)
	rand.New(rand.NewSource(11)).Read(data)
	src := filepath.Join(tmp, "data.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := crashRun(t, bin, append([]string{"store", "put", src, "-o", "json", "--yes"}, h...)...)
	var put tenant.PutResult
	if err := json.Unmarshal(out, &put); err != nil || len(put.Shards) != 4 {
		t.Fatalf("store put: %v %s", err, out)
	}
	// Each provider declares its shard held once the upload landed (HoldShards): from the next epoch on it is
	// challenged and paid.
	type earned struct{ earned, owed uint64 }
	before := map[tx.Address]earned{}
	deadline = time.Now().Add(90 * time.Second)
	for _, sh := range put.Shards {
		for {
			vp, err := c.VaultProvider(ctx, sh.Provider)
			if err == nil && vp.Shards >= 1 {
				before[sh.Provider] = earned{vp.Earned, vp.Owed}
				break
			}
			if time.Now().After(deadline) {
				fail("provider %s did not declare its shard held: %+v %v", sh.Provider, vp, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// tallied waits for the first epoch starting after height after to be tallied.
	tallied := func(after int64) api.VaultEpoch {
		t.Helper()
		e := epochOf(after) + 1
		deadline := time.Now().Add(150 * time.Second) // three 10 s epochs, on a loaded machine
		for {
			ve, err := c.VaultEpoch(ctx, &e)
			if err == nil && ve.Tallied {
				if ve.StartHeight <= after {
					t.Fatalf("epoch %d started at %d, not after %d", e, ve.StartHeight, after)
				}
				return ve
			}
			if err != nil && !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("vault_epoch %d: %v", e, err)
			}
			if time.Now().After(deadline) {
				fail("epoch %d not tallied in time: %+v %v", e, ve, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}

	// Every shard uploaded: the next epoch passes them all and pays their providers.
	e1 := tallied(st.Height)
	if !e1.Decided || e1.Failed != 0 || e1.Lost != 0 {
		fail("epoch %d after the upload: %+v, want decided with none failed", e1.Epoch, e1)
	}
	for _, sh := range put.Shards {
		vp, err := c.VaultProvider(ctx, sh.Provider)
		if err != nil {
			t.Fatal(err)
		}
		b := before[sh.Provider]
		if vp.Earned < b.earned || vp.Earned == b.earned && vp.Owed <= b.owed {
			fail("provider %s not paid for epoch %d: earned %d owed %d, before %d and %d", sh.Provider, e1.Epoch, vp.Earned, vp.Owed, b.earned, b.owed)
		}
		if vp.Failed != 0 {
			fail("provider %s failed %d shard-epochs holding its shard", sh.Provider, vp.Failed)
		}
	}

	// A shard deleted on its provider: the next epoch names it, and only it.
	lost := put.Shards[1]
	var files []string
	for _, pat := range []string{filepath.Join(home, "*", "vault", lost.Root.String()+".shard"), filepath.Join(home, "*", "*", "vault", lost.Root.String()+".shard")} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	if len(files) != 1 {
		t.Fatalf("shard %s found at %v", lost.Root, files)
	}
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	slashedBefore, err := c.Provider(ctx, lost.Provider)
	if err != nil {
		t.Fatal(err)
	}
	if st, err = c.Status(ctx); err != nil {
		t.Fatal(err)
	}
	e2 := tallied(st.Height)
	if !e2.Decided || e2.Failed != 1 {
		fail("epoch %d after a shard was deleted: %+v, want decided with one shard failed", e2.Epoch, e2)
	}
	vp, err := c.VaultProvider(ctx, lost.Provider)
	if err != nil || vp.Failed == 0 {
		fail("the provider of the deleted shard: %+v %v, want a failed shard-epoch", vp, err)
	}
	shards, err := c.AllVaultShards(ctx, put.ObjectID)
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shards {
		// Failed in e2 — or already lost and drawn elsewhere, when the auditor's round of the epoch the file was
		// deleted in came after the deletion (two epochs failed by e2's tally).
		failed := sh.Lost || sh.Failures > 0 && sh.LastFailed >= e2.Epoch || sh.Repairing && sh.Provider != lost.Provider
		if want := sh.Stripe == lost.Stripe && sh.Index == lost.Index; failed != want {
			fail("shard %d/%d: failed %v (%+v), want %v", sh.Stripe, sh.Index, failed, sh, want)
		}
	}
	// The seeds mix the auditor's beacon: each epoch's reveal is the secret it committed the epoch before.
	reveals := 0
	for e := e1.Epoch; e <= e2.Epoch; e++ {
		if ve, err := c.VaultEpoch(ctx, &e); err == nil {
			reveals += ve.Reveals
		}
	}
	if reveals == 0 {
		fail("no beacon reveal in the seeds of epochs %d to %d", e1.Epoch, e2.Epoch)
	}
	if p, err := c.Provider(ctx, lost.Provider); err != nil || p.Slashed <= slashedBefore.Slashed {
		// Its daemon bonds again what was taken (stake_topup_budget): the record of what was slashed says it.
		fail("the provider that deleted its shard was not slashed: %+v %v (slashed before %d)", p.Slashed, err, slashedBefore.Slashed)
	}

	// Failed again the next epoch, the shard is lost and drawn onto a provider holding none of the stripe; its
	// daemon rebuilds it from the others, declares it, and its first proof passes (about five more epochs).
	var repaired api.VaultShard
	deadline = time.Now().Add(240 * time.Second)
	for {
		shards, err := c.AllVaultShards(ctx, put.ObjectID)
		if err != nil {
			t.Fatal(err)
		}
		x := shards[lost.Stripe*4+lost.Index]
		if !x.Provider.IsZero() && x.Provider != lost.Provider && x.RepairHeight > 0 && x.HeldHeight > 0 && !x.Repairing {
			repaired = x
			for _, o := range shards {
				if o.Ordinal != x.Ordinal && o.Provider == x.Provider {
					fail("the repair went to %s, which holds shard %d of the stripe", x.Provider, o.Index)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			fail("the deleted shard was not repaired elsewhere in time: %+v", x)
		}
		time.Sleep(time.Second)
	}
	var rp api.VaultProvider
	out = crashRun(t, bin, append([]string{"query", "vault-provider", repaired.Provider.String(), "-o", "json"}, h...)...)
	if err := json.Unmarshal(out, &rp); err != nil || rp.Earned == 0 || rp.Shards == 0 {
		fail("the repairer's Vault accounting (the repair's fee paid): %v %s", err, out)
	}
	out = crashRun(t, bin, append([]string{"query", "vault-epoch", "-o", "json"}, h...)...)
	var cur api.VaultEpoch
	if err := json.Unmarshal(out, &cur); err != nil || cur.StartHeight == 0 {
		fail("spare query vault-epoch: %v %s", err, out)
	}
	out = crashRun(t, bin, append([]string{"store", "status", put.Root.String(), "-o", "json"}, h...)...)
	var status storeStatusResult
	if err := json.Unmarshal(out, &status); err != nil || status.Held != 4 {
		fail("store status after the repair: %v %s", err, out)
	}
	dst := filepath.Join(tmp, "back.bin")
	crashRun(t, bin, append([]string{"store", "get", put.Root.String(), dst}, h...)...)
	if b, _ := os.ReadFile(dst); !bytes.Equal(b, data) {
		fail("get after the repair returned different bytes")
	}
}
