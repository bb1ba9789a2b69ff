package provider

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/runtime"
)

// maxInputBytes bounds one input when the order asks for no disk.
const maxInputBytes = 10 << 30

// fetchInputs downloads the manifest's inputs into the work directory and checks each against its SHA-256, so
// a provider can neither be fed nor swap different data. A mismatch or failure refuses the manifest.
func fetchInputs(ctx context.Context, s runtime.Spec, m *manifest.Manifest, limit int64) error {
	if limit <= 0 {
		limit = maxInputBytes
	}
	hc := &http.Client{Timeout: 30 * time.Minute}
	for i, in := range m.Inputs {
		dst := filepath.Join(s.WorkDir, filepath.FromSlash(filepath.Clean(in.Path)))
		if strings.HasSuffix(in.Path, "/") {
			dst = filepath.Join(dst, filepath.Base(in.URL))
		}
		if !strings.HasPrefix(dst, s.WorkDir+string(filepath.Separator)) {
			return fmt.Errorf("inputs[%d]: path %q leaves the work directory", i, in.Path)
		}
		if err := fetchOne(ctx, hc, in.URL, dst, in.SHA256, limit); err != nil {
			return fmt.Errorf("inputs[%d] %s: %w", i, in.URL, err)
		}
	}
	return nil
}

func fetchOne(ctx context.Context, hc *http.Client, url, dst string, want [32]byte, limit int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, limit+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
	case n > limit:
		err = fmt.Errorf("larger than %d bytes", limit)
	case [32]byte(h.Sum(nil)) != want:
		err = fmt.Errorf("sha256 %x, the manifest says %x", h.Sum(nil), want)
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}
