package keyring

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sparenet/spare/ledger/tx"
)

const testN = 1 << 4 // fast scrypt for tests

// testPass is long enough for a new key (MinPassphraseLen).
const testPass = "correct horse battery"

// fixedPass returns a passphrase function that always answers pass and
// counts its calls.
func fixedPass(pass string, calls *atomic.Int32) func(string) ([]byte, error) {
	return func(string) ([]byte, error) {
		if calls != nil {
			calls.Add(1)
		}
		return []byte(pass), nil
	}
}

func openKR(t *testing.T, dir string, b Backend, pass string) *Keyring {
	t.Helper()
	kr, err := Open(dir, Options{Backend: b, Passphrase: fixedPass(pass, nil), ScryptN: testN})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return kr
}

var backends = []Backend{BackendFile, BackendTest}

func TestOpenCreatesPrivateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "keys")
	if _, err := Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %04o, want 0700", st.Mode().Perm())
	}
}

func TestOpenOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{"default", Options{}, false},
		{"file", Options{Backend: BackendFile}, false},
		{"test", Options{Backend: BackendTest}, false},
		{"unknown backend", Options{Backend: "os"}, true},
		{"low N", Options{ScryptN: 2}, false},
		{"N not power of two", Options{ScryptN: 1000}, true},
		{"N too big", Options{ScryptN: 1 << 21}, true},
		{"N negative", Options{ScryptN: -1}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kr, err := Open(t.TempDir(), tc.opts)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && tc.opts.Backend == "" && kr.Backend() != BackendFile {
				t.Errorf("default backend %q, want %q", kr.Backend(), BackendFile)
			}
		})
	}
}

func TestAddListShowDelete(t *testing.T) {
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) {
			kr := openKR(t, t.TempDir(), b, "correct horse")
			names := []string{"zed", "alice", "bob_2", "a-b"}
			added := map[string]Info{}
			for _, n := range names {
				in, err := kr.Add(n)
				if err != nil {
					t.Fatalf("Add(%q): %v", n, err)
				}
				if in.Name != n || in.Backend != b || len(in.PubKey) != ed25519.PublicKeySize ||
					in.Address != tx.AddressOf(in.PubKey) {
					t.Fatalf("Add(%q) = %+v", n, in)
				}
				added[n] = in
			}
			if _, err := kr.Add("alice"); !errors.Is(err, ErrExists) {
				t.Errorf("Add duplicate: err = %v, want ErrExists", err)
			}

			list, err := kr.List()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, in := range list {
				got = append(got, in.Name)
				if want := added[in.Name]; want.Address != in.Address || !bytes.Equal(want.PubKey, in.PubKey) {
					t.Errorf("List %q = %+v, want %+v", in.Name, in, want)
				}
			}
			if strings.Join(got, ",") != "a-b,alice,bob_2,zed" {
				t.Errorf("List order = %v", got)
			}

			for _, q := range []string{"alice", added["alice"].Address.String()} {
				in, err := kr.Show(q)
				if err != nil {
					t.Fatalf("Show(%q): %v", q, err)
				}
				if in.Name != "alice" || in.Address != added["alice"].Address {
					t.Errorf("Show(%q) = %+v", q, in)
				}
			}

			if err := kr.Delete("alice"); err != nil {
				t.Fatal(err)
			}
			if err := kr.Delete("alice"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Delete again: err = %v, want ErrNotFound", err)
			}
			if _, err := kr.Show("alice"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Show deleted: err = %v, want ErrNotFound", err)
			}
			if _, err := kr.Show(added["alice"].Address.String()); !errors.Is(err, ErrNotFound) {
				t.Errorf("Show deleted by address: err = %v, want ErrNotFound", err)
			}
			if list, _ := kr.List(); len(list) != 3 {
				t.Errorf("List after delete: %d keys, want 3", len(list))
			}
			// The name is free again.
			if _, err := kr.Add("alice"); err != nil {
				t.Errorf("re-Add after delete: %v", err)
			}
		})
	}
}

func TestEmptyList(t *testing.T) {
	kr := openKR(t, t.TempDir(), BackendFile, "x")
	list, err := kr.List()
	if err != nil || len(list) != 0 {
		t.Fatalf("List = %v, %v", list, err)
	}
}

