package jobspec

import (
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
)

// The job's data: files shipped, inputs fetched (by URL or from Spare Vault), outputs collected (and stored in
// the Vault), and the paths they name.

// checkPath checks a relative path that must stay in the job's (or the work) directory; it returns the path
// cleaned, with a trailing "/" kept.
func (p *parser) checkPath(n *yaml.Node, f, s, what string) (string, bool) {
	switch {
	case s == "":
		p.errf(n, f, "is empty: give a path relative to %s", what)
		return "", false
	case len(s) > manifest.MaxPathBytes:
		p.errf(n, f, "is %d bytes, limit %d", len(s), manifest.MaxPathBytes)
		return "", false
	case strings.Contains(s, "\\"):
		p.errf(n, f, "%q has a backslash: separate directories with /, e.g. %s", s, strings.ReplaceAll(s, "\\", "/"))
		return "", false
	case strings.HasPrefix(s, "/") || filepath.IsAbs(s):
		p.errf(n, f, "%q is absolute: give a path relative to %s", s, what)
		return "", false
	case strings.ContainsRune(s, 0):
		p.errf(n, f, "contains a NUL character: remove it")
		return "", false
	}
	c := path.Clean(s)
	if c == ".." || strings.HasPrefix(c, "../") {
		p.errf(n, f, "%q is outside %s: move it inside (or copy it there) and list it by its relative path", s, what)
		return "", false
	}
	if c == "." {
		p.errf(n, f, "%q is the whole of %s: list the files or subdirectories to ship instead", s, what)
		return "", false
	}
	if strings.HasSuffix(s, "/") {
		c += "/"
	}
	return c, true
}

func (p *parser) files(v *yaml.Node, f string, j *Job) {
	p.paths(v, f, "[train.py, data/]", "train.py", "the job file's directory", manifest.MaxFiles, func(c string, n *yaml.Node) {
		j.Files = append(j.Files, c)
		j.fileLines = append(j.fileLines, pos{n.Line, n.Column})
	})
}

// paths reads a list of relative paths that must stay inside where, each listed once, and hands each on.
func (p *parser) paths(v *yaml.Node, f, example, itemExample, where string, limit int, add func(c string, n *yaml.Node)) {
	seen := map[string]int{}
	p.list(v, f, example, limit, func(i int, item *yaml.Node, f string) {
		s, n, ok := p.str(item, f, itemExample)
		if !ok {
			return
		}
		c, ok := p.checkPath(n, f, s, where)
		if !ok {
			return
		}
		key := strings.TrimSuffix(c, "/")
		if first, dup := seen[key]; dup {
			p.errf(n, f, "%q is listed twice (first on line %d): keep one", s, first)
			return
		}
		seen[key] = n.Line
		add(c, n)
	})
}

var hexRE = regexp.MustCompile(`^[0-9a-fA-F]*$`)

// inputExample is an input of each form, for messages.
const inputExample = "{url: https://host/data.tar, sha256: <64 hex>, path: data/} or {vault: <64 hex root>, path: data.tar}"

