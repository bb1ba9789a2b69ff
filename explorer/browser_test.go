package explorer_test

import (
	"context"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/devnet"
	"github.com/sparenet/spare/internal/localnet"
	"github.com/sparenet/spare/ledger"
	"github.com/sparenet/spare/ledger/tx"
)

// chromium finds Debian's chromium (or another Chrome). Without one the test skips, except under CI=true.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on this machine: .ci/run installs Debian's chromium package")
	}
	t.Skip("no chromium on this machine (apt-get install chromium)")
	return ""
}

// artifacts is where screenshots are kept: $SPARE_ARTIFACTS, else .artifacts at the repository root.
func artifacts(t *testing.T) string {
	dir := os.Getenv("SPARE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", ".artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBrowserLiveUpdates drives a real Chromium against `spare dev`'s explorer: the overview loads; a provider
// registered and a lease created afterwards appear on it without a reload (Server-Sent Events); the provider's
// link leads to its page. Screenshots are saved as artifacts.
func TestBrowserLiveUpdates(t *testing.T) {
	exe := chromium(t)
	home := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan devnet.Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- devnet.Run(ctx, devnet.Options{Home: filepath.Join(home, "dev"), NoDocker: true, BlockTime: 100 * time.Millisecond,
			Explorer: "127.0.0.1:0"}, func(i devnet.Info) { ready <- i })
	}()
	var info devnet.Info
	select {
	case info = <-ready:
	case err := <-done:
		t.Fatalf("spare dev: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("spare dev did not start")
	}
	defer func() { cancel(); <-done }()
	if info.Explorer == "" {
		t.Fatal("spare dev started no explorer")
	}
	c, err := client.New(info.RPC, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.Open(filepath.Join(home, "dev", "keys"), keyring.Options{Backend: keyring.BackendTest})
	if err != nil {
		t.Fatal(err)
	}
	tenant, err := kr.Signer("tenant")
	if err != nil {
		t.Fatal(err)
	}

	actx, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 1000))...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	bctx, tcancel := context.WithTimeout(bctx, 120*time.Second)
	defer tcancel()
	if err := chromedp.Do(bctx,
		chromedp.Navigate(info.Explorer+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#height`)),
		chromedp.WaitVisible(chromedp.CSS(`#live.on`)), // the SSE stream is open
	); err != nil {
		t.Fatalf("load the overview: %v", err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[string](`window.__loaded = "once"`)); err != nil {
		t.Fatal(err)
	}

	// A provider registers after the page loaded.
	newProv := localnet.NewKey("browser-test-provider")
	params, err := c.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewSender(tenant).Send(ctx, &tx.Send{To: newProv.Address(), Amount: params.RequiredStake(2) + 10*ledger.USPR}); err != nil {
		t.Fatal(err)
	}
	info2 := tx.ProviderInfo{HostURI: "https://browser-test.example.net:8443", CertFingerprint: sha256.Sum256([]byte("browser")),
		Region: "eu-north", Hardware: tx.Hardware{GPUs: []tx.GPUGroup{{Model: "L40S", VRAMMiB: 46068, Count: 2}}, CPUMilli: 8000, MemoryMiB: 65536, DiskMiB: 100000}}
	if _, err := c.NewSender(newProv).Send(ctx, &tx.RegisterProvider{ProviderInfo: info2}, &tx.Bond{Amount: params.RequiredStake(2)}); err != nil {
		t.Fatal(err)
	}
	provRow := `#provider-` + newProv.Address().String()
	if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(provRow))); err != nil {
		t.Fatalf("the new provider never appeared on the overview: %v", err)
	}

	// A lease is created after the page loaded: a CPU order the dev provider wins.
	res, err := c.NewSender(tenant).Send(ctx, &tx.CreateOrder{Resources: tx.Resources{CPUMilli: 500, MemoryMiB: 256},
		MaxPricePerHour: 100 * ledger.USPR, ManifestHash: sha256.Sum256([]byte("browser job")), Deposit: 10 * ledger.USPR, DurationSec: 600})
	if err != nil {
		t.Fatal(err)
	}
	attr, _ := res.Attr("order.created", "order_id")
	orderID, _ := strconv.ParseUint(attr, 10, 64)
	var leaseID uint64
	deadline := time.Now().Add(30 * time.Second)
	for leaseID == 0 && time.Now().Before(deadline) {
		if o, err := c.Order(ctx, orderID); err == nil && o.LeaseID != 0 {
			leaseID = o.LeaseID
		}
		time.Sleep(100 * time.Millisecond)
	}
	if leaseID == 0 {
		t.Fatalf("order %d was not leased by the dev provider", orderID)
	}
	if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`#recent-leases #lease-`+strconv.FormatUint(leaseID, 10)))); err != nil {
		t.Fatalf("the new lease never appeared on the overview: %v", err)
	}
	still, err := chromedp.Run(bctx, chromedp.Evaluate[string](`String(window.__loaded)`))
	if err != nil || still != "once" {
		t.Fatalf("the page was reloaded (marker %q): updates must come without a reload", still)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := artifacts(t)
	if err := os.WriteFile(filepath.Join(dir, "explorer-overview.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}

	// Follow the provider's link to its page. The click runs in the page's own JavaScript: live updates replace
	// the table's nodes at any moment, so a node id looked up first and clicked after can be gone by then.
	clicked, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(() => { const a = document.querySelector(`+
		strconv.Quote(provRow+` a`)+`); if (!a) return "missing"; a.click(); return "clicked" })()`))
	if err != nil || clicked != "clicked" {
		t.Fatalf("click the provider link: %q %v", clicked, err)
	}
	if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.Search(`//h2[contains(., "Hardware: declared and verified")]`))); err != nil {
		t.Fatalf("follow the provider link: %v", err)
	}
	h1, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`h1`)))
	if err != nil {
		t.Fatal(err)
	}
	loc, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if shot, err = chromedp.Run(bctx, chromedp.FullScreenshot(100)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h1, newProv.Address().String()) || !strings.HasSuffix(loc, "/providers/"+newProv.Address().String()) {
		t.Fatalf("provider page: h1 %q at %s", h1, loc)
	}
	if err := os.WriteFile(filepath.Join(dir, "explorer-provider.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
}
