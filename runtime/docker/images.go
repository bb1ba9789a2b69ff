package docker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// AllowAny is the allowlist entry that allows every image, the provider's own private ones included.
const AllowAny = "*"

// DefaultPullTimeout bounds a pull when Runtime.PullTimeout is zero.
const DefaultPullTimeout = 15 * time.Minute

// ErrImageNotAllowed is matched (errors.Is) by the error of ImageAllowed, and so of Start, for an image outside
// the allowlist.
var ErrImageNotAllowed = errors.New("image not allowed")

// ErrRegistryNotAllowed is matched (errors.Is) by the error of RegistryAllowed, and so of Start, when a missing
// image would have to be pulled from a registry the provider did not list.
var ErrRegistryNotAllowed = errors.New("registry not allowed")

// CheckAllowlist checks the entries of an image allowlist (Runtime.Images, provider.toml's docker_images). Each
// is one of:
//
//   - "*": every image (the provider trusts whatever its engine stores);
//   - a repository, "python" or "docker.io/library/python" or "ghcr.io/org/img": any tag or digest of it;
//   - a repository and tag, "python:3.12": that tag only (a tag is a name the provider's engine resolves: only
//     what the provider pulled or loaded under it runs);
//   - a repository and digest, "ghcr.io/org/img@sha256:…": that digest only.
//
// Names are normalized as Docker does ("python" is docker.io/library/python). An image ID is not a valid entry.
// The error names the entry by its index.
func CheckAllowlist(entries []string) error {
	for i, e := range entries {
		if _, err := parseAllowEntry(e); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return nil
}

type allowEntry struct {
	any    bool
	name   string // normalized repository
	tag    string // "" unless the entry has a tag and no digest
	digest string // "" unless the entry has a digest
}

func parseAllowEntry(e string) (allowEntry, error) {
	if e == AllowAny {
		return allowEntry{any: true}, nil
	}
	if strings.TrimSpace(e) != e || e == "" {
		return allowEntry{}, fmt.Errorf("%q: write a repository (docker.io/library/python), repository:tag or repository@sha256:…, or \"*\"", e)
	}
	ref, err := reference.ParseNormalizedNamed(e)
	if err != nil {
		return allowEntry{}, fmt.Errorf("%q: %v (write a repository such as docker.io/library/python, repository:tag or repository@sha256:…)", e, err)
	}
	a := allowEntry{name: ref.Name()}
	if d, ok := ref.(reference.Digested); ok {
		a.digest = d.Digest().String()
	} else if t, ok := ref.(reference.Tagged); ok {
		a.tag = t.Tag()
	}
	return a, nil
}

// imageRef is a job's image reference, normalized: repository, and the tag (latest by default) or digest.
type imageRef struct {
	named  reference.Named
	name   string
	tag    string // "" when the reference has a digest
	digest string
}

func parseImage(image string) (imageRef, error) {
	if image == "" || strings.TrimSpace(image) != image {
		return imageRef{}, fmt.Errorf("image %q: not an image reference", image)
	}
	if strings.HasPrefix(image, "sha256:") {
		return imageRef{}, fmt.Errorf("image %q: an image ID is not accepted; name the image by repository, tag or digest", image)
	}
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return imageRef{}, fmt.Errorf("image %q: %v", image, err)
	}
	r := imageRef{named: named, name: named.Name()}
	if d, ok := named.(reference.Digested); ok {
		r.digest = d.Digest().String()
	} else {
		r.named = reference.TagNameOnly(named)
		r.tag = r.named.(reference.Tagged).Tag()
	}
	return r, nil
}

// ImageAllowed returns nil when allowlist (entries as CheckAllowlist describes) allows image, and otherwise an
// error matching ErrImageNotAllowed, or saying why image is not a valid reference. An empty allowlist allows
// nothing; an invalid entry allows nothing either.
func ImageAllowed(allowlist []string, image string) error {
	ref, err := parseImage(image)
	if err != nil {
		return err
	}
	for _, e := range allowlist {
		a, err := parseAllowEntry(e)
		if err != nil {
			continue
		}
		switch {
		case a.any:
			return nil
		case a.name != ref.name:
		case a.digest != "":
			if ref.digest == a.digest {
				return nil
			}
		case a.tag != "":
			if ref.digest == "" && ref.tag == a.tag {
				return nil
			}
		default:
			return nil
		}
	}
	if len(allowlist) == 0 {
		return fmt.Errorf("image %q (%s): %w: the allowlist is empty", image, ref.named, ErrImageNotAllowed)
	}
	return fmt.Errorf("image %q (%s): %w: neither its repository %s nor its tag or digest is in the allowlist", image, ref.named, ErrImageNotAllowed, ref.name)
}

