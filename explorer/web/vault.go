package web

import (
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sparenet/spare/explorer/index"
	"github.com/sparenet/spare/explorer/svg"
	"github.com/sparenet/spare/ledger/tx"
)

// The Spare Vault pages: the network's storage (/vault), objects (/vault/objects, /vault/object/{id}), a root's
// objects and shards (/vault/root/{root}), storage offers (/vault/offers), placed shards (/vault/shards), the
// epochs of storage proofs (/vault/epochs) and repairs (/vault/repairs).

// ProofsNote says how the pages read storage proofs: what the ledger decides, and the one figure the explorer
// counts itself (the shards an epoch challenged).
const ProofsNote = "Every epoch, auditors challenge every shard its provider declared held at a 16 KiB group drawn from the epoch's seed and " +
	"attest the shards whose proofs failed; the tally, at the end of the next epoch, fails a shard named by auditors " +
	"holding two thirds of the weight and pays every provider from the Vault pool for its shards that did not fail. " +
	"An epoch the auditors did not decide pays, slashes and loses nothing. A shard failed two epochs in a row is lost " +
	"and drawn onto another provider, which rebuilds it from its stripe and is paid a month of it once its first proof " +
	"passes. The success rate is 1 − failed ÷ shards challenged, for decided epochs: the ledger says how many failed, " +
	"and the explorer counts the shards challenged itself — those their providers had declared held when the epoch started."

// NotAuditedNote is what the pages say of proofs on a chain that audits no storage (no epoch has started).
const NotAuditedNote = "This chain does not audit storage (params.epoch_blocks is 0, or no epoch has started yet): " +
	"shards are not challenged, nothing is paid from a pool or repaired, and a term deal pays its providers at its end (vault.paid)."

// VaultView is the network's storage.
type VaultView struct {
	index.VaultOverview
	OfferList     index.List[index.StorageOffer] `json:"offer_list"`     // the cheapest offers
	RecentObjects index.List[index.VaultObject]  `json:"recent_objects"` // the newest objects
	History       []index.VaultPoint             `json:"history"`        // the totals over time
	// Epochs are the newest epochs of storage proofs, EpochHistory the tallied ones over time, Repairs the
	// newest repairs.
	Epochs        index.List[index.VaultEpoch]  `json:"epochs"`
	EpochHistory  []index.VaultEpochPoint       `json:"epoch_history"`
	Repairs       index.List[index.VaultRepair] `json:"repairs"`
	Proofs        string                        `json:"proofs"` // ProofsNote, or NotAuditedNote
	StoredChart   template.HTML                 `json:"-"`
	CapacityChart template.HTML                 `json:"-"`
	EscrowChart   template.HTML                 `json:"-"`
	PoolChart     template.HTML                 `json:"-"`
	SuccessChart  template.HTML                 `json:"-"`
	FailedChart   template.HTML                 `json:"-"`
}

func proofsNote(audited bool) string {
	if audited {
		return ProofsNote
	}
	return NotAuditedNote
}

func (s *Server) loadVault(r *http.Request) (any, error) {
	if err := known(r); err != nil {
		return nil, err
	}
	return s.memo(r.Context(), "vault", func() (any, error) {
		ctx := r.Context()
		var v VaultView
		var err error
		if v.VaultOverview, err = s.db.VaultOverview(ctx); err != nil {
			return nil, err
		}
		v.Proofs = proofsNote(v.Audited)
		if v.OfferList, err = s.db.StorageOffers(ctx, index.Page{Limit: 20}); err != nil {
			return nil, err
		}
		if v.RecentObjects, err = s.db.VaultObjects(ctx, index.VaultFilter{}, index.Page{Limit: 10}); err != nil {
			return nil, err
		}
		if v.History, err = s.db.VaultHistory(ctx, 60); err != nil {
			return nil, err
		}
		if v.Epochs, err = s.db.VaultEpochs(ctx, index.Page{Limit: 10}); err != nil {
			return nil, err
		}
		if v.EpochHistory, err = s.db.VaultEpochHistory(ctx, 60); err != nil {
			return nil, err
		}
		if v.Repairs, err = s.db.VaultRepairs(ctx, index.VaultRepairFilter{}, index.Page{Limit: 10}); err != nil {
			return nil, err
		}
		v.StoredChart, v.CapacityChart, v.EscrowChart = vaultCharts(v.History)
		v.PoolChart, v.SuccessChart, v.FailedChart = proofCharts(v.History, v.EpochHistory)
		return v, nil
	})
}