func (p *parser) input(item *yaml.Node, f string) (Input, bool) {
	var in Input
	var haveURL, haveSum, haveVault bool
	ok := true
	item = resolve(item)
	p.mapping(item, f, inputKeys, inputHints, inputExample, func(key string, v *yaml.Node, f string) {
		switch key {
		case "url":
			s, n, good := p.str(v, f, "url: https://host/data.tar")
			if !good {
				ok = false
				return
			}
			u, err := url.Parse(s)
			switch {
			case err != nil || u.Host == "":
				p.errf(n, f, "%q is not a URL: write e.g. https://host/data.tar", s)
				ok = false
			case u.Scheme != "http" && u.Scheme != "https":
				p.errf(n, f, "%q: the provider fetches http:// and https:// URLs only: host the file on a web server (or store it in Spare Vault and give vault: <its root>)", s)
				ok = false
			case len(s) > 2048:
				p.errf(n, f, "is %d bytes, limit 2048", len(s))
				ok = false
			default:
				in.URL, haveURL = s, true
			}
		case "sha256":
			h, good := p.hexHash(v, f, "sha256", "sha256: <the 64 hex characters sha256sum prints>",
				"a SHA-256: want the 64 hex characters `sha256sum FILE` prints")
			if !good {
				ok = false
				return
			}
			in.SHA256, haveSum = h, true
		case "vault":
			h, good := p.hexHash(v, f, "blake3", "vault: <the 64 hex characters of the object's root>",
				"a Spare Vault root: want the object's BLAKE3 root, the 64 hex characters `b3sum FILE` prints")
			if !good {
				ok = false
				return
			}
			in.Vault, haveVault = h, true
		case "path":
			s, n, good := p.str(v, f, "path: data/")
			if !good {
				ok = false
				return
			}
			if c, good := p.checkPath(n, f, s, "the work directory"); good {
				in.Path = c
			} else {
				ok = false
			}
		case "unpack":
			b, good := p.boolean(v, f, "unpack: true")
			if !good {
				ok = false
				return
			}
			in.Unpack = b
		}
	})
	if item.Kind != yaml.MappingNode {
		return in, false
	}
	// Exactly one source: a URL with its SHA-256, or a Vault root (checked against itself).
	if haveURL && haveVault {
		l, c := p.keyAt(join(f, "vault"), item)
		p.errAt(l, c, join(f, "vault"), "given with url: an input comes from a web server (url, sha256) or from Spare Vault (vault), not both: keep one")
		ok = false
	}
	if haveVault && haveSum {
		l, c := p.keyAt(join(f, "sha256"), item)
		p.errAt(l, c, join(f, "sha256"), "a vault input is checked against its root, not a SHA-256: remove sha256 (it goes with url)")
		ok = false
	}
	if !haveURL && !haveVault && ok {
		p.errf(item, join(f, "url"), "missing: give the address to fetch, e.g. url: https://host/data.tar (or vault: <64 hex root> for an object stored in Spare Vault)")
		ok = false
	}
	if haveURL && !haveSum && ok {
		p.errf(item, join(f, "sha256"), "missing: the provider must be able to check the data: add sha256: <the output of sha256sum FILE>")
		ok = false
	}
	if in.Unpack && !haveVault {
		l, c := p.keyAt(join(f, "unpack"), item)
		p.errAt(l, c, join(f, "unpack"), "applies to a vault input (a directory stored with spare store put, or a job's outputs stored with outputs: {to: vault}): remove it, and unpack a download in run: instead (e.g. tar -xf)")
		ok = false
	}
	if ok && in.Path == "" {
		base := in.Vault.String() // a vault input is named by its root
		if haveURL {
			u, _ := url.Parse(in.URL)
			base = path.Base(u.Path)
			if base == "" || base == "/" || base == "." {
				p.errf(item, join(f, "path"), "missing, and %q has no file name to default to: add path: data.tar", in.URL)
				return in, false
			}
		}
		c, good := p.checkPath(item, join(f, "path"), base, "the work directory")
		if !good {
			return in, false
		}
		in.Path = c
	}
	return in, ok
}

// hexHash reads a 32-byte hash written as 64 hex characters (any case), refusing a "prefix:" form (sha256:,
// blake3:) with the value to write instead, and the all-zeros hash. what completes "is not ...".
func (p *parser) hexHash(v *yaml.Node, f, prefix, example, what string) (tx.Hash, bool) {
	s, n, good := p.str(v, f, example)
	if !good {
		return tx.Hash{}, false
	}
	s = strings.TrimSpace(s)
	if rest, cut := strings.CutPrefix(strings.ToLower(s), prefix+":"); cut {
		p.errf(n, f, "drop the \"%s:\" prefix: write %s: %s", prefix, f[strings.LastIndex(f, ".")+1:], rest)
		return tx.Hash{}, false
	}
	if len(s) != 64 || !hexRE.MatchString(s) {
		p.errf(n, f, "%q is not %s", s, what)
		return tx.Hash{}, false
	}
	h, err := tx.ParseHash(strings.ToLower(s))
	if err != nil || h.IsZero() {
		p.errf(n, f, "%q is not usable as %s", s, what)
		return tx.Hash{}, false
	}
	return h, true
}

