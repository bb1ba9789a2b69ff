package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// Explain tells why this provider would not bid on order o with its current free capacity and standing, using
// the ledger's own feasibility check on the free (not the declared) hardware. ReasonOK means it would.
func (d *Daemon) Explain(me api.ProviderView, o *api.Order) api.Reason {
	p := me.Provider
	p.Info.Hardware = d.capacity.Free()
	p.Info.Docker = d.runtimes["docker"] != nil
	return api.Feasible(&p, o.Resources, o.Constraints)
}

// PriceInput is what a pricing script receives on stdin.
type PriceInput struct {
	Order api.Order   `json:"order"`
	GPUs  []GPUConfig `json:"gpus"` // the GPUs this provider would assign
}

// price is the lease price per hour in uspr for order o on the chosen GPUs, or ok=false to not bid. Without a
// pricing script it is offers.Prices.Quote on the published table: exactly what `spare offers --job` quotes.
func (d *Daemon) price(ctx context.Context, o *api.Order, gpus []GPUConfig) (uint64, bool, error) {
	p := d.cfg.Prices
	if p.Script != "" {
		return d.scriptPrice(ctx, o, gpus)
	}
	models := make([]string, len(gpus))
	for i, g := range gpus {
		models[i] = g.Model
	}
	v, ok := p.offer().Quote(models, o.Resources)
	return v, ok, nil
}

// scriptPrice runs the configured pricing script: order JSON on stdin, price in SPR (or "none") on stdout,
// within the timeout.
func (d *Daemon) scriptPrice(ctx context.Context, o *api.Order, gpus []GPUConfig) (uint64, bool, error) {
	in, err := json.Marshal(PriceInput{Order: *o, GPUs: gpus})
	if err != nil {
		return 0, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Prices.ScriptTimeout.Duration)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.cfg.Prices.Script)
	cmd.Stdin = bytes.NewReader(in)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return 0, false, fmt.Errorf("pricing script %s: no answer within %s", d.cfg.Prices.Script, d.cfg.Prices.ScriptTimeout.Duration)
		}
		return 0, false, fmt.Errorf("pricing script %s: %v: %s", d.cfg.Prices.Script, err, strings.TrimSpace(errb.String()))
	}
	answer := strings.TrimSpace(out.String())
	if answer == "none" {
		return 0, false, nil
	}
	v, err := client.ParseAmount(answer)
	if err != nil || v == 0 {
		return 0, false, fmt.Errorf("pricing script %s printed %q: want a positive price in SPR per hour, or none", d.cfg.Prices.Script, answer)
	}
	return v, true, nil
}

// considerOrder bids on an open order when free capacity, standing and price allow. The resources are reserved
// (and the reservation saved) before the bid is sent; a rejected bid releases them.
func (d *Daemon) considerOrder(ctx context.Context, orderID uint64) {
	log := d.log.With("order", orderID)
	o, err := d.c.Order(ctx, orderID)
	if err != nil {
		log.Warn("cannot read order", "err", err)
		return
	}
	if o.State != api.OrderOpen || o.Tenant == d.Address() {
		return
	}
	if prev, _ := d.store.Bid(orderID); prev != nil {
		return // already bidding (e.g. seen again after a restart)
	}
	if o.RefereeFor != 0 { // a referee must be a provider that does not run the job already
		if v, err := d.c.Verification(ctx, o.RefereeFor); err != nil || slices.ContainsFunc(v.Runs, func(r api.RunView) bool { return r.Provider == d.Address() }) {
			log.Debug("not bidding: referee run of a job we run", "err", err)
			return
		}
	}
	if o.Nodes > 1 && o.Constraints.Docker && !d.cfg.ClusterContainers {
		log.Debug("not bidding: cluster members in containers are off here (cluster_containers = false)")
		return
	}
	if o.Nodes > 1 { // a restarted cluster is closed to the providers whose member failed before
		if cv, err := d.c.Cluster(ctx, orderID); err != nil || slices.Contains(cv.Excluded, d.Address()) {
			log.Debug("not bidding: excluded from this cluster's restart", "err", err)
			return
		}
	}
	me, err := d.c.Provider(ctx, d.Address())
	if err != nil {
		log.Warn("cannot read own provider record", "err", err)
		return
	}
	if n := d.activeLeases(); n >= d.cfg.Limits.MaxLeases {
		log.Info("not bidding for now: at max_leases", "leases", n)
		d.deferred.add(orderID)
		return
	}
	if r := d.Explain(me, &o); r != api.ReasonOK {
		log.Debug("not bidding: infeasible", "reason", r)
		if api.Feasible(&me.Provider, o.Resources, o.Constraints) == api.ReasonOK {
			d.deferred.add(orderID) // the declared hardware fits: what is busy now may free in time
		}
		return
	}
	res, gpus, err := d.capacity.Reserve(orderID, o.Resources)
	if err != nil {
		log.Debug("not bidding for now", "reason", err)
		d.deferred.add(orderID)
		return
	}
	price, ok, err := d.price(ctx, &o, gpus)
	switch {
	case err != nil:
		log.Warn("not bidding: pricing failed", "err", err)
	case !ok:
		log.Info("not bidding: no price for this order")
	case price > o.MaxPricePerHour:
		log.Info("not bidding: our price is above the order's maximum", "price", price, "max", o.MaxPricePerHour)
		ok = false
	}
	if err != nil || !ok {
		d.capacity.ReleaseOrder(orderID)
		return
	}
	rec := &BidRecord{OrderID: orderID, Price: price, Reservation: res, Tenant: o.Tenant}
	if err := d.store.PutBid(rec); err != nil {
		d.capacity.ReleaseOrder(orderID)
		log.Error("cannot save bid", "err", err)
		return
	}
	if _, err := d.sender.Send(ctx, &tx.PlaceBid{OrderID: orderID, Price: price}); err != nil {
		log.Info("bid not placed", "err", err)
		d.bidLost(orderID)
		return
	}
	log.Info("bid placed", "price", client.FormatAmount(price)+"/h", "gpus", len(gpus))
}

// bidPlaced records the ledger's id for our bid on order.
func (d *Daemon) bidPlaced(orderID, bidID uint64) {
	if rec, _ := d.store.Bid(orderID); rec != nil && rec.BidID == 0 {
		rec.BidID = bidID
		d.stored("bid", rec.OrderID, d.store.PutBid(rec))
	}
}

// bidLost releases what our bid on order reserved.
func (d *Daemon) bidLost(orderID uint64) {
	if rec, _ := d.store.Bid(orderID); rec == nil {
		return
	}
	if err := d.store.DeleteBid(orderID); err != nil {
		d.log.Error("cannot delete bid", "order", orderID, "err", err)
	}
	d.capacity.ReleaseOrder(orderID)
}

func (d *Daemon) activeLeases() int {
	n := 0
	for k := range d.capacity.Snapshot() {
		if strings.HasPrefix(k, "lease/") {
			n++
		}
	}
	return n
}
