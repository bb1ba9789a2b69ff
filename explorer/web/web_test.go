package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sparenet/spare/explorer/index"
	"github.com/sparenet/spare/explorer/web"
)

func synthetic(t testing.TB, s index.Synthetic) (*httptest.Server, *index.DB) {
	t.Helper()
	db, err := index.Open(filepath.Join(t.TempDir(), "explorer.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.WriteSynthetic(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	h, err := web.New(db, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, db
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, srv *httptest.Server, path string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

// TestRoutes: every page and its API twin, with good and bad ids and parameters: 200, 303, 400 or 404 with a
// message naming the problem, never a 500 or a stack trace.
func TestRoutes(t *testing.T) {
	srv, _ := synthetic(t, index.Synthetic{Providers: 30, Leases: 200, PerBlock: 20})
	prov := index.SyntheticAddress("provider", 3).String()
	tenant := index.SyntheticAddress("tenant", 1).String()
	unknown := index.SyntheticAddress("nobody", 1).String()
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/", 200, "Network overview"},
		{"/?x=1", 400, "unknown parameter"},
		{"/providers", 200, prov},
		{"/providers?model=H100&sort=stake&order=asc&status=active&verified=no", 200, "H100"},
		{"/providers?region=eu-west&limit=5&offset=5", 200, "eu-west"},
		{"/providers?sort=colour", 400, "sort &#34;colour&#34;: use one of earned"},
		{"/providers?order=sideways", 400, "order"},
		{"/providers?modle=H100", 400, "unknown parameter &#34;modle&#34;"},
		{"/providers?status=asleep", 400, "status"},
		{"/providers?verified=maybe", 400, "verified"},
		{"/providers?limit=0", 400, "limit 0"},
		{"/providers?limit=5000", 400, "limit"},
		{"/providers?offset=-1", 400, "offset"},
		{"/providers/" + prov, 200, "Hardware: declared and verified"},
		{"/providers/not-an-address", 400, "not an address"},
		{"/providers/" + unknown, 404, "not found"},
		{"/orders", 200, "#200"},
		{"/orders?state=leased&tenant=" + tenant, 200, "#"},
		{"/orders?state=weird", 400, "state &#34;weird&#34;"},
		{"/orders?tenant=bob", 400, "tenant"},
		{"/orders?provider=" + prov, 400, "unknown parameter"},
		{"/orders/7", 200, "Order #7"},
		{"/orders/0", 400, "positive whole number"},
		{"/orders/abc", 400, "positive whole number"},
		{"/orders/99999", 404, "order 99999: not found"},
		{"/leases", 200, "Leases"},
		{"/leases?state=active&provider=" + prov, 200, "Leases served by"},
		{"/leases?provider=xyz", 400, "provider"},
		{"/leases/5", 200, "Lease #5"},
		{"/leases/18446744073709551616", 400, "positive whole number"},
		{"/leases/424242", 404, "not found"},
		{"/blocks", 200, "Blocks"},
		{"/blocks/1", 200, "Block 1"},
		{"/blocks/-1", 400, "block height"},
		{"/blocks/99999", 404, "not found"},
		{"/txs/abc", 400, "64 hex digits"},
		{"/txs/" + strings.Repeat("AB", 32), 404, "not found"},
		{"/accounts", 200, "Accounts"},
		{"/accounts/" + unknown, 404, "not found"},
		{"/accounts/spare1zzz", 400, "not an address"},
		{"/events?kind=lease&ref=1", 200, "lease.paid"},
		{"/events?kind=provider&ref=" + prov + "&type=lease.paid", 200, "lease.paid"},
		{"/events?kind=lease", 400, "kind and ref go together"},
		{"/events?kind=planet&ref=1", 400, "kind"},
		{"/events?kind=lease&ref=x", 400, "positive whole number"},
		{"/events?type=DROP%20TABLE", 400, "event type"},
		{"/events?height=0", 400, "height"},
		{"/search?q=1", 200, "/leases/1"},
		{"/search?q=", 400, "q is empty"},
		{"/search?q=hello", 400, "not an address"},
		{"/search?q=" + strings.Repeat("9", 200), 400, "characters"},
		{"/search?q=123456789", 200, "Nothing indexed matches"},
		{"/search?q=" + prov, 303, ""},
		{"/vault", 200, "Spare Vault"},
		{"/vault/objects?state=placed", 200, "no objects"},
		{"/vault/offers", 200, "no storage offers"},
		{"/vault/shards?provider=" + prov, 200, "no shards placed"},
		{"/vault/object/1", 404, "vault object 1: not found"},
		{"/vault/root/" + strings.Repeat("AB", 32), 404, "no object or shard with this root"},
		{"/rewards", 200, "No epoch&#39;s rewards are indexed yet"},
		{"/rewards?epoch=1", 400, "unknown parameter"},
		{"/rewards/epochs", 200, "no epoch tallied with rewards"},
		{"/rewards/epochs?limit=0", 400, "limit 0"},
		{"/rewards/earners", 200, "no address paid rewards yet"},
		{"/rewards/earners?offset=x", 400, "offset"},
		{"/providers/" + prov + "#rewards", 200, "No epoch has judged it with rewards on"},
		{"/nope", 404, "no such page"},
		{"/static/style.css", 200, "--accent"},
		{"/static/live.js", 200, "EventSource"},
		{"/live", 503, "live updates are off"},
	} {
		code, body, hdr := get(t, srv, tc.path)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d, want %d containing %q; body:\n%.600s", tc.path, code, tc.code, tc.want, body)
		}
		if strings.Contains(body, "goroutine ") || strings.Contains(body, "panic") {
			t.Errorf("GET %s leaks a stack trace", tc.path)
		}
		if code == 303 && !strings.HasPrefix(hdr.Get("Location"), "/providers/") {
			t.Errorf("GET %s redirects to %q", tc.path, hdr.Get("Location"))
		}
		// The same route under /api answers JSON with the same status (pages only; assets and /live are not pages).
		if strings.HasPrefix(tc.path, "/static") || tc.path == "/live" || tc.path == "/nope" {
			continue
		}
		api := "/api" + tc.path
		if tc.path == "/" || strings.HasPrefix(tc.path, "/?") {
			api = "/api/overview" + strings.TrimPrefix(tc.path, "/")
		}
		acode, abody, ahdr := get(t, srv, api)
		wantCode := tc.code
		if wantCode == 303 {
			wantCode = 200
		}
		var v map[string]any
		if acode != wantCode || json.Unmarshal([]byte(abody), &v) != nil || ahdr.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: %d %q, want %d with a JSON object; body:\n%.400s", api, acode, ahdr.Get("Content-Type"), wantCode, abody)
		}
		if acode >= 400 && (v["error"] == nil || v["error"] == "") {
			t.Errorf("GET %s: %d without an error message: %s", api, acode, abody)
		}
	}
	if code, body, _ := get(t, srv, "/api/no/such/route"); code != 404 || !strings.Contains(body, "no such API route") {
		t.Errorf("unknown API route: %d %s", code, body)
	}
}

