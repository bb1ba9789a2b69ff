package jobspec

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sparenet/spare/manifest"
)

// outputs: as a list, or as the mapping {paths, to, months, permanent}. Without to: vault the manifest (and so the
// order's manifest hash) is the list's; with it the manifest says outputs_vault and nothing of the deal.
func TestVaultOutputsForms(t *testing.T) {
	cases := []struct {
		src     string
		paths   []string
		vault   bool
		months  uint64
		comment string
	}{
		{"run: x\noutputs: [out/, metrics.json]\n", []string{"out/", "metrics.json"}, false, 0, "the list"},
		{"run: x\noutputs: {paths: [out/, metrics.json]}\n", []string{"out/", "metrics.json"}, false, 0, "the mapping, without to"},
		{"run: x\noutputs: {paths: [out/, metrics.json], to: vault}\n", []string{"out/", "metrics.json"}, true, DefaultVaultMonths, "to: vault, the default term"},
		{"run: x\noutputs:\n  paths: [out/]\n  to: vault\n  months: 3\n", []string{"out/"}, true, 3, "a term"},
		{"run: x\noutputs: {paths: [out/], to: vault, months: 1200}\n", []string{"out/"}, true, 1200, "the longest term"},
		{"run: x\noutputs: {paths: [out/], to: vault, permanent: true}\n", []string{"out/"}, true, 0, "permanent"},
		{"run: x\noutputs: {paths: [out/], to: vault, permanent: false, months: 6}\n", []string{"out/"}, true, 6, "permanent: false is a term"},
		{"run: x\noutputs: {paths: [./out/], to: vault}\nverify: {replicas: 2}\n", []string{"out/"}, true, 12, "replicated: the agreed run's"},
	}
	list := mustParse(t, "run: x\noutputs: [out/, metrics.json]\n")
	listRaw, err := list.baseManifest().Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.comment, func(t *testing.T) {
			j := mustParse(t, c.src)
			if strings.Join(j.Outputs, ",") != strings.Join(c.paths, ",") {
				t.Fatalf("outputs %v, want %v", j.Outputs, c.paths)
			}
			if (j.VaultOutputs != nil) != c.vault {
				t.Fatalf("VaultOutputs %+v, want to: vault %v", j.VaultOutputs, c.vault)
			}
			if c.vault && j.VaultOutputs.Months != c.months {
				t.Fatalf("months %d, want %d", j.VaultOutputs.Months, c.months)
			}
			raw, err := j.baseManifest().Encode()
			if err != nil {
				t.Fatal(err)
			}
			// The provider learns only that the outputs go to the Vault (its receipt then carries their root),
			// never the tenant's deal: no term, no price.
			m, err := manifest.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if m.OutputsVault != c.vault || strings.Contains(string(raw), "months") || strings.Contains(string(raw), "permanent") {
				t.Fatalf("the manifest says outputs_vault %v (want %v), or carries the tenant's storage deal: %s", m.OutputsVault, c.vault, raw)
			}
			if !c.vault && len(c.paths) == 2 && !bytes.Equal(raw, listRaw) {
				t.Fatalf("the mapping form without to: vault changed the manifest (and so its hash):\n%s\n%s", raw, listRaw)
			}
		})
	}
}

