package process

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sparenet/spare/runtime"
)

// The runtime's own files in DIR/.process: written atomically, read without following links.

// writeAtomic replaces file with data (temporary file, fsync, rename).
func writeAtomic(file string, data []byte) error { return writeReplace(file, data, true) }

// writeReplace replaces file with data through a temporary file and a rename, synced to disk first when sync
// is set (a copy for operators need not be: it costs milliseconds on a lease's start).
func writeReplace(file string, data []byte, sync bool) error {
	f, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), file)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// readSmall reads a small regular file without following a symbolic link or blocking on a FIFO.
func readSmall(file string, limit int64) ([]byte, fs.FileInfo, error) {
	f, err := os.OpenFile(file, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > limit {
		return nil, nil, fmt.Errorf("process: %s: not a small regular file", file)
	}
	b := make([]byte, fi.Size())
	n, err := f.Read(b)
	if err != nil && n == 0 && fi.Size() > 0 {
		return nil, nil, err
	}
	return b[:n], fi, nil
}

// readStatus reads the wrapper's "exit N" and when it wrote it.
func readStatus(runDir string) (code int, at time.Time, ok bool) {
	b, fi, err := readSmall(filepath.Join(runDir, statusName), 64)
	if err != nil {
		return 0, time.Time{}, false
	}
	v, found := strings.CutPrefix(string(b), "exit ")
	if !found || !strings.HasSuffix(v, "\n") {
		return 0, time.Time{}, false
	}
	code, err = strconv.Atoi(strings.TrimSuffix(v, "\n"))
	if err != nil {
		return 0, time.Time{}, false
	}
	return code, fi.ModTime(), true
}

func readResult(runDir string) (runtime.Result, bool) {
	b, _, err := readSmall(filepath.Join(runDir, resultName), 1<<16)
	if err != nil {
		return runtime.Result{}, false
	}
	var res runtime.Result
	if json.Unmarshal(b, &res) != nil {
		return runtime.Result{}, false
	}
	return res, true
}

// marker records the stop or timeout the daemon started, so that a daemon that dies in the grace period
// leaves enough for the next one to finish the job and report it.
type marker struct {
	Reason string    `json:"reason"` // "stop" or "timeout"
	At     time.Time `json:"at"`
}

func readMarker(runDir string) marker {
	var m marker
	if b, _, err := readSmall(filepath.Join(runDir, markerName), 4096); err == nil {
		if json.Unmarshal(b, &m) != nil || (m.Reason != reasonStop && m.Reason != reasonTimeout) {
			m = marker{}
		}
	}
	return m
}
