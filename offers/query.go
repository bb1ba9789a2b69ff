package offers

import (
	"errors"
	"fmt"
	"github.com/sparenet/spare/internal/editdist"
	"strconv"
	"strings"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/tx"
)

// Help describes the query language (for `spare offers --help`).
const Help = `A query is a list of terms separated by spaces, each written without spaces as field OP value;
a provider is listed when every term holds. Operators: = != < <= > >=.

  gpu=H100,A100     a free GPU of any of these models (= or !=; != means a model not in the list)
  gpus>=2           free GPUs matching the gpu, vram and price terms (whole number)
  vram>=80          GPU memory in GiB; a GPU counts as N GiB from 95% of N GiB, since nvidia-smi reports a
                    little less than the size on the box (an H100 80GB reports 79.6 GiB)
  cpu>=8            free CPU cores (decimals allowed: cpu>=0.5)
  memory>=64        free memory in GiB
  disk>=500         free disk in GiB
  price<=2.5        SPR per GPU-hour (2.5, 2.5spr or 2500000uspr); per CPU core-hour when the query has no
                    gpu or vram term and no gpus term that needs a GPU
  region=eu-west    region, or a comma list of regions (= or !=)
  zone=a            zone, or a comma list of zones (= or !=)
  verified=true     hardware attested on the ledger (true or false; = or !=)
  reputation>=0.9   ledger reputation, a fraction from 0 to 1
  docker=true       runs jobs that name a container image (true or false; = or !=)

Sizes are a number of GiB, written bare or with the suffix GiB (80 or 80GiB); other units (G, GB, MiB,
TiB) are errors. Fields are case-insensitive; models, regions and zones compare case-insensitively.
gpu, vram and price terms narrow the GPUs considered: gpu=H100 price<=2.5 needs an H100 at 2.5 SPR or less.
A provider whose offer could not be fetched is listed only when the query has no price, gpus, cpu, memory or
disk term; its gpu and vram terms are checked against the hardware it declared on the ledger.`

// Field is what a term compares.
type Field string

// The fields.
const (
	FieldGPU        Field = "gpu"
	FieldGPUs       Field = "gpus"
	FieldVRAM       Field = "vram"
	FieldCPU        Field = "cpu"
	FieldMemory     Field = "memory"
	FieldDisk       Field = "disk"
	FieldPrice      Field = "price"
	FieldRegion     Field = "region"
	FieldZone       Field = "zone"
	FieldVerified   Field = "verified"
	FieldReputation Field = "reputation"
	FieldDocker     Field = "docker"
)

// Fields lists every field, in the order Help gives them.
var Fields = []Field{FieldGPU, FieldGPUs, FieldVRAM, FieldCPU, FieldMemory, FieldDisk, FieldPrice, FieldRegion,
	FieldZone, FieldVerified, FieldReputation, FieldDocker}

// Op is a comparison.
type Op string

// The operators.
const (
	OpEq Op = "="
	OpNe Op = "!="
	OpLt Op = "<"
	OpLe Op = "<="
	OpGt Op = ">"
	OpGe Op = ">="
)

// Ops lists every operator.
var Ops = []Op{OpEq, OpNe, OpLt, OpLe, OpGt, OpGe}

// VRAMTolerancePercent is how much of N GiB a GPU must report to count as N GiB (see Help).
const VRAMTolerancePercent = 95

// Term is one comparison of a query.
type Term struct {
	Field Field
	Op    Op
	Value string // as written

	names []string // gpu, region, zone
	n     uint64   // gpus: count; vram, memory, disk: MiB; cpu: milli-cores; price: uspr; reputation: ppm
	b     bool     // verified, docker
}

// String is the term as field OP value, e.g. "price<=2.5".
func (t Term) String() string { return string(t.Field) + string(t.Op) + t.Value }

// Query is a parsed query: every term must hold.
type Query struct {
	Terms  []Term
	perGPU bool
}

// String is the query in canonical form.
func (q Query) String() string {
	s := make([]string, len(q.Terms))
	for i, t := range q.Terms {
		s[i] = t.String()
	}
	return strings.Join(s, " ")
}

// PerGPU reports whether price terms (and Row.Price) are per GPU-hour: the query has a gpu or vram term, or a
// gpus term that 0 GPUs fails. Otherwise prices are per CPU core-hour.
func (q Query) PerGPU() bool { return q.perGPU }

