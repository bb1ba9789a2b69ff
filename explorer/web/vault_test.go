package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/explorer/index"
	"github.com/sparenet/spare/explorer/internal/markettest"
	"github.com/sparenet/spare/explorer/web"
	"github.com/sparenet/spare/ledger/api"
)

// TestVaultPages renders every Vault page and its JSON twin on a real chain with a Vault history
// (markettest.Vault: storage offers, a term object of two stripes, a permanent one, one claiming another's root,
// one the ledger could not place), indexed live: no Go syntax anywhere; the figures the issue names are there —
// each object's shards with their providers linked, the unplaced object's reason, a root's objects, each
// provider's offer and the shards it holds (as the ledger counts them), the network's stored bytes and the
// Vault pool with their charts, how the pages read proofs. Bad ids, roots, filters and page sizes are 400 or
// 404 with the problem named. Then storage proofs (markettest.VaultProofs: a shard failed two epochs in a row,
// lost, drawn onto another provider, rebuilt and repaired; decided epochs paying the providers): the Vault page
// charts the pool and the proof success rate and lists the epochs and the repair; the object's page and its
// shard's root show the shard's proof history and repair; each provider's page its Vault pay and failures, as
// the ledger counts them.
func TestVaultPages(t *testing.T) {
	m := markettest.Start(t, markettest.VaultOptions())
	path := markettest.TempIndex(t)
	db, stop := markettest.StartIndexer(t, path, m.C)
	h := m.Vault(nil)
	madeID := m.VaultLease("owner", "s1", h.Roots["permanent"]) // a job whose receipt vouches for the permanent object
	markettest.WaitIndexed(t, db, m.Last)
	stop()
	db, err := index.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	hd, err := web.New(db, m.C, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hd)
	t.Cleanup(srv.Close)
	ctx := context.Background()

	paths := []string{"/vault", "/vault/objects", "/vault/offers", "/vault/shards", "/vault/objects?deal=permanent",
		"/vault/objects?owner=" + m.Addr("owner") + "&state=placed&deal=term", "/vault/objects?root=" + h.Roots["term"].String(),
		"/vault/shards?provider=" + m.Addr("s1"), "/vault/offers?limit=2&offset=2", "/accounts/" + m.Addr("owner"), "/vault/epochs",
		"/vault/epochs?limit=3&offset=1", "/vault/repairs", "/vault/repairs?state=lost&provider=" + m.Addr("s1")}
	for _, s := range index.VaultStates {
		paths = append(paths, "/vault/objects?state="+s)
	}
	for _, id := range h.Objects {
		n := strconv.FormatUint(id, 10)
		paths = append(paths, "/vault/object/"+n, "/events?kind=object&ref="+n)
	}
	for _, root := range h.Roots {
		paths = append(paths, "/vault/root/"+root.String())
	}
	term := strconv.FormatUint(h.Objects["term"], 10)
	paths = append(paths, "/vault/object/"+term+"?limit=3&offset=3")
	shards, err := m.C.AllVaultShards(ctx, h.Objects["term"])
	if err != nil || len(shards) != 8 {
		t.Fatalf("the term object's shards: %d (%v)", len(shards), err)
	}
	paths = append(paths, "/vault/root/"+shards[5].Root.String(), "/vault/shards?root="+shards[5].Root.String())
	for _, key := range h.Storage {
		paths = append(paths, "/providers/"+m.Addr(key))
	}

	pages := map[string]string{}
	covered := map[string]bool{}
	for _, p := range paths {
		code, body, _ := get(t, srv, p)
		if code != 200 {
			t.Errorf("GET %s: %d\n%.400s", p, code, body)
		}
		for _, l := range htmlLeaks(body) {
			t.Errorf("GET %s shows Go syntax: %s", p, l)
		}
		pages[p] = body
		api := "/api" + p
		code, body, _ = get(t, srv, api)
		found, err := jsonLeaks(body)
		if code != 200 || err != nil {
			t.Errorf("GET %s: %d, %v\n%.400s", api, code, err, body)
		}
		for _, l := range found {
			t.Errorf("GET %s answers Go syntax: %s", api, l)
		}
		pages[api] = body
		route, _, _ := strings.Cut(api, "?")
		covered[routePattern(route)] = true
	}
	for _, r := range web.APIRoutes() {
		if strings.HasPrefix(r, "/api/vault") && !covered[r] {
			t.Errorf("route %s (and its page) is not rendered by this test", r)
		}
	}

	// Provenance: the lease whose signed receipt carries the permanent object's root is named on the object's
	// page, on its root's, and the lease's page links the object.
	perm, made := strconv.FormatUint(h.Objects["permanent"], 10), strconv.FormatUint(madeID, 10)
	for _, p := range []string{"/vault/object/" + perm, "/vault/root/" + h.Roots["permanent"].String()} {
		if b := pages[p]; !strings.Contains(b, `id="produced-by"`) || !strings.Contains(b, `href="/leases/`+made+`"`) {
			t.Errorf("%s does not name lease %s as the job that made it:\n%.600s", p, made, b)
		}
	}
	if b := pages["/vault/object/"+strconv.FormatUint(h.Objects["term"], 10)]; strings.Contains(b, `id="produced-by"`) {
		t.Error("the term object, which no receipt names, is said to be a job's outputs")
	}
	var pv struct {
		ProducedBy struct {
			Total int           `json:"total"`
			Items []index.Lease `json:"items"`
		} `json:"produced_by"`
	}
	if err := json.Unmarshal([]byte(pages["/api/vault/object/"+perm]), &pv); err != nil || pv.ProducedBy.Total != 1 ||
		strconv.FormatUint(pv.ProducedBy.Items[0].ID, 10) != made || pv.ProducedBy.Items[0].VaultRoot != h.Roots["permanent"].String() {
		t.Errorf("the object's produced_by: %+v (%v)", pv.ProducedBy, err)
	}
	if code, b, _ := get(t, srv, "/leases/"+made); code != 200 || !strings.Contains(b, `id="lease-vault-root"`) || !strings.Contains(b, `href="/vault/root/`+h.Roots["permanent"].String()+`"`) {
		t.Errorf("lease %s's page does not link its outputs' Vault object: %d\n%.600s", made, code, b)
	}

	// The network's storage: the API's figures are the index's, and the page shows them with their charts.
	ov, err := db.VaultOverview(ctx)
	if err != nil || ov.Objects != 3 || ov.Unplaced != 1 || ov.Shards != 16 {
		t.Fatalf("overview %+v (%v)", ov, err)
	}
	var v struct {
		Stored     *uint64 `json:"stored_bytes"`
		Endowments *uint64 `json:"endowments"`
		Pool       *uint64 `json:"pool"`
		History    []index.VaultPoint
		Proofs     string `json:"proofs"`
		Offers     struct {
			Total int `json:"total"`
		} `json:"offer_list"`
	}
	if err := json.Unmarshal([]byte(pages["/api/vault"]), &v); err != nil || v.Stored == nil || *v.Stored != ov.StoredBytes ||
		v.Endowments == nil || *v.Endowments != ov.Endowments || ov.Endowments != 0 || v.Pool == nil || *v.Pool != ov.Pool || ov.Pool == 0 ||
		len(v.History) < 2 || v.Proofs != web.ProofsNote || v.Offers.Total != 4 {
		t.Errorf("/api/vault: %+v (%v)", v, err)
	}
	page := pages["/vault"]
	for _, want := range []string{`id="vault-stored" href="/vault/shards">` + html.EscapeString(bytesText(ov.StoredBytes)) + `</a>`,
		`id="vault-objects" href="/vault/objects?state=placed">3</a>`, `id="vault-endowments" href="/vault/objects?deal=permanent">`,
		`<figure id="stored-chart"><svg`, "Bytes stored in the Vault", "Held for storage providers", html.EscapeString(web.ProofsNote),
		`id="vault-pool" href="/vault/epochs">` + html.EscapeString(client.FormatAmount(ov.Pool)) + `</a>`,
		`id="offer-` + m.Addr("s4") + `"`, "no: full", "0.0035 SPR/GiB-month"} {
		if !strings.Contains(page, want) {
			t.Errorf("/vault lacks %s", want)
		}
	}

	// An object's page: every shard with its provider linked, as the ledger drew them; its deal and escrow.
	page = pages["/vault/object/"+term]
	for _, s := range shards {
		row := fmt.Sprintf(`id="shard-%s-%d-%d"`, term, s.Stripe, s.Index)
		i := strings.Index(page, row)
		if i < 0 || !strings.Contains(page[i:min(i+1500, len(page))], `href="/providers/`+s.Provider.String()+`"`) {
			t.Errorf("the term object's page lacks shard %d/%d on provider %s", s.Stripe, s.Index, s.Provider)
		}
	}
	if !strings.Contains(page, "12 months") || !strings.Contains(page, "2+2, 2 stripes of 64 KiB shards") || !strings.Contains(page, html.EscapeString(web.ProofsNote)) {
		t.Error("the term object's page lacks its deal, its coding or the note on proofs")
	}
	if p := pages["/vault/object/"+term+"?limit=3&offset=3"]; strings.Count(p, `id="shard-`) != 3 || !strings.Contains(p, "4–6 of 8") {
		t.Error("a page of the term object's shards is not 3 of them, 4–6 of 8")
	}
	if !strings.Contains(pages["/vault/object/"+strconv.FormatUint(h.Objects["same_root"], 10)], `id="same-root">2 objects claim this root`) {
		t.Error("the object claiming another's root does not say so")
	}
	unplaced := pages["/vault/object/"+strconv.FormatUint(h.Objects["unplaced"], 10)]
	if !strings.Contains(unplaced, `id="unplaced-reason"`) || !strings.Contains(unplaced, "only 3 storage providers had room for a shard at the price") {
		t.Error("the unplaced object's page does not give the ledger's reason")
	}
	if !strings.Contains(pages["/api/vault/object/"+strconv.FormatUint(h.Objects["unplaced"], 10)], `"state": "unplaced"`) {
		t.Error("the unplaced object's API answer does not say unplaced")
	}
	root := pages["/vault/root/"+h.Roots["term"].String()]
	if !strings.Contains(root, `id="object-`+term+`"`) || !strings.Contains(root, `id="object-`+strconv.FormatUint(h.Objects["same_root"], 10)+`"`) {
		t.Error("the term object's root does not list both objects claiming it")
	}
	if !strings.Contains(pages["/vault/root/"+shards[5].Root.String()], fmt.Sprintf(`id="shard-%s-%d-%d"`, term, shards[5].Stripe, shards[5].Index)) {
		t.Error("a shard's root does not list its shard")
	}
	// Vault events show prices per GiB-month and sizes in bytes.
	evs := pages["/events?kind=object&ref="+term]
	if !strings.Contains(evs, "/GiB-month") || strings.Contains(evs, "SPR/h") || !strings.Contains(evs, "size=200 KiB") {
		t.Errorf("the term object's events do not show prices per GiB-month and sizes in bytes")
	}

	// A provider's page: its offer and what it holds, as the ledger counts it.
	for _, key := range h.Storage {
		addr := m.Addr(key)
		offer, err := m.C.StorageOffer(ctx, m.Net.Keys[key].Address())
		if err != nil {
			t.Fatal(err)
		}
		held := 0
		for _, id := range h.Objects {
			all, _ := m.C.AllVaultShards(ctx, id)
			for _, s := range all {
				if s.Provider.String() == addr {
					held++
				}
			}
		}
		page := pages["/providers/"+addr]
		for _, want := range []string{fmt.Sprintf(`id="shard-count" href="/vault/shards?provider=%s">%d</a>`, addr, held),
			`<span id="shard-bytes">` + html.EscapeString(bytesText(offer.UsedBytes)) + `</span>`,
			"Offers <strong>" + bytesText(offer.CapacityBytes) + "</strong>"} {
			if !strings.Contains(page, want) {
				t.Errorf("%s's page lacks %s", key, want)
			}
		}
		var pv struct {
			Storage index.ProviderStorage `json:"storage"`
		}
		if err := json.Unmarshal([]byte(pages["/api/providers/"+addr]), &pv); err != nil || pv.Storage.Shards != held ||
			pv.Storage.Bytes != offer.UsedBytes || pv.Storage.Offer == nil || pv.Storage.Offer.PricePerGiBMonth != offer.PricePerGiBMonth {
			t.Errorf("/api/providers/%s storage %+v (%v), ledger %+v with %d shards", addr, pv.Storage, err, offer, held)
		}
	}
	if !strings.Contains(pages["/accounts/"+m.Addr("owner")], "Objects stored in the Vault") {
		t.Error("the owner's page does not list its objects")
	}

	// Search: a root leads to its page, an object's id to its own.
	if code, _, hdr := get(t, srv, "/search?q="+strings.ToUpper(h.Roots["unplaced"].String())); code != 303 || hdr.Get("Location") != "/vault/root/"+h.Roots["unplaced"].String() {
		t.Errorf("search for a root: %d to %q", code, hdr.Get("Location"))
	}
	if _, body, _ := get(t, srv, "/api/search?q="+term); !strings.Contains(body, `"/vault/object/`+term+`"`) {
		t.Errorf("search for %s: %s", term, body)
	}

	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/vault?x=1", 400, "unknown parameter"},
		{"/vault/object/0", 400, "positive whole number"},
		{"/vault/object/abc", 400, "positive whole number"},
		{"/vault/object/424242", 404, "vault object 424242: not found"},
		{"/vault/object/" + term + "?limit=500", 400, "limit"},
		{"/vault/root/xyz", 400, "want 64 hex digits"},
		{"/vault/root/%3Cscript%3Ealert(1)%3C%2Fscript%3E", 400, "want 64 hex digits"},
		{"/vault/root/" + strings.Repeat("0", 64), 404, "no object or shard with this root"},
		{"/vault/objects?state=lost", 400, "state &#34;lost&#34;: use one of placing"},
		{"/vault/objects?deal=forever", 400, "deal"},
		{"/vault/objects?owner=bob", 400, "owner"},
		{"/vault/objects?root=zz", 400, "root"},
		{"/vault/objects?limit=5000", 400, "limit"},
		{"/vault/objects?colour=red", 400, "unknown parameter"},
		{"/vault/shards?provider=x", 400, "provider"},
		{"/vault/offers?offset=-1", 400, "offset"},
		{"/events?kind=object&ref=x", 400, "positive whole number"},
		{"/vault/epochs?epoch=3", 400, "unknown parameter"},
		{"/vault/repairs?state=mended", 400, "state &#34;mended&#34;: use one of lost"},
		{"/vault/repairs?provider=x", 400, "provider"},
		{"/vault/repairs?limit=0", 400, "limit"},
	} {
		code, body, _ := get(t, srv, tc.path)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d, want %d containing %q; body:\n%.600s", tc.path, code, tc.code, tc.want, body)
		}
		if strings.Contains(body, "<script>") {
			t.Errorf("GET %s echoes markup unescaped", tc.path)
		}
		var e map[string]string
		if acode, abody, _ := get(t, srv, "/api"+tc.path); acode != tc.code || json.Unmarshal([]byte(abody), &e) != nil || e["error"] == "" {
			t.Errorf("GET /api%s: %d %s", tc.path, acode, abody)
		}
	}

	// Storage proofs, indexed live again.
	db2, stop2 := markettest.StartIndexer(t, path, m.C)
	defer stop2()
	ph := m.VaultProofs()
	markettest.WaitIndexed(t, db2, m.Last)
	checkProofPages(t, m, srv, ph)
}

