// Package keyring stores the ed25519 account keys of the spare CLI in a
// directory, one JSON file per key (<dir>/<name>.key, mode 0600, in a
// directory of mode 0700).
//
// Two backends exist. BackendFile (the default) keeps the private seed
// encrypted under a passphrase: scrypt (N=2^15, r=8, p=1, random 16-byte
// salt) derives a 32-byte key that seals the seed with XChaCha20-Poly1305
// (random 24-byte nonce); the associated data binds the key's name and
// address, so a file that is renamed or edited no longer decrypts.
// BackendTest keeps the seed unencrypted and is only for tests and local
// development; it is used only when explicitly selected. Every file records
// the backend that wrote it, and a keyring refuses to hand out the private
// key of a file written by the other backend (ErrBackendMismatch), so a test
// key is never silently treated as encrypted, nor the other way around.
//
// A passphrase that encrypts a new key has at least MinPassphraseLen characters.
//
// Public information (List, Show) never needs the passphrase. The
// passphrase function of Options is called only when needed: twice (entry
// and confirmation) when Add or Import creates an encrypted key, once when
// Signer decrypts one.
package keyring

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"

	"github.com/sparenet/spare/ledger/tx"
)

// Backend names how a keyring stores private keys.
type Backend string

const (
	// BackendFile encrypts each private key under a passphrase (default).
	BackendFile Backend = "file"
	// BackendTest stores private keys unencrypted. Tests and local development only.
	BackendTest Backend = "test"
)

// DefaultScryptN is the scrypt cost parameter used for new encrypted keys
// unless Options.ScryptN says otherwise.
const DefaultScryptN = 1 << 15

const (
	scryptR    = 8
	scryptP    = 1
	maxScryptN = 1 << 20 // refuse files that would make decryption absurdly expensive
	saltLen    = 16
	fileExt    = ".key"
	maxNameLen = 64
	maxFileLen = 64 << 10
	fileFormat = 1
	kdfScrypt  = "scrypt"
	cipherXCP  = "xchacha20-poly1305"
	adPrefix   = "spare-keyring/v1"
)

var (
	// ErrNotFound is returned when no key has the given name or address.
	ErrNotFound = errors.New("key not found")
	// ErrExists is returned when a key with the same name (or address) is already stored.
	ErrExists = errors.New("key already exists")
	// ErrWrongPassphrase is returned when a key cannot be decrypted with the passphrase given.
	ErrWrongPassphrase = errors.New("wrong passphrase (or corrupted key file)")
	// ErrBackendMismatch is returned when a key file was written by a different backend
	// than the keyring's.
	ErrBackendMismatch = errors.New("key backend mismatch")
	// ErrInvalidName is returned for key names that break the naming rule.
	ErrInvalidName = errors.New("invalid key name")
	// ErrBadPermissions is returned for key files readable by group or others.
	ErrBadPermissions = errors.New("key file permissions too open")
	// ErrNoPassphrase is returned when a passphrase is needed but Options.Passphrase is nil.
	ErrNoPassphrase = errors.New("a passphrase is needed but no passphrase source is configured")
	// ErrPassphraseMismatch is returned when the confirmation of a new passphrase differs.
	ErrPassphraseMismatch = errors.New("passphrases do not match")
	// ErrPassphraseTooShort is returned when a new key's passphrase has fewer than MinPassphraseLen characters.
	ErrPassphraseTooShort = fmt.Errorf("use at least %d characters", MinPassphraseLen)
)

// MinPassphraseLen is the fewest characters (Unicode code points) a passphrase that encrypts a new key may have.
// Keys encrypted before the rule still decrypt with their passphrase, whatever its length.
const MinPassphraseLen = 12

// Options configures Open.
type Options struct {
	// Backend selects the storage backend; empty means BackendFile.
	Backend Backend
	// Passphrase returns the passphrase for the given prompt. It is called
	// only when a passphrase is needed (see the package documentation).
	Passphrase func(prompt string) ([]byte, error)
	// ScryptN is the scrypt cost parameter for new encrypted keys: 0 means
	// DefaultScryptN; otherwise a power of two in [2, 2^20]. Tests lower it
	// to run fast. Existing keys always decrypt with the N they record.
	ScryptN int
}

