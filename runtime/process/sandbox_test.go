package process

import (
	"context"
	"testing"
)

func TestGuaranteesReport(t *testing.T) {
	r := New(testConfig())
	for _, g := range r.Guarantees(context.Background()) {
		t.Logf("%-14s ok=%v required=%v %s%s", g.Name, g.OK, g.Required, g.Mechanism, g.Missing)
	}
	t.Log(r.Mechanism())
}
