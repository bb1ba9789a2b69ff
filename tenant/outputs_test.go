package tenant

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/merkle"
)

type entry struct {
	name string
	typ  byte
	data string
	size int64 // header size; -1: len(data)
	link string
}

func tarOf(t *testing.T, es ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		size := e.size
		if size < 0 {
			size = int64(len(e.data))
		}
		if e.typ != tar.TypeReg {
			size = 0
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: e.typ, Size: size, Mode: 0o644, Linkname: e.link}); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.data)[:min(int64(len(e.data)), size)])
		}
	}
	tw.Flush() // no end blocks when a test wants a truncated archive; the reader sees EOF either way
	tw.Close()
	return b.Bytes()
}

func reg(name, data string) entry { return entry{name: name, typ: tar.TypeReg, data: data, size: -1} }

func file(p, data string) merkle.File {
	return merkle.File{Path: p, SHA256: tx.Hash(sha256.Sum256([]byte(data))), Size: int64(len(data))}
}

// declare is what an honest provider lists for files, and the root its receipt signs.
func declare(t *testing.T, files ...merkle.File) (map[string]merkle.File, int64, tx.Hash) {
	t.Helper()
	root, err := merkle.Root(files)
	if err != nil {
		t.Fatal(err)
	}
	m, total, err := checkDeclared(7, files, root, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, total, root
}

// snapshot lists every path under dir with its content (a symbolic link as "-> target").
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out[rel] = "-> " + l
		case fi.IsDir():
			out[rel] = "dir"
		default:
			b, _ := os.ReadFile(p)
			out[rel] = string(b)
		}
		return nil
	})
	return out
}

func TestReceiveOutputs(t *testing.T) {
	dir := t.TempDir()
	declared, total, root := declare(t, file("out/model.bin", "weights"), file("out/log/train.txt", "loss 0.1\n"), file("metrics.json", "{}"))
	body := tarOf(t, reg("metrics.json", "{}"), reg("out/log/train.txt", "loss 0.1\n"), reg("out/model.bin", "weights"))
	out, names, err := receiveOutputs(7, bytes.NewReader(body), declared, total, root, dir)
	if err != nil {
		t.Fatal(err)
	}
	if out != filepath.Join(dir, "7") || !slices.Equal(names, []string{"metrics.json", "out/log/train.txt", "out/model.bin"}) {
		t.Fatalf("out %s names %v", out, names)
	}
	want := map[string]string{".": "dir", "7": "dir", "7/metrics.json": "{}", "7/out": "dir", "7/out/log": "dir", "7/out/log/train.txt": "loss 0.1\n", "7/out/model.bin": "weights"}
	if got := snapshot(t, dir); !mapsEqual(got, want) {
		t.Fatalf("after the download:\n%v\nwant\n%v", got, want)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o755 {
		t.Errorf("%s has mode %v", out, fi.Mode())
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestReceiveOutputsRefusesHostileTars: every way a provider's tar breaks its own list is refused with an error
// naming it, nothing is written to the destination (an earlier download there stays as it was), and the temporary
// directory is gone.
func TestReceiveOutputsRefusesHostileTars(t *testing.T) {
	a, b := file("a.txt", "alpha"), file("sub/b.txt", "bravo")
	for _, c := range []struct {
		name string
		tar  []entry
		want string
	}{
		{"not listed", []entry{reg("a.txt", "alpha"), reg("sub/b.txt", "bravo"), reg("evil.sh", "x")}, `"evil.sh", which is not in its list`},
		{"absolute", []entry{reg("/etc/cron.d/x", "alpha")}, `"/etc/cron.d/x", which is not in its list`},
		{"dot dot", []entry{reg("../../.bashrc", "alpha")}, `"../../.bashrc", which is not in its list`},
		{"larger than listed", []entry{reg("a.txt", "alpha and much more")}, `"a.txt" with 19 bytes; its list says 5`},
		{"smaller than listed", []entry{reg("a.txt", "alp")}, `"a.txt" with 3 bytes; its list says 5`},
		{"other content", []entry{reg("a.txt", "ALPHA"), reg("sub/b.txt", "bravo")}, `"a.txt" with SHA-256`},
		{"duplicate", []entry{reg("a.txt", "alpha"), reg("a.txt", "alpha"), reg("sub/b.txt", "bravo")}, `"a.txt" twice`},
		{"symlink", []entry{{name: "a.txt", typ: tar.TypeSymlink, link: "/home/u/.ssh/id_ed25519"}}, `"a.txt" as a symbolic link`},
		{"hardlink", []entry{{name: "a.txt", typ: tar.TypeLink, link: "/etc/passwd"}}, `"a.txt" as a hard link`},
		{"device", []entry{{name: "a.txt", typ: tar.TypeChar}}, `"a.txt" as a device`},
		{"directory", []entry{{name: "sub/", typ: tar.TypeDir}}, `as a directory`},
		{"missing", []entry{reg("a.txt", "alpha")}, "sent 1 of its 2 listed output file(s); missing: sub/b.txt"},
		{"broken off", []entry{{name: "a.txt", typ: tar.TypeReg, data: "al", size: 5}}, `broke off in "a.txt"`},
		{"escape in a name", []entry{reg("a\x1b]0;pwned\x07.txt", "alpha")}, `which is not in its list`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "7"), 0o755)
			os.WriteFile(filepath.Join(dir, "7", "a.txt"), []byte("earlier download"), 0o644)
			before := snapshot(t, dir)
			declared, total, root := declare(t, a, b)
			_, _, err := receiveOutputs(7, bytes.NewReader(tarOf(t, c.tar...)), declared, total, root, dir)
			if err == nil || !errors.Is(err, ErrOutputs) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want ErrOutputs with %q", err, c.want)
			}
			if strings.ContainsAny(err.Error(), "\x1b\x07") {
				t.Errorf("the error carries the provider's control characters: %q", err)
			}
			if after := snapshot(t, dir); !mapsEqual(after, before) {
				t.Fatalf("the destination changed:\n%v\nwas\n%v", after, before)
			}
		})
	}
}

