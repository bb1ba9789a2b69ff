package kernel

import (
	"math/bits"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

func (c *Ctx) Supply() *api.Supply {
	b, ok := c.KV.Get(schema.KeySupply)
	if !ok {
		return &api.Supply{}
	}
	return MustDecode(schema.DecSupply(b))
}

func (c *Ctx) SetSupply(s *api.Supply) { c.KV.Set(schema.KeySupply, schema.EncSupply(s)) }

// Accounts.

func (c *Ctx) Account(a tx.Address) *api.Account {
	b, ok := c.KV.Get(schema.AddrKey(schema.PAccount, a))
	if !ok {
		return &api.Account{Address: a}
	}
	return MustDecode(schema.DecAccount(a, b))
}

func (c *Ctx) SetAccount(a *api.Account) {
	c.KV.Set(schema.AddrKey(schema.PAccount, a.Address), schema.EncAccount(a))
}

// Balance movements. Each keeps Supply in step: tokens move between balances and one of the holding places
// (escrow, stake, unbonding, pool), or between two balances.

type Holding int

const (
	InBalances Holding = iota
	InEscrow
	InStaked
	InUnbonding
	InPool
	InRewards // minted to providers, not yet claimed
)

func field(s *api.Supply, h Holding) *uint64 {
	switch h {
	case InEscrow:
		return &s.Escrow
	case InStaked:
		return &s.Staked
	case InUnbonding:
		return &s.Unbonding
	case InPool:
		return &s.Pool
	case InRewards:
		return &s.Rewards
	}
	return &s.Balances
}

// Move shifts amount between two holdings in the supply record (not touching any account).
func (c *Ctx) Move(from, to Holding, amount uint64) {
	if amount == 0 || from == to {
		return
	}
	s := c.Supply()
	f, t := field(s, from), field(s, to)
	if *f < amount {
		panic("ledger: supply underflow")
	}
	*f -= amount
	*t += amount
	c.SetSupply(s)
}

// Mint creates amount new tokens into holding h (rewards: package rewards, within params.emission_cap).
func (c *Ctx) Mint(to Holding, amount uint64) {
	if amount == 0 {
		return
	}
	s := c.Supply()
	t := field(s, to)
	if s.Minted+amount < s.Minted || *t+amount < *t {
		panic("ledger: supply overflow")
	}
	s.Minted += amount
	*t += amount
	c.SetSupply(s)
}

// Burn destroys amount tokens of holding h.
func (c *Ctx) Burn(from Holding, amount uint64) {
	if amount == 0 {
		return
	}
	s := c.Supply()
	f := field(s, from)
	if *f < amount {
		panic("ledger: supply underflow")
	}
	*f -= amount
	s.Burned += amount
	c.SetSupply(s)
}

// Debit takes amount from a's balance into holding h.
func (c *Ctx) Debit(a tx.Address, amount uint64, to Holding) error {
	acc := c.Account(a)
	if acc.Balance < amount {
		return tx.Errorf(tx.CodeInsufficientFunds, "%s has %s, needs %s", a, api.FormatSPR(acc.Balance), api.FormatSPR(amount))
	}
	acc.Balance -= amount
	c.SetAccount(acc)
	c.Move(InBalances, to, amount)
	return nil
}

// Credit gives amount to a's balance from holding h.
func (c *Ctx) Credit(a tx.Address, amount uint64, from Holding) error {
	if amount == 0 {
		return nil
	}
	acc := c.Account(a)
	if acc.Balance+amount < acc.Balance {
		return tx.Errorf(tx.CodeOverflow, "balance of %s would overflow", a)
	}
	acc.Balance += amount
	c.SetAccount(acc)
	c.Move(from, InBalances, amount)
	return nil
}

func AddChecked(field string, a, b uint64) (uint64, error) {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return 0, tx.Errorf(tx.CodeOverflow, "%s: %d + %d overflows 64 bits", field, a, b)
	}
	return s, nil
}

func MulChecked(field string, a, b uint64) (uint64, error) {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return 0, tx.Errorf(tx.CodeOverflow, "%s: %d x %d overflows 64 bits", field, a, b)
	}
	return lo, nil
}

func LoadPruned(kv interface{ Get(string) ([]byte, bool) }) *api.Pruned {
	b, ok := kv.Get(schema.KeyPruned)
	if !ok {
		return &api.Pruned{}
	}
	return MustDecode(schema.DecPruned(b))
}
