package provider_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/vault"
	"github.com/sparenet/spare/vault/remote"
)

// archiveOf is the deterministic archive of a directory holding files (path → content; a content starting with
// "x:" is executable), as spare store put DIR and outputs: {to: vault} store it.
func archiveOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(c, "x:") {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(c), mode); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := vault.Archive(&b, dir, vault.DefaultArchiveLimits); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tarEntry is one entry of an archive a hostile tenant writes: any header tar can carry.
type tarEntry struct {
	h    tar.Header
	body string
}

func crafted(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := e.h
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(e.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if e.body != "" {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// paxRenamed is an archive whose one file, named name in its own header, is renamed to path by the PAX extended
// header before it (which tar.Writer would not write: its header's name wins there). The extended header is
// written as a regular file of that content, then its type byte set to 'x' and its checksum made again.
func paxRenamed(t *testing.T, name, path string) []byte {
	t.Helper()
	rec := " path=" + path + "\n"
	for n := len(rec) + 1; ; n++ { // "LEN path=...\n", LEN counting itself
		if len(fmt.Sprint(n))+len(rec) == n {
			rec = fmt.Sprint(n) + rec
			break
		}
	}
	b := crafted(t, tarEntry{h: tar.Header{Name: "PaxHeaders/" + name, Format: tar.FormatUSTAR}, body: rec}, tarEntry{h: tar.Header{Name: name, Format: tar.FormatUSTAR}, body: "x"})
	hdr := b[:512]
	hdr[156] = tar.TypeXHeader
	copy(hdr[148:156], "        ")
	sum := 0
	for _, c := range hdr {
		sum += int(c)
	}
	copy(hdr[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// tree lists what lies under dir: path → "dir", or for a file "x " (executable) or "- " and its content. (The
// permission bits beyond that are the daemon's umask's.)
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			out[filepath.ToSlash(rel)] = "dir"
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			x := "-"
			if fi.Mode()&0o100 != 0 {
				x = "x"
			}
			out[filepath.ToSlash(rel)] = x + " " + string(b)
		default:
			out[filepath.ToSlash(rel)] = fi.Mode().String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestVaultInputUnpack unpacks a directory stored in the Vault into a job's work directory, from a real
// provider daemon's shard read API, and plays the tenant who stores hostile archives: names that climb out, are
// absolute or are overridden by a PAX record, links, devices, repeated and misplaced entries, a header that
// claims more bytes than the object holds, more entries than the lease's disk allows, bytes after the end, bytes
// that are no archive at all. Each is refused naming the entry, and leaves nothing behind, inside the work
// directory or outside it. A forgery stored before the real object (a valid archive of other files, or a
// hostile one) is extracted or stopped, refused, removed, and the real object unpacked.
func TestVaultInputUnpack(t *testing.T) {
	store := filepath.Join(t.TempDir(), "vault")
	e := startEnvWith(t, func(c *provider.Config) {
		c.Storage = provider.StorageConfig{CapacityGiB: 1, Path: store, PricePerGiBMonth: "0.002"}
	})
	s := &vaultStore{e: e, host: remote.ShardHost{Provider: e.net.Keys["prov"].Address(), HostURI: e.hostURI, Fingerprint: e.fp}, reads: map[uint64]int{}}
	c := vault.Coding{K: 2, M: 2, ShardSize: 4 * vault.GroupSize}
	model := make([]byte, 200_000)
	rand.New(rand.NewSource(3)).Read(model)
	files := map[string]string{"out/model.bin": string(model), "out/run.sh": "x:#!/bin/sh\necho hi\n", "metrics.json": "{\"loss\": 0.1}\n", "out/deep/a/b.txt": "b"}
	arch := archiveOf(t, files)
	real := s.put(t, arch, c)
	root := real.Root
	want := map[string]string{
		"prev": "dir", "prev/out": "dir", "prev/out/deep": "dir", "prev/out/deep/a": "dir",
		"prev/metrics.json": "- {\"loss\": 0.1}\n", "prev/out/deep/a/b.txt": "- b", "prev/out/model.bin": "- " + string(model),
		"prev/out/run.sh": "x x:#!/bin/sh\necho hi\n",
	}
	unpack := manifest.Input{Vault: root, Path: "prev/", Unpack: true}

	t.Run("a directory unpacked, verified", func(t *testing.T) {
		work, err := fetchVault(t, s.source(s.candidate(1, real)), 1<<20, unpack, manifest.Input{Vault: root, Path: "copy.tar"})
		if err != nil {
			t.Fatal(err)
		}
		got := tree(t, work)
		if b, _ := os.ReadFile(filepath.Join(work, "copy.tar")); !bytes.Equal(b, arch) {
			t.Fatal("the input without unpack is not the archive's bytes")
		}
		delete(got, "copy.tar")
		for _, p := range slices.Sorted(maps.Keys(want)) {
			if got[p] != want[p] {
				t.Errorf("%s: %.40q, want %.40q", p, got[p], want[p])
			}
		}
		if len(got) != len(want) {
			t.Errorf("the work directory holds %d entries, want %d: %v", len(got), len(want), slices.Sorted(maps.Keys(got)))
		}
	})

	t.Run("forgeries before it: refused, removed, the real one unpacked", func(t *testing.T) {
		planted := forged(s.put(t, archiveOf(t, map[string]string{"out/model.bin": "not the model", "planted.sh": "x:rm -rf /"}), c), root)
		hostile := forged(s.put(t, crafted(t, tarEntry{h: tar.Header{Name: "../escaped"}, body: "x"}), c), root)
		src := s.source(s.candidate(1, planted), s.candidate(2, hostile), s.candidate(3, real))
		work, err := fetchVault(t, src, 1<<20, unpack)
		if err != nil {
			t.Fatal(err)
		}
		if got := tree(t, work); len(got) != len(want) || got["prev/out/model.bin"] != want["prev/out/model.bin"] {
			t.Fatalf("unpacked %v", slices.Sorted(maps.Keys(got)))
		}
		if _, err := os.Lstat(filepath.Join(work, "..", "escaped")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the forgery wrote outside the work directory: %v", err)
		}
		if opened, _ := s.stats(); fmt.Sprint(opened) != "[1 2 3]" {
			t.Fatalf("opened %v: want both forgeries tried, then the real object", opened)
		}
		// Forgeries alone: the input fails naming each, and nothing of either is left.
		work, err = fetchVault(t, s.source(s.candidate(1, planted), s.candidate(2, hostile)), 1<<20, unpack)
		for _, w := range []string{"none of the 2 stored object(s)", "object 1: its shards hold other bytes than the root's",
			`object 2: not a directory archive this provider can unpack`, `"../escaped"`} {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Fatalf("%v: want it to say %q", err, w)
			}
		}
		if got := tree(t, work); len(got) != 0 {
			t.Fatalf("left behind: %v", got)
		}
	})

	big := strings.Repeat("z", 3000)
	cases := []struct {
		name    string
		archive []byte
		want    []string
	}{
		{"a name that climbs out", crafted(t, tarEntry{h: tar.Header{Name: "../evil"}, body: "x"}), []string{`"../evil"`, "not a clean relative path"}},
		{"a name that climbs out below a directory", crafted(t, tarEntry{h: tar.Header{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755}},
			tarEntry{h: tar.Header{Name: "a/../../evil"}, body: "x"}), []string{`"a/../../evil"`, "not a clean relative path"}},
		{"an absolute name", crafted(t, tarEntry{h: tar.Header{Name: "/tmp/evil"}, body: "x"}), []string{`"/tmp/evil"`, "not a clean relative path"}},
		{"a PAX record that renames an entry", paxRenamed(t, "fine", "../evil"), []string{`"../evil"`, "not a clean relative path"}},
		{"a symbolic link, then a path through it", crafted(t, tarEntry{h: tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/"}},
			tarEntry{h: tar.Header{Name: "link/evil"}, body: "x"}), []string{`"link"`, "only directories and regular files"}},
		{"a hard link", crafted(t, tarEntry{h: tar.Header{Name: "hl", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}}), []string{`"hl"`, "only directories and regular files"}},
		{"a device", crafted(t, tarEntry{h: tar.Header{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}), []string{`"dev"`, "only directories and regular files"}},
		{"a FIFO", crafted(t, tarEntry{h: tar.Header{Name: "fifo", Typeflag: tar.TypeFifo}}), []string{`"fifo"`, "only directories and regular files"}},
		{"an entry twice", crafted(t, tarEntry{h: tar.Header{Name: "a"}, body: "1"}, tarEntry{h: tar.Header{Name: "a"}, body: "2"}), []string{`"a"`, "repeated"}},
		{"entries out of order", crafted(t, tarEntry{h: tar.Header{Name: "b"}, body: "1"}, tarEntry{h: tar.Header{Name: "a"}, body: "2"}), []string{`"a"`, "out of order"}},
		{"a file before its directory", crafted(t, tarEntry{h: tar.Header{Name: "d/x"}, body: "1"}), []string{`"d/x"`, `its directory "d" comes first`}},
		{"more bytes than the object holds", func() []byte {
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			if err := tw.WriteHeader(&tar.Header{Name: "huge", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 40}); err != nil {
				t.Fatal(err)
			}
			tw.Write([]byte(big))
			return b.Bytes()
		}(), []string{`"huge"`, "1099511627776 bytes, over the"}},
		{"bytes after the archive's end", append(archiveOf(t, map[string]string{"a": "1"}), []byte("trailing")...), []string{"8 bytes follow the archive's end"}},
		{"no archive at all", []byte(big), []string{"not a directory archive this provider can unpack"}},
	}
	for _, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			obj := s.put(t, cs.archive, c)
			in := manifest.Input{Vault: obj.Root, Path: "in/prev", Unpack: true}
			work, err := fetchVault(t, s.source(s.candidate(9, obj)), 1<<20, in)
			if err == nil {
				t.Fatalf("unpacked: %v", tree(t, filepath.Join(work, "in")))
			}
			for _, w := range append([]string{"inputs[0] (vault " + obj.Root.String() + ")", "not a directory archive this provider can unpack"}, cs.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: want it to say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), work) {
				t.Errorf("the error names the provider's directories: %v", err)
			}
			if got := tree(t, work); len(got) != 1 || got["in"] != "dir" {
				t.Errorf("left behind in the work directory: %v", got)
			}
			if _, err := os.Lstat(filepath.Join(work, "..", "evil")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("written outside the work directory: %v", err)
			}
		})
	}

	t.Run("more entries than the lease's disk allows", func(t *testing.T) {
		many := map[string]string{}
		for i := range 10 {
			many[fmt.Sprintf("f%02d", i)] = "x"
		}
		obj := s.put(t, archiveOf(t, many), c)
		in := manifest.Input{Vault: obj.Root, Path: "many/", Unpack: true}
		limit := int64(obj.Size) + 3*4096 // room for 3 entries beyond the archive's bytes
		work, err := fetchVault(t, s.source(s.candidate(9, obj)), limit, in)
		if err == nil || !strings.Contains(err.Error(), "archive holds more than 3 entries") || !strings.Contains(err.Error(), fmt.Sprintf("at most 3 entries and %d bytes of files fit the %d bytes", obj.Size, limit)) {
			t.Fatalf("ten entries on a disk with room for three: %v", err)
		}
		if got := tree(t, work); len(got) != 0 {
			t.Fatalf("left behind: %v", got)
		}
		work, err = fetchVault(t, s.source(s.candidate(9, obj)), int64(obj.Size)+64*4096, in)
		if err != nil {
			t.Fatalf("with room for 64 entries: %v", err)
		}
		if got := tree(t, work); len(got) != 11 || got["many/f09"] != "- x" {
			t.Fatalf("unpacked %v", got)
		}
	})

	t.Run("larger than the lease's disk: refused before a byte is read", func(t *testing.T) {
		limit := int64(real.Size) - 1
		work, err := fetchVault(t, s.source(s.candidate(1, real)), limit, unpack)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("the object is %d bytes, more than the %d bytes the lease's disk has left for inputs", real.Size, limit)) {
			t.Fatalf("%v", err)
		}
		if opened, reads := s.stats(); len(opened) != 0 || len(reads) != 0 {
			t.Fatalf("opened %v, read %v before refusing", opened, reads)
		}
		if got := tree(t, work); len(got) != 0 {
			t.Fatalf("left behind: %v", got)
		}
	})

	t.Run("the directory must be new", func(t *testing.T) {
		for _, c := range []struct {
			have map[string]string // what the manifest shipped
			path string
			want string
		}{
			{map[string]string{"prev": "mine"}, "prev/", "prev already exists"},
			{map[string]string{"prev/notes.txt": "mine"}, "prev/", "prev already exists"},
			{map[string]string{"a": "mine"}, "a/prev/", "a is in the way of a/prev"},
		} {
			work := t.TempDir()
			for p, body := range c.have {
				os.MkdirAll(filepath.Dir(filepath.Join(work, p)), 0o755)
				if err := os.WriteFile(filepath.Join(work, p), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			before := tree(t, work)
			opt := provider.InputOptions{Timeout: time.Minute, MinProgressBytes: 1, MinProgressWindow: 10 * time.Second, Vault: s.source(s.candidate(1, real))}
			err := provider.FetchInputsIn(context.Background(), work, &manifest.Manifest{Inputs: []manifest.Input{{Vault: root, Path: c.path, Unpack: true}}}, 1<<20, opt)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v over %v: %v, want %q", c.path, c.have, err, c.want)
			}
			if after := tree(t, work); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("the work directory changed: %v -> %v", before, after)
			}
			if opened, _ := s.stats(); len(opened) != 0 {
				t.Fatalf("read the object (%v) into a directory it cannot have", opened)
			}
		}
	})
}
