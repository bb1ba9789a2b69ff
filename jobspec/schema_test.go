package jobspec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// A small JSON Schema validator, enough for the keywords schema.json uses; any other keyword fails the test, so
// the schema cannot rely on something this test does not check.

var annotationKeywords = map[string]bool{"$schema": true, "$id": true, "title": true, "description": true, "default": true, "$defs": true, "$comment": true, "examples": true}

type validator struct {
	root map[string]any
}

func (v *validator) validate(s map[string]any, x any, at string) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	for kw, arg := range s {
		switch kw {
		case "$ref":
			ref := strings.TrimPrefix(arg.(string), "#/$defs/")
			def, ok := v.root["$defs"].(map[string]any)[ref].(map[string]any)
			if !ok {
				fail("unknown $ref %v", arg)
				continue
			}
			errs = append(errs, v.validate(def, x, at)...)
		case "type":
			var types []string
			switch t := arg.(type) {
			case string:
				types = []string{t}
			case []any:
				for _, e := range t {
					types = append(types, e.(string))
				}
			}
			ok := false
			for _, t := range types {
				ok = ok || hasType(x, t)
			}
			if !ok {
				fail("want type %v, got %T %v", types, x, x)
			}
		case "properties":
			obj, ok := x.(map[string]any)
			if !ok {
				continue
			}
			for name, sub := range arg.(map[string]any) {
				if val, present := obj[name]; present {
					errs = append(errs, v.validate(sub.(map[string]any), val, at+"."+name)...)
				}
			}
		case "additionalProperties":
			obj, ok := x.(map[string]any)
			if !ok {
				continue
			}
			props, _ := s["properties"].(map[string]any)
			for name, val := range obj {
				if _, known := props[name]; known {
					continue
				}
				switch a := arg.(type) {
				case bool:
					if !a {
						fail("unknown property %q", name)
					}
				case map[string]any:
					errs = append(errs, v.validate(a, val, at+"."+name)...)
				}
			}
		case "propertyNames":
			if obj, ok := x.(map[string]any); ok {
				for name := range obj {
					errs = append(errs, v.validate(arg.(map[string]any), name, at+"."+name+"(name)")...)
				}
			}
		case "required":
			if obj, ok := x.(map[string]any); ok {
				for _, r := range arg.([]any) {
					if _, present := obj[r.(string)]; !present {
						fail("missing required %q", r)
					}
				}
			}
		case "maxProperties":
			if obj, ok := x.(map[string]any); ok && float64(len(obj)) > num(arg) {
				fail("too many properties")
			}
		case "items":
			if arr, ok := x.([]any); ok {
				for i, e := range arr {
					errs = append(errs, v.validate(arg.(map[string]any), e, fmt.Sprintf("%s[%d]", at, i))...)
				}
			}
		case "minItems", "maxItems":
			if arr, ok := x.([]any); ok {
				if kw == "minItems" && float64(len(arr)) < num(arg) || kw == "maxItems" && float64(len(arr)) > num(arg) {
					fail("%s %v: %d items", kw, arg, len(arr))
				}
			}
		case "uniqueItems":
			if arr, ok := x.([]any); ok && arg.(bool) {
				seen := map[string]bool{}
				for _, e := range arr {
					k := fmt.Sprint(e)
					if seen[k] {
						fail("duplicate item %v", e)
					}
					seen[k] = true
				}
			}
		case "enum":
			found := false
			for _, e := range arg.([]any) {
				found = found || reflect.DeepEqual(e, x)
			}
			if !found {
				fail("%v not in %v", x, arg)
			}
		case "pattern":
			if str, ok := x.(string); ok && !regexp.MustCompile(arg.(string)).MatchString(str) {
				fail("%q does not match %s", str, arg)
			}
		case "minLength", "maxLength":
			if str, ok := x.(string); ok {
				n := float64(utf8.RuneCountInString(str))
				if kw == "minLength" && n < num(arg) || kw == "maxLength" && n > num(arg) {
					fail("%s %v", kw, arg)
				}
			}
		case "minimum", "maximum", "exclusiveMinimum":
			if n, ok := x.(json.Number); ok {
				f, _ := n.Float64()
				if kw == "minimum" && f < num(arg) || kw == "maximum" && f > num(arg) || kw == "exclusiveMinimum" && f <= num(arg) {
					fail("%v: %s %v", f, kw, arg)
				}
			}
		case "oneOf", "anyOf":
			matched := 0
			for _, alt := range arg.([]any) {
				if len(v.validate(alt.(map[string]any), x, at)) == 0 {
					matched++
				}
			}
			if matched == 0 || kw == "oneOf" && matched > 1 {
				fail("%s: %d alternatives match %v", kw, matched, x)
			}
		case "not":
			if len(v.validate(arg.(map[string]any), x, at)) == 0 {
				fail("matches a forbidden schema")
			}
		default:
			if !annotationKeywords[kw] {
				fail("schema keyword %q is not checked by this test", kw)
			}
		}
	}
	return errs
}

