// Package logtest is for tests: a slog handler that keeps what is logged at Warn and above, each record as its
// message and its attributes, key=value.
package logtest

import (
	"context"
	"log/slog"
	"sync"
)

// Warnings keeps the records logged at Warn and above. Safe for concurrent use.
type Warnings struct {
	mu   sync.Mutex
	seen []string
}

// Logger logs into w.
func (w *Warnings) Logger() *slog.Logger { return slog.New(w) }

func (w *Warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *Warnings) WithAttrs([]slog.Attr) slog.Handler           { return w }
func (w *Warnings) WithGroup(string) slog.Handler                { return w }
func (w *Warnings) Handle(_ context.Context, r slog.Record) error {
	s := r.Message
	r.Attrs(func(a slog.Attr) bool { s += " " + a.Key + "=" + a.Value.String(); return true })
	w.mu.Lock()
	w.seen = append(w.seen, s)
	w.mu.Unlock()
	return nil
}

// Lines is what was logged so far.
func (w *Warnings) Lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.seen...)
}

// Take is what was logged since the last Take, and forgets it.
func (w *Warnings) Take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.seen
	w.seen = nil
	return s
}
