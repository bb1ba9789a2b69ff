package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
)

var funcs = template.FuncMap{
	"spr":  func(v uint64) string { return client.FormatAmount(v) },
	"sprh": func(v uint64) string { return client.FormatAmount(v) + "/h" },
	// sprs shows a signed amount: "−1.5 SPR" below 0.
	"sprs": func(v int64) string {
		if v < 0 {
			return "−" + client.FormatAmount(uint64(-(v+1))+1)
		}
		return client.FormatAmount(uint64(v))
	},
	"ms": func(v int64) string {
		if v <= 0 {
			return "—"
		}
		return time.UnixMilli(v).UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"short": func(s string) string {
		if len(s) <= 16 {
			return s
		}
		return s[:10] + "…" + s[len(s)-4:]
	},
	"ppm": func(v uint64) string { return strconv.FormatFloat(float64(v)/1e4, 'f', 1, 64) + " %" },
	"uptime": func(v int64) string {
		if v < 0 {
			return "not judged yet"
		}
		return strconv.FormatFloat(float64(v)/1e4, 'f', 1, 64) + " %"
	},
	"f1":  func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"dur": func(sec uint64) string { return (time.Duration(sec) * time.Second).String() },
	"u64": func(p *uint64) uint64 {
		if p == nil {
			return 0
		}
		return *p
	},
	// setq returns the current query with key set to value (and offset dropped): a link that changes one filter.
	"setq": func(q url.Values, pairs ...string) string {
		out := url.Values{}
		for k, v := range q {
			out[k] = v
		}
		out.Del("offset")
		for i := 0; i+1 < len(pairs); i += 2 {
			if pairs[i+1] == "" {
				out.Del(pairs[i])
			} else {
				out.Set(pairs[i], pairs[i+1])
			}
		}
		return "?" + out.Encode()
	},
	"pretty": func(raw json.RawMessage) string {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return string(raw)
		}
		return buf.String()
	},
	// attrHref links an event attribute to the page of what it names.
	"attrHref": func(k, v string) string {
		switch k {
		case api.AttrProvider:
			return "/providers/" + url.PathEscape(v)
		case api.AttrTenant, api.AttrFrom, api.AttrTo, "closed_by", api.AttrAuditor:
			return "/accounts/" + url.PathEscape(v)
		case api.AttrLeaseID:
			return "/leases/" + url.PathEscape(v)
		case api.AttrOrderID:
			return "/orders/" + url.PathEscape(v)
		case api.AttrObjectID:
			return "/vault/object/" + url.PathEscape(v)
		case api.AttrOwner:
			return "/accounts/" + url.PathEscape(v)
		case api.AttrRoot:
			return "/vault/root/" + url.PathEscape(v)
		}
		return ""
	},
	"attrText":  attrText,
	"eventAttr": eventAttr,
	"bytes":     formatBytes,
	// pergib shows a storage price: uspr a GiB-month.
	"pergib": func(v uint64) string { return client.FormatAmount(v) + "/GiB-month" },
	// cores shows thousandths of a CPU core as cores: "0.5 cores", "2 cores".
	"cores": func(milli uint64) string {
		unit := " cores"
		if milli == 1000 {
			unit = " core"
		}
		return strconv.FormatFloat(float64(milli)/1000, 'f', -1, 64) + unit
	},
	"sortKeys": func(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) },
	"add":      func(a, b int) int { return a + b },
	"gops":     func(v uint64) float64 { return float64(v) / 1e9 },
	"rttms":    func(us uint32) string { return strconv.FormatFloat(float64(us)/1000, 'f', 2, 64) },
	"plus":     func(a, b int64) int64 { return a + b },
	"deref": func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	},
	"str": func(v any) string { return fmt.Sprint(v) },
	// pct shows millionths as a percentage ("95.0 %"), and a negative value (no rate) as "—".
	"pct": func(ppm int64) string {
		if ppm < 0 {
			return "—"
		}
		return strconv.FormatFloat(float64(ppm)/1e4, 'f', 1, 64) + " %"
	},
	// whyClass styles a reward reason (earned, cut, unearned, none).
	"whyClass": whyClass,
	// proofWhat says what a shard's proof event was.
	"proofWhat": func(typ string) string {
		switch typ {
		case api.EventVaultProofFailed:
			return "proof failed"
		case api.EventVaultShardLost:
			return "lost"
		case api.EventVaultRepair:
			return "repair drawn"
		case api.EventVaultRepaired:
			return "repaired"
		}
		return typ
	},
}

