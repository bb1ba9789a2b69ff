package bank

import (
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/tx"
)

func (k *Keeper) Send(c *kernel.Ctx, from tx.Address, m *tx.Send) error {
	if err := c.Debit(from, m.Amount, kernel.InBalances); err != nil {
		return err
	}
	if err := c.Credit(m.To, m.Amount, kernel.InBalances); err != nil {
		return err
	}
	c.Emit(api.EventTransfer, api.AttrFrom, from, api.AttrTo, m.To, api.AttrAmount, m.Amount)
	return nil
}