// checkProofPages renders the pages storage proofs show on (after markettest.VaultProofs) and checks them
// against the ledger.
func checkProofPages(t *testing.T, m *markettest.Market, srv *httptest.Server, h markettest.VaultProofsHistory) {
	t.Helper()
	ctx := context.Background()
	obj := strconv.FormatUint(h.Object, 10)
	failed, repaired := h.Failed.Provider.String(), h.Repaired.Provider.String()
	paths := []string{"/vault", "/vault/epochs", "/vault/repairs", "/vault/repairs?state=repaired", "/vault/repairs?provider=" + failed,
		"/vault/object/" + obj, "/vault/root/" + h.Failed.Root.String(), "/providers/" + failed, "/providers/" + repaired,
		"/vault/shards?provider=" + repaired, "/events?kind=object&ref=" + obj}
	pages := map[string]string{}
	for _, p := range paths {
		for _, path := range []string{p, "/api" + p} {
			code, body, _ := get(t, srv, path)
			if code != 200 {
				t.Errorf("GET %s: %d\n%.400s", path, code, body)
			}
			leaks := htmlLeaks(body)
			if strings.HasPrefix(path, "/api") {
				var err error
				if leaks, err = jsonLeaks(body); err != nil {
					t.Errorf("GET %s: %v", path, err)
				}
			}
			for _, l := range leaks {
				t.Errorf("GET %s shows Go syntax: %s", path, l)
			}
			pages[path] = body
		}
	}
	var pool api.VaultPool
	if err := m.C.Query(ctx, api.QueryVaultPool, nil, &pool); err != nil {
		t.Fatal(err)
	}

	// The Vault page: the pool and what it paid, the last epoch's rate, the repair; the charts; the epochs.
	page := pages["/vault"]
	for _, want := range []string{`id="vault-pool" href="/vault/epochs">` + html.EscapeString(client.FormatAmount(pool.Balance)) + `</a>`,
		`id="vault-paid" href="/events?type=vault.epoch_paid">` + html.EscapeString(client.FormatAmount(pool.PaidTotal)) + `</a>`,
		`<figure id="pool-chart"><svg`, `<figure id="success-chart"><svg`, `<figure id="failed-chart"><svg`, "The Vault pool",
		"Proof success rate", `id="shards-repaired" href="/vault/repairs?state=repaired">1</a>`, `id="shards-lost" href="/vault/repairs?state=lost">0</a>`,
		`id="last-success" href="/vault/epochs">100.0 %</a>`, `class="mono repair-provider" href="/providers/` + repaired + `"`} {
		if !strings.Contains(page, want) {
			t.Errorf("/vault lacks %s", want)
		}
	}
	var v struct {
		Pool        uint64 `json:"pool"`
		PaidTotal   uint64 `json:"paid_total"`
		LastTallied struct {
			Epoch uint64 `json:"epoch"`
		} `json:"last_tallied"`
		Repairs struct {
			Total int `json:"total"`
		} `json:"repairs"`
		EpochHistory []index.VaultEpochPoint `json:"epoch_history"`
	}
	if err := json.Unmarshal([]byte(pages["/api/vault"]), &v); err != nil || v.Pool != pool.Balance || v.PaidTotal != pool.PaidTotal ||
		v.LastTallied.Epoch < h.LastEpoch || v.Repairs.Total != 1 || len(v.EpochHistory) == 0 {
		t.Errorf("/api/vault: %+v (%v); ledger pool %+v", v, err, pool)
	}
	epochs := pages["/vault/epochs"]
	for _, want := range []string{fmt.Sprintf(`id="epoch-%d"`, h.FirstEpoch), fmt.Sprintf(`id="epoch-%d"`, h.LastEpoch), "75.0 %", "100.0 %"} {
		if !strings.Contains(epochs, want) {
			t.Errorf("/vault/epochs lacks %s", want)
		}
	}
	for _, p := range []string{"/vault/repairs", "/vault/repairs?state=repaired", "/vault/repairs?provider=" + failed} {
		if strings.Count(pages[p], `id="repair-`) != 1 || !strings.Contains(pages[p], `href="/providers/`+failed+`"`) ||
			!strings.Contains(pages[p], `href="/providers/`+repaired+`"`) || !strings.Contains(pages[p], ">repaired</span>") {
			t.Errorf("%s does not list the repair, from %s onto %s", p, failed, repaired)
		}
	}

	// The object's page: shard 0 on its new provider, repaired, with its history.
	page = pages["/vault/object/"+obj]
	row := `id="shard-` + obj + `-0-0"`
	i := strings.Index(page, row)
	if i < 0 || !strings.Contains(page[i:min(i+2500, len(page))], `href="/providers/`+repaired+`"`) || !strings.Contains(page[i:min(i+2500, len(page))], "repaired") {
		t.Errorf("the proofs object's page does not show shard 0 repaired onto %s", repaired)
	}
	for _, want := range []string{`id="object-repairs"`, `id="object-proofs"`, ">proof failed</span>", ">lost</span>", ">repair drawn</span>", ">repaired</span>",
		"2 epochs in a row", "Put into the Vault pool"} {
		if !strings.Contains(page, want) {
			t.Errorf("the proofs object's page lacks %s", want)
		}
	}
	if strings.Count(pages["/vault/root/"+h.Failed.Root.String()], `class="proof `) != 5 {
		t.Errorf("the shard's root page does not show its 5 proof events")
	}

	// The providers: the one that failed the shard, the one that repaired it.
	for _, key := range []string{h.FailedKey, h.RepairedKey} {
		addr := m.Addr(key)
		var want api.VaultProvider
		if err := m.C.Query(ctx, api.QueryVaultProvider, api.AddressRequest{Address: m.Net.Keys[key].Address()}, &want); err != nil {
			t.Fatal(err)
		}
		page := pages["/providers/"+addr]
		for _, s := range []string{`<strong id="vault-earned">` + html.EscapeString(client.FormatAmount(want.Earned)) + `</strong>`,
			fmt.Sprintf(`id="vault-failed" href="/events?kind=provider&amp;ref=%s&amp;type=vault.proof_failed">%d</a>`, addr, want.Failed)} {
			if !strings.Contains(page, s) {
				t.Errorf("%s's page lacks %s", key, s)
			}
		}
		var pv struct {
			VaultEarnings index.VaultEarnings `json:"vault_earnings"`
		}
		if err := json.Unmarshal([]byte(pages["/api/providers/"+addr]), &pv); err != nil || pv.VaultEarnings.Earned != want.Earned || pv.VaultEarnings.Failed != want.Failed {
			t.Errorf("/api/providers/%s vault_earnings %+v (%v), ledger %+v", addr, pv.VaultEarnings, err, want)
		}
	}
	if !strings.Contains(pages["/providers/"+failed], `id="vault-lost" href="/vault/repairs?provider=`+failed+`">1</a>`) ||
		!strings.Contains(pages["/providers/"+failed], `id="vault-chart"`) {
		t.Error("the failing provider's page does not count the shard it lost, or has no chart of its pay")
	}
	if !strings.Contains(pages["/providers/"+repaired], `id="vault-repairs" href="/vault/repairs?provider=`+repaired+`">1</a>`) {
		t.Error("the repairing provider's page does not count its repair")
	}
}

// bytesText is how the pages show a size (the templates' bytes function).
func bytesText(v uint64) string { return web.FormatBytes(v) }