// Info is the public information about a stored key.
type Info struct {
	Name    string     `json:"name"`
	Address tx.Address `json:"address"`
	PubKey  []byte     `json:"pubkey"`
	Backend Backend    `json:"backend"`
}

// Keyring is a directory of keys. Its methods are safe for concurrent use.
type Keyring struct {
	dir     string
	backend Backend
	pass    func(prompt string) ([]byte, error)
	scryptN int
	mu      sync.Mutex // serialises writers of this process
}

// Open opens the keyring in dir, creating the directory (mode 0700) if it is missing.
func Open(dir string, opts Options) (*Keyring, error) {
	if dir == "" {
		return nil, errors.New("keyring: empty directory")
	}
	b := opts.Backend
	if b == "" {
		b = BackendFile
	}
	if b != BackendFile && b != BackendTest {
		return nil, fmt.Errorf("keyring: unknown backend %q (want %q or %q)", opts.Backend, BackendFile, BackendTest)
	}
	n := opts.ScryptN
	if n == 0 {
		n = DefaultScryptN
	}
	if !validScryptN(n) {
		return nil, fmt.Errorf("keyring: ScryptN %d must be a power of two between 2 and %d", opts.ScryptN, maxScryptN)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keyring: create directory: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("keyring: %s is not a directory", dir)
	}
	return &Keyring{dir: dir, backend: b, pass: opts.Passphrase, scryptN: n}, nil
}

// Dir returns the keyring directory.
func (k *Keyring) Dir() string { return k.dir }

// Backend returns the keyring's backend.
func (k *Keyring) Backend() Backend { return k.backend }

// Add creates, stores and returns a new random key named name.
func (k *Keyring) Add(name string) (Info, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Info{}, fmt.Errorf("keyring: generate key: %w", err)
	}
	defer wipe(priv)
	return k.store(name, priv.Seed())
}

// Import stores priv under name.
func (k *Keyring) Import(name string, priv ed25519.PrivateKey) (Info, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return Info{}, fmt.Errorf("keyring: import %q: private key is %d bytes, want %d", name, len(priv), ed25519.PrivateKeySize)
	}
	seed := priv.Seed()
	defer wipe(seed)
	derived := ed25519.NewKeyFromSeed(seed)
	defer wipe(derived)
	if !bytes.Equal(derived[ed25519.SeedSize:], priv[ed25519.SeedSize:]) {
		return Info{}, fmt.Errorf("keyring: import %q: malformed private key (public half does not match seed)", name)
	}
	return k.store(name, seed)
}

func (k *Keyring) store(name string, seed []byte) (Info, error) {
	if err := validateNewName(name); err != nil {
		return Info{}, err
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	addr := tx.AddressOf(pub)

	k.mu.Lock()
	defer k.mu.Unlock()

	// Check before asking for a passphrase; the no-clobber write below
	// still guards against a concurrent writer.
	if _, err := os.Lstat(k.path(name)); err == nil {
		return Info{}, fmt.Errorf("keyring: key %q: %w", name, ErrExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("keyring: %w", err)
	}
	infos, err := k.List()
	if err != nil {
		return Info{}, err
	}
	for _, in := range infos {
		if in.Address == addr {
			return Info{}, fmt.Errorf("keyring: address %s is already stored as key %q: %w", addr, in.Name, ErrExists)
		}
	}

	f := keyFile{
		Version: fileFormat,
		Name:    name,
		Address: addr,
		PubKey:  pub,
		Backend: k.backend,
	}
	switch k.backend {
	case BackendTest:
		f.Seed = append([]byte(nil), seed...)
	case BackendFile:
		pass, err := k.newPassphrase(name)
		if err != nil {
			return Info{}, err
		}
		defer wipe(pass)
		c, err := seal(pass, seed, k.scryptN, name, addr)
		if err != nil {
			return Info{}, err
		}
		f.Crypto = c
	}
	data, err := json.MarshalIndent(&f, "", "  ")
	wipe(f.Seed)
	if err != nil {
		return Info{}, fmt.Errorf("keyring: encode key: %w", err)
	}
	data = append(data, '\n')
	defer wipe(data)
	if err := writeNew(k.dir, k.path(name), data); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return Info{}, fmt.Errorf("keyring: key %q: %w", name, ErrExists)
		}
		return Info{}, fmt.Errorf("keyring: write key %q: %w", name, err)
	}
	return f.info(), nil
}

