package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/sparenet/spare/runtime"
)

// fakeRuntime reports fixed guarantees; it never starts anything.
type fakeRuntime struct {
	runtime.Runtime
	g []runtime.Guarantee
}

func (f fakeRuntime) Guarantees(context.Context) []runtime.Guarantee { return f.g }

func guarantees(missing ...string) []runtime.Guarantee {
	var out []runtime.Guarantee
	for _, n := range knownGuarantees {
		g := runtime.Guarantee{Name: n, OK: true, Mechanism: "test", Required: n != runtime.GuaranteeCPU}
		for _, m := range missing {
			if m == n {
				g.OK, g.Mechanism, g.Missing = false, "", "the test host lacks it"
			}
		}
		out = append(out, g)
	}
	return out
}

// TestIsolationPolicy: a runtime missing a required guarantee is offered only when the operator accepted that
// risk (for every runtime or for that one); a missing optional one (cpu) refuses nothing; the refusal names
// what is missing and the accept_risks line that would allow it.
func TestIsolationPolicy(t *testing.T) {
	rts := map[string]runtime.Runtime{
		"process": fakeRuntime{g: guarantees(runtime.GuaranteeMemory, runtime.GuaranteeCPU)},
		"docker":  fakeRuntime{g: guarantees()},
		"plain":   fakeRuntime{}, // reports nothing: every required guarantee missing
	}
	for _, tc := range []struct {
		name    string
		accept  []string
		offered map[string]bool
	}{
		{"nothing accepted", nil, map[string]bool{"process": false, "docker": true, "plain": false}},
		{"memory accepted everywhere", []string{"memory"}, map[string]bool{"process": true, "docker": true, "plain": false}},
		{"memory accepted for process", []string{"process:memory"}, map[string]bool{"process": true, "docker": true, "plain": false}},
		{"memory accepted for docker only", []string{"docker:memory"}, map[string]bool{"process": false, "docker": true, "plain": false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := CheckIsolation(context.Background(), IsolationConfig{AcceptRisks: tc.accept}, rts)
			for name, want := range tc.offered {
				ri, ok := rep.Runtime(name)
				if !ok || ri.Offered != want {
					t.Fatalf("%s offered %v, want %v (%+v)", name, ri.Offered, want, ri)
				}
			}
		})
	}
	ri, _ := CheckIsolation(context.Background(), IsolationConfig{}, rts).Runtime("process")
	err := ri.RefusalError()
	if err == nil || !strings.Contains(err.Error(), "memory: the test host lacks it") || !strings.Contains(err.Error(), `"process:memory"`) ||
		strings.Contains(err.Error(), "cpu") {
		t.Fatalf("refusal: %v", err)
	}
	for _, bad := range []string{"memroy", "gvisor:memory", "process:"} {
		if err := (IsolationConfig{AcceptRisks: []string{bad}}).Validate(); err == nil || !strings.Contains(err.Error(), "isolation.accept_risks[0]") {
			t.Errorf("accept_risks %q: %v", bad, err)
		}
	}
}
