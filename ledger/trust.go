package ledger

import (
	"fmt"
	"math/bits"
	"slices"
	"strconv"

	"github.com/sparenet/spare/ledger/tx"
)

// Liveness (DESIGN §5). Time is cut into epochs of params.EpochBlocks blocks; epoch e runs from height
// e·EpochBlocks+1 to (e+1)·EpochBlocks. At the first block of an epoch the ledger fixes its audit set: every
// registered provider that is not jailed and holds at least half its required stake, sorted by address. During epochs e and e+1 each auditor may post one
// Attest for e, a bitmap over that set (bit i = provider i answered its challenge). At the end of epoch e+1 the
// ledger tallies e: a provider is up when auditors holding at least two thirds of all auditor weight set its
// bit, down when auditors holding two thirds attested and left it clear, and unjudged otherwise (too few
// auditors spoke) — no single auditor can slash anyone. A down provider holding leases has them closed (tenants
// refunded what was not used) and loses params.SlashDowntimePPM of its bonded and unbonding stake to the
// network pool; JailAfterDownEpochs down epochs in a row jail it (no bids) until it sends Unjail after
// UnjailCooldownSec. A provider slashed below its required stake cannot bid but stays in the audit set (while it
// holds at least half of it), so its streak keeps counting. A provider about to restart may say so (AnnounceRestart, at most once per
// RestartEveryEpochs epochs): a down verdict for that epoch or the RestartGraceEpochs after it is excused
// (event provider.down_excused: no slash, no lease closed, the streak unchanged).

// Restart announcements. The grace covers the rest of the announcing epoch and the whole next one: a daemon
// restart (seconds to a minute) ends within it. Once per RestartEveryEpochs bounds what a provider that abuses it
// gains: two unjudged epochs in a hundred (2%); every other epoch is audited as usual, and a provider that stays
// down past the grace is found down, slashed and jailed as any other.
const (
	RestartGraceEpochs = 1
	RestartEveryEpochs = 100
)

// pRestart holds each provider's latest AnnounceRestart: provider -> the epoch it was sent in.
const pRestart = "rg/"

// announceRestart records a provider's announced restart.
func (c *ctx) announceRestart(signer tx.Address) error {
	p, err := c.mustProvider(signer)
	if err != nil {
		return err
	}
	if c.params.EpochBlocks == 0 {
		return tx.Errorf(tx.CodeBadEpoch, "auditing is off on this chain (params.epoch_blocks is 0): no restart needs announcing")
	}
	if p.Status == ProviderJailed {
		return tx.Errorf(tx.CodeProviderJailed, "provider %s is jailed: it is not audited", signer)
	}
	cur := c.epochOf(c.height)
	if v, ok := c.kv.Get(addrKey(pRestart, signer)); ok {
		if last := unbe64(string(v)); cur < last+RestartEveryEpochs {
			return tx.Errorf(tx.CodeRateLimited, "provider %s announced a restart in epoch %d: the next announcement is allowed from epoch %d (now %d)",
				signer, last, last+RestartEveryEpochs, cur)
		}
	}
	c.kv.Set(addrKey(pRestart, signer), []byte(be64(cur)))
	c.emit("provider.restart_announced", "provider", signer, "epoch", cur, "excused_through", cur+RestartGraceEpochs)
	return nil
}

// restartExcuses says whether a down verdict for epoch e is excused by a restart announced in e or the
// RestartGraceEpochs before it, and that announcement's epoch.
func (c *ctx) restartExcuses(a tx.Address, e uint64) (uint64, bool) {
	v, ok := c.kv.Get(addrKey(pRestart, a))
	if !ok {
		return 0, false
	}
	at := unbe64(string(v))
	return at, at <= e && e-at <= RestartGraceEpochs
}

// Auditor is a member of the auditor set.
type Auditor struct {
	Address tx.Address `json:"address"`
	Weight  uint64     `json:"weight"`
	Host    string     `json:"host,omitempty"` // where providers measure their round trip to it
}

