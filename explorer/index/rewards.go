package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// Rewards in the index (docs/economics.md). Every lease payment burns params.burn_ppm of it (lease.paid's burned,
// kept with the payment); each auditor epoch's tally mints an emission split three ways, and says so in events:
// provider.rewarded is a provider's availability reward in the epoch, or why it earned none; provider.work_rewarded
// its work reward against the burns of its leases completed in the epoch, capped; auditor.rewarded an auditor's
// share; epoch.rewarded the epoch's emission and what it minted of each pot. rewards.claimed moves what a
// provider was owed to its balance; provider.rewards_forfeited burns what a provider failing proof of GPU was
// owed.
//
// The index keeps each tallied epoch (reward_epochs), each provider's rewards and reasons by epoch
// (provider_rewards), each auditor's share by epoch (auditor_rewards), every address's totals (reward_totals:
// earned, claimed, forfeited, owed), and after every block that changed any of them the cumulative emission,
// minted and burned (reward_stats): the series the rewards page charts. Each event is read with the ledger's
// strict parser (api.ParseProviderRewarded, ParseWorkRewarded, ParseEpochRewarded; the others, which have none,
// by the same rules) and must follow from what is indexed: a provider or auditor is rewarded once an epoch, and
// before the epoch's own record (the tally emits them first); an epoch is recorded once; a claim or a forfeit
// takes at most what the provider is owed. Anything else is kept as an event and changes nothing.

const rewardsSchema = `
CREATE TABLE reward_epochs (
	epoch INTEGER PRIMARY KEY, height INTEGER NOT NULL, time_ms INTEGER NOT NULL, emission INTEGER NOT NULL,
	minted INTEGER NOT NULL, auditors INTEGER NOT NULL, availability INTEGER NOT NULL, work INTEGER NOT NULL,
	burns INTEGER NOT NULL, utilisation_ppm INTEGER NOT NULL, weight_total INTEGER NOT NULL, judged INTEGER NOT NULL,
	earning INTEGER NOT NULL, worked INTEGER NOT NULL, auditors_paid INTEGER NOT NULL);
CREATE TABLE provider_rewards (
	provider TEXT NOT NULL, epoch INTEGER NOT NULL, height INTEGER NOT NULL, judged INTEGER NOT NULL DEFAULT 0,
	availability INTEGER NOT NULL DEFAULT 0, weight INTEGER NOT NULL DEFAULT 0, why TEXT NOT NULL DEFAULT '',
	worked INTEGER NOT NULL DEFAULT 0, work INTEGER NOT NULL DEFAULT 0, burned INTEGER NOT NULL DEFAULT 0,
	cap INTEGER NOT NULL DEFAULT 0, work_why TEXT NOT NULL DEFAULT '', forfeited INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (provider, epoch)) WITHOUT ROWID;
CREATE INDEX provider_rewards_epoch ON provider_rewards (epoch, provider);
CREATE TABLE auditor_rewards (
	auditor TEXT NOT NULL, epoch INTEGER NOT NULL, height INTEGER NOT NULL, amount INTEGER NOT NULL, weight INTEGER NOT NULL,
	agreeing INTEGER NOT NULL, decided INTEGER NOT NULL, PRIMARY KEY (auditor, epoch)) WITHOUT ROWID;
CREATE INDEX auditor_rewards_epoch ON auditor_rewards (epoch, auditor);
CREATE TABLE reward_totals (
	address TEXT PRIMARY KEY, availability INTEGER NOT NULL DEFAULT 0, work INTEGER NOT NULL DEFAULT 0,
	auditor INTEGER NOT NULL DEFAULT 0, earned INTEGER NOT NULL DEFAULT 0, claimed INTEGER NOT NULL DEFAULT 0,
	claims INTEGER NOT NULL DEFAULT 0, forfeited INTEGER NOT NULL DEFAULT 0, epochs INTEGER NOT NULL DEFAULT 0,
	earning_epochs INTEGER NOT NULL DEFAULT 0, last_epoch INTEGER NOT NULL DEFAULT 0, last_why TEXT NOT NULL DEFAULT '',
	height INTEGER NOT NULL);
CREATE INDEX reward_totals_earned ON reward_totals (earned, address);
CREATE TABLE reward_stats (
	height INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, emission INTEGER NOT NULL, minted INTEGER NOT NULL,
	auditors INTEGER NOT NULL, availability INTEGER NOT NULL, work INTEGER NOT NULL, burned INTEGER NOT NULL,
	forfeited INTEGER NOT NULL, claimed INTEGER NOT NULL);
`

