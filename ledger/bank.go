package ledger

import "github.com/sparenet/spare/ledger/tx"

func (c *ctx) send(from tx.Address, m *tx.Send) error {
	if err := c.debit(from, m.Amount, inBalances); err != nil {
		return err
	}
	if err := c.credit(m.To, m.Amount, inBalances); err != nil {
		return err
	}
	c.emit("transfer", "from", from, "to", m.To, "amount", m.Amount)
	return nil
}
