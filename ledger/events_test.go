package ledger

import (
	"errors"
	"strings"
	"sync"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/api"
)

// eventParsers are the typed parsers of ledger/api by the event type they read: what clients act on.
var eventParsers = map[string]func(map[string]string) error{
	api.EventOrderCreated: func(m map[string]string) error { _, err := api.ParseOrderCreated(m); return err },
	api.EventOrderCancelled: func(m map[string]string) error {
		_, err := api.ParseOrderEnded(api.EventOrderCancelled, m)
		return err
	},
	api.EventOrderExpired: func(m map[string]string) error {
		_, err := api.ParseOrderEnded(api.EventOrderExpired, m)
		return err
	},
	api.EventBidPlaced:        func(m map[string]string) error { _, err := api.ParseBidPlaced(m); return err },
	api.EventBidClosed:        func(m map[string]string) error { _, err := api.ParseBidClosed(m); return err },
	api.EventLeaseCreated:     func(m map[string]string) error { _, err := api.ParseLeaseCreated(m); return err },
	api.EventLeaseExtended:    func(m map[string]string) error { _, err := api.ParseLeaseExtended(m); return err },
	api.EventLeaseClosed:      func(m map[string]string) error { _, err := api.ParseLeaseClosed(m); return err },
	api.EventProviderSlashed:  func(m map[string]string) error { _, err := api.ParseProviderSlashed(m); return err },
	api.EventClusterRestarted: func(m map[string]string) error { _, err := api.ParseClusterRestarted(m); return err },
	api.EventVerifyReferee:    func(m map[string]string) error { _, err := api.ParseVerifyReferee(m); return err },
	api.EventVaultStored:      func(m map[string]string) error { _, err := api.ParseVaultStoredDeal(m); return err },
	api.EventVaultShardPlaced: func(m map[string]string) error { _, err := api.ParseVaultShardPlaced(m); return err },
	api.EventVaultPlaced:      func(m map[string]string) error { _, err := api.ParseVaultPlaced(m); return err },
	api.EventVaultUnplaced:    func(m map[string]string) error { _, err := api.ParseVaultUnplaced(m); return err },
	api.EventVaultEnded:       func(m map[string]string) error { _, err := api.ParseVaultEnded(m); return err },
	api.EventVaultProofFailed: func(m map[string]string) error {
		_, err := api.ParseVaultShardEvent(api.EventVaultProofFailed, m)
		return err
	},
	api.EventVaultShardLost: func(m map[string]string) error {
		_, err := api.ParseVaultShardEvent(api.EventVaultShardLost, m)
		return err
	},
	api.EventVaultRepair: func(m map[string]string) error {
		_, err := api.ParseVaultShardEvent(api.EventVaultRepair, m)
		return err
	},
	api.EventVaultRepaired: func(m map[string]string) error {
		_, err := api.ParseVaultShardEvent(api.EventVaultRepaired, m)
		return err
	},
	api.EventVaultEpochPaid:         func(m map[string]string) error { _, err := api.ParseVaultEpochPaid(m); return err },
	api.EventVaultTallied:           func(m map[string]string) error { _, err := api.ParseVaultTallied(m); return err },
	api.EventVaultEpoch:             func(m map[string]string) error { _, err := api.ParseVaultEpoch(m); return err },
	api.EventVaultAttested:          func(m map[string]string) error { _, err := api.ParseVaultAttested(m); return err },
	api.EventVaultHeld:              func(m map[string]string) error { _, err := api.ParseVaultHeld(m); return err },
	api.EventVaultBeacon:            func(m map[string]string) error { _, err := api.ParseVaultBeacon(m); return err },
	api.EventStorageOffered:         func(m map[string]string) error { _, err := api.ParseStorageOffered(m); return err },
	api.EventProviderRewarded:       func(m map[string]string) error { _, err := api.ParseProviderRewarded(m); return err },
	api.EventWorkRewarded:           func(m map[string]string) error { _, err := api.ParseWorkRewarded(m); return err },
	api.EventEpochRewarded:          func(m map[string]string) error { _, err := api.ParseEpochRewarded(m); return err },
	api.EventLeaseForfeited:         refundParser(api.EventLeaseForfeited),
	api.EventLeaseOutvoted:          refundParser(api.EventLeaseOutvoted),
	api.EventVerifyDecided:          refundParser(api.EventVerifyDecided),
	api.EventClusterReserveRefunded: refundParser(api.EventClusterReserveRefunded),
}

func refundParser(typ string) func(map[string]string) error {
	return func(m map[string]string) error {
		_, ok, err := api.ParseRefund(typ, m)
		if !ok {
			return errors.New("not a refund event")
		}
		return err
	}
}

// eventsSeen counts, over every block every test commits, the events each typed parser read.
var eventsSeen = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

// checkEvents parses every event of a committed block that a client parses with a typed parser of ledger/api:
// what the ledger emits and what clients read cannot drift apart without a test failing.
func checkEvents(t testing.TB, res *abci.ResponseFinalizeBlock) {
	t.Helper()
	check := func(evs []abci.Event) {
		for _, e := range evs {
			parse, ok := eventParsers[e.Type]
			if !ok {
				continue
			}
			m := make(map[string]string, len(e.Attributes))
			for _, a := range e.Attributes {
				m[a.Key] = a.Value
			}
			if err := parse(m); err != nil {
				t.Errorf("the ledger emitted an event its clients cannot read: %v (%v)", err, m)
			}
			if e.Type == api.EventLeaseClosed || e.Type == api.EventOrderCancelled || e.Type == api.EventOrderExpired {
				if _, ok, err := api.ParseRefund(e.Type, m); !ok || err != nil {
					t.Errorf("refund of %s does not read: %v", e.Type, err)
				}
			}
			eventsSeen.Lock()
			eventsSeen.n[e.Type]++
			eventsSeen.Unlock()
		}
	}
	for _, r := range res.TxResults {
		check(r.Events)
	}
	check(res.Events)
}

