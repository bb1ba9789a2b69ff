package jobspec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
)

// tree writes files (path → content) under a new temporary directory; a content of "x:" makes it executable.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(c, "x:") {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(c), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func manifestErr(t *testing.T, j *Job, dir string, line int, field string, want ...string) {
	t.Helper()
	_, _, err := j.Manifest(dir)
	if err == nil {
		t.Fatalf("Manifest accepted %v", j.Files)
	}
	var list Errors
	if !errors.As(err, &list) {
		t.Fatalf("error %T", err)
	}
	for _, e := range list {
		if e.Line == line && e.Field == field {
			for _, w := range want {
				if !strings.Contains(e.Error(), w) {
					t.Errorf("%q does not say %q", e.Error(), w)
				}
			}
			if !strings.HasPrefix(e.Error(), "job.yaml:") {
				t.Errorf("%q does not name the file", e.Error())
			}
			return
		}
	}
	t.Fatalf("no error at line %d for %s:\n%v", line, field, err)
}

func TestManifestFiles(t *testing.T) {
	dir := tree(t, map[string]string{
		"train.sh":        "x:#!/bin/sh\necho hi\n",
		"data/a.csv":      "1,2\n",
		"data/sub/b.csv":  "3,4\n",
		"other/ignore.me": "no",
	})
	if err := os.Symlink("train.sh", filepath.Join(dir, "link.sh")); err != nil {
		t.Fatal(err)
	}
	j := mustParse(t, "name: t\nrun: sh train.sh\nfiles:\n  - train.sh\n  - data/\n  - link.sh\noutputs: [out/]\nenv: {A: \"1\"}\nduration: 10m\n")
	m, raw, err := j.Manifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range m.Files {
		got = append(got, f.Path+":"+string(f.Data)+":"+modeString(f.Mode))
	}
	want := []string{"train.sh:x:#!/bin/sh\necho hi\n:755", "data/a.csv:1,2\n:644", "data/sub/b.csv:3,4\n:644", "link.sh:x:#!/bin/sh\necho hi\n:755"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("files %q\nwant %q", got, want)
	}
	// The bytes are the manifest's encoding and decode to the same manifest; the provider checks them.
	enc, err := m.Encode()
	if err != nil || string(enc) != string(raw) {
		t.Fatalf("Encode differs: %v", err)
	}
	back, err := manifest.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Fatalf("decoded %+v\nwant %+v", back, m)
	}
	if m.Name != "t" || m.Run != "sh train.sh" || m.DurationSec != 600 || m.Env["A"] != "1" || m.Outputs[0] != "out/" ||
		!reflect.DeepEqual(m.Resources, tx.Resources{CPUMilli: 1000, MemoryMiB: 512, DiskMiB: 1024}) {
		t.Fatalf("manifest %+v", m)
	}
	// Deterministic: the same job and files give the same bytes.
	_, raw2, _ := j.Manifest(dir)
	if string(raw2) != string(raw) {
		t.Fatal("manifest bytes differ between runs")
	}
	// No files: no directory needed.
	j = mustParse(t, "run: x\n")
	if _, _, err := j.Manifest("/nonexistent"); err != nil {
		t.Fatal(err)
	}
}

func modeString(m uint32) string {
	if m == 0o755 {
		return "755"
	}
	return "644"
}

func TestManifestRefusals(t *testing.T) {
	outside := tree(t, map[string]string{"secret": "s", "d/x": "x"})
	dir := tree(t, map[string]string{"ok.txt": "ok", "data/in.txt": "in", "empty/.keep": ""})
	os.Remove(filepath.Join(dir, "empty/.keep"))
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "out.txt")))
	must(os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "data", "sneaky")))
	must(os.Symlink(filepath.Join(outside, "d"), filepath.Join(dir, "outdir")))

	cases := []struct {
		files string
		line  int
		field string
		want  []string
	}{
		{"[out.txt]", 2, "files[0]", []string{"outside the job's directory", "symbolic link", "copy the file"}},
		{"[outdir]", 2, "files[0]", []string{"outside the job's directory"}},
		{"[data/]", 2, "files[0]", []string{"data/sneaky leads outside"}},
		{"[missing.py]", 2, "files[0]", []string{"does not exist", "check the spelling"}},
		{"['*.py']", 2, "files[0]", []string{"patterns are not expanded"}},
		{"[empty/]", 2, "files[0]", []string{"has no files"}},
		{"[ok.txt/]", 2, "files[0]", []string{"is a file, not a directory", "drop the trailing /"}},
	}
	for _, c := range cases {
		j := mustParse(t, "run: x\nfiles: "+c.files+"\n")
		manifestErr(t, j, dir, c.line, c.field, c.want...)
	}
	// A file shipped twice, once by name and once inside its directory.
	dir2 := tree(t, map[string]string{"data/a": "a"})
	j := mustParse(t, "run: x\nfiles:\n  - data/\n  - data/a\n")
	manifestErr(t, j, dir2, 4, "files[1]", "data/a is shipped twice", "list it once")
	// A file where an input is downloaded.
	j = mustParse(t, "run: x\nfiles: [data/a]\ninputs: [{url: 'https://h/a', sha256: "+testSum+", path: data/}]\n")
	manifestErr(t, j, dir2, 2, "files[0]", "where an input is downloaded")
	// All problems at once.
	j = mustParse(t, "run: x\nfiles:\n  - missing1\n  - missing2\n")
	_, _, err := j.Manifest(dir)
	if err == nil || len(err.(Errors)) != 2 {
		t.Fatalf("want 2 errors, got %v", err)
	}
}