// outputs written wrong, as a mapping: each error names the field and the fix, and nothing is guessed.
func TestVaultOutputsErrors(t *testing.T) {
	cases := []struct {
		src   string
		line  int
		field string
		want  []string
	}{
		{"run: x\noutputs: {paths: [out/], to: s3}\n", 2, "outputs.to", []string{`"s3"`, "write to: vault"}},
		{"run: x\noutputs: {paths: [out/], to: Vault}\n", 2, "outputs.to", []string{"write to: vault"}},
		{"run: x\noutputs: {paths: [out/], to: true}\n", 2, "outputs.to", []string{"want text"}},
		{"run: x\noutputs: {paths: [out/], to: }\n", 2, "outputs.to", []string{"has no value"}},
		{"run: x\noutputs: {paths: [out/], to: vault, months: 0}\n", 2, "outputs.months", []string{"0 is out of range: want 1..1200", "permanent: true"}},
		{"run: x\noutputs: {paths: [out/], to: vault, months: 1201}\n", 2, "outputs.months", []string{"1201 is out of range: want 1..1200"}},
		{"run: x\noutputs: {paths: [out/], to: vault, months: '12'}\n", 2, "outputs.months", []string{"is text", "without quotes"}},
		{"run: x\noutputs: {paths: [out/], to: vault, months: 1.5}\n", 2, "outputs.months", []string{"not a whole number"}},
		{"run: x\noutputs: {paths: [out/], to: vault, permanent: yes please}\n", 2, "outputs.permanent", []string{"want true or false"}},
		{"run: x\noutputs:\n  paths: [out/]\n  months: 3\n", 4, "outputs.months", []string{"applies to outputs stored in the Vault", "add to: vault, or remove months"}},
		{"run: x\noutputs:\n  paths: [out/]\n  permanent: true\n", 4, "outputs.permanent", []string{"add to: vault, or remove permanent"}},
		{"run: x\noutputs:\n  paths: [out/]\n  to: vault\n  months: 3\n  permanent: true\n", 6, "outputs.permanent", []string{"a term or permanent, not both"}},
		{"run: x\noutputs: {to: vault}\n", 2, "outputs.paths", []string{"missing", "paths: [out/], to: vault"}},
		{"run: x\noutputs:\n  paths: []\n  to: vault\n", 3, "outputs.paths", []string{"is empty", "paths: [out/]"}},
		{"run: x\noutputs: {paths: out/, to: vault}\n", 2, "outputs.paths", []string{"want a list", "[out/]"}},
		{"run: x\noutputs: {paths: [out/, ./out], to: vault}\n", 2, "outputs.paths[1]", []string{"listed twice"}},
		{"run: x\noutputs: {paths: [../x], to: vault}\n", 2, "outputs.paths[0]", []string{"outside the work directory"}},
		{"run: x\noutputs: {path: [out/], to: vault}\n", 2, "outputs.path", []string{"did you mean paths?"}},
		{"run: x\noutputs: {paths: [out/], vault: true}\n", 2, "outputs.vault", []string{"did you mean to (write to: vault)?"}},
		{"run: x\noutputs: {paths: [out/], store: vault}\n", 2, "outputs.store", []string{"did you mean to?"}},
		{"run: x\noutputs: {paths: [out/], to: vault, forever: true}\n", 2, "outputs.forever", []string{"did you mean permanent?"}},
		{"run: x\noutputs: out/\n", 2, "outputs", []string{"want a list", "[out/]"}},
		{"run: x\noutputs: {paths: [out/], to: vault}\ncluster: {nodes: 2}\n", 2, "outputs.to", []string{"cluster", "spare store put outputs/<lease>/"}},
		{"run: x\noutputs: {paths: [out/], to: vault}\nports: [8000]\n", 2, "outputs.to", []string{"service", "remove to: vault (or ports)"}},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			list := parseErrors(t, c.src)
			var match *Error
			for _, e := range list {
				if e.Line == c.line && e.Field == c.field {
					match = e
				}
			}
			if match == nil {
				t.Fatalf("no error at line %d for field %q; got:\n%v", c.line, c.field, list)
			}
			for _, w := range c.want {
				if !strings.Contains(match.Error(), w) {
					t.Errorf("%q does not say %q", match.Error(), w)
				}
			}
		})
	}
	// A wrong destination is one error, not also one for the term that goes with it.
	list := parseErrors(t, "run: x\noutputs: {paths: [out/], to: s3, months: 3}\n")
	if len(list) != 1 || list[0].Field != "outputs.to" {
		t.Fatalf("want the one error on outputs.to, got:\n%v", list)
	}
}