// List returns the stored keys sorted by name. It needs no passphrase.
func (k *Keyring) List() ([]Info, error) {
	entries, err := os.ReadDir(k.dir)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	var out []Info
	for _, e := range entries {
		fn := e.Name()
		name, ok := strings.CutSuffix(fn, fileExt)
		if !ok || validateName(name) != nil {
			continue // temp files, other files
		}
		f, err := k.read(name)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				continue // deleted meanwhile
			}
			return nil, err
		}
		out = append(out, f.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Show returns the key named nameOrAddress, or the key whose address is the
// bech32 address nameOrAddress ("spare1...").
func (k *Keyring) Show(nameOrAddress string) (Info, error) {
	f, err := k.lookup(nameOrAddress)
	if err != nil {
		return Info{}, err
	}
	return f.info(), nil
}

// Delete removes the key named name.
func (k *Keyring) Delete(name string) error {
	if err := validateName(name); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.path(name)
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keyring: key %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("keyring: %s is not a regular file", p)
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("keyring: key %q: %w", name, ErrNotFound)
		}
		return fmt.Errorf("keyring: delete key %q: %w", name, err)
	}
	syncDir(k.dir)
	return nil
}

// Signer returns a signer for the key named nameOrAddress (or with that
// address). For an encrypted key it asks for the passphrase once.
func (k *Keyring) Signer(nameOrAddress string) (*Signer, error) {
	f, err := k.lookup(nameOrAddress)
	if err != nil {
		return nil, err
	}
	if f.Backend != k.backend {
		return nil, fmt.Errorf("keyring: key %q was stored by the %q backend but this keyring uses %q: %w",
			f.Name, f.Backend, k.backend, ErrBackendMismatch)
	}
	var seed []byte
	switch f.Backend {
	case BackendTest:
		seed = f.Seed
	case BackendFile:
		if k.pass == nil {
			return nil, fmt.Errorf("keyring: key %q: %w", f.Name, ErrNoPassphrase)
		}
		pass, err := k.pass(fmt.Sprintf("Enter passphrase for key %q: ", f.Name))
		if err != nil {
			return nil, fmt.Errorf("keyring: read passphrase: %w", err)
		}
		seed, err = unseal(pass, f.Crypto, f.Name, f.Address)
		wipe(pass)
		if err != nil {
			return nil, fmt.Errorf("keyring: key %q: %w", f.Name, err)
		}
	}
	defer wipe(seed)
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("keyring: key %q: corrupted key file (seed is %d bytes)", f.Name, len(seed))
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if !bytes.Equal(priv[ed25519.SeedSize:], f.PubKey) {
		wipe(priv)
		return nil, fmt.Errorf("keyring: key %q: corrupted key file (private key does not match public key)", f.Name)
	}
	return &Signer{name: f.Name, addr: f.Address, priv: priv}, nil
}

// Signer signs with one decrypted key.
type Signer struct {
	name string
	addr tx.Address
	priv ed25519.PrivateKey
}

// Name returns the key's name.
func (s *Signer) Name() string { return s.name }

// Address returns the key's account address.
func (s *Signer) Address() tx.Address { return s.addr }

// PubKey returns the key's public key.
func (s *Signer) PubKey() ed25519.PublicKey {
	return append(ed25519.PublicKey(nil), s.priv[ed25519.SeedSize:]...)
}

// Sign returns the ed25519 signature of msg.
func (s *Signer) Sign(msg []byte) []byte { return ed25519.Sign(s.priv, msg) }

// PrivateKey returns a copy of the private key.
func (s *Signer) PrivateKey() ed25519.PrivateKey {
	return append(ed25519.PrivateKey(nil), s.priv...)
}

// ---- names and lookup ----

func validateName(name string) error {
	ok := len(name) >= 1 && len(name) <= maxNameLen
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
	}
	if !ok {
		return fmt.Errorf("keyring: %w %q: a name must be 1 to %d characters, each a lowercase letter a-z, a digit 0-9, '_' or '-'",
			ErrInvalidName, name, maxNameLen)
	}
	return nil
}

