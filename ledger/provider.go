package ledger

import (
	"bytes"
	"crypto/ed25519"

	"github.com/sparenet/spare/ledger/tx"
)

func (c *ctx) provider(a tx.Address) (*Provider, bool) {
	b, ok := c.kv.Get(addrKey(pProvider, a))
	if !ok {
		return nil, false
	}
	return mustDecode(decProvider(b)), true
}

func (c *ctx) mustProvider(a tx.Address) (*Provider, error) {
	p, ok := c.provider(a)
	if !ok {
		return nil, tx.Errorf(tx.CodeNotProvider, "%s is not a registered provider: send RegisterProvider first", a)
	}
	return p, nil
}

func (c *ctx) setProvider(p *Provider) { c.kv.Set(addrKey(pProvider, p.Owner), encProvider(p)) }

func (c *ctx) registerProvider(signer tx.Address, pub ed25519.PublicKey, m *tx.RegisterProvider) error {
	if _, ok := c.provider(signer); ok {
		return tx.Errorf(tx.CodeProviderExists, "%s is already a provider: use UpdateProvider", signer)
	}
	p := &Provider{Owner: signer, PubKey: pub, Info: m.ProviderInfo, Status: ProviderActive, RegisteredHeight: c.height}
	c.setProvider(p)
	c.emit("provider.registered", "provider", signer, "region", m.Region,
		"gpus", m.Hardware.GPUCount(), "host", m.HostURI)
	return nil
}

func (c *ctx) updateProvider(signer tx.Address, m *tx.UpdateProvider) error {
	p, err := c.mustProvider(signer)
	if err != nil {
		return err
	}
	// A new declaration must be proven again; one that only changes max_lease_sec (a policy) changes nothing a
	// proof of GPU proved.
	if p.Info.MaxLeaseSec == m.MaxLeaseSec || !sameDeclaration(&p.Info, &m.ProviderInfo) {
		p.Verified, p.VerifiedClass, p.VerifiedOps = false, "", 0
	}
	p.Info = m.ProviderInfo
	c.setProvider(p)
	c.emit("provider.updated", "provider", signer, "region", m.Region,
		"gpus", m.Hardware.GPUCount(), "host", m.HostURI)
	return nil
}

// sameDeclaration reports whether two declarations differ at most in max_lease_sec.
func sameDeclaration(a, b *tx.ProviderInfo) bool {
	wa, wb := tx.NewWriter(128), tx.NewWriter(128)
	tx.EncodeProviderInfo(wa, a)
	tx.EncodeProviderInfo(wb, b)
	return bytes.Equal(wa.Bytes(), wb.Bytes())
}

func (c *ctx) bond(signer tx.Address, m *tx.Bond) error {
	p, err := c.mustProvider(signer)
	if err != nil {
		return err
	}
	if p.Stake, err = addChecked("stake", p.Stake, m.Amount); err != nil {
		return err
	}
	if err := c.debit(signer, m.Amount, inStaked); err != nil {
		return err
	}
	c.setProvider(p)
	c.emit("provider.bonded", "provider", signer, "amount", m.Amount, "stake", p.Stake)
	return nil
}

func (c *ctx) unbond(signer tx.Address, m *tx.Unbond) error {
	p, err := c.mustProvider(signer)
	if err != nil {
		return err
	}
	if m.Amount > p.Stake {
		return tx.Errorf(tx.CodeUnbondingTooLarge, "unbond %s, only %s bonded", FormatSPR(m.Amount), FormatSPR(p.Stake))
	}
	p.Stake -= m.Amount
	p.Unbonding += m.Amount
	c.setProvider(p)
	c.move(inStaked, inUnbonding, m.Amount)
	completeMs := c.timeMs + p.unbondingMs(c.params)
	seq := c.nextID("unbond")
	c.kv.Set(pUnbond+be64(completeMs)+string(signer[:])+be64(seq), []byte(be64(m.Amount)))
	c.kv.Set(pUnbondOwner+string(signer[:])+be64(completeMs)+be64(seq), nil)
	c.emit("provider.unbonding", "provider", signer, "amount", m.Amount,
		"complete_ms", completeMs, "stake", p.Stake)
	return nil
}

func (p *Provider) unbondingMs(params *Params) uint64 { return params.UnbondingPeriodSec * 1000 }

// matureUnbondings returns to their owners the unbonding entries that completed by now. It visits only entries
// that complete in this block: the index is ordered by completion time.
func (c *ctx) matureUnbondings() {
	type entry struct {
		key    string
		owner  tx.Address
		amount uint64
	}
	var due []entry
	c.kv.Iterate(pUnbond, pUnbond+be64(c.timeMs+1), func(k string, v []byte) bool {
		var e entry
		e.key = k
		copy(e.owner[:], k[len(pUnbond)+8:])
		e.amount = unbe64(string(v))
		due = append(due, e)
		return c.due(len(due))
	})
	for n, e := range due {
		if !c.due(n) {
			break
		}
		c.kv.Delete(e.key)
		rest := e.key[len(pUnbond):] // completeMs | owner | seq
		c.kv.Delete(pUnbondOwner + rest[8:8+tx.AddressLen] + rest[:8] + rest[8+tx.AddressLen:])
		p, ok := c.provider(e.owner)
		if !ok {
			panic("ledger: unbonding entry without provider")
		}
		p.Unbonding -= e.amount
		c.setProvider(p)
		if err := c.credit(e.owner, e.amount, inUnbonding); err != nil {
			panic("ledger: " + err.Error())
		}
		c.emit("provider.unbonded", "provider", e.owner, "amount", e.amount)
	}
}

// canServe reports whether p may bid now: active and bonded at least the required stake for what it declares.
func (c *ctx) canServe(p *Provider) error {
	if p.Status == ProviderJailed {
		return tx.Errorf(tx.CodeProviderJailed, "provider %s is jailed", p.Owner)
	}
	need := c.params.RequiredStake(p.Info.Hardware.GPUCount())
	if p.Stake < need {
		return tx.Errorf(tx.CodeInsufficientStake, "provider %s has %s bonded, needs %s (base %s + %s per GPU): bond the difference (Bond)",
			p.Owner, FormatSPR(p.Stake), FormatSPR(need), FormatSPR(c.params.StakeBase), FormatSPR(c.params.StakePerGPU))
	}
	return nil
}