var rewardEventTypes = map[string]bool{api.EventProviderRewarded: true, api.EventWorkRewarded: true, api.EventAuditorRewarded: true,
	api.EventEpochRewarded: true, api.EventRewardsClaimed: true, api.EventRewardsForfeited: true}

// maxStored is the largest number the index stores (SQLite integers are signed 64-bit).
const maxStored = math.MaxInt64

// satAdd adds amounts the index stores, stopping at maxStored.
func satAdd(a, b uint64) uint64 {
	if a > maxStored || b > maxStored-a {
		return maxStored
	}
	return a + b
}

// sumCol is an SQL expression adding excluded's col to a row's, stopping at what the index stores (an integer sum
// past 2^63-1 turns into a float in SQLite, which min() then caps).
func sumCol(col string) string {
	return col + " = min(" + col + " + excluded." + col + ", 9223372036854775807)"
}

// rewardStats are the cumulative figures after a block, a row of reward_stats. burned is the supply's: lease
// payments' burns and forfeits; forfeited the part of it forfeits are.
type rewardStats struct {
	emission, minted, auditors, availability, work, burned, forfeited, claimed uint64
}

const rewardStatsCols = `emission, minted, auditors, availability, work, burned, forfeited, claimed`

func (t *rewardStats) dest() []any {
	return []any{&t.emission, &t.minted, &t.auditors, &t.availability, &t.work, &t.burned, &t.forfeited, &t.claimed}
}

// applyRewards writes a block's reward events (in the order the ledger emitted them), with burned, what the
// block's lease payments burned, and the cumulative figures after them. An event that does not read, or does not
// follow from what is indexed, is kept as an event, and said, but changes nothing here.
func (ix *Indexer) applyRewards(ctx context.Context, w *writer, b client.Block, evs []client.Event, burned uint64) error {
	if w.err != nil || (len(evs) == 0 && burned == 0) {
		return w.err
	}
	var t rewardStats
	err := w.tx.QueryRowContext(ctx, `SELECT `+rewardStatsCols+` FROM reward_stats ORDER BY height DESC LIMIT 1`).Scan(t.dest()...)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	t.burned = satAdd(t.burned, burned)
	for _, e := range evs {
		var err error
		switch e.Type {
		case api.EventProviderRewarded:
			err = w.providerRewarded(e, b)
		case api.EventWorkRewarded:
			err = w.workRewarded(e, b)
		case api.EventAuditorRewarded:
			err = w.auditorRewarded(e, b)
		case api.EventEpochRewarded:
			err = w.epochRewarded(e, b, &t)
		case api.EventRewardsClaimed:
			err = w.rewardsClaimed(e, b, &t)
		case api.EventRewardsForfeited:
			err = w.rewardsForfeited(e, b, &t)
		}
		if w.err != nil {
			return w.err
		}
		if err != nil {
			ix.log.Warn("ledger event not indexed as rewards", "height", b.Height, "type", e.Type, "attrs", e.Attrs, "err", err)
		}
	}
	w.exec(`INSERT INTO reward_stats (height, time_ms, `+rewardStatsCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		b.Height, b.Time.UnixMilli(), t.emission, t.minted, t.auditors, t.availability, t.work, t.burned, t.forfeited, t.claimed)
	return w.err
}

// epochOpen refuses a reward for an epoch whose record is indexed: the tally emits every reward of an epoch
// before the epoch's own record.
func (w *writer) epochOpen(epoch uint64) error {
	var one int
	if w.row(`SELECT 1 FROM reward_epochs WHERE epoch = ?`, []any{epoch}, &one) {
		return fmt.Errorf("epoch %d's rewards are recorded already", epoch)
	}
	return nil
}

// earns says whether a reason comes with a reward.
func earns(w api.RewardWhy) bool { return w == api.RewardEarned || w == api.RewardStakeShort }

