package jobspec

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
)

// testRoot is a Spare Vault root (the BLAKE3 of "hello from spare vault\n").
const testRoot = "6fdd30bad487d573af451fca43a8c391b63e832a738f519af5e104aae0e0059d"

// An input from Spare Vault: {vault: ROOT, path}, its path defaulting to the root in hex, compiled to a
// manifest input the provider accepts, which encodes without url or sha256.
func TestVaultInputForms(t *testing.T) {
	root, _ := tx.ParseHash(testRoot)
	cases := []struct {
		src       string
		want      []Input
		landsOn   []string
		encodedAs string // in the manifest's JSON
	}{
		{"run: x\ninputs: [{vault: " + testRoot + "}]\n",
			[]Input{{Vault: root, Path: testRoot}}, []string{testRoot},
			`"inputs":[{"vault":"` + testRoot + `","path":"` + testRoot + `"}]`},
		{"run: x\ninputs: [{vault: " + strings.ToUpper(testRoot) + ", path: ./weights/base.bin}]\n",
			[]Input{{Vault: root, Path: "weights/base.bin"}}, []string{"weights/base.bin"},
			`"inputs":[{"vault":"` + testRoot + `","path":"weights/base.bin"}]`},
		{"run: x\ninputs: [{vault: ' " + testRoot + " ', path: in/}]\n",
			[]Input{{Vault: root, Path: "in/"}}, []string{"in/" + testRoot},
			`"inputs":[{"vault":"` + testRoot + `","path":"in/"}]`},
		// Both forms in one job: each encodes with its own fields only.
		{"run: x\ninputs:\n  - {url: 'https://h/a.bin', sha256: " + testSum + "}\n  - {vault: " + testRoot + ", path: b.bin}\n",
			[]Input{{URL: "https://h/a.bin", SHA256: mustHash(testSum), Path: "a.bin"}, {Vault: root, Path: "b.bin"}},
			[]string{"a.bin", "b.bin"},
			`"inputs":[{"url":"https://h/a.bin","sha256":"` + testSum + `","path":"a.bin"},{"vault":"` + testRoot + `","path":"b.bin"}]`},
		// The same object twice, at two paths.
		{"run: x\ninputs:\n  - {vault: " + testRoot + "}\n  - {vault: " + testRoot + ", path: copy}\n",
			[]Input{{Vault: root, Path: testRoot}, {Vault: root, Path: "copy"}}, []string{testRoot, "copy"}, ""},
	}
	for _, c := range cases {
		j := mustParse(t, c.src)
		if fmt.Sprint(j.Inputs) != fmt.Sprint(c.want) {
			t.Errorf("%q: inputs %+v, want %+v", c.src, j.Inputs, c.want)
			continue
		}
		for i, in := range j.Inputs {
			if d := inputDest(in); d != c.landsOn[i] {
				t.Errorf("%q: inputs[%d] lands on %q, want %q", c.src, i, d, c.landsOn[i])
			}
		}
		raw, err := j.baseManifest().Encode()
		if err != nil {
			t.Fatalf("%q: manifest: %v", c.src, err)
		}
		if !strings.Contains(string(raw), c.encodedAs) {
			t.Errorf("%q: manifest %s does not hold %s", c.src, raw, c.encodedAs)
		}
		m, err := manifest.Decode(raw)
		if err != nil {
			t.Fatalf("%q: the provider would refuse the manifest: %v", c.src, err)
		}
		for i, in := range m.Inputs {
			if in.Vault != c.want[i].Vault || in.URL != c.want[i].URL || in.Path != c.want[i].Path {
				t.Errorf("%q: decoded inputs[%d] %+v", c.src, i, in)
			}
		}
	}
}

func mustHash(s string) tx.Hash {
	h, err := tx.ParseHash(s)
	if err != nil {
		panic(err)
	}
	return h
}

