package provider

import (
	"strconv"
	"testing"

	"github.com/sparenet/spare/client"
)

// TestAttrIDRefusesWhatIsNotAnID: an event's id attribute that is missing, empty, zero, negative, not a number or
// past 64 bits is an error naming the event and the attribute — the daemon ignores the event rather than act on
// order or lease 0 — and a well-formed one reads.
func TestAttrIDRefusesWhatIsNotAnID(t *testing.T) {
	for _, v := range []string{"", "0", "-3", "7x", "0x10", "18446744073709551616", " 7"} {
		e := client.Event{Type: "lease.closed", Attrs: map[string]string{"lease_id": v}}
		if id, err := attrID(e, "lease_id"); err == nil {
			t.Errorf("lease_id %q read as %d", v, id)
		} else if want := `ledger event lease.closed: lease_id = ` + strconv.Quote(v); err.Error()[:len(want)] != want {
			t.Errorf("lease_id %q: %v", v, err)
		}
	}
	if _, err := attrID(client.Event{Type: "order.created", Attrs: map[string]string{}}, "order_id"); err == nil {
		t.Error("a missing order_id read")
	}
	if id, err := attrID(client.Event{Type: "order.created", Attrs: map[string]string{"order_id": "42"}}, "order_id"); err != nil || id != 42 {
		t.Errorf("order_id 42: %d %v", id, err)
	}
}
