package jobspec

// The YAML layer of the parser: decoding with positions, and typed readers of nodes that record errors.

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

type parser struct {
	file string
	errs Errors
	pos  map[string]pos // where each field was found (its key, then its value), for errors about combinations
}

func (p *parser) errAt(line, col int, field, format string, args ...any) {
	if line < 1 {
		line = 1
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Column: col, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) errf(n *yaml.Node, field, format string, args ...any) {
	p.errAt(n.Line, n.Column, field, format, args...)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decode checks the bytes and parses the one YAML document, returning its root node (nil when there is no
// usable document; the errors say why).
func (p *parser) decode(data []byte) (root *yaml.Node) {
	if len(data) > MaxJobFileBytes {
		p.errAt(1, 1, "", "the job file is %d bytes, limit %d: ship data with files: or inputs:, not inside the job file", len(data), MaxJobFileBytes)
		return nil
	}
	if !p.checkText(data) {
		return nil
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := safeDecode(dec, &doc)
	if err == io.EOF || err == nil && (len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null") {
		p.errAt(1, 1, "", "the job file is empty: give at least the command to run, e.g. run: echo hello")
		return nil
	}
	if err != nil {
		p.yamlError(data, err)
		return nil
	}
	var extra yaml.Node
	switch err := safeDecode(dec, &extra); {
	case err == nil:
		line := extra.Line
		if len(extra.Content) > 0 {
			line = extra.Content[0].Line
		}
		p.errAt(separatorLine(data, doc.Line, line), 1, "", "a job file holds one job, but a second YAML document starts here: put each job in its own file (and remove the '---')")
	case err != io.EOF:
		p.yamlError(data, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		p.errAt(1, 1, "", "not a YAML document: write fields such as run: echo hello")
		return nil
	}
	return doc.Content[0]
}

// separatorLine is the line of the last "---" after the first document's start and at or before line.
func separatorLine(data []byte, first, line int) int {
	found := line
	for i, l := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		if n > line {
			break
		}
		if n > first && bytes.HasPrefix(l, []byte("---")) && (len(l) == 3 || l[3] == ' ' || l[3] == '\t' || l[3] == '\r') {
			found = n
		}
	}
	return max(found, 1)
}

// safeDecode guards against a panic inside the YAML library, turning it into an error.
func safeDecode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: cannot parse the file (%v)", r)
		}
	}()
	return dec.Decode(n)
}

// checkText reports invalid UTF-8 and control characters with their line, which the YAML library does not.
func (p *parser) checkText(data []byte) bool {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			p.errAt(line, col, "", "the file is not valid UTF-8 (byte 0x%02x): save it as UTF-8", data[i])
			return false
		case r == '\n':
			line, col = line+1, 0
		case r == '\t' || r == '\r' || r == 0x85 || r == 0xFEFF && i == 0:
		case r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f || r >= 0xD800 && r <= 0xDFFF || r == 0xFFFE || r == 0xFFFF:
			p.errAt(line, col, "", "control character %U: YAML does not allow it: remove it (write \\t or \\n escapes inside double quotes)", r)
			return false
		}
		i += size
		col++
	}
	return true
}

func (p *parser) yamlError(data []byte, err error) {
	msg := err.Error()
	line := 1
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	lines := bytes.Split(data, []byte("\n"))
	if line < 1 {
		line = 1
	}
	hint := "check the indentation and quoting on this line and the one before (quote values that contain ': ', ' #' or start with one of [ ] { } * & ! | > ' \" % @ `)"
	switch {
	case line-1 < len(lines) && bytes.HasPrefix(bytes.TrimLeft(lines[line-1], " "), []byte("\t")) || strings.Contains(msg, "tab"):
		hint = "indent with spaces, not tabs"
	case strings.Contains(msg, "end of stream"):
		hint = "a quote or bracket opened above is not closed: close it"
	}
	p.errAt(line, 0, "", "YAML syntax: %s: %s", msg, hint)
}

