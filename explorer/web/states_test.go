package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sparenet/spare/explorer/index"
	"github.com/sparenet/spare/explorer/internal/markettest"
	"github.com/sparenet/spare/explorer/web"
)

// htmlLeaks looks for Go syntax in a page as a reader sees it (entities decoded: html/template writes a stray
// <nil> as &lt;nil&gt;).
func htmlLeaks(body string) []string { return markettest.GoSyntax(html.UnescapeString(body)) }

// jsonLeaks looks for Go syntax in every string (key or value) of a JSON document: anywhere else it would not
// be JSON.
func jsonLeaks(body string) ([]string, error) {
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return nil, err
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			out = append(out, markettest.GoSyntax(v)...)
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for k, e := range v {
				out = append(out, markettest.GoSyntax(k)...)
				walk(e)
			}
		}
	}
	walk(v)
	return out, nil
}

// TestLeakPatterns: markettest.GoSyntax catches what a template printing a Go value writes, and not what the pages show.
func TestLeakPatterns(t *testing.T) {
	wrongVerb := "%d" // a variable, so that vet lets the test make the mistake on purpose
	for _, tc := range []struct {
		text string
		leak bool
	}{
		{fmt.Sprint(index.List[index.Lease]{Items: []index.Lease{{ID: 1}}, Total: 1}), true},
		{fmt.Sprint(index.List[index.Lease]{Items: []index.Lease{}}), true},
		{fmt.Sprint([]uint64{1, 2}), true},
		{fmt.Sprint(map[string]string{"a": "b"}), true},
		{fmt.Sprint(&index.Account{}), true},
		{fmt.Sprint(new(int)), true},
		{fmt.Sprintf(wrongVerb, "x"), true},
		{fmt.Sprint(nil), true},
		{html.EscapeString(fmt.Sprint(nil)), false}, // checked after unescaping: htmlLeaks
		{"2 SPR/h · completed, exit 3 · closed by provider: host maintenance · 2026-01-01 00:00:01 UTC", false},
		{"{\n  \"gpus\": [\n    1\n  ]\n}", false},
	} {
		if got := len(markettest.GoSyntax(tc.text)) > 0; got != tc.leak {
			t.Errorf("%q: leak %v, want %v", tc.text, got, tc.leak)
		}
	}
	if len(htmlLeaks("x &lt;nil&gt; y")) == 0 {
		t.Error("an escaped <nil> is not caught")
	}
}

// TestViewsHideNoField: no page's view has a field that hides another, by Go name (what a template reads) or by
// JSON name (what the API answers). A provider's list of leases once hid its lease count: the page printed the
// list as a Go value, and the API lost the count.
func TestViewsHideNoField(t *testing.T) {
	for _, v := range []any{web.OverviewView{}, web.ProvidersView{}, web.ProviderView{}, web.ListView[index.Order]{},
		web.OrderView{}, web.ListView[index.Lease]{}, web.LeaseView{}, web.BlocksView{}, web.BlockView{}, web.TxView{},
		web.AccountsView{}, web.AccountView{}, web.EventsView{}, web.SearchView{}, web.VaultView{}, web.VaultObjectsView{},
		web.VaultObjectView{}, web.VaultRootView{}, web.VaultOffersView{}, web.VaultShardsView{}, web.VaultEpochsView{}, web.VaultRepairsView{},
		web.RewardsView{}, web.RewardEpochsView{}, web.RewardEarnersView{}} {
		typ := reflect.TypeOf(v)
		for _, byJSON := range []bool{false, true} {
			seen := map[string][]string{}
			fieldNames(typ, "", byJSON, seen)
			for name, at := range seen {
				if len(at) > 1 {
					t.Errorf("%s: %q is the name of %s (json %v)", typ, name, strings.Join(at, " and "), byJSON)
				}
			}
		}
	}
}

// fieldNames records where each name of t's fields is defined, looking into embedded structs as Go's selectors
// and encoding/json do.
func fieldNames(t reflect.Type, path string, byJSON bool, seen map[string][]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if byJSON && tag == "-" {
			continue
		}
		if f.Anonymous && f.Type.Kind() == reflect.Struct && (!byJSON || tag == "") {
			if !byJSON {
				seen[f.Name] = append(seen[f.Name], path+f.Name) // an embedded struct is a field too
			}
			fieldNames(f.Type, path+f.Name+".", byJSON, seen)
			continue
		}
		name := f.Name
		if byJSON && tag != "" {
			name = tag
		}
		seen[name] = append(seen[name], path+f.Name)
	}
}