// proofCharts draws the pool's balance and what it paid over time, the proof success rate of the decided epochs
// (a stretch of time with none decided has no point), and the shards failed and lost per epoch.
func proofCharts(hist []index.VaultPoint, epochs []index.VaultEpochPoint) (pool, success, failed template.HTML) {
	var bal, paid svg.Series
	bal.Name, bal.Href = "the pool's balance", "/vault/epochs"
	paid.Name, paid.Href = "paid from it since genesis", "/events?type=vault.epoch_paid"
	for _, p := range hist {
		bal.Points = append(bal.Points, svg.Point{X: p.TimeMs, Y: sprFloat(p.Pool)})
		paid.Points = append(paid.Points, svg.Point{X: p.TimeMs, Y: sprFloat(p.PaidTotal)})
	}
	pool = svg.LineChart([]svg.Series{bal, paid}, svg.Options{Title: "The Vault pool", YLabel: "SPR", TimeX: true})
	rate := svg.Series{Name: "proofs passed (decided epochs)", Href: "/vault/epochs"}
	f := svg.Series{Name: "shards failed", Href: "/events?type=vault.proof_failed"}
	l := svg.Series{Name: "shards lost", Href: "/vault/repairs"}
	for _, p := range epochs {
		if p.SuccessPPM >= 0 {
			rate.Points = append(rate.Points, svg.Point{X: p.TimeMs, Y: float64(p.SuccessPPM) / 1e4})
		}
		f.Points = append(f.Points, svg.Point{X: p.TimeMs, Y: float64(p.Failed)})
		l.Points = append(l.Points, svg.Point{X: p.TimeMs, Y: float64(p.Lost)})
	}
	success = svg.LineChart([]svg.Series{rate}, svg.Options{Title: "Proof success rate (1 − failed ÷ shards challenged)", YLabel: "%", TimeX: true})
	failed = svg.LineChart([]svg.Series{f, l}, svg.Options{Title: "Shards failed and lost, by epoch tallied", YLabel: "shards", TimeX: true})
	return pool, success, failed
}

// vaultCharts draws the stored bytes over time (on their own scale: far below the capacity offered, they would be
// a flat line on its scale); the capacity offered beside them; what is held for storage providers: the Vault
// pool, and the escrow and endowments objects hold themselves (awaiting their draw, or on a chain without
// auditing).
func vaultCharts(hist []index.VaultPoint) (stored, capacity, escrow template.HTML) {
	var most, top uint64
	for _, p := range hist {
		most, top = max(most, p.StoredBytes), max(top, p.StoredBytes, p.CapacityBytes)
	}
	series := func(name, href string, f func(index.VaultPoint) float64) svg.Series {
		s := svg.Series{Name: name, Href: href}
		for _, p := range hist {
			s.Points = append(s.Points, svg.Point{X: p.TimeMs, Y: f(p)})
		}
		return s
	}
	sunit, sdiv := byteUnit(most)
	stored = svg.LineChart([]svg.Series{
		series("stored (shards, parity included)", "/vault/shards", func(p index.VaultPoint) float64 { return float64(p.StoredBytes) / sdiv }),
	}, svg.Options{Title: "Bytes stored in the Vault", YLabel: sunit, TimeX: true})
	unit, div := byteUnit(top)
	capacity = svg.LineChart([]svg.Series{
		series("offered", "/vault/offers", func(p index.VaultPoint) float64 { return float64(p.CapacityBytes) / div }),
		series("stored", "/vault/shards", func(p index.VaultPoint) float64 { return float64(p.StoredBytes) / div }),
	}, svg.Options{Title: "Storage offered and stored", YLabel: unit, TimeX: true})
	escrow = svg.LineChart([]svg.Series{
		series("the Vault pool", "/vault/epochs", func(p index.VaultPoint) float64 { return sprFloat(p.Pool) }),
		series("term deals' own escrow", "/vault/objects?deal=term", func(p index.VaultPoint) float64 { return sprFloat(p.TermEscrow) }),
		series("permanent deals' own endowments", "/vault/objects?deal=permanent", func(p index.VaultPoint) float64 { return sprFloat(p.Endowments) }),
	}, svg.Options{Title: "Held for storage providers", YLabel: "SPR", TimeX: true})
	return stored, capacity, escrow
}