// EpochView is an epoch's audit set and what was attested for it.
type EpochView struct {
	Epoch     uint64       `json:"epoch"`
	Current   uint64       `json:"current"` // the epoch the last block is in
	Providers []tx.Address `json:"providers"`
	Attested  []Auditor    `json:"attested"` // auditors who attested this epoch
	Tallied   bool         `json:"tallied"`  // the verdicts are in (the set and attestations are then dropped)
}

func (c *ctx) epochOf(h int64) uint64 {
	if c.params.EpochBlocks == 0 || h < 1 {
		return 0
	}
	return uint64(h-1) / c.params.EpochBlocks
}

func (c *ctx) auditors() ([]Auditor, uint64) {
	var out []Auditor
	var total uint64
	c.kv.Iterate(pAuditor, prefixEnd(pAuditor), func(k string, v []byte) bool {
		var addr tx.Address
		copy(addr[:], k[len(pAuditor):])
		a := mustDecode(decAuditor(addr, v))
		out = append(out, *a)
		total += a.Weight
		return true
	})
	return out, total
}

func (c *ctx) setAuditor(a GenesisAuditor) {
	c.kv.Set(addrKey(pAuditor, a.Address), encAuditor(&Auditor{Address: a.Address, Weight: a.Weight, Host: a.Host}))
}

// encAuditor stores an auditor as its weight (8 bytes, big-endian) and then its host, as genesis wrote it (at
// most tx.MaxURILen bytes; none in state written before auditors had hosts).
func encAuditor(a *Auditor) []byte {
	if len(a.Host) > tx.MaxURILen {
		panic(fmt.Sprintf("ledger: storing auditor %s: host of %d bytes, at most %d", a.Address, len(a.Host), tx.MaxURILen))
	}
	return []byte(be64(a.Weight) + a.Host)
}

func decAuditor(addr tx.Address, b []byte) (*Auditor, error) {
	if len(b) < 8 || len(b)-8 > tx.MaxURILen {
		return nil, fmt.Errorf("auditor %s: %d bytes, want 8 and a host of at most %d", addr, len(b), tx.MaxURILen)
	}
	return &Auditor{Address: addr, Weight: unbe64(string(b[:8])), Host: string(b[8:])}, nil
}

// auditSet is an epoch's audit set and the time of its first block.
type auditSet struct {
	startMs   uint64
	providers []tx.Address
}

// maxAuditSet bounds an audit set: one bit per provider in an auditor's bitmap (tx.MaxBitmapBytes).
const maxAuditSet = tx.MaxBitmapBytes * 8

func encAuditSet(s auditSet) []byte {
	w := tx.NewWriter(len(s.providers)*tx.AddressLen + 16)
	w.Uvarint(s.startMs)
	w.List("providers", len(s.providers), maxAuditSet)
	for _, a := range s.providers {
		w.Address(a)
	}
	return sealed(w, "audit set")
}

func decAuditSet(b []byte) (auditSet, error) {
	r := tx.NewReader(b)
	s := auditSet{startMs: r.Uvarint("start_ms")}
	n := r.Count("providers", maxAuditSet)
	s.providers = make([]tx.Address, 0, n)
	for range n {
		s.providers = append(s.providers, r.Address("provider"))
	}
	return s, r.Done("audit set")
}

func (c *ctx) epochSet(e uint64) (auditSet, bool) {
	b, ok := c.kv.Get(idKey(pEpochSet, e))
	if !ok {
		return auditSet{}, false
	}
	return mustDecode(decAuditSet(b)), true
}

