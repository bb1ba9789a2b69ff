package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/devnet"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/node"
	"github.com/sparenet/spare/termsafe"
)

// globals are the flags every command shares.
type globals struct {
	home           string
	output         string
	nodeURL        string
	keyringBackend string
	logLevel       string
	out            io.Writer
	homeFromEnv    bool
	key            string // default signing key of client commands (from the home's client.json)
	// isTerminal says whether a writer is a terminal (termsafe.IsTerminal; tests replace it).
	isTerminal func(io.Writer) bool
	stderr     io.Writer // warnings (os.Stderr; tests replace it)
	devHome    bool      // the home is one `spare dev` made (it holds client.json)
	command    string    // the running command's path, e.g. "spare keys add"
	warned     bool      // the unencrypted-keys warning was given
	// Gas of the transactions a client command sends (--gas, --gas-adjustment, --gas-prices).
	gas           string
	gasLimit      uint64 // --gas as a number; 0 for auto
	gasAdjustment float64
	gasPrice      uint64
	yes           bool        // --yes: send without asking
	stdin         io.Reader   // the answer to a confirmation (os.Stdin; tests replace it)
	confirmed     bool        // the command's first transaction was confirmed: the rest of its work goes on
	prompting     atomic.Bool // a confirmation is waiting for its answer (Ctrl-C then ends the command at once)
}

// keyWriting are the commands that create keys or run a real node or provider on them: they never fall back to
// the dev network's home, whose keys are stored unencrypted.
var keyWriting = map[string]bool{
	"spare keys add": true, "spare init": true, "spare provider init": true, "spare provider start": true,
}

type globalsKey struct{}