func TestManifestSizeLimit(t *testing.T) {
	dir := tree(t, map[string]string{"small.txt": "s", "model.bin": "", "weights/a.bin": "", "weights/b.bin": ""})
	// Sparse files: the limit is checked from the sizes, before anything is read.
	for p, size := range map[string]int64{"model.bin": 9 << 20, "weights/a.bin": 5 << 20, "weights/b.bin": 1 << 20} {
		if err := os.Truncate(filepath.Join(dir, filepath.FromSlash(p)), size); err != nil {
			t.Fatal(err)
		}
	}
	j := mustParse(t, "run: x\nfiles:\n  - small.txt\n  - weights/\n  - model.bin\n")
	manifestErr(t, j, dir, 5, "files[2]", "limit 16.0 MiB", "model.bin (9.0 MiB), weights/a.bin (5.0 MiB), weights/b.bin (1.0 MiB)", "inputs:")
	// Just under the limit passes: 11 MiB raw is about 14.7 MiB in base64.
	if err := os.Truncate(filepath.Join(dir, "model.bin"), 5<<20); err != nil {
		t.Fatal(err)
	}
	_, raw, err := j.Manifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > manifest.MaxBytes {
		t.Fatalf("%d bytes", len(raw))
	}
}

func TestManifestTooManyFiles(t *testing.T) {
	files := map[string]string{}
	for i := 0; i <= manifest.MaxFiles; i++ {
		files[filepath.Join("many", strings.Repeat("f", 1+i%7)+string(rune('a'+i%26))+"_"+strconv.Itoa(i))] = ""
	}
	dir := tree(t, files)
	j := mustParse(t, "run: x\nfiles: [many/]\n")
	manifestErr(t, j, dir, 2, "files[0]", "more than 1000 files", "archive")
}

func TestOrderMath(t *testing.T) {
	cases := []struct {
		src               string
		perHour, deposit  uint64
		durationSec       uint64
		gpus              uint32
		cpuMilli, vramMin uint64
	}{
		// GPU: price.max × GPUs; deposit = per hour × hours.
		{"resources: {gpu: 2}\nprice: {max: 2.5}\nduration: 2h\n", 5_000_000, 10_000_000, 7200, 2, 4000, 0},
		{"resources: {gpu: 1}\n", 2_000_000, 2_000_000, 3600, 1, 2000, 0},
		{"resources: {gpu: 1}\nduration: 5m\nprice: {max: 2}\n", 2_000_000, 166_667, 300, 1, 2000, 0}, // 166666.67 rounded up
		{"resources: {gpu: 8}\nprice: {max: 0.000001}\nduration: 1s\n", 8, 1, 1, 8, 16000, 0},
		{"resources: {gpu: {count: 3, vram: 80GiB}}\nprice: {max: 1.333333}\nduration: 90m\n", 3_999_999, 5_999_999, 5400, 3, 6000, 73728},
		// CPU-only: price.max × cores, rounded up to a whole uspr.
		{"", 100_000, 100_000, 3600, 0, 1000, 0},
		{"resources: {cpu: 0.5}\nprice: {max: 0.1}\nduration: 10m\n", 50_000, 8_334, 600, 0, 500, 0}, // 8333.33 up
		{"resources: {cpu: 0.001}\nprice: {max: 0.000001}\nduration: 1s\n", 1, 1, 1, 0, 1, 0},        // 0.001 uspr up to 1
		{"resources: {cpu: 3}\nprice: {max: 0.333333}\nduration: 8760h\n", 999_999, 8_759_991_240, 31_536_000, 0, 3000, 0},
		{"resources: {cpu: 1.5}\nprice: {max: 0.000003}\nduration: 1h\n", 5, 5, 3600, 0, 1500, 0}, // 4.5 up
	}
	for _, c := range cases {
		j := mustParse(t, "run: x\n"+c.src)
		_, raw, err := j.Manifest(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		o := j.Order(raw)
		if o.MaxPricePerHour != c.perHour || o.Deposit != c.deposit || o.DurationSec != c.durationSec {
			t.Errorf("%q: per hour %d deposit %d duration %d; want %d %d %d", c.src, o.MaxPricePerHour, o.Deposit, o.DurationSec,
				c.perHour, c.deposit, c.durationSec)
		}
		if o.Resources.GPUCount != c.gpus || o.Resources.CPUMilli != c.cpuMilli || o.Resources.GPUMinVRAMMiB != c.vramMin {
			t.Errorf("%q: resources %+v", c.src, o.Resources)
		}
		if o.ManifestHash != manifest.Hash(raw) {
			t.Errorf("manifest hash")
		}
		if err := o.ValidateBasic(); err != nil {
			t.Errorf("%q: order invalid: %v", c.src, err)
		}
	}
}

func TestOrderConstraints(t *testing.T) {
	j := mustParse(t, "image: python:3.12\nplacement:\n  regions: [eu-west]\n  providers: {deny: ["+denyAddr+"]}\n  verified: true\n  min_reputation: 0.95\n")
	o := j.Order([]byte("m"))
	deny, _ := tx.ParseAddress(denyAddr)
	want := tx.Constraints{Regions: []string{"eu-west"}, Deny: []tx.Address{deny}, Verified: true, MinReputationPPM: 950_000, Docker: true}
	if !reflect.DeepEqual(o.Constraints, want) {
		t.Fatalf("constraints %+v, want %+v", o.Constraints, want)
	}
	if err := o.ValidateBasic(); err != nil {
		t.Fatal(err)
	}
	if o := mustParse(t, "run: x\n").Order([]byte("m")); o.Constraints.Docker || o.Constraints.Regions != nil {
		t.Fatalf("defaults %+v", o.Constraints)
	}
}
