package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// Report is `spare provider status`: the provider as the ledger records it, with what its open bids and
// running leases reserve of the offered hardware.
type Report struct {
	Address   tx.Address       `json:"address"` // the provider's key
	Provider  api.ProviderView `json:"provider"`
	Offered   tx.Hardware      `json:"offered"`
	Reserved  tx.Resources     `json:"reserved"` // sum over open bids and pending or active leases
	OpenBids  []api.Bid        `json:"open_bids"`
	Leases    []api.LeaseView  `json:"leases"`    // pending or active
	Earned    uint64           `json:"earned"`    // paid to the provider so far, take and burn deducted
	Unsettled uint64           `json:"unsettled"` // earned by running leases, not yet withdrawn
	// Warnings say what keeps the provider from bidding (jailed, stake below what its hardware needs).
	Warnings []string `json:"warnings,omitempty"`
	// Isolation is what each runtime guarantees on this machine (filled by the CLI, which runs here).
	Isolation *IsolationReport `json:"isolation,omitempty"`
}

// StatusFromLedger builds a Report from ledger queries; it needs no access to the daemon.
func StatusFromLedger(ctx context.Context, c *client.Client, addr tx.Address, offered HardwareConfig) (*Report, error) {
	pv, err := c.Provider(ctx, addr)
	if err != nil {
		return nil, err
	}
	r := &Report{Address: addr, Provider: pv, Offered: offered.Ledger(), OpenBids: []api.Bid{}, Leases: []api.LeaseView{}}
	if pv.Status == api.ProviderJailed {
		r.Warnings = append(r.Warnings, fmt.Sprintf("jailed until %s: it cannot bid; the daemon sends Unjail once the cooldown is over",
			time.UnixMilli(int64(pv.JailedUntilMs)).UTC().Format(time.RFC3339)))
	}
	if pv.Stake < pv.RequiredStake {
		r.Warnings = append(r.Warnings, fmt.Sprintf("bonded %s is below the %s its hardware needs (%s slashed so far): it cannot bid; "+
			"the daemon tops the stake up within stake_topup_budget, and its log says why when it does not",
			client.FormatAmount(pv.Stake), client.FormatAmount(pv.RequiredStake), client.FormatAmount(pv.Slashed)))
	}
	reserve := func(orderID uint64) error {
		o, err := c.Order(ctx, orderID)
		if err != nil {
			return err
		}
		r.Reserved.GPUCount += o.Resources.GPUCount
		r.Reserved.CPUMilli += o.Resources.CPUMilli
		r.Reserved.MemoryMiB += o.Resources.MemoryMiB
		r.Reserved.DiskMiB += o.Resources.DiskMiB
		return nil
	}
	for after := ""; ; {
		page, err := c.Bids(ctx, api.ListRequest{Provider: addr, After: after, Limit: api.MaxPageLimit})
		if err != nil {
			return nil, err
		}
		for _, b := range page.Items {
			if b.State == api.BidOpen {
				r.OpenBids = append(r.OpenBids, b)
				if err := reserve(b.OrderID); err != nil {
					return nil, err
				}
			}
		}
		if after = page.Next; after == "" {
			break
		}
	}
	for after := ""; ; {
		page, err := c.Leases(ctx, api.ListRequest{Provider: addr, After: after, Limit: api.MaxPageLimit})
		if err != nil {
			return nil, err
		}
		for _, l := range page.Items {
			r.Earned += l.Paid - l.Take - l.Burned
			if l.State == api.LeasePending || l.State == api.LeaseActive {
				r.Leases = append(r.Leases, l)
				r.Unsettled += l.Unpaid
				if err := reserve(l.OrderID); err != nil {
					return nil, err
				}
			}
		}
		if after = page.Next; after == "" {
			break
		}
	}
	return r, nil
}