// unpack: a vault input extracted into a new directory, whose path (trailing "/" or not) is the directory itself,
// encoded in the manifest as "unpack": true (a vault input without it encodes as before).
func TestUnpackInputForms(t *testing.T) {
	cases := []struct {
		src, lands, encoded string
	}{
		{"run: x\ninputs: [{vault: " + testRoot + ", path: prev/, unpack: true}]\n", "prev",
			`"inputs":[{"vault":"` + testRoot + `","path":"prev/","unpack":true}]`},
		{"run: x\ninputs: [{vault: " + testRoot + ", path: a/prev, unpack: true}]\n", "a/prev",
			`"inputs":[{"vault":"` + testRoot + `","path":"a/prev","unpack":true}]`},
		{"run: x\ninputs: [{vault: " + testRoot + ", unpack: true}]\n", testRoot,
			`"inputs":[{"vault":"` + testRoot + `","path":"` + testRoot + `","unpack":true}]`},
		{"run: x\ninputs: [{vault: " + testRoot + ", path: prev/, unpack: false}]\n", "prev/" + testRoot,
			`"inputs":[{"vault":"` + testRoot + `","path":"prev/"}]`},
		// Next to each other, and a URL input beside the directory.
		{"run: x\ninputs:\n  - {vault: " + testRoot + ", path: a/, unpack: true}\n  - {vault: " + testRoot + ", path: ab/, unpack: true}\n  - {url: 'https://h/a.bin', sha256: " + testSum + "}\n", "a", ""},
	}
	for _, c := range cases {
		j := mustParse(t, c.src)
		if d := inputDest(j.Inputs[0]); d != c.lands {
			t.Errorf("%q: lands on %q, want %q", c.src, d, c.lands)
		}
		raw, err := j.baseManifest().Encode()
		if err != nil {
			t.Fatalf("%q: %v", c.src, err)
		}
		if !strings.Contains(string(raw), c.encoded) {
			t.Errorf("%q: manifest %s does not hold %s", c.src, raw, c.encoded)
		}
		m, err := manifest.Decode(raw)
		if err != nil {
			t.Fatalf("%q: the provider would refuse the manifest: %v", c.src, err)
		}
		if m.Inputs[0].Unpack != j.Inputs[0].Unpack {
			t.Errorf("%q: decoded unpack %v", c.src, m.Inputs[0].Unpack)
		}
	}
	// A hand-written manifest that asks to unpack a URL input is refused by the provider's decoder.
	m := &manifest.Manifest{Version: 1, Run: "x", DurationSec: 60, Inputs: []manifest.Input{{URL: "https://h/a.tar", SHA256: mustHash(testSum), Path: "a/", Unpack: true}}}
	m.Resources.CPUMilli, m.Resources.MemoryMiB = 1000, 512
	if _, err := m.Encode(); err == nil || !strings.Contains(err.Error(), "inputs[0].unpack without vault") {
		t.Fatalf("a URL input to unpack: %v", err)
	}
}

// unpack written wrong, and directories that overlap: refused with the field and the fix.
func TestUnpackInputErrors(t *testing.T) {
	v := "{vault: " + testRoot
	cases := []struct {
		src   string
		line  int
		field string
		want  []string
	}{
		{"run: x\ninputs: [{url: 'https://h/a.tar', sha256: " + testSum + ", unpack: true}]\n", 2, "inputs[0].unpack",
			[]string{"applies to a vault input", "tar -xf"}},
		{"run: x\ninputs: [" + v + ", unpack: yes please}]\n", 2, "inputs[0].unpack", []string{"want true or false"}},
		{"run: x\ninputs: [" + v + ", unpack: 'true'}]\n", 2, "inputs[0].unpack", []string{"want true or false"}},
		{"run: x\ninputs: [" + v + ", extract: true}]\n", 2, "inputs[0].extract", []string{"did you mean unpack?"}},
		{"run: x\ninputs: [" + v + ", path: ../up, unpack: true}]\n", 2, "inputs[0].path", []string{"outside the work directory"}},
		{"run: x\ninputs: [" + v + ", path: ., unpack: true}]\n", 2, "inputs[0].path", []string{"whole of the work directory"}},
		// Another input inside the directory, the directory inside another's, two into one directory, and a file
		// input where the directory goes.
		{"run: x\ninputs:\n  - " + v + ", path: prev/, unpack: true}\n  - " + v + ", path: prev/x.bin}\n", 4, "inputs[1].path",
			[]string{`"prev/x.bin" overlaps "prev" of inputs[0]`, "must be new", "another path"}},
		{"run: x\ninputs:\n  - " + v + ", path: prev/x.bin}\n  - " + v + ", path: prev/, unpack: true}\n", 4, "inputs[1].path",
			[]string{`"prev" overlaps "prev/x.bin" of inputs[0]`}},
		{"run: x\ninputs:\n  - " + v + ", path: a/, unpack: true}\n  - " + v + ", path: a/b/, unpack: true}\n", 4, "inputs[1].path",
			[]string{`"a/b" overlaps "a"`}},
		{"run: x\ninputs:\n  - " + v + ", path: a, unpack: true}\n  - " + v + ", path: a/, unpack: true}\n", 4, "inputs[1].path",
			[]string{`lands on "a" like inputs[0]`}},
		{"run: x\ninputs:\n  - {url: 'https://h/prev', sha256: " + testSum + "}\n  - " + v + ", path: prev/, unpack: true}\n", 4, "inputs[1].path",
			[]string{`"prev" like inputs[0]`}},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			list := parseErrors(t, c.src)
			var match *Error
			for _, e := range list {
				if e.Line == c.line && e.Field == c.field {
					match = e
				}
			}
			if match == nil {
				t.Fatalf("no error at line %d for field %q; got:\n%v", c.line, c.field, list)
			}
			for _, w := range c.want {
				if !strings.Contains(match.Error(), w) {
					t.Errorf("%q does not say %q", match.Error(), w)
				}
			}
		})
	}
}

