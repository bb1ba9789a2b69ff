package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sparenet/spare/ledger/tx"
)

// runPair simulates a scenario with its wash traders trading and without, with the ledger checking the supply
// invariant after every block (Options.CheckInvariants) and the simulation recomputing it every 10 blocks.
func runPair(t *testing.T, def scenarioDef, epochs int) (wash, cf *Result) {
	t.Helper()
	for _, trade := range []bool{true, false} {
		cfg := mainConfig(def, epochs, 1, trade)
		cfg.AppChecks, cfg.CheckEvery, cfg.Samples = true, 10, 10
		r, err := Run(cfg)
		if err != nil {
			t.Fatalf("%s: %v", cfg.Name, err)
		}
		if len(r.Failures) != 0 {
			t.Errorf("%s: transactions failed: %v", cfg.Name, r.Failures)
		}
		if r.Invariants < int(r.Blocks) {
			t.Errorf("%s: %d invariant checks over %d blocks", cfg.Name, r.Invariants, r.Blocks)
		}
		if trade {
			wash = r
		} else {
			cf = r
		}
	}
	return wash, cf
}

// TestTinyScenario plays 60 epochs of the high-demand scenario: wash traders end below the same providers not
// trading, honest providers with work above idle ones, and fake hardware earns no availability reward.
func TestTinyScenario(t *testing.T) {
	wash, cf := runPair(t, scenarioDef{"high", 0.85, false}, 60)
	for _, r := range []*Result{wash, cf} {
		honest, idle, fake := r.role("honest"), r.role("idle"), r.role("fake_hardware")
		t.Logf("%s: honest %.4f, idle %.4f, fake %.4f SPR (%d blocks, %d invariant checks)", r.Name, honest.NetSPR, idle.NetSPR, fake.NetSPR, r.Blocks, r.Invariants)
		if honest.Leases == 0 || honest.LeaseSPR <= 0 || honest.NetSPR <= idle.NetSPR {
			t.Errorf("%s: honest providers (%+v) not above idle ones (%+v)", r.Name, *honest, *idle)
		}
		if idle.AvailSPR <= 0 || idle.NetSPR <= 0 {
			t.Errorf("%s: idle providers earned no availability reward: %+v", r.Name, *idle)
		}
		if fake.AvailSPR != 0 || fake.WorkSPR != 0 || fake.SlashedSPR <= 0 || fake.NetSPR >= 0 {
			t.Errorf("%s: fake hardware: %+v", r.Name, *fake)
		}
		if r.Minted == 0 || r.Burned == 0 || r.PaidWork == 0 {
			t.Errorf("%s: minted %d, burned %d, paid for work %d", r.Name, r.Minted, r.Burned, r.PaidWork)
		}
	}
	for _, role := range []string{"wash_alone", "wash_ring"} {
		w, c := wash.role(role), cf.role(role)
		t.Logf("%s: %.4f SPR per provider trading (paid %.2f into wash leases), %.4f not trading", role, w.NetSPR, w.WashPaidSPR, c.NetSPR)
		if w.WashLeases == 0 || w.WashPaidSPR <= 0 {
			t.Fatalf("%s did not trade: %+v", role, *w)
		}
		if w.MaxNetSPR >= c.MinNetSPR || w.NetSPR >= c.NetSPR {
			t.Errorf("%s: %.6f SPR trading (best group %.6f), %.6f not trading (worst group %.6f)", role, w.NetSPR, w.MaxNetSPR, c.NetSPR, c.MinNetSPR)
		}
	}
}

