package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// The Spare market mix. Every order gets exactly one bid (from one of the worker's own providers) and so becomes
// one lease, so order : bid : lease-start run 1 : 1 : 1 by construction; the other lease messages (Withdraw,
// TopUp, CloseLease) come on top.
const defaultMix = "send=40,order=16,bid=16,start=16,withdraw=5,topup=4,close=3"

var mixKinds = []string{"send", "order", "bid", "start", "withdraw", "topup", "close"}

// Market figures: a 1-GPU order at most 36 SPR/h (10 uspr per ms, so any later block has something to
// withdraw), a 50 SPR deposit (well over an hour at the bid price), bids at 30 SPR/h.
const (
	maxPrice    = 36 * api.USPR
	bidPrice    = 30 * api.USPR
	deposit     = 50 * api.USPR
	topUpAmount = api.USPR
	accountBal  = 10_000_000_000 * api.USPR // 1e16 uspr per account: never runs out
	maxBacklog  = 256                       // orders waiting for their bid, per worker
)

func parseMix(s string) (map[string]float64, error) {
	m := map[string]float64{}
	total := 0.0
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("-mix %q: want kind=weight,... with kinds %v", s, mixKinds)
		}
		if !contains(mixKinds, k) {
			return nil, fmt.Errorf("-mix: unknown kind %q (kinds: %v)", k, mixKinds)
		}
		w, err := strconv.ParseFloat(v, 64)
		if err != nil || w < 0 {
			return nil, fmt.Errorf("-mix: weight of %s %q is not a number >= 0", k, v)
		}
		m[k] = w
		total += w
	}
	if total <= 0 || m["send"] <= 0 {
		return nil, fmt.Errorf("-mix %q: send needs a positive weight (it is the fallback)", s)
	}
	for k := range m {
		m[k] /= total
	}
	return m, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type skey struct {
	priv  ed25519.PrivateKey
	addr  tx.Address
	str   string
	nonce uint64 // next nonce; worker goroutine only
}

func newSKey(seed string) *skey {
	s := sha256.Sum256([]byte(seed))
	priv := ed25519.NewKeyFromSeed(s[:])
	a := tx.AddressOf(priv.Public().(ed25519.PublicKey))
	return &skey{priv: priv, addr: a, str: a.String()}
}

type leaseSt struct {
	id     uint64
	prov   int // index into the worker's keys
	active bool
	// paidAt is the height of the block that started the lease or last paid it out: CheckTx runs at the last
	// committed block's time, so a Withdraw has something to take only once a later block is committed.
	paidAt int64
}

// spareMarket holds every worker's view of the market, fed by the follower from block events.
type spareMarket struct {
	chainID string
	fee     uint64
	mix     map[string]float64
	workers []*spareGen
	owner   map[string]*spareGen // address -> worker (read-only once built)
	height  atomic.Int64         // last block seen by the follower
}

// spareGen is one worker's tenant and providers.
type spareGen struct {
	id       int
	m        *spareMarket
	c        *client.Client
	keys     []*skey // [0] tenant, [1:] providers
	rng      *rand.Rand
	seq      uint64
	nextProv int
	issued   map[string]int // acknowledged, by kind (worker goroutine only)
	total    int

	mu             sync.Mutex
	orders         []uint64 // open orders of our tenant with no bid yet
	ordersInFlight int
	leases         map[uint64]*leaseSt
	startable      []uint64 // pending leases, idle
	activeIdle     []uint64 // active leases, idle
}

func newSpareMarket(chainID string, workers, providers int, mix map[string]float64) *spareMarket {
	p := api.DefaultParams()
	// A fixed gas limit, as a client that does not simulate sends: every transaction of the mix fits it, and at the
	// default gas price it costs the min_fee. Blocks fill by the gas transactions use, not by this.
	m := &spareMarket{chainID: chainID, fee: api.FeeFor(&p, benchGas, p.MinGasPrice), mix: mix, owner: map[string]*spareGen{}}
	for w := range workers {
		g := &spareGen{id: w, m: m, rng: rand.New(rand.NewPCG(uint64(w), 42)), issued: map[string]int{},
			leases: map[uint64]*leaseSt{}}
		g.keys = append(g.keys, newSKey(fmt.Sprintf("bench/w%d/tenant", w)))
		for p := range providers {
			g.keys = append(g.keys, newSKey(fmt.Sprintf("bench/w%d/provider%d", w, p)))
		}
		for _, k := range g.keys {
			m.owner[k.str] = g
		}
		m.workers = append(m.workers, g)
	}
	return m
}

// genesis funds every key.
func (m *spareMarket) genesis() (json.RawMessage, error) {
	g := api.Genesis{Params: api.DefaultParams()}
	for _, w := range m.workers {
		for _, k := range w.keys {
			g.Accounts = append(g.Accounts, api.GenesisAccount{Address: k.addr, Balance: accountBal})
		}
	}
	return json.Marshal(g)
}

func (g *spareGen) sign(k *skey, msgs ...tx.Msg) []byte {
	return tx.Sign(tx.Body{ChainID: g.m.chainID, Nonce: k.nonce, Fee: g.m.fee, GasLimit: benchGas, Msgs: msgs}, k.priv)
}