// TestReceiveOutputsTooLarge: a download may not be larger than its files and their tar headers.
func TestReceiveOutputsTooLarge(t *testing.T) {
	dir := t.TempDir()
	declared, total, root := declare(t, file("a.txt", "alpha"))
	// A PAX record of 900 KiB before the file: within tar's own limits, beyond the headers' allowance.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "a.txt", Typeflag: tar.TypeReg, Size: 5, PAXRecords: map[string]string{"comment": strings.Repeat("x", 900<<10)}, Format: tar.FormatPAX})
	tw.Write([]byte("alpha"))
	tw.Close()
	_, _, err := receiveOutputs(7, &buf, declared, total, root, dir)
	if err == nil || !errors.Is(err, ErrOutputs) || !strings.Contains(err.Error(), "larger than the declared files") {
		t.Fatalf("error %v", err)
	}
	if got := snapshot(t, dir); len(got) != 1 {
		t.Fatalf("left behind: %v", got)
	}
}

// TestPlaceOutputsNeverFollowsSymlinks: a symbolic link already in the destination is never written through; a
// link where a file goes is replaced, not followed.
func TestPlaceOutputsNeverFollowsSymlinks(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("precious"), 0o644)
	declared, total, root := declare(t, file("sub/x.txt", "payload"), file("y.txt", "why"))
	body := tarOf(t, reg("sub/x.txt", "payload"), reg("y.txt", "why"))

	t.Run("a directory on the way is a link", func(t *testing.T) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "7"), 0o755)
		os.Symlink(outside, filepath.Join(dir, "7", "sub"))
		before := snapshot(t, dir)
		_, _, err := receiveOutputs(7, bytes.NewReader(body), declared, total, root, dir)
		if err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
			t.Fatalf("error %v", err)
		}
		if _, err := os.Stat(filepath.Join(outside, "x.txt")); err == nil {
			t.Fatal("an output was written through the link")
		}
		if after := snapshot(t, dir); !mapsEqual(after, before) {
			t.Fatalf("the destination changed: %v", after)
		}
	})
	t.Run("the lease directory is a link", func(t *testing.T) {
		dir := t.TempDir()
		os.Symlink(outside, filepath.Join(dir, "7"))
		_, _, err := receiveOutputs(7, bytes.NewReader(body), declared, total, root, dir)
		if err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Fatalf("error %v", err)
		}
		if _, err := os.Stat(filepath.Join(outside, "y.txt")); err == nil {
			t.Fatal("an output was written through the link")
		}
	})
	t.Run("a link where a file goes", func(t *testing.T) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "7"), 0o755)
		os.Symlink(victim, filepath.Join(dir, "7", "y.txt"))
		if _, _, err := receiveOutputs(7, bytes.NewReader(body), declared, total, root, dir); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(victim); string(b) != "precious" {
			t.Fatalf("the link's target was overwritten: %q", b)
		}
		if fi, err := os.Lstat(filepath.Join(dir, "7", "y.txt")); err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("y.txt: %v %v", fi, err)
		}
		if got := snapshot(t, dir); got["7/sub/x.txt"] != "payload" || len(got) != 5 {
			t.Fatalf("after: %v", got)
		}
	})
}

