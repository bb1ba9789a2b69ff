package ledger

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/tx"
)

// BenchmarkLivenessEpoch measures what liveness costs the ledger with 10,000 providers and 4 auditors: the
// block that fixes an epoch's audit set, the block carrying the 4 attestations (one bitmap each), and the
// block that tallies the epoch before. Each iteration is one epoch of 3 blocks; every provider is up.
// Reported: milliseconds for each of those blocks and the size of one attestation transaction.
func BenchmarkLivenessEpoch(b *testing.B) {
	const providers, auditors = 10_000, 4
	c, auds := livenessChain(b, providers, auditors, false)
	var start, attest, tally time.Duration
	var txBytes int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		c.block(time.Second) // first block of the epoch: the audit set is fixed
		start += time.Since(t0)
		v := c.epoch(nil)
		if len(v.Providers) != providers {
			b.Fatalf("audit set of %d", len(v.Providers))
		}
		txs, n := livenessAttests(b, c, auds, v.Epoch, providers)
		txBytes = n
		t0 = time.Now()
		res := c.block(time.Second, txs...)
		attest += time.Since(t0)
		for _, r := range res.TxResults {
			if r.Code != 0 {
				b.Fatalf("attest: %s", r.Log)
			}
		}
		t0 = time.Now()
		c.block(time.Second) // last block: the epoch before is tallied
		tally += time.Since(t0)
	}
	n := float64(b.N)
	b.ReportMetric(float64(start.Microseconds())/1000/n, "ms/start-block")
	b.ReportMetric(float64(attest.Microseconds())/1000/n, "ms/attest-block")
	b.ReportMetric(float64(tally.Microseconds())/1000/n, "ms/tally-block")
	b.ReportMetric(float64(txBytes), "bytes/attest-tx")
}

// livenessChain is the chain BenchmarkLivenessEpoch measures: epochs of 3 blocks, auditors a0, a1, … of weight 1
// and providers bonded providers at their required stake, written through the state directly (setup, not
// measured), committed up to the last block of an epoch.
func livenessChain(b *testing.B, providers, auditors int, rewards bool) (*chain, map[string]uint64) {
	params := testParams()
	params.EpochBlocks = 3
	if rewards { // the default schedule; every provider verified (an H100's 2,000 TOPS) at the chain's start
		d := api.DefaultParams()
		params.BurnPPM, params.EmissionFirstEpoch, params.EmissionTimeConstantEpochs, params.EmissionCap = d.BurnPPM, d.EmissionFirstEpoch, d.EmissionTimeConstantEpochs, d.EmissionCap
		params.AuditorSharePPM, params.AvailabilitySharePPM, params.WorkRewardCapPPM, params.RewardProofEpochs = d.AuditorSharePPM, d.AvailabilitySharePPM, d.WorkRewardCapPPM, d.RewardProofEpochs
	}
	auds := map[string]uint64{}
	funded := map[string]uint64{}
	for i := range auditors {
		name := fmt.Sprintf("a%d", i)
		auds[name], funded[name] = 1, 1<<40
	}
	c := newChainWith(b, params, funded, auds)
	c.app.opts.CheckInvariants = false
	c.block(time.Second) // commit genesis before writing state directly
	c.app.mu.Lock()
	c.app.working = c.app.store.Begin()
	x := &ctx{KV: c.app.working, ChainID: testChain, Height: c.height + 1, TimeMs: uint64(c.now.UnixMilli()), Params: kernel.LoadParams(c.app.working), Hooks: testMods.hooks}
	sup := x.Supply()
	hw := tx.Hardware{GPUs: []tx.GPUGroup{{Model: "H100", VRAMMiB: 81920, Count: 8}}, CPUMilli: 64000, MemoryMiB: 512 << 10, DiskMiB: 1 << 20}
	for i := range providers {
		k := newKey(fmt.Sprintf("prov-%d", i))
		p := &api.Provider{Owner: k.addr, PubKey: k.priv.Public().(ed25519.PublicKey), Status: api.ProviderActive, Stake: params.RequiredStake(8),
			Info: tx.ProviderInfo{HostURI: "https://p.example.net:8443", CertFingerprint: sha256.Sum256([]byte{byte(i)}), Region: "eu", Hardware: hw}}
		if rewards {
			p.Verified, p.VerifiedClass, p.VerifiedOps, p.VerifiedHeight = true, "h100-sxm", 2_000_000_000_000_000, x.Height
		}
		x.SetProvider(p)
		sup.Genesis += p.Stake
		sup.Staked += p.Stake
	}
	x.SetSupply(sup)
	c.app.mu.Unlock()
	for c.height%int64(params.EpochBlocks) != 0 { // finish the current epoch
		c.block(time.Second)
	}
	return c, auds
}

// livenessAttests are the auditors' attestations of epoch e, every one of its providers up, each verified as
// CheckTx would have before the block; and the size of one.
func livenessAttests(b testing.TB, c *chain, auds map[string]uint64, e uint64, providers int) ([][]byte, int) {
	up := make([]byte, (providers+7)/8)
	for j := range up {
		up[j] = 0xff
	}
	if providers%8 != 0 {
		up[len(up)-1] = 0xff >> (8 - providers%8)
	}
	var txs [][]byte
	size := 0
	for name := range auds {
		raw := c.sign(name, &tx.Attest{Epoch: e, Up: up})
		size = len(raw)
		if _, err := c.app.decodeVerified(raw); err != nil { // as CheckTx would have, before the block
			b.Fatal(err)
		}
		txs = append(txs, raw)
	}
	return txs, size
}

// BenchmarkRewardsEpoch measures what rewards add to the liveness tally (issue 17's target: at most 1.2x): the
// same 10,000 providers and 4 auditors as BenchmarkLivenessEpoch, every provider up and verified, the epoch's
// tally block with rewards off and on in the same run (-count alternates them). With rewards on the tally also
// computes the epoch's pots, credits each provider's availability reward in the record it already writes (with
// an event each), pays the auditors and writes the emission record; the audit-set block computes each weight.
func BenchmarkRewardsEpoch(b *testing.B) {
	const providers, auditors = 10_000, 4
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("rewards=%v", on), func(b *testing.B) {
			c, auds := livenessChain(b, providers, auditors, on)
			c.noEventCheck = true // the ledger's work only: parsing 10,000 events is the explorer's
			var start, tally time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				c.block(time.Second)
				start += time.Since(t0)
				v := c.epoch(nil)
				txs, _ := livenessAttests(b, c, auds, v.Epoch, providers)
				c.block(time.Second, txs...)
				t0 = time.Now()
				res := c.block(time.Second)
				tally += time.Since(t0)
				if on && i > 0 {
					n := 0
					for _, e := range res.Events {
						if e.Type == api.EventProviderRewarded {
							n++
						}
					}
					if n != providers {
						b.Fatalf("%d providers rewarded in the tally, want %d", n, providers)
					}
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(start.Microseconds())/1000/n, "ms/start-block")
			b.ReportMetric(float64(tally.Microseconds())/1000/n, "ms/tally-block")
		})
	}
}