// A vault input written wrong is an error that names the field and the fix: both sources, a SHA-256 with a
// root, neither, a root that is not 64 hex characters (or is all zeros, or carries a prefix), other names for
// the key, and the path rules the URL inputs follow.
func TestVaultInputErrors(t *testing.T) {
	zeros := strings.Repeat("0", 64)
	cases := []struct {
		src   string
		line  int
		field string
		want  []string
	}{
		{"run: x\ninputs: [{url: 'https://h/a', sha256: " + testSum + ", vault: " + testRoot + "}]\n", 2, "inputs[0].vault",
			[]string{"given with url", "not both", "keep one"}},
		{"run: x\ninputs:\n  - url: 'https://h/a'\n    vault: " + testRoot + "\n", 4, "inputs[0].vault", []string{"not both"}},
		{"run: x\ninputs:\n  - vault: " + testRoot + "\n    sha256: " + testSum + "\n", 4, "inputs[0].sha256",
			[]string{"checked against its root", "remove sha256"}},
		{"run: x\ninputs: [{path: data.bin}]\n", 2, "inputs[0].url", []string{"missing", "url: https://", "vault: <64 hex root>"}},
		{"run: x\ninputs: [{}]\n", 2, "inputs[0].url", []string{"missing", "vault:"}},
		{"run: x\ninputs: [{vault: 6fdd30}]\n", 2, "inputs[0].vault", []string{"not a Spare Vault root", "64 hex", "b3sum"}},
		{"run: x\ninputs: [{vault: " + testRoot + "00}]\n", 2, "inputs[0].vault", []string{"not a Spare Vault root"}},
		{"run: x\ninputs: [{vault: " + strings.Replace(testRoot, "6", "g", 1) + "}]\n", 2, "inputs[0].vault", []string{"64 hex"}},
		{"run: x\ninputs: [{vault: " + zeros + "}]\n", 2, "inputs[0].vault", []string{"not usable as a Spare Vault root"}},
		{"run: x\ninputs: [{vault: 'blake3:" + testRoot + "'}]\n", 2, "inputs[0].vault",
			[]string{`drop the "blake3:" prefix`, "write vault: " + testRoot}},
		{"run: x\ninputs: [{vault: 12345}]\n", 2, "inputs[0].vault", []string{"not a Spare Vault root"}},
		{"run: x\ninputs: [{vault: [" + testRoot + "]}]\n", 2, "inputs[0].vault", []string{"want a single value"}},
		{"run: x\ninputs: [{vault: }]\n", 2, "inputs[0].vault", []string{"has no value"}},
		{"run: x\ninputs: [{root: " + testRoot + "}]\n", 2, "inputs[0].root", []string{"did you mean vault?"}},
		{"run: x\ninputs: [{blake3: " + testRoot + "}]\n", 2, "inputs[0].blake3", []string{"did you mean vault?"}},
		{"run: x\ninputs: [{valut: " + testRoot + "}]\n", 2, "inputs[0].valut", []string{"did you mean vault?"}},
		{"run: x\ninputs: [{vault: " + testRoot + ", path: ../w.bin}]\n", 2, "inputs[0].path", []string{"outside the work directory"}},
		{"run: x\ninputs: [{vault: " + testRoot + ", path: /w.bin}]\n", 2, "inputs[0].path", []string{"absolute"}},
		{"run: x\ninputs: [{vault: " + testRoot + ", path: .}]\n", 2, "inputs[0].path", []string{"whole of the work directory"}},
		// Two inputs on one path: a vault input's default name, and a URL input's directory.
		{"run: x\ninputs:\n  - {vault: " + testRoot + "}\n  - {vault: " + testRoot + "}\n", 4, "inputs[1].path",
			[]string{"lands on \"" + testRoot + "\"", "like inputs[0]", "another path"}},
		{"run: x\ninputs:\n  - {url: 'https://h/w.bin', sha256: " + testSum + ", path: d/}\n  - {vault: " + testRoot + ", path: d/w.bin}\n", 4, "inputs[1].path",
			[]string{"lands on \"d/w.bin\""}},
	}
	for _, c := range cases {
		name := c.src
		if len(name) > 70 {
			name = name[:70]
		}
		t.Run(name, func(t *testing.T) {
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

// A vault input whose default name is a file the job ships is refused when the manifest is built.
func TestVaultInputOverShippedFile(t *testing.T) {
	dir := tree(t, map[string]string{"in/" + testRoot: "x"})
	j := mustParse(t, "run: x\nfiles: [in/"+testRoot+"]\ninputs: [{vault: "+testRoot+", path: in/}]\n")
	manifestErr(t, j, dir, 2, "files[0]", "where an input is downloaded")
}

// The schema agrees with Parse on the two forms of an input: each alone validates, a mix of them is refused by
// both.
func TestVaultInputSchema(t *testing.T) {
	v := loadSchema(t)
	for _, src := range []string{
		"run: x\ninputs: [{vault: " + testRoot + "}]\n",
		"run: x\ninputs: [{vault: " + strings.ToUpper(testRoot) + ", path: w/}]\n",
		"run: x\ninputs: [{vault: " + testRoot + ", path: b}, {url: 'https://h/a', sha256: " + testSum + "}]\n",
	} {
		if errs := v.check(t, []byte(src)); len(errs) > 0 {
			t.Errorf("schema refuses\n%s: %v", src, errs)
		}
		mustParse(t, src)
	}
	for _, src := range []string{
		"run: x\ninputs: [{url: 'https://h/a', sha256: " + testSum + ", vault: " + testRoot + "}]\n",
		"run: x\ninputs: [{url: 'https://h/a', vault: " + testRoot + "}]\n",
		"run: x\ninputs: [{vault: " + testRoot + ", sha256: " + testSum + "}]\n",
		"run: x\ninputs: [{path: a}]\n",
		"run: x\ninputs: [{vault: 6fdd30}]\n",
		"run: x\ninputs: [{vault: " + testRoot + ", path: /a}]\n",
	} {
		if errs := v.check(t, []byte(src)); len(errs) == 0 {
			t.Errorf("schema accepts\n%s", src)
		}
		if _, err := Parse("job.yaml", []byte(src)); err == nil {
			t.Errorf("Parse accepts\n%s", src)
		}
	}
}
