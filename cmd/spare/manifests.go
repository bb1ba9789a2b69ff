package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
)

// Manifests a deploy sent. The ledger holds only a manifest's hash; a deploy killed between its lease and the
// manifest's delivery leaves a provider waiting for bytes only this machine has. Deploy keeps each manifest in
// HOME/manifests/<sha256> before it orders, and `spare attach` sends it again from there (or from --job FILE)
// while the provider still waits. Content-addressed: a file is used only when its hash is its name.
const manifestsDir = "manifests"

// The cache's bounds: the most recent manifests, within a total size (a manifest is at most 16 MiB).
const (
	maxCachedManifests     = 64
	maxCachedManifestBytes = 64 << 20
)

// rememberManifest keeps raw for spare attach; failing to is not worth failing a deploy for.
func (g *globals) rememberManifest(raw []byte) {
	dir := filepath.Join(g.home, manifestsDir)
	if os.MkdirAll(dir, 0o700) != nil {
		return
	}
	h := manifest.Hash(raw)
	path := filepath.Join(dir, hex.EncodeToString(h[:]))
	tmp := path + ".tmp"
	if os.WriteFile(tmp, raw, 0o600) != nil || os.Rename(tmp, path) != nil {
		os.Remove(tmp)
		return
	}
	pruneManifests(dir)
}

// pruneManifests removes the oldest manifests past the cache's bounds.
func pruneManifests(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type file struct {
		name string
		size int64
		mod  int64
	}
	var files []file
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			files = append(files, file{e.Name(), fi.Size(), fi.ModTime().UnixNano()})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod > files[j].mod }) // newest first
	var total int64
	for i, f := range files {
		total += f.size
		if i >= maxCachedManifests || total > maxCachedManifestBytes {
			os.Remove(filepath.Join(dir, f.name))
		}
	}
}

// cachedManifest is the manifest kept for hash, if this machine deployed it.
func (g *globals) cachedManifest(hash tx.Hash) ([]byte, bool) {
	path := filepath.Join(g.home, manifestsDir, hex.EncodeToString(hash[:]))
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > manifest.MaxBytes {
		return nil, false
	}
	raw, err := os.ReadFile(path)
	if err != nil || manifest.Hash(raw) != hash {
		return nil, false
	}
	return raw, true
}

// attachManifest is what spare attach sends a provider still waiting for lease's manifest: the job file's
// (--job), else the one this machine kept when it deployed the order; nil when neither is at hand.
func (g *globals) attachManifest(jobFile string, hash tx.Hash) ([]byte, error) {
	if jobFile != "" {
		_, job, err := loadJob(jobFile)
		if err != nil {
			return nil, fmt.Errorf("--job %s: %w", jobFile, err)
		}
		return job.Manifest, nil
	}
	raw, _ := g.cachedManifest(hash)
	return raw, nil
}