// epochWork runs at the end of every block when auditing is on: it fixes the audit set at an epoch's first
// block and tallies the epoch before the one that ends here.
func (c *ctx) epochWork() {
	if c.params.EpochBlocks == 0 || c.height < 1 {
		return
	}
	e := c.epochOf(c.height)
	if uint64(c.height-1)%c.params.EpochBlocks == 0 {
		set := auditSet{startMs: c.timeMs}
		c.kv.Iterate(pProvider, prefixEnd(pProvider), func(_ string, v []byte) bool {
			// Every provider that is not jailed and has bonded at least half its required stake: one slashed below
			// what it needs cannot bid, but it is still judged, so that a down streak keeps counting and
			// JailAfterDownEpochs applies to it (at 1% a slash, a streak jails it long before it falls to half).
			// The half keeps the set's cost bounded by stake: a provider that unbonded everything (it left, or a
			// Sybil recycling one stake into many registrations) is not audited.
			if p := mustDecode(decProvider(v)); p.Status != ProviderJailed && 2*p.Stake >= c.params.RequiredStake(p.Info.Hardware.GPUCount()) {
				set.providers = append(set.providers, p.Owner)
			}
			// An auditor's bitmap has a bit for at most maxAuditSet providers (half a million): beyond that the
			// set would need splitting across epochs, which no network this size is near.
			return len(set.providers) < maxAuditSet
		})
		c.kv.Set(idKey(pEpochSet, e), encAuditSet(set))
		c.emit("epoch.started", "epoch", e, "providers", len(set.providers), "height", c.height)
	}
	if uint64(c.height)%c.params.EpochBlocks == 0 && e >= 1 {
		c.tally(e - 1)
	}
}

// attest records an auditor's bitmap for an epoch that is open for it (the current one or the one before).
func (c *ctx) attest(signer tx.Address, m *tx.Attest) error {
	if _, ok := c.kv.Get(addrKey(pAuditor, signer)); !ok {
		return tx.Errorf(tx.CodeNotAuditor, "%s is not in the auditor set", signer)
	}
	if c.params.EpochBlocks == 0 {
		return tx.Errorf(tx.CodeBadEpoch, "auditing is off on this chain (params.epoch_blocks is 0)")
	}
	cur := c.epochOf(c.height)
	if m.Epoch != cur && (cur == 0 || m.Epoch != cur-1) {
		return tx.Errorf(tx.CodeBadEpoch, "epoch %d is not open: attest the current epoch %d or the one before", m.Epoch, cur)
	}
	es, ok := c.epochSet(m.Epoch)
	if !ok {
		return tx.Errorf(tx.CodeBadEpoch, "epoch %d has no audit set yet", m.Epoch)
	}
	set := es.providers
	if want := (len(set) + 7) / 8; len(m.Up) != want {
		return tx.Errorf(tx.CodeBadEpoch, "up bitmap is %d bytes; epoch %d audits %d providers: %d bytes", len(m.Up), m.Epoch, len(set), want)
	}
	if len(set)%8 != 0 && len(m.Up) > 0 && m.Up[len(m.Up)-1]>>(len(set)%8) != 0 {
		return tx.Errorf(tx.CodeBadEpoch, "up bitmap sets bits past the %d providers of epoch %d", len(set), m.Epoch)
	}
	key := pAttest + be64(m.Epoch) + string(signer[:])
	if _, dup := c.kv.Get(key); dup {
		return tx.Errorf(tx.CodeDuplicateAttest, "%s already attested epoch %d", signer, m.Epoch)
	}
	c.kv.Set(key, append([]byte{}, m.Up...))
	up := 0
	for _, b := range m.Up {
		up += bits.OnesCount8(b)
	}
	c.emit("epoch.attested", "epoch", m.Epoch, "auditor", signer, "up", up, "providers", len(set))
	return nil
}

// tally turns epoch e's attestations into verdicts, then drops the set and the attestations.
func (c *ctx) tally(e uint64) {
	es, ok := c.epochSet(e)
	if !ok {
		return
	}
	set := es.providers
	weights := map[tx.Address]uint64{}
	auds, total := c.auditors()
	for _, a := range auds {
		weights[a.Address] = a.Weight
	}
	type att struct {
		key    string
		weight uint64
		up     []byte
	}
	var atts []att
	prefix := pAttest + be64(e)
	c.kv.Iterate(prefix, prefixEnd(prefix), func(k string, v []byte) bool {
		var a tx.Address
		copy(a[:], k[len(prefix):])
		atts = append(atts, att{k, weights[a], v})
		return true
	})
	var spoke uint64
	for _, a := range atts {
		spoke += a.weight
	}
	var ups, downs, excused int
	for i, addr := range set {
		var upW uint64
		for _, a := range atts {
			if a.up[i/8]&(1<<(i%8)) != 0 {
				upW += a.weight
			}
		}
		downW := spoke - upW
		switch {
		case 3*upW >= 2*total && total > 0:
			ups++
			c.providerUp(addr)
		case 3*downW >= 2*total && total > 0:
			if at, ok := c.restartExcuses(addr, e); ok {
				excused++
				c.emit("provider.down_excused", "provider", addr, "epoch", e, "announced_epoch", at)
				continue
			}
			downs++
			c.providerDown(addr, e, es.startMs)
		}
	}
	for _, a := range atts {
		c.kv.Delete(a.key)
	}
	c.kv.Delete(idKey(pEpochSet, e))
	c.tallyHardware(e, weights, total)
	c.emit("epoch.tallied", "epoch", e, "providers", len(set), "up", ups, "down", downs, "excused", excused, "auditor_weight", spoke, "total_weight", total)
}

