package web_test

import (
	"context"
	"encoding/json"
	"html"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/explorer/index"
	"github.com/sparenet/spare/explorer/internal/markettest"
	"github.com/sparenet/spare/explorer/web"
	"github.com/sparenet/spare/ledger/api"
)

// TestRewardsPages renders the rewards pages, the providers' pages and their JSON twins on a real chain with
// rewards (markettest.Rewards: providers proving their hardware, found up and down, short of stake, failing
// proof of GPU and jailed, a lease's burn and its work reward, an auditor's shares, a claim), with the node
// answering the live parts: no Go syntax anywhere; the figures the issue names are there — what was minted
// against what was burned, as the emission query answers, with its chart; each epoch's split; the top earners;
// each provider's rewards by epoch with why in words, and its totals as the rewards query answers them.
func TestRewardsPages(t *testing.T) {
	m := markettest.Start(t, markettest.RewardsOptions())
	path := markettest.TempIndex(t)
	db, stop := markettest.StartIndexer(t, path, m.C)
	h := m.Rewards(nil)
	ctx := context.Background()
	em, err := m.C.Emission(ctx)
	if err != nil {
		t.Fatal(err)
	}
	markettest.WaitIndexed(t, db, m.Height())
	stop()
	db, err = index.Open(path)
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

	paths := []string{"/rewards", "/rewards/epochs", "/rewards/epochs?limit=3&offset=2", "/rewards/earners", "/rewards/earners?limit=2&offset=1",
		"/events?type=epoch.rewarded", "/events?type=provider.rewarded", "/events?type=provider.work_rewarded", "/accounts/" + m.Addr("aud")}
	for _, key := range []string{"g1", "g2", "g3"} {
		paths = append(paths, "/providers/"+m.Addr(key))
	}
	pages := map[string]string{}
	for _, p := range paths {
		code, body, _ := get(t, srv, p)
		if code != 200 {
			t.Errorf("GET %s: %d\n%.400s", p, code, body)
		}
		for _, l := range htmlLeaks(body) {
			t.Errorf("GET %s shows Go syntax: %s", p, l)
		}
		pages[p] = html.UnescapeString(body)
		code, body, _ = get(t, srv, "/api"+p)
		found, err := jsonLeaks(body)
		if code != 200 || err != nil {
			t.Errorf("GET /api%s: %d, %v\n%.400s", p, code, err, body)
		}
		for _, l := range found {
			t.Errorf("GET /api%s answers Go syntax: %s", p, l)
		}
		pages["/api"+p] = body
	}

	// The network's: minted against burned as the ledger counts them, with the chart; the epochs' split; the top
	// earners, each linked to its page.
	var v struct {
		Minted     uint64                         `json:"minted"`
		Burned     uint64                         `json:"burned"`
		Unclaimed  uint64                         `json:"unclaimed"`
		Epochs     int                            `json:"epochs"`
		TopEarners index.List[index.RewardTotals] `json:"top_earners"`
		History    []index.RewardPoint            `json:"history"`
		Note       string                         `json:"note"`
	}
	if err := json.Unmarshal([]byte(pages["/api/rewards"]), &v); err != nil || v.Minted != em.Minted || v.Burned != em.Burned ||
		v.Unclaimed != em.Unclaimed || uint64(v.Epochs) < em.NextEpoch || v.TopEarners.Total != 4 || len(v.History) < 2 || v.Note != web.RewardsNote {
		t.Errorf("/api/rewards: %+v (%v), the ledger's emission %+v", v, err, em)
	}
	var ep struct {
		EpochList index.List[index.RewardEpoch] `json:"epoch_list"`
	}
	if err := json.Unmarshal([]byte(pages["/api/rewards"]), &ep); err != nil || len(ep.EpochList.Items) != min(10, ep.EpochList.Total) || uint64(ep.EpochList.Total) < em.NextEpoch {
		t.Errorf("/api/rewards epoch_list: %+v (%v)", ep.EpochList, err)
	}
	page := pages["/rewards"]
	for _, want := range []string{`id="rewards-minted" href="/events?type=epoch.rewarded">` + client.FormatAmount(em.Minted) + "<",
		`id="rewards-burned" href="/events?type=lease.paid">` + client.FormatAmount(em.Burned) + "<", "Minted against burned, since genesis",
		"Each epoch's rewards by pot", "<svg", "emission offered", `id="reward-epoch-` + strconv.FormatUint(h.First+2, 10) + `"`,
		`id="earner-` + m.Addr("aud") + `"`, `href="/accounts/` + m.Addr("aud") + `"`, `href="/providers/` + m.Addr("g1") + `#rewards"`} {
		if !strings.Contains(page, want) {
			t.Errorf("/rewards lacks %s", want)
		}
	}
	if strings.Count(pages["/rewards/earners?limit=2&offset=1"], `id="earner-`) != 2 || !strings.Contains(pages["/rewards/earners?limit=2&offset=1"], `<td class="num">2</td>`) {
		t.Error("the second page of earners does not rank from 2")
	}
	if regexp.MustCompile(`(minted|emission|availability)=\d+<`).MatchString(pages["/events?type=epoch.rewarded"]) {
		t.Error("an epoch's reward amounts are shown without their unit")
	}

	// Each provider's rewards by epoch and why, in words; its totals as the ledger has them, and what the node says.
	why := map[string][]api.RewardWhy{"g1": {api.RewardNoProof, api.RewardEarned}, "g2": {api.RewardNoProof, api.RewardEarned, api.RewardNotUp, api.RewardStakeShort},
		"g3": {api.RewardNoProof, api.RewardEarned, api.RewardJailed}}
	for _, key := range []string{"g1", "g2", "g3"} {
		p := "/providers/" + m.Addr(key)
		rv, err := m.C.Rewards(ctx, m.Net.Keys[key].Address())
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range why[key] {
			if !strings.Contains(pages[p], w.String()+"</span> "+w.Explain()) {
				t.Errorf("%s's page does not say %s in words (%q)", key, w, w.Explain())
			}
		}
		if !strings.Contains(pages[p], `id="rewards-earned">`+client.FormatAmount(rv.Earned)+"<") ||
			!strings.Contains(pages[p], `id="rewards-owed">`+client.FormatAmount(rv.Owed)+"<") || !strings.Contains(pages[p], `id="rewards-chart"`) ||
			!strings.Contains(pages[p], `id="reward-`+strconv.FormatUint(h.First, 10)+`"`) || !strings.Contains(pages[p], `id="rewards-live"`) {
			t.Errorf("%s's page does not show its rewards (earned %d, owed %d)", key, rv.Earned, rv.Owed)
		}
		var pv struct {
			Rewards      index.RewardTotals            `json:"rewards"`
			RewardEpochs index.List[index.EpochReward] `json:"reward_epochs"`
			RewardsLive  *api.RewardsView              `json:"rewards_live"`
		}
		if err := json.Unmarshal([]byte(pages["/api"+p]), &pv); err != nil || pv.Rewards.ProviderEarned() != rv.Earned || pv.Rewards.Owed != rv.Owed ||
			pv.RewardsLive == nil || pv.RewardsLive.Owed != rv.Owed || pv.RewardEpochs.Total < 5 || pv.RewardEpochs.Items[0].Explain == "" {
			t.Errorf("/api%s: %+v (%v), the ledger's %+v", p, pv, err, rv)
		}
	}
	g1 := pages["/providers/"+m.Addr("g1")]
	if row := regexp.MustCompile(`(?s)<tr id="reward-` + strconv.FormatUint(h.WorkEpoch, 10) + `">.*?</tr>`).FindString(g1); strings.Count(row, " SPR") < 4 {
		t.Errorf("g1's row for its work epoch %d does not show its work, burn and cap: %s", h.WorkEpoch, row)
	}
	if !strings.Contains(g1, `id="rewards-claimed"`) || !strings.Contains(g1, client.FormatAmount(h.Claimed)) {
		t.Error("g1's page does not show its claim")
	}
	if g3 := pages["/providers/"+m.Addr("g3")]; !strings.Contains(g3, `id="rewards-forfeited"`) || !strings.Contains(g3, "everything it was owed is forfeited") {
		t.Error("g3's page does not show its forfeit")
	}
}
