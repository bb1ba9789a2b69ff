package provider

import (
	"net/http"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/offers"
)

// Offer is what GET /offer publishes: the capacity this provider would bid with now and its price table in uspr.
// Free is empty while the daemon runs limits.max_leases leases, since it bids on nothing then. With a pricing
// script the table is only indicative (Script is set).
func (d *Daemon) Offer() offers.Offer {
	free := d.capacity.Free()
	if n := d.cfg.Limits.MaxLeases; n > 0 && d.activeLeases() >= n {
		free = tx.Hardware{}
	}
	return offers.Offer{Provider: d.Address(), Free: free, Prices: d.cfg.Prices.offer(), Script: d.cfg.Prices.Script != "",
		Docker: d.runtimes["docker"] != nil, Region: d.cfg.Region, Zone: d.cfg.Zone}
}

// offer converts the table to uspr. The config was validated, so the amounts parse. A configured default of
// "0" is published as 1 uspr, the least the bidder asks, since 0 means "no default".
func (p Prices) offer() offers.Prices {
	out := offers.Prices{GPUHour: make(map[string]uint64, len(p.GPUHour))}
	for m, v := range p.GPUHour {
		out.GPUHour[m], _ = client.ParseAmount(v)
	}
	if p.DefaultGPUHour != "" {
		v, _ := client.ParseAmount(p.DefaultGPUHour)
		out.DefaultGPUHour = max(v, 1)
	}
	out.CPUHour, _ = client.ParseAmount(p.CPUHour)
	out.MemoryGiBHour, _ = client.ParseAmount(p.MemoryGiBHour)
	return out
}

// getOffer answers GET /offer (no auth): the daemon's Offer as JSON. Tenants' `spare offers` fetch it over the
// TLS certificate pinned on the ledger.
func (d *Daemon) getOffer(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, d.Offer())
}
