package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/runtime/docker"
)

func newProviderImagesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "The container images on this machine's Docker engine, and which of them tenants may run",
		Long: `Jobs that name an image run only images listed in docker_images in provider.toml, and only
once they are in the Docker engine: pulled from a registry listed in docker_registries, or loaded
from an archive with 'spare provider images load'.`,
	}
	cmd.AddCommand(newProviderImagesLoadCmd(g), newProviderImagesListCmd(g))
	return cmd
}

// imageEntry is one local image and whether docker_images allows it.
type imageEntry struct {
	Name    string `json:"name"`
	ID      string `json:"id,omitempty"`
	Size    int64  `json:"size,omitempty"`
	Allowed *bool  `json:"allowed,omitempty"` // absent when there is no provider.toml to judge by
	Why     string `json:"why,omitempty"`     // why it is not allowed
}

// allowedBy judges name by the config (nil: unknown).
func allowedBy(cfg *provider.Config, e *imageEntry) {
	if cfg == nil {
		return
	}
	err := cfg.ImageAllowed(e.Name)
	ok := err == nil
	e.Allowed = &ok
	if err != nil {
		e.Why = err.Error()
	}
}

type imagesLoadResult struct {
	File   string       `json:"file"`
	Bytes  int64        `json:"bytes"`
	Loaded []imageEntry `json:"loaded"`
	Note   string       `json:"note,omitempty"`
}

func newProviderImagesLoadCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "load FILE.tar",
		Short: "Load an image archive (docker save, or an OCI layout tar) into the Docker engine",
		Long: `Load an image archive into this machine's Docker engine, for providers whose engine cannot
pull (no registry reachable, or none listed in docker_registries). Progress goes to stderr. Each
loaded image is then checked against docker_images in provider.toml: a job can name it only if
it is allowed there.`,
		Example: "  docker save python:3.12 -o python.tar   # on a machine with a registry\n  spare provider images load python.tar",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			f, err := os.Open(path)
			if err != nil {
				return fmt.Errorf("image archive: %w", err)
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return fmt.Errorf("image archive: %w", err)
			}
			if !fi.Mode().IsRegular() {
				return fmt.Errorf("image archive %s: not a regular file (give the .tar that docker save wrote)", path)
			}
			cfg, cfgErr := provider.LoadConfig(g.providerConfigPath())
			rt := &docker.Runtime{}
			defer rt.Close()
			if err := rt.Available(cmd.Context()); err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			cr := &countingReader{r: f, total: fi.Size(), w: stderr, every: time.Second}
			loaded, err := rt.LoadImage(cmd.Context(), cr, func(p docker.LoadProgress) {
				if p.Message != "" && g.output != "json" {
					fmt.Fprintln(stderr, p.Message)
				}
			})
			cr.report(true)
			if err != nil {
				return err
			}
			res := imagesLoadResult{File: path, Bytes: cr.n}
			for _, name := range loaded {
				e := imageEntry{Name: name}
				if strings.HasPrefix(name, "sha256:") {
					e.ID, e.Name = name, ""
					f := false
					e.Allowed, e.Why = &f, "the archive names no repository: tag it (docker tag) and list it in docker_images"
				} else {
					allowedBy(cfgOrNil(cfg, cfgErr), &e)
				}
				res.Loaded = append(res.Loaded, e)
			}
			if cfgErr != nil {
				res.Note = "not checked against docker_images: " + cfgErr.Error()
			}
			return g.print(res, func(w io.Writer) {
				for _, e := range res.Loaded {
					name := e.Name
					if name == "" {
						name = e.ID
					}
					fmt.Fprintf(w, "loaded %s  %s\n", name, allowedText(e))
				}
				if res.Note != "" {
					fmt.Fprintf(w, "note: %s\n", res.Note)
				}
			})
		},
	}
}

func cfgOrNil(cfg *provider.Config, err error) *provider.Config {
	if err != nil {
		return nil
	}
	return cfg
}

func allowedText(e imageEntry) string {
	switch {
	case e.Allowed == nil:
		return "(allowlist not read)"
	case *e.Allowed:
		return "allowed"
	}
	return "NOT allowed: " + e.Why
}

func newProviderImagesListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the Docker engine's images and whether docker_images allows each",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := provider.LoadConfig(g.providerConfigPath())
			if err != nil {
				return err
			}
			rt := &docker.Runtime{}
			defer rt.Close()
			if err := rt.Available(cmd.Context()); err != nil {
				return err
			}
			imgs, err := rt.LocalImages(cmd.Context())
			if err != nil {
				return err
			}
			out := []imageEntry{}
			for _, im := range imgs {
				names := append(append([]string(nil), im.RepoTags...), im.RepoDigests...)
				if len(names) == 0 {
					f := false
					out = append(out, imageEntry{ID: im.ID, Size: im.Size, Allowed: &f, Why: "untagged: a job cannot name it"})
					continue
				}
				for _, n := range names {
					if strings.HasSuffix(n, "<none>") || strings.HasPrefix(n, "<none>") {
						continue
					}
					e := imageEntry{Name: n, ID: im.ID, Size: im.Size}
					allowedBy(cfg, &e)
					out = append(out, e)
				}
			}
			return g.print(out, func(w io.Writer) {
				if len(out) == 0 {
					fmt.Fprintln(w, "no images in the engine")
				}
				for _, e := range out {
					name := e.Name
					if name == "" {
						name = "<untagged>"
					}
					id := strings.TrimPrefix(e.ID, "sha256:")
					if len(id) > 12 {
						id = id[:12]
					}
					fmt.Fprintf(w, "%-50s %s %8.1f MiB  %s\n", name, id, float64(e.Size)/(1<<20), allowedText(e))
				}
			})
		},
	}
}

// countingReader counts the bytes of an archive as the engine reads them and reports progress on w now and then.
type countingReader struct {
	r     io.Reader
	n     int64
	total int64
	w     io.Writer
	every time.Duration
	last  time.Time
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err == nil || errors.Is(err, io.EOF) {
		c.report(false)
	}
	return n, err
}

func (c *countingReader) report(final bool) {
	if !final && time.Since(c.last) < c.every {
		return
	}
	c.last = time.Now()
	pct := 100.0
	if c.total > 0 {
		pct = 100 * float64(c.n) / float64(c.total)
	}
	fmt.Fprintf(c.w, "sent %.1f of %.1f MiB (%.0f%%)\n", float64(c.n)/(1<<20), float64(c.total)/(1<<20), pct)
}