// NeedsOffer reports whether some term needs a provider's offer (price or free capacity): providers whose offer
// could not be fetched cannot match such a query.
func (q Query) NeedsOffer() bool {
	for _, t := range q.Terms {
		if needsOffer(t.Field) {
			return true
		}
	}
	return false
}

func needsOffer(f Field) bool {
	switch f {
	case FieldPrice, FieldGPUs, FieldCPU, FieldMemory, FieldDisk:
		return true
	}
	return false
}

type kind int

const (
	kindNames  kind = iota // = != with a comma list
	kindNumber             // all operators
	kindBool               // = != with true or false
)

type fieldSpec struct {
	kind  kind
	want  string // what the value must be, for errors
	parse func(t *Term) bool
}

var specs = map[Field]fieldSpec{
	FieldGPU:        {kindNames, "a GPU model or a comma list of models, e.g. gpu=H100 or gpu=H100,A100", nil},
	FieldGPUs:       {kindNumber, "a whole number of free GPUs, e.g. gpus>=2", parseCount},
	FieldVRAM:       {kindNumber, "GPU memory in GiB, e.g. vram>=80 or vram>=80GiB", parseGiB},
	FieldCPU:        {kindNumber, "a number of free CPU cores, e.g. cpu>=8 or cpu>=0.5", parseCores},
	FieldMemory:     {kindNumber, "free memory in GiB, e.g. memory>=64 or memory>=64GiB", parseGiB},
	FieldDisk:       {kindNumber, "free disk in GiB, e.g. disk>=500 or disk>=500GiB", parseGiB},
	FieldPrice:      {kindNumber, "SPR per GPU-hour (per CPU core-hour without GPU terms), e.g. price<=2.5, price<=2.5spr or price<=2500000uspr", parsePrice},
	FieldRegion:     {kindNames, "a region or a comma list of regions, e.g. region=eu-west,eu-north", nil},
	FieldZone:       {kindNames, "a zone or a comma list of zones, e.g. zone=a,b", nil},
	FieldVerified:   {kindBool, "true or false, e.g. verified=true", nil},
	FieldReputation: {kindNumber, "a fraction from 0 to 1, e.g. reputation>=0.9", parseReputation},
	FieldDocker:     {kindBool, "true or false, e.g. docker=true", nil},
}

// aliases are names people may try for a field; they are never accepted, only suggested.
var aliases = map[string]Field{
	"model": FieldGPU, "models": FieldGPU, "gpu_model": FieldGPU, "gpumodel": FieldGPU, "type": FieldGPU,
	"count": FieldGPUs, "gpu_count": FieldGPUs, "gpucount": FieldGPUs, "ngpus": FieldGPUs, "num_gpus": FieldGPUs,
	"vmem": FieldVRAM, "gpu_memory": FieldVRAM, "gpu_mem": FieldVRAM, "gpumem": FieldVRAM,
	"cores": FieldCPU, "cpus": FieldCPU, "cpu_cores": FieldCPU, "vcpu": FieldCPU, "vcpus": FieldCPU,
	"mem": FieldMemory, "ram": FieldMemory,
	"storage": FieldDisk, "ssd": FieldDisk,
	"cost": FieldPrice, "gpu_hour": FieldPrice, "rate": FieldPrice,
	"location": FieldRegion, "az": FieldZone,
	"rep": FieldReputation, "score": FieldReputation,
	"attested":  FieldVerified,
	"container": FieldDocker, "image": FieldDocker,
}

const opChars = "=!<>~"

