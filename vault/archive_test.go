package vault

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestArchiveDeterministic: the same tree archives to the same bytes whatever its times and permissions, and
// extracts back to the same files.
func TestArchiveDeterministic(t *testing.T) {
	files := map[string]string{"b.txt": "bee", "a/z.bin": "zed", "a-c/x": "", "a/b/deep.txt": strings.Repeat("d", 5000)}
	one, two := t.TempDir(), t.TempDir()
	writeTree(t, one, files)
	writeTree(t, two, files)
	if err := os.Chtimes(filepath.Join(two, "b.txt"), time.Unix(1e9, 0), time.Unix(1e9, 0)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(two, "a"), 0o711); err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := Archive(&a, one, DefaultArchiveLimits); err != nil {
		t.Fatal(err)
	}
	if err := Archive(&b, two, DefaultArchiveLimits); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the same tree archived to different bytes")
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := Extract(bytes.NewReader(a.Bytes()), out, DefaultArchiveLimits); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || string(got) != body {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	var c bytes.Buffer
	if err := Archive(&c, out, DefaultArchiveLimits); err != nil || !bytes.Equal(c.Bytes(), a.Bytes()) {
		t.Fatalf("the extracted tree archives differently: %v", err)
	}
}

func TestArchiveRefusesLinks(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"ok.txt": "fine"})
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "secret")); err != nil {
		t.Fatal(err)
	}
	err := Archive(&bytes.Buffer{}, dir, DefaultArchiveLimits)
	if err == nil || !strings.Contains(err.Error(), "symbolic link") || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("a symbolic link archived: %v", err)
	}
	writeTree(t, dir, map[string]string{"x": "1", "y": "2"})
	os.Remove(filepath.Join(dir, "secret"))
	if err := Archive(&bytes.Buffer{}, dir, ArchiveLimits{Entries: 2, Bytes: 1 << 20}); err == nil {
		t.Fatal("more entries than the limit archived")
	}
	if err := Archive(&bytes.Buffer{}, dir, ArchiveLimits{Entries: 10, Bytes: 3}); err == nil {
		t.Fatal("more bytes than the limit archived")
	}
}

// TestExtractRefusesHostileArchives plays a tenant who stored a crafted archive for a provider to extract.
func TestExtractRefusesHostileArchives(t *testing.T) {
	type entry struct {
		name string
		typ  byte
		body string
		link string
	}
	build := func(es ...entry) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, e := range es {
			h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link}
			if e.typ != tar.TypeReg {
				h.Size = 0
			}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			tw.Write([]byte(e.body))
		}
		tw.Close()
		return b.Bytes()
	}
	reg := func(name, body string) entry { return entry{name: name, typ: tar.TypeReg, body: body} }
	for name, tc := range map[string]struct {
		archive []byte
		lim     ArchiveLimits
		want    string
	}{
		"dot-dot escape":       {build(reg("../../etc/cron.d/x", "pwn")), DefaultArchiveLimits, "clean relative"},
		"absolute path":        {build(reg("/etc/passwd", "pwn")), DefaultArchiveLimits, "clean relative"},
		"symlink":              {build(entry{name: "l", typ: tar.TypeSymlink, link: "/etc"}), DefaultArchiveLimits, "only directories and regular files"},
		"symlink then through": {build(entry{name: "a", typ: tar.TypeSymlink, link: "/"}, reg("a/etc/x", "pwn")), DefaultArchiveLimits, "only directories"},
		"hard link":            {build(entry{name: "h", typ: tar.TypeLink, link: "/etc/shadow"}), DefaultArchiveLimits, "only directories"},
		"device":               {build(entry{name: "d", typ: tar.TypeChar}), DefaultArchiveLimits, "only directories"},
		"repeated file":        {build(reg("a", "1"), reg("a", "2")), DefaultArchiveLimits, "repeated"},
		"out of order":         {build(reg("b", "1"), reg("a", "2")), DefaultArchiveLimits, "out of order"},
		"file under no dir":    {build(reg("d/f", "1")), DefaultArchiveLimits, "comes first"},
		"backslash":            {build(reg(`a\..\..\x`, "1")), DefaultArchiveLimits, "backslash"},
		"too many entries":     {build(reg("a", "1"), reg("b", "2"), reg("c", "3")), ArchiveLimits{Entries: 2, Bytes: 100}, "more than 2 entries"},
		"too many bytes":       {build(reg("a", "12345"), reg("b", "67890")), ArchiveLimits{Entries: 10, Bytes: 8}, "over the 8"},
		"not a tar":            {[]byte(strings.Repeat("x", 1024)), DefaultArchiveLimits, "archive entry 1"},
	} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			out := filepath.Join(parent, "out")
			err := Extract(bytes.NewReader(tc.archive), out, tc.lim)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an error with %q", err, tc.want)
			}
			// Nothing outside the directory: the parent holds only it.
			ents, _ := os.ReadDir(parent)
			if len(ents) != 1 || ents[0].Name() != "out" {
				t.Fatalf("extraction wrote beside its directory: %v", ents)
			}
			if _, err := os.Lstat(filepath.Join(out, "a", "etc")); err == nil {
				t.Fatal("an entry went through a link")
			}
		})
	}
}
