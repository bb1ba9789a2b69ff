package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/audit"
	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/internal/localnet"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/merkle"
)

func failed(r audit.ReceiptReport) []string {
	var out []string
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c.Name)
		}
	}
	return out
}

// TestCheckReceipt: each property of a receipt is checked on its own and names itself when it fails.
func TestCheckReceipt(t *testing.T) {
	key := localnet.NewKey("prov")
	files := []merkle.File{{Path: "out/a.txt", SHA256: sha256.Sum256([]byte("a")), Size: 1}}
	root, _ := merkle.Root(append([]merkle.File(nil), files...))
	manifest := sha256.Sum256([]byte("manifest"))
	good := func() audit.ReceiptInput {
		rc := tx.Receipt{ChainID: "c", LeaseID: 7, ManifestHash: manifest, StartMs: 1000, EndMs: 61_000, GPUSeconds: 120, OutputRoot: root}
		rc.Signature = key.Sign(rc.SignBytes())
		return audit.ReceiptInput{ChainID: "c", ProviderKey: key.PubKey(), GPUs: 2, Outputs: files,
			Lease: api.LeaseView{Lease: api.Lease{ID: 7, State: api.LeaseCompleted, Provider: key.Address(), StartedMs: 900, EndedMs: 61_100}, Receipt: &rc},
			Order: api.Order{ID: 3, ManifestHash: manifest}}
	}
	resign := func(in *audit.ReceiptInput) { in.Lease.Receipt.Signature = key.Sign(in.Lease.Receipt.SignBytes()) }
	for _, tc := range []struct {
		name   string
		change func(*audit.ReceiptInput)
		want   string // the failing check; "" for none
	}{
		{"good", func(*audit.ReceiptInput) {}, ""},
		{"exit code changed after signing", func(in *audit.ReceiptInput) { in.Lease.Receipt.ExitCode = 1 }, "signature"},
		{"signed by another key", func(in *audit.ReceiptInput) {
			in.Lease.Receipt.Signature = ed25519.Sign(localnet.NewKey("other").Priv, in.Lease.Receipt.SignBytes())
		}, "signature"},
		{"other chain", func(in *audit.ReceiptInput) { in.Lease.Receipt.ChainID = "x"; resign(in) }, "chain"},
		{"other lease", func(in *audit.ReceiptInput) { in.Lease.Receipt.LeaseID = 8; resign(in) }, "lease"},
		{"other manifest", func(in *audit.ReceiptInput) { in.Order.ManifestHash = sha256.Sum256([]byte("x")) }, "manifest"},
		{"ends before it starts", func(in *audit.ReceiptInput) { in.Lease.Receipt.EndMs, in.Lease.Receipt.GPUSeconds = 10, 0; resign(in) }, "times"},
		{"too many GPU-seconds", func(in *audit.ReceiptInput) { in.Lease.Receipt.GPUSeconds = 1000; resign(in) }, "gpu-seconds"},
		{"a file changed", func(in *audit.ReceiptInput) {
			in.Outputs = []merkle.File{{Path: "out/a.txt", SHA256: sha256.Sum256([]byte("b"))}}
		}, "outputs"},
		{"a file missing", func(in *audit.ReceiptInput) { in.Outputs = []merkle.File{} }, "outputs"},
		{"the outputs' Vault object", func(in *audit.ReceiptInput) {
			in.Lease.Receipt.VaultRoot, in.OutputsVaultRoot = tx.Hash{5}, tx.Hash{5}
			resign(in)
		}, ""},
		{"another Vault object", func(in *audit.ReceiptInput) {
			in.Lease.Receipt.VaultRoot, in.OutputsVaultRoot = tx.Hash{5}, tx.Hash{6}
			resign(in)
		}, "vault root"},
		{"a Vault root added after signing", func(in *audit.ReceiptInput) {
			in.Lease.Receipt.VaultRoot, in.OutputsVaultRoot = tx.Hash{5}, tx.Hash{5}
		}, "signature"},
		{"lease not completed", func(in *audit.ReceiptInput) { in.Lease.State = api.LeaseClosed }, "receipt on the ledger"},
		{"no receipt", func(in *audit.ReceiptInput) { in.Lease.Receipt = nil; in.Lease.State = api.LeaseActive }, "receipt on the ledger"},
	} {
		in := good()
		tc.change(&in)
		r := audit.CheckReceipt(in)
		got := failed(r)
		if tc.want == "" && (len(got) > 0 || !r.OK) || tc.want != "" && (len(got) != 1 || got[0] != tc.want || r.OK) {
			t.Errorf("%s: failed checks %v, want [%s]", tc.name, got, tc.want)
		}
	}
}

