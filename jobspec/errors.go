package jobspec

import (
	"fmt"
	"github.com/sparenet/spare/internal/editdist"
	"sort"
	"strings"
)

// Error is one problem in a job file: where it is (file, line, column), which field (a path such as
// "resources.gpu.vram" or "inputs[1].sha256"; empty for the file as a whole) and a message that says what is
// wrong and how to fix it.
type Error struct {
	File   string
	Line   int // 1-based; 0 only for jobs built in code rather than parsed
	Column int // 1-based; 0 when unknown
	Field  string
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found, sorted by line and column. Its Error joins them one per line.
type Errors []*Error

func (l Errors) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.As find the individual *Error values.
func (l Errors) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

func (l Errors) sort() {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Line != l[j].Line {
			return l[i].Line < l[j].Line
		}
		if l[i].Column != l[j].Column {
			return l[i].Column < l[j].Column
		}
		return l[i].Field < l[j].Field
	})
}

// err returns the list as an error, nil when empty.
func (l Errors) err() error {
	if len(l) == 0 {
		return nil
	}
	l.sort()
	return l
}

// suggest returns the candidate closest to s: case-insensitively equal, one a prefix of the other (at least two
// characters), or within edit distance 2 (and less than s is long, so that "r" suggests nothing). It returns ""
// when nothing is close.
func suggest(s string, candidates []string) string {
	ls := strings.ToLower(s)
	best, bestD := "", 1<<30
	for _, c := range candidates {
		lc := strings.ToLower(c)
		d := editdist.Distance(ls, lc)
		if len(ls) >= 2 && len(lc) >= 2 && (strings.HasPrefix(lc, ls) || strings.HasPrefix(ls, lc)) {
			d = min(d, 1) // "res" is resources rather than run
		}
		if d > 2 || d >= len(ls) {
			continue
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best
}