// validateNewName also refuses names that are themselves addresses, so
// that lookups by name or address are never ambiguous.
func validateNewName(name string) error {
	if err := validateName(name); err != nil {
		return err
	}
	if _, err := tx.ParseAddress(name); err == nil {
		return fmt.Errorf("keyring: %w %q: a name must not be an address", ErrInvalidName, name)
	}
	return nil
}

func (k *Keyring) path(name string) string { return filepath.Join(k.dir, name+fileExt) }

func (k *Keyring) lookup(nameOrAddress string) (*keyFile, error) {
	if addr, err := tx.ParseAddress(nameOrAddress); err == nil {
		infos, err := k.List()
		if err != nil {
			return nil, err
		}
		for _, in := range infos {
			if in.Address == addr {
				return k.read(in.Name)
			}
		}
		return nil, fmt.Errorf("keyring: no key with address %s: %w", addr, ErrNotFound)
	}
	if err := validateName(nameOrAddress); err != nil {
		return nil, err
	}
	return k.read(nameOrAddress)
}

// ---- file format ----

type keyFile struct {
	Version int        `json:"version"`
	Name    string     `json:"name"`
	Address tx.Address `json:"address"`
	PubKey  []byte     `json:"pubkey"`
	Backend Backend    `json:"backend"`
	Seed    []byte     `json:"seed,omitempty"`   // BackendTest only
	Crypto  *sealed    `json:"crypto,omitempty"` // BackendFile only
}