func newRootCmd() *cobra.Command {
	g := &globals{out: os.Stdout, isTerminal: termsafe.IsTerminal, stderr: os.Stderr, stdin: os.Stdin}
	root := &cobra.Command{
		Use:   "spare",
		Short: "Spare: a decentralized marketplace for spare GPU compute",
		Long: `spare dev           a whole network in one process: validator, provider, explorer and funded keys
spare deploy FILE   in another terminal: run a job file on it (examples/; the format: 'spare jobspec schema')

Spare joins idle GPUs and AI developers through a shared ledger that no single company runs. For a network
of your own, 'spare init' and 'spare node' run a validator, 'spare provider init|start' a provider.

The home (node, keys, config) is --home, else $SPARE_HOME, else ~/.spare; when it holds no node of its own
but its dev/ holds the network 'spare dev' made, client commands use dev/. At a terminal, a command shows a
transaction's fee and asks before sending it: --yes sends without asking. Every command takes -o json;
'spare version' says which build this is.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			switch g.output {
			case "text", "json":
			default:
				return fmt.Errorf("--output %q: use text or json", g.output)
			}
			switch g.keyringBackend {
			case string(keyring.BackendFile), string(keyring.BackendTest):
			default:
				return fmt.Errorf("--keyring-backend %q: use file (encrypted) or test (unencrypted, for tests only)", g.keyringBackend)
			}
			if _, err := parseLevel(g.logLevel); err != nil {
				return err
			}
			if err := g.parseGas(); err != nil {
				return err
			}
			g.command = cmd.CommandPath()
			// A home made by `spare dev` says where its node is and which keyring and key to use. Its keys are
			// unencrypted: it is used by default only for the commands that work on the dev network; a command
			// that creates keys or runs a real provider or node there must be given it explicitly.
			wait := 2 * time.Minute // a client command run just after `spare dev` started meets the whole network
			if g.command == "spare dev" {
				wait = 0
			}
			cc, err := devnet.WaitReady(g.home, wait, func() {
				fmt.Fprintf(g.stderr, "spare dev on %s is starting: waiting for its providers to be ready…\n", g.home)
			})
			if err == nil {
				g.devHome = true
				explicit := cmd.Flags().Changed("home") || g.homeFromEnv && g.home == baseHome()
				if !explicit && keyWriting[g.command] {
					return fmt.Errorf("%s is the home 'spare dev' made, and its keys are stored unencrypted: '%s' does not use it unless told to. "+
						"For real keys (encrypted with a passphrase) pass --home DIR with another directory; to work on the dev network on purpose, pass --home %s",
						g.home, g.command, g.home)
				}
				if !cmd.Flags().Changed("keyring-backend") {
					g.keyringBackend = cc.KeyringBackend
				}
				if g.nodeURL == "" {
					g.nodeURL = cc.Node
				}
				g.key = cc.Key
			}
			return nil
		},
	}
	root.Version = buildVersion() // --version prints what 'spare version' does (version.go)
	root.SetVersionTemplate(versionTemplate)
	root.InitDefaultVersionFlag() // now, so that 'spare --version -o json' parses
	root.SetContext(context.WithValue(context.Background(), globalsKey{}, g))
	f := root.PersistentFlags()
	g.homeFromEnv = os.Getenv("SPARE_HOME") != ""
	f.StringVar(&g.home, "home", defaultHome(), "directory of the node, keys and config (default: ~/.spare, or ~/.spare/dev when only 'spare dev' has run)")
	f.StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	f.StringVar(&g.nodeURL, "node", "", "node RPC address (default: the RPC address in the home's config.toml)")
	f.StringVar(&g.keyringBackend, "keyring-backend", "file", "key storage: file (passphrase-encrypted) or test (unencrypted)")
	f.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&g.gas, "gas", "auto", "gas limit of each transaction sent: auto (simulate it first and add --gas-adjustment) or a number")
	f.Float64Var(&g.gasAdjustment, "gas-adjustment", client.DefaultGasAdjustment, "with --gas auto, the simulated gas is multiplied by this (at least 1)")
	f.Uint64Var(&g.gasPrice, "gas-prices", 0, "gas price offered, in uspr per million gas (default: the chain's floor, params.min_gas_price; a node may ask more)")
	f.BoolVar(&g.yes, "yes", false, "send transactions without showing their fee and asking first (asked only on a terminal, with -o text)")
	root.AddCommand(newInitCmd(g), newNodeCmd(g), newTestnetCmd(g), newKeysCmd(g), newBalanceCmd(g), newSendCmd(g), newQueryCmd(g), newProviderCmd(g), newDevCmd(g), newExplorerCmd(g), newVerifyCmd(g), newAuditorCmd(g), newProofCmd(g),
		newLeasesCmd(g), newStatusCmd(g), newLogsCmd(g), newCloseCmd(g), newTopUpCmd(g), newExtendCmd(g), newOutputsCmd(g), newOffersCmd(g), newDeployCmd(g), newAttachCmd(g), newCancelCmd(g), newJobspecCmd(g), newVersionCmd(g), newStoreCmd(g), newRewardsCmd(g))
	return root
}

// parseGas checks --gas and --gas-adjustment before the command does anything.
func (g *globals) parseGas() error {
	g.gasLimit = 0
	if g.gas != "auto" {
		n, err := strconv.ParseUint(g.gas, 10, 64)
		if err != nil || n == 0 {
			return fmt.Errorf("--gas %q: write auto (estimate by simulation) or a gas limit such as 300000", g.gas)
		}
		g.gasLimit = n
	}
	if g.gasAdjustment < 1 || g.gasAdjustment > 10 {
		return fmt.Errorf("--gas-adjustment %g: use a margin between 1 and 10 (1.3 is the default)", g.gasAdjustment)
	}
	return nil
}

// gasOptions applies --gas, --gas-adjustment and --gas-prices (checked by parseGas) to a sender, and asks
// before the command's first transaction when a person is at a terminal (see confirm).
func (g *globals) gasOptions(s *client.Sender) {
	s.Gas, s.GasAdjustment, s.GasPrice = g.gasLimit, g.gasAdjustment, g.gasPrice
	if !g.yes && g.output == "text" && g.stdinTerminal() && g.isTerminal(g.stderr) {
		s.Confirm = g.confirm
	}
}

// stdinTerminal reports whether the confirmation's answer would come from a person at a terminal.
func (g *globals) stdinTerminal() bool {
	w, ok := g.stdin.(io.Writer) // *os.File is both
	return ok && g.isTerminal(w)
}

// confirm shows a transaction's fee and asks whether to send it, as the Cosmos CLI does before signing. Only the
// command's first transaction is asked about: the rest (a deploy's top-ups and cancellation) are part of what
// was agreed to, and their fees are reported as they go.
func (g *globals) confirm(fee, gas uint64, msgs []tx.Msg) error {
	if g.confirmed {
		return nil
	}
	types := make([]string, len(msgs))
	for i, m := range msgs {
		types[i] = m.Type().String()
	}
	how := "estimated by simulation, with --gas-adjustment"
	if g.gasLimit != 0 {
		how = "set by --gas"
	}
	fmt.Fprintf(g.stderr, "%s: fee %s for a gas limit of %d (%s). Send? [y/N] ", strings.Join(types, ", "), client.FormatAmount(fee), gas, how)
	g.prompting.Store(true)
	line, _ := bufio.NewReader(g.stdin).ReadString('\n')
	g.prompting.Store(false)
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		g.confirmed = true
		return nil
	}
	return fmt.Errorf("not sent: the transaction was declined at the fee prompt (pass --yes to send without asking)")
}

func globalsOf(cmd *cobra.Command) *globals {
	if cmd.Context() == nil {
		return nil
	}
	g, _ := cmd.Context().Value(globalsKey{}).(*globals)
	return g
}

// baseHome is $SPARE_HOME, else ~/.spare.
func baseHome() string {
	if h := os.Getenv("SPARE_HOME"); h != "" {
		return h
	}
	dir, err := os.UserHomeDir()
	if err != nil {
		return ".spare"
	}
	return filepath.Join(dir, ".spare")
}

// defaultHome is the base home, unless it holds no node of its own and `spare dev` has made its network: then
// client commands talk to the dev network.
func defaultHome() string {
	base := baseHome()
	if _, err := os.Stat(filepath.Join(base, "config", "genesis.json")); err != nil {
		if _, err := os.Stat(filepath.Join(base, "dev", devnet.ClientConfigFile)); err == nil {
			return filepath.Join(base, "dev")
		}
	}
	return base
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: use debug, info, warn or error", s)
	}
	return l, nil
}

// logger writes structured logs to stderr.
func (g *globals) logger() *slog.Logger {
	l, _ := parseLevel(g.logLevel)
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

func (g *globals) keysDir() string   { return filepath.Join(g.home, "keys") }
func (g *globals) ledgerDir() string { return filepath.Join(g.home, "data", "ledger") }

func (g *globals) keyring() (*keyring.Keyring, error) {
	if !keyWriting[g.command] {
		// Only the commands that make keys create a home: any other, pointed at a directory with no keys, says
		// where it looked and what to do instead of making an empty one.
		if _, err := os.Stat(g.keysDir()); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no Spare keys at %s: run 'spare dev' for a local network with funded keys, 'spare keys add NAME' to make a key, or pass --home DIR (or set SPARE_HOME) for another home", g.keysDir())
		}
	}
	kr, err := keyring.Open(g.keysDir(), keyring.Options{
		Backend:    keyring.Backend(g.keyringBackend),
		Passphrase: passphrase(),
	})
	if err != nil {
		return nil, err
	}
	g.warnUnencrypted()
	return kr, nil
}

// warnUnencrypted says loudly on stderr, once, that the keys in use are stored unencrypted: whenever the test
// backend is used outside a home made by `spare dev`, and whenever a key is created in one.
func (g *globals) warnUnencrypted() {
	if g.warned || g.keyringBackend != string(keyring.BackendTest) || g.devHome && !keyWriting[g.command] {
		return
	}
	g.warned = true
	w := g.stderr
	if w == nil {
		w = os.Stderr
	}
	where := "outside a 'spare dev' home"
	if g.devHome {
		where = "in a 'spare dev' home"
	}
	fmt.Fprintf(w, "WARNING: the keys in %s are stored UNENCRYPTED (test keyring backend, %s): anyone who can read that "+
		"directory can spend their funds. Use them only on throwaway test networks; keep real keys in the default, "+
		"passphrase-encrypted backend (leave out --keyring-backend test and pass --home DIR).\n", g.keysDir(), where)
}

// passphrase reads SPARE_PASSPHRASE when set, else asks on the terminal.
func passphrase() func(string) ([]byte, error) {
	env := keyring.PassphraseFromEnv("SPARE_PASSPHRASE")
	term := keyring.PassphraseFromTerminal()
	return func(prompt string) ([]byte, error) {
		if os.Getenv("SPARE_PASSPHRASE") != "" {
			return env(prompt)
		}
		p, err := term(prompt)
		if err != nil {
			return nil, fmt.Errorf("%w: run on a terminal, or set SPARE_PASSPHRASE to the key's passphrase", err)
		}
		return p, nil
	}
}

// client connects to --node, or to the RPC address of the home's node.
func (g *globals) client() (*client.Client, error) {
	url := g.nodeURL
	if url == "" {
		conf, err := node.LoadConfig(g.home)
		if err != nil {
			return nil, fmt.Errorf("no --node given and no node config in %s (%v): pass --node http://host:26657 or --home", g.home, err)
		}
		url = strings.Replace(conf.RPC.ListenAddress, "tcp://", "http://", 1)
		url = strings.Replace(url, "0.0.0.0", "127.0.0.1", 1)
	}
	return client.New(url, client.Options{Logger: g.logger()})
}

// resolveAddress takes a key name or a bech32 address.
func (g *globals) resolveAddress(s string) (tx.Address, error) {
	if strings.HasPrefix(s, tx.HRP+"1") {
		return tx.ParseAddress(s)
	}
	kr, err := g.keyring()
	if err != nil {
		return tx.Address{}, err
	}
	info, err := kr.Show(s)
	if err != nil {
		if errors.Is(err, keyring.ErrNotFound) {
			return tx.Address{}, fmt.Errorf("%q is neither a key in %s nor a spare1... address: see 'spare keys list'", s, g.keysDir())
		}
		return tx.Address{}, err
	}
	return info.Address, nil
}

// print writes v as JSON with -o json, else calls text (through termsafe on a terminal: the text may quote what
// a provider or the ledger holds, a close reason, an endpoint, a host).
func (g *globals) print(v any, text func(w io.Writer)) error {
	if g.output == "json" {
		enc := json.NewEncoder(g.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	w, flush := g.forTerminal(g.out)
	text(w)
	return flush()
}

// forTerminal returns w itself, or, when w is a terminal, w through a termsafe.Writer: text a provider wrote (a
// workload's logs, its errors) may carry escape sequences that rewrite the screen, the window title or the
// clipboard. Bytes bound for a pipe or a file pass unchanged. flush ends the stream.
func (g *globals) forTerminal(w io.Writer) (_ io.Writer, flush func() error) {
	if g.isTerminal == nil || !g.isTerminal(w) {
		return w, func() error { return nil }
	}
	s := termsafe.NewWriter(w)
	return s, s.Flush
}

func printJSONError(w io.Writer, err error) {
	out := map[string]any{"error": err.Error()}
	var te *tx.Error
	if errors.As(err, &te) {
		out["code"] = uint32(te.Code)
		out["code_name"] = te.Code.String()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}