// TestTypedEventsRefuseMalformed plays a hostile or broken node feeding a client: every typed parser refuses a
// missing, zero or malformed id, a malformed amount or address, and an unknown state, naming the attribute.
func TestTypedEventsRefuseMalformed(t *testing.T) {
	tenant, provider := newKey("tenant").addr.String(), newKey("provider").addr.String()
	good := map[string]string{
		api.AttrLeaseID: "7", api.AttrOrderID: "3", api.AttrBidID: "5", api.AttrTenant: tenant, api.AttrProvider: provider,
		api.AttrPrice: "100", api.AttrStartDeadline: "40", api.AttrState: "closed", api.AttrReason: "closed by tenant",
		api.AttrPaid: "10", api.AttrRefund: "90", api.AttrHeld: "0",
		api.AttrObjectID: "9", api.AttrOwner: tenant, api.AttrRoot: strings.Repeat("ab", 32), api.AttrSize: "1000", api.AttrShards: "4",
		api.AttrMonths: "1", api.AttrMaxPrice: "10", api.AttrAmount: "100", api.AttrHeight: "12", api.AttrStripe: "0", api.AttrIndex: "1",
		api.AttrCost: "50", api.AttrCapacity: "1000", api.AttrUsed: "0",
	}
	for _, typ := range []string{api.EventVaultStored, api.EventVaultShardPlaced, api.EventVaultPlaced, api.EventVaultUnplaced, api.EventStorageOffered} {
		if err := eventParsers[typ](good); err != nil {
			t.Fatalf("a well-formed %s does not read: %v", typ, err)
		}
	}
	lc, err := api.ParseLeaseClosed(good)
	if err != nil || lc.LeaseID != 7 || lc.Refund != 90 || lc.State != api.LeaseClosed || lc.Tenant.String() != tenant {
		t.Fatalf("a well-formed lease.closed reads as %+v, %v", lc, err)
	}
	if c, err := api.ParseLeaseCreated(good); err != nil || c.OrderID != 3 || c.BidID != 5 || c.StartDeadline != 40 {
		t.Fatalf("a well-formed lease.created reads as %+v, %v", c, err)
	}
	with := func(key, val string) map[string]string {
		m := map[string]string{}
		for k, v := range good {
			m[k] = v
		}
		if val == "<missing>" {
			delete(m, key)
		} else {
			m[key] = val
		}
		return m
	}
	cases := []struct {
		name, key, val string
		parse          func(map[string]string) error
	}{
		{"missing lease id", api.AttrLeaseID, "<missing>", eventParsers[api.EventLeaseClosed]},
		{"lease id 0", api.AttrLeaseID, "0", eventParsers[api.EventLeaseClosed]},
		{"negative lease id", api.AttrLeaseID, "-1", eventParsers[api.EventLeaseCreated]},
		{"order id with a sign", api.AttrOrderID, "+3", eventParsers[api.EventLeaseCreated]},
		{"refund not a number", api.AttrRefund, "ninety", eventParsers[api.EventLeaseClosed]},
		{"refund over 64 bits", api.AttrRefund, "18446744073709551616", eventParsers[api.EventLeaseClosed]},
		{"missing refund", api.AttrRefund, "<missing>", eventParsers[api.EventLeaseClosed]},
		{"provider not an address", api.AttrProvider, "spare1nothing", eventParsers[api.EventLeaseClosed]},
		{"unknown lease state", api.AttrState, "exploded", eventParsers[api.EventLeaseClosed]},
		{"unknown bid state", api.AttrState, "closed", eventParsers[api.EventBidClosed]},
		{"missing bid id", api.AttrBidID, "<missing>", eventParsers[api.EventBidPlaced]},
		{"refund of an order that is 0", api.AttrOrderID, "0", eventParsers[api.EventOrderCancelled]},
		{"vault object id 0", api.AttrObjectID, "0", eventParsers[api.EventVaultPlaced]},
		{"root not a hash", api.AttrRoot, "<b>root</b>", eventParsers[api.EventVaultShardPlaced]},
		{"owner not an address", api.AttrOwner, "spare1nothing", eventParsers[api.EventVaultStored]},
		{"missing maximum price", api.AttrMaxPrice, "<missing>", eventParsers[api.EventVaultStored]},
		{"missing unplaced reason", api.AttrReason, "<missing>", eventParsers[api.EventVaultUnplaced]},
		{"capacity not a number", api.AttrCapacity, "1e9", eventParsers[api.EventStorageOffered]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.parse(with(tc.key, tc.val))
			var ee *api.EventError
			if !errors.As(err, &ee) || ee.Key != tc.key {
				t.Fatalf("%s = %q: got %v, want an EventError naming %s", tc.key, tc.val, err, tc.key)
			}
			if ee.Missing != (tc.val == "<missing>") {
				t.Errorf("Missing = %v for %q", ee.Missing, tc.val)
			}
		})
	}
	if _, ok, err := api.ParseRefund(api.EventLeasePaid, good); ok || err != nil {
		t.Errorf("lease.paid read as a refund: %v, %v", ok, err)
	}
}

// eventCounts is a copy of eventsSeen's counts.
func eventCounts() map[string]int {
	eventsSeen.Lock()
	defer eventsSeen.Unlock()
	out := make(map[string]int, len(eventsSeen.n))
	for k, v := range eventsSeen.n {
		out[k] = v
	}
	return out
}
