package devnet

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	toml "github.com/pelletier/go-toml/v2"
)

// LockFile is the file in a home that a running `spare dev` holds locked (flock) and writes its pid in.
const LockFile = "dev.lock"

// AlreadyRunningError is Run's answer when another `spare dev` holds the home.
type AlreadyRunningError struct {
	Home string
	PID  int // 0 when the holder has not written it (yet)
}

func (e *AlreadyRunningError) Error() string {
	pid := "pid unknown"
	if e.PID > 0 {
		pid = fmt.Sprintf("pid %d", e.PID)
	}
	return fmt.Sprintf("spare dev is already running (%s) on %s: use that one (client commands find it), stop it first, or pass --home with another directory", pid, e.Home)
}

// lockHome takes the home's lock and records this process's pid in it. The lock is the kernel's (flock): it
// goes with the process, however it ends, so a pid left in the file by a killed run means nothing.
func lockHome(home string) (unlock func(), err error) {
	path := filepath.Join(home, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		// The holder writes its pid just after it takes the lock: give it a moment.
		var pid int
		for range 20 {
			if b, err := os.ReadFile(path); err == nil {
				if pid, _ = strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
					break
				}
			}
			time.Sleep(25 * time.Millisecond)
		}
		return nil, &AlreadyRunningError{Home: home, PID: pid}
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = f.Truncate(0)
		f.Close()
	}, nil
}

// legacyLeasesDir is where spare dev kept the leases of providers run as root before they moved into the home
// (and where it keeps them when the home cannot be reached by the jobs' users: see leasesRoot).
const legacyLeasesDir = "/var/lib/spare/dev-leases"

// resetHome deletes the dev network's state: everything in the home but its lock, and the lease directories
// its providers' configurations name outside it (older homes kept them in legacyLeasesDir). Workloads write
// lease directories as other users, and may leave directories without write permission: see removeTree.
func resetHome(home string, log *slog.Logger) error {
	for i := range MaxProviders {
		// Only its leases_dir: a configuration that no longer loads (hand-edited, older) still names it.
		b, err := os.ReadFile(providerConfigPath(home, i))
		if err != nil {
			break
		}
		var cfg struct {
			LeasesDir string `toml:"leases_dir"`
		}
		_ = toml.Unmarshal(b, &cfg)
		dir := filepath.Clean(cfg.LeasesDir)
		if cfg.LeasesDir == "" || dir == legacyLeasesDir || !within(dir, legacyLeasesDir) {
			continue // in the home (removed below), or the provider's default there
		}
		if err := removeTree(dir); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
		if parent := filepath.Dir(dir); parent != legacyLeasesDir {
			_ = os.Remove(parent) // this home's directory there, when empty
		}
		log.Info("reset: removed the lease data kept outside the home", "dir", dir)
	}
	ents, err := os.ReadDir(home)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() == LockFile {
			continue
		}
		if err := removeTree(filepath.Join(home, e.Name())); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
	}
	return nil
}

// removeTree removes path and everything below it. A workload may have left directories it made read-only or
// unreadable, which stop a removal that is not root's (as root, its own users' files and modes are no
// obstacle): such directories are made 0700, and the removal tried again. Symbolic links are removed, never
// followed.
func removeTree(path string) error {
	if err := os.RemoveAll(path); err == nil {
		return nil
	}
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700) // before WalkDir reads it
		}
		return nil
	})
	return os.RemoveAll(path)
}

// within reports whether path is dir or below it (both clean and absolute).
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// leasesRoot decides where a new home's providers keep their leases' directories: HOME/leases. When spare dev
// runs as root, the process runtime runs each lease as a user of its own, which must traverse every directory
// above its lease's (the provider checks, see provider.Config.LeasesDir): the home and HOME/leases are made
// traversable (mode 0711: others may pass, not list; everything else in the home stays 0700 or 0600), and so is
// every directory above the home that is not (a temporary directory such as the one `make demo` makes), unless
// it is a user's home directory or is not root's: then the leases go to legacyLeasesDir/<hash of the home>,
// which --reset also removes.
func leasesRoot(home string, log *slog.Logger) (string, error) {
	root := filepath.Join(home, "leases")
	if os.Geteuid() != 0 {
		return root, nil
	}
	var closed []string // above the home, not traversable by others
	for p := filepath.Dir(home); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			closed = append(closed, p)
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	homes := loginHomes()
	for _, p := range closed {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != 0 || homes[p] {
			dir := filepath.Join(legacyLeasesDir, hashDir(home))
			log.Warn("spare dev runs as root, and each job as a user of its own, which cannot pass through a directory above the home: "+
				"lease data is kept outside the home ('spare dev --reset' removes it; with a --home below directories others may traverse it stays in the home)",
				"blocked_by", p, "mode", fmt.Sprintf("%o", fi.Mode().Perm()), "leases", dir)
			return dir, nil
		}
	}
	for _, p := range closed {
		fi, _ := os.Stat(p)
		if err := os.Chmod(p, fi.Mode().Perm()|0o011); err != nil {
			return "", fmt.Errorf("make %s traversable for the jobs' users: %w", p, err)
		}
		log.Info("made a directory above the dev home traversable (not readable) by others: spare dev runs jobs as users of their own, which reach their lease directories in the home through it",
			"dir", p, "mode", fmt.Sprintf("%o", fi.Mode().Perm()|0o011))
	}
	return root, openLeasesRoot(home, root)
}

// openLeasesRoot makes, as root, the home and a lease root in it traversable by others (mode 0711), which the
// leases' users need to reach their directories. Everything else in the home keeps its own mode (0700, 0600).
func openLeasesRoot(home, root string) error {
	if os.Geteuid() != 0 || !within(root, home) {
		return nil
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return err
	}
	for p := root; within(p, home); p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o011 != 0o011 {
			if err := os.Chmod(p, fi.Mode().Perm()|0o011); err != nil {
				return err
			}
		}
		if p == home {
			break
		}
	}
	return nil
}

// loginHomes are the users' home directories (/etc/passwd, and this process's $HOME): spare dev never changes
// their modes.
func loginHomes() map[string]bool {
	homes := map[string]bool{}
	if h, err := os.UserHomeDir(); err == nil {
		homes[filepath.Clean(h)] = true
	}
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return homes
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Split(sc.Text(), ":"); len(fields) >= 6 && filepath.IsAbs(fields[5]) && fields[5] != "/" {
			homes[filepath.Clean(fields[5])] = true
		}
	}
	return homes
}

// hashDir names a home's directory in legacyLeasesDir.
func hashDir(home string) string {
	h := sha256.Sum256([]byte(home))
	return hex.EncodeToString(h[:6])
}

// Running reports whether a `spare dev` holds the home's lock now.
func Running(home string) bool {
	f, err := os.Open(filepath.Join(home, LockFile))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// WaitReady waits, up to timeout, for the `spare dev` running on home to be ready (its client config says so),
// and returns its client config. A home whose network is not running, or is ready, returns at once; waiting is
// said once on say (nil: silently).
func WaitReady(home string, timeout time.Duration, say func()) (*ClientConfig, error) {
	deadline := time.Now().Add(timeout)
	for {
		cc, err := LoadClientConfig(home)
		if err != nil || cc.Ready || !Running(home) || time.Now().After(deadline) {
			return cc, err
		}
		if say != nil {
			say()
			say = nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}