// TestAPIPages: lists page with offset and limit and count the whole list.
func TestAPIPages(t *testing.T) {
	srv, _ := synthetic(t, index.Synthetic{Providers: 10, Leases: 120, PerBlock: 40})
	var l struct {
		Items []struct {
			ID uint64 `json:"id"`
		} `json:"items"`
		Total, Offset, Limit int
	}
	code, body, _ := get(t, srv, "/api/leases?limit=7&offset=115")
	if code != 200 || json.Unmarshal([]byte(body), &l) != nil || l.Total != 120 || len(l.Items) != 5 || l.Items[0].ID != 5 || l.Limit != 7 {
		t.Fatalf("%d %+v", code, l)
	}
	var ov struct {
		Height       int64 `json:"height"`
		Providers    int   `json:"providers"`
		GPUsOnline   int   `json:"gpus_online"`
		Leases       int   `json:"leases"`
		LiveLeases   int   `json:"live_leases"`
		PriceIndex   []any `json:"price_index"`
		RecentLeases []struct {
			ID uint64 `json:"id"`
		} `json:"recent_leases"`
	}
	code, body, _ = get(t, srv, "/api/overview")
	if code != 200 || json.Unmarshal([]byte(body), &ov) != nil || ov.Providers != 10 || ov.Leases != 120 || ov.LiveLeases != 12 ||
		len(ov.PriceIndex) == 0 || ov.RecentLeases[0].ID != 120 || ov.Height != 4 {
		t.Fatalf("overview %d %+v", code, ov)
	}
	// The partial render (what live.js fetches) is the <main> content only.
	code, body, _ = get(t, srv, "/providers", "X-Partial", "1")
	if code != 200 || strings.Contains(body, "<html") || !strings.Contains(body, `id="providers"`) {
		t.Fatalf("partial: %d %.300s", code, body)
	}
}

var hrefRE = regexp.MustCompile(`href="(/[^"]*)"`)