// keyAt is where field's key was written, else n's position.
func (p *parser) keyAt(field string, n *yaml.Node) (int, int) {
	if q, ok := p.pos[field]; ok {
		return q.line, q.col
	}
	return n.Line, n.Column
}

// outputsExample is the mapping form of outputs, for messages.
const outputsExample = "outputs: {paths: [out/], to: vault}"

// outputs reads the list of paths to collect, or the mapping {paths, to, months | permanent} that also stores
// them in Spare Vault (to: vault) once the tenant has verified them.
func (p *parser) outputs(v *yaml.Node, f string, j *Job) {
	if r := resolve(v); r.Kind != yaml.MappingNode {
		p.outputPaths(v, f, j)
		return
	}
	vo := &VaultOutputs{Months: DefaultVaultMonths}
	var to, months, permanent, paths bool
	p.mapping(v, f, outputsKeys, outputsHints, outputsExample, func(key string, v *yaml.Node, f string) {
		switch key {
		case "paths":
			paths = true
			p.outputPaths(v, f, j)
		case "to":
			s, n, ok := p.str(v, f, "to: vault")
			switch {
			case !ok:
			case s == "vault":
				to = true
			default:
				p.errf(n, f, "%q: outputs go to vault (Spare Vault) or, without to:, only to your machine (outputs/<lease>/): write to: vault, or remove to:", s)
			}
		case "months":
			if n, ok := p.integer(v, f, "months: 12 (or permanent: true)", 1, tx.MaxStorageMonths); ok {
				months = true
				vo.Months = uint64(n)
			}
		case "permanent":
			if b, ok := p.boolean(v, f, "permanent: true"); ok && b {
				permanent = true
			}
		}
	})
	m := resolve(v)
	if !paths {
		p.errf(m, join(f, "paths"), "missing: list what to collect, e.g. %s", outputsExample)
	} else if to && len(j.Outputs) == 0 {
		l, c := p.keyAt(join(f, "paths"), m)
		p.errAt(l, c, join(f, "paths"), "is empty: list what to store in the Vault, e.g. paths: [out/]")
	}
	_, toGiven := p.pos[join(f, "to")] // given but not vault: already an error
	for _, k := range []string{"months", "permanent"} {
		if q, given := p.pos[join(f, k)]; given && !toGiven {
			p.errAt(q.line, q.col, join(f, k), "applies to outputs stored in the Vault: add to: vault, or remove %s", k)
		}
	}
	if months && permanent {
		q := p.pos[join(f, "permanent")]
		p.errAt(q.line, q.col, join(f, "permanent"), "with months: a deal is for a term or permanent, not both: keep one")
	}
	if to {
		if permanent {
			vo.Months = 0
		}
		j.VaultOutputs = vo
	}
}

// outputPaths reads the list of paths collected from the work directory when the job ends.
func (p *parser) outputPaths(v *yaml.Node, f string, j *Job) {
	p.paths(v, f, "[out/]", "out/", "the work directory", manifest.MaxOutputs, func(c string, _ *yaml.Node) {
		j.Outputs = append(j.Outputs, c)
	})
}

// inputDest is the path an input is written to, relative to the work directory: for one unpacked, the
// directory it is unpacked into.
func inputDest(in Input) string {
	if strings.HasSuffix(in.Path, "/") && !in.Unpack {
		return path.Join(in.Path, inputBase(in)) // as the provider does
	}
	return path.Clean(in.Path)
}

// beneath reports whether path a is b or lies inside the directory b.
func beneath(a, b string) bool { return a == b || strings.HasPrefix(a, b+"/") }

// inputBase is the file name an input takes in a directory path ("data/"): the URL's last element, or a vault
// input's root in hex (manifest.Input's rule, which the provider applies).
func inputBase(in Input) string {
	if !in.Vault.IsZero() {
		return in.Vault.String()
	}
	return path.Base(in.URL)
}
