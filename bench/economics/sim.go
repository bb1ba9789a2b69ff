package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// role is what a simulated provider does.
type role int

const (
	roleHonest    role = iota // bids on the tenants' orders and completes its leases with signed receipts
	roleIdle                  // up and verified, never bids
	roleFake                  // fake hardware: fails proof of GPU, is slashed and jailed, unjails and tries again
	roleWashAlone             // rents itself through a sock-puppet tenant it funds, one lease after another
	roleWashRing              // one of a ring of providers, each one's sock puppet renting the next provider
	rolePump                  // holds 8-GPU self-leases at the lowest price (1 uspr an hour): the utilisation pumped for fees
	roleWorkPump              // an honest worker that also pumps the utilisation that way
	numRoles
)

var roleNames = [numRoles]string{"honest", "idle", "fake_hardware", "wash_alone", "wash_ring", "wash_pump", "work_pump"}

func (r role) String() string { return roleNames[r] }

// washing reports whether the role trades with itself (when the scenario lets the wash traders trade).
func (r role) washing() bool { return r >= roleWashAlone && r < numRoles }

// Market figures. Every provider declares the same machine, 8 H100s, and proves 8 × 250 Tops/s of int8.
const (
	gpusPerProvider = 8
	opsPerSec       = 8 * 250_000_000_000_000
	gpuHourPrice    = 2 * api.USPR // tenants' maximum, uspr per GPU-hour; honest providers bid 75-100% of it
	providerFunds   = 2_000 * api.USPR
	tenantFunds     = 5_000 * api.USPR
	sockFunds       = 100 * api.USPR // what a wash trader gives its sock puppet at the start (in both runs)
	orderTTLBlocks  = 100
	claimEvery      = 50 // epochs between reward claims
)

// Config is one simulated chain.
type Config struct {
	Name   string
	Seed   uint64
	Epochs int
	Params api.Params
	// Population.
	Honest, Idle, Fake, WashAlone, RingSize, Pump, WorkPump int
	Tenants                                                 int
	// Demand: the share of the honest providers' GPUs the tenants keep leased, on average, with orders of 1, 2 or
	// 4 GPUs lasting LeaseBlocks[0] to LeaseBlocks[1] blocks.
	Demand      float64
	LeaseBlocks [2]int
	// Wash: which wash roles trade; the others (and all of them in a counterfactual) idle.
	Wash map[role]bool
	// The wash traders' leases: GPUs and price (uspr per GPU-hour) of a sustained wash lease and its length in
	// blocks; how many 8-GPU leases a pump holds open, at what price for the whole lease (uspr an hour; 1 is
	// the least an order may offer) and for how many blocks each.
	WashGPUs   uint32
	WashPrice  uint64
	WashBlocks int
	PumpLeases int
	PumpPrice  uint64
	PumpBlocks int
	// Measurement: series points, invariant checks every CheckEvery blocks (0: at the end only), and the app's
	// own check after every block (Options.CheckInvariants, O(state) a block).
	Samples    int
	CheckEvery int
	AppChecks  bool
}

// provider is one simulated provider and what the simulation knows of it.
type provider struct {
	name    string
	role    role
	k       *key
	sock    *key      // its sock-puppet tenant (wash roles)
	serves  *provider // whom its sock puppet rents: itself, or in a ring the next provider
	group   int       // wash pairs and rings: the group whose net is counted together
	genesis uint64

	reserved      int    // GPUs promised to open bids and held by leases (the provider's own view of its capacity)
	verifiedEpoch int64  // the epoch whose tally verified its hardware last; -1: never
	proofPending  int64  // the epoch its hardware was last attested in, until tallied; -1: none
	jailed        bool   // as its last provider.jailed event left it (fake hardware)
	jailedUntilMs uint64 // when it may unjail
	gaveUp        bool   // fake hardware that can no longer bond what its GPUs require
	washOpen      int    // orders and leases its sock puppet has open

	leaseIncome, availability, work, slashed, forfeited, fees, tenantFees, spent uint64
	leases, washLeases                                                           int
}

// order is an order the simulation placed.
type order struct {
	id       uint64
	tenant   *key
	gpus     uint32
	price    uint64 // uspr per hour for the whole lease
	durSec   uint64
	honest   bool
	server   *provider   // wash: the provider that takes it
	bidders  []*provider // honest: who bid
	created  int64
	leased   bool
	manifest tx.Hash
}

// lease is a lease of one of the simulation's orders.
type lease struct {
	id         uint64
	o          *order
	p          *provider
	startedMs  uint64
	endMs      uint64
	started    bool
	completing bool
}

