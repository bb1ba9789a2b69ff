package node

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	cmtflags "github.com/cometbft/cometbft/libs/cli/flags"
	cmtlog "github.com/cometbft/cometbft/libs/log"
)

// Levels at which CometBFT's messages reach the slog.Logger. CometBFT logs a
// lot at info (every step of every round), so its info is slog's debug and
// its debug is below that.
const (
	LevelCometDebug = slog.LevelDebug - 4
	LevelCometInfo  = slog.LevelDebug
	LevelCometWarn  = slog.LevelWarn
	LevelCometError = slog.LevelError
)

// NewCometLogger adapts l to CometBFT's log.Logger (see the Level* constants
// for the level mapping). A nil l discards everything.
func NewCometLogger(l *slog.Logger) cmtlog.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return slogAdapter{l: l}
}

// newCometLogger adapts l and applies CometBFT's log_level filter
// (e.g. "info" or "consensus:debug,*:error").
func newCometLogger(l *slog.Logger, logLevel string, stopping *atomic.Bool) (cmtlog.Logger, error) {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	base := slogAdapter{l: l, stopping: stopping}
	if strings.TrimSpace(logLevel) == "" {
		return base, nil
	}
	return cmtflags.ParseLogLevel(logLevel, base, "info")
}

type slogAdapter struct {
	l        *slog.Logger
	stopping *atomic.Bool // set while the node shuts down; nil for loggers made outside Start
}

var _ cmtlog.Logger = slogAdapter{}

func (a slogAdapter) Debug(msg string, keyvals ...any) { a.log(LevelCometDebug, msg, keyvals) }
func (a slogAdapter) Info(msg string, keyvals ...any)  { a.log(LevelCometInfo, msg, keyvals) }
func (a slogAdapter) Warn(msg string, keyvals ...any)  { a.log(LevelCometWarn, msg, keyvals) }
func (a slogAdapter) Error(msg string, keyvals ...any) { a.log(LevelCometError, msg, keyvals) }

func (a slogAdapter) With(keyvals ...any) cmtlog.Logger {
	attrs := toAttrs(keyvals)
	args := make([]any, len(attrs))
	for i, at := range attrs {
		args[i] = at
	}
	return slogAdapter{l: a.l.With(args...), stopping: a.stopping}
}

func (a slogAdapter) log(level slog.Level, msg string, keyvals []any) {
	if level >= LevelCometError && a.stopping != nil && a.stopping.Load() {
		// While the node stops, CometBFT reports its own closing listeners and peers as errors.
		level = LevelCometInfo
	}
	ctx := context.Background()
	if !a.l.Enabled(ctx, level) {
		return // skip formatting CometBFT's (often lazy) values
	}
	a.l.LogAttrs(ctx, level, msg, toAttrs(keyvals)...)
}

// toAttrs turns CometBFT's alternating key/value list into slog attributes.
// Byte slices are shown as upper-case hex (as CometBFT does), Stringers and
// errors are rendered now (CometBFT passes lazy Stringers that JSON handlers
// would otherwise print as {}).
func toAttrs(keyvals []any) []slog.Attr {
	attrs := make([]slog.Attr, 0, (len(keyvals)+1)/2)
	for i := 0; i < len(keyvals); i += 2 {
		var key string
		switch k := keyvals[i].(type) {
		case string:
			key = k
		default:
			key = fmt.Sprint(k)
		}
		if i+1 >= len(keyvals) {
			attrs = append(attrs, slog.String(key, "(MISSING)"))
			break
		}
		attrs = append(attrs, slog.Any(key, logValue(keyvals[i+1])))
	}
	return attrs
}

func logValue(v any) any {
	switch x := v.(type) {
	case nil, string, bool, int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64, float32, float64:
		return x
	case []byte:
		return strings.ToUpper(hex.EncodeToString(x))
	case error:
		return fmt.Sprint(x) // fmt recovers from nil-receiver panics
	case fmt.Stringer:
		return fmt.Sprint(x)
	default:
		return v
	}
}
