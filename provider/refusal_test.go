package provider

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sparenet/spare/ledger/tx"
)

func TestPermanentRefusals(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{tx.Errorf(tx.CodeBadReceipt, "signature"), true},
		{fmt.Errorf("send: %w", tx.Errorf(tx.CodeUnauthorized, "not yours")), true},
		{tx.Errorf(tx.CodeProviderJailed, "jailed"), true},
		{tx.Errorf(tx.CodeInsufficientFunds, "fee"), false},
		{tx.Errorf(tx.CodeBadNonce, "gap"), false},
		{tx.Errorf(tx.CodeBadLeaseState, "pending"), false},
		{errors.New("dial tcp: connection refused"), false},
	} {
		if got := permanent(tc.err); got != tc.want {
			t.Errorf("permanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