// providerRewarded records a provider's availability reward in an epoch, or why it earned none.
func (w *writer) providerRewarded(e client.Event, b client.Block) error {
	ev, err := api.ParseProviderRewarded(e.Attrs)
	if err != nil {
		return err
	}
	if err := fits(ev.Epoch, ev.Availability, ev.Weight); err != nil {
		return err
	}
	if ev.Availability > 0 && !earns(ev.Why) {
		return fmt.Errorf("an availability reward of %d with the reason %s, which earns nothing", ev.Availability, ev.Why)
	}
	if err := w.epochOpen(ev.Epoch); err != nil {
		return err
	}
	addr := ev.Provider.String()
	if w.execN(`INSERT INTO provider_rewards (provider, epoch, height, judged, availability, weight, why) VALUES (?, ?, ?, 1, ?, ?, ?)
		ON CONFLICT (provider, epoch) DO UPDATE SET judged = 1, availability = excluded.availability, weight = excluded.weight,
			why = excluded.why WHERE judged = 0`, addr, ev.Epoch, b.Height, ev.Availability, ev.Weight, ev.Why.String()) == 0 {
		return fmt.Errorf("provider %s was judged in epoch %d already", addr, ev.Epoch)
	}
	earning := 0
	if ev.Availability > 0 {
		earning = 1
	}
	w.exec(`INSERT INTO reward_totals (address, availability, earned, epochs, earning_epochs, last_epoch, last_why, height)
		VALUES (?, ?, ?, 1, ?, ?, ?, ?)
		ON CONFLICT (address) DO UPDATE SET `+sumCol("availability")+`, `+sumCol("earned")+`, epochs = epochs + 1,
			earning_epochs = earning_epochs + excluded.earning_epochs,
			last_why = CASE WHEN excluded.last_epoch >= last_epoch THEN excluded.last_why ELSE last_why END,
			last_epoch = max(last_epoch, excluded.last_epoch), height = excluded.height`,
		addr, ev.Availability, ev.Availability, earning, ev.Epoch, ev.Why.String(), b.Height)
	return nil
}

// workRewarded records a provider's work reward in an epoch: what its leases completed in the epoch burned, the
// cap on it, and what it was paid.
func (w *writer) workRewarded(e client.Event, b client.Block) error {
	ev, err := api.ParseWorkRewarded(e.Attrs) // the work within the cap
	if err != nil {
		return err
	}
	if err := fits(ev.Epoch, ev.Work, ev.Burned, ev.Cap); err != nil {
		return err
	}
	switch {
	case ev.Cap > ev.Burned:
		return fmt.Errorf("a cap of %d on burns of %d: the cap is a share of the burns, below them", ev.Cap, ev.Burned)
	case ev.Work > 0 && !earns(ev.WorkWhy):
		return fmt.Errorf("a work reward of %d with the reason %s, which earns nothing", ev.Work, ev.WorkWhy)
	}
	if err := w.epochOpen(ev.Epoch); err != nil {
		return err
	}
	addr := ev.Provider.String()
	if w.execN(`INSERT INTO provider_rewards (provider, epoch, height, worked, work, burned, cap, work_why) VALUES (?, ?, ?, 1, ?, ?, ?, ?)
		ON CONFLICT (provider, epoch) DO UPDATE SET worked = 1, work = excluded.work, burned = excluded.burned, cap = excluded.cap,
			work_why = excluded.work_why WHERE worked = 0`, addr, ev.Epoch, b.Height, ev.Work, ev.Burned, ev.Cap, ev.WorkWhy.String()) == 0 {
		return fmt.Errorf("provider %s was paid for its work in epoch %d already", addr, ev.Epoch)
	}
	w.exec(`INSERT INTO reward_totals (address, work, earned, height) VALUES (?, ?, ?, ?)
		ON CONFLICT (address) DO UPDATE SET `+sumCol("work")+`, `+sumCol("earned")+`, height = excluded.height`,
		addr, ev.Work, ev.Work, b.Height)
	return nil
}

// auditorRewardedEvent is EventAuditorRewarded's attributes, read as strictly as the ledger's own parsers read
// theirs.
type auditorRewardedEvent struct {
	Auditor                                  tx.Address
	Epoch, Amount, Weight, Agreeing, Decided uint64
}

func parseAuditorRewarded(m map[string]string) (auditorRewardedEvent, error) {
	r := &eventReader{typ: api.EventAuditorRewarded, m: m}
	ev := auditorRewardedEvent{Epoch: r.uint(api.AttrEpoch), Amount: r.uint(api.AttrAmount), Weight: r.uint(api.AttrWeight),
		Agreeing: r.uint(api.AttrAgreeing), Decided: r.uint(api.AttrDecided)}
	var err error
	if ev.Auditor, err = tx.ParseAddress(m[api.AttrAuditor]); err != nil {
		r.fail(api.AttrAuditor, "an address")
	}
	if r.err == nil && ev.Agreeing > ev.Decided {
		r.fail(api.AttrAgreeing, "at most the verdicts decided")
	}
	return ev, r.err
}