// EpochPoint is one epoch's emission and split, from its epoch.rewarded event.
type EpochPoint struct {
	Epoch          uint64 `json:"epoch"`
	Emission       uint64 `json:"emission"`
	Minted         uint64 `json:"minted"`
	Auditors       uint64 `json:"auditors"`
	Availability   uint64 `json:"availability"`
	Work           uint64 `json:"work"`
	Burns          uint64 `json:"burns"` // what the leases completed in the epoch burned
	UtilisationPPM uint64 `json:"utilisation_ppm"`
}

// Sample is the state at the end of an epoch: each role's mean net income per provider and the supply.
type Sample struct {
	Epoch       int                `json:"epoch"`
	Net         map[string]float64 `json:"net_spr"` // per role: mean net income per provider, SPR
	Minted      uint64             `json:"minted"`
	Burned      uint64             `json:"burned"`
	InflationPc float64            `json:"inflation_pc"` // (minted - burned) / genesis supply, %
	WorkShare   float64            `json:"work_share"`   // paid work / minted over the epochs since the last sample
	Emission    uint64             `json:"emission"`     // the last epoch's emission
	Utilisation float64            `json:"utilisation"`  // mean sampled utilisation since the last sample
}

// RoleResult is one role's outcome: means per provider (a wash group's tenants counted with its providers).
type RoleResult struct {
	Role         string  `json:"role"`
	Providers    int     `json:"providers"`
	NetSPR       float64 `json:"net_spr"`       // balance + stake + unbonding + rewards owed (+ its sock puppets'), less genesis
	LeaseSPR     float64 `json:"lease_spr"`     // paid by its leases, net of take and burn
	AvailSPR     float64 `json:"avail_spr"`     // availability rewards
	WorkSPR      float64 `json:"work_spr"`      // work rewards
	FeesSPR      float64 `json:"fees_spr"`      // fees it and its sock puppets paid
	SlashedSPR   float64 `json:"slashed_spr"`   // stake slashed
	ForfeitSPR   float64 `json:"forfeit_spr"`   // rewards forfeited by failed proofs
	WashPaidSPR  float64 `json:"wash_paid_spr"` // what its sock puppets paid into their wash leases
	Leases       float64 `json:"leases"`        // leases completed
	WashLeases   float64 `json:"wash_leases"`   // of them, wash leases
	MinNetSPR    float64 `json:"min_net_spr"`   // the worst provider (or group) of the role
	MaxNetSPR    float64 `json:"max_net_spr"`
	groupNets    []float64
	groupWeights []float64
}

// Result is one simulated chain's outcome.
type Result struct {
	Name         string         `json:"name"`
	Epochs       int            `json:"epochs"`
	Blocks       int64          `json:"blocks"`
	Txs          int            `json:"txs"`
	Roles        []RoleResult   `json:"roles"`
	Genesis      uint64         `json:"genesis_supply"`
	Minted       uint64         `json:"minted"`
	Burned       uint64         `json:"burned"`
	PaidAuditors uint64         `json:"paid_auditors"`
	PaidAvail    uint64         `json:"paid_availability"`
	PaidWork     uint64         `json:"paid_work"`
	Scheduled    uint64         `json:"scheduled"` // the sum of the epochs' emissions (what could have been minted)
	Burns        uint64         `json:"work_burns"`
	MeanUtil     float64        `json:"mean_utilisation"`
	Samples      []Sample       `json:"samples"`
	Failures     map[string]int `json:"failures,omitempty"`
	Invariants   int            `json:"invariant_checks"`
	Seconds      float64        `json:"seconds"`
	epochs       []EpochPoint
	providers    []*provider
	groups       map[int][]*provider
}

// sim runs one chain.
type sim struct {
	cfg       Config
	c         *chain
	p         api.Params
	provs     []*provider
	byAddr    map[tx.Address]*provider
	sockOwner map[tx.Address]*provider
	auditors  []*key
	tenants   []*key
	honest    []*provider // the bidder pool: honest and work_pump providers

	demandRng *rand.Rand
	bidRng    *rand.Rand

	orders      map[uint64]*order
	leases      map[uint64]*lease
	newOrders   []*order // honest orders created in the last block: bid on in this one
	backlog     []*order // honest orders whose auction found no bidder
	toStart     []*lease
	washBids    []*order
	epochs      []EpochPoint
	res         *Result
	lastSampleE int
	genesis     uint64
	eb          int64
}

// Run simulates cfg's chain for its epochs and returns what happened.
func Run(cfg Config) (*Result, error) {
	s, err := newSim(cfg)
	if err != nil {
		return nil, err
	}
	return s.run()
}

