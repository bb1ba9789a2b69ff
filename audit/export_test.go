package audit

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// ProbeCached is an epoch's probe, the provider's record kept in view between probes (benchmarks).
func (a *Auditor) ProbeCached(ctx context.Context, addr tx.Address, view *atomic.Pointer[api.ProviderView], timeout time.Duration) error {
	return a.probeCached(ctx, addr, view, timeout)
}

// NoResumption makes a's challenges do full TLS handshakes, as before session resumption (benchmarks).
func (a *Auditor) NoResumption() { a.sessions = nil }
