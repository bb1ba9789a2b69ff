package index_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/explorer/index"
	"github.com/sparenet/spare/explorer/internal/markettest"
	"github.com/sparenet/spare/explorer/web"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// TestHostileVaultEvents: the Vault's events come from the chain, through whatever node the explorer follows. A
// root, a reason, an address or a number that is not what the ledger writes — markup, a link scheme, a path, a
// reason of 100 KB — is kept as the event said it (escaped wherever it is shown, its link leading to a 400),
// changes no object, shard, offer or total when its attributes do not read, and a reason that reads is kept cut
// to MaxReasonBytes; an event's row shows at most a few hundred characters of any attribute.
func TestHostileVaultEvents(t *testing.T) {
	db, err := index.Open(markettest.TempIndex(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ix := index.New(db, nil, nil) // no node: nothing here names a provider to read back
	owner := tx.AddressOf(ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)).String()
	root := tx.Hash(sha256.Sum256([]byte("root"))).String()
	const markup = `"><img src=x onerror=alert(1)><script>alert("x")</script>`
	reason := markup + strings.Repeat("é", 50_000)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	block := func(h int64, evs ...map[string]string) client.Block {
		b := client.Block{Height: h, Time: start.Add(time.Duration(h) * time.Second), Hash: fmt.Sprintf("%064X", h), Proposer: fmt.Sprintf("%040X", 1)}
		for _, e := range evs {
			typ := e["type"]
			delete(e, "type")
			b.Events = append(b.Events, client.Event{Type: typ, Attrs: e})
		}
		return b
	}
	err = ix.ApplyBlocks(context.Background(),
		block(1,
			map[string]string{"type": api.EventVaultStored, api.AttrObjectID: "1", api.AttrOwner: owner, api.AttrRoot: root,
				api.AttrSize: "1000", api.AttrShards: "4", api.AttrMonths: "1", api.AttrMaxPrice: "10", api.AttrAmount: "100", api.AttrHeight: "2"},
			map[string]string{"type": api.EventVaultStored, api.AttrObjectID: "../../admin", api.AttrOwner: owner, api.AttrRoot: markup,
				api.AttrSize: "1", api.AttrShards: "4", api.AttrMonths: "1", api.AttrMaxPrice: "10", api.AttrAmount: "100", api.AttrHeight: "2"},
			map[string]string{"type": api.EventStorageOffered, api.AttrProvider: "javascript:alert(1)", api.AttrCapacity: "1e9",
				api.AttrPrice: "-5", api.AttrUsed: "0"}),
		block(2,
			map[string]string{"type": api.EventVaultShardPlaced, api.AttrObjectID: "1", api.AttrStripe: "0", api.AttrIndex: "0",
				api.AttrRoot: markup, api.AttrProvider: "javascript:alert(1)", api.AttrPrice: "5"},
			map[string]string{"type": api.EventVaultUnplaced, api.AttrObjectID: "1", api.AttrOwner: owner, api.AttrRefund: "100", api.AttrReason: reason}),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	o, err := db.VaultObject(ctx, 1)
	if err != nil || o.State != index.VaultUnplaced || o.Escrow != 0 || o.Refund != 100 || o.ShardSize != 0 ||
		len(o.Reason) > index.MaxReasonBytes || !strings.HasPrefix(o.Reason, markup) || !strings.HasSuffix(o.Reason, "é…") {
		t.Fatalf("object 1: %+v (%v)", o, err)
	}
	ov, err := db.VaultOverview(ctx)
	if err != nil || ov.Objects != 0 || ov.Unplaced != 1 || ov.Placing != 0 || ov.Shards != 0 || ov.Offers != 0 || ov.TermEscrow != 0 {
		t.Fatalf("overview %+v (%v)", ov, err)
	}
	if objs, _ := db.VaultObjects(ctx, index.VaultFilter{}, index.Page{}); objs.Total != 1 {
		t.Fatalf("%d objects, want the one whose event reads", objs.Total)
	}
	if evs, _ := db.Events(ctx, index.EventFilter{}, index.Page{}); evs.Total != 5 {
		t.Fatalf("%d events kept, want all 5", evs.Total)
	}

	h, err := web.New(db, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, path := range []string{"/vault", "/vault/object/1", "/vault/objects", "/events", "/events?kind=object&ref=1", "/blocks/1", "/blocks/2",
		"/accounts/" + owner} {
		res, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, res)
		if res.StatusCode != 200 {
			t.Errorf("GET %s: %d\n%.400s", path, res.StatusCode, body)
		}
		for _, bad := range []string{"<script>alert", "<img", `href="javascript:`, `href="/vault/root/"><`} {
			if strings.Contains(body, bad) {
				i := strings.Index(body, bad)
				t.Errorf("GET %s shows %q unescaped: %s", path, bad, body[max(i-100, 0):min(i+100, len(body))])
			}
		}
		if (path == "/vault/object/1" || path == "/events") && !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;") {
			t.Errorf("GET %s does not show the reason escaped", path)
		}
		if len(body) > 40_000 {
			t.Errorf("GET %s is %d bytes", path, len(body))
		}
	}
	// The links a hostile attribute makes lead to a refusal, not to another page.
	for _, path := range []string{"/vault/object/..%2F..%2Fadmin", "/vault/root/%22%3E%3Cimg%20src=x%3E", "/providers/javascript:alert(1)"} {
		res, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, res); res.StatusCode != 400 || strings.Contains(body, "<img") {
			t.Errorf("GET %s: %d, want 400\n%.300s", path, res.StatusCode, body)
		}
	}
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestVaultTermEndIndexed: a term deal's end (vault.ended) releases its shards' room from their providers' offers
// and takes its escrow out of the totals; the object stays listed, ended, with its shards as history.
func TestVaultTermEndIndexed(t *testing.T) {
	db, err := index.Open(markettest.TempIndex(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ix := index.New(db, nil, nil)
	key := func(i byte) string {
		seed := make([]byte, 32)
		seed[0] = i
		return tx.AddressOf(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)).String()
	}
	owner, p1, p2 := key(1), key(2), key(3)
	root := tx.Hash(sha256.Sum256([]byte("term"))).String()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	block := func(h int64, evs ...map[string]string) client.Block {
		b := client.Block{Height: h, Time: start.Add(time.Duration(h) * time.Second), Hash: fmt.Sprintf("%064X", h), Proposer: fmt.Sprintf("%040X", 1)}
		for _, e := range evs {
			typ := e["type"]
			delete(e, "type")
			b.Events = append(b.Events, client.Event{Type: typ, Attrs: e})
		}
		return b
	}
	shard := func(idx, prov string) map[string]string {
		return map[string]string{"type": api.EventVaultShardPlaced, api.AttrObjectID: "1", api.AttrStripe: "0", api.AttrIndex: idx,
			api.AttrRoot: root, api.AttrProvider: prov, api.AttrPrice: "5"}
	}
	offer := func(p string) map[string]string {
		return map[string]string{"type": api.EventStorageOffered, api.AttrProvider: p, api.AttrCapacity: "1073741824", api.AttrPrice: "5", api.AttrUsed: "0"}
	}
	err = ix.ApplyBlocks(context.Background(),
		block(1, offer(p1), offer(p2),
			map[string]string{"type": api.EventVaultStored, api.AttrObjectID: "1", api.AttrOwner: owner, api.AttrRoot: root,
				api.AttrSize: "1000", api.AttrShards: "2", api.AttrMonths: "1", api.AttrMaxPrice: "10", api.AttrAmount: "100", api.AttrHeight: "2"}),
		block(2, shard("0", p1), shard("1", p2),
			map[string]string{"type": api.EventVaultPlaced, api.AttrObjectID: "1", api.AttrOwner: owner, api.AttrShards: "2", api.AttrCost: "60", api.AttrRefund: "40"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before, err := db.VaultOverview(ctx)
	if err != nil || before.Objects != 1 || before.Shards != 2 || before.TermEscrow != 60 {
		t.Fatalf("placed: %+v %v", before, err)
	}
	err = ix.ApplyBlocks(ctx, block(3,
		map[string]string{"type": api.EventVaultPaid, api.AttrObjectID: "1", api.AttrProvider: p1, api.AttrShards: "1", api.AttrAmount: "30"},
		map[string]string{"type": api.EventVaultPaid, api.AttrObjectID: "1", api.AttrProvider: p2, api.AttrShards: "1", api.AttrAmount: "30"},
		map[string]string{"type": api.EventVaultEnded, api.AttrObjectID: "1", api.AttrOwner: owner, api.AttrRoot: root, api.AttrPaid: "60"}))
	if err != nil {
		t.Fatal(err)
	}
	after, err := db.VaultOverview(ctx)
	if err != nil || after.Objects != 0 || after.Shards != 0 || after.StoredBytes != 0 || after.TermEscrow != 0 || after.Providers != 0 {
		t.Fatalf("ended: %+v %v", after, err)
	}
	o, err := db.VaultObject(ctx, 1)
	if err != nil || o.State != index.VaultEnded || o.Escrow != 0 {
		t.Fatalf("object 1 after its end: %+v %v", o, err)
	}
	offers, err := db.StorageOffers(ctx, index.Page{})
	if err != nil || len(offers.Items) != 2 {
		t.Fatalf("offers: %+v %v", offers, err)
	}
	for _, off := range offers.Items {
		if off.UsedBytes != 0 {
			t.Errorf("offer %s still uses %d bytes after the end", off.Provider, off.UsedBytes)
		}
	}
}
