package provider_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// decisions keeps the daemon's log records that name an order (its bidding decisions), so that a test waits for
// the daemon to have decided about an order instead of sleeping and asserting that nothing happened meanwhile.
type decisions struct {
	mu   sync.Mutex
	seen map[uint64][]string // order -> messages
}

func newDecisions() *decisions { return &decisions{seen: map[uint64][]string{}} }

// logger is a logger whose records go to d (and nowhere else).
func (d *decisions) logger() *slog.Logger { return slog.New(decisionHandler{d: d}) }

// decided says whether the daemon logged a message starting with prefix about order.
func (d *decisions) decided(order uint64, prefix string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range d.seen[order] {
		if strings.HasPrefix(m, prefix) {
			return true
		}
	}
	return false
}

// waitDecided waits until the daemon has logged a decision starting with prefix about each order.
func (e *env) waitDecided(d *decisions, prefix string, orders ...uint64) {
	e.t.Helper()
	for _, o := range orders {
		e.waitFor(30*time.Second, fmt.Sprintf("the daemon's decision %q on order %d", prefix, o), func() bool { return d.decided(o, prefix) })
	}
}

type decisionHandler struct {
	d     *decisions
	attrs []slog.Attr
}

func (h decisionHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h decisionHandler) Handle(_ context.Context, r slog.Record) error {
	var order uint64
	find := func(a slog.Attr) bool {
		if a.Key == "order" && a.Value.Kind() == slog.KindUint64 {
			order = a.Value.Uint64()
		}
		return true
	}
	for _, a := range h.attrs {
		find(a)
	}
	r.Attrs(find)
	if order != 0 {
		h.d.mu.Lock()
		h.d.seen[order] = append(h.d.seen[order], r.Message)
		h.d.mu.Unlock()
	}
	return nil
}

func (h decisionHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return decisionHandler{d: h.d, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h decisionHandler) WithGroup(string) slog.Handler { return h }
