package tenant_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/tenant"
)

// TestClusterLogLinesOnDev: a cluster's lines come with each member's rank and lease, each line's stream and
// the time its provider read it; one member's lines alone, and its last one, by StreamLogLines.
func TestClusterLogLinesOnDev(t *testing.T) {
	tn, _ := devCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	job := cpuJob(t, `echo "out $RANK"; echo "err $RANK" >&2; sleep 0.2; echo "last $RANK"`, 10*api.USPR, api.USPR)
	job.Cluster = &tenant.Cluster{Nodes: 2, MaxRTTMicros: 5000}
	var logs bytes.Buffer
	t0 := time.Now()
	res, err := tn.Deploy(ctx, job, tenant.Options{Logs: &logs, OutputsDir: t.TempDir()})
	if err != nil || len(res.Members) != 2 {
		t.Fatalf("%v %+v\n%s", err, res, logs.String())
	}
	var got []string
	err = tn.StreamClusterLogLines(ctx, res.Members[0].OrderID, tenant.LogQuery{}, func(l tenant.ClusterLogLine) error {
		if l.Time.Before(t0.Add(-time.Second)) || l.Time.After(time.Now()) || l.LeaseID != res.Members[l.Rank].LeaseID {
			t.Errorf("line %+v (deploy started %v)", l, t0)
		}
		got = append(got, fmt.Sprintf("%d %s %s", l.Rank, l.Stream, l.Text))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{"0 stderr err 0", "0 stdout last 0", "0 stdout out 0", "1 stderr err 1", "1 stdout last 1", "1 stdout out 1"}
	if !slices.Equal(got, want) {
		t.Fatalf("cluster lines %q, want %q", got, want)
	}
	m := res.Members[1]
	var last []tenant.LogLine
	if err := tn.StreamLogLines(ctx, m.LeaseID, tenant.LogQuery{Tail: 1}, func(l tenant.LogLine) error {
		last = append(last, l)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(last) != 1 || last[0].Text != "last 1" || last[0].Stream != "stdout" {
		t.Fatalf("tail 1 of rank 1: %+v", last)
	}
	// The plain form is unchanged: the log's bytes.
	var plain bytes.Buffer
	if err := tn.StreamLogs(ctx, m.LeaseID, false, &plain); err != nil || !strings.HasSuffix(plain.String(), "last 1\n") {
		t.Fatalf("plain: %v %q", err, plain.String())
	}
}
