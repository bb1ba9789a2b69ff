package process

import (
	"syscall"
	"testing"
	"time"

	"github.com/sparenet/spare/runtime"
)

// TestReasonWords: a workload's end reason names signals as people know them ("killed by SIGKILL", never the C
// library's "killed by killed") and a duration as it was set ("duration reached (1h)").
func TestReasonWords(t *testing.T) {
	for sig, want := range map[syscall.Signal]string{syscall.SIGKILL: "SIGKILL", syscall.SIGTERM: "SIGTERM", 40: "signal 40"} {
		if got := signalText(sig); got != want {
			t.Errorf("signalText(%d) = %q, want %q", int(sig), got, want)
		}
	}
	for d, want := range map[time.Duration]string{time.Hour: "1h", 90 * time.Minute: "90m", 2 * time.Second: "2s",
		1500 * time.Millisecond: "1.5s", 25 * time.Hour: "25h", 61 * time.Second: "61s"} {
		if got := runtime.DurationText(d); got != want {
			t.Errorf("DurationText(%v) = %q, want %q", d, got, want)
		}
	}
}
