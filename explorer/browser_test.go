package explorer_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
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
	"github.com/sparenet/spare/explorer/internal/markettest"
	"github.com/sparenet/spare/explorer/web"
	"github.com/sparenet/spare/internal/localnet"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault/layout"
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
// link leads to its page; the page of the provider that won the lease shows its lease count (as the API answers
// it), the lease in its list, and no Go syntax; an object stored in Spare Vault appears on the Vault page without a
// reload, and its page links each shard to the provider the ledger placed it on (browseVault); the navigation leads
// to the rewards page, which shows emission against burn (browseRewards). Screenshots are saved as artifacts.
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
	if _, err := c.NewSender(tenant).Send(ctx, &tx.Send{To: newProv.Address(), Amount: params.RequiredStake(2) + 10*api.USPR}); err != nil {
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
		MaxPricePerHour: 100 * api.USPR, ManifestHash: sha256.Sum256([]byte("browser job")), Deposit: 10 * api.USPR, DurationSec: 600})
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

	// The page of the provider that serves the lease: its lease count, as the API has it, and the lease listed.
	lv, err := c.Lease(ctx, leaseID)
	if err != nil {
		t.Fatal(err)
	}
	server := lv.Provider.String()
	before := apiLeaseCount(t, info.Explorer, server)
	if err := chromedp.Do(bctx,
		chromedp.Navigate(info.Explorer+"/providers/"+server),
		chromedp.WaitVisible(chromedp.CSS(`#lease-count`)),
		chromedp.WaitVisible(chromedp.CSS(`#lease-`+strconv.FormatUint(leaseID, 10))),
	); err != nil {
		t.Fatalf("load the page of provider %s: %v", server, err)
	}
	count, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`#lease-count`)))
	if err != nil {
		t.Fatal(err)
	}
	after := apiLeaseCount(t, info.Explorer, server)
	n, err := strconv.ParseUint(strings.TrimSpace(count), 10, 64)
	if err != nil || n < before || n > after || n == 0 {
		t.Fatalf("provider %s's page shows %q leases; the API answers %d before and %d after", server, count, before, after)
	}
	text, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range markettest.GoSyntax(text) {
		t.Errorf("provider %s's page shows Go syntax: %s", server, leak)
	}
	if shot, err = chromedp.Run(bctx, chromedp.FullScreenshot(100)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "explorer-provider-leases.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	browseVault(t, bctx, ctx, c, tenant, newProv, info.Explorer, dir)
	browseRewards(t, bctx, info.Explorer, dir)
	t.Logf("screenshots in %s", dir)
}

