package index_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"math"
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
// to MaxReasonBytes; an event's row shows at most a few hundred characters of any attribute. The storage-proof
// events too (hostileProofEvents): none that does not read, or does not follow from what is indexed, changes an
// epoch, a shard, a repair, a provider's pay or the pool, and a number past what SQLite stores stops nothing.
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

	sent := 5 + hostileProofEvents(t, ix, db, owner, markup)

	h, err := web.New(db, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	if evs, _ := db.Events(ctx, index.EventFilter{}, index.Page{}); evs.Total != sent {
		t.Fatalf("%d events kept, want all %d", evs.Total, sent)
	}
	for _, path := range []string{"/vault", "/vault/object/1", "/vault/objects", "/events", "/events?kind=object&ref=1", "/blocks/1", "/blocks/2",
		"/accounts/" + owner, "/vault/object/2", "/vault/epochs", "/vault/repairs", "/vault/shards", "/blocks/4", "/blocks/5",
		"/events?kind=object&ref=2", "/vault/root/" + tx.Hash(sha256.Sum256([]byte("root"))).String(), "/api/vault/repairs?provider=" + proofKey(1)} {
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

func proofKey(i byte) string {
	seed := make([]byte, 32)
	seed[0], seed[1] = i, 0xee
	return tx.AddressOf(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)).String()
}

// hostileProofEvents sends storage-proof events after TestHostileVaultEvents' blocks (1 and 2): an object placed on
// a chain whose first epoch started, then for every proof event the ones a hostile node might make up — markup in a
// root, a seed, an address; numbers past what the index stores (which once stopped the indexer); an epoch not
// started, started twice, tallied twice; a shard of an unplaced object, held by another provider, not lost, not
// being rebuilt; a declaration with no message; a provider paid twice — among the ledger's own. Only the ledger's
// own change anything, and the indexer goes on. It returns how many events it sent.
func hostileProofEvents(t *testing.T, ix *index.Indexer, db *index.DB, owner, markup string) int {
	t.Helper()
	ctx := context.Background()
	root := tx.Hash(sha256.Sum256([]byte("root"))).String()
	seed := tx.Hash(sha256.Sum256([]byte("seed"))).String()
	p1, p2, p3, aud, p5 := proofKey(1), proofKey(2), proofKey(3), proofKey(4), proofKey(5)
	const huge = "18446744073709551615" // 2^64-1: reads as a uint64, is more than SQLite stores
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sent := 0
	block := func(h int64, evs ...map[string]string) client.Block {
		b := client.Block{Height: h, Time: start.Add(time.Duration(h) * time.Second), Hash: fmt.Sprintf("%064X", h), Proposer: fmt.Sprintf("%040X", 1)}
		for _, e := range evs {
			typ := e["type"]
			delete(e, "type")
			b.Events = append(b.Events, client.Event{Type: typ, Attrs: e})
			sent++
		}
		return b
	}
	epoch := func(e, seed, height string) map[string]string {
		return map[string]string{"type": api.EventVaultEpoch, api.AttrEpoch: e, api.AttrSeed: seed, api.AttrReveals: "0", api.AttrHeight: height}
	}
	shardEv := func(typ, idx, root, prov, epoch string, extra ...string) map[string]string {
		m := map[string]string{"type": typ, api.AttrObjectID: "2", api.AttrStripe: "0", api.AttrIndex: idx, api.AttrRoot: root,
			api.AttrProvider: prov, api.AttrEpoch: epoch}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	paid := func(prov, epoch, amount string) map[string]string {
		return map[string]string{"type": api.EventVaultEpochPaid, api.AttrProvider: prov, api.AttrEpoch: epoch, api.AttrAmount: amount,
			api.AttrShards: "1", api.AttrFailed: "1"}
	}
	tallied := func(epoch, decided, pool string) map[string]string {
		return map[string]string{"type": api.EventVaultTallied, api.AttrEpoch: epoch, api.AttrDecided: decided, api.AttrStoredBytes: "0",
			api.AttrFailed: "1", api.AttrLost: "0", api.AttrPaid: "7", api.AttrPool: pool}
	}
	stored := func(id, size string) map[string]string {
		return map[string]string{"type": api.EventVaultStored, api.AttrObjectID: id, api.AttrOwner: owner, api.AttrRoot: root,
			api.AttrSize: size, api.AttrShards: "4", api.AttrMonths: "1", api.AttrMaxPrice: "10", api.AttrAmount: "100", api.AttrHeight: "4"}
	}
	placed := func(idx, prov string) map[string]string {
		return map[string]string{"type": api.EventVaultShardPlaced, api.AttrObjectID: "2", api.AttrStripe: "0", api.AttrIndex: idx,
			api.AttrRoot: root, api.AttrProvider: prov, api.AttrPrice: "5"}
	}
	err := ix.ApplyBlocks(ctx,
		block(3,
			epoch("0", seed, "3"), epoch("0", seed, "3"), epoch(huge, seed, "3"), epoch("7", markup, "3"), epoch("8", seed, "99"),
			epoch("9", seed, "-3"), stored("2", "1000"), stored("3", huge)),
		block(4,
			placed("0", p1), placed("1", p2),
			map[string]string{"type": api.EventVaultPlaced, api.AttrObjectID: "2", api.AttrOwner: owner, api.AttrShards: "4", api.AttrCost: "60", api.AttrRefund: "40"},
			map[string]string{"type": api.EventVaultAttested, api.AttrEpoch: "0", api.AttrAuditor: aud, api.AttrFailed: "1"},
			map[string]string{"type": api.EventVaultAttested, api.AttrEpoch: "0", api.AttrAuditor: aud, api.AttrFailed: "1000"},
			map[string]string{"type": api.EventVaultAttested, api.AttrEpoch: "9", api.AttrAuditor: aud, api.AttrFailed: "0"},
			map[string]string{"type": api.EventVaultAttested, api.AttrEpoch: "0", api.AttrAuditor: markup, api.AttrFailed: "0"},
			map[string]string{"type": api.EventVaultHeld, api.AttrProvider: p1, api.AttrShards: "1"},
			map[string]string{"type": api.EventVaultHeld, api.AttrProvider: markup, api.AttrShards: huge},
			shardEv(api.EventVaultProofFailed, "0", root, p2, "0", api.AttrFailures, "1"),
			shardEv(api.EventVaultProofFailed, "0", root, p1, "0", api.AttrFailures, "1"),
			shardEv(api.EventVaultProofFailed, "0", markup, p1, "0", api.AttrFailures, "1"),
			shardEv(api.EventVaultProofFailed, "0", root, p1, "9", api.AttrFailures, "1"),
			shardEv(api.EventVaultProofFailed, "0", root, p1, "0", api.AttrFailures, "-1"),
			shardEv(api.EventVaultProofFailed, "0", root, p1, "0", api.AttrFailures, huge),
			shardEv(api.EventVaultProofFailed, "3", root, p1, "0", api.AttrFailures, "1"),
			map[string]string{"type": api.EventVaultProofFailed, api.AttrObjectID: "1", api.AttrStripe: "0", api.AttrIndex: "0", api.AttrRoot: root,
				api.AttrProvider: p1, api.AttrEpoch: "0", api.AttrFailures: "1"},
			shardEv(api.EventVaultRepair, "1", root, p3, "0", api.AttrPrice, "5"),
			shardEv(api.EventVaultRepaired, "0", root, p1, "0", api.AttrAmount, "5"),
			paid(p1, "0", "7"), paid(p1, "0", "7"), paid(p2, "0", "9223372036854775808"), paid(markup, "0", "1"), paid(p2, "3", "1"),
			tallied("0", "yes", "53"), tallied("0", "true", huge), tallied("0", "true", "53"), tallied("0", "true", "53"), tallied("5", "false", "1")),
		block(5,
			shardEv(api.EventVaultShardLost, "0", root, p2, "0"),
			shardEv(api.EventVaultShardLost, "0", root, p1, "0"),
			shardEv(api.EventVaultShardLost, "0", root, p1, "0"),
			shardEv(api.EventVaultRepair, "0", root, markup, "0", api.AttrPrice, "5"),
			shardEv(api.EventVaultRepair, "0", root, p3, "0", api.AttrPrice, "5"),
			shardEv(api.EventVaultRepair, "0", root, p2, "0", api.AttrPrice, "5"),
			shardEv(api.EventVaultRepaired, "0", root, p1, "0", api.AttrAmount, "5"),
			// p3 does not declare it rebuilt in time: lost by it, drawn onto p5 (the first repair failed).
			shardEv(api.EventVaultShardLost, "0", root, p3, "0"),
			shardEv(api.EventVaultRepair, "0", root, p5, "0", api.AttrPrice, "6")),
	)
	if err != nil {
		t.Fatalf("the indexer stopped: %v", err)
	}

	epochs, err := db.VaultEpochs(ctx, index.Page{})
	if err != nil || epochs.Total != 1 {
		t.Fatalf("epochs %+v (%v): want epoch 0 alone", epochs, err)
	}
	if e := epochs.Items[0]; e.Epoch != 0 || e.StartHeight != 3 || e.Attestations != 1 || !e.Tallied || !e.Decided || e.Failed != 1 ||
		e.Paid != 7 || e.Pool != 53 || e.TallyHeight != 4 || e.Challenged != 0 || e.SuccessPPM != -1 {
		t.Errorf("epoch 0: %+v", e)
	}
	if _, err := db.VaultObject(ctx, 3); err == nil {
		t.Error("an object of 2^64-1 bytes was indexed")
	}
	o, err := db.VaultObject(ctx, 2)
	if err != nil || o.State != index.VaultPlaced || !o.Pooled || o.Escrow != 60 {
		t.Errorf("object 2: %+v (%v)", o, err)
	}
	shards, err := db.VaultShards(ctx, index.VaultShardFilter{ObjectID: 2}, index.Page{})
	if err != nil || shards.Total != 2 {
		t.Fatalf("object 2's shards %+v (%v)", shards, err)
	}
	if s := shards.Items[0]; s.Provider != p5 || s.PricePerGiBMonth != 6 || s.Lost || !s.Repairing || s.RepairHeight != 5 || s.FailedEpochs != 1 ||
		s.Failures != 0 || s.HeldHeight != 0 {
		t.Errorf("shard 0: %+v", s)
	}
	if s := shards.Items[1]; s.Provider != p2 || s.Lost || s.Repairing || s.FailedEpochs != 0 {
		t.Errorf("shard 1: %+v", s)
	}
	hist, err := db.VaultProofEvents(ctx, index.VaultProofFilter{ObjectID: 2}, index.Page{})
	if err != nil || hist.Total != 5 || hist.Items[0].Type != api.EventVaultRepair || hist.Items[1].Type != api.EventVaultShardLost ||
		hist.Items[1].Provider != p3 || hist.Items[2].Type != api.EventVaultRepair || hist.Items[3].Type != api.EventVaultShardLost ||
		hist.Items[4].Type != api.EventVaultProofFailed {
		t.Errorf("object 2's proof history %+v (%v)", hist, err)
	}
	repairs, err := db.VaultRepairs(ctx, index.VaultRepairFilter{}, index.Page{})
	if err != nil || repairs.Total != 2 || repairs.Items[0].State != index.RepairRebuilding || repairs.Items[0].LostProvider != p3 ||
		repairs.Items[0].Provider != p5 || repairs.Items[0].LostHeight != 5 || repairs.Items[1].State != index.RepairFailed ||
		repairs.Items[1].LostProvider != p1 || repairs.Items[1].Provider != p3 {
		t.Errorf("repairs %+v (%v)", repairs, err)
	}
	if e, err := db.VaultEarnings(ctx, p3); err != nil || e.Lost != 1 || e.Repairs != 1 || e.Repaired != 0 {
		t.Errorf("p3's Vault earnings %+v (%v)", e, err)
	}
	if e, err := db.VaultEarnings(ctx, p1); err != nil || e.EpochPay != 7 || e.EpochsPaid != 1 || e.Failed != 1 || e.Lost != 1 {
		t.Errorf("p1's Vault earnings %+v (%v)", e, err)
	}
	if e, err := db.VaultEarnings(ctx, p2); err != nil || e.Earned != 0 || e.EpochsPaid != 0 || e.Lost != 0 {
		t.Errorf("p2's Vault earnings %+v (%v)", e, err)
	}
	ov, err := db.VaultOverview(ctx)
	if err != nil || !ov.Audited || ov.Pool != 53 || ov.PaidTotal != 7 || ov.Shards != 2 || ov.ShardsLost != 0 || ov.ShardsRepairing != 1 ||
		ov.ShardsDeclared != 0 || ov.LastTallied == nil || ov.LastTallied.Epoch != 0 || ov.TermEscrow != 0 {
		t.Errorf("overview %+v (%v)", ov, err)
	}
	return sent
}

func rewardKey(i byte) string {
	seed := make([]byte, 32)
	seed[0], seed[1] = i, 0x5e
	return tx.AddressOf(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)).String()
}

// TestHostileRewardEvents: the rewards' events come from the chain, through whatever node the explorer follows.
// Among the ledger's own, the ones a hostile node might make up — markup for an address, a reason the ledger has
// not, a number that does not read or is past what SQLite stores, a reward with a reason that earns nothing, work
// above its cap or a cap above the burns, an auditor agreeing with more verdicts than were decided, pots that do
// not add up to what was minted (or wrap around 2^64), a provider or auditor paid twice an epoch, a reward after
// its epoch's record, an epoch recorded twice, a claim or a forfeit of nothing or of more than is owed, a payment
// whose burn does not read — are kept as events and change nothing: no epoch, reward, total or burn. Sums past
// 2^63-1 stop there instead of stopping the indexer, and the pages show it all escaped.
func TestHostileRewardEvents(t *testing.T) {
	db, err := index.Open(markettest.TempIndex(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ix := index.New(db, nil, nil) // no node: nothing here is read back
	p1, p2, p3, p4, aud := rewardKey(1), rewardKey(2), rewardKey(3), rewardKey(4), rewardKey(5)
	const markup = `"><img src=x onerror=alert(1)><script>alert("x")</script>`
	const huge, most = "18446744073709551615", "9223372036854775807" // 2^64-1 reads as a uint64; 2^63-1 is what SQLite stores
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sent := 0
	block := func(h int64, evs ...map[string]string) client.Block {
		b := client.Block{Height: h, Time: start.Add(time.Duration(h) * time.Second), Hash: fmt.Sprintf("%064X", h), Proposer: fmt.Sprintf("%040X", 1)}
		for _, e := range evs {
			typ := e["type"]
			delete(e, "type")
			b.Events = append(b.Events, client.Event{Type: typ, Attrs: e})
			sent++
		}
		return b
	}
	pr := func(prov, epoch, avail, why string) map[string]string {
		return map[string]string{"type": api.EventProviderRewarded, api.AttrProvider: prov, api.AttrEpoch: epoch, api.AttrAvailability: avail,
			api.AttrWeight: "10", api.AttrWhy: why}
	}
	wr := func(prov, work, burned, cap, why string) map[string]string {
		return map[string]string{"type": api.EventWorkRewarded, api.AttrProvider: prov, api.AttrEpoch: "0", api.AttrWork: work, api.AttrBurned: burned,
			api.AttrCap: cap, api.AttrWhy: why}
	}
	ar := func(auditor, agreeing string) map[string]string {
		return map[string]string{"type": api.EventAuditorRewarded, api.AttrAuditor: auditor, api.AttrEpoch: "0", api.AttrAmount: "30",
			api.AttrWeight: "1", api.AttrAgreeing: agreeing, api.AttrDecided: "2"}
	}
	er := func(epoch, emission, minted, auditors, avail, work string) map[string]string {
		return map[string]string{"type": api.EventEpochRewarded, api.AttrEpoch: epoch, api.AttrEmission: emission, api.AttrMinted: minted,
			api.AttrAuditors: auditors, api.AttrAvailability: avail, api.AttrWork: work, api.AttrBurns: "100", api.AttrUtilisation: "0",
			api.AttrWeightTotal: "10"}
	}
	claim := func(prov, amount, earned string) map[string]string {
		return map[string]string{"type": api.EventRewardsClaimed, api.AttrProvider: prov, api.AttrAmount: amount, api.AttrEarned: earned}
	}
	forfeit := func(prov, epoch, amount string) map[string]string {
		return map[string]string{"type": api.EventRewardsForfeited, api.AttrProvider: prov, api.AttrEpoch: epoch, api.AttrAmount: amount}
	}
	paid := func(burned string) map[string]string {
		return map[string]string{"type": api.EventLeasePaid, api.AttrLeaseID: "1", api.AttrProvider: p1, api.AttrAmount: "100", api.AttrTake: "2",
			api.AttrPaidTotal: "109", api.AttrBurned: burned}
	}
	ctx := context.Background()
	err = ix.ApplyBlocks(ctx,
		block(1,
			pr(p1, "0", "100", "earned"), pr(p1, "0", "100", "earned"), pr(markup, "0", "1", "earned"), pr(p2, "0", "5", "not_up"),
			pr(p2, "0", "0", "asleep"), pr(p2, "0", huge, "earned"), pr(p2, "0", "-1", "earned"), pr(p2, "0", "0", "not_up"),
			wr(p1, "60", "100", "50", "earned"), wr(p1, "50", "40", "50", "earned"), wr(p1, "20", "100", "50", "earned"),
			wr(p1, "20", "100", "50", "earned"), wr(p2, "5", "100", "50", "jailed"),
			ar(aud, "3"), ar(aud, "2"), ar(markup, "2"), ar(aud, "2"),
			forfeit(p1, "0", "200"),
			er("0", "1000", "150", "30", "100", "20"), er("0", "1000", "150", "30", "100", "20"), er("1", "1000", "999", "30", "100", "20"),
			er("2", huge, "0", "0", "0", "0"), er("3", "1000", "1500", "500", "500", "500"),
			pr(p3, "0", "1", "earned"),
			paid("x"), paid("7"),
			er("4", most, "9223372036854775806", "9223372036854775805", "1", "0"),
			er("5", most, "0", most, most, "2")), // the pots wrap around 2^64 to the 0 minted
		block(2,
			claim(p1, "500", "1000"), claim(p1, "0", "120"), claim(p2, "10", "10"), claim(p1, "120", "100"), claim(p1, "120", "120"),
			claim(p1, "1", "120"), claim(markup, "1", "1"),
			pr(p3, "6", "40", "earned"), pr(p4, "6", most, "earned"), pr(p4, "7", most, "stake_short"),
			forfeit(markup, "6", "1"), forfeit(p3, "6", "0"), forfeit(p3, "6", "40"), forfeit(p3, "6", "40"),
			er("6", "1000", "40", "0", "40", "0")),
	)
	if err != nil {
		t.Fatalf("the indexer stopped: %v", err)
	}

	epochs, err := db.RewardEpochs(ctx, index.Page{})
	if err != nil || epochs.Total != 3 || epochs.Items[0].Epoch != 6 || epochs.Items[1].Epoch != 4 || epochs.Items[2].Epoch != 0 {
		t.Fatalf("epochs %+v (%v): want 6, 4 and 0", epochs, err)
	}
	if e := epochs.Items[2]; e.Emission != 1000 || e.Minted != 150 || e.Auditors != 30 || e.Availability != 100 || e.Work != 20 || e.Unminted != 850 ||
		e.Judged != 2 || e.Earning != 1 || e.Worked != 1 || e.AuditorsPaid != 1 || e.Height != 1 {
		t.Errorf("epoch 0: %+v", e)
	}
	rows, err := db.ProviderRewards(ctx, p1, index.Page{})
	if err != nil || rows.Total != 1 {
		t.Fatalf("p1's rewards %+v (%v)", rows, err)
	}
	if r := rows.Items[0]; !r.Judged || r.Availability != 100 || r.Weight != 10 || r.Why != "earned" || !r.Worked || r.Work != 20 || r.Burned != 100 ||
		r.Cap != 50 || r.Forfeited != 0 || r.Explain != api.RewardEarned.Explain() {
		t.Errorf("p1 in epoch 0: %+v", r)
	}
	if rows, _ := db.ProviderRewards(ctx, p2, index.Page{}); rows.Total != 1 || rows.Items[0].Why != "not_up" || rows.Items[0].Worked || rows.Items[0].Availability != 0 {
		t.Errorf("p2's rewards: %+v", rows)
	}
	if rows, _ := db.ProviderRewards(ctx, p3, index.Page{}); rows.Total != 1 || rows.Items[0].Epoch != 6 || rows.Items[0].Forfeited != 40 ||
		!strings.Contains(rows.Items[0].Explain, "forfeited") {
		t.Errorf("p3's rewards: %+v", rows)
	}
	for addr, want := range map[string]index.RewardTotals{
		p1:  {Availability: 100, Work: 20, Earned: 120, Claimed: 120, Claims: 1, Epochs: 1, EarningEpochs: 1, LastWhy: "earned"},
		p2:  {Epochs: 1, LastWhy: "not_up"},
		p3:  {Availability: 40, Earned: 40, Forfeited: 40, Epochs: 1, EarningEpochs: 1, LastEpoch: 6, LastWhy: "earned"},
		p4:  {Availability: math.MaxInt64, Earned: math.MaxInt64, Owed: math.MaxInt64, Epochs: 2, EarningEpochs: 2, LastEpoch: 7, LastWhy: "stake_short"},
		aud: {Auditor: 30, Earned: 30},
	} {
		got, err := db.Rewards(ctx, addr)
		got.Height, want.Address = 0, addr
		if err != nil || got != want {
			t.Errorf("%s's totals: %+v, want %+v (%v)", addr, got, want, err)
		}
	}
	if got, _ := db.Rewards(ctx, markup); got.Earned != 0 {
		t.Errorf("markup earned %+v", got)
	}
	top, err := db.TopEarners(ctx, index.Page{})
	if err != nil || top.Total != 4 || top.Items[0].Address != p4 || top.Items[1].Address != p1 || top.Items[2].Address != p3 || top.Items[3].Address != aud {
		t.Errorf("top earners %+v (%v)", top, err)
	}
	ov, err := db.RewardsOverview(ctx)
	if err != nil || !ov.On || ov.Epochs != 3 || ov.Minted != math.MaxInt64 || ov.Emission != math.MaxInt64 || ov.Burned != 47 || ov.LeaseBurns != 7 ||
		ov.Forfeited != 40 || ov.Claimed != 120 || ov.NetIssuance != math.MaxInt64-47 || ov.Earners != 4 || ov.Last == nil || ov.Last.Epoch != 6 {
		t.Errorf("overview %+v (%v)", ov, err)
	}
	if hist, err := db.RewardHistory(ctx, 10); err != nil || len(hist) != 2 || hist[1].Burned != 47 || hist[0].Burned != 7 || hist[1].Claimed != 120 {
		t.Errorf("history %+v (%v)", hist, err)
	}
	if pays, err := db.Payments(ctx, p1, 0, index.Page{}); err != nil || pays.Total != 1 || pays.Items[0].Burned != 7 {
		t.Errorf("p1's payments %+v (%v): want the one whose burn reads", pays, err)
	}
	if evs, _ := db.Events(ctx, index.EventFilter{}, index.Page{}); evs.Total != sent {
		t.Fatalf("%d events kept, want all %d", evs.Total, sent)
	}

	h, err := web.New(db, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, path := range []string{"/rewards", "/rewards/epochs", "/rewards/earners", "/events?type=provider.rewarded", "/events?type=rewards.claimed",
		"/events?type=epoch.rewarded", "/blocks/1", "/blocks/2", "/accounts/" + p1, "/api/rewards", "/api/rewards/earners", "/api/rewards/epochs"} {
		res, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, res)
		if res.StatusCode != 200 {
			t.Errorf("GET %s: %d\n%.400s", path, res.StatusCode, body)
		}
		for _, bad := range []string{"<script>alert", "<img", `href="javascript:`} {
			if strings.Contains(body, bad) {
				i := strings.Index(body, bad)
				t.Errorf("GET %s shows %q unescaped: %s", path, bad, body[max(i-100, 0):min(i+100, len(body))])
			}
		}
		if len(body) > 60_000 {
			t.Errorf("GET %s is %d bytes", path, len(body))
		}
	}
}