func (c *ctx) providerUp(a tx.Address) {
	p, ok := c.provider(a)
	if !ok {
		return
	}
	p.EpochsUp++
	p.DownStreak = 0
	c.setProvider(p)
}

// providerDown records a down epoch: leases held are closed, billed only up to the epoch's start and the rest
// refunded; stake is slashed; a long streak jails.
func (c *ctx) providerDown(a tx.Address, e, epochStartMs uint64) {
	p, ok := c.provider(a)
	if !ok {
		return
	}
	p.EpochsDown++
	p.DownStreak++
	c.setProvider(p)
	c.emit("provider.down", "provider", a, "epoch", e, "down_streak", p.DownStreak)
	var held []uint64
	prefix := addrKey(pLeaseByProv, a)
	c.kv.Iterate(prefix, prefixEnd(prefix), func(k string, _ []byte) bool {
		held = append(held, unbe64(k[len(prefix):]))
		return true
	})
	closed := 0
	for _, id := range held {
		l, err := c.lease(id)
		if err != nil || l.State != LeasePending && l.State != LeaseActive {
			continue
		}
		if l.State == LeaseActive {
			c.providerFailed(a, l.Deposit)
		}
		end := max(epochStartMs, l.StartedMs)
		if err := c.endLease(l, end, LeaseClosed, tx.Address{}, fmt.Sprintf("provider down in epoch %d (auditors)", e)); err != nil {
			panic("ledger: closing a down provider's lease: " + err.Error())
		}
		closed++
	}
	if closed > 0 {
		c.slash(a, c.params.SlashDowntimePPM, fmt.Sprintf("down in epoch %d holding %d lease(s)", e, closed))
	}
	if p, _ = c.provider(a); c.params.JailAfterDownEpochs > 0 && p.DownStreak >= c.params.JailAfterDownEpochs && p.Status != ProviderJailed {
		p.Status = ProviderJailed
		p.JailedUntilMs = c.timeMs + c.params.UnjailCooldownSec*1000
		c.setProvider(p)
		c.emit("provider.jailed", "provider", a, "until_ms", p.JailedUntilMs, "reason", fmt.Sprintf("down %d epochs in a row", p.DownStreak))
	}
}

// slash takes ppm of a provider's stake — bonded first, then unbonding entries, soonest to mature first — into
// the network pool.
func (c *ctx) slash(a tx.Address, ppm uint64, reason string) { c.slashUpTo(a, ppm, ^uint64(0), reason) }