// A file the job ships inside the directory an input is unpacked into (or where it would be) is refused when the
// manifest is built: the directory must be new.
func TestUnpackOverShippedFiles(t *testing.T) {
	dir := tree(t, map[string]string{"prev/notes.txt": "x", "data": "y", "other/a": "z"})
	j := mustParse(t, "run: x\nfiles: [other/, prev/notes.txt]\ninputs: [{vault: "+testRoot+", path: prev/, unpack: true}]\n")
	manifestErr(t, j, dir, 2, "files[1]", "prev/notes.txt overlaps prev", "must be new", "unpack the input elsewhere")
	j = mustParse(t, "run: x\nfiles: [data]\ninputs: [{vault: "+testRoot+", path: data/sub, unpack: true}]\n")
	manifestErr(t, j, dir, 2, "files[0]", "data overlaps data/sub")
	// Beside it is fine.
	j = mustParse(t, "run: x\nfiles: [other/]\ninputs: [{vault: "+testRoot+", path: prev/, unpack: true}]\n")
	if _, _, err := j.Manifest(dir); err != nil {
		t.Fatal(err)
	}
}

// The schema agrees with Parse on the new forms: to: vault with a term or permanent, unpack on a vault input.
func TestVaultOutputsSchema(t *testing.T) {
	v := loadSchema(t)
	for _, src := range []string{
		"run: x\noutputs: [out/]\n",
		"run: x\noutputs: {paths: [out/]}\n",
		"run: x\noutputs: {paths: [out/], to: vault}\n",
		"run: x\noutputs: {paths: [out/], to: vault, months: 3}\n",
		"run: x\noutputs: {paths: [out/], to: vault, permanent: true}\n",
		"run: x\noutputs: {paths: [out/], to: vault, permanent: false, months: 3}\n",
		"run: x\ninputs: [{vault: " + testRoot + ", path: d/, unpack: true}]\n",
		"run: x\ninputs: [{url: 'https://h/a', sha256: " + testSum + ", unpack: false}]\n",
	} {
		if errs := v.check(t, []byte(src)); len(errs) > 0 {
			t.Errorf("schema refuses\n%s: %v", src, errs)
		}
		mustParse(t, src)
	}
	for _, src := range []string{
		"run: x\noutputs: {to: vault}\n",
		"run: x\noutputs: {paths: [out/], to: s3}\n",
		"run: x\noutputs: {paths: [out/], months: 3}\n",
		"run: x\noutputs: {paths: [out/], permanent: true}\n",
		"run: x\noutputs: {paths: [out/], to: vault, months: 0}\n",
		"run: x\noutputs: {paths: [out/], to: vault, months: 1201}\n",
		"run: x\noutputs: {paths: [out/], to: vault, months: 3, permanent: true}\n",
		"run: x\noutputs: {paths: [out/], to: vault, path: x}\n",
		"run: x\noutputs: {paths: [/out], to: vault}\n",
		"run: x\ninputs: [{url: 'https://h/a', sha256: " + testSum + ", unpack: true}]\n",
		"run: x\ninputs: [{vault: " + testRoot + ", unpack: 1}]\n",
	} {
		if errs := v.check(t, []byte(src)); len(errs) == 0 {
			t.Errorf("schema accepts\n%s", src)
		}
		if _, err := Parse("job.yaml", []byte(src)); err == nil {
			t.Errorf("Parse accepts\n%s", src)
		}
	}
}