// resolve follows aliases; the result keeps the position where the alias was used.
func resolve(n *yaml.Node) *yaml.Node {
	orig := n
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n == nil || n.Kind == yaml.AliasNode {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: orig.Line, Column: orig.Column}
	}
	if n != orig {
		c := *n
		c.Line, c.Column = orig.Line, orig.Column
		return &c
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "empty"
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return n.Value
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

// noValue reports a key with nothing after it.
func (p *parser) noValue(n *yaml.Node, field, example string) {
	p.errf(n, field, "has no value: give one, e.g. %s, or remove the line", example)
}

// mapping walks a mapping's keys, reporting duplicates, merge keys, and unknown keys (with a suggestion).
func (p *parser) mapping(n *yaml.Node, field string, keys []string, hints map[string]string, example string, fn func(key string, v *yaml.Node, field string)) {
	n = resolve(n)
	if isNull(n) {
		p.noValue(n, field, example)
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errf(n, field, "want a mapping, got %s: write e.g. %s", kindName(n), example)
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		sub := join(field, k.Value)
		if k.Kind != yaml.ScalarNode {
			p.errf(k, field, "a key must be a plain name, got %s: the fields here are %s", kindName(k), strings.Join(keys, ", "))
			continue
		}
		if k.ShortTag() == "!!merge" {
			p.errf(k, field, "merge keys (<<) are not supported: write the fields out")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.errf(k, sub, "given twice (first on line %d): keep one", first)
			continue
		}
		seen[k.Value] = k.Line
		if !contains(keys, k.Value) {
			p.unknownKey(k, field, keys, hints)
			continue
		}
		p.pos[sub] = pos{k.Line, k.Column}
		fn(k.Value, v, sub)
	}
}

func (p *parser) unknownKey(k *yaml.Node, field string, keys []string, hints map[string]string) {
	where := "here"
	if field != "" {
		where = "in " + field
	}
	name := join(field, k.Value)
	if h, ok := hints[strings.ToLower(k.Value)]; ok {
		p.errf(k, name, "unknown field %s: did you mean %s?", where, h)
		return
	}
	if s := suggest(k.Value, keys); s != "" {
		p.errf(k, name, "unknown field: did you mean %s? (the fields %s are %s)", s, where, strings.Join(keys, ", "))
		return
	}
	p.errf(k, name, "unknown field: the fields %s are %s", where, strings.Join(keys, ", "))
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// scalar returns a scalar's text; a mapping, a list or nothing is an error.
func (p *parser) scalar(n *yaml.Node, field, example string) (*yaml.Node, bool) {
	n = resolve(n)
	switch {
	case isNull(n):
		p.noValue(n, field, example)
		return n, false
	case n.Kind != yaml.ScalarNode:
		p.errf(n, field, "want a single value, got %s: write e.g. %s", kindName(n), example)
		return n, false
	}
	p.pos[field] = pos{n.Line, n.Column}
	return n, true
}

// str reads a string. Numbers are taken as written (name: 2024); booleans are refused (quote them).
func (p *parser) str(n *yaml.Node, field, example string) (string, *yaml.Node, bool) {
	n, ok := p.scalar(n, field, example)
	if !ok {
		return "", n, false
	}
	if n.ShortTag() == "!!bool" {
		p.errf(n, field, "want text, got %s: quote it (%q) or write e.g. %s", n.Value, n.Value, example)
		return "", n, false
	}
	return n.Value, n, true
}

// integer reads a whole number in [lo, hi].
func (p *parser) integer(n *yaml.Node, field, example string, lo, hi int64) (int64, bool) {
	n, ok := p.scalar(n, field, example)
	if !ok {
		return 0, false
	}
	switch n.ShortTag() {
	case "!!int":
		v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || v < lo || v > hi {
			p.errf(n, field, "%s is out of range: want %d..%d, e.g. %s", n.Value, lo, hi, example)
			return 0, false
		}
		return v, true
	case "!!str":
		if _, err := strconv.ParseInt(strings.TrimSpace(n.Value), 10, 64); err == nil {
			p.errf(n, field, "%q is text: write the number without quotes, e.g. %s", n.Value, example)
			return 0, false
		}
	case "!!float":
		p.errf(n, field, "%s is not a whole number: want %d..%d, e.g. %s", n.Value, lo, hi, example)
		return 0, false
	}
	p.errf(n, field, "want a whole number, got %s: write e.g. %s", kindName(n), example)
	return 0, false
}

func (p *parser) boolean(n *yaml.Node, field, example string) (bool, bool) {
	n, ok := p.scalar(n, field, example)
	if !ok {
		return false, false
	}
	if n.ShortTag() == "!!bool" {
		return strings.EqualFold(n.Value, "true"), true
	}
	p.errf(n, field, "want true or false, got %s: write e.g. %s", kindName(n), example)
	return false, false
}

// list walks a sequence, reporting more than limit entries once.
func (p *parser) list(n *yaml.Node, field, example string, limit int, fn func(i int, item *yaml.Node, field string)) {
	n = resolve(n)
	if isNull(n) {
		p.noValue(n, field, example)
		return
	}
	if n.Kind != yaml.SequenceNode {
		if n.Kind == yaml.ScalarNode {
			p.errf(n, field, "want a list, got %s: write [%s]", kindName(n), n.Value)
		} else {
			p.errf(n, field, "want a list, got %s: write e.g. %s", kindName(n), example)
		}
		return
	}
	p.pos[field] = pos{n.Line, n.Column}
	if len(n.Content) > limit {
		p.errf(n, field, "%d entries, limit %d: ship fewer", len(n.Content), limit)
		return
	}
	for i, item := range n.Content {
		fn(i, item, fmt.Sprintf("%s[%d]", field, i))
	}
}

// The job.
