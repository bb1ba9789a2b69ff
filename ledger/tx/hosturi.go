package tx

import (
	"net/netip"
	"strconv"
	"strings"
)

// hostURIExample is the shape every host_uri error suggests.
const hostURIExample = "write https://HOST[:PORT] with a DNS name or an IP address, e.g. https://gpu1.example.net:8443 or https://[2001:db8::1]:8443"

// ValidHostURI checks a provider's host_uri, the address tenants, auditors and the explorer reach it at. It is a
// consensus rule for RegisterProvider and UpdateProvider: "https://", then a DNS name (letters, digits, '-' and
// '.', labels of 1..63 bytes, not all-numeric at the end), an IPv4 address or a bracketed IPv6 address (no zone),
// then an optional ":PORT" (1..65535), then at most "/". No user info, path, query or fragment, and nothing but
// printable ASCII: the value is shown in browsers and terminals and must carry no markup. Stored providers are
// never re-checked, so a value accepted before this rule still decodes.
func ValidHostURI(s string) error {
	bad := func(why string) error {
		return Errorf(CodeInvalidMsg, "host_uri %s: %s; %s", strconv.QuoteToASCII(s), why, hostURIExample)
	}
	if s == "" || len(s) > MaxURILen {
		return Errorf(CodeInvalidMsg, "host_uri must be 1..%d bytes (it has %d); %s", MaxURILen, len(s), hostURIExample)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return bad("only printable ASCII without spaces is allowed (byte " + strconv.Itoa(i) + " is " + strconv.QuoteToASCII(s[i:i+1]) + ")")
		}
	}
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		return bad("the scheme must be https:// (lowercase)")
	}
	rest = strings.TrimSuffix(rest, "/")
	if i := strings.IndexAny(rest, "/?#@\\"); i >= 0 {
		switch rest[i] {
		case '@':
			return bad("user info (name@) is not allowed")
		case '?':
			return bad("a query is not allowed")
		case '#':
			return bad("a fragment is not allowed")
		default:
			return bad("a path other than / is not allowed")
		}
	}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return bad("an IPv6 address needs a closing ]")
		}
		host, port = rest[1:end], rest[end+1:]
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || a.Zone() != "" {
			return bad("[" + host + "] is not an IPv6 address (without a zone)")
		}
		if port != "" {
			var ok bool
			if port, ok = strings.CutPrefix(port, ":"); !ok {
				return bad("only :PORT may follow ]")
			}
			if port == "" {
				return bad("a port must follow ':'")
			}
		}
	} else {
		if i := strings.LastIndexByte(rest, ':'); i >= 0 {
			host, port = rest[:i], rest[i+1:]
			if port == "" {
				return bad("a port must follow ':'")
			}
		}
		if err := validHostName(host); err != "" {
			return bad(err)
		}
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' || strings.ContainsAny(port, "+-") {
			return bad("the port " + strconv.QuoteToASCII(port) + " must be a number 1..65535")
		}
	}
	return nil
}

// validHostName checks an IPv4 address or a DNS name; it returns what is wrong, or "".
func validHostName(h string) string {
	if h == "" {
		return "the host is empty"
	}
	if strings.Contains(h, ":") {
		return "an IPv6 address must be in brackets"
	}
	if a, err := netip.ParseAddr(h); err == nil && a.Is4() {
		return ""
	}
	if len(h) > 253 {
		return "the host name is longer than 253 bytes"
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "the host name " + strconv.QuoteToASCII(h) + " has a label that is empty or longer than 63 bytes"
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return "the host may hold only letters, digits, '-' and '.' (found " + strconv.QuoteToASCII(string(c)) + ")"
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "a host name label may not begin or end with '-'"
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "the host " + strconv.QuoteToASCII(h) + " is neither an IPv4 address nor a DNS name (its last label is all digits)"
	}
	return ""
}
