package main

import (
	"bytes"
	"fmt"
	"io"
	"testing"
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
