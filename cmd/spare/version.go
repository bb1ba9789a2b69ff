package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// unknown stands for what the binary's build information does not record: it is never guessed.
const unknown = "unknown"

// versionInfo is what `spare version` (and `spare --version`) reports about the running binary, read from the
// build information the Go toolchain embeds in it (runtime/debug.ReadBuildInfo). `go build` and `go install` in a
// git checkout record the commit, its time and whether the tree had uncommitted changes; a binary built without
// them (outside a checkout, with -buildvcs=false, or a test binary) says "unknown" (modified: null in JSON).
type versionInfo struct {
	// Version is the main module's version as the toolchain stamped it: a tag, a pseudo-version
	// (v0.0.0-<commit time>-<commit>, "+dirty" when modified), or "(devel)".
	Version  string `json:"version"`
	Revision string `json:"revision"` // the commit's full hash
	Time     string `json:"time"`     // the commit's time, RFC 3339
	Modified *bool  `json:"modified"` // the tree had uncommitted changes; null when unknown
	Go       string `json:"go"`       // the Go release that built the binary
	Platform string `json:"platform"` // GOOS/GOARCH
}

// readVersion is the running binary's versionInfo.
func readVersion() versionInfo {
	bi, _ := debug.ReadBuildInfo()
	return versionFrom(bi)
}

// versionFrom reads a versionInfo from build information (nil when the binary has none).
func versionFrom(bi *debug.BuildInfo) versionInfo {
	v := versionInfo{Version: unknown, Revision: unknown, Time: unknown, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	var goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if s.Value != "" {
				v.Revision = s.Value
			}
		case "vcs.time":
			if s.Value != "" {
				v.Time = s.Value
			}
		case "vcs.modified":
			if b, err := strconv.ParseBool(s.Value); err == nil {
				v.Modified = &b
			}
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	if goos != "" && goarch != "" {
		v.Platform = goos + "/" + goarch
	}
	return v
}

// writeText writes the version as `spare version` prints it: the version on the first line, then one field a line.
func (v versionInfo) writeText(w io.Writer) {
	modified := unknown
	if v.Modified != nil {
		modified = strconv.FormatBool(*v.Modified)
	}
	revision := v.Revision
	if revision == unknown {
		revision += " (not recorded: build with go build or make install in a git checkout, without -buildvcs=false)"
	}
	fmt.Fprintf(w, "spare %s\n", v.Version)
	fmt.Fprintf(w, "  revision  %s\n", revision)
	fmt.Fprintf(w, "  time      %s\n", v.Time)
	fmt.Fprintf(w, "  modified  %s\n", modified)
	fmt.Fprintf(w, "  go        %s\n", v.Go)
	fmt.Fprintf(w, "  platform  %s\n", v.Platform)
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show which build this is: version, commit and its time, whether the tree was modified, Go, platform",
		Long: `Show which build of spare this is, from what the Go toolchain recorded in the binary: the module version,
the git commit it was built from, that commit's time, whether the tree had uncommitted changes, the Go
release and the platform. What the build did not record is "unknown" (modified: null with -o json):
'go build' and 'make install' in a git checkout record it. 'spare --version' prints the same.`,
		Example: "  spare version\n  spare version -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := readVersion()
			return g.print(v, v.writeText)
		},
	}
}

// versionTemplate is the root command's version template: `spare --version` prints what `spare version` does,
// as JSON with -o json. cobra handles --version before the command's checks run, so -o is read here.
const versionTemplate = `{{spareVersion .}}`

func init() {
	cobra.AddTemplateFunc("spareVersion", func(c *cobra.Command) string {
		v := readVersion()
		if g := globalsOf(c); g != nil && g.output == "json" {
			b, _ := json.MarshalIndent(v, "", "  ") // as g.print writes it
			return string(b) + "\n"
		}
		var b strings.Builder
		v.writeText(&b)
		return b.String()
	})
}

// buildVersion is the short version the root command carries (cobra adds --version for it).
func buildVersion() string { return readVersion().Version }
