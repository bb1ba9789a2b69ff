package jobspec

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
)

// jobspecDoc is the format's documentation, at the repository's root.
const jobspecDoc = "../JOBSPEC.md"

// docBlock is a fenced code block of JOBSPEC.md: its info string (the word after the opening ```), its text
// and the line it starts on.
type docBlock struct {
	info, body string
	line       int
}

var fenceRE = regexp.MustCompile("(?ms)^```([^\\n]*)\\n(.*?)^```[ \\t]*$")

func readDoc(t *testing.T) (string, []docBlock) {
	t.Helper()
	b, err := os.ReadFile(jobspecDoc)
	if err != nil {
		t.Fatalf("the package documentation and README point to JOBSPEC.md: %v", err)
	}
	doc := string(b)
	var blocks []docBlock
	for _, m := range fenceRE.FindAllStringSubmatchIndex(doc, -1) {
		blocks = append(blocks, docBlock{
			info: strings.TrimSpace(doc[m[2]:m[3]]),
			body: doc[m[4]:m[5]],
			line: strings.Count(doc[:m[0]], "\n") + 2, // the block's first line of text
		})
	}
	return doc, blocks
}

// TestDocExamplesAreJobs: every ```yaml block of JOBSPEC.md is a valid job, parsed by Parse and compiled to a
// manifest the provider accepts and to the order (cluster or replicated, as the job asks) the ledger accepts.
// Together the examples use every field of the format, so each field has a working example.
func TestDocExamplesAreJobs(t *testing.T) {
	_, blocks := readDoc(t)
	used := map[string]bool{}
	n := 0
	for _, b := range blocks {
		lang, _, _ := strings.Cut(b.info, " ")
		if lang != "yaml" && lang != "yml" {
			continue
		}
		n++
		name := fmt.Sprintf("JOBSPEC.md (the example at line %d)", b.line)
		j, err := Parse(name, []byte(b.body))
		if err != nil {
			t.Errorf("%s: the example is not a valid job:\n%v\n%s", name, err, b.body)
			continue
		}
		raw, err := j.baseManifest().Encode()
		if err != nil {
			t.Errorf("%s: manifest: %v", name, err)
			continue
		}
		if _, err := manifest.Decode(raw); err != nil {
			t.Errorf("%s: the provider would refuse the manifest: %v", name, err)
		}
		o := j.Order(raw)
		var msg interface{ ValidateBasic() error } = &o
		switch {
		case j.Cluster != nil:
			onFailure := uint8(tx.OnFailureClose)
			if j.Cluster.OnFailure == "restart" {
				onFailure = tx.OnFailureRestart
			}
			msg = &tx.CreateClusterOrder{CreateOrder: o, Nodes: j.Nodes(), MaxRTTMicros: uint32(j.Cluster.MaxRTT / time.Microsecond),
				OnFailure: onFailure, MaxRestarts: uint8(j.Cluster.MaxRestarts)}
		case j.Replicas() > 1:
			msg = &tx.CreateReplicatedOrder{CreateOrder: o, Replicas: j.Replicas()}
		}
		if err := msg.ValidateBasic(); err != nil {
			t.Errorf("%s: the ledger would refuse the order: %v", name, err)
		}
		var root yaml.Node
		if err := yaml.Unmarshal([]byte(b.body), &root); err == nil {
			fieldsUsed(&root, "", used)
		}
	}
	if n < 5 {
		t.Fatalf("JOBSPEC.md has %d yaml examples: expected the smallest job, a complete one and one per feature", n)
	}
	for _, f := range schemaFields(t) {
		if !used[f] {
			t.Errorf("no yaml example in JOBSPEC.md uses %s: add one", f)
		}
	}
}