// amountAttrs are the event attributes the ledger writes amounts of uspr in, and perHourAttrs those it writes
// prices per hour in (ledger's c.emit calls): shown in SPR, where the JSON API keeps the integers.
var (
	amountAttrs = map[string]bool{api.AttrAmount: true, api.AttrDeposit: true, api.AttrHeld: true, api.AttrOfStake: true,
		api.AttrPaid: true, api.AttrPaidTotal: true, api.AttrRefund: true, api.AttrReserve: true, api.AttrReserveRefund: true,
		api.AttrStake: true, api.AttrTake: true, api.AttrUnbonding: true, api.AttrCost: true, api.AttrPool: true,
		// the rewards' (docs/economics.md)
		api.AttrAvailability: true, api.AttrWork: true, api.AttrBurned: true, api.AttrCap: true, api.AttrEmission: true,
		api.AttrMinted: true, api.AttrAuditors: true, api.AttrBurns: true, api.AttrEarned: true}
	perHourAttrs = map[string]bool{api.AttrPrice: true, api.AttrMaxPrice: true}
)

// attrText shows an event attribute's value: amounts with their unit, times (the ledger's *_ms attributes, Unix
// milliseconds) as times, everything else as written.
func attrText(k, v string) string {
	n, err := strconv.ParseUint(v, 10, 64)
	switch {
	case err != nil:
		return v
	case amountAttrs[k]:
		return client.FormatAmount(n)
	case perHourAttrs[k]:
		return client.FormatAmount(n) + "/h"
	case strings.HasSuffix(k, "_ms") && n > 0 && n < 1<<53:
		return time.UnixMilli(int64(n)).UTC().Format("2006-01-02 15:04:05 UTC")
	}
	return v
}

// storageEvent are the event types whose prices are per GiB-month and whose sizes are bytes.
var storageEvent = map[string]bool{api.EventStorageOffered: true, api.EventVaultStored: true, api.EventVaultShardPlaced: true,
	api.EventVaultPlaced: true, api.EventVaultUnplaced: true, api.EventVaultEnded: true, api.EventVaultPaid: true,
	api.EventVaultRepair: true, api.EventVaultTallied: true}

// maxAttrText bounds the characters of an attribute an event row shows (the JSON API has all of it): an event
// comes from the chain, and a reason is whatever its sender wrote.
const maxAttrText = 300

// eventAttr shows an attribute of an event of type typ: a Vault or storage event's prices per GiB-month and sizes
// in bytes, anything else as attrText does, at most maxAttrText characters of it.
func eventAttr(typ, k, v string) string {
	if storageEvent[typ] {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			switch k {
			case api.AttrPrice, api.AttrMaxPrice:
				return client.FormatAmount(n) + "/GiB-month"
			case api.AttrCapacity, api.AttrUsed, api.AttrSize, api.AttrStoredBytes:
				return formatBytes(n)
			}
		}
	}
	s := attrText(k, v)
	if utf8.RuneCountInString(s) > maxAttrText {
		s = string([]rune(s)[:maxAttrText-1]) + "…"
	}
	return s
}

func (s *Server) parseTemplates() error {
	s.tmpl = map[string]*template.Template{}
	names := []string{"overview", "providers", "provider", "orders", "order", "leases", "lease", "blocks", "block",
		"tx", "accounts", "account", "events", "search", "error", "vault", "vault_objects", "vault_object", "vault_root",
		"vault_offers", "vault_shards", "vault_epochs", "vault_repairs", "rewards", "reward_epochs", "reward_earners"}
	for _, n := range names {
		t, err := template.New(n).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/parts.html", "templates/"+n+".html")
		if err != nil {
			return fmt.Errorf("explorer template %s: %w", n, err)
		}
		s.tmpl[n] = t
	}
	return nil
}
