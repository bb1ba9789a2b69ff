// Package manifest is the full description of a job that a tenant sends to the provider that won its lease. The
// order on the ledger carries only the manifest's SHA-256; the provider accepts a manifest only when the hash of
// the exact bytes it received matches. The tenant's job file (JOBSPEC.md) compiles to a manifest.
package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/sparenet/spare/ledger/tx"
)

// Version is the manifest format version.
const Version = 1

// Limits.
const (
	MaxBytes     = 16 << 20 // whole encoded manifest (files included)
	MaxFiles     = 1000
	MaxEnvVars   = 256
	MaxOutputs   = 64
	MaxCommand   = 64 << 10
	MaxPathBytes = 512
)

// File is a file shipped inside the manifest, unpacked into the work directory.
type File struct {
	Path string `json:"path"`           // relative, slash-separated, no ".."
	Mode uint32 `json:"mode,omitempty"` // permission bits; default 0644 (0755 when executable)
	Data []byte `json:"data"`           // base64 in JSON
}

// Input is a larger file the provider fetches and checks before the job starts: from URL, checked against
// SHA256, or from Spare Vault, the object whose BLAKE3 root is Vault (checked against it as it streams).
// Exactly one of URL and Vault is set, and SHA256 only with URL. Path is where it lands; one ending in "/" is a
// directory, the file then named by the URL's last element or the root in hex.
//
// Unpack (vault inputs only) extracts the object, a directory's deterministic archive (vault.Archive), into the
// directory Path names, which must not exist yet; a trailing "/" then adds nothing to the path.
//
// URL, SHA256, Vault and Unpack are left out of the encoding when empty: a URL input encodes as it always has
// ({"url","sha256","path"}), a vault input as {"vault","path"}, one to unpack as {"vault","path","unpack"}.
type Input struct {
	URL    string  `json:"url,omitempty"`
	SHA256 tx.Hash `json:"sha256,omitzero"`
	Vault  tx.Hash `json:"vault,omitzero"`
	Path   string  `json:"path"`
	Unpack bool    `json:"unpack,omitempty"`
}

// Manifest is a job as the provider runs it.
type Manifest struct {
	Version int      `json:"version"`
	Name    string   `json:"name,omitempty"`
	Run     string   `json:"run,omitempty"`   // shell command (sh -c)
	Image   string   `json:"image,omitempty"` // container image: docker runtime
	Files   []File   `json:"files,omitempty"`
	Inputs  []Input  `json:"inputs,omitempty"`
	Outputs []string `json:"outputs,omitempty"` // paths (files or directories, "out/") collected at the end
	// OutputsVault asks the provider to put the outputs' Spare Vault root in its receipt (tx.Receipt.VaultRoot):
	// the root of vault.OutputsArchive of the files it collected, the object the tenant then stores. Written only
	// when true, so that a manifest without it encodes (and hashes) as it always has.
	OutputsVault bool              `json:"outputs_vault,omitempty"`
	Env          map[string]string `json:"env,omitempty"`
	Ports        []uint16          `json:"ports,omitempty"`
	Resources    tx.Resources      `json:"resources"`
	DurationSec  uint64            `json:"duration_sec"`
}

// Encode returns the manifest's bytes: JSON with a fixed field order and sorted map keys, so the same manifest
// always encodes (and hashes) the same.
func (m *Manifest) Encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("manifest: %d bytes encoded, limit %d: ship fewer or smaller files (use inputs: for large data)", len(b), MaxBytes)
	}
	return b, nil
}

// Hash is the SHA-256 of encoded manifest bytes, as recorded in the order.
func Hash(encoded []byte) tx.Hash { return sha256.Sum256(encoded) }

