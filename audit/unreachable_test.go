package audit

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestIsUnreachable: a refused connection is "not there" (no verdict); a provider that accepts but does not
// answer in time is not (the deadline judges it).
func TestIsUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = http.Get("http://" + addr + "/proof")
	if err == nil || !isUnreachable(err) {
		t.Fatalf("refused connection: %v, unreachable %v", err, isUnreachable(err))
	}
	slow, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+slow.Addr().String()+"/proof", nil)
	_, err = http.DefaultClient.Do(req)
	if err == nil || isUnreachable(err) {
		t.Fatalf("a provider too slow to answer counted as unreachable: %v", err)
	}
}
