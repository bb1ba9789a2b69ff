package provider

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCollectOutputsRefusesWhatIsNotTheLeases: links anywhere in an output's path, hard links to files the
// lease's user does not own, FIFOs and files over the disk are left out, each with its reason; the job's own
// files (hard-linked among themselves too) are hashed.
func TestCollectOutputsRefusesWhatIsNotTheLeases(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the work directory belongs to another user, as a lease's does")
	}
	base := t.TempDir()
	host := filepath.Join(base, "host-secret") // a root file outside the work directory
	if err := os.WriteFile(host, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(base, "work")
	const uid = 2_000_123_456
	mk := func(p, data string) {
		t.Helper()
		full := filepath.Join(work, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(full, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	mk("out/a.txt", "a")
	mk("out/sub/b.txt", "bb")
	mk("big", strings.Repeat("x", 5000))
	mk("out/sparse", "")
	must0 := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must0(os.Truncate(filepath.Join(work, "out/sparse"), 16<<30)) // 16 GiB of nothing: left out unread
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Link(filepath.Join(work, "out/a.txt"), filepath.Join(work, "out/a-again.txt"))) // its own: fine
	must(os.Link(host, filepath.Join(work, "out/stolen")))                                  // root's: refused
	must(os.Symlink("/", filepath.Join(work, "r")))
	must(os.Symlink(base, filepath.Join(work, "out/up")))
	must(os.Symlink("a.txt", filepath.Join(work, "out/alias")))
	must(syscallMkfifo(filepath.Join(work, "out/fifo")))
	for _, p := range []string{work, filepath.Join(work, "out"), filepath.Join(work, "out/sub")} {
		must(os.Lchown(p, uid, uid))
	}

	files, skipped, err := collectOutputs(context.Background(), work, []string{"out/", "r" + host, "r/etc/shadow", "big", "missing"},
		outputLimits{Bytes: 4096, Files: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Path)
	}
	if want := "out/a-again.txt out/a.txt out/sub/b.txt"; strings.Join(got, " ") != want {
		t.Fatalf("hashed %v, want %s", got, want)
	}
	why := strings.Join(skipped, "\n")
	for _, s := range []string{"out/stolen", "out/fifo", "big", "r" + host, "out/sparse"} {
		if !strings.Contains(why, s) {
			t.Errorf("no reason for %s in:\n%s", s, why)
		}
	}
}

func syscallMkfifo(p string) error { return unix.Mkfifo(p, 0o644) }
