package ledger

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOlderStateEncodings pins the older layouts of the stored objects that the decoders still accept: state
// written before a field existed (liveness, lease extensions, replication, clusters, delivery proofs, commit-reveal,
// gas, retention, ...), encoded without the trailing sections added since. For each object kind, every proper
// prefix of its seed's encoding that the decoder accepts is such a layout; testdata/golden/older-state.txt lists
// them with the bytes their decoded object re-encodes to today. Each must still decode to the same object (the
// same re-encoding), that re-encoding must round-trip, and no layout may appear or vanish unnoticed: a new
// trailing section adds one (rewrite with -update-golden, and say so in the commit: old nodes' state is read by
// these rules).
func TestOlderStateEncodings(t *testing.T) {
	var got strings.Builder
	for _, c := range stateCodecs() {
		for n := 1; n < len(c.seed); n++ {
			if c.older != nil && !c.older(n) {
				continue
			}
			old := c.seed[:n]
			now, ok := c.round(old)
			if !ok {
				continue
			}
			again, ok := c.round(now)
			if !ok || !bytes.Equal(again, now) {
				t.Errorf("%s: the layout %x re-encodes to %x, which does not round-trip (%x, %v)", c.name, old, now, again, ok)
			}
			fmt.Fprintf(&got, "%s\t%s\t%s\n", c.name, hex.EncodeToString(old), hex.EncodeToString(now))
		}
	}
	path := filepath.Join("testdata", "golden", "older-state.txt")
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./ledger/ -run TestOlderStateEncodings -args -update-golden writes it)", err)
	}
	if string(want) != got.String() {
		wl, gl := strings.Split(string(want), "\n"), strings.Split(got.String(), "\n")
		for i := range max(len(wl), len(gl)) {
			var w, g string
			if i < len(wl) {
				w = wl[i]
			}
			if i < len(gl) {
				g = gl[i]
			}
			if w != g {
				t.Fatalf("the older state layouts changed at line %d:\nwant %s\ngot  %s\n(an older layout no longer read the same forks a node restarted on old state)", i+1, w, g)
			}
		}
	}
}
