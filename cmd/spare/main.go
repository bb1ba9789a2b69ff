// Command spare is the one binary of the Spare GPU marketplace: validator node, local testnets, keys, transfers
// and ledger queries (and, as they land, provider, tenant, auditor and explorer roles).
package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"syscall"

	"github.com/sparenet/spare/ledger/tx"
)

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		err = explain(err)
		g := globalsOf(root)
		var rep reportedError
		var st exitStatus
		switch {
		case errors.As(err, &st) && st.err == nil:
			// The command's output already says it (a job's own non-zero exit code): the status is the message.
		case g != nil && g.output == "json" && errors.As(err, &rep):
			// The JSON output already holds the failure (e.g. spare verify's checks): one document only.
		case g != nil && g.output == "json", wantsJSON(os.Args[1:]):
			printJSONError(os.Stdout, err) // an unknown command fails before its flags are parsed: -o json is read here
		default:
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(exitCode(err))
	}
}

// wantsJSON says whether args ask for -o json (in any of its spellings), for failures that come before the flags
// are parsed (an unknown command).
func wantsJSON(args []string) bool {
	for i, a := range args {
		switch {
		case a == "--":
			return false
		case a == "-ojson", a == "--output=json", a == "-o=json":
			return true
		case (a == "-o" || a == "--output") && i+1 < len(args) && args[i+1] == "json":
			return true
		}
	}
	return false
}

// reportedError is a failure the command's own output already describes.
type reportedError struct{ msg string }

func (e reportedError) Error() string { return e.msg }

// exitStatus makes a command exit with a given status: `spare deploy` returns the job's exit code and its own
// documented codes (see deployExitCode). err, when set, is printed as any error is; without it nothing more is.
type exitStatus struct {
	code int
	err  error
}

func (e exitStatus) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e exitStatus) Unwrap() error { return e.err }

// exitCode is a command's own status when it set one (exitStatus), else 1 for usage and local errors and 2 for a
// ledger rejection.
func exitCode(err error) int {
	var st exitStatus
	if errors.As(err, &st) {
		return st.code
	}
	var te *tx.Error
	if errors.As(err, &te) {
		return 2
	}
	return 1
}

// explain rewrites errors about the environment into what to do about them; others pass unchanged. A node that
// does not answer shows as its address (not the request's hex-encoded URL) and how to point elsewhere.
func explain(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && (errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || ue.Timeout()) {
		node := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil {
			node = u.Scheme + "://" + u.Host
		}
		why := "connection refused"
		if ue.Timeout() {
			why = "no answer in time"
		}
		return exitStatus{code: exitCode(err), err: fmt.Errorf("cannot reach the node at %s (%s): is 'spare dev' (or 'spare node') running? Pass --node URL, or --home DIR for another home", node, why)}
	}
	// The ledger names the failing message of a transaction ("msgs[0] close_lease: ..."): a command sends one
	// message per transaction, so the position and type only repeat what the command already said.
	if msg := err.Error(); firstMsg.MatchString(msg) {
		return rewritten{msg: firstMsg.ReplaceAllString(msg, ""), err: err}
	}
	return err
}

var firstMsg = regexp.MustCompile(`msgs\[0\] [a-z_]+: `)

// rewritten is an error said more plainly, with the original kept for errors.Is/As (its code, its exit status).
type rewritten struct {
	msg string
	err error
}

func (r rewritten) Error() string { return r.msg }
func (r rewritten) Unwrap() error { return r.err }