// Parse reads a query. An empty query matches every provider. Every term is checked: unknown fields or
// operators, operators the field does not take and values of the wrong type or unit are errors that name the
// term (all bad terms are reported, one per line).
func Parse(q string) (Query, error) {
	var out Query
	var errs []error
	tokens := strings.Fields(q)
	for i := 0; i < len(tokens); i++ {
		if n := spaced(tokens[i:]); n > 1 {
			written := strings.Join(tokens[i:i+n], " ")
			errs = append(errs, fmt.Errorf("term %q: write each term without spaces: %s", written, strings.Join(tokens[i:i+n], "")))
			i += n - 1
			continue
		}
		t, err := parseTerm(tokens[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out.Terms = append(out.Terms, t)
	}
	if len(errs) > 0 {
		return Query{}, errors.Join(errs...)
	}
	for _, t := range out.Terms {
		switch {
		case t.Field == FieldGPU, t.Field == FieldVRAM:
			out.perGPU = true
		case t.Field == FieldGPUs && !compare(t.Op, 0, t.n):
			out.perGPU = true
		}
	}
	return out, nil
}

func fieldList() string {
	s := make([]string, len(Fields))
	for i, f := range Fields {
		s[i] = string(f)
	}
	return strings.Join(s, " ")
}

func opList() string {
	s := make([]string, len(Ops))
	for i, o := range Ops {
		s[i] = string(o)
	}
	return strings.Join(s, " ")
}

// spaced is how many tokens from the first one make one term written with spaces ("gpu = H100", "gpu =H100",
// "gpu= H100"), or 1.
func spaced(tokens []string) int {
	isOp := func(s string) bool { return s != "" && strings.Trim(s, opChars) == "" }
	startsOp := func(s string) bool { return s != "" && strings.IndexByte(opChars, s[0]) >= 0 }
	endsOp := func(s string) bool { return s != "" && strings.IndexByte(opChars, s[len(s)-1]) >= 0 }
	noOp := func(s string) bool { return !strings.ContainsAny(s, opChars) }
	switch {
	case len(tokens) >= 3 && noOp(tokens[0]) && isOp(tokens[1]) && noOp(tokens[2]):
		return 3 // gpu = H100
	case len(tokens) >= 2 && noOp(tokens[0]) && startsOp(tokens[1]) && !isOp(tokens[1]):
		return 2 // gpu =H100
	case len(tokens) >= 2 && endsOp(tokens[0]) && !isOp(tokens[0]) && noOp(tokens[1]):
		return 2 // gpu= H100
	}
	return 1
}

func parseTerm(tok string) (Term, error) {
	at := strings.IndexAny(tok, opChars)
	if at < 0 {
		if spec, ok := specs[Field(strings.ToLower(tok))]; ok {
			return Term{}, fmt.Errorf("term %q: no operator: %s wants %s", tok, strings.ToLower(tok), spec.want)
		}
		return Term{}, fmt.Errorf("term %q: no operator: a term is field OP value, e.g. gpu=H100 or price<=2.5; operators: %s", tok, opList())
	}
	name := strings.ToLower(tok[:at])
	end := at
	for end < len(tok) && strings.IndexByte(opChars, tok[end]) >= 0 {
		end++
	}
	op, value := Op(tok[at:end]), tok[end:]
	if name == "" {
		return Term{}, fmt.Errorf("term %q: no field before the operator; fields: %s", tok, fieldList())
	}
	f := Field(name)
	spec, ok := specs[f]
	if !ok {
		hint := ""
		if s := suggestField(name); s != "" {
			hint = fmt.Sprintf(" (did you mean %s?)", s)
		}
		return Term{}, fmt.Errorf("term %q: unknown field %q%s; fields: %s", tok, tok[:at], hint, fieldList())
	}
	if !validOp(op) {
		hint := ""
		if s := suggestOp(op); s != "" {
			hint = fmt.Sprintf(" (did you mean %s?)", s)
		}
		return Term{}, fmt.Errorf("term %q: unknown operator %q%s; operators: %s", tok, op, hint, opList())
	}
	if spec.kind != kindNumber && op != OpEq && op != OpNe {
		return Term{}, fmt.Errorf("term %q: %s takes only = or != (%s)", tok, f, spec.want)
	}
	if value == "" {
		return Term{}, fmt.Errorf("term %q: no value after %s: %s wants %s", tok, op, f, spec.want)
	}
	t := Term{Field: f, Op: op, Value: value}
	bad := func(why string) error {
		return fmt.Errorf("term %q: %s%s wants %s", tok, why, f, spec.want)
	}
	switch spec.kind {
	case kindNames:
		for _, n := range strings.Split(value, ",") {
			if n == "" {
				return Term{}, bad("empty name in the list: ")
			}
			if !validName(n) {
				return Term{}, bad(fmt.Sprintf("%q is not a name (letters, digits, '-', '_', '.'): ", n))
			}
			t.names = append(t.names, n)
		}
	case kindBool:
		switch strings.ToLower(value) {
		case "true":
			t.b = true
		case "false":
		default:
			return Term{}, bad("")
		}
	case kindNumber:
		if spec.parse == nil || !spec.parse(&t) {
			if spec.parse != nil && isSizeField(f) && hasUnit(value) {
				return Term{}, fmt.Errorf("term %q: sizes are in GiB: write %s or %sGiB (other units are not accepted)", tok, numPart(value), numPart(value))
			}
			return Term{}, bad("")
		}
	}
	return t, nil
}

func validOp(op Op) bool {
	for _, o := range Ops {
		if o == op {
			return true
		}
	}
	return false
}

func suggestOp(op Op) string {
	switch op {
	case "==":
		return "="
	case "=>":
		return ">="
	case "=<":
		return "<="
	case "<>", "=!", "!", "!==", "~=", "!~":
		return "!="
	}
	return ""
}

func validName(s string) bool {
	if len(s) > tx.MaxNameLen {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.", c)) {
			return false
		}
	}
	return true
}

func isSizeField(f Field) bool { return f == FieldVRAM || f == FieldMemory || f == FieldDisk }

// numPart is the leading number of a value like "80GB".
func numPart(v string) string {
	i := 0
	for i < len(v) && (v[i] >= '0' && v[i] <= '9' || v[i] == '.') {
		i++
	}
	return v[:i]
}

// hasUnit reports a number followed by letters, e.g. "80GB".
func hasUnit(v string) bool {
	n := numPart(v)
	if n == "" || len(n) == len(v) {
		return false
	}
	for _, c := range v[len(n):] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// decimal reads a non-negative decimal number ("8", "0.5") scaled by scale and rounded to the nearest integer;
// no sign, exponent or unit.
func decimal(s string, scale uint64) (uint64, bool) {
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || dot && frac == "" || len(whole) > 12 || len(frac) > 9 {
		return 0, false
	}
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	w, _ := strconv.ParseUint(whole, 10, 64)
	v := w * scale
	if frac != "" {
		f, _ := strconv.ParseUint(frac, 10, 64)
		den := uint64(1)
		for range len(frac) {
			den *= 10
		}
		v += (f*scale + den/2) / den // f < 1e9 and scale <= 1e6: no overflow
	}
	return v, true
}

func parseCount(t *Term) bool {
	if strings.Contains(t.Value, ".") {
		return false
	}
	v, ok := decimal(t.Value, 1)
	t.n = v
	return ok
}

func parseGiB(t *Term) bool {
	num := t.Value
	if len(num) > 3 && strings.EqualFold(num[len(num)-3:], "GiB") {
		num = num[:len(num)-3]
	}
	v, ok := decimal(num, 1024)
	t.n = v
	return ok
}

func parseCores(t *Term) bool {
	v, ok := decimal(t.Value, 1000)
	t.n = v
	return ok
}

func parseReputation(t *Term) bool {
	v, ok := decimal(t.Value, tx.PPM)
	t.n = v
	return ok && v <= tx.PPM
}

func parsePrice(t *Term) bool {
	v, err := client.ParseAmount(t.Value)
	t.n = v
	return err == nil
}

// compare is a OP b.
func compare(op Op, a, b uint64) bool {
	switch op {
	case OpEq:
		return a == b
	case OpNe:
		return a != b
	case OpLt:
		return a < b
	case OpLe:
		return a <= b
	case OpGt:
		return a > b
	case OpGe:
		return a >= b
	}
	return false
}

// suggestField is the field a mistyped name most likely means, or "".
func suggestField(name string) string {
	if f, ok := aliases[name]; ok {
		return string(f)
	}
	options := make([]string, len(Fields))
	for i, f := range Fields {
		options[i] = string(f)
	}
	return suggest(name, options)
}

// suggest picks the option closest to word: within two edits (one for short words), else one that word starts
// or that starts word.
func suggest(word string, options []string) string {
	best, bestD := "", 3
	if len(word) <= 3 {
		bestD = 2
	}
	for _, o := range options {
		if d := editdist.Distance(word, o); d < bestD {
			best, bestD = o, d
		}
	}
	if best != "" {
		return best
	}
	if len(word) >= 3 {
		for _, o := range options {
			if strings.HasPrefix(o, word) || strings.HasPrefix(word, o) {
				return o
			}
		}
	}
	return ""
}