// TestEveryRouteOnEveryState renders every page and every API route on a real chain with an order and a lease
// in every state (markettest.EveryState: pending, active, completed with exit codes 0 and 3, closed by the
// tenant, by the provider before and after starting, not started in time; open, cancelled, expired and
// replicated orders; GPU and CPU-only leases; an auditor), with the node answering the live parts (balances,
// validators, auditors, replicated runs). No page and no answer may show Go syntax, and the figures the issue
// names must be there: a provider's lease count, how each lease ended, amounts in SPR, accounts' roles and
// balances, the CPU price index.
func TestEveryRouteOnEveryState(t *testing.T) {
	m := markettest.Start(t, markettest.EveryStateOptions())
	path := markettest.TempIndex(t)
	db, stop := markettest.StartIndexer(t, path, m.C)
	h := m.EveryState()
	markettest.WaitIndexed(t, db, m.Last)
	stop() // the pages are read from this height on, with the pending lease still pending
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

	// Every object the index holds gets its page.
	paths := []string{"/", "/providers", "/orders", "/leases", "/blocks", "/accounts", "/events", "/api/price-index",
		"/providers?sort=leases", "/rewards", "/rewards/epochs", "/rewards/earners"}
	for _, s := range index.LeaseStates {
		paths = append(paths, "/leases?state="+s, "/leases?state="+s+"&provider="+m.Addr("p2"))
	}
	for _, s := range index.OrderStates {
		paths = append(paths, "/orders?state="+s+"&tenant="+m.Addr("tenant"))
	}
	for _, key := range []string{"p1", "p2", "p3"} {
		paths = append(paths, "/providers/"+m.Addr(key))
	}
	leases, _ := db.Leases(ctx, index.ObjectFilter{}, index.Page{Limit: index.MaxLimit})
	for _, l := range leases.Items {
		id := strconv.FormatUint(l.ID, 10)
		paths = append(paths, "/leases/"+id, "/events?kind=lease&ref="+id, "/search?q="+id)
	}
	orders, _ := db.Orders(ctx, index.ObjectFilter{}, index.Page{Limit: index.MaxLimit})
	for _, o := range orders.Items {
		paths = append(paths, "/orders/"+strconv.FormatUint(o.ID, 10))
	}
	blocks, _ := db.Blocks(ctx, index.Page{Limit: index.MaxLimit})
	for _, b := range blocks.Items {
		if b.Txs > 0 || b.Events > 0 {
			paths = append(paths, "/blocks/"+strconv.FormatInt(b.Height, 10))
		}
	}
	txs, _ := db.Txs(ctx, index.TxFilter{}, index.Page{Limit: index.MaxLimit})
	for _, tx := range txs.Items {
		paths = append(paths, "/txs/"+tx.Hash)
	}
	accounts, _ := db.Accounts(ctx, index.Page{Limit: index.MaxLimit})
	for _, a := range accounts.Items {
		paths = append(paths, "/accounts/"+a.Address, "/events?kind=account&ref="+a.Address)
	}
	if leases.Total != len(h.Leases) || len(txs.Items) != m.Sent || txs.Total > index.MaxLimit || blocks.Total > index.MaxLimit {
		t.Fatalf("%d leases indexed of %d, %d transactions of %d, %d blocks", leases.Total, len(h.Leases), len(txs.Items), m.Sent, blocks.Total)
	}

	// Every route of the server is among them, as a page and as its JSON twin.
	covered := map[string]bool{}
	pages := map[string]string{}
	for _, p := range paths {
		api := "/api" + p
		if p == "/" {
			api = "/api/overview"
		}
		if strings.HasPrefix(p, "/api/") {
			api = p
		} else {
			code, body, _ := get(t, srv, p)
			if code != 200 {
				t.Errorf("GET %s: %d\n%.400s", p, code, body)
			}
			for _, l := range htmlLeaks(body) {
				t.Errorf("GET %s shows Go syntax: %s", p, l)
			}
			pages[p] = body
		}
		code, body, _ := get(t, srv, api)
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
		if !covered[r] && !strings.HasPrefix(r, "/api/vault") { // the Vault's: TestVaultPages, on a Vault history
			t.Errorf("route %s (and its page) is not rendered by this test", r)
		}
	}

	// The provider page shows its lease count, its record and how its leases ended; the API keeps the count
	// beside the list.
	for _, key := range []string{"p1", "p2", "p3"} {
		p, _ := db.Provider(ctx, m.Addr(key))
		page := pages["/providers/"+m.Addr(key)]
		if !strings.Contains(page, fmt.Sprintf(`id="lease-count" href="/leases?provider=%s">%d</a>`, m.Addr(key), p.Leases)) || p.Leases == 0 {
			t.Errorf("provider %s's page does not show its %d leases", key, p.Leases)
		}
		var v struct {
			Leases    *uint64 `json:"leases"`
			LeaseList struct {
				Items []index.Lease `json:"items"`
				Total uint64        `json:"total"`
			} `json:"lease_list"`
			Outcomes *index.LeaseOutcomes `json:"lease_outcomes"`
		}
		if err := json.Unmarshal([]byte(pages["/api/providers/"+m.Addr(key)]), &v); err != nil || v.Leases == nil || *v.Leases != p.Leases ||
			v.LeaseList.Total != p.Leases || len(v.LeaseList.Items) != int(p.Leases) || v.Outcomes == nil {
			t.Errorf("/api/providers/%s: %+v (%v), want leases %d and a list of them", m.Addr(key), v, err, p.Leases)
		}
	}
	for _, want := range []string{`id="failed-count" href="/leases?provider=` + m.Addr("p2") + `&amp;state=closed">2</a>`,
		`id="failed-to-start" href="/leases?provider=` + m.Addr("p2") + `&amp;state=closed">1</a>`, "1 not started in time"} {
		if !strings.Contains(pages["/providers/"+m.Addr("p2")], want) {
			t.Errorf("p2's page lacks %s", want)
		}
	}
	if want := `id="failed-to-start" href="/leases?provider=` + m.Addr("p1") + `&amp;state=closed">1</a>`; !strings.Contains(pages["/providers/"+m.Addr("p1")], want) {
		t.Errorf("p1's page lacks %s", want)
	}

	// Lease lists say how each lease ended; amounts carry their unit.
	for _, want := range []string{"completed, exit 0", "completed, exit 3", "closed by tenant: done early",
		"closed by provider: host maintenance", ">closed by provider<", "not started in time", "2 SPR/h", "4 cores, no GPU"} {
		if !strings.Contains(pages["/leases"], want) {
			t.Errorf("/leases lacks %q", want)
		}
	}
	if !strings.Contains(pages["/leases/"+strconv.FormatUint(h.Leases["cpu_active"], 10)], "0.25 SPR per core-hour") {
		t.Error("the CPU lease's page does not show its price per core-hour")
	}
	if !strings.Contains(pages["/events?kind=lease&ref="+strconv.FormatUint(h.Leases["active"], 10)], "amount=") ||
		regexp.MustCompile(`amount=\d+<`).MatchString(pages["/events?kind=lease&ref="+strconv.FormatUint(h.Leases["active"], 10)]) {
		t.Error("a payment's amount is shown without its unit")
	}

	// Accounts show a role and a balance.
	for key, role := range map[string]string{"p1": "provider", "tenant": "tenant", "aud": "auditor"} {
		page := pages["/accounts/"+m.Addr(key)]
		if !regexp.MustCompile(`id="roles">Role: .*<span class="role">`+role+`</span>`).MatchString(page) || !strings.Contains(page, " SPR</strong> (live from the node)") {
			t.Errorf("%s's account page does not show the role %s and a balance", key, role)
		}
		var a struct {
			Roles   []string `json:"roles"`
			Balance *uint64  `json:"balance"`
			Txs     *int     `json:"txs"`
		}
		if err := json.Unmarshal([]byte(pages["/api/accounts/"+m.Addr(key)]), &a); err != nil || !slices.Contains(a.Roles, role) || a.Balance == nil || a.Txs == nil {
			t.Errorf("/api/accounts/%s: %+v (%v)", m.Addr(key), a, err)
		}
		if !regexp.MustCompile(`id="account-` + m.Addr(key) + `">.*<span class="role">` + role + `</span>.*\n<td class="num">[0-9.,]+ SPR</td>`).MatchString(pages["/accounts"]) {
			t.Errorf("the accounts list does not show %s's role %s and balance", key, role)
		}
	}

	// The CPU price index is beside the GPU one: 0.25 SPR per core-hour for both CPU-only leases.
	var ps []index.PriceSeries
	if err := json.Unmarshal([]byte(pages["/api/price-index"]), &ps); err != nil || len(ps) != 3 || ps[2].Unit != index.UnitCPUCoreHour ||
		ps[2].Points[len(ps[2].Points)-1].Median != markettest.SPR/4 || ps[0].Unit != index.UnitGPUHour {
		t.Errorf("/api/price-index: %+v (%v)", ps, err)
	}
	if ov := pages["/"]; !strings.Contains(ov, "Median price per CPU-core-hour") || !strings.Contains(ov, "0.25 SPR per CPU-core-hour") {
		t.Error("the overview does not show the CPU price index")
	}
}

// routePattern turns a concrete API path into the route it matched: /api/leases/7 → /api/leases/{id}.
func routePattern(p string) string {
	routes := web.APIRoutes()
	if slices.Contains(routes, p) {
		return p
	}
	parts := strings.Split(p, "/")
	for _, r := range routes {
		rp := strings.Split(r, "/")
		if len(rp) != len(parts) {
			continue
		}
		match := true
		for i := range rp {
			match = match && (rp[i] == parts[i] || strings.HasPrefix(rp[i], "{"))
		}
		if match {
			return r
		}
	}
	return p
}