// CheckRegistries checks registry host names (Runtime.Registries, provider.toml's docker_registries):
// "docker.io", "ghcr.io", "registry.example.net:5000". The error names the entry by its index.
func CheckRegistries(registries []string) error {
	for i, r := range registries {
		if _, err := normalizeRegistry(r); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return nil
}

func normalizeRegistry(r string) (string, error) {
	bad := fmt.Errorf("%q: write a registry host name, optionally with a port: docker.io, ghcr.io, registry.example.net:5000", r)
	if r == "" || strings.ContainsAny(r, "/@ \t") || strings.ToLower(r) != r {
		return "", bad
	}
	switch r {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io", nil
	}
	named, err := reference.ParseNormalizedNamed(r + "/x")
	if err != nil || reference.Domain(named) != r {
		return "", bad
	}
	return r, nil
}

// RegistryAllowed returns nil when image would be pulled from one of registries, and otherwise an error
// matching ErrRegistryNotAllowed. It makes no network call.
func RegistryAllowed(registries []string, image string) error {
	ref, err := parseImage(image)
	if err != nil {
		return err
	}
	domain := reference.Domain(ref.named)
	for _, r := range registries {
		if n, err := normalizeRegistry(r); err == nil && n == domain {
			return nil
		}
	}
	return fmt.Errorf("image %q: %w: it would be pulled from %s, which is not among the registries this provider pulls from (%s)",
		image, ErrRegistryNotAllowed, domain, strings.Join(registries, ", "))
}

// storedUnder reports whether a local image is stored under ref (a tag, or a registry digest), rather than
// having been found some other way (the engine also resolves an image ID prefix given as a name).
func storedUnder(ref imageRef, repoTags, repoDigests []string) bool {
	want, list := ref.named.String(), repoTags
	if ref.digest != "" {
		want, list = ref.name+"@"+ref.digest, repoDigests
	}
	for _, s := range list {
		if n, err := reference.ParseNormalizedNamed(s); err == nil && n.String() == want {
			return true
		}
	}
	return false
}

// resolveImage checks Spec.Image against the allowlist, makes sure it is in the engine's store (pulling it from
// an allowed registry when r.Registries is not empty) and returns the ID of the image that was checked, so that
// the container is created from exactly that image.
func (r *Runtime) resolveImage(ctx context.Context, cli *client.Client, image string) (string, error) {
	if err := ImageAllowed(r.Images, image); err != nil {
		return "", fmt.Errorf("docker: %w (Runtime.Images; the provider's docker_images in provider.toml)", err)
	}
	ref, _ := parseImage(image) // valid: ImageAllowed parsed it
	id, err := r.localImage(ctx, cli, image, ref)
	if err == nil || !errors.Is(err, ErrImageNotFound) {
		return id, err
	}
	if len(r.Registries) == 0 {
		return "", fmt.Errorf("docker: image %q: %w (this provider pulls from no registry: load it with 'spare provider images load', or list its registry in docker_registries)", image, ErrImageNotFound)
	}
	if err := RegistryAllowed(r.Registries, image); err != nil {
		return "", fmt.Errorf("docker: %w (docker_registries in provider.toml)", err)
	}
	if err := r.pull(ctx, cli, ref); err != nil {
		return "", err
	}
	return r.localImage(ctx, cli, image, ref)
}

func (r *Runtime) localImage(ctx context.Context, cli *client.Client, image string, ref imageRef) (string, error) {
	insp, err := cli.ImageInspect(ctx, ref.named.String())
	if cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("docker: image %q: %w", image, ErrImageNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("docker: inspect image %q: %w", image, err)
	}
	if !storedUnder(ref, insp.RepoTags, insp.RepoDigests) {
		return "", fmt.Errorf("docker: image %q: %w (the engine resolved it to %s, which is not stored under that name)", image, ErrImageNotFound, insp.ID)
	}
	return insp.ID, nil
}

func (r *Runtime) pullTimeout() time.Duration {
	if r.PullTimeout <= 0 {
		return DefaultPullTimeout
	}
	return r.PullTimeout
}

func (r *Runtime) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

// pull pulls ref (anonymously), logging its progress: each layer's bytes, at most every 2 s, and the total.
func (r *Runtime) pull(ctx context.Context, cli *client.Client, ref imageRef) error {
	ctx, cancel := context.WithTimeout(ctx, r.pullTimeout())
	defer cancel()
	log := r.logger().With("image", ref.named.String())
	start := time.Now()
	log.Info("docker: pulling image", "timeout", r.pullTimeout())
	resp, err := cli.ImagePull(ctx, ref.named.String(), client.ImagePullOptions{})
	if err != nil {
		return fmt.Errorf("docker: pull %s: %w", ref.named, err)
	}
	defer resp.Close()
	p := progress{log: log, every: 2 * time.Second}
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return fmt.Errorf("docker: pull %s: %w", ref.named, pullErr(ctx, err, r.pullTimeout()))
		}
		if msg.Error != nil {
			return fmt.Errorf("docker: pull %s: %s", ref.named, msg.Error.Message)
		}
		p.update(msg)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("docker: pull %s: %w", ref.named, pullErr(ctx, ctx.Err(), r.pullTimeout()))
	}
	cur, total := p.sum()
	log.Info("docker: pulled image", "bytes", cur, "of", total, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func pullErr(ctx context.Context, err error, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("not done after %s (Runtime.PullTimeout): %w", timeout, err)
	}
	return err
}