func TestSignVerify(t *testing.T) {
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) {
			kr := openKR(t, t.TempDir(), b, testPass)
			in, err := kr.Add("signer")
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{"signer", in.Address.String()} {
				s, err := kr.Signer(q)
				if err != nil {
					t.Fatalf("Signer(%q): %v", q, err)
				}
				if s.Name() != "signer" || s.Address() != in.Address || !bytes.Equal(s.PubKey(), in.PubKey) {
					t.Fatalf("signer = %s %s %x", s.Name(), s.Address(), s.PubKey())
				}
				msg := []byte("transfer 10 spare to bob")
				sig := s.Sign(msg)
				if !ed25519.Verify(ed25519.PublicKey(in.PubKey), msg, sig) {
					t.Error("signature does not verify")
				}
				if ed25519.Verify(ed25519.PublicKey(in.PubKey), []byte("other"), sig) {
					t.Error("signature verifies for another message")
				}
				if !bytes.Equal(s.PrivateKey().Public().(ed25519.PublicKey), in.PubKey) {
					t.Error("PrivateKey does not match PubKey")
				}
			}
		})
	}
}

func TestImport(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) {
			kr := openKR(t, t.TempDir(), b, testPass)
			in, err := kr.Import("imported", priv)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(in.PubKey, pub) || in.Address != tx.AddressOf(pub) {
				t.Fatalf("Import = %+v", in)
			}
			s, err := kr.Signer("imported")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(s.PrivateKey(), priv) {
				t.Error("round-tripped private key differs")
			}
			if _, err := kr.Import("again", priv); !errors.Is(err, ErrExists) {
				t.Errorf("Import same key under another name: err = %v, want ErrExists", err)
			}
			if _, err := kr.Import("short", priv[:10]); err == nil {
				t.Error("Import of a short key succeeded")
			}
			bad := append(ed25519.PrivateKey(nil), priv...)
			bad[40] ^= 1
			if _, err := kr.Import("bad", bad); err == nil {
				t.Error("Import of an inconsistent key succeeded")
			}
		})
	}
}

func TestWrongPassphrase(t *testing.T) {
	dir := t.TempDir()
	if _, err := openKR(t, dir, BackendFile, "right passphrase").Add("k"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		pass    string
		wantErr error
	}{
		{"right passphrase", nil},
		{"wrong passphrase", ErrWrongPassphrase},
		{"", ErrWrongPassphrase},
		{"right passphrase ", ErrWrongPassphrase},
		{"right", ErrWrongPassphrase}, // shorter than a new one may be: still just wrong when unlocking
	}
	for _, tc := range tests {
		t.Run(tc.pass, func(t *testing.T) {
			var calls atomic.Int32
			kr, err := Open(dir, Options{Passphrase: fixedPass(tc.pass, &calls), ScryptN: testN})
			if err != nil {
				t.Fatal(err)
			}
			_, err = kr.Signer("k")
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Signer: err = %v, want %v", err, tc.wantErr)
			}
			if calls.Load() != 1 {
				t.Errorf("passphrase asked %d times, want 1", calls.Load())
			}
		})
	}
}

func TestPassphraseCalls(t *testing.T) {
	tests := []struct {
		backend   Backend
		wantAdd   int32 // new passphrase + confirmation
		wantOther int32 // List, Show, Delete
		wantSign  int32
	}{
		{BackendFile, 2, 0, 1},
		{BackendTest, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(string(tc.backend), func(t *testing.T) {
			var calls atomic.Int32
			kr, err := Open(t.TempDir(), Options{Backend: tc.backend, Passphrase: fixedPass(testPass, &calls), ScryptN: testN})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kr.Add("a"); err != nil {
				t.Fatal(err)
			}
			if got := calls.Swap(0); got != tc.wantAdd {
				t.Errorf("Add asked %d times, want %d", got, tc.wantAdd)
			}
			if _, err := kr.Add("a"); !errors.Is(err, ErrExists) {
				t.Fatal(err)
			}
			kr.List()
			kr.Show("a")
			if got := calls.Swap(0); got != tc.wantOther {
				t.Errorf("List/Show/duplicate Add asked %d times, want %d", got, tc.wantOther)
			}
			if _, err := kr.Signer("a"); err != nil {
				t.Fatal(err)
			}
			if got := calls.Swap(0); got != tc.wantSign {
				t.Errorf("Signer asked %d times, want %d", got, tc.wantSign)
			}
		})
	}
}

func TestNewPassphraseErrors(t *testing.T) {
	var n atomic.Int32
	mismatch := func(string) ([]byte, error) {
		if n.Add(1)%2 == 1 {
			return []byte("passphrase one"), nil
		}
		return []byte("passphrase two"), nil
	}
	failing := func(string) ([]byte, error) { return nil, errors.New("no tty") }
	tests := []struct {
		name    string
		pass    func(string) ([]byte, error)
		wantErr error
	}{
		{"nil func", nil, ErrNoPassphrase},
		{"mismatch", mismatch, ErrPassphraseMismatch},
		{"empty", fixedPass("", nil), ErrPassphraseTooShort},
		{"eleven characters", fixedPass("elevenchars", nil), ErrPassphraseTooShort},
		{"eleven runes, more bytes", fixedPass("ééééééééééé", nil), ErrPassphraseTooShort},
		{"source fails", failing, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			kr, err := Open(dir, Options{Passphrase: tc.pass, ScryptN: testN})
			if err != nil {
				t.Fatal(err)
			}
			_, err = kr.Add("k")
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("Add: err = %v, want %v", err, tc.wantErr)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("failed Add left %d files behind", len(ents))
			}
		})
	}
}

func TestFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no unix permissions")
	}
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) {
			dir := t.TempDir()
			kr := openKR(t, dir, b, testPass)
			if _, err := kr.Add("k"); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(filepath.Join(dir, "k.key"))
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("key file mode %04o, want 0600", st.Mode().Perm())
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Errorf("directory holds %d entries, want only k.key (temp file left?)", len(ents))
			}
		})
	}
}

func TestBadPermissionsRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no unix permissions")
	}
	tests := []struct {
		mode    os.FileMode
		wantErr bool
	}{
		{0o600, false},
		{0o400, false},
		{0o640, true},
		{0o604, true},
		{0o644, true},
		{0o660, true},
		{0o666, true},
	}
	for _, tc := range tests {
		t.Run(tc.mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			kr := openKR(t, dir, BackendTest, "")
			in, err := kr.Add("k")
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "k.key")
			if err := os.Chmod(p, tc.mode); err != nil {
				t.Fatal(err)
			}
			checks := map[string]func() error{
				"Show":        func() error { _, err := kr.Show("k"); return err },
				"ShowAddress": func() error { _, err := kr.Show(in.Address.String()); return err },
				"List":        func() error { _, err := kr.List(); return err },
				"Signer":      func() error { _, err := kr.Signer("k"); return err },
			}
			for what, f := range checks {
				err := f()
				if !tc.wantErr {
					if err != nil {
						t.Errorf("%s: %v", what, err)
					}
					continue
				}
				if !errors.Is(err, ErrBadPermissions) || !strings.Contains(err.Error(), "chmod 600") {
					t.Errorf("%s: err = %v, want ErrBadPermissions mentioning chmod 600", what, err)
				}
			}
		})
	}
}

func TestBackendMismatch(t *testing.T) {
	tests := []struct{ write, read Backend }{
		{BackendTest, BackendFile},
		{BackendFile, BackendTest},
	}
	for _, tc := range tests {
		t.Run(string(tc.write)+"->"+string(tc.read), func(t *testing.T) {
			dir := t.TempDir()
			if _, err := openKR(t, dir, tc.write, testPass).Add("k"); err != nil {
				t.Fatal(err)
			}
			var calls atomic.Int32
			kr, err := Open(dir, Options{Backend: tc.read, Passphrase: fixedPass(testPass, &calls), ScryptN: testN})
			if err != nil {
				t.Fatal(err)
			}
			// Public data stays readable and reports the real backend.
			in, err := kr.Show("k")
			if err != nil {
				t.Fatal(err)
			}
			if in.Backend != tc.write {
				t.Errorf("Show backend = %q, want %q", in.Backend, tc.write)
			}
			if _, err := kr.Signer("k"); !errors.Is(err, ErrBackendMismatch) {
				t.Errorf("Signer: err = %v, want ErrBackendMismatch", err)
			}
			if calls.Load() != 0 {
				t.Error("passphrase asked for a mismatched key")
			}
		})
	}
}

