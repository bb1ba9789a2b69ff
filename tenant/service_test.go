package tenant_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/tenant"
)

// TestServiceOnDev deploys examples/service.yaml: the provider gives port 8000 a host port, deploy (choosing by
// score, round trip included) returns once the endpoint answers, the file is served there, and closing the
// lease stops the service and frees the port.
func TestServiceOnDev(t *testing.T) {
	tn, info := startDev(t)
	ctx := context.Background()
	var stages []string
	res, err := tn.Deploy(ctx, loadExample(t, "service.yaml"), tenant.Options{Progress: func(e tenant.Event) { stages = append(stages, e.Stage+": "+e.Detail) }})
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(stages, "\n"))
	}
	ep := res.Endpoints["8000"]
	host, _, _ := net.SplitHostPort(ep)
	if res.State != "active" || ep == "" || host != "127.0.0.1" || res.Provider != info.Provider {
		t.Fatalf("result %+v\n%s", res, strings.Join(stages, "\n"))
	}
	log := strings.Join(stages, "\n")
	for _, want := range []string{"choose: accepting bid", "endpoint: port 8000 is served at " + ep} {
		if !strings.Contains(log, want) {
			t.Fatalf("progress lacks %q:\n%s", want, log)
		}
	}
	resp, err := http.Get("http://" + ep + "/hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello from a spare service\n" {
		t.Fatalf("GET %s/hello.txt: %d %q", ep, resp.StatusCode, body)
	}
	if again, err := tn.Endpoints(ctx, res.LeaseID); err != nil || again["8000"] != ep {
		t.Fatalf("Endpoints = %v %v", again, err)
	}
	if l, _ := tn.Client().Lease(ctx, res.LeaseID); l.State != api.LeaseActive {
		t.Fatalf("the service's lease is %s", l.State)
	}
	if _, err := tn.Sender().Send(ctx, &tx.CloseLease{ID: res.LeaseID}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", ep, time.Second)
		if err != nil {
			break // stopped
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the service still answers at %s after its lease closed", ep)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