// browseVault stores an object in Spare Vault on the dev network and follows it in the browser: the new provider
// and one more offer storage (beside the dev provider's offer, when its disk has room for one), the tenant stores
// an object coded 1+1, and once the ledger has drawn its providers the Vault page lists it (live, without a
// reload), its link leads to its page, and that page links each shard to the provider the ledger placed it on.
func browseVault(t *testing.T, bctx, ctx context.Context, c *client.Client, tenant client.Signer, newProv localnet.Key, explorer, dir string) {
	t.Helper()
	params, err := c.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second := localnet.NewKey("browser-test-storage")
	if _, err := c.NewSender(tenant).Send(ctx, &tx.Send{To: second.Address(), Amount: params.RequiredStake(0) + 10*api.USPR}); err != nil {
		t.Fatal(err)
	}
	info := tx.ProviderInfo{HostURI: "https://browser-test-storage.example.net:8443", CertFingerprint: sha256.Sum256([]byte("storage")),
		Region: "us-west", Hardware: tx.Hardware{CPUMilli: 8000, MemoryMiB: 16384, DiskMiB: 100000}}
	if _, err := c.NewSender(second).Send(ctx, &tx.RegisterProvider{ProviderInfo: info}, &tx.Bond{Amount: params.RequiredStake(0)}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []localnet.Key{newProv, second} {
		if _, err := c.NewSender(k).Send(ctx, &tx.OfferStorage{CapacityBytes: 1 << 30, PricePerGiBMonth: 1_000}); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(explorer+"/vault"), chromedp.WaitVisible(chromedp.CSS(`#vault-stats`)),
		chromedp.WaitVisible(chromedp.CSS(`#live.on`))); err != nil {
		t.Fatalf("load the Vault page: %v", err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[string](`window.__loaded = "vault"`)); err != nil {
		t.Fatal(err)
	}

	l, err := layout.LayoutOf(40<<10, layout.Coding{K: 1, M: 1, ShardSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	o := &layout.Object{Root: sha256.Sum256([]byte("browser object")), Layout: l,
		Shards: [][]tx.Hash{{sha256.Sum256([]byte("shard 0")), sha256.Sum256([]byte("shard 1"))}}}
	manifest, err := o.Encode()
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.NewSender(tenant).Send(ctx, &tx.StoreObject{Manifest: manifest, Months: 1, MaxPricePerGiBMonth: 1_000})
	if err != nil {
		t.Fatal(err)
	}
	attr, _ := res.Attr(api.EventVaultStored, api.AttrObjectID)
	id, err := strconv.ParseUint(attr, 10, 64)
	if err != nil {
		t.Fatalf("no object id in %v", res.Events)
	}
	var shards []api.VaultShard
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if ob, err := c.VaultObject(ctx, id); err == nil && ob.State == api.VaultPlaced {
			if shards, err = c.AllVaultShards(ctx, id); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if len(shards) != 2 {
		t.Fatalf("object %d was not placed on two providers: %+v", id, shards)
	}
	row := `#recent-objects #object-` + attr
	if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(row))); err != nil {
		t.Fatalf("the new object never appeared on the Vault page: %v", err)
	}
	if still, err := chromedp.Run(bctx, chromedp.Evaluate[string](`String(window.__loaded)`)); err != nil || still != "vault" {
		t.Fatalf("the Vault page was reloaded (marker %q, %v): updates must come without a reload", still, err)
	}
	stored, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector("#vault-stored").textContent`))
	if err != nil || stored == "0 bytes" || stored == "" {
		t.Fatalf("the Vault page shows %q stored (%v)", stored, err)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "explorer-vault.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}

	clicked, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(() => { const a = document.querySelector(`+
		strconv.Quote(row+` a`)+`); if (!a) return "missing"; a.click(); return "clicked" })()`))
	if err != nil || clicked != "clicked" {
		t.Fatalf("click the object's link: %q %v", clicked, err)
	}
	if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`#object-shards`))); err != nil {
		t.Fatalf("follow the object's link: %v", err)
	}
	hrefs, err := chromedp.Run(bctx, chromedp.Evaluate[string](
		`Array.from(document.querySelectorAll("#object-shards a.shard-provider")).map(a => a.getAttribute("href")).join(" ")`))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, s := range shards {
		want = append(want, "/providers/"+s.Provider.String())
	}
	if hrefs != strings.Join(want, " ") {
		t.Fatalf("the object's page links its shards to %q; the ledger placed them on %q", hrefs, want)
	}
	text, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range markettest.GoSyntax(text) {
		t.Errorf("object %d's page shows Go syntax: %s", id, leak)
	}
	if !strings.Contains(text, "Proof history and repairs") || !strings.Contains(text, web.ProofsNote[:60]) {
		t.Errorf("object %d's page has no proof history, or does not say how the explorer reads proofs (spare dev audits storage)", id)
	}
	if shot, err = chromedp.Run(bctx, chromedp.FullScreenshot(100)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "explorer-vault-object.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
}

// browseRewards follows the navigation's link (on every page) to the rewards page: it shows the network's emission against its
// burn with its charts, the epochs' split and the top earners (empty or not: whatever the dev network has minted
// by then), and no Go syntax.
func browseRewards(t *testing.T, bctx context.Context, explorer, dir string) {
	t.Helper()
	href, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(() => { const a = Array.from(document.querySelectorAll("nav a")).find(a => a.textContent === "Rewards"); `+
		`return a ? a.getAttribute("href") : "missing" })()`))
	if err != nil || href != "/rewards" {
		t.Fatalf("the navigation's link to the rewards page: %q %v", href, err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(explorer+href), chromedp.WaitVisible(chromedp.CSS(`#rewards-stats`)),
		chromedp.WaitVisible(chromedp.CSS(`#supply-chart svg`)), chromedp.WaitVisible(chromedp.CSS(`#recent-reward-epochs`)),
		chromedp.WaitVisible(chromedp.CSS(`#top-earners`))); err != nil {
		t.Fatalf("load the rewards page: %v", err)
	}
	text, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range markettest.GoSyntax(text) {
		t.Errorf("the rewards page shows Go syntax: %s", leak)
	}
	if !strings.Contains(text, "Minted against burned, since genesis") || !strings.Contains(text, "Top earners") {
		t.Error("the rewards page has no chart of minted against burned, or no top earners")
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "explorer-rewards.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
}

// apiLeaseCount is a provider's lease count as the explorer's API answers it.
func apiLeaseCount(t *testing.T, explorer, provider string) uint64 {
	t.Helper()
	res, err := http.Get(explorer + "/api/providers/" + provider)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v struct {
		Leases *uint64 `json:"leases"`
	}
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil || res.StatusCode != http.StatusOK || v.Leases == nil {
		t.Fatalf("GET /api/providers/%s: %d, %v; no lease count", provider, res.StatusCode, err)
	}
	return *v.Leases
}
