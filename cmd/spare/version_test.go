package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// TestVersionFromBuildInfo: the fields come from the build information as recorded, and what it lacks is
// "unknown" (modified: nil), never a guess.
func TestVersionFromBuildInfo(t *testing.T) {
	full := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/sparenet/spare", Version: "v0.0.0-20261207025723-1a7d34bc9fd8+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "1a7d34bc9fd80469ac06ab08c627af4ca0b6d848"},
			{Key: "vcs.time", Value: "2026-12-07T02:57:23Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	v := versionFrom(full)
	if v.Version != full.Main.Version || v.Revision != "1a7d34bc9fd80469ac06ab08c627af4ca0b6d848" || v.Time != "2026-12-07T02:57:23Z" ||
		v.Modified == nil || !*v.Modified || v.Go != "go1.26.8" || v.Platform != "linux/arm64" {
		t.Errorf("from full build info: %+v", v)
	}
	var text strings.Builder
	v.writeText(&text)
	for _, want := range []string{"spare v0.0.0-20261207025723-1a7d34bc9fd8+dirty\n", "revision  1a7d34bc9fd80469ac06ab08c627af4ca0b6d848\n",
		"time      2026-12-07T02:57:23Z\n", "modified  true\n", "go        go1.26.8\n", "platform  linux/arm64\n"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}

	for name, bi := range map[string]*debug.BuildInfo{
		"no build info":  nil,
		"no VCS":         {GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/sparenet/spare", Version: "(devel)"}},
		"empty settings": {Settings: []debug.BuildSetting{{Key: "vcs.revision"}, {Key: "vcs.time"}, {Key: "vcs.modified", Value: "maybe"}}},
	} {
		v := versionFrom(bi)
		if v.Revision != unknown || v.Time != unknown || v.Modified != nil {
			t.Errorf("%s: %+v, want revision, time unknown and modified nil", name, v)
		}
		if v.Go == "" || v.Platform != runtime.GOOS+"/"+runtime.GOARCH {
			t.Errorf("%s: go %q, platform %q: the running binary's are known", name, v.Go, v.Platform)
		}
		if bi == nil && v.Version != unknown {
			t.Errorf("%s: version %q, want unknown", name, v.Version)
		}
		var text strings.Builder
		v.writeText(&text)
		if !strings.Contains(text.String(), "revision  unknown") || !strings.Contains(text.String(), "modified  unknown\n") {
			t.Errorf("%s: text does not say unknown:\n%s", name, text.String())
		}
		b, _ := json.Marshal(v)
		if !strings.Contains(string(b), `"revision":"unknown"`) || !strings.Contains(string(b), `"modified":null`) {
			t.Errorf("%s: JSON %s", name, b)
		}
	}
	if v := versionFrom(&debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.modified", Value: "false"}}}); v.Modified == nil || *v.Modified {
		t.Errorf("vcs.modified=false read as %v", v.Modified)
	}
}

// TestVersionCommand: `spare version` and `spare --version` print the same, in text and with -o json, and the
// JSON is the running binary's build information.
func TestVersionCommand(t *testing.T) {
	home := t.TempDir()
	text, err := run(t, "--home", home, "version")
	if err != nil {
		t.Fatal(err)
	}
	want := readVersion()
	for _, line := range []string{"spare " + want.Version + "\n", "revision  " + want.Revision, "go        " + want.Go + "\n", "platform  " + want.Platform + "\n"} {
		if !strings.Contains(text, line) {
			t.Errorf("spare version lacks %q:\n%s", line, text)
		}
	}
	flag, err := run(t, "--home", home, "--version")
	if err != nil || flag != text {
		t.Errorf("spare --version: %v\n%s\nwant what spare version prints:\n%s", err, flag, text)
	}

	for _, args := range [][]string{{"version", "-o", "json"}, {"-o", "json", "version"}, {"--version", "-o", "json"}} {
		out, err := run(t, append([]string{"--home", home}, args...)...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var got versionInfo
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v: not JSON: %v\n%s", args, err, out)
		}
		if got.Version != want.Version || got.Revision != want.Revision || got.Time != want.Time || got.Go != want.Go || got.Platform != want.Platform ||
			(got.Modified == nil) != (want.Modified == nil) {
			t.Errorf("%v: %+v, want %+v", args, got, want)
		}
		var fields map[string]any
		_ = json.Unmarshal([]byte(out), &fields)
		for _, k := range []string{"version", "revision", "time", "modified", "go", "platform"} {
			if _, ok := fields[k]; !ok {
				t.Errorf("%v: JSON lacks %q: %s", args, k, out)
			}
		}
	}
	if _, err := run(t, "--home", home, "version", "extra"); err == nil {
		t.Error("spare version extra: no error")
	}
}

// TestVersionOfABuiltBinary builds spare with VCS stamping, as `go build` and `make install` do by default in a
// git checkout, and checks that `spare version -o json` names this checkout's commit.
func TestVersionOfABuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool: %v", err)
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	if top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output(); err == nil {
		if st, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err == nil && !st.IsDir() {
			t.Skip("a git worktree (.git is a file): go build records no VCS information from one")
		}
	}
	bin := filepath.Join(t.TempDir(), "spare")
	// -buildvcs=true overrides a GOFLAGS=-buildvcs=false in the environment, and fails rather than leave it out.
	if out, err := exec.Command(goTool, "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--home", t.TempDir(), "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("spare version: %v", err)
	}
	var v versionInfo
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if v.Revision != strings.TrimSpace(string(head)) {
		t.Errorf("revision %q, want HEAD %s", v.Revision, head)
	}
	if _, err := time.Parse(time.RFC3339, v.Time); err != nil {
		t.Errorf("time %q: %v", v.Time, err)
	}
	if v.Modified == nil {
		t.Error("modified: null, want true or false")
	}
	if v.Version == unknown || v.Go != runtime.Version() || v.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("%+v", v)
	}
	flag, err := exec.Command(bin, "--home", t.TempDir(), "--version").Output()
	if err != nil || !strings.Contains(string(flag), "revision  "+v.Revision+"\n") {
		t.Errorf("spare --version: %v\n%s", err, flag)
	}
}