// auditorRewarded records an auditor's share of an epoch (paid to its balance).
func (w *writer) auditorRewarded(e client.Event, b client.Block) error {
	ev, err := parseAuditorRewarded(e.Attrs)
	if err != nil {
		return err
	}
	if err := fits(ev.Epoch, ev.Amount, ev.Weight, ev.Agreeing, ev.Decided); err != nil {
		return err
	}
	if err := w.epochOpen(ev.Epoch); err != nil {
		return err
	}
	addr := ev.Auditor.String()
	if w.execN(`INSERT INTO auditor_rewards (auditor, epoch, height, amount, weight, agreeing, decided) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, addr, ev.Epoch, b.Height, ev.Amount, ev.Weight, ev.Agreeing, ev.Decided) == 0 {
		return fmt.Errorf("auditor %s was paid for epoch %d already", addr, ev.Epoch)
	}
	w.exec(`INSERT INTO reward_totals (address, auditor, earned, height) VALUES (?, ?, ?, ?)
		ON CONFLICT (address) DO UPDATE SET `+sumCol("auditor")+`, `+sumCol("earned")+`, height = excluded.height`,
		addr, ev.Amount, ev.Amount, b.Height)
	return nil
}

// epochRewarded records an epoch's emission and what it minted of each pot, with how many providers the tally
// judged, paid for availability and for work, and how many auditors it paid.
func (w *writer) epochRewarded(e client.Event, b client.Block, t *rewardStats) error {
	p, err := api.ParseEpochRewarded(e.Attrs) // what was minted is the sum of the pots paid, within the emission
	if err != nil {
		return err
	}
	if err := fits(p.Epoch, p.Emission, p.PaidAuditors, p.PaidAvailability, p.PaidWork, p.Burns, p.UtilisationPPM, p.WeightTotal); err != nil {
		return err
	}
	if satAdd(satAdd(p.PaidAuditors, p.PaidAvailability), p.PaidWork) != p.Minted() {
		return fmt.Errorf("the pots paid (%d, %d, %d) add up past what the index stores", p.PaidAuditors, p.PaidAvailability, p.PaidWork)
	}
	if p.UtilisationPPM > tx.PPM {
		return fmt.Errorf("utilisation %d ppm: at most %d", p.UtilisationPPM, tx.PPM)
	}
	var judged, earning, worked, auditors int64
	w.row(`SELECT coalesce(sum(judged), 0), coalesce(sum(availability > 0), 0), coalesce(sum(worked), 0) FROM provider_rewards WHERE epoch = ?`,
		[]any{p.Epoch}, &judged, &earning, &worked)
	w.row(`SELECT count(*) FROM auditor_rewards WHERE epoch = ?`, []any{p.Epoch}, &auditors)
	if w.execN(`INSERT INTO reward_epochs (epoch, height, time_ms, emission, minted, auditors, availability, work, burns, utilisation_ppm,
			weight_total, judged, earning, worked, auditors_paid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		p.Epoch, b.Height, b.Time.UnixMilli(), p.Emission, p.Minted(), p.PaidAuditors, p.PaidAvailability, p.PaidWork, p.Burns,
		p.UtilisationPPM, p.WeightTotal, judged, earning, worked, auditors) == 0 {
		return fmt.Errorf("epoch %d's rewards are recorded already", p.Epoch)
	}
	t.emission, t.minted = satAdd(t.emission, p.Emission), satAdd(t.minted, p.Minted())
	t.auditors, t.availability, t.work = satAdd(t.auditors, p.PaidAuditors), satAdd(t.availability, p.PaidAvailability), satAdd(t.work, p.PaidWork)
	return nil
}

// owed is what the index counts a provider owed: its availability and work rewards, less what it claimed and
// what it forfeited.
func (w *writer) owed(addr string) uint64 {
	var av, work, claimed, forfeited uint64
	w.row(`SELECT availability, work, claimed, forfeited FROM reward_totals WHERE address = ?`, []any{addr}, &av, &work, &claimed, &forfeited)
	return owedOf(av, work, claimed, forfeited)
}

func owedOf(av, work, claimed, forfeited uint64) uint64 {
	paid := satAdd(claimed, forfeited)
	if in := satAdd(av, work); in > paid {
		return in - paid
	}
	return 0
}

// parseProviderAmount reads the provider and the amount (more than 0) of a claim or a forfeit, and the number
// beside them (other: earned, epoch).
func parseProviderAmount(typ string, m map[string]string, other string) (tx.Address, uint64, uint64, error) {
	r := &eventReader{typ: typ, m: m}
	amount, o := r.uint(api.AttrAmount), r.uint(other)
	a, err := tx.ParseAddress(m[api.AttrProvider])
	if err != nil {
		r.fail(api.AttrProvider, "an address")
	}
	if r.err == nil && amount == 0 {
		r.fail(api.AttrAmount, "more than 0 (the ledger claims or forfeits nothing else)")
	}
	return a, amount, o, r.err
}

// rewardsClaimed records a provider's claim: everything it was owed, moved to its balance.
func (w *writer) rewardsClaimed(e client.Event, b client.Block, t *rewardStats) error {
	a, amount, earned, err := parseProviderAmount(api.EventRewardsClaimed, e.Attrs, api.AttrEarned)
	if err != nil {
		return err
	}
	if err := fits(amount, earned); err != nil {
		return err
	}
	addr := a.String()
	if amount > earned {
		return fmt.Errorf("a claim of %d by a provider that earned %d in all", amount, earned)
	}
	if owed := w.owed(addr); amount > owed {
		return fmt.Errorf("a claim of %d by %s, owed %d as indexed", amount, addr, owed)
	}
	w.exec(`UPDATE reward_totals SET claimed = claimed + ?, claims = claims + 1, height = ? WHERE address = ?`, amount, b.Height, addr)
	t.claimed = satAdd(t.claimed, amount)
	return nil
}

// rewardsForfeited records what a provider failing proof of GPU in an epoch was owed, burned.
func (w *writer) rewardsForfeited(e client.Event, b client.Block, t *rewardStats) error {
	a, amount, epoch, err := parseProviderAmount(api.EventRewardsForfeited, e.Attrs, api.AttrEpoch)
	if err != nil {
		return err
	}
	if err := fits(amount, epoch); err != nil {
		return err
	}
	addr := a.String()
	if owed := w.owed(addr); amount > owed {
		return fmt.Errorf("a forfeit of %d by %s, owed %d as indexed", amount, addr, owed)
	}
	if err := w.epochOpen(epoch); err != nil {
		return err
	}
	if w.execN(`INSERT INTO provider_rewards (provider, epoch, height, forfeited) VALUES (?, ?, ?, ?)
		ON CONFLICT (provider, epoch) DO UPDATE SET forfeited = excluded.forfeited WHERE forfeited = 0`, addr, epoch, b.Height, amount) == 0 {
		return fmt.Errorf("provider %s forfeited in epoch %d already", addr, epoch)
	}
	w.exec(`UPDATE reward_totals SET forfeited = forfeited + ?, height = ? WHERE address = ?`, amount, b.Height, addr)
	t.forfeited, t.burned = satAdd(t.forfeited, amount), satAdd(t.burned, amount)
	return nil
}

// Queries.

// RewardEpoch is a tallied epoch's emission and what it minted of each pot, with how many providers it judged
// (found up or down), paid availability and work rewards, and how many auditors it paid.
type RewardEpoch struct {
	Epoch          uint64 `json:"epoch"`
	Height         int64  `json:"height"` // the block that tallied it (the last of the epoch after)
	TimeMs         int64  `json:"time_ms"`
	Emission       uint64 `json:"emission"` // the schedule's, within what the cap leaves
	Minted         uint64 `json:"minted"`
	Auditors       uint64 `json:"auditors"` // minted to auditors
	Availability   uint64 `json:"availability"`
	Work           uint64 `json:"work"`
	Unminted       uint64 `json:"unminted"` // emission − minted: down providers' parts, dissenting auditors', the work cap's
	Burns          uint64 `json:"burns"`    // what the leases completed in the epoch burned: the work rewards' base
	UtilisationPPM uint64 `json:"utilisation_ppm"`
	WeightTotal    uint64 `json:"weight_total"`
	Judged         int    `json:"judged"`  // providers found up or down
	Earning        int    `json:"earning"` // of them, paid an availability reward
	Worked         int    `json:"worked"`  // providers paid for work (or refused it: jailed)
	AuditorsPaid   int    `json:"auditors_paid"`
}

const rewardEpochCols = `epoch, height, time_ms, emission, minted, auditors, availability, work, burns, utilisation_ppm, weight_total,
	judged, earning, worked, auditors_paid`

func scanRewardEpoch(s interface{ Scan(...any) error }) (RewardEpoch, error) {
	var e RewardEpoch
	err := s.Scan(&e.Epoch, &e.Height, &e.TimeMs, &e.Emission, &e.Minted, &e.Auditors, &e.Availability, &e.Work, &e.Burns,
		&e.UtilisationPPM, &e.WeightTotal, &e.Judged, &e.Earning, &e.Worked, &e.AuditorsPaid)
	if e.Emission > e.Minted {
		e.Unminted = e.Emission - e.Minted
	}
	return e, err
}

// RewardEpochs lists the tallied epochs, newest first.
func (db *DB) RewardEpochs(ctx context.Context, p Page) (List[RewardEpoch], error) {
	p = p.clamp()
	out := List[RewardEpoch]{Items: []RewardEpoch{}, Offset: p.Offset, Limit: p.Limit}
	var err error
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM reward_epochs`,
		`SELECT `+rewardEpochCols+` FROM reward_epochs ORDER BY epoch DESC`, nil,
		func(r *sql.Rows) error {
			e, err := scanRewardEpoch(r)
			out.Items = append(out.Items, e)
			return err
		})
	return out, err
}

// RewardsOverview is the network's rewards as of the last indexed block: what the schedule offered, what was
// minted of it (by pot), what was burned (lease payments' burns and forfeits), claimed and left unclaimed.
type RewardsOverview struct {
	Height       int64  `json:"height"`
	On           bool   `json:"on"` // an epoch's rewards are indexed: the chain mints rewards
	Epochs       int    `json:"epochs"`
	Emission     uint64 `json:"emission"` // the schedule's, in all
	Minted       uint64 `json:"minted"`
	ToAuditors   uint64 `json:"to_auditors"`
	ToProviders  uint64 `json:"to_providers"` // availability and work
	Availability uint64 `json:"availability"`
	Work         uint64 `json:"work"`
	Burned       uint64 `json:"burned"`      // the supply's burned: LeaseBurns + Forfeited
	LeaseBurns   uint64 `json:"lease_burns"` // params.burn_ppm of every lease payment
	Forfeited    uint64 `json:"forfeited"`   // what providers failing proof of GPU were owed
	Claimed      uint64 `json:"claimed"`
	Unclaimed    uint64 `json:"unclaimed"` // minted to providers, neither claimed nor forfeited
	// NetIssuance is minted − burned: negative when the network burned more than it minted.
	NetIssuance int64        `json:"net_issuance"`
	Earners     int          `json:"earners"` // addresses paid a reward
	Last        *RewardEpoch `json:"last_epoch,omitempty"`
}

// RewardsOverview computes the network's reward figures.
func (db *DB) RewardsOverview(ctx context.Context) (RewardsOverview, error) {
	var o RewardsOverview
	var err error
	if o.Height, err = db.Height(ctx); err != nil {
		return o, err
	}
	var t rewardStats
	err = db.sql.QueryRowContext(ctx, `SELECT `+rewardStatsCols+` FROM reward_stats ORDER BY height DESC LIMIT 1`).Scan(t.dest()...)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return o, err
	}
	o.Emission, o.Minted, o.ToAuditors, o.Availability, o.Work = t.emission, t.minted, t.auditors, t.availability, t.work
	o.ToProviders = satAdd(t.availability, t.work)
	o.Burned, o.Forfeited, o.Claimed = t.burned, t.forfeited, t.claimed
	o.LeaseBurns = t.burned - min(t.forfeited, t.burned)
	o.Unclaimed = owedOf(t.availability, t.work, t.claimed, t.forfeited)
	o.NetIssuance = int64(t.minted) - int64(t.burned) // both within 2^63-1
	if err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM reward_epochs`).Scan(&o.Epochs); err != nil {
		return o, err
	}
	if err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM reward_totals WHERE earned > 0`).Scan(&o.Earners); err != nil {
		return o, err
	}
	e, err := scanRewardEpoch(db.sql.QueryRowContext(ctx, `SELECT `+rewardEpochCols+` FROM reward_epochs ORDER BY epoch DESC LIMIT 1`))
	switch {
	case err == nil:
		o.Last, o.On = &e, true
	case !errors.Is(err, sql.ErrNoRows):
		return o, err
	}
	return o, nil
}

// RewardPoint is the cumulative figures after a block: what the schedule offered, what was minted (and of it,
// to providers), burned (lease payments' burns and forfeits) and claimed since genesis.
type RewardPoint struct {
	Height      int64  `json:"height"`
	TimeMs      int64  `json:"time_ms"`
	Emission    uint64 `json:"emission"`
	Minted      uint64 `json:"minted"`
	ToProviders uint64 `json:"to_providers"`
	Burned      uint64 `json:"burned"`
	Forfeited   uint64 `json:"forfeited"`
	Claimed     uint64 `json:"claimed"`
}

// RewardHistory is the cumulative emission, minted and burned over time, oldest first: the figures after the
// last block that changed them in each of up to buckets equal time buckets, from the first such block to the last
// indexed one.
func (db *DB) RewardHistory(ctx context.Context, buckets int) ([]RewardPoint, error) {
	buckets = min(max(buckets, 1), 200)
	var lo, hi int64
	if err := db.sql.QueryRowContext(ctx, `SELECT coalesce(min(time_ms), 0), coalesce(max(time_ms), 0) FROM reward_stats`).Scan(&lo, &hi); err != nil {
		return nil, err
	}
	width := max((hi-lo)/int64(buckets)+1, 1)
	rows, err := db.sql.QueryContext(ctx, `SELECT height, time_ms, `+rewardStatsCols+` FROM reward_stats
		WHERE height IN (SELECT max(height) FROM reward_stats GROUP BY (time_ms - ?) / ?) ORDER BY height`, lo, width)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []RewardPoint{}
	for rows.Next() {
		var p RewardPoint
		var t rewardStats
		if err := rows.Scan(append([]any{&p.Height, &p.TimeMs}, t.dest()...)...); err != nil {
			return nil, err
		}
		p.Emission, p.Minted, p.ToProviders = t.emission, t.minted, satAdd(t.availability, t.work)
		p.Burned, p.Forfeited, p.Claimed = t.burned, t.forfeited, t.claimed
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// The figures stand until the next change: carry the last ones to the last indexed block.
	return carryToLastBlock(ctx, db, out, func(p *RewardPoint) (*int64, *int64) { return &p.Height, &p.TimeMs })
}

// RewardTotals is what an address was paid in rewards since genesis: as a provider (availability and work,
// accrued until it claims them) and as an auditor (paid to its balance).
type RewardTotals struct {
	Address      string `json:"address"`
	Provider     bool   `json:"provider"` // the index holds its provider record
	Availability uint64 `json:"availability"`
	Work         uint64 `json:"work"`
	Auditor      uint64 `json:"auditor"`
	Earned       uint64 `json:"earned"` // all three
	Claimed      uint64 `json:"claimed"`
	Claims       int    `json:"claims"`
	Forfeited    uint64 `json:"forfeited"`
	// Owed is availability + work, less what it claimed and forfeited: the ledger's rewards owed.
	Owed          uint64 `json:"owed"`
	Epochs        int    `json:"epochs"`         // epochs a tally judged it in (found up or down)
	EarningEpochs int    `json:"earning_epochs"` // of them, with an availability reward
	LastEpoch     uint64 `json:"last_epoch"`     // the last epoch it was judged in
	LastWhy       string `json:"last_why"`       // and why it earned, or not ("" before any verdict)
	Height        int64  `json:"height"`         // the last block that changed these
}

// ProviderEarned is what the ledger counts the provider earned (rewards_earned): availability and work.
func (t RewardTotals) ProviderEarned() uint64 { return satAdd(t.Availability, t.Work) }

// LastExplain says the last verdict in words.
func (t RewardTotals) LastExplain() string { return explainWhy(t.LastWhy) }

const rewardTotalsCols = `t.address, EXISTS (SELECT 1 FROM providers p WHERE p.address = t.address), t.availability, t.work, t.auditor,
	t.earned, t.claimed, t.claims, t.forfeited, t.epochs, t.earning_epochs, t.last_epoch, t.last_why, t.height`

func scanRewardTotals(s interface{ Scan(...any) error }) (RewardTotals, error) {
	var t RewardTotals
	err := s.Scan(&t.Address, &t.Provider, &t.Availability, &t.Work, &t.Auditor, &t.Earned, &t.Claimed, &t.Claims, &t.Forfeited,
		&t.Epochs, &t.EarningEpochs, &t.LastEpoch, &t.LastWhy, &t.Height)
	t.Owed = owedOf(t.Availability, t.Work, t.Claimed, t.Forfeited)
	return t, err
}

// TopEarners lists the addresses paid rewards, who earned most first.
func (db *DB) TopEarners(ctx context.Context, p Page) (List[RewardTotals], error) {
	p = p.clamp()
	out := List[RewardTotals]{Items: []RewardTotals{}, Offset: p.Offset, Limit: p.Limit}
	var err error
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM reward_totals WHERE earned > 0`,
		`SELECT `+rewardTotalsCols+` FROM reward_totals t WHERE t.earned > 0 ORDER BY t.earned DESC, t.address`, nil,
		func(r *sql.Rows) error {
			t, err := scanRewardTotals(r)
			out.Items = append(out.Items, t)
			return err
		})
	return out, err
}

