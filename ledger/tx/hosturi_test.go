package tx

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

func TestValidHostURI(t *testing.T) {
	long := "https://" + strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + ".example.net:8443"
	for _, c := range []struct {
		uri  string
		want string // "" = accepted; else a fragment of the error
	}{
		{"https://gpu1.example.net:8443", ""},
		{"https://gpu1.example.net", ""},
		{"https://gpu1.example.net/", ""},
		{"https://GPU-1.Example.NET:443", ""},
		{"https://localhost:8443", ""},
		{"https://127.0.0.1:8443", ""},
		{"https://[2001:db8::1]:8443", ""},
		{"https://[::1]", ""},
		{"https://[::ffff:10.0.0.1]:8443", ""},
		{long, ""},

		{"", "1..256 bytes"},
		{"https://" + strings.Repeat("a", 250) + ".net", "1..256 bytes"},
		{`https://x"><script>`, "only letters, digits"},
		{`https://x"><script>alert(1)</script>`, "path other than /"},
		{`https://x"><img src=x onerror=alert(1)>`, "printable ASCII without spaces"},
		{`https://x"onmouseover="alert(1)`, "only letters, digits"},
		{"https://x'y:8443", "only letters, digits"},
		{"https://x<y", "only letters, digits"},
		{"javascript:alert(1)", "scheme must be https://"},
		{"http://gpu1.example.net:8443", "scheme must be https://"},
		{"HTTPS://gpu1.example.net:8443", "scheme must be https://"},
		{"https:gpu1.example.net", "scheme must be https://"},
		{"https://user:pw@gpu1.example.net:8443", "user info"},
		{"https://user@gpu1.example.net", "user info"},
		{"https://gpu1.example.net:8443/api", "path other than /"},
		{"https://gpu1.example.net:8443//", "path other than /"},
		{`https://gpu1.example.net\@evil.example`, "path other than /"},
		{"https://gpu1.example.net:8443?x=1", "query"},
		{"https://gpu1.example.net:8443#top", "fragment"},
		{"https://gpu1 .example.net", "printable ASCII without spaces"},
		{"https://gpu1.example.net:8443\n", "printable ASCII without spaces"},
		{"https://gpu1.example.net\x1b[31m", "printable ASCII without spaces"},
		{"https://gpü.example.net", "printable ASCII without spaces"},
		{"https://xn--gp-lka.example.net", ""}, // the punycode form is how a unicode name is written
		{"https://\u202egpu.example.net", "printable ASCII without spaces"},
		{"https://", "host is empty"},
		{"https://:8443", "host is empty"},
		{"https://gpu1.example.net:", "a port must follow"},
		{"https://gpu1.example.net:0", "1..65535"},
		{"https://gpu1.example.net:65536", "1..65535"},
		{"https://gpu1.example.net:08443", "1..65535"},
		{"https://gpu1.example.net:+8443", "1..65535"},
		{"https://gpu1.example.net:https", "1..65535"},
		{"https://gpu1..example.net", "label that is empty"},
		{"https://gpu1.example.net.", "label that is empty"},
		{"https://-gpu1.example.net", "begin or end with '-'"},
		{"https://gpu_1.example.net", "only letters, digits"},
		{"https://" + strings.Repeat("a", 64) + ".net", "longer than 63"},
		{"https://1.2.3", "last label is all digits"},
		{"https://999.1.1.1", "last label is all digits"},
		{"https://2001:db8::1", "in brackets"},
		{"https://[2001:db8::1", "closing ]"},
		{"https://[fe80::1%25eth0]:8443", "IPv6 address"},
		{"https://[10.0.0.1]:8443", "IPv6 address"},
		{"https://[::1]x", "only :PORT"},
		{"https://[::1]:", "a port must follow"},
	} {
		err := ValidHostURI(c.uri)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v, want accepted", c.uri, err)
		case c.want != "" && err == nil:
			t.Errorf("%q accepted, want an error with %q", c.uri, c.want)
		case c.want != "":
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "host_uri") || !errors.Is(err, CodeInvalidMsg) {
				t.Errorf("%q: %v, want invalid_msg naming host_uri with %q", c.uri, err, c.want)
			}
			for _, r := range err.Error() {
				if r < ' ' || r > '~' {
					t.Errorf("%q: the error %q carries a raw control or non-ASCII character", c.uri, err)
					break
				}
			}
		}
	}
}

// TestProviderMsgsCheckHostURI: both messages that set host_uri refuse a hostile one, and a stored provider
// with one still decodes (validation is for new messages only).
func TestProviderMsgsCheckHostURI(t *testing.T) {
	hw := Hardware{CPUMilli: 1000, MemoryMiB: 1024, DiskMiB: 1024}
	info := ProviderInfo{HostURI: `https://x"><script>`, CertFingerprint: sha256.Sum256([]byte("c")), Region: "eu", Hardware: hw}
	for _, m := range []Msg{&RegisterProvider{ProviderInfo: info}, &UpdateProvider{ProviderInfo: info}} {
		if err := m.ValidateBasic(); err == nil || !strings.Contains(err.Error(), "host_uri") {
			t.Errorf("%T with a hostile host_uri: %v, want refused", m, err)
		}
	}
	w := NewWriter(64)
	EncodeProviderInfo(w, &info)
	var back ProviderInfo
	r := NewReader(w.Bytes())
	DecodeProviderInfo(r, &back)
	if err := r.Err(); err != nil || back.HostURI != info.HostURI {
		t.Fatalf("a stored provider no longer decodes: %v %q", err, back.HostURI)
	}
}