func num(a any) float64 {
	switch n := a.(type) {
	case json.Number:
		f, _ := n.Float64()
		return f
	case float64:
		return n
	}
	panic(fmt.Sprintf("not a number: %v", a))
}

func hasType(x any, t string) bool {
	switch t {
	case "object":
		_, ok := x.(map[string]any)
		return ok
	case "array":
		_, ok := x.([]any)
		return ok
	case "string":
		_, ok := x.(string)
		return ok
	case "boolean":
		_, ok := x.(bool)
		return ok
	case "null":
		return x == nil
	case "number":
		_, ok := x.(json.Number)
		return ok
	case "integer":
		n, ok := x.(json.Number)
		return ok && !strings.ContainsAny(string(n), ".eE")
	}
	panic("unknown type " + t)
}

func loadSchema(t testing.TB) *validator {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(Schema()))
	d.UseNumber()
	var root map[string]any
	if err := d.Decode(&root); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	if root["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Fatalf("$schema is %v", root["$schema"])
	}
	return &validator{root: root}
}

// yamlToJSON reads a job file the way an editor's schema validation does: YAML to JSON values.
func yamlToJSON(t testing.TB, src []byte) any {
	t.Helper()
	var x any
	if err := yaml.Unmarshal(src, &x); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var out any
	if err := d.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func (v *validator) check(t testing.TB, src []byte) []string {
	t.Helper()
	return v.validate(v.root, yamlToJSON(t, src), "$")
}

// The schema's properties are exactly the fields Parse reads, mapping by mapping, and every mapping refuses
// unknown properties, as Parse does.
func TestSchemaHasEveryField(t *testing.T) {
	v := loadSchema(t)
	obj := func(s map[string]any, path ...string) map[string]any {
		for _, p := range path {
			if ref, ok := s["$ref"].(string); ok {
				s = v.root["$defs"].(map[string]any)[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
			}
			switch p {
			case "[]":
				s = s["items"].(map[string]any)
			case "|object":
				for _, alt := range s["oneOf"].([]any) {
					if alt.(map[string]any)["type"] == "object" {
						s = alt.(map[string]any)
					}
				}
			default:
				s = s["properties"].(map[string]any)[p].(map[string]any)
			}
		}
		return s
	}
	cases := []struct {
		path []string
		keys []string
	}{
		{nil, jobKeys},
		{[]string{"inputs", "[]"}, inputKeys},
		{[]string{"outputs", "|object"}, outputsKeys},
		{[]string{"resources"}, resourcesKeys},
		{[]string{"resources", "gpu", "|object"}, gpuKeys},
		{[]string{"price"}, priceKeys},
		{[]string{"placement"}, placementKeys},
		{[]string{"placement", "providers"}, providersKeys},
		{[]string{"cluster"}, clusterKeys},
		{[]string{"verify"}, verifyKeys},
	}
	for _, c := range cases {
		s := obj(v.root, c.path...)
		var got []string
		for k := range s["properties"].(map[string]any) {
			got = append(got, k)
		}
		want := append([]string(nil), c.keys...)
		sort.Strings(got)
		sort.Strings(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("schema at %v has %v, Parse reads %v", c.path, got, want)
		}
		if s["additionalProperties"] != false {
			t.Errorf("schema at %v allows unknown properties", c.path)
		}
	}
	// Every field of JOBSPEC.md appears in the schema.
	spec, err := os.ReadFile("../../shared/JOBSPEC.md")
	if err != nil {
		t.Skip("JOBSPEC.md not found beside the module")
	}
	for _, k := range jobKeys {
		if !bytes.Contains(spec, []byte(k+":")) {
			t.Errorf("Parse reads %s, which JOBSPEC.md does not describe", k)
		}
	}
	// The documented default duration is the one Parse applies.
	d := v.root["properties"].(map[string]any)["duration"].(map[string]any)["default"].(string)
	if got, msg := parseDuration(d); msg != "" || got != DefaultDuration {
		t.Errorf("schema default duration %q, Parse uses %s", d, DefaultDuration)
	}
}

// Every example validates against the schema.
func TestSchemaAcceptsExamples(t *testing.T) {
	v := loadSchema(t)
	for _, path := range exampleFiles(t) {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if errs := v.check(t, src); len(errs) > 0 {
			t.Errorf("%s: %v", path, errs)
		}
	}
}

// The schema agrees with Parse on what is well formed: jobs Parse accepts validate, and the schema refuses
// what it can see is wrong (unknown fields, types, units, enums, ranges).
func TestSchemaAgreesWithParse(t *testing.T) {
	v := loadSchema(t)
	good := []string{
		"run: x\n",
		"image: python:3.12\n",
		strings.Replace(fullJob, "DENY", denyAddr, 1),
		"run: x\nresources: {gpu: {count: 2, model: H100, vram: 80GiB}, cpu: 0.5, memory: 1.5GiB, disk: 512 MiB}\n",
		"run: x\nresources: {cpu: \"0.25\"}\nprice: {max: 2.5spr}\n",
		"run: x\nresources: {cpu: 500m}\nprice: {max: 1500uspr}\n",
		"run: x\nduration: 1h30m\nplacement: {min_reputation: 1, verified: false}\n",
		"run: x\nenv: {A: 1, B: true, C: text}\nports: [80]\n",
		"run: x\ncluster: {nodes: 2, max_rtt: 5ms}\nverify: {replicas: 2}\n", // Parse refuses replicating a cluster
	}
	for _, src := range good {
		if errs := v.check(t, []byte(src)); len(errs) > 0 {
			t.Errorf("schema refuses\n%s: %v", src, errs)
		}
	}
	bad := []string{
		"name: x\n",
		"run: x\nfoo: 1\n",
		"run: x\nresources: {memory: 16GB}\n",
		"run: x\nresources: {memory: 16}\n",
		"run: x\nresources: {gpu: {count: 1, models: [H100]}}\n",
		"run: x\nresources: {gpu: -1}\n",
		"run: x\nresources: {cpu: 0}\n",
		"run: x\nduration: 7d\n",
		"run: x\nduration: 90\n",
		"run: x\nprice: 2\n",
		"run: x\nprice: {max: 0}\n",
		"run: x\nports: [0]\n",
		"run: x\nports: [80, 80]\n",
		"run: x\nfiles: [/etc/passwd]\n",
		"run: x\nfiles: [../x]\n",
		"run: x\nfiles: train.py\n",
		"run: x\ninputs: [{url: 'https://h/a'}]\n",
		"run: x\ninputs: [{url: 'ftp://h/a', sha256: " + testSum + "}]\n",
		"run: x\nenv: {CUDA_VISIBLE_DEVICES: \"0\"}\n",
		"run: x\nenv: {1X: a}\n",
		"run: x\nplacement: {min_reputation: 1.5}\n",
		"run: x\nplacement: {verified: \"yes\"}\n",
		"run: x\nplacement: {providers: {deny: [spare1xyz]}}\n",
		"run: x\ncluster: {nodes: 1}\n",
		"run: x\nverify: {replicas: 0}\n",
	}
	for _, src := range bad {
		if errs := v.check(t, []byte(src)); len(errs) == 0 {
			t.Errorf("schema accepts\n%s", src)
		}
		if _, err := Parse("job.yaml", []byte(src)); err == nil {
			t.Errorf("Parse accepts\n%s", src)
		}
	}
}