// TestEveryLinkWorks crawls the pages from the overview: every internal link (every figure links to what it is
// made of) answers 200.
func TestEveryLinkWorks(t *testing.T) {
	srv, _ := synthetic(t, index.Synthetic{Providers: 12, Leases: 60, PerBlock: 30})
	seen := map[string]bool{"/": true}
	queue := []string{"/"}
	for len(queue) > 0 && len(seen) < 400 {
		p := queue[0]
		queue = queue[1:]
		code, body, _ := get(t, srv, p)
		if code != 200 {
			t.Errorf("GET %s: %d\n%.300s", p, code, body)
			continue
		}
		for _, m := range hrefRE.FindAllStringSubmatch(body, -1) {
			link := strings.ReplaceAll(m[1], "&amp;", "&")
			u, err := url.Parse(link)
			if err != nil {
				t.Errorf("%s links to a bad URL %q", p, link)
				continue
			}
			if strings.HasPrefix(u.Path, "/api") || strings.HasPrefix(u.Path, "/static") || seen[link] {
				continue
			}
			seen[link] = true
			queue = append(queue, link)
		}
	}
	if len(seen) < 60 {
		t.Fatalf("crawled only %d pages", len(seen))
	}
}

// TestAPIDocumented: docs/explorer.md names every API route the server answers.
func TestAPIDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/explorer.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, route := range web.APIRoutes() {
		if !strings.Contains(string(doc), "`GET "+route) && !strings.Contains(string(doc), ", `GET "+route) {
			t.Errorf("docs/explorer.md does not document GET %s", route)
		}
	}
}

// FuzzRoutes: any path and query answers 200, 303, 400 or 404 — never a 500 — and never leaks a stack trace.
func FuzzRoutes(f *testing.F) {
	db, err := index.Open(filepath.Join(f.TempDir(), "explorer.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	if _, err := db.WriteSynthetic(context.Background(), index.Synthetic{Providers: 5, Leases: 20}); err != nil {
		f.Fatal(err)
	}
	h, err := web.New(db, nil, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"/", "/providers?sort=stake&order=asc", "/leases/3", "/api/events?kind=lease&ref=1",
		"/search?q=1", "/blocks/1?offset=0&limit=5", "/api/providers/" + index.SyntheticAddress("provider", 1).String(),
		"/txs/" + strings.Repeat("0", 64), "/orders?state=open&tenant=x", "/api/price-index?buckets=3", "/vault",
		"/vault/object/1?offset=0&limit=5", "/api/vault/root/" + strings.Repeat("ab", 32), "/vault/objects?state=placed&deal=term",
		"/vault/shards?provider=" + index.SyntheticAddress("provider", 1).String(), "/events?kind=object&ref=1", "/vault/epochs?limit=3",
		"/vault/repairs?state=lost&provider=" + index.SyntheticAddress("provider", 1).String(), "/rewards", "/rewards/epochs?limit=3",
		"/api/rewards/earners?offset=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(u.Path, "/") || u.Path == "/live" {
			return
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.URL, req.RequestURI = u, u.RequestURI()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 301, 303, 307, 400, 404:
		default:
			t.Fatalf("GET %s: %d\n%s", target, rec.Code, rec.Body.String())
		}
		if strings.Contains(rec.Body.String(), "goroutine ") {
			t.Fatalf("GET %s leaks a stack trace", target)
		}
	})
}

// TestCostSoFar: an active lease shows what it has earned by the last indexed block, by the ledger's rule.
func TestCostSoFar(t *testing.T) {
	srv, _ := synthetic(t, index.Synthetic{Providers: 4, Leases: 120, PerBlock: 10})
	var l struct {
		State     string `json:"state"`
		Price     uint64 `json:"price_per_hour"`
		Paid      uint64 `json:"paid"`
		CostSoFar uint64 `json:"cost_so_far"`
	}
	// Lease 109 is active, started in block 12; the last block (13) is 1 s later.
	code, body, _ := get(t, srv, "/api/leases/109")
	if code != 200 || json.Unmarshal([]byte(body), &l) != nil || l.State != "active" || l.Paid != 0 || l.CostSoFar != l.Price*1000/3_600_000 || l.CostSoFar == 0 {
		t.Fatalf("%d %+v", code, l)
	}
	// A completed lease costs what was settled.
	code, body, _ = get(t, srv, "/api/leases/5")
	if code != 200 || json.Unmarshal([]byte(body), &l) != nil || l.State != "completed" || l.CostSoFar != l.Paid {
		t.Fatalf("%d %+v", code, l)
	}
}