// progress sums the per-layer progress of an image pull or load and logs it now and then.
type progress struct {
	log    *slog.Logger
	every  time.Duration
	last   time.Time
	layers map[string]*jsonstream.Progress
	order  []string
}

func (p *progress) update(m jsonstream.Message) {
	if m.ID != "" {
		if p.layers == nil {
			p.layers = map[string]*jsonstream.Progress{}
		}
		l := p.layers[m.ID]
		switch {
		case m.Status == "Downloading" && m.Progress != nil && (m.Progress.Units == "" || m.Progress.Units == "bytes"):
			if l == nil {
				l = &jsonstream.Progress{}
				p.layers[m.ID] = l
				p.order = append(p.order, m.ID)
			}
			l.Current = m.Progress.Current
			if m.Progress.Total > 0 {
				l.Total = m.Progress.Total
			}
		case l != nil && (m.Status == "Download complete" || m.Status == "Pull complete"):
			l.Current = max(l.Current, l.Total)
		}
		if m.Status != "Downloading" && m.Status != "Extracting" && p.log != nil {
			p.log.Debug("docker: layer", "layer", m.ID, "status", m.Status)
		}
	}
	if p.log != nil && time.Since(p.last) >= p.every && len(p.layers) > 0 {
		p.last = time.Now()
		cur, total := p.sum()
		p.log.Info("docker: image progress", "layers", len(p.layers), "bytes", cur, "of", total)
	}
}

// sum is the bytes done and expected over all layers seen.
func (p *progress) sum() (cur, total int64) {
	for _, id := range p.order {
		l := p.layers[id]
		cur += l.Current
		total += l.Total
	}
	return cur, total
}

// LoadProgress is one step of LoadImage: a layer's bytes, or a line of the engine's output ("Loaded image: …").
type LoadProgress struct {
	Layer   string
	Current int64
	Total   int64
	Message string
}

// LoadImage loads an image archive (docker save's tar, or an OCI layout tar) into the engine, calling progress
// (when not nil) for each step. It returns the names of the images loaded, as the engine reports them ("Loaded
// image: NAME" or "Loaded image ID: sha256:…").
func (r *Runtime) LoadImage(ctx context.Context, archive io.Reader, progress func(LoadProgress)) ([]string, error) {
	cli, err := r.client()
	if err != nil {
		return nil, err
	}
	res, err := cli.ImageLoad(ctx, archive, client.ImageLoadWithQuiet(false))
	if err != nil {
		return nil, fmt.Errorf("docker: load image: %w", err)
	}
	defer res.Close()
	var loaded []string
	for msg, err := range decodeMessages(res) {
		if err != nil {
			return loaded, fmt.Errorf("docker: load image: %w", err)
		}
		if msg.Error != nil {
			return loaded, fmt.Errorf("docker: load image: %s", msg.Error.Message)
		}
		line := strings.TrimSpace(msg.Stream)
		if line == "" {
			line = strings.TrimSpace(msg.Status)
		}
		for _, prefix := range []string{"Loaded image: ", "Loaded image ID: "} {
			if name, ok := strings.CutPrefix(line, prefix); ok {
				loaded = append(loaded, name)
			}
		}
		if progress == nil {
			continue
		}
		if msg.Progress != nil {
			progress(LoadProgress{Layer: msg.ID, Current: msg.Progress.Current, Total: msg.Progress.Total})
		} else if line != "" {
			progress(LoadProgress{Layer: msg.ID, Message: line})
		}
	}
	if len(loaded) == 0 {
		return nil, errors.New("docker: load image: the engine loaded nothing (is this a docker save or OCI image archive?)")
	}
	return loaded, nil
}

// LocalImage is an image in the engine's store.
type LocalImage struct {
	ID          string   `json:"id"`
	RepoTags    []string `json:"repo_tags"`
	RepoDigests []string `json:"repo_digests"`
	Size        int64    `json:"size"`
	Created     int64    `json:"created"`
}

// LocalImages lists the engine's images (those with no name as well), newest first.
func (r *Runtime) LocalImages(ctx context.Context) ([]LocalImage, error) {
	cli, err := r.client()
	if err != nil {
		return nil, err
	}
	res, err := cli.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		return nil, fmt.Errorf("docker: list images: %w", err)
	}
	out := make([]LocalImage, 0, len(res.Items))
	for _, s := range res.Items {
		out = append(out, LocalImage{ID: s.ID, RepoTags: s.RepoTags, RepoDigests: s.RepoDigests, Size: s.Size, Created: s.Created})
	}
	slices.SortStableFunc(out, func(a, b LocalImage) int { return cmp.Compare(b.Created, a.Created) })
	return out, nil
}

// decodeMessages reads a stream of the engine's JSON progress messages.
func decodeMessages(r io.Reader) iter.Seq2[jsonstream.Message, error] {
	return func(yield func(jsonstream.Message, error) bool) {
		dec := json.NewDecoder(r)
		for {
			var m jsonstream.Message
			err := dec.Decode(&m)
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(m, err)
				return
			}
			if !yield(m, nil) {
				return
			}
		}
	}
}
