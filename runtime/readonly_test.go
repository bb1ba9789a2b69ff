package runtime

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

func TestCheckReadOnlyPath(t *testing.T) {
	for _, c := range []struct {
		path string
		want string // "" when accepted
	}{
		{"data.bin", ""},
		{"weights/base.bin", ""},
		{"a/b/c/d", ""},
		{".hidden", ""},
		{"..data", ""},
		{"a..b/c", ""},
		{"", "work directory itself"},
		{".", "work directory itself"},
		{"..", `".."`},
		{"../x", `".."`},
		{"a/../b", `".."`},
		{"a/..", `".."`},
		{"a/b/../../..", `".."`},
		{"/etc/passwd", "absolute"},
		{"/", "absolute"},
		{"//x", "absolute"},
		{"./a", "not clean"},
		{"a/./b", "not clean"},
		{"a//b", "not clean"},
		{"a/", "not clean"},
		{"a\x00b", "NUL"},
	} {
		err := CheckReadOnlyPath(c.path)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q refused: %v", c.path, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: %v, want an error with %q", c.path, err, c.want)
		}
	}
}

func TestReadOnlyLayout(t *testing.T) {
	for _, c := range []struct {
		paths []string
		want  []BindMount
	}{
		{nil, []BindMount{}},
		{[]string{"a"}, []BindMount{{"a", true}}},
		{[]string{"a/b/c"}, []BindMount{{"a", false}, {"a/b", false}, {"a/b/c", true}}},
		// Beneath another read-only path, or twice: nothing more.
		{[]string{"d/x", "d", "d", "d/y/z"}, []BindMount{{"d", true}}},
		{[]string{"w/one", "w/two", "x", "w-x"}, []BindMount{{"w", false}, {"w-x", true}, {"w/one", true}, {"w/two", true}, {"x", true}}},
		{[]string{"a/b", "a"}, []BindMount{{"a", true}}},
	} {
		got, err := ReadOnlyLayout(c.paths)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %+v %v, want %+v", c.paths, got, err, c.want)
		}
		// Each directory before what it holds.
		for i, m := range got {
			for _, n := range got[i+1:] {
				if strings.HasPrefix(m.Path, n.Path+"/") {
					t.Errorf("%q: %s before %s", c.paths, m.Path, n.Path)
				}
			}
		}
	}
	if _, err := ReadOnlyLayout([]string{"ok", "../no"}); err == nil {
		t.Error("one bad path among good ones accepted")
	}
}

// TestReadOnlyMounts: on disk, a read-only path is a file or a directory, every directory above it a directory,
// and none of them, nor the path, a symbolic link (to a file, to a directory, inside the work dir or out of it).
func TestReadOnlyMounts(t *testing.T) {
	work := t.TempDir()
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(work, "w", "d"), 0o755))
	must(os.WriteFile(filepath.Join(work, "w", "f.bin"), []byte("x"), 0o444))
	must(os.WriteFile(filepath.Join(work, "top.bin"), []byte("x"), 0o444))
	must(os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o600))
	must(os.Symlink(filepath.Join(outside, "secret"), filepath.Join(work, "out-link")))
	must(os.Symlink(outside, filepath.Join(work, "out-dir")))
	must(os.Symlink("w", filepath.Join(work, "in-dir")))
	must(os.Symlink("top.bin", filepath.Join(work, "in-link")))
	must(os.Symlink("../../top.bin", filepath.Join(work, "w", "d", "up")))
	must(syscall.Mkfifo(filepath.Join(work, "fifo"), 0o644))

	got, err := ReadOnlyMounts(work, []string{"w/f.bin", "w/d", "top.bin"})
	want := []BindMount{{"top.bin", true}, {"w", false}, {"w/d", true}, {"w/f.bin", true}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v %v, want %+v", got, err, want)
	}
	if got, err := ReadOnlyMounts(filepath.Join(work, "absent"), nil); got != nil || err != nil {
		t.Errorf("no paths: %+v %v", got, err)
	}
	for _, c := range []struct {
		path string
		want string
	}{
		{"out-link", "symbolic link"},
		{"out-dir", "symbolic link"},
		{"out-dir/secret", "symbolic link"},
		{"in-dir/f.bin", "symbolic link"},
		{"in-link", "symbolic link"},
		{"w/d/up", "symbolic link"},
		{"fifo", "neither a regular file nor a directory"},
		{"w/f.bin/x", "not a directory"},
		{"absent", "not in the work directory"},
		{"w/absent/x", "not in the work directory"},
		{"../x", `".."`},
		{"/etc", "absolute"},
	} {
		_, err := ReadOnlyMounts(work, []string{"top.bin", c.path})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error with %q", c.path, err, c.want)
		}
	}
}