// TestCheckDeclared: the provider's list must hash to the signed root, hold clean relative paths once each, and
// fit the disk the order paid for.
func TestCheckDeclared(t *testing.T) {
	good := []merkle.File{file("a.txt", "alpha"), file("d/b.txt", "bravo")}
	root, _ := merkle.Root(good)
	if _, total, err := checkDeclared(7, good, root, 10); err != nil || total != 10 {
		t.Fatalf("good list: %d %v", total, err)
	}
	big := file("a.txt", "alpha")
	big.Size = 1 << 40
	for _, c := range []struct {
		name  string
		files []merkle.File
		max   int64
		want  string
	}{
		{"another root", []merkle.File{file("a.txt", "alpha")}, 0, "hashes to"},
		{"more than the disk", good, 9, "more than 9 bytes"},
		{"a file larger than the disk", []merkle.File{big}, 1 << 20, "with 1099511627776 bytes"},
		{"negative size", []merkle.File{{Path: "a", Size: -1}}, 0, "with -1 bytes"},
		{"absolute", []merkle.File{file("/etc/passwd", "")}, 0, "absolute"},
		{"dot dot", []merkle.File{file("../x", "")}, 0, "climbs out"},
		{"dot dot inside", []merkle.File{file("a/../../x", "")}, 0, "not in its clean form"},
		{"double slash", []merkle.File{file("a//x", "")}, 0, "not in its clean form"},
		{"trailing slash", []merkle.File{file("a/", "")}, 0, "not in its clean form"},
		{"dot", []merkle.File{file(".", "")}, 0, "not in its clean form"},
		{"empty", []merkle.File{file("", "")}, 0, "empty"},
		{"backslash", []merkle.File{file(`a\..\..\x`, "")}, 0, "backslash"},
		{"control", []merkle.File{file("a\x1b[2Jb", "")}, 0, "control character"},
		{"duplicate", []merkle.File{file("a", "1"), file("a", "1")}, 0, "twice"},
		{"file and directory", []merkle.File{file("a", "1"), file("a/b", "2")}, 0, "both as a file and as a directory"},
		{"too long", []merkle.File{file(strings.Repeat("x", maxOutputPathLen+1), "")}, 0, "longer than"},
	} {
		r := root
		if c.name != "another root" && c.name != "more than the disk" {
			r, _ = merkle.Root(c.files)
		}
		_, _, err := checkDeclared(7, c.files, r, c.max)
		if err == nil || !errors.Is(err, ErrOutputs) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrOutputs with %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\x1b") {
			t.Errorf("%s: the error carries an escape: %q", c.name, err)
		}
	}
}

func TestDecodeDeclaredBounded(t *testing.T) {
	if _, err := decodeDeclared(7, strings.NewReader(`{"output_files":[`+strings.Repeat(" ", maxStatusBytes)+`]}`)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("%v", err)
	}
	files, err := decodeDeclared(7, strings.NewReader(`{"state":"completed","output_files":[{"path":"a","sha256":"`+strings.Repeat("00", 32)+`","size":3}]}`))
	if err != nil || len(files) != 1 || files[0].Size != 3 {
		t.Fatalf("%v %v", files, err)
	}
}

// TestAPIErrorIsTerminalSafe: a provider's error message reaches the tenant's terminal without its escapes.
func TestAPIErrorIsTerminalSafe(t *testing.T) {
	e := &APIError{Status: 403, Code: "forbidden\x1b[8m", Msg: "no\x1b]0;pwned\x07 access\r\x1b[2K"}
	if got := e.Error(); got != "provider: no access\n (HTTP 403, forbidden)" {
		t.Fatalf("%q", got)
	}
}
