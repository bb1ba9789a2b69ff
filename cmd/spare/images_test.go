package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sparenet/spare/internal/testimage"
	"github.com/sparenet/spare/provider"
)

// TestProviderImagesLoadAndList: an image archive (docker save) is loaded into the engine, then listed; each is
// judged by docker_images in provider.toml. Needs a Docker engine (skipped without one, failing with CI=true).
func TestProviderImagesLoadAndList(t *testing.T) {
	tag := testimage.Build(t) // removed when the test ends
	home := t.TempDir()
	if out, err := run(t, "--home", home, "--keyring-backend", "test", "provider", "init", "--host-uri", "https://gpu1.example.net:8443",
		"--node-url", "http://127.0.0.1:1", "--nvidia-smi", "/nonexistent/nvidia-smi", "-o", "json"); err != nil {
		t.Fatalf("provider init: %v\n%s", err, out)
	}
	archive := filepath.Join(t.TempDir(), "image.tar")
	if out, err := exec.Command("docker", "save", "-o", archive, tag).CombinedOutput(); err != nil {
		t.Fatalf("docker save: %v\n%s", err, out)
	}
	if out, err := exec.Command("docker", "rmi", tag).CombinedOutput(); err != nil {
		t.Fatalf("docker rmi: %v\n%s", err, out)
	}

	// Loaded; not allowed by the default docker_images.
	out, err := run(t, "--home", home, "provider", "images", "load", archive, "-o", "json")
	if err != nil {
		t.Fatalf("images load: %v\n%s", err, out)
	}
	var res imagesLoadResult
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &res); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if len(res.Loaded) != 1 || res.Loaded[0].Name != tag || res.Loaded[0].Allowed == nil || *res.Loaded[0].Allowed ||
		!strings.Contains(res.Loaded[0].Why, "docker_images") || res.Bytes == 0 {
		t.Fatalf("load result %+v\n%s", res, out)
	}

	// Allowed once its repository is listed.
	path := filepath.Join(home, provider.ConfigFile)
	cfg, err := provider.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	repo, _, _ := strings.Cut(tag, ":")
	cfg.DockerImages = append(cfg.DockerImages, repo)
	if err := cfg.Save(path); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "--home", home, "provider", "images", "list", "-o", "json")
	if err != nil {
		t.Fatalf("images list: %v\n%s", err, out)
	}
	var list []imageEntry
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	found := false
	for _, e := range list {
		if e.Name == tag {
			found = true
			if e.Allowed == nil || !*e.Allowed || e.ID == "" {
				t.Fatalf("listed %+v", e)
			}
		}
	}
	if !found {
		t.Fatalf("%s not listed:\n%s", tag, out)
	}

	// Bad input names the fix.
	if _, err := run(t, "--home", home, "provider", "images", "load", filepath.Join(home, "missing.tar")); err == nil || !strings.Contains(err.Error(), "image archive") {
		t.Fatalf("missing archive: %v", err)
	}
	if _, err := run(t, "--home", home, "provider", "images", "load", home); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("a directory: %v", err)
	}
	if _, err := run(t, "--home", t.TempDir(), "provider", "images", "list"); err == nil || !strings.Contains(err.Error(), "provider init") {
		t.Fatalf("list without provider.toml: %v", err)
	}
	_ = os.Remove(archive)
}
