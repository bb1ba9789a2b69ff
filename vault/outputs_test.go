package vault

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"lukechampine.com/blake3"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/merkle"
)

func outputsTree(t *testing.T, exec bool) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"metrics.json": "{}\n", "out/model.bin": strings.Repeat("w", 300_000), "out/sub/deep/notes.txt": "epoch 3\n", "out-b/x": ""}
	for p, body := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if exec && p == "metrics.json" {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	// listed in no particular order, as a caller may hold them
	return dir, []string{"out/sub/deep/notes.txt", "metrics.json", "out-b/x", "out/model.bin"}
}

func outputsArchive(t *testing.T, dir string, paths []string) ([]byte, []merkle.File, error) {
	t.Helper()
	open, done, err := DirFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	var b bytes.Buffer
	files, err := OutputsArchive(context.Background(), &b, paths, open)
	return b.Bytes(), files, err
}

// The outputs archive is a function of the files alone: for a directory holding only them, none executable, it
// is byte for byte what Archive (spare store put DIR) writes; an executable bit changes nothing; the files it
// returns are the Merkle list a receipt covers; OutputsRoot is the root Encode gives the same bytes.
func TestOutputsArchiveIsTheDirectorysArchive(t *testing.T) {
	dir, paths := outputsTree(t, false)
	var want bytes.Buffer
	if err := Archive(&want, dir, DefaultArchiveLimits); err != nil {
		t.Fatal(err)
	}
	got, files, err := outputsArchive(t, dir, paths)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("the outputs archive differs from the directory's archive")
	}
	var hashed []merkle.File
	for _, p := range paths {
		f, err := merkle.HashFile(filepath.Join(dir, p), p)
		if err != nil {
			t.Fatal(err)
		}
		hashed = append(hashed, f)
	}
	if err := merkle.Sort(hashed); err != nil {
		t.Fatal(err)
	}
	if len(files) != len(hashed) {
		t.Fatalf("%d files, want %d", len(files), len(hashed))
	}
	for i := range files {
		if files[i] != hashed[i] {
			t.Fatalf("file %d: %+v, want %+v", i, files[i], hashed[i])
		}
	}
	execDir, _ := outputsTree(t, true)
	again, _, err := outputsArchive(t, execDir, paths)
	if err != nil || !bytes.Equal(again, got) {
		t.Fatalf("an executable bit changed the outputs archive (%v)", err)
	}
	open, done, _ := DirFiles(execDir)
	defer done()
	root, size, _, err := OutputsRoot(context.Background(), paths, open)
	if err != nil {
		t.Fatal(err)
	}
	if want := blake3.Sum256(got); root != tx.Hash(want) || size != uint64(len(got)) {
		t.Fatalf("OutputsRoot %s (%d bytes), the archive's BLAKE3 %x (%d bytes)", root, size, want, len(got))
	}
	obj, err := Encode(bytes.NewReader(got), size, DevCoding, nil)
	if err != nil {
		t.Fatal(err)
	}
	if obj.Root != root {
		t.Fatalf("stored, the archive's root is %s, not %s", obj.Root, root)
	}
}

// What a caller passes, and what it finds on disk, are refused naming the path: a name twice, one that climbs
// out or is not clean, a file that is also another's directory, a directory, a link (even to a file beside it),
// a named pipe (not opened: no hang), a missing file; and a done context stops it.
func TestOutputsArchiveRefuses(t *testing.T) {
	dir, paths := outputsTree(t, false)
	if err := os.Symlink("metrics.json", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		paths []string
		want  string
	}{
		{[]string{"metrics.json", "metrics.json"}, `output "metrics.json" is named twice`},
		{[]string{"../etc/passwd"}, "not a clean relative path"},
		{[]string{"/etc/passwd"}, "not a clean relative path"},
		{[]string{"out/./model.bin"}, "not a clean relative path"},
		{[]string{""}, "path of 0 bytes"},
		{[]string{"out", "out/model.bin"}, `output "out" is both a file and the directory above "out/model.bin"`},
		{[]string{"out/sub"}, "output out/sub: a directory, not a regular file"},
		{[]string{"link"}, "output link: a symbolic link, not a regular file"},
		{[]string{"fifo"}, "output fifo: a named pipe, not a regular file"},
		{[]string{"gone.bin"}, "output gone.bin:"},
	} {
		if _, _, err := outputsArchive(t, dir, c.paths); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.paths, err, c.want)
		}
	}
	open, done, _ := DirFiles(dir)
	defer done()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, _, err := OutputsRoot(ctx, paths, open); err != context.Canceled {
		t.Fatalf("a done context: %v", err)
	}
}