// Decode parses and validates manifest bytes strictly (unknown fields are errors).
func Decode(b []byte) (*Manifest, error) {
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("manifest: %d bytes, limit %d", len(b), MaxBytes)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var m Manifest
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if d.More() {
		return nil, fmt.Errorf("manifest: trailing data after the JSON object")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reservedEnv are set by the provider; a manifest may not override them.
var reservedEnv = map[string]bool{"CUDA_VISIBLE_DEVICES": true, "NVIDIA_VISIBLE_DEVICES": true, "SPARE_LEASE_ID": true}

// CleanPath checks a relative, slash-separated path that stays inside the work directory.
func CleanPath(field, p string) error {
	switch {
	case p == "" || len(p) > MaxPathBytes:
		return fmt.Errorf("manifest: %s %q: want 1..%d bytes", field, p, MaxPathBytes)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("manifest: %s %q is absolute: give a path relative to the job's directory", field, p)
	case strings.ContainsRune(p, 0) || strings.Contains(p, "\\"):
		return fmt.Errorf("manifest: %s %q: NUL and backslash are not allowed", field, p)
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") || c == "." {
		return fmt.Errorf("manifest: %s %q leaves the job's directory", field, p)
	}
	return nil
}

// Validate checks the manifest for sense.
func (m *Manifest) Validate() error {
	if m.Version != Version {
		return fmt.Errorf("manifest: version %d, this provider reads version %d", m.Version, Version)
	}
	if m.Run == "" && m.Image == "" {
		return fmt.Errorf("manifest: neither run nor image: give a command to run")
	}
	if len(m.Run) > MaxCommand {
		return fmt.Errorf("manifest: run is %d bytes, limit %d", len(m.Run), MaxCommand)
	}
	if m.DurationSec == 0 || m.DurationSec > tx.MaxDurationSec {
		return fmt.Errorf("manifest: duration_sec %d: want 1..%d", m.DurationSec, tx.MaxDurationSec)
	}
	if err := m.Resources.Validate(); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if len(m.Files) > MaxFiles {
		return fmt.Errorf("manifest: %d files, limit %d", len(m.Files), MaxFiles)
	}
	seen := map[string]bool{}
	for i, f := range m.Files {
		if err := CleanPath(fmt.Sprintf("files[%d].path", i), f.Path); err != nil {
			return err
		}
		if seen[path.Clean(f.Path)] {
			return fmt.Errorf("manifest: files[%d].path %q listed twice", i, f.Path)
		}
		seen[path.Clean(f.Path)] = true
		if f.Mode&^0o777 != 0 {
			return fmt.Errorf("manifest: files[%d].mode %o: only permission bits (0..0777)", i, f.Mode)
		}
	}
	for i, in := range m.Inputs {
		if err := CleanPath(fmt.Sprintf("inputs[%d].path", i), in.Path); err != nil {
			return err
		}
		if !in.Vault.IsZero() {
			if in.URL != "" {
				return fmt.Errorf("manifest: inputs[%d] has both url and vault: an input comes from one of them", i)
			}
			if !in.SHA256.IsZero() {
				return fmt.Errorf("manifest: inputs[%d].sha256 with vault: a vault input is checked against its root; sha256 goes with url", i)
			}
			continue
		}
		if in.Unpack {
			return fmt.Errorf("manifest: inputs[%d].unpack without vault: only a vault input (a directory's archive) is unpacked", i)
		}
		if in.URL == "" {
			return fmt.Errorf("manifest: inputs[%d] has neither url nor vault: give one", i)
		}
		if !strings.HasPrefix(in.URL, "http://") && !strings.HasPrefix(in.URL, "https://") {
			return fmt.Errorf("manifest: inputs[%d].url %q: want http:// or https://", i, in.URL)
		}
		if in.SHA256.IsZero() {
			return fmt.Errorf("manifest: inputs[%d].sha256 is missing: a provider must be able to check the data", i)
		}
	}
	if len(m.Outputs) > MaxOutputs {
		return fmt.Errorf("manifest: %d outputs, limit %d", len(m.Outputs), MaxOutputs)
	}
	for i, o := range m.Outputs {
		if err := CleanPath(fmt.Sprintf("outputs[%d]", i), o); err != nil {
			return err
		}
	}
	if m.OutputsVault && len(m.Outputs) == 0 {
		return fmt.Errorf("manifest: outputs_vault is set with no outputs: name the paths to collect in outputs, or leave outputs_vault out")
	}
	if len(m.Env) > MaxEnvVars {
		return fmt.Errorf("manifest: %d env vars, limit %d", len(m.Env), MaxEnvVars)
	}
	for k := range m.Env {
		if !envName.MatchString(k) {
			return fmt.Errorf("manifest: env name %q: letters, digits and _ only, not starting with a digit", k)
		}
		if reservedEnv[k] {
			return fmt.Errorf("manifest: env %s is set by the provider", k)
		}
	}
	for i, p := range m.Ports {
		if p == 0 {
			return fmt.Errorf("manifest: ports[%d] is 0", i)
		}
	}
	return nil
}