// Rewards reads an address's reward totals: zero, with its address, when it was never judged or paid.
func (db *DB) Rewards(ctx context.Context, addr string) (RewardTotals, error) {
	t, err := scanRewardTotals(db.sql.QueryRowContext(ctx, `SELECT `+rewardTotalsCols+` FROM reward_totals t WHERE t.address = ?`, addr))
	if errors.Is(err, sql.ErrNoRows) {
		return RewardTotals{Address: addr}, nil
	}
	return t, err
}

// EpochReward is a provider's rewards in one epoch and why: its availability reward (or why none), its work
// reward against the burns of its leases completed in the epoch, capped, and what it forfeited by failing proof
// of GPU.
type EpochReward struct {
	Epoch        uint64 `json:"epoch"`
	Height       int64  `json:"height"` // the block that tallied it
	Judged       bool   `json:"judged"` // found up or down by the auditors: Why says what came of it
	Availability uint64 `json:"availability"`
	Weight       uint64 `json:"weight"` // its availability weight, fixed when the epoch's audit set was made
	Why          string `json:"why"`    // api.RewardWhy's name; "" when not judged
	Explain      string `json:"explain"`
	Worked       bool   `json:"worked"` // its leases completed in the epoch burned: WorkWhy says what came of it
	Work         uint64 `json:"work"`
	Burned       uint64 `json:"burned"` // what its leases completed in the epoch burned
	Cap          uint64 `json:"cap"`    // params.work_reward_cap_ppm of it: the most its work could earn
	WorkWhy      string `json:"work_why,omitempty"`
	Forfeited    uint64 `json:"forfeited,omitempty"` // failed proof of GPU: what it was owed, burned
}

