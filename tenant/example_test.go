package tenant_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/jobspec"
	"github.com/sparenet/spare/tenant"
)

// Example deploys a job file with the Go SDK against a running `spare dev` (its home holds the node address and
// the funded tenant key), streams its logs and prints the verified outputs.
func Example() {
	home := filepath.Join(os.Getenv("HOME"), ".spare", "dev")
	kr, err := keyring.Open(filepath.Join(home, "keys"), keyring.Options{Backend: keyring.BackendTest})
	if err != nil {
		panic(err)
	}
	key, err := kr.Signer("tenant")
	if err != nil {
		panic(err)
	}
	c, err := client.New("http://127.0.0.1:26657", client.Options{}) // see home/client.json for the address
	if err != nil {
		panic(err)
	}
	data, err := os.ReadFile("examples/train.yaml")
	if err != nil {
		panic(err)
	}
	job, err := jobspec.Parse("examples/train.yaml", data)
	if err != nil {
		panic(err) // errors name the line, the field and the fix
	}
	_, manifest, err := job.Manifest("examples")
	if err != nil {
		panic(err)
	}
	res, err := tenant.New(c, key, nil).Deploy(context.Background(), tenant.Job{Manifest: manifest, Order: job.Order(manifest)},
		tenant.Options{Logs: os.Stdout})
	if err != nil {
		panic(err) // tenant.ErrNoOffers carries the per-constraint explanation
	}
	fmt.Println(res.State, res.Cost, res.OutputsPath, res.Outputs)
}
