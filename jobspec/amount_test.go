package jobspec_test

import (
	"testing"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/jobspec"
)

// price.max reads amounts exactly as the client does (jobspec keeps its own copy so it does not depend on the
// client package).
func TestPriceParsesLikeTheClient(t *testing.T) {
	for _, s := range []string{"2.5", "2.5spr", "2.5 SPR", "2500000uspr", "0.000001", "1", "0", "3.", ".5", "1.0000001",
		"-1", "abc", "1.5uspr", "18446744073709", "18446744073710", "99999999999999999999", "1e3", "spr", " 7 "} {
		want, werr := client.ParseAmount(s)
		got, msg := jobspec.ParseSPR(s)
		if (werr == nil) != (msg == "") || werr == nil && got != want {
			t.Errorf("%q: jobspec %d %q, client %d %v", s, got, msg, want, werr)
		}
	}
}