// benchGas is every benchmark transaction's gas limit.
const benchGas = 2_000_000

func hardware() tx.Hardware {
	return tx.Hardware{GPUs: []tx.GPUGroup{{Model: "H100", VRAMMiB: 81920, Count: 8}}, CPUMilli: 64000,
		MemoryMiB: 512 << 10, DiskMiB: 4 << 20}
}

// setupOps registers and bonds every provider in one transaction each (not timed).
func (g *spareGen) setupOps(done func(code uint32)) []func() ([]byte, *op) {
	var out []func() ([]byte, *op)
	stake := api.DefaultParams().RequiredStake(hardware().GPUCount())
	for _, k := range g.keys[1:] {
		info := tx.ProviderInfo{HostURI: fmt.Sprintf("https://w%d-%s.example.net:8443", g.id, k.str[len(k.str)-6:]),
			CertFingerprint: sha256.Sum256([]byte(k.str)), Region: "eu-west", Zone: "a", Hardware: hardware()}
		out = append(out, func() ([]byte, *op) {
			raw := g.sign(k, &tx.RegisterProvider{ProviderInfo: info}, &tx.Bond{Amount: stake})
			return raw, &op{kind: "setup", key: k, onCommit: done}
		})
	}
	return out
}

// pickKind chooses the kind furthest behind its share that can be sent now; send is always possible.
func (g *spareGen) pickKind(feasible func(string) bool) string {
	type cand struct {
		kind    string
		deficit float64
	}
	cs := make([]cand, 0, len(mixKinds))
	for _, k := range mixKinds {
		if w := g.m.mix[k]; w > 0 {
			cs = append(cs, cand{k, w*float64(g.total+1) - float64(g.issued[k])})
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].deficit > cs[j].deficit })
	for _, c := range cs {
		if feasible(c.kind) {
			return c.kind
		}
	}
	return "send"
}

func takeRandom(s *[]uint64, rng *rand.Rand) uint64 {
	i := rng.IntN(len(*s))
	v := (*s)[i]
	(*s)[i] = (*s)[len(*s)-1]
	*s = (*s)[:len(*s)-1]
	return v
}

func (g *spareGen) next() ([]byte, *op, bool) {
	g.mu.Lock()
	wIdx := -1
	kind := g.pickKind(func(k string) bool {
		switch k {
		case "order":
			return len(g.orders)+g.ordersInFlight < maxBacklog
		case "bid":
			return len(g.orders) > 0
		case "start":
			return len(g.startable) > 0
		case "withdraw":
			wIdx = g.withdrawable()
			return wIdx >= 0
		case "topup", "close":
			return len(g.activeIdle) > 0
		}
		return true
	})
	tenant := g.keys[0]
	var (
		msg    tx.Msg
		signer *skey
		o      = &op{kind: kind}
	)
	switch kind {
	case "order":
		g.ordersInFlight++
		g.seq++
		var mh [32]byte
		binary.BigEndian.PutUint64(mh[:], uint64(g.id))
		binary.BigEndian.PutUint64(mh[8:], g.seq)
		mh[31] = 1
		msg = &tx.CreateOrder{Resources: tx.Resources{GPUCount: 1, GPUModels: []string{"H100"}, CPUMilli: 4000,
			MemoryMiB: 16 << 10}, MaxPricePerHour: maxPrice, ManifestHash: mh, Deposit: deposit, DurationSec: 3600}
		signer = tenant
		o.onCommit = func(uint32) { g.mu.Lock(); g.ordersInFlight--; g.mu.Unlock() }
		o.onReject = func(uint32, bool) { g.mu.Lock(); g.ordersInFlight--; g.mu.Unlock() }
	case "bid":
		id := g.orders[0]
		g.orders = g.orders[1:]
		g.nextProv = g.nextProv%(len(g.keys)-1) + 1
		signer = g.keys[g.nextProv]
		msg = &tx.PlaceBid{OrderID: id, Price: bidPrice}
		// On success the lease arrives as a lease.created event.
		o.onReject = func(code uint32, retry bool) {
			if retry || g.badNonce(code) || code == 0 {
				g.mu.Lock()
				g.orders = append(g.orders, id)
				g.mu.Unlock()
			}
		}
	case "start":
		id := takeRandom(&g.startable, g.rng)
		l := g.leases[id]
		signer = g.keys[l.prov]
		msg = &tx.LeaseStarted{ID: id}
		o.onCommit = func(code uint32) { g.leaseDone(l, code == 0, true) }
		o.onReject = func(code uint32, retry bool) { g.leaseDone(l, retry || g.badNonce(code) || code == 0, false) }
	case "withdraw", "topup", "close":
		var id uint64
		if kind == "withdraw" {
			i := wIdx
			id = g.activeIdle[i]
			g.activeIdle[i] = g.activeIdle[len(g.activeIdle)-1]
			g.activeIdle = g.activeIdle[:len(g.activeIdle)-1]
		} else {
			id = takeRandom(&g.activeIdle, g.rng)
		}
		l := g.leases[id]
		switch kind {
		case "withdraw":
			signer, msg = g.keys[l.prov], &tx.Withdraw{ID: id}
		case "topup":
			signer, msg = tenant, &tx.TopUp{LeaseID: id, Amount: topUpAmount}
		case "close":
			signer, msg = tenant, &tx.CloseLease{ID: id}
		}
		closing, paying := kind == "close", kind == "withdraw"
		o.onCommit = func(code uint32) { g.leaseDone(l, code == 0 && !closing, paying && code == 0) }
		o.onReject = func(code uint32, retry bool) { g.leaseDone(l, retry || g.badNonce(code) || code == 0, false) }
	default: // send
		i := g.rng.IntN(len(g.keys))
		j := (i + 1 + g.rng.IntN(len(g.keys)-1)) % len(g.keys)
		signer = g.keys[i]
		msg = &tx.Send{To: g.keys[j].addr, Amount: 1}
	}
	g.mu.Unlock()
	o.key = signer
	return g.sign(signer, msg), o, true
}