// byteUnit is the binary unit to show values up to top in, and its size in bytes.
func byteUnit(top uint64) (string, float64) {
	units := []string{"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := 0
	for i < len(units)-1 && top>>(10*(i+1)) > 0 {
		i++
	}
	return units[i], math.Pow(1024, float64(i))
}

var nextUnit = map[string]string{"KiB": "MiB", "MiB": "GiB", "GiB": "TiB", "TiB": "PiB", "PiB": "EiB"}

// formatBytes shows a size in binary units with at most three significant digits: "16 KiB", "1.5 MiB".
func formatBytes(v uint64) string {
	unit, div := byteUnit(v)
	if div == 1 {
		return strconv.FormatUint(v, 10) + " bytes"
	}
	x := float64(v) / div
	if x >= 999.5 && unit != "EiB" { // would show 1000 or more: "0.98 GiB", not "1004 MiB"
		unit, x = nextUnit[unit], x/1024
	}
	prec := 2
	switch {
	case x >= 100:
		prec = 0
	case x >= 10:
		prec = 1
	}
	s := strconv.FormatFloat(x, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s + " " + unit
}

// VaultObjectsView is a list of objects.
type VaultObjectsView struct {
	index.List[index.VaultObject]
	Filter index.VaultFilter `json:"filter"`
	States []string          `json:"-"`
	Deals  []string          `json:"-"`
	Pager  Pager             `json:"-"`
	Query  url.Values        `json:"-"`
}

func (s *Server) loadVaultObjects(r *http.Request) (any, error) {
	if err := known(r, "owner", "root", "state", "deal"); err != nil {
		return nil, err
	}
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	f := index.VaultFilter{State: q.Get("state"), Deal: q.Get("deal")}
	if err := f.Validate(); err != nil {
		return nil, badRequest("%v", err)
	}
	if f.Owner, err = addrParam(q.Get("owner"), "owner"); err != nil {
		return nil, err
	}
	if v := q.Get("root"); v != "" {
		if f.Root, err = rootParam(v); err != nil {
			return nil, err
		}
	}
	l, err := s.db.VaultObjects(r.Context(), f, p)
	if err != nil {
		return nil, err
	}
	return VaultObjectsView{List: l, Filter: f, States: index.VaultStates, Deals: index.VaultDeals, Pager: pagerOf(r, l), Query: q}, nil
}

// rootParam reads an object's or a shard's root: 64 hex digits, answered in lower case.
func rootParam(v string) (string, error) {
	h, err := tx.ParseHash(v)
	if err != nil {
		return "", badRequest("root %q: want 64 hex digits (an object's or a shard's BLAKE3 root)", v)
	}
	return h.String(), nil
}

// VaultObjectView is an object's page: its deal, and its shards (a page of them) with their providers and how
// their proofs went; its shards' proof history and repairs.
type VaultObjectView struct {
	index.VaultObject
	ShardList    index.List[index.VaultShard]      `json:"shard_list"`
	Pager        Pager                             `json:"-"`         // of the shards
	SameRoot     int                               `json:"same_root"` // objects claiming its root, itself included
	Events       index.List[index.Event]           `json:"events"`
	ProofHistory index.List[index.VaultProofEvent] `json:"proof_history"` // newest first
	Repairs      index.List[index.VaultRepair]     `json:"repairs"`
	Audited      bool                              `json:"audited"`
	Proofs       string                            `json:"proofs"` // ProofsNote, or NotAuditedNote
	// ProducedBy are the leases whose signed receipts carry the object's root as their outputs' Vault root: the
	// jobs that made it (provenance), oldest first.
	ProducedBy index.List[index.Lease] `json:"produced_by"`
}

func (s *Server) loadVaultObject(r *http.Request) (any, error) {
	if err := known(r); err != nil {
		return nil, err
	}
	id, err := idParam(r, "id", "vault object")
	if err != nil {
		return nil, err
	}
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	o, err := s.db.VaultObject(ctx, id)
	if err != nil {
		return nil, err
	}
	v := VaultObjectView{VaultObject: o}
	if v.ShardList, err = s.db.VaultShards(ctx, index.VaultShardFilter{ObjectID: id}, p); err != nil {
		return nil, err
	}
	if v.ProofHistory, err = s.db.VaultProofEvents(ctx, index.VaultProofFilter{ObjectID: id}, index.Page{Limit: 50}); err != nil {
		return nil, err
	}
	if v.Repairs, err = s.db.VaultRepairs(ctx, index.VaultRepairFilter{ObjectID: id}, index.Page{Limit: 50}); err != nil {
		return nil, err
	}
	if v.Audited, err = s.db.VaultAudited(ctx); err != nil {
		return nil, err
	}
	v.Proofs = proofsNote(v.Audited)
	v.Pager = pagerOf(r, v.ShardList)
	if v.SameRoot, _, err = s.db.VaultRootMatches(ctx, o.Root); err != nil {
		return nil, err
	}
	if v.ProducedBy, err = s.db.LeasesWithVaultRoot(ctx, o.Root, index.Page{Limit: 20}); err != nil {
		return nil, err
	}
	v.Events, err = s.db.Events(ctx, index.EventFilter{Kind: "object", Ref: strconv.FormatUint(id, 10)}, index.Page{Limit: 20})
	return v, err
}

// VaultRootView is what a root names: the objects that claim it (oldest first: readers keep the first whose bytes
// hash to it) and the shards that have it.
type VaultRootView struct {
	Root         string                            `json:"root"`
	Objects      index.List[index.VaultObject]     `json:"objects"`
	ShardList    index.List[index.VaultShard]      `json:"shards"`
	ProofHistory index.List[index.VaultProofEvent] `json:"proof_history"` // of the shards with the root, newest first
	Pager        Pager                             `json:"-"`             // of the objects
	ProducedBy   index.List[index.Lease]           `json:"produced_by"`   // leases whose receipts vouch for the root
}

func (s *Server) loadVaultRoot(r *http.Request) (any, error) {
	if err := known(r); err != nil {
		return nil, err
	}
	root, err := rootParam(r.PathValue("root"))
	if err != nil {
		return nil, err
	}
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	v := VaultRootView{Root: root}
	if v.Objects, err = s.db.VaultObjects(ctx, index.VaultFilter{Root: root, Oldest: true}, p); err != nil {
		return nil, err
	}
	v.Pager = pagerOf(r, v.Objects)
	if v.ShardList, err = s.db.VaultShards(ctx, index.VaultShardFilter{Root: root}, index.Page{Limit: 50}); err != nil {
		return nil, err
	}
	if v.ProofHistory, err = s.db.VaultProofEvents(ctx, index.VaultProofFilter{Root: root}, index.Page{Limit: 50}); err != nil {
		return nil, err
	}
	if v.ProducedBy, err = s.db.LeasesWithVaultRoot(ctx, root, index.Page{Limit: 20}); err != nil {
		return nil, err
	}
	if v.Objects.Total == 0 && v.ShardList.Total == 0 && v.ProducedBy.Total == 0 {
		return nil, fmt.Errorf("root %s: %w: no object or shard with this root is indexed, nor a receipt naming it", root, index.ErrNotFound)
	}
	return v, nil
}

// VaultOffersView lists the storage offers.
type VaultOffersView struct {
	index.List[index.StorageOffer]
	Pager Pager `json:"-"`
}

func (s *Server) loadVaultOffers(r *http.Request) (any, error) {
	if err := known(r); err != nil {
		return nil, err
	}
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	l, err := s.db.StorageOffers(r.Context(), p)
	if err != nil {
		return nil, err
	}
	return VaultOffersView{List: l, Pager: pagerOf(r, l)}, nil
}

// VaultShardsView lists placed shards: a provider's, those with a root, or all, newest first.
type VaultShardsView struct {
	index.List[index.VaultShard]
	Filter index.VaultShardFilter `json:"filter"`
	Pager  Pager                  `json:"-"`
}

func (s *Server) loadVaultShards(r *http.Request) (any, error) {
	if err := known(r, "provider", "root"); err != nil {
		return nil, err
	}
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	var f index.VaultShardFilter
	if f.Provider, err = addrParam(q.Get("provider"), "provider"); err != nil {
		return nil, err
	}
	if v := q.Get("root"); v != "" {
		if f.Root, err = rootParam(v); err != nil {
			return nil, err
		}
	}
	l, err := s.db.VaultShards(r.Context(), f, p)
	if err != nil {
		return nil, err
	}
	return VaultShardsView{List: l, Filter: f, Pager: pagerOf(r, l)}, nil
}

// VaultEpochsView lists the epochs of storage proofs, newest first.
type VaultEpochsView struct {
	index.List[index.VaultEpoch]
	Proofs string `json:"proofs"` // ProofsNote, or NotAuditedNote
	Pager  Pager  `json:"-"`
}

func (s *Server) loadVaultEpochs(r *http.Request) (any, error) {
	if err := known(r); err != nil {
		return nil, err
	}
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	l, err := s.db.VaultEpochs(r.Context(), p)
	if err != nil {
		return nil, err
	}
	return VaultEpochsView{List: l, Proofs: proofsNote(l.Total > 0), Pager: pagerOf(r, l)}, nil
}

// VaultRepairsView lists repairs, newest first: in a state, of a provider (lost by it or drawn onto it).
type VaultRepairsView struct {
	index.List[index.VaultRepair]
	Filter index.VaultRepairFilter `json:"filter"`
	States []string                `json:"-"`
	Pager  Pager                   `json:"-"`
	Query  url.Values              `json:"-"`
}

func (s *Server) loadVaultRepairs(r *http.Request) (any, error) {
	if err := known(r, "state", "provider"); err != nil {
		return nil, err
	}
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	f := index.VaultRepairFilter{State: q.Get("state")}
	if err := f.Validate(); err != nil {
		return nil, badRequest("%v", err)
	}
	if f.Provider, err = addrParam(q.Get("provider"), "provider"); err != nil {
		return nil, err
	}
	l, err := s.db.VaultRepairs(r.Context(), f, p)
	if err != nil {
		return nil, err
	}
	return VaultRepairsView{List: l, Filter: f, States: index.RepairStates, Pager: pagerOf(r, l), Query: q}, nil
}
