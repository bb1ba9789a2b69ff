// Package readonlytest is the attack on Spec.ReadOnlyPaths (the job's Vault inputs) that runtime/docker's and
// runtime/process's tests play against their real runtimes: the work dir the daemon leaves before the start (Vault
// inputs as files and as an unpacked directory, and a file of the job's), the workload's actions
// (runtime/docker/testdata/workload's tamper and tamperdir, and writes elsewhere), and the check of what it
// tried and what is left after the run.
package readonlytest

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ReadOnlyPaths are the work dir's read-only paths: a file at its top, a file in a directory of its own (the
// directory itself writable), an unpacked directory.
var ReadOnlyPaths = []string{"input.bin", "weights/base.bin", "data"}

// Files is what the daemon puts in the work dir before the start (Write).
var Files = map[string]string{
	"input.bin":        "vault object one\n",
	"weights/base.bin": "vault object two\n",
	"data/a.txt":       "unpacked a\n",
	"data/sub/b.txt":   "unpacked b\n",
	"notes.txt":        "the job's own file\n",
}

// Actions are the test workload's actions (runtime/docker/testdata/workload) that attack the read-only paths,
// then write a file of the job's, a new file beside a read-only file, and an output, all of which must work.
const Actions = "tamper input.bin tamper weights/base.bin tamper data/a.txt tamper data/sub/b.txt" +
	" tamperdir data tamperdir data/sub" +
	" write notes.txt changed write weights/extra.txt extra write out/result.txt done"

// Written are the files Actions writes, and what they hold after it.
var Written = map[string]string{"notes.txt": "changed\n", "weights/extra.txt": "extra\n", "out/result.txt": "done\n"}

// Write puts Files in the work dir, the Vault input files mode 0444 as provider/vaultinputs.go writes them.
func Write(t testing.TB, work string) {
	t.Helper()
	for p, body := range Files {
		f := filepath.Join(work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if slices.Contains(ReadOnlyPaths, p) {
			mode = 0o444
		}
		if err := os.WriteFile(f, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f, mode); err != nil {
			t.Fatal(err)
		}
	}
}

// Lines returns the workload's "tamper PATH HOW: RESULT" lines as "PATH HOW" → RESULT.
func Lines(log string) map[string]string {
	out := map[string]string{}
	for line := range strings.Lines(log) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "tamper "); ok {
			if k, v, ok := strings.Cut(rest, ": "); ok {
				out[k] = v
			}
		}
	}
	return out
}

// Check checks the log of a workload that ran Actions on a work dir made by Write with ReadOnlyPaths read-only:
// every attempt failed, for the reason a mount gives (the workload owns the files, so permissions alone would
// not stop it), the read-only paths' bytes, modes and entries are what the daemon wrote, and what Actions
// wrote elsewhere is there.
func Check(t testing.TB, log, work string) {
	t.Helper()
	got := Lines(log)
	files := []string{"input.bin", "weights/base.bin", "data/a.txt", "data/sub/b.txt"}
	hows := []string{"write", "append", "chmod", "write-after-chmod", "truncate", "touch", "remove", "rename-away",
		"rename-over-beside", "rename-over", "link-out", "link-replace", "rename-dir-away"}
	want := map[string]bool{}
	for _, f := range files {
		for _, h := range hows {
			want[f+" "+h] = true
		}
	}
	for _, d := range []string{"data", "data/sub"} {
		for _, h := range []string{"create", "mkdir", "symlink", "chmod", "remove-all", "rmdir", "rename-away", "rename-over"} {
			want[d+" "+h] = true
		}
	}
	for k := range want {
		res, ok := got[k]
		switch {
		case !ok:
			t.Errorf("tamper %s: not tried", k)
		case res == "ok":
			t.Errorf("tamper %s: succeeded", k)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d attempts, want %d:\n%s", len(got), len(want), log)
	}
	// The mounts stop them, not the files' modes: the workload owns the files and could chmod them.
	for _, f := range files {
		if r := got[f+" chmod"]; !strings.Contains(r, "read-only file system") {
			t.Errorf("chmod %s: %q, want a read-only file system", f, r)
		}
	}
	for k, want := range map[string]string{
		"input.bin remove":                 "busy",
		"input.bin rename-over-beside":     "busy",
		"input.bin link-out":               "cross-device",
		"input.bin link-replace":           "busy",
		"weights/base.bin remove":          "busy",
		"weights/base.bin link-replace":    "busy",
		"weights/base.bin rename-dir-away": "busy",
		"data rename-away":                 "busy",
		"data rename-over":                 "busy",
		"data create":                      "read-only file system",
		"data/sub create":                  "read-only file system",
	} {
		if !strings.Contains(got[k], want) {
			t.Errorf("tamper %s: %q, want %q", k, got[k], want)
		}
	}
	for p, body := range Files {
		if p == "notes.txt" {
			continue
		}
		f := filepath.Join(work, filepath.FromSlash(p))
		b, err := os.ReadFile(f)
		if err != nil || !bytes.Equal(b, []byte(body)) {
			t.Errorf("%s after the run: %q %v, want %q", p, b, err, body)
		}
		if fi, err := os.Lstat(f); err == nil && slices.Contains(ReadOnlyPaths, p) && fi.Mode() != 0o444 {
			t.Errorf("%s is mode %v after the run", p, fi.Mode())
		}
	}
	var entries []string
	_ = filepath.WalkDir(filepath.Join(work, "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			rel, _ := filepath.Rel(work, p)
			entries = append(entries, filepath.ToSlash(rel)+":"+d.Type().String())
		}
		return nil
	})
	if strings.Join(entries, " ") != "data:d--------- data/a.txt:---------- data/sub:d--------- data/sub/b.txt:----------" {
		t.Errorf("the unpacked directory holds %v after the run", entries)
	}
	for p, want := range Written {
		if b, err := os.ReadFile(filepath.Join(work, filepath.FromSlash(p))); err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q (the rest of the work dir is writable)", p, b, err, want)
		}
	}
}