// TestVerifyLeaseOnChain: a lease completed on a real node verifies, with its outputs; a changed output file, a
// lease that has not completed and an unknown lease do not.
func TestVerifyLeaseOnChain(t *testing.T) {
	const spr = api.USPR
	n, err := localnet.Start(t.TempDir(), localnet.Options{Funded: map[string]uint64{"tenant": 1000 * spr, "prov": 10_000 * spr}})
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
	params, _ := c.Params(ctx)
	send("prov", &tx.RegisterProvider{ProviderInfo: tx.ProviderInfo{HostURI: "https://p.example.net:8443", CertFingerprint: sha256.Sum256([]byte("p")),
		Region: "eu", Hardware: tx.Hardware{GPUs: []tx.GPUGroup{{Model: "H100", VRAMMiB: 81559, Count: 1}}, CPUMilli: 4000, MemoryMiB: 8192, DiskMiB: 10000}}},
		&tx.Bond{Amount: params.RequiredStake(1)})
	manifest := sha256.Sum256([]byte("job"))
	orderFor := func() uint64 {
		res := send("tenant", &tx.CreateOrder{Resources: tx.Resources{GPUCount: 1, CPUMilli: 1000, MemoryMiB: 1024}, MaxPricePerHour: 2 * spr,
			ManifestHash: manifest, Deposit: spr, DurationSec: 600})
		v, _ := res.Attr("order.created", "order_id")
		id, _ := strconv.ParseUint(v, 10, 64)
		send("prov", &tx.PlaceBid{OrderID: id, Price: spr})
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if o, err := c.Order(ctx, id); err == nil && o.LeaseID != 0 {
				return o.LeaseID
			}
		}
		t.Fatal("not leased")
		return 0
	}
	done, pending := orderFor(), orderFor()
	send("prov", &tx.LeaseStarted{ID: done})
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "out", "model.txt"), []byte("w = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := audit.HashDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := merkle.Root(files)
	rc := tx.Receipt{ChainID: "spare-test", LeaseID: done, ManifestHash: manifest, StartMs: 1, EndMs: 2001, GPUSeconds: 2, OutputRoot: root}
	rc.Signature = n.Keys["prov"].Sign(rc.SignBytes())
	send("prov", &tx.CompleteLease{Receipt: rc})

	if r, err := audit.VerifyLease(ctx, c, done, dir); err != nil || !r.OK || len(r.Checks) != 8 {
		t.Fatalf("completed lease: %+v %v", r, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "out", "model.txt"), []byte("w = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := audit.VerifyLease(ctx, c, done, dir); err != nil || r.OK || strings.Join(failed(r), ",") != "outputs" {
		t.Fatalf("changed output: %+v %v", failed(r), err)
	}
	if r, err := audit.VerifyLease(ctx, c, pending, ""); err != nil || r.OK || !strings.Contains(r.Checks[0].Detail, "pending") {
		t.Fatalf("pending lease: %+v %v", r, err)
	}
	if _, err := audit.VerifyLease(ctx, c, 99, ""); err == nil || !strings.Contains(err.Error(), "lease 99") {
		t.Fatalf("unknown lease: %v", err)
	}
	if _, err := audit.HashDir(filepath.Join(dir, "out", "model.txt")); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("HashDir of a file: %v", err)
	}
}