// slashUpTo slashes as slash does, but never more than limit, and says how much it took.
func (c *ctx) slashUpTo(a tx.Address, ppm, limit uint64, reason string) uint64 {
	p, ok := c.provider(a)
	if !ok || ppm == 0 {
		return 0
	}
	want := min(mulDiv(p.Stake+p.Unbonding, ppm, tx.PPM), limit)
	fromStake := min(want, p.Stake)
	p.Stake -= fromStake
	c.move(inStaked, inPool, fromStake)
	rest := want - fromStake
	if rest > 0 {
		type entry struct {
			key    string
			amount uint64
		}
		// Only this provider's entries, soonest to mature first: the owner index, not every unbonding entry.
		var mine []entry
		own := pUnbondOwner + string(a[:])
		c.kv.Iterate(own, prefixEnd(own), func(k string, _ []byte) bool {
			rest := k[len(own):] // completeMs | seq
			key := pUnbond + rest[:8] + string(a[:]) + rest[8:]
			if v, ok := c.kv.Get(key); ok {
				mine = append(mine, entry{key, unbe64(string(v))})
			}
			return true
		})
		for _, en := range mine {
			take := min(rest, en.amount)
			if take == en.amount {
				c.kv.Delete(en.key)
				r := en.key[len(pUnbond):]
				c.kv.Delete(pUnbondOwner + r[8:8+tx.AddressLen] + r[:8] + r[8+tx.AddressLen:])
			} else {
				c.kv.Set(en.key, []byte(be64(en.amount-take)))
			}
			p.Unbonding -= take
			c.move(inUnbonding, inPool, take)
			rest -= take
			if rest == 0 {
				break
			}
		}
	}
	taken := want - rest
	p.Slashed += taken
	c.setProvider(p)
	c.emit("provider.slashed", "provider", a, "amount", taken, "stake", p.Stake, "unbonding", p.Unbonding, "reason", reason)
	return taken
}

func (c *ctx) unjail(signer tx.Address) error {
	p, err := c.mustProvider(signer)
	if err != nil {
		return err
	}
	if p.Status != ProviderJailed {
		return tx.Errorf(tx.CodeNotJailed, "provider %s is %s, not jailed", signer, p.Status)
	}
	if c.timeMs < p.JailedUntilMs {
		return tx.Errorf(tx.CodeJailCooldown, "provider %s stays jailed for %d s more", signer, (p.JailedUntilMs-c.timeMs+999)/1000)
	}
	p.Status, p.JailedUntilMs, p.DownStreak = ProviderActive, 0, 0
	c.setProvider(p)
	c.emit("provider.unjailed", "provider", signer)
	return nil
}

// epochView answers the "epoch" query.
func (c *ctx) epochView(e uint64, height int64) (EpochView, error) {
	v := EpochView{Epoch: e, Current: c.epochOf(height), Providers: []tx.Address{}, Attested: []Auditor{}}
	set, ok := c.epochSet(e)
	if !ok {
		if e > v.Current {
			return v, fmt.Errorf("epoch %d has not started (current %d): %w", e, v.Current, errNotFound)
		}
		v.Tallied = true
		return v, nil
	}
	v.Providers = set.providers
	auds, _ := c.auditors()
	for _, a := range auds {
		if _, ok := c.kv.Get(pAttest + be64(e) + string(a.Address[:])); ok {
			v.Attested = append(v.Attested, a)
		}
	}
	return v, nil
}

// Proof of GPU (DESIGN §5, package proof): auditors challenge a provider's devices, unannounced, and send
// AttestHardware for the epoch. At the epoch's tally, auditors holding two thirds of the weight saying it passed
// make the provider verified (class and median measured throughput recorded); two thirds saying it failed —
// a device missing its class's deadline, a wrong row — unverify it, slash params.SlashProofPPM of its stake and
// jail it.

type hwVerdict struct {
	passed bool
	class  string
	ops    uint64
}

func encHWVerdict(v hwVerdict) []byte {
	w := tx.NewWriter(32)
	w.Bool(v.passed)
	w.Str("class", v.class, tx.MaxNameLen)
	w.Uvarint(v.ops)
	return sealed(w, "hardware verdict")
}

func decHWVerdict(b []byte) (hwVerdict, error) {
	r := tx.NewReader(b)
	v := hwVerdict{passed: r.Bool("passed"), class: r.String("class", tx.MaxNameLen), ops: r.Uvarint("ops")}
	return v, r.Done("hardware verdict")
}

