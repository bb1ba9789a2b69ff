package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/tenant"
)

// TestProviderTextOnATerminal: text output on a terminal loses escape sequences (a provider's logs, reasons and
// endpoints pass through it); a pipe or a file gets the bytes unchanged.
func TestProviderTextOnATerminal(t *testing.T) {
	const hostile = "reason: \x1b]52;c;ZXZpbA==\x07\x1b[2Jdone\rfake prompt $ \n"
	for _, c := range []struct {
		tty  bool
		want string
	}{
		{true, "reason: done\nfake prompt $ \n"},
		{false, hostile},
	} {
		var out bytes.Buffer
		g := &globals{out: &out, output: "text", isTerminal: func(io.Writer) bool { return c.tty }}
		if err := g.print(nil, func(w io.Writer) { fmt.Fprint(w, hostile) }); err != nil {
			t.Fatal(err)
		}
		if out.String() != c.want {
			t.Errorf("terminal %v: print wrote %q, want %q", c.tty, out.String(), c.want)
		}
		out.Reset()
		w, flush := g.forTerminal(&out)
		io.WriteString(w, hostile[:12])
		io.WriteString(w, hostile[12:])
		if err := flush(); err != nil {
			t.Fatal(err)
		}
		if out.String() != c.want {
			t.Errorf("terminal %v: streamed %q, want %q", c.tty, out.String(), c.want)
		}
	}
}

// ttyReader is a terminal's input as the confirmation sees it: a reader that is also a writer.
type ttyReader struct{ *strings.Reader }

func (ttyReader) Write(p []byte) (int, error) { return len(p), nil }

// TestFeeConfirmation: at a terminal with -o text, the command's first transaction shows its fee and waits for a
// yes; anything else declines it, naming --yes. --yes, -o json or input that is not a terminal never ask.
func TestFeeConfirmation(t *testing.T) {
	for _, c := range []struct {
		name          string
		tty, yes      bool
		output, input string
		asks          bool
		sends         bool
	}{
		{"yes at a terminal", true, false, "text", "y\n", true, true},
		{"YES spelled out", true, false, "text", " Yes \n", true, true},
		{"no", true, false, "text", "n\n", true, false},
		{"just enter", true, false, "text", "\n", true, false},
		{"end of input", true, false, "text", "", true, false},
		{"--yes", true, true, "text", "", false, true},
		{"-o json", true, false, "json", "", false, true},
		{"not a terminal", false, false, "text", "", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			g := &globals{output: c.output, yes: c.yes, stderr: &stderr, isTerminal: func(io.Writer) bool { return c.tty }}
			if c.tty {
				g.stdin = ttyReader{strings.NewReader(c.input)}
			} else {
				g.stdin = strings.NewReader(c.input)
			}
			s := (&client.Client{}).NewSender(nil)
			g.gasOptions(s)
			if (s.Confirm != nil) != c.asks {
				t.Fatalf("asks: %v, want %v", s.Confirm != nil, c.asks)
			}
			if s.Confirm == nil {
				return
			}
			err := s.Confirm(2_600, 5_200_000, []tx.Msg{&tx.CreateOrder{}})
			if (err == nil) != c.sends || err != nil && !strings.Contains(err.Error(), "--yes") {
				t.Fatalf("confirm: %v, want sent %v", err, c.sends)
			}
			if p := stderr.String(); !strings.Contains(p, "create_order: fee 0.0026 SPR for a gas limit of 5200000 (estimated by simulation") || !strings.HasSuffix(p, "Send? [y/N] ") {
				t.Fatalf("prompt %q", p)
			}
			if c.sends { // the rest of the command's transactions are not asked about again
				stderr.Reset()
				if err := s.Confirm(1_000, 1, nil); err != nil || stderr.Len() != 0 {
					t.Fatalf("second transaction: %v, prompt %q", err, stderr.String())
				}
			}
		})
	}
}

// TestProgressOnATerminal: deploy's and attach's progress lines quote the provider (close reasons, errors): on a
// terminal they lose escape sequences; piped, they keep the bytes.
func TestProgressOnATerminal(t *testing.T) {
	const hostile = "closed by the provider: \x1b]52;c;ZXZpbA==\x07\x1b[2Jgone"
	for _, tty := range []bool{true, false} {
		var out bytes.Buffer
		g := &globals{isTerminal: func(io.Writer) bool { return tty }}
		g.progress(&out)(tenant.Event{Stage: "ended", Detail: hostile})
		if leaked := strings.Contains(out.String(), "\x1b]52"); leaked == tty {
			t.Errorf("terminal %v: %q", tty, out.String())
		}
	}
}
