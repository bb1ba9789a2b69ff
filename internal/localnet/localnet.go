// Package localnet starts Spare validators in the current process — one, or a small network — with funded keys,
// for tests and benchmarks that need a real CometBFT node running the real ledger.
package localnet

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/store"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/node"
)

// Key is an in-memory ed25519 key; it satisfies client.Signer.
type Key struct {
	Name string
	Priv ed25519.PrivateKey
}

// NewKey derives a key from a name (deterministic, for tests).
func NewKey(name string) Key {
	seed := sha256.Sum256([]byte("localnet/" + name))
	return Key{Name: name, Priv: ed25519.NewKeyFromSeed(seed[:])}
}

func (k Key) Address() tx.Address       { return tx.AddressOf(k.PubKey()) }
func (k Key) PubKey() ed25519.PublicKey { return k.Priv.Public().(ed25519.PublicKey) }
func (k Key) Sign(msg []byte) []byte    { return ed25519.Sign(k.Priv, msg) }

// PrivateKey returns the key's private half (signed HTTP requests need it).
func (k Key) PrivateKey() ed25519.PrivateKey { return k.Priv }
func (k Key) String() string                 { return k.Name }

// Options describe a local network.
type Options struct {
	Validators int               // default 1
	ChainID    string            // default "spare-test"
	BlockTime  time.Duration     // default 100ms
	Funded     map[string]uint64 // key name -> genesis balance (uspr)
	Params     *api.Params       // default api.DefaultParams()
	Auditors   map[string]uint64 // key name (also funded) -> auditor weight; none by default
	// CheckInvariants recomputes the supply from the whole state after every block (panics on a difference).
	CheckInvariants bool
	Logger          *slog.Logger
	// Config edits each home's config.toml before start (e.g. a tiny mempool); nil for none.
	Config func(home string) error
}

// Net is a running local network.
type Net struct {
	Dir    string
	Homes  []string
	Nodes  []*node.Node
	Apps   []*ledger.App
	Stores []*store.Store
	Keys   map[string]Key
	opts   Options
}

// Start writes and starts a network under dir.
func Start(dir string, o Options) (*Net, error) {
	if o.Validators == 0 {
		o.Validators = 1
	}
	if o.ChainID == "" {
		o.ChainID = "spare-test"
	}
	if o.BlockTime == 0 {
		o.BlockTime = 100 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	params := api.DefaultParams()
	if o.Params != nil {
		params = *o.Params
	}
	n := &Net{Dir: dir, Keys: map[string]Key{}, opts: o}
	g := api.Genesis{Params: params}
	names := make([]string, 0, len(o.Funded))
	for name := range o.Funded {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		k := NewKey(name)
		n.Keys[name] = k
		g.Accounts = append(g.Accounts, api.GenesisAccount{Address: k.Address(), Balance: o.Funded[name]})
		if w := o.Auditors[name]; w > 0 {
			g.Auditors = append(g.Auditors, api.GenesisAuditor{Address: k.Address(), Weight: w})
		}
	}
	state, err := json.Marshal(g)
	if err != nil {
		return nil, err
	}
	base, err := node.FreePorts(o.Validators)
	if err != nil {
		return nil, err
	}
	homes, err := node.InitTestnet(dir, node.TestnetOptions{Validators: o.Validators, ChainID: o.ChainID, BasePort: base, BlockTime: o.BlockTime, AppState: state})
	if err != nil {
		return nil, err
	}
	n.Homes = homes
	n.Nodes = make([]*node.Node, len(homes))
	n.Apps = make([]*ledger.App, len(homes))
	n.Stores = make([]*store.Store, len(homes))
	for i, h := range homes {
		if o.Config != nil {
			if err := o.Config(h); err != nil {
				return nil, err
			}
		}
		if err := n.StartNode(i); err != nil {
			n.Stop()
			return nil, err
		}
	}
	for i := range homes {
		if err := n.WaitReady(i, 60*time.Second); err != nil {
			n.Stop()
			return nil, err
		}
	}
	return n, nil
}

// WaitReady waits until validator i has committed a block and is not catching up (it accepts transactions).
func (n *Net) WaitReady(i int, timeout time.Duration) error {
	c, err := n.Client(i)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		st, err := c.NodeStatus(ctx)
		if err == nil && !st.SyncInfo.CatchingUp && st.SyncInfo.LatestBlockHeight >= 1 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %d not ready after %s: %v", i, timeout, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// StartNode (re)starts validator i from its home.
func (n *Net) StartNode(i int) error {
	st, err := store.Open(filepath.Join(n.Homes[i], "data", "ledger"))
	if err != nil {
		return err
	}
	app := ledger.New(st, ledger.Options{CheckInvariants: n.opts.CheckInvariants, Logger: n.opts.Logger})
	nd, err := node.Start(n.Homes[i], app, n.opts.Logger.With("node", i))
	if err != nil {
		st.Close()
		return fmt.Errorf("start node %d: %w", i, err)
	}
	n.Nodes[i], n.Apps[i], n.Stores[i] = nd, app, st
	return nil
}

// StopNode stops validator i.
func (n *Net) StopNode(i int) error {
	if n.Nodes[i] == nil {
		return nil
	}
	err := n.Nodes[i].Stop()
	n.Stores[i].Close()
	n.Nodes[i], n.Apps[i], n.Stores[i] = nil, nil, nil
	return err
}

// Stop stops every validator.
func (n *Net) Stop() {
	for i := range n.Nodes {
		_ = n.StopNode(i)
	}
}

// Client returns a client of validator i.
func (n *Net) Client(i int) (*client.Client, error) {
	if n.Nodes[i] == nil {
		return nil, fmt.Errorf("node %d is stopped", i)
	}
	return client.New(n.Nodes[i].RPCAddress(), client.Options{Logger: n.opts.Logger})
}
