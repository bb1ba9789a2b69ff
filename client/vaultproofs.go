package client

import (
	"context"
	"fmt"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// Storage proofs of the Vault (ledger/api/vaultproofs.go, docs/vault.md).

// VaultEpoch is an epoch's Vault record, nil for the current epoch; ErrNotFound while the epoch's seed is not
// fixed yet (it is at the epoch's first block).
func (c *Client) VaultEpoch(ctx context.Context, epoch *uint64) (api.VaultEpoch, error) {
	var e api.VaultEpoch
	return e, c.Query(ctx, api.QueryVaultEpoch, api.EpochRequest{Epoch: epoch}, &e)
}

// VaultChallenges pages the shards an epoch challenges, by (object, ordinal), with the group each must prove
// and where its provider answers.
func (c *Client) VaultChallenges(ctx context.Context, r api.VaultChallengesRequest) (api.List[api.VaultChallenge], error) {
	var l api.List[api.VaultChallenge]
	return l, c.Query(ctx, api.QueryVaultChallenges, r, &l)
}

// EachVaultChallenge calls each with every page of r.Epoch's challenges (r's Provider filter and Limit kept,
// its position ignored), in (object, ordinal) order, until the last page or each's first error. A page may hold
// few or no challenges (the node scans a bounded number of shards a page): its Next says where to go on. A node
// whose pages do not move forward is an error, not a loop.
func (c *Client) EachVaultChallenge(ctx context.Context, r api.VaultChallengesRequest, each func([]api.VaultChallenge) error) error {
	return eachVaultChallenge(ctx, c.VaultChallenges, r, each)
}

func eachVaultChallenge(ctx context.Context, page func(context.Context, api.VaultChallengesRequest) (api.List[api.VaultChallenge], error),
	r api.VaultChallengesRequest, each func([]api.VaultChallenge) error) error {
	r.HasAfter, r.AfterObject, r.AfterOrdinal = false, 0, 0
	if r.Limit <= 0 {
		r.Limit = api.MaxPageLimit
	}
	for {
		l, err := page(ctx, r)
		if err != nil {
			return err
		}
		if len(l.Items) > 0 {
			if err := each(l.Items); err != nil {
				return err
			}
		}
		if l.Next == "" {
			return nil
		}
		var at tx.ShardRef
		if _, err := fmt.Sscanf(l.Next, "%d:%d", &at.Object, &at.Ordinal); err != nil {
			return fmt.Errorf("query %s: the node answered next %q: want OBJECT:ORDINAL", api.QueryVaultChallenges, l.Next)
		}
		if r.HasAfter && !(tx.ShardRef{Object: r.AfterObject, Ordinal: r.AfterOrdinal}).Less(at) {
			return fmt.Errorf("query %s: the node answered a page ending at object %d ordinal %d, not after %d/%d",
				api.QueryVaultChallenges, at.Object, at.Ordinal, r.AfterObject, r.AfterOrdinal)
		}
		r.HasAfter, r.AfterObject, r.AfterOrdinal = true, at.Object, at.Ordinal
	}
}

// VaultPool is the Vault's pool: its balance, the bytes it pays for, what it paid.
func (c *Client) VaultPool(ctx context.Context) (api.VaultPool, error) {
	var p api.VaultPool
	return p, c.Query(ctx, api.QueryVaultPool, nil, &p)
}

// VaultProvider is what storage provider a holds and earned in the Vault's accounting.
func (c *Client) VaultProvider(ctx context.Context, a tx.Address) (api.VaultProvider, error) {
	var p api.VaultProvider
	return p, c.Query(ctx, api.QueryVaultProvider, api.AddressRequest{Address: a}, &p)
}

// Check asks the node whether it would accept msgs as this sender's next transaction now, sending nothing and
// paying nothing: nil when it would, its refusal (a *tx.Error with the ledger's code, as Send returns) when
// not. An auditor asks it before work whose only outcome is a transaction the ledger may already hold (an
// attestation sent before a restart).
func (s *Sender) Check(ctx context.Context, msgs ...tx.Msg) error {
	s.mu.Lock()
	if s.chainID == "" {
		st, err := s.c.NodeStatus(ctx)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		s.chainID = st.NodeInfo.Network
	}
	chainID := s.chainID
	s.mu.Unlock()
	// The mempool's next nonce, not the sender's: a check must not depend on what this sender has in flight.
	acc, err := s.c.PendingAccount(ctx, s.signer.Address())
	if err != nil {
		return err
	}
	b := tx.Body{ChainID: chainID, PubKey: s.signer.PubKey(), Nonce: acc.Nonce, Msgs: msgs, GasLimit: simulationGas}
	if err := b.ValidateBasic(chainID); err != nil {
		return err
	}
	if max, err := s.c.MaxGas(ctx); err != nil {
		return err
	} else if max > 0 {
		b.GasLimit = max
	}
	body, err := tx.EncodeBodyChecked(b)
	if err != nil {
		return tx.Errorf(tx.CodeInvalidMsg, "%v", err)
	}
	sim, err := s.c.Simulate(ctx, tx.Assemble(body, s.signer.Sign(body)))
	if err != nil {
		return err
	}
	if sim.Code != 0 {
		return rejection(sim.Code, "spare", sim.Log)
	}
	return nil
}