// TestDocNamesEveryField: every field the parser accepts is in JOBSPEC.md, written `path` (the top-level ones
// from the parser's own list, the nested ones from Schema, whose properties the schema test ties to the parser).
func TestDocNamesEveryField(t *testing.T) {
	doc, _ := readDoc(t)
	fields := schemaFields(t)
	for _, k := range jobKeys {
		if !slices.Contains(fields, k) {
			fields = append(fields, k)
		}
	}
	for _, f := range fields {
		if !strings.Contains(doc, "`"+f+"`") {
			t.Errorf("JOBSPEC.md does not mention `%s`", f)
		}
	}
	for _, k := range jobKeys {
		if !regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(k) + "` \\|").MatchString(doc) {
			t.Errorf("JOBSPEC.md's field table has no row for `%s`", k)
		}
	}
}

// TestDocErrorsAndSummaries: what JOBSPEC.md shows `spare jobspec check` printing is what it prints: the errors
// of an invalid file (the ```text block before the output), and the order a valid one compiles to.
func TestDocErrorsAndSummaries(t *testing.T) {
	_, blocks := readDoc(t)
	summaryRE := regexp.MustCompile(`^(\S+) is valid: (\d+) GPU, (\d+) mCPU, (\d+) MiB memory for (\S+); max (\S+) SPR/h, deposit (\S+) SPR;`)
	checked := 0
	for i, b := range blocks {
		cmd, out, _ := strings.Cut(b.body, "\n")
		file, ok := strings.CutPrefix(cmd, "$ spare jobspec check ")
		if b.info != "console" || !ok || i == 0 {
			continue
		}
		prev := blocks[i-1]
		name := fmt.Sprintf("JOBSPEC.md:%d", b.line)
		j, err := Parse(file, []byte(prev.body))
		if m := summaryRE.FindStringSubmatch(out); m != nil {
			if err != nil {
				t.Errorf("%s: shows %s as valid, but: %v", name, file, err)
				continue
			}
			o := j.Order(nil)
			got := []string{file, fmt.Sprint(o.Resources.GPUCount), fmt.Sprint(o.Resources.CPUMilli), fmt.Sprint(o.Resources.MemoryMiB),
				(time.Duration(o.DurationSec) * time.Second).String(), formatFixed(o.MaxPricePerHour, 6), formatFixed(o.Deposit, 6)}
			if !slices.Equal(m[1:], got) {
				t.Errorf("%s: shows %v, the job compiles to %v", name, m[1:], got)
			}
			checked++
			continue
		}
		want := strings.TrimSpace(strings.TrimPrefix(out, "error: "))
		if err == nil {
			t.Errorf("%s: shows errors for %s, but it parses", name, file)
			continue
		}
		if err.Error() != want {
			t.Errorf("%s: shows\n%s\nbut Parse says\n%v", name, want, err)
		}
		checked++
	}
	if checked < 2 {
		t.Errorf("checked %d examples of spare jobspec check in JOBSPEC.md, want a valid one and an invalid one", checked)
	}
}

// fieldsUsed records the path of every key of a YAML mapping, "[]" standing for a list's entries.
func fieldsUsed(n *yaml.Node, prefix string, used map[string]bool) {
	n = resolve(n)
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			fieldsUsed(c, prefix, used)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			fieldsUsed(c, prefix+"[]", used)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(prefix, n.Content[i].Value)
			used[p] = true
			if prefix == "" && n.Content[i].Value == "env" {
				continue // names of variables, not fields
			}
			fieldsUsed(n.Content[i+1], p, used)
		}
	}
}

// schemaFields lists every field path of Schema(), "[]" standing for a list's entries, sorted.
func schemaFields(t *testing.T) []string {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var walk func(node any, prefix string)
	walk = func(node any, prefix string) {
		m, ok := node.(map[string]any)
		if !ok {
			return
		}
		if props, ok := m["properties"].(map[string]any); ok {
			for k, v := range props {
				p := join(prefix, k)
				seen[p] = true
				walk(v, p)
			}
		}
		if items, ok := m["items"]; ok {
			walk(items, prefix+"[]")
		}
		for _, alt := range []string{"oneOf", "anyOf", "allOf"} {
			if l, ok := m[alt].([]any); ok {
				for _, v := range l {
					walk(v, prefix)
				}
			}
		}
	}
	walk(s, "")
	out := make([]string, 0, len(seen))
	for f := range seen {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}
