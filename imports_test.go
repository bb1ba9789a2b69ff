package spare_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/sparenet/spare"

// eachPackage calls fn with every non-test package of the tree (its directory, relative to the module, and its
// files parsed up to their imports, comments included): the walk TestImportsFollowArchitecture and
// TestEveryPackageHasDoc share.
func eachPackage(t *testing.T, fn func(dir string, p *ast.Package)) {
	t.Helper()
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		pkgs, err := parser.ParseDir(token.NewFileSet(), path, func(fi os.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		for _, p := range pkgs {
			fn(path, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// importsOf is every non-test package of the tree (by its import path) with the packages its non-test files import.
func importsOf(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	eachPackage(t, func(path string, p *ast.Package) {
		pkgPath := module
		if path != "." {
			pkgPath += "/" + filepath.ToSlash(path)
		}
		for _, f := range p.Files {
			for _, imp := range f.Imports {
				s, _ := strconv.Unquote(imp.Path.Value)
				if !slices.Contains(out[pkgPath], s) {
					out[pkgPath] = append(out[pkgPath], s)
				}
			}
		}
	})
	return out
}

// ledgerModules are the ledger's module packages (ARCHITECTURE.md): each a keeper, wired by the app.
var ledgerModules = []string{"bank", "providers", "market", "settle", "verify", "cluster", "trust", "retention", "storage", "rewards"}

// under says whether package p is dir or inside it (dir relative to the module).
func under(p, dir string) bool {
	full := module + "/" + dir
	return p == full || strings.HasPrefix(p, full+"/")
}

// TestImportsFollowArchitecture enforces the directions ARCHITECTURE.md draws, so that a change cannot quietly tie the
// layers together:
//   - the ledger (ledger/..., and match, which consensus runs) imports no other Spare package, and nothing that
//     reads the clock, draws randomness, runs programs or speaks HTTP: its state is a function of the blocks alone;
//   - the wire packages (ledger/tx, ledger/store) import no other Spare package;
//   - inside the ledger: ledger/api imports only the wire (and match); ledger/schema only api and the wire; the
//     kernel only those and the store; a module (bank, providers, market, settle, verify, cluster, trust,
//     retention) never imports another module or the app (it declares the methods it needs in its keeper, and
//     reacts through the kernel's hooks); only the app (package ledger) imports the modules;
//   - clients (everything but the ledger, the node, the dev network, the commands, the benchmarks, the fault
//     suite and the test network) import of the ledger only ledger/api and ledger/tx;
//   - runtimes (runtime/...) know nothing of the ledger, its clients or the provider;
//   - clients (client, tenant, offers, explorer) never import the node, the provider daemon or the ledger's store;
//   - flags and the CLI framework live in cmd/ and in the benchmark programs only;
//   - the test helpers of internal/ (localnet, proctest, testimage, logtest) and runtime/internal/readonlytest are
//     imported by no production package.
func TestImportsFollowArchitecture(t *testing.T) {
	imports := importsOf(t)
	if len(imports) < 30 {
		t.Fatalf("only %d packages found: the walk is broken", len(imports))
	}
	spare := func(imp string) bool { return imp == module || strings.HasPrefix(imp, module+"/") }
	type rule struct {
		who    func(p string) bool
		forbid func(imp string) bool
		why    string
	}
	ledgerPkg := func(p string) bool { return under(p, "ledger") || p == module+"/match" }
	ledgerModule := func(p string) bool {
		for _, m := range ledgerModules {
			if p == module+"/ledger/"+m {
				return true
			}
		}
		return false
	}
	// client: every package outside the validator's side (the ledger and match, the node, the dev network, the
	// commands, the benchmark programs, the fault suite, the test network that runs the real ledger).
	client := func(p string) bool {
		for _, d := range []string{"ledger", "node", "devnet", "cmd", "bench", "faults", "internal/localnet"} {
			if under(p, d) {
				return false
			}
		}
		return p != module+"/match" && p != module
	}
	rules := []rule{
		{ledgerPkg, func(imp string) bool {
			return spare(imp) && !under(imp, "ledger") && imp != module+"/match" && imp != module+"/vault/layout"
		}, "the ledger imports no other Spare package (but the Vault's layout, to validate manifests)"},
		{ledgerPkg, func(imp string) bool {
			return slices.Contains([]string{"time", "math/rand", "math/rand/v2", "crypto/rand", "os/exec", "net/http"}, imp)
		}, "the ledger is deterministic: block time only, no randomness, no programs, no HTTP"},
		{func(p string) bool { return p == module+"/ledger/tx" || p == module+"/ledger/store" }, spare,
			"the wire and storage packages import no other Spare package"},
		{func(p string) bool { return p == module+"/ledger/api" }, func(imp string) bool {
			return spare(imp) && imp != module+"/ledger/tx" && imp != module+"/match"
		}, "the ledger's client API imports only the wire (and match)"},
		{func(p string) bool { return p == module+"/ledger/schema" }, func(imp string) bool {
			return spare(imp) && imp != module+"/ledger/tx" && imp != module+"/ledger/api" && imp != module+"/vault/layout"
		}, "the state's layout imports only the client API, the wire and the Vault's layout"},
		{func(p string) bool { return p == module+"/ledger/kernel" }, func(imp string) bool {
			return spare(imp) && !slices.Contains([]string{"tx", "store", "api", "schema"}, strings.TrimPrefix(imp, module+"/ledger/"))
		}, "the kernel imports no module and not the app"},
		{func(p string) bool { return p == module+"/vault/layout" }, func(imp string) bool {
			return spare(imp) && imp != module+"/ledger/tx"
		}, "the Vault's layout imports only the wire: the ledger is to validate manifests with it"},
		{ledgerModule, func(imp string) bool { return ledgerModule(imp) || imp == module+"/ledger" },
			"a ledger module imports no other module and not the app: it declares what it needs in its keeper, or registers a hook"},
		{client, func(imp string) bool {
			return under(imp, "ledger") && imp != module+"/ledger/api" && imp != module+"/ledger/tx"
		}, "clients import only the ledger's API and wire packages"},
		{func(p string) bool { return under(p, "runtime") },
			func(imp string) bool { return spare(imp) && !under(imp, "runtime") },
			"runtimes know nothing of the ledger, its clients or the provider"},
		{func(p string) bool {
			return under(p, "client") || under(p, "tenant") || under(p, "offers") || under(p, "explorer")
		}, func(imp string) bool {
			return under(imp, "node") || under(imp, "provider") || under(imp, "ledger/store") || under(imp, "devnet")
		}, "clients never import the node, the provider daemon, the ledger's store or the dev network"},
		{func(p string) bool { return !under(p, "cmd") && !under(p, "bench") },
			func(imp string) bool {
				return imp == "flag" || imp == "github.com/spf13/cobra" || imp == "github.com/spf13/pflag" // (viper: CometBFT's config files)
			},
			"flags and the CLI framework live in cmd/ (and the benchmark programs)"},
		{func(p string) bool { return !under(p, "bench") && !strings.HasSuffix(p, "/internal/markettest") },
			func(imp string) bool {
				return imp == module+"/internal/localnet" || imp == module+"/internal/proctest" || imp == module+"/internal/testimage" || imp == module+"/internal/logtest" ||
					imp == module+"/runtime/internal/readonlytest"
			}, "test helpers are imported by tests (and benchmarks) only"},
	}
	// Every package directly under ledger/ is a shared layer or a listed module: a new module is held to the rules.
	for p := range imports {
		rest, ok := strings.CutPrefix(p, module+"/ledger/")
		if ok && !strings.Contains(rest, "/") && !slices.Contains([]string{"tx", "store", "api", "schema", "kernel"}, rest) && !ledgerModule(p) {
			t.Errorf("%s is neither a shared ledger layer nor in ledgerModules: list it there (and in ARCHITECTURE.md)", p)
		}
	}
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for k := range imports {
			if !yield(k) {
				return
			}
		}
	}) {
		for _, r := range rules {
			if !r.who(p) {
				continue
			}
			for _, imp := range imports[p] {
				if r.forbid(imp) {
					t.Errorf("%s imports %s: %s", p, imp, r.why)
				}
			}
		}
	}
}