func newSim(cfg Config) (*sim, error) {
	if err := cfg.Params.Validate(); err != nil {
		return nil, err
	}
	s := &sim{cfg: cfg, p: cfg.Params, byAddr: map[tx.Address]*provider{}, sockOwner: map[tx.Address]*provider{},
		demandRng: rand.New(rand.NewPCG(cfg.Seed, 1)), bidRng: rand.New(rand.NewPCG(cfg.Seed, 2)),
		orders: map[uint64]*order{}, leases: map[uint64]*lease{}, eb: int64(cfg.Params.EpochBlocks)}
	g := api.Genesis{Params: cfg.Params}
	fund := func(k *key, amount uint64) {
		g.Accounts = append(g.Accounts, api.GenesisAccount{Address: k.addr, Balance: amount})
		s.genesis += amount
	}
	group := 0
	add := func(r role, i int) *provider {
		p := &provider{name: fmt.Sprintf("%s-%d", r, i), role: r, k: newKey(fmt.Sprintf("%s/%d", r, i)),
			genesis: providerFunds, verifiedEpoch: -1, proofPending: -1, group: group}
		group++
		if r.washing() {
			p.sock = newKey(fmt.Sprintf("%s/%d/sock", r, i))
			s.sockOwner[p.sock.addr] = p
			fund(p.sock, 0)
		}
		fund(p.k, providerFunds)
		s.provs = append(s.provs, p)
		s.byAddr[p.k.addr] = p
		if r == roleHonest || r == roleWorkPump {
			s.honest = append(s.honest, p)
		}
		return p
	}
	for i := range cfg.Honest {
		add(roleHonest, i)
	}
	for i := range cfg.Idle {
		add(roleIdle, i)
	}
	for i := range cfg.Fake {
		add(roleFake, i)
	}
	for i := range cfg.WashAlone {
		p := add(roleWashAlone, i)
		p.serves = p
	}
	if cfg.RingSize > 0 {
		var ring []*provider
		for i := range cfg.RingSize {
			ring = append(ring, add(roleWashRing, i))
		}
		for i, p := range ring {
			p.group = ring[0].group
			p.serves = ring[(i+1)%len(ring)]
		}
	}
	for i := range cfg.Pump {
		p := add(rolePump, i)
		p.serves = p
	}
	for i := range cfg.WorkPump {
		p := add(roleWorkPump, i)
		p.serves = p
	}
	for i := range 3 {
		a := newKey(fmt.Sprintf("auditor/%d", i))
		s.auditors = append(s.auditors, a)
		fund(a, 10*api.USPR)
		g.Auditors = append(g.Auditors, api.GenesisAuditor{Address: a.addr, Weight: 1})
	}
	for i := range max(cfg.Tenants, 1) {
		t := newKey(fmt.Sprintf("tenant/%d", i))
		s.tenants = append(s.tenants, t)
		fund(t, tenantFunds)
	}
	c, err := newChain(g, cfg.AppChecks)
	if err != nil {
		return nil, err
	}
	s.c = c
	s.res = &Result{Name: cfg.Name, Epochs: cfg.Epochs, Genesis: s.genesis, providers: s.provs, groups: map[int][]*provider{}}
	for _, p := range s.provs {
		s.res.groups[p.group] = append(s.res.groups[p.group], p)
	}
	return s, nil
}

func hardware() tx.Hardware {
	return tx.Hardware{GPUs: []tx.GPUGroup{{Model: "H100", VRAMMiB: 81920, Count: gpusPerProvider}}, CPUMilli: 128_000,
		MemoryMiB: 1 << 20, DiskMiB: 8 << 20}
}

