// Command economics is the economic simulation of Spare's token rewards (docs/economics.md, issue 17). It runs the
// real ledger — ledger.New over an in-memory store, driven through InitChain, FinalizeBlock and Commit with signed
// transactions and a simulated clock — for thousands of auditor epochs with honest providers (they bid on the
// tenants' orders and complete their leases with signed receipts), idle providers (up and verified, never
// leased), providers with fake hardware (they fail proof of GPU, are slashed and jailed, unjail after the cooldown
// and try again) and wash traders (a provider funding a sock-puppet tenant that rents it, alone or as a ring of
// providers each renting the next), under low and high demand, each scenario also run without the wash trades
// (same seed) to measure what they changed. Three auditors attest every epoch and challenge the hardware of
// providers without a recent proof; everyone claims their rewards periodically.
//
// It reports each kind's net income (balance, stake, unbonding and rewards owed, a wash group's sock puppets
// included, open leases marked to market, less genesis), the net issuance over time and the share of the minted
// emission that paid for work, and then sweeps the reward params over the ranges Params.Validate accepts — take
// rate, burn up to 100% of a payment, work_reward_cap_ppm up to 999,999, availability share 0 to 95%, emission from
// a third of the burns to 30,000 times them — playing four wash strategies one at a time against the same chain
// without them: a lone wash trader, a ring, a "pump" that holds 8-GPU self-leases only across each tally block
// (where the network's utilisation is sampled), and an honest worker that pumps the same way. Params the ledger
// must refuse are reported with the ledger's error. The supply invariant (ledger.CheckInvariants) is checked on
// the committed state periodically and at the end of every chain.
//
//	go run ./bench/economics                                      # 4,000 epochs a scenario and the full sweep
//	go run ./bench/economics -epochs 300 -sweep-epochs 40         # quick mode
//	go run ./bench/economics -summary docs/economics.md              # the charts, and the figures between its markers
//	go run ./bench/economics -o json > economics.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/sparenet/spare/internal/benchenv"
)

func main() {
	epochs := flag.Int("epochs", 4000, "auditor epochs of each main scenario (5 blocks of 6 s each)")
	sweepEpochs := flag.Int("sweep-epochs", 100, "epochs of each chain of the wash-trading sweep (0: no sweep)")
	seed := flag.Uint64("seed", 17, "seed of the tenants' demand and the honest providers' bids (the same in a scenario and its counterfactual)")
	parallel := flag.Int("parallel", runtime.GOMAXPROCS(0), "chains simulated at once")
	out := flag.String("o", "text", "report format on stdout: text or json")
	charts := flag.String("charts", "docs/economics", "directory the SVG charts are written to (empty: none)")
	summary := flag.String("summary", "", "write a markdown summary of the figures, linking the charts, to this file")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if *out != "text" && *out != "json" {
		log.Fatalf("-o %q: text or json", *out)
	}
	if *epochs < 10 {
		log.Fatalf("-epochs %d: at least 10", *epochs)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	rep, err := simulate(Options{Epochs: *epochs, SweepEpochs: *sweepEpochs, Seed: *seed, Parallel: *parallel, Log: os.Stderr})
	if err != nil {
		pprof.StopCPUProfile()
		log.Fatal(err)
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.Date = time.Now().UTC().Format(time.RFC3339)
	rep.Machine = benchenv.Machine()
	rep.Go = runtime.Version()
	rep.Command = "go run ./bench/economics " + strings.Join(os.Args[1:], " ")
	var chartFiles []string
	if *charts != "" {
		if chartFiles, err = writeCharts(rep, *charts); err != nil {
			log.Fatal(err)
		}
	}
	if *summary != "" {
		if err := writeSummary(*summary, rep.markdown(*summary, *charts)); err != nil {
			log.Fatal(err)
		}
	}
	if *out == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			log.Fatal(err)
		}
		return
	}
	rep.text(os.Stdout)
	for _, f := range chartFiles {
		fmt.Fprintf(os.Stderr, "wrote %s\n", f)
	}
}

// Markers of the simulation's section in a longer document (docs/economics.md): -summary replaces what lies
// between them, or writes the whole file when it has none.
const (
	summaryBegin = "<!-- simulation:begin (written by go run ./bench/economics -summary docs/economics.md) -->"
	summaryEnd   = "<!-- simulation:end -->"
)

func writeSummary(path, md string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc := string(old)
	i, j := strings.Index(doc, summaryBegin), strings.Index(doc, summaryEnd)
	if i < 0 || j < i {
		return os.WriteFile(path, []byte(md), 0o644)
	}
	doc = doc[:i+len(summaryBegin)] + "\n\n" + strings.TrimSpace(md) + "\n\n" + doc[j:]
	return os.WriteFile(path, []byte(doc), 0o644)
}
