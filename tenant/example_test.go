package tenant_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/devnet"
	"github.com/sparenet/spare/jobspec"
	"github.com/sparenet/spare/tenant"
)

// Example deploys a job file with the Go SDK, as `spare deploy` does: it starts a development network of its own
// (what `spare dev` runs, in a scratch home), reads and compiles the job file, deploys it with the funded tenant
// key, streams the workload's output and prints how the job ended and the outputs it fetched and verified against
// the provider's signed receipt.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	home, err := os.MkdirTemp("", "spare-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(home)
	ready, stopped := make(chan devnet.Info, 1), make(chan error, 1)
	go func() {
		stopped <- devnet.Run(ctx, devnet.Options{Home: home, NoDocker: true}, func(i devnet.Info) { ready <- i })
	}()
	var dev devnet.Info
	select {
	case dev = <-ready:
	case err := <-stopped:
		panic(err)
	}

	kr, err := keyring.Open(filepath.Join(home, "keys"), keyring.Options{Backend: keyring.BackendTest})
	if err != nil {
		panic(err)
	}
	key, err := kr.Signer("tenant")
	if err != nil {
		panic(err)
	}
	c, err := client.New(dev.RPC, client.Options{})
	if err != nil {
		panic(err)
	}

	// A job file as a tenant writes it (JOBSPEC.md): its manifest and order are compiled from it exactly as
	// `spare deploy` compiles them (tenant.JobFrom keeps replicas and clusters too).
	path := filepath.Join(home, "job.yaml")
	if err := os.WriteFile(path, []byte("name: greeting\nrun: mkdir -p out; echo hello > out/greeting.txt; echo written\noutputs: [out]\n"), 0o644); err != nil {
		panic(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	job, err := jobspec.Parse(path, data)
	if err != nil {
		panic(err) // errors name the line, the field and the fix
	}
	_, manifest, err := job.Manifest(filepath.Dir(path))
	if err != nil {
		panic(err)
	}
	res, err := tenant.New(c, key, nil).Deploy(ctx, tenant.JobFrom(job, manifest),
		tenant.Options{Logs: os.Stdout, OutputsDir: filepath.Join(home, "outputs")})
	if err != nil {
		panic(err) // tenant.ErrNoOffers carries the per-constraint explanation
	}
	fmt.Println(res.Outcome, *res.ExitCode, res.Outputs)
	cancel()
	<-stopped
	// Output:
	// written
	// exited 0 [out/greeting.txt]
}
