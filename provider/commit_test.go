package provider_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/provider"
)

// TestReplicatedRunCommitsThenReveals: the daemon serves one run of a replicated order; "other", played by the
// test, the second. When its workload ends the daemon does not publish its result: it commits to it
// (CommitResult) and waits, its resources free. It is restarted meanwhile; the salt it saved lets the new daemon
// reveal once the other run has committed and the reveal phase opens. Both results agree: the daemon's run is
// paid what it earned.
func TestReplicatedRunCommitsThenReveals(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	other := e.c.NewSender(e.net.Keys["other"])
	info := tx.ProviderInfo{HostURI: "https://other.example:8443", CertFingerprint: sha256.Sum256([]byte("other")),
		Region: "eu-west", Hardware: tx.Hardware{GPUs: []tx.GPUGroup{{Model: "H100", VRAMMiB: 81920, Count: 8}}, CPUMilli: 8000, MemoryMiB: 1 << 16, DiskMiB: 1 << 20}}
	params, err := e.c.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Send(ctx, &tx.RegisterProvider{ProviderInfo: info}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Send(ctx, &tx.Bond{Amount: params.RequiredStake(8)}); err != nil {
		t.Fatal(err)
	}

	m, raw := job("mkdir -p out; echo replicated > out/r.txt", 1)
	res, err := e.c.NewSender(e.net.Keys["tenant"]).Send(ctx, &tx.CreateReplicatedOrder{CreateOrder: tx.CreateOrder{Resources: m.Resources,
		MaxPricePerHour: 10 * spr, ManifestHash: manifest.Hash(raw), Deposit: 10 * spr, DurationSec: m.DurationSec}, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := res.Attr("order.created", "order_id")
	orderID, _ := strconv.ParseUint(id, 10, 64)
	if _, err := other.Send(ctx, &tx.PlaceBid{OrderID: orderID, Price: 10 * spr}); err != nil {
		t.Fatal(err)
	}
	var v api.VerificationView
	e.waitFor(30*time.Second, "both runs leased", func() bool {
		v, err = e.c.Verification(ctx, orderID)
		return err == nil && len(v.Runs) == 2
	})
	mine := slices.IndexFunc(v.Runs, func(r api.RunView) bool { return r.Provider == e.d.Address() })
	if mine < 0 {
		t.Fatalf("the daemon serves no run: %+v", v)
	}
	myLease, otherLease := v.Runs[mine].LeaseID, v.Runs[1-mine].LeaseID
	if _, err := other.Send(ctx, &tx.LeaseStarted{ID: otherLease}); err != nil {
		t.Fatal(err)
	}
	e.manifestOK("tenant", myLease, raw)

	e.waitFor(30*time.Second, "the daemon's commitment", func() bool {
		v, err = e.c.Verification(ctx, orderID)
		return err == nil && v.Runs[mine].Commit == api.CommitCommitted
	})
	if l, _ := e.c.Lease(ctx, myLease); l.Receipt != nil || v.Runs[mine].Result || v.Phase != "commit" {
		t.Fatalf("the daemon's result is public before the reveal phase: %+v %+v", l, v)
	}
	var st provider.Status
	e.waitFor(10*time.Second, "the daemon to wait for the reveal phase", func() bool {
		st = e.status("tenant", myLease)
		return st.State == provider.LeaseRevealing
	})
	if st.Receipt == nil {
		t.Fatalf("daemon's lease after committing: %+v", st)
	}
	e.stop() // the salt must survive this
	time.Sleep(200 * time.Millisecond)
	e.start()

	// The other run commits to the same result (the test knows it: it reads the daemon's receipt as the tenant).
	status, err := e.c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rc := tx.Receipt{ChainID: status.ChainID, LeaseID: otherLease, ManifestHash: manifest.Hash(raw), StartMs: 1, EndMs: 2,
		OutputRoot: st.Receipt.OutputRoot, ExitCode: st.Receipt.ExitCode}
	rc.Signature = ed25519.Sign(e.net.Keys["other"].Priv, rc.SignBytes())
	salt := sha256.Sum256([]byte("other's salt"))
	if _, err := other.Send(ctx, &tx.CommitResult{LeaseID: otherLease, Commitment: tx.ResultCommitment(rc.OutputRoot, rc.ExitCode, other.Address(), salt)}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(30*time.Second, "the restarted daemon's reveal", func() bool {
		v, err = e.c.Verification(ctx, orderID)
		return err == nil && v.Runs[mine].Commit == api.CommitRevealed
	})
	if v.Runs[mine].OutputRoot != st.Receipt.OutputRoot {
		t.Fatalf("revealed %s, the daemon's receipt says %s", v.Runs[mine].OutputRoot, st.Receipt.OutputRoot)
	}
	if _, err := other.Send(ctx, &tx.RevealResult{Receipt: rc, Salt: salt}); err != nil {
		t.Fatal(err)
	}
	v, _ = e.c.Verification(ctx, orderID)
	l, _ := e.c.Lease(ctx, myLease)
	if v.State != api.VerifyAgreed || l.Held != 0 || l.Paid != l.Price*(l.EndedMs-l.StartedMs)/3_600_000 {
		t.Fatalf("verdict %+v, the daemon's lease %+v", v, l.Lease)
	}
	e.waitFor(10*time.Second, "the lease done on the daemon", func() bool { return e.status("tenant", myLease).State == provider.LeaseDone })
}
