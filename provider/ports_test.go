package provider

import (
	"os"
	"path/filepath"
	"testing"
)

// TestParseProcNet: listening TCP sockets (st 0A) and bound UDP ones (st 07) are read with their port and the
// uid that owns them; connected sockets and other states are not.
func TestParseProcNet(t *testing.T) {
	dir := t.TempDir()
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:7C2D 00000000:0000 0A 00000000:00000000 00:00000000 00000000 2000000007        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:7C2E 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000 2000000008        0 12346 1 0000000000000000 100 0 0 10 0
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0
`
	udp := `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:7C30 00000000:0000 07 00000000:00000000 00:00000000 00000000 2000000009        0 777 2 0000000000000000 0
`
	for name, body := range map[string]string{"tcp": tcp, "udp": udp} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := parseProcNet(filepath.Join(dir, "tcp"), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (socket{port: 0x7C2D, uid: 2000000007}) || got[1] != (socket{port: 22, uid: 0}) {
		t.Fatalf("tcp: %+v", got)
	}
	got, err = parseProcNet(filepath.Join(dir, "udp"), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != (socket{port: 0x7C30, uid: 2000000009, udp: true}) {
		t.Fatalf("udp: %+v", got)
	}
	if !inRanges(0x7C2D, [][2]int{{31000, 31999}}) || inRanges(22, [][2]int{{31000, 31999}}) {
		t.Fatal("inRanges")
	}
}
