package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/help")

// TestHelpGolden renders every command's --help and compares it with testdata/help/<command>.golden, so help
// text changes are deliberate (go test ./cmd/spare -run TestHelpGolden -update rewrites them).
func TestHelpGolden(t *testing.T) {
	root := newRootCmd()
	var walk func(c *cobra.Command)
	seen := map[string]bool{}
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || strings.HasPrefix(c.CommandPath(), "spare completion") {
			return
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", "_") + ".golden"
		seen[name] = true
		var buf bytes.Buffer
		c.SetOut(&buf)
		if err := c.Help(); err != nil {
			t.Fatal(err)
		}
		got := strings.ReplaceAll(buf.String(), defaultHome(), "$HOME/.spare")
		path := filepath.Join("testdata", "help", name)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		} else if want, err := os.ReadFile(path); err != nil || string(want) != got {
			t.Errorf("%s: help differs from %s (run with -update if intended)\n--- got\n%s", c.CommandPath(), path, got)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	files, _ := filepath.Glob(filepath.Join("testdata", "help", "*.golden"))
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no command any more: delete it", f)
		}
	}
}
