package provider

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/inventory"
	"github.com/sparenet/spare/ledger/tx"
)

// storageOffer prepares the configured storage (its directory, with the space it offers free) and returns the
// OfferStorage that makes the ledger's offer equal to the config's, or nil when it already is. A config that
// offers nothing withdraws an offer the ledger still holds.
func (d *Daemon) storageOffer(ctx context.Context) (*tx.OfferStorage, error) {
	want, err := d.cfg.Storage.Offer()
	if err != nil {
		return nil, err
	}
	if want.CapacityBytes > 0 {
		if err := os.MkdirAll(d.cfg.Storage.Path, 0o700); err != nil {
			return nil, fmt.Errorf("storage.path: %w", err)
		}
		_, free, err := inventory.DiskSpace(d.cfg.Storage.Path)
		if err != nil {
			return nil, fmt.Errorf("storage.path: %w", err)
		}
		if need := want.CapacityBytes >> 20; free < need {
			return nil, fmt.Errorf("storage.path %s has %d GiB free; storage.capacity_gib offers %d: lower it or free the disk", d.cfg.Storage.Path, free>>10, d.cfg.Storage.CapacityGiB)
		}
	}
	cur, err := d.c.StorageOffer(ctx, d.Address())
	switch {
	case errors.Is(err, client.ErrNotFound):
		if want.CapacityBytes == 0 {
			return nil, nil
		}
		return want, nil
	case err != nil:
		return nil, err
	case cur.CapacityBytes == want.CapacityBytes && (want.CapacityBytes == 0 || cur.PricePerGiBMonth == want.PricePerGiBMonth):
		return nil, nil
	}
	return want, nil
}
