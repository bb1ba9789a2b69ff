package ledger

import (
	"bytes"
	"testing"

	"github.com/sparenet/spare/ledger/tx"
)

// FuzzDecodeState feeds arbitrary bytes to the decoders of the ledger's own state objects (orders, leases,
// verifications, clusters, published round trips). They must never panic, and whatever they accept must
// re-encode to bytes that decode to the same object (a second round trip is stable).
func FuzzDecodeState(f *testing.F) {
	a := tx.Address{7}
	f.Add(uint8(0), encOrder(&Order{ID: 3, Tenant: a, Deposit: 9, Replicas: 2, RefereeFor: 1, Nodes: 4, State: OrderOpen}))
	f.Add(uint8(1), encLease(&Lease{ID: 4, OrderID: 3, Tenant: a, Provider: a, Deposit: 9, Held: 5, State: LeaseCompleted, CloseReason: "x"}))
	f.Add(uint8(2), encVerification(&Verification{OrderID: 3, Replicas: 2, Leases: []uint64{4, 5, 6}, RefereeOrder: 7, State: VerifyAgreed, ExitCode: -1}))
	f.Add(uint8(3), encCluster(&Cluster{OrderID: 3, Nodes: 2, MaxRTTMicros: 5000, OnFailure: 1, Leases: []uint64{4, 5}, State: ClusterRunning}))
	f.Add(uint8(3), encCluster(&Cluster{OrderID: 9, Nodes: 2, MaxRTTMicros: 5000, OnFailure: 2, Leases: []uint64{4, 5}, State: ClusterLeasing,
		Generation: 1, RestartsLeft: 1, Reserve: 7, PrevOrder: 3, Excluded: []tx.Address{{1}}}))
	f.Add(uint8(4), encLatency(&Latency{Height: 9, Samples: []tx.LatencySample{{Peer: a, RTTMicros: 300}}}))
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		var enc func() []byte
		switch kind % 5 {
		case 0:
			if o, err := decOrder(b); err == nil {
				enc = func() []byte { return encOrder(o) }
			}
		case 1:
			if l, err := decLease(b); err == nil {
				enc = func() []byte { return encLease(l) }
			}
		case 2:
			if v, err := decVerification(b); err == nil {
				enc = func() []byte { return encVerification(v) }
			}
		case 3:
			if cl, err := decCluster(b); err == nil {
				enc = func() []byte { return encCluster(cl) }
			}
		case 4:
			if l, err := decLatency(a, b); err == nil {
				enc = func() []byte { return encLatency(l) }
			}
		}
		if enc == nil {
			return
		}
		once := enc()
		var again []byte
		switch kind % 5 {
		case 0:
			again = encOrder(mustDecode(decOrder(once)))
		case 1:
			again = encLease(mustDecode(decLease(once)))
		case 2:
			again = encVerification(mustDecode(decVerification(once)))
		case 3:
			again = encCluster(mustDecode(decCluster(once)))
		case 4:
			again = encLatency(mustDecode(decLatency(a, once)))
		}
		if !bytes.Equal(once, again) {
			t.Fatalf("kind %d: re-encoding is not stable:\n%x\n%x", kind%5, once, again)
		}
	})
}
