package providers

import (
	"bytes"
	"crypto/ed25519"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// ProviderFailed counts a failed lease against a provider's record, weighted by value: the lease's deposit, what
// the tenant committed to it.
func (k *Keeper) ProviderFailed(c *kernel.Ctx, a tx.Address, value uint64) {
	if p, ok := c.Provider(a); ok {
		p.Failed++
		p.FailedValue = tx.SatAdd(p.FailedValue, value)
		c.SetProvider(p)
	}
}

func (k *Keeper) RegisterProvider(c *kernel.Ctx, signer tx.Address, pub ed25519.PublicKey, m *tx.RegisterProvider) error {
	if _, ok := c.Provider(signer); ok {
		return tx.Errorf(tx.CodeProviderExists, "%s is already a provider: use UpdateProvider", signer)
	}
	p := &api.Provider{Owner: signer, PubKey: pub, Info: m.ProviderInfo, Status: api.ProviderActive, RegisteredHeight: c.Height}
	c.SetProvider(p)
	c.Emit(api.EventProviderRegistered, api.AttrProvider, signer, api.AttrRegion, m.Region,
		api.AttrGPUs, m.Hardware.GPUCount(), api.AttrHost, m.HostURI)
	return nil
}

func (k *Keeper) UpdateProvider(c *kernel.Ctx, signer tx.Address, m *tx.UpdateProvider) error {
	p, err := c.MustProvider(signer)
	if err != nil {
		return err
	}
	// A new declaration must be proven again; one that only changes max_lease_sec (a policy) changes nothing a
	// proof of GPU proved.
	if p.Info.MaxLeaseSec == m.MaxLeaseSec || !SameDeclaration(&p.Info, &m.ProviderInfo) {
		p.Verified, p.VerifiedClass, p.VerifiedOps = false, "", 0
	}
	p.Info = m.ProviderInfo
	c.SetProvider(p)
	c.Emit(api.EventProviderUpdated, api.AttrProvider, signer, api.AttrRegion, m.Region,
		api.AttrGPUs, m.Hardware.GPUCount(), api.AttrHost, m.HostURI)
	return nil
}

// SameDeclaration reports whether two declarations differ at most in max_lease_sec.
func SameDeclaration(a, b *tx.ProviderInfo) bool {
	wa, wb := tx.NewWriter(128), tx.NewWriter(128)
	tx.EncodeProviderInfo(wa, a)
	tx.EncodeProviderInfo(wb, b)
	return bytes.Equal(wa.Bytes(), wb.Bytes())
}

func (k *Keeper) Bond(c *kernel.Ctx, signer tx.Address, m *tx.Bond) error {
	p, err := c.MustProvider(signer)
	if err != nil {
		return err
	}
	if p.Stake, err = kernel.AddChecked("stake", p.Stake, m.Amount); err != nil {
		return err
	}
	if err := c.Debit(signer, m.Amount, kernel.InStaked); err != nil {
		return err
	}
	c.SetProvider(p)
	c.Emit(api.EventProviderBonded, api.AttrProvider, signer, api.AttrAmount, m.Amount, api.AttrStake, p.Stake)
	return nil
}

func (k *Keeper) Unbond(c *kernel.Ctx, signer tx.Address, m *tx.Unbond) error {
	p, err := c.MustProvider(signer)
	if err != nil {
		return err
	}
	if m.Amount > p.Stake {
		return tx.Errorf(tx.CodeUnbondingTooLarge, "unbond %s, only %s bonded", api.FormatSPR(m.Amount), api.FormatSPR(p.Stake))
	}
	p.Stake -= m.Amount
	p.Unbonding += m.Amount
	c.SetProvider(p)
	c.Move(kernel.InStaked, kernel.InUnbonding, m.Amount)
	completeMs := c.TimeMs + p.UnbondingMs(c.Params)
	seq := c.NextID("unbond")
	c.KV.Set(schema.PUnbond+schema.BE64(completeMs)+string(signer[:])+schema.BE64(seq), []byte(schema.BE64(m.Amount)))
	c.KV.Set(schema.PUnbondOwner+string(signer[:])+schema.BE64(completeMs)+schema.BE64(seq), nil)
	c.Emit(api.EventProviderUnbonding, api.AttrProvider, signer, api.AttrAmount, m.Amount,
		api.AttrCompleteMs, completeMs, api.AttrStake, p.Stake)
	return nil
}

// MatureUnbondings returns to their owners the unbonding entries that completed by now. It visits only entries
// that complete in this block: the index is ordered by completion time.
func (k *Keeper) MatureUnbondings(c *kernel.Ctx) {
	type entry struct {
		key    string
		owner  tx.Address
		amount uint64
	}
	var due []entry
	c.KV.Iterate(schema.PUnbond, schema.PUnbond+schema.BE64(c.TimeMs+1), func(k string, v []byte) bool {
		var e entry
		e.key = k
		copy(e.owner[:], k[len(schema.PUnbond)+8:])
		e.amount = schema.UnBE64(string(v))
		due = append(due, e)
		return c.Due(len(due))
	})
	for n, e := range due {
		if !c.Due(n) {
			break
		}
		c.KV.Delete(e.key)
		rest := e.key[len(schema.PUnbond):] // completeMs | owner | seq
		c.KV.Delete(schema.PUnbondOwner + rest[8:8+tx.AddressLen] + rest[:8] + rest[8+tx.AddressLen:])
		p, ok := c.Provider(e.owner)
		if !ok {
			panic("ledger: unbonding entry without provider")
		}
		p.Unbonding -= e.amount
		c.SetProvider(p)
		if err := c.Credit(e.owner, e.amount, kernel.InUnbonding); err != nil {
			panic("ledger: " + err.Error())
		}
		c.Emit(api.EventProviderUnbonded, api.AttrProvider, e.owner, api.AttrAmount, e.amount)
	}
}

// CanServe reports whether p may bid now: active and bonded at least the required stake for what it declares.
func (k *Keeper) CanServe(c *kernel.Ctx, p *api.Provider) error {
	if p.Status == api.ProviderJailed {
		return tx.Errorf(tx.CodeProviderJailed, "provider %s is jailed", p.Owner)
	}
	need := c.Params.RequiredStake(p.Info.Hardware.GPUCount())
	if p.Stake < need {
		return tx.Errorf(tx.CodeInsufficientStake, "provider %s has %s bonded, needs %s (base %s + %s per GPU): bond the difference (Bond)",
			p.Owner, api.FormatSPR(p.Stake), api.FormatSPR(need), api.FormatSPR(c.Params.StakeBase), api.FormatSPR(c.Params.StakePerGPU))
	}
	return nil
}