// TestSweepPointAndPump runs one sweep point (the default shares) with every strategy, and the pump scenario
// briefly: every chain runs without a failed transaction, the invariant holds, and renting yourself at market
// prices loses.
func TestSweepPointAndPump(t *testing.T) {
	var sp *SweepPoint
	for _, p := range sweepPoints(30, 1) {
		if p.TakePPM == 20_000 && p.BurnPPM == 50_000 && p.WorkCapPPM == 500_000 && p.AvailPPM == 500_000 && p.EmissionX == 300 {
			sp = p
		}
	}
	if sp == nil || sp.Refused != "" {
		t.Fatalf("sweep point: %+v", sp)
	}
	run := func(cfg Config) *Result {
		cfg.AppChecks = true
		r, err := Run(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Failures) != 0 {
			t.Errorf("%s: transactions failed: %v", cfg.Name, r.Failures)
		}
		return r
	}
	cf := run(sweepConfig(sp.params, 30, 1, 0, false))
	for _, st := range strategies {
		r := run(sweepConfig(sp.params, 30, 1, st, true))
		w, c := r.role(st.String()), cf.role(st.String())
		if w.NetSPR >= c.NetSPR && (st == roleWashAlone || st == roleWashRing) {
			t.Errorf("%s: %.6f trading, %.6f not", st, w.NetSPR, c.NetSPR)
		}
		if st == rolePump && r.MeanUtil < 0.75 { // the first epochs register and verify
			t.Errorf("the pump held the sampled utilisation at %.2f only", r.MeanUtil)
		}
	}
	wash, _ := runPair(t, scenarioDef{"pump", 0.85, true}, 20)
	if wash.MeanUtil < 0.7 {
		t.Errorf("pump scenario: utilisation %.2f", wash.MeanUtil)
	}
}

// TestRefusedParams: every params change a wash trade could profit from is refused by Params.Validate and by the
// ledger's InitChain.
func TestRefusedParams(t *testing.T) {
	for _, r := range refusedCases() {
		if r.Error == "accepted" || r.InitChain != "refused" {
			t.Errorf("%s: validate %q, InitChain %s", r.Change, r.Error, r.InitChain)
		}
	}
	for _, sp := range sweepPoints(1, 1) {
		if sp.Refused != "" {
			t.Errorf("grid point %s refused: %s", sp.label(), sp.Refused)
		}
		if sp.WorkCapPPM >= tx.PPM || sp.TakePPM+sp.BurnPPM > tx.PPM {
			t.Errorf("grid point outside the allowed ranges: %s", sp.label())
		}
	}
}

// TestProgramWritesReport runs the program's whole pipeline on tiny scenarios: the report, the charts and the
// summary.
func TestProgramWritesReport(t *testing.T) {
	rep, err := simulate(Options{Epochs: 20, Seed: 3, Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := writeCharts(rep, filepath.Join(dir, "charts"))
	if err != nil || len(files) < 10 {
		t.Fatalf("charts %v: %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !strings.HasPrefix(string(b), "<svg") || !strings.Contains(string(b), "</svg>") {
			t.Fatalf("%s: %v %.80q", f, err, b)
		}
	}
	md := rep.markdown(filepath.Join(dir, "summary.md"), filepath.Join(dir, "charts"))
	if !strings.Contains(md, "(charts/net-high.svg)") || !strings.Contains(md, "| honest |") {
		t.Fatalf("summary:\n%s", md)
	}
	var b strings.Builder
	rep.text(&b)
	if !strings.Contains(b.String(), "wash_ring") {
		t.Fatalf("report:\n%s", b.String())
	}
}

// TestWriteSummary: -summary replaces only what lies between the markers of a longer document, and writes a file
// without them whole.
func TestWriteSummary(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "economics.md")
	before := "# Title\n\nintro\n\n" + summaryBegin + "\n\nold figures\n\n" + summaryEnd + "\n\n## After\n"
	if err := os.WriteFile(doc, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeSummary(doc, "## The economic simulation\n\nnew figures\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(doc)
	want := "# Title\n\nintro\n\n" + summaryBegin + "\n\n## The economic simulation\n\nnew figures\n\n" + summaryEnd + "\n\n## After\n"
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	plain := filepath.Join(dir, "plain.md")
	if err := writeSummary(plain, "whole\n"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(plain); string(got) != "whole\n" {
		t.Fatalf("a file without markers: %q", got)
	}
}
