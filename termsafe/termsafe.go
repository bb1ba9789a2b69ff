// Package termsafe makes text that someone else wrote safe to show on a terminal. A provider's logs, error
// messages and status fields reach the tenant's terminal; escape sequences in them could rewrite the screen,
// the window title or the clipboard (OSC 52), hide lines, or fake a prompt. A Writer passes printable text
// (UTF-8 included), newlines and tabs, and removes everything a terminal would interpret:
//
//   - ESC sequences: CSI (ESC [ … final byte), the string sequences OSC, DCS, SOS, PM and APC (up to BEL or ST),
//     and the other two-byte and nF escapes;
//   - C0 controls other than \n and \t (backspace, BEL, shift-in/out, …) and DEL;
//   - C1 controls, as raw bytes or UTF-8 encoded (U+0080..U+009F; U+009B and U+009D start sequences as ESC [ and
//     ESC ] do), and the Unicode bidirectional overrides and isolates that reorder what is shown;
//   - a \r that would return to the start of the line and overwrite it: it becomes a line break (so progress
//     bars stay readable, one state a line); \r\n stays as it is.
//
// Invalid UTF-8 becomes U+FFFD. Use it only for a terminal: piped or redirected output and -o json keep the
// provider's bytes unchanged (Wrap decides).
package termsafe

import (
	"io"
	"unicode/utf8"

	"golang.org/x/term"
)

type state uint8

const (
	ground   state = iota
	esc            // after ESC
	escInter       // ESC, intermediate bytes (0x20..0x2F), waiting for the final byte
	csi            // in a control sequence, waiting for its final byte (0x40..0x7E)
	str            // in a string sequence (OSC, DCS, SOS, PM, APC), waiting for BEL or ST
	strEsc         // ESC inside a string sequence: a '\\' ends it
)

// maxString bounds a string sequence: an unterminated OSC would otherwise swallow the rest of the output.
const maxString = 4096

// Writer removes terminal control sequences from what is written through it (see the package doc). It keeps
// state between writes, so a sequence split across writes is removed whole. Not safe for concurrent use.
type Writer struct {
	w     io.Writer
	st    state
	cr    bool   // a \r is pending: \r\n keeps it, anything else turns it into \n
	n     int    // bytes swallowed in the current string sequence
	carry []byte // an incomplete UTF-8 sequence at the end of the last write
	out   []byte
}

// NewWriter returns a Writer that writes the safe form of its input to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write writes the safe form of p. It reports len(p) once the safe form of what p completes is written.
func (s *Writer) Write(p []byte) (int, error) {
	data := p
	if len(s.carry) > 0 {
		data = append(s.carry, p...)
		s.carry = nil
	}
	s.out = s.out[:0]
	for i := 0; i < len(data); {
		c := data[i]
		if c < utf8.RuneSelf {
			s.byte(c)
			i++
			continue
		}
		if !utf8.FullRune(data[i:]) {
			s.carry = append([]byte(nil), data[i:]...) // a rune split across writes
			break
		}
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size == 1 && c <= 0x9f:
			s.rune(rune(c), nil) // a raw C1 byte, as an 8-bit terminal reads it
		case r == utf8.RuneError && size == 1:
			s.rune(utf8.RuneError, nil)
		default:
			s.rune(r, data[i:i+size])
		}
		i += size
	}
	if len(s.out) > 0 {
		if _, err := s.w.Write(s.out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush ends the stream: a pending \r becomes a line break, an incomplete UTF-8 sequence U+FFFD. An
// unterminated escape sequence stays removed.
func (s *Writer) Flush() error {
	s.out = s.out[:0]
	if len(s.carry) > 0 {
		s.carry = nil
		s.rune(utf8.RuneError, nil)
	}
	if s.cr {
		s.emit()
	}
	if len(s.out) == 0 {
		return nil
	}
	_, err := s.w.Write(s.out)
	return err
}

// emit appends printable output, resolving a pending \r first.
func (s *Writer) emit(b ...byte) {
	if s.cr {
		s.cr = false
		if len(b) > 0 && b[0] == '\n' {
			s.out = append(s.out, '\r')
		} else {
			s.out = append(s.out, '\n')
		}
	}
	s.out = append(s.out, b...)
}

// byte handles one ASCII byte.
func (s *Writer) byte(c byte) {
	switch s.st {
	case esc:
		switch {
		case c == '[':
			s.st = csi
		case c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_':
			s.st, s.n = str, 0
		case c >= 0x20 && c <= 0x2f:
			s.st = escInter
		case c >= 0x30 && c <= 0x7e:
			s.st = ground // a two-byte escape (ESC 7, ESC c, ESC M, …), removed
		default:
			s.st = ground // ESC then a control: drop the ESC, read the control afresh
			s.byte(c)
		}
		return
	case escInter:
		switch {
		case c >= 0x20 && c <= 0x2f:
		case c >= 0x30 && c <= 0x7e:
			s.st = ground
		default:
			s.st = ground
			s.byte(c)
		}
		return
	case csi:
		switch {
		case c >= 0x20 && c <= 0x3f: // parameters and intermediates
		case c >= 0x40 && c <= 0x7e:
			s.st = ground
		default:
			s.st = ground // malformed: drop what came so far, read the byte afresh
			s.byte(c)
		}
		return
	case str, strEsc:
		switch {
		case c == 0x07:
			s.st = ground
		case s.st == strEsc && c == '\\':
			s.st = ground
		case c == 0x1b:
			s.st = strEsc
		case c == '\n':
			s.st = ground // a line break ends what we hide: later lines stay visible
			s.byte(c)
		default:
			s.st = str
			if s.n++; s.n > maxString {
				s.st = ground
			}
		}
		return
	}
	switch {
	case c == 0x1b:
		s.st = esc
	case c == '\r':
		s.cr = true
	case c == '\n' || c == '\t' || c >= 0x20 && c < 0x7f:
		s.emit(c)
	}
	// other C0 controls and DEL are dropped
}

// rune handles one non-ASCII rune; enc is its UTF-8 encoding (nil for U+FFFD or a raw C1 byte).
func (s *Writer) rune(r rune, enc []byte) {
	if s.st == str || s.st == strEsc {
		if r == 0x9c { // ST
			s.st = ground
			return
		}
		s.st = str
		if s.n += 2; s.n > maxString {
			s.st = ground
		}
		return
	}
	if s.st != ground {
		s.st = ground // a sequence interrupted by a non-ASCII rune: drop it, read the rune afresh
	}
	switch {
	case r == 0x9b:
		s.st = csi
		return
	case r == 0x9d || r == 0x90 || r == 0x98 || r == 0x9e || r == 0x9f:
		s.st, s.n = str, 0
		return
	case r >= 0x80 && r <= 0x9f, bidi(r):
		return
	}
	if enc == nil {
		var b [utf8.UTFMax]byte
		enc = b[:utf8.EncodeRune(b[:], r)]
	}
	s.emit(enc...)
}

// bidi reports the Unicode bidirectional embeddings, overrides and isolates, which reorder the text shown.
func bidi(r rune) bool {
	return r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

// String returns the safe form of s.
func String(s string) string {
	var b stringWriter
	w := NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Flush()
	return string(b)
}

type stringWriter []byte

func (b *stringWriter) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }

// IsTerminal reports whether w writes to a terminal (an *os.File, or anything with Fd, on a tty).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// Wrap returns a Writer over w when w is a terminal, else w itself: bytes bound for a pipe or a file pass
// unchanged.
func Wrap(w io.Writer) io.Writer {
	if IsTerminal(w) {
		return NewWriter(w)
	}
	return w
}