// Total is what the epoch paid it.
func (r EpochReward) Total() uint64 { return satAdd(r.Availability, r.Work) }

// explainWhy says a reason's name in words (api.RewardWhy.Explain), and a name it does not know as it is.
func explainWhy(why string) string {
	if why == "" {
		return "no verdict with rewards yet"
	}
	var w api.RewardWhy
	if w.UnmarshalText([]byte(why)) != nil {
		return why
	}
	return w.Explain()
}

func (r *EpochReward) explain() {
	switch {
	case r.Judged:
		r.Explain = explainWhy(r.Why)
	case r.Worked:
		r.Explain = "no availability verdict in this epoch (not in its audit set, or the auditors reached none): its work only"
	default:
		r.Explain = "no availability verdict in this epoch"
	}
	if r.Forfeited > 0 {
		r.Explain += "; then it failed proof of GPU: everything it was owed is forfeited (burned)"
	}
}

// ProviderRewards lists a provider's rewards by epoch, newest first.
func (db *DB) ProviderRewards(ctx context.Context, addr string, p Page) (List[EpochReward], error) {
	p = p.clamp()
	out := List[EpochReward]{Items: []EpochReward{}, Offset: p.Offset, Limit: p.Limit}
	var err error
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM provider_rewards WHERE provider = ?`,
		`SELECT epoch, height, judged, availability, weight, why, worked, work, burned, cap, work_why, forfeited FROM provider_rewards
		WHERE provider = ? ORDER BY epoch DESC`, []any{addr},
		func(r *sql.Rows) error {
			var x EpochReward
			err := r.Scan(&x.Epoch, &x.Height, &x.Judged, &x.Availability, &x.Weight, &x.Why, &x.Worked, &x.Work, &x.Burned, &x.Cap,
				&x.WorkWhy, &x.Forfeited)
			x.explain()
			out.Items = append(out.Items, x)
			return err
		})
	return out, err
}