// withdrawable returns the index in activeIdle of a lease with something to withdraw (a few random tries), or -1.
func (g *spareGen) withdrawable() int {
	if len(g.activeIdle) == 0 {
		return -1
	}
	h := g.m.height.Load()
	for range 4 {
		i := g.rng.IntN(len(g.activeIdle))
		if g.leases[g.activeIdle[i]].paidAt < h {
			return i
		}
	}
	return -1
}

// leaseDone makes a lease idle again after a message on it (keep=false forgets it: closed, or state unknown);
// paid: it was started or paid out in the block just committed.
func (g *spareGen) leaseDone(l *leaseSt, keep, paid bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.leases[l.id]; !ok {
		return // closed meanwhile (deposit ran out, start timeout)
	}
	if !keep {
		delete(g.leases, l.id)
		return
	}
	if paid {
		l.active = true
		l.paidAt = g.m.height.Load() + 1 // onCommit runs before onBlock stores this block's height
	}
	if l.active {
		g.activeIdle = append(g.activeIdle, l.id)
	} else {
		g.startable = append(g.startable, l.id)
	}
}

func (g *spareGen) acked(o *op) {
	o.key.(*skey).nonce++
	g.issued[o.kind]++
	g.total++
}

func (g *spareGen) badNonce(code uint32) bool { return tx.Code(code) == tx.CodeBadNonce }

// resync asks the node for the signer's next nonce as the mempool sees it.
func (g *spareGen) resync(o *op) {
	k := o.key.(*skey)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if acc, err := g.c.PendingAccount(ctx, k.addr); err == nil {
		k.nonce = acc.Nonce
	}
}

// onBlock learns order and lease ids from the block's events.
func (m *spareMarket) onBlock(b *block) {
	m.height.Store(b.height)
	for _, r := range b.results {
		if r != nil {
			m.events(r.Events)
		}
	}
	m.events(b.events)
}

func (m *spareMarket) events(evs []abci.Event) {
	for _, ev := range evs {
		switch ev.Type {
		case api.EventOrderCreated, api.EventLeaseCreated, api.EventLeaseClosed:
		default:
			continue
		}
		attrs := map[string]string{}
		for _, a := range ev.Attributes {
			attrs[a.Key] = a.Value
		}
		// Read through the ledger's typed parsers: an event that does not read is not the load's to act on.
		switch ev.Type {
		case api.EventOrderCreated:
			g := m.owner[attrs[api.AttrTenant]]
			if g == nil {
				continue // not this load's
			}
			e, err := api.ParseOrderCreated(attrs)
			if err != nil {
				continue
			}
			g.mu.Lock()
			g.orders = append(g.orders, e.OrderID)
			g.mu.Unlock()
		case api.EventLeaseCreated:
			g := m.owner[attrs[api.AttrProvider]]
			if g == nil {
				continue // not this load's
			}
			e, err := api.ParseLeaseCreated(attrs)
			if err != nil {
				continue
			}
			prov := 0
			for i, k := range g.keys {
				if k.str == attrs[api.AttrProvider] {
					prov = i
				}
			}
			g.mu.Lock()
			g.leases[e.LeaseID] = &leaseSt{id: e.LeaseID, prov: prov}
			g.startable = append(g.startable, e.LeaseID)
			g.mu.Unlock()
		case api.EventLeaseClosed:
			g := m.owner[attrs[api.AttrProvider]]
			if g == nil {
				continue // not this load's
			}
			e, err := api.ParseLeaseClosed(attrs)
			if err != nil {
				continue
			}
			g.mu.Lock()
			if _, ok := g.leases[e.LeaseID]; ok {
				delete(g.leases, e.LeaseID)
				g.startable = removeID(g.startable, e.LeaseID)
				g.activeIdle = removeID(g.activeIdle, e.LeaseID)
			}
			g.mu.Unlock()
		}
	}
}

func removeID(s []uint64, id uint64) []uint64 {
	for i, v := range s {
		if v == id {
			s[i] = s[len(s)-1]
			return s[:len(s)-1]
		}
	}
	return s
}

func spareCodeName(c uint32) string { return tx.Code(c).String() }