func (s *sim) run() (*Result, error) {
	// Setup: every provider registers and bonds what its GPUs require; wash traders fund their sock puppets.
	stake := s.p.RequiredStake(gpusPerProvider)
	for i, p := range s.provs {
		info := tx.ProviderInfo{HostURI: fmt.Sprintf("https://provider%d.example.net:8443", i), CertFingerprint: sha256.Sum256([]byte(p.name)),
			Region: "eu-west", Zone: "a", Hardware: hardware()}
		s.c.send(p.k, nil, &tx.RegisterProvider{ProviderInfo: info}, &tx.Bond{Amount: stake})
		if p.sock != nil {
			s.c.send(p.k, nil, &tx.Send{To: p.sock.addr, Amount: sockFunds})
		}
	}
	lastHeight := int64(s.cfg.Epochs) * s.eb
	sampleEvery := max(1, s.cfg.Epochs/max(s.cfg.Samples, 1))
	for s.c.height < lastHeight {
		s.plan()
		res, err := s.c.block()
		if err != nil {
			return nil, err
		}
		s.events(res)
		h := s.c.height
		if s.cfg.CheckEvery > 0 && h%int64(s.cfg.CheckEvery) == 0 {
			if err := s.c.checkInvariants(); err != nil {
				return nil, err
			}
			s.res.Invariants++
		}
		if h%s.eb == 0 {
			e := int(h / s.eb) // epochs completed
			if e%sampleEvery == 0 || h == lastHeight {
				if err := s.sample(e); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := s.c.checkInvariants(); err != nil {
		return nil, err
	}
	s.res.Invariants++
	if s.cfg.AppChecks {
		s.res.Invariants += int(s.c.height)
	}
	return s.finish()
}

// plan queues what every actor sends in the next block.
func (s *sim) plan() {
	h := s.c.height + 1 // the block being built
	e := uint64(h-1) / uint64(s.eb)
	pos := (h - 1) % s.eb // 0: the epoch's first block (its audit set is made at its end)
	nowMs := uint64(s.c.nextTime().UnixMilli())

	// Auditors attest the epoch in its second block: everyone in the set answered (the simulated providers all
	// stay online); each challenges the hardware of those without a recent proof.
	if pos == 1 {
		s.audit(e)
	}
	// Fake hardware: once its cooldown is over, it unjails, bonds back what slashing took, and tries again.
	for _, p := range s.provs {
		if p.role == roleFake && p.jailed && !p.gaveUp && nowMs >= p.jailedUntilMs {
			msgs := []tx.Msg{&tx.Unjail{}}
			pv, _, _ := s.c.provider(p.k.addr)
			acc, _ := s.c.account(p.k.addr)
			if need := s.p.RequiredStake(gpusPerProvider); pv.Stake < need {
				if acc.Balance < need-pv.Stake+s.c.fee {
					p.gaveUp = true // it cannot bond what its GPUs require any more: it stays jailed
					continue
				}
				msgs = append(msgs, &tx.Bond{Amount: need - pv.Stake})
			}
			p.jailed = false
			s.c.send(p.k, nil, msgs...)
		}
	}
	// Claims.
	if pos == 2 && e > 0 && e%claimEvery == 0 {
		for _, p := range s.provs {
			if pv, ok, _ := s.c.provider(p.k.addr); ok && pv.RewardsOwed > 0 {
				s.c.send(p.k, nil, &tx.ClaimRewards{})
			}
		}
	}
	s.leaseWork(nowMs)
	s.demand(h)
	s.bid(h)
	s.wash(h)
}

// audit sends the auditors' attestations of epoch e.
func (s *sim) audit(e uint64) {
	v, err := s.c.epoch(e)
	if err != nil || v.Tallied {
		return
	}
	up := make([]byte, (len(v.Providers)+7)/8)
	for i := range v.Providers {
		up[i/8] |= 1 << (i % 8)
	}
	var hw []tx.Msg
	for _, a := range v.Providers {
		p := s.byAddr[a]
		if p == nil || p.proofPending >= 0 {
			continue
		}
		stale := p.verifiedEpoch < 0 || int64(e)-p.verifiedEpoch >= int64(s.p.RewardProofEpochs)/2
		if p.role != roleFake && !stale {
			continue
		}
		p.proofPending = int64(e)
		if p.role == roleFake {
			hw = append(hw, &tx.AttestHardware{Epoch: e, Provider: a, Passed: false, Class: "h100-sxm"})
		} else {
			hw = append(hw, &tx.AttestHardware{Epoch: e, Provider: a, Passed: true, Class: "h100-sxm", OpsPerSec: opsPerSec})
		}
	}
	for _, k := range s.auditors {
		s.c.send(k, nil, &tx.Attest{Epoch: e, Up: up})
		for i := 0; i < len(hw); i += 16 {
			s.c.send(k, nil, hw[i:min(i+16, len(hw))]...)
		}
	}
}

// leaseWork starts the leases created in the last block and completes those whose time is up, with the
// provider's signed receipt.
func (s *sim) leaseWork(nowMs uint64) {
	for _, l := range s.toStart {
		s.c.send(l.p.k, nil, &tx.LeaseStarted{ID: l.id})
	}
	s.toStart = s.toStart[:0]
	for _, l := range s.leases {
		if !l.started || l.completing || nowMs < l.endMs {
			continue
		}
		l.completing = true
		s.c.send(l.p.k, nil, &tx.CompleteLease{Receipt: s.receipt(l, l.endMs)})
	}
}

// receipt is l's provider's signed receipt of a run that ended at endMs.
func (s *sim) receipt(l *lease, endMs uint64) tx.Receipt {
	rc := tx.Receipt{ChainID: chainID, LeaseID: l.id, ManifestHash: l.o.manifest, StartMs: l.startedMs, EndMs: endMs,
		OutputRoot: sha256.Sum256(fmt.Appendf(nil, "output of lease %d", l.id))}
	rc.Signature = ed25519.Sign(l.p.k.priv, rc.SignBytes())
	return rc
}

// demand places the honest tenants' orders: Poisson arrivals sized to keep cfg.Demand of the honest GPUs leased.
func (s *sim) demand(h int64) {
	if h < 3*s.eb || len(s.honest) == 0 {
		return // the first epochs register and verify
	}
	const meanGPUs = 7.0 / 3 // 1, 2 or 4 GPUs
	minBlocks, maxBlocks := s.cfg.LeaseBlocks[0], s.cfg.LeaseBlocks[1]
	rate := s.cfg.Demand * float64(len(s.honest)*gpusPerProvider) / (meanGPUs * float64(minBlocks+maxBlocks) / 2)
	n := poisson(s.demandRng, rate)
	for range n {
		gpus := []uint32{1, 2, 4}[s.demandRng.IntN(3)]
		blocks := minBlocks + s.demandRng.IntN(maxBlocks-minBlocks+1)
		t := s.tenants[s.demandRng.IntN(len(s.tenants))]
		o := &order{tenant: t, gpus: gpus, price: gpuHourPrice * uint64(gpus), durSec: uint64(blocks) * uint64(blockDT.Seconds()), honest: true}
		s.placeOrder(o)
	}
}

// placeOrder sends o's CreateOrder and records its id when it lands.
func (s *sim) placeOrder(o *order) {
	o.manifest = sha256.Sum256(fmt.Appendf(nil, "manifest %d", s.c.txs))
	msg := &tx.CreateOrder{Resources: tx.Resources{GPUCount: o.gpus, GPUModels: []string{"H100"}, CPUMilli: 4000, MemoryMiB: 16 << 10},
		MaxPricePerHour: o.price, ManifestHash: o.manifest, Deposit: deposit(o.price, o.durSec), DurationSec: o.durSec, TTL: orderTTLBlocks}
	s.c.send(o.tenant, func(r *abci.ExecTxResult) {
		if r.Code != 0 {
			s.orderGone(o)
			return
		}
		for _, ev := range r.Events {
			if ev.Type == api.EventOrderCreated {
				o.id, o.created = atou(attrs(ev)[api.AttrOrderID]), s.c.height
				s.orders[o.id] = o
				switch {
				case o.honest:
					s.newOrders = append(s.newOrders, o)
				case o.server != nil:
					s.washBids = append(s.washBids, o)
				}
			}
		}
	}, msg)
}

// bid has honest providers with free GPUs bid on the new orders (up to two each, at 75-100% of the tenant's
// maximum), and on the backlog of orders whose auction found nobody free (the first acceptable bid then wins).
func (s *sim) bid(h int64) {
	pick := func(o *order, n int) {
		var free []*provider
		for _, p := range s.honest {
			if gpusPerProvider-p.reserved >= int(o.gpus) && !p.jailed {
				free = append(free, p)
			}
		}
		s.bidRng.Shuffle(len(free), func(i, j int) { free[i], free[j] = free[j], free[i] })
		for _, p := range free[:min(n, len(free))] {
			price := o.price * uint64(75+s.bidRng.IntN(26)) / 100
			p.reserved += int(o.gpus)
			o.bidders = append(o.bidders, p)
			s.c.send(p.k, nil, &tx.PlaceBid{OrderID: o.id, Price: price})
		}
	}
	for _, o := range s.newOrders {
		pick(o, 2)
		if len(o.bidders) == 0 {
			s.backlog = append(s.backlog, o)
		}
	}
	s.newOrders = s.newOrders[:0]
	kept := s.backlog[:0]
	for _, o := range s.backlog {
		if _, open := s.orders[o.id]; !open {
			continue
		}
		if len(o.bidders) == 0 && o.created < h-1 {
			pick(o, 1)
		}
		if len(o.bidders) == 0 {
			kept = append(kept, o)
		}
	}
	s.backlog = kept
}

// wash plays the wash traders: sustained traders keep one lease open with their sock puppet (or, in a ring, the
// next provider's) at WashPrice; pumps keep PumpLeases 8-GPU leases open at PumpPrice.
func (s *sim) wash(h int64) {
	for _, o := range s.washBids {
		s.c.send(o.server.k, nil, &tx.PlaceBid{OrderID: o.id, Price: o.price})
	}
	s.washBids = s.washBids[:0]
	if h < 3*s.eb {
		return
	}
	for _, p := range s.provs {
		if !p.role.washing() || !s.cfg.Wash[p.role] {
			continue
		}
		want, o := 1, order{tenant: p.sock, gpus: s.cfg.WashGPUs, price: s.cfg.WashPrice * uint64(s.cfg.WashGPUs),
			durSec: uint64(s.cfg.WashBlocks) * uint64(blockDT.Seconds()), server: p.serves}
		if p.role == rolePump || p.role == roleWorkPump {
			want, o.gpus, o.price, o.durSec = s.cfg.PumpLeases, gpusPerProvider, s.cfg.PumpPrice, uint64(s.cfg.PumpBlocks)*uint64(blockDT.Seconds())
		}
		if p.washOpen >= want {
			continue
		}
		s.refill(p, uint64(want-p.washOpen)*deposit(o.price, o.durSec))
		for ; p.washOpen < want; p.washOpen++ {
			oc := o
			s.placeOrder(&oc)
		}
	}
}

// deposit is what an order escrows: its price for its duration, rounded up (at least 1 uspr).
func deposit(price, durSec uint64) uint64 {
	d, ok := tx.MulDivUp(price, durSec, 3600)
	if !ok {
		return price
	}
	return max(d, 1)
}

// refill tops p's sock puppet up from p when it holds less than need, what the next wash orders escrow.
func (s *sim) refill(p *provider, need uint64) {
	acc, err := s.c.account(p.sock.addr)
	if err != nil || acc.Balance >= need+10*s.c.fee {
		return
	}
	s.c.send(p.k, nil, &tx.Send{To: p.sock.addr, Amount: 4*need + 100*s.c.fee})
}

// orderGone forgets an order that failed, expired or was leased out and ended.
func (s *sim) orderGone(o *order) {
	for _, b := range o.bidders {
		b.reserved -= int(o.gpus)
	}
	o.bidders = nil
	delete(s.orders, o.id)
	if owner := s.sockOwnerOf(o); owner != nil {
		owner.washOpen--
	}
}

func (s *sim) sockOwnerOf(o *order) *provider { return s.sockOwner[o.tenant.addr] }

// events follows the block's events: leases made, started and ended, payments, rewards, slashes, verdicts.
func (s *sim) events(res *abci.ResponseFinalizeBlock) {
	for _, r := range res.TxResults {
		if r.Code == 0 {
			for _, ev := range r.Events {
				s.event(ev)
			}
		} else {
			for _, ev := range r.Events { // a failed transaction still pays its fee
				if ev.Type == api.EventFeePaid {
					s.event(ev)
				}
			}
		}
	}
	for _, ev := range res.Events {
		s.event(ev)
	}
}

func (s *sim) provOf(m map[string]string, key string) *provider {
	a, err := tx.ParseAddress(m[key])
	if err != nil {
		return nil
	}
	return s.byAddr[a]
}

func (s *sim) event(ev abci.Event) {
	switch ev.Type {
	case api.EventFeePaid, api.EventLeaseCreated, api.EventLeaseStarted, api.EventLeaseClosed, api.EventLeasePaid,
		api.EventOrderExpired, api.EventProviderRewarded, api.EventWorkRewarded, api.EventProviderSlashed,
		api.EventRewardsForfeited, api.EventProviderJailed, api.EventProviderVerified, api.EventProviderProofFailed,
		api.EventEpochRewarded, api.EventEpochTallied:
	default:
		return
	}
	m := attrs(ev)
	switch ev.Type {
	case api.EventFeePaid:
		a, err := tx.ParseAddress(m[api.AttrFrom])
		if err != nil {
			return
		}
		fee := atou(m[api.AttrAmount])
		if p := s.byAddr[a]; p != nil {
			p.fees += fee
		} else if p := s.sockOwner[a]; p != nil {
			p.tenantFees += fee
		}
	case api.EventLeaseCreated:
		o := s.orders[atou(m[api.AttrOrderID])]
		p := s.provOf(m, api.AttrProvider)
		if o == nil || p == nil {
			return
		}
		l := &lease{id: atou(m[api.AttrLeaseID]), o: o, p: p}
		s.leases[l.id] = l
		o.leased = true
		for _, b := range o.bidders { // the losers' GPUs are free again; the winner's are held by the lease
			if b != p {
				b.reserved -= int(o.gpus)
			}
		}
		o.bidders = nil
		if o.honest {
			o.bidders = []*provider{p} // held since its bid, until the lease ends
		}
		s.toStart = append(s.toStart, l)
	case api.EventLeaseStarted:
		if l := s.leases[atou(m[api.AttrLeaseID])]; l != nil {
			l.started, l.startedMs, l.endMs = true, atou(m[api.AttrStartedMs]), atou(m[api.AttrEndMs])
		}
	case api.EventLeaseClosed:
		l := s.leases[atou(m[api.AttrLeaseID])]
		if l == nil {
			return
		}
		delete(s.leases, l.id)
		if m[api.AttrState] == api.LeaseCompleted.String() {
			l.p.leases++
			if !l.o.honest {
				l.p.washLeases++
			}
		}
		if owner := s.sockOwnerOf(l.o); owner != nil {
			owner.spent += atou(m[api.AttrPaid])
		}
		s.orderGone(l.o)
	case api.EventLeasePaid:
		if p := s.provOf(m, api.AttrProvider); p != nil {
			p.leaseIncome += atou(m[api.AttrAmount])
		}
	case api.EventOrderExpired:
		if o := s.orders[atou(m[api.AttrOrderID])]; o != nil {
			s.orderGone(o)
		}
	case api.EventProviderRewarded:
		if p := s.provOf(m, api.AttrProvider); p != nil {
			p.availability += atou(m[api.AttrAvailability])
		}
	case api.EventWorkRewarded:
		if p := s.provOf(m, api.AttrProvider); p != nil {
			p.work += atou(m[api.AttrWork])
		}
	case api.EventProviderSlashed:
		if p := s.provOf(m, api.AttrProvider); p != nil {
			p.slashed += atou(m[api.AttrAmount])
		}
	case api.EventRewardsForfeited:
		if p := s.provOf(m, api.AttrProvider); p != nil {
			p.forfeited += atou(m[api.AttrAmount])
		}
	case api.EventProviderJailed:
		if p := s.provOf(m, api.AttrProvider); p != nil {
			p.jailed, p.jailedUntilMs = true, atou(m[api.AttrUntilMs])
		}
	case api.EventProviderVerified:
		if p := s.provOf(m, api.AttrProvider); p != nil {
			p.verifiedEpoch = int64(atou(m[api.AttrEpoch]))
		}
	case api.EventProviderProofFailed:
		if p := s.provOf(m, api.AttrProvider); p != nil {
			p.verifiedEpoch = -1
		}
	case api.EventEpochTallied:
		e := int64(atou(m[api.AttrEpoch]))
		for _, p := range s.provs {
			if p.proofPending >= 0 && p.proofPending <= e {
				p.proofPending = -1
			}
		}
	case api.EventEpochRewarded:
		pots, err := api.ParseEpochRewarded(m)
		if err != nil {
			s.c.failures["epoch.rewarded: "+err.Error()]++
			return
		}
		s.epochs = append(s.epochs, EpochPoint{Epoch: pots.Epoch, Emission: pots.Emission, Minted: pots.Minted(),
			Auditors: pots.PaidAuditors, Availability: pots.PaidAvailability, Work: pots.PaidWork, Burns: pots.Burns,
			UtilisationPPM: pots.UtilisationPPM})
	}
}

// net is a provider's tokens now (balance, stake, unbonding, rewards owed, its sock puppet's balance) less what
// they had at genesis.
func (s *sim) net(p *provider) (float64, error) {
	acc, err := s.c.account(p.k.addr)
	if err != nil {
		return 0, err
	}
	held := acc.Balance
	if pv, ok, err := s.c.provider(p.k.addr); err != nil {
		return 0, err
	} else if ok {
		held += pv.Stake + pv.Unbonding + pv.RewardsOwed
	}
	if p.sock != nil {
		sa, err := s.c.account(p.sock.addr)
		if err != nil {
			return 0, err
		}
		held += sa.Balance
	}
	pending, err := s.pending(p)
	if err != nil {
		return 0, err
	}
	return spr(int64(held+pending) - int64(p.genesis)), nil
}

// pending marks p's open leases and its sock puppet's open orders to market: what each side would hold if they
// ended now — the provider what its lease earned and was not yet paid (less the take and the burn), the tenant
// what is left of its deposit.
func (s *sim) pending(p *provider) (uint64, error) {
	var v uint64
	for _, l := range s.leases {
		mine, rents := l.p == p, p.sock != nil && l.o.tenant == p.sock
		if !mine && !rents {
			continue
		}
		var lv api.LeaseView
		if err := s.c.query(api.QueryLease, api.IDRequest{ID: l.id}, &lv); err != nil {
			return 0, err
		}
		if lv.State != api.LeasePending && lv.State != api.LeaseActive {
			continue
		}
		if mine {
			v += tx.MulDiv(lv.Unpaid, tx.PPM-s.p.TakeRatePPM-s.p.BurnPPM, tx.PPM)
		}
		if rents {
			v += lv.Deposit - max(lv.EarnedAt, lv.Paid)
		}
	}
	if p.sock != nil {
		for _, o := range s.orders {
			if o.tenant == p.sock && !o.leased && o.id != 0 {
				v += deposit(o.price, o.durSec)
			}
		}
	}
	return v, nil
}

// roleNets is each role's mean net per provider.
func (s *sim) roleNets() (map[string]float64, error) {
	sum, n := map[string]float64{}, map[string]int{}
	for _, p := range s.provs {
		v, err := s.net(p)
		if err != nil {
			return nil, err
		}
		sum[p.role.String()] += v
		n[p.role.String()]++
	}
	for r := range sum {
		sum[r] /= float64(n[r])
	}
	return sum, nil
}

func (s *sim) sample(e int) error {
	nets, err := s.roleNets()
	if err != nil {
		return err
	}
	sup, err := s.c.supply()
	if err != nil {
		return err
	}
	var work, minted, util float64
	var count int
	var emission uint64
	for _, ep := range s.epochs {
		if int(ep.Epoch) >= s.lastSampleE {
			work += float64(ep.Work)
			minted += float64(ep.Minted)
			util += float64(ep.UtilisationPPM) / 1e6
			count++
		}
		emission = ep.Emission
	}
	smp := Sample{Epoch: e, Net: nets, Minted: sup.Minted, Burned: sup.Burned, Emission: emission,
		InflationPc: 100 * (float64(sup.Minted) - float64(sup.Burned)) / float64(s.genesis)}
	if minted > 0 {
		smp.WorkShare = work / minted
	}
	if count > 0 {
		smp.Utilisation = util / float64(count)
	}
	s.lastSampleE = e
	s.res.Samples = append(s.res.Samples, smp)
	return nil
}

// finish gathers the outcome: each role's and group's net, what was minted and burned.
func (s *sim) finish() (*Result, error) {
	r := s.res
	r.Blocks, r.Txs, r.Failures, r.epochs = s.c.height, s.c.txs, s.c.failures, s.epochs
	if len(r.Failures) == 0 {
		r.Failures = nil
	}
	sup, err := s.c.supply()
	if err != nil {
		return nil, err
	}
	r.Minted, r.Burned = sup.Minted, sup.Burned
	var util float64
	for _, ep := range s.epochs {
		r.PaidAuditors += ep.Auditors
		r.PaidAvail += ep.Availability
		r.PaidWork += ep.Work
		r.Scheduled += ep.Emission
		r.Burns += ep.Burns
		util += float64(ep.UtilisationPPM) / 1e6
	}
	if len(s.epochs) > 0 {
		r.MeanUtil = util / float64(len(s.epochs))
	}
	byRole := map[role]*RoleResult{}
	groupNet := map[int]float64{}
	for _, p := range s.provs {
		v, err := s.net(p)
		if err != nil {
			return nil, err
		}
		groupNet[p.group] += v
		rr := byRole[p.role]
		if rr == nil {
			rr = &RoleResult{Role: p.role.String()}
			byRole[p.role] = rr
		}
		rr.Providers++
		rr.NetSPR += v
		rr.LeaseSPR += spr(int64(p.leaseIncome))
		rr.AvailSPR += spr(int64(p.availability))
		rr.WorkSPR += spr(int64(p.work))
		rr.FeesSPR += spr(int64(p.fees + p.tenantFees))
		rr.SlashedSPR += spr(int64(p.slashed))
		rr.ForfeitSPR += spr(int64(p.forfeited))
		rr.WashPaidSPR += spr(int64(p.spent))
		rr.Leases += float64(p.leases)
		rr.WashLeases += float64(p.washLeases)
	}
	seen := map[int]bool{}
	for _, p := range s.provs {
		if seen[p.group] {
			continue
		}
		seen[p.group] = true
		rr := byRole[p.role]
		size := float64(len(r.groups[p.group]))
		rr.groupNets = append(rr.groupNets, groupNet[p.group]/size)
		rr.groupWeights = append(rr.groupWeights, size)
	}
	for ro := range numRoles {
		rr := byRole[ro]
		if rr == nil {
			continue
		}
		n := float64(rr.Providers)
		rr.NetSPR /= n
		rr.LeaseSPR /= n
		rr.AvailSPR /= n
		rr.WorkSPR /= n
		rr.FeesSPR /= n
		rr.SlashedSPR /= n
		rr.ForfeitSPR /= n
		rr.WashPaidSPR /= n
		rr.Leases /= n
		rr.WashLeases /= n
		rr.MinNetSPR, rr.MaxNetSPR = math.Inf(1), math.Inf(-1)
		for _, v := range rr.groupNets {
			rr.MinNetSPR, rr.MaxNetSPR = math.Min(rr.MinNetSPR, v), math.Max(rr.MaxNetSPR, v)
		}
		r.Roles = append(r.Roles, *rr)
	}
	return r, nil
}

// role returns the named role's result, or nil.
func (r *Result) role(name string) *RoleResult {
	for i := range r.Roles {
		if r.Roles[i].Role == name {
			return &r.Roles[i]
		}
	}
	return nil
}

func spr(uspr int64) float64 { return float64(uspr) / api.USPR }

// poisson draws a Poisson variate of mean lambda (Knuth's method: lambda is small here).
func poisson(r *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