type sealed struct {
	KDF        string `json:"kdf"`
	N          int    `json:"n"`
	R          int    `json:"r"`
	P          int    `json:"p"`
	Salt       []byte `json:"salt"`
	Cipher     string `json:"cipher"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

func (f *keyFile) info() Info {
	return Info{Name: f.Name, Address: f.Address, PubKey: append([]byte(nil), f.PubKey...), Backend: f.Backend}
}

// read loads and checks the key file of name (which must be valid).
func (k *Keyring) read(name string) (*keyFile, error) {
	p := k.path(name)
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("keyring: key %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("keyring: %s is not a regular file", p)
	}
	fh, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("keyring: key %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	defer fh.Close()
	st, err = fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("keyring: %s is not a regular file", p)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("keyring: %s has permissions %04o, readable or writable by group or others; run: chmod 600 %s: %w",
			p, perm, p, ErrBadPermissions)
	}
	data, err := io.ReadAll(io.LimitReader(fh, maxFileLen+1))
	if err != nil {
		return nil, fmt.Errorf("keyring: read %s: %w", p, err)
	}
	defer wipe(data)
	if len(data) > maxFileLen {
		return nil, fmt.Errorf("keyring: %s: corrupted key file (too large)", p)
	}
	var f keyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("keyring: %s: corrupted key file: %w", p, err)
	}
	if err := f.check(name); err != nil {
		wipe(f.Seed)
		return nil, fmt.Errorf("keyring: %s: corrupted key file: %w", p, err)
	}
	return &f, nil
}

func (f *keyFile) check(name string) error {
	if f.Version != fileFormat {
		return fmt.Errorf("unsupported format version %d", f.Version)
	}
	if f.Name != name {
		return fmt.Errorf("records name %q but the file is named %q", f.Name, name+fileExt)
	}
	if len(f.PubKey) != ed25519.PublicKeySize {
		return fmt.Errorf("public key is %d bytes, want %d", len(f.PubKey), ed25519.PublicKeySize)
	}
	if tx.AddressOf(f.PubKey) != f.Address {
		return errors.New("address does not match public key")
	}
	switch f.Backend {
	case BackendTest:
		if f.Crypto != nil || len(f.Seed) != ed25519.SeedSize {
			return errors.New("test-backend key must have a 32-byte seed and no crypto section")
		}
	case BackendFile:
		if f.Seed != nil || f.Crypto == nil {
			return errors.New("file-backend key must have a crypto section and no plain seed")
		}
		c := f.Crypto
		if c.KDF != kdfScrypt || c.Cipher != cipherXCP {
			return fmt.Errorf("unsupported kdf %q / cipher %q", c.KDF, c.Cipher)
		}
		if !validScryptN(c.N) || c.R != scryptR || c.P != scryptP || len(c.Salt) != saltLen {
			return errors.New("bad scrypt parameters")
		}
		if len(c.Nonce) != chacha20poly1305.NonceSizeX || len(c.Ciphertext) != ed25519.SeedSize+chacha20poly1305.Overhead {
			return errors.New("bad nonce or ciphertext length")
		}
	default:
		return fmt.Errorf("unknown backend %q", f.Backend)
	}
	return nil
}

// ---- crypto ----

func validScryptN(n int) bool { return n >= 2 && n <= maxScryptN && n&(n-1) == 0 }

func additionalData(name string, addr tx.Address) []byte {
	return []byte(adPrefix + "\x00" + name + "\x00" + addr.String())
}

func deriveKey(pass, salt []byte, n int) ([]byte, error) {
	key, err := scrypt.Key(pass, salt, n, scryptR, scryptP, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("keyring: scrypt: %w", err)
	}
	return key, nil
}

func seal(pass, seed []byte, n int, name string, addr tx.Address) (*sealed, error) {
	c := &sealed{KDF: kdfScrypt, N: n, R: scryptR, P: scryptP, Cipher: cipherXCP,
		Salt: make([]byte, saltLen), Nonce: make([]byte, chacha20poly1305.NonceSizeX)}
	if _, err := rand.Read(c.Salt); err != nil {
		return nil, fmt.Errorf("keyring: random salt: %w", err)
	}
	if _, err := rand.Read(c.Nonce); err != nil {
		return nil, fmt.Errorf("keyring: random nonce: %w", err)
	}
	key, err := deriveKey(pass, c.Salt, n)
	if err != nil {
		return nil, err
	}
	defer wipe(key)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	c.Ciphertext = aead.Seal(nil, c.Nonce, seed, additionalData(name, addr))
	return c, nil
}

func unseal(pass []byte, c *sealed, name string, addr tx.Address) ([]byte, error) {
	key, err := deriveKey(pass, c.Salt, c.N)
	if err != nil {
		return nil, err
	}
	defer wipe(key)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	seed, err := aead.Open(nil, c.Nonce, c.Ciphertext, additionalData(name, addr))
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	return seed, nil
}

func (k *Keyring) newPassphrase(name string) ([]byte, error) {
	if k.pass == nil {
		return nil, fmt.Errorf("keyring: key %q: %w", name, ErrNoPassphrase)
	}
	p1, err := k.pass(fmt.Sprintf("Enter passphrase to encrypt key %q: ", name))
	if err != nil {
		return nil, fmt.Errorf("keyring: read passphrase: %w", err)
	}
	if n := utf8.RuneCount(p1); n < MinPassphraseLen {
		wipe(p1)
		return nil, fmt.Errorf("keyring: key %q: the passphrase has %d characters: %w (a few words make a good one)", name, n, ErrPassphraseTooShort)
	}
	p2, err := k.pass(fmt.Sprintf("Repeat passphrase for key %q: ", name))
	if err != nil {
		wipe(p1)
		return nil, fmt.Errorf("keyring: read passphrase: %w", err)
	}
	defer wipe(p2)
	if !bytes.Equal(p1, p2) {
		wipe(p1)
		return nil, fmt.Errorf("keyring: %w", ErrPassphraseMismatch)
	}
	return p1, nil
}

func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

// ---- atomic writes ----

// writeNew writes data to path atomically (temp file in dir, fsync, then a
// hard link or rename into place) and never replaces an existing file: it
// returns an error satisfying errors.Is(err, fs.ErrExist) instead.
func writeNew(dir, path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(dir, ".tmp-*"+fileExt+"~")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer func() {
		if tmp != nil {
			tmp.Close()
		}
		os.Remove(tmpName) // the key, if any, lives on under path
	}()
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	err = tmp.Close()
	tmp = nil
	if err != nil {
		return err
	}
	// A hard link fails if path exists, atomically. Where links are not
	// supported fall back to check-then-rename.
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		if _, serr := os.Lstat(path); serr == nil {
			return &fs.PathError{Op: "write", Path: path, Err: fs.ErrExist}
		}
		if err := os.Rename(tmpName, path); err != nil {
			return err
		}
	}
	syncDir(dir)
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort; unsupported on some platforms
		d.Close()
	}
}