func (c *ctx) attestHardware(signer tx.Address, m *tx.AttestHardware) error {
	if _, ok := c.kv.Get(addrKey(pAuditor, signer)); !ok {
		return tx.Errorf(tx.CodeNotAuditor, "%s is not in the auditor set", signer)
	}
	if c.params.EpochBlocks == 0 {
		return tx.Errorf(tx.CodeBadEpoch, "auditing is off on this chain (params.epoch_blocks is 0)")
	}
	if cur := c.epochOf(c.height); m.Epoch != cur && (cur == 0 || m.Epoch != cur-1) { // no wrap-around: epoch 2^64-1 is not "the one before 0"
		return tx.Errorf(tx.CodeBadEpoch, "epoch %d is not open: attest the current epoch %d or the one before", m.Epoch, cur)
	}
	if _, err := c.mustProvider(m.Provider); err != nil {
		return err
	}
	key := pHWAttest + be64(m.Epoch) + string(m.Provider[:]) + string(signer[:])
	if _, dup := c.kv.Get(key); dup {
		return tx.Errorf(tx.CodeDuplicateAttest, "%s already attested %s's hardware in epoch %d", signer, m.Provider, m.Epoch)
	}
	c.kv.Set(key, encHWVerdict(hwVerdict{m.Passed, m.Class, m.OpsPerSec}))
	c.emit("hardware.attested", "epoch", m.Epoch, "provider", m.Provider, "auditor", signer, "passed", strconv.FormatBool(m.Passed),
		"class", m.Class, "ops_per_sec", m.OpsPerSec, "transcript", m.Transcript.String())
	return nil
}

// tallyHardware turns epoch e's proof-of-GPU verdicts into verified or slashed-and-jailed providers.
func (c *ctx) tallyHardware(e uint64, weights map[tx.Address]uint64, total uint64) {
	prefix := pHWAttest + be64(e)
	type vote struct {
		key      string
		provider tx.Address
		weight   uint64
		v        hwVerdict
	}
	var votes []vote
	c.kv.Iterate(prefix, prefixEnd(prefix), func(k string, b []byte) bool {
		var p, a tx.Address
		copy(p[:], k[len(prefix):])
		copy(a[:], k[len(prefix)+tx.AddressLen:])
		votes = append(votes, vote{k, p, weights[a], mustDecode(decHWVerdict(b))})
		return true
	})
	for i := 0; i < len(votes); {
		j := i
		var passW, failW uint64
		var ops []uint64
		class := ""
		for ; j < len(votes) && votes[j].provider == votes[i].provider; j++ {
			if votes[j].v.passed {
				passW += votes[j].weight
				ops = append(ops, votes[j].v.ops)
				if class == "" {
					class = votes[j].v.class
				}
			} else {
				failW += votes[j].weight
			}
		}
		prov := votes[i].provider
		switch {
		case total > 0 && 3*passW >= 2*total:
			if p, ok := c.provider(prov); ok {
				slices.Sort(ops)
				p.Verified, p.VerifiedClass, p.VerifiedOps, p.VerifiedHeight = true, class, ops[len(ops)/2], c.height
				c.setProvider(p)
				c.emit("provider.verified", "provider", prov, "epoch", e, "class", class, "ops_per_sec", p.VerifiedOps)
			}
		case total > 0 && 3*failW >= 2*total:
			c.proofFailed(prov, e, votes[i].v.class)
		}
		i = j
	}
	for _, v := range votes {
		c.kv.Delete(v.key)
	}
}

// proofFailed unverifies, slashes and jails a provider whose devices failed their proof of GPU.
func (c *ctx) proofFailed(a tx.Address, e uint64, class string) {
	p, ok := c.provider(a)
	if !ok {
		return
	}
	p.Verified, p.VerifiedClass, p.VerifiedOps = false, "", 0
	c.setProvider(p)
	c.emit("provider.proof_failed", "provider", a, "epoch", e, "class", class)
	c.slash(a, c.params.SlashProofPPM, fmt.Sprintf("failed proof of GPU as %s in epoch %d", class, e))
	if p, _ = c.provider(a); p.Status != ProviderJailed {
		p.Status = ProviderJailed
		p.JailedUntilMs = c.timeMs + c.params.UnjailCooldownSec*1000
		c.setProvider(p)
		c.emit("provider.jailed", "provider", a, "until_ms", p.JailedUntilMs, "reason", "failed proof of GPU as "+class)
	}
}
