// Command spare is the one binary of the Spare GPU marketplace: validator node, local testnets, keys, transfers
// and ledger queries (and, as they land, provider, tenant, auditor and explorer roles).
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/sparenet/spare/ledger/tx"
)

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		g := globalsOf(root)
		var rep reportedError
		switch {
		case g != nil && g.output == "json" && errors.As(err, &rep):
			// The JSON output already holds the failure (e.g. spare verify's checks): one document only.
		case g != nil && g.output == "json":
			printJSONError(os.Stdout, err)
		default:
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(exitCode(err))
	}
}

// reportedError is a failure the command's own output already describes.
type reportedError struct{ msg string }

func (e reportedError) Error() string { return e.msg }

// exitCode is 1 for usage and local errors, 2 for a ledger rejection.
func exitCode(err error) int {
	var te *tx.Error
	if errors.As(err, &te) {
		return 2
	}
	return 1
}
