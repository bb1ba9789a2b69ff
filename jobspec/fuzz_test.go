package jobspec

import (
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics; an error is always Errors whose every entry names the file and a line; an
// accepted job always compiles to a manifest the provider accepts and an order the ledger accepts.
//
//	go test -fuzz FuzzParse -fuzztime 20s ./jobspec/
func FuzzParse(f *testing.F) {
	for _, path := range exampleFiles(f) {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, s := range []string{
		strings.Replace(fullJob, "DENY", denyAddr, 1),
		"run: x\ncluster: {nodes: 4, max_rtt: 5ms}\nverify: {replicas: 2}\n",
		"run: x\ninputs: [{vault: " + testRoot + "}, {vault: " + testRoot + ", sha256: " + testSum + ", path: d/}, {url: 'https://h/a', vault: " + testRoot + "}]\n",
		"run: x\nresources: {gpu: {count: 0, model: [H100], vram: 80GB}, memory: 16, cpu: 0.0001}\n",
		"run: &a x\nname: *a\nenv: &e {A: b}\n",
		"a: &a [*a]\n",
		"run: x\n---\nrun: y\n",
		"run: \"x\n",
		"\xff",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := Parse("fuzz.yaml", data)
		if err != nil {
			if j != nil {
				t.Fatal("a job and an error")
			}
			var list Errors
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %v", err, err)
			}
			for i, e := range list {
				if e.Line < 1 || e.File != "fuzz.yaml" || e.Msg == "" {
					t.Fatalf("error without a line: %#v", e)
				}
				if i > 0 && list[i-1].Line > e.Line {
					t.Fatalf("errors not sorted by line: %v", list)
				}
				if !strings.HasPrefix(e.Error(), "fuzz.yaml:") {
					t.Fatalf("%q", e.Error())
				}
			}
			return
		}
		m := j.baseManifest()
		raw, err := m.Encode()
		if err != nil {
			t.Fatalf("accepted job, invalid manifest: %v\n%q", err, data)
		}
		o := j.Order(raw)
		if err := o.ValidateBasic(); err != nil {
			t.Fatalf("accepted job, invalid order: %v\n%q", err, data)
		}
		if want := bigOrder(j); o.MaxPricePerHour != want[0] || o.Deposit != want[1] {
			t.Fatalf("per hour %d, deposit %d; big.Int says %v", o.MaxPricePerHour, o.Deposit, want)
		}
		if len(j.Files) == 0 {
			if _, _, err := j.Manifest(t.TempDir()); err != nil {
				t.Fatalf("Manifest: %v", err)
			}
		}
	})
}

// bigOrder computes the order's price per hour and deposit with big integers, as an independent check.
func bigOrder(j *Job) [2]uint64 {
	ceilDiv := func(a, b *big.Int) *big.Int {
		q, r := new(big.Int).QuoRem(a, b, new(big.Int))
		if r.Sign() > 0 {
			q.Add(q, big.NewInt(1))
		}
		return q
	}
	price := new(big.Int).SetUint64(j.Price.MaxUSPR)
	var perHour *big.Int
	if j.Resources.GPU.Count > 0 {
		perHour = new(big.Int).Mul(price, big.NewInt(int64(j.Resources.GPU.Count)))
	} else {
		perHour = ceilDiv(new(big.Int).Mul(price, new(big.Int).SetUint64(j.Resources.CPUMilli)), big.NewInt(1000))
	}
	secs := big.NewInt(int64(j.Duration.Seconds()))
	dep := ceilDiv(new(big.Int).Mul(perHour, secs), big.NewInt(3600))
	return [2]uint64{perHour.Uint64(), dep.Uint64()}
}