// A file whose backend field is flipped by hand must not be accepted.
func TestBackendFieldTampered(t *testing.T) {
	tests := []struct{ write, claim Backend }{
		{BackendTest, BackendFile},
		{BackendFile, BackendTest},
	}
	for _, tc := range tests {
		t.Run(string(tc.write)+" claims "+string(tc.claim), func(t *testing.T) {
			dir := t.TempDir()
			if _, err := openKR(t, dir, tc.write, testPass).Add("k"); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "k.key")
			editJSON(t, p, func(m map[string]any) { m["backend"] = string(tc.claim) })
			kr := openKR(t, dir, tc.claim, testPass)
			if _, err := kr.Signer("k"); err == nil || !strings.Contains(err.Error(), "corrupted") {
				t.Errorf("Signer: err = %v, want corrupted key file", err)
			}
		})
	}
}

func TestTamperedFile(t *testing.T) {
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name    string
		edit    func(m map[string]any)
		wantErr error // nil: any error
	}{
		{"name field", func(m map[string]any) { m["name"] = "other" }, nil},
		{"address", func(m map[string]any) { m["address"] = tx.AddressOf(other).String() }, nil},
		{"pubkey and address", func(m map[string]any) {
			m["pubkey"] = []byte(other)
			m["address"] = tx.AddressOf(other).String()
		}, ErrWrongPassphrase},
		{"salt", func(m map[string]any) { m["crypto"].(map[string]any)["salt"] = make([]byte, 16) }, ErrWrongPassphrase},
		{"ciphertext", func(m map[string]any) {
			c := m["crypto"].(map[string]any)
			ct, _ := base64.StdEncoding.DecodeString(c["ciphertext"].(string))
			ct[0] ^= 1
			c["ciphertext"] = ct
		}, ErrWrongPassphrase},
		{"huge N", func(m map[string]any) { m["crypto"].(map[string]any)["n"] = 1 << 30 }, nil},
		{"version", func(m map[string]any) { m["version"] = 2 }, nil},
		{"unknown field", func(m map[string]any) { m["extra"] = 1 }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			kr := openKR(t, dir, BackendFile, testPass)
			if _, err := kr.Add("k"); err != nil {
				t.Fatal(err)
			}
			editJSON(t, filepath.Join(dir, "k.key"), tc.edit)
			_, err := kr.Signer("k")
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Errorf("Signer: err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestRenamedFileRefused(t *testing.T) {
	dir := t.TempDir()
	kr := openKR(t, dir, BackendFile, testPass)
	if _, err := kr.Add("a"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "a.key"), filepath.Join(dir, "b.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Show("b"); err == nil {
		t.Error("Show of a renamed key file succeeded")
	}
}

func TestEncryptedFileHidesSeed(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	seed := priv.Seed()
	dir := t.TempDir()
	kr := openKR(t, dir, BackendFile, testPass)
	if _, err := kr.Import("k", priv); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "k.key"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["seed"]; ok {
		t.Error("encrypted file has a seed field")
	}
	enc := map[string][]byte{
		"raw":    seed,
		"base64": []byte(b64(seed)),
		"hex":    []byte(hexs(seed)),
		// also the private key (seed || pub)
		"priv base64": []byte(b64(priv)),
		"priv hex":    []byte(hexs(priv)),
	}
	for what, needle := range enc {
		if bytes.Contains(data, needle) {
			t.Errorf("encrypted key file contains the seed (%s)", what)
		}
	}
	// Sanity check: the test backend does store it (in base64), so the
	// check above would have caught a plaintext seed.
	dir2 := t.TempDir()
	if _, err := openKR(t, dir2, BackendTest, "").Import("k", priv); err != nil {
		t.Fatal(err)
	}
	data2, _ := os.ReadFile(filepath.Join(dir2, "k.key"))
	if !bytes.Contains(data2, []byte(b64(seed))) {
		t.Error("test-backend file does not contain the seed; the check above proves nothing")
	}
}

func TestDefaultScryptN(t *testing.T) {
	if testing.Short() {
		t.Skip("slow scrypt")
	}
	dir := t.TempDir()
	kr, err := Open(dir, Options{Passphrase: fixedPass(testPass, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Add("k"); err != nil {
		t.Fatal(err)
	}
	var f keyFile
	data, _ := os.ReadFile(filepath.Join(dir, "k.key"))
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	c := f.Crypto
	if c == nil || c.KDF != "scrypt" || c.N != 1<<15 || c.R != 8 || c.P != 1 || len(c.Salt) != 16 {
		t.Errorf("crypto params = %+v", c)
	}
	// A keyring opened with a different N still decrypts with the recorded one.
	kr2 := openKR(t, dir, BackendFile, testPass)
	if _, err := kr2.Signer("k"); err != nil {
		t.Error(err)
	}
}

func TestNameValidation(t *testing.T) {
	addr := tx.AddressOf(make([]byte, ed25519.PublicKeySize)).String()
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"alice", true},
		{"my-key_01", true},
		{"0", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"Alice", false},
		{"a b", false},
		{"a.b", false},
		{"../evil", false},
		{"a/b", false},
		{".hidden", false},
		{"é", false},
		{"key\x00", false},
		{addr, false}, // would be ambiguous with lookup by address
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			kr := openKR(t, dir, BackendTest, "")
			_, err := kr.Add(tc.name)
			if tc.ok {
				if err != nil {
					t.Fatalf("Add(%q): %v", tc.name, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidName) {
				t.Fatalf("Add(%q): err = %v, want ErrInvalidName", tc.name, err)
			}
			if tc.name != addr && !strings.Contains(err.Error(), "a-z") {
				t.Errorf("error does not state the rule: %v", err)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("invalid name left files behind")
			}
		})
	}
	kr := openKR(t, t.TempDir(), BackendTest, "")
	for _, f := range []func(string) error{
		func(n string) error { _, err := kr.Show(n); return err },
		func(n string) error { _, err := kr.Signer(n); return err },
		kr.Delete,
	} {
		if err := f("../x"); !errors.Is(err, ErrInvalidName) {
			t.Errorf("err = %v, want ErrInvalidName", err)
		}
	}
}

func TestNeverClobber(t *testing.T) {
	dir := t.TempDir()
	kr := openKR(t, dir, BackendTest, "")
	first, err := kr.Add("k")
	if err != nil {
		t.Fatal(err)
	}
	// Direct check of the low-level writer.
	if err := writeNew(dir, filepath.Join(dir, "k.key"), []byte("junk")); !errors.Is(err, os.ErrExist) {
		t.Errorf("writeNew over existing: err = %v, want ErrExist", err)
	}
	in, err := kr.Show("k")
	if err != nil || in.Address != first.Address {
		t.Fatalf("key changed: %+v, %v", in, err)
	}
	// Concurrent adds of one name from separate keyrings: exactly one wins.
	const n = 8
	var wg sync.WaitGroup
	var wins atomic.Int32
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k2 := openKR(t, dir, BackendTest, "")
			if _, err := k2.Add("race"); err == nil {
				wins.Add(1)
			} else if !errors.Is(err, ErrExists) {
				t.Errorf("Add: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d concurrent Adds succeeded, want 1", wins.Load())
	}
}

func TestIgnoresStrayFiles(t *testing.T) {
	dir := t.TempDir()
	kr := openKR(t, dir, BackendTest, "")
	if _, err := kr.Add("k"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{".tmp-123.key~", "README", "Upper.key"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	list, err := kr.List()
	if err != nil || len(list) != 1 || list[0].Name != "k" {
		t.Fatalf("List = %+v, %v", list, err)
	}
}

func TestPassphraseFromEnv(t *testing.T) {
	const v = "SPARE_KEYRING_TEST_PASSPHRASE"
	f := PassphraseFromEnv(v)
	t.Setenv(v, "s3cret")
	got, err := f("prompt: ")
	if err != nil || string(got) != "s3cret" {
		t.Fatalf("got %q, %v", got, err)
	}
	os.Unsetenv(v)
	if _, err := f("prompt: "); err == nil || !strings.Contains(err.Error(), v) {
		t.Errorf("unset variable: err = %v", err)
	}

	// End to end through the keyring.
	t.Setenv(v, "env passphrase")
	dir := t.TempDir()
	kr, err := Open(dir, Options{Passphrase: f, ScryptN: testN})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Add("k"); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Signer("k"); err != nil {
		t.Fatal(err)
	}
	t.Setenv(v, "other passphrase")
	if _, err := kr.Signer("k"); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("err = %v, want ErrWrongPassphrase", err)
	}
}

func editJSON(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func b64(b []byte) string  { return base64.StdEncoding.EncodeToString(b) }
func hexs(b []byte) string { return hex.EncodeToString(b) }
